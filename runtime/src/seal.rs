//! Run from a sealed, in-memory copy of the runtime binary (CVE-2019-5736).
//!
//! A process in the container can reach the runtime's executable through
//! `/proc/<pid>/exe` while the runtime works inside the container's
//! namespaces. If that executable is the host's file, it can be reopened for
//! writing once the runtime exits and replaced. Before `create`, `run` and
//! `exec` enter any namespace, the runtime copies itself into a memfd, seals
//! it against every change, and re-executes from it: `/proc/<pid>/exe` then
//! names an immutable anonymous file.

use std::ffi::CString;
use std::io::{Seek, SeekFrom};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;

use nix::sys::memfd::{memfd_create, MFdFlags};

use crate::error::{sys as sys_err, Error, Result};
use crate::sys;

const REQUIRED: i32 = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// Whether this process already runs from a sealed copy.
pub fn is_sealed() -> bool {
    match std::fs::File::open("/proc/self/exe") {
        Ok(f) => sys::memfd_seals(f.as_fd()) & REQUIRED == REQUIRED,
        Err(_) => false,
    }
}

/// Re-execute from a sealed copy unless already running from one. Returns
/// only if already sealed (or on error).
pub fn ensure_sealed() -> Result<()> {
    if is_sealed() {
        return Ok(());
    }
    let mut exe = std::fs::File::open("/proc/self/exe")
        .map_err(|e| Error::Io { op: "open", path: "/proc/self/exe".into(), source: e })?;
    let memfd = memfd_create("berth-runtime", MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)
        .map_err(sys_err("memfd_create"))?;
    let mut out = std::fs::File::from(memfd);
    std::io::copy(&mut exe, &mut out)
        .map_err(|e| Error::Io { op: "copy runtime binary from", path: "/proc/self/exe".into(), source: e })?;
    out.seek(SeekFrom::Start(0)).ok();
    sys::seal_memfd(out.as_fd()).map_err(sys_err("seal memfd"))?;
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
    let e = nix::unistd::fexecve(out.as_fd(), &args, &env).unwrap_err();
    Err(Error::Sys { op: "re-exec sealed runtime".into(), source: e })
}
