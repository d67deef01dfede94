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

/// Whether this process runs in a user namespace other than the initial
/// one (its uid map is not the identity over all ids): a rootless store,
/// whose overlay metadata lives in `user.overlay.*` xattrs.
pub fn in_user_namespace() -> bool {
    static IN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *IN.get_or_init(read_in_user_namespace)
}

/// [`in_user_namespace`] read afresh, for a process about to change its
/// namespace (the cached answer is the first one).
pub fn read_in_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|m| {
        let f: Vec<&str> = m.split_whitespace().collect();
        f != ["0", "0", "4294967295"]
    })
}

/// The opaque-directory xattr overlay reads in this store: `trusted.*`, or
/// `user.*` in a user namespace (where overlay is mounted `userxattr`).
pub fn overlay_opaque_xattr() -> &'static std::ffi::CStr {
    if in_user_namespace() {
        c"user.overlay.opaque"
    } else {
        c"trusted.overlay.opaque"
    }
}
