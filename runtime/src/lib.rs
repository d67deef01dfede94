//! berth-runtime: a strict OCI runtime-spec runtime whose command line is
//! runc's. The library holds everything; the binary only parses arguments.
//!
//! Invariant: the runtime process is single-threaded whenever it forks.
//! Boundary: knows nothing of images, registries or networks beyond joining
//! a network namespace by path.

pub mod capabilities;
pub mod cgroupfs_mount;
pub mod cgroups;
pub mod config;
pub mod console;
pub mod container;
pub mod devices;
pub mod error;
pub mod exec;
pub mod features;
pub mod foreground;
pub mod fsutil;
pub mod hooks;
pub mod init;
pub mod log;
pub mod mounts;
pub mod ns;
pub mod process;
pub mod rootfs;
pub mod seal;
pub mod seccomp;
pub mod specgen;
pub mod state;
pub mod sync;
pub mod sys;

pub use error::{Error, Result};
