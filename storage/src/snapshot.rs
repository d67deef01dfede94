//! Container snapshots: the image's layer chain as overlay lowers plus a
//! per-container upper/work dir, or a copy where overlay is unavailable.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{mknod, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;

use crate::digest::Digest;
use crate::error::{Result, StorageError};
use crate::store::Store;
use crate::sys;

/// Overlay's limit on lower layers.
pub const MAX_LOWERS: usize = 500;

/// How a snapshot was made (and so how to take it down).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotKind {
    Overlay,
    Copy,
}

impl Store {
    /// The unpacked layer dirs of an image, top-most first (overlay's
    /// `lowerdir` order).
    pub fn lower_dirs(&self, reference: &str) -> Result<Vec<PathBuf>> {
        let img = self.image(reference)?;
        let mut out = Vec::with_capacity(img.layers.len());
        for l in img.layers.iter().rev() {
            let d = self.layer_path(&Digest::parse(&l.chain_id)?).join("diff");
            if !d.is_dir() {
                return Err(StorageError::LayerDir {
                    path: d,
                    source: std::io::Error::from(std::io::ErrorKind::NotFound),
                });
            }
            out.push(d);
        }
        Ok(out)
    }
}

fn escape(p: &Path) -> String {
    let s = p.to_string_lossy();
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, ':' | ',' | '\\') {
            o.push('\\');
        }
        o.push(c);
    }
    o
}

/// Mount overlay on `target`: `lowers` (top-most first) read-only, `upper`
/// and `work` (same filesystem, created if missing) for the container's
/// writes.
pub fn mount_overlay(lowers: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> Result<()> {
    if lowers.len() > MAX_LOWERS {
        return Err(StorageError::ChainTooLong {
            count: lowers.len(),
            limit: MAX_LOWERS,
        });
    }
    for d in [upper, work, target] {
        fs::create_dir_all(d).map_err(|source| StorageError::CreateDir {
            path: d.to_path_buf(),
            source,
        })?;
    }
    let lower = lowers
        .iter()
        .map(|p| escape(p))
        .collect::<Vec<_>>()
        .join(":");
    let mut data = format!(
        "lowerdir={lower},upperdir={},workdir={}",
        escape(upper),
        escape(work)
    );
    // In a user namespace overlay may not use trusted.* xattrs.
    if crate::in_user_namespace() {
        data.push_str(",userxattr");
    }
    // mount(2) copies at most one page of option data; longer chains go
    // through the new mount API, one layer per call.
    if data.len() >= 4096 {
        return mount_overlay_long(lowers, upper, work, target).map_err(|source| {
            StorageError::MountOverlayLong {
                target: target.to_path_buf(),
                source,
            }
        });
    }
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(data.as_str()),
    )
    .map_err(|source| StorageError::MountOverlay {
        target: target.to_path_buf(),
        source,
    })
}

fn cpath(p: &Path) -> std::io::Result<std::ffi::CString> {
    std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other)
}

