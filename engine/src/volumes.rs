//! Named volumes: `<root>/volumes/<name>/_data`, with `volume.json`
//! (name, creation time, labels) beside it, written by rename after the
//! data dir exists — so a volume is listed only once it is whole. `-v
//! NAME:/dst` creates a missing one, as docker does. A volume a container
//! record refers to cannot be removed. An empty volume mounted where the
//! image has content gets a copy of it at create (docker's copy-up).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::db::ContainerRecord;
use crate::engine::Engine;
use crate::error::{io, EngineError, Result};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Volume {
    pub name: String,
    pub created_at: String,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// The directory containers mount.
    #[serde(skip_deserializing)]
    pub mountpoint: PathBuf,
}

fn dir(root: &Path, name: &str) -> PathBuf {
    root.join("volumes").join(name)
}

fn read(root: &Path, name: &str) -> Result<Volume> {
    if !crate::host::valid_name(name) {
        return Err(EngineError::NoSuchVolume(name.to_string()));
    }
    let meta = dir(root, name).join("volume.json");
    let b = match std::fs::read(&meta) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(EngineError::NoSuchVolume(name.to_string()))
        }
        Err(e) => return Err(io("read", &meta)(e)),
    };
    let mut v: Volume = serde_json::from_slice(&b).map_err(|e| EngineError::InvalidOption {
        option: "volume".into(),
        reason: format!("{}: {e}", meta.display()),
    })?;
    v.mountpoint = dir(root, name).join("_data");
    Ok(v)
}

/// docker's copy-up for every volume among `mounts` that is still empty:
/// the image's content at the mount's destination (owners, modes,
/// symlinks as links) goes into it. The root is the container's fresh
/// snapshot, which nothing runs in yet; a destination whose path in the
/// image passes through a symlink is not copied (never followed).
pub(crate) fn copy_up_all(rootfs: &Path, mounts: &[crate::options::BindMount]) -> Result<()> {
    for m in mounts.iter().filter(|m| m.volume.is_some()) {
        let empty = std::fs::read_dir(&m.source)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if !empty {
            continue;
        }
        let mut src = rootfs.to_path_buf();
        let mut plain_dir = true;
        for c in m.destination.split('/').filter(|c| !c.is_empty()) {
            src.push(c);
            match std::fs::symlink_metadata(&src) {
                Ok(md) if md.is_dir() => {}
                _ => {
                    plain_dir = false;
                    break;
                }
            }
        }
        if plain_dir {
            copy_tree(&src, &m.source).map_err(io("copy image content into", &m.source))?;
        }
    }
    Ok(())
}

/// Copy `src`'s entries into the existing directory `dst`, then give `dst`
/// `src`'s owner and mode.
fn copy_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{lchown, MetadataExt, PermissionsExt};
    for e in std::fs::read_dir(src)? {
        let e = e?;
        let (from, to) = (e.path(), dst.join(e.file_name()));
        let md = std::fs::symlink_metadata(&from)?;
        let ft = md.file_type();
        if ft.is_dir() {
            std::fs::create_dir(&to)?;
            copy_tree(&from, &to)?;
            continue;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
        } else if ft.is_file() {
            std::fs::copy(&from, &to)?;
        } else {
            continue; // devices, fifos, sockets: not volume content
        }
        lchown(&to, Some(md.uid()), Some(md.gid()))?;
        if !ft.is_symlink() {
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(md.mode() & 0o7777))?;
        }
    }
    let md = std::fs::symlink_metadata(src)?;
    lchown(dst, Some(md.uid()), Some(md.gid()))?;
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(md.mode() & 0o7777))
}

fn users(recs: &[ContainerRecord], name: &str) -> Vec<String> {
    recs.iter()
        .filter(|r| {
            r.options
                .mounts
                .iter()
                .any(|m| m.volume.as_deref() == Some(name))
        })
        .map(|r| r.name.clone())
        .collect()
}

