//! Never run from a writable runtime binary inside a container
//! (CVE-2019-5736).
//!
//! A process in the container can reach the runtime's executable through
//! `/proc/<pid>/exe` while the runtime works inside the container's
//! namespaces. If that executable is the host's file, it can be reopened for
//! writing once the runtime exits and replaced. So before `create`, `run`
//! and `exec` enter any namespace, the runtime re-executes itself from an
//! image nobody can write:
//!
//! 1. preferred, and cheap: the binary as seen through a read-only overlayfs
//!    whose only layer is the binary's directory, mounted *detached* with the
//!    new mount API (attached to no tree, so nothing can reach it to remount
//!    it; it goes away with the process). Nothing is copied.
//! 2. fallback (no overlayfs, no new mount API, no privilege): a copy in a
//!    memfd sealed against every change — a few milliseconds per call for a
//!    binary of a few MiB.

use std::ffi::CString;
use std::io::{Seek, SeekFrom};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::fcntl::OFlag;
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::stat::Mode;

use crate::error::{sys as sys_err, Error, Result};
use crate::sys;

const REQUIRED: i32 =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;

/// How the running executable is protected, if it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protection {
    SealedMemfd,
    ReadOnlyOverlay,
}

/// Whether this process already runs from a protected image.
pub fn protection() -> Option<Protection> {
    let f = std::fs::File::open("/proc/self/exe").ok()?;
    if sys::memfd_seals(f.as_fd()) & REQUIRED == REQUIRED {
        return Some(Protection::SealedMemfd);
    }
    let overlay = nix::sys::statfs::fstatfs(&f)
        .map(|s| s.filesystem_type().0 == OVERLAYFS_SUPER_MAGIC)
        .unwrap_or(false);
    let ro = nix::sys::statvfs::fstatvfs(&f)
        .map(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
        .unwrap_or(false);
    (overlay && ro).then_some(Protection::ReadOnlyOverlay)
}

pub fn is_sealed() -> bool {
    protection().is_some()
}

/// Re-execute from a protected image unless already running from one.
/// Returns only if already protected (or on error).
pub fn ensure_sealed() -> Result<()> {
    if is_sealed() {
        return Ok(());
    }
    let exe = std::fs::read_link("/proc/self/exe").map_err(|e| Error::Io {
        op: "readlink",
        path: "/proc/self/exe".into(),
        source: e,
    })?;
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()).expect("argv has no NUL"))
        .collect();
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut b = k.as_bytes().to_vec();
            b.push(b'=');
            b.extend_from_slice(v.as_bytes());
            CString::new(b).expect("env has no NUL")
        })
        .collect();
    // BERTH_RUNTIME_SEAL=memfd skips the overlay (hosts where overlayfs
    // misbehaves; and the tests of the fallback).
    let memfd_only = std::env::var_os("BERTH_RUNTIME_SEAL").is_some_and(|v| v == "memfd");
    if let Some(fd) = via_overlay(&exe).filter(|_| !memfd_only) {
        // Only returns on failure: fall back to the memfd copy.
        let _ = nix::unistd::fexecve(fd.as_fd(), &args, &env);
    }
    let fd = sealed_copy()?;
    let e = nix::unistd::fexecve(fd.as_fd(), &args, &env).unwrap_err();
    Err(Error::Sys {
        op: "re-exec sealed runtime".into(),
        source: e,
    })
}

/// The binary opened through a detached read-only overlay of its directory.
fn via_overlay(exe: &std::path::Path) -> Option<OwnedFd> {
    let dir: PathBuf = exe.parent()?.to_path_buf();
    let name = exe.file_name()?;
    let root = sys::detached_ro_overlay(&dir).ok()?;
    nix::fcntl::openat(
        &root,
        name,
        OFlag::O_PATH | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )
    .ok()
}

fn sealed_copy() -> Result<OwnedFd> {
    let mut exe = std::fs::File::open("/proc/self/exe").map_err(|e| Error::Io {
        op: "open",
        path: "/proc/self/exe".into(),
        source: e,
    })?;
    let memfd = memfd_create(
        "berth-runtime",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )
    .map_err(sys_err("memfd_create"))?;
    let mut out = std::fs::File::from(memfd);
    std::io::copy(&mut exe, &mut out).map_err(|e| Error::Io {
        op: "copy runtime binary from",
        path: "/proc/self/exe".into(),
        source: e,
    })?;
    out.seek(SeekFrom::Start(0)).ok();
    sys::seal_memfd(out.as_fd()).map_err(sys_err("seal memfd"))?;
    Ok(OwnedFd::from(out))
}
