//! A container's live state, derived from its run dir (never stored):
//! `exit.json` → exited (restarting while the monitor lives and the
//! `restarting` marker exists); the monitor's lock held → running (paused while
//! the `paused` marker exists); a started
//! container whose monitor is gone without an exit file → exited with a
//! reason; otherwise created.

use std::fs;
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

use crate::layout::{EXIT_FILE, MONITOR_LOCK, PAUSED_FILE, PID_FILE, RESTARTING_FILE};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Paused,
    /// Exited; its monitor will start it again (`--restart`).
    Restarting,
    Exited,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    pub status: Status,
    pub pid: Option<i32>,
    pub exit_code: Option<i32>,
    pub finished_at: Option<String>,
    /// Why the state is what it is, when that is unusual.
    pub error: Option<String>,
}

impl State {
    /// Whether its process is alive (running or paused).
    pub fn is_running(&self) -> bool {
        matches!(self.status, Status::Running | Status::Paused)
    }
}

/// Whether the monitor owning `run_dir` is alive (holds its lock).
pub fn monitor_alive(run_dir: &Path) -> bool {
    match fs::File::open(run_dir.join(MONITOR_LOCK)) {
        Ok(f) => Flock::lock(f, FlockArg::LockSharedNonblock).is_err(),
        Err(_) => false,
    }
}

/// The recorded exit: (code, finished_at).
pub fn read_exit(run_dir: &Path) -> Option<(i32, String)> {
    let v: serde_json::Value =
        serde_json::from_slice(&fs::read(run_dir.join(EXIT_FILE)).ok()?).ok()?;
    Some((
        v["exit_code"].as_i64()? as i32,
        v["finished_at"].as_str().unwrap_or("").to_string(),
    ))
}

pub fn probe(run_dir: &Path, started: bool) -> State {
    let mut st = State {
        status: Status::Created,
        pid: None,
        exit_code: None,
        finished_at: None,
        error: None,
    };
    let restarting = run_dir.join(RESTARTING_FILE).exists();
    if let Some((code, at)) = read_exit(run_dir) {
        st.status = if restarting && monitor_alive(run_dir) {
            Status::Restarting
        } else {
            Status::Exited
        };
        st.exit_code = Some(code);
        st.finished_at = Some(at);
    } else if monitor_alive(run_dir) {
        st.status = if run_dir.join(PAUSED_FILE).exists() {
            Status::Paused
        } else {
            Status::Running
        };
        st.pid = fs::read_to_string(run_dir.join(PID_FILE))
            .ok()
            .and_then(|s| s.trim().parse().ok());
    } else if started {
        // Check again: the monitor may have written the exit file and gone
        // between the two looks.
        if let Some((code, at)) = read_exit(run_dir) {
            st.exit_code = Some(code);
            st.finished_at = Some(at);
        } else {
            st.exit_code = Some(255);
            st.error = Some("monitor exited without recording the container's exit".into());
        }
        st.status = Status::Exited;
    }
    st
}
