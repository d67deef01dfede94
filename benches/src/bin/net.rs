//! `cargo xtask bench net`: berth-netd side by side with its floors and
//! with netavark, in one run:
//!
//! 1. TCP throughput (iperf3, one stream) between two network namespaces
//!    attached by `berth-netd setup` to one bridge network, vs a bare veth
//!    pair between two namespaces (the floor: no bridge, no netfilter).
//! 2. A published port (DNAT) from the host, to `127.0.0.1:PORT` and to
//!    `GATEWAY:PORT`, vs the same client to the container's address.
//! 3. `setup` + `teardown` of one container (bridge network, one published
//!    port) by berth-netd vs netavark 1.4 given the equivalent request
//!    (its firewall driver: iptables, through iptables-nft on Debian).
//!
//! Rounds are interleaved; medians, means and ratios; nothing is asserted.
//! Only loopback and addresses of namespaces made here are contacted.
//! Every namespace, bridge, nft table, config dir and iperf3 server made
//! here is removed at the end, also on failure or SIGINT/SIGTERM (the
//! [`net_host::Guard`]); the chains netavark's iptables driver leaves
//! behind and `net.ipv4.ip_forward` (which netavark sets) are restored.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use berth_benches::net_host::{self, Guard, NetavarkSetup};
use berth_benches::*;
use serde_json::{json, Value};

/// The iperf3 server port inside the namespaces.
const IPERF_PORT: u16 = 5201;

struct Bins {
    netd: PathBuf,
    netavark: Option<PathBuf>,
}

/// berth-netd's state dir and nft table for one part of the bench.
struct Netd {
    bin: PathBuf,
    state: PathBuf,
    table: String,
}

impl Netd {
    /// Run `cmd` with `req` on stdin; the answer and the wall time of the
    /// whole invocation.
    fn call(&self, cmd: &str, netns: &Path, req: &Value) -> Result<(Value, Duration)> {
        let mut c = Command::new(&self.bin);
        c.arg("--state-dir")
            .arg(&self.state)
            .args(["--nft-table", &self.table, cmd, "--netns"])
            .arg(netns);
        let (out, d) = run_stdin(c, &req.to_string())?;
        let v = serde_json::from_str(&out).with_context(|| format!("berth-netd {cmd}: {out}"))?;
        Ok((v, d))
    }
}

/// Spawn `c`, write `input` to its stdin, wait; stdout and the wall time
/// from spawn to exit. Fails (with stdout and stderr) on a non-zero exit.
fn run_stdin(mut c: Command, input: &str) -> Result<(String, Duration)> {
    use std::io::Write;
    let desc = format!("{c:?}");
    let t = Instant::now();
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| desc.clone())?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .with_context(|| format!("{desc}: write stdin"))?;
    }
    let out = child.wait_with_output().with_context(|| desc.clone())?;
    let d = t.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "{desc}: {}: {} {}",
            out.status,
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok((stdout, d))
}

/// A berth-netd request: one bridge network, optional static address and
/// published ports (`(host_ip, host_port, container_port)`).
fn netd_request(
    id: &str,
    bridge: &str,
    subnet: &str,
    static_ip: Option<Ipv4Addr>,
    ports: &[(Ipv4Addr, u16, u16)],
) -> Value {
    let mut attachment = json!({
        "network": {"name": format!("net-{bridge}"), "bridge": bridge, "subnet": subnet},
        "interface_name": "eth0",
    });
    if let Some(ip) = static_ip {
        attachment["static_ip"] = json!(ip.to_string());
    }
    let ports: Vec<Value> = ports
        .iter()
        .map(|(ip, h, c)| json!({"host_ip": ip.to_string(), "host_port": h, "container_port": c}))
        .collect();
    json!({"container_id": id, "container_name": id, "networks": [attachment], "port_mappings": ports})
}

/// The address berth-netd gave the first interface.
fn netd_address(setup: &Value) -> Result<Ipv4Addr> {
    let a = setup["interfaces"][0]["address"]
        .as_str()
        .with_context(|| format!("no address in berth-netd's answer {setup}"))?;
    let ip = a.split('/').next().unwrap_or(a);
    ip.parse()
        .with_context(|| format!("address {a:?} in berth-netd's answer"))
}

