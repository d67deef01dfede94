//! What a container is created with (docker's `run` options, parsed).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};

/// Network mode: no network (own empty netns), the host's, or the default
/// bridge network (`berth`, attached by berth-netd).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetworkMode {
    #[default]
    None,
    Host,
    Bridge,
    /// `container:NAME|ID`: join that running container's network
    /// namespace (`network_container` holds its id).
    Container,
    /// User-mode networking by pasta (berth-netd starts one per
    /// container): what a rootless berth uses by default.
    Pasta,
}

impl std::str::FromStr for NetworkMode {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<NetworkMode> {
        match s {
            "none" => Ok(NetworkMode::None),
            "host" => Ok(NetworkMode::Host),
            "bridge" | crate::network::DEFAULT_NETWORK => Ok(NetworkMode::Bridge),
            "pasta" => Ok(NetworkMode::Pasta),
            "slirp4netns" => Err(invalid(
                "--network",
                "slirp4netns is not supported: use pasta (Debian's passt)".into(),
            )),
            _ => Err(invalid(
                "--network",
                format!(
                    "{s:?}: use none, host or bridge (user-defined networks are not supported yet)"
                ),
            )),
        }
    }
}

/// `--restart`: what the monitor does when the container exits. A
/// container stopped with `stop` (or removed) is never restarted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestartPolicy {
    #[default]
    No,
    Always,
    UnlessStopped,
    /// Restart after a non-zero exit, at most N times (0: no limit).
    OnFailure(u32),
}

impl std::str::FromStr for RestartPolicy {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<RestartPolicy> {
        let bad = |why: &str| invalid("--restart", format!("{s:?}: {why}"));
        match s.split_once(':') {
            None => match s {
                "" | "no" => Ok(RestartPolicy::No),
                "always" => Ok(RestartPolicy::Always),
                "unless-stopped" => Ok(RestartPolicy::UnlessStopped),
                "on-failure" => Ok(RestartPolicy::OnFailure(0)),
                _ => Err(bad("use no, always, unless-stopped or on-failure[:MAX]")),
            },
            Some(("on-failure", n)) => n
                .parse()
                .map(RestartPolicy::OnFailure)
                .map_err(|_| bad("the maximum retry count must be a number")),
            Some(_) => Err(bad("only on-failure takes a maximum retry count")),
        }
    }
}

impl RestartPolicy {
    /// docker's spelling (what `FromStr` reads back).
    pub fn as_arg(self) -> String {
        match self {
            RestartPolicy::No => "no".into(),
            RestartPolicy::Always => "always".into(),
            RestartPolicy::UnlessStopped => "unless-stopped".into(),
            RestartPolicy::OnFailure(0) => "on-failure".into(),
            RestartPolicy::OnFailure(n) => format!("on-failure:{n}"),
        }
    }

    /// Whether an exit with `code`, after `restarts` restarts so far,
    /// starts the container again.
    pub fn restarts_after(self, code: i32, restarts: u32) -> bool {
        match self {
            RestartPolicy::No => false,
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
            RestartPolicy::OnFailure(max) => code != 0 && (max == 0 || restarts < max),
        }
    }
}

/// A bind mount (`-v /src:/dst[:ro]`) or a named volume (`-v NAME:/dst`,
/// whose `source` the engine fills in at create).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindMount {
    pub source: PathBuf,
    pub destination: String,
    pub readonly: bool,
    #[serde(default)]
    pub volume: Option<String>,
    /// A volume made for this container alone (`-v /dst`, `--mount
    /// type=volume` without a source, the image's VOLUME): removed with it
    /// by `rm -v` and by `--rm`.
    #[serde(default)]
    pub anonymous: bool,
}

