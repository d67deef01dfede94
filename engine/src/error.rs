//! The engine's errors: one variant per failed operation.

use std::path::PathBuf;

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no such image: {reference}")]
    ImageNotFound { reference: String },
    #[error("no such container: {0}")]
    NoSuchContainer(String),
    #[error("container name {0:?} is already in use")]
    NameInUse(String),
    #[error("invalid container name {0:?}: use [a-zA-Z0-9][a-zA-Z0-9_.-]*")]
    InvalidName(String),
    #[error("invalid option {option}: {reason}")]
    InvalidOption { option: String, reason: String },
    #[error("no command specified")]
    NoCommand,
    #[error("unable to find user {user}: no matching entries in passwd file")]
    UnknownUser { user: String },
    #[error("container {0} is running: stop it first or use --force")]
    Running(String),
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("container {0} is paused (unpause it first)")]
    Paused(String),
    #[error("container {0} is not paused")]
    NotPaused(String),
    #[error("cannot find the OCI runtime {name:?} (next to berth or on PATH)")]
    RuntimeNotFound { name: String },
    #[error("--init: {reason}")]
    Init { reason: String },
    #[error("cannot find berth-monitor (set BERTH_MONITOR, or install it next to berth)")]
    MonitorNotFound,
    #[error("no such volume: {0}")]
    NoSuchVolume(String),
    #[error("volume {0} already exists")]
    VolumeExists(String),
    #[error("volume {name} is in use by container(s) {containers}")]
    VolumeInUse { name: String, containers: String },
    #[error("no such network: {0}")]
    NoSuchNetwork(String),
    #[error("network {0} already exists")]
    NetworkExists(String),
    #[error("network {name} is in use by container(s) {containers}")]
    NetworkInUse { name: String, containers: String },
    #[error("cannot find berth-netd (install it next to berth or on PATH)")]
    NetdNotFound,
    #[error("container {container} is already connected to network {network}")]
    AlreadyConnected { container: String, network: String },
    #[error("container {container} is not connected to network {network}")]
    NotConnected { container: String, network: String },
    #[error("container {container} has network mode {mode}: it cannot join or leave networks")]
    FixedNetworkMode { container: String, mode: String },
    #[error("berth-netd {op}: {message}")]
    Netd {
        op: &'static str,
        /// netd's code (see `berth_netd::wire::ErrorCode`).
        code: i32,
        message: String,
    },
    #[error("container database {path}")]
    Db {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("image store")]
    Storage(#[source] berth_storage::StorageError),
    #[error("{what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("run {program}")]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The runtime refused to create or start the container; `code` is
    /// docker's: 127 command not found, 126 not executable, else 125.
    #[error("{message}")]
    Start { message: String, code: u8 },
    #[error("runtime {op} {id}: {message}")]
    Runtime {
        op: &'static str,
        id: String,
        message: String,
    },
    #[error("bad record for container {id}")]
    BadRecord {
        id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("timed out waiting for container {0}")]
    Timeout(String),
    #[error("no such container:path: {container}:{path}")]
    NoSuchPath { container: String, path: String },
    #[error("container {0} is running but its root filesystem is not mounted")]
    RootfsNotMounted(String),
    #[error("cannot copy directory {src} onto existing file {dst}")]
    CopyDirToFile { src: String, dst: String },
    #[error("destination directory {0} does not exist")]
    CopyNoSuchDir(String),
    #[error("{0} is not a directory")]
    CopyNotDir(String),
    #[error("destination {0} must be a directory or a regular file")]
    CopyBadDest(String),
    #[error("cannot copy into {path}: {what} is read-only")]
    CopyReadOnly { path: String, what: String },
    #[error("cannot overwrite directory {0} with a non-directory")]
    CopyOverwriteDir(String),
    #[error("cannot overwrite non-directory {0} with a directory")]
    CopyOverwriteNonDir(String),
    #[error("archive entry {0} would land outside the destination")]
    CopyBreakout(String),
    #[error("{op} {path}")]
    Copy {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("read archive")]
    CopyArchive(#[source] std::io::Error),
}

impl EngineError {
    /// The exit status docker gives this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            EngineError::Start { code, .. } => *code,
            _ => 125,
        }
    }
}

/// A failed filesystem step of `cp` (`op` names it, `path` is where).
pub(crate) fn cp_err(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(nix::errno::Errno) -> EngineError {
    let path = path.into();
    move |e| EngineError::Copy {
        op,
        path,
        source: e.into(),
    }
}

pub(crate) fn io(
    what: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> EngineError {
    let path = path.into();
    move |source| EngineError::Io { what, path, source }
}
