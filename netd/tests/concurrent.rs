//! IPAM under concurrency: 50 setups started at once on one network get 50
//! distinct addresses, connects racing setups too; after teardown (and
//! disconnect) nothing is left.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::{addrs_in, host_link_exists, links_in, request, subnet, Env};
use serde_json::{json, Value};

const N: usize = 50;

#[test]
fn fifty_concurrent_setups_get_distinct_addresses_and_teardown_leaves_nothing() {
    let name = "fifty_concurrent_setups_get_distinct_addresses_and_teardown_leaves_nothing";
    if !common::require(name) {
        return;
    }
    let mut env = Env::new();
    let br = env.bridge();
    let (net, [a, b, c]) = subnet();
    let namespaces: Vec<_> = (0..N).map(|_| env.netns()).collect();
    let reqs: Vec<Value> = (0..N)
        .map(|i| request(&format!("c-par-{i}"), &br, &net, json!({}), json!([])))
        .collect();

    let env = Arc::new(env);
    let barrier = Arc::new(std::sync::Barrier::new(N));
    let threads: Vec<_> = (0..N)
        .map(|i| {
            let (env, barrier, ns, req) = (
                env.clone(),
                barrier.clone(),
                namespaces[i].clone(),
                reqs[i].clone(),
            );
            std::thread::spawn(move || {
                barrier.wait();
                env.netd("setup", &ns, req.to_string().as_bytes())
            })
        })
        .collect();
    let results: Vec<(i32, Value)> = threads
        .into_iter()
        .map(|t| t.join().expect("setup thread"))
        .collect();

    let mut addresses = BTreeSet::new();
    let mut veths = Vec::new();
    for (i, (code, v)) in results.iter().enumerate() {
        assert_eq!(*code, 0, "setup {i}: {v}");
        let addr = v["interfaces"][0]["address"]
            .as_str()
            .expect("address")
            .to_string();
        assert!(
            addr.starts_with(&format!("{a}.{b}.{c}.")) && addr.ends_with("/24"),
            "{addr}"
        );
        assert!(
            addrs_in(&namespaces[i]).contains(&addr),
            "netns {i} lacks {addr}"
        );
        addresses.insert(addr);
        veths.push(
            v["interfaces"][0]["host_interface"]
                .as_str()
                .expect("veth")
                .to_string(),
        );
    }
    assert_eq!(addresses.len(), N, "duplicate addresses handed out");
    assert_eq!(env.leases().as_object().map(|m| m.len()), Some(N));

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
    for (i, ns) in namespaces.iter().enumerate() {
        assert_eq!(links_in(ns), vec!["lo".to_string()], "netns {i}");
        assert!(
            addrs_in(ns).iter().all(|a| a.starts_with("127.")),
            "netns {i} keeps an address"
        );
        assert!(!host_link_exists(&veths[i]), "veth {} left", veths[i]);
    }
    assert!(!host_link_exists(&br), "bridge left");
    assert_eq!(env.leases(), json!({}), "leases left");
    assert!(!env.table_exists(), "nft table left");
}

/// Connects and disconnects race with setups of other containers on the
/// same network: every address is handed out once, each container keeps
/// its first interface, and disconnect leaves what setup made.
#[test]
fn concurrent_connects_get_distinct_addresses_and_disconnects_leave_the_rest() {
    let name = "concurrent_connects_get_distinct_addresses_and_disconnects_leave_the_rest";
    if !common::require(name) {
        return;
    }
    const M: usize = 12;
    let mut env = Env::new();
    let (br1, br2) = (env.bridge(), env.bridge());
    let (net1, _) = subnet();
    let (net2, [a, b, c]) = subnet();
    let namespaces: Vec<_> = (0..M).map(|_| env.netns()).collect();
    let id = |i: usize| format!("c-race-{i}");
    // Even ones are set up on net1 first and connect to net2; odd ones are
    // set up on net2 meanwhile.
    for i in (0..M).step_by(2) {
        let (code, v) = env.netd(
            "setup",
            &namespaces[i],
            request(&id(i), &br1, &net1, json!({}), json!([]))
                .to_string()
                .as_bytes(),
        );
        assert_eq!(code, 0, "setup {i}: {v}");
    }
    let env = Arc::new(env);
    let barrier = Arc::new(std::sync::Barrier::new(M));
    let threads: Vec<_> = (0..M)
        .map(|i| {
            let (env, barrier, ns) = (env.clone(), barrier.clone(), namespaces[i].clone());
            let req = request(&id(i), &br2, &net2, json!({}), json!([]));
            let op = if i % 2 == 0 { "connect" } else { "setup" };
            std::thread::spawn(move || {
                barrier.wait();
                env.netd(op, &ns, req.to_string().as_bytes())
            })
        })
        .collect();
    let mut addresses = BTreeSet::new();
    for (i, t) in threads.into_iter().enumerate() {
        let (code, v) = t.join().expect("thread");
        assert_eq!(code, 0, "{i}: {v}");
        let addr = v["interfaces"][0]["address"].as_str().expect("address");
        assert!(addr.starts_with(&format!("{a}.{b}.{c}.")), "{addr}");
        assert!(addrs_in(&namespaces[i]).contains(&addr.to_string()));
        addresses.insert(addr.to_string());
        let want = if i % 2 == 0 { "eth1" } else { "eth0" };
        assert_eq!(v["interfaces"][0]["name"], want, "{i}: {v}");
    }
    assert_eq!(addresses.len(), M, "duplicate addresses handed out");

    let threads: Vec<_> = (0..M)
        .map(|i| {
            let (env, ns) = (env.clone(), namespaces[i].clone());
            let req = request(&id(i), &br2, &net2, json!({}), json!([]));
            let op = if i % 2 == 0 { "disconnect" } else { "teardown" };
            std::thread::spawn(move || env.netd(op, &ns, req.to_string().as_bytes()))
        })
        .collect();
    for (i, t) in threads.into_iter().enumerate() {
        let (code, v) = t.join().expect("thread");
        assert_eq!(code, 0, "{i}: {v}");
    }
    assert!(!host_link_exists(&br2), "second bridge left");
    let leases = env.leases();
    assert_eq!(leases.as_object().map(|m| m.len()), Some(M / 2));
    for i in (0..M).step_by(2) {
        assert_eq!(links_in(&namespaces[i]).len(), 2, "lo and eth0 in {i}");
        let att = &leases[id(i)]["attachments"];
        assert_eq!(att.as_array().map(Vec::len), Some(1), "{leases}");
        let req = request(&id(i), &br1, &net1, json!({}), json!([]));
        let (code, v) = env.netd("teardown", &namespaces[i], req.to_string().as_bytes());
        assert_eq!(code, 0, "teardown {i}: {v}");
    }
    assert!(!host_link_exists(&br1) && !env.table_exists());
    assert_eq!(env.leases(), json!({}));
}