impl BindMount {
    /// An anonymous volume at `dst`.
    pub fn anonymous(dst: &str, readonly: bool) -> Result<BindMount> {
        check_destination("-v", dst, dst)?;
        Ok(BindMount {
            source: PathBuf::new(),
            destination: dst.to_string(),
            readonly,
            volume: Some(crate::host::random_id()?),
            anonymous: true,
        })
    }

    /// Parse docker's `-v SRC:DST[:ro|rw]` (SRC an absolute path or a
    /// volume name) or `-v DST` (an anonymous volume).
    pub fn parse(spec: &str) -> Result<BindMount> {
        let parts: Vec<&str> = spec.split(':').collect();
        if let [dst] = parts.as_slice() {
            return BindMount::anonymous(dst, false);
        }
        let (src, dst, mode) = match parts.as_slice() {
            [s, d] => (*s, *d, ""),
            [s, d, m] => (*s, *d, *m),
            _ => return Err(invalid("-v", format!("{spec:?}: expected SRC:DST[:ro]"))),
        };
        let volume = if src.starts_with('/') {
            None
        } else if crate::host::valid_name(src) {
            Some(src.to_string())
        } else {
            return Err(invalid(
                "-v",
                format!("{spec:?}: SRC must be an absolute path or a volume name"),
            ));
        };
        check_destination("-v", spec, dst)?;
        let readonly = match mode {
            "" | "rw" => false,
            "ro" => true,
            m => return Err(invalid("-v", format!("{spec:?}: unknown mode {m:?}"))),
        };
        Ok(BindMount {
            source: if volume.is_some() {
                PathBuf::new()
            } else {
                src.into()
            },
            destination: dst.to_string(),
            readonly,
            volume,
            anonymous: false,
        })
    }
}

fn check_destination(option: &str, spec: &str, dst: &str) -> Result<()> {
    if !dst.starts_with('/') || dst == "/" || dst.split('/').any(|c| c == "..") {
        return Err(invalid(
            option,
            format!("{spec:?}: the destination must be an absolute path below / without .."),
        ));
    }
    Ok(())
}

/// Options for a new container. Empty/None means "the image's, or docker's
/// default".
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RunOptions {
    pub name: Option<String>,
    /// `K=V` (or `K`, taken from the caller's environment by the CLI).
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    /// `Some("")` clears the image's entrypoint.
    pub entrypoint: Option<String>,
    pub cmd: Vec<String>,
    pub mounts: Vec<BindMount>,
    pub read_only: bool,
    pub memory: Option<i64>,
    pub pids_limit: Option<i64>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub hostname: Option<String>,
    pub network: NetworkMode,
    pub auto_remove: bool,
    /// `--restart`.
    pub restart: RestartPolicy,
    /// `--log-driver json-file|k8s-file`, `--log-opt max-size=…,max-file=…`.
    pub log: crate::logs::LogConfig,
    /// `--init`: a small init runs as PID 1 and the command under it; the
    /// init's path (`--init-path`, resolved at create).
    pub init: bool,
    pub init_path: Option<String>,
    /// `-t`: the container's stdio is a pty.
    pub tty: bool,
    /// `-i`: the container's stdin stays open for attached clients.
    pub interactive: bool,
    /// Runtime name or path; `None` is berth-runtime.
    pub runtime: Option<String>,
    /// `--security-opt seccomp=…` (`--privileged` means unconfined).
    pub seccomp: crate::seccomp::Seccomp,
    /// `--security-opt no-new-privileges`.
    pub no_new_privileges: bool,
    /// `--label K=V`.
    pub labels: std::collections::BTreeMap<String, String>,
    /// The bridge network's name (`None`: the default network).
    pub network_name: Option<String>,
    /// `--tmpfs PATH[:OPTIONS]`: (destination, mount options).
    pub tmpfs: Vec<(String, Vec<String>)>,
    /// `--ulimit NAME=SOFT[:HARD]`: (RLIMIT_NAME, soft, hard).
    pub ulimits: Vec<(String, u64, u64)>,
    /// `--cpus N`: CFS quota in µs per 100 ms period.
    pub cpu_quota: Option<i64>,
    /// `--stop-signal` (default TERM) and `--stop-timeout` (default 10 s).
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<u64>,
    /// `-p [IP:]HOST:CTR[/proto]` (bridge network only).
    pub publish: Vec<berth_netd::wire::PortMapping>,
    /// `-P`: publish every exposed port on a free host port at start.
    pub publish_all: bool,
    /// Exposed ports, `PORT/tcp|udp`: the image's ExposedPorts and `--expose`.
    pub expose: Vec<String>,
    /// `--ip`: a static address on a user-defined network.
    pub ip: Option<std::net::Ipv4Addr>,
    /// `--network-alias`: more names the network's DNS answers for.
    pub aliases: Vec<String>,
    /// The container whose network namespace `--network container:…` joins.
    pub network_container: Option<String>,
    /// `--network pasta:--map-gw`: the gateway address reaches the host's
    /// loopback.
    pub pasta_map_gw: bool,
    /// The bridge networks, in order (eth0, eth1, …), once `network
    /// connect`/`disconnect` changed them; `None`: the one `--network`,
    /// `--ip` and `--network-alias` name (see [`RunOptions::endpoints`]).
    pub endpoints: Option<Vec<Endpoint>>,
}

