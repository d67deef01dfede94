//! `cp` between a container and the host, with docker's rules (a file onto
//! a file, into a directory, or to a new name; a directory into a
//! directory, its contents with a trailing `/.`, or to a new name; `-` for
//! a tar stream). Both sides go through one tar stream: the source is
//! archived by [`archive`], the destination unpacked by [`extract`], each
//! over a [`root::Root`] — the container's root filesystem, with its volumes
//! and bind mounts set up by [`mountns`], or the host's `/`. Every path
//! inside the container is resolved there as if it were `/`, so no symlink
//! or `..` in the container reaches a host file.
//!
//! Ownership: files copied into a container keep the uid and gid they have
//! on the host, or with `archive` belong to the container's user — what
//! docker's engine does, not what its manual says (docker/cli#6870). Files
//! copied out belong to whoever runs berth, or with `archive` keep their
//! uid and gid in the container — what the manual promises (docker's client
//! ignores `-a` in that direction). Modes and modification times are kept.

mod archive;
mod extract;
mod mountns;
mod root;

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::stat::SFlag;

use crate::db::ContainerRecord;
use crate::engine::Engine;
use crate::error::{cp_err, io, EngineError, Result};
use extract::Owner;
use root::{abs, kind, Root, UserPath};

/// `cp`'s flags.
#[derive(Clone, Copy, Debug, Default)]
pub struct CopyOptions {
    /// `-a`: ownership as described in the module docs.
    pub archive: bool,
    /// `-L`: copy what a symlink source points to, not the link.
    pub follow_link: bool,
}

