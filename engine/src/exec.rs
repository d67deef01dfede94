//! `exec`: a new process in a running container, through the runtime's
//! `exec --process`. With `tty`, the runtime sends the pty master to a
//! console socket of ours and this process copies between its own
//! terminal (raw) and the master until the process's side closes.

use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::wait::WaitStatus;

use crate::attach::{RawMode, Signal, SignalGuard};
use crate::engine::Engine;
use crate::error::{io, EngineError, Result};
use crate::layout::CONSOLE_SOCKET;
use crate::state::Status;

/// What `exec` runs.
#[derive(Clone, Debug, Default)]
pub struct ExecOptions {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    /// `-i`: our stdin goes to the process (else it reads /dev/null).
    pub interactive: bool,
    /// `-t`: the process gets a pty.
    pub tty: bool,
    /// `-d`: start it and return (its exit code is not waited for).
    pub detach: bool,
}

impl Engine {
    /// Run a command in a running container; its exit code (0 for `-d`).
    pub fn exec(&self, key: &str, o: &ExecOptions) -> Result<i32> {
        let rec = self.find(key)?;
        match self.state(&rec).status {
            Status::Running => {}
            // The new process would freeze with the rest.
            Status::Paused => return Err(EngineError::Paused(rec.id)),
            _ => return Err(EngineError::NotRunning(rec.id)),
        }
        if o.cmd.is_empty() {
            return Err(EngineError::NoCommand);
        }
        let cfg_path = rec.bundle.join("config.json");
        let cfg: serde_json::Value = serde_json::from_slice(
            &fs::read(&cfg_path).map_err(io("read", &cfg_path))?,
        )
        .map_err(|source| EngineError::BadRecord {
            id: rec.id.clone(),
            source,
        })?;
        let mut process = cfg["process"].clone();
        process["args"] = serde_json::json!(o.cmd);
        // Not the container's: a -t container's exec is no tty unless asked.
        process["terminal"] = serde_json::json!(o.tty && !o.detach);
        if let Some(u) = &o.user {
            let user = crate::user::resolve(&rec.rootfs, u)?;
            process["user"] = serde_json::json!({"uid": user.uid, "gid": user.gid, "additionalGids": user.additional_gids});
        }
        if let Some(w) = &o.workdir {
            process["cwd"] = serde_json::json!(w);
        }
        let mut env: Vec<String> =
            serde_json::from_value(process["env"].take()).unwrap_or_default();
        for kv in &o.env {
            let key = kv.split('=').next().unwrap_or("");
            env.retain(|e| e.split('=').next() != Some(key));
            env.push(kv.clone());
        }
        process["env"] = serde_json::json!(env);
        let run = self.run_dir(&rec.id);
        let tag = &crate::host::random_id()?[..16];
        let pfile = run.join(format!("exec-{tag}.json"));
        fs::write(&pfile, process.to_string()).map_err(io("write", &pfile))?;
        let mut cmd = self.runtime(&rec);
        cmd.arg("exec").arg("--process").arg(&pfile);
        let spawn = |source| EngineError::Spawn {
            program: rec.runtime.clone(),
            source,
        };
        let code =
            |s: std::process::ExitStatus| s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0));
        let result = if o.detach {
            cmd.arg("--detach").arg(&rec.id);
            cmd.stdin(Stdio::null()).stdout(Stdio::null());
            cmd.status().map_err(spawn).map(code)
        } else if o.tty {
            self.exec_tty(cmd, &rec.id, &run, tag, o.interactive)
        } else {
            if !o.interactive {
                cmd.stdin(Stdio::null());
            }
            cmd.arg(&rec.id).status().map_err(spawn).map(code)
        };
        let _ = fs::remove_file(&pfile);
        result
    }

    /// The runtime's exec, detached, with a console socket (runc refuses a
    /// console socket otherwise); copy between our terminal and the pty
    /// until the process exits. We are a child subreaper meanwhile, so the
    /// process is re-parented to us when the runtime exits, and we reap it
    /// for its exit code (as conmon does).
    fn exec_tty(
        &self,
        mut cmd: std::process::Command,
        id: &str,
        run: &std::path::Path,
        tag: &str,
        interactive: bool,
    ) -> Result<i32> {
        let name = format!("exec-{tag}-{CONSOLE_SOCKET}");
        let pid_file = run.join(format!("exec-{tag}.pid"));
        let (dir, ours) = crate::attach::socket_path(run, &name).map_err(io("open", run))?;
        let listener = UnixListener::bind(&ours).map_err(io("bind", &run.join(&name)))?;
        let theirs = format!("/proc/{}/fd/{}/{name}", std::process::id(), dir.as_raw_fd());
        let signals = SignalGuard::new().map_err(io("block signals for", run))?;
        nix::sys::prctl::set_child_subreaper(true)
            .map_err(|e| io("become subreaper for", run)(e.into()))?;
        cmd.args(["--detach", "--tty", "--console-socket"])
            .arg(&theirs)
            .arg("--pid-file")
            .arg(&pid_file)
            .arg(id);
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
        let out = cmd.output().map_err(|source| EngineError::Spawn {
            program: cmd.get_program().into(),
            source,
        });
        let _ = fs::remove_file(run.join(&name));
        let out = out?;
        let pid = fs::read_to_string(&pid_file)
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok());
        let _ = fs::remove_file(&pid_file);
        let (Some(pid), true) = (pid, out.status.success()) else {
            return Err(EngineError::Runtime {
                op: "exec",
                id: id.to_string(),
                message: crate::engine::runtime_message(&String::from_utf8_lossy(&out.stderr)),
            });
        };
        let pid = nix::unistd::Pid::from_raw(pid);
        if let Some(master) = receive_master(&listener) {
            pump_pty(&master, interactive, &signals, pid);
        }
        loop {
            match nix::sys::wait::waitpid(pid, None) {
                Ok(WaitStatus::Exited(_, c)) => return Ok(c),
                Ok(WaitStatus::Signaled(_, s, _)) => return Ok(128 + s as i32),
                Err(nix::errno::Errno::EINTR) | Ok(_) => continue,
                Err(e) => return Err(io("wait for the exec process in", run)(e.into())),
            }
        }
    }
}

