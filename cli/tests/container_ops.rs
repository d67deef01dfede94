//! The `berth` container verbs beyond the lifecycle, end to end as root:
//! pause/unpause/top/rename/restart, seccomp and --security-opt, env files,
//! labels and ps filters, limits and tmpfs, stop signals, named volumes,
//! info/version/prune and stats — with berth-runtime and, where the runtime
//! matters, runc.

mod common;

use std::fs;

use common::*;
use serde_json::Value;

/// Whether the cgroup freezer holds `pid`'s cgroup frozen (v1 freezer
/// hierarchy, else the v2 unified one).
fn frozen(pid: i64) -> bool {
    let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for line in cg.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
        if ctrls.split(',').any(|c| c == "freezer") {
            let st =
                fs::read_to_string(format!("/sys/fs/cgroup/freezer{path}/freezer.state")).unwrap();
            return st.trim() == "FROZEN";
        }
    }
    let path = cg
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("a cgroup");
    fs::read_to_string(format!("/sys/fs/cgroup{path}/cgroup.freeze"))
        .unwrap()
        .trim()
        == "1"
}

fn pause_top_rename_restart(test: &str, rt: &str) {
    let Some(rt) = runtime(test, rt) else { return };
    let e = Env::new("ctr-pause", rt);
    let script = "trap 'exit 0' TERM; while true; do sleep 0.1; done";
    let o = e.run(&["-d", "--name", "p1", "busybox:test", "sh", "-c", script]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));

    // top: the container's own processes, by host pid.
    let pid = inspect(&e, "p1")["State"]["Pid"].as_i64().unwrap();
    let top = e.ok(&["top", "p1"]);
    assert!(top.starts_with("PID"), "{top}");
    assert!(
        top.lines()
            .any(|l| l.starts_with(&format!("{pid} ")) && l.contains("sh -c")),
        "the init ({pid}) is listed: {top}"
    );

    // pause: frozen, shown as paused; a second pause and exec are refused.
    e.ok(&["pause", "p1"]);
    assert!(frozen(pid), "the container's cgroup is frozen");
    let i = inspect(&e, "p1");
    assert_eq!(i["State"]["Status"], "paused");
    assert_eq!(i["State"]["Paused"], true);
    assert!(e.ok(&["ps"]).contains("Up (Paused)"));
    assert_eq!(code(&e.berth(&["pause", "p1"])), 125, "pause twice");
    let o = e.berth(&["exec", "p1", "true"]);
    assert_eq!(code(&o), 125, "exec into a paused container");
    assert!(text(&o.stderr).contains("paused"), "{}", text(&o.stderr));

    // unpause: thawed and running; unpause twice is refused.
    e.ok(&["unpause", "p1"]);
    assert!(!frozen(pid), "thawed");
    assert_eq!(inspect(&e, "p1")["State"]["Status"], "running");
    assert_eq!(code(&e.berth(&["unpause", "p1"])), 125, "unpause twice");
    assert_eq!(e.ok(&["exec", "p1", "echo", "alive"]).trim(), "alive");

    // stop of a paused container thaws it so SIGTERM is honoured.
    e.ok(&["pause", "p1"]);
    e.ok(&["stop", "-t", "10", "p1"]);
    assert_eq!(e.ok(&["wait", "p1"]).trim(), "0", "exited by its TERM trap");

    // rename: the new name finds it, the old one does not; bad and taken
    // names are refused.
    e.ok(&["rename", "p1", "p2"]);
    assert_eq!(inspect(&e, "p2")["Name"], "/p2");
    assert_eq!(code(&e.berth(&["inspect", "p1"])), 125, "old name gone");
    assert_eq!(
        code(&e.berth(&["rename", "p2", "bad/name"])),
        125,
        "invalid name"
    );
    let o = e.run(&["-d", "--name", "other", "busybox:test", "sleep", "100"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let o = e.berth(&["rename", "p2", "other"]);
    assert_eq!(code(&o), 125, "taken name");
    assert!(text(&o.stderr).contains("in use"), "{}", text(&o.stderr));

    // restart: a stopped container runs again, with a new init.
    e.ok(&["restart", "-t", "1", "p2"]);
    let i = inspect(&e, "p2");
    assert_eq!(i["State"]["Status"], "running");
    assert_ne!(i["State"]["Pid"].as_i64().unwrap(), pid);
    e.ok(&["rm", "-f", "p2", "other"]);
    e.assert_no_containers();
}

#[test]
fn pause_unpause_top_rename_restart() {
    pause_top_rename_restart("pause_unpause_top_rename_restart", "berth-runtime");
}

#[test]
fn runc_pause_unpause_top_rename_restart() {
    pause_top_rename_restart("runc_pause_unpause_top_rename_restart", "runc");
}

/// `field` of the container's /proc/self/status.
fn status_field(e: &Env, extra: &[&str], field: &str) -> String {
    let mut a = vec!["--rm"];
    a.extend_from_slice(extra);
    a.extend_from_slice(&["busybox:test", "grep", field, "/proc/self/status"]);
    let o = e.run(&a);
    assert_eq!(code(&o), 0, "{extra:?}: {}", text(&o.stderr));
    text(&o.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string()
}

fn seccomp_and_security_opts(test: &str, rt: &str) {
    let Some(rt) = runtime(test, rt) else { return };
    let e = Env::new("ctr-seccomp", rt);
    // 2 = SECCOMP_MODE_FILTER: the default profile is on.
    assert_eq!(status_field(&e, &[], "Seccomp:"), "2", "default profile");
    assert_eq!(
        status_field(&e, &["--security-opt", "seccomp=unconfined"], "Seccomp:"),
        "0"
    );
    assert_eq!(
        status_field(&e, &["--privileged"], "Seccomp:"),
        "0",
        "privileged"
    );
    assert_eq!(status_field(&e, &[], "NoNewPrivs:"), "0");
    assert_eq!(
        status_field(&e, &["--security-opt", "no-new-privileges"], "NoNewPrivs:"),
        "1"
    );
    // A profile file of our own: mkdir fails with EPERM, the rest works.
    let profile = e.path("deny-mkdir.json");
    fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let o = e.run(&[
        "--rm",
        "--security-opt",
        &opt,
        "busybox:test",
        "sh",
        "-c",
        "mkdir /tmp/x; echo rc=$?",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("rc=1"),
        "mkdir refused: {}",
        text(&o.stdout)
    );
    assert!(
        text(&o.stderr).contains("not permitted"),
        "{}",
        text(&o.stderr)
    );
    // Bad options: a clear error, exit 125, nothing left.
    for bad in ["apparmor=foo", "seccomp=/nonexistent/profile.json"] {
        let o = e.run(&["--rm", "--security-opt", bad, "busybox:test", "true"]);
        assert_eq!(code(&o), 125, "{bad}: {}", text(&o.stderr));
        assert_eq!(
            text(&o.stderr).trim().lines().count(),
            1,
            "one line: {}",
            text(&o.stderr)
        );
    }
    e.assert_no_containers();
}

#[test]
fn seccomp_default_profile_and_security_opts() {
    seccomp_and_security_opts("seccomp_default_profile_and_security_opts", "berth-runtime");
}

#[test]
fn runc_seccomp_default_profile_and_security_opts() {
    seccomp_and_security_opts("runc_seccomp_default_profile_and_security_opts", "runc");
}

#[test]
fn env_file_labels_and_ps_filters() {
    const T: &str = "env_file_labels_and_ps_filters";
    let Some(rt) = runtime(T, "berth-runtime") else {
        return;
    };
    let e = Env::new("ctr-labels", rt);
    let envf = e.path("app.env");
    fs::write(
        &envf,
        "# settings\nA=from-file\n\nB=two words\nC=overridden\n",
    )
    .unwrap();
    let o = e.run(&[
        "--rm",
        "--env-file",
        envf.to_str().unwrap(),
        "-e",
        "C=from-flag",
        "busybox:test",
        "sh",
        "-c",
        "echo \"$A|$B|$C\"",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout).trim(),
        "from-file|two words|from-flag",
        "-e wins over the file"
    );
    let bad = e.path("bad.env");
    fs::write(&bad, "GOOD=1\nNOT A NAME=2\n").unwrap();
    let o = e.run(&[
        "--rm",
        "--env-file",
        bad.to_str().unwrap(),
        "busybox:test",
        "true",
    ]);
    assert_eq!(code(&o), 125, "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("bad.env:2"), "{}", text(&o.stderr));

    for (name, labels) in [
        ("web1", vec!["tier=web", "team=a"]),
        ("web2", vec!["tier=web"]),
        ("db", vec!["tier=db", "backup"]),
    ] {
        let mut a = vec!["-d", "--name", name];
        for l in &labels {
            a.extend_from_slice(&["--label", l]);
        }
        a.extend_from_slice(&["busybox:test", "sleep", "100"]);
        let o = e.run(&a);
        assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    }
    let i = inspect(&e, "db");
    assert_eq!(
        i["Config"]["Labels"],
        serde_json::json!({"tier": "db", "backup": ""})
    );
    let names = |filters: &[&str]| {
        let mut a = vec!["ps", "-a", "--format", "{{.Names}}"];
        for f in filters {
            a.extend_from_slice(&["--filter", f]);
        }
        let mut v: Vec<String> = e.ok(&a).lines().map(str::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(names(&["label=tier=web"]), ["web1", "web2"]);
    assert_eq!(names(&["label=backup"]), ["db"]);
    assert_eq!(
        names(&["label=tier=web", "label=team=a"]),
        ["web1"],
        "labels: all"
    );
    assert_eq!(names(&["name=web"]), ["web1", "web2"]);
    assert_eq!(
        names(&["name=web1", "name=db"]),
        ["db", "web1"],
        "same key: any"
    );
    e.ok(&["stop", "-t", "1", "web2"]);
    assert_eq!(names(&["status=exited"]), ["web2"]);
    assert_eq!(
        names(&["status=running", "label=tier=web"]),
        ["web1"],
        "different keys: all"
    );
    let o = e.berth(&["ps", "--filter", "colour=red"]);
    assert_eq!(code(&o), 125, "unknown filter: {}", text(&o.stderr));
    e.ok(&["rm", "-f", "web1", "web2", "db"]);
    e.assert_no_containers();
}

fn limits_tmpfs_and_stop_signal(test: &str, rt: &str) {
    let Some(rt) = runtime(test, rt) else { return };
    let e = Env::new("ctr-limits", rt);
    let script = "grep ' /scratch ' /proc/mounts; ulimit -n; ulimit -Hn; \
        cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cut -d' ' -f1 /sys/fs/cgroup/cpu.max";
    let o = e.run(&[
        "--rm",
        "--tmpfs",
        "/scratch:size=1m",
        "--ulimit",
        "nofile=512:1024",
        "--cpus",
        "0.5",
        "busybox:test",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[0].starts_with("tmpfs /scratch tmpfs"), "{out}");
    for opt in ["nosuid", "nodev", "noexec", "size=1024k"] {
        assert!(lines[0].contains(opt), "{opt} in {}", lines[0]);
    }
    assert_eq!(&lines[1..], ["512", "1024", "50000"], "{out}");

    // --stop-signal: the container exits 0 on USR1 and ignores TERM.
    let o = e.run(&[
        "-d",
        "--name",
        "sig",
        "--stop-signal",
        "SIGUSR1",
        "busybox:test",
        "sh",
        "-c",
        "trap 'exit 0' USR1; trap '' TERM; while true; do sleep 0.1; done",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(inspect(&e, "sig")["Config"]["StopSignal"], "USR1");
    e.ok(&["stop", "sig"]);
    assert_eq!(
        e.ok(&["wait", "sig"]).trim(),
        "0",
        "stopped by USR1, not killed"
    );
    // --stop-timeout: TERM ignored, SIGKILL after 1 s without -t.
    let o = e.run(&[
        "-d",
        "--name",
        "slow",
        "--stop-timeout",
        "1",
        "busybox:test",
        "sh",
        "-c",
        "trap '' TERM; while true; do sleep 0.1; done",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    e.ok(&["stop", "slow"]);
    assert_eq!(e.ok(&["wait", "slow"]).trim(), "137");
    e.ok(&["rm", "sig", "slow"]);

    for bad in [
        &["--ulimit", "bogus=1"][..],
        &["--ulimit", "nofile=10:5"],
        &["--cpus", "0"],
        &["--stop-signal", "NOPE"],
        &["--tmpfs", "relative"],
    ] {
        let mut a = bad.to_vec();
        a.extend(["--rm", "busybox:test", "true"]);
        let o = e.run(&a);
        assert_eq!(code(&o), 125, "{bad:?}: {}", text(&o.stderr));
        assert_eq!(
            text(&o.stderr).trim().lines().count(),
            1,
            "{bad:?}: {}",
            text(&o.stderr)
        );
    }
    e.assert_no_containers();
}

#[test]
fn run_limits_tmpfs_and_stop_signal() {
    limits_tmpfs_and_stop_signal("run_limits_tmpfs_and_stop_signal", "berth-runtime");
}

#[test]
fn runc_run_limits_tmpfs_and_stop_signal() {
    limits_tmpfs_and_stop_signal("runc_run_limits_tmpfs_and_stop_signal", "runc");
}

#[test]
fn named_volumes_persist_and_are_managed() {
    const T: &str = "named_volumes_persist_and_are_managed";
    let Some(rt) = runtime(T, "berth-runtime") else {
        return;
    };
    let e = Env::new("ctr-vol", rt);
    assert_eq!(
        e.ok(&["volume", "create", "--label", "k=v", "data"]).trim(),
        "data"
    );
    assert_eq!(code(&e.berth(&["volume", "create", "data"])), 125, "exists");
    let o = e.run(&[
        "--rm",
        "-v",
        "data:/data",
        "busybox:test",
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let o = e.run(&[
        "--rm",
        "-v",
        "data:/data:ro",
        "busybox:test",
        "sh",
        "-c",
        "cat /data/f; touch /data/g",
    ]);
    assert_eq!(text(&o.stdout).trim(), "kept", "{}", text(&o.stderr));
    assert_ne!(code(&o), 0, "read-only volume refuses writes");
    // -v NAME creates a missing volume; a container holds it until removed.
    let o = e.run(&[
        "-d",
        "--name",
        "user",
        "-v",
        "auto:/a",
        "busybox:test",
        "sleep",
        "100",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let mut names: Vec<String> = e
        .ok(&["volume", "ls", "-q"])
        .lines()
        .map(String::from)
        .collect();
    names.sort();
    assert_eq!(names, ["auto", "data"]);
    let v: Value = serde_json::from_str(&e.ok(&["volume", "inspect", "auto"])).unwrap();
    assert_eq!(v[0]["Containers"], serde_json::json!(["user"]));
    let i = inspect(&e, "user");
    assert_eq!(i["Mounts"][0]["Type"], "volume");
    assert_eq!(i["Mounts"][0]["Source"], v[0]["Mountpoint"]);
    let o = e.berth(&["volume", "rm", "auto"]);
    assert_eq!(code(&o), 125, "in use: {}", text(&o.stderr));
    assert!(text(&o.stderr).contains("user"), "{}", text(&o.stderr));
    assert_eq!(
        e.ok(&["volume", "prune"]).trim(),
        "data",
        "prune takes only unused volumes"
    );
    e.ok(&["rm", "-f", "user"]);
    e.ok(&["volume", "rm", "auto"]);
    assert_eq!(e.ok(&["volume", "ls", "-q"]).trim(), "");
    assert!(
        fs::read_dir(e.path("root/volumes"))
            .unwrap()
            .next()
            .is_none(),
        "no volume dirs left"
    );
    for bad in ["bad/name:/x", "../up:/x"] {
        let o = e.run(&["--rm", "-v", bad, "busybox:test", "true"]);
        assert_eq!(code(&o), 125, "{bad}: {}", text(&o.stderr));
    }
    assert_eq!(code(&e.berth(&["volume", "inspect", "nope"])), 125);
    e.assert_no_containers();
}

#[test]
fn info_version_and_container_prune() {
    const T: &str = "info_version_and_container_prune";
    let Some(rt) = runtime(T, "berth-runtime") else {
        return;
    };
    let e = Env::new("ctr-prune", rt);
    let o = e.run(&["-d", "--name", "up", "busybox:test", "sleep", "100"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let o = e.run(&["--name", "done", "busybox:test", "true"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    e.ok(&[
        "create",
        "--runtime",
        &e.runtime,
        "--name",
        "made",
        "busybox:test",
        "true",
    ]);
    let info: Value = serde_json::from_str(&e.ok(&["info"])).unwrap();
    assert_eq!(info["Containers"], 3, "{info}");
    assert_eq!(info["ContainersRunning"], 1);
    assert_eq!(info["ContainersStopped"], 2);
    assert_eq!(info["Images"], 1);
    assert_eq!(info["Root"], e.path("root").display().to_string());
    assert!(e.ok(&["version"]).starts_with("berth "));
    let mut want: Vec<String> = ["done", "made"]
        .iter()
        .map(|n| inspect(&e, n)["Id"].as_str().unwrap().to_string())
        .collect();
    want.sort();
    let mut pruned: Vec<String> = e
        .ok(&["container", "prune"])
        .lines()
        .map(String::from)
        .collect();
    pruned.sort();
    assert_eq!(pruned, want, "the stopped and the created container");
    let left: Vec<String> = e
        .ok(&["ps", "-a", "--format", "{{.Names}}"])
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(left, ["up"], "the running container stays");
    e.ok(&["rm", "-f", "up"]);
    e.assert_no_containers();
}

fn stats_of_a_busy_container(test: &str, rt: &str) {
    let Some(rt) = runtime(test, rt) else { return };
    let e = Env::new("ctr-stats", rt);
    let o = e.run(&[
        "-d",
        "--name",
        "busy",
        "--memory",
        "64m",
        "busybox:test",
        "sh",
        "-c",
        "while true; do :; done",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let v: Value =
        serde_json::from_str(&e.ok(&["stats", "--no-stream", "--format", "json", "busy"])).unwrap();
    let s = &v[0];
    assert_eq!(s["Name"], "busy", "{v}");
    assert_eq!(s["MemLimitBytes"], 64 << 20, "{v}");
    assert!(s["MemUsageBytes"].as_u64().unwrap() > 0, "{v}");
    assert!(s["PIDs"].as_u64().unwrap() >= 1, "{v}");
    let cpu: f64 = s["CPUPerc"]
        .as_str()
        .unwrap()
        .trim_end_matches('%')
        .parse()
        .unwrap();
    assert!(cpu > 0.0, "a busy loop uses CPU: {v}");
    // All running containers by default; a stopped one is an error.
    assert!(e.ok(&["stats", "--no-stream"]).contains("busy"));
    e.ok(&["stop", "-t", "1", "busy"]);
    assert_eq!(code(&e.berth(&["stats", "--no-stream", "busy"])), 125);
    e.ok(&["rm", "busy"]);
    e.assert_no_containers();
}

#[test]
fn stats_no_stream() {
    stats_of_a_busy_container("stats_no_stream", "berth-runtime");
}

#[test]
fn runc_stats_no_stream() {
    stats_of_a_busy_container("runc_stats_no_stream", "runc");
}
