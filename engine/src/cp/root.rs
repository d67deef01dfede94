//! A directory used as `/`: every lookup below it is `openat2` with
//! `RESOLVE_IN_ROOT`, so neither `..` nor a symlink (absolute or relative)
//! leads out of it, exactly as if the process were chrooted there. For
//! `cp` that is the container's root filesystem on one side, and the host's
//! own `/` on the other (so both sides share one code path).

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat2, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, fstatat, mkdirat, FileStat, Mode, SFlag};

/// As the kernel's own limit on symlinks followed in one lookup.
const MAX_LINKS: usize = 40;

/// A path as the user wrote it, cleaned lexically as docker does (`.`
/// dropped, `..` taking back a component, never above `/`), with what its
/// spelling asserts: a trailing `/` or `/.` means "a directory", and a
/// final `.` also means "its contents".
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UserPath {
    pub comps: Vec<OsString>,
    pub trailing_sep: bool,
    pub contents: bool,
}

impl UserPath {
    /// `raw` relative to `/` (container paths, and host paths made
    /// absolute first).
    pub fn parse(raw: &OsStr) -> UserPath {
        let b = raw.as_bytes();
        let trimmed = {
            let mut t = b;
            while t.len() > 1 && t.ends_with(b"/") {
                t = &t[..t.len() - 1];
            }
            t
        };
        let mut comps: Vec<OsString> = Vec::new();
        for c in b.split(|&x| x == b'/') {
            match c {
                b"" | b"." => {}
                b".." => {
                    comps.pop();
                }
                c => comps.push(OsStr::from_bytes(c).to_os_string()),
            }
        }
        UserPath {
            comps,
            trailing_sep: b.len() > 1 && b.ends_with(b"/"),
            contents: trimmed == b"." || trimmed.ends_with(b"/."),
        }
    }

    /// A trailing `/` or `/.`: the path must be a directory.
    pub fn asserts_dir(&self) -> bool {
        self.trailing_sep || self.contents
    }
}

/// Components as a relative path (`.` for none).
pub(crate) fn rel(comps: &[OsString]) -> PathBuf {
    if comps.is_empty() {
        return PathBuf::from(".");
    }
    comps.iter().collect()
}

/// Components as an absolute path, for messages.
pub(crate) fn abs(comps: &[OsString]) -> PathBuf {
    let mut p = PathBuf::from("/");
    p.extend(comps);
    p
}

/// `/proc/self/fd/N`: a descriptor as a path (for mount and chmod).
pub(crate) fn fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// The file type bits of a stat.
pub(crate) fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

/// The outcome of [`Root::resolve`]: symlink-free components, and where
/// the first one that does not exist is (everything after it is taken as
/// written).
#[derive(Debug)]
pub(crate) struct Resolved {
    pub comps: Vec<OsString>,
    pub missing: Option<usize>,
}

pub(crate) struct Root {
    fd: OwnedFd,
}

