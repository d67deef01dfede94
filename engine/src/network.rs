//! Bridge networks as the engine asks berth-netd for them. Each is a netd
//! `NetworkConfig` in `<root>/networks/<name>.json` (written by `berth
//! network create`, whole, by rename). The default network `berth` (bridge
//! `berth0`, 10.89.0.0/24, as podman's `podman` network) needs no file; a
//! file of that name overrides it where the host needs another bridge or
//! subnet. A container's request goes to its run dir; the monitor runs
//! berth-netd with it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use berth_netd::wire::{
    Attachment, NetworkConfig, PortMapping, Protocol, Request, SetupResult, Subnet, Subnet6,
};

use crate::db::ContainerRecord;
use crate::error::{io, EngineError, Result};

pub const DEFAULT_NETWORK: &str = "berth";

fn dir(root: &Path) -> std::path::PathBuf {
    root.join("networks")
}

fn builtin_default() -> NetworkConfig {
    NetworkConfig {
        name: DEFAULT_NETWORK.into(),
        bridge: "berth0".into(),
        subnet: "10.89.0.0/24".parse().expect("a valid subnet"),
        gateway: None,
        internal: false,
        mtu: None,
        dns_enabled: false,
        ip_range: None,
        subnet6: None,
        gateway6: None,
    }
}

/// A network's configuration by name.
pub fn get(root: &Path, name: &str) -> Result<NetworkConfig> {
    if !crate::host::valid_name(name) {
        return Err(EngineError::NoSuchNetwork(name.to_string()));
    }
    let file = dir(root).join(format!("{name}.json"));
    match std::fs::read(&file) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| EngineError::InvalidOption {
            option: "network".into(),
            reason: format!("{}: {e}", file.display()),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && name == DEFAULT_NETWORK => {
            Ok(builtin_default())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(EngineError::NoSuchNetwork(name.to_string()))
        }
        Err(e) => Err(io("read", &file)(e)),
    }
}

/// Every network, the default first.
pub fn list(root: &Path) -> Result<Vec<NetworkConfig>> {
    let mut v = vec![get(root, DEFAULT_NETWORK)?];
    let mut names: Vec<String> = std::fs::read_dir(dir(root))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
                .filter(|n| n != DEFAULT_NETWORK && crate::host::valid_name(n))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    for n in names {
        v.push(get(root, &n)?);
    }
    Ok(v)
}

/// What `network create` asks for; unset fields are allocated.
#[derive(Clone, Debug, Default)]
pub struct NewNetwork {
    pub name: String,
    /// `--subnet`, repeatable: at most one IPv4 and one IPv6 CIDR (docker's
    /// spelling of a dual-stack network).
    pub subnets: Vec<String>,
    /// `--gateway`, repeatable: each belongs to the subnet of its family.
    pub gateways: Vec<String>,
    /// `--subnet6` and `--gateway6`: the IPv6 ones spelled apart.
    pub subnet6: Option<String>,
    pub gateway6: Option<String>,
    /// `--ipv6`: dual stack (implied by an IPv6 subnet).
    pub ipv6: bool,
    /// `--ip-range`: automatic IPv4 addresses only from this CIDR inside the
    /// (given) IPv4 subnet.
    pub ip_range: Option<String>,
    /// `--opt KEY=VALUE`: `mtu` (or docker's `com.docker.network.driver.mtu`).
    pub options: Vec<String>,
    pub bridge: Option<String>,
    pub internal: bool,
    /// DNS for the network's containers (docker's default on user networks).
    pub dns: bool,
}

/// The addresses `network create` was given, sorted by family.
#[derive(Default)]
struct Families {
    subnet: Option<Subnet>,
    subnet6: Option<Subnet6>,
    gateway: Option<Ipv4Addr>,
    gateway6: Option<Ipv6Addr>,
}

