//! The consuming side of a copy: unpack a tar into a directory of a
//! [`Root`]. An entry's parent directories are looked up inside the root
//! (symlinks followed as if chrooted there), the entry itself is made
//! relative to a descriptor of its parent and never followed: `O_EXCL |
//! O_NOFOLLOW` files, `mkdirat`, `symlinkat`, `mknodat`, and ownership,
//! mode and times set without following a final symlink. An entry whose
//! name climbs out of the destination with `..` is refused. As docker's
//! copy does, an existing directory is never replaced by a non-directory
//! nor the reverse.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, AT_FDCWD};
use nix::sys::stat::{
    fchmod, fchmodat, fstatat, makedev, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag,
    UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use tar::EntryType;

use super::root::{abs, fd_path, kind, Root};
use crate::error::{cp_err, EngineError, Result};

/// Who owns what is unpacked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Owner {
    /// Whoever runs berth (files are created by it and left so).
    Process,
    /// The uid and gid the archive records.
    Header,
    /// These ids, whatever the archive says.
    Fixed(u32, u32),
}

/// An entry name as components below the destination; `None` when `..`
/// climbs above it.
pub(crate) fn entry_comps(name: &[u8]) -> Option<Vec<OsString>> {
    let mut out: Vec<OsString> = Vec::new();
    for c in name.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                out.pop()?;
            }
            c => out.push(OsStr::from_bytes(c).to_os_string()),
        }
    }
    Some(out)
}

fn bad_header(e: std::io::Error) -> EngineError {
    EngineError::CopyArchive(e)
}

/// Unpack `input` into `dir` (resolved components of `root`).
pub(crate) fn extract(root: &Root, dir: &[OsString], owner: Owner, input: impl Read) -> Result<()> {
    let mut ar = tar::Archive::new(input);
    // Directory times are set last: creating their children changes them.
    let mut dir_times: Vec<(Vec<OsString>, i64)> = Vec::new();
    for e in ar.entries().map_err(bad_header)? {
        let mut e = e.map_err(bad_header)?;
        let t = e.header().entry_type();
        let file_like = matches!(
            t,
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse
        );
        let known = matches!(
            t,
            EntryType::Directory
                | EntryType::Symlink
                | EntryType::Link
                | EntryType::Char
                | EntryType::Block
                | EntryType::Fifo
        );
        if !file_like && !known {
            continue; // pax globals and the like: nothing to unpack
        }
        let name = e.path_bytes().into_owned();
        let rel = entry_comps(&name).ok_or_else(|| {
            EngineError::CopyBreakout(String::from_utf8_lossy(&name).into_owned())
        })?;
        let mut target = dir.to_vec();
        target.extend(rel);
        // An entry for the root itself (`./` into `/`): leave the root alone.
        let Some((leaf, parent)) = target.split_last() else {
            continue;
        };
        let shown = abs(&target);
        let pdir = open_parent(root, parent)?;
        let leaf = leaf.as_os_str();
        let existing = match fstatat(&pdir, leaf, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Some(kind(&st)),
            Err(Errno::ENOENT) => None,
            Err(e) => return Err(cp_err("stat", &shown)(e)),
        };
        let is_dir = t == EntryType::Directory;
        match existing {
            Some(SFlag::S_IFDIR) if !is_dir => {
                return Err(EngineError::CopyOverwriteDir(shown.display().to_string()))
            }
            Some(k) if k != SFlag::S_IFDIR && is_dir => {
                return Err(EngineError::CopyOverwriteNonDir(
                    shown.display().to_string(),
                ))
            }
            Some(k) if k != SFlag::S_IFDIR => unlinkat(&pdir, leaf, UnlinkatFlags::NoRemoveDir)
                .map_err(cp_err("replace", &shown))?,
            _ => {}
        }
        let h = e.header().clone();
        let mut file: Option<File> = None;
        if file_like {
            let fd = nix::fcntl::openat(
                &pdir,
                leaf,
                OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_WRONLY
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )
            .map_err(cp_err("create", &shown))?;
            let mut f = File::from(fd);
            std::io::copy(&mut e, &mut f).map_err(|source| EngineError::Copy {
                op: "write",
                path: shown.clone(),
                source,
            })?;
            file = Some(f);
        } else {
            match t {
                EntryType::Directory if existing.is_none() => {
                    mkdirat(&pdir, leaf, Mode::from_bits_truncate(0o700))
                        .map_err(cp_err("create directory", &shown))?
                }
                EntryType::Directory => {}
                EntryType::Symlink => {
                    let to = e.link_name_bytes().unwrap_or_default().into_owned();
                    symlinkat(OsStr::from_bytes(&to), &pdir, leaf)
                        .map_err(cp_err("create symlink", &shown))?
                }
                EntryType::Link => {
                    hard_link(root, dir, &e, &pdir, leaf, &shown)?;
                    continue; // the inode has its metadata already
                }
                _ => {
                    let (k, dev) = match t {
                        EntryType::Char | EntryType::Block => {
                            let maj = h.device_major().map_err(bad_header)?.unwrap_or(0);
                            let min = h.device_minor().map_err(bad_header)?.unwrap_or(0);
                            let k = if t == EntryType::Char {
                                SFlag::S_IFCHR
                            } else {
                                SFlag::S_IFBLK
                            };
                            (k, makedev(maj.into(), min.into()))
                        }
                        _ => (SFlag::S_IFIFO, 0),
                    };
                    mknodat(&pdir, leaf, k, Mode::from_bits_truncate(0o600), dev)
                        .map_err(cp_err("create node", &shown))?
                }
            }
        }
        set_owner_and_mode(&pdir, leaf, &h, owner, file.as_ref(), &shown)?;
        let mtime = h.mtime().map_err(bad_header)? as i64;
        if is_dir {
            dir_times.push((target, mtime));
        } else {
            set_mtime(&pdir, leaf, mtime).map_err(cp_err("set times of", &shown))?;
        }
    }
    for (target, mtime) in dir_times.iter().rev() {
        if let Some((leaf, parent)) = target.split_last() {
            let shown = abs(target);
            let pdir = root
                .open_follow(parent, OFlag::O_PATH | OFlag::O_DIRECTORY)
                .map_err(cp_err("open", abs(parent)))?;
            set_mtime(&pdir, leaf, *mtime).map_err(cp_err("set times of", &shown))?;
        }
    }
    Ok(())
}

