//! Path resolution inside a container root that can never leave it.
//!
//! Every path the runtime touches on behalf of a container (mount targets,
//! device nodes, masked paths, /dev/console, cwd) is resolved here. A path
//! that opens with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS)` as it
//! is (no `..`, no symlink, all there: the usual case) is done in one
//! call. Otherwise the walk
//! is done component by component with `readlinkat`, so a symlink whose
//! target climbs out of the root with `..` is reported as an error rather
//! than silently clamped; absolute symlinks are resolved against the
//! container root, as the container itself would see them. The final open
//! uses `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS)` on the resolved
//! path, so a symlink swapped in after the walk makes the open fail instead
//! of escaping, and the returned `O_PATH` descriptor pins the inode that is
//! then mounted on through `/proc/self/fd/N` (CVE-2021-30465).

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, Mode, SFlag};

use crate::error::{Error, Result};

const MAX_SYMLINKS: usize = 40;

/// What to do when the final component does not exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Create {
    /// Fail with ENOENT.
    No,
    /// Create a directory (and all missing parents).
    Dir,
    /// Create an empty regular file (parents as directories).
    File,
}

/// Resolve `path` (absolute or relative to the root) inside the root `root`
/// to a clean, symlink-free path relative to it. Missing components are
/// allowed only after the last existing one (they will be created).
pub fn resolve_in_root(root: BorrowedFd<'_>, path: &Path) -> Result<PathBuf> {
    if let Some((rel, _fd)) = fast_path(root, path) {
        return Ok(rel);
    }
    let mut pending: Vec<std::ffi::OsString> = components(path);
    pending.reverse();
    let mut resolved: Vec<std::ffi::OsString> = Vec::new();
    let mut links = 0;
    let mut missing = false;
    while let Some(c) = pending.pop() {
        if c == ".." {
            if resolved.pop().is_none() {
                return Err(escape(path));
            }
            continue;
        }
        resolved.push(c);
        if missing {
            continue;
        }
        let rel = join(&resolved);
        match nix::fcntl::readlinkat(root, rel.as_path()) {
            Ok(target) => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(Error::Path {
                        op: "resolve",
                        path: path.into(),
                        source: Errno::ELOOP,
                    });
                }
                resolved.pop();
                let target = PathBuf::from(target);
                if target.is_absolute() {
                    resolved.clear();
                }
                let mut t = components(&target);
                t.reverse();
                pending.extend(t);
            }
            Err(Errno::EINVAL) => {} // exists, not a symlink
            Err(Errno::ENOENT) => missing = true,
            Err(e) => {
                return Err(Error::Path {
                    op: "resolve",
                    path: path.into(),
                    source: e,
                })
            }
        }
    }
    Ok(join(&resolved))
}

/// The common case in one syscall: a path without `..` that exists and
/// has no symlink on it opens as is with `RESOLVE_IN_ROOT |
/// RESOLVE_NO_SYMLINKS`, and is then its own resolution. Anything else
/// (a symlink: ELOOP; a missing component; `..`) takes the walk.
fn fast_path(root: BorrowedFd<'_>, path: &Path) -> Option<(PathBuf, OwnedFd)> {
    let parts = components(path);
    if parts.iter().any(|c| c == "..") {
        return None;
    }
    let rel = join(&parts);
    let fd = open_resolved(root, &rel, OFlag::O_PATH).ok()?;
    Some((rel, fd))
}

fn escape(path: &Path) -> Error {
    Error::InvalidConfig(format!(
        "path {} resolves outside the container root (a symlink or '..' escapes it)",
        path.display()
    ))
}

fn components(p: &Path) -> Vec<std::ffi::OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

fn join(parts: &[std::ffi::OsString]) -> PathBuf {
    if parts.is_empty() {
        return PathBuf::from(".");
    }
    parts.iter().collect()
}

fn how(flags: OFlag) -> OpenHow {
    OpenHow::new().flags(flags | OFlag::O_CLOEXEC).resolve(
        ResolveFlag::RESOLVE_IN_ROOT
            | ResolveFlag::RESOLVE_NO_SYMLINKS
            | ResolveFlag::RESOLVE_NO_MAGICLINKS,
    )
}

/// Open an already-resolved, symlink-free relative path inside `root`.
pub fn open_resolved(root: BorrowedFd<'_>, rel: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    openat2(root, rel, how(flags))
}

