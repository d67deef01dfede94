//! Every `unsafe` call of the runtime lives here, behind safe wrappers whose
//! documentation states what the caller must uphold.

use std::ffi::CStr;
use std::io::{IoSlice, IoSliceMut};

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::unistd::{ForkResult, Pid};

/// Outcome of [`fork`].
pub enum Forked {
    Parent(Pid),
    Child,
}

/// fork(2).
///
/// The runtime never starts threads before it forks (no async runtime, no
/// helper threads), so the child is a faithful single-threaded copy and may
/// allocate, lock and run arbitrary code.
pub fn fork() -> nix::Result<Forked> {
    debug_assert!(is_single_threaded(), "fork with more than one thread");
    // SAFETY: fork is only unsound when other threads hold locks the child
    // later needs. berth-runtime is single-threaded at every call site: it
    // never spawns threads (asserted above in debug builds).
    match unsafe { nix::unistd::fork() }? {
        ForkResult::Parent { child } => Ok(Forked::Parent(child)),
        ForkResult::Child => Ok(Forked::Child),
    }
}

fn is_single_threaded() -> bool {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count() == 1)
        .unwrap_or(true)
}

/// Leave the child immediately with `code`, without running atexit handlers
/// or flushing stdio buffers that were copied from the parent.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions; it never returns.
    unsafe { libc::_exit(code) }
}

/// close_range(2): close every descriptor in `first..=u32::MAX`, or mark them
/// close-on-exec when `cloexec_only`.
pub fn close_range_from(first: u32, cloexec_only: bool) -> nix::Result<()> {
    let flags = if cloexec_only {
        libc::CLOSE_RANGE_CLOEXEC
    } else {
        0
    };
    // Callers are about to exec and use no descriptor above `first` again.
    // SAFETY: close_range only touches this process's descriptor table, and
    // nothing still in use is in the range (see above); CLOEXEC frees none.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, flags) };
    Errno::result(r).map(drop)
}

/// Set the kernel's `F_SEAL_*` seals on a memfd so its contents can never
/// change again (CVE-2019-5736).
pub fn seal_memfd(fd: BorrowedFd<'_>) -> nix::Result<()> {
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: F_ADD_SEALS takes an int argument and only reads it; `fd` is a
    // valid descriptor for the duration of the borrow.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) };
    Errno::result(r).map(drop)
}

/// The seals currently set on `fd` (0 for files that cannot be sealed).
pub fn memfd_seals(fd: BorrowedFd<'_>) -> i32 {
    // SAFETY: F_GET_SEALS takes no argument; `fd` is valid for the borrow.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
    r.max(0)
}

/// TIOCGPTPEER: open the peer (slave) side of the pty master `master`
/// without going through a path (so a hostile /dev/pts cannot redirect it).
pub fn open_pty_peer(master: BorrowedFd<'_>) -> nix::Result<OwnedFd> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes the open flags by value and returns a new
    // descriptor; `master` is a valid pty master for the duration of the call.
    let fd = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) };
    let fd = Errno::result(fd)?;
    // SAFETY: on success the ioctl returned a fresh descriptor that nothing
    // else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Unlock the pty master (TIOCSPTLCK with 0).
pub fn unlock_pty(master: BorrowedFd<'_>) -> nix::Result<()> {
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int through the pointer, which points at a
    // live local; `master` is valid for the borrow.
    let r = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) };
    Errno::result(r).map(drop)
}

/// Set the window size of a terminal.
pub fn set_winsize(tty: BorrowedFd<'_>, rows: u16, cols: u16) -> nix::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a `winsize` through the pointer, which points
    // at a live local of that exact type; `tty` is valid for the borrow.
    let r = unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    Errno::result(r).map(drop)
}

/// Read the window size of a terminal.
pub fn get_winsize(tty: BorrowedFd<'_>) -> nix::Result<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a `winsize` through the pointer, which points
    // at a live, writable local of that exact type.
    let r = unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    Errno::result(r).map(|_| (ws.ws_row, ws.ws_col))
}

/// Make `tty` the controlling terminal of this (session leader) process.
pub fn set_controlling_tty(tty: BorrowedFd<'_>) -> nix::Result<()> {
    // SAFETY: TIOCSCTTY takes an int by value (0: do not steal); `tty` is
    // valid for the borrow.
    let r = unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSCTTY, 0) };
    Errno::result(r).map(drop)
}

