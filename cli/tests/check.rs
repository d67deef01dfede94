//! `berth system check [--repair]` for containers, as root: each
//! inconsistency made on purpose (a monitor killed by the pid in its lock
//! file, a record deleted from under its directories, mounts and runtime
//! state, a bundle deleted, a stray mount), reported, repaired, and checked
//! again.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Run detached; the container's id.
fn start(e: &Env, args: &[&str]) -> String {
    let mut a = vec!["-d"];
    a.extend_from_slice(args);
    let o = e.run(&a);
    assert_eq!(code(&o), 0, "run {args:?}: {}", text(&o.stderr));
    text(&o.stdout).trim().to_string()
}

/// The pid the container's monitor wrote into its lock file.
fn monitor_pid(e: &Env, id: &str) -> i32 {
    let lock = e.path("run/containers").join(id).join("monitor.lock");
    fs::read_to_string(&lock).unwrap().trim().parse().unwrap()
}

/// SIGKILL the container's monitor (our own process: this test's berth
/// started it) by its pid, and wait until it is gone.
fn kill_monitor(e: &Env, id: &str) {
    let pid = monitor_pid(e, id);
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    eventually("the monitor is gone", || !alive(pid.into()));
}

/// Whether a process runs (exists and is not a zombie).
fn alive(pid: i64) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

/// `system check [--repair]`: (exit code, stdout).
fn check(e: &Env, repair: bool) -> (i32, String) {
    let mut a = vec!["system", "check"];
    if repair {
        a.push("--repair");
    }
    let o = e.berth(&a);
    (code(&o), text(&o.stdout))
}

fn has(out: &str, line_start: &str, needle: &str) -> bool {
    out.lines()
        .any(|l| l.starts_with(line_start) && l.contains(needle))
}

#[test]
fn system_check_records_the_exit_of_a_killed_monitor() {
    let test = "system_check_records_the_exit_of_a_killed_monitor";
    let Some(rt) = runtime(test, "berth-runtime") else {
        return;
    };
    let e = Env::new("check-monitor", rt);
    let id = start(&e, &["--name", "dm", "busybox:test", "sleep", "1000"]);
    let pid = inspect(&e, "dm")["State"]["Pid"].as_i64().unwrap();
    kill_monitor(&e, &id);
    assert!(alive(pid), "the container outlives its monitor");
    assert_eq!(
        e.ps_all()[0]["Status"],
        "Exited (255)",
        "as ps showed before"
    );

    let (c, out) = check(&e, false);
    assert_eq!(c, 1, "{out}");
    let kind = "container monitor died without recording its exit";
    assert!(
        has(&out, &format!("found: {kind}"), &format!("{id} dm")),
        "{out}"
    );
    assert!(alive(pid), "a check without --repair changes nothing");

    let (c, out) = check(&e, true);
    assert_eq!(c, 0, "{out}");
    assert!(has(&out, &format!("repaired: {kind}"), &id), "{out}");
    eventually("the orphaned container is killed", || !alive(pid));
    let state = e.path("run/runtime/berth-runtime").join(&id);
    assert!(!state.exists(), "runtime state deleted");
    let i = inspect(&e, "dm");
    assert_eq!(i["State"]["Status"], "exited");
    assert_eq!(i["State"]["ExitCode"], 255);
    assert!(
        i["State"]["Error"]
            .as_str()
            .unwrap()
            .contains("system check --repair"),
        "{}",
        i["State"]
    );
    assert!(check(&e, false).1.contains("store is consistent"));
    e.ok(&["rm", "dm"]);
    e.assert_no_containers();
}

