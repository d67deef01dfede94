//! Rootless mode: a non-root user's `berth` runs in a user namespace of its
//! own (uid 0 inside is the user outside), with a mount namespace in which
//! it may mount overlay snapshots. A pause process holds both namespaces
//! open between commands, as podman's does; every `berth` of that user
//! joins them first thing, while it still has one thread (setns(2) into a
//! user namespace refuses a threaded process). The monitor, the runtime and
//! berth-netd it starts inherit them.
//!
//! The user's range in /etc/subuid and /etc/subgid, when it has one, maps
//! ids 1..N through newuidmap/newgidmap (Debian's `uidmap`); without it the
//! namespace maps only uid 0 (images whose files all belong to root work).
//!
//! Invariants: the pause process is found through `<runroot>/pause.pid`
//! under `<runroot>/pause.lock`, and only joined when it is still this
//! user's and still in a user namespace other than ours; it holds no file
//! of its caller open (stdio is /dev/null).

use std::fs;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};

const PAUSE_PID: &str = "pause.pid";
const PAUSE_LOCK: &str = "pause.lock";

/// Whether this process is in a user namespace other than the initial one.
pub fn in_user_namespace() -> bool {
    berth_storage::in_user_namespace()
}

/// Whether `berth` runs rootless: not root, or root only inside a user
/// namespace (after [`enter`]).
pub fn active() -> bool {
    !nix::unistd::geteuid().is_root() || in_user_namespace()
}

/// The user's runtime dir for berth when it is rootless: `$XDG_RUNTIME_DIR/
/// berth`, else `<tmp>/berth-run-<uid>` (made 0700 and checked to be the
/// user's, so another user cannot prepare it).
pub fn runtime_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d).join("berth"),
        None => std::env::temp_dir().join(format!("berth-run-{}", nix::unistd::getuid())),
    }
}

/// Join this user's rootless namespaces, making them (and the pause process
/// that holds them) when there are none yet. Nothing to do for root, or
/// when already inside a user namespace. Call it before any thread exists.
pub fn enter(runroot: &Path) -> Result<(), String> {
    // Read afresh: the cached answer of in_user_namespace() would be the
    // one from before the setns below.
    if nix::unistd::geteuid().is_root() || berth_storage::read_in_user_namespace() {
        return Ok(());
    }
    let uid = nix::unistd::getuid();
    make_private_dir(runroot)?;
    let lock_path = runroot.join(PAUSE_LOCK);
    let lock_file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("open {}: {e}", lock_path.display()))?;
    let _held = Flock::lock(lock_file, FlockArg::LockExclusive)
        .map_err(|(_, e)| format!("lock {}: {e}", lock_path.display()))?;
    let pid = match running_pause(runroot, uid) {
        Some(pid) => pid,
        None => start_pause(runroot)?,
    };
    join(pid)
}

/// Make `dir` (and its parents) owned by us and private; refuse one that
/// belongs to someone else.
fn make_private_dir(dir: &Path) -> Result<(), String> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("create {}: {e}", dir.display()))?;
    let m = fs::metadata(dir).map_err(|e| format!("stat {}: {e}", dir.display()))?;
    if m.uid() != nix::unistd::getuid().as_raw() {
        return Err(format!(
            "rootless run dir {} belongs to uid {}, not to this user",
            dir.display(),
            m.uid()
        ));
    }
    Ok(())
}

/// The recorded pause process, if it is alive, ours and in another user
/// namespace.
fn running_pause(runroot: &Path, uid: Uid) -> Option<i32> {
    let pid: i32 = fs::read_to_string(runroot.join(PAUSE_PID))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let owner = fs::metadata(&proc).ok()?.uid();
    let ours = fs::read_link("/proc/self/ns/user").ok()?;
    let theirs = fs::read_link(proc.join("ns/user")).ok()?;
    let comm = fs::read_to_string(proc.join("comm")).unwrap_or_default();
    (owner == uid.as_raw() && theirs != ours && comm.trim() == "berth-pause").then_some(pid)
}

/// Fork the pause process: it makes the user and mount namespaces, waits
/// for its id maps, then sleeps until killed.
fn start_pause(runroot: &Path) -> Result<i32, String> {
    let (ready_r, ready_w) = nix::unistd::pipe().map_err(|e| format!("pipe: {e}"))?;
    let (go_r, go_w) = nix::unistd::pipe().map_err(|e| format!("pipe: {e}"))?;
    match crate::sys::fork_early().map_err(|e| format!("fork the pause process: {e}"))? {
        None => {
            drop(ready_r);
            drop(go_w);
            let ok = unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS).is_ok();
            let mut w = fs::File::from(ready_w);
            let _ = w.write_all(if ok { b"1" } else { b"0" });
            drop(w);
            let mut b = [0u8; 1];
            let go = fs::File::from(go_r).read(&mut b).is_ok_and(|n| n == 1);
            if !ok || !go {
                std::process::exit(1);
            }
            pause_forever()
        }
        Some(pid) => {
            let child = nix::unistd::Pid::from_raw(pid);
            drop(ready_w);
            drop(go_r);
            let mut b = [0u8; 1];
            let made = fs::File::from(ready_r).read(&mut b).is_ok_and(|n| n == 1) && b[0] == b'1';
            let mapped = if made {
                write_maps(pid)
            } else {
                Err("the kernel refused a user namespace (user.max_user_namespaces, or unprivileged user namespaces disabled)".into())
            };
            if let Err(e) = mapped {
                let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                let _ = nix::sys::wait::waitpid(child, None);
                return Err(format!("rootless: {e}"));
            }
            let tmp = runroot.join(format!("{PAUSE_PID}.tmp"));
            fs::write(&tmp, pid.to_string())
                .and_then(|()| fs::rename(&tmp, runroot.join(PAUSE_PID)))
                .map_err(|e| format!("record the pause process: {e}"))?;
            fs::File::from(go_w)
                .write_all(b"1")
                .map_err(|e| format!("start the pause process: {e}"))?;
            Ok(pid)
        }
    }
}