impl Families {
    /// `--subnet`/`--gateway` (either family, each at most once per family)
    /// and `--subnet6`/`--gateway6` (IPv6 only).
    fn of(n: &NewNetwork) -> std::result::Result<Families, String> {
        let mut f = Families::default();
        if let Some(s) = &n.subnet6 {
            f.subnet6 = Some(s.parse().map_err(|e| format!("--subnet6 {s:?}: {e}"))?);
        }
        for s in &n.subnets {
            let twice = if s.contains(':') {
                let v = s.parse().map_err(|e| format!("--subnet {s:?}: {e}"))?;
                f.subnet6.replace(v).is_some()
            } else {
                let v = s.parse().map_err(|e| format!("--subnet {s:?}: {e}"))?;
                f.subnet.replace(v).is_some()
            };
            if twice {
                return Err("at most one IPv4 and one IPv6 subnet".into());
            }
        }
        if let Some(g) = &n.gateway6 {
            let ip = g.parse();
            f.gateway6 = Some(ip.map_err(|_| format!("--gateway6 {g:?} is not an IPv6 address"))?);
        }
        for g in &n.gateways {
            let twice = match g.parse::<IpAddr>() {
                Ok(IpAddr::V4(ip)) => f.gateway.replace(ip).is_some(),
                Ok(IpAddr::V6(ip)) => f.gateway6.replace(ip).is_some(),
                Err(_) => return Err(format!("--gateway {g:?} is not an IP address")),
            };
            if twice {
                return Err("at most one IPv4 and one IPv6 gateway".into());
            }
        }
        Ok(f)
    }
}

/// `fd89:0:0:N::/64`, N written with the decimal digits of the network's
/// index (as in 10.89.N.0/24): the default IPv6 subnet.
fn default_subnet6(i: u8) -> Subnet6 {
    format!("fd89:0:0:{i}::/64").parse().expect("valid")
}

/// `--opt` values: only the MTU is known.
fn mtu_option(options: &[String]) -> std::result::Result<Option<u32>, String> {
    let mut mtu = None;
    for o in options {
        let (k, v) = o
            .split_once('=')
            .ok_or_else(|| format!("--opt {o:?}: expected KEY=VALUE"))?;
        match k {
            "mtu" | "com.docker.network.driver.mtu" => {
                mtu = Some(
                    v.parse()
                        .map_err(|_| format!("--opt {o:?}: not a number"))?,
                );
            }
            _ => return Err(format!("--opt {k:?}: unknown option (known: mtu)")),
        }
    }
    Ok(mtu)
}

/// Define a network: a free 10.89.N.0/24 and bridge `berthN` unless given;
/// with IPv6, a free `fd89:0:0:N::/64` unless given.
pub fn create(root: &Path, n: &NewNetwork) -> Result<NetworkConfig> {
    let bad = |r: String| EngineError::InvalidOption {
        option: "network create".into(),
        reason: r,
    };
    if !crate::host::valid_name(&n.name) || n.name.len() > 64 {
        return Err(EngineError::InvalidName(n.name.clone()));
    }
    let f = Families::of(n).map_err(bad)?;
    let mtu = mtu_option(&n.options).map_err(bad)?;
    let ipv6 = n.ipv6 || f.subnet6.is_some();
    if !ipv6 && f.gateway6.is_some() {
        return Err(bad("an IPv6 gateway needs --ipv6 or an IPv6 subnet".into()));
    }
    if n.ip_range.is_some() && f.subnet.is_none() {
        return Err(bad("--ip-range needs an IPv4 --subnet".into()));
    }
    let existing = list(root)?;
    if existing.iter().any(|c| c.name == n.name) {
        return Err(EngineError::NetworkExists(n.name.clone()));
    }
    let free = (1..=255u8).find(|i| {
        let s: Subnet = format!("10.89.{i}.0/24").parse().expect("valid");
        !existing
            .iter()
            .any(|c| c.subnet.overlaps(&s) || c.bridge == format!("berth{i}"))
    });
    let subnet: Subnet = match f.subnet {
        Some(s) => s,
        None => {
            let i = free.ok_or_else(|| bad("no free 10.89.N.0/24 subnet".into()))?;
            format!("10.89.{i}.0/24").parse().expect("valid")
        }
    };
    if let Some(c) = existing.iter().find(|c| c.subnet.overlaps(&subnet)) {
        return Err(bad(format!("subnet {subnet} overlaps network {}", c.name)));
    }
    let taken6 = |s: &Subnet6| {
        existing
            .iter()
            .find(|c| c.subnet6.is_some_and(|o| o.overlaps(s)))
    };
    let subnet6 = match f.subnet6 {
        _ if !ipv6 => None,
        Some(s) => Some(s),
        // The IPv4 index when that is free too, else the lowest free one.
        None => (f.subnet.is_none().then_some(free).flatten().into_iter())
            .chain(1..=255)
            .map(default_subnet6)
            .find(|s| taken6(s).is_none())
            .map(Some)
            .ok_or_else(|| bad("no free fd89:0:0:N::/64 subnet".into()))?,
    };
    if let Some((s, c)) = subnet6.and_then(|s| taken6(&s).map(|c| (s, c))) {
        return Err(bad(format!("IPv6 subnet {s} overlaps network {}", c.name)));
    }
    let bridge = match &n.bridge {
        Some(b) => b.clone(),
        None => format!(
            "berth{}",
            free.ok_or_else(|| bad("no free bridge name".into()))?
        ),
    };
    let bridge_ok = !bridge.is_empty()
        && bridge.len() <= 15
        && bridge
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c));
    if !bridge_ok {
        return Err(bad(format!(
            "bridge name {bridge:?}: 1-15 of [A-Za-z0-9_.-]"
        )));
    }
    if let Some(c) = existing.iter().find(|c| c.bridge == bridge) {
        return Err(bad(format!("bridge {bridge} is network {}'s", c.name)));
    }
    if let Some(ip) = f.gateway.filter(|ip| !subnet.contains_host(*ip)) {
        return Err(bad(format!(
            "--gateway {ip} is not a host address of {subnet}"
        )));
    }
    let ip_range = match &n.ip_range {
        Some(r) => Some(
            r.parse()
                .map_err(|e| bad(format!("--ip-range {r:?}: {e}")))?,
        ),
        None => None,
    };
    let cfg = NetworkConfig {
        name: n.name.clone(),
        bridge,
        subnet,
        gateway: f.gateway,
        internal: n.internal,
        mtu,
        dns_enabled: n.dns,
        ip_range,
        subnet6,
        gateway6: f.gateway6,
    };
    // What netd would refuse (IPv6 gateway outside its subnet, a reserved
    // IPv6 range, an ip range outside the subnet, the MTU's range).
    berth_netd::check_network(&cfg).map_err(|e| bad(e.to_string()))?;
    let d = dir(root);
    std::fs::create_dir_all(&d).map_err(io("create", &d))?;
    let file = d.join(format!("{}.json", cfg.name));
    let tmp = d.join(format!(".{}.json.tmp", cfg.name));
    let json = serde_json::to_vec_pretty(&cfg).expect("a network serializes");
    std::fs::write(&tmp, json)
        .and_then(|()| std::fs::rename(&tmp, &file))
        .map_err(io("write", &file))?;
    Ok(cfg)
}