/// Run one iperf3 client (in `netns`, or in the host when `None`) against
/// `target:port`; the received throughput in Gbit/s.
fn iperf(netns: Option<&str>, target: Ipv4Addr, port: u16, secs: u32) -> Result<f64> {
    let mut c = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "iperf3"]);
            c
        }
        None => Command::new("iperf3"),
    };
    c.args(["-J", "--connect-timeout", "3000", "-O", "1", "-t"])
        .arg(secs.to_string())
        .arg("-c")
        .arg(target.to_string())
        .arg("-p")
        .arg(port.to_string());
    let desc = format!("{c:?}");
    let out = berth_testkit::output_within(&mut c, Duration::from_secs(u64::from(secs) + 30));
    if !out.success() {
        bail!("{desc}: {}", out.text().trim());
    }
    let v: Value =
        serde_json::from_str(&out.stdout).with_context(|| format!("{desc}: iperf3 -J output"))?;
    let bps = v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .with_context(|| format!("{desc}: no end.sum_received.bits_per_second"))?;
    Ok(bps / 1e9)
}

fn median_f(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn mean_f(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// One iperf3 path: the client's namespace (host when `None`) and target.
struct IperfPath {
    label: String,
    client: Option<String>,
    target: Ipv4Addr,
    port: u16,
}

fn throughput(g: &mut Guard, bins: &Bins, net: &net_host::Subnets, state: &Path) -> Result<()> {
    let pid = std::process::id();
    let netd = Netd {
        bin: bins.netd.clone(),
        state: state.to_path_buf(),
        table: g.nft_table(&format!("berth_nbt{pid}")),
    };
    let bridge = g.bridge(&format!("bnbt{pid:x}"));
    let (server, client) = (g.netns("srv")?, g.netns("cli")?);
    let subnet = net.subnet(0);
    let gateway = net.host(0, 1);

    // The client first: its setup creates the bridge and its address, so
    // that the server's mapping on the gateway address can be checked
    // (netd binds each host address and port before publishing it).
    let cli_req = netd_request(&format!("nbt-cli-{pid}"), &bridge, &subnet, None, &[]);
    netd.call("setup", &net_host::netns_path(&client), &cli_req)?;
    let (lo_port, gw_port) = (
        net_host::free_port(Ipv4Addr::LOCALHOST)?,
        net_host::free_port(gateway)?,
    );
    let srv_req = netd_request(
        &format!("nbt-srv-{pid}"),
        &bridge,
        &subnet,
        None,
        &[
            (Ipv4Addr::LOCALHOST, lo_port, IPERF_PORT),
            (gateway, gw_port, IPERF_PORT),
        ],
    );
    let (answer, _) = netd.call("setup", &net_host::netns_path(&server), &srv_req)?;
    let server_ip = netd_address(&answer)?;

    // The floor: a veth pair straight between two namespaces.
    let (floor_srv, floor_cli) = (g.netns("vsrv")?, g.netns("vcli")?);
    let floor_ip = net.host(1, 1);
    net_host::veth_pair(&floor_srv, &floor_cli, (floor_ip, net.host(1, 2)), 24)?;

    g.iperf_server(&server, IPERF_PORT)?;
    g.iperf_server(&floor_srv, IPERF_PORT)?;

    let paths = [
        IperfPath {
            label: "veth pair, netns -> netns (floor)".into(),
            client: Some(floor_cli.clone()),
            target: floor_ip,
            port: IPERF_PORT,
        },
        IperfPath {
            label: "berth-netd bridge, ctr -> ctr".into(),
            client: Some(client.clone()),
            target: server_ip,
            port: IPERF_PORT,
        },
        IperfPath {
            label: "host -> container address".into(),
            client: None,
            target: server_ip,
            port: IPERF_PORT,
        },
        IperfPath {
            label: format!("host -> 127.0.0.1:{lo_port}"),
            client: None,
            target: Ipv4Addr::LOCALHOST,
            port: lo_port,
        },
        IperfPath {
            label: format!("host -> {gateway}:{gw_port}"),
            client: None,
            target: gateway,
            port: gw_port,
        },
    ];
    // Many short rounds: the host is shared, and a median of interleaved
    // rounds holds up better than one long run.
    let rounds = iterations(10);
    let secs = if quick() { 1 } else { 2 };
    let mut gbps: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
    for _ in 0..rounds {
        for (k, p) in paths.iter().enumerate() {
            net_host::check_interrupted()?;
            gbps[k].push(iperf(p.client.as_deref(), p.target, p.port, secs)?);
        }
    }

    let header = |title: &str, base: &str| {
        println!(
            "\n## {title}\n   {rounds} interleaved rounds of {secs} s after 1 s of warm-up (iperf3, 1 TCP stream), Gbit/s"
        );
        println!(
            "{:<36} {:>7} {:>7} {:>13} {:>9}",
            "path", "median", "mean", "min - max", base
        );
    };
    let row = |k: usize, base: usize| {
        let v = &gbps[k];
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(0.0, f64::max);
        println!(
            "{:<36} {:>7.2} {:>7.2} {:>13} {:>8.2}x",
            paths[k].label,
            median_f(v),
            mean_f(v),
            format!("{min:.1} - {max:.1}"),
            median_f(v) / median_f(&gbps[base])
        );
    };
    header("container <-> container throughput", "vs veth");
    row(0, 0);
    row(1, 0);
    header(
        "published port (DNAT) vs the container's address, client in the host",
        "vs direct",
    );
    row(2, 2);
    row(3, 2);
    row(4, 2);

    // The normal way out; the guard deletes whatever this leaves.
    g.stop_servers();
    netd.call("teardown", &net_host::netns_path(&server), &srv_req)?;
    netd.call("teardown", &net_host::netns_path(&client), &cli_req)?;
    Ok(())
}

/// A netavark 1.4 request equivalent to [`netd_request`] with a static
/// address and one published port (netavark leaves IPAM to its caller).
fn netavark_request(
    id: &str,
    network: &str,
    bridge: &str,
    subnet: &str,
    gateway: Ipv4Addr,
    ip: Ipv4Addr,
    port: (Ipv4Addr, u16, u16),
) -> Value {
    // A network id is 64 hex digits in podman; netavark hashes it (or the
    // name) into its chain names.
    let net_id = format!("{:0>64}", format!("{:x}", std::process::id()));
    json!({
        "container_id": id,
        "container_name": id,
        "port_mappings": [{
            "host_ip": port.0.to_string(), "host_port": port.1, "container_port": port.2,
            "range": 1, "protocol": "tcp"
        }],
        "networks": {network: {"static_ips": [ip.to_string()], "aliases": [], "interface_name": "eth0"}},
        "network_info": {network: {
            "name": network, "id": net_id, "driver": "bridge", "network_interface": bridge,
            "created": "2026-12-01T00:00:00Z",
            "subnets": [{"subnet": subnet, "gateway": gateway.to_string()}],
            "ipv6_enabled": false, "internal": false, "dns_enabled": false,
            "ipam_options": {"driver": "host-local"}
        }}
    })
}

/// One setup + teardown; the time of each.
type Cycle = Box<dyn FnMut(&mut Guard) -> Result<(Duration, Duration)>>;

/// One tool of the latency comparison.
struct Tool {
    name: &'static str,
    cycle: Cycle,
}

fn latency(g: &mut Guard, bins: &Bins, net: &net_host::Subnets, dirs: &Path) -> Result<()> {
    let pid = std::process::id();
    let n = iterations(30);
    let mut tools: Vec<Tool> = Vec::new();

    // berth-netd: its own state dir, table, bridge, namespace.
    let netd_ns = g.netns("lat")?;
    let netd_state = dirs.join("netd-state");
    std::fs::create_dir(&netd_state)?;
    let netd = Netd {
        bin: bins.netd.clone(),
        state: netd_state,
        table: g.nft_table(&format!("berth_nbl{pid}")),
    };
    let netd_ip = net.host(2, 2);
    let netd_req = netd_request(
        &format!("nbl-{pid}"),
        &g.bridge(&format!("bnbl{pid:x}")),
        &net.subnet(2),
        Some(netd_ip),
        &[(
            Ipv4Addr::LOCALHOST,
            net_host::free_port(Ipv4Addr::LOCALHOST)?,
            80,
        )],
    );
    let netd_path = net_host::netns_path(&netd_ns);
    tools.push(Tool {
        name: "berth-netd",
        cycle: Box::new(move |_: &mut Guard| {
            let (answer, setup) = netd.call("setup", &netd_path, &netd_req)?;
            if netd_address(&answer)? != netd_ip {
                bail!("berth-netd set up {answer}, not {netd_ip}");
            }
            let (_, teardown) = netd.call("teardown", &netd_path, &netd_req)?;
            Ok((setup, teardown))
        }),
    });

    match &bins.netavark {
        None => println!(
            "\n(netavark not installed at {}: left out)",
            net_host::NETAVARK
        ),
        Some(bin) => {
            g.snapshot_firewall()?;
            let ns = g.netns("nv")?;
            let config = dirs.join("netavark-config");
            std::fs::create_dir(&config)?;
            let ip = net.host(3, 2);
            let req = netavark_request(
                &format!("nbv-{pid}"),
                &format!("nbv{pid}"),
                &g.bridge(&format!("bnbv{pid:x}")),
                &net.subnet(3),
                net.host(3, 1),
                ip,
                (
                    Ipv4Addr::LOCALHOST,
                    net_host::free_port(Ipv4Addr::LOCALHOST)?,
                    80,
                ),
            );
            let setup = NetavarkSetup {
                bin: bin.clone(),
                config,
                netns: net_host::netns_path(&ns),
                // 1.4's drivers are iptables (through iptables-nft on
                // Debian) and firewalld; nftables came in 1.10.
                firewall: "iptables",
                request: req.to_string(),
            };
            let expect = ip.to_string();
            tools.push(Tool {
                name: "netavark 1.4 (iptables)",
                cycle: Box::new(move |g: &mut Guard| {
                    g.netavark_pending(&setup);
                    let (answer, s) = run_stdin(setup.command("setup"), &setup.request)?;
                    if !answer.contains(&expect) {
                        bail!("netavark set up {answer}, not {expect}");
                    }
                    let (_, t) = run_stdin(setup.command("teardown"), &setup.request)?;
                    g.netavark_done(&setup);
                    Ok((s, t))
                }),
            });
        }
    }

    // One untimed cycle each (page cache, first nft/iptables table), then
    // interleaved timed ones.
    for t in &mut tools {
        (t.cycle)(g).with_context(|| format!("{}: warm-up cycle", t.name))?;
    }
    let mut setups: Vec<Vec<Duration>> = vec![Vec::new(); tools.len()];
    let mut teardowns: Vec<Vec<Duration>> = vec![Vec::new(); tools.len()];
    for _ in 0..n {
        for (k, t) in tools.iter_mut().enumerate() {
            net_host::check_interrupted()?;
            let (s, d) = (t.cycle)(g).with_context(|| t.name)?;
            setups[k].push(s);
            teardowns[k].push(d);
        }
    }

    println!(
        "\n## setup + teardown of one container (bridge network, one published port), {n} interleaved iterations"
    );
    println!(
        "{:<24} {:>9} {:>9} {:>9} {:>9} {:>12}",
        "tool", "mean ms", "median", "setup", "teardown", "vs berth-netd"
    );
    let totals: Vec<Vec<Duration>> = setups
        .iter()
        .zip(&teardowns)
        .map(|(s, t)| s.iter().zip(t).map(|(a, b)| *a + *b).collect())
        .collect();
    let mean = |v: &[Duration]| ms(v.iter().sum::<Duration>() / v.len().max(1) as u32);
    let base = median(&mut totals[0].clone());
    for (k, t) in tools.iter().enumerate() {
        let med = median(&mut totals[k].clone());
        println!(
            "{:<24} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>11.2}x",
            t.name,
            mean(&totals[k]),
            ms(med),
            ms(median(&mut setups[k].clone())),
            ms(median(&mut teardowns[k].clone())),
            ms(med) / ms(base)
        );
    }
    Ok(())
}

fn main() -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("the net bench runs as root (network namespaces, bridges, nftables)");
    }
    net_host::catch_interrupts()?;
    let bins = Bins {
        netd: std::env::var_os("BERTH_NETD")
            .map(PathBuf::from)
            .unwrap_or_else(|| berth_testkit::workspace_root().join("target/release/berth-netd")),
        netavark: Some(
            std::env::var_os("NETAVARK")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(net_host::NETAVARK)),
        )
        .filter(|p| p.is_file()),
    };
    if !bins.netd.is_file() {
        bail!(
            "{} not built (cargo build --release -p berth-netd)",
            bins.netd.display()
        );
    }
    for tool in ["ip", "nft"] {
        if which(tool).is_none() {
            bail!("{tool} not installed (Debian iproute2, nftables)");
        }
    }
    // Dropped after the guard: netavark's teardown on failure needs them.
    let work = berth_testkit::tempdir("nb");
    let mut g = Guard::new()?;
    let net = net_host::Subnets::pick(4)?;
    println!(
        "# network benchmark (subnets {} .. {}, bridges and namespaces of pid {}; load average {} on {} CPUs)",
        net.subnet(0),
        net.subnet(3),
        std::process::id(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .unwrap_or("?"),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let mut failed = Vec::new();
    if which("iperf3").is_some() {
        let state = work.path().join("netd-throughput");
        std::fs::create_dir(&state)?;
        if let Err(e) = throughput(&mut g, &bins, &net, &state) {
            println!("\nthroughput: failed: {e:#}");
            failed.push("throughput");
        }
        g.stop_servers();
    } else {
        println!("\n(iperf3 not installed: throughput left out)");
    }
    net_host::check_interrupted()?;
    if let Err(e) = latency(&mut g, &bins, &net, work.path()) {
        println!("\nsetup + teardown latency: failed: {e:#}");
        failed.push("latency");
    }
    drop(g);
    if !failed.is_empty() {
        bail!("net bench: {} failed", failed.join(", "));
    }
    Ok(())
}