/// Delete a container's row from berth.db behind berth's back.
fn delete_record(e: &Env, id: &str) {
    let db = rusqlite::Connection::open(e.path("root/berth.db")).unwrap();
    let n = db
        .execute("DELETE FROM containers WHERE id = ?1", [id])
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn system_check_repairs_orphans_missing_bundles_and_leaked_mounts() {
    let test = "system_check_repairs_orphans_missing_bundles_and_leaked_mounts";
    let Some(rt) = runtime(test, "berth-runtime") else {
        return;
    };
    let e = Env::new("check-orphans", rt);
    let store = e.path("root/containers");

    // A running container whose monitor died and whose record is gone: its
    // run dir, snapshot (mounted, with its image lease) and runtime state
    // (with a live process) are left.
    let orphan = start(&e, &["--name", "orphan", "busybox:test", "sleep", "1000"]);
    let orphan_pid = inspect(&e, "orphan")["State"]["Pid"].as_i64().unwrap();
    kill_monitor(&e, &orphan);
    delete_record(&e, &orphan);

    // An exited container whose record and snapshot directory are gone:
    // its run dir and image lease are left.
    let o = e.run(&["--name", "gone", "busybox:test", "true"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let gone = inspect(&e, "gone")["Id"].as_str().unwrap().to_string();
    let pid = monitor_pid(&e, &gone);
    eventually("its monitor has finished", || !alive(pid.into()));
    delete_record(&e, &gone);
    nix::mount::umount2(
        &store.join(&gone).join("merged"),
        nix::mount::MntFlags::MNT_DETACH,
    )
    .unwrap();
    fs::remove_dir_all(store.join(&gone)).unwrap();

    // A created container whose bundle was deleted, with a stray tmpfs
    // mounted inside its root filesystem.
    let o = e.berth(&[
        "create",
        "--runtime",
        &e.runtime,
        "--name",
        "nb",
        "busybox:test",
        "true",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let nb = text(&o.stdout).trim().to_string();
    fs::remove_dir_all(store.join(&nb).join("userdata")).unwrap();
    let stray = store.join(&nb).join("merged/tmp");
    nix::mount::mount(
        Some("tmpfs"),
        &stray,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .unwrap();

    let shown = |p: &Path| p.display().to_string();
    let leaked = "mount under the container store without a container";
    let no_record = "container run directory without a record";
    let expected = [
        (leaked, shown(&store.join(&orphan).join("merged"))),
        (leaked, shown(&stray)),
        (no_record, shown(&e.path("run/containers").join(&orphan))),
        (no_record, shown(&e.path("run/containers").join(&gone))),
        (
            "container snapshot without a record",
            shown(&store.join(&orphan)),
        ),
        (
            "image lease of a container without a record",
            format!("container:{gone}"),
        ),
        (
            "runtime state of a container without a record",
            orphan.clone(),
        ),
        ("container record without a bundle", format!("{nb} nb")),
    ];
    let (c, out) = check(&e, false);
    assert_eq!(c, 1, "{out}");
    for (kind, subject) in &expected {
        assert!(
            has(&out, &format!("found: {kind}: "), subject),
            "{kind} {subject}:\n{out}"
        );
    }
    assert!(alive(orphan_pid) && stray.exists());

    let (c, out) = check(&e, true);
    assert_eq!(c, 0, "{out}");
    for (kind, subject) in &expected {
        assert!(
            has(&out, &format!("repaired: {kind}: "), subject),
            "{kind} {subject}:\n{out}"
        );
    }
    eventually("the orphan's process is killed", || !alive(orphan_pid));
    for d in [
        store.join(&orphan),
        e.path("run/containers").join(&orphan),
        e.path("run/containers").join(&gone),
    ] {
        assert!(!d.exists(), "{} removed", d.display());
    }
    assert!(!e.path("run/runtime/berth-runtime").join(&orphan).exists());
    assert_eq!(
        berth_testkit::mounts_under(&store),
        vec![store.join(&nb).join("merged").display().to_string()],
        "only the recorded container's root filesystem is mounted"
    );
    assert!(check(&e, false).1.contains("store is consistent"));

    // The rewritten bundle runs.
    e.ok(&["start", "nb"]);
    assert_eq!(e.ok(&["wait", "nb"]).trim(), "0");
    e.ok(&["rm", "nb"]);
    e.assert_no_containers();
    // The image the orphans leased is free again.
    e.ok(&["rmi", "busybox:test"]);
}
