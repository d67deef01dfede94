//! User-mode networking by pasta (Debian `passt`), for rootless engines:
//! no bridge, veth or nftables (a user without privileges has none of
//! them); pasta, started by `setup` in the host's network namespace,
//! gives the container's netns an `eth0` with the host's address and
//! gateway and carries its traffic through ordinary host sockets.
//! Published ports become pasta's forwards (`-t`/`-u`): pasta listens on
//! the host port and connects inside the netns.
//!
//! State: one pasta per container, its pid in `<state>/pasta/<id>.pid`
//! (written by pasta itself, under the state lock). `teardown` stops that
//! process and no other: it checks the pid is still a pasta first.

use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::netns::Netns;
use crate::state::LockedState;
use crate::wire::{InterfaceResult, PortMapping, Protocol, Request, SetupResult, TeardownResult};
use crate::{Error, Options};

/// The interface pasta makes in the netns.
pub const IFNAME: &str = "eth0";
/// The network name results report for it.
pub const NETWORK: &str = "pasta";

fn pid_file(opts: &Options, id: &str) -> PathBuf {
    opts.state_dir.join("pasta").join(format!("{id}.pid"))
}

/// A bind mount of the container's netns for pasta to open: pasta drops
/// its capabilities before it opens the path, and may then not open
/// `/proc/PID/ns/net` of a process that kept them (ptrace access rules).
fn netns_file(opts: &Options, id: &str) -> PathBuf {
    opts.state_dir.join("pasta").join(format!("{id}.netns"))
}

fn bind_netns(from: &Path, to: &Path) -> Result<(), Error> {
    let err = |source: io::Error| Error::OpenNetns {
        path: from.to_path_buf(),
        source,
    };
    std::fs::File::create(to).map_err(err)?;
    nix::mount::mount(
        Some(from),
        to,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| err(io::Error::from(e)))
}

fn unbind_netns(file: &Path) {
    let _ = nix::mount::umount2(file, nix::mount::MntFlags::MNT_DETACH);
    let _ = std::fs::remove_file(file);
}

/// Whether container `id` has a pasta recorded (its teardown is ours).
pub(crate) fn is_set_up(opts: &Options, id: &str) -> bool {
    valid_id(id) && pid_file(opts, id).exists()
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('.')
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The request on its own: an id fit for a file name, no bridge networks,
/// sound port mappings.
pub(crate) fn check(req: &Request) -> Result<(), Error> {
    if req.container_id.is_empty() {
        return Err(Error::EmptyContainerId);
    }
    if !valid_id(&req.container_id) {
        return Err(Error::BadContainerId(req.container_id.clone()));
    }
    if !req.networks.is_empty() {
        return Err(Error::PastaWithNetworks);
    }
    crate::plan::check_ports(&req.port_mappings)
}

/// Start pasta for the netns at `netns_path`; the interface it made.
pub fn setup(netns_path: &Path, req: &Request, opts: &Options) -> Result<SetupResult, Error> {
    let cfg = req.pasta.clone().unwrap_or_default();
    check(req)?;
    let netns = Netns::open(netns_path)?;
    let gateway = host_gateway()?;
    let _held = LockedState::lock(&opts.state_dir)?;
    let dir = opts.state_dir.join("pasta");
    std::fs::create_dir_all(&dir).map_err(|source| Error::StateDir {
        path: dir.clone(),
        source,
    })?;
    let pid_path = pid_file(opts, &req.container_id);
    if running_pasta(&pid_path).is_some() {
        return Err(Error::AlreadySetUp(req.container_id.clone()));
    }
    let _ = std::fs::remove_file(&pid_path);
    let ns_file = netns_file(opts, &req.container_id);
    unbind_netns(&ns_file);
    bind_netns(netns_path, &ns_file)?;
    let binary = cfg.binary.clone().unwrap_or_else(|| PathBuf::from("pasta"));
    let mut cmd = Command::new(&binary);
    cmd.args(["--config-net", "--quiet", "--ns-ifname", IFNAME])
        .arg("--gateway")
        .arg(gateway.to_string())
        .arg("--netns")
        .arg(&ns_file)
        .arg("--pid")
        .arg(&pid_path)
        // Nothing from the container's loopback to the host's.
        .args(["-T", "none", "-U", "none"]);
    if !cfg.map_gw {
        cmd.arg("--no-map-gw");
    }
    for proto in [Protocol::Tcp, Protocol::Udp] {
        let flag = if proto == Protocol::Tcp { "-t" } else { "-u" };
        let specs: Vec<String> = (req.port_mappings.iter())
            .filter(|p| p.protocol == proto)
            .map(forward_spec)
            .collect();
        if specs.is_empty() {
            cmd.args([flag, "none"]);
        }
        for s in specs {
            cmd.args([flag, &s]);
        }
    }
    let out = cmd.output().map_err(|source| {
        unbind_netns(&ns_file);
        Error::PastaSpawn {
            binary: binary.display().to_string(),
            source,
        }
    })?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&pid_path);
        unbind_netns(&ns_file);
        return Err(Error::PastaFailed {
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    match interface(&netns, gateway) {
        Ok(iface) => Ok(SetupResult {
            container_id: req.container_id.clone(),
            interfaces: vec![iface],
            dns_servers: (req.dns_servers.clone()).unwrap_or_else(crate::dns::host_resolvers),
            port_mappings: req.port_mappings.clone(),
        }),
        Err(e) => {
            let _ = stop(&pid_path);
            unbind_netns(&ns_file);
            Err(e)
        }
    }
}

/// Stop container `id`'s pasta (the netns may be gone already).
pub fn teardown(req: &Request, opts: &Options) -> Result<TeardownResult, Error> {
    let _held = LockedState::lock(&opts.state_dir)?;
    let stopped = stop(&pid_file(opts, &req.container_id));
    unbind_netns(&netns_file(opts, &req.container_id));
    stopped?;
    Ok(TeardownResult {
        container_id: req.container_id.clone(),
        removed_interfaces: Vec::new(),
        removed_bridges: Vec::new(),
    })
}

/// pasta's `[ADDR/]HOST[-END]:CTR[-END]`.
fn forward_spec(p: &PortMapping) -> String {
    let range = |start: u16| {
        if p.range > 1 {
            format!("{start}-{}", u32::from(start) + u32::from(p.range) - 1)
        } else {
            start.to_string()
        }
    };
    let addr = p.host_ip.map(|ip| format!("{ip}/")).unwrap_or_default();
    format!("{addr}{}:{}", range(p.host_port), range(p.container_port))
}

/// The host's default IPv4 gateway (`/proc/net/route` of netd's own netns,
/// the host's): pasta copies it, and the result reports it.
fn host_gateway() -> Result<Ipv4Addr, Error> {
    let table = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    parse_default_gateway(&table).ok_or_else(|| Error::PastaFailed {
        status: "not started".into(),
        stderr: "the host has no default IPv4 route for pasta to copy".into(),
    })
}

fn parse_default_gateway(table: &str) -> Option<Ipv4Addr> {
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (dest, gw) = (f.get(1)?, f.get(2)?);
        if *dest != "00000000" {
            return None;
        }
        // Little-endian hex, as the kernel prints it.
        let n = u32::from_str_radix(gw, 16).ok()?;
        Some(Ipv4Addr::from(n.swap_bytes()))
    })
}

