//! The suite's only unsafe code: taking ownership of a file descriptor
//! received over a unix socket (the console socket protocol).

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use anyhow::{bail, Context, Result};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

/// Receive one file descriptor sent with SCM_RIGHTS on `stream` (what a
/// runtime does with the pty master on `--console-socket`).
pub fn recv_fd(stream: &UnixStream) -> Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .context("recvmsg on the console socket")?;
    for c in msg.cmsgs().context("read control messages")? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed `fd` in this process for
                // the SCM_RIGHTS message; nothing else knows or owns it, so
                // the OwnedFd becomes its only owner and closes it once.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    bail!("the console socket message carried no file descriptor")
}
