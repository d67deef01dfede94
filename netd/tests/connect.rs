//! `connect` and `disconnect` for real, as root, in namespaces the tests
//! create: a set-up container gains and loses networks while its other
//! interfaces stay as they are; bad requests change nothing.

mod common;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::time::Duration;

use common::{
    addrs_in, host_link_exists, in_netns, links_in, request, subnet, tcp_fetch, Env, Server,
};
use serde_json::{json, Value};

/// One attachment of network `name` on `bridge`/`subnet` with `extra`
/// network fields, as a connect/disconnect request of container `id`.
fn attach_req(id: &str, bridge: &str, subnet: &str, extra: Value) -> Value {
    request(id, bridge, subnet, extra, json!([]))
}

fn netd(env: &Env, cmd: &str, ns: &Path, req: &Value) -> (i32, Value) {
    env.netd(cmd, ns, req.to_string().as_bytes())
}

fn ok(env: &Env, cmd: &str, ns: &Path, req: &Value) -> Value {
    let (code, v) = netd(env, cmd, ns, req);
    assert_eq!(code, 0, "{cmd} failed: {v}");
    v
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// `(index, MAC)` of `name` inside `netns`: the same link, untouched.
fn link_id(netns: &Path, name: &str) -> (u32, Option<[u8; 6]>) {
    let ns = berth_netd::netns::Netns::open(netns).expect("open netns");
    let l = ns
        .netlink()
        .expect("netlink")
        .link_by_name(name)
        .expect("getlink")
        .unwrap_or_else(|| panic!("{name} missing in {}", netns.display()));
    (l.index, l.mac)
}

/// `ip -n NETNS route` (IPv4).
fn routes(netns: &Path) -> String {
    let name = netns.file_name().and_then(|n| n.to_str()).expect("name");
    let o = std::process::Command::new("ip")
        .args(["-n", name, "route"])
        .output()
        .expect("ip route");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `(rcode, A records)` for `name` asked of `server`:53 from `netns`.
fn resolve(netns: &Path, server: Ipv4Addr, name: &str) -> (u8, Vec<Ipv4Addr>) {
    let mut q = vec![0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for l in name.split('.') {
        q.push(l.len() as u8);
        q.extend_from_slice(l.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    let got = in_netns(netns, move || -> std::io::Result<(u8, Vec<Ipv4Addr>)> {
        let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        s.send_to(&q, (server, 53))?;
        let mut r = [0u8; 1500];
        let (n, _) = s.recv_from(&mut r)?;
        // Our answers: a name pointer, type, class, TTL, length 4, address.
        let ips = r[q.len()..n]
            .chunks_exact(16)
            .map(|rr| Ipv4Addr::new(rr[12], rr[13], rr[14], rr[15]))
            .collect();
        Ok((r[3] & 0x0f, ips))
    });
    got.expect("dns query")
}

/// The nft table without handles (the table is replaced as a whole after
/// a change, so equal rules come with new handles).
fn rules(env: &Env) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.remove("handle");
                m.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut t = env.table_json();
    strip(&mut t);
    t
}

/// What a refused request must leave as it was.
fn snapshot(env: &Env, ns: &Path) -> (Value, Value, Vec<String>, Vec<String>) {
    let links = sorted(links_in(ns));
    (env.leases(), rules(env), links, sorted(addrs_in(ns)))
}

#[test]
fn connect_adds_a_network_live_and_disconnect_removes_only_it() {
    if !common::require("connect_adds_a_network_live_and_disconnect_removes_only_it") {
        return;
    }
    let mut env = Env::new();
    let (ns, peer) = (env.netns(), env.netns());
    let (br1, br2) = (env.bridge(), env.bridge());
    let (s1, [a, b, c]) = subnet();
    let (s2, [d, e, f]) = subnet();
    let gw2 = Ipv4Addr::new(d, e, f, 1);
    // The second network has DNS and is internal (unknown names get
    // NXDOMAIN instead of going upstream).
    let net2 = json!({"dns_enabled": true, "internal": true});
    ok(
        &env,
        "setup",
        &ns,
        &attach_req("c-conn", &br1, &s1, json!({})),
    );
    ok(
        &env,
        "setup",
        &peer,
        &attach_req("c-peer", &br2, &s2, net2.clone()),
    );
    let eth0 = link_id(&ns, "eth0");
    let ip1 = Ipv4Addr::new(a, b, c, 2);
    let (table, leases) = (rules(&env), env.leases());
    let _server = Server::tcp(&ns, 8000, "from-c");
    assert_eq!(
        tcp_fetch((ip1, 8000).into()).expect("host to eth0"),
        "from-c"
    );

    let conn = attach_req("c-conn", &br2, &s2, net2.clone());
    let out = ok(&env, "connect", &ns, &conn);
    let iface = &out["interfaces"][0];
    let ip2 = Ipv4Addr::new(d, e, f, 3); // the peer has .2
    assert_eq!(iface["name"], "eth1", "{out}");
    assert_eq!(iface["address"], format!("{ip2}/24"));
    assert_eq!(iface["default_route"], false, "the first network keeps it");
    assert_eq!(out["interfaces"].as_array().map(Vec::len), Some(1));
    assert_eq!(out["dns_servers"], json!([gw2.to_string()]));
    let veth2 = iface["host_interface"].as_str().expect("veth").to_string();
    assert!(host_link_exists(&veth2));

    // The new interface has its address; eth0 is the same link, same
    // address, same default route, still reachable.
    assert_eq!(sorted(links_in(&ns)), ["eth0", "eth1", "lo"]);
    let addrs = addrs_in(&ns);
    assert!(addrs.contains(&format!("{ip1}/24")) && addrs.contains(&format!("{ip2}/24")));
    assert_eq!(link_id(&ns, "eth0"), eth0);
    assert!(routes(&ns).contains(&format!("default via {a}.{b}.{c}.1 dev eth0")));
    assert_eq!(tcp_fetch((ip1, 8000).into()).expect("eth0 after"), "from-c");
    let to2 = SocketAddr::from((ip2, 8000));
    let got = in_netns(&peer, move || tcp_fetch(to2));
    assert_eq!(got.expect("peer to eth1"), "from-c");
    // The second network's DNS knows the container now.
    assert_eq!(resolve(&peer, gw2, "c-conn"), (0, vec![ip2]));
    let lease = &env.leases()["c-conn"];
    assert_eq!(lease["attachments"].as_array().map(Vec::len), Some(2));

    // Connecting it twice is a conflict, and changes nothing.
    let before = snapshot(&env, &ns);
    let (code, v) = netd(&env, "connect", &ns, &conn);
    assert_eq!((code, v["code"].as_i64()), (3, Some(3)), "{v}");
    assert!(v["error"]
        .as_str()
        .unwrap_or("")
        .contains("already connected"));
    assert_eq!(snapshot(&env, &ns), before);

    // Disconnect: nothing of the second network is left in the container.
    let out = ok(&env, "disconnect", &ns, &conn);
    assert_eq!(out["removed_interfaces"], json!([veth2]));
    assert_eq!(out["removed_bridges"], json!([]), "the peer still uses it");
    assert!(!out["dns_servers"].to_string().contains(&gw2.to_string()));
    assert!(!host_link_exists(&veth2), "veth left");
    assert_eq!(sorted(links_in(&ns)), ["eth0", "lo"]);
    let addrs = addrs_in(&ns);
    assert!(addrs.contains(&format!("{ip1}/24")), "{addrs:?}");
    assert!(
        !addrs
            .iter()
            .any(|a| a.starts_with(&format!("{d}.{e}.{f}."))),
        "{addrs:?}"
    );
    assert_eq!(link_id(&ns, "eth0"), eth0);
    assert_eq!(env.leases(), leases, "lease part left");
    assert_eq!(rules(&env), table, "nft rules left");
    assert_eq!(
        resolve(&peer, gw2, "c-conn"),
        (3, vec![]),
        "DNS record left"
    );
    assert_eq!(tcp_fetch((ip1, 8000).into()).expect("eth0 still"), "from-c");
    let (code, v) = netd(&env, "disconnect", &ns, &conn);
    assert_eq!(
        (code, v["code"].as_i64()),
        (4, Some(4)),
        "not connected: {v}"
    );

    env.teardown_ok(&peer, &attach_req("c-peer", &br2, &s2, json!({})));
    env.teardown_ok(&ns, &attach_req("c-conn", &br1, &s1, json!({})));
    assert!(!host_link_exists(&br1) && !host_link_exists(&br2));
    assert!(!env.table_exists());
    assert_eq!(env.leases(), json!({}));
}

#[test]
fn disconnect_moves_the_default_route_and_takes_the_lease_with_the_last_network() {
    if !common::require(
        "disconnect_moves_the_default_route_and_takes_the_lease_with_the_last_network",
    ) {
        return;
    }
    let mut env = Env::new();
    let ns = env.netns();
    let (br1, br2) = (env.bridge(), env.bridge());
    let (s1, _) = subnet();
    let (s2, [d, e, f]) = subnet();
    let one = attach_req("c-route", &br1, &s1, json!({}));
    let two = attach_req("c-route", &br2, &s2, json!({}));
    ok(&env, "setup", &ns, &one);
    ok(&env, "connect", &ns, &two);

    // The first network goes: its bridge (netd's, now unused), its rules,
    // and the default route moves to the second.
    let out = ok(&env, "disconnect", &ns, &one);
    assert_eq!(out["removed_bridges"], json!([br1]));
    assert!(!host_link_exists(&br1));
    assert!(
        !env.table_json().to_string().contains(&br1),
        "rules of {br1} left"
    );
    assert_eq!(sorted(links_in(&ns)), ["eth1", "lo"]);
    assert!(
        routes(&ns).contains(&format!("default via {d}.{e}.{f}.1 dev eth1")),
        "{}",
        routes(&ns)
    );
    // Back again: the lowest free name, and no second default route.
    let out = ok(&env, "connect", &ns, &one);
    assert_eq!(out["interfaces"][0]["name"], "eth0");
    assert_eq!(out["interfaces"][0]["default_route"], false);

    // Both at once: the lease goes with its last attachment, then the table.
    let mut both = one.clone();
    both["networks"]
        .as_array_mut()
        .expect("networks")
        .push(two["networks"][0].clone());
    let out = ok(&env, "disconnect", &ns, &both);
    // (In the lease's order: the second network is first since the reconnect.)
    assert_eq!(out["removed_bridges"], json!([br2, br1]));
    assert_eq!(links_in(&ns), ["lo"]);
    assert_eq!(env.leases(), json!({}));
    assert!(!env.table_exists());

    // A container without a lease gets one from connect, ports and all.
    let mut with_port = one.clone();
    with_port["port_mappings"] = json!([{"host_port": common::free_port(), "container_port": 80}]);
    let out = ok(&env, "connect", &ns, &with_port);
    assert_eq!(out["interfaces"][0]["default_route"], true);
    let published = &out["port_mappings"][0]["host_port"];
    assert_eq!(
        published, &with_port["port_mappings"][0]["host_port"],
        "{out}"
    );
    env.teardown_ok(&ns, &one);
    assert!(!host_link_exists(&br1) && !env.table_exists());
}

#[test]
fn bad_connects_and_disconnects_change_nothing() {
    if !common::require("bad_connects_and_disconnects_change_nothing") {
        return;
    }
    let mut env = Env::new();
    let (ns, other) = (env.netns(), env.netns());
    let (br1, br2) = (env.bridge(), env.bridge());
    let (s1, _) = subnet();
    let (s2, [d, e, f]) = subnet();
    // Internal: the second network will want the default route.
    ok(
        &env,
        "setup",
        &ns,
        &attach_req("c-bad", &br1, &s1, json!({"internal": true})),
    );
    let good = attach_req("c-bad", &br2, &s2, json!({}));
    let with = |f: &dyn Fn(&mut Value)| {
        let mut r = good.clone();
        f(&mut r);
        r
    };
    let cases: Vec<(&str, Value, &Path, i64)> = vec![
        (
            "static ip outside",
            with(&|r| r["networks"][0]["static_ip"] = json!("10.0.0.5")),
            &ns,
            2,
        ),
        ("no networks", with(&|r| r["networks"] = json!([])), &ns, 2),
        (
            "ports",
            with(&|r| r["port_mappings"] = json!([{"host_port": 8, "container_port": 8}])),
            &ns,
            3,
        ),
        (
            "already connected",
            attach_req("c-bad", &br1, &s1, json!({"internal": true})),
            &ns,
            3,
        ),
        (
            "interface exists",
            with(&|r| r["networks"][0]["interface_name"] = json!("eth0")),
            &ns,
            3,
        ),
        ("another netns", good.clone(), &other, 3),
        (
            "overlapping subnet",
            attach_req("c-bad", &br2, &s1, json!({})),
            &ns,
            3,
        ),
        (
            "missing netns",
            good.clone(),
            Path::new("/run/netns/berth-test-nope"),
            4,
        ),
    ];
    for (what, req, netns, code) in cases {
        let before = snapshot(&env, &ns);
        let (exit, v) = netd(&env, "connect", netns, &req);
        assert_eq!(
            (i64::from(exit), v["code"].as_i64()),
            (code, Some(code)),
            "{what}: {v}"
        );
        assert_eq!(snapshot(&env, &ns), before, "{what}: something changed");
        assert!(!host_link_exists(&br2), "{what}: bridge made");
    }
    let mut gone = good.clone();
    gone["container_id"] = json!("c-nobody");
    for (what, req, code) in [("not connected", good.clone(), 4), ("no lease", gone, 4)] {
        let before = snapshot(&env, &ns);
        let (exit, v) = netd(&env, "disconnect", &ns, &req);
        assert_eq!(
            (i64::from(exit), v["code"].as_i64()),
            (code, Some(code)),
            "{what}: {v}"
        );
        assert_eq!(snapshot(&env, &ns), before, "{what}: something changed");
    }

    // A default route already there makes the last step fail: everything
    // the connect made is rolled back, the first network untouched.
    let n = ns
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name")
        .to_string();
    for args in [
        vec![
            "-n", &n, "link", "add", "d0", "type", "veth", "peer", "name", "d1",
        ],
        vec!["-n", &n, "link", "set", "d0", "up"],
        vec!["-n", &n, "addr", "add", "192.168.252.1/24", "dev", "d0"],
        vec!["-n", &n, "route", "add", "default", "via", "192.168.252.2"],
    ] {
        common::run("ip", &args);
    }
    let before = snapshot(&env, &ns);
    let (exit, v) = netd(&env, "connect", &ns, &good);
    assert_eq!((exit, v["code"].as_i64()), (5, Some(5)), "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or("")
            .starts_with("connect of container"),
        "{v}"
    );
    assert_eq!(snapshot(&env, &ns), before, "not rolled back");
    assert!(!host_link_exists(&br2), "bridge left after rollback");
    assert!(!addrs_in(&ns)
        .iter()
        .any(|a| a.starts_with(&format!("{d}.{e}.{f}."))));
    env.teardown_ok(&ns, &good);
    assert!(!host_link_exists(&br1) && !env.table_exists());
}
