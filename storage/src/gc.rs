//! Removal, garbage collection by reference, and `system check`.

use std::collections::HashSet;
use std::fs;
use std::path::PathBuf;

use crate::db::LeaseKind;
use crate::digest::Digest;
use crate::error::{Result, StorageError};
use crate::store::{normalize_tag, Store};
use crate::util::now_unix;

/// What `remove_image` did.
#[derive(Debug, Default, Clone)]
pub struct RemoveReport {
    pub untagged: Vec<String>,
    pub deleted: Vec<String>,
}

/// What a collection freed.
#[derive(Debug, Default, Clone)]
pub struct GcReport {
    pub blobs: Vec<String>,
    pub layers: Vec<String>,
    pub bytes: u64,
}

/// Counts and sizes for `system df` (layer bytes are uncompressed tar sizes).
#[derive(Debug, Default, Clone)]
pub struct DiskUsage {
    pub images: usize,
    pub blobs: usize,
    pub blob_bytes: u64,
    pub layers: usize,
    pub layer_bytes: u64,
}

/// One inconsistency `check` found, and whether it was repaired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: &'static str,
    pub subject: String,
    pub repaired: bool,
}

/// The `kind` of a blob nothing refers to: garbage for `prune`, not damage.
pub const UNREFERENCED_BLOB: &str = "blob no image refers to";

impl Problem {
    /// Garbage rather than damage: the store is consistent with it.
    pub fn is_garbage(&self) -> bool {
        self.kind == UNREFERENCED_BLOB
    }
}

impl Store {
    /// `rmi`: by tag, untag (and delete the image when that was its last
    /// tag); by id or digest, delete the image (with several tags only when
    /// `force`). An image leased by a container is never deleted. Then
    /// collect garbage.
    pub fn remove_image(&self, reference: &str, force: bool) -> Result<RemoveReport> {
        let id = self.resolve(reference)?;
        let img = self.db().image(&id)?.ok_or(StorageError::ImageNotFound {
            reference: reference.to_string(),
        })?;
        let by_tag = normalize_tag(reference)
            .ok()
            .filter(|t| img.tags.contains(t));
        let mut rep = RemoveReport::default();
        if let Some(t) = &by_tag {
            if img.tags.len() > 1 {
                self.db().remove_tag(t)?;
                rep.untagged.push(t.clone());
                return Ok(rep);
            }
        } else if img.tags.len() > 1 && !force {
            return Err(StorageError::ImageHasTags { id: img.id.clone() });
        }
        if let Some((_, lease)) = self
            .db()
            .leased(LeaseKind::Image)?
            .into_iter()
            .find(|(k, _)| *k == img.id)
        {
            return Err(StorageError::ImageInUse {
                id: img.id.clone(),
                lease,
            });
        }
        for t in &img.tags {
            self.db().remove_tag(t)?;
            rep.untagged.push(t.clone());
        }
        self.db().delete_image(&img.id)?;
        rep.deleted.push(img.id.clone());
        self.gc()?;
        Ok(rep)
    }

    /// `image prune`: delete untagged images (with `all`, every image)
    /// that no lease holds, then collect garbage. Returns deleted ids.
    pub fn prune_images(&self, all: bool) -> Result<Vec<String>> {
        let leased: HashSet<String> = self
            .db()
            .leased(LeaseKind::Image)?
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let mut deleted = Vec::new();
        for img in self.images()? {
            if (all || img.tags.is_empty()) && !leased.contains(&img.id) {
                for t in &img.tags {
                    self.db().remove_tag(t)?;
                }
                self.db().delete_image(&img.id)?;
                deleted.push(img.id);
            }
        }
        self.gc()?;
        Ok(deleted)
    }

