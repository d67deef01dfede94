//! Cgroup resource control, for real (root): limits take effect before user
//! code runs, pause/resume, update, events, and bad values that leave
//! nothing behind. Each test puts its container at the unique absolute
//! cgroupsPath /berth-test/<unique>/ctr and removes every directory it made.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const CG: &str = "/sys/fs/cgroup";

macro_rules! root_or_skip {
    ($name:expr) => {
        if !require_root($name) {
            return;
        }
    };
}

/// A runtime, a bundle and a unique cgroup; on drop the containers are
/// deleted first (field order), then the cgroup directories.
struct Fx {
    rt: Rt,
    cg: CgDirs,
    b: Bundle,
    id: String,
}

struct CgDirs {
    name: String,
}

impl CgDirs {
    /// `/berth-test/<name>/ctr` as cgroupsPath.
    fn path(&self) -> String {
        format!("/berth-test/{}/ctr", self.name)
    }

    /// A file of the container's cgroup in the v1 hierarchy `ctrl`.
    fn file(&self, ctrl: &str, file: &str) -> PathBuf {
        Path::new(CG)
            .join(ctrl)
            .join("berth-test")
            .join(&self.name)
            .join("ctr")
            .join(file)
    }

    fn read(&self, ctrl: &str, file: &str) -> String {
        let p = self.file(ctrl, file);
        std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
            .trim()
            .to_string()
    }

    /// Every directory of ours that exists, in any hierarchy.
    fn leftovers(&self) -> Vec<PathBuf> {
        hierarchies()
            .into_iter()
            .map(|h| h.join("berth-test").join(&self.name))
            .filter(|p| p.exists())
            .collect()
    }
}

impl Drop for CgDirs {
    fn drop(&mut self) {
        for h in hierarchies() {
            let parent = h.join("berth-test").join(&self.name);
            let _ = std::fs::remove_dir(parent.join("ctr"));
            let _ = std::fs::remove_dir(&parent);
            // Shared by parallel tests: removed by whoever is last.
            let _ = std::fs::remove_dir(h.join("berth-test"));
        }
    }
}

/// The v1 hierarchies, and the root itself (a v2 host's only hierarchy).
fn hierarchies() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(CG)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    v.push(PathBuf::from(CG));
    v
}

fn hybrid_or_v1() -> bool {
    Path::new(CG)
        .join("memory")
        .join("memory.limit_in_bytes")
        .exists()
}

fn v1_or_skip(test: &str) -> bool {
    if hybrid_or_v1() {
        return true;
    }
    berth_testkit::skip(
        test,
        "these checks read cgroup v1 files; this host is cgroup v2 (see v2_limits_for_real)",
    );
    false
}

impl Fx {
    /// A bundle running `sh -c script` with `resources` merged into
    /// linux.resources and the unique cgroupsPath.
    fn new(script: &str, resources: Value) -> Fx {
        let cg = CgDirs { name: unique("cg") };
        let mut b = bundle(script);
        let path = cg.path();
        b.edit(|c| {
            c["linux"]["cgroupsPath"] = json!(path);
            let res = &mut c["linux"]["resources"];
            for (k, v) in resources.as_object().expect("resources object") {
                res[k] = v.clone();
            }
        })
        .save();
        Fx {
            rt: Rt::new(),
            cg,
            b,
            id: unique("c"),
        }
    }

    fn bundle_arg(&self) -> &str {
        self.b.path().to_str().expect("utf-8 path")
    }

    fn run_detached(&self) {
        self.rt
            .ok(&["run", "-d", "--bundle", self.bundle_arg(), &self.id]);
    }

    fn stats(&self) -> Value {
        let out = self.rt.ok(&["events", "--stats", &self.id]);
        let v: Value =
            serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("events json {out:?}: {e}"));
        assert_eq!(v["type"], "stats");
        assert_eq!(v["id"], self.id.as_str());
        v
    }
}

