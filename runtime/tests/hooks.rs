//! Hooks: every kind runs, in the spec's order, with the state on stdin; a
//! failing prestart hook aborts create and leaves nothing behind.

mod common;

use common::*;
use serde_json::json;

/// A hook that appends "<kind> <status>" (status read from the state on
/// stdin) to `log`. The host's /bin/sh for runtime-namespace hooks, the
/// container's busybox sh for startContainer.
fn hook(sh: &str, kind: &str, log: &str) -> serde_json::Value {
    json!({
        "path": sh,
        "args": ["sh", "-c", format!("read -r s; st=$(echo \"$s\" | sed 's/.*\"status\":\"\\([a-z]*\\)\".*/\\1/'); id=$(echo \"$s\" | grep -c '\"id\"'); echo \"{kind} $st $id\" >> {log}")]
    })
}

#[test]
fn every_hook_kind_runs_in_order_with_the_state_on_stdin() {
    if !require_root("every_hook_kind_runs_in_order_with_the_state_on_stdin") {
        return;
    }
    let rt = Rt::new();
    let mut b = bundle("echo process >> /hooks.log");
    let host_log = b.rootfs().join("hooks.log");
    let hl = host_log.to_str().unwrap().to_string();
    b.edit(|c| {
        c["root"]["readonly"] = json!(false);
        c["hooks"] = json!({
            "prestart": [hook("/bin/sh", "prestart", &hl)],
            "createRuntime": [hook("/bin/sh", "createRuntime", &hl)],
            "createContainer": [hook("/bin/sh", "createContainer", &hl)],
            "startContainer": [hook("/bin/sh", "startContainer", "/hooks.log")],
            "poststart": [hook("/bin/sh", "poststart", &hl)],
            "poststop": [hook("/bin/sh", "poststop", &hl)]
        });
    })
    .save();
    let id = unique("hooks");
    rt.ok(&["run", "-b", b.path().to_str().unwrap(), &id]);
    let log = std::fs::read_to_string(&host_log).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    // poststart runs after the process was started; it may race with it.
    let mut sorted = lines.clone();
    if let (Some(p), Some(s)) = (
        sorted.iter().position(|l| *l == "process"),
        sorted.iter().position(|l| l.starts_with("poststart")),
    ) {
        if s < p {
            sorted.swap(s, p);
        }
    }
    assert_eq!(
        sorted,
        vec![
            "prestart creating 1",
            "createRuntime creating 1",
            "createContainer creating 1",
            "startContainer created 1",
            "process",
            "poststart running 1",
            "poststop stopped 1"
        ],
        "{log}"
    );
}

#[test]
fn a_failing_prestart_hook_aborts_create_and_leaves_nothing() {
    if !require_root("a_failing_prestart_hook_aborts_create_and_leaves_nothing") {
        return;
    }
    let rt = Rt::new();
    let id = unique("badhook");
    let cg = format!("/berth-test/{id}");
    let mut b = bundle("sleep 100");
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(cg);
        c["hooks"] = json!({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "echo hook-said-no >&2; exit 3"]}]});
    })
    .save();
    let err = rt.fails(&["create", "-b", b.path().to_str().unwrap(), &id]);
    assert!(
        err.contains("prestart hook") && err.contains("hook-said-no"),
        "{err}"
    );
    assert!(!rt.state_dir(&id).exists(), "no state left");
    assert!(
        !std::path::Path::new(&format!("/sys/fs/cgroup/pids{cg}")).exists(),
        "no cgroup left"
    );
    let procs = std::process::Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&procs.stdout)
        .lines()
        .any(|l| l.contains(b.path().to_str().unwrap())));
    for ctrl in [
        "pids", "memory", "cpu", "freezer", "devices", "cpuset", "blkio", "cpuacct", "systemd",
    ] {
        let _ = std::fs::remove_dir(format!("/sys/fs/cgroup/{ctrl}/berth-test"));
    }
}

#[test]
fn hook_timeouts_are_enforced() {
    if !require_root("hook_timeouts_are_enforced") {
        return;
    }
    let rt = Rt::new();
    let mut b = bundle("true");
    b.edit(|c| c["hooks"] = json!({"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]}))
        .save();
    let id = unique("hooktime");
    let t = std::time::Instant::now();
    let err = rt.fails(&["create", "-b", b.path().to_str().unwrap(), &id]);
    assert!(err.contains("timed out"), "{err}");
    assert!(
        t.elapsed() < std::time::Duration::from_secs(20),
        "the hook was killed at its timeout"
    );
    assert!(!rt.state_dir(&id).exists());
}
