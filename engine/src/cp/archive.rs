//! The producing side of a copy: a tar of one entry of a directory (and
//! everything below it, when a directory). Every file is opened relative to
//! a descriptor of its parent with `O_NOFOLLOW`, and a directory's children
//! through the descriptor of the directory itself, so the walk never leaves
//! the tree it started in, whatever is renamed or swapped meanwhile.
//! Symlinks are archived as links, never followed; files with several links
//! become hard links to the first name archived; sockets are skipped.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, major, minor, FileStat, Mode, SFlag};

use super::root::{abs, kind, Root};
use crate::error::{EngineError, Result};

struct Producer<W: Write> {
    tar: tar::Builder<W>,
    /// (device, inode) of files with several links → their first name.
    links: HashMap<(u64, u64), PathBuf>,
}

/// Write a tar of `entry` in the directory `dir` (resolved components of
/// `root`) to `out`; the entry is named `top` in the archive (`.` for a
/// directory's contents), its children `top/…`.
pub(crate) fn write<W: Write>(
    root: &Root,
    dir: &[OsString],
    entry: &OsStr,
    top: &Path,
    out: W,
) -> Result<W> {
    let shown = abs(dir);
    let d = root
        .open_exact(dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
        .map_err(err("open", &shown))?;
    let mut p = Producer {
        tar: tar::Builder::new(out),
        links: HashMap::new(),
    };
    p.add(d.as_fd(), entry, top, &shown.join(entry))?;
    p.tar.into_inner().map_err(|e| EngineError::Copy {
        op: "write archive of",
        path: shown.join(entry),
        source: e,
    })
}

fn err(op: &'static str, path: &Path) -> impl FnOnce(nix::errno::Errno) -> EngineError {
    crate::error::cp_err(op, path.to_path_buf())
}

fn header(st: &FileStat, t: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(t);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    h
}

impl<W: Write> Producer<W> {
    /// Archive `name` in `dir` as `path`; `shown` is where it is, for messages.
    fn add(&mut self, dir: BorrowedFd<'_>, name: &OsStr, path: &Path, shown: &Path) -> Result<()> {
        let st = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(err("stat", shown))?;
        let werr = |e: io::Error| EngineError::Copy {
            op: "archive",
            path: shown.to_path_buf(),
            source: e,
        };
        let k = kind(&st);
        if k == SFlag::S_IFDIR {
            let mut h = header(&st, tar::EntryType::Directory);
            self.tar
                .append_data(&mut h, path, io::empty())
                .map_err(werr)?;
            let mut d = Dir::openat(
                dir,
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(err("open", shown))?;
            let mut children: Vec<OsString> = Vec::new();
            for e in d.iter() {
                let e = e.map_err(err("read directory", shown))?;
                let n = e.file_name().to_bytes();
                if n != b"." && n != b".." {
                    children.push(OsStr::from_bytes(n).to_os_string());
                }
            }
            children.sort();
            for c in children {
                self.add(d.as_fd(), &c, &path.join(&c), &shown.join(&c))?;
            }
            return Ok(());
        }
        if st.st_nlink > 1 && k != SFlag::S_IFLNK {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key) {
                let mut h = header(&st, tar::EntryType::Link);
                return self.tar.append_link(&mut h, path, first).map_err(werr);
            }
            self.links.insert(key, path.to_path_buf());
        }
        match k {
            SFlag::S_IFREG => {
                // O_NONBLOCK: something swapped in for the file (a FIFO)
                // must not hang the copy; the type is checked again below.
                let fd = nix::fcntl::openat(
                    dir,
                    name,
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(err("open", shown))?;
                let now = fstat(&fd).map_err(err("stat", shown))?;
                if kind(&now) != SFlag::S_IFREG {
                    return Err(EngineError::Copy {
                        op: "archive",
                        path: shown.to_path_buf(),
                        source: io::Error::other("changed from a regular file while being copied"),
                    });
                }
                let size = now.st_size.max(0) as u64;
                let mut h = header(&now, tar::EntryType::Regular);
                h.set_size(size);
                // Exactly `size` bytes whatever the file does meanwhile:
                // cut when it grew, zero-filled when it shrank.
                let data = File::from(fd).take(size).chain(io::repeat(0)).take(size);
                self.tar.append_data(&mut h, path, data).map_err(werr)
            }
            SFlag::S_IFLNK => {
                let target = nix::fcntl::readlinkat(dir, name).map_err(err("read link", shown))?;
                let mut h = header(&st, tar::EntryType::Symlink);
                self.tar.append_link(&mut h, path, &target).map_err(werr)
            }
            SFlag::S_IFCHR | SFlag::S_IFBLK | SFlag::S_IFIFO => {
                let t = match k {
                    SFlag::S_IFCHR => tar::EntryType::Char,
                    SFlag::S_IFBLK => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                };
                let mut h = header(&st, t);
                if k != SFlag::S_IFIFO {
                    h.set_device_major(major(st.st_rdev) as u32).map_err(werr)?;
                    h.set_device_minor(minor(st.st_rdev) as u32).map_err(werr)?;
                }
                self.tar
                    .append_data(&mut h, path, io::empty())
                    .map_err(werr)
            }
            // Sockets are not file content (docker skips them too).
            _ => Ok(()),
        }
    }
}