/// The pty master the runtime sent (its exec has returned: the
/// connection is queued).
fn receive_master(l: &UnixListener) -> Option<OwnedFd> {
    l.set_nonblocking(true).ok()?;
    let (conn, _) = l.accept().ok()?;
    conn.set_nonblocking(false).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    crate::sys::recv_fd(&conn).ok()
}

/// Copy our stdin (if `interactive`) to the pty and the pty to our stdout
/// until the process's side of the pty is closed everywhere.
fn pump_pty(master: &OwnedFd, interactive: bool, signals: &SignalGuard, pid: nix::unistd::Pid) {
    let stdin = std::io::stdin();
    let _raw = RawMode::enter(interactive);
    let resize = || {
        if let Some((r, c)) = crate::sys::window_size(std::io::stdin().as_fd())
            .or_else(|| crate::sys::window_size(std::io::stdout().as_fd()))
        {
            let _ = crate::sys::set_window_size(master.as_fd(), r, c);
        }
    };
    resize();
    let mut m = fs::File::from(master.try_clone().expect("dup the pty master"));
    let mut out = std::io::stdout();
    let mut stdin_open = interactive;
    let mut buf = [0u8; 16384];
    loop {
        let mut fds = vec![
            PollFd::new(master.as_fd(), PollFlags::POLLIN),
            PollFd::new(signals.fd(), PollFlags::POLLIN),
        ];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        let ready = match crate::attach::poll_ready(&mut fds, PollTimeout::NONE) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(_) => return,
        };
        drop(fds);
        if ready[1] {
            for sig in signals.drain() {
                if sig == Signal::SIGWINCH {
                    resize();
                } else {
                    // Our terminal is raw: a signal came from outside; pass
                    // it to the runtime, which forwards it to the process.
                    let _ = nix::sys::signal::kill(pid, sig);
                }
            }
        }
        if stdin_open && ready[2] {
            match stdin.lock().read(&mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => {
                    let _ = m.write_all(&buf[..n]);
                }
            }
        }
        if ready[0] {
            match m.read(&mut buf) {
                // EIO: every slave descriptor is closed, the process is gone.
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    let _ = out.write_all(&buf[..n]);
                    let _ = out.flush();
                }
            }
        }
    }
}
