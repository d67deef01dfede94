//! The per-network DNS responder: container names and aliases resolve on a
//! DNS-enabled network, other names are forwarded upstream (a fake upstream
//! on 127.0.0.1 here), records vanish with their lease and the responder
//! with the network's last lease.

mod common;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{in_netns, request, subnet, tcp_fetch, Env, Server};
use serde_json::{json, Value};

/// What the fake upstream answers for every name.
const UPSTREAM_ANSWER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);

fn query(name: &str) -> Vec<u8> {
    let mut q = vec![0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for l in name.split('.') {
        q.push(l.len() as u8);
        q.extend_from_slice(l.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]); // root, type A, class IN
    q
}

/// `(rcode, A records)` of a response to [`query`].
fn parse_answer(r: &[u8], qlen: usize) -> (u8, Vec<Ipv4Addr>) {
    let ancount = u16::from_be_bytes([r[6], r[7]]);
    let mut i = qlen;
    let mut ips = Vec::new();
    for _ in 0..ancount {
        i += if r[i] & 0xc0 == 0xc0 {
            2
        } else {
            r[i..].iter().position(|&b| b == 0).expect("name end") + 1
        };
        let ty = u16::from_be_bytes([r[i], r[i + 1]]);
        let rdlen = usize::from(u16::from_be_bytes([r[i + 8], r[i + 9]]));
        i += 10;
        if ty == 1 && rdlen == 4 {
            ips.push(Ipv4Addr::new(r[i], r[i + 1], r[i + 2], r[i + 3]));
        }
        i += rdlen;
    }
    (r[3] & 0x0f, ips)
}

/// Ask `server`:53 for `name` from inside `netns`.
fn resolve(netns: &Path, server: Ipv4Addr, name: &str) -> std::io::Result<(u8, Vec<Ipv4Addr>)> {
    let q = query(name);
    in_netns(netns, move || {
        let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        s.send_to(&q, (server, 53))?;
        let mut buf = [0u8; 1500];
        let (n, _) = s.recv_from(&mut buf)?;
        Ok(parse_answer(&buf[..n], q.len()))
    })
}

/// A resolver on 127.0.0.1 answering [`UPSTREAM_ANSWER`] to everything.
struct FakeUpstream {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeUpstream {
    fn start() -> FakeUpstream {
        let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind upstream");
        s.set_read_timeout(Some(Duration::from_millis(20)))
            .expect("timeout");
        let addr = s.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !st.load(Ordering::Relaxed) {
                let Ok((n, from)) = s.recv_from(&mut buf) else {
                    continue;
                };
                let mut r = buf[..n].to_vec();
                r[2] |= 0x80;
                r[7] = 1;
                r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
                r.extend_from_slice(&UPSTREAM_ANSWER.octets());
                let _ = s.send_to(&r, from);
            }
        });
        FakeUpstream {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn netd_with_upstream(env: &Env, cmd: &str, ns: &Path, req: &Value, upstream: SocketAddr) -> Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth-netd"))
        .arg("--state-dir")
        .arg(env.state.path())
        .args([
            "--nft-table",
            &env.table,
            "--dns-upstream",
            &upstream.to_string(),
            cmd,
            "--netns",
        ])
        .arg(ns)
        .arg("--file")
        .arg({
            let f = env.state.path().join(format!("req-{cmd}.json"));
            std::fs::write(&f, req.to_string()).expect("write request");
            f
        })
        .output()
        .expect("run berth-netd");
    let v: Value = serde_json::from_slice(&out.stdout).expect("json answer");
    assert!(
        out.status.success(),
        "{cmd}: {v}; {}",
        String::from_utf8_lossy(&out.stderr)
    );
    v
}

#[test]
fn containers_resolve_each_other_by_name_and_records_go_with_leases() {
    if !common::require("containers_resolve_each_other_by_name_and_records_go_with_leases") {
        return;
    }
    let mut env = Env::new();
    let (ns1, ns2) = (env.netns(), env.netns());
    let br = env.bridge();
    let (net, [a, b, c]) = subnet();
    let gw = Ipv4Addr::new(a, b, c, 1);
    let upstream = FakeUpstream::start();
    let mut web = request("c-web", &br, &net, json!({"dns_enabled": true}), json!([]));
    web["container_name"] = json!("web");
    web["networks"][0]["aliases"] = json!(["www"]);
    let mut client = request("c-cli", &br, &net, json!({"dns_enabled": true}), json!([]));
    client["container_name"] = json!("client");

    let out = netd_with_upstream(&env, "setup", &ns1, &web, upstream.addr);
    assert_eq!(out["dns_servers"], json!([gw.to_string()]));
    netd_with_upstream(&env, "setup", &ns2, &client, upstream.addr);

    let web_ip = Ipv4Addr::new(a, b, c, 2);
    assert_eq!(
        resolve(&ns2, gw, "web").expect("resolve web"),
        (0, vec![web_ip])
    );
    assert_eq!(
        resolve(&ns2, gw, "WWW").expect("resolve alias"),
        (0, vec![web_ip])
    );
    assert_eq!(
        resolve(&ns2, gw, "elsewhere.example").expect("forwarded"),
        (0, vec![UPSTREAM_ANSWER])
    );
    // Reach it by name.
    let _server = Server::tcp(&ns1, 8080, "by name");
    let (_, ips) = resolve(&ns2, gw, "web").expect("resolve web");
    let to = SocketAddr::from((ips[0], 8080));
    assert_eq!(
        in_netns(&ns2, move || tcp_fetch(to)).expect("connect by name"),
        "by name"
    );

    // The record goes with the lease (the name is now forwarded upstream).
    netd_with_upstream(&env, "teardown", &ns1, &web, upstream.addr);
    assert_eq!(
        resolve(&ns2, gw, "web").expect("resolve after teardown"),
        (0, vec![UPSTREAM_ANSWER])
    );
    let pid_file = env.state.path().join(format!("dns/net-{br}.pid"));
    let pid = std::fs::read_to_string(&pid_file).expect("responder pid file");
    // The responder goes with the network's last lease.
    netd_with_upstream(&env, "teardown", &ns2, &client, upstream.addr);
    assert!(!pid_file.exists(), "pid file left");
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", pid.trim())).unwrap_or_default();
    assert!(cmdline.is_empty(), "responder {pid} still running");
}
