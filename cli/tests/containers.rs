//! The `berth` container verbs end to end, as root, on a busybox image made
//! with `berth import`, each test with its own `--root` and `--runroot`,
//! with berth-runtime (`$BERTH_RUNTIME`, default target/debug/berth-runtime)
//! and again with runc.

mod common;

use std::fs;
use std::path::Path;
use std::process::Output;

use common::*;
use serde_json::Value;

fn rm_echo_leaves_nothing(test: &str, rt: &str) {
    let Some(rt) = runtime(test, rt) else { return };
    let e = Env::new("ctr-echo", rt);
    let o = e.run(&["--rm", "busybox:test", "echo", "hi"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "hi\n");
    e.assert_no_containers();
    // The container's cgroup is gone too.
    let o = e.run(&[
        "--rm",
        "busybox:test",
        "sh",
        "-c",
        "grep pids /proc/self/cgroup",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let line = text(&o.stdout);
    let rel = line
        .trim()
        .rsplit(':')
        .next()
        .unwrap()
        .trim_start_matches('/')
        .to_string();
    assert!(rel.starts_with("berth/"), "container cgroup: {line}");
    let cg = Path::new("/sys/fs/cgroup/pids").join(&rel);
    assert!(!cg.exists(), "{} removed", cg.display());
    e.assert_no_containers();
}

#[test]
fn run_rm_echo_prints_hi_and_leaves_nothing() {
    rm_echo_leaves_nothing("run_rm_echo_prints_hi_and_leaves_nothing", "berth-runtime");
}

#[test]
fn runc_run_rm_echo_prints_hi_and_leaves_nothing() {
    rm_echo_leaves_nothing("runc_run_rm_echo_prints_hi_and_leaves_nothing", "runc");
}

fn exit_codes(test: &str, rt: &str) {
    let Some(rt) = runtime(test, rt) else { return };
    let e = Env::new("ctr-exit", rt);
    let o = e.run(&[
        "--rm",
        "busybox:test",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(code(&o), 3, "{}", text(&o.stderr));
    assert_eq!(
        (text(&o.stdout), text(&o.stderr)),
        ("out\n".into(), "err\n".into())
    );
    let o = e.run(&["busybox:test", "sh", "-c", "exit 3"]);
    assert_eq!(code(&o), 3);
    let ps = e.ps_all();
    assert_eq!(
        (ps.len(), &ps[0]["State"], &ps[0]["ExitCode"]),
        (1, &Value::from("exited"), &Value::from(3))
    );
    let o = e.run(&["--rm", "busybox:test", "no-such-command"]);
    assert_eq!(code(&o), 127, "{}", text(&o.stderr));
    let o = e.run(&["--rm", "busybox:test", "/tmp"]);
    let c = code(&o);
    // docker (and runc) say 126; berth-runtime reports a path that is not
    // executable like a missing one ("no such executable file"), so 127.
    assert!(
        c == 126 || c == 127,
        "a directory cannot be run: {c} {}",
        text(&o.stderr)
    );
    let o = e.run(&["--rm", "busybox:test", "/no/such/file"]);
    assert_eq!(code(&o), 127, "{}", text(&o.stderr));
    // A usage error is docker's 125 too; --help is not an error.
    let o = e.run(&["--no-such-flag", "busybox:test", "true"]);
    assert_eq!(code(&o), 125, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("--no-such-flag"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(code(&e.berth(&["run", "--help"])), 0);
    assert_eq!(e.ps_all().len(), 1, "failed --rm runs left nothing");
}

#[test]
fn run_exit_codes_follow_docker() {
    exit_codes("run_exit_codes_follow_docker", "berth-runtime");
}

#[test]
fn runc_run_exit_codes_follow_docker() {
    exit_codes("runc_run_exit_codes_follow_docker", "runc");
}

fn detached_lifecycle(test: &str, rt: &str) {
    let Some(rt) = runtime(test, rt) else { return };
    let e = Env::new("ctr-web", rt);
    let script = "echo started; trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done";
    let o = e.run(&[
        "-d",
        "--name",
        "web",
        "-e",
        "GREETING=hello",
        "busybox:test",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let id = text(&o.stdout).trim().to_string();
    assert_eq!(id.len(), 64, "run -d prints the id: {id}");
    let ps = e.ok(&["ps"]);
    assert!(
        ps.contains("web") && ps.contains(&id[..12]) && ps.contains("Up"),
        "{ps}"
    );
    assert_eq!(e.ok(&["ps", "-q"]).trim(), &id[..12]);
    eventually("the log has the first line", || {
        e.ok(&["logs", "web"]) == "started\n"
    });
    assert_eq!(
        e.ok(&["exec", "web", "cat", "/etc/hostname"]).trim(),
        &id[..12]
    );
    assert_eq!(
        e.ok(&["exec", "web", "sh", "-c", "echo $GREETING"]).trim(),
        "hello"
    );
    assert_eq!(
        e.ok(&[
            "exec",
            "-e",
            "X=1",
            "-w",
            "/tmp",
            "web",
            "sh",
            "-c",
            "echo $X $PWD"
        ])
        .trim(),
        "1 /tmp"
    );
    assert_eq!(code(&e.berth(&["exec", "web", "sh", "-c", "exit 7"])), 7);
    let o = e.berth(&["rm", "web"]);
    assert_eq!(code(&o), 125, "rm of a running container without -f fails");
    let follower = e.cmd(&["logs", "-f", "web"]).spawn().unwrap();
    e.ok(&["stop", "-t", "10", "web"]);
    let followed = follower.wait_with_output().unwrap();
    assert_eq!(
        text(&followed.stdout),
        "started\nbye\n",
        "logs -f follows until the exit"
    );
    let i: Value = serde_json::from_str(&e.ok(&["inspect", "web"])).unwrap();
    assert_eq!(i[0]["State"]["Status"], "exited");
    assert_eq!(i[0]["State"]["ExitCode"], 0, "SIGTERM was honoured");
    assert_eq!(i[0]["Id"], id.as_str());
    assert_eq!(e.ok(&["logs", "--tail", "1", "web"]), "bye\n");
    assert_eq!(e.ok(&["wait", "web"]).trim(), "0");
    let o = e.berth(&["exec", "web", "true"]);
    assert_eq!(code(&o), 125, "exec into a stopped container fails");
    e.ok(&["rm", "web"]);
    e.assert_no_containers();
    // SIGKILL after the timeout for a process that ignores SIGTERM.
    let o = e.run(&[
        "-d",
        "busybox:test",
        "sh",
        "-c",
        "trap '' TERM; while true; do sleep 0.1; done",
    ]);
    let id = text(&o.stdout).trim().to_string();
    e.ok(&["stop", "-t", "1", &id]);
    assert_eq!(e.ok(&["wait", &id]).trim(), "137");
    e.ok(&["rm", &id]);
    e.assert_no_containers();
    // kill: SIGKILL by default.
    let o = e.run(&["-d", "--name", "k", "busybox:test", "sleep", "100"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    e.ok(&["kill", "k"]);
    assert_eq!(e.ok(&["wait", "k"]).trim(), "137");
    assert_eq!(
        code(&e.berth(&["kill", "k"])),
        125,
        "kill of a stopped container fails"
    );
    e.ok(&["rm", "k"]);
    e.assert_no_containers();
}

#[test]
fn run_detached_ps_logs_exec_stop_rm() {
    detached_lifecycle("run_detached_ps_logs_exec_stop_rm", "berth-runtime");
}

#[test]
fn runc_run_detached_ps_logs_exec_stop_rm() {
    detached_lifecycle("runc_run_detached_ps_logs_exec_stop_rm", "runc");
}

fn monitor_removes(test: &str, rt: &str) {
    let Some(rt) = runtime(test, rt) else { return };
    let e = Env::new("ctr-rmd", rt);
    let o = e.run(&[
        "-d",
        "--rm",
        "busybox:test",
        "sh",
        "-c",
        "sleep 0.5; echo done",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    // The berth process that started it has exited; the monitor removes it.
    assert_eq!(e.ps_all().len(), 1, "running at first");
    eventually("the monitor removed the container", || {
        e.ps_all().is_empty()
    });
    eventually("its files and mounts are gone", || {
        fs::read_dir(e.path("root/containers"))
            .map(|r| r.count() == 0)
            .unwrap_or(true)
            && berth_testkit::mounts_under(e.dir.path()).is_empty()
    });
    e.assert_no_containers();
    // rm -f of a running --rm container: killed, and removed once.
    let o = e.run(&["-d", "--rm", "busybox:test", "sleep", "100"]);
    let id = text(&o.stdout).trim().to_string();
    e.ok(&["rm", "-f", &id]);
    e.assert_no_containers();
}

#[test]
fn run_rm_detached_is_removed_by_the_monitor() {
    monitor_removes("run_rm_detached_is_removed_by_the_monitor", "berth-runtime");
}

#[test]
fn runc_run_rm_detached_is_removed_by_the_monitor() {
    monitor_removes("runc_run_rm_detached_is_removed_by_the_monitor", "runc");
}

fn unknown_image(test: &str, rt: &str) {
    let Some(rt) = runtime(test, rt) else { return };
    let e = Env::new("ctr-noimg", rt);
    let o = e.run(&["--rm", "no-such-image:latest", "echo", "hi"]);
    assert_eq!(code(&o), 125);
    let err = text(&o.stderr);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("no such image: no-such-image:latest"), "{err}");
    assert!(o.stdout.is_empty());
    e.assert_no_containers();
    // Bad values fail the same way, before anything exists.
    for bad in [
        &["--network", "nosuchnet"][..],
        &["--memory", "lots"],
        &["-v", "bad/src:/x"],
        &["-u", "nosuchuser"],
    ] {
        let mut a = bad.to_vec();
        a.extend(["--rm", "busybox:test", "true"]);
        let o = e.run(&a);
        assert_eq!(code(&o), 125, "{bad:?}: {}", text(&o.stderr));
        e.assert_no_containers();
    }
    let o = e.run(&["-d", "--name", "dup", "busybox:test", "sleep", "5"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let o = e.run(&["--name", "dup", "busybox:test", "true"]);
    assert_eq!(code(&o), 125);
    assert!(
        text(&o.stderr).contains("already in use"),
        "{}",
        text(&o.stderr)
    );
    e.ok(&["rm", "-f", "dup"]);
    e.assert_no_containers();
}

#[test]
fn run_unknown_image_is_125_and_leaves_nothing() {
    unknown_image(
        "run_unknown_image_is_125_and_leaves_nothing",
        "berth-runtime",
    );
}

#[test]
fn runc_run_unknown_image_is_125_and_leaves_nothing() {
    unknown_image("runc_run_unknown_image_is_125_and_leaves_nothing", "runc");
}

fn options_reach_the_container(test: &str, rt: &str) {
    let Some(rt) = runtime(test, rt) else { return };
    let e = Env::new("ctr-opts", rt);
    let vol = e.path("vol");
    fs::create_dir_all(&vol).unwrap();
    fs::write(vol.join("f"), "from host").unwrap();
    let v = format!("{}:/data:ro", vol.display());
    let o = e.run(&[
        "--rm", "-u", "user", "-w", "/tmp", "--hostname", "box", "-v", &v, "--read-only",
        "busybox:test", "sh", "-c",
        "id -u; id -g; pwd; hostname; cat /data/f; echo; touch /x 2>/dev/null || echo rootfs-ro; touch /data/y 2>/dev/null || echo vol-ro; echo $HOME",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout),
        "1000\n1000\n/tmp\nbox\nfrom host\nrootfs-ro\nvol-ro\n/home/user\n"
    );
    let o = e.run(&["--rm", "--entrypoint", "echo", "busybox:test", "a", "b"]);
    assert_eq!(text(&o.stdout), "a b\n");
    // Resources reach the cgroup; docker's default capabilities; no network.
    let o = e.run(&[
        "--rm", "--memory", "64m", "--pids-limit", "50", "busybox:test", "sh", "-c",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; \
         grep CapEff /proc/self/status | cut -f2; tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "67108864\n50\n00000000a80425fb\nlo\n");
    let o = e.run(&[
        "--rm",
        "--cap-drop",
        "ALL",
        "busybox:test",
        "sh",
        "-c",
        "grep CapEff /proc/self/status | cut -f2",
    ]);
    assert_eq!(text(&o.stdout), "0000000000000000\n");
    e.assert_no_containers();
}

#[test]
fn run_options_reach_the_container() {
    options_reach_the_container("run_options_reach_the_container", "berth-runtime");
}

#[test]
fn runc_run_options_reach_the_container() {
    options_reach_the_container("runc_run_options_reach_the_container", "runc");
}

#[test]
fn crun_run_rm_echo_prints_hi_and_leaves_nothing() {
    rm_echo_leaves_nothing("crun_run_rm_echo_prints_hi_and_leaves_nothing", "crun");
}

#[test]
fn crun_run_exit_codes_follow_docker() {
    exit_codes("crun_run_exit_codes_follow_docker", "crun");
}

#[test]
fn crun_run_detached_ps_logs_exec_stop_rm() {
    detached_lifecycle("crun_run_detached_ps_logs_exec_stop_rm", "crun");
}

#[test]
fn crun_run_rm_detached_is_removed_by_the_monitor() {
    monitor_removes("crun_run_rm_detached_is_removed_by_the_monitor", "crun");
}

#[test]
fn dead_monitor_shows_exited_with_a_reason_and_rm_cleans_up() {
    let test = "dead_monitor_shows_exited_with_a_reason_and_rm_cleans_up";
    let Some(rt) = runtime(test, "berth-runtime") else {
        return;
    };
    let e = Env::new("ctr-dead", rt);
    let o = e.run(&["-d", "busybox:test", "sleep", "100"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let id = text(&o.stdout).trim().to_string();
    let lock = e.path("run/containers").join(&id).join("monitor.lock");
    let pid: i32 = fs::read_to_string(&lock).unwrap().trim().parse().unwrap();
    // Our own monitor, started by this test's berth.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    eventually("the container shows as exited", || {
        e.ps_all()[0]["State"] == "exited"
    });
    let i: Value = serde_json::from_str(&e.ok(&["inspect", &id])).unwrap();
    assert!(
        i[0]["State"]["Error"].as_str().unwrap().contains("monitor"),
        "{}",
        i[0]["State"]
    );
    e.ok(&["rm", &id]);
    e.assert_no_containers();
}

#[test]
fn parallel_run_rm_all_succeed_and_leave_nothing() {
    let test = "parallel_run_rm_all_succeed_and_leave_nothing";
    let Some(rt) = runtime(test, "berth-runtime") else {
        return;
    };
    let e = Env::new("ctr-par", rt);
    let outs: Vec<Output> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..8)
            .map(|i| {
                let e = &e;
                s.spawn(move || {
                    e.run(&[
                        "--rm",
                        "--name",
                        &format!("p{i}"),
                        "busybox:test",
                        "echo",
                        &format!("n{i}"),
                    ])
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, o) in outs.iter().enumerate() {
        assert_eq!(code(o), 0, "{}", text(&o.stderr));
        assert_eq!(text(&o.stdout), format!("n{i}\n"));
    }
    e.assert_no_containers();
}

fn create_start(test: &str, rt: &str) {
    let Some(rt) = runtime(test, rt) else { return };
    let e = Env::new("ctr-create", rt.clone());
    let o = e.berth(&[
        "create",
        "--runtime",
        &rt,
        "--name",
        "once",
        "busybox:test",
        "sh",
        "-c",
        "echo run; exit 2",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(e.ps_all()[0]["State"], "created");
    let o = e.berth(&["start", "-a", "once"]);
    assert_eq!(
        (code(&o), text(&o.stdout)),
        (2, "run\n".to_string()),
        "{}",
        text(&o.stderr)
    );
    e.ok(&["start", "once"]);
    assert_eq!(e.ok(&["wait", "once"]).trim(), "2");
    assert_eq!(
        e.ok(&["logs", "once"]),
        "run\nrun\n",
        "a restart appends to the log"
    );
    e.ok(&["rm", "once"]);
    e.assert_no_containers();
}

#[test]
fn create_then_start_attached_and_again() {
    create_start("create_then_start_attached_and_again", "berth-runtime");
}

#[test]
fn runc_create_then_start_attached_and_again() {
    create_start("runc_create_then_start_attached_and_again", "runc");
}

#[test]
fn sigkill_of_foreground_berth_leaves_a_container_ps_and_rm_handle() {
    let test = "sigkill_of_foreground_berth_leaves_a_container_ps_and_rm_handle";
    let Some(rt) = runtime(test, "berth-runtime") else {
        return;
    };
    let e = Env::new("ctr-sigkill", rt.clone());
    let mut fg = e
        .cmd(&[
            "run",
            "--runtime",
            &rt,
            "--rm",
            "--name",
            "fg",
            "busybox:test",
            "sleep",
            "100",
        ])
        .spawn()
        .unwrap();
    eventually("the container runs", || {
        e.ps_all().first().is_some_and(|c| c["State"] == "running")
    });
    fg.kill().unwrap(); // SIGKILL to the berth process this test started
    let _ = fg.wait();
    assert_eq!(
        e.ps_all()[0]["State"],
        "running",
        "the container outlives berth"
    );
    e.ok(&["rm", "-f", "fg"]);
    e.assert_no_containers();
}
