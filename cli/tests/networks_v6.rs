//! `berth network create --ipv6 / --subnet (twice) / --ip-range / --opt mtu`
//! end to end as root: two containers on a dual-stack network reach each
//! other over IPv6 and IPv4, inspect shows the IPv6 address; bad input is
//! refused with exit 125. Each test has its own bridge, subnets and
//! nftables table (never the host's berth0 or table `berth`).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;
use serde_json::Value;

fn berth(e: &Env, table: &str, args: &[&str]) -> Output {
    e.berth_in(table, args)
}

fn ok(e: &Env, table: &str, args: &[&str]) -> String {
    e.ok_in(table, args)
}

fn network_inspect(e: &Env, table: &str, name: &str) -> Value {
    let out = ok(e, table, &["network", "inspect", name]);
    serde_json::from_str::<Value>(&out).expect("json")[0].clone()
}

fn env(test: &str) -> Option<Env> {
    Some(Env::new("ctr-v6", net_runtime(test)?))
}

#[test]
fn dual_stack_network_containers_reach_each_other_over_ipv6() {
    const T: &str = "dual_stack_network_containers_reach_each_other_over_ipv6";
    let Some(e) = env(T) else {
        return;
    };
    let pid = std::process::id();
    let tag = pid % 200 + 20;
    let (bridge, table) = (format!("b6{}", pid % 100_000), format!("berth_six{pid}"));
    let (subnet, subnet6) = (format!("10.233.{tag}.0/24"), format!("fd89:233:{tag}::/64"));
    let range = format!("10.233.{tag}.128/28");
    ok(
        &e,
        &table,
        &[
            "network",
            "create",
            "--subnet",
            &subnet,
            "--subnet",
            &subnet6,
            "--ip-range",
            &range,
            "--opt",
            "mtu=1400",
            "--bridge",
            &bridge,
            "dualnet",
        ],
    );
    let net = network_inspect(&e, &table, "dualnet");
    assert_eq!(net["EnableIPv6"], true, "{net}");
    assert_eq!(net["IPAM"]["Config"][0]["IPRange"], range.as_str(), "{net}");
    assert_eq!(
        net["IPAM"]["Config"][1]["Subnet"],
        subnet6.as_str(),
        "{net}"
    );
    assert_eq!(
        net["IPAM"]["Config"][1]["Gateway"],
        format!("fd89:233:{tag}::1")
    );
    assert_eq!(net["Options"]["mtu"], "1400", "{net}");

    let rt = e.runtime.clone();
    let run = [
        "run",
        "--runtime",
        &rt,
        "-d",
        "--name",
        "srv",
        "--network",
        "dualnet",
    ];
    ok(
        &e,
        &table,
        &[&run[..], &["busybox:test", "sleep", "300"]].concat(),
    );
    let i = inspect(&e, "srv");
    let ns = &i["NetworkSettings"];
    let ip6 = ns["GlobalIPv6Address"].as_str().expect("GlobalIPv6Address");
    assert_eq!(ip6, format!("fd89:233:{tag}::2"), "{ns}");
    assert_eq!(ns["GlobalIPv6PrefixLen"], 64);
    assert_eq!(ns["IPv6Gateway"], format!("fd89:233:{tag}::1"));
    assert_eq!(ns["Networks"]["dualnet"]["GlobalIPv6Address"], ip6);
    let ip4: std::net::Ipv4Addr = ns["IPAddress"]
        .as_str()
        .expect("IPAddress")
        .parse()
        .unwrap();
    assert_eq!(ip4.octets()[..3], [10, 233, tag as u8], "{ns}");
    assert!(
        (128..144).contains(&ip4.octets()[3]),
        "{ip4} outside {range}"
    );

    // Another container reaches srv over IPv6 and IPv4 (and by name, AAAA),
    // with the network's MTU on its interface.
    let script = format!(
        "ping -6 -c1 -W5 {ip6} && ping -c1 -W5 {ip4} && cat /sys/class/net/eth0/mtu \
         && nslookup -type=AAAA srv"
    );
    let o = berth(
        &e,
        &table,
        &[
            "run",
            "--runtime",
            &rt,
            "--rm",
            "--network",
            "dualnet",
            "busybox:test",
            "sh",
            "-c",
            &script,
        ],
    );
    let out = text(&o.stdout);
    assert_eq!(code(&o), 0, "{out}{}", text(&o.stderr));
    assert!(out.contains(&format!("from {ip6}")), "IPv6 ping: {out}");
    assert!(out.contains(&format!("from {ip4}")), "IPv4 ping: {out}");
    assert!(out.lines().any(|l| l.trim() == "1400"), "mtu: {out}");
    assert!(
        out.contains(&format!("Address: {ip6}")),
        "AAAA of srv: {out}"
    );

    ok(&e, &table, &["rm", "-f", "srv"]);
    ok(&e, &table, &["network", "rm", "dualnet"]);
    assert!(
        !Path::new("/sys/class/net").join(&bridge).exists(),
        "bridge {bridge} left"
    );
    let nft = Command::new("nft")
        .args(["list", "table", "inet", &table])
        .output()
        .unwrap();
    assert!(!nft.status.success(), "nftables table {table} left");
    let state = std::fs::read_to_string(e.path("run/netd/state.json")).unwrap_or_default();
    assert!(!state.contains("fd89:233"), "IPv6 lease left: {state}");
    e.assert_no_containers();
}

