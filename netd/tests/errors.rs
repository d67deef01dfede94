//! Invalid or conflicting requests: a JSON error, a non-zero exit, and
//! nothing applied.

mod common;

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;

use common::{host_link_exists, links_in, request, subnet, Env};
use serde_json::{json, Value};

/// `setup` of `req` fails with `code`; the netns keeps only `lo`, `bridge`
/// does not exist (unless `bridge_kept`), and state and nft are unchanged.
fn check_rejected(
    env: &Env,
    ns: &Path,
    req: &[u8],
    code: i64,
    bridge: &str,
    bridge_kept: bool,
) -> Value {
    let (leases, table) = (env.leases(), env.table_json());
    let (exit, v) = env.netd("setup", ns, req);
    assert_eq!(
        (i64::from(exit), v["code"].as_i64()),
        (code, Some(code)),
        "{v}"
    );
    assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    if ns.starts_with("/run/netns") && ns.exists() {
        assert_eq!(
            links_in(ns),
            vec!["lo".to_string()],
            "interfaces applied in the netns"
        );
    }
    assert_eq!(host_link_exists(bridge), bridge_kept, "bridge {bridge}");
    assert_eq!(env.leases(), leases, "state changed");
    assert_eq!(env.table_json(), table, "nft table changed");
    v
}

#[test]
fn malformed_json_is_rejected() {
    if !common::require("malformed_json_is_rejected") {
        return;
    }
    let mut env = Env::new();
    let ns = env.netns();
    let br = env.bridge();
    for bad in [
        &b"{not json"[..],
        b"",
        b"{\"container_id\": \"x\"}",
        b"[1,2]",
    ] {
        let v = check_rejected(&env, &ns, bad, 2, &br, false);
        assert!(
            v["error"]
                .as_str()
                .unwrap_or("")
                .starts_with("parse request"),
            "{v}"
        );
    }
    let unknown = json!({"container_id": "x", "container_name": "x", "networks": [], "bogus": 1});
    check_rejected(&env, &ns, unknown.to_string().as_bytes(), 2, &br, false);
}

#[test]
fn nonexistent_netns_is_rejected() {
    if !common::require("nonexistent_netns_is_rejected") {
        return;
    }
    let mut env = Env::new();
    let br = env.bridge();
    let (net, _) = subnet();
    let req = request("c-nons", &br, &net, json!({}), json!([]));
    let missing = Path::new("/run/netns/berth-test-does-not-exist");
    let v = check_rejected(&env, missing, req.to_string().as_bytes(), 4, &br, false);
    assert!(
        v["error"].as_str().unwrap_or("").contains("open netns"),
        "{v}"
    );
    // A file that is not a namespace.
    let not_ns = env.state.path().join("plain-file");
    std::fs::write(&not_ns, "").expect("write file");
    check_rejected(&env, &not_ns, req.to_string().as_bytes(), 4, &br, false);
    // A namespace, but not a network namespace.
    let mnt_ns = Path::new("/proc/self/ns/mnt");
    check_rejected(&env, mnt_ns, req.to_string().as_bytes(), 4, &br, false);
}

#[test]
fn overlapping_subnet_is_rejected() {
    if !common::require("overlapping_subnet_is_rejected") {
        return;
    }
    let mut env = Env::new();
    let (ns1, ns2) = (env.netns(), env.netns());
    let (br1, br2) = (env.bridge(), env.bridge());
    let (net, [a, b, _]) = subnet();
    let first = request("c-first", &br1, &net, json!({}), json!([]));
    env.setup_ok(&ns1, &first);
    // Another network whose /16 contains the first one's /24.
    let wider = request(
        "c-wider",
        &br2,
        &format!("{a}.{b}.0.0/16"),
        json!({}),
        json!([]),
    );
    let v = check_rejected(&env, &ns2, wider.to_string().as_bytes(), 3, &br2, false);
    assert!(
        v["error"].as_str().unwrap_or("").contains("overlaps"),
        "{v}"
    );
    // The same network name with another subnet.
    let mut changed = first.clone();
    changed["container_id"] = json!("c-changed");
    changed["networks"][0]["network"]["subnet"] = json!(format!("{a}.{b}.254.0/24"));
    check_rejected(&env, &ns2, changed.to_string().as_bytes(), 3, &br2, false);
    env.teardown_ok(&ns1, &first);
}

#[test]
fn invalid_addresses_are_rejected() {
    if !common::require("invalid_addresses_are_rejected") {
        return;
    }
    let mut env = Env::new();
    let (ns1, ns2) = (env.netns(), env.netns());
    let br = env.bridge();
    let (net, [a, b, c]) = subnet();
    let with_ip = |id: &str, ip: String| {
        let mut r = request(id, &br, &net, json!({}), json!([]));
        r["networks"][0]["static_ip"] = json!(ip);
        r
    };
    // Outside the subnet, and the gateway itself: invalid on their own.
    check_rejected(
        &env,
        &ns1,
        with_ip("c-out", format!("{a}.{b}.{}.9", c.wrapping_add(1)))
            .to_string()
            .as_bytes(),
        2,
        &br,
        false,
    );
    check_rejected(
        &env,
        &ns1,
        with_ip("c-gw", format!("{a}.{b}.{c}.1"))
            .to_string()
            .as_bytes(),
        2,
        &br,
        false,
    );
    // A static address already leased.
    let first = with_ip("c-static", format!("{a}.{b}.{c}.50"));
    let out = env.setup_ok(&ns1, &first);
    assert_eq!(
        out["interfaces"][0]["address"],
        format!("{a}.{b}.{c}.50/24")
    );
    check_rejected(
        &env,
        &ns2,
        with_ip("c-taken", format!("{a}.{b}.{c}.50"))
            .to_string()
            .as_bytes(),
        3,
        &br,
        true,
    );
    // The same container twice.
    check_rejected(&env, &ns2, first.to_string().as_bytes(), 3, &br, true);
    env.teardown_ok(&ns1, &first);
    assert!(!host_link_exists(&br));
}

#[test]
fn port_already_taken_is_rejected() {
    if !common::require("port_already_taken_is_rejected") {
        return;
    }
    let mut env = Env::new();
    let (ns1, ns2) = (env.netns(), env.netns());
    let (br1, br2) = (env.bridge(), env.bridge());
    let (net1, _) = subnet();
    let (net2, _) = subnet();
    let port = common::free_port();
    let first = request(
        "c-port1",
        &br1,
        &net1,
        json!({}),
        json!([{"host_port": port, "container_port": 80}]),
    );
    env.setup_ok(&ns1, &first);
    // Published by another container.
    let second = request(
        "c-port2",
        &br2,
        &net2,
        json!({}),
        json!([{"host_port": port, "container_port": 81}]),
    );
    let v = check_rejected(&env, &ns2, second.to_string().as_bytes(), 3, &br2, false);
    assert!(
        v["error"].as_str().unwrap_or("").contains("published"),
        "{v}"
    );
    env.teardown_ok(&ns1, &first);
    // Bound by a process on the host.
    let holder = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let busy = holder.local_addr().expect("addr").port();
    let third = request(
        "c-port3",
        &br2,
        &net2,
        json!({}),
        json!([{"host_port": busy, "container_port": 80}]),
    );
    let v = check_rejected(&env, &ns2, third.to_string().as_bytes(), 3, &br2, false);
    assert!(
        v["error"]
            .as_str()
            .unwrap_or("")
            .contains("in use on the host"),
        "{v}"
    );
}
