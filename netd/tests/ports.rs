//! Published ports via nftables DNAT: from the host on 127.0.0.1 and on the
//! bridge address, from another container (hairpin), TCP and UDP.
//! Only 127.0.0.1 and addresses of the test's own namespaces/bridge are
//! contacted.

mod common;

use std::net::{Ipv4Addr, SocketAddr};

use common::{free_port, in_netns, request, subnet, tcp_fetch, udp_ask, Env, Server};
use serde_json::json;

#[test]
fn published_tcp_port_answers_on_localhost_bridge_and_hairpin() {
    if !common::require("published_tcp_port_answers_on_localhost_bridge_and_hairpin") {
        return;
    }
    let mut env = Env::new();
    let (ns_srv, ns_cli) = (env.netns(), env.netns());
    let br = env.bridge();
    let (net, [a, b, c]) = subnet();
    let port = free_port();
    let srv_req = request(
        "c-web",
        &br,
        &net,
        json!({}),
        json!([{"host_port": port, "container_port": 8080}]),
    );
    let out = env.setup_ok(&ns_srv, &srv_req);
    assert_eq!(out["port_mappings"][0]["host_port"], port);
    let cli_req = request("c-client", &br, &net, json!({}), json!([]));
    env.setup_ok(&ns_cli, &cli_req);
    let _server = Server::tcp(&ns_srv, 8080, "published");

    let local = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    assert_eq!(tcp_fetch(local).expect("connect to 127.0.0.1"), "published");
    let gateway = SocketAddr::from((Ipv4Addr::new(a, b, c, 1), port));
    assert_eq!(
        tcp_fetch(gateway).expect("connect to the bridge address"),
        "published"
    );
    let hairpin = in_netns(&ns_cli, move || tcp_fetch(gateway));
    assert_eq!(
        hairpin.expect("connect from another container"),
        "published"
    );

    env.teardown_ok(&ns_cli, &cli_req);
    env.teardown_ok(&ns_srv, &srv_req);
    assert!(!env.table_exists(), "nft table left");
    assert!(
        tcp_fetch(local).is_err(),
        "port still forwarded after teardown"
    );
}

#[test]
fn published_udp_port_answers_on_localhost() {
    if !common::require("published_udp_port_answers_on_localhost") {
        return;
    }
    let mut env = Env::new();
    let ns = env.netns();
    let br = env.bridge();
    let (net, _) = subnet();
    let port = free_port();
    let ports = json!([{"host_ip": "127.0.0.1", "host_port": port, "container_port": 5353, "protocol": "udp"}]);
    let req = request("c-udp", &br, &net, json!({}), ports);
    env.setup_ok(&ns, &req);
    let _server = Server::udp(&ns, 5353, "udp-published");
    let local = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    assert_eq!(udp_ask(local).expect("udp via 127.0.0.1"), "udp-published");
    env.teardown_ok(&ns, &req);
    assert!(!env.table_exists(), "nft table left");
}

/// Two consecutive ports free on the host for TCP and UDP.
fn free_port_pair() -> u16 {
    loop {
        let p = free_port();
        if p < u16::MAX && std::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, p + 1)).is_ok() {
            return p;
        }
    }
}

#[test]
fn published_port_range_answers_on_localhost() {
    if !common::require("published_port_range_answers_on_localhost") {
        return;
    }
    let mut env = Env::new();
    let ns = env.netns();
    let br = env.bridge();
    let (net, _) = subnet();
    let port = free_port_pair();
    let spec: berth_netd::wire::PortMapping = format!("{port}-{}:8080-8081/tcp", port + 1)
        .parse()
        .expect("port spec");
    // A second range onto the same ports (one `dport A-B dnat to IP` rule).
    let same = loop {
        let q = free_port_pair();
        if q.abs_diff(port) > 1 {
            break q;
        }
    };
    let same_spec: berth_netd::wire::PortMapping =
        format!("{same}-{}:{same}-{}", same + 1, same + 1)
            .parse()
            .expect("port spec");
    let ports = serde_json::to_value([spec, same_spec]).expect("json");
    let req = request("c-range", &br, &net, json!({}), ports);
    let out = env.setup_ok(&ns, &req);
    assert_eq!(out["port_mappings"][0]["range"], 2);
    let _first = Server::tcp(&ns, 8080, "range-first");
    let _second = Server::tcp(&ns, 8081, "range-second");
    let _third = Server::tcp(&ns, same + 1, "range-same");
    let at = |p: u16| SocketAddr::from((Ipv4Addr::LOCALHOST, p));
    assert_eq!(tcp_fetch(at(port)).expect("first port"), "range-first");
    assert_eq!(
        tcp_fetch(at(port + 1)).expect("second port"),
        "range-second"
    );
    assert_eq!(
        tcp_fetch(at(same + 1)).expect("same-port range"),
        "range-same"
    );
    env.teardown_ok(&ns, &req);
    assert!(!env.table_exists(), "nft table left");
    assert!(tcp_fetch(at(port + 1)).is_err(), "range still forwarded");
}
