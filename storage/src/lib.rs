//! Berth image store: content-addressed blobs, SQLite metadata, safe layer
//! unpack keyed by chain id, overlay (or copy) snapshots, oci-archive
//! save/load, garbage collection and `system check`.
//!
//! **Boundary:** storage never spawns processes and knows nothing about
//! containers beyond the leases the engine takes on images it uses.

mod archive;
#[cfg(feature = "registry")]
mod auth;
mod blobs;
mod compress;
mod container_snapshot;
mod db;
mod digest;
mod docker_archive;
mod error;
mod gc;
#[cfg(feature = "registry")]
mod pull;
#[cfg(feature = "registry")]
mod push;
mod reference;
mod snapshot;
mod store;
mod sys;
mod unpack;
mod util;

pub use archive::{DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
#[cfg(feature = "registry")]
pub use auth::{docker_config_path, remove_credentials, save_credentials};
pub use blobs::{BlobStore, BlobWriter};
pub use compress::decompress;
pub use container_snapshot::Snapshot;
pub use db::{Db, ImageLayer, ImageRecord, LeaseKind};
pub use digest::{Digest, HashingReader, HashingWriter};
pub use error::{Result, StorageError};
pub use gc::{DiskUsage, GcReport, Problem, RemoveReport, UNREFERENCED_BLOB};
#[cfg(feature = "registry")]
pub use pull::{PullEvent, RegistryOptions};
#[cfg(feature = "registry")]
pub use push::verify_login;
pub use reference::Reference;
pub use snapshot::{
    copy_layers, get_xattr, mount_overlay, prepare_snapshot, unmount, SnapshotKind, MAX_LOWERS,
};
pub use store::{host_arch, normalize_tag, Store, StoreLock};
pub use unpack::{unpack_layer, UnpackOptions, UnpackStats};
pub use util::{parse_rfc3339, rfc3339};