/// setdomainname(2).
pub fn set_domainname(name: &str) -> nix::Result<()> {
    // SAFETY: the pointer and length describe the bytes of `name`, which
    // outlive the call; the kernel copies them.
    let r = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    Errno::result(r).map(drop)
}

/// execve(2) with already-built C strings. Returns only on failure.
pub fn execve(path: &CStr, argv: &[&CStr], envp: &[&CStr]) -> Errno {
    let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut envp_p: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).collect();
    envp_p.push(std::ptr::null());
    // SAFETY: both arrays are NULL-terminated and point at C strings borrowed
    // from the caller, alive for the whole call; execve only reads them.
    unsafe { libc::execve(path.as_ptr(), argv_p.as_ptr(), envp_p.as_ptr()) };
    Errno::last()
}

/// The raw value of a descriptor that must survive exec: clear its
/// close-on-exec flag.
pub fn clear_cloexec(fd: RawFd) -> nix::Result<()> {
    // SAFETY: F_GETFD/F_SETFD only change the flag word of the descriptor;
    // an invalid `fd` makes the call fail with EBADF, nothing worse.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    let flags = Errno::result(flags)?;
    // SAFETY: as above.
    let r = unsafe { libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) };
    Errno::result(r).map(drop)
}

/// dup3(2) of `fd` onto `target` without close-on-exec (for stdio set-up).
pub fn dup_onto(fd: RawFd, target: RawFd) -> nix::Result<()> {
    if fd == target {
        return clear_cloexec(fd);
    }
    // SAFETY: dup3 atomically replaces `target`; the callers only use it for
    // the stdio slots 0..=2, which this process owns and which are about to
    // be replaced on purpose.
    let r = unsafe { libc::dup3(fd, target, 0) };
    Errno::result(r).map(drop)
}

/// What Rust's own start-up does that the runtime needs, for its C `main`:
/// stdin, stdout and stderr open (on /dev/null when the caller closed one,
/// so no file the runtime opens lands on them), and SIGPIPE ignored.
pub fn start_up() {
    for fd in 0..3 {
        // SAFETY: F_GETFD on a plain integer only asks whether it is open.
        let r = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if r == -1 && Errno::last() == Errno::EBADF {
            // The lowest free descriptor: `fd` itself. Kept open for good.
            if let Ok(null) = nix::fcntl::open(
                "/dev/null",
                nix::fcntl::OFlag::O_RDWR,
                nix::sys::stat::Mode::empty(),
            ) {
                std::mem::forget(null);
            }
        }
    }
    // SAFETY: SIG_IGN installs no handler code; the runtime has one thread.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// Reset every signal disposition to default and unblock all signals, so the
/// container process does not inherit the runtime's (Rust ignores SIGPIPE).
pub fn reset_signals() {
    for sig in 1..libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: installing SIG_DFL for a valid signal number has no memory
        // effects; errors (invalid numbers in the reserved range) are ignored.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
}

/// Send one descriptor over a unix socket (the console socket protocol:
/// the payload is the name of the terminal, as runc sends it).
pub fn send_fd(sock: RawFd, fd: RawFd, name: &str) -> nix::Result<()> {
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(
        sock,
        &[IoSlice::new(name.as_bytes())],
        &cmsg,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )?;
    Ok(())
}

/// Receive one descriptor sent with [`send_fd`].
pub fn recv_fd(sock: RawFd) -> nix::Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: SCM_RIGHTS hands us a new descriptor that nothing
                // else in this process owns.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(nix::errno::Errno::EBADMSG)
}

/// Join a new session keyring named `name` (as runc does, so containers do
/// not share the host's session keyring). Failures are ignored: kernels
/// without keyrings, or a user namespace that may not create one.
pub fn join_session_keyring(name: &str) {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    let Ok(c) = std::ffi::CString::new(name) else {
        return;
    };
    // SAFETY: keyctl(JOIN_SESSION_KEYRING) reads one NUL-terminated string
    // through the pointer, which stays alive for the call.
    unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, c.as_ptr()) };
}

