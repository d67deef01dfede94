//! seccomp profiles applied to real containers (root; busybox bundles).

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use std::time::{Duration, Instant};

use berth_testkit::{require_root, skip, unique, Bundle};
use serde_json::{json, Value};

mod security_support;

use security_support::{text, Rt, BIN};

/// The C library's message for an errno, as busybox prints it.
fn strerror(errno: i32) -> String {
    let s = std::io::Error::from_raw_os_error(errno).to_string();
    s.split(" (os error").next().unwrap_or(&s).to_string()
}

fn bundle_with(profile: Value, script: &str) -> Bundle {
    let mut b = Bundle::new(Path::new(BIN));
    b.set_script(script);
    b.config["linux"]["seccomp"] = profile;
    b.config["root"]["readonly"] = json!(false);
    b.save();
    b
}

#[test]
fn seccomp_errno_ret_makes_mkdir_fail_with_that_errno() {
    if !require_root("seccomp_errno_ret_makes_mkdir_fail_with_that_errno") {
        return;
    }
    let errno = libc::EDQUOT;
    let profile = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno}]});
    let b = bundle_with(profile, "mkdir /tmp/denied; echo rc=$?; echo still-running");
    let rt = Rt::new();
    let out = rt.run(&b, &unique("sc-mkdir"));
    let t = text(&out);
    assert!(
        t.contains(&strerror(errno)),
        "mkdir must fail with errno {errno}: {t}"
    );
    assert!(
        t.contains("rc=1") && t.contains("still-running"),
        "only mkdir is denied: {t}"
    );
    assert!(
        !b.rootfs().join("tmp/denied").exists(),
        "the directory was created"
    );
}

/// Everything busybox `sh`, `echo` and `uname` need after the filter is
/// loaded (with noNewPrivileges the filter is the last thing before exec).
const ALLOWED: &[&str] = &[
    "execve",
    "brk",
    "arch_prctl",
    "set_tid_address",
    "set_robust_list",
    "rseq",
    "prlimit64",
    "readlink",
    "readlinkat",
    "mprotect",
    "mmap",
    "munmap",
    "getrandom",
    "uname",
    "write",
    "writev",
    "read",
    "exit_group",
    "exit",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getpid",
    "getppid",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "fcntl",
    "dup2",
    "dup3",
    "close",
    "newfstatat",
    "fstat",
    "stat",
    "lstat",
    "statx",
    "ioctl",
    "getcwd",
    "wait4",
    "clone",
    "clone3",
    "fork",
    "vfork",
    "openat",
    "open",
    "access",
    "faccessat2",
    "lseek",
    "getpgrp",
    "setpgid",
    "futex",
    "sigaltstack",
    "getdents64",
    "chdir",
    "pipe",
    "pipe2",
];

#[test]
fn seccomp_default_deny_with_an_allow_list() {
    if !require_root("seccomp_default_deny_with_an_allow_list") {
        return;
    }
    let deny = libc::ENOTRECOVERABLE;
    let profile = json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": deny,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ALLOWED, "action": "SCMP_ACT_ALLOW"}]});
    let b = bundle_with(
        profile,
        "echo allowed-$(uname -s); mkdir /tmp/nope; echo mkdir=$?",
    );
    let rt = Rt::new();
    let out = rt.run(&b, &unique("sc-deny"));
    let t = text(&out);
    assert!(t.contains("allowed-Linux"), "listed syscalls work: {t}");
    assert!(
        t.contains(&strerror(deny)),
        "unlisted syscalls fail with defaultErrnoRet: {t}"
    );
    assert!(t.contains("mkdir=1"), "{t}");
}

#[test]
fn seccomp_argument_conditions_select_the_call() {
    if !require_root("seccomp_argument_conditions_select_the_call") {
        return;
    }
    // Refuse chmod to a setuid mode (mask 0o7000 == 0o4000), allow others.
    let profile = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EXDEV,
         "args": [{"index": 1, "value": 0o7000, "valueTwo": 0o4000, "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EXDEV,
         "args": [{"index": 2, "value": 0o7000, "valueTwo": 0o4000, "op": "SCMP_CMP_MASKED_EQ"}]}]});
    let b = bundle_with(
        profile,
        "touch /tmp/f; chmod 755 /tmp/f; echo plain=$?; chmod 4755 /tmp/f; echo setuid=$?",
    );
    let rt = Rt::new();
    let out = rt.run(&b, &unique("sc-args"));
    let t = text(&out);
    assert!(
        t.contains("plain=0"),
        "a mode without setuid passes the masked compare: {t}"
    );
    assert!(
        t.contains("setuid=1") && t.contains(&strerror(libc::EXDEV)),
        "setuid modes are refused: {t}"
    );
}

