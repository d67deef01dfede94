//! Waiting for a container process in the foreground (`run`, `exec`):
//! forward signals to it, reap orphans (we are a subreaper), proxy a pty
//! when the runtime itself holds the master, and return the exit code
//! (128+signal when killed).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::{sys as sys_err, Result};

/// Block all signals and return a signalfd for them. Call before the
/// container process can exit, so no SIGCHLD is lost.
pub fn block_signals() -> Result<SignalFd> {
    let all = SigSet::all();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), None)
        .map_err(sys_err("block signals"))?;
    SignalFd::with_flags(&all, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(sys_err("signalfd"))
}

fn code_of(ws: WaitStatus) -> Option<i32> {
    match ws {
        WaitStatus::Exited(_, c) => Some(c),
        WaitStatus::Signaled(_, s, _) => Some(128 + s as i32),
        _ => None,
    }
}

/// Reap every exited child; return the exit code of `target` if it was one.
fn reap(target: Pid) -> Option<i32> {
    let mut found = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return found,
            Ok(ws) => {
                if ws.pid() == Some(target) {
                    if let Some(c) = code_of(ws) {
                        found = Some(c);
                    }
                }
            }
        }
    }
}

/// Restores the terminal mode of stdin when dropped.
struct RawMode {
    saved: termios::Termios,
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(
            std::io::stdin().as_fd(),
            termios::SetArg::TCSANOW,
            &self.saved,
        );
    }
}

fn raw_stdin() -> Option<RawMode> {
    let stdin = std::io::stdin();
    let saved = termios::tcgetattr(stdin.as_fd()).ok()?;
    let mut raw = saved.clone();
    termios::cfmakeraw(&mut raw);
    termios::tcsetattr(stdin.as_fd(), termios::SetArg::TCSANOW, &raw).ok()?;
    Some(RawMode { saved })
}

fn copy_winsize(master: BorrowedFd<'_>) {
    if let Ok((rows, cols)) = crate::sys::get_winsize(std::io::stdout().as_fd()) {
        let _ = crate::sys::set_winsize(master, rows, cols);
    }
}

/// Wait for `target`, forwarding signals; with `master`, proxy stdio to it.
pub fn wait(target: Pid, sfd: SignalFd, master: Option<OwnedFd>) -> Result<i32> {
    if let Some(c) = reap(target) {
        return Ok(c);
    }
    let _raw = master.as_ref().and_then(|_| raw_stdin());
    if let Some(m) = &master {
        copy_winsize(m.as_fd());
    }
    let stdin = std::io::stdin();
    let mut stdin_open = master.is_some();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if let Some(m) = &master {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
            if stdin_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => {
                return Err(crate::error::Error::Sys {
                    op: "poll".into(),
                    source: e,
                })
            }
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        if let Some(m) = &master {
            if ready.get(1).copied().unwrap_or(false) {
                match nix::unistd::read(m.as_fd(), &mut buf) {
                    Ok(n) if n > 0 => write_all(std::io::stdout().as_fd(), &buf[..n]),
                    _ => {}
                }
            }
            if stdin_open && ready.get(2).copied().unwrap_or(false) {
                match nix::unistd::read(stdin.as_fd(), &mut buf) {
                    Ok(n) if n > 0 => write_all(m.as_fd(), &buf[..n]),
                    _ => stdin_open = false,
                }
            }
        }
        if ready[0] {
            while let Ok(Some(si)) = sfd.read_signal() {
                let sig = si.ssi_signo as i32;
                if sig == libc::SIGCHLD {
                    if let Some(c) = reap(target) {
                        if let Some(m) = &master {
                            drain(m.as_fd(), &mut buf);
                        }
                        return Ok(c);
                    }
                } else if sig == libc::SIGWINCH {
                    if let Some(m) = &master {
                        copy_winsize(m.as_fd());
                    }
                } else if let Ok(s) = Signal::try_from(sig) {
                    let _ = kill(target, s);
                }
            }
        }
    }
}

fn drain(m: BorrowedFd<'_>, buf: &mut [u8]) {
    let _ = nix::fcntl::fcntl(
        m,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    while let Ok(n) = nix::unistd::read(m, buf) {
        if n == 0 {
            break;
        }
        write_all(std::io::stdout().as_fd(), &buf[..n]);
    }
}

fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) | Err(Errno::EAGAIN) => continue,
            Err(_) => return,
        }
    }
}

/// Unblock the signals again (before running hooks or exiting).
pub fn unblock_signals() {
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&SigSet::all()), None);
}
