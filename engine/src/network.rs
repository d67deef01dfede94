//! Bridge networks as the engine asks berth-netd for them. Each is a netd
//! `NetworkConfig` in `<root>/networks/<name>.json` (written by `berth
//! network create`, whole, by rename). The default network `berth` (bridge
//! `berth0`, 10.89.0.0/24, as podman's `podman` network) needs no file; a
//! file of that name overrides it where the host needs another bridge or
//! subnet. A container's request goes to its run dir; the monitor runs
//! berth-netd with it.

use std::path::Path;

use berth_netd::wire::{Attachment, NetworkConfig, Request, Subnet};

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
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub bridge: Option<String>,
    pub internal: bool,
    /// DNS for the network's containers (docker's default on user networks).
    pub dns: bool,
}

/// Define a network: a free 10.89.N.0/24 and bridge `berthN` unless given.
pub fn create(root: &Path, n: &NewNetwork) -> Result<NetworkConfig> {
    let bad = |r: String| EngineError::InvalidOption {
        option: "network create".into(),
        reason: r,
    };
    if !crate::host::valid_name(&n.name) || n.name.len() > 64 {
        return Err(EngineError::InvalidName(n.name.clone()));
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
    let subnet: Subnet = match &n.subnet {
        Some(s) => s.parse().map_err(|e| bad(format!("--subnet {s:?}: {e}")))?,
        None => {
            let i = free.ok_or_else(|| bad("no free 10.89.N.0/24 subnet".into()))?;
            format!("10.89.{i}.0/24").parse().expect("valid")
        }
    };
    if let Some(c) = existing.iter().find(|c| c.subnet.overlaps(&subnet)) {
        return Err(bad(format!("subnet {subnet} overlaps network {}", c.name)));
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
    let gateway = match &n.gateway {
        Some(g) => {
            let ip: std::net::Ipv4Addr = g
                .parse()
                .map_err(|_| bad(format!("--gateway {g:?} is not an IPv4 address")))?;
            if !subnet.contains_host(ip) {
                return Err(bad(format!(
                    "--gateway {ip} is not a host address of {subnet}"
                )));
            }
            Some(ip)
        }
        None => None,
    };
    let cfg = NetworkConfig {
        name: n.name.clone(),
        bridge,
        subnet,
        gateway,
        internal: n.internal,
        mtu: None,
        dns_enabled: n.dns,
        ip_range: None,
        subnet6: None,
        gateway6: None,
    };
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

/// Write the netd request for `rec` into `run_dir`.
pub fn write_request(root: &Path, rec: &ContainerRecord, run_dir: &Path) -> Result<()> {
    let req = Request {
        container_id: rec.id.clone(),
        container_name: rec.name.clone(),
        networks: vec![Attachment {
            network: get(
                root,
                rec.options
                    .network_name
                    .as_deref()
                    .unwrap_or(DEFAULT_NETWORK),
            )?,
            interface_name: Some("eth0".into()),
            static_ip: None,
            static_ip6: None,
            aliases: Vec::new(),
        }],
        port_mappings: rec.options.publish.clone(),
        dns_servers: None,
    };
    let path = run_dir.join(crate::layout::NETD_REQUEST);
    let json = serde_json::to_vec_pretty(&req).expect("a request serializes");
    std::fs::write(&path, json).map_err(io("write", &path))
}

impl crate::engine::Engine {
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
        .filter(|r| {
            r.options.network == crate::options::NetworkMode::Bridge
                && r.options.network_name.as_deref().unwrap_or(DEFAULT_NETWORK) == name
        })
        .map(|r| r.name.clone())
        .collect()
}