    /// `system df`: what the store holds.
    pub fn disk_usage(&self) -> Result<DiskUsage> {
        let (blobs, _) = self.blobs().list()?;
        let mut du = DiskUsage {
            images: self.db().image_ids()?.len(),
            blobs: blobs.len(),
            ..DiskUsage::default()
        };
        for b in &blobs {
            du.blob_bytes += self.blobs().size(b).unwrap_or(0);
        }
        for chain in self.db().all_layers()? {
            du.layers += 1;
            du.layer_bytes += self.db().layer(&chain)?.map_or(0, |(_, s)| s);
        }
        Ok(du)
    }

    /// Remove blobs and unpacked layers no image refers to and no lease
    /// holds. Takes the store lock exclusively.
    pub fn gc(&self) -> Result<GcReport> {
        let _lock = self.lock(true)?;
        self.db().expire_leases(now_unix())?;
        let (mut blobs, mut layers) = self.db().referenced()?;
        blobs.extend(
            self.db()
                .leased(LeaseKind::Blob)?
                .into_iter()
                .map(|(k, _)| k),
        );
        layers.extend(
            self.db()
                .leased(LeaseKind::Layer)?
                .into_iter()
                .map(|(k, _)| k),
        );
        for id in self
            .db()
            .leased(LeaseKind::Image)?
            .into_iter()
            .map(|(k, _)| k)
        {
            if let Some(img) = self.db().image(&id)? {
                layers.extend(img.layers.into_iter().map(|l| l.chain_id));
            }
        }
        let mut rep = GcReport::default();
        let (all, _) = self.blobs().list()?;
        for d in all {
            if !blobs.contains(d.as_str()) {
                rep.bytes += self.blobs().size(&d).unwrap_or(0);
                self.blobs().remove(&d)?;
                rep.blobs.push(d.to_string());
            }
        }
        for chain in self.db().all_layers()? {
            if layers.contains(&chain) {
                continue;
            }
            let d = Digest::parse(&chain)?;
            // Move the tree aside first (a row without a directory is simply
            // unpacked again), then drop the row, then delete the tree.
            let grave = self.tmp_dir().join(crate::util::temp_name("discard"));
            let moved = fs::rename(self.layer_path(&d), &grave);
            self.db().remove_layer(&chain)?;
            if moved.is_ok() {
                remove_tree(&grave)?;
            }
            rep.layers.push(chain);
        }
        Ok(rep)
    }

    /// Verify every blob digest, every database reference and the layer
    /// directories; with `repair`, fix what can be fixed (stale temp files,
    /// corrupt blobs, orphan layer dirs, dangling rows, missing unpacks)
    /// and drop images whose content is gone.
    pub fn check(&self, repair: bool) -> Result<Vec<Problem>> {
        let _lock = self.lock(true)?;
        let mut out = Vec::new();
        let mut note = |kind, subject: String, repaired| {
            out.push(Problem {
                kind,
                subject,
                repaired,
            })
        };
        let integrity = self.db().integrity_check()?;
        if integrity != "ok" {
            note("database integrity", integrity, false);
        }
        // Writers hold the lock shared while they have temp files, so under
        // the exclusive lock every temp file is a killed writer's leftover:
        // always safe to remove.
        for e in read_dir(&self.tmp_dir().to_path_buf())? {
            remove_tree(&e)?;
            note("stale temporary file", e.display().to_string(), true);
        }
        let (blobs, junk) = self.blobs().list()?;
        for p in junk {
            if repair {
                remove_tree(&p)?;
            }
            note(
                "stray file in blob directory",
                p.display().to_string(),
                repair,
            );
        }
        let mut present: HashSet<String> = HashSet::new();
        for d in blobs {
            if self.blobs().verify(&d)? {
                present.insert(d.to_string());
            } else {
                if repair {
                    self.blobs().remove(&d)?;
                }
                note(
                    "blob content does not match its digest",
                    d.to_string(),
                    repair,
                );
            }
        }
        let layer_rows: HashSet<String> = self.db().all_layers()?.into_iter().collect();
        for chain in &layer_rows {
            let d = Digest::parse(chain)?;
            if !self.layer_path(&d).join("diff").is_dir() {
                if repair {
                    self.db().remove_layer(chain)?;
                }
                note(
                    "layer row without unpacked directory",
                    chain.clone(),
                    repair,
                );
            }
        }
        for dir in read_dir(&self.root().join("layers"))? {
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !layer_rows.contains(&format!("sha256:{name}")) {
                if repair {
                    self.discard_dir(&dir)?;
                }
                note(
                    "unpacked layer directory without a row",
                    dir.display().to_string(),
                    repair,
                );
            }
        }
        for t in self.db().dangling_tags()? {
            if repair {
                self.db().remove_tag(&t)?;
            }
            note("tag names a missing image", t, repair);
        }
        for img in self.images()? {
            self.check_image(&img, &present, repair, &mut note)?;
        }
        let (referenced, _) = self.db().referenced()?;
        let leased: HashSet<String> = self
            .db()
            .leased(LeaseKind::Blob)?
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        for b in present
            .iter()
            .filter(|b| !referenced.contains(*b) && !leased.contains(*b))
        {
            note(UNREFERENCED_BLOB, b.clone(), false);
        }
        drop(_lock);
        if repair && out.iter().any(Problem::is_garbage) {
            self.gc()?;
            for p in out.iter_mut().filter(|p| p.is_garbage()) {
                p.repaired = true;
            }
        }
        Ok(out)
    }

