//! Per-container state under `--root`: `<root>/<id>/state.json`, written
//! atomically (temp file, rename) under an exclusive `flock`.
//!
//! The recorded status is a hint; the live status is derived every time from
//! the init process (pid *and* start time, against pid reuse), the exec fifo
//! (present until `start`) and the freezer.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::error::{io_err, Error, Result};

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";
const LOCK_FILE: &str = ".lock";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the runtime keeps about a container between invocations.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    pub pid: i32,
    pub bundle: PathBuf,
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
    /// Start time of the init process in clock ticks since boot
    /// (`/proc/<pid>/stat` field 22): tells a live init from a recycled pid.
    #[serde(rename = "initStartTime")]
    pub init_start_time: u64,
    /// RFC 3339 creation time.
    pub created: String,
    /// The container's configuration as it was at create time: hooks,
    /// namespaces and cgroups for the later commands, even if the bundle
    /// changes or disappears.
    pub config: oci_spec::runtime::Spec,
    /// Resolved cgroup location (see `cgroups`), if any.
    #[serde(
        default,
        rename = "cgroupPath",
        skip_serializing_if = "Option::is_none"
    )]
    pub cgroup_path: Option<String>,
    #[serde(default)]
    pub rootless: bool,
    /// Exit status recorded by `run` in the foreground or by `delete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_status: Option<i32>,
}

/// The OCI state as `state` prints it.
#[derive(Serialize)]
pub struct OciState<'a> {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'a str,
    pub id: &'a str,
    pub status: Status,
    pub pid: i32,
    pub bundle: &'a Path,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: &'a HashMap<String, String>,
    /// runc prints these two as well; callers (containerd, podman) read them.
    #[serde(rename = "rootfs")]
    pub rootfs: PathBuf,
    pub created: &'a str,
    pub owner: &'static str,
}

impl State {
    pub fn oci(&self) -> OciState<'_> {
        let rootfs = self
            .config
            .root()
            .as_ref()
            .map(|r| {
                let p = r.path();
                if p.is_absolute() {
                    p.clone()
                } else {
                    self.bundle.join(p)
                }
            })
            .unwrap_or_default();
        OciState {
            oci_version: &self.oci_version,
            id: &self.id,
            status: self.status,
            pid: if self.status == Status::Stopped {
                0
            } else {
                self.pid
            },
            bundle: &self.bundle,
            annotations: &self.annotations,
            rootfs,
            created: &self.created,
            owner: "",
        }
    }
}

/// Validate a container id: it becomes a directory name, so no path
/// separators, no `.`/`..`, nothing exotic.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.+-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidId(id.to_string()))
    }
}

/// The state directory of the runtime (`--root`).
#[derive(Clone, Debug)]
pub struct Root {
    pub dir: PathBuf,
}

/// A held exclusive lock on one container's state.
pub struct Locked {
    _lock: Flock<File>,
    pub dir: PathBuf,
}

impl Root {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Root { dir: dir.into() }
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Compiled seccomp programs (see `seccomp::program`); its name starts
    /// with a dot, which no container id may.
    pub fn seccomp_cache(&self) -> PathBuf {
        self.dir.join(".seccomp-cache")
    }