/// Forget a network definition (the caller checks no container uses it).
pub fn remove(root: &Path, name: &str) -> Result<()> {
    get(root, name)?;
    if name == DEFAULT_NETWORK {
        return Err(EngineError::InvalidOption {
            option: "network rm".into(),
            reason: format!("{DEFAULT_NETWORK} is the default network"),
        });
    }
    let file = dir(root).join(format!("{name}.json"));
    std::fs::remove_file(&file).map_err(io("remove", &file))
}

/// `berth-netd --state-dir STATE OP --netns NETNS --file REQUEST`, stdin
/// closed and stderr discarded (netd answers on stdout): the one place the
/// engine and the monitor build netd's command line.
pub fn netd_command(
    netd: &Path,
    state: &Path,
    op: &str,
    netns: &Path,
    request: &Path,
) -> std::process::Command {
    let mut c = std::process::Command::new(netd);
    c.arg("--state-dir")
        .arg(state)
        .arg(op)
        .arg("--netns")
        .arg(netns)
        .arg("--file")
        .arg(request)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    c
}

/// The netd attachments of `rec`'s networks, in order (eth0, eth1, …).
pub(crate) fn attachments(root: &Path, rec: &ContainerRecord) -> Result<Vec<Attachment>> {
    (rec.options.endpoints().into_iter().enumerate())
        .map(|(i, e)| {
            Ok(Attachment {
                network: get(root, &e.network)?,
                interface_name: Some(format!("eth{i}")),
                static_ip: e.ip,
                static_ip6: None,
                aliases: e.aliases,
            })
        })
        .collect()
}

/// Write the netd request for `rec` into `run_dir` (with no networks when
/// every one was disconnected: the monitor then sets up nothing).
pub fn write_request(root: &Path, rec: &ContainerRecord, run_dir: &Path) -> Result<()> {
    let req = Request {
        container_id: rec.id.clone(),
        container_name: rec.name.clone(),
        networks: attachments(root, rec)?,
        port_mappings: port_mappings(&rec.options)?,
        dns_servers: None,
        pasta: (rec.options.network == crate::options::NetworkMode::Pasta).then_some(
            berth_netd::wire::Pasta {
                binary: None,
                map_gw: rec.options.pasta_map_gw,
            },
        ),
    };
    save_request(run_dir, &req)
}

