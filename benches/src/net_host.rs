//! Host plumbing for the network bench (`bin/net.rs`): a [`Guard`] owning
//! every namespace, bridge, nft table, iperf3 server and netavark setup the
//! bench makes, removing them on drop; free subnets and ports; the
//! iptables chains netavark 1.4's firewall driver leaves behind after its
//! own teardown, removed when they were not there before the bench.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{SigSet, Signal};

/// Where Debian's netavark package puts the binary.
pub const NETAVARK: &str = "/usr/lib/podman/netavark";

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Block SIGINT, SIGTERM and SIGHUP in this thread (and so in threads
/// spawned later; children get an empty mask from std) and note them from
/// a thread of their own, so that the bench stops at the next step and its
/// guard cleans up instead of the process dying mid-way. Call first.
pub fn catch_interrupts() -> Result<()> {
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    set.thread_block()
        .context("block SIGINT, SIGTERM, SIGHUP")?;
    std::thread::spawn(move || {
        if let Ok(sig) = set.wait() {
            eprintln!("net bench: {sig}, stopping after this step and cleaning up");
            INTERRUPTED.store(true, Ordering::SeqCst);
        }
    });
    Ok(())
}

/// An error once a signal caught by [`catch_interrupts`] arrived.
pub fn check_interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

pub fn netns_path(name: &str) -> PathBuf {
    Path::new("/run/netns").join(name)
}

fn run(prog: &str, args: &[&str]) -> Result<()> {
    output(prog, args).map(drop)
}

fn output(prog: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("spawn {prog}"))?;
    if !out.status.success() {
        bail!(
            "{prog} {}: {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn succeeds(prog: &str, args: &[&str]) -> bool {
    Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A TCP port the host can bind on `ip` right now.
pub fn free_port(ip: Ipv4Addr) -> Result<u16> {
    let l = TcpListener::bind((ip, 0)).with_context(|| format!("bind {ip}:0"))?;
    Ok(l.local_addr()?.port())
}

/// A veth pair straight between namespaces `a` and `b` (both ends `eth0`),
/// addressed and up, with `lo` up on both sides.
pub fn veth_pair(a: &str, b: &str, ips: (Ipv4Addr, Ipv4Addr), prefix: u8) -> Result<()> {
    run(
        "ip",
        &[
            "-n", a, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", b,
        ],
    )?;
    for (ns, ip) in [(a, ips.0), (b, ips.1)] {
        run(
            "ip",
            &[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{ip}/{prefix}"),
                "dev",
                "eth0",
            ],
        )?;
        run("ip", &["-n", ns, "link", "set", "eth0", "up"])?;
        run("ip", &["-n", ns, "link", "set", "lo", "up"])?;
    }
    Ok(())
}

/// `count` /24s `10.(252+i).K.0/24` (one K for all) that overlap no
/// address or route of the host. 10.252–10.255 is outside what netd's
/// tests pick (10.100–10.249).
pub struct Subnets {
    k: u8,
}

impl Subnets {
    pub fn pick(count: u8) -> Result<Subnets> {
        if count > 4 {
            bail!("at most 4 subnets");
        }
        let used = host_networks()?;
        let start = std::process::id() % 250;
        for i in 0..250 {
            let k = ((start + i) % 250) as u8;
            let s = Subnets { k };
            let clash = (0..count).any(|j| {
                let net = u32::from(s.host(j as usize, 0));
                used.iter().any(|&(a, p)| {
                    let p = p.min(24);
                    let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
                    (u32::from(a) & mask) == (net & mask)
                })
            });
            if !clash {
                return Ok(s);
            }
        }
        bail!("no free 10.252-255.K.0/24 on this host")
    }

    /// The i-th subnet, `"10.X.K.0/24"`.
    pub fn subnet(&self, i: usize) -> String {
        format!("{}/24", self.host(i, 0))
    }

    /// Host `h` of the i-th subnet.
    pub fn host(&self, i: usize, h: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 252 + i as u8, self.k, h)
    }
}

/// Every IPv4 address (with its prefix) and route destination of the host
/// but the default route.
fn host_networks() -> Result<Vec<(Ipv4Addr, u8)>> {
    let mut v = Vec::new();
    let addrs: serde_json::Value = serde_json::from_str(&output("ip", &["-4", "-j", "addr"])?)?;
    for a in addrs.as_array().into_iter().flatten() {
        for i in a["addr_info"].as_array().into_iter().flatten() {
            if let (Some(ip), Some(p)) = (i["local"].as_str(), i["prefixlen"].as_u64()) {
                v.push((ip.parse()?, p as u8));
            }
        }
    }
    let routes: serde_json::Value = serde_json::from_str(&output(
        "ip",
        &["-4", "-j", "route", "show", "table", "all"],
    )?)?;
    for r in routes.as_array().into_iter().flatten() {
        let Some(dst) = r["dst"].as_str().filter(|d| *d != "default") else {
            continue;
        };
        let (ip, p) = dst.split_once('/').unwrap_or((dst, "32"));
        v.push((ip.parse()?, p.parse()?));
    }
    Ok(v)
}

/// How to run netavark for one container: binary, config dir, netns,
/// firewall driver (`NETAVARK_FW`) and the request.
#[derive(Clone, PartialEq)]
pub struct NetavarkSetup {
    pub bin: PathBuf,
    pub config: PathBuf,
    pub netns: PathBuf,
    pub firewall: &'static str,
    pub request: String,
}

impl NetavarkSetup {
    /// `netavark --config DIR CMD NETNS` (the request goes on stdin).
    pub fn command(&self, cmd: &str) -> Command {
        let mut c = Command::new(&self.bin);
        c.env("NETAVARK_FW", self.firewall)
            .arg("--config")
            .arg(&self.config)
            .arg(cmd)
            .arg(&self.netns);
        c
    }
}

/// What the tables netavark's iptables driver writes to looked like before.
struct FwSnapshot {
    /// (table, existed, its chains)
    tables: Vec<(&'static str, bool, BTreeSet<String>)>,
}

/// Chains netavark 1.4 creates once and never deletes.
const NETAVARK_PERSISTENT: [&str; 4] = [
    "NETAVARK_FORWARD",
    "NETAVARK-HOSTPORT-DNAT",
    "NETAVARK-HOSTPORT-SETMARK",
    "NETAVARK-HOSTPORT-MASQ",
];

fn iptables_rules(table: &str) -> Result<Vec<String>> {
    Ok(output("iptables", &["-w", "-t", table, "-S"])?
        .lines()
        .map(str::to_string)
        .collect())
}

fn chains(rules: &[String]) -> BTreeSet<String> {
    rules
        .iter()
        .filter_map(|l| l.strip_prefix("-N "))
        .map(|c| c.trim().to_string())
        .collect()
}

impl FwSnapshot {
    fn take() -> Result<FwSnapshot> {
        let mut tables = Vec::new();
        for t in ["nat", "filter"] {
            let existed = succeeds("nft", &["list", "table", "ip", t]);
            tables.push((t, existed, chains(&iptables_rules(t)?)));
        }
        Ok(FwSnapshot { tables })
    }

    /// Remove netavark's persistent chains (and the jumps to them) that
    /// appeared since [`FwSnapshot::take`], unless some netavark network
    /// still uses them; then delete a table the bench brought into being
    /// once it holds nothing.
    fn restore(&self) {
        for (t, existed, before) in &self.tables {
            if let Err(e) = restore_table(t, *existed, before) {
                eprintln!("net bench: cleaning up iptables table {t}: {e:#}");
            }
        }
    }
}

fn restore_table(table: &str, existed: bool, before: &BTreeSet<String>) -> Result<()> {
    let rules = iptables_rules(table)?;
    let now = chains(&rules);
    let new: BTreeSet<&String> = now
        .iter()
        .filter(|c| c.starts_with("NETAVARK") && !before.contains(*c))
        .collect();
    if !new.is_empty() {
        // Per-network chains, or rules in the shared ones, mean a network
        // (the bench's after a failed teardown, or anyone's) still uses them.
        let foreign = now
            .iter()
            .any(|c| c.starts_with("NETAVARK") && !NETAVARK_PERSISTENT.contains(&c.as_str()));
        let busy = rules.iter().any(|l| {
            ["-A NETAVARK_FORWARD ", "-A NETAVARK-HOSTPORT-DNAT "]
                .iter()
                .any(|p| l.starts_with(p))
        });
        if foreign || busy {
            eprintln!(
                "net bench: netavark's chains in iptables table {table} are in use by a network; left as they are"
            );
            return Ok(());
        }
        // Jumps from the other chains first (by position: `-S` quotes
        // comments, which do not split back into arguments; from the last
        // so that positions stay valid), then the chains.
        let mut jumps: Vec<(String, usize)> = Vec::new();
        let mut position: std::collections::BTreeMap<&str, usize> = Default::default();
        for l in &rules {
            let Some(rule) = l.strip_prefix("-A ") else {
                continue;
            };
            let from = rule.split_whitespace().next().unwrap_or("");
            let n = position.entry(from).or_insert(0);
            *n += 1;
            let target = rule.rsplit_once(" -j ").map(|(_, t)| t.trim());
            let is_new = |c: &str| new.iter().any(|n| n.as_str() == c);
            if !is_new(from) && target.is_some_and(is_new) {
                jumps.push((from.to_string(), *n));
            }
        }
        for (chain, n) in jumps.iter().rev() {
            run(
                "iptables",
                &["-w", "-t", table, "-D", chain, &n.to_string()],
            )?;
        }
        for c in &new {
            run("iptables", &["-w", "-t", table, "-F", c])?;
        }
        for c in &new {
            run("iptables", &["-w", "-t", table, "-X", c])?;
        }
    }
    let empty = iptables_rules(table)?.iter().all(|l| l.starts_with("-P "));
    if !existed && empty && succeeds("nft", &["list", "table", "ip", table]) {
        run("nft", &["delete", "table", "ip", table])?;
    }
    Ok(())
}

/// Everything the bench made, removed on drop in reverse dependency order.
pub struct Guard {
    servers: Vec<Child>,
    netavark: Vec<NetavarkSetup>,
    netns: Vec<String>,
    bridges: Vec<String>,
    nft_tables: Vec<String>,
    firewall: Option<FwSnapshot>,
    ip_forward: String,
}

impl Guard {
    pub fn new() -> Result<Guard> {
        Ok(Guard {
            servers: Vec::new(),
            netavark: Vec::new(),
            netns: Vec::new(),
            bridges: Vec::new(),
            nft_tables: Vec::new(),
            firewall: None,
            ip_forward: std::fs::read_to_string(IP_FORWARD)
                .with_context(|| format!("read {IP_FORWARD}"))?,
        })
    }

    /// A new network namespace `berth-nb-PID-ROLE`; its name.
    pub fn netns(&mut self, role: &str) -> Result<String> {
        let name = format!("berth-nb-{}-{role}", std::process::id());
        self.netns.push(name.clone());
        run("ip", &["netns", "add", &name])?;
        Ok(name)
    }

    /// A bridge name to delete at the end if it exists (netd or netavark
    /// creates it).
    pub fn bridge(&mut self, name: &str) -> String {
        self.bridges.push(name.to_string());
        name.to_string()
    }

    /// An nft table (family ip) to delete at the end if it exists.
    pub fn nft_table(&mut self, name: &str) -> String {
        self.nft_tables.push(name.to_string());
        name.to_string()
    }

    /// `iperf3 -s` inside `netns`, listening on `port` when this returns.
    pub fn iperf_server(&mut self, netns: &str, port: u16) -> Result<()> {
        // `ip netns exec` execs the command: the child's PID is iperf3's.
        let child = Command::new("ip")
            .args(["netns", "exec", netns, "iperf3", "-s", "-p"])
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("spawn iperf3 -s")?;
        let pid = child.id();
        self.servers.push(child);
        // /proc/PID/net/tcp lists the sockets of PID's namespace.
        // iperf3 listens on a dual-stack socket (tcp6).
        let want = format!(":{port:04X}");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let listening = ["tcp", "tcp6"].iter().any(|f| {
                let table =
                    std::fs::read_to_string(format!("/proc/{pid}/net/{f}")).unwrap_or_default();
                table.lines().any(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    f.len() > 3 && f[1].ends_with(&want) && f[3] == "0A"
                })
            });
            if listening {
                return Ok(());
            }
            if let Some(child) = self.servers.last_mut() {
                if let Some(st) = child.try_wait()? {
                    bail!("iperf3 -s in {netns} exited: {st}");
                }
            }
            if Instant::now() > deadline {
                bail!("iperf3 -s in {netns} not listening on {port} after 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL each iperf3 server, by PID, and reap it.
    pub fn stop_servers(&mut self) {
        for mut c in self.servers.drain(..) {
            if let Ok(None) = c.try_wait() {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }

    /// Record the iptables tables netavark writes to, once, before its
    /// first run.
    pub fn snapshot_firewall(&mut self) -> Result<()> {
        if self.firewall.is_none() {
            self.firewall = Some(FwSnapshot::take()?);
        }
        Ok(())
    }

    /// `setup` is about to run netavark's setup: tear it down at the end
    /// unless [`Guard::netavark_done`] comes first.
    pub fn netavark_pending(&mut self, setup: &NetavarkSetup) {
        if !self.netavark.contains(setup) {
            self.netavark.push(setup.clone());
        }
    }

    pub fn netavark_done(&mut self, setup: &NetavarkSetup) {
        self.netavark.retain(|s| s != setup);
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stop_servers();
        for s in self.netavark.drain(..) {
            let mut c = s.command("teardown");
            c.stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if let Ok(mut child) = c.spawn() {
                if let Some(mut stdin) = child.stdin.take() {
                    use std::io::Write;
                    let _ = stdin.write_all(s.request.as_bytes());
                }
                let _ = child.wait();
            }
        }
        for ns in &self.netns {
            if netns_path(ns).exists() {
                if let Err(e) = run("ip", &["netns", "del", ns]) {
                    eprintln!("net bench: {e:#}");
                }
            }
        }
        for b in &self.bridges {
            if succeeds("ip", &["link", "show", "dev", b]) {
                if let Err(e) = run("ip", &["link", "del", b]) {
                    eprintln!("net bench: {e:#}");
                }
            }
        }
        // berth-netd's tables are `inet` (older ones `ip`).
        for t in &self.nft_tables {
            for family in ["inet", "ip"] {
                if succeeds("nft", &["list", "table", family, t]) {
                    if let Err(e) = run("nft", &["delete", "table", family, t]) {
                        eprintln!("net bench: {e:#}");
                    }
                }
            }
        }
        if let Some(fw) = &self.firewall {
            fw.restore();
        }
        // netavark's setup turns on forwarding for the whole host.
        let now = std::fs::read_to_string(IP_FORWARD).unwrap_or_default();
        if now != self.ip_forward {
            match std::fs::write(IP_FORWARD, &self.ip_forward) {
                Ok(()) => eprintln!(
                    "net bench: net.ipv4.ip_forward restored to {} (was {} after netavark)",
                    self.ip_forward.trim(),
                    now.trim()
                ),
                Err(e) => eprintln!("net bench: restore {IP_FORWARD}: {e}"),
            }
        }
    }
}
