//! Persistent netd state: the networks in use and one lease per container.
//!
//! Invariant: `state.json` is only read and written while holding an
//! exclusive `flock` on `lock` in the same directory, and is replaced
//! atomically (temp file, fsync, rename, fsync of the directory). A setup
//! holds the lock from validation to the end of apply, so concurrent setups
//! see each other's leases and never hand out the same address.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::wire::{NetworkConfig, PortMapping};
use crate::Error;

/// Rootful default for `--state-dir`.
pub const DEFAULT_STATE_DIR: &str = "/run/berth/netd";

const STATE_FILE: &str = "state.json";
const LOCK_FILE: &str = "lock";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Networks with at least one lease, by name.
    pub networks: BTreeMap<String, NetworkState>,
    /// Leases by container id.
    pub leases: BTreeMap<String, Lease>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkState {
    pub config: NetworkConfig,
    /// Whether netd created the bridge (and so deletes it with the last lease).
    pub created_bridge: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub container_name: String,
    pub netns: PathBuf,
    pub attachments: Vec<LeaseAttachment>,
    pub port_mappings: Vec<PortMapping>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseAttachment {
    pub network: String,
    pub ip: Ipv4Addr,
    /// The IPv6 address on a dual-stack network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip6: Option<Ipv6Addr>,
    pub host_interface: String,
    pub interface: String,
    pub aliases: Vec<String>,
}

impl State {
    /// The container holding `ip` on `network`, if any.
    pub fn ip_owner(&self, network: &str, ip: Ipv4Addr) -> Option<&str> {
        self.leases.iter().find_map(|(id, l)| {
            l.attachments
                .iter()
                .any(|a| a.network == network && a.ip == ip)
                .then_some(id.as_str())
        })
    }

    /// The container holding IPv6 address `ip` on `network`, if any.
    pub fn ip6_owner(&self, network: &str, ip: Ipv6Addr) -> Option<&str> {
        self.leases.iter().find_map(|(id, l)| {
            l.attachments
                .iter()
                .any(|a| a.network == network && a.ip6 == Some(ip))
                .then_some(id.as_str())
        })
    }

    /// Whether any lease still uses `network`.
    pub fn network_in_use(&self, network: &str) -> bool {
        self.leases
            .values()
            .any(|l| l.attachments.iter().any(|a| a.network == network))
    }
}

/// The state without taking the lock: consistent because every write is an
/// atomic rename (used by the DNS responder on each query).
pub fn read_unlocked(dir: &Path) -> Result<State, Error> {
    let path = dir.join(STATE_FILE);
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|source| Error::ParseState { path, source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
        Err(source) => Err(Error::ReadState { path, source }),
    }
}

/// The state directory, locked for as long as this value lives.
pub struct LockedState {
    dir: PathBuf,
    _lock: Flock<File>,
}

impl LockedState {
    /// Create `dir` if needed and take the exclusive lock (blocking).
    pub fn lock(dir: &Path) -> Result<LockedState, Error> {
        std::fs::create_dir_all(dir).map_err(|source| Error::StateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(LOCK_FILE);
        let lock_err = |source| Error::Lock {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(lock_err)?;
        let lock =
            Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| lock_err(e.into()))?;
        Ok(LockedState {
            dir: dir.to_path_buf(),
            _lock: lock,
        })
    }

    /// The current state (empty when none was ever written).
    pub fn load(&self) -> Result<State, Error> {
        read_unlocked(&self.dir)
    }

    /// Replace the state atomically.
    pub fn save(&self, state: &State) -> Result<(), Error> {
        let path = self.dir.join(STATE_FILE);
        let tmp = self.dir.join(format!(".{STATE_FILE}.tmp"));
        let err = |source| Error::WriteState {
            path: path.clone(),
            source,
        };
        let json = serde_json::to_vec_pretty(state).map_err(|e| err(e.into()))?;
        let mut f = File::create(&tmp).map_err(err)?;
        f.write_all(&json)
            .and_then(|()| f.sync_all())
            .map_err(err)?;
        std::fs::rename(&tmp, &path).map_err(err)?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(err)
    }
}