#[test]
fn seccomp_unknown_syscall_fails_create_and_leaves_nothing() {
    if !require_root("seccomp_unknown_syscall_fails_create_and_leaves_nothing") {
        return;
    }
    let profile = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "no_such_syscall_xyz"], "action": "SCMP_ACT_ERRNO"}]});
    let b = bundle_with(profile, "true");
    let rt = Rt::new();
    let id = unique("sc-unknown");
    let out = rt.create(&b, &id);
    assert!(!out.status.success(), "create must fail");
    let t = text(&out);
    assert!(
        t.contains("unknown syscall") && t.contains("no_such_syscall_xyz"),
        "the error names the syscall: {t}"
    );
    assert!(
        rt.list_ids().is_empty(),
        "no container is left: {:?}",
        rt.list_ids()
    );
    let left: Vec<_> = std::fs::read_dir(rt.root.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        left.iter().all(|n| !n.to_string_lossy().contains(&id)),
        "state left behind: {left:?}"
    );
    assert!(
        berth_testkit::mounts_under(&b.rootfs()).is_empty(),
        "mounts left behind"
    );
}

/// What the seccomp agent got: the payload and the notify descriptor.
struct Received {
    payload: Value,
    fd: OwnedFd,
}

/// The runtime connects to the listener while `create` runs, before the
/// container exists; `None` if it did not.
fn connection(listener: &UnixListener) -> Option<UnixStream> {
    listener.set_nonblocking(true).unwrap();
    let c = listener.accept().ok().map(|(c, _)| c);
    listener.set_nonblocking(false).unwrap();
    c.inspect(|c| c.set_nonblocking(false).unwrap())
}

const NOT_WIRED: &str = "the runtime does not connect to the seccomp listener yet (process.rs/init.rs/exec.rs/container.rs do not pass it to seccomp::load_with)";

fn receive(conn: UnixStream) -> Received {
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // Peek the payload, then take it with the descriptor.
    let mut buf = vec![0u8; 64 * 1024];
    let n = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        nix::sys::socket::recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            None,
            nix::sys::socket::MsgFlags::MSG_PEEK,
        )
        .expect("peek payload")
        .bytes
    };
    let payload: Value = serde_json::from_slice(&buf[..n]).expect("payload is json");
    let fd = berth_runtime::sys::recv_fd(conn.as_raw_fd()).expect("SCM_RIGHTS descriptor");
    Received { payload, fd }
}

/// Answer every notification with `errno` until the filter's last user is
/// gone; returns the names of the syscalls seen.
fn answer_all(fd: &OwnedFd, errno: i32) -> Vec<String> {
    use libseccomp::{ScmpNotifReq, ScmpNotifResp, ScmpNotifRespFlags};
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let mut p = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut p, PollTimeout::from(200u16)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => panic!("poll notify fd: {e}"),
        }
        let re = p[0].revents().unwrap_or(PollFlags::empty());
        if re.contains(PollFlags::POLLIN) {
            let Ok(req) = ScmpNotifReq::receive(fd.as_raw_fd()) else {
                continue;
            };
            seen.push(req.data.syscall.get_name().unwrap_or_default());
            let _ = ScmpNotifResp::new_error(req.id, -errno, ScmpNotifRespFlags::empty())
                .respond(fd.as_raw_fd());
        } else if re.intersects(PollFlags::POLLHUP | PollFlags::POLLERR) {
            break;
        }
    }
    seen
}

