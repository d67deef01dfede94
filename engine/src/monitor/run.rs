//! The monitor's life: daemonize, create + start, pump output, reap, record,
//! clean up.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use berth_netd::wire::{Request, SetupResult};
use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::clients::Clients;
use super::time::{json_str, rfc3339_nanos};
use super::{sys, Args, MonitorError};
use crate::attach::{self, socket_path};
use crate::layout::{
    ATTACH_LOCK, CONSOLE_SOCKET, EXIT_FILE, MONITOR_LOCK, NETD_REQUEST, NETWORK_FILE, NETWORK_LOCK,
    PID_FILE, RESTARTING_FILE, RESTARTS_FILE, STOPPED_FILE,
};
use crate::logs::LogWriter;
use crate::sys::{fork_single_threaded, Forked};

/// Entry point of the `berth-monitor` binary; returns its exit status.
pub fn main() -> i32 {
    let args = match Args::parse(std::env::args_os().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            println!("{{\"error\":{}}}", json_str(e.to_string().as_bytes()));
            return 2;
        }
    };
    let _ = nix::unistd::setsid();
    let (rd, wr) = match nix::unistd::pipe2(OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => return report_and_fail(&format!("pipe: {e}")),
    };
    match fork_single_threaded() {
        Ok(Forked::Parent) => {
            drop(wr);
            let mut msg = String::new();
            let _ = File::from(rd).read_to_string(&mut msg);
            if msg.is_empty() {
                msg = "{\"error\":\"monitor exited before the container started\"}".into();
            }
            print!("{msg}");
            let _ = std::io::stdout().flush();
            i32::from(!msg.contains("\"pid\""))
        }
        Ok(Forked::Child) => {
            drop(rd);
            detach_stdio();
            let mut report = File::from(wr);
            match monitor(&args, &mut report) {
                Ok(()) => 0,
                Err(e) => {
                    let _ = write!(
                        report,
                        "{{\"error\":{}}}",
                        json_str(e.to_string().as_bytes())
                    );
                    1
                }
            }
        }
        Err(e) => report_and_fail(&format!("fork: {e}")),
    }
}

fn report_and_fail(msg: &str) -> i32 {
    println!("{{\"error\":{}}}", json_str(msg.as_bytes()));
    1
}

/// stdin, stdout and stderr to /dev/null, so the engine's pipes close when
/// the first process exits.
fn detach_stdio() {
    if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stderr(&null);
    }
}

fn lock(path: &Path, arg: FlockArg) -> Result<Flock<File>, MonitorError> {
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(sys(format!("open {}", path.display())))?;
    Flock::lock(f, arg).map_err(|(_, e)| MonitorError::Sys {
        what: format!("lock {}", path.display()),
        source: e.into(),
    })
}

fn runtime(a: &Args) -> Command {
    let mut c = Command::new(&a.runtime);
    c.arg("--root").arg(&a.runtime_root);
    c
}

/// Run a runtime subcommand with output captured; its stderr on failure.
fn runtime_ok(a: &Args, args: &[&str]) -> Result<(), MonitorError> {
    let out = runtime(a)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(sys(format!("run {}", a.runtime.display())))?;
    if out.status.success() {
        return Ok(());
    }
    let mut msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if msg.is_empty() {
        msg = format!("{} {} failed: {}", a.runtime.display(), args[0], out.status);
    }
    Err(MonitorError::Runtime(msg))
}

