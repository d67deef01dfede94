//! Streaming, contained layer unpack: gzip/zstd/plain → tar → a layer dir,
//! with OCI whiteouts turned into overlay form.
//!
//! **Invariant:** no entry can create or change anything outside the layer
//! directory. Every parent directory is opened component by component from
//! an fd of the layer root with `O_NOFOLLOW`, so a symlink in the way is
//! refused rather than followed; `..` components are refused; leading `/`
//! is stripped (the path is taken relative to the layer root); hardlink
//! targets are resolved the same way and linked without following; file
//! contents are opened `O_CREAT|O_EXCL|O_NOFOLLOW`. Overlay's own xattrs
//! (`trusted.overlay.*`) are never taken from a tar.

use std::cell::Cell;
use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmod, fstatat, futimens, mkdirat, mknodat, utimensat, Mode, SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use tar::EntryType;

use crate::compress::decompress;
use crate::digest::{Digest, HashingReader};
use crate::error::{Result, StorageError};
use crate::sys;

/// Limits and privileges for one unpack.
#[derive(Clone, Debug)]
pub struct UnpackOptions {
    /// Most uncompressed bytes a layer may expand to (decompression bombs).
    pub max_bytes: u64,
    /// Most tar entries a layer may hold.
    pub max_entries: u64,
    /// Create device nodes (root only); otherwise a device entry is refused.
    pub allow_devices: bool,
    /// Apply the tar's uid/gid (root only).
    pub preserve_owner: bool,
}

impl Default for UnpackOptions {
    fn default() -> Self {
        let root = nix::unistd::geteuid().is_root();
        UnpackOptions {
            max_bytes: 64 << 30,
            max_entries: 4_000_000,
            allow_devices: root,
            preserve_owner: root,
        }
    }
}

/// What an unpack measured.
#[derive(Clone, Debug)]
pub struct UnpackStats {
    /// Digest of the uncompressed tar stream.
    pub diff_id: Digest,
    /// Size of the uncompressed tar stream.
    pub size: u64,
}

/// Unpack a (possibly compressed) layer tar from `src` into the existing,
/// empty directory `dest`.
pub fn unpack_layer(src: impl Read, dest: &Path, opts: &UnpackOptions) -> Result<UnpackStats> {
    let root: OwnedFd = File::open(dest)
        .map_err(|source| StorageError::LayerDir {
            path: dest.to_path_buf(),
            source,
        })?
        .into();
    let tripped = Rc::new(Cell::new(false));
    let limited = Limit {
        inner: decompress(src)?,
        left: opts.max_bytes,
        tripped: tripped.clone(),
    };
    let mut hashing = HashingReader::new(limited);
    let too_large = |e: io::Error| {
        if tripped.get() {
            StorageError::LayerTooLarge {
                limit: opts.max_bytes,
            }
        } else {
            StorageError::ReadLayer { source: e }
        }
    };
    let mut dirs: Vec<(Vec<Vec<u8>>, TimeSpec)> = Vec::new();
    {
        let mut ar = tar::Archive::new(&mut hashing);
        let mut count = 0u64;
        for entry in ar.entries().map_err(too_large)? {
            let mut entry = entry.map_err(too_large)?;
            count += 1;
            if count > opts.max_entries {
                return Err(StorageError::TooManyEntries {
                    limit: opts.max_entries,
                });
            }
            match apply_entry(root.as_fd(), &mut entry, opts) {
                Ok(Some(dir)) => dirs.push(dir),
                Ok(None) => {}
                Err(StorageError::UnpackEntry { source, .. }) if tripped.get() => {
                    return Err(too_large(source))
                }
                Err(e) => return Err(e),
            }
        }
    }
    // Hash the end-of-archive blocks and any trailing padding too.
    io::copy(&mut hashing, &mut io::sink()).map_err(too_large)?;
    for (comps, mtime) in dirs.iter().rev() {
        if let Ok(fd) = open_dir_path(root.as_fd(), comps, false) {
            let _ = futimens(&fd, mtime, mtime);
        }
    }
    let (diff_id, size) = hashing.finish();
    Ok(UnpackStats { diff_id, size })
}

/// Reader that fails once more than `left` bytes have passed.
struct Limit<R> {
    inner: R,
    left: u64,
    tripped: Rc<Cell<bool>>,
}