#[test]
fn seccomp_notify_delivers_the_fd_to_the_listener() {
    let name = "seccomp_notify_delivers_the_fd_to_the_listener";
    if !require_root(name) {
        return;
    }
    let dir = berth_testkit::tempdir("agent");
    let sock: PathBuf = dir.path().join("agent.sock");
    let listener = UnixListener::bind(&sock).expect("bind listener");
    let profile = json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": sock, "listenerMetadata": "berth-test",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]});
    let b = bundle_with(
        profile,
        "(ls -l /proc/self/fd; mkdir /tmp/agent; echo rc=$?) > /out.txt 2>&1",
    );
    let rt = Rt::new();
    let id = unique("sc-notify");
    let o = rt.create(&b, &id);
    assert!(o.status.success(), "create: {}", text(&o));
    let state: Value =
        serde_json::from_slice(&rt.cmd().args(["state", &id]).output().unwrap().stdout).unwrap();
    let Some(conn) = connection(&listener) else {
        skip(name, NOT_WIRED);
        return;
    };
    let agent = std::thread::spawn(move || {
        let r = receive(conn);
        let link = std::fs::read_link(format!("/proc/self/fd/{}", r.fd.as_raw_fd())).unwrap();
        let seen = answer_all(&r.fd, libc::ENOLINK);
        (r.payload, link, seen)
    });
    let st = rt.cmd().args(["start", &id]).output().unwrap();
    assert!(st.status.success(), "start: {}", text(&st));
    let (payload, link, seen) = agent.join().expect("agent");
    let t = std::fs::read_to_string(b.rootfs().join("out.txt")).unwrap_or_default();
    assert_eq!(
        link.to_string_lossy(),
        "anon_inode:seccomp notify",
        "the descriptor is a seccomp listener"
    );
    assert!(
        seen.iter().any(|s| s.starts_with("mkdir")),
        "the agent saw the mkdir: {seen:?}"
    );
    assert!(
        t.contains(&strerror(libc::ENOLINK)) && t.contains("rc=1"),
        "the agent's answer reached the container: {t}"
    );
    assert!(
        !t.contains("seccomp notify"),
        "the container must not hold the notify fd: {t}"
    );
    assert_eq!(payload["fds"], json!(["seccompFd"]));
    assert_eq!(payload["metadata"], json!("berth-test"));
    assert_eq!(payload["state"]["id"], json!(id));
    assert_eq!(payload["pid"], state["pid"], "the payload names the init");
}

#[test]
fn seccomp_notify_without_listener_fails_create() {
    if !require_root("seccomp_notify_without_listener_fails_create") {
        return;
    }
    let dir = berth_testkit::tempdir("agent");
    let profile = json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": dir.path().join("nobody.sock"),
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]});
    let b = bundle_with(profile, "true");
    let rt = Rt::new();
    let out = rt.create(&b, &unique("sc-nolisten"));
    assert!(!out.status.success(), "create must fail: {}", text(&out));
    assert!(rt.list_ids().is_empty());
}

#[test]
fn seccomp_notify_reaches_the_listener_for_exec() {
    let name = "seccomp_notify_reaches_the_listener_for_exec";
    if !require_root(name) {
        return;
    }
    let dir = berth_testkit::tempdir("agent");
    let sock: PathBuf = dir.path().join("agent.sock");
    let listener = UnixListener::bind(&sock).expect("bind listener");
    let profile = json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": sock,
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]});
    let mut b = bundle_with(profile, "true");
    b.set_args(&["sleep", "600"]).save();
    let rt = Rt::new();
    let id = unique("sc-notify-exec");
    let o = rt.create(&b, &id);
    assert!(o.status.success(), "create: {}", text(&o));
    // One connection per process that loads the filter: the init's at
    // create, the exec'd process's at exec.
    let Some(init_conn) = connection(&listener) else {
        skip(name, NOT_WIRED);
        return;
    };
    let init_agent = std::thread::spawn(move || {
        let r = receive(init_conn);
        answer_all(&r.fd, libc::ENOLINK);
        r.payload
    });
    let st = rt.cmd().args(["start", &id]).output().unwrap();
    assert!(st.status.success(), "start: {}", text(&st));
    let exec_agent = std::thread::spawn(move || {
        let (conn, _) = listener.accept().expect("exec connects");
        let r = receive(conn);
        let seen = answer_all(&r.fd, libc::ENOLINK);
        (r.payload, seen)
    });
    let pid_file = dir.path().join("exec.pid");
    let ex = rt
        .cmd()
        .args(["exec", "--pid-file"])
        .arg(&pid_file)
        .args([&id, "sh", "-c", "mkdir /tmp/x; echo rc=$?"])
        .output()
        .unwrap();
    let t = text(&ex);
    let (exec_payload, seen) = exec_agent.join().expect("exec agent");
    assert!(
        t.contains(&strerror(libc::ENOLINK)) && t.contains("rc=1"),
        "the agent answered the exec'd mkdir: {t}"
    );
    assert!(seen.iter().any(|s| s.starts_with("mkdir")), "{seen:?}");
    let exec_pid: i64 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        exec_payload["pid"],
        json!(exec_pid),
        "the exec's payload names the exec'd process"
    );
    assert_eq!(exec_payload["state"]["id"], json!(id));
    let state: Value =
        serde_json::from_slice(&rt.cmd().args(["state", &id]).output().unwrap().stdout).unwrap();
    let _ = rt.cmd().args(["delete", "--force", &id]).output();
    let init_payload = init_agent.join().expect("init agent");
    assert_eq!(
        init_payload["pid"], state["pid"],
        "the init's payload names the init"
    );
}