fn monitor(a: &Args, report: &mut File) -> Result<(), MonitorError> {
    nix::sys::prctl::set_child_subreaper(true).map_err(|e| sys("set child subreaper")(e.into()))?;
    let alive = lock(&a.run_dir.join(MONITOR_LOCK), FlockArg::LockExclusive)?;
    // Our pid, for people debugging (the lock, not the pid, means "alive").
    let _ = (&*alive).write_all(std::process::id().to_string().as_bytes());
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    mask.thread_block()
        .map_err(|e| sys("block SIGCHLD")(e.into()))?;
    let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| sys("signalfd")(e.into()))?;
    let mut clients = Clients::bind(&a.run_dir)?;
    let mut c = create(a)?;
    if let Some(fd) = c.stdin.take() {
        clients.set_stdin(fd, a.tty);
    }
    if a.attach_wait {
        clients.wait_first(Duration::from_secs(10));
    }
    start(a, &c)?;
    let _ = write!(report, "{{\"pid\":{}}}", c.pid);
    // Closing the report pipe lets the first process exit.
    *report = File::open("/dev/null").map_err(sys("open /dev/null"))?;
    let mut restarts = 0u32;
    let mut deleted;
    let mut backoff = Duration::from_millis(100);
    loop {
        let began = Instant::now();
        let code = pump(a, c.pid, &sigfd, c.out, c.err, &mut clients)?;
        let again = a.restart.restarts_after(code, restarts) && !stopped(a);
        if again {
            let _ = fs::write(a.run_dir.join(RESTARTING_FILE), b"");
        }
        deleted = record_exit(a, code, c.pid)?;
        // Clients see the end of the output once the exit is on record.
        clients.close_all();
        if !again {
            break;
        }
        // docker's back-off: doubling from 100 ms, reset after 10 s of running.
        if began.elapsed() >= Duration::from_secs(10) {
            backoff = Duration::from_millis(100);
        }
        restarts += 1;
        let _ = fs::write(a.run_dir.join(RESTARTS_FILE), restarts.to_string());
        let restarted = sleep_unless_stopped(a, backoff)
            .then(|| create(a))
            .transpose()
            .and_then(|n| match n {
                Some(n) => start(a, &n).map(|()| Some(n)),
                None => Ok(None),
            });
        backoff = (backoff * 2).min(Duration::from_secs(60));
        match restarted {
            Ok(Some(mut n)) => {
                if let Some(fd) = n.stdin.take() {
                    clients.set_stdin(fd, a.tty);
                }
                let _ = fs::remove_file(a.run_dir.join(EXIT_FILE));
                let _ = fs::remove_file(a.run_dir.join(RESTARTING_FILE));
                // A stop that came while we made it again saw "restarting"
                // and waits for us to end: end this run (no restart follows).
                if stopped(a) {
                    let _ = runtime_ok(a, &["kill", &a.id, "KILL"]);
                }
                c = n;
            }
            // Stopped meanwhile, or the container could not be made again:
            // the last exit stands.
            Ok(None) | Err(_) => {
                let _ = fs::remove_file(a.run_dir.join(RESTARTING_FILE));
                break;
            }
        }
    }
    finish(a);
    deleted
}

/// `stop` or `rm` asked for the container to stay down.
fn stopped(a: &Args) -> bool {
    a.run_dir.join(STOPPED_FILE).exists()
}

/// Wait `d` before a restart; `false` if `stop` came meanwhile.
fn sleep_unless_stopped(a: &Args, d: Duration) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if stopped(a) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20).min(end - Instant::now()));
    }
    !stopped(a)
}

/// `runtime start`; a failure removes the created container.
fn start(a: &Args, c: &Created) -> Result<(), MonitorError> {
    runtime_ok(a, &["start", &a.id]).inspect_err(|_| {
        detach_network(a, c.pid.as_raw());
        let _ = runtime_ok(a, &["delete", "--force", &a.id]);
    })
}

/// A created container: its init's pid, the read ends of its output
/// (stdout is the pty master for a tty) and where its input goes.
struct Created {
    pid: Pid,
    out: OwnedFd,
    err: OwnedFd,
    stdin: Option<OwnedFd>,
}

