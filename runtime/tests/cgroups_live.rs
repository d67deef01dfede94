//! Live cgroup operations on running containers: pause/resume, `update`
//! (flags and a resources file), `events --stats` and the OOM event stream.

mod common;
#[macro_use]
mod cgroups_support;

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cgroups_support::*;
use common::*;
use serde_json::{json, Value};

#[test]
fn pause_then_resume() {
    root_or_skip!("pause_then_resume");
    if !v1_or_skip("pause_then_resume") {
        return;
    }
    let fx = Fx::new("exec sleep 100", json!({}));
    fx.run_detached();
    fx.rt.ok(&["pause", &fx.id]);
    assert_eq!(fx.rt.status(&fx.id), "paused");
    assert_eq!(fx.cg.read("freezer", "freezer.state"), "FROZEN");
    fx.rt.fails(&["pause", &fx.id]);
    fx.rt.ok(&["resume", &fx.id]);
    assert_eq!(fx.rt.status(&fx.id), "running");
    assert_eq!(fx.cg.read("freezer", "freezer.state"), "THAWED");
    // delete --force of a paused container thaws and kills it
    fx.rt.ok(&["pause", &fx.id]);
    fx.rt.ok(&["delete", "--force", &fx.id]);
    assert!(fx.cg.leftovers().iter().all(|p| !p.join("ctr").exists()));
}

