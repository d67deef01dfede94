//! Setup and teardown for real, as root, in namespaces the tests create.

mod common;

use std::net::{Ipv4Addr, SocketAddr};

use common::{
    addrs_in, host_link_exists, in_netns, links_in, request, subnet, tcp_fetch, Env, Server,
};
use serde_json::json;

#[test]
fn setup_configures_the_netns_and_teardown_removes_everything() {
    if !common::require("setup_configures_the_netns_and_teardown_removes_everything") {
        return;
    }
    let mut env = Env::new();
    let ns = env.netns();
    let br = env.bridge();
    let (net, [a, b, c]) = subnet();
    let req = request("c-basic", &br, &net, json!({"mtu": 1400}), json!([]));
    let out = env.setup_ok(&ns, &req);

    let iface = &out["interfaces"][0];
    assert_eq!(iface["name"], "eth0");
    assert_eq!(iface["address"], format!("{a}.{b}.{c}.2/24"));
    assert_eq!(iface["gateway"], format!("{a}.{b}.{c}.1"));
    assert_eq!(iface["default_route"], true);
    let host_veth = iface["host_interface"]
        .as_str()
        .expect("host_interface")
        .to_string();

    // Inside: the address, MTU, MAC as reported, lo up, default route.
    assert!(
        addrs_in(&ns).contains(&format!("{a}.{b}.{c}.2/24")),
        "{:?}",
        addrs_in(&ns)
    );
    let ip = |args: &[&str]| {
        let o = std::process::Command::new("ip")
            .args(args)
            .output()
            .expect("ip");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let ns_name = ns
        .file_name()
        .and_then(|n| n.to_str())
        .expect("netns name")
        .to_string();
    let eth0 = ip(&["-n", &ns_name, "link", "show", "eth0"]);
    assert!(
        eth0.contains("mtu 1400") && eth0.contains(iface["mac_address"].as_str().expect("mac")),
        "{eth0}"
    );
    assert!(ip(&["-n", &ns_name, "link", "show", "lo"]).contains("UP"));
    assert!(ip(&["-n", &ns_name, "route"]).contains(&format!("default via {a}.{b}.{c}.1 dev eth0")));

    // Host: bridge with the gateway address, veth enslaved, sysctls on the bridge.
    assert!(ip(&["addr", "show", &br]).contains(&format!("{a}.{b}.{c}.1/24")));
    assert!(ip(&["link", "show", &host_veth]).contains(&format!("master {br}")));
    let sysctl = |k: &str| {
        std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{br}/{k}")).expect("sysctl")
    };
    assert_eq!(sysctl("route_localnet").trim(), "1");
    assert_eq!(sysctl("forwarding").trim(), "1");
    assert!(env.table_exists());
    assert_eq!(env.leases().as_object().map(|m| m.len()), Some(1));

    let td = env.teardown_ok(&ns, &req);
    assert_eq!(td["removed_interfaces"], json!([host_veth]));
    assert_eq!(td["removed_bridges"], json!([br]));
    assert!(!host_link_exists(&host_veth) && !host_link_exists(&br));
    assert_eq!(links_in(&ns), vec!["lo".to_string()]);
    assert!(!env.table_exists(), "nft table left behind");
    assert_eq!(env.leases(), json!({}));

    // A second teardown has no lease to remove.
    let (code, v) = env.netd("teardown", &ns, req.to_string().as_bytes());
    assert_eq!((code, v["code"].as_i64()), (4, Some(4)), "{v}");
}

#[test]
fn two_containers_on_one_network_reach_each_other() {
    if !common::require("two_containers_on_one_network_reach_each_other") {
        return;
    }
    let mut env = Env::new();
    let (ns1, ns2) = (env.netns(), env.netns());
    let br = env.bridge();
    let (net, [a, b, c]) = subnet();
    env.setup_ok(&ns1, &request("c-one", &br, &net, json!({}), json!([])));
    let second = env.setup_ok(&ns2, &request("c-two", &br, &net, json!({}), json!([])));
    assert_eq!(
        second["interfaces"][0]["address"],
        format!("{a}.{b}.{c}.3/24")
    );

    let _server = Server::tcp(&ns1, 8000, "hello from one");
    let to = SocketAddr::from((Ipv4Addr::new(a, b, c, 2), 8000));
    let got = in_netns(&ns2, move || tcp_fetch(to));
    assert_eq!(got.expect("connect from c-two to c-one"), "hello from one");

    env.teardown_ok(&ns1, &request("c-one", &br, &net, json!({}), json!([])));
    assert!(
        host_link_exists(&br),
        "bridge removed while c-two still uses it"
    );
    env.teardown_ok(&ns2, &request("c-two", &br, &net, json!({}), json!([])));
    assert!(!host_link_exists(&br));
}

#[test]
fn failed_apply_is_rolled_back() {
    if !common::require("failed_apply_is_rolled_back") {
        return;
    }
    let mut env = Env::new();
    let ns = env.netns();
    let br = env.bridge();
    let (net, _) = subnet();
    // A default route already in the netns makes the last apply step fail,
    // after the bridge and the veth pair were created.
    let n = ns
        .file_name()
        .and_then(|n| n.to_str())
        .expect("netns name")
        .to_string();
    for args in [
        vec![
            "-n", &n, "link", "add", "d0", "type", "veth", "peer", "name", "d1",
        ],
        vec!["-n", &n, "link", "set", "d0", "up"],
        vec!["-n", &n, "addr", "add", "192.168.251.1/24", "dev", "d0"],
        vec!["-n", &n, "route", "add", "default", "via", "192.168.251.2"],
    ] {
        common::run("ip", &args);
    }
    let req = request(
        "c-rollback",
        &br,
        &net,
        json!({}),
        json!([{"host_port": common::free_port(), "container_port": 80}]),
    );
    let (code, v) = env.netd("setup", &ns, req.to_string().as_bytes());
    assert_eq!(code, 5, "{v}");
    assert_eq!(v["code"], 5);
    assert!(
        v["error"].as_str().expect("error").contains("rolled back"),
        "{v}"
    );
    assert!(!host_link_exists(&br), "bridge left after rollback");
    let mut left = links_in(&ns);
    left.sort();
    assert_eq!(
        left,
        vec!["d0".to_string(), "d1".to_string(), "lo".to_string()]
    );
    assert!(!env.table_exists(), "nft table left after rollback");
    assert_eq!(env.leases(), json!({}));
}

/// A bridge without a set MAC takes the lowest MAC of its ports and changes
/// it when that port leaves; the remaining containers' ARP entry for the
/// gateway then points nowhere (seen as DNS timeouts after a teardown).
#[test]
fn regression_bridge_mac_changed_when_first_port_left() {
    if !common::require("regression_bridge_mac_changed_when_first_port_left") {
        return;
    }
    let mut env = Env::new();
    let namespaces: Vec<_> = (0..3).map(|_| env.netns()).collect();
    let br = env.bridge();
    let (net, _) = subnet();
    let reqs: Vec<_> = (0..3)
        .map(|i| request(&format!("c-mac{i}"), &br, &net, json!({}), json!([])))
        .collect();
    let mac = || {
        let mut nl = berth_netd::netlink::Netlink::open().expect("netlink");
        nl.link_by_name(&br)
            .expect("getlink")
            .expect("bridge")
            .mac
            .expect("mac")
    };
    env.setup_ok(&namespaces[0], &reqs[0]);
    let before = mac();
    assert_eq!(
        before[0] & 0x03,
        0x02,
        "not a locally administered unicast MAC"
    );
    for i in 1..3 {
        env.setup_ok(&namespaces[i], &reqs[i]);
    }
    for i in 0..2 {
        env.teardown_ok(&namespaces[i], &reqs[i]);
        assert_eq!(mac(), before, "bridge MAC changed when a port left");
    }
    env.teardown_ok(&namespaces[2], &reqs[2]);
}

#[test]
fn failed_state_write_rolls_back_nft_and_dns_too() {
    if !common::require("failed_state_write_rolls_back_nft_and_dns_too") {
        return;
    }
    let mut env = Env::new();
    let ns = env.netns();
    let br = env.bridge();
    let (net, _) = subnet();
    // The temp file of the state write cannot be created: the very last
    // step fails, after links, nft table and DNS responder were applied.
    std::fs::create_dir_all(env.state.path().join(".state.json.tmp/blocker")).expect("mkdir");
    let ports = json!([{"host_port": common::free_port(), "container_port": 80}]);
    let req = request("c-late", &br, &net, json!({"dns_enabled": true}), ports);
    let (code, v) = env.netd("setup", &ns, req.to_string().as_bytes());
    assert_eq!(code, 5, "{v}");
    assert!(
        v["error"].as_str().unwrap_or("").contains("write state"),
        "{v}"
    );
    assert_eq!(v.get("details"), None, "rollback steps failed: {v}");
    assert!(!host_link_exists(&br), "bridge left after rollback");
    assert_eq!(links_in(&ns), vec!["lo".to_string()]);
    assert!(!env.table_exists(), "nft table left after rollback");
    let pid_file = env.state.path().join(format!("dns/net-{br}.pid"));
    assert!(!pid_file.exists(), "dns responder left after rollback");
}

#[test]
fn teardown_after_the_netns_is_gone_cleans_up() {
    if !common::require("teardown_after_the_netns_is_gone_cleans_up") {
        return;
    }
    let mut env = Env::new();
    let ns = env.netns();
    let br = env.bridge();
    let (net, _) = subnet();
    let req = request("c-gone", &br, &net, json!({}), json!([]));
    let veth = env.setup_ok(&ns, &req)["interfaces"][0]["host_interface"]
        .as_str()
        .expect("veth")
        .to_string();
    // The container died and its netns went with it (the kernel destroys
    // the veth pair asynchronously; teardown copes either way).
    let name = ns
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name")
        .to_string();
    common::run("ip", &["netns", "del", &name]);
    let td = env.teardown_ok(&ns, &req);
    assert!(!host_link_exists(&veth), "veth left");
    assert_eq!(td["removed_bridges"], json!([br]));
    assert!(!env.table_exists());
    assert_eq!(env.leases(), json!({}));
}

#[test]
fn teardown_reports_every_failed_step_and_still_cleans_the_rest() {
    if !common::require("teardown_reports_every_failed_step_and_still_cleans_the_rest") {
        return;
    }
    let mut env = Env::new();
    let ns = env.netns();
    let br = env.bridge();
    let (net, _) = subnet();
    let req = request("c-partial", &br, &net, json!({}), json!([]));
    env.setup_ok(&ns, &req);
    // The state write will fail; links and nft must go regardless.
    std::fs::create_dir_all(env.state.path().join(".state.json.tmp/blocker")).expect("mkdir");
    let (code, v) = env.netd("teardown", &ns, req.to_string().as_bytes());
    assert_eq!((code, v["code"].as_i64()), (6, Some(6)), "{v}");
    let details = v["details"].as_array().expect("details");
    assert_eq!(details.len(), 1, "{v}");
    assert!(
        details[0].as_str().unwrap_or("").contains("write state"),
        "{v}"
    );
    assert_eq!(links_in(&ns), vec!["lo".to_string()]);
    assert!(!host_link_exists(&br));
    assert!(!env.table_exists());
}
