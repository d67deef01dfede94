//! Shared fixtures for netd's privileged tests: an [`Env`] that owns every
//! namespace, bridge, nft table and state dir a test makes and removes them
//! on drop (also when the test fails), request builders, and servers that
//! listen inside a test namespace.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use berth_netd::netlink::Netlink;
use nix::sched::{setns, CloneFlags};
use serde_json::{json, Value};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name of at most 15 bytes, unique across test processes.
pub fn short_name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = format!("{prefix}{:04x}{n:x}", std::process::id() & 0xffff);
    assert!(name.len() <= 15, "{name} too long");
    name
}

/// A /24 unlikely to be used by a concurrent test process.
pub fn subnet() -> (String, [u8; 3]) {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let a = 100 + (std::process::id() % 150) as u8;
    let b = (n % 250) as u8;
    (format!("10.{a}.{b}.0/24"), [10, a, b])
}

/// An IPv6 /64 unlikely to be used by a concurrent test process, and its
/// prefix to build addresses from (`format!("{p}2")`).
pub fn subnet6() -> (String, String) {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let prefix = format!("fd89:{:x}:{n:x}::", std::process::id() & 0xffff);
    (format!("{prefix}/64"), prefix)
}

/// Everything one test created; removed on drop.
pub struct Env {
    pub state: tempfile::TempDir,
    pub table: String,
    netns: Vec<String>,
    bridges: Vec<String>,
}

impl Env {
    pub fn new() -> Env {
        let table = format!("berth_t{}", short_name(""));
        Env {
            state: berth_testkit::tempdir("netd-state"),
            table,
            netns: Vec::new(),
            bridges: Vec::new(),
        }
    }

    /// A fresh network namespace; returns its path.
    pub fn netns(&mut self) -> PathBuf {
        let name = format!("berth-test-{}", short_name("n"));
        run("ip", &["netns", "add", &name]);
        self.netns.push(name.clone());
        PathBuf::from("/run/netns").join(name)
    }

    /// A bridge name that is deleted on drop (netd creates the bridge).
    pub fn bridge(&mut self) -> String {
        let b = short_name("bt");
        self.bridges.push(b.clone());
        b
    }

    /// Run `berth-netd CMD --netns NETNS` with `req` on stdin.
    pub fn netd(&self, cmd: &str, netns: &Path, req: &[u8]) -> (i32, Value) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_berth-netd"))
            .arg("--state-dir")
            .arg(self.state.path())
            .args(["--nft-table", &self.table, cmd, "--netns"])
            .arg(netns)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn berth-netd");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(req)
            .expect("write request");
        let out = child.wait_with_output().expect("wait berth-netd");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}): {stdout:?}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap_or(-1), v)
    }

    pub fn setup_ok(&self, netns: &Path, req: &Value) -> Value {
        let (code, v) = self.netd("setup", netns, req.to_string().as_bytes());
        assert_eq!(code, 0, "setup failed: {v}");
        v
    }

    pub fn teardown_ok(&self, netns: &Path, req: &Value) -> Value {
        let (code, v) = self.netd("teardown", netns, req.to_string().as_bytes());
        assert_eq!(code, 0, "teardown failed: {v}");
        v
    }

    /// The leases in the state file (empty when none was written).
    pub fn leases(&self) -> Value {
        match std::fs::read(self.state.path().join("state.json")) {
            Ok(b) => serde_json::from_slice::<Value>(&b).expect("state json")["leases"].clone(),
            Err(_) => json!({}),
        }
    }

    /// DNS responders started for this state dir (a failed test may leave
    /// them running): SIGTERM each, by pid, after checking its cmdline.
    fn kill_responders(&self) {
        let Ok(dir) = std::fs::read_dir(self.state.path().join("dns")) else {
            return;
        };
        let state = self.state.path().as_os_str().as_encoded_bytes().to_vec();
        for e in dir
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".pid"))
        {
            let Some(pid) = std::fs::read_to_string(e.path())
                .ok()
                .and_then(|p| p.trim().parse::<i32>().ok())
            else {
                continue;
            };
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if cmdline.split(|&b| b == 0).any(|a| a == state.as_slice()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
        }
    }

    /// Whether our nft table exists.
    pub fn table_exists(&self) -> bool {
        Command::new("nft")
            .args(["list", "table", "inet", &self.table])
            .output()
            .expect("nft")
            .status
            .success()
    }

    /// The table as `nft -j` JSON (Null when absent).
    pub fn table_json(&self) -> Value {
        let out = Command::new("nft")
            .args(["-j", "list", "table", "inet", &self.table])
            .output()
            .expect("nft");
        if !out.status.success() {
            return Value::Null;
        }
        serde_json::from_slice(&out.stdout).expect("nft json")
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.kill_responders();
        for ns in self
            .netns
            .iter()
            .filter(|n| Path::new("/run/netns").join(n).exists())
        {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        for b in &self.bridges {
            if host_link_exists(b) {
                let _ = Command::new("ip").args(["link", "del", b]).status();
            }
        }
        if self.table_exists() {
            let _ = Command::new("nft")
                .args(["delete", "table", "inet", &self.table])
                .status();
        }
    }
}

pub fn run(prog: &str, args: &[&str]) {
    let st = Command::new(prog).args(args).status().expect("spawn");
    assert!(st.success(), "{prog} {args:?} failed");
}

pub fn host_link_exists(name: &str) -> bool {
    Netlink::open()
        .expect("netlink")
        .link_by_name(name)
        .expect("getlink")
        .is_some()
}

/// Interface names inside `netns`.
pub fn links_in(netns: &Path) -> Vec<String> {
    let ns = berth_netd::netns::Netns::open(netns).expect("open netns");
    ns.netlink()
        .expect("netlink in netns")
        .links()
        .expect("links")
        .into_iter()
        .map(|l| l.name)
        .collect()
}