impl<R: Read> Read for Limit<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            self.tripped.set(true);
            return Err(io::Error::other("layer size limit exceeded"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Split an entry path into components, refusing `..` and stripping `/`
/// and `.`.
pub(crate) fn components(raw: &[u8]) -> std::result::Result<Vec<Vec<u8>>, &'static str> {
    let mut out = Vec::new();
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("path has a parent-directory component"),
            c => out.push(c.to_vec()),
        }
    }
    Ok(out)
}

fn entry_err<'a>(entry: &'a [u8], op: &'static str) -> impl FnOnce(Errno) -> StorageError + 'a {
    move |e| StorageError::UnpackEntry {
        entry: String::from_utf8_lossy(entry).into_owned(),
        op,
        source: e.into(),
    }
}

fn unsafe_entry(entry: &[u8], reason: &'static str) -> StorageError {
    StorageError::UnsafeEntry {
        entry: String::from_utf8_lossy(entry).into_owned(),
        reason,
    }
}

/// Open the directory `comps` under `root` without following any symlink,
/// creating missing components when `create`.
fn open_dir_path(
    root: BorrowedFd<'_>,
    comps: &[Vec<u8>],
    create: bool,
) -> std::result::Result<OwnedFd, Errno> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut cur: OwnedFd = openat(root, ".", flags, Mode::empty())?;
    for c in comps {
        let name = OsStr::from_bytes(c);
        let next = match openat(&cur, name, flags, Mode::empty()) {
            Err(Errno::ENOENT) if create => {
                match mkdirat(&cur, name, Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(e),
                }
                openat(&cur, name, flags, Mode::empty())?
            }
            other => other?,
        };
        cur = next;
    }
    Ok(cur)
}

/// `/proc/self/fd/<dir>/<name>`: a path whose directory part is the fd.
fn fd_path(dir: BorrowedFd<'_>, name: Option<&[u8]>) -> CString {
    let mut p = format!("/proc/self/fd/{}", dir.as_raw_fd()).into_bytes();
    if let Some(n) = name {
        p.push(b'/');
        p.extend_from_slice(n);
    }
    // Names come from tar entries split on '/', and NUL cannot occur in
    // them (tar paths are NUL-terminated), so this never fails in practice.
    CString::new(p).unwrap_or_default()
}

/// Remove whatever is at `name` in `dir` (a whole tree for a directory).
fn remove_at(dir: BorrowedFd<'_>, name: &[u8]) -> std::result::Result<(), Errno> {
    let n = OsStr::from_bytes(name);
    match fstatat(dir, n, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e),
        Ok(st) if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR => {
            let p = fd_path(dir, Some(name));
            std::fs::remove_dir_all(OsStr::from_bytes(p.as_bytes()))
                .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
        }
        Ok(_) => unlinkat(dir, n, UnlinkatFlags::NoRemoveDir),
    }
}

fn is_dir_at(dir: BorrowedFd<'_>, name: &[u8]) -> bool {
    fstatat(dir, OsStr::from_bytes(name), AtFlags::AT_SYMLINK_NOFOLLOW)
        .map(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR)
        .unwrap_or(false)
}

/// Header fields an entry needs after its content is written.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: TimeSpec,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Meta> {
    let h = entry.header();
    // Empty numeric fields read as 0, as GNU tar and Go's archive/tar do.
    let mut m = Meta {
        mode: h.mode().unwrap_or(0o644) & 0o7777,
        uid: h.uid().unwrap_or(0) as u32,
        gid: h.gid().unwrap_or(0) as u32,
        mtime: TimeSpec::new(h.mtime().unwrap_or(0) as i64, 0),
        xattrs: Vec::new(),
    };
    if let Some(pax) = entry.pax_extensions()? {
        for ext in pax.flatten() {
            let key = ext.key_bytes();
            let val = ext.value_bytes();
            let num = || {
                std::str::from_utf8(val)
                    .ok()
                    .and_then(|s| s.split('.').next()?.parse::<i64>().ok())
            };
            match key {
                b"uid" => m.uid = num().unwrap_or(m.uid as i64) as u32,
                b"gid" => m.gid = num().unwrap_or(m.gid as i64) as u32,
                b"mtime" => m.mtime = TimeSpec::new(num().unwrap_or(m.mtime.tv_sec()), 0),
                k if k.starts_with(b"SCHILY.xattr.") => {
                    let name = &k[b"SCHILY.xattr.".len()..];
                    // Overlay's own metadata (either namespace) never
                    // comes from a tar: it could redirect or hide files.
                    if !name.starts_with(b"trusted.overlay.") && !name.starts_with(b"user.overlay.")
                    {
                        m.xattrs.push((name.to_vec(), val.to_vec()));
                    }
                }
                _ => {}
            }
        }
    }
    Ok(m)
}

