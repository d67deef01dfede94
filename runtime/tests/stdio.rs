//! Stdio, signals and descriptors: foreground `run` forwards signals and
//! returns the exit status; `--preserve-fds` and LISTEN_FDS pass exactly the
//! descriptors asked for; `--no-pivot`; the cgroup and time namespaces.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

#[test]
fn foreground_run_forwards_signals() {
    if !require_root("foreground_run_forwards_signals") {
        return;
    }
    let rt = Rt::new();
    let b =
        bundle("trap 'echo got-term; exit 42' TERM; echo ready; while true; do sleep 0.05; done");
    let log = b.path().join("out.log");
    let f = std::fs::File::create(&log).unwrap();
    let mut child = rt
        .cmd()
        .args(["run", "-b", b.path().to_str().unwrap(), &unique("fwd")])
        .stdin(Stdio::null())
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .spawn()
        .unwrap();
    wait_for_text(&log, "ready");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < end, "run did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(
        status.code(),
        Some(42),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert!(std::fs::read_to_string(&log).unwrap().contains("got-term"));
}

#[test]
fn preserve_fds_passes_exactly_the_descriptors_asked_for() {
    if !require_root("preserve_fds_passes_exactly_the_descriptors_asked_for") {
        return;
    }
    let rt = Rt::new();
    let b = bundle("ls /proc/self/fd | sort -n | tr '\\n' ' '; echo; cat <&3; echo \"$LISTEN_FDS $LISTEN_PID\"");
    let secret = b.path().join("passed.txt");
    std::fs::write(&secret, "passed-through-fd-3\n").unwrap();
    // fd 3 is given to the runtime; fd 4 is open too but not preserved.
    let script = format!(
        "exec 3<{} 4<{}; exec {} --root {} run --preserve-fds 1 -b {} {}",
        secret.display(),
        secret.display(),
        bin().display(),
        rt.root.path().display(),
        b.path().display(),
        unique("fds")
    );
    let o = Command::new("/bin/sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    let l: Vec<&str> = out.lines().collect();
    // 0,1,2, the preserved 3, and the fd `ls` itself opens for the listing.
    let fds: Vec<u32> = l[0]
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!(&fds[..4], &[0, 1, 2, 3], "{out}");
    assert!(fds.len() <= 5, "no other descriptor leaked in: {out}");
    assert_eq!(l[1], "passed-through-fd-3");
    assert_eq!(l[2].trim(), "", "no LISTEN_FDS without socket activation");

    let script = format!(
        "exec 3<{}; LISTEN_FDS=1 exec {} --root {} run -b {} {}",
        secret.display(),
        bin().display(),
        rt.root.path().display(),
        b.path().display(),
        unique("listen")
    );
    let o = Command::new("/bin/sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(
        l[1], "passed-through-fd-3",
        "LISTEN_FDS descriptors are passed"
    );
    assert_eq!(
        l[2], "1 1",
        "LISTEN_FDS and LISTEN_PID are set for the container"
    );
}

#[test]
fn no_pivot_uses_chroot() {
    if !require_root("no_pivot_uses_chroot") {
        return;
    }
    let rt = Rt::new();
    let b = bundle("ls /; cat /proc/self/mountinfo | wc -l");
    let out = rt.ok(&[
        "run",
        "--no-pivot",
        "-b",
        b.path().to_str().unwrap(),
        &unique("nopivot"),
    ]);
    assert!(out.lines().any(|l| l == "bin"), "{out}");
}

#[test]
fn a_closed_stdin_becomes_dev_null_not_a_runtime_file() {
    use std::os::unix::process::CommandExt;
    if !require_root("a_closed_stdin_becomes_dev_null_not_a_runtime_file") {
        return;
    }
    let rt = Rt::new();
    let b = bundle("readlink /proc/self/fd/0; cat /proc/self/fd/0 | wc -c");
    let out = tempfile::tempfile().expect("tempfile");
    let mut c = rt.cmd();
    c.args(["run", "-b", b.path().to_str().unwrap(), &unique("closedin")])
        .stdout(out.try_clone().expect("dup"))
        .stderr(Stdio::inherit());
    // SAFETY: close(2) on fd 0 in the child before exec; nothing else runs.
    unsafe {
        c.pre_exec(|| {
            nix::unistd::close(0).map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    let status = c.status().expect("spawn");
    assert!(status.success(), "{status}");
    let mut text = String::new();
    let mut out = out;
    std::io::Seek::rewind(&mut out).expect("rewind");
    std::io::Read::read_to_string(&mut out, &mut text).expect("read");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("/dev/null"), "{text}");
    assert_eq!(lines.next().map(str::trim), Some("0"), "{text}");
}

#[test]
fn cgroup_namespace_and_cgroup_mount() {
    if !require_root("cgroup_namespace_and_cgroup_mount") {
        return;
    }
    let rt = Rt::new();
    let b = bundle("cat /proc/self/cgroup | grep memory; ls /sys/fs/cgroup | grep -c memory; touch /sys/fs/cgroup/memory/x 2>/dev/null && echo rw || echo ro");
    let out = rt.ok(&["run", "-b", b.path().to_str().unwrap(), &unique("cgns")]);
    let l: Vec<&str> = out.lines().collect();
    assert!(
        l[0].ends_with(":memory:/"),
        "the cgroup namespace roots the container's cgroup: {out}"
    );
    assert_eq!(l[1], "1", "controllers are mounted: {out}");
    assert_eq!(l[2], "ro", "the cgroup mount is read-only: {out}");
}

#[test]
fn time_namespace_offsets() {
    if !require_root("time_namespace_offsets") {
        return;
    }
    if !std::path::Path::new("/proc/self/ns/time").exists() {
        berth_testkit::skip("time_namespace_offsets", "kernel has no time namespaces");
        return;
    }
    let rt = Rt::new();
    let mut b = bundle("cut -d' ' -f1 /proc/uptime");
    b.with_namespace("time", None)
        .edit(|c| {
            c["linux"]["timeOffsets"] = json!({"boottime": {"secs": 86400000, "nanosecs": 0}})
        })
        .save();
    let out = rt.ok(&["run", "-b", b.path().to_str().unwrap(), &unique("time")]);
    let up: f64 = out.trim().parse().unwrap();
    assert!(up > 86_400_000.0, "boottime offset applied: {up}");
}
