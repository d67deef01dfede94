//! `-i`, `-t`, `attach` and signal forwarding, end to end, as root: the
//! client runs on a pty this test opens (as a terminal would give it), or
//! with a pipe as stdin; with berth-runtime and again with runc.

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::pty::{openpty, Winsize};

/// The client side of a terminal: berth's stdio is the pty's slave, the
/// test types into and reads from the master.
struct Term {
    master: File,
    seen: String,
}

impl Term {
    fn new(rows: u16, cols: u16) -> (Term, OwnedFd) {
        let ws = Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let p = openpty(Some(&ws), None).expect("openpty");
        (
            Term {
                master: File::from(p.master),
                seen: String::new(),
            },
            p.slave,
        )
    }

    /// Start `berth ARGS` on this terminal.
    fn spawn(e: &Env, slave: &OwnedFd, args: &[&str]) -> Child {
        let mut c = e.cmd(args);
        c.stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave.try_clone().unwrap()));
        c.spawn().expect("spawn berth")
    }

    fn type_in(&mut self, s: &str) {
        self.master.write_all(s.as_bytes()).unwrap();
    }

    /// Read until `want` has appeared (20 s at most).
    fn expect(&mut self, want: &str) {
        let end = Instant::now() + Duration::from_secs(20);
        let mut buf = [0u8; 4096];
        while !self.seen.contains(want) {
            assert!(
                Instant::now() < end,
                "waited for {want:?}; the terminal showed {:?}",
                self.seen
            );
            let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
            if poll(&mut fds, PollTimeout::from(100u16)).unwrap_or(0) == 0 {
                continue;
            }
            match self.master.read(&mut buf) {
                Ok(n) if n > 0 => self.seen.push_str(&String::from_utf8_lossy(&buf[..n])),
                // EIO: nothing holds the slave open any more.
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

/// The client's exit code (20 s at most; killed by its pid after that).
fn exit_of(mut c: Child) -> i32 {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(s) = c.try_wait().unwrap() {
            return s.code().expect("exit code");
        }
        if Instant::now() > end {
            let _ = c.kill();
            let _ = c.wait();
            panic!("berth did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn tty_run(test: &str, rt: &str) {
    let Some(rt) = runtime(test, rt) else { return };
    let e = Env::new("it-run", rt);
    let (mut t, slave) = Term::new(33, 99);
    let c = Term::spawn(
        &e,
        &slave,
        &[
            "run",
            "-it",
            "--rm",
            "--runtime",
            &e.runtime,
            "busybox:test",
            "sh",
        ],
    );
    // Arithmetic, so the echo of what we type never matches.
    t.type_in("echo tty=$(tty) size=$(stty size) m=$((40+2)) term=$TERM\r");
    t.expect("m=42");
    assert!(t.seen.contains("tty=/dev/pts/"), "{:?}", t.seen);
    assert!(t.seen.contains("size=33 99"), "window size: {:?}", t.seen);
    assert!(t.seen.contains("term=xterm"), "{:?}", t.seen);
    t.type_in("exit 3\r");
    assert_eq!(exit_of(c), 3);
    e.assert_no_containers();
}

#[test]
fn run_it_gives_a_pty_with_our_size_and_exit_code() {
    tty_run(
        "run_it_gives_a_pty_with_our_size_and_exit_code",
        "berth-runtime",
    );
}

#[test]
fn runc_run_it_gives_a_pty_with_our_size_and_exit_code() {
    tty_run(
        "runc_run_it_gives_a_pty_with_our_size_and_exit_code",
        "runc",
    );
}

fn detach_attach(test: &str, rt: &str) {
    let Some(rt) = runtime(test, rt) else { return };
    let e = Env::new("it-detach", rt);
    let (mut t, slave) = Term::new(24, 80);
    let c = Term::spawn(
        &e,
        &slave,
        &[
            "run",
            "-it",
            "--name",
            "dt",
            "--runtime",
            &e.runtime,
            "busybox:test",
            "sh",
        ],
    );
    t.type_in("echo first=$((1+1))\r");
    t.expect("first=2");
    t.type_in("\x10\x11"); // ctrl-p ctrl-q
    assert_eq!(exit_of(c), 0, "detaching exits 0");
    assert_eq!(inspect(&e, "dt")["State"]["Status"], "running");

    // Attach again (a new terminal), with other detach keys.
    let (mut t, slave) = Term::new(24, 80);
    let c = Term::spawn(&e, &slave, &["attach", "--detach-keys", "ctrl-x", "dt"]);
    // Typed before the client has connected, this waits in its terminal.
    t.type_in("echo again=$((2*1000))\r");
    t.expect("again=2000");
    t.type_in("\x18"); // ctrl-x
    assert_eq!(exit_of(c), 0);
    assert_eq!(inspect(&e, "dt")["State"]["Status"], "running");

    let (mut t, slave) = Term::new(24, 80);
    let c = Term::spawn(&e, &slave, &["attach", "dt"]);
    std::thread::sleep(Duration::from_millis(300));
    t.type_in("exit 5\r");
    let got = exit_of(c);
    assert_eq!(
        got,
        5,
        "attach exits with the container's code: {} / {:?}",
        inspect(&e, "dt")["State"],
        t.seen
    );
    eventually("dt exited", || {
        inspect(&e, "dt")["State"]["Status"] == "exited"
    });
    e.ok(&["rm", "dt"]);
    e.assert_no_containers();
}

#[test]
fn run_it_detaches_with_keys_and_attach_reconnects() {
    detach_attach(
        "run_it_detaches_with_keys_and_attach_reconnects",
        "berth-runtime",
    );
}

#[test]
fn runc_run_it_detaches_with_keys_and_attach_reconnects() {
    detach_attach(
        "runc_run_it_detaches_with_keys_and_attach_reconnects",
        "runc",
    );
}

fn stdin_pipe(test: &str, rt: &str) {
    let Some(rt) = runtime(test, rt) else { return };
    let e = Env::new("it-stdin", rt);
    let mut c = e.cmd(&[
        "run",
        "-i",
        "--rm",
        "--runtime",
        &e.runtime,
        "busybox:test",
        "sh",
        "-c",
        "cat; echo done >&2; exit 4",
    ]);
    let mut child = c.stdin(Stdio::piped()).spawn().unwrap();
    // More than a pipe holds: input must flow while output does.
    let big: String = (0..20000).map(|i| format!("line {i}\n")).collect();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        stdin.write_all(big.as_bytes()).unwrap();
    });
    let o = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert_eq!(code(&o), 4, "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert_eq!(out.lines().count(), 20000);
    assert!(out.starts_with("line 0\n") && out.ends_with("line 19999\n"));
    assert_eq!(text(&o.stderr), "done\n");
    e.assert_no_containers();
}

#[test]
fn run_i_feeds_stdin_and_closes_it_at_our_eof() {
    stdin_pipe(
        "run_i_feeds_stdin_and_closes_it_at_our_eof",
        "berth-runtime",
    );
}

#[test]
fn runc_run_i_feeds_stdin_and_closes_it_at_our_eof() {
    stdin_pipe("runc_run_i_feeds_stdin_and_closes_it_at_our_eof", "runc");
}

fn signals(test: &str, rt: &str) {
    let Some(rt) = runtime(test, rt) else { return };
    let e = Env::new("it-sig", rt);
    let dir = e.path("out");
    std::fs::create_dir_all(&dir).unwrap();
    let out = File::create(dir.join("stdout")).unwrap();
    let script = "trap 'echo got-term; exit 7' TERM; echo ready; while true; do sleep 0.1; done";
    let mut c = e.cmd(&[
        "run",
        "--rm",
        "--runtime",
        &e.runtime,
        "busybox:test",
        "sh",
        "-c",
        script,
    ]);
    let child = c.stdout(Stdio::from(out)).spawn().unwrap();
    eventually("the container is ready", || {
        std::fs::read_to_string(dir.join("stdout"))
            .unwrap_or_default()
            .contains("ready")
    });
    // Our own child, by pid.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(
        exit_of(child),
        7,
        "the container got TERM and chose its code"
    );
    let printed = std::fs::read_to_string(dir.join("stdout")).unwrap();
    assert!(printed.contains("got-term"), "{printed}");
    e.assert_no_containers();
}

#[test]
fn foreground_run_forwards_signals_to_the_container() {
    signals(
        "foreground_run_forwards_signals_to_the_container",
        "berth-runtime",
    );
}

#[test]
fn runc_foreground_run_forwards_signals_to_the_container() {
    signals(
        "runc_foreground_run_forwards_signals_to_the_container",
        "runc",
    );
}

#[test]
fn bad_detach_keys_and_attach_to_a_stopped_container_are_clear_errors() {
    let test = "bad_detach_keys_and_attach_to_a_stopped_container_are_clear_errors";
    let Some(rt) = runtime(test, "berth-runtime") else {
        return;
    };
    let e = Env::new("it-bad", rt);
    let o = e.run(&["-it", "--detach-keys", "ctrl-1", "busybox:test", "true"]);
    assert_eq!(code(&o), 125);
    assert!(
        text(&o.stderr).contains("--detach-keys"),
        "{}",
        text(&o.stderr)
    );
    e.ok(&["create", "--name", "idle", "busybox:test", "true"]);
    let o = e.berth(&["attach", "idle"]);
    assert_ne!(code(&o), 0);
    assert!(
        text(&o.stderr).contains("not running"),
        "{}",
        text(&o.stderr)
    );
    e.ok(&["rm", "idle"]);
    e.assert_no_containers();
}

fn exec_modes(test: &str, rt: &str) {
    let Some(rt) = runtime(test, rt) else { return };
    let e = Env::new("it-exec", rt);
    // A -t container: its execs get a pty only when they ask for one.
    e.ok(&[
        "run",
        "-d",
        "-t",
        "--name",
        "x",
        "--runtime",
        &e.runtime,
        "busybox:test",
        "sleep",
        "1000",
    ]);
    let (mut t, slave) = Term::new(40, 120);
    let c = Term::spawn(&e, &slave, &["exec", "-it", "x", "sh"]);
    t.type_in("echo x=$((3*3)) tty=$(tty) size=$(stty size)\r");
    t.expect("x=9");
    assert!(t.seen.contains("tty=/dev/pts/"), "{:?}", t.seen);
    assert!(t.seen.contains("size=40 120"), "{:?}", t.seen);
    t.type_in("exit 4\r");
    assert_eq!(exit_of(c), 4);

    let mut c = e.cmd(&["exec", "-i", "x", "sh", "-c", "cat; tty || true"]);
    let mut child = c.stdin(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"abc\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "abc\nnot a tty\n");

    // Without -i, stdin is not passed on.
    let mut c = e.cmd(&["exec", "x", "cat"]);
    let mut child = c.stdin(Stdio::piped()).spawn().unwrap();
    let mut w = child.stdin.take().unwrap();
    w.write_all(b"ignored\n").unwrap();
    let o = child.wait_with_output().unwrap();
    drop(w);
    assert_eq!((code(&o), text(&o.stdout)), (0, String::new()));

    let o = e.berth(&["exec", "-d", "x", "sh", "-c", "echo d > /tmp/detached"]);
    assert_eq!(
        (code(&o), text(&o.stdout)),
        (0, String::new()),
        "{}",
        text(&o.stderr)
    );
    eventually("the detached exec ran", || {
        e.berth(&["exec", "x", "cat", "/tmp/detached"]).stdout == b"d\n"
    });
    e.ok(&["rm", "-f", "x"]);
    e.assert_no_containers();
}

#[test]
fn exec_it_i_and_d() {
    exec_modes("exec_it_i_and_d", "berth-runtime");
}

#[test]
fn runc_exec_it_i_and_d() {
    exec_modes("runc_exec_it_i_and_d", "runc");
}