type DirMtime = (Vec<Vec<u8>>, TimeSpec);

/// Apply one tar entry. Returns a directory whose mtime must be set last.
fn apply_entry<R: Read>(
    root: BorrowedFd<'_>,
    entry: &mut tar::Entry<'_, R>,
    opts: &UnpackOptions,
) -> Result<Option<DirMtime>> {
    let raw = entry.path_bytes().into_owned();
    let mut comps = components(&raw).map_err(|r| unsafe_entry(&raw, r))?;
    let Some(name) = comps.pop() else {
        return Ok(None);
    };
    let meta = read_meta(entry).map_err(|source| StorageError::UnpackEntry {
        entry: String::from_utf8_lossy(&raw).into_owned(),
        op: "read header",
        source,
    })?;
    let parent = open_dir_path(root, &comps, true).map_err(|e| match e {
        Errno::ELOOP | Errno::ENOTDIR => {
            unsafe_entry(&raw, "a parent is a symlink or not a directory")
        }
        e => entry_err(&raw, "open parent directory")(e),
    })?;
    let p = parent.as_fd();
    if let Some(wh) = name.strip_prefix(b".wh.") {
        whiteout(p, wh, &raw)?;
        return Ok(None);
    }
    let kind = entry.header().entry_type();
    if !(kind == EntryType::Directory && is_dir_at(p, &name)) {
        remove_at(p, &name).map_err(entry_err(&raw, "replace existing entry"))?;
    }
    let n = OsStr::from_bytes(&name);
    match kind {
        EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
            let fd = openat(
                p,
                n,
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )
            .map_err(entry_err(&raw, "create file"))?;
            let mut f = File::from(fd);
            io::copy(entry, &mut f).map_err(|source| StorageError::UnpackEntry {
                entry: String::from_utf8_lossy(&raw).into_owned(),
                op: "write file",
                source,
            })?;
            finish_fd(f.as_fd(), p, &name, &meta, opts, &raw)?;
            futimens(&f, &meta.mtime, &meta.mtime).map_err(entry_err(&raw, "set times"))?;
        }
        EntryType::Directory => {
            match mkdirat(p, n, Mode::from_bits_truncate(0o700)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(entry_err(&raw, "create directory")(e)),
            }
            let fd = openat(
                p,
                n,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(entry_err(&raw, "open directory"))?;
            finish_fd(fd.as_fd(), p, &name, &meta, opts, &raw)?;
            comps.push(name);
            return Ok(Some((comps, meta.mtime)));
        }
        EntryType::Symlink => {
            let target = entry
                .link_name_bytes()
                .map(|c| c.into_owned())
                .unwrap_or_default();
            symlinkat(OsStr::from_bytes(&target), p, n)
                .map_err(entry_err(&raw, "create symlink"))?;
            finish_at(p, &name, &meta, opts, &raw)?;
        }
        EntryType::Link => {
            let target = entry
                .link_name_bytes()
                .map(|c| c.into_owned())
                .unwrap_or_default();
            let mut tcomps = components(&target).map_err(|r| unsafe_entry(&raw, r))?;
            let tname = tcomps
                .pop()
                .ok_or_else(|| unsafe_entry(&raw, "hardlink to the layer root"))?;
            let tdir = open_dir_path(root, &tcomps, false).map_err(|e| match e {
                Errno::ELOOP | Errno::ENOTDIR => {
                    unsafe_entry(&raw, "hardlink target passes through a symlink")
                }
                e => entry_err(&raw, "open hardlink target directory")(e),
            })?;
            linkat(&tdir, OsStr::from_bytes(&tname), p, n, AtFlags::empty())
                .map_err(entry_err(&raw, "create hardlink"))?;
        }
        EntryType::Char | EntryType::Block | EntryType::Fifo => {
            let sflag = match kind {
                EntryType::Char => SFlag::S_IFCHR,
                EntryType::Block => SFlag::S_IFBLK,
                _ => SFlag::S_IFIFO,
            };
            let dev = if kind == EntryType::Fifo {
                0
            } else {
                if !opts.allow_devices {
                    return Err(unsafe_entry(&raw, "device nodes are not allowed here"));
                }
                let h = entry.header();
                let (ma, mi) = (
                    h.device_major().ok().flatten().unwrap_or(0),
                    h.device_minor().ok().flatten().unwrap_or(0),
                );
                nix::sys::stat::makedev(ma.into(), mi.into())
            };
            mknodat(p, n, sflag, Mode::from_bits_truncate(meta.mode), dev)
                .map_err(entry_err(&raw, "create node"))?;
            finish_at(p, &name, &meta, opts, &raw)?;
        }
        _ => {}
    }
    Ok(None)
}

