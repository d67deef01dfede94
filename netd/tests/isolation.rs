//! Isolation: containers on different networks cannot reach each other, and
//! an internal network has no route out.

mod common;

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use common::{in_netns, request, subnet, tcp_fetch, Env, Server};
use serde_json::json;

/// Whether a TCP connection from `netns` to `to` succeeds. Dropped packets
/// show up as a timeout, which is the expected failure here.
fn connects(netns: &std::path::Path, to: SocketAddr) -> bool {
    in_netns(netns, move || {
        TcpStream::connect_timeout(&to, Duration::from_secs(1)).is_ok()
    })
}

#[test]
fn networks_are_isolated_from_each_other() {
    if !common::require("networks_are_isolated_from_each_other") {
        return;
    }
    let mut env = Env::new();
    let (ns_a1, ns_a2, ns_b) = (env.netns(), env.netns(), env.netns());
    let (br_a, br_b) = (env.bridge(), env.bridge());
    let (net_a, [a, b, c]) = subnet();
    let (net_b, [x, y, z]) = subnet();
    let port = common::free_port();
    let published = json!([{"host_port": port, "container_port": 7000}]);
    let reqs = [
        (&ns_a1, request("c-a1", &br_a, &net_a, json!({}), published)),
        (&ns_a2, request("c-a2", &br_a, &net_a, json!({}), json!([]))),
        (&ns_b, request("c-b", &br_b, &net_b, json!({}), json!([]))),
    ];
    for (ns, r) in &reqs {
        env.setup_ok(ns, r);
    }
    let _server = Server::tcp(&ns_a1, 7000, "a1");
    let target = SocketAddr::from((Ipv4Addr::new(a, b, c, 2), 7000));
    // Same network: reachable (the control); other network: not.
    assert_eq!(
        in_netns(&ns_a2, move || tcp_fetch(target)).expect("same network"),
        "a1"
    );
    assert!(
        !connects(&ns_b, target),
        "network b reached a container on network a"
    );
    // Its published port stays reachable from network b through a host address.
    let via_host = SocketAddr::from((Ipv4Addr::new(x, y, z, 1), port));
    let got = in_netns(&ns_b, move || tcp_fetch(via_host));
    assert_eq!(got.expect("published port from network b"), "a1");
    for (ns, r) in &reqs {
        env.teardown_ok(ns, r);
    }
}

#[test]
fn internal_network_has_no_route_out() {
    if !common::require("internal_network_has_no_route_out") {
        return;
    }
    let mut env = Env::new();
    let (ns_int, ns_int2, ns_ext) = (env.netns(), env.netns(), env.netns());
    let (br_int, br_ext) = (env.bridge(), env.bridge());
    let (net_int, [a, b, c]) = subnet();
    let (net_ext, [x, y, z]) = subnet();
    let int_req = request(
        "c-int",
        &br_int,
        &net_int,
        json!({"internal": true}),
        json!([]),
    );
    let int2_req = request(
        "c-int2",
        &br_int,
        &net_int,
        json!({"internal": true}),
        json!([]),
    );
    let ext_req = request("c-ext", &br_ext, &net_ext, json!({}), json!([]));
    let out = env.setup_ok(&ns_int, &int_req);
    assert_eq!(out["interfaces"][0]["default_route"], false);
    assert_eq!(out["dns_servers"], json!([]));
    env.setup_ok(&ns_int2, &int2_req);
    env.setup_ok(&ns_ext, &ext_req);

    let _int_server = Server::tcp(&ns_int, 7001, "internal");
    let _ext_server = Server::tcp(&ns_ext, 7002, "external");
    let internal = SocketAddr::from((Ipv4Addr::new(a, b, c, 2), 7001));
    let external = SocketAddr::from((Ipv4Addr::new(x, y, z, 2), 7002));
    // Inside the internal network: reachable.
    assert_eq!(
        in_netns(&ns_int2, move || tcp_fetch(internal)).expect("same internal network"),
        "internal"
    );
    // Out of it (no default route) and into it (dropped): not.
    assert!(
        !connects(&ns_int, external),
        "internal container reached another network"
    );
    assert!(
        !connects(&ns_ext, internal),
        "another network reached the internal container"
    );
    let routes = std::process::Command::new("ip")
        .args([
            "-n",
            ns_int.file_name().and_then(|n| n.to_str()).expect("name"),
            "route",
        ])
        .output()
        .expect("ip route");
    assert!(
        !String::from_utf8_lossy(&routes.stdout).contains("default"),
        "internal container has a default route"
    );

    for (ns, r) in [
        (&ns_int, &int_req),
        (&ns_int2, &int2_req),
        (&ns_ext, &ext_req),
    ] {
        env.teardown_ok(ns, r);
    }
}
