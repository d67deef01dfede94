//! The one error type of the image store: a variant per failed operation,
//! with the path, digest or name it failed on and the cause as `#[source]`.

use std::path::PathBuf;

/// Everything the image store can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("create store directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("lock {path} to open the metadata database")]
    InitLock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("open metadata database {path}")]
    OpenDb {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("metadata database: {op}")]
    Db {
        op: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("invalid digest {digest:?}")]
    InvalidDigest { digest: String },
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference {
        reference: String,
        reason: &'static str,
    },
    #[error("write blob to {path}")]
    WriteBlob {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("read blob {digest}")]
    ReadBlob {
        digest: String,
        #[source]
        source: std::io::Error,
    },
    #[error("blob digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: String, actual: String },
    #[error("blob {digest} not found in the store")]
    BlobMissing { digest: String },
    #[error("parse {what} {digest}")]
    ParseJson {
        what: &'static str,
        digest: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("encode {what}")]
    EncodeJson {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("unsupported media type {media_type:?} for {what}")]
    UnsupportedMediaType {
        what: &'static str,
        media_type: String,
    },
    #[error("read layer stream")]
    ReadLayer {
        #[source]
        source: std::io::Error,
    },
    #[error("zstd layer stream")]
    Zstd {
        #[source]
        source: ruzstd::decoding::errors::FrameDecoderError,
    },
    #[error("unsafe layer entry {entry:?}: {reason}")]
    UnsafeEntry { entry: String, reason: &'static str },
    #[error("layer expands beyond the limit of {limit} bytes")]
    LayerTooLarge { limit: u64 },
    #[error("layer has more than {limit} entries")]
    TooManyEntries { limit: u64 },
    #[error("layer entry {entry:?}: {op}")]
    UnpackEntry {
        entry: String,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("layer diff id mismatch: config says {expected}, layer has {actual}")]
    DiffIdMismatch { expected: String, actual: String },
    #[error("layer directory {path}")]
    LayerDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("image {reference:?} not found")]
    ImageNotFound { reference: String },
    #[error("image reference {reference:?} is ambiguous")]
    AmbiguousImage { reference: String },
    #[error("image {id} is in use by lease {lease}")]
    ImageInUse { id: String, lease: String },
    #[error("image {id} has several tags; name one or force removal")]
    ImageHasTags { id: String },
    #[error("read archive {path}")]
    ReadArchive {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("write archive {path}")]
    WriteArchive {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("archive {path}: {reason}")]
    BadArchive { path: PathBuf, reason: String },
    #[error("mount overlay on {target}")]
    MountOverlay {
        target: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("mount overlay with a long layer chain on {target}")]
    MountOverlayLong {
        target: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid container id {id:?}")]
    InvalidContainerId { id: String },
    #[error("export container {id}'s filesystem from {path}")]
    ExportSnapshot {
        id: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("snapshot record {path}")]
    SnapshotRecord {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("unmount {target}")]
    Unmount {
        target: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("copy layer {src} to {dst}")]
    CopySnapshot {
        src: PathBuf,
        dst: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("layer chain of {count} layers exceeds the overlay limit of {limit}")]
    ChainTooLong { count: usize, limit: usize },
    #[cfg(feature = "registry")]
    #[error("registry: {op} for {reference}")]
    Registry {
        reference: String,
        op: &'static str,
        #[source]
        source: Box<oci_client::errors::OciDistributionError>,
    },
    #[error("download blob {digest}")]
    Download {
        digest: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no manifest for platform {platform} in {reference}")]
    PlatformNotFound { reference: String, platform: String },
    #[error("no $DOCKER_CONFIG or $HOME to keep credentials in")]
    NoHome,
    #[error("write credentials to {path}")]
    WriteCredentials {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("start async runtime")]
    Runtime {
        #[source]
        source: std::io::Error,
    },
    #[error("check store: {op} {path}")]
    Check {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Shorthand used throughout the crate.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

pub(crate) fn db(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StorageError {
    move |source| StorageError::Db { op, source }
}