/// One bridge network of a container, with its own settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Endpoint {
    pub network: String,
    /// A static IPv4 address (`--ip`).
    pub ip: Option<std::net::Ipv4Addr>,
    /// More names the network's DNS answers for (`--network-alias`,
    /// `--alias`).
    pub aliases: Vec<String>,
}

impl RunOptions {
    /// docker's `HostConfig.NetworkMode` for these options.
    pub fn network_mode_name(&self) -> String {
        match self.network {
            NetworkMode::None => "none".into(),
            NetworkMode::Host => "host".into(),
            NetworkMode::Pasta => "pasta".into(),
            NetworkMode::Bridge => (self.network_name.clone()).unwrap_or_else(|| "bridge".into()),
            NetworkMode::Container => {
                format!(
                    "container:{}",
                    self.network_container.as_deref().unwrap_or("")
                )
            }
        }
    }

    /// The bridge networks the container is attached to, in order: none
    /// unless its network mode is bridge.
    pub fn endpoints(&self) -> Vec<Endpoint> {
        if self.network != NetworkMode::Bridge {
            return Vec::new();
        }
        match &self.endpoints {
            Some(v) => v.clone(),
            None => vec![Endpoint {
                network: (self.network_name.clone())
                    .unwrap_or_else(|| crate::network::DEFAULT_NETWORK.into()),
                ip: self.ip,
                aliases: self.aliases.clone(),
            }],
        }
    }

    /// Apply docker's `--security-opt` values: `seccomp=unconfined`,
    /// `seccomp=PROFILE.json`, `no-new-privileges[=|:true|false]`. Others
    /// (AppArmor, SELinux labels) are refused: this engine does not set them.
    /// `--network none|host|bridge|NAME` (NAME: a network `berth network
    /// create` made; checked when the container is created).
    pub fn set_network(&mut self, v: &str) -> Result<()> {
        if let Some(opts) = v.strip_prefix("pasta:") {
            if opts.is_empty() {
                return Err(invalid(
                    "--network",
                    "pasta: needs an option after the colon (--map-gw or --no-map-gw)".into(),
                ));
            }
            for o in opts.split(',') {
                match o.trim_start_matches('-') {
                    "map-gw" => self.pasta_map_gw = true,
                    "no-map-gw" => self.pasta_map_gw = false,
                    other => {
                        return Err(invalid(
                            "--network",
                            format!("pasta option {other:?}: only --map-gw and --no-map-gw"),
                        ))
                    }
                }
            }
            self.network = NetworkMode::Pasta;
            self.network_name = None;
            return Ok(());
        }
        if let Some(c) = v.strip_prefix("container:") {
            if c.is_empty() {
                return Err(invalid("--network", "container: needs a container".into()));
            }
            self.network = NetworkMode::Container;
            self.network_container = Some(c.to_string());
            self.network_name = None;
            return Ok(());
        }
        match v.parse::<NetworkMode>() {
            Ok(m) => {
                self.network = m;
                self.network_name = None;
            }
            Err(e) if !crate::host::valid_name(v) => return Err(e),
            Err(_) => {
                self.network = NetworkMode::Bridge;
                self.network_name = Some(v.to_string());
            }
        }
        Ok(())
    }

