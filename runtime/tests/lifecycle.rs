//! The runtime's lifecycle as callers drive it: run, create/start/state/
//! kill/delete, invalid transitions, list, ps.

mod common;

use common::*;

macro_rules! root_or_skip {
    ($name:expr) => {
        if !require_root($name) {
            return;
        }
    };
}

#[test]
fn run_prints_from_inside_an_isolated_container() {
    root_or_skip!("run_prints_from_inside_an_isolated_container");
    let rt = Rt::new();
    let mut b = bundle(
        "echo hello; hostname; echo pid=$$; ps -o pid | wc -l; ls /; ip -o link | cut -d: -f2",
    );
    b.edit(|c| c["hostname"] = serde_json::json!("inside"))
        .save();
    std::fs::write(b.rootfs().join("marker-of-this-bundle"), "").unwrap();
    let id = unique("run");
    let o = rt.run(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}\n{}", stderr(&o));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "hello");
    assert_eq!(lines[1], "inside", "hostname is the container's");
    assert_eq!(lines[2], "pid=1", "the process is pid 1");
    // header + sh + ps + wc: only the container's own processes
    let n: usize = lines[3].trim().parse().unwrap();
    assert!(n <= 4, "sees only its own processes, saw {n} lines");
    assert!(
        out.contains("marker-of-this-bundle"),
        "rootfs is the bundle's"
    );
    let links: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with(' '))
        .map(|l| l.trim())
        .collect();
    assert_eq!(links, vec!["lo"], "network namespace has only lo");
    assert!(
        !rt.state_dir(&id).exists(),
        "run without --keep deletes the container"
    );
}

#[test]
fn run_exits_with_the_container_status() {
    root_or_skip!("run_exits_with_the_container_status");
    let rt = Rt::new();
    let b = bundle("exit 3");
    let o = rt.run(&["run", "-b", b.path().to_str().unwrap(), &unique("exit")]);
    assert_eq!(o.status.code(), Some(3));
    // Outside a pid namespace of its own the process is not an init, so a
    // SIGKILL to itself is not ignored.
    let mut b = bundle("kill -9 $$");
    b.without_namespace("pid").save();
    let o = rt.run(&["run", "-b", b.path().to_str().unwrap(), &unique("sig")]);
    assert_eq!(o.status.code(), Some(137), "128+SIGKILL");
}

#[test]
fn create_start_kill_delete_walks_the_states() {
    root_or_skip!("create_start_kill_delete_walks_the_states");
    let rt = Rt::new();
    let b = bundle("echo started; exec sleep 100");
    let id = unique("life");
    let pid_file = b.path().join("pid");
    rt.ok(&[
        "create",
        "--bundle",
        b.path().to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
    ]);
    let st = rt.state(&id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], id.as_str());
    assert_eq!(
        st["bundle"],
        b.path().canonicalize().unwrap().to_str().unwrap()
    );
    assert!(st["ociVersion"].as_str().unwrap().starts_with("1."));
    let pid = st["pid"].as_i64().unwrap();
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap().trim(),
        pid.to_string()
    );
    assert!(alive(pid));

    rt.ok(&["start", &id]);
    assert_eq!(rt.status(&id), "running");
    let err = rt.fails(&["start", &id]);
    assert!(err.contains("running"), "start twice: {err}");
    let err = rt.fails(&["delete", &id]);
    assert!(err.contains("not stopped"), "delete running: {err}");

    rt.ok(&["kill", &id, "KILL"]);
    rt.wait_status(&id, "stopped");
    assert_eq!(rt.state(&id)["pid"], 0);
    let err = rt.fails(&["kill", &id]);
    assert!(err.contains("not running"), "kill stopped: {err}");
    rt.ok(&["delete", &id]);
    assert!(!rt.state_dir(&id).exists());
    let err = rt.fails(&["state", &id]);
    assert!(err.contains("does not exist"), "state of deleted: {err}");
}