/// Write `req` as the run dir's netd request (temp file and rename: the
/// monitor may read it at any time).
pub(crate) fn save_request(run_dir: &Path, req: &Request) -> Result<()> {
    let path = run_dir.join(crate::layout::NETD_REQUEST);
    let tmp = run_dir.join(format!(".{}.tmp", crate::layout::NETD_REQUEST));
    let json = serde_json::to_vec_pretty(req).expect("a request serializes");
    std::fs::write(&tmp, json)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(io("write", &path))
}

/// Write netd's answer as the run dir's `network.json` (temp file and
/// rename: `inspect` reads it at any time).
pub(crate) fn save_result(run_dir: &Path, res: &SetupResult) -> std::io::Result<()> {
    let path = run_dir.join(crate::layout::NETWORK_FILE);
    let tmp = run_dir.join(format!(".{}.tmp", crate::layout::NETWORK_FILE));
    std::fs::write(&tmp, serde_json::to_vec(res).expect("a result serializes"))?;
    std::fs::rename(&tmp, &path)
}

/// `network.json`, if the container's networks are set up.
pub(crate) fn read_result(run_dir: &Path) -> Option<SetupResult> {
    let b = std::fs::read(run_dir.join(crate::layout::NETWORK_FILE)).ok()?;
    serde_json::from_slice(&b).ok()
}

/// Name servers as netd reports them (a DNS-enabled network's gateway
/// first) into the container's resolv.conf in `bundle`, rewritten in place:
/// it is bind-mounted into the container already, so it keeps its inode.
/// Other lines (search, options) stay. No file, nothing to do.
pub(crate) fn write_resolv_conf(bundle: &Path, servers: &[Ipv4Addr]) -> std::io::Result<()> {
    let path = bundle.join("resolv.conf");
    let Ok(old) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    let mut text: String = servers
        .iter()
        .map(|s| format!("nameserver {s}\n"))
        .collect();
    for l in old
        .lines()
        .filter(|l| !l.trim_start().starts_with("nameserver"))
    {
        text.push_str(l);
        text.push('\n');
    }
    std::fs::write(&path, text)
}

/// `-p` mappings, and with `-P` one on a free host port for every exposed
/// port `-p` does not already publish (chosen now, at each start, as
/// docker does; the kernel's ephemeral range).
fn port_mappings(o: &crate::options::RunOptions) -> Result<Vec<PortMapping>> {
    let mut v = o.publish.clone();
    if !o.publish_all {
        return Ok(v);
    }
    for e in &o.expose {
        let (port, proto) = e.split_once('/').unwrap_or((e, "tcp"));
        let Ok(port) = port.parse::<u16>() else {
            continue;
        };
        let protocol = if proto == "udp" {
            Protocol::Udp
        } else {
            Protocol::Tcp
        };
        let covered = v.iter().any(|m| {
            m.protocol == protocol
                && (m.container_port..m.container_port.saturating_add(m.range)).contains(&port)
        });
        if covered {
            continue;
        }
        let free = match protocol {
            Protocol::Udp => std::net::UdpSocket::bind(("0.0.0.0", 0)).and_then(|s| s.local_addr()),
            Protocol::Tcp => {
                std::net::TcpListener::bind(("0.0.0.0", 0)).and_then(|s| s.local_addr())
            }
        }
        .map_err(io("find a free port for", Path::new("-P")))?;
        v.push(PortMapping {
            host_ip: None,
            host_port: free.port(),
            container_port: port,
            protocol,
            range: 1,
        });
    }
    Ok(v)
}