/// Poll `f` until it returns true (`what` names it in the failure).
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn memory_limit_oom_kills_and_run_reports_137() {
    root_or_skip!("memory_limit_oom_kills_and_run_reports_137");
    if !v1_or_skip("memory_limit_oom_kills_and_run_reports_137") {
        return;
    }
    let mb16 = 16 << 20;
    let mut fx = Fx::new("", json!({"memory": {"limit": mb16, "swap": mb16}}));
    // awk doubles a string until the limit: it must be killed.
    fx.b.set_args(&["awk", "BEGIN { s = \"x\"; while (1) s = s s }"])
        .save();
    let o = fx
        .rt
        .run(&["run", "--keep", "--bundle", fx.bundle_arg(), &fx.id]);
    assert_eq!(
        o.status.code(),
        Some(137),
        "OOM kill is reported as 128+SIGKILL; stderr: {}",
        stderr(&o)
    );
    assert_eq!(
        fx.cg.read("memory", "memory.limit_in_bytes"),
        mb16.to_string()
    );
    let oom = fx.cg.read("memory", "memory.oom_control");
    assert!(
        oom.lines()
            .any(|l| l.starts_with("oom_kill ") && l != "oom_kill 0"),
        "kernel counted the kill: {oom}"
    );
    fx.rt.ok(&["delete", &fx.id]);
    assert!(
        !fx.cg.file("memory", "").exists(),
        "delete removes the cgroup"
    );
}

#[test]
fn disabled_oom_killer_makes_tasks_wait_instead_of_dying() {
    root_or_skip!("disabled_oom_killer_makes_tasks_wait_instead_of_dying");
    if !v1_or_skip("disabled_oom_killer_makes_tasks_wait_instead_of_dying") {
        return;
    }
    let mb16 = 16 << 20;
    // Memory touched from user space (awk doubling a string): a charge that
    // fails in a page fault waits under OOM. (A buffer filled by read(2)
    // would fail the syscall with EFAULT instead, and the task would exit.)
    let fx = Fx::new(
        "exec awk 'BEGIN { s = \"x\"; while (1) s = s s }'",
        json!({"memory": {"limit": mb16, "swap": mb16, "reservation": 8 << 20, "swappiness": 0, "disableOOMKiller": true}}),
    );
    fx.run_detached();
    assert_eq!(
        fx.cg.read("memory", "memory.soft_limit_in_bytes"),
        (8u64 << 20).to_string()
    );
    assert_eq!(fx.cg.read("memory", "memory.swappiness"), "0");
    assert_eq!(
        fx.cg.read("memory", "memory.memsw.limit_in_bytes"),
        mb16.to_string()
    );
    eventually("the task to wait under OOM", || {
        fx.cg
            .read("memory", "memory.oom_control")
            .contains("under_oom 1")
    });
    let oom = fx.cg.read("memory", "memory.oom_control");
    assert!(
        oom.contains("oom_kill_disable 1") && oom.contains("oom_kill 0"),
        "{oom}"
    );
    assert_eq!(fx.rt.status(&fx.id), "running", "nothing was killed");
    fx.rt.ok(&["delete", "--force", &fx.id]);
}

#[test]
fn pids_limit_stops_a_fork_loop() {
    root_or_skip!("pids_limit_stops_a_fork_loop");
    if !v1_or_skip("pids_limit_stops_a_fork_loop") {
        return;
    }
    let fx = Fx::new(
        "n=0; while [ $n -lt 40 ]; do sleep 30 & n=$((n+1)); echo $n; done",
        json!({"pids": {"limit": 10}}),
    );
    let o = fx
        .rt
        .run(&["run", "--keep", "--bundle", fx.bundle_arg(), &fx.id]);
    let out = stdout(&o);
    let last: u32 = out
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    assert!(!o.status.success(), "the shell fails when fork fails");
    assert!(
        last < 10,
        "at most 9 children next to the shell, got {last}: {out}"
    );
    assert!(
        stderr(&o).contains("fork"),
        "the shell says why: {}",
        stderr(&o)
    );
    assert_eq!(fx.cg.read("pids", "pids.max"), "10");
    let events = fx.cg.read("pids", "pids.events");
    assert_ne!(events, "max 0", "the kernel counted refused forks");
}