/// The pause process's life: detached from the caller's session and files.
fn pause_forever() -> ! {
    let _ = nix::unistd::setsid();
    let _ = nix::sys::prctl::set_name(c"berth-pause");
    if let Ok(null) = nix::fcntl::open("/dev/null", OFlag::O_RDWR, Mode::empty()) {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stderr(&null);
    }
    let _ = crate::sys::close_from(3);
    let _ = std::env::set_current_dir("/");
    loop {
        nix::unistd::pause();
    }
}

/// uid/gid maps for `pid`: 0 is this user, 1..=N its subordinate range
/// (newuidmap/newgidmap) when it has one; else only 0.
fn write_maps(pid: i32) -> Result<(), String> {
    let uid = nix::unistd::getuid().as_raw();
    let gid = nix::unistd::getgid().as_raw();
    let name = nix::unistd::User::from_uid(Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name);
    let group = nix::unistd::Group::from_gid(Gid::from_raw(gid))
        .ok()
        .flatten()
        .map(|g| g.name);
    let subuid = sub_range(Path::new("/etc/subuid"), name.as_deref(), uid);
    let subgid = sub_range(
        Path::new("/etc/subgid"),
        group.as_deref().or(name.as_deref()),
        gid,
    );
    if let (Some((us, un)), Some((gs, gn))) = (subuid, subgid) {
        let helpers = [("newuidmap", uid, us, un), ("newgidmap", gid, gs, gn)];
        let ran = helpers.iter().all(|(tool, id, start, n)| {
            Command::new(tool)
                .args([pid.to_string(), "0".into(), id.to_string(), "1".into()])
                .args(["1".to_string(), start.to_string(), n.to_string()])
                .status()
                .is_ok_and(|s| s.success())
        });
        if ran {
            return Ok(());
        }
        log::warn!("newuidmap/newgidmap failed; mapping only uid 0");
    }
    let w = |file: &str, text: String| {
        let p = format!("/proc/{pid}/{file}");
        fs::write(&p, text).map_err(|e| format!("write {p}: {e}"))
    };
    w("setgroups", "deny".into())?;
    w("uid_map", format!("0 {uid} 1\n"))?;
    w("gid_map", format!("0 {gid} 1\n"))
}

/// The first `start:count` range of /etc/subuid (/etc/subgid) for `name`
/// or the numeric `id`.
fn sub_range(file: &Path, name: Option<&str>, id: u32) -> Option<(u32, u32)> {
    let text = fs::read_to_string(file).ok()?;
    let id = id.to_string();
    text.lines().find_map(|l| {
        let mut f = l.trim().split(':');
        let who = f.next()?;
        if Some(who) != name && who != id {
            return None;
        }
        let start = f.next()?.parse().ok()?;
        let count = f.next()?.parse().ok()?;
        (count > 0).then_some((start, count))
    })
}

/// setns into the pause process's user, then mount namespace.
fn join(pid: i32) -> Result<(), String> {
    let open = |ns: &str| {
        let p = format!("/proc/{pid}/ns/{ns}");
        fs::File::open(&p).map_err(|e| format!("open {p}: {e}"))
    };
    let user = open("user")?;
    let mnt = open("mnt")?;
    setns(user.as_fd(), CloneFlags::CLONE_NEWUSER)
        .map_err(|e| format!("rootless: join the user namespace of pid {pid}: {e}"))?;
    setns(mnt.as_fd(), CloneFlags::CLONE_NEWNS)
        .map_err(|e| format!("rootless: join the mount namespace of pid {pid}: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_range_matches_name_or_uid() {
        let d = tempfile::tempdir().expect("tmp");
        let f = d.path().join("subuid");
        fs::write(&f, "alice:100000:65536\n2001:300000:1000\nbob:200000:0\n").expect("write");
        assert_eq!(sub_range(&f, Some("alice"), 1000), Some((100000, 65536)));
        assert_eq!(sub_range(&f, Some("carol"), 2001), Some((300000, 1000)));
        assert_eq!(
            sub_range(&f, Some("bob"), 1002),
            None,
            "an empty range is none"
        );
        assert_eq!(sub_range(&f, None, 4242), None);
    }
}