#[test]
fn unknown_ids_and_bad_ids_are_clear_errors() {
    root_or_skip!("unknown_ids_and_bad_ids_are_clear_errors");
    let rt = Rt::new();
    for cmd in [
        &["state", "nope"][..],
        &["start", "nope"],
        &["kill", "nope"],
        &["delete", "nope"],
        &["pause", "nope"],
        &["exec", "nope", "true"],
    ] {
        let err = rt.fails(cmd);
        assert!(err.contains("does not exist"), "{cmd:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
    let b = bundle("true");
    let err = rt.fails(&["create", "-b", b.path().to_str().unwrap(), "../escape"]);
    assert!(err.contains("invalid"), "{err}");
    let err = rt.fails(&["kill", "x", "NOTASIGNAL"]);
    assert!(
        err.contains("does not exist") || err.contains("signal"),
        "{err}"
    );
}

#[test]
fn signals_by_name_and_number() {
    root_or_skip!("signals_by_name_and_number");
    let rt = Rt::new();
    let b = bundle("trap 'echo got-usr1' USR1; echo ready; while true; do sleep 0.05; done");
    let id = unique("sig");
    let log = rt.create_logged(&b, &id);
    rt.ok(&["start", &id]);
    wait_for_text(&log, "ready");
    rt.ok(&["kill", &id, "USR1"]);
    wait_for_text(&log, "got-usr1");
    rt.ok(&["kill", &id, "9"]);
    rt.wait_status(&id, "stopped");
    let err = rt.fails(&["kill", &id, "SIGBOGUS"]);
    assert!(
        err.contains("signal") || err.contains("not running"),
        "{err}"
    );
}

#[test]
fn kill_all_reaches_every_process() {
    root_or_skip!("kill_all_reaches_every_process");
    let rt = Rt::new();
    // Without a pid namespace of its own, killing init does not kill the rest.
    let mut b = bundle("sleep 100 & sleep 100 & echo ready; wait");
    b.without_namespace("pid").save();
    let id = unique("killall");
    let log = rt.create_logged(&b, &id);
    rt.ok(&["start", &id]);
    wait_for_text(&log, "ready");
    let pids: Vec<i64> = serde_json::from_str(&rt.ok(&["ps", "--format", "json", &id])).unwrap();
    assert!(pids.len() >= 3, "init and two sleeps: {pids:?}");
    rt.ok(&["kill", "--all", &id, "KILL"]);
    rt.wait_status(&id, "stopped");
    let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while pids.iter().any(|p| alive(*p)) && std::time::Instant::now() < end {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(pids.iter().all(|p| !alive(*p)), "all processes died");
    rt.ok(&["delete", &id]);
}

#[test]
fn delete_force_kills_a_running_container_and_removes_its_cgroup() {
    root_or_skip!("delete_force_kills_a_running_container_and_removes_its_cgroup");
    let rt = Rt::new();
    let id = unique("force");
    let cg = format!("/berth-test/{id}");
    let mut b = bundle("exec sleep 100");
    b.edit(|c| c["linux"]["cgroupsPath"] = serde_json::json!(cg))
        .save();
    rt.create(&b, &id);
    rt.ok(&["start", &id]);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    assert!(std::path::Path::new(&format!("/sys/fs/cgroup/pids{cg}")).is_dir());
    rt.ok(&["delete", "--force", &id]);
    assert!(!alive(pid));
    assert!(!rt.state_dir(&id).exists());
    assert!(
        !std::path::Path::new(&format!("/sys/fs/cgroup/pids{cg}")).exists(),
        "cgroup removed"
    );
    for ctrl in [
        "pids", "memory", "cpu", "freezer", "devices", "cpuset", "blkio", "cpuacct", "systemd",
    ] {
        let _ = std::fs::remove_dir(format!("/sys/fs/cgroup/{ctrl}/berth-test"));
    }
}

#[test]
fn deleting_a_created_container_kills_its_init() {
    root_or_skip!("deleting_a_created_container_kills_its_init");
    let rt = Rt::new();
    let id = unique("delcreated");
    rt.create(&bundle("true"), &id);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    rt.ok(&["delete", &id]);
    assert!(!alive(pid));
}

#[test]
fn list_shows_containers_in_table_json_and_quiet_form() {
    root_or_skip!("list_shows_containers_in_table_json_and_quiet_form");
    let rt = Rt::new();
    let id = unique("list");
    rt.create(&bundle("sleep 100"), &id);
    let json: serde_json::Value =
        serde_json::from_str(&rt.ok(&["list", "--format", "json"])).unwrap();
    assert_eq!(json[0]["id"], id.as_str());
    assert_eq!(json[0]["status"], "created");
    assert!(rt.ok(&["list"]).lines().nth(1).unwrap().starts_with(&id));
    assert_eq!(rt.ok(&["list", "-q"]).trim(), id);
    rt.ok(&["delete", "--force", &id]);
    assert_eq!(rt.ok(&["list", "-q"]).trim(), "");
}

#[test]
fn ps_lists_the_container_processes() {
    root_or_skip!("ps_lists_the_container_processes");
    let rt = Rt::new();
    let id = unique("ps");
    let b = bundle("exec sleep 100");
    rt.create(&b, &id);
    rt.ok(&["start", &id]);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let pids: Vec<i64> = serde_json::from_str(&rt.ok(&["ps", "--format", "json", &id])).unwrap();
    assert_eq!(pids, vec![pid]);
    let table = rt.ok(&["ps", &id]);
    assert!(table.lines().next().unwrap().contains("PID"));
    assert!(table.lines().any(|l| l.contains("sleep 100")), "{table}");
    rt.ok(&["delete", "--force", &id]);
}

#[test]
fn go_style_single_dash_flags_are_accepted() {
    root_or_skip!("go_style_single_dash_flags_are_accepted");
    let rt = Rt::new();
    let b = bundle("echo go-style");
    let o = rt.run(&[
        "run",
        "-no-subreaper",
        "-bundle",
        b.path().to_str().unwrap(),
        &unique("go"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "go-style");
}

#[test]
fn json_log_format_writes_json_lines() {
    root_or_skip!("json_log_format_writes_json_lines");
    let rt = Rt::new();
    let log = rt.root.path().join("../berth-json-log-test.log");
    let log = log.to_str().unwrap().to_string();
    let o = rt.run(&["--log", &log, "--log-format", "json", "state", "missing"]);
    assert!(!o.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::remove_file(&log).unwrap();
    let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(line["level"], "error");
    assert!(line["msg"].as_str().unwrap().contains("does not exist"));
    assert!(line["time"].is_string());
}

#[test]
fn spec_and_features_print_runc_shaped_json() {
    let dir = berth_testkit::tempdir("spec");
    let o = std::process::Command::new(bin())
        .arg("spec")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success());
    let spec: oci_spec::runtime::Spec =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(
        spec.process().as_ref().unwrap().args().as_ref().unwrap(),
        &vec!["sh".to_string()]
    );
    let again = std::process::Command::new(bin())
        .arg("spec")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        !again.status.success(),
        "spec refuses to overwrite config.json"
    );
    let o = std::process::Command::new(bin())
        .args(["spec", "--rootless", "--bundle"])
        .arg(dir.path().join(".."))
        .output();
    drop(o);
    let f = std::process::Command::new(bin())
        .arg("features")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&f.stdout).unwrap();
    for ns in ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"] {
        assert!(
            v["linux"]["namespaces"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x == ns),
            "{ns}"
        );
    }
    assert!(v["linux"]["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "CAP_SYS_ADMIN"));
    assert_eq!(v["hooks"].as_array().unwrap().len(), 6);
    assert!(v["mountOptions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o == "rbind"));
}

#[test]
fn a_corrupt_state_file_is_reported_and_force_delete_repairs_it() {
    root_or_skip!("a_corrupt_state_file_is_reported_and_force_delete_repairs_it");
    let rt = Rt::new();
    let b = bundle("true");
    let id = unique("corrupt");
    rt.create(&b, &id);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    rt.ok(&["delete", &id]);
    assert!(!alive(pid));
    // As a power loss could leave it: the directory with an empty state file.
    std::fs::create_dir_all(rt.state_dir(&id)).unwrap();
    std::fs::write(rt.state_dir(&id).join("state.json"), "").unwrap();
    let err = rt.fails(&["state", &id]);
    assert!(err.contains("corrupt"), "{err}");
    let err = rt.fails(&["delete", &id]);
    assert!(err.contains("corrupt"), "{err}");
    rt.ok(&["delete", "--force", &id]);
    assert!(!rt.state_dir(&id).exists());
}