    /// docker's `--mount type=bind|volume|tmpfs,source=…,target=…[,readonly]
    /// [,tmpfs-size=N][,tmpfs-mode=OCTAL]` (`src`, `dst`/`destination`,
    /// `ro` as aliases).
    pub fn mount(&mut self, spec: &str) -> Result<()> {
        let bad = |why: String| invalid("--mount", format!("{spec:?}: {why}"));
        let (mut typ, mut src, mut dst, mut ro) = ("volume", None, None, false);
        let mut tmpfs_opts: Vec<String> = Vec::new();
        for field in spec.split(',') {
            let (k, v) = match field.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (field, None),
            };
            match (k, v) {
                ("type", Some(t)) => typ = t,
                ("source" | "src", Some(v)) => src = Some(v),
                ("target" | "destination" | "dst", Some(v)) => dst = Some(v),
                ("readonly" | "ro", None | Some("true" | "1")) => ro = true,
                ("readonly" | "ro", Some("false" | "0")) => ro = false,
                ("tmpfs-size", Some(v)) => {
                    let n = parse_size(v).map_err(|_| bad(format!("bad tmpfs-size {v:?}")))?;
                    tmpfs_opts.push(format!("size={n}"));
                }
                ("tmpfs-mode", Some(v)) if u32::from_str_radix(v, 8).is_ok() => {
                    tmpfs_opts.push(format!("mode={v}"))
                }
                ("bind-propagation", Some("rprivate" | "private")) => {}
                _ => return Err(bad(format!("unknown or malformed field {field:?}"))),
            }
        }
        let dst = dst.ok_or_else(|| bad("target is required".into()))?;
        check_destination("--mount", spec, dst)?;
        match typ {
            "bind" => {
                let src = src.ok_or_else(|| bad("a bind mount needs a source".into()))?;
                if !src.starts_with('/') {
                    return Err(bad("a bind source must be an absolute path".into()));
                }
                let m = format!("{src}:{dst}{}", if ro { ":ro" } else { "" });
                self.mounts.push(BindMount::parse(&m)?);
            }
            "volume" => match src {
                None | Some("") => self.mounts.push(BindMount::anonymous(dst, ro)?),
                Some(v) if crate::host::valid_name(v) => {
                    let m = format!("{v}:{dst}{}", if ro { ":ro" } else { "" });
                    self.mounts.push(BindMount::parse(&m)?);
                }
                Some(v) => return Err(bad(format!("{v:?} is not a volume name"))),
            },
            "tmpfs" => {
                if src.is_some() {
                    return Err(bad("a tmpfs has no source".into()));
                }
                if ro {
                    tmpfs_opts.push("ro".into());
                }
                self.tmpfs(&[format!("{dst}:{}", tmpfs_opts.join(","))])?;
            }
            t => {
                return Err(bad(format!(
                    "unknown type {t:?}: use bind, volume or tmpfs"
                )))
            }
        }
        Ok(())
    }

    /// `--log-driver` and docker's `--log-opt max-size=SIZE`, `max-file=N`.
    pub fn log_options(&mut self, driver: Option<&str>, opts: &[String]) -> Result<()> {
        if let Some(d) = driver {
            self.log.driver = d.parse().map_err(|e| invalid("--log-driver", e))?;
        }
        for o in opts {
            let bad = |why: &str| invalid("--log-opt", format!("{o:?}: {why}"));
            match o.split_once('=') {
                Some(("max-size", v)) => {
                    let n = parse_size(v).map_err(|_| bad("max-size is a size, e.g. 10m"))?;
                    if n <= 0 {
                        return Err(bad("max-size must be positive"));
                    }
                    self.log.max_size = Some(n as u64);
                }
                Some(("max-file", v)) => match v.parse::<u32>() {
                    Ok(n) if (1..=64).contains(&n) => self.log.max_files = Some(n),
                    _ => return Err(bad("max-file is a number from 1 to 64")),
                },
                _ => return Err(bad("use max-size=SIZE or max-file=N")),
            }
        }
        if self.log.max_files.is_some() && self.log.max_size.is_none() {
            return Err(invalid("--log-opt", "max-file needs max-size".into()));
        }
        Ok(())
    }

    /// `--tmpfs /dst[:opt,opt]` (docker's defaults: nosuid, nodev, noexec).
    pub fn tmpfs(&mut self, specs: &[String]) -> Result<()> {
        for t in specs {
            let (dst, opts) = t.split_once(':').unwrap_or((t, ""));
            if !dst.starts_with('/') || dst == "/" {
                return Err(invalid(
                    "--tmpfs",
                    format!("{t:?}: the destination must be an absolute path below /"),
                ));
            }
            let mut o: Vec<String> = ["nosuid", "nodev", "noexec"].map(String::from).to_vec();
            o.extend(opts.split(',').filter(|x| !x.is_empty()).map(String::from));
            self.tmpfs.push((dst.to_string(), o));
        }
        Ok(())
    }

    /// `--ulimit nofile=1024[:2048]` (hard defaults to soft).
    pub fn ulimits(&mut self, specs: &[String]) -> Result<()> {
        const NAMES: &[&str] = &[
            "as",
            "core",
            "cpu",
            "data",
            "fsize",
            "locks",
            "memlock",
            "msgqueue",
            "nice",
            "nofile",
            "nproc",
            "rss",
            "rtprio",
            "rttime",
            "sigpending",
            "stack",
        ];
        for u in specs {
            let bad = |r: &str| invalid("--ulimit", format!("{u:?}: {r}"));
            let (name, vals) = u
                .split_once('=')
                .ok_or_else(|| bad("use NAME=SOFT[:HARD]"))?;
            if !NAMES.contains(&name) {
                return Err(bad("unknown limit name"));
            }
            let num = |v: &str| {
                if v == "-1" || v == "unlimited" {
                    Ok(u64::MAX)
                } else {
                    v.parse::<u64>().map_err(|_| bad("not a number"))
                }
            };
            let (soft, hard) = match vals.split_once(':') {
                Some((a, b)) => (num(a)?, num(b)?),
                None => (num(vals)?, num(vals)?),
            };
            if soft > hard {
                return Err(bad("the soft limit is above the hard one"));
            }
            self.ulimits
                .push((format!("RLIMIT_{}", name.to_ascii_uppercase()), soft, hard));
        }
        Ok(())
    }

    /// `--stop-signal TERM|SIGTERM|15`.
    pub fn stop_signal(&mut self, v: &str) -> Result<()> {
        let name = v.trim_start_matches("SIG").to_ascii_uppercase();
        let ok = match name.parse::<i32>() {
            Ok(n) => (1..=64).contains(&n),
            Err(_) => format!("SIG{name}")
                .parse::<nix::sys::signal::Signal>()
                .is_ok(),
        };
        if !ok {
            return Err(invalid("--stop-signal", format!("{v:?} is not a signal")));
        }
        self.stop_signal = Some(name);
        Ok(())
    }

    /// `--cpus 1.5`: 150000 µs of CPU per 100000 µs period.
    pub fn cpus(&mut self, v: &str) -> Result<()> {
        let n: f64 = v
            .parse()
            .ok()
            .filter(|n: &f64| n.is_finite() && *n > 0.0)
            .ok_or_else(|| invalid("--cpus", format!("{v:?} is not a positive number")))?;
        self.cpu_quota = Some(((n * 100_000.0).round() as i64).max(1000));
        Ok(())
    }

    /// docker's `-p [IP:]HOST[-END]:CTR[-END][/tcp|udp]`.
    /// `--expose PORT[-END][/tcp|udp]`.
    pub fn expose(&mut self, specs: &[String]) -> Result<()> {
        for e in specs {
            let bad = || invalid("--expose", format!("{e:?}: use PORT[-END][/tcp|udp]"));
            let (ports, proto) = e.split_once('/').unwrap_or((e, "tcp"));
            if proto != "tcp" && proto != "udp" {
                return Err(bad());
            }
            let (a, b) = ports.split_once('-').unwrap_or((ports, ports));
            let (a, b): (u16, u16) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
            if a == 0 || b < a {
                return Err(bad());
            }
            for p in a..=b {
                let key = format!("{p}/{proto}");
                if !self.expose.contains(&key) {
                    self.expose.push(key);
                }
            }
        }
        Ok(())
    }

    /// Checks of the network options against each other (docker's rules).
    pub fn check_network(&self) -> Result<()> {
        let bridge = self.network == NetworkMode::Bridge;
        if bridge && crate::rootless::active() {
            return Err(invalid(
                "--network",
                "rootless: bridge networks need root (use pasta, none or host)".into(),
            ));
        }
        if self.network == NetworkMode::Pasta && !crate::rootless::active() {
            return Err(invalid(
                "--network",
                "pasta is user-mode networking for a rootless berth; as root use a bridge network"
                    .into(),
            ));
        }
        let forwards = bridge || self.network == NetworkMode::Pasta;
        if (!self.publish.is_empty() || self.publish_all) && !forwards {
            return Err(invalid(
                "-p",
                "publishing ports needs a bridge network or pasta".into(),
            ));
        }
        if self.ip.is_some() && self.network_name.is_none() {
            return Err(invalid(
                "--ip",
                "a static address needs a user-defined network (--network NAME)".into(),
            ));
        }
        if !self.aliases.is_empty() && !bridge {
            return Err(invalid(
                "--network-alias",
                "aliases need a bridge network".into(),
            ));
        }
        for a in &self.aliases {
            if !crate::host::valid_name(a) {
                return Err(invalid(
                    "--network-alias",
                    format!("{a:?} is not a valid name"),
                ));
            }
        }
        if self.network == NetworkMode::Container && self.hostname.is_some() {
            return Err(invalid(
                "--hostname",
                "conflicts with --network container: (the network's owner names it)".into(),
            ));
        }
        Ok(())
    }

    pub fn publish(&mut self, specs: &[String]) -> Result<()> {
        for p in specs {
            let m = p
                .parse::<berth_netd::wire::PortMapping>()
                .map_err(|e| invalid("-p", format!("{p:?}: {e}")))?;
            self.publish.push(m);
        }
        Ok(())
    }

    pub fn security_opts(&mut self, opts: &[String]) -> Result<()> {
        for o in opts {
            let (k, v) = o
                .split_once(['=', ':'])
                .map_or((o.as_str(), None), |(k, v)| (k, Some(v)));
            match (k, v) {
                ("seccomp", Some("unconfined")) => self.seccomp = crate::seccomp::Seccomp::Unconfined,
                ("seccomp", Some(p)) if !p.is_empty() => {
                    self.seccomp = crate::seccomp::Seccomp::File(p.into())
                }
                ("no-new-privileges", None | Some("true")) => self.no_new_privileges = true,
                ("no-new-privileges", Some("false")) => self.no_new_privileges = false,
                _ => {
                    return Err(invalid(
                        "--security-opt",
                        format!("{o:?} is not supported (seccomp=unconfined|FILE, no-new-privileges[=true|false])"),
                    ))
                }
            }
        }
        Ok(())
    }
}

