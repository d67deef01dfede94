//! Per-container snapshots, as the engine uses them:
//! `containers/<id>/{upper,work,merged}` over the image's layer chain,
//! with the image leased to the container (so `rmi` and GC keep it) and
//! the snapshot's kind recorded so it can be mounted again after a reboot.

use std::fs;
use std::path::{Path, PathBuf};

use crate::db::LeaseKind;
use crate::error::{Result, StorageError};
use crate::snapshot::{copy_layers, mount_overlay, unmount, SnapshotKind};
use crate::store::Store;
use crate::util::temp_name;

/// A container's root filesystem made from an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Where the container's root filesystem is.
    pub rootfs: PathBuf,
    pub kind: SnapshotKind,
    pub image_id: String,
}

fn lease_id(container: &str) -> String {
    format!("container:{container}")
}

fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StorageError::InvalidContainerId { id: id.to_string() })
    }
}

impl Store {
    fn container_dir(&self, id: &str) -> PathBuf {
        self.root().join("containers").join(id)
    }

    /// Make container `id`'s snapshot of `image`: lease the image, then
    /// mount overlay on `containers/<id>/merged`, or (when overlay fails and
    /// `allow_copy`) copy the layers there.
    pub fn create_snapshot(&self, image: &str, id: &str, allow_copy: bool) -> Result<Snapshot> {
        check_id(id)?;
        let img = self.image(image)?;
        self.db()
            .lease(&lease_id(id), None, &[(LeaseKind::Image, &img.id)])?;
        let made = self.make_snapshot(&img.id, id, allow_copy);
        if made.is_err() {
            let _ = self.db().release(&lease_id(id));
            let _ = fs::remove_dir_all(self.container_dir(id));
        }
        made
    }

    fn make_snapshot(&self, image_id: &str, id: &str, allow_copy: bool) -> Result<Snapshot> {
        let dir = self.container_dir(id);
        let lowers = self.lower_dirs(image_id)?;
        let rootfs = dir.join("merged");
        let kind = match mount_overlay(&lowers, &dir.join("upper"), &dir.join("work"), &rootfs) {
            Ok(()) => SnapshotKind::Overlay,
            Err(_) if allow_copy => {
                copy_layers(&lowers, &rootfs)?;
                SnapshotKind::Copy
            }
            Err(e) => return Err(e),
        };
        let snap = Snapshot {
            rootfs,
            kind,
            image_id: image_id.to_string(),
        };
        if let Err(e) = write_record(&dir, &snap) {
            if kind == SnapshotKind::Overlay {
                let _ = unmount(&snap.rootfs);
            }
            return Err(e);
        }
        Ok(snap)
    }

    /// Container `id`'s snapshot, mounted again if it is an overlay that is
    /// not mounted (after a reboot).
    pub fn mount_snapshot(&self, id: &str) -> Result<Snapshot> {
        check_id(id)?;
        let dir = self.container_dir(id);
        let snap = read_record(&dir)?;
        if snap.kind == SnapshotKind::Overlay && !is_mountpoint(&snap.rootfs) {
            let lowers = self.lower_dirs(&snap.image_id)?;
            mount_overlay(&lowers, &dir.join("upper"), &dir.join("work"), &snap.rootfs)?;
        }
        Ok(snap)
    }

    /// Write container `id`'s filesystem as a tar to `out`: the merged view
    /// (upper over the image layers, whiteouts applied), mounted first if
    /// needed; symlinks are stored as links, never followed.
    pub fn export_snapshot<W: std::io::Write>(&self, id: &str, out: W) -> Result<W> {
        let snap = self.mount_snapshot(id)?;
        let err = |source| StorageError::ExportSnapshot {
            id: id.to_string(),
            path: snap.rootfs.clone(),
            source,
        };
        let mut b = tar::Builder::new(out);
        b.follow_symlinks(false);
        b.mode(tar::HeaderMode::Complete);
        b.append_dir_all(".", &snap.rootfs).map_err(err)?;
        b.into_inner().map_err(err)
    }

    /// Unmount and delete container `id`'s snapshot and release its image.
    pub fn remove_snapshot(&self, id: &str) -> Result<()> {
        check_id(id)?;
        let dir = self.container_dir(id);
        let rootfs = dir.join("merged");
        if is_mountpoint(&rootfs) {
            unmount(&rootfs)?;
        }
        if dir.exists() {
            self.discard_dir(&dir)?;
        }
        self.db().release(&lease_id(id))
    }
}

/// Whether `p` is a mount point (in this mount namespace).
fn is_mountpoint(p: &Path) -> bool {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .any(|m| Path::new(m) == p)
}

fn write_record(dir: &Path, s: &Snapshot) -> Result<()> {
    let v = serde_json::json!({
        "image": s.image_id,
        "kind": match s.kind { SnapshotKind::Overlay => "overlay", SnapshotKind::Copy => "copy" },
    });
    let path = dir.join("snapshot.json");
    let tmp = dir.join(format!(".{}", temp_name("snapshot")));
    let werr = |source| StorageError::SnapshotRecord {
        path: path.clone(),
        source,
    };
    fs::write(&tmp, v.to_string()).map_err(werr)?;
    fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(werr)?;
    fs::rename(&tmp, &path).map_err(werr)
}

fn read_record(dir: &Path) -> Result<Snapshot> {
    let path = dir.join("snapshot.json");
    let data = fs::read(&path).map_err(|source| StorageError::SnapshotRecord {
        path: path.clone(),
        source,
    })?;
    let v: serde_json::Value =
        serde_json::from_slice(&data).map_err(|e| StorageError::SnapshotRecord {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
    let kind = if v["kind"] == "copy" {
        SnapshotKind::Copy
    } else {
        SnapshotKind::Overlay
    };
    Ok(Snapshot {
        rootfs: dir.join("merged"),
        kind,
        image_id: v["image"].as_str().unwrap_or_default().to_string(),
    })
}
