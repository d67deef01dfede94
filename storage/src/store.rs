//! The store: blobs + metadata + unpacked layers under one root.
//!
//! **Invariant:** an image row exists only once every blob it names is in
//! `blobs/` and every layer in its chain is unpacked under
//! `layers/<chain-hex>/diff`. Writers (import, load, pull) hold a shared
//! `flock` on `storage.lock` from their first blob to the image commit;
//! garbage collection and repair hold it exclusively, so they never see a
//! half-written image's blobs as garbage.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde_json::Value;

use crate::blobs::BlobStore;
use crate::db::{Db, ImageLayer, ImageRecord};
use crate::digest::Digest;
use crate::error::{Result, StorageError};
use crate::reference::Reference;
use crate::unpack::{unpack_layer, UnpackOptions};
use crate::util::{fsync_dir, now_unix, parse_rfc3339, temp_name};

/// An image store rooted at `root` (persistent) with `runroot` for
/// runtime-only state.
pub struct Store {
    root: PathBuf,
    runroot: PathBuf,
    tmp: PathBuf,
    blobs: BlobStore,
    db: Db,
    unpack: UnpackOptions,
}

/// A held store lock (shared for writers, exclusive for GC and repair).
pub struct StoreLock(#[allow(dead_code)] Flock<File>);

impl Store {
    /// Open (creating if needed) the store.
    pub fn open(root: &Path, runroot: &Path) -> Result<Store> {
        for d in [
            root.to_path_buf(),
            root.join("layers"),
            runroot.to_path_buf(),
        ] {
            fs::create_dir_all(&d).map_err(|source| StorageError::CreateDir {
                path: d.clone(),
                source,
            })?;
        }
        let tmp = root.join("tmp");
        let blobs = BlobStore::new(root, &tmp)?;
        let db = Db::open(&root.join("berth.db"))?;
        Ok(Store {
            root: root.to_path_buf(),
            runroot: runroot.to_path_buf(),
            tmp,
            blobs,
            db,
            unpack: UnpackOptions::default(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn runroot(&self) -> &Path {
        &self.runroot
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub(crate) fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    /// Limits applied to every layer this store unpacks.
    pub fn set_unpack_options(&mut self, o: UnpackOptions) {
        self.unpack = o;
    }

    pub(crate) fn lock(&self, exclusive: bool) -> Result<StoreLock> {
        let path = self.root.join("storage.lock");
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| StorageError::CreateDir {
                path: path.clone(),
                source,
            })?;
        let arg = if exclusive {
            FlockArg::LockExclusive
        } else {
            FlockArg::LockShared
        };
        Flock::lock(f, arg)
            .map(StoreLock)
            .map_err(|(_, e)| StorageError::CreateDir {
                path,
                source: e.into(),
            })
    }

    /// `layers/<chain-hex>`; the unpacked tree is its `diff/`.
    pub fn layer_path(&self, chain_id: &Digest) -> PathBuf {
        self.root.join("layers").join(chain_id.hex())
    }

    /// Remove a directory tree so that a crash part way never leaves a
    /// partial tree at `path`: it is first renamed into `tmp/` (atomic),
    /// then deleted there (`check` clears leftovers).
    pub(crate) fn discard_dir(&self, path: &Path) -> Result<()> {
        let grave = self.tmp.join(temp_name("discard"));
        match fs::rename(path, &grave) {
            Ok(()) => fs::remove_dir_all(&grave).map_err(|source| StorageError::LayerDir {
                path: grave,
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StorageError::LayerDir {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Unpack layer blob `blob` on top of `parent` unless that chain is
    /// already unpacked. With `diff_id` known up front (from an image
    /// config) the work is skipped when present and the result verified.
    /// Returns `(chain_id, diff_id, uncompressed size)`.
    pub fn ensure_layer(
        &self,
        blob: &Digest,
        diff_id: Option<&Digest>,
        parent: Option<&Digest>,
    ) -> Result<(Digest, Digest, u64)> {
        if let Some(d) = diff_id {
            let chain = Digest::chain(parent, d);
            if let Some((_, size)) = self.db.layer(chain.as_str())? {
                if self.layer_path(&chain).join("diff").is_dir() {
                    return Ok((chain, d.clone(), size));
                }
            }
        }
        let work = self.tmp.join(temp_name("layer"));
        let diff = work.join("diff");
        fs::create_dir_all(&diff).map_err(|source| StorageError::LayerDir {
            path: diff.clone(),
            source,
        })?;
        let result = self.unpack_into(blob, diff_id, &diff);
        let stats = match result {
            Ok(s) => s,
            Err(e) => {
                let _ = fs::remove_dir_all(&work);
                return Err(e);
            }
        };
        // The tree must be durable before the rename and row publish it.
        if let Err(source) =
            File::open(&diff).and_then(|f| nix::unistd::syncfs(&f).map_err(std::io::Error::from))
        {
            let _ = fs::remove_dir_all(&work);
            return Err(StorageError::LayerDir { path: diff, source });
        }
        let chain = Digest::chain(parent, &stats.diff_id);
        let dst = self.layer_path(&chain);
        if dst.join("diff").is_dir() {
            let _ = fs::remove_dir_all(&work);
        } else {
            self.discard_dir(&dst)?; // a leftover without its diff/
            if let Err(source) = fs::rename(&work, &dst) {
                let _ = fs::remove_dir_all(&work);
                if !dst.join("diff").is_dir() {
                    return Err(StorageError::LayerDir { path: dst, source });
                }
            }
            let _ = fsync_dir(&self.root.join("layers"));
        }
        self.db.add_layer(
            chain.as_str(),
            stats.diff_id.as_str(),
            parent.map(Digest::as_str),
            stats.size,
        )?;
        Ok((chain, stats.diff_id, stats.size))
    }

    fn unpack_into(
        &self,
        blob: &Digest,
        diff_id: Option<&Digest>,
        diff: &Path,
    ) -> Result<crate::UnpackStats> {
        let stats = unpack_layer(self.blobs.open(blob)?, diff, &self.unpack)?;
        if let Some(d) = diff_id {
            if stats.diff_id != *d {
                return Err(StorageError::DiffIdMismatch {
                    expected: d.to_string(),
                    actual: stats.diff_id.to_string(),
                });
            }
        }
        Ok(stats)
    }

    /// Record the image whose manifest blob is `manifest_digest` (every blob
    /// already stored), unpacking its layers, and point `tags` at it.
    pub fn commit_image(&self, manifest_digest: &Digest, tags: &[String]) -> Result<ImageRecord> {
        let manifest: Value = parse_json(
            &self.blobs.read(manifest_digest)?,
            "manifest",
            manifest_digest,
        )?;
        let media_type = manifest["mediaType"]
            .as_str()
            .unwrap_or(crate::archive::OCI_MANIFEST)
            .to_string();
        let config_digest =
            Digest::parse(manifest["config"]["digest"].as_str().unwrap_or_default())?;
        let config: Value =
            parse_json(&self.blobs.read(&config_digest)?, "config", &config_digest)?;
        let diff_ids = config["rootfs"]["diff_ids"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let layers = manifest["layers"].as_array().cloned().unwrap_or_default();
        if diff_ids.len() != layers.len() {
            return Err(StorageError::BadArchive {
                path: self.blobs.path(&config_digest),
                reason: format!(
                    "config has {} diff ids for {} layers",
                    diff_ids.len(),
                    layers.len()
                ),
            });
        }
        let mut parent: Option<Digest> = None;
        let mut recs = Vec::new();
        for (l, d) in layers.iter().zip(&diff_ids) {
            let mt = l["mediaType"].as_str().unwrap_or_default().to_string();
            if !mt.contains("tar") {
                return Err(StorageError::UnsupportedMediaType {
                    what: "layer",
                    media_type: mt,
                });
            }
            let blob = Digest::parse(l["digest"].as_str().unwrap_or_default())?;
            let diff = Digest::parse(d.as_str().unwrap_or_default())?;
            let (chain, diff, size) = self.ensure_layer(&blob, Some(&diff), parent.as_ref())?;
            recs.push(ImageLayer {
                chain_id: chain.to_string(),
                diff_id: diff.to_string(),
                blob_digest: blob.to_string(),
                blob_size: l["size"].as_u64().unwrap_or(0),
                media_type: mt,
                size,
            });
            parent = Some(chain);
        }
        let created = config["created"]
            .as_str()
            .and_then(parse_rfc3339)
            .unwrap_or_else(now_unix);
        let img = ImageRecord {
            id: config_digest.to_string(),
            manifest_digest: manifest_digest.to_string(),
            manifest_media_type: media_type,
            config_digest: config_digest.to_string(),
            size: recs.iter().map(|l| l.size).sum(),
            created,
            layers: recs,
            tags: tags.to_vec(),
        };
        self.db.put_image(&img)?;
        self.db.image(&img.id)?.ok_or(StorageError::ImageNotFound {
            reference: img.id.clone(),
        })
    }

    /// The image id a reference names: a tag, `name@digest`, a full
    /// `sha256:` id or manifest digest, or a unique id prefix.
    pub fn resolve(&self, reference: &str) -> Result<String> {
        let not_found = || StorageError::ImageNotFound {
            reference: reference.to_string(),
        };
        if let Ok(d) = Digest::parse(reference) {
            if self.db.image(d.as_str())?.is_some() {
                return Ok(d.to_string());
            }
            return self
                .db
                .ids_by_manifest(d.as_str())?
                .into_iter()
                .next()
                .ok_or_else(not_found);
        }
        if let Ok(r) = Reference::parse(reference) {
            if let Some(d) = &r.digest {
                return self
                    .db
                    .ids_by_manifest(d)?
                    .into_iter()
                    .next()
                    .ok_or_else(not_found);
            }
            if let Some(id) = r
                .tagged()
                .map(|t| self.db.tag_target(&t))
                .transpose()?
                .flatten()
            {
                return Ok(id);
            }
        }
        let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
        if hex.len() >= 3 && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let ids = self.db.ids_with_prefix(&hex.to_ascii_lowercase())?;
            return match ids.len() {
                0 => Err(not_found()),
                1 => Ok(ids.into_iter().next().unwrap_or_default()),
                _ => Err(StorageError::AmbiguousImage {
                    reference: reference.to_string(),
                }),
            };
        }
        Err(not_found())
    }

    pub fn image(&self, reference: &str) -> Result<ImageRecord> {
        let id = self.resolve(reference)?;
        self.db.image(&id)?.ok_or(StorageError::ImageNotFound {
            reference: reference.to_string(),
        })
    }

    /// Every image, newest first.
    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        let mut out = Vec::new();
        for id in self.db.image_ids()? {
            if let Some(i) = self.db.image(&id)? {
                out.push(i);
            }
        }
        Ok(out)
    }

    /// The image config (parsed).
    pub fn config(&self, img: &ImageRecord) -> Result<Value> {
        let d = Digest::parse(&img.config_digest)?;
        parse_json(&self.blobs.read(&d)?, "config", &d)
    }

    /// Stream a rootfs tar (`-` style input) into a one-layer image.
    pub fn import(&self, src: impl Read, name: Option<&str>) -> Result<ImageRecord> {
        let tags = name
            .map(normalize_tag)
            .transpose()?
            .into_iter()
            .collect::<Vec<_>>();
        let _lock = self.lock(false)?;
        let (blob, blob_size) = self.blobs.put(src, None)?;
        let layer_type = self.layer_media_type(&blob)?;
        let (_, diff, _) = self.ensure_layer(&blob, None, None)?;
        let now = crate::util::rfc3339(now_unix());
        let config = serde_json::json!({
            "created": now,
            "architecture": host_arch(),
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [diff.as_str()]},
            "history": [{"created": now, "created_by": "berth import"}],
        });
        let config_bytes = to_json(&config, "image config")?;
        let config_digest = self.blobs.put_bytes(&config_bytes)?;
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": crate::archive::OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.as_str(), "size": config_bytes.len()},
            "layers": [{"mediaType": layer_type, "digest": blob.as_str(), "size": blob_size}],
        });
        let manifest_digest = self
            .blobs
            .put_bytes(&to_json(&manifest, "image manifest")?)?;
        self.commit_image(&manifest_digest, &tags)
    }

    /// The OCI layer media type for a stored blob, from its magic bytes.
    pub(crate) fn layer_media_type(&self, blob: &Digest) -> Result<&'static str> {
        let mut head = [0u8; 4];
        let mut f = self.blobs.open(blob)?;
        let n = f.read(&mut head).map_err(|source| StorageError::ReadBlob {
            digest: blob.to_string(),
            source,
        })?;
        Ok(match &head[..n] {
            [0x1f, 0x8b, ..] => "application/vnd.oci.image.layer.v1.tar+gzip",
            [0x28, 0xb5, 0x2f, 0xfd] => "application/vnd.oci.image.layer.v1.tar+zstd",
            _ => "application/vnd.oci.image.layer.v1.tar",
        })
    }

    /// Point `target` (normalised) at the image `source` names.
    pub fn tag(&self, source: &str, target: &str) -> Result<String> {
        let id = self.resolve(source)?;
        let t = normalize_tag(target)?;
        self.db.set_tag(&t, &id)?;
        Ok(t)
    }
}

/// A name as stored in the tag table: `domain/path:tag`.
pub fn normalize_tag(name: &str) -> Result<String> {
    let r = Reference::parse(name)?;
    r.tagged().ok_or(StorageError::InvalidReference {
        reference: name.to_string(),
        reason: "a tag is needed, not a digest",
    })
}

pub(crate) fn parse_json(data: &[u8], what: &'static str, d: &Digest) -> Result<Value> {
    serde_json::from_slice(data).map_err(|source| StorageError::ParseJson {
        what,
        digest: d.to_string(),
        source,
    })
}

pub(crate) fn to_json(v: &Value, what: &'static str) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|source| StorageError::EncodeJson { what, source })
}

/// The OCI architecture name of this host.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}