#[test]
fn seccomp_applies_without_no_new_privileges_to_a_non_root_user() {
    if !require_root("seccomp_applies_without_no_new_privileges_to_a_non_root_user") {
        return;
    }
    // Without no_new_privs the filter is loaded while the process still has
    // CAP_SYS_ADMIN, before it becomes uid 1000.
    let profile = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EDQUOT}]});
    let mut b = bundle_with(profile, "id -u; mkdir /tmp/x; echo rc=$?");
    b.config["process"]["noNewPrivileges"] = json!(false);
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    b.save();
    let rt = Rt::new();
    let out = rt.run(&b, &unique("sc-nonnp"));
    let t = text(&out);
    assert!(
        t.contains("1000") && t.contains(&strerror(libc::EDQUOT)) && t.contains("rc=1"),
        "{t}"
    );
}

#[test]
fn seccomp_kill_and_trap_actions_end_the_process_with_sigsys() {
    if !require_root("seccomp_kill_and_trap_actions_end_the_process_with_sigsys") {
        return;
    }
    for action in ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL", "SCMP_ACT_TRAP"] {
        let profile = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["uname"], "action": action}]});
        let mut b = bundle_with(profile, "true");
        b.set_args(&["uname", "-s"]).save();
        let rt = Rt::new();
        let out = rt.run(&b, &unique("sc-kill"));
        let t = text(&out);
        assert!(!t.contains("Linux"), "{action}: uname ran: {t}");
        assert_eq!(
            out.status.code(),
            Some(128 + libc::SIGSYS),
            "{action}: killed by SIGSYS: {t}"
        );
    }
}

const CONTAINERS_PROFILE: &str = "/usr/share/containers/seccomp.json";

#[test]
fn seccomp_default_profile_of_containers_common_runs_busybox() {
    let name = "seccomp_default_profile_of_containers_common_runs_busybox";
    if !require_root(name)
        || !berth_testkit::require_path(
            name,
            CONTAINERS_PROFILE,
            "Debian golang-github-containers-common",
        )
    {
        return;
    }
    let d: Value =
        serde_json::from_slice(&std::fs::read(CONTAINERS_PROFILE).unwrap()).expect("profile json");
    let b = bundle_with(
        berth_testkit::default_seccomp_profile_as_oci(&d),
        "echo hi; mkdir /tmp/x && echo mkdir-ok; grep Seccomp: /proc/self/status",
    );
    let rt = Rt::new();
    let out = rt.run(&b, &unique("sc-default"));
    let t = text(&out);
    assert!(
        t.contains("hi") && t.contains("mkdir-ok"),
        "ordinary work is allowed: {t}"
    );
    assert!(
        t.lines()
            .any(|l| l.starts_with("Seccomp:") && l.trim_end().ends_with('2')),
        "the filter is loaded: {t}"
    );
}

#[test]
fn seccomp_trace_without_tracer_fails_the_call_and_log_allows_it() {
    if !require_root("seccomp_trace_without_tracer_fails_the_call_and_log_allows_it") {
        return;
    }
    // SCMP_ACT_TRACE with no tracer attached: the kernel fails the call
    // with ENOSYS. SCMP_ACT_LOG: logged and allowed.
    let profile = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
        {"names": ["rmdir"], "action": "SCMP_ACT_LOG"}]});
    let b = bundle_with(
        profile,
        "mkdir /tmp/traced; echo mkdir=$?; rmdir /bin; echo rmdir-ran",
    );
    let rt = Rt::new();
    let out = rt.run(&b, &unique("sc-trace"));
    let t = text(&out);
    assert!(
        t.contains("mkdir=1") && t.contains(&strerror(libc::ENOSYS)),
        "TRACE without a tracer: {t}"
    );
    // rmdir reached the kernel, which refused a non-empty directory.
    assert!(
        t.contains("rmdir-ran") && t.contains(&strerror(libc::ENOTEMPTY)),
        "LOG lets the call through: {t}"
    );
}