/// Resolve `path` in `root`, create what is missing as asked, and return an
/// `O_PATH` descriptor of the result.
pub fn open_in_root(root: BorrowedFd<'_>, path: &Path, create: Create) -> Result<OwnedFd> {
    if let Some((_, fd)) = fast_path(root, path) {
        return Ok(fd);
    }
    let rel = resolve_in_root(root, path)?;
    match open_resolved(root, &rel, OFlag::O_PATH) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) if create != Create::No => {}
        Err(e) => {
            return Err(Error::Path {
                op: "open in container root",
                path: path.into(),
                source: e,
            })
        }
    }
    // Create the missing tail one component at a time, each relative to a
    // directory descriptor that was itself opened without following links.
    let parts: Vec<&OsStr> = rel.iter().collect();
    let mut dir =
        open_resolved(root, Path::new("."), OFlag::O_PATH | OFlag::O_DIRECTORY).map_err(|e| {
            Error::Path {
                op: "open container root",
                path: path.into(),
                source: e,
            }
        })?;
    for (i, name) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let want_file = last && create == Create::File;
        let sofar: PathBuf = parts[..=i].iter().collect();
        match open_resolved(root, &sofar, OFlag::O_PATH) {
            Ok(fd) => {
                dir = fd;
                continue;
            }
            Err(Errno::ENOENT) => {}
            Err(e) => {
                return Err(Error::Path {
                    op: "open in container root",
                    path: sofar,
                    source: e,
                })
            }
        }
        let res = if want_file {
            let dfd = reopen_dir(&dir, &sofar)?;
            nix::fcntl::openat(
                &dfd,
                *name,
                OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_WRONLY
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o644),
            )
            .map(drop)
        } else {
            let dfd = reopen_dir(&dir, &sofar)?;
            nix::sys::stat::mkdirat(&dfd, *name, Mode::from_bits_truncate(0o755))
        };
        match res {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => {
                return Err(Error::Path {
                    op: "create in container root",
                    path: sofar,
                    source: e,
                })
            }
        }
        dir = open_resolved(root, &sofar, OFlag::O_PATH).map_err(|e| Error::Path {
            op: "open created path in container root",
            path: sofar.clone(),
            source: e,
        })?;
    }
    Ok(dir)
}

/// An O_PATH descriptor cannot be used with mkdirat; reopen it as a real
/// directory through its own magic link (no path lookup involved).
fn reopen_dir(dir: &OwnedFd, what: &Path) -> Result<OwnedFd> {
    nix::fcntl::openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::Path {
        op: "open parent directory",
        path: what.into(),
        source: e,
    })
}

/// `/proc/self/fd/N` of a descriptor, for mounting on or from it.
pub fn fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// The file type of an open descriptor.
pub fn file_type(fd: impl AsFd) -> nix::Result<SFlag> {
    let st = fstat(fd.as_fd())?;
    Ok(SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()))
}

/// Whether `fd` is the null character device (1:3).
pub fn is_dev_null(fd: impl AsFd) -> bool {
    match fstat(fd.as_fd()) {
        Ok(st) => {
            st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFCHR.bits()
                && nix::sys::stat::major(st.st_rdev) == 1
                && nix::sys::stat::minor(st.st_rdev) == 3
        }
        Err(_) => false,
    }
}

pub fn bytes(p: &Path) -> &[u8] {
    p.as_os_str().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn root() -> (tempfile::TempDir, OwnedFd) {
        let d = tempfile::tempdir().unwrap();
        let fd = nix::fcntl::open(
            d.path(),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        (d, fd)
    }

    fn check(setup: &[(&str, Option<&str>)], input: &str, want: std::result::Result<&str, ()>) {
        let (d, fd) = root();
        for (p, link) in setup {
            let full = d.path().join(p);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            match link {
                Some(t) => symlink(t, &full).unwrap(),
                None => std::fs::create_dir_all(&full).unwrap(),
            }
        }
        let got = resolve_in_root(fd.as_fd(), Path::new(input));
        match want {
            Ok(w) => assert_eq!(got.unwrap(), PathBuf::from(w), "{input}"),
            Err(()) => assert!(got.is_err(), "{input} resolved to {:?}", got),
        }
    }

    #[test]
    fn plain_paths_resolve_to_themselves() {
        check(&[("a/b", None)], "/a/b", Ok("a/b"));
        check(&[], "/x/y/z", Ok("x/y/z"));
        check(&[("a", None)], "/a/./b/../c", Ok("a/c"));
    }

    #[test]
    fn absolute_symlinks_resolve_against_the_container_root() {
        check(
            &[("run", None), ("var/run", Some("/run"))],
            "/var/run/docker.sock",
            Ok("run/docker.sock"),
        );
        check(
            &[("etc/x", Some("/tmp/outside"))],
            "/etc/x/y",
            Ok("tmp/outside/y"),
        );
    }

    #[test]
    fn relative_symlinks_resolve_inside() {
        check(
            &[("run", None), ("var/run", Some("../run"))],
            "/var/run",
            Ok("run"),
        );
    }

    #[test]
    fn escaping_symlinks_and_dotdot_are_errors() {
        check(
            &[("etc/evil", Some("../../../../../tmp"))],
            "/etc/evil/x",
            Err(()),
        );
        check(&[], "/../etc", Err(()));
        check(&[("loop", Some("loop"))], "/loop/x", Err(()));
    }

    #[test]
    fn creation_never_leaves_the_root() {
        let outside = tempfile::tempdir().unwrap();
        let (d, fd) = root();
        symlink(outside.path(), d.path().join("abs")).unwrap();
        let got = open_in_root(fd.as_fd(), Path::new("/abs/new/dir"), Create::Dir).unwrap();
        assert_eq!(file_type(&got).unwrap(), SFlag::S_IFDIR);
        assert!(d
            .path()
            .join(outside.path().strip_prefix("/").unwrap())
            .join("new/dir")
            .is_dir());
        assert_eq!(
            std::fs::read_dir(outside.path()).unwrap().count(),
            0,
            "created outside the root"
        );
        let f = open_in_root(fd.as_fd(), Path::new("/f/file"), Create::File).unwrap();
        assert_eq!(file_type(&f).unwrap(), SFlag::S_IFREG);
    }
}