/// `eth0` as pasta configured it.
fn interface(netns: &Netns, gateway: Ipv4Addr) -> Result<InterfaceResult, Error> {
    let mut nl = netns.netlink()?;
    let lookup = |source: io::Error| Error::LookupLink {
        name: IFNAME.into(),
        source,
    };
    let link = (nl.link_by_name(IFNAME).map_err(lookup)?).ok_or(Error::LinkVanished {
        name: IFNAME.into(),
    })?;
    let addr = (nl.addrs().map_err(lookup)?)
        .into_iter()
        .find(|a| a.index == link.index)
        .ok_or(Error::LinkVanished {
            name: IFNAME.into(),
        })?;
    let addr6 = (nl.addrs6().map_err(lookup)?)
        .into_iter()
        .find(|a| a.index == link.index && !a.link_local());
    Ok(InterfaceResult {
        network: NETWORK.into(),
        name: IFNAME.into(),
        host_interface: String::new(),
        mac_address: link
            .mac
            .map(|m| crate::netlink::format_mac(&m))
            .unwrap_or_default(),
        address: format!("{}/{}", addr.ip, addr.prefix),
        gateway,
        default_route: true,
        address6: addr6.map(|a| format!("{}/{}", a.ip, a.prefix)),
        gateway6: None,
        default_route6: false,
    })
}

/// The pid in `pid_path` if that process is still a pasta.
fn running_pasta(pid_path: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pid_path)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    matches!(comm.trim(), "pasta" | "passt" | "pasta.avx2" | "passt.avx2").then_some(pid)
}

/// SIGTERM the recorded pasta, SIGKILL after 2 s; the pid file goes.
fn stop(pid_path: &Path) -> Result<(), Error> {
    if let Some(pid) = running_pasta(pid_path) {
        let p = Pid::from_raw(pid);
        let err = |e: nix::Error| Error::PastaStop {
            pid,
            source: io::Error::from(e),
        };
        match kill(p, Signal::SIGTERM) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => return Err(err(e)),
        }
        let start = Instant::now();
        while running_pasta(pid_path) == Some(pid) {
            if start.elapsed() > Duration::from_secs(2) {
                let _ = kill(p, Signal::SIGKILL);
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    match std::fs::remove_file(pid_path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::WriteState {
            path: pid_path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_specs_are_pastas() {
        let p: PortMapping = "8080:80".parse().expect("spec");
        assert_eq!(forward_spec(&p), "8080:80");
        let p: PortMapping = "127.0.0.1:8000-8002:90-92/udp".parse().expect("spec");
        assert_eq!(forward_spec(&p), "127.0.0.1/8000-8002:90-92");
    }

    #[test]
    fn default_gateway_from_the_route_table() {
        let t = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n\
                 eth0\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\n\
                 eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\n";
        assert_eq!(parse_default_gateway(t), Some(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(parse_default_gateway("Iface\n"), None);
    }

    #[test]
    fn ids_are_file_names() {
        assert!(valid_id("abc-1.x_2"));
        for bad in ["", ".hidden", "a/b", "../x", "a b"] {
            assert!(!valid_id(bad), "{bad:?}");
        }
    }
}