impl crate::engine::Engine {
    /// `--network container:X`, at each start: X must run; our config
    /// joins its network namespace by path, and our /etc/hosts and
    /// resolv.conf become copies of its.
    pub(crate) fn join_network_of(&self, rec: &ContainerRecord) -> Result<()> {
        let key = rec.options.network_container.as_deref().unwrap_or("");
        let target = self.find(key)?;
        let st = self.state(&target);
        let pid = match (st.is_running(), st.pid) {
            (true, Some(pid)) => pid,
            _ => {
                return Err(EngineError::InvalidOption {
                    option: "--network".into(),
                    reason: format!(
                        "container {} (whose network this joins) is not running",
                        target.name
                    ),
                })
            }
        };
        let cfg_path = rec.bundle.join("config.json");
        let mut cfg: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&cfg_path).map_err(io("read", &cfg_path))?)
                .map_err(|source| EngineError::BadRecord {
                    id: rec.id.clone(),
                    source,
                })?;
        if let Some(ns) = cfg["linux"]["namespaces"].as_array_mut() {
            for n in ns.iter_mut().filter(|n| n["type"] == "network") {
                n["path"] = serde_json::json!(format!("/proc/{pid}/ns/net"));
            }
        }
        std::fs::write(&cfg_path, cfg.to_string()).map_err(io("write", &cfg_path))?;
        for f in ["hosts", "resolv.conf"] {
            let (from, to) = (target.bundle.join(f), rec.bundle.join(f));
            let body = std::fs::read(&from).map_err(io("read", &from))?;
            std::fs::write(&to, body).map_err(io("write", &to))?;
        }
        Ok(())
    }

    /// Define a bridge network (`berth network create`).
    pub fn network_create(&self, n: &NewNetwork) -> Result<NetworkConfig> {
        create(&self.root, n)
    }

    /// Every network with the names of the containers attached to it.
    pub fn network_list(&self) -> Result<Vec<(NetworkConfig, Vec<String>)>> {
        let recs = self.db.list()?;
        Ok(list(&self.root)?
            .into_iter()
            .map(|c| {
                let users = users(&recs, &c.name);
                (c, users)
            })
            .collect())
    }

    pub fn network_inspect(&self, name: &str) -> Result<(NetworkConfig, Vec<String>)> {
        let c = get(&self.root, name)?;
        let users = users(&self.db.list()?, &c.name);
        Ok((c, users))
    }

    /// Remove every user network no container refers to; their names.
    pub fn network_prune(&self) -> Result<Vec<String>> {
        let recs = self.db.list()?;
        let mut gone = Vec::new();
        for c in list(&self.root)? {
            if c.name != DEFAULT_NETWORK && users(&recs, &c.name).is_empty() {
                remove(&self.root, &c.name)?;
                gone.push(c.name);
            }
        }
        Ok(gone)
    }

    /// Remove a network no container refers to.
    pub fn network_remove(&self, name: &str) -> Result<()> {
        let c = get(&self.root, name)?;
        let users = users(&self.db.list()?, &c.name);
        if !users.is_empty() {
            return Err(EngineError::NetworkInUse {
                name: c.name,
                containers: users.join(", "),
            });
        }
        remove(&self.root, name)
    }
}