#[test]
fn cpu_quota_throttles() {
    root_or_skip!("cpu_quota_throttles");
    if !v1_or_skip("cpu_quota_throttles") {
        return;
    }
    let fx = Fx::new(
        "while :; do :; done",
        json!({"cpu": {"quota": 10000, "period": 100000, "shares": 256}}),
    );
    fx.run_detached();
    assert_eq!(fx.cg.read("cpu", "cpu.cfs_quota_us"), "10000");
    assert_eq!(fx.cg.read("cpu", "cpu.cfs_period_us"), "100000");
    assert_eq!(fx.cg.read("cpu", "cpu.shares"), "256");
    let throttled = || {
        let stat = fx.cg.read("cpu", "cpu.stat");
        stat.lines()
            .find_map(|l| l.strip_prefix("nr_throttled "))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let first = throttled();
    eventually("nr_throttled to grow", || throttled() > first);
    let s = fx.stats();
    assert!(
        s["data"]["cpu"]["throttling"]["throttledPeriods"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "events reports it: {s}"
    );
    fx.rt.ok(&["delete", "--force", &fx.id]);
}

fn device_fixture(allow_rule: bool) -> (Fx, String) {
    let script = "cat /dev/null && echo null-ok; if (exec 3>/dev/kmsg2) 2>/dev/null; then echo kmsg-opened; else echo kmsg-denied; fi";
    let mut rules = vec![json!({"allow": false, "access": "rwm"})];
    if allow_rule {
        rules.push(json!({"allow": true, "type": "c", "major": 1, "minor": 11, "access": "w"}));
    }
    let mut fx = Fx::new(script, json!({"devices": rules}));
    fx.b.edit(|c| {
        c["linux"]["devices"] = json!([{"path": "/dev/kmsg2", "type": "c", "major": 1, "minor": 11, "fileMode": 0o600}]);
    })
    .save();
    let o = fx
        .rt
        .run(&["run", "--keep", "--bundle", fx.bundle_arg(), &fx.id]);
    assert!(o.status.success(), "{}", stderr(&o));
    (fx, stdout(&o))
}

#[test]
fn devices_denied_device_cannot_be_opened() {
    root_or_skip!("devices_denied_device_cannot_be_opened");
    if !v1_or_skip("devices_denied_device_cannot_be_opened") {
        return;
    }
    let (fx, out) = device_fixture(false);
    assert!(
        out.contains("null-ok"),
        "default devices stay usable: {out}"
    );
    assert!(
        out.contains("kmsg-denied"),
        "a device with no rule is denied: {out}"
    );
    let list = fx.cg.read("devices", "devices.list");
    assert!(list.lines().any(|l| l == "c 1:3 rwm"), "{list}");
    assert!(!list.contains("1:11"), "{list}");
    assert!(!list.contains("a *:*"), "not allow-all: {list}");
    drop(fx);
    // Control: the same node with an allow rule opens.
    let (fx, out) = device_fixture(true);
    assert!(
        out.contains("kmsg-opened"),
        "an allowed device opens: {out}"
    );
    assert!(fx
        .cg
        .read("devices", "devices.list")
        .lines()
        .any(|l| l == "c 1:11 w"));
}

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

/// `create` with `resources` must fail mentioning `want`, leaving no state
/// directory and no cgroup directory.
fn check_refused(test: &str, resources: Value, want: &str) {
    let fx = Fx::new("true", resources.clone());
    let err = fx
        .rt
        .fails(&["create", "--bundle", fx.bundle_arg(), &fx.id]);
    assert!(
        err.contains(want),
        "{test}: {resources} should fail with {want:?}, got: {err}"
    );
    assert!(
        !fx.rt.state_dir(&fx.id).exists(),
        "{test}: no state left for {resources}"
    );
    assert_eq!(
        fx.cg.leftovers(),
        Vec::<PathBuf>::new(),
        "{test}: no cgroup left for {resources}"
    );
}

#[test]
fn bad_resource_values_fail_cleanly() {
    root_or_skip!("bad_resource_values_fail_cleanly");
    if !v1_or_skip("bad_resource_values_fail_cleanly") {
        return;
    }
    let t = "bad_resource_values_fail_cleanly";
    check_refused(t, json!({"memory": {"limit": -5}}), "memory.limit -5");
    check_refused(
        t,
        json!({"memory": {"limit": 1 << 20, "swap": 1 << 19}}),
        "must be at least memory.limit",
    );
    check_refused(
        t,
        json!({"memory": {"swappiness": 200}}),
        "over the maximum 100",
    );
    check_refused(t, json!({"cpu": {"shares": 1_000_000}}), "[2, 262144]");
    check_refused(t, json!({"cpu": {"period": 10}}), "[1000, 1000000]");
    check_refused(t, json!({"cpu": {"quota": -7}}), "cpu.quota -7");
    check_refused(t, json!({"cpu": {"cpus": "4096"}}), "4096 is not available");
    check_refused(t, json!({"cpu": {"mems": "x"}}), "not a list");
    check_refused(t, json!({"blockIO": {"weight": 5}}), "[10, 1000]");
    check_refused(
        t,
        json!({"blockIO": {"throttleReadBpsDevice": [{"major": 4095, "minor": 4095, "rate": 1}]}}),
        "no block device 4095:4095",
    );
    check_refused(
        t,
        json!({"hugepageLimits": [{"pageSize": "3MB", "limit": 1}]}),
        "3MB",
    );
    check_refused(
        t,
        json!({"unified": {"memory.high": "1"}}),
        "need cgroup v2",
    );
    check_refused(
        t,
        json!({"devices": [{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwx"}]}),
        "access",
    );
    // Controllers this host does not mount.
    for (ctrl, res, want) in [
        (
            "net_cls",
            json!({"network": {"classID": 1}}),
            "net_cls cgroup controller is not available",
        ),
        (
            "net_prio",
            json!({"network": {"priorities": [{"name": "lo", "priority": 1}]}}),
            "net_prio cgroup controller",
        ),
        (
            "hugetlb",
            json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 0}]}),
            "hugetlb cgroup controller",
        ),
        (
            "rdma",
            json!({"rdma": {"mlx4_0": {"hcaHandles": 1}}}),
            "rdma cgroup controller",
        ),
    ] {
        if Path::new(CG).join(ctrl).exists() {
            berth_testkit::skip(
                &format!("{t}::{ctrl}"),
                &format!("{ctrl} is mounted here, so it is not missing"),
            );
        } else {
            check_refused(t, res, want);
        }
    }
}

#[test]
fn value_the_kernel_refuses_rolls_the_create_back() {
    root_or_skip!("value_the_kernel_refuses_rolls_the_create_back");
    if !v1_or_skip("value_the_kernel_refuses_rolls_the_create_back") {
        return;
    }
    // Realtime runtime passes validation but the new parent has no RT
    // budget, so the kernel refuses the write after the cgroup exists.
    let fx = Fx::new(
        "true",
        json!({"cpu": {"realtimeRuntime": 1000, "realtimePeriod": 100000}}),
    );
    let err = fx
        .rt
        .fails(&["create", "--bundle", fx.bundle_arg(), &fx.id]);
    assert!(err.contains("cpu.rt_runtime_us"), "{err}");
    assert!(!fx.rt.state_dir(&fx.id).exists(), "no state left");
    assert_eq!(
        fx.cg.leftovers(),
        Vec::<PathBuf>::new(),
        "the cgroup and the parents create made are removed"
    );
}

#[test]
fn systemd_cgroup_path_without_systemd_fails_clearly() {
    root_or_skip!("systemd_cgroup_path_without_systemd_fails_clearly");
    if Path::new("/run/systemd/system").exists() {
        berth_testkit::skip(
            "systemd_cgroup_path_without_systemd_fails_clearly",
            "systemd is running on this host",
        );
        return;
    }
    let rt = Rt::new();
    let mut b = bundle("true");
    b.edit(|c| c["linux"]["cgroupsPath"] = json!("system.slice:berth:x"))
        .save();
    let id = unique("sd");
    let o = rt
        .cmd()
        .args([
            "--systemd-cgroup",
            "create",
            "--bundle",
            b.path().to_str().unwrap(),
            &id,
        ])
        .output()
        .expect("run");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("systemd"), "{}", stderr(&o));
    assert!(!rt.state_dir(&id).exists());
}

#[test]
fn v2_limits_for_real() {
    root_or_skip!("v2_limits_for_real");
    if hybrid_or_v1() {
        berth_testkit::skip(
            "v2_limits_for_real",
            "host uses cgroup v1 controllers (hybrid); v2 writes are unit-tested against a temporary directory (cgroups::v2::tests)",
        );
        return;
    }
    let fx = Fx::new(
        "exec sleep 100",
        json!({"memory": {"limit": 32 << 20}, "pids": {"limit": 12}, "devices": []}),
    );
    fx.run_detached();
    let dir = Path::new(CG)
        .join("berth-test")
        .join(&fx.cg.name)
        .join("ctr");
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    assert_eq!(read("memory.max"), (32u64 << 20).to_string());
    assert_eq!(read("pids.max"), "12");
    fx.rt.ok(&["update", "--pids-limit", "30", &fx.id]);
    assert_eq!(read("pids.max"), "30");
    fx.rt.ok(&["pause", &fx.id]);
    assert_eq!(fx.rt.status(&fx.id), "paused");
    fx.rt.ok(&["resume", &fx.id]);
    fx.rt.ok(&["delete", "--force", &fx.id]);
}

/// A cgroup2 mount: the root on a v2 host, /sys/fs/cgroup/unified on a
/// hybrid one.
fn cgroup2_mount() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        let mount = pre.split_whitespace().nth(4)?;
        (post.split_whitespace().next() == Some("cgroup2")).then(|| PathBuf::from(mount))
    })
}