/// `.wh..wh..opq` marks `dir` opaque; `.wh.NAME` becomes a 0/0 char device.
fn whiteout(dir: BorrowedFd<'_>, wh: &[u8], raw: &[u8]) -> Result<()> {
    if wh == b".wh..opq" {
        // "<fd>/." names the directory itself; the bare magic link would be
        // the link, which takes no xattrs.
        let path = fd_path(dir, Some(b"."));
        return sys::lsetxattr(&path, crate::overlay_opaque_xattr(), b"y").map_err(|source| {
            StorageError::UnpackEntry {
                entry: String::from_utf8_lossy(raw).into_owned(),
                op: "mark directory opaque",
                source,
            }
        });
    }
    if wh.is_empty() || wh == b"." || wh == b".." {
        return Err(unsafe_entry(raw, "whiteout of an invalid name"));
    }
    remove_at(dir, wh).map_err(entry_err(raw, "remove whited-out entry"))?;
    mknodat(dir, OsStr::from_bytes(wh), SFlag::S_IFCHR, Mode::empty(), 0)
        .map_err(entry_err(raw, "create whiteout"))
}

/// Ownership, mode and xattrs through an fd of the new file or directory.
fn finish_fd(
    fd: BorrowedFd<'_>,
    parent: BorrowedFd<'_>,
    name: &[u8],
    m: &Meta,
    opts: &UnpackOptions,
    raw: &[u8],
) -> Result<()> {
    if opts.preserve_owner {
        fchown(fd, Some(Uid::from_raw(m.uid)), Some(Gid::from_raw(m.gid)))
            .map_err(entry_err(raw, "set owner"))?;
    }
    fchmod(fd, Mode::from_bits_truncate(m.mode)).map_err(entry_err(raw, "set mode"))?;
    set_xattrs(parent, name, m, raw)
}

/// Ownership, times and xattrs of a symlink or node, never following it.
fn finish_at(
    parent: BorrowedFd<'_>,
    name: &[u8],
    m: &Meta,
    opts: &UnpackOptions,
    raw: &[u8],
) -> Result<()> {
    let n = OsStr::from_bytes(name);
    if opts.preserve_owner {
        fchownat(
            parent,
            n,
            Some(Uid::from_raw(m.uid)),
            Some(Gid::from_raw(m.gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(entry_err(raw, "set owner"))?;
    }
    utimensat(
        parent,
        n,
        &m.mtime,
        &m.mtime,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(entry_err(raw, "set times"))?;
    set_xattrs(parent, name, m, raw)
}

fn set_xattrs(parent: BorrowedFd<'_>, name: &[u8], m: &Meta, raw: &[u8]) -> Result<()> {
    if m.xattrs.is_empty() {
        return Ok(());
    }
    let path = fd_path(parent, Some(name));
    for (k, v) in &m.xattrs {
        let Ok(key) = CString::new(k.clone()) else {
            continue;
        };
        sys::lsetxattr(&path, &key, v).map_err(|source| StorageError::UnpackEntry {
            entry: String::from_utf8_lossy(raw).into_owned(),
            op: "set xattr",
            source,
        })?;
    }
    Ok(())
}
