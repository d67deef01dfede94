//! Helpers shared by the swap-in tests: finding programs and the
//! berth-runtime binary, stopping a daemon the test started (by its PID),
//! and reaping the shims it left to us as their subreaper.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Output};
use std::time::{Duration, Instant};

pub fn which(bin: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(bin))
        .find(|p| p.is_file())
}

/// berth-runtime: `$BERTH_RUNTIME` or the workspace's debug build; a named
/// skip for `test` when neither exists.
pub fn berth_runtime(test: &str) -> Option<PathBuf> {
    let p = std::env::var_os("BERTH_RUNTIME")
        .map(PathBuf::from)
        .unwrap_or_else(|| berth_testkit::workspace_root().join("target/debug/berth-runtime"));
    if p.is_file() {
        return Some(p);
    }
    berth_testkit::skip(
        test,
        "berth-runtime not built: set $BERTH_RUNTIME or build the workspace",
    );
    None
}

/// Stop a daemon the test started: SIGTERM to its PID, SIGKILL after
/// `grace`, then wait for it.
pub fn stop(daemon: &mut Child, grace: Duration) {
    let pid = nix::unistd::Pid::from_raw(daemon.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let end = Instant::now() + grace;
    while daemon.try_wait().ok().flatten().is_none() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = daemon.kill();
    let _ = daemon.wait();
}

/// Become the reaper of orphans the engine's shims leave behind (this
/// host's pid 1 does not reap them).
pub fn become_subreaper() {
    nix::sys::prctl::set_child_subreaper(true).expect("subreaper");
}

/// Reap exited orphans for up to `within`.
pub fn reap_orphans(within: Duration) {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let end = Instant::now() + within;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) if Instant::now() < end => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Require success of an engine client call; stdout on success, a panic
/// with its stderr and the tail of the daemon's log otherwise.
pub fn checked(what: &str, o: Output, log: &str) -> String {
    assert!(
        o.status.success(),
        "{what}: {}\n{}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr),
        log.lines().rev().take(5).collect::<Vec<_>>().join("\n")
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Remove an engine's parent cgroup (`/sys/fs/cgroup/<ctrl>/<name>`) from
/// every hierarchy when it is empty; a cgroup still in use stays (rmdir
/// refuses it).
pub fn remove_empty_parent_cgroup(name: &str) {
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        for h in rd.flatten() {
            let _ = std::fs::remove_dir(h.path().join(name));
        }
    }
}

/// The longest an engine client call (ctr, docker) may take before it is
/// killed and counts as hung.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(90);
