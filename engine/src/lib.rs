//! Berth's container engine: container records in the store's SQLite DB,
//! bundle generation (config.json from the image config plus options, with
//! docker's defaults), lifecycle through the OCI runtime *binary*, one
//! `berth-monitor` per container, json-file logs.
//!
//! **Boundary:** never parses CLI flags; never links the runtime — it execs
//! it (`berth-runtime`, `runc`, `crun` or any path). **Invariant:** a
//! container's live state is derived from its run dir (the monitor's lock
//! and exit file), never stored.

pub mod attach;
mod check;
mod connect;
mod cp;
mod db;
mod engine;
mod error;
mod exec;
mod host;
mod inspect;
pub mod layout;
mod lifecycle;
mod logs;
pub mod monitor;
mod network;
mod options;
pub mod rootless;
mod seccomp;
mod spec;
mod state;
mod sys;
mod user;
mod volumes;

pub use cp::{CopyIn, CopyOptions, CopyOut};
pub use db::ContainerRecord;
pub use engine::{start_failure_code, AttachHold, Engine};
pub use error::{EngineError, Result};
pub use exec::ExecOptions;
pub use lifecycle::Stats;
pub use logs::{LogFollower, LogLine};
pub use network::{NewNetwork, DEFAULT_NETWORK};
pub use options::{parse_size, BindMount, Endpoint, NetworkMode, RestartPolicy, RunOptions};
pub use state::{State, Status};
pub use volumes::Volume;