impl Root {
    /// Use the directory at `path` (a trusted host path) as a root.
    pub fn open(path: &Path) -> nix::Result<Root> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root { fd })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn openat2(
        &self,
        comps: &[OsString],
        flags: OFlag,
        resolve: ResolveFlag,
    ) -> nix::Result<OwnedFd> {
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS | resolve);
        openat2(&self.fd, rel(comps).as_path(), how)
    }

    /// Open `comps`, following symlinks as the root's own processes would
    /// (inside the root).
    pub fn open_follow(&self, comps: &[OsString], flags: OFlag) -> nix::Result<OwnedFd> {
        self.openat2(comps, flags, ResolveFlag::empty())
    }

    /// Open `comps` as [`Root::resolve`] gave them: a symlink anywhere on the
    /// way (one swapped in since) fails with `ELOOP` instead of being
    /// followed; with `O_PATH | O_NOFOLLOW` a final symlink is opened itself.
    pub fn open_exact(&self, comps: &[OsString], flags: OFlag) -> nix::Result<OwnedFd> {
        self.openat2(comps, flags, ResolveFlag::RESOLVE_NO_SYMLINKS)
    }

    /// `lstat` of resolved `comps` (the root itself for none).
    pub fn lstat(&self, comps: &[OsString]) -> nix::Result<FileStat> {
        match comps.split_last() {
            None => fstat(&self.fd),
            Some((last, parent)) => {
                let dir = self.open_exact(parent, OFlag::O_PATH | OFlag::O_DIRECTORY)?;
                fstatat(&dir, last.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
            }
        }
    }

    /// Resolve `comps` inside the root, one component at a time: each
    /// symlink's target is read from a descriptor of its parent and
    /// expanded (an absolute one from the root; `..` stops at the root),
    /// the last component only when `follow_last`. A missing component is
    /// allowed; [`Resolved::missing`] says where.
    pub fn resolve(&self, comps: &[OsString], follow_last: bool) -> nix::Result<Resolved> {
        let mut pending: Vec<OsString> = comps.iter().rev().cloned().collect();
        let mut out: Vec<OsString> = Vec::new();
        let mut missing: Option<usize> = None;
        let mut links = 0;
        while let Some(c) = pending.pop() {
            let b = c.as_bytes();
            if b.is_empty() || b == b"." {
                continue;
            }
            if b == b".." {
                // Past a missing component there is nothing to go back through.
                if missing.is_some() {
                    return Err(Errno::ENOENT);
                }
                out.pop();
                continue;
            }
            if missing.is_some() || (pending.is_empty() && !follow_last) {
                out.push(c);
                continue;
            }
            let dir = self.open_exact(&out, OFlag::O_PATH | OFlag::O_DIRECTORY)?;
            match nix::fcntl::readlinkat(&dir, c.as_os_str()) {
                Ok(target) => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(Errno::ELOOP);
                    }
                    let t = target.as_bytes();
                    if t.starts_with(b"/") {
                        out.clear();
                    }
                    for part in t.split(|&x| x == b'/').rev() {
                        pending.push(OsStr::from_bytes(part).to_os_string());
                    }
                }
                Err(Errno::EINVAL) => out.push(c),
                Err(Errno::ENOENT) => {
                    missing = Some(out.len());
                    out.push(c);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Resolved {
            comps: out,
            missing,
        })
    }

    /// `mkdir -p` inside the root (the last component an empty file when
    /// `file`): each missing component is made relative to a descriptor of
    /// its parent, itself opened without following symlinks. Returns the
    /// resolved components and an `O_PATH` descriptor of the result.
    pub fn make_path(
        &self,
        comps: &[OsString],
        file: bool,
    ) -> nix::Result<(Vec<OsString>, OwnedFd)> {
        let r = self.resolve(comps, true)?;
        if let Some(first) = r.missing {
            for i in first..r.comps.len() {
                let parent =
                    self.open_exact(&r.comps[..i], OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
                let name = r.comps[i].as_os_str();
                let made = if file && i + 1 == r.comps.len() {
                    nix::fcntl::openat(
                        &parent,
                        name,
                        OFlag::O_CREAT
                            | OFlag::O_EXCL
                            | OFlag::O_WRONLY
                            | OFlag::O_NOFOLLOW
                            | OFlag::O_CLOEXEC,
                        Mode::from_bits_truncate(0o644),
                    )
                    .map(drop)
                } else {
                    mkdirat(&parent, name, Mode::from_bits_truncate(0o755))
                };
                match made {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let fd = self.open_exact(&r.comps, OFlag::O_PATH)?;
        Ok((r.comps, fd))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn up(s: &str) -> UserPath {
        UserPath::parse(OsStr::new(s))
    }

    fn names(c: &[OsString]) -> String {
        abs(c).display().to_string()
    }

    #[test]
    fn user_paths_keep_what_their_spelling_asserts() {
        let p = up("/a/./b/../c/");
        assert_eq!(names(&p.comps), "/a/c");
        assert!(p.trailing_sep && !p.contents && p.asserts_dir());
        let p = up("a/b/.");
        assert_eq!(names(&p.comps), "/a/b");
        assert!(p.contents && !p.trailing_sep);
        assert!(up("a/./").contents, "docker's Base(\"a/./\") is \".\"");
        assert!(!up("a/..").contents && !up("a/..").asserts_dir());
        assert_eq!(names(&up("../../x").comps), "/x", "never above /");
        let p = up("/");
        assert!(p.comps.is_empty() && !p.trailing_sep && !p.contents);
        assert!(up(".").contents);
        assert!(!up("file").asserts_dir());
    }

    fn tree() -> (tempfile::TempDir, Root) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        std::fs::create_dir_all(p.join("etc/sub")).unwrap();
        std::fs::write(p.join("etc/passwd"), "x").unwrap();
        symlink("/etc", p.join("abs")).unwrap();
        symlink("../../../../etc/sub", p.join("etc/up")).unwrap();
        symlink("/", p.join("root")).unwrap();
        symlink("loop2", p.join("loop1")).unwrap();
        symlink("loop1", p.join("loop2")).unwrap();
        symlink("nowhere/x", p.join("dangling")).unwrap();
        let r = Root::open(p).unwrap();
        (d, r)
    }

    fn check(r: &Root, path: &str, follow_last: bool, want: Result<(&str, Option<usize>), Errno>) {
        let got = r
            .resolve(&up(path).comps, follow_last)
            .map(|x| (names(&x.comps), x.missing));
        let want = want.map(|(p, m)| (p.to_string(), m));
        assert_eq!(got, want, "{path} (follow_last {follow_last})");
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let (_d, r) = tree();
        check(&r, "/abs/passwd", false, Ok(("/etc/passwd", None)));
        check(&r, "/abs", false, Ok(("/abs", None)));
        check(&r, "/abs", true, Ok(("/etc", None)));
        check(&r, "/etc/up", true, Ok(("/etc/sub", None)));
        check(&r, "/root/root/etc/passwd", true, Ok(("/etc/passwd", None)));
        check(&r, "/abs/new", true, Ok(("/etc/new", Some(1))));
        check(&r, "/nowhere/a/b", true, Ok(("/nowhere/a/b", Some(0))));
        check(&r, "/dangling", true, Ok(("/nowhere/x", Some(0))));
        check(&r, "/loop1", true, Err(Errno::ELOOP));
        check(&r, "/etc/passwd/x", true, Err(Errno::ENOTDIR));
    }

    #[test]
    fn make_path_creates_inside_the_root() {
        let (d, r) = tree();
        let (c, _fd) = r.make_path(&up("/root/abs/made/file").comps, true).unwrap();
        assert_eq!(names(&c), "/etc/made/file");
        assert!(d.path().join("etc/made/file").is_file());
        let (c, _fd) = r.make_path(&up("/etc/up/dir").comps, false).unwrap();
        assert_eq!(names(&c), "/etc/sub/dir");
        assert!(d.path().join("etc/sub/dir").is_dir());
    }
}
