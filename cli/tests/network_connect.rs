//! `berth network connect|disconnect` end to end as root, through
//! berth-netd: a running container joins a second user network live and
//! reaches its servers by name and address while keeping the first, loses
//! it again on disconnect, gets both back after stop/start; created
//! containers change only their record; bad input is refused with 125.
//! Each test has bridges, subnets and an nftables table of its own (never
//! the host's berth0 or table `berth`).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;
use serde_json::Value;

/// A test's own names: two bridges, two /24s (`10.OCTET.TAG.0`) and an
/// nftables table.
struct NetEnv {
    e: Env,
    tag: u32,
    octets: [u32; 2],
    bridges: [String; 2],
    table: String,
}

impl NetEnv {
    fn new(test: &str, prefix: &str, octets: [u32; 2]) -> Option<NetEnv> {
        let rt = net_runtime(test)?;
        let pid = std::process::id();
        let b = |i: u32| format!("b{prefix}{i}{}", pid % 100_000);
        Some(NetEnv {
            e: Env::new(&format!("ctr-{prefix}"), rt),
            tag: pid % 200 + 20,
            octets,
            bridges: [b(1), b(2)],
            table: format!("berth_{prefix}{pid}"),
        })
    }

    /// `berth ARGS` with this test's nftables table.
    fn berth(&self, args: &[&str]) -> Output {
        self.e.berth_in(&self.table, args)
    }

    fn ok(&self, args: &[&str]) -> String {
        self.e.ok_in(&self.table, args)
    }

