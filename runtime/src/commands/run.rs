use std::os::fd::{AsRawFd, OwnedFd};

use anyhow::{bail, Result};
use berth_runtime::{config, container, foreground, sys};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::unistd::Pid;

use super::Ctx;
use crate::cli::RunArgs;

/// An internal console socket for a foreground container with a terminal:
/// (end given to the container, end we receive the master on).
pub fn internal_console() -> Result<(OwnedFd, OwnedFd)> {
    Ok(socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?)
}

pub fn run(a: RunArgs, ctx: &Ctx) -> Result<i32> {
    let bundle = config::load_bundle(&a.create.bundle)?;
    let terminal = bundle
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    let mut opts = super::create::opts(&a.create, ctx)?;
    let mut ours = None;
    if terminal && opts.console.is_none() {
        if a.detach {
            bail!("cannot allocate a terminal when detached without --console-socket");
        }
        let (theirs, mine) = internal_console()?;
        opts.console = Some(theirs);
        ours = Some(mine);
    }
    if !a.detach {
        // The init is our grandchild: become its reaper when its parent exits.
        nix::sys::prctl::set_child_subreaper(true)?;
    }
    let sfd = if a.detach {
        None
    } else {
        Some(foreground::block_signals()?)
    };
    let st = container::create(&ctx.root, opts)?;
    let master = match ours {
        Some(s) => Some(sys::recv_fd(s.as_raw_fd())?),
        None => None,
    };
    if let Err(e) = container::start(&ctx.root, &a.create.id) {
        let _ = container::delete(&ctx.root, &a.create.id, true);
        return Err(e.into());
    }
    let Some(sfd) = sfd else { return Ok(0) };
    let code = foreground::wait(Pid::from_raw(st.pid), sfd, master)?;
    foreground::unblock_signals();
    if !a.keep {
        container::delete(&ctx.root, &a.create.id, true)?;
    }
    Ok(code)
}
