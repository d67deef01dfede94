//! `exec` into running containers: arguments, a process.json, a pty through
//! a console socket, detached with a pid file; and `run`/`create` with a
//! terminal.

mod common;

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;

use common::*;

fn running(rt: &Rt, b: &Bundle) -> String {
    let id = unique("ex");
    rt.create(b, &id);
    rt.ok(&["start", &id]);
    id
}

#[test]
fn exec_with_arguments_runs_in_the_container() {
    if !require_root("exec_with_arguments_runs_in_the_container") {
        return;
    }
    let rt = Rt::new();
    let mut b = bundle("exec sleep 100");
    b.edit(|c| c["hostname"] = serde_json::json!("exec-host"))
        .save();
    let id = running(&rt, &b);
    let out = rt.ok(&[
        "exec",
        "-e",
        "EXTRA=1",
        "--cwd",
        "/tmp",
        &id,
        "sh",
        "-c",
        "hostname; echo $EXTRA; pwd; ps -o pid,args | grep -c sleep",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "exec-host");
    assert_eq!(lines[1], "1");
    assert_eq!(lines[2], "/tmp");
    assert!(
        lines[3].trim().parse::<u32>().unwrap() >= 1,
        "sees the container's init"
    );
    let o = rt.run(&["exec", &id, "sh", "-c", "exit 7"]);
    assert_eq!(o.status.code(), Some(7), "exit status is the process's");
    let o = rt.run(&["exec", &id, "no-such-binary"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no-such-binary"), "{}", stderr(&o));
    let o = rt.run(&["exec", "--user", "1000:1000", &id, "id"]);
    assert_eq!(stdout(&o).trim(), "uid=1000(user) gid=1000(user)");
    rt.ok(&["delete", "--force", &id]);
}

#[test]
fn exec_with_a_process_file() {
    if !require_root("exec_with_a_process_file") {
        return;
    }
    let rt = Rt::new();
    let b = bundle("exec sleep 100");
    let id = running(&rt, &b);
    let p = b.path().join("process.json");
    std::fs::write(
        &p,
        serde_json::json!({
            "terminal": false, "user": {"uid": 1000, "gid": 1000}, "args": ["sh", "-c", "echo $FOO; id -u; pwd"],
            "env": ["PATH=/bin", "FOO=from-process-json"], "cwd": "/home/user"
        })
        .to_string(),
    )
    .unwrap();
    let out = rt.ok(&["exec", "--process", p.to_str().unwrap(), &id]);
    assert_eq!(out, "from-process-json\n1000\n/home/user\n");
    std::fs::write(&p, "{not json").unwrap();
    let err = rt.fails(&["exec", "--process", p.to_str().unwrap(), &id]);
    assert!(err.contains("process spec"), "{err}");
    rt.ok(&["delete", "--force", &id]);
}

#[test]
fn exec_detached_writes_a_pid_file() {
    if !require_root("exec_detached_writes_a_pid_file") {
        return;
    }
    let rt = Rt::new();
    let b = bundle("exec sleep 100");
    let id = running(&rt, &b);
    let pf = b.path().join("exec.pid");
    rt.ok(&[
        "exec",
        "--detach",
        "--pid-file",
        pf.to_str().unwrap(),
        &id,
        "sleep",
        "50",
    ]);
    let pid: i64 = std::fs::read_to_string(&pf)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(pid));
    let pids: Vec<i64> = serde_json::from_str(&rt.ok(&["ps", "--format", "json", &id])).unwrap();
    assert!(
        pids.contains(&pid),
        "the exec'd process is in the container: {pids:?} vs {pid}"
    );
    rt.ok(&["delete", "--force", &id]);
    assert!(!alive(pid), "delete --force kills exec'd processes too");
}

/// Receive the pty master a runtime sends to our console socket.
fn console_socket(dir: &std::path::Path) -> (std::path::PathBuf, UnixListener) {
    let path = dir.join("console.sock");
    let l = UnixListener::bind(&path).unwrap();
    (path, l)
}

fn read_master_until(master: std::os::fd::OwnedFd, needle: &str) -> String {
    let mut f = std::fs::File::from(master);
    let mut all = String::new();
    let mut buf = [0u8; 4096];
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !all.contains(needle) && std::time::Instant::now() < end {
        match f.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => all.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    all
}

#[test]
fn exec_tty_sends_the_pty_master_to_the_console_socket() {
    if !require_root("exec_tty_sends_the_pty_master_to_the_console_socket") {
        return;
    }
    let rt = Rt::new();
    let b = bundle("exec sleep 100");
    let id = running(&rt, &b);
    let (sock, listener) = console_socket(b.path());
    let o = rt.run(&[
        "exec",
        "--tty",
        "--detach",
        "--console-socket",
        sock.to_str().unwrap(),
        &id,
        "sh",
        "-c",
        "tty; echo tty-ok; sleep 1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (conn, _) = listener.accept().unwrap();
    let master = berth_runtime::sys::recv_fd(conn.as_raw_fd()).unwrap();
    let out = read_master_until(master, "tty-ok");
    assert!(out.contains("/dev/pts/"), "stdin is a pty: {out}");
    assert!(out.contains("tty-ok"), "{out}");
    rt.ok(&["delete", "--force", &id]);
}

#[test]
fn create_with_terminal_binds_the_console() {
    if !require_root("create_with_terminal_binds_the_console") {
        return;
    }
    let rt = Rt::new();
    let mut b = bundle("tty; ls -l /dev/console | cut -c1; echo console-ok; sleep 1");
    b.edit(|c| {
        c["process"]["terminal"] = serde_json::json!(true);
        c["process"]["consoleSize"] = serde_json::json!({"height": 33, "width": 111});
    })
    .save();
    let id = unique("tty");
    let (sock, listener) = console_socket(b.path());
    let o = rt.run(&[
        "create",
        "-b",
        b.path().to_str().unwrap(),
        "--console-socket",
        sock.to_str().unwrap(),
        &id,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (conn, _) = listener.accept().unwrap();
    let master = berth_runtime::sys::recv_fd(conn.as_raw_fd()).unwrap();
    let (rows, cols) = berth_runtime::sys::get_winsize(std::os::fd::AsFd::as_fd(&master)).unwrap();
    assert_eq!((rows, cols), (33, 111), "consoleSize applied");
    rt.ok(&["start", &id]);
    let out = read_master_until(master, "console-ok");
    assert!(out.contains("/dev/pts/0"), "{out}");
    assert!(
        out.contains("c\r\n"),
        "/dev/console is a char device: {out}"
    );
    let err = rt.fails(&["create", "-b", b.path().to_str().unwrap(), &unique("tty")]);
    assert!(
        err.contains("console socket"),
        "terminal without a console socket: {err}"
    );
    rt.ok(&["delete", "--force", &id]);
}