/// Run a busybox shell inside the cgroup2 directory `dir` that opens
/// /dev/null for reading and /dev/kmsg for writing (nothing is written).
fn probe_devices(dir: &Path) -> String {
    let script = format!(
        "echo $$ > {}/cgroup.procs || exit 9; cat /dev/null && echo null-ok; if (exec 3>/dev/kmsg) 2>/dev/null; then echo kmsg-opened; else echo kmsg-denied; fi",
        dir.display()
    );
    let o = std::process::Command::new(berth_testkit::BUSYBOX)
        .args(["sh", "-c", &script])
        .output()
        .expect("busybox sh");
    assert!(o.status.success(), "probe: {}", stderr(&o));
    stdout(&o)
}

#[test]
fn ebpf_device_filter_on_cgroup2() {
    root_or_skip!("ebpf_device_filter_on_cgroup2");
    let Some(mount) = cgroup2_mount() else {
        berth_testkit::skip(
            "ebpf_device_filter_on_cgroup2",
            "no cgroup2 hierarchy is mounted",
        );
        return;
    };
    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    let dir = Dir(mount.join(unique("berth-bpf")));
    std::fs::create_dir(&dir.0).expect("create cgroup2 dir");
    let rules = |j: Value| -> Vec<oci_spec::runtime::LinuxDeviceCgroup> {
        serde_json::from_value(j).expect("rules")
    };
    berth_runtime::cgroups::attach_device_filter(
        &dir.0,
        &rules(json!([{"allow": false, "access": "rwm"}])),
    )
    .expect("attach deny-all program");
    let out = probe_devices(&dir.0);
    assert!(out.contains("null-ok"), "default devices allowed: {out}");
    assert!(out.contains("kmsg-denied"), "other devices denied: {out}");
    // An update replaces the program (the old one would still deny).
    let allow = json!([{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "w"}]);
    berth_runtime::cgroups::attach_device_filter(&dir.0, &rules(allow)).expect("replace program");
    let out = probe_devices(&dir.0);
    assert!(
        out.contains("kmsg-opened"),
        "the new rule applies and the old program is gone: {out}"
    );
}

