//! Dual-stack networks for real, as root, in namespaces the tests create:
//! IPv6 addresses and routes next to IPv4, reachability over both, MTU, ip
//! ranges, concurrent IPv6 allocation, IPv6 port publishing from the host,
//! AAAA answers, teardown leaving nothing, and bad IPv6 input rejected with
//! nothing applied. Only the tests' own namespaces and bridges are contacted.

mod common;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use berth_netd::netlink::Netlink;
use common::{
    addrs6_in, free_port, host_link_exists, in_netns, links_in, request, run, subnet, subnet6,
    tcp_fetch, Env, Server,
};
use serde_json::{json, Value};

fn ns_name(ns: &Path) -> String {
    ns.file_name()
        .and_then(|n| n.to_str())
        .expect("netns name")
        .to_string()
}

fn output(prog: &str, args: &[&str]) -> String {
    let o = Command::new(prog).args(args).output().expect("spawn");
    assert!(o.status.success(), "{prog} {args:?}: {o:?}");
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// `FILE` as seen inside `ns` (`ip netns exec` mounts the netns's own /sys).
fn read_in_netns(ns: &Path, file: &str) -> String {
    output("ip", &["netns", "exec", &ns_name(ns), "cat", file])
}

/// IPv6 addresses on host interface `dev` with whether each is tentative.
fn host_addrs6(dev: &str) -> Vec<(String, bool)> {
    let mut nl = Netlink::open().expect("netlink");
    let Some(link) = nl.link_by_name(dev).expect("getlink") else {
        return Vec::new();
    };
    nl.addrs6()
        .expect("addrs6")
        .into_iter()
        .filter(|a| a.index == link.index && !a.link_local())
        .map(|a| (format!("{}/{}", a.ip, a.prefix), a.tentative()))
        .collect()
}

/// Whether any host interface has an address in the /64 `prefix`.
fn host_has_address_in(prefix: &str) -> bool {
    let net: Ipv6Addr = prefix.parse().expect("prefix");
    let net = u128::from(net) >> 64;
    let mut nl = Netlink::open().expect("netlink");
    nl.addrs6()
        .expect("addrs6")
        .iter()
        .any(|a| u128::from(a.ip) >> 64 == net)
}

fn addr6(prefix: &str, host: u16) -> Ipv6Addr {
    format!("{prefix}{host:x}").parse().expect("ipv6")
}

/// The AAAA records for `name` from the responder at `server`:53, asked
/// from inside `ns`: `(rcode, addresses)`.
fn resolve_aaaa(ns: &Path, server: Ipv4Addr, name: &str) -> (u8, Vec<Ipv6Addr>) {
    let mut q = vec![0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for l in name.split('.') {
        q.push(l.len() as u8);
        q.extend_from_slice(l.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 28, 0, 1]); // root, type AAAA, class IN
    let qlen = q.len();
    let r = in_netns(ns, move || -> std::io::Result<Vec<u8>> {
        let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        s.send_to(&q, (server, 53))?;
        let mut buf = [0u8; 1500];
        let (n, _) = s.recv_from(&mut buf)?;
        Ok(buf[..n].to_vec())
    })
    .expect("dns answer");
    let mut i = qlen;
    let mut ips = Vec::new();
    for _ in 0..u16::from_be_bytes([r[6], r[7]]) {
        i += 2; // the responder answers with a pointer to the question
        let ty = u16::from_be_bytes([r[i], r[i + 1]]);
        let rdlen = usize::from(u16::from_be_bytes([r[i + 8], r[i + 9]]));
        i += 10;
        if ty == 28 && rdlen == 16 {
            let o: [u8; 16] = r[i..i + 16].try_into().expect("16 bytes");
            ips.push(Ipv6Addr::from(o));
        }
        i += rdlen;
    }
    (r[3] & 0x0f, ips)
}

#[test]
fn dual_stack_containers_reach_each_other_and_teardown_leaves_nothing() {
    const T: &str = "dual_stack_containers_reach_each_other_and_teardown_leaves_nothing";
    if !common::require(T) {
        return;
    }
    let mut env = Env::new();
    let (ns1, ns2) = (env.netns(), env.netns());
    let br = env.bridge();
    let (net, [a, b, c]) = subnet();
    let (net6, p6) = subnet6();
    let extra = json!({"subnet6": net6, "mtu": 1400, "dns_enabled": true});
    let r1 = request("c6-one", &br, &net, extra.clone(), json!([]));
    let r2 = request("c6-two", &br, &net, extra, json!([]));
    let out1 = env.setup_ok(&ns1, &r1);
    let out2 = env.setup_ok(&ns2, &r2);

    let (i1, i2) = (&out1["interfaces"][0], &out2["interfaces"][0]);
    assert_eq!(i1["address"], format!("{a}.{b}.{c}.2/24"));
    assert_eq!(i1["address6"], format!("{p6}2/64"));
    assert_eq!(i1["gateway6"], format!("{p6}1"));
    assert_eq!(i1["default_route6"], true);
    assert_eq!(i2["address6"], format!("{p6}3/64"));
    let leases = env.leases();
    assert_eq!(
        leases["c6-two"]["attachments"][0]["ip6"],
        format!("{p6}3"),
        "{leases}"
    );

    // Usable at once: no duplicate address detection on either side.
    for (ns, host) in [(&ns1, 2), (&ns2, 3)] {
        let want = (format!("{}/64", addr6(&p6, host)), false);
        let got = addrs6_in(ns);
        assert!(got.contains(&want), "{want:?} in {got:?}");
        let routes = output("ip", &["-n", &ns_name(ns), "-6", "route"]);
        assert!(
            routes.contains(&format!("default via {p6}1 dev eth0")),
            "{routes}"
        );
    }
    let gw = host_addrs6(&br);
    assert!(gw.contains(&(format!("{p6}1/64"), false)), "{gw:?}");

    // The MTU on the bridge, both host ends and both inside ends.
    let veths: Vec<String> = [i1, i2]
        .iter()
        .map(|i| i["host_interface"].as_str().expect("veth").to_string())
        .collect();
    for dev in std::iter::once(&br).chain(&veths) {
        let mtu = std::fs::read_to_string(format!("/sys/class/net/{dev}/mtu")).expect("mtu");
        assert_eq!(mtu.trim(), "1400", "{dev}");
    }
    for ns in [&ns1, &ns2] {
        assert_eq!(read_in_netns(ns, "/sys/class/net/eth0/mtu"), "1400");
    }

    // Container to container over IPv6 and IPv4 (one dual-stack listener).
    let _server = Server::tcp6(&ns1, 8000, "hello from one");
    let to6 = SocketAddr::from((addr6(&p6, 2), 8000));
    let to4 = SocketAddr::from((Ipv4Addr::new(a, b, c, 2), 8000));
    let got6 = in_netns(&ns2, move || tcp_fetch(to6));
    assert_eq!(got6.expect("IPv6 connect"), "hello from one");
    let got4 = in_netns(&ns2, move || tcp_fetch(to4));
    assert_eq!(got4.expect("IPv4 connect"), "hello from one");

    // The network's responder answers AAAA with the IPv6 address.
    let dns = Ipv4Addr::new(a, b, c, 1);
    assert_eq!(resolve_aaaa(&ns2, dns, "c6-one"), (0, vec![addr6(&p6, 2)]));

    env.teardown_ok(&ns1, &r1);
    env.teardown_ok(&ns2, &r2);
    for ns in [&ns1, &ns2] {
        assert_eq!(links_in(ns), vec!["lo".to_string()]);
        assert_eq!(addrs6_in(ns), vec![("::1/128".to_string(), false)]);
        let routes = output("ip", &["-n", &ns_name(ns), "-6", "route"]);
        assert!(!routes.contains("default"), "{routes}");
    }
    for dev in std::iter::once(&br).chain(&veths) {
        assert!(!host_link_exists(dev), "{dev} left");
    }
    assert!(!host_has_address_in(&p6), "an address of {net6} left");
    assert_eq!(env.leases(), json!({}), "leases left");
    assert!(!env.table_exists(), "nft table left");
    let dns_pid = env.state.path().join(format!("dns/net-{br}.pid"));
    assert!(!dns_pid.exists(), "dns responder left");
}

#[test]
fn ip_range_allocations_stay_inside_the_range() {
    if !common::require("ip_range_allocations_stay_inside_the_range") {
        return;
    }
    let mut env = Env::new();
    let br = env.bridge();
    let (net, [a, b, c]) = subnet();
    let extra = json!({"ip_range": format!("{a}.{b}.{c}.128/30")});
    let namespaces: Vec<_> = (0..6).map(|_| env.netns()).collect();
    let reqs: Vec<Value> = (0..6)
        .map(|i| request(&format!("c-rng{i}"), &br, &net, extra.clone(), json!([])))
        .collect();
    let mut got = BTreeSet::new();
    for i in 0..4 {
        let out = env.setup_ok(&namespaces[i], &reqs[i]);
        got.insert(
            out["interfaces"][0]["address"]
                .as_str()
                .expect("address")
                .to_string(),
        );
    }
    let want: BTreeSet<String> = (128..132).map(|h| format!("{a}.{b}.{c}.{h}/24")).collect();
    assert_eq!(got, want);
    // A static address may lie outside the range (in the subnet).
    let mut fixed = reqs[4].clone();
    fixed["networks"][0]["static_ip"] = json!(format!("{a}.{b}.{c}.9"));
    let out = env.setup_ok(&namespaces[4], &fixed);
    assert_eq!(out["interfaces"][0]["address"], format!("{a}.{b}.{c}.9/24"));
    // The range is full: a conflict, nothing applied.
    let (code, v) = env.netd("setup", &namespaces[5], reqs[5].to_string().as_bytes());
    assert_eq!(code, 3, "{v}");
    let e = v["error"].as_str().expect("error");
    assert!(
        e.contains(&format!("no free address in {a}.{b}.{c}.128/30")),
        "{e}"
    );
    assert_eq!(links_in(&namespaces[5]), vec!["lo".to_string()]);

    for (ns, r) in namespaces.iter().zip(&reqs).take(4) {
        env.teardown_ok(ns, r);
    }
    env.teardown_ok(&namespaces[4], &fixed);
    assert!(!host_link_exists(&br), "bridge left");
    assert_eq!(env.leases(), json!({}));
}

#[test]
fn concurrent_ipv6_allocations_are_distinct() {
    const N: usize = 20;
    if !common::require("concurrent_ipv6_allocations_are_distinct") {
        return;
    }
    let mut env = Env::new();
    let br = env.bridge();
    let (net, _) = subnet();
    let (net6, p6) = subnet6();
    let namespaces: Vec<_> = (0..N).map(|_| env.netns()).collect();
    let reqs: Vec<Value> = (0..N)
        .map(|i| {
            request(
                &format!("c6-par{i}"),
                &br,
                &net,
                json!({"subnet6": net6}),
                json!([]),
            )
        })
        .collect();
    let env = Arc::new(env);
    let barrier = Arc::new(std::sync::Barrier::new(N));
    let threads: Vec<_> = (0..N)
        .map(|i| {
            let (env, barrier) = (env.clone(), barrier.clone());
            let (ns, req) = (namespaces[i].clone(), reqs[i].clone());
            std::thread::spawn(move || {
                barrier.wait();
                env.netd("setup", &ns, req.to_string().as_bytes())
            })
        })
        .collect();
    let mut addresses = BTreeSet::new();
    for (i, t) in threads.into_iter().enumerate() {
        let (code, v) = t.join().expect("setup thread");
        assert_eq!(code, 0, "setup {i}: {v}");
        let a6 = v["interfaces"][0]["address6"].as_str().expect("address6");
        assert!(a6.starts_with(&p6) && a6.ends_with("/64"), "{a6}");
        assert!(
            addrs6_in(&namespaces[i]).contains(&(a6.to_string(), false)),
            "netns {i} lacks {a6}"
        );
        addresses.insert(a6.to_string());
    }
    assert_eq!(addresses.len(), N, "duplicate IPv6 addresses handed out");
    let threads: Vec<_> = (0..N)
        .map(|i| {
            let (env, ns, req) = (env.clone(), namespaces[i].clone(), reqs[i].clone());
            std::thread::spawn(move || env.netd("teardown", &ns, req.to_string().as_bytes()))
        })
        .collect();
    for (i, t) in threads.into_iter().enumerate() {
        let (code, v) = t.join().expect("teardown thread");
        assert_eq!(code, 0, "teardown {i}: {v}");
    }
    assert!(!host_link_exists(&br), "bridge left");
    assert!(!host_has_address_in(&p6), "an address of {net6} left");
    assert_eq!(env.leases(), json!({}));
    assert!(!env.table_exists(), "nft table left");
}

#[test]
fn published_port_answers_on_the_ipv6_gateway_from_the_host() {
    if !common::require("published_port_answers_on_the_ipv6_gateway_from_the_host") {
        return;
    }
    let mut env = Env::new();
    let ns = env.netns();
    let br = env.bridge();
    let (net, _) = subnet();
    let (net6, p6) = subnet6();
    let port = free_port();
    let ports = json!([{"host_port": port, "container_port": 8080}]);
    let req = request("c6-web", &br, &net, json!({"subnet6": net6}), ports);
    env.setup_ok(&ns, &req);
    let _server = Server::tcp6(&ns, 8080, "published6");
    let gw6 = SocketAddr::from((addr6(&p6, 1), port));
    assert_eq!(tcp_fetch(gw6).expect("[gateway6]:port"), "published6");
    let local = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    assert_eq!(tcp_fetch(local).expect("127.0.0.1:port"), "published6");
    env.teardown_ok(&ns, &req);
    assert!(!env.table_exists(), "nft table left");
}

#[test]
fn ipv6_disabled_in_the_netns_rolls_back() {
    if !common::require("ipv6_disabled_in_the_netns_rolls_back") {
        return;
    }
    let mut env = Env::new();
    let ns = env.netns();
    let br = env.bridge();
    let (net, _) = subnet();
    let (net6, p6) = subnet6();
    // Interfaces created in this netns from now on have IPv6 off: adding
    // the container's IPv6 address fails after bridge and veth exist.
    let conf = "/proc/sys/net/ipv6/conf/default/disable_ipv6";
    run(
        "ip",
        &[
            "netns",
            "exec",
            &ns_name(&ns),
            "sh",
            "-c",
            &format!("echo 1 > {conf}"),
        ],
    );
    let ports = json!([{"host_port": free_port(), "container_port": 80}]);
    let req = request("c6-off", &br, &net, json!({"subnet6": net6}), ports);
    let (code, v) = env.netd("setup", &ns, req.to_string().as_bytes());
    assert_eq!(code, 5, "{v}");
    let e = v["error"].as_str().expect("error");
    assert!(
        e.contains("rolled back") && e.contains(&format!("add address {p6}2/64")),
        "{e}"
    );
    assert_eq!(v.get("details"), None, "rollback steps failed: {v}");
    assert_eq!(links_in(&ns), vec!["lo".to_string()]);
    assert!(!host_link_exists(&br), "bridge left after rollback");
    assert!(!host_has_address_in(&p6), "an address of {net6} left");
    assert!(!env.table_exists(), "nft table left after rollback");
    assert_eq!(env.leases(), json!({}));
}

/// Whether a TCP connection from `ns` to `to` succeeds (dropped packets
/// show up as a timeout, the expected failure here).
fn connects(ns: &Path, to: SocketAddr) -> bool {
    in_netns(ns, move || {
        std::net::TcpStream::connect_timeout(&to, Duration::from_secs(1)).is_ok()
    })
}

#[test]
fn ipv6_networks_are_isolated_but_published_ports_cross() {
    const T: &str = "ipv6_networks_are_isolated_but_published_ports_cross";
    if !common::require(T) {
        return;
    }
    // Forwarding between containers (even to a published port of their own
    // network) needs IPv6 forwarding on the bridge: per interface since
    // Linux 6.17, else only the global switch, which tests do not touch.
    if !Path::new("/proc/sys/net/ipv6/conf/lo/force_forwarding").exists() {
        berth_testkit::skip(
            T,
            "kernel lacks net.ipv6.conf.IF.force_forwarding (Linux 6.17+)",
        );
        return;
    }
    let mut env = Env::new();
    let (ns_a1, ns_a2, ns_b, ns_int) = (env.netns(), env.netns(), env.netns(), env.netns());
    let (br_a, br_b, br_int) = (env.bridge(), env.bridge(), env.bridge());
    let ((net_a, _), (net_b, _), (net_int, _)) = (subnet(), subnet(), subnet());
    let ((net6_a, p6_a), (net6_b, p6_b), (net6_int, _)) = (subnet6(), subnet6(), subnet6());
    let port = free_port();
    let published = json!([{"host_port": port, "container_port": 7000}]);
    let dual = |n6: &str| json!({"subnet6": n6});
    let internal = json!({"subnet6": net6_int, "internal": true});
    let reqs = [
        (
            &ns_a1,
            request("c6-a1", &br_a, &net_a, dual(&net6_a), published),
        ),
        (
            &ns_a2,
            request("c6-a2", &br_a, &net_a, dual(&net6_a), json!([])),
        ),
        (
            &ns_b,
            request("c6-b", &br_b, &net_b, dual(&net6_b), json!([])),
        ),
        (
            &ns_int,
            request("c6-int", &br_int, &net_int, internal, json!([])),
        ),
    ];
    for (ns, r) in &reqs {
        env.setup_ok(ns, r);
    }
    let _server = Server::tcp6(&ns_a1, 7000, "a1");
    let _int_server = Server::tcp6(&ns_int, 7000, "int");
    let a1 = SocketAddr::from((addr6(&p6_a, 2), 7000));
    // Same network: reachable (the control); another network: not.
    assert_eq!(
        in_netns(&ns_a2, move || tcp_fetch(a1)).expect("same network"),
        "a1"
    );
    assert!(
        !connects(&ns_b, a1),
        "network b reached a container on network a over IPv6"
    );
    // The published port, through a host address: from the other network
    // and from the same one (hairpin).
    for (ns, gw) in [(&ns_b, addr6(&p6_b, 1)), (&ns_a2, addr6(&p6_a, 1))] {
        let to = SocketAddr::from((gw, port));
        let got = in_netns(ns, move || tcp_fetch(to));
        assert_eq!(got.expect("published port over IPv6"), "a1", "via {to}");
    }
    // The internal network: no IPv6 default route, nothing in or out.
    let routes = output("ip", &["-n", &ns_name(&ns_int), "-6", "route"]);
    assert!(!routes.contains("default"), "{routes}");
    let int = SocketAddr::from((addr6(net6_int.trim_end_matches("/64"), 2), 7000));
    assert!(
        !connects(&ns_b, int),
        "network b reached the internal network"
    );
    for (ns, r) in &reqs {
        env.teardown_ok(ns, r);
    }
    assert!(!env.table_exists(), "nft table left");
}

/// `setup` of `req` fails with `code` and an error containing `needle`;
/// the netns keeps only `lo`, `bridge` does not exist, state and nft are
/// unchanged.
fn check_rejected(env: &Env, ns: &Path, req: &Value, code: i64, needle: &str, bridge: &str) {
    let (leases, table) = (env.leases(), env.table_json());
    let (exit, v) = env.netd("setup", ns, req.to_string().as_bytes());
    assert_eq!(
        (i64::from(exit), v["code"].as_i64()),
        (code, Some(code)),
        "{v}"
    );
    let e = v["error"].as_str().expect("error");
    assert!(e.contains(needle), "{needle:?} in {e:?}");
    assert!(!e.contains('\n'), "one line: {e:?}");
    assert_eq!(links_in(ns), vec!["lo".to_string()], "applied in the netns");
    assert!(!host_link_exists(bridge), "bridge {bridge} created");
    assert_eq!(env.leases(), leases, "state changed");
    assert_eq!(env.table_json(), table, "nft table changed");
}

#[test]
fn bad_ipv6_input_is_rejected_and_nothing_applied() {
    if !common::require("bad_ipv6_input_is_rejected_and_nothing_applied") {
        return;
    }
    let mut env = Env::new();
    let ns = env.netns();
    let br = env.bridge();
    let (net, [a, b, _]) = subnet();
    let (net6, p6) = subnet6();
    let bad = |extra: Value| request("c6-bad", &br, &net, extra, json!([]));
    // The request alone.
    for (extra, needle) in [
        (json!({"subnet6": net}), "is an IPv4 subnet, not IPv6"),
        (json!({"subnet6": "fe80::/64"}), "not a unicast range"),
        (json!({"subnet6": "ff02::/16"}), "not a unicast range"),
        (json!({"subnet6": format!("{p6}1/64")}), "host bits"),
        (json!({"subnet6": format!("{p6}/127")}), "longer than /126"),
        (
            json!({"subnet6": net6, "gateway6": "fd89:ffff:ffff::1"}),
            "is not a host address of",
        ),
        (json!({"gateway6": format!("{p6}1")}), "without subnet6"),
        (
            json!({"ip_range": "10.255.255.0/30"}),
            "is not inside subnet",
        ),
        (
            json!({"ip_range": format!("{a}.{b}.0.0/16")}),
            "is not inside subnet",
        ),
        (json!({"ip_range": net6}), "is an IPv6 subnet, not IPv4"),
        (json!({"mtu": 10}), "mtu 10"),
    ] {
        check_rejected(&env, &ns, &bad(extra), 2, needle, &br);
    }
    for (extra, static6, needle) in [
        (json!({}), format!("{p6}5"), "has no subnet6"),
        (
            json!({"subnet6": net6}),
            "fd89:ffff:ffff::5".into(),
            "not a free host address",
        ),
        (
            json!({"subnet6": net6}),
            format!("{p6}1"),
            "not a free host address",
        ),
    ] {
        let mut r = bad(extra);
        r["networks"][0]["static_ip6"] = json!(static6);
        check_rejected(&env, &ns, &r, 2, needle, &br);
    }
    // Two attachments of one request with overlapping IPv6 subnets.
    let mut two = bad(json!({"subnet6": net6}));
    let (net_b, _) = subnet();
    // The /32 around the /64 (`fd89:PID:N::/64` -> `fd89:PID::/32`).
    let wide6 = p6.trim_end_matches(':').rsplit_once(':').expect("prefix").0;
    let br_b = env.bridge();
    two["networks"].as_array_mut().expect("networks").push(
        json!({"network": {"name": "other6", "bridge": br_b, "subnet": net_b,
                                 "subnet6": format!("{wide6}::/32")}}),
    );
    check_rejected(&env, &ns, &two, 3, "overlaps network \"net-", &br);
    assert!(!host_link_exists(&br_b), "second bridge created");

    // Against the state: a network in use holds an overlapping subnet6.
    let ns_used = env.netns();
    let br_used = env.bridge();
    let (net_used, _) = subnet();
    let used = request(
        "c6-used",
        &br_used,
        &net_used,
        json!({"subnet6": net6}),
        json!([]),
    );
    env.setup_ok(&ns_used, &used);
    let wider = bad(json!({"subnet6": format!("{wide6}::/32")}));
    check_rejected(
        &env,
        &ns,
        &wider,
        3,
        &format!("overlaps network \"net-{br_used}\""),
        &br,
    );
    env.teardown_ok(&ns_used, &used);

    // Against the host: an interface this test made holds an address in it.
    let holder = env.bridge();
    run("ip", &["link", "add", &holder, "type", "bridge"]);
    let (net6_h, p6_h) = subnet6();
    run(
        "ip",
        &[
            "addr",
            "add",
            &format!("{p6_h}7/64"),
            "dev",
            &holder,
            "nodad",
        ],
    );
    let clash = bad(json!({"subnet6": net6_h}));
    check_rejected(
        &env,
        &ns,
        &clash,
        3,
        &format!("on host interface \"{holder}\""),
        &br,
    );
}