/// `runtime create` with our pipes (or a console socket) as the
/// container's stdio, then the network. A failure leaves nothing behind.
fn create(a: &Args) -> Result<Created, MonitorError> {
    let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| sys("pipe")(e.into()))?;
    let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| sys("pipe")(e.into()))?;
    let pid_file = a.run_dir.join(PID_FILE);
    let mut cmd = runtime(a);
    cmd.arg("create").arg("--bundle").arg(&a.bundle);
    cmd.arg("--pid-file").arg(&pid_file);
    let mut stdin = None;
    let console = if a.tty {
        let (dir, path) = socket_path(&a.run_dir, CONSOLE_SOCKET)
            .map_err(sys(format!("open {}", a.run_dir.display())))?;
        let _ = fs::remove_file(&path);
        let l = UnixListener::bind(&path).map_err(sys("bind the console socket"))?;
        // The runtime is another process: name the socket through our pid.
        let theirs = format!(
            "/proc/{}/fd/{}/{CONSOLE_SOCKET}",
            std::process::id(),
            dir.as_raw_fd()
        );
        cmd.arg("--console-socket").arg(theirs);
        cmd.stdin(Stdio::null());
        Some((dir, l))
    } else if a.stdin {
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| sys("pipe")(e.into()))?;
        cmd.stdin(Stdio::from(r));
        stdin = Some(w);
        None
    } else {
        cmd.stdin(Stdio::null());
        None
    };
    let status = cmd
        .arg(&a.id)
        .stdout(Stdio::from(out_w))
        .stderr(Stdio::from(err_w))
        .status()
        .map_err(sys(format!("run {}", a.runtime.display())))?;
    let _ = fs::remove_file(a.run_dir.join(CONSOLE_SOCKET));
    let fail = |msg: String| {
        let _ = runtime_ok(a, &["delete", "--force", &a.id]);
        MonitorError::Runtime(msg)
    };
    if !status.success() {
        let mut msg = drain_now(&err_r);
        msg.push_str(&drain_now(&out_r));
        let msg = msg.trim().to_string();
        return Err(fail(if msg.is_empty() {
            format!("runtime create failed: {status}")
        } else {
            msg
        }));
    }
    let mut out = out_r;
    if let Some((_dir, l)) = console {
        let master = receive_master(&l).map_err(|e| fail(format!("console socket: {e}")))?;
        stdin = Some(master.try_clone().map_err(|e| fail(format!("dup: {e}")))?);
        out = master;
    }
    let pid: i32 = fs::read_to_string(&pid_file)
        .map_err(sys(format!("read {}", pid_file.display())))?
        .trim()
        .parse()
        .map_err(|_| MonitorError::Runtime("runtime wrote a bad pid file".into()))?;
    if let Err(e) = attach_network(a, pid) {
        let _ = runtime_ok(a, &["delete", "--force", &a.id]);
        return Err(e);
    }
    Ok(Created {
        pid: Pid::from_raw(pid),
        out,
        err: err_r,
        stdin,
    })
}

/// The pty master the runtime sent (it connected during `create`, which
/// has returned, so the connection is queued already).
fn receive_master(l: &UnixListener) -> std::io::Result<OwnedFd> {
    l.set_nonblocking(true)?;
    let (conn, _) = l.accept()?;
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    crate::sys::recv_fd(&conn)
}

/// Under the network lock: netd's setup of the request (nothing when it
/// names no network: every one was disconnected), its answer as
/// `network.json`, its name servers in resolv.conf. A failure tears down
/// what setup made. Nothing to do without `--netd`.
fn attach_network(a: &Args, pid: i32) -> Result<(), MonitorError> {
    if a.netd.is_none() {
        return Ok(());
    }
    let _held = lock(&a.run_dir.join(NETWORK_LOCK), FlockArg::LockExclusive)?;
    let done = setup_network(a, pid);
    if done.is_err() {
        let _ = netd(a, "teardown", pid);
        let _ = fs::remove_file(a.run_dir.join(NETWORK_FILE));
    }
    done
}