    fn ensure(&self) -> Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|source| Error::StateDir {
                path: self.dir.clone(),
                source,
            })
    }

    /// Make the state directory of a new container and lock it. Fails if a
    /// container with this id exists.
    pub fn create_dir(&self, id: &str) -> Result<Locked> {
        validate_id(id)?;
        self.ensure()?;
        let dir = self.container_dir(id);
        match fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::AlreadyExists(id.to_string()))
            }
            Err(source) => return Err(Error::StateDir { path: dir, source }),
        }
        lock_dir(&dir)
    }

    /// Lock an existing container's state directory.
    pub fn lock(&self, id: &str) -> Result<Locked> {
        validate_id(id)?;
        let dir = self.container_dir(id);
        if !dir.is_dir() {
            return Err(Error::NotFound(id.to_string()));
        }
        let l = lock_dir(&dir)?;
        // It may have been deleted while we waited for the lock.
        if !dir.is_dir() {
            return Err(Error::NotFound(id.to_string()));
        }
        Ok(l)
    }

    /// Load a container's state and refresh its status from the system.
    pub fn load(&self, id: &str) -> Result<State> {
        validate_id(id)?;
        let dir = self.container_dir(id);
        let path = dir.join(STATE_FILE);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(id.to_string()))
            }
            Err(e) => return Err(io_err("read", path)(e)),
        };
        let mut st: State =
            serde_json::from_slice(&data).map_err(|source| Error::StateCorrupt {
                id: id.to_string(),
                source,
            })?;
        st.status = live_status(&dir, &st);
        Ok(st)
    }

    /// Ids of all containers with a state directory.
    pub fn ids(&self) -> Result<Vec<String>> {
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(Error::StateDir {
                    path: self.dir.clone(),
                    source,
                })
            }
        };
        let mut ids: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| validate_id(n).is_ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

fn lock_dir(dir: &Path) -> Result<Locked> {
    let path = dir.join(LOCK_FILE);
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(&path)
        .map_err(io_err("open", &path))?;
    let lock = Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| Error::Path {
        op: "flock",
        path: path.clone(),
        source: e,
    })?;
    Ok(Locked {
        _lock: lock,
        dir: dir.to_path_buf(),
    })
}

impl Locked {
    /// Write the state atomically: temp file, fsync, rename, fsync dir.
    pub fn save(&self, st: &State) -> Result<()> {
        let data = serde_json::to_vec(st).expect("state serializes");
        write_atomic(&self.dir.join(STATE_FILE), &data)
    }

    /// Remove the whole state directory (the lock goes with it).
    pub fn remove(self) -> Result<()> {
        fs::remove_dir_all(&self.dir).map_err(io_err("remove", &self.dir))
    }
}

/// Replace `path` atomically (temp file in the same directory, rename), so a
/// reader never sees a partial file even if the runtime is killed midway.
///
/// No fsync: runtime state describes live processes under `/run` (tmpfs on
/// a normal host) and is meaningless after a power loss, when every process
/// it describes is gone; a state file lost or emptied by one is handled by
/// `delete --force`. runc and crun do not sync it either, and on a
/// disk-backed /run two syncs per lifecycle step would dominate its cost.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(&tmp)
        .map_err(io_err("create", &tmp))?;
    f.write_all(data).map_err(io_err("write", &tmp))?;
    fs::rename(&tmp, path).map_err(io_err("rename", path))?;
    Ok(())
}

/// Start time (field 22 of /proc/<pid>/stat) of a live, non-zombie process.
pub fn process_start_time(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may contain spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?;
    if *state == "Z" || *state == "X" {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Whether the recorded init process is still the same live process.
pub fn init_alive(st: &State) -> bool {
    process_start_time(st.pid) == Some(st.init_start_time)
}

fn live_status(dir: &Path, st: &State) -> Status {
    if st.pid <= 0 {
        return Status::Creating;
    }
    if !init_alive(st) {
        return Status::Stopped;
    }
    if dir.join(EXEC_FIFO).exists() {
        return Status::Created;
    }
    if crate::cgroups::is_frozen(st) {
        return Status::Paused;
    }
    Status::Running
}

/// RFC 3339 UTC timestamp with nanoseconds, from the system clock.
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_validated() {
        for ok in ["a", "abc-1.2_x+y", &"x".repeat(1024)] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b",
            "a b",
            "../x",
            &"x".repeat(1025),
        ] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(rfc3339(1_795_000_000, 0), "2026-11-18T11:06:40.000000000Z");
    }

    #[test]
    fn start_time_of_self_is_known_and_of_nonsense_is_not() {
        assert!(process_start_time(std::process::id() as i32).is_some());
        assert!(process_start_time(0).is_none());
        assert!(process_start_time(-5).is_none());
    }
}