    /// `berth ARGS` fails with 125, a one-line message naming `want`.
    fn refused(&self, args: &[&str], want: &str) {
        let o = self.berth(args);
        let err = text(&o.stderr);
        assert_eq!(code(&o), 125, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {want:?} in {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    }

    /// Networks `net1` and `net2` (DNS on) on this test's bridges.
    fn networks(&self) {
        for (i, (second, bridge)) in [
            (self.octets[0], &self.bridges[0]),
            (self.octets[1], &self.bridges[1]),
        ]
        .into_iter()
        .enumerate()
        {
            let subnet = format!("10.{second}.{}.0/24", self.tag);
            let name = format!("net{}", i + 1);
            self.ok(&[
                "network", "create", "--subnet", &subnet, "--bridge", bridge, &name,
            ]);
        }
    }

    /// A detached TCP server `name` on `network` saying `msg` on port 8080.
    fn server(&self, name: &str, network: &str, msg: &str) {
        self.ok(&[
            "run",
            "--runtime",
            &self.e.runtime,
            "-d",
            "--name",
            name,
            "--network",
            network,
            "busybox:test",
            "nc",
            "-ll",
            "-p",
            "8080",
            "-e",
            "echo",
            msg,
        ]);
    }

    /// What `target` port 8080 says to container `from` (`None`: nothing
    /// within 3 s).
    fn fetch(&self, from: &str, target: &str) -> Option<String> {
        let o = self.berth(&["exec", from, "nc", "-w", "3", target, "8080"]);
        let out = text(&o.stdout).trim().to_string();
        (code(&o) == 0 && !out.is_empty()).then_some(out)
    }

    /// `fetch`, retried while a new interface or server comes up.
    fn fetch_ok(&self, from: &str, target: &str, want: &str) {
        let mut got = None;
        for _ in 0..5 {
            got = self.fetch(from, target);
            if got.as_deref() == Some(want) {
                return;
            }
        }
        panic!("{from} -> {target}: {got:?}, want {want:?}");
    }

    /// `container`'s address on `network` (empty when it has none there).
    fn ip(&self, container: &str, network: &str) -> String {
        let i = inspect(&self.e, container);
        i["NetworkSettings"]["Networks"][network]["IPAddress"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// The networks inspect lists for `container`, sorted.
    fn networks_of(&self, container: &str) -> Vec<String> {
        let i = inspect(&self.e, container);
        let mut v: Vec<String> = i["NetworkSettings"]["Networks"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The containers `network inspect` lists on `network`, sorted.
    fn users(&self, network: &str) -> Vec<String> {
        let v: Value = serde_json::from_str(&self.ok(&["network", "inspect", network])).unwrap();
        let mut u: Vec<String> = v[0]["Containers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        u.sort();
        u
    }

    /// Bridges, the nftables table and every lease went with the networks.
    fn assert_network_gone(&self) {
        for b in &self.bridges {
            assert!(
                !Path::new("/sys/class/net").join(b).exists(),
                "bridge {b} left"
            );
        }
        let nft = Command::new("nft")
            .args(["list", "table", "inet", &self.table])
            .output()
            .unwrap();
        assert!(!nft.status.success(), "nftables table {} left", self.table);
        let state = std::fs::read_to_string(self.e.path("run/netd/state.json")).unwrap_or_default();
        let v: Value = serde_json::from_str(&state).unwrap_or_default();
        let leases = v["leases"].as_object().map_or(0, |m| m.len());
        assert_eq!(leases, 0, "leases left: {state}");
    }
}

impl Drop for NetEnv {
    /// Containers go with this test's table (Env's own cleanup would use
    /// the default one).
    fn drop(&mut self) {
        if let Ok(o) = self.e.cmd(&["ps", "-aq"]).output() {
            for id in text(&o.stdout).split_whitespace() {
                let _ = self.berth(&["rm", "-f", id]);
            }
        }
        for n in ["net1", "net2"] {
            let _ = self.berth(&["network", "rm", n]);
        }
    }
}

#[test]
fn a_running_container_joins_and_leaves_a_second_network_live() {
    const T: &str = "a_running_container_joins_and_leaves_a_second_network_live";
    let Some(n) = NetEnv::new(T, "c", [235, 236]) else {
        return;
    };
    n.networks();
    n.server("srv1", "net1", "from-one");
    n.server("srv2", "net2", "from-two");
    let ip2 = n.ip("srv2", "net2");
    n.ok(&[
        "run",
        "--runtime",
        &n.e.runtime,
        "-d",
        "--name",
        "cli",
        "--network",
        "net1",
        "busybox:test",
        "sleep",
        "1000",
    ]);
    let ip1 = n.ip("cli", "net1");
    n.fetch_ok("cli", "srv1", "from-one");
    assert_eq!(n.fetch("cli", &ip2), None, "net2 reachable before connect");

    n.ok(&["network", "connect", "--alias", "client", "net2", "cli"]);
    assert_eq!(n.networks_of("cli"), ["net1", "net2"]);
    assert_eq!(n.ip("cli", "net1"), ip1, "the first address stays");
    let on2 = n.ip("cli", "net2");
    assert!(
        on2.starts_with(&format!("10.{}.{}.", n.octets[1], n.tag)),
        "{on2}"
    );
    let ifaces = n.ok(&["exec", "cli", "ls", "/sys/class/net"]);
    assert_eq!(
        ifaces.split_whitespace().collect::<Vec<_>>(),
        ["eth0", "eth1", "lo"]
    );
    // By name and by address on the new network, and the first one still.
    n.fetch_ok("cli", "srv2", "from-two");
    n.fetch_ok("cli", &ip2, "from-two");
    n.fetch_ok("cli", "srv1", "from-one");
    // The alias resolves on net2 for its other containers.
    let o = n.ok(&["exec", "srv2", "nslookup", "client"]);
    assert!(o.contains(&on2), "{o}");
    assert_eq!(n.users("net2"), ["cli", "srv2"]);
    n.refused(&["network", "connect", "net2", "cli"], "already connected");

    n.ok(&["network", "disconnect", "net2", "cli"]);
    assert_eq!(n.networks_of("cli"), ["net1"]);
    assert_eq!(
        n.fetch("cli", &ip2),
        None,
        "net2 reachable after disconnect"
    );
    n.fetch_ok("cli", "srv1", "from-one");
    assert_eq!(n.ip("cli", "net1"), ip1);
    assert_eq!(n.users("net2"), ["srv2"]);
    n.refused(&["network", "disconnect", "net2", "cli"], "not connected");

    // Connected again, then stop/start: both networks come back.
    n.ok(&["network", "connect", "net2", "cli"]);
    n.ok(&["stop", "-t", "1", "cli"]);
    assert_eq!(
        n.networks_of("cli"),
        ["net1", "net2"],
        "stopped: the record"
    );
    assert_eq!(n.ip("cli", "net2"), "");
    n.ok(&["start", "cli"]);
    n.fetch_ok("cli", "srv2", "from-two");
    n.fetch_ok("cli", "srv1", "from-one");

    // While connected, net2 cannot go (even with srv2 gone).
    n.ok(&["rm", "-f", "srv2"]);
    n.refused(&["network", "rm", "net2"], "cli");

    // Without any network the container keeps only its loopback.
    n.ok(&["network", "disconnect", "net1", "cli"]);
    n.ok(&["network", "disconnect", "net2", "cli"]);
    let ifaces = n.ok(&["exec", "cli", "ls", "/sys/class/net"]);
    assert_eq!(ifaces.trim(), "lo");
    assert_eq!(n.networks_of("cli"), Vec::<String>::new());
    n.ok(&["network", "connect", "net1", "cli"]);
    n.fetch_ok("cli", "srv1", "from-one");

    n.ok(&["rm", "-f", "cli", "srv1"]);
    n.ok(&["network", "rm", "net1", "net2"]);
    n.assert_network_gone();
    n.e.assert_no_containers();
}

#[test]
fn created_containers_change_their_record_and_bad_input_is_refused() {
    const T: &str = "created_containers_change_their_record_and_bad_input_is_refused";
    let Some(n) = NetEnv::new(T, "k", [237, 238]) else {
        return;
    };
    n.networks();
    let static_ip = format!("10.{}.{}.77", n.octets[1], n.tag);
    n.ok(&[
        "create",
        "--runtime",
        &n.e.runtime,
        "--name",
        "idle",
        "--network",
        "net1",
        "busybox:test",
        "sleep",
        "1000",
    ]);
    n.ok(&["network", "connect", "--ip", &static_ip, "net2", "idle"]);
    let i = inspect(&n.e, "idle");
    let nets = &i["NetworkSettings"]["Networks"];
    assert_eq!(
        nets["net2"]["IPAMConfig"]["IPv4Address"],
        static_ip.as_str(),
        "{i}"
    );
    assert_eq!(nets["net2"]["IPAddress"], "", "not running: no address yet");
    assert_eq!(n.users("net2"), ["idle"]);
    n.ok(&["network", "disconnect", "net1", "idle"]);
    assert_eq!(n.networks_of("idle"), ["net2"]);
    // Started, it has what the record says: net2 only, as eth0, the static ip.
    n.ok(&["start", "idle"]);
    assert_eq!(n.ip("idle", "net2"), static_ip);
    let ifaces = n.ok(&["exec", "idle", "ls", "/sys/class/net"]);
    assert_eq!(
        ifaces.split_whitespace().collect::<Vec<_>>(),
        ["eth0", "lo"]
    );

    n.ok(&[
        "create",
        "--runtime",
        &n.e.runtime,
        "--name",
        "lonely",
        "--network",
        "none",
        "busybox:test",
        "true",
    ]);
    let record = |c: &str| {
        let i = inspect(&n.e, c);
        (i["HostConfig"].clone(), i["NetworkSettings"].clone())
    };
    let before = (record("idle"), record("lonely"));
    for (args, want) in [
        (
            &["network", "connect", "nosuchnet", "idle"][..],
            "no such network",
        ),
        (
            &["network", "connect", "net1", "nosuch"][..],
            "no such container",
        ),
        (
            &["network", "connect", "net2", "idle"][..],
            "already connected",
        ),
        (
            &["network", "connect", "net1", "lonely"][..],
            "network mode none",
        ),
        (
            &["network", "disconnect", "net1", "lonely"][..],
            "network mode none",
        ),
        (
            &["network", "disconnect", "net1", "idle"][..],
            "not connected",
        ),
        (
            &["network", "disconnect", "nosuchnet", "idle"][..],
            "no such network",
        ),
        (
            &["network", "connect", "--ip", "10.9.9.9", "net1", "idle"][..],
            "--ip",
        ),
        (
            &["network", "connect", "--ip", "10.89.0.9", "bridge", "idle"][..],
            "user-defined",
        ),
        (
            &["network", "connect", "--alias", "bad/name", "net1", "idle"][..],
            "--alias",
        ),
    ] {
        n.refused(args, want);
    }
    // A static address another running container holds: refused live by
    // berth-netd, with nothing changed.
    n.ok(&[
        "run",
        "--runtime",
        &n.e.runtime,
        "-d",
        "--name",
        "other",
        "--network",
        "net1",
        "busybox:test",
        "sleep",
        "1000",
    ]);
    let taken = n.ip("other", "net1");
    n.refused(
        &["network", "connect", "--ip", &taken, "net1", "idle"],
        "in use",
    );
    assert_eq!(
        (record("idle"), record("lonely")),
        before,
        "a refusal changed something"
    );

    // Stopped and disconnected from its last network, it starts with only
    // its loopback; connected live, it is on the network again.
    n.ok(&["stop", "-t", "1", "idle"]);
    n.ok(&["network", "disconnect", "net2", "idle"]);
    n.ok(&["start", "idle"]);
    let ifaces = n.ok(&["exec", "idle", "ls", "/sys/class/net"]);
    assert_eq!(ifaces.trim(), "lo");
    n.ok(&["network", "connect", "net1", "idle"]);
    let ifaces = n.ok(&["exec", "idle", "ls", "/sys/class/net"]);
    assert_eq!(
        ifaces.split_whitespace().collect::<Vec<_>>(),
        ["eth0", "lo"]
    );
    let on1 = n.ip("idle", "net1");
    assert!(
        on1.starts_with(&format!("10.{}.{}.", n.octets[0], n.tag)),
        "{on1}"
    );
    let o = n.ok(&["exec", "other", "ping", "-c", "1", "-W", "3", &on1]);
    assert!(o.contains("1 packets received"), "{o}");

    n.ok(&["rm", "-f", "idle", "lonely", "other"]);
    n.ok(&["network", "rm", "net1", "net2"]);
    n.assert_network_gone();
    n.e.assert_no_containers();
}
