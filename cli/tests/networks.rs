//! `berth run --network bridge|NAME`, `-p`, `berth port` and `berth network`
//! end to end as root, through berth-netd, each test on a bridge, subnet and
//! nftables table of its own (never the host's berth0 or table `berth`).

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// Read what a TCP server at `addr` says, retrying while it comes up.
fn tcp_read(addr: std::net::SocketAddr) -> String {
    use std::io::Read;
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let got = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).and_then(
            |mut s| {
                s.set_read_timeout(Some(Duration::from_secs(5)))?;
                let mut t = String::new();
                s.read_to_string(&mut t)?;
                Ok(t)
            },
        );
        match got {
            Ok(t) if !t.is_empty() => return t,
            _ if Instant::now() < end => std::thread::sleep(Duration::from_millis(100)),
            other => panic!("nothing from {addr}: {other:?}"),
        }
    }
}

/// A container's address on `network` (its first one for "").
fn ip_on(i: &Value, network: &str) -> std::net::Ipv4Addr {
    let v = if network.is_empty() {
        &i["NetworkSettings"]["IPAddress"]
    } else {
        &i["NetworkSettings"]["Networks"][network]["IPAddress"]
    };
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("an address on {network:?}: {i}"))
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// A network test's own names: a bridge, a /24 tag and an nftables table
/// (never the host's berth0 or table `berth`), and the store.
struct NetEnv {
    e: Env,
    tag: u32,
    bridge: String,
    table: String,
}