pub(crate) fn invalid(option: &str, reason: String) -> EngineError {
    EngineError::InvalidOption {
        option: option.to_string(),
        reason,
    }
}

/// docker's memory sizes: `512`, `64k`, `128m`, `1g` (binary units).
pub fn parse_size(s: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    num.parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|&n| n > 0)
        .ok_or_else(|| invalid("--memory", format!("{s:?} is not a size")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        for (s, v) in [
            ("512", 512),
            ("64k", 65536),
            ("128m", 128 << 20),
            ("1g", 1 << 30),
            ("2MB", 2 << 20),
        ] {
            assert_eq!(parse_size(s).unwrap(), v, "{s}");
        }
        for bad in ["", "x", "-1", "1t"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn endpoints_of_old_and_new_records() {
        // A record written before `network connect` existed: its one network.
        let old: RunOptions = serde_json::from_str(
            r#"{"network":"Bridge","network_name":"app","ip":"10.1.0.9","aliases":["db"]}"#,
        )
        .unwrap();
        assert_eq!(old.endpoints, None);
        assert_eq!(
            old.endpoints(),
            [Endpoint {
                network: "app".into(),
                ip: Some(std::net::Ipv4Addr::new(10, 1, 0, 9)),
                aliases: vec!["db".into()],
            }]
        );
        let mut o = RunOptions::default();
        o.set_network("bridge").unwrap();
        assert_eq!(o.endpoints()[0].network, crate::network::DEFAULT_NETWORK);
        // Disconnected from everything: none, and not the --network one.
        o.endpoints = Some(Vec::new());
        assert!(o.endpoints().is_empty());
        let back: RunOptions = serde_json::from_str(&serde_json::to_string(&o).unwrap()).unwrap();
        assert_eq!(back.endpoints, Some(Vec::new()));
        o.set_network("none").unwrap();
        assert!(o.endpoints().is_empty(), "no bridge, no networks");
    }

    #[test]
    fn pasta_options() {
        let mut o = RunOptions::default();
        o.set_network("pasta:--map-gw").unwrap();
        assert!(matches!(o.network, NetworkMode::Pasta) && o.pasta_map_gw);
        o.set_network("pasta:--no-map-gw").unwrap();
        assert!(!o.pasta_map_gw);
        for (bad, says) in [
            ("pasta:", "needs an option after the colon"),
            ("pasta:--mtu=1500", "only --map-gw and --no-map-gw"),
        ] {
            let e = o.set_network(bad).unwrap_err().to_string();
            assert!(e.contains(says) && !e.contains('\n'), "{bad}: {e}");
        }
    }

    #[test]
    fn volumes() {
        let m = BindMount::parse("/a:/b:ro").unwrap();
        assert_eq!(
            (
                m.source.to_str().unwrap(),
                m.destination.as_str(),
                m.readonly
            ),
            ("/a", "/b", true)
        );
        assert!(!BindMount::parse("/a:/b").unwrap().readonly);
        let v = BindMount::parse("vol:/b").unwrap();
        assert_eq!(v.volume.as_deref(), Some("vol"), "a name is a named volume");
        assert!(!v.anonymous);
        let a = BindMount::parse("/a").unwrap();
        assert!(a.anonymous, "DST alone is an anonymous volume");
        assert_eq!(a.volume.as_ref().map(String::len), Some(64));
        for bad in [
            "bad/vol:/b",
            ".vol:/b",
            "/a:b",
            "a",
            "/",
            "/a:/b:xx",
            "/a:/../b",
        ] {
            assert!(BindMount::parse(bad).is_err(), "{bad}");
        }
    }
}
