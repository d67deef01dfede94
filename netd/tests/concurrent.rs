//! IPAM under concurrency: 50 setups started at once on one network get 50
//! distinct addresses; after teardown nothing is left.

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