/// Names of the containers whose records attach to network `name`.
fn users(recs: &[ContainerRecord], name: &str) -> Vec<String> {
    recs.iter()
        .filter(|r| r.options.endpoints().iter().any(|e| e.network == name))
        .map(|r| r.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `network create NAME` with `args` applied, in `root`.
    fn create_with(
        root: &Path,
        name: &str,
        args: impl FnOnce(&mut NewNetwork),
    ) -> Result<NetworkConfig> {
        let mut n = NewNetwork {
            name: name.into(),
            dns: true,
            ..NewNetwork::default()
        };
        args(&mut n);
        create(root, &n)
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn ipv6_subnets_are_allocated_per_index_or_given() {
        let root = tempfile::tempdir().expect("tempdir");
        let r = root.path();
        let a = create_with(r, "a", |n| n.ipv6 = true).expect("a");
        assert_eq!(a.subnet.to_string(), "10.89.1.0/24");
        assert_eq!(
            a.subnet6.map(|s| s.to_string()).as_deref(),
            Some("fd89:0:0:1::/64")
        );
        assert_eq!(
            a.gateway6().map(|g| g.to_string()).as_deref(),
            Some("fd89:0:0:1::1")
        );
        let b = create_with(r, "b", |n| n.ipv6 = true).expect("b");
        assert_eq!(
            b.subnet6.map(|s| s.to_string()).as_deref(),
            Some("fd89:0:0:2::/64")
        );
        let v4 = create_with(r, "v4", |_| {}).expect("v4 only");
        assert_eq!((v4.subnet6, v4.gateway6()), (None, None));
        // docker's spelling: --subnet twice (IPv6 implied), gateways by family.
        let d = create_with(r, "d", |n| {
            n.subnets = strings(&["10.7.0.0/24", "fd89:7::/64"]);
            n.gateways = strings(&["fd89:7::fe", "10.7.0.254"]);
        })
        .expect("dual");
        assert_eq!(
            d.subnet6.map(|s| s.to_string()).as_deref(),
            Some("fd89:7::/64")
        );
        assert_eq!(
            d.gateway6.map(|g| g.to_string()).as_deref(),
            Some("fd89:7::fe")
        );
        assert_eq!(d.gateway, Some(Ipv4Addr::new(10, 7, 0, 254)));
        // berth's spelling, with an ip range and the MTU.
        let e = create_with(r, "e", |n| {
            n.subnets = strings(&["10.8.0.0/24"]);
            n.subnet6 = Some("fd89:8::/64".into());
            n.gateway6 = Some("fd89:8::1".into());
            n.ip_range = Some("10.8.0.128/25".into());
            n.options = strings(&["com.docker.network.driver.mtu=1450"]);
        })
        .expect("dual, berth flags");
        assert_eq!(
            e.ip_range.map(|s| s.to_string()).as_deref(),
            Some("10.8.0.128/25")
        );
        assert_eq!(e.mtu, Some(1450));
        let m = create_with(r, "m", |n| n.options = strings(&["mtu=1400"])).expect("mtu");
        assert_eq!(m.mtu, Some(1400));
        // The definitions round-trip through their files.
        assert_eq!(get(r, "e").expect("get"), e);
    }

    fn check_refused(root: &Path, args: impl FnOnce(&mut NewNetwork), needle: &str) {
        let e = create_with(root, "x", args).expect_err(needle);
        assert!(e.to_string().contains(needle), "{needle:?} in {e}");
        assert!(!root.join("networks/x.json").exists(), "written anyway");
    }

    #[test]
    fn bad_network_definitions_are_refused() {
        let root = tempfile::tempdir().expect("tempdir");
        let r = root.path();
        create_with(r, "taken", |n| n.subnet6 = Some("fd89:1::/48".into())).expect("taken");
        let s = |v: &[&str]| strings(v);
        check_refused(
            r,
            |n| n.subnets = s(&["10.1.0.0/24", "10.2.0.0/24"]),
            "at most one IPv4",
        );
        check_refused(
            r,
            |n| n.subnets = s(&["fd89:2::/64", "fd89:3::/64"]),
            "one IPv6 subnet",
        );
        check_refused(
            r,
            |n| {
                n.subnets = s(&["fd89:2::/64"]);
                n.subnet6 = Some("fd89:3::/64".into());
            },
            "one IPv6 subnet",
        );
        check_refused(
            r,
            |n| n.subnet6 = Some("10.0.0.0/24".into()),
            "is an IPv4 subnet, not IPv6",
        );
        check_refused(r, |n| n.subnets = s(&["fd89::1/64"]), "host bits");
        check_refused(
            r,
            |n| n.subnet6 = Some("fe80::/64".into()),
            "not a unicast range",
        );
        check_refused(
            r,
            |n| n.subnet6 = Some("fd89:1:0:5::/64".into()),
            "overlaps network taken",
        );
        check_refused(
            r,
            |n| {
                n.subnet6 = Some("fd89:2::/64".into());
                n.gateway6 = Some("fd89:3::1".into());
            },
            "is not a host address of fd89:2::/64",
        );
        check_refused(r, |n| n.gateway6 = Some("fd89:2::1".into()), "needs --ipv6");
        check_refused(
            r,
            |n| n.gateway6 = Some("10.0.0.1".into()),
            "not an IPv6 address",
        );
        check_refused(r, |n| n.gateways = s(&["nope"]), "not an IP address");
        check_refused(
            r,
            |n| n.ip_range = Some("10.1.0.0/26".into()),
            "needs an IPv4 --subnet",
        );
        check_refused(
            r,
            |n| {
                n.subnets = s(&["10.1.0.0/24"]);
                n.ip_range = Some("10.2.0.0/26".into());
            },
            "is not inside subnet",
        );
        check_refused(
            r,
            |n| {
                n.subnets = s(&["10.1.0.0/24"]);
                n.ip_range = Some("fd89:2::/64".into());
            },
            "is an IPv6 subnet, not IPv4",
        );
        check_refused(r, |n| n.options = s(&["foo=1"]), "unknown option");
        check_refused(r, |n| n.options = s(&["mtu"]), "expected KEY=VALUE");
        check_refused(r, |n| n.options = s(&["mtu=big"]), "not a number");
        check_refused(r, |n| n.options = s(&["mtu=10"]), "mtu 10 is outside");
    }
}