/// IPv4 addresses inside `netns`, as `ip/prefix`.
pub fn addrs_in(netns: &Path) -> Vec<String> {
    let ns = berth_netd::netns::Netns::open(netns).expect("open netns");
    let mut nl = ns.netlink().expect("netlink in netns");
    nl.addrs()
        .expect("addrs")
        .into_iter()
        .map(|a| format!("{}/{}", a.ip, a.prefix))
        .collect()
}

/// IPv6 addresses inside `netns`, as `ip/prefix`, with whether each is
/// still tentative (in duplicate address detection).
pub fn addrs6_in(netns: &Path) -> Vec<(String, bool)> {
    let ns = berth_netd::netns::Netns::open(netns).expect("open netns");
    let mut nl = ns.netlink().expect("netlink in netns");
    nl.addrs6()
        .expect("addrs6")
        .into_iter()
        .map(|a| (format!("{}/{}", a.ip, a.prefix), a.tentative()))
        .collect()
}

/// A single-network request.
pub fn request(id: &str, bridge: &str, subnet: &str, extra_net: Value, ports: Value) -> Value {
    let mut net = json!({"name": format!("net-{bridge}"), "bridge": bridge, "subnet": subnet});
    if let (Some(n), Some(e)) = (net.as_object_mut(), extra_net.as_object()) {
        n.extend(e.clone());
    }
    json!({"container_id": id, "container_name": id, "networks": [{"network": net}], "port_mappings": ports})
}

/// Run `f` on a fresh thread that has joined `netns` (never reused).
pub fn in_netns<T: Send + 'static>(netns: &Path, f: impl FnOnce() -> T + Send + 'static) -> T {
    let file = std::fs::File::open(netns).expect("open netns");
    std::thread::spawn(move || {
        setns(&file, CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
    .join()
    .expect("netns thread")
}

/// A TCP or UDP server inside a test netns answering `tag`; stops on drop.
pub struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// TCP: every connection gets `tag` and is closed.
    pub fn tcp(netns: &Path, port: u16, tag: &'static str) -> Server {
        Server::tcp_with(netns, Ipv4Addr::UNSPECIFIED.into(), port, move |_| {
            tag.to_string()
        })
    }

    /// TCP on `::` (IPv6 and, mapped, IPv4): every connection gets `tag`.
    pub fn tcp6(netns: &Path, port: u16, tag: &'static str) -> Server {
        Server::tcp_with(netns, Ipv6Addr::UNSPECIFIED.into(), port, move |_| {
            tag.to_string()
        })
    }

    /// TCP: every connection gets the client's address as seen here.
    pub fn tcp_peer(netns: &Path, port: u16) -> Server {
        Server::tcp_with(netns, Ipv4Addr::UNSPECIFIED.into(), port, |peer| {
            peer.ip().to_string()
        })
    }

    fn tcp_with(
        netns: &Path,
        ip: IpAddr,
        port: u16,
        reply: impl Fn(SocketAddr) -> String + Send + 'static,
    ) -> Server {
        Server::spawn(netns, move |stop| {
            let l = TcpListener::bind((ip, port)).expect("bind in netns");
            l.set_nonblocking(true).expect("nonblocking");
            Box::new(move || {
                while !stop.load(Ordering::Relaxed) {
                    match l.accept() {
                        Ok((mut s, peer)) => {
                            let _ = s.write_all(reply(peer).as_bytes());
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        })
    }

    /// UDP: every datagram is answered with `tag`.
    pub fn udp(netns: &Path, port: u16, tag: &'static str) -> Server {
        Server::spawn(netns, move |stop| {
            let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)).expect("bind in netns");
            s.set_read_timeout(Some(Duration::from_millis(20)))
                .expect("timeout");
            Box::new(move || {
                let mut buf = [0u8; 512];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((_, from)) = s.recv_from(&mut buf) {
                        let _ = s.send_to(tag.as_bytes(), from);
                    }
                }
            })
        })
    }

    /// Bind in a thread that joined `netns` (bind happens before this
    /// returns), then serve until dropped.
    fn spawn(
        netns: &Path,
        bind: impl FnOnce(Arc<AtomicBool>) -> Box<dyn FnOnce() + Send> + Send + 'static,
    ) -> Server {
        let file = std::fs::File::open(netns).expect("open netns");
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let s2 = stop.clone();
        let thread = std::thread::spawn(move || {
            setns(&file, CloneFlags::CLONE_NEWNET).expect("setns");
            let serve = bind(s2);
            tx.send(()).expect("ready");
            serve();
        });
        rx.recv().expect("server did not start");
        Server {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Connect to `addr` (from the calling thread's netns) and read to EOF.
pub fn tcp_fetch(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// Send one datagram to `addr` and wait for the answer.
pub fn udp_ask(addr: SocketAddr) -> std::io::Result<String> {
    let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.send_to(b"ping", addr)?;
    let mut buf = [0u8; 512];
    let (n, _) = s.recv_from(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// A host port that is free right now (for publishing).
pub fn free_port() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let p = l.local_addr().expect("addr").port();
    let u = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, p));
    if u.is_err() {
        return free_port();
    }
    p
}

/// Root, plus the tools these tests drive (`ip` from iproute2, `nft` from
/// nftables); otherwise a named skip.
#[must_use]
pub fn require(test: &str) -> bool {
    if !berth_testkit::require_root(test) {
        return false;
    }
    for (tool, package) in [("ip", "iproute2"), ("nft", "nftables")] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false);
        if !found {
            berth_testkit::skip(
                test,
                &format!("{tool} not found (install Debian {package})"),
            );
            return false;
        }
    }
    true
}
