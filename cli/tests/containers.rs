//! The `berth` container verbs end to end, as root, on a busybox image made
//! with `berth import`, each test with its own `--root` and `--runroot`,
//! with berth-runtime (`$BERTH_RUNTIME`, default target/debug/berth-runtime)
//! and again with runc.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Env {
    dir: tempfile::TempDir,
    runtime: String,
}

/// The runtime to test with, or a named skip.
fn runtime(test: &str, which: &str) -> Option<String> {
    if !berth_testkit::require_root(test) {
        return None;
    }
    let path = if which == "crun" {
        // crun refuses cgroup v1 + v2 hybrid hosts; HOST.md's workaround
        // (Env::new writes the wrapper).
        if !berth_testkit::require_path(
            test,
            "/usr/bin/crun",
            "crun is not installed (Debian package crun)",
        ) {
            return None;
        }
        return Some(CRUN_WRAPPER.to_string());
    } else if which == "berth-runtime" {
        std::env::var("BERTH_RUNTIME").unwrap_or_else(|_| {
            berth_testkit::workspace_root()
                .join("target/debug/berth-runtime")
                .display()
                .to_string()
        })
    } else {
        let found = std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(which))
                .find(|p| p.is_file())
        });
        match found {
            Some(p) => p.display().to_string(),
            None => {
                berth_testkit::skip(
                    test,
                    &format!("{which} is not installed (Debian package {which})"),
                );
                return None;
            }
        }
    };
    if !berth_testkit::require_path(
        test,
        &path,
        "berth-runtime not built (cargo build -p berth-runtime, or set BERTH_RUNTIME)",
    ) {
        return None;
    }
    let monitor = Path::new(env!("CARGO_BIN_EXE_berth")).with_file_name("berth-monitor");
    assert!(
        monitor.is_file() || std::env::var_os("BERTH_MONITOR").is_some(),
        "{} missing: build it with the same target dir (cargo test -p berth-engine -p berth-cli)",
        monitor.display()
    );
    Some(path)
}

const CRUN_WRAPPER: &str = "crun-wrapper";