/// Where `cp CONTAINER:SRC` goes.
pub enum CopyOut<'a> {
    /// A host path (relative to the current directory unless absolute).
    Path(&'a Path),
    /// `-`: a tar stream.
    Stream(&'a mut (dyn Write + Send)),
}

/// Where `cp … CONTAINER:DST` comes from.
pub enum CopyIn<'a> {
    Path(&'a Path),
    /// `-`: a tar stream, unpacked into DST (which must be a directory).
    Stream(&'a mut (dyn Read + Send)),
}

/// A copy source: `entry` in the directory `dir` (resolved components),
/// copied as `name` (empty: a directory's contents).
#[derive(Debug)]
struct Source {
    dir: Vec<OsString>,
    entry: OsString,
    is_dir: bool,
    name: OsString,
}

impl Source {
    /// The name of its top entry in the archive.
    fn top(&self) -> &OsStr {
        if self.name.is_empty() {
            OsStr::new(".")
        } else {
            &self.name
        }
    }
}

/// A copy destination: its resolved components and what is there now.
struct Dest {
    comps: Vec<OsString>,
    kind: Option<SFlag>,
}

impl Engine {
    /// `cp CONTAINER:SRC DST|-`.
    pub fn copy_out(&self, key: &str, src: &str, dst: CopyOut<'_>, o: CopyOptions) -> Result<()> {
        let rec = self.find(key)?;
        let src_up = UserPath::parse(OsStr::new(src));
        let not_found = || EngineError::NoSuchPath {
            container: key.to_string(),
            path: src.to_string(),
        };
        let owner = if o.archive {
            Owner::Header
        } else {
            Owner::Process
        };
        let spec = self.fs_spec(&rec);
        let dst = match dst {
            CopyOut::Path(p) => Ok(host_path(p)?),
            CopyOut::Stream(w) => Err(w),
        };
        mountns::with_container_fs(&self.store, &spec.as_spec(), move |cfs| {
            let source = locate_source(&cfs.root, &src_up, o.follow_link, not_found)?;
            match dst {
                Err(w) => archive::write(
                    &cfs.root,
                    &source.dir,
                    &source.entry,
                    source.top().as_ref(),
                    w,
                )
                .map(drop),
                Ok((shown, dst_up)) => {
                    let host = Root::open(Path::new("/")).map_err(cp_err("open", "/"))?;
                    let dest = locate_dest(&host, &dst_up, &shown)?;
                    let (dir, top) = plan(&source, &dest, &dst_up, src, &shown)?;
                    transfer(&cfs.root, &source, &top, &host, &dir, owner)
                }
            }
        })
    }

    /// `cp SRC|- CONTAINER:DST`.
    pub fn copy_in(&self, key: &str, src: CopyIn<'_>, dst: &str, o: CopyOptions) -> Result<()> {
        let rec = self.find(key)?;
        let dst_up = UserPath::parse(OsStr::new(dst));
        let shown = format!("{key}:{dst}");
        let owner = if o.archive {
            let (uid, gid) = self.container_user(&rec)?;
            Owner::Fixed(uid, gid)
        } else {
            Owner::Header
        };
        let spec = self.fs_spec(&rec);
        let src = match src {
            CopyIn::Path(p) => Ok(host_path(p)?),
            CopyIn::Stream(r) => Err(r),
        };
        mountns::with_container_fs(&self.store, &spec.as_spec(), move |cfs| {
            let dest = locate_dest(&cfs.root, &dst_up, &shown)?;
            match src {
                Err(r) => {
                    if dest.kind != Some(SFlag::S_IFDIR) {
                        return Err(EngineError::CopyNotDir(shown));
                    }
                    check_writable(cfs, &dest.comps, &shown)?;
                    extract::extract(&cfs.root, &dest.comps, owner, r)
                }
                Ok((src_shown, src_up)) => {
                    let host = Root::open(Path::new("/")).map_err(cp_err("open", "/"))?;
                    let not_found = || EngineError::Copy {
                        op: "copy",
                        path: PathBuf::from(&src_shown),
                        source: Errno::ENOENT.into(),
                    };
                    let source = locate_source(&host, &src_up, o.follow_link, not_found)?;
                    let (dir, top) = plan(&source, &dest, &dst_up, &src_shown, &shown)?;
                    check_writable(cfs, &dir, &shown)?;
                    transfer(&host, &source, &top, &cfs.root, &dir, owner)
                }
            }
        })
    }

    fn fs_spec(&self, rec: &ContainerRecord) -> SpecData {
        SpecData {
            id: rec.id.clone(),
            rootfs: rec.rootfs.clone(),
            running: self.state(rec).is_running(),
            mounts: rec.options.mounts.clone(),
            read_only: rec.options.read_only,
        }
    }

    /// The uid and gid the container's process runs as (its bundle's).
    fn container_user(&self, rec: &ContainerRecord) -> Result<(u32, u32)> {
        let p = rec.bundle.join("config.json");
        let cfg: serde_json::Value = serde_json::from_slice(
            &std::fs::read(&p).map_err(io("read", &p))?,
        )
        .map_err(|source| EngineError::BadRecord {
            id: rec.id.clone(),
            source,
        })?;
        let id = |k: &str| cfg["process"]["user"][k].as_u64().unwrap_or(0) as u32;
        Ok((id("uid"), id("gid")))
    }
}

/// Owned copy of what [`mountns::FsSpec`] borrows.
struct SpecData {
    id: String,
    rootfs: PathBuf,
    running: bool,
    mounts: Vec<crate::options::BindMount>,
    read_only: bool,
}

impl SpecData {
    fn as_spec(&self) -> mountns::FsSpec<'_> {
        mountns::FsSpec {
            id: &self.id,
            rootfs: &self.rootfs,
            running: self.running,
            mounts: &self.mounts,
            read_only: self.read_only,
        }
    }
}

/// A host path made absolute (against the current directory) and parsed;
/// also its spelling, for messages.
fn host_path(p: &Path) -> Result<(String, UserPath)> {
    let full = if p.is_absolute() {
        p.to_path_buf()
    } else {
        let cwd = std::env::current_dir().map_err(io("find", "the current directory"))?;
        let mut s = cwd.into_os_string();
        s.push("/");
        s.push(p.as_os_str());
        PathBuf::from(s)
    };
    Ok((p.display().to_string(), UserPath::parse(full.as_os_str())))
}

fn is_missing(e: Errno) -> bool {
    matches!(e, Errno::ENOENT | Errno::ENOTDIR)
}

/// Find a copy source. The last component is followed only with `-L` (or
/// when a trailing `/` asks for the directory); it is still copied under
/// the name it was asked by.
fn locate_source(
    root: &Root,
    up: &UserPath,
    follow: bool,
    not_found: impl Fn() -> EngineError,
) -> Result<Source> {
    let shown = abs(&up.comps);
    let r = root
        .resolve(&up.comps, follow || up.asserts_dir())
        .map_err(|e| {
            if is_missing(e) {
                not_found()
            } else {
                cp_err("resolve", &shown)(e)
            }
        })?;
    if r.missing.is_some() {
        return Err(not_found());
    }
    let st = root.lstat(&r.comps).map_err(|e| {
        if is_missing(e) {
            not_found()
        } else {
            cp_err("stat", &shown)(e)
        }
    })?;
    let is_dir = kind(&st) == SFlag::S_IFDIR;
    if up.asserts_dir() && !is_dir {
        return Err(EngineError::CopyNotDir(shown.display().to_string()));
    }
    let name = if up.contents {
        OsString::new()
    } else {
        up.comps.last().cloned().unwrap_or_default()
    };
    Ok(match r.comps.split_last() {
        Some((entry, dir)) if !up.contents => Source {
            dir: dir.to_vec(),
            entry: entry.clone(),
            is_dir,
            name,
        },
        _ => Source {
            dir: r.comps,
            entry: ".".into(),
            is_dir,
            name,
        },
    })
}

/// Find a copy destination: a symlink at the end is followed (so one can
/// copy into the directory a link names); only the last component may be
/// missing.
fn locate_dest(root: &Root, up: &UserPath, shown: &str) -> Result<Dest> {
    let no_dir = || EngineError::CopyNoSuchDir(parent_of(shown));
    let r = root.resolve(&up.comps, true).map_err(|e| {
        if is_missing(e) {
            no_dir()
        } else {
            cp_err("resolve", shown)(e)
        }
    })?;
    let kind = match r.missing {
        Some(i) if i + 1 < r.comps.len() => return Err(no_dir()),
        Some(_) => None,
        None => Some(kind(&root.lstat(&r.comps).map_err(cp_err("stat", shown))?)),
    };
    Ok(Dest {
        comps: r.comps,
        kind,
    })
}

/// The directory part of a path as the user wrote it, for messages.
fn parent_of(shown: &str) -> String {
    let t = shown.trim_end_matches('/');
    match t.rfind('/') {
        Some(0) => "/".into(),
        Some(i) => t[..i].to_string(),
        None => ".".into(),
    }
}

/// docker's rules: the directory to unpack into, and the name the source's
/// top entry takes there.
fn plan(
    src: &Source,
    dst: &Dest,
    dst_up: &UserPath,
    src_shown: &str,
    dst_shown: &str,
) -> Result<(Vec<OsString>, OsString)> {
    let split = || {
        let (base, parent) = dst.comps.split_last().expect("the root exists");
        (parent.to_vec(), base.clone())
    };
    match dst.kind {
        Some(SFlag::S_IFDIR) => Ok((dst.comps.clone(), src.top().to_os_string())),
        Some(_) if src.is_dir => Err(EngineError::CopyDirToFile {
            src: src_shown.to_string(),
            dst: dst_shown.to_string(),
        }),
        Some(SFlag::S_IFREG) => Ok(split()),
        Some(_) => Err(EngineError::CopyBadDest(dst_shown.to_string())),
        None if src.is_dir => Ok(split()),
        None if dst_up.asserts_dir() => Err(EngineError::CopyNoSuchDir(dst_shown.to_string())),
        None => Ok(split()),
    }
}

/// docker refuses a copy into a read-only volume, or outside volumes into a
/// `--read-only` container (the mounts are read-only too, for whatever an
/// archive's symlinks lead to).
fn check_writable(cfs: &mountns::ContainerFs, dir: &[OsString], shown: &str) -> Result<()> {
    let under = cfs
        .mounts
        .iter()
        .filter(|(d, _)| dir.starts_with(d))
        .max_by_key(|(d, _)| d.len());
    let what = match under {
        Some((d, true)) => format!("the mount at {}", abs(d).display()),
        None if cfs.read_only => "the container's root filesystem (--read-only)".into(),
        _ => return Ok(()),
    };
    Err(EngineError::CopyReadOnly {
        path: shown.to_string(),
        what,
    })
}

/// Archive `src` from `from` and unpack it into `dir` of `to`, through a
/// pipe between two threads (both in the caller's mount namespace).
fn transfer(
    from: &Root,
    src: &Source,
    top: &OsStr,
    to: &Root,
    dir: &[OsString],
    owner: Owner,
) -> Result<()> {
    let (rd, wr) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(cp_err("create", "a pipe"))?;
    std::thread::scope(|s| {
        let producer = s.spawn(move || {
            archive::write(
                from,
                &src.dir,
                &src.entry,
                top.as_ref(),
                std::fs::File::from(wr),
            )
            .map(drop)
        });
        let consumed = extract::extract(to, dir, owner, std::fs::File::from(rd));
        let produced = producer
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        let broken = |e: &EngineError| matches!(e, EngineError::Copy { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe);
        match (produced, consumed) {
            // The reader stopped first: all it wanted was read, or its
            // error is the one that matters.
            (Err(e), c) if broken(&e) => c,
            (Err(e), _) => Err(e),
            (Ok(()), c) => c,
        }
    })
}

#[cfg(test)]
mod tests;