#[test]
fn relative_cgroups_path_is_under_the_callers_cgroup() {
    root_or_skip!("relative_cgroups_path_is_under_the_callers_cgroup");
    if !v1_or_skip("relative_cgroups_path_is_under_the_callers_cgroup") {
        return;
    }
    // As runc: relative to the cgroup the runtime runs in, per hierarchy
    // (the test process's memory cgroup is usually nested, the others not).
    let own = std::fs::read_to_string("/proc/self/cgroup").expect("own cgroup");
    let own_memory = own
        .lines()
        .find_map(|l| {
            l.splitn(3, ':')
                .nth(2)
                .filter(|_| l.split(':').nth(1) == Some("memory"))
        })
        .expect("memory line")
        .to_string();
    let rel = unique("berth-rel");
    let mut fx = Fx::new("exec sleep 100", json!({"memory": {"limit": 48 << 20}}));
    fx.b.edit(|c| c["linux"]["cgroupsPath"] = json!(rel)).save();
    fx.run_detached();
    let dir = Path::new(CG)
        .join("memory")
        .join(own_memory.trim_start_matches('/'))
        .join(&rel);
    let limit = std::fs::read_to_string(dir.join("memory.limit_in_bytes")).unwrap_or_default();
    assert_eq!(
        limit.trim(),
        (48u64 << 20).to_string(),
        "limit in {}",
        dir.display()
    );
    // (On failure above, Rt's drop deletes the container and its cgroup.)
    fx.rt.ok(&["delete", "--force", &fx.id]);
    assert!(!dir.exists(), "delete removes {}", dir.display());
}
