//! The parent ↔ child handshake during `create` and `exec`: small JSON
//! messages over a `SOCK_SEQPACKET` socketpair (one message per datagram, so
//! no framing is needed), plus descriptor passing with `SCM_RIGHTS`.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::socket::{recvmsg, sendmsg, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Msg {
    /// Child: my new user namespace exists, write my id maps.
    UsernsReady,
    /// Parent: go on (id maps written and cgroup joined; or hooks ran, with
    /// the state JSON the container-side hooks get on stdin).
    Proceed { state: Option<String> },
    /// Intermediate child: the container init has this pid (host view).
    InitPid { pid: i32 },
    /// Init: mounts done, run the createRuntime/prestart hooks now.
    RunCreateHooks,
    /// Init: set-up complete, waiting for `start`.
    Ready,
    /// Any child: set-up failed.
    Error { msg: String },
    /// Parent: abort (a hook failed).
    Abort { msg: String },
}

pub struct Chan {
    fd: OwnedFd,
}

pub fn pair() -> Result<(Chan, Chan)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| Error::Sync(format!("socketpair: {e}")))?;
    Ok((Chan { fd: a }, Chan { fd: b }))
}

impl Chan {
    pub fn send(&self, m: &Msg) -> Result<()> {
        let data = serde_json::to_vec(m).expect("message serializes");
        sendmsg::<()>(
            self.fd.as_raw_fd(),
            &[IoSlice::new(&data)],
            &[],
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(|e| Error::Sync(format!("send: {e}")))?;
        Ok(())
    }

    /// Receive one message; `Ok(None)` when the peer closed the socket (it
    /// exec'd or died).
    pub fn recv(&self) -> Result<Option<Msg>> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = {
                let mut iov = [IoSliceMut::new(&mut buf)];
                match recvmsg::<()>(
                    self.fd.as_raw_fd(),
                    &mut iov,
                    None,
                    MsgFlags::MSG_CMSG_CLOEXEC,
                ) {
                    Ok(r) => r.bytes,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(Error::Sync(format!("receive: {e}"))),
                }
            };
            if n == 0 {
                return Ok(None);
            }
            return serde_json::from_slice(&buf[..n])
                .map(Some)
                .map_err(|e| Error::Sync(format!("bad message: {e}")));
        }
    }

    /// Receive and require a specific kind of message; turn `Error` messages
    /// into errors.
    pub fn expect(&self, what: &str, pred: impl Fn(&Msg) -> bool) -> Result<Msg> {
        match self.recv()? {
            Some(Msg::Error { msg }) => Err(Error::Init(msg)),
            Some(Msg::Abort { msg }) => Err(Error::Init(msg)),
            Some(m) if pred(&m) => Ok(m),
            Some(m) => Err(Error::Sync(format!("expected {what}, got {m:?}"))),
            None => Err(Error::Sync(format!(
                "container process exited before {what}"
            ))),
        }
    }

    pub fn as_fd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }
}