/// Overlay through fsopen/fsconfig(`lowerdir+`)/fsmount/move_mount.
fn mount_overlay_long(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> std::io::Result<()> {
    use std::os::fd::AsFd;
    let ctx = sys::fsopen(c"overlay")?;
    for l in lowers {
        sys::fsconfig_string(ctx.as_fd(), c"lowerdir+", &cpath(l)?)?;
    }
    sys::fsconfig_string(ctx.as_fd(), c"upperdir", &cpath(upper)?)?;
    sys::fsconfig_string(ctx.as_fd(), c"workdir", &cpath(work)?)?;
    if crate::in_user_namespace() {
        sys::fsconfig_flag(ctx.as_fd(), c"userxattr")?;
    }
    let mnt = sys::fsmount(ctx.as_fd())?;
    sys::move_mount(mnt.as_fd(), &cpath(target)?)
}

/// Undo [`mount_overlay`] (lazily if busy).
pub fn unmount(target: &Path) -> Result<()> {
    umount2(target, MntFlags::empty())
        .or_else(|_| umount2(target, MntFlags::MNT_DETACH))
        .map_err(|source| StorageError::Unmount {
            target: target.to_path_buf(),
            source,
        })
}

/// Mount the chain on `target`, or when overlay fails and `allow_copy`,
/// materialise it there as a plain copy (writes then land in `target`).
pub fn prepare_snapshot(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    allow_copy: bool,
) -> Result<SnapshotKind> {
    match mount_overlay(lowers, upper, work, target) {
        Ok(()) => Ok(SnapshotKind::Overlay),
        Err(_) if allow_copy => {
            copy_layers(lowers, target)?;
            Ok(SnapshotKind::Copy)
        }
        Err(e) => Err(e),
    }
}

/// Apply `lowers` (top-most first, as for overlay) bottom-up into
/// `target`, honouring whiteouts (0/0 char devices) and opaque dirs.
/// Hardlinks become separate copies.
pub fn copy_layers(lowers: &[PathBuf], target: &Path) -> Result<()> {
    fs::create_dir_all(target).map_err(|source| StorageError::CreateDir {
        path: target.to_path_buf(),
        source,
    })?;
    for layer in lowers.iter().rev() {
        copy_tree(layer, target)?;
    }
    Ok(())
}

fn is_whiteout(m: &fs::Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn is_opaque(dir: &Path) -> bool {
    let name = crate::overlay_opaque_xattr().to_string_lossy();
    matches!(get_xattr(dir, &name), Ok(Some(v)) if v == b"y")
}

/// The value of extended attribute `name` on `path` (not following a final
/// symlink); `None` when absent.
pub fn get_xattr(path: &Path, name: &str) -> std::io::Result<Option<Vec<u8>>> {
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    let n = std::ffi::CString::new(name).map_err(std::io::Error::other)?;
    crate::sys::lgetxattr(&p, &n)
}

fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    let cerr = |source| StorageError::CopySnapshot {
        src: src.to_path_buf(),
        dst: dst.to_path_buf(),
        source,
    };
    for e in fs::read_dir(src).map_err(cerr)? {
        let e = e.map_err(cerr)?;
        let (s, d) = (e.path(), dst.join(e.file_name()));
        let m = fs::symlink_metadata(&s).map_err(cerr)?;
        let existing = fs::symlink_metadata(&d).ok();
        let keep_dir =
            m.is_dir() && existing.as_ref().is_some_and(|x| x.is_dir()) && !is_opaque(&s);
        if existing.is_some() && !keep_dir {
            remove_any(&d).map_err(cerr)?;
        }
        if is_whiteout(&m) {
            continue;
        }
        copy_one(&s, &d, &m, keep_dir)?;
    }
    Ok(())
}

fn copy_one(s: &Path, d: &Path, m: &fs::Metadata, keep_dir: bool) -> Result<()> {
    let cerr = |source| StorageError::CopySnapshot {
        src: s.to_path_buf(),
        dst: d.to_path_buf(),
        source,
    };
    let ft = m.file_type();
    if ft.is_dir() {
        if !keep_dir {
            fs::create_dir(d).map_err(cerr)?;
        }
        copy_tree(s, d)?;
    } else if ft.is_symlink() {
        std::os::unix::fs::symlink(fs::read_link(s).map_err(cerr)?, d).map_err(cerr)?;
    } else if ft.is_file() {
        fs::copy(s, d).map_err(cerr)?;
    } else {
        let kind = if ft.is_char_device() {
            SFlag::S_IFCHR
        } else if ft.is_block_device() {
            SFlag::S_IFBLK
        } else if ft.is_fifo() {
            SFlag::S_IFIFO
        } else {
            return Ok(()); // sockets are not image content
        };
        mknod(d, kind, Mode::from_bits_truncate(m.mode()), m.rdev()).map_err(|e| cerr(e.into()))?;
    }
    let _ = std::os::unix::fs::lchown(d, Some(m.uid()), Some(m.gid()));
    if !ft.is_symlink() {
        fs::set_permissions(d, fs::Permissions::from_mode(m.mode() & 0o7777)).map_err(cerr)?;
    }
    let t = TimeSpec::new(m.mtime(), m.mtime_nsec());
    let _ = utimensat(
        nix::fcntl::AT_FDCWD,
        OsStr::new(d),
        &t,
        &t,
        UtimensatFlags::NoFollowSymlink,
    );
    Ok(())
}

fn remove_any(p: &Path) -> std::io::Result<()> {
    if fs::symlink_metadata(p)?.is_dir() {
        fs::remove_dir_all(p)
    } else {
        fs::remove_file(p)
    }
}
