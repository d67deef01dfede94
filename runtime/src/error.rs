//! The runtime library's error type: one variant per failed operation, with
//! the object it failed on and the underlying cause as `#[source]`.

use std::io;
use std::path::PathBuf;

use nix::errno::Errno;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("container id {0:?} is invalid: use 1-1024 characters of [A-Za-z0-9_.+-], not starting with '.'")]
    InvalidId(String),
    #[error("container \"{0}\" does not exist")]
    NotFound(String),
    #[error("container with id \"{0}\" already exists")]
    AlreadyExists(String),
    #[error("container \"{id}\" is {status}, not {expected}")]
    BadStatus {
        id: String,
        status: String,
        expected: &'static str,
    },
    #[error("container not running")]
    NotRunning,
    #[error("cannot delete container \"{0}\" that is not stopped: {1}")]
    DeleteNotStopped(String, String),
    #[error("bundle {path}")]
    Bundle {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("config {path}: {msg}")]
    ConfigParse { path: PathBuf, msg: String },
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    #[error("state directory {path}")]
    StateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("state of container \"{id}\" is corrupt")]
    StateCorrupt {
        id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{op}")]
    Sys {
        op: String,
        #[source]
        source: Errno,
    },
    #[error("{op} {path}")]
    Path {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Init(String),
    #[error("{kind} hook {path}: {msg}")]
    Hook {
        kind: &'static str,
        path: String,
        msg: String,
    },
    #[error("console socket {path}")]
    ConsoleSocket {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cgroup {path}: {msg}")]
    Cgroup { path: String, msg: String },
    #[error("seccomp: {0}")]
    Seccomp(String),
    #[error("unknown signal {0:?}")]
    BadSignal(String),
    #[error("process spec {path}: {msg}")]
    ProcessSpec { path: PathBuf, msg: String },
    #[error("sync with container process: {0}")]
    Sync(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shorthand for errors of a system call on an object.
pub fn sys(op: impl Into<String>) -> impl FnOnce(Errno) -> Error {
    let op = op.into();
    move |source| Error::Sys { op, source }
}

/// Shorthand for errors of a system call on a path.
pub fn path_err(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(Errno) -> Error {
    let path = path.into();
    move |source| Error::Path { op, path, source }
}

/// Shorthand for io errors on a path.
pub fn io_err(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { op, path, source }
}

/// The error and all its causes, `: `-separated (for messages that cross a
/// process boundary as text).
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
