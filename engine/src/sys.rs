//! The crate's only `unsafe`: forking the monitor.

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
