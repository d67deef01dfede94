//! Namespaces: which to create, which to join, in which order.

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use oci_spec::runtime::{Linux, LinuxNamespaceType as T};

use crate::error::{Error, Result};

pub fn clone_flag(t: T) -> CloneFlags {
    match t {
        T::Mount => CloneFlags::CLONE_NEWNS,
        T::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        T::Uts => CloneFlags::CLONE_NEWUTS,
        T::Ipc => CloneFlags::CLONE_NEWIPC,
        T::User => CloneFlags::CLONE_NEWUSER,
        T::Pid => CloneFlags::CLONE_NEWPID,
        T::Network => CloneFlags::CLONE_NEWNET,
        T::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// The `/proc/<pid>/ns/<name>` name of a namespace type.
pub fn proc_name(t: T) -> &'static str {
    match t {
        T::Mount => "mnt",
        T::Cgroup => "cgroup",
        T::Uts => "uts",
        T::Ipc => "ipc",
        T::User => "user",
        T::Pid => "pid",
        T::Network => "net",
        T::Time => "time",
    }
}

/// Join order: the user namespace first (it grants the rights to join the
/// others), the mount namespace last (joining it changes path lookup).
pub const JOIN_ORDER: [T; 8] = [
    T::User,
    T::Ipc,
    T::Uts,
    T::Network,
    T::Pid,
    T::Cgroup,
    T::Time,
    T::Mount,
];

pub struct Plan {
    /// Namespaces to join, already opened (so later path lookups cannot be
    /// affected by earlier joins), in join order.
    pub join: Vec<(T, OwnedFd)>,
    /// Namespaces to create (excluding the user namespace).
    pub new: CloneFlags,
    pub new_user: bool,
    pub has_user: bool,
    pub has_cgroup: bool,
    pub has_pid: bool,
}

pub fn plan(linux: &Linux) -> Result<Plan> {
    let list = linux.namespaces().clone().unwrap_or_default();
    let mut join = Vec::new();
    let mut new = CloneFlags::empty();
    let mut new_user = false;
    for t in JOIN_ORDER {
        let Some(ns) = list.iter().find(|n| n.typ() == t) else {
            continue;
        };
        match ns.path() {
            Some(p) => join.push((t, open_ns(p, t)?)),
            None if t == T::User => new_user = true,
            None => new |= clone_flag(t),
        }
    }
    let has = |t: T| list.iter().any(|n| n.typ() == t);
    Ok(Plan {
        join,
        new,
        new_user,
        // Also when the runtime itself runs in a user namespace (under a
        // rootless engine): the same limits on devices and mounts apply.
        has_user: has(T::User) || crate::sys::in_user_namespace(),
        has_cgroup: has(T::Cgroup),
        has_pid: has(T::Pid),
    })
}

fn open_ns(p: &PathBuf, t: T) -> Result<OwnedFd> {
    nix::fcntl::open(p, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).map_err(|e| {
        Error::Path {
            op: if t == T::User {
                "open user namespace"
            } else {
                "open namespace"
            },
            path: p.clone(),
            source: e,
        }
    })
}

/// Join a namespace of a running process (for `exec`).
pub fn open_of_pid(pid: i32, t: T) -> Result<OwnedFd> {
    open_ns(
        &PathBuf::from(format!("/proc/{pid}/ns/{}", proc_name(t))),
        t,
    )
}

/// Whether two processes share a namespace of type `t`.
pub fn same(pid_a: &str, pid_b: &str, t: T) -> bool {
    let a = std::fs::read_link(format!("/proc/{pid_a}/ns/{}", proc_name(t)));
    let b = std::fs::read_link(format!("/proc/{pid_b}/ns/{}", proc_name(t)));
    matches!((a, b), (Ok(a), Ok(b)) if a == b)
}