    fn check_image(
        &self,
        img: &crate::ImageRecord,
        present: &HashSet<String>,
        repair: bool,
        note: &mut impl FnMut(&'static str, String, bool),
    ) -> Result<()> {
        let mut missing: Vec<&str> = [img.manifest_digest.as_str(), img.config_digest.as_str()]
            .into_iter()
            .chain(img.layers.iter().map(|l| l.blob_digest.as_str()))
            .filter(|b| !present.contains(*b))
            .collect();
        missing.dedup();
        if !missing.is_empty() {
            if repair {
                for t in &img.tags {
                    self.db().remove_tag(t)?;
                }
                self.db().delete_image(&img.id)?;
            }
            note(
                "image blob missing or corrupt (image removed on repair; pull or load it again)",
                format!("{} {}", img.id, missing.join(",")),
                repair,
            );
            return Ok(());
        }
        let mut parent: Option<Digest> = None;
        for l in &img.layers {
            let chain = Digest::parse(&l.chain_id)?;
            let ok = self.db().layer(&l.chain_id)?.is_some()
                && self.layer_path(&chain).join("diff").is_dir();
            if !ok {
                let mut fixed = false;
                if repair {
                    let diff = self
                        .db()
                        .layer(&l.chain_id)?
                        .map(|(d, _)| d)
                        .unwrap_or_else(|| l.diff_id.clone());
                    let diff = Digest::parse(&diff).ok();
                    let blob = Digest::parse(&l.blob_digest)?;
                    self.db().remove_layer(&l.chain_id)?;
                    fixed = self
                        .ensure_layer(&blob, diff.as_ref(), parent.as_ref())
                        .map(|(c, _, _)| c == chain)
                        .unwrap_or(false);
                }
                note(
                    "image layer not unpacked",
                    format!("{} {}", img.id, l.chain_id),
                    fixed,
                );
            }
            parent = Some(chain);
        }
        Ok(())
    }
}

fn read_dir(dir: &PathBuf) -> Result<Vec<PathBuf>> {
    match fs::read_dir(dir) {
        Ok(rd) => Ok(rd.flatten().map(|e| e.path()).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(StorageError::Check {
            op: "list",
            path: dir.clone(),
            source,
        }),
    }
}

fn remove_tree(p: &PathBuf) -> Result<()> {
    let r = match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    r.map_err(|source| StorageError::Check {
        op: "remove",
        path: p.clone(),
        source,
    })
}