impl Env {
    /// A fresh store with `busybox:test` imported.
    fn new(name: &str, runtime: String) -> Env {
        let mut e = Env {
            dir: berth_testkit::tempdir(name),
            runtime,
        };
        if e.runtime == CRUN_WRAPPER {
            let w = e.path("crun");
            fs::write(&w, "#!/bin/sh\nexec unshare -m --propagation private sh -c \
                'umount /sys/fs/cgroup/unified 2>/dev/null; exec /usr/bin/crun \"$@\"' crun \"$@\"\n").unwrap();
            fs::set_permissions(&w, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
            e.runtime = w.display().to_string();
        }
        let rootfs = e.dir.path().join("rootfs");
        berth_testkit::make_busybox_rootfs(&rootfs);
        let tarball = e.dir.path().join("rootfs.tar");
        let mut b = tar::Builder::new(fs::File::create(&tarball).unwrap());
        b.follow_symlinks(false);
        b.append_dir_all(".", &rootfs).unwrap();
        b.into_inner().unwrap();
        e.ok(&["import", tarball.to_str().unwrap(), "busybox:test"]);
        e
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
        c.arg("--root")
            .arg(self.path("root"))
            .arg("--runroot")
            .arg(self.path("run"))
            .args(args);
        c.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    fn berth(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("spawn berth")
    }

    /// `berth run --runtime R ARGS...`
    fn run(&self, args: &[&str]) -> Output {
        let mut a = vec!["run", "--runtime", &self.runtime];
        a.extend_from_slice(args);
        self.berth(&a)
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.berth(args);
        assert!(
            o.status.success(),
            "berth {args:?} failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn ps_all(&self) -> Vec<Value> {
        serde_json::from_str::<Value>(&self.ok(&["ps", "-a", "--format", "json"]))
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    /// Nothing of any container left: no record, snapshot dir, run dir or mount.
    fn assert_no_containers(&self) {
        assert_eq!(self.ps_all(), Vec::<Value>::new(), "no container records");
        for d in ["root/containers", "run/containers"] {
            let left: Vec<_> = fs::read_dir(self.path(d))
                .map(|r| r.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            assert!(left.is_empty(), "{d} is empty: {left:?}");
        }
        assert_eq!(
            berth_testkit::mounts_under(self.dir.path()),
            Vec::<String>::new(),
            "no mounts left"
        );
    }
}

impl Drop for Env {
    /// Stop and remove every container, then unmount anything left, so the
    /// store can be deleted.
    fn drop(&mut self) {
        if let Ok(o) = self.cmd(&["ps", "-aq"]).output() {
            for id in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                let _ = self.cmd(&["rm", "-f", id]).output();
            }
        }
        berth_testkit::unmount_all_under(self.dir.path());
    }
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Poll `f` until it is true (20 s at most).
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

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

fn inspect(e: &Env, c: &str) -> Value {
    serde_json::from_str::<Value>(&e.ok(&["inspect", c])).unwrap()[0].clone()
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

/// Read what a TCP server at `addr` says, retrying while it comes up.
fn tcp_read(addr: std::net::SocketAddr) -> String {
    use std::io::Read;
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let got = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).and_then(
            |mut s| {
                s.set_read_timeout(Some(Duration::from_secs(5)))?;
                let mut t = String::new();
                s.read_to_string(&mut t)?;
                Ok(t)
            },
        );
        match got {
            Ok(t) if !t.is_empty() => return t,
            _ if Instant::now() < end => std::thread::sleep(Duration::from_millis(100)),
            other => panic!("nothing from {addr}: {other:?}"),
        }
    }
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// A network test's own names: a bridge, a /24 tag and an nftables table
/// (never the host's berth0 or table `berth`), and the store.
struct NetEnv {
    e: Env,
    tag: u32,
    bridge: String,
    table: String,
}

impl NetEnv {
    fn new(test: &str, prefix: &str) -> Option<NetEnv> {
        let rt = runtime(test, "berth-runtime")?;
        if !berth_testkit::require_path(
            test,
            "/usr/sbin/nft",
            "nftables is not installed (Debian package nftables)",
        ) {
            return None;
        }
        let pid = std::process::id();
        Some(NetEnv {
            e: Env::new(&format!("ctr-{prefix}"), rt),
            tag: pid % 200 + 20,
            bridge: format!("b{prefix}{}", pid % 100_000),
            table: format!("berth_{prefix}{pid}"),
        })
    }

    /// `berth ARGS` with this test's nftables table.
    fn berth(&self, args: &[&str]) -> Output {
        let mut c = self.e.cmd(args);
        c.env("BERTH_NETD_NFT_TABLE", &self.table);
        c.output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.berth(args);
        assert_eq!(code(&o), 0, "{args:?}: {}", text(&o.stderr));
        text(&o.stdout)
    }

    /// `srv`: a detached TCP server on `network` (extra run options in
    /// `opts`) that says `msg` to every connection on port 8080; its
    /// inspect view.
    fn server(&self, network: &str, opts: &[&str], msg: &str) -> Value {
        let mut a = vec!["run", "--runtime", &self.e.runtime, "-d", "--name", "srv"];
        a.extend_from_slice(&["--network", network]);
        a.extend_from_slice(opts);
        a.extend_from_slice(&["busybox:test", "nc", "-ll", "-p", "8080", "-e", "echo", msg]);
        self.ok(&a);
        inspect(&self.e, "srv")
    }

    /// The bridge and the nftables table went with the last container.
    fn assert_network_gone(&self) {
        assert!(
            !link_exists(&self.bridge),
            "bridge {} left behind",
            self.bridge
        );
        let nft = Command::new("nft")
            .args(["list", "table", "ip", &self.table])
            .output()
            .unwrap();
        assert!(
            !nft.status.success(),
            "nftables table {} left behind",
            self.table
        );
    }
}

#[test]
fn bridge_network_reaches_containers_and_published_ports() {
    const T: &str = "bridge_network_reaches_containers_and_published_ports";
    let Some(n) = NetEnv::new(T, "t") else {
        return;
    };
    let (e, tag, bridge) = (&n.e, n.tag, &n.bridge);
    fs::create_dir_all(e.path("root/networks")).unwrap();
    fs::write(
        e.path("root/networks/berth.json"),
        format!(r#"{{"name": "berth", "bridge": "{bridge}", "subnet": "10.231.{tag}.0/24"}}"#),
    )
    .unwrap();
    let berth = |args: &[&str]| n.berth(args);
    let host_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let publish = format!("127.0.0.1:{host_port}:8080");
    let i = n.server("bridge", &["-p", &publish], "hello-from-srv");
    let ip: std::net::Ipv4Addr = i["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(ip.octets()[..3], [10, 231, tag as u8], "{i}");
    assert_eq!(
        i["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"],
        host_port.to_string()
    );
    assert_eq!(i["HostConfig"]["NetworkMode"], "bridge");
    assert!(
        link_exists(bridge),
        "the bridge exists while a container uses it"
    );

    // Host -> container address, host -> published port, container -> container.
    assert_eq!(tcp_read((ip, 8080).into()).trim(), "hello-from-srv");
    assert_eq!(
        tcp_read(([127, 0, 0, 1], host_port).into()).trim(),
        "hello-from-srv"
    );
    let o = berth(&[
        "run",
        "--runtime",
        &e.runtime,
        "--rm",
        "--network",
        "bridge",
        "busybox:test",
        "nc",
        &ip.to_string(),
        "8080",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout).trim(),
        "hello-from-srv",
        "container to container"
    );

    // -p without a bridge network, and a bad -p, are clear errors.
    let o = berth(&[
        "run",
        "--runtime",
        &e.runtime,
        "--rm",
        "-p",
        "80:80",
        "busybox:test",
        "true",
    ]);
    assert_eq!(code(&o), 125, "{}", text(&o.stderr));
    let o = berth(&[
        "run",
        "--runtime",
        &e.runtime,
        "--rm",
        "--network",
        "bridge",
        "-p",
        "0:80",
        "busybox:test",
        "true",
    ]);
    assert_eq!(code(&o), 125, "{}", text(&o.stderr));

    // Removing the last container removes the bridge, its table and its veths.
    let o = berth(&["rm", "-f", "srv"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    n.assert_network_gone();
    let leases = fs::read_to_string(e.path("run/netd/state.json")).unwrap_or_default();
    assert!(
        !leases.contains(&i["Id"].as_str().unwrap()[..12]),
        "lease left: {leases}"
    );
    e.assert_no_containers();
}

#[test]
fn user_networks_resolve_names_and_are_managed() {
    const T: &str = "user_networks_resolve_names_and_are_managed";
    let Some(n) = NetEnv::new(T, "u") else {
        return;
    };
    let (e, tag, bridge) = (&n.e, n.tag, &n.bridge);
    let subnet = format!("10.232.{tag}.0/24");
    let berth = |args: &[&str]| n.berth(args);
    let ok = |args: &[&str]| n.ok(args);
    ok(&[
        "network", "create", "--subnet", &subnet, "--bridge", bridge, "appnet",
    ]);
    let o = berth(&[
        "network", "create", "--subnet", &subnet, "--bridge", "bzz0", "othernet",
    ]);
    assert_eq!(code(&o), 125, "overlapping subnet: {}", text(&o.stderr));
    let o = berth(&["network", "create", "appnet"]);
    assert_eq!(code(&o), 125, "duplicate name: {}", text(&o.stderr));
    assert_eq!(
        ok(&["network", "ls", "-q"]).lines().collect::<Vec<_>>(),
        ["berth", "appnet"]
    );

    let i = n.server("appnet", &[], "hello-by-name");
    let ip = i["NetworkSettings"]["Networks"]["appnet"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(ip.starts_with(&format!("10.232.{tag}.")), "{i}");
    assert_eq!(i["HostConfig"]["NetworkMode"], "appnet");
    let net: Value = serde_json::from_str(&ok(&["network", "inspect", "appnet"])).unwrap();
    assert_eq!(net[0]["Containers"], serde_json::json!(["srv"]));
    assert_eq!(net[0]["DNSEnabled"], true);

    // Another container finds srv by name through the network's DNS.
    let o = berth(&[
        "run",
        "--runtime",
        &e.runtime,
        "--rm",
        "--network",
        "appnet",
        "busybox:test",
        "sh",
        "-c",
        "cat /etc/resolv.conf; nslookup srv",
    ]);
    assert_eq!(code(&o), 0, "{}{}", text(&o.stdout), text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains(&format!("nameserver 10.232.{tag}.1")),
        "gateway resolver: {out}"
    );
    assert!(out.contains(&ip), "srv resolves to {ip}: {out}");

    let o = berth(&["network", "rm", "appnet"]);
    assert_eq!(code(&o), 125, "in use: {}", text(&o.stderr));
    assert!(text(&o.stderr).contains("srv"), "{}", text(&o.stderr));
    let o = berth(&[
        "run",
        "--runtime",
        &e.runtime,
        "--rm",
        "--network",
        "nosuchnet",
        "busybox:test",
        "true",
    ]);
    assert_eq!(code(&o), 125);
    assert!(
        text(&o.stderr).contains("no such network"),
        "{}",
        text(&o.stderr)
    );

    ok(&[
        "network",
        "create",
        "--bridge",
        &format!("{bridge}x"),
        "spare",
    ]);
    assert_eq!(
        ok(&["network", "prune"]).trim(),
        "spare",
        "only the unused user network"
    );
    ok(&["rm", "-f", "srv"]);
    ok(&["network", "rm", "appnet"]);
    assert_eq!(ok(&["network", "ls", "-q"]).trim(), "berth");
    n.assert_network_gone();
    let o = berth(&["network", "rm", "berth"]);
    assert_eq!(code(&o), 125, "the default network stays");
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
