//! The crate's only `unsafe`: extended attributes, which neither std nor
//! nix wraps. Paths are `/proc/self/fd/<dirfd>/<name>` built by callers so
//! that the directory part is an fd resolved without following symlinks.

use std::ffi::CStr;
use std::io;

/// `lsetxattr(2)`: set `name` on `path` without following a final symlink.
pub(crate) fn lsetxattr(path: &CStr, name: &CStr, value: &[u8]) -> io::Result<()> {
    // SAFETY: `path` and `name` are valid NUL-terminated strings that live for
    // the call; `value` points to `value.len()` readable bytes. The kernel
    // only reads these buffers and keeps no reference after returning.
    let rc = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `lgetxattr(2)`: the value of `name` on `path` (not following a final
/// symlink), or `None` when the attribute is absent or unsupported.
pub(crate) fn lgetxattr(path: &CStr, name: &CStr) -> io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 256];
    // SAFETY: `path` and `name` are valid NUL-terminated strings; `buf` is a
    // writable buffer of exactly `buf.len()` bytes owned by this frame, and
    // the kernel writes at most that many bytes into it.
    let rc = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if rc >= 0 {
        buf.truncate(rc as usize);
        return Ok(Some(buf));
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ENODATA) | Some(libc::ENOTSUP) => Ok(None),
        _ => Err(err),
    }
}

// The new mount API (Linux 5.2+; overlay's `lowerdir+` key needs 6.8+):
// one `fsconfig` call per lower layer, so a chain is not limited by the
// single page of option data `mount(2)` copies.
const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;

fn fd_result(rc: libc::c_long) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a non-negative return from fsopen/fsmount is a new file
    // descriptor that nothing else owns; wrapping it transfers ownership.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(rc as i32) })
}

/// `fsopen(fstype, FSOPEN_CLOEXEC)`: a filesystem context.
pub(crate) fn fsopen(fstype: &CStr) -> io::Result<std::os::fd::OwnedFd> {
    // SAFETY: `fstype` is a valid NUL-terminated string for the call; the
    // kernel only reads it.
    let rc = unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) };
    fd_result(rc)
}

/// `fsconfig(fd, FSCONFIG_SET_STRING, key, value, 0)`.
pub(crate) fn fsconfig_string(
    fd: std::os::fd::BorrowedFd<'_>,
    key: &CStr,
    value: &CStr,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: `fd` is a live fs context fd borrowed for the call; `key` and
    // `value` are valid NUL-terminated strings the kernel only reads.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fd.as_raw_fd(),
            FSCONFIG_SET_STRING,
            key.as_ptr(),
            value.as_ptr(),
            0,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `fsconfig(fd, FSCONFIG_SET_FLAG, key, NULL, 0)`.
pub(crate) fn fsconfig_flag(fd: std::os::fd::BorrowedFd<'_>, key: &CStr) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: `fd` is a live fs context fd borrowed for the call; `key` is a
    // valid NUL-terminated string the kernel only reads; value is NULL.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fd.as_raw_fd(),
            FSCONFIG_SET_FLAG,
            key.as_ptr(),
            std::ptr::null::<libc::c_char>(),
            0,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `fsconfig(FSCONFIG_CMD_CREATE)` then `fsmount`: a detached mount.
pub(crate) fn fsmount(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::AsRawFd;
    let null = std::ptr::null::<libc::c_char>();
    // SAFETY: `fd` is a live fs context fd; CMD_CREATE takes no key or
    // value, so null pointers are what the kernel expects.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fd.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            null,
            null,
            0,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a created fs context; flags and attributes are
    // plain integers.
    let rc = unsafe { libc::syscall(libc::SYS_fsmount, fd.as_raw_fd(), FSMOUNT_CLOEXEC, 0) };
    fd_result(rc)
}

/// `move_mount(mnt, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH)`.
pub(crate) fn move_mount(mnt: std::os::fd::BorrowedFd<'_>, target: &CStr) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: `mnt` is a live detached-mount fd; the empty string and
    // `target` are valid NUL-terminated strings the kernel only reads.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mnt.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
