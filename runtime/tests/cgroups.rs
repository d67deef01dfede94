//! Cgroup resource control, for real (root): limits take effect before user
//! code runs, and bad values leave nothing behind (pause/resume, update and
//! events are in cgroups_live.rs). Each test puts its container at the unique absolute
//! cgroupsPath /berth-test/<unique>/ctr and removes every directory it made.

mod common;
#[macro_use]
mod cgroups_support;

use std::path::{Path, PathBuf};

use cgroups_support::*;
use common::*;
use serde_json::{json, Value};

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
