//! Outbound NAT: a container's connection to a host beyond the uplink leaves
//! with the host's address. The "uplink" and the "outside host" are a veth
//! pair and a namespace this test creates; forwarding is enabled only on
//! that test-made interface, never globally.

mod common;

use std::net::{Ipv4Addr, SocketAddr};

use common::{in_netns, request, run, subnet, tcp_fetch, Env, Server};
use serde_json::json;

#[test]
fn outbound_connections_are_masqueraded() {
    if !common::require("outbound_connections_are_masqueraded") {
        return;
    }
    let mut env = Env::new();
    let (ns_ctr, ns_out) = (env.netns(), env.netns());
    let out_name = ns_out
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name")
        .to_string();
    // The test's uplink: host end `uplink`, the outside host at .2 behind it.
    let uplink = env.bridge();
    let (_, [a, b, c]) = subnet();
    let (host_ip, outside_ip) = (format!("{a}.{b}.{c}.1"), Ipv4Addr::new(a, b, c, 2));
    run(
        "ip",
        &[
            "link", "add", &uplink, "type", "veth", "peer", "name", "eth0", "netns", &out_name,
        ],
    );
    run(
        "ip",
        &["addr", "add", &format!("{host_ip}/24"), "dev", &uplink],
    );
    run("ip", &["link", "set", &uplink, "up"]);
    std::fs::write(format!("/proc/sys/net/ipv4/conf/{uplink}/forwarding"), "1")
        .expect("uplink forwarding");
    run(
        "ip",
        &[
            "-n",
            &out_name,
            "addr",
            "add",
            &format!("{outside_ip}/24"),
            "dev",
            "eth0",
        ],
    );
    run("ip", &["-n", &out_name, "link", "set", "eth0", "up"]);
    run("ip", &["-n", &out_name, "link", "set", "lo", "up"]);

    let br = env.bridge();
    let (net, _) = subnet();
    let req = request("c-out", &br, &net, json!({}), json!([]));
    env.setup_ok(&ns_ctr, &req);
    // The outside host has no route to the container subnet: only a
    // masqueraded connection can be answered.
    let _server = Server::tcp_peer(&ns_out, 9000);
    let to = SocketAddr::from((outside_ip, 9000));
    let seen = in_netns(&ns_ctr, move || tcp_fetch(to)).expect("outbound connection");
    assert_eq!(seen, host_ip, "source address not masqueraded");

    env.teardown_ok(&ns_ctr, &req);
}