#[test]
fn network_create_ipv6_defaults_and_bad_input() {
    const T: &str = "network_create_ipv6_defaults_and_bad_input";
    let Some(e) = env(T) else {
        return;
    };
    let table = format!("berth_sixb{}", std::process::id());
    // --ipv6 alone: a ULA per network index, gateway ::1 (no container is
    // started on it: the subnet is the same in every fresh store).
    ok(&e, &table, &["network", "create", "--ipv6", "auto6"]);
    let net = network_inspect(&e, &table, "auto6");
    assert_eq!(net["IPAM"]["Config"][0]["Subnet"], "10.89.1.0/24", "{net}");
    assert_eq!(
        net["IPAM"]["Config"][1]["Subnet"], "fd89:0:0:1::/64",
        "{net}"
    );
    assert_eq!(
        net["IPAM"]["Config"][1]["Gateway"], "fd89:0:0:1::1",
        "{net}"
    );
    // berth's own spelling.
    ok(
        &e,
        &table,
        &[
            "network",
            "create",
            "--subnet6",
            "fd89:77::/64",
            "--gateway6",
            "fd89:77::fe",
            "own6",
        ],
    );
    let net = network_inspect(&e, &table, "own6");
    assert_eq!(net["IPAM"]["Config"][1]["Gateway"], "fd89:77::fe", "{net}");
    assert_eq!(net["EnableIPv6"], true);
    let plain = network_inspect(&e, &table, "berth");
    assert_eq!(plain["EnableIPv6"], false);

    for (args, needle) in [
        (
            &["--subnet6", "10.5.0.0/24"][..],
            "is an IPv4 subnet, not IPv6",
        ),
        (
            &["--subnet", "10.5.0.0/24", "--subnet", "10.6.0.0/24"],
            "at most one IPv4",
        ),
        (
            &["--subnet6", "fd89:78::/64", "--gateway6", "fd89:79::1"],
            "not a host address",
        ),
        (&["--subnet", "fd89:77:0:0:1::/80"], "overlaps network own6"),
        (&["--gateway6", "fd89:78::1"], "needs --ipv6"),
        (&["--ip-range", "10.5.0.0/28"], "needs an IPv4 --subnet"),
        (
            &["--subnet", "10.5.0.0/24", "--ip-range", "10.6.0.0/28"],
            "is not inside subnet",
        ),
        (&["-o", "mtu=1400", "--opt", "color=blue"], "unknown option"),
        (&["--opt", "mtu=20"], "mtu 20 is outside"),
    ] {
        let o = berth(
            &e,
            &table,
            &[&["network", "create"], args, &["bad6"]].concat(),
        );
        let err = text(&o.stderr);
        assert_eq!(code(&o), 125, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {needle:?} in {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
    let names = ok(&e, &table, &["network", "ls", "-q"]);
    assert_eq!(
        names.lines().collect::<Vec<_>>(),
        ["berth", "auto6", "own6"]
    );
    ok(&e, &table, &["network", "rm", "auto6", "own6"]);
}