fn setup_network(a: &Args, pid: i32) -> Result<(), MonitorError> {
    let path = a.run_dir.join(NETD_REQUEST);
    let req: Request = fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| MonitorError::Runtime(format!("bad netd request {}", path.display())))?;
    let result: SetupResult = if req.networks.is_empty() && req.pasta.is_none() {
        SetupResult {
            container_id: req.container_id,
            interfaces: Vec::new(),
            dns_servers: Vec::new(),
            port_mappings: Vec::new(),
        }
    } else {
        let out = netd(a, "setup", pid)?;
        serde_json::from_slice(&out)
            .map_err(|e| MonitorError::Runtime(format!("berth-netd setup answered: {e}")))?
    };
    crate::network::save_result(&a.run_dir, &result).map_err(sys("write network.json"))?;
    crate::network::write_resolv_conf(&a.bundle, &result.dns_servers)
        .map_err(sys("write resolv.conf"))
}

/// Under the network lock: netd's teardown (by the container id; the netns
/// may be gone), and `network.json` goes.
fn detach_network(a: &Args, pid: i32) {
    if a.netd.is_none() {
        return;
    }
    let _held = lock(&a.run_dir.join(NETWORK_LOCK), FlockArg::LockExclusive);
    let _ = netd(a, "teardown", pid);
    let _ = fs::remove_file(a.run_dir.join(NETWORK_FILE));
}

/// `berth-netd setup|teardown` for the container whose init is `pid`;
/// its stdout. Nothing to do (empty) without `--netd`.
fn netd(a: &Args, op: &str, pid: i32) -> Result<Vec<u8>, MonitorError> {
    let (Some(netd), Some(state)) = (&a.netd, &a.netd_state) else {
        return Ok(Vec::new());
    };
    let netns = PathBuf::from(format!("/proc/{pid}/ns/net"));
    let out = crate::network::netd_command(netd, state, op, &netns, &a.run_dir.join(NETD_REQUEST))
        .output()
        .map_err(sys(format!("run {}", netd.display())))?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    Err(MonitorError::Runtime(format!(
        "berth-netd {op}: {}",
        reply["error"].as_str().unwrap_or("failed")
    )))
}

/// Whatever is already buffered in a pipe (non-blocking).
fn drain_now(fd: &OwnedFd) -> String {
    let _ = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
    let mut buf = vec![0u8; 65536];
    let n = nix::unistd::read(fd, &mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// One output stream: its pipe and a partial line.
struct Stream {
    fd: Option<OwnedFd>,
    name: &'static str,
    /// Its frame type for attach clients.
    kind: u8,
    partial: Vec<u8>,
}

/// Copy output into the log until the container has exited and its pipes
/// are closed (or a grace period after exit). Returns the exit code.
fn pump(
    a: &Args,
    pid: Pid,
    sigfd: &SignalFd,
    out: OwnedFd,
    err: OwnedFd,
    clients: &mut Clients,
) -> Result<i32, MonitorError> {
    let mut log =
        LogWriter::open(&a.log, a.log_config).map_err(sys(format!("open {}", a.log.display())))?;
    let mut streams = [
        Stream {
            fd: Some(out),
            name: "stdout",
            kind: attach::STDOUT,
            partial: Vec::new(),
        },
        Stream {
            fd: Some(err),
            name: "stderr",
            kind: attach::STDERR,
            partial: Vec::new(),
        },
    ];
    let mut code = reap(pid);
    let mut deadline: Option<Instant> = code.map(|_| Instant::now() + Duration::from_secs(2));
    loop {
        if streams.iter().all(|s| s.fd.is_none()) && code.is_some() {
            break;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let timeout = match deadline {
            Some(_) => PollTimeout::from(100u16),
            None => PollTimeout::NONE,
        };
        let mut fds = vec![PollFd::new(sigfd.as_fd(), PollFlags::POLLIN)];
        let idx: Vec<usize> = (0..2).filter(|&i| streams[i].fd.is_some()).collect();
        for &i in &idx {
            if let Some(fd) = &streams[i].fd {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            }
        }
        let polled = clients.register(&mut fds);
        let Some(ready) =
            attach::poll_ready(&mut fds, timeout).map_err(|e| sys("poll")(e.into()))?
        else {
            continue;
        };
        drop(fds);
        if ready[0] {
            while let Ok(Some(_)) = sigfd.read_signal() {}
            if code.is_none() {
                code = reap(pid);
                if code.is_some() {
                    deadline = Some(Instant::now() + Duration::from_secs(2));
                }
            } else {
                reap(pid);
            }
        }
        // Clients first: what poll said about them is by index, and output
        // below may drop a client that went away.
        clients.service(&polled, &ready);
        for (k, &i) in idx.iter().enumerate() {
            if ready[k + 1] {
                copy_out(&mut streams[i], &mut log, clients);
            }
        }
    }
    for s in &mut streams {
        flush_partial(s, &mut log);
    }
    Ok(code.unwrap_or(255))
}

/// Reap every exited child; the container's exit code once it is reaped.
fn reap(pid: Pid) -> Option<i32> {
    let mut code = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, c)) if p == pid => code = Some(c),
            Ok(WaitStatus::Signaled(p, s, _)) if p == pid => code = Some(128 + s as i32),
            Ok(WaitStatus::StillAlive) | Err(_) => return code,
            Ok(_) => {}
        }
    }
}