/// Mount an overlayfs whose layers are `lower` and an empty detached tmpfs
/// (without an upper layer overlayfs needs two lower ones, and they may not
/// overlap), read-only and *detached*: attached to no mount tree, so nothing
/// can reach it to remount it, and gone with its last reference. Returns the
/// fd of its root.
pub fn detached_ro_overlay(lower: &std::path::Path) -> nix::Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let empty = detached_mount(
        c"tmpfs",
        &[(c"size", c"4k"), (c"mode", c"0555")],
        MOUNT_ATTR_RDONLY,
    )?;
    let empty_path = std::ffi::CString::new(format!("/proc/self/fd/{}", empty.as_raw_fd()))
        .map_err(|_| Errno::EINVAL)?;
    let path = std::ffi::CString::new(lower.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    let opts = [
        (c"lowerdir+", path.as_c_str()),
        (c"lowerdir+", empty_path.as_c_str()),
    ];
    detached_mount(
        c"overlay",
        &opts,
        MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
    )
}

const MOUNT_ATTR_RDONLY: libc::c_uint = 0x1;
const MOUNT_ATTR_NOSUID: libc::c_uint = 0x2;
const MOUNT_ATTR_NODEV: libc::c_uint = 0x4;

/// fsopen + fsconfig(string options) + fsmount: a new, detached mount.
fn detached_mount(
    fstype: &CStr,
    opts: &[(&CStr, &CStr)],
    attrs: libc::c_uint,
) -> nix::Result<OwnedFd> {
    const FSOPEN_CLOEXEC: libc::c_uint = 1;
    const FSCONFIG_SET_STRING: libc::c_uint = 1;
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    const FSMOUNT_CLOEXEC: libc::c_uint = 1;
    // SAFETY: fsopen reads the NUL-terminated name; it returns a new fd.
    let fsfd =
        Errno::result(unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) })?;
    // SAFETY: fsopen succeeded: `fsfd` is a fresh descriptor we now own.
    let fsfd = unsafe { OwnedFd::from_raw_fd(fsfd as RawFd) };
    for (key, value) in opts {
        // SAFETY: key and value are NUL-terminated strings alive for the
        // call; the aux argument is unused for FSCONFIG_SET_STRING.
        let r = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fsfd.as_raw_fd(),
                FSCONFIG_SET_STRING,
                key.as_ptr(),
                value.as_ptr(),
                0,
            )
        };
        Errno::result(r)?;
    }
    // SAFETY: CMD_CREATE takes no key or value (NULL) and no aux.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fsfd.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    Errno::result(r)?;
    // SAFETY: fsmount takes the configured context fd and flag words by
    // value and returns a new fd.
    let mfd = Errno::result(unsafe {
        libc::syscall(libc::SYS_fsmount, fsfd.as_raw_fd(), FSMOUNT_CLOEXEC, attrs)
    })?;
    // SAFETY: fsmount succeeded: `mfd` is a fresh descriptor we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(mfd as RawFd) })
}

/// seccomp(SECCOMP_SET_MODE_FILTER, flags, prog) with `bpf` holding whole
/// `struct sock_filter` instructions. With SECCOMP_FILTER_FLAG_NEW_LISTENER
/// in `flags`, the notification descriptor the kernel returns.
pub fn seccomp_set_filter(flags: libc::c_uint, bpf: &[u8]) -> std::io::Result<Option<OwnedFd>> {
    const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;
    const SECCOMP_FILTER_FLAG_NEW_LISTENER: libc::c_uint = 1 << 3;
    let insn = std::mem::size_of::<libc::sock_filter>();
    if bpf.is_empty() || bpf.len() % insn != 0 || bpf.len() / insn > u16::MAX as usize {
        return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
    }
    let prog = libc::sock_fprog {
        len: (bpf.len() / insn) as libc::c_ushort,
        filter: bpf.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` describes `len` whole instructions inside `bpf`, which
    // outlives the call; the kernel only reads (and copies) the program.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const libc::sock_fprog,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if flags & SECCOMP_FILTER_FLAG_NEW_LISTENER == 0 {
        return Ok(None);
    }
    // SAFETY: with NEW_LISTENER the kernel returned a new descriptor (close-
    // on-exec) that nothing else owns.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(r as i32) }))
}

/// Whether this process runs in a user namespace other than the initial
/// one: its uid map is not the identity over all 2^32-1 ids. A runtime
/// started there (by a rootless engine) is rootless even as uid 0: it may
/// not make device nodes, cgroups or mounts the namespace does not own.
pub fn in_user_namespace() -> bool {
    static IN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *IN.get_or_init(|| {
        std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|m| {
            let f: Vec<&str> = m.split_whitespace().collect();
            f != ["0", "0", "4294967295"]
        })
    })
}
