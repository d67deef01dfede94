//! Pseudo-terminals for `terminal: true`: allocated from the container's own
//! devpts instance, the master sent to the caller's console socket, the
//! peer made the process's controlling terminal.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;

use crate::error::{Error, Result};
use crate::fsutil;
use crate::sys;

const DEVPTS_SUPER_MAGIC: i64 = 0x1cd1;

pub struct Pty {
    pub master: OwnedFd,
    pub peer: OwnedFd,
}

/// Open a new pty from `<root>/dev/pts/ptmx` (root = the container root
/// before pivot, or `/` after).
pub fn open_pty(root: BorrowedFd<'_>, size: Option<(u16, u16)>) -> Result<Pty> {
    let rel = fsutil::resolve_in_root(root, Path::new("/dev/pts/ptmx"))?;
    let master =
        fsutil::open_resolved(root, &rel, OFlag::O_RDWR | OFlag::O_NOCTTY).map_err(|e| {
            Error::Path {
                op: "open",
                path: "/dev/pts/ptmx".into(),
                source: e,
            }
        })?;
    let magic = nix::sys::statfs::fstatfs(&master)
        .map(|s| s.filesystem_type().0)
        .unwrap_or(0);
    if magic != DEVPTS_SUPER_MAGIC {
        return Err(Error::InvalidConfig(
            "/dev/pts/ptmx is not on a devpts filesystem".into(),
        ));
    }
    sys::unlock_pty(master.as_fd()).map_err(crate::error::sys("unlock pty"))?;
    let peer = sys::open_pty_peer(master.as_fd()).map_err(crate::error::sys("open pty peer"))?;
    if let Some((rows, cols)) = size {
        sys::set_winsize(peer.as_fd(), rows, cols)
            .map_err(crate::error::sys("set console size"))?;
    }
    Ok(Pty { master, peer })
}

/// Send the master to the console socket, runc-style.
pub fn send_master(socket: BorrowedFd<'_>, pty: &Pty) -> Result<()> {
    let name = std::fs::read_link(fsutil::fd_path(pty.peer.as_fd()))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "/dev/pts/0".into());
    sys::send_fd(socket.as_raw_fd(), pty.master.as_raw_fd(), &name)
        .map_err(crate::error::sys("send pty master to console socket"))
}

/// Make the peer this process's stdio and controlling terminal.
pub fn make_controlling(peer: &OwnedFd) -> Result<()> {
    nix::unistd::setsid().map_err(crate::error::sys("setsid"))?;
    sys::set_controlling_tty(peer.as_fd())
        .map_err(crate::error::sys("set controlling terminal"))?;
    for target in 0..=2 {
        sys::dup_onto(peer.as_raw_fd(), target).map_err(crate::error::sys("dup pty onto stdio"))?;
    }
    Ok(())
}

/// Connect to the caller's console socket.
pub fn connect(path: &Path) -> Result<OwnedFd> {
    let s =
        std::os::unix::net::UnixStream::connect(path).map_err(|source| Error::ConsoleSocket {
            path: path.into(),
            source,
        })?;
    Ok(OwnedFd::from(s))
}