fn copy_out(s: &mut Stream, log: &mut LogWriter, clients: &mut Clients) {
    let Some(fd) = &s.fd else { return };
    let mut buf = [0u8; 16384];
    match nix::unistd::read(fd, &mut buf) {
        // A pty master shares its (non-blocking) file with the stdin side.
        Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {}
        // EIO: a pty whose other side is closed everywhere.
        Ok(0) | Err(_) => {
            flush_partial(s, log);
            s.fd = None;
        }
        Ok(n) => {
            clients.broadcast(s.kind, &buf[..n]);
            s.partial.extend_from_slice(&buf[..n]);
            while let Some(pos) = s.partial.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = s.partial.drain(..=pos).collect();
                write_line(log, s.name, &line);
            }
            if s.partial.len() >= 16384 {
                flush_partial(s, log);
            }
        }
    }
}

fn flush_partial(s: &mut Stream, log: &mut LogWriter) {
    if !s.partial.is_empty() {
        let line = std::mem::take(&mut s.partial);
        write_line(log, s.name, &line);
    }
}

fn write_line(log: &mut LogWriter, stream: &str, data: &[u8]) {
    log.write(stream, data, &rfc3339_nanos(SystemTime::now()));
}

/// Detach the network, delete the runtime container, then record the exit
/// (so an exit file means the runtime and netd are done with it: a
/// foreground `run --rm` may remove the container at once). The inner
/// result: a failed delete does not stop the cleanup.
fn record_exit(a: &Args, code: i32, pid: Pid) -> Result<Result<(), MonitorError>, MonitorError> {
    let body = format!(
        "{{\"exit_code\":{code},\"finished_at\":\"{}\"}}",
        rfc3339_nanos(SystemTime::now())
    );
    // The netns is gone with the init; netd removes the host side, the
    // lease and the port rules by the container id.
    detach_network(a, pid.as_raw());
    let deleted = runtime_ok(a, &["delete", "--force", &a.id]);
    let path = a.run_dir.join(EXIT_FILE);
    let tmp = a.run_dir.join(".exit.json.tmp");
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(body.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, &path)
    };
    write().map_err(sys(format!("write {}", path.display())))?;
    Ok(deleted)
}

/// The container is down for good: let a foreground `--rm` reader finish,
/// then run the exit command.
fn finish(a: &Args) {
    if a.remove {
        // A foreground `berth run --rm` reads the output and exit code first.
        let _reader_done = lock(&a.run_dir.join(ATTACH_LOCK), FlockArg::LockExclusive);
        if !a.run_dir.exists() {
            return; // that reader removed the container itself
        }
    }
    if let Some((prog, rest)) = a.exit_command.split_first() {
        let _ = Command::new(prog)
            .args(rest)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