/// The entry's parent directory, made (as docker does) when the archive
/// did not list it first.
fn open_parent(root: &Root, parent: &[OsString]) -> Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
    match root.open_follow(parent, flags) {
        Err(Errno::ENOENT) => {
            root.make_path(parent, false)
                .map_err(cp_err("create directory", abs(parent)))?;
            root.open_follow(parent, flags)
        }
        r => r,
    }
    .map_err(cp_err("open directory", abs(parent)))
}

/// A hard link entry: its target is another entry of the same archive,
/// named relative to the destination.
fn hard_link<R: Read>(
    root: &Root,
    dir: &[OsString],
    e: &tar::Entry<'_, R>,
    pdir: &OwnedFd,
    leaf: &OsStr,
    shown: &std::path::Path,
) -> Result<()> {
    let to = e.link_name_bytes().unwrap_or_default().into_owned();
    let rel = entry_comps(&to)
        .ok_or_else(|| EngineError::CopyBreakout(String::from_utf8_lossy(&to).into_owned()))?;
    let mut t = dir.to_vec();
    t.extend(rel);
    let Some((tleaf, tparent)) = t.split_last() else {
        return Err(EngineError::CopyBreakout(
            String::from_utf8_lossy(&to).into_owned(),
        ));
    };
    let tdir = root
        .open_follow(tparent, OFlag::O_PATH | OFlag::O_DIRECTORY)
        .map_err(cp_err("open", abs(tparent)))?;
    linkat(&tdir, tleaf.as_os_str(), pdir, leaf, AtFlags::empty()).map_err(cp_err("link", shown))
}

fn set_owner_and_mode(
    pdir: &OwnedFd,
    leaf: &OsStr,
    h: &tar::Header,
    owner: Owner,
    file: Option<&File>,
    shown: &std::path::Path,
) -> Result<()> {
    let ids = match owner {
        Owner::Process => None,
        Owner::Header => Some((
            h.uid().map_err(bad_header)? as u32,
            h.gid().map_err(bad_header)? as u32,
        )),
        Owner::Fixed(u, g) => Some((u, g)),
    };
    // Ownership first: chown clears the set-id bits the mode may carry.
    if let Some((u, g)) = ids {
        fchownat(
            pdir,
            leaf,
            Some(Uid::from_raw(u)),
            Some(Gid::from_raw(g)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(cp_err("change owner of", shown))?;
    }
    if h.entry_type() == EntryType::Symlink {
        return Ok(());
    }
    let mode = Mode::from_bits_truncate(h.mode().map_err(bad_header)? & 0o7777);
    match file {
        Some(f) => fchmod(f, mode),
        None => {
            // chmod has no "don't follow": pin the inode with O_PATH |
            // O_NOFOLLOW and change it through its /proc/self/fd link,
            // which names that inode (a symlink swapped in is refused).
            let fd = nix::fcntl::openat(
                pdir,
                leaf,
                OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(cp_err("open", shown))?;
            fchmodat(
                AT_FDCWD,
                fd_path(fd.as_fd()).as_path(),
                mode,
                FchmodatFlags::FollowSymlink,
            )
        }
    }
    .map_err(cp_err("change mode of", shown))
}

fn set_mtime(pdir: &impl AsFd, leaf: &OsStr, mtime: i64) -> nix::Result<()> {
    let t = TimeSpec::new(mtime, 0);
    utimensat(pdir, leaf, &t, &t, UtimensatFlags::NoFollowSymlink)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_never_climb_out() {
        let n = |s: &str| entry_comps(s.as_bytes()).map(|c| abs(&c).display().to_string());
        assert_eq!(n("a/b"), Some("/a/b".into()));
        assert_eq!(n("./a/./b/"), Some("/a/b".into()));
        assert_eq!(n("/abs/x"), Some("/abs/x".into()), "leading / stripped");
        assert_eq!(n("a/../b"), Some("/b".into()));
        assert_eq!(n("."), Some("/".into()));
        assert_eq!(n("../x"), None);
        assert_eq!(n("a/../../x"), None);
    }
}
