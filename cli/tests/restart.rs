//! `--restart`: the monitor starts the container again by the policy; a
//! user's `stop` or `rm` ends that. As root, with berth-runtime and runc.

mod common;

use std::time::Duration;

use common::*;

fn log_count(e: &Env, name: &str, what: &str) -> usize {
    e.ok(&["logs", name]).lines().filter(|l| *l == what).count()
}

fn on_failure(test: &str, rt: &str) {
    let Some(rt) = runtime(test, rt) else { return };
    let e = Env::new("restart-fail", rt);
    e.ok(&[
        "run",
        "-d",
        "--runtime",
        &e.runtime,
        "--name",
        "r",
        "--restart",
        "on-failure:2",
        "busybox:test",
        "sh",
        "-c",
        "echo run; exit 3",
    ]);
    eventually("two restarts, then exited for good", || {
        let v = inspect(&e, "r");
        v["RestartCount"] == 2 && v["State"]["Status"] == "exited"
    });
    let v = inspect(&e, "r");
    assert_eq!(v["State"]["ExitCode"], 3);
    assert_eq!(v["HostConfig"]["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(v["HostConfig"]["RestartPolicy"]["MaximumRetryCount"], 2);
    assert_eq!(log_count(&e, "r", "run"), 3, "first run and two restarts");
    // No third restart comes later.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(log_count(&e, "r", "run"), 3);
    assert_eq!(inspect(&e, "r")["State"]["Status"], "exited");

    // A clean exit is not a failure.
    e.ok(&[
        "run",
        "-d",
        "--runtime",
        &e.runtime,
        "--name",
        "ok",
        "--restart",
        "on-failure",
        "busybox:test",
        "sh",
        "-c",
        "echo run",
    ]);
    eventually("ok exited", || {
        inspect(&e, "ok")["State"]["Status"] == "exited"
    });
    assert_eq!(inspect(&e, "ok")["RestartCount"], 0);
    e.ok(&["rm", "r", "ok"]);
    e.assert_no_containers();
}

#[test]
fn restart_on_failure_retries_up_to_the_maximum() {
    on_failure(
        "restart_on_failure_retries_up_to_the_maximum",
        "berth-runtime",
    );
}

#[test]
fn runc_restart_on_failure_retries_up_to_the_maximum() {
    on_failure("runc_restart_on_failure_retries_up_to_the_maximum", "runc");
}

#[test]
fn restart_always_ends_with_stop_and_rm() {
    let test = "restart_always_ends_with_stop_and_rm";
    let Some(rt) = runtime(test, "berth-runtime") else {
        return;
    };
    let e = Env::new("restart-always", rt);
    e.ok(&[
        "run",
        "-d",
        "--runtime",
        &e.runtime,
        "--name",
        "a",
        "--restart",
        "always",
        "busybox:test",
        "sh",
        "-c",
        "echo up; sleep 0.2",
    ]);
    eventually("restarted twice", || {
        inspect(&e, "a")["RestartCount"].as_u64().unwrap_or(0) >= 2
    });
    e.ok(&["stop", "-t", "2", "a"]);
    let v = inspect(&e, "a");
    assert_eq!(v["State"]["Status"], "exited", "{v}");
    let ups = log_count(&e, "a", "up");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        log_count(&e, "a", "up"),
        ups,
        "stopped means no more restarts"
    );
    assert_eq!(inspect(&e, "a")["State"]["Status"], "exited");

    // start clears the stop; rm -f ends it whether running or between runs.
    e.ok(&["start", "a"]);
    eventually("restarting again", || {
        inspect(&e, "a")["RestartCount"].as_u64().unwrap_or(0) >= 1
    });
    let o = e.berth(&["rm", "a"]);
    assert_ne!(code(&o), 0, "rm without -f refuses a container that is up");
    e.ok(&["rm", "-f", "a"]);
    e.assert_no_containers();
}

#[test]
fn restart_policy_bad_values_are_refused() {
    let test = "restart_policy_bad_values_are_refused";
    let Some(rt) = runtime(test, "berth-runtime") else {
        return;
    };
    let e = Env::new("restart-bad", rt);
    e.assert_run_refused(&[
        (&["--restart", "sometimes"][..], "--restart"),
        (&["--restart", "on-failure:x"][..], "retry count"),
        (&["--restart", "always:3"][..], "only on-failure"),
        (&["--rm", "--restart", "always"][..], "conflicting options"),
    ]);
}
