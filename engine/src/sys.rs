//! The crate's only `unsafe`: forking the monitor and the rootless pause
//! process, closing inherited descriptors, ignoring SIGPIPE, terminal window-size ioctls, and
//! taking ownership of a descriptor received over a socket.

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::libc;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::unistd::ForkResult;

/// Which side of a fork this is.
pub enum Forked {
    Parent,
    Child,
}

/// fork(2) in a single-threaded process.
pub fn fork_single_threaded() -> nix::Result<Forked> {
    // SAFETY: only called by berth-monitor before it has started any thread
    // (it never starts one), so the child is a complete copy of the only
    // thread and may call any function, not only async-signal-safe ones.
    match unsafe { nix::unistd::fork() }? {
        ForkResult::Parent { .. } => Ok(Forked::Parent),
        ForkResult::Child => Ok(Forked::Child),
    }
}

/// fork(2) from `berth` before it has started a thread (the rootless pause
/// process): the child's pid in the parent, `None` in the child.
pub fn fork_early() -> nix::Result<Option<i32>> {
    // SAFETY: called first thing in `berth`'s main, before any thread
    // exists, so the child is a complete copy of the only thread.
    match unsafe { nix::unistd::fork() }? {
        ForkResult::Parent { child } => Ok(Some(child.as_raw())),
        ForkResult::Child => Ok(None),
    }
}

/// SIGPIPE ignored (std's start-up does it for a Rust `main`).
pub fn ignore_sigpipe() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: SIG_IGN installs no handler code; called first thing, before
    // the monitor has any other thread or signal state.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) };
}

/// Close every descriptor from `first` up (close_range(2)).
pub fn close_from(first: u32) -> nix::Result<()> {
    // SAFETY: close_range takes plain integers; the caller (the pause
    // process, about to sleep for good) uses none of the descriptors again.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0u32) };
    nix::errno::Errno::result(r).map(drop)
}

nix::ioctl_read_bad!(tiocgwinsz, libc::TIOCGWINSZ, libc::winsize);
nix::ioctl_write_ptr_bad!(tiocswinsz, libc::TIOCSWINSZ, libc::winsize);

/// A terminal's (rows, columns); `None` if `fd` is not a terminal.
pub fn window_size(fd: BorrowedFd<'_>) -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` through the pointer, which
    // points at a live, writable local of that type; `fd` is borrowed, so
    // open for the call.
    unsafe { tiocgwinsz(fd.as_raw_fd(), &mut ws) }.ok()?;
    (ws.ws_row > 0 && ws.ws_col > 0).then_some((ws.ws_row, ws.ws_col))
}

/// Set a pty's window size (the kernel sends SIGWINCH to its foreground
/// process group).
pub fn set_window_size(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> nix::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ only reads one `winsize` through the pointer, which
    // points at a live local of that type; `fd` is borrowed, so open.
    unsafe { tiocswinsz(fd.as_raw_fd(), &ws) }.map(drop)
}

/// Receive one descriptor sent with SCM_RIGHTS (the runtime's
/// `--console-socket` protocol: the pty master, with its path as data).
pub fn recv_fd(sock: impl AsFd) -> std::io::Result<OwnedFd> {
    let mut data = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut data)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 4]);
    let msg = recvmsg::<()>(
        sock.as_fd().as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut got: Vec<OwnedFd> = Vec::new();
    for c in msg.cmsgs()? {
        let ControlMessageOwned::ScmRights(fds) = c else {
            continue;
        };
        for fd in fds {
            // SAFETY: the kernel installed this descriptor in our table for
            // this message; nothing else refers to it, so it is owned
            // exactly once, here.
            got.push(unsafe { OwnedFd::from_raw_fd(fd) });
        }
    }
    let mut it = got.into_iter();
    it.next().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "console socket message without a descriptor",
        )
    })
}
