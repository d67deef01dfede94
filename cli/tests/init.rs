//! `--init`: a static init (tini or catatonit, as docker and podman ship)
//! is PID 1, the command runs under it, signals reach the command, orphans
//! are reaped, the command's exit code is the container's. As root, with
//! berth-runtime and runc; a named skip without a static init on the host.

mod common;

use common::*;

fn init_available(test: &str) -> bool {
    berth_testkit::require_path(
        test,
        "/usr/bin/tini-static",
        "no static init on this host (Debian package tini)",
    )
}

fn init_runs_the_command(test: &str, rt: &str) {
    if !init_available(test) {
        return;
    }
    let Some(rt) = runtime(test, rt) else { return };
    let e = Env::new("init", rt);
    let script = "tr '\\0' ' ' < /proc/1/cmdline; echo; echo sh=$$; \
                  sleep 30 & disown 2>/dev/null; (sleep 0.1 &); sleep 0.3; \
                  grep -l Z /proc/[0-9]*/stat 2>/dev/null | wc -l; exit 7";
    let o = e.run(&[
        "--rm",
        "--init",
        "--init-path",
        "/usr/bin/tini-static",
        "busybox:test",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(code(&o), 7, "the command's exit code: {}", text(&o.stderr));
    let out = text(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0].trim(),
        format!("/dev/init -- sh -c {script}"),
        "{out}"
    );
    assert_ne!(lines[1], "sh=1", "the command is not PID 1");
    assert_eq!(lines[2].trim(), "0", "no zombies: the init reaps orphans");
    e.assert_no_containers();

    // stop's TERM reaches a command that, as PID 1, would ignore it.
    e.ok(&[
        "run",
        "-d",
        "--name",
        "s",
        "--runtime",
        &e.runtime,
        "--init",
        "busybox:test",
        "sleep",
        "1000",
    ]);
    // Once the command runs, the init handles signals (before that, a PID
    // 1 without handlers ignores TERM: docker's race too).
    eventually("sleep runs under the init", || {
        e.ok(&["top", "s"]).contains("sleep 1000")
    });
    e.ok(&["stop", "-t", "20", "s"]);
    let v = inspect(&e, "s");
    assert_eq!(
        v["State"]["ExitCode"], 143,
        "TERM, not the KILL after the timeout: {v}"
    );
    assert_eq!(v["HostConfig"]["Init"], true);
    e.ok(&["rm", "s"]);
    e.assert_no_containers();
}

#[test]
fn init_is_pid_1_reaps_forwards_and_keeps_the_exit_code() {
    init_runs_the_command(
        "init_is_pid_1_reaps_forwards_and_keeps_the_exit_code",
        "berth-runtime",
    );
}

#[test]
fn runc_init_is_pid_1_reaps_forwards_and_keeps_the_exit_code() {
    init_runs_the_command(
        "runc_init_is_pid_1_reaps_forwards_and_keeps_the_exit_code",
        "runc",
    );
}

#[test]
fn init_path_must_be_a_static_executable() {
    let test = "init_path_must_be_a_static_executable";
    let Some(rt) = runtime(test, "berth-runtime") else {
        return;
    };
    let e = Env::new("init-bad", rt);
    e.assert_run_refused(&[
        (
            &["--init", "--init-path", "/nonexistent/init"][..],
            "not found",
        ),
        (
            &["--init", "--init-path", "/etc/passwd"][..],
            "not a statically linked",
        ),
    ]);
}
