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

/// What `exit.json` records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exit {
    pub code: i32,
    pub finished_at: String,
    /// Why the exit was recorded by someone other than the monitor
    /// (`system check --repair`).
    pub error: Option<String>,
}

/// The recorded exit.
pub fn read_exit(run_dir: &Path) -> Option<Exit> {
    let v: serde_json::Value =
        serde_json::from_slice(&fs::read(run_dir.join(EXIT_FILE)).ok()?).ok()?;
    Some(Exit {
        code: v["exit_code"].as_i64()? as i32,
        finished_at: v["finished_at"].as_str().unwrap_or("").to_string(),
        error: v["error"].as_str().map(str::to_string),
    })
}

/// Record an exit as the monitor does (temp file, fsync, rename).
pub fn write_exit(run_dir: &Path, exit: &Exit) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut v = serde_json::json!({"exit_code": exit.code, "finished_at": exit.finished_at});
    if let Some(e) = &exit.error {
        v["error"] = serde_json::json!(e);
    }
    let tmp = run_dir.join(".exit.json.check");
    let mut f = fs::File::create(&tmp)?;
    f.write_all(v.to_string().as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, run_dir.join(EXIT_FILE))
}

/// Why a started container with neither a live monitor nor an exit file
/// shows as exited.
pub const MONITOR_DIED: &str = "monitor exited without recording the container's exit";

pub fn probe(run_dir: &Path, started: bool) -> State {
    let mut st = State {
        status: Status::Created,
        pid: None,
        exit_code: None,
        finished_at: None,
        error: None,
    };
    let restarting = run_dir.join(RESTARTING_FILE).exists();
    if let Some(x) = read_exit(run_dir) {
        st.status = if restarting && monitor_alive(run_dir) {
            Status::Restarting
        } else {
            Status::Exited
        };
        st.exit_code = Some(x.code);
        st.finished_at = Some(x.finished_at);
        st.error = x.error;
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
        if let Some(x) = read_exit(run_dir) {
            st.exit_code = Some(x.code);
            st.finished_at = Some(x.finished_at);
            st.error = x.error;
        } else {
            st.exit_code = Some(255);
            st.error = Some(MONITOR_DIED.into());
        }
        st.status = Status::Exited;
    }
    st
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exit_recorded_with_a_reason_shows_it() {
        let d = tempfile::tempdir().unwrap();
        let st = probe(d.path(), true);
        assert_eq!((st.status, st.exit_code), (Status::Exited, Some(255)));
        assert_eq!(st.error.as_deref(), Some(MONITOR_DIED));
        let x = Exit {
            code: 255,
            finished_at: "2026-01-01T00:00:00Z".into(),
            error: Some("why".into()),
        };
        write_exit(d.path(), &x).unwrap();
        assert_eq!(read_exit(d.path()), Some(x));
        let st = probe(d.path(), true);
        assert_eq!(st.error.as_deref(), Some("why"));
        assert_eq!(st.finished_at.as_deref(), Some("2026-01-01T00:00:00Z"));
        std::fs::write(
            d.path().join(EXIT_FILE),
            r#"{"exit_code":3,"finished_at":"t"}"#,
        )
        .unwrap();
        assert_eq!(
            probe(d.path(), true).error,
            None,
            "the monitor's own record"
        );
    }
}