impl NetEnv {
    fn new(test: &str, prefix: &str) -> Option<NetEnv> {
        let rt = net_runtime(test)?;
        let pid = std::process::id();
        Some(NetEnv {
            e: Env::new(&format!("ctr-{prefix}"), rt),
            tag: pid % 200 + 20,
            bridge: format!("b{prefix}{}", pid % 100_000),
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

    /// `srv`: a detached TCP server on `network` (extra run options in
    /// `opts`) that says `msg` to every connection on port 8080; its
    /// inspect view.
    fn server(&self, network: &str, opts: &[&str], msg: &str) -> Value {
        let mut a = vec!["run", "--runtime", &self.e.runtime, "-d", "--name", "srv"];
        a.extend_from_slice(&["--network", network]);
        a.extend_from_slice(opts);
        a.extend_from_slice(&["busybox:test", "nc", "-ll", "-p", "8080", "-e", "echo", msg]);
        self.ok(&a);
        inspect(&self.e, "srv")
    }

    /// The bridge and the nftables table went with the last container.
    fn assert_network_gone(&self) {
        assert!(
            !link_exists(&self.bridge),
            "bridge {} left behind",
            self.bridge
        );
        let nft = Command::new("nft")
            .args(["list", "table", "inet", &self.table])
            .output()
            .unwrap();
        assert!(
            !nft.status.success(),
            "nftables table {} left behind",
            self.table
        );
    }
}

#[test]
fn bridge_network_reaches_containers_and_published_ports() {
    const T: &str = "bridge_network_reaches_containers_and_published_ports";
    let Some(n) = NetEnv::new(T, "t") else {
        return;
    };
    let (e, tag, bridge) = (&n.e, n.tag, &n.bridge);
    fs::create_dir_all(e.path("root/networks")).unwrap();
    fs::write(
        e.path("root/networks/berth.json"),
        format!(r#"{{"name": "berth", "bridge": "{bridge}", "subnet": "10.231.{tag}.0/24"}}"#),
    )
    .unwrap();
    let berth = |args: &[&str]| n.berth(args);
    let host_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let publish = format!("127.0.0.1:{host_port}:8080");
    let i = n.server("bridge", &["-p", &publish], "hello-from-srv");
    let ip = ip_on(&i, "");
    assert_eq!(ip.octets()[..3], [10, 231, tag as u8], "{i}");
    assert_eq!(
        i["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"],
        host_port.to_string()
    );
    assert_eq!(i["HostConfig"]["NetworkMode"], "bridge");
    assert!(
        link_exists(bridge),
        "the bridge exists while a container uses it"
    );

    // Host -> container address, host -> published port, container -> container.
    assert_eq!(tcp_read((ip, 8080).into()).trim(), "hello-from-srv");
    assert_eq!(
        tcp_read(([127, 0, 0, 1], host_port).into()).trim(),
        "hello-from-srv"
    );
    // No --network and no berth.toml: the default network, as docker's.
    let mut c = e.cmd(&[
        "run",
        "--runtime",
        &e.runtime,
        "--rm",
        "busybox:test",
        "nc",
        &ip.to_string(),
        "8080",
    ]);
    c.env("BERTH_NETD_NFT_TABLE", &n.table)
        .env("BERTH_CONFIG", "/dev/null");
    let o = c.output().unwrap();
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout).trim(),
        "hello-from-srv",
        "container to container, on the default network"
    );

    // -p without a bridge network, and a bad -p, are clear errors.
    let o = berth(&[
        "run",
        "--runtime",
        &e.runtime,
        "--rm",
        "-p",
        "80:80",
        "busybox:test",
        "true",
    ]);
    assert_eq!(code(&o), 125, "{}", text(&o.stderr));
    let o = berth(&[
        "run",
        "--runtime",
        &e.runtime,
        "--rm",
        "--network",
        "bridge",
        "-p",
        "0:80",
        "busybox:test",
        "true",
    ]);
    assert_eq!(code(&o), 125, "{}", text(&o.stderr));

    // Removing the last container removes the bridge, its table and its veths.
    let o = berth(&["rm", "-f", "srv"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    n.assert_network_gone();
    let leases = fs::read_to_string(e.path("run/netd/state.json")).unwrap_or_default();
    assert!(
        !leases.contains(&i["Id"].as_str().unwrap()[..12]),
        "lease left: {leases}"
    );
    e.assert_no_containers();
}

#[test]
fn user_networks_resolve_names_and_are_managed() {
    const T: &str = "user_networks_resolve_names_and_are_managed";
    let Some(n) = NetEnv::new(T, "u") else {
        return;
    };
    let (e, tag, bridge) = (&n.e, n.tag, &n.bridge);
    let subnet = format!("10.232.{tag}.0/24");
    let berth = |args: &[&str]| n.berth(args);
    let ok = |args: &[&str]| n.ok(args);
    ok(&[
        "network", "create", "--subnet", &subnet, "--bridge", bridge, "appnet",
    ]);
    let o = berth(&[
        "network", "create", "--subnet", &subnet, "--bridge", "bzz0", "othernet",
    ]);
    assert_eq!(code(&o), 125, "overlapping subnet: {}", text(&o.stderr));
    let o = berth(&["network", "create", "appnet"]);
    assert_eq!(code(&o), 125, "duplicate name: {}", text(&o.stderr));
    assert_eq!(
        ok(&["network", "ls", "-q"]).lines().collect::<Vec<_>>(),
        ["berth", "appnet"]
    );

    let i = n.server("appnet", &[], "hello-by-name");
    let ip = i["NetworkSettings"]["Networks"]["appnet"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(ip.starts_with(&format!("10.232.{tag}.")), "{i}");
    assert_eq!(i["HostConfig"]["NetworkMode"], "appnet");
    let net: Value = serde_json::from_str(&ok(&["network", "inspect", "appnet"])).unwrap();
    assert_eq!(net[0]["Containers"], serde_json::json!(["srv"]));
    assert_eq!(net[0]["DNSEnabled"], true);

    // Another container finds srv by name through the network's DNS.
    let o = berth(&[
        "run",
        "--runtime",
        &e.runtime,
        "--rm",
        "--network",
        "appnet",
        "busybox:test",
        "sh",
        "-c",
        "cat /etc/resolv.conf; nslookup srv",
    ]);
    assert_eq!(code(&o), 0, "{}{}", text(&o.stdout), text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains(&format!("nameserver 10.232.{tag}.1")),
        "gateway resolver: {out}"
    );
    assert!(out.contains(&ip), "srv resolves to {ip}: {out}");

    let o = berth(&["network", "rm", "appnet"]);
    assert_eq!(code(&o), 125, "in use: {}", text(&o.stderr));
    assert!(text(&o.stderr).contains("srv"), "{}", text(&o.stderr));
    let o = berth(&[
        "run",
        "--runtime",
        &e.runtime,
        "--rm",
        "--network",
        "nosuchnet",
        "busybox:test",
        "true",
    ]);
    assert_eq!(code(&o), 125);
    assert!(
        text(&o.stderr).contains("no such network"),
        "{}",
        text(&o.stderr)
    );

    ok(&[
        "network",
        "create",
        "--bridge",
        &format!("{bridge}x"),
        "spare",
    ]);
    assert_eq!(
        ok(&["network", "prune"]).trim(),
        "spare",
        "only the unused user network"
    );
    ok(&["rm", "-f", "srv"]);
    ok(&["network", "rm", "appnet"]);
    assert_eq!(ok(&["network", "ls", "-q"]).trim(), "berth");
    n.assert_network_gone();
    let o = berth(&["network", "rm", "berth"]);
    assert_eq!(code(&o), 125, "the default network stays");
    e.assert_no_containers();
}

#[test]
fn static_ip_aliases_publish_all_and_container_network_mode() {
    const T: &str = "static_ip_aliases_publish_all_and_container_network_mode";
    let Some(n) = NetEnv::new(T, "o") else {
        return;
    };
    let (e, tag, bridge) = (&n.e, n.tag, &n.bridge);
    let ok = |args: &[&str]| n.ok(args);
    let berth = |args: &[&str]| n.berth(args);
    ok(&[
        "network",
        "create",
        "--subnet",
        &format!("10.233.{tag}.0/24"),
        "--bridge",
        bridge,
        "optnet",
    ]);
    let static_ip = format!("10.233.{tag}.77");
    let i = n.server(
        "optnet",
        &[
            "--ip",
            &static_ip,
            "--network-alias",
            "web",
            "--network-alias",
            "www",
            "--expose",
            "8080",
            "-P",
        ],
        "hello-published-all",
    );
    assert_eq!(
        i["NetworkSettings"]["Networks"]["optnet"]["IPAddress"],
        static_ip.as_str(),
        "{i}"
    );
    assert_eq!(i["HostConfig"]["PublishAllPorts"], true);
    assert!(i["Config"]["ExposedPorts"]["8080/tcp"].is_object(), "{i}");
    let host_port: u16 = i["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"]
        .as_str()
        .unwrap_or_else(|| panic!("-P published 8080: {i}"))
        .parse()
        .unwrap();
    assert_eq!(
        tcp_read(([127, 0, 0, 1], host_port).into()).trim(),
        "hello-published-all"
    );
    assert!(ok(&["port", "srv"]).contains(&format!(":{host_port}")));

    // Aliases resolve on the network; the static address is what they name.
    let o = berth(&[
        "run",
        "--runtime",
        &e.runtime,
        "--rm",
        "--network",
        "optnet",
        "busybox:test",
        "sh",
        "-c",
        "nslookup www; nslookup web",
    ]);
    assert_eq!(code(&o), 0, "{}{}", text(&o.stdout), text(&o.stderr));
    assert_eq!(
        text(&o.stdout).matches(&static_ip).count(),
        2,
        "{}",
        text(&o.stdout)
    );

    // container:srv shares srv's network namespace: its loopback, its files.
    let o = berth(&[
        "run",
        "--runtime",
        &e.runtime,
        "--rm",
        "--network",
        "container:srv",
        "busybox:test",
        "sh",
        "-c",
        "nc 127.0.0.1 8080; grep -c nameserver /etc/resolv.conf",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.starts_with("hello-published-all\n"), "{out}");
    let v = {
        ok(&[
            "create",
            "--runtime",
            &e.runtime,
            "--name",
            "joiner",
            "--network",
            "container:srv",
            "busybox:test",
            "true",
        ]);
        inspect(e, "joiner")
    };
    assert_eq!(
        v["HostConfig"]["NetworkMode"],
        format!("container:{}", i["Id"].as_str().unwrap())
    );

    // Docker's rules, as clear errors with nothing made.
    for (args, want) in [
        (&["--ip", "10.9.9.9"][..], "--ip"),
        (
            &["--network", "bridge", "--ip", "10.9.9.9"][..],
            "user-defined",
        ),
        (&["--network-alias", "x"][..], "--network-alias"),
        (&["-P"][..], "bridge network"),
        (&["--network", "container:nosuch"][..], "nosuch"),
        (
            &["--network", "container:srv", "--hostname", "h"][..],
            "--hostname",
        ),
        (&["--expose", "0"][..], "--expose"),
    ] {
        let mut a = vec!["run", "--runtime", &e.runtime, "--rm"];
        a.extend_from_slice(args);
        a.extend(["busybox:test", "true"]);
        let o = berth(&a);
        assert_eq!(code(&o), 125, "{args:?}: {}", text(&o.stderr));
        assert!(
            text(&o.stderr).contains(want),
            "{args:?}: {}",
            text(&o.stderr)
        );
    }
    ok(&["rm", "-f", "srv"]);
    // The network's owner is gone: joining it fails at start, clearly.
    let o = berth(&["start", "joiner"]);
    assert_ne!(code(&o), 0);
    assert!(
        text(&o.stderr).contains("no such container"),
        "{}",
        text(&o.stderr)
    );
    ok(&["rm", "joiner"]);
    ok(&["network", "rm", "optnet"]);
    n.assert_network_gone();
    e.assert_no_containers();
}

#[test]
fn a_reboot_loses_run_state_and_start_brings_the_container_and_network_back() {
    const T: &str = "a_reboot_loses_run_state_and_start_brings_the_container_and_network_back";
    let Some(n) = NetEnv::new(T, "r") else {
        return;
    };
    let (e, tag, bridge) = (&n.e, n.tag, &n.bridge);
    let ok = |args: &[&str]| n.ok(args);
    ok(&[
        "network",
        "create",
        "--subnet",
        &format!("10.234.{tag}.0/24"),
        "--bridge",
        bridge,
        "rnet",
    ]);
    let i = n.server("rnet", &[], "back-again");
    let ip = ip_on(&i, "rnet");
    assert_eq!(tcp_read((ip, 8080).into()).trim(), "back-again");
    ok(&["stop", "-t", "1", "srv"]);
    n.assert_network_gone();
    // What a reboot takes: every mount (the container's root filesystem)
    // and the runroot, a tmpfs (run dirs, runtime state, netd's leases).
    berth_testkit::unmount_all_under(e.dir.path());
    fs::remove_dir_all(e.path("run")).unwrap();
    assert_eq!(
        berth_testkit::mounts_under(e.dir.path()),
        Vec::<String>::new()
    );

    assert_eq!(inspect(e, "srv")["State"]["Status"], "exited");
    ok(&["start", "srv"]);
    let i = inspect(e, "srv");
    assert_eq!(i["State"]["Status"], "running", "{i}");
    let ip = ip_on(&i, "rnet");
    assert!(link_exists(bridge), "the bridge is back");
    assert_eq!(tcp_read((ip, 8080).into()).trim(), "back-again");
    ok(&["rm", "-f", "srv"]);
    ok(&["network", "rm", "rnet"]);
    n.assert_network_gone();
    e.assert_no_containers();
}