#[test]
fn update_raises_limits_live() {
    root_or_skip!("update_raises_limits_live");
    if !v1_or_skip("update_raises_limits_live") {
        return;
    }
    let fx = Fx::new(
        "exec sleep 100",
        json!({"memory": {"limit": 32 << 20}, "pids": {"limit": 10}}),
    );
    fx.run_detached();
    assert_eq!(
        fx.cg.read("memory", "memory.limit_in_bytes"),
        (32u64 << 20).to_string()
    );
    fx.rt.ok(&[
        "update",
        "--memory",
        "64m",
        "--pids-limit",
        "50",
        "--cpu-quota",
        "50000",
        "--cpu-period",
        "100000",
        "--cpu-share",
        "512",
        &fx.id,
    ]);
    assert_eq!(
        fx.cg.read("memory", "memory.limit_in_bytes"),
        (64u64 << 20).to_string()
    );
    assert_eq!(fx.cg.read("pids", "pids.max"), "50");
    assert_eq!(fx.cg.read("cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(fx.cg.read("cpu", "cpu.shares"), "512");
    // --resources - : JSON on stdin; fields not named keep their values
    update_from_stdin(&fx, json!({"pids": {"limit": 77}, "cpu": {"cpus": "0"}}));
    assert_eq!(fx.cg.read("pids", "pids.max"), "77");
    assert_eq!(fx.cg.read("cpuset", "cpuset.cpus"), "0");
    assert_eq!(
        fx.cg.read("memory", "memory.limit_in_bytes"),
        (64u64 << 20).to_string()
    );
    // a bad value is refused and changes nothing
    let err = fx
        .rt
        .fails(&["update", "--cpu-share", "1", "--pids-limit", "5", &fx.id]);
    assert!(err.contains("cpu.shares 1"), "{err}");
    assert_eq!(fx.cg.read("pids", "pids.max"), "77");
    // device rules change in place (no deny-all gap while it happens)
    update_from_stdin(
        &fx,
        json!({"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "w"}]}),
    );
    let list = fx.cg.read("devices", "devices.list");
    assert!(
        list.lines().any(|l| l == "c 1:11 w") && list.lines().any(|l| l == "c 1:3 rwm"),
        "{list}"
    );
    assert_eq!(
        fx.rt.status(&fx.id),
        "running",
        "the container lives through updates"
    );
    fx.rt.ok(&["delete", "--force", &fx.id]);
}

/// `update --resources -` with `resources` on stdin; must succeed.
fn update_from_stdin(fx: &Fx, resources: Value) {
    let mut child = fx
        .rt
        .cmd()
        .args(["update", "--resources", "-", &fx.id])
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn update");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(resources.to_string().as_bytes())
        .expect("write");
    assert!(
        child.wait().expect("wait").success(),
        "update with {resources}"
    );
}

#[test]
fn events_stats_numbers_change() {
    root_or_skip!("events_stats_numbers_change");
    if !v1_or_skip("events_stats_numbers_change") {
        return;
    }
    let fx = Fx::new(
        "while :; do :; done",
        json!({"pids": {"limit": 20}, "memory": {"limit": 64 << 20}}),
    );
    fx.run_detached();
    let a = fx.stats();
    let cpu = |v: &Value| v["data"]["cpu"]["usage"]["total"].as_u64().unwrap_or(0);
    eventually("cpu usage to grow", || cpu(&fx.stats()) > cpu(&a));
    let b = fx.stats();
    assert!(
        b["data"]["memory"]["usage"]["usage"].as_u64().unwrap_or(0) > 0,
        "{b}"
    );
    assert_eq!(b["data"]["memory"]["usage"]["limit"], 64u64 << 20);
    assert!(
        b["data"]["pids"]["current"].as_u64().unwrap_or(0) >= 1,
        "{b}"
    );
    assert_eq!(b["data"]["pids"]["limit"], 20);
    assert!(
        b["data"]["hugetlb"].is_object() && b["data"]["blkio"].is_object(),
        "{b}"
    );
    fx.rt.ok(&["delete", "--force", &fx.id]);
    fx.rt.fails(&["events", "--stats", &fx.id]);
}

#[test]
fn events_stream_reports_oom() {
    root_or_skip!("events_stream_reports_oom");
    if !v1_or_skip("events_stream_reports_oom") {
        return;
    }
    let mb16 = 16 << 20;
    // /tmp/go is written from the host into the bundle's rootfs.
    let fx = Fx::new(
        "while [ ! -e /tmp/go ]; do sleep 0.1; done; dd if=/dev/zero of=/dev/null bs=64M count=1; exec sleep 100",
        json!({"memory": {"limit": mb16, "swap": mb16}}),
    );
    fx.run_detached();
    let mut ev = fx
        .rt
        .cmd()
        .args(["events", "--interval", "500ms", &fx.id])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn events");
    let (tx, rx) = mpsc::channel::<Value>();
    let out = ev.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line) {
                if tx.send(v).is_err() {
                    break;
                }
            }
        }
    });
    let next = |what: &str| {
        rx.recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no {what} event"))
    };
    let first = next("first stats");
    assert_eq!(first["type"], "stats", "{first}");
    std::fs::write(fx.b.rootfs().join("tmp/go"), "").expect("write go");
    let mut saw_oom = false;
    for _ in 0..100 {
        let e = next("oom");
        assert_eq!(e["id"], fx.id.as_str());
        if e["type"] == "oom" {
            saw_oom = true;
            break;
        }
    }
    assert!(saw_oom, "an oom event arrives");
    // The stream ends by itself when the container is gone.
    fx.rt.ok(&["delete", "--force", &fx.id]);
    let end = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = ev.try_wait().expect("try_wait") {
            break s;
        }
        if Instant::now() > end {
            let _ = ev.kill();
            panic!("events did not exit after the container was deleted");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    drop(rx);
    let _ = reader.join();
}

/// The cgroup lines of /proc/PID/cgroup for the v1 hierarchies the runtime
/// manages (the named systemd one and the cgroup2 mount aside), sorted.
fn v1_membership(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with("0::") && !l.contains("name=systemd"))
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

#[test]
fn init_and_exec_join_every_hierarchy_of_the_container_cgroup() {
    root_or_skip!("init_and_exec_join_every_hierarchy_of_the_container_cgroup");
    if !v1_or_skip("init_and_exec_join_every_hierarchy_of_the_container_cgroup") {
        return;
    }
    let fx = Fx::new("sleep 600", json!({"pids": {"limit": 50}}));
    fx.run_detached();
    let pid = fx.rt.state(&fx.id)["pid"].as_i64().expect("pid");
    let init = v1_membership(&std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap());
    // The container moves itself in (see Cgroup::self_join_files): every
    // controller line names the container's cgroup.
    assert!(init.len() >= 5, "v1 controllers: {init:?}");
    for l in &init {
        assert!(l.ends_with(&fx.cg.path()), "{l} is the container's cgroup");
    }
    assert_eq!(
        fx.cg.read("pids", "pids.current"),
        "1",
        "init alone, counted"
    );
    // exec joins the same cgroups: inside the container's cgroup namespace
    // (rooted at the container's cgroup) that is "/" in every hierarchy; a
    // process left outside would see a path climbing out ("/../..").
    let out = fx.rt.ok(&["exec", &fx.id, "cat", "/proc/self/cgroup"]);
    let inside = v1_membership(&out);
    assert_eq!(inside.len(), init.len(), "{out}");
    for l in &inside {
        assert!(l.ends_with(":/"), "exec'd process: {l}");
    }
}