impl Engine {
    /// Create a volume (a random name when `name` is `None`); an existing
    /// one is an error.
    pub fn volume_create(
        &self,
        name: Option<&str>,
        labels: std::collections::BTreeMap<String, String>,
    ) -> Result<Volume> {
        let name = match name {
            Some(n) => n.to_string(),
            None => crate::host::random_id()?,
        };
        if !crate::host::valid_name(&name) {
            return Err(EngineError::InvalidName(name));
        }
        if read(&self.root, &name).is_ok() {
            return Err(EngineError::VolumeExists(name));
        }
        let d = dir(&self.root, &name);
        let data = d.join("_data");
        std::fs::create_dir_all(&data).map_err(io("create", &data))?;
        let v = Volume {
            name: name.clone(),
            created_at: crate::monitor::time::rfc3339_nanos(std::time::SystemTime::now()),
            labels,
            mountpoint: data,
        };
        let tmp = d.join(".volume.json.tmp");
        let meta = d.join("volume.json");
        let json = serde_json::to_vec_pretty(&v).expect("a volume serializes");
        std::fs::write(&tmp, json)
            .and_then(|()| std::fs::rename(&tmp, &meta))
            .map_err(io("write", &meta))?;
        Ok(v)
    }

    /// The volume `name`, created when missing (`-v NAME:/dst`).
    pub(crate) fn volume_ensure(&self, name: &str) -> Result<Volume> {
        match read(&self.root, name) {
            Err(EngineError::NoSuchVolume(_)) => {
                match self.volume_create(Some(name), Default::default()) {
                    // Another create won the race: use it.
                    Err(EngineError::VolumeExists(_)) => read(&self.root, name),
                    r => r,
                }
            }
            r => r,
        }
    }

    /// Every volume with the containers that use it, by name.
    pub fn volume_list(&self) -> Result<Vec<(Volume, Vec<String>)>> {
        let recs = self.db.list()?;
        let mut names: Vec<String> = std::fs::read_dir(self.root.join("volumes"))
            .map(|d| {
                d.flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        Ok(names
            .iter()
            .filter_map(|n| read(&self.root, n).ok())
            .map(|v| {
                let u = users(&recs, &v.name);
                (v, u)
            })
            .collect())
    }

    pub fn volume_inspect(&self, name: &str) -> Result<(Volume, Vec<String>)> {
        let v = read(&self.root, name)?;
        let u = users(&self.db.list()?, name);
        Ok((v, u))
    }

    /// Remove a volume and its data; refused while a container uses it.
    pub fn volume_remove(&self, name: &str) -> Result<()> {
        let (v, u) = self.volume_inspect(name)?;
        if !u.is_empty() {
            return Err(EngineError::VolumeInUse {
                name: v.name,
                containers: u.join(", "),
            });
        }
        let d = dir(&self.root, name);
        // The metadata first: a crash half-way leaves an unlisted dir, never
        // a listed volume with half its data.
        let meta = d.join("volume.json");
        std::fs::remove_file(&meta).map_err(io("remove", &meta))?;
        std::fs::remove_dir_all(&d).map_err(io("remove", &d))
    }

    /// Remove the anonymous volumes among `mounts` (a failed create, `rm
    /// -v`, `--rm`); one another container mounts too stays.
    pub(crate) fn remove_anonymous_volumes(&self, mounts: &[crate::options::BindMount]) {
        for m in mounts.iter().filter(|m| m.anonymous) {
            if let Some(v) = &m.volume {
                let _ = self.volume_remove(v);
            }
        }
    }

    /// Remove every volume no container uses; their names.
    pub fn volume_prune(&self) -> Result<Vec<String>> {
        let mut gone = Vec::new();
        for (v, u) in self.volume_list()? {
            if u.is_empty() {
                self.volume_remove(&v.name)?;
                gone.push(v.name);
            }
        }
        Ok(gone)
    }
}
