//! Mount options and the mounting of the config's `mounts` inside the new
//! root. Targets are opened with `fsutil::open_in_root` and mounted on
//! through `/proc/self/fd/N`, so a symlink swapped in at any point cannot
//! redirect a mount outside the root.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{Mode, SFlag};
use oci_spec::runtime::Mount;

use crate::error::{Error, Result};
use crate::fsutil::{self, Create};

/// Parsed mount options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub flags: MsFlags,
    /// Flags cleared by the options (`rw`, `suid`, …), relevant for remounts.
    pub cleared: MsFlags,
    pub propagation: MsFlags,
    pub bind: bool,
    pub recursive: bool,
    pub data: Vec<String>,
}

pub fn parse_options(m: &Mount) -> Result<Options> {
    let mut o = Options {
        flags: MsFlags::empty(),
        cleared: MsFlags::empty(),
        propagation: MsFlags::empty(),
        bind: false,
        recursive: false,
        data: Vec::new(),
    };
    for opt in m.options().iter().flatten() {
        let (set, clear): (MsFlags, MsFlags) = match opt.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
            "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
            "bind" => {
                o.bind = true;
                continue;
            }
            "rbind" => {
                o.bind = true;
                o.recursive = true;
                continue;
            }
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => {
                o.propagation |= propagation_flags(opt).expect("listed above");
                continue;
            }
            "tmpcopyup" => continue,
            "idmap" | "ridmap" => {
                return Err(Error::InvalidConfig(format!(
                    "mount {}: idmapped mounts are not supported by this runtime",
                    m.destination().display()
                )))
            }
            o2 if o2.starts_with('r') && RECURSIVE_ATTRS.contains(&&o2[1..]) => {
                return Err(Error::InvalidConfig(format!(
                    "mount {}: recursive mount attribute {o2:?} is not supported by this runtime",
                    m.destination().display()
                )))
            }
            other => {
                if other.contains(',') {
                    return Err(Error::InvalidConfig(format!(
                        "mount {}: option {other:?} must not contain ','",
                        m.destination().display()
                    )));
                }
                o.data.push(other.to_string());
                continue;
            }
        };
        o.flags = (o.flags | set) & !clear;
        o.cleared = (o.cleared | clear) & !set;
    }
    if m.typ().as_deref() == Some("bind") {
        o.bind = true;
    }
    Ok(o)
}

const RECURSIVE_ATTRS: &[&str] = &[
    "ro",
    "rw",
    "nosuid",
    "suid",
    "nodev",
    "dev",
    "noexec",
    "exec",
    "atime",
    "noatime",
    "relatime",
    "strictatime",
    "nodiratime",
    "diratime",
    "nosymfollow",
    "symfollow",
];

/// Propagation flags of a propagation word (`rprivate` → MS_PRIVATE|MS_REC).
pub fn propagation_flags(word: &str) -> Option<MsFlags> {
    Some(match word {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

/// Everything a mount needs from the runtime beyond the `Mount` itself.
pub struct MountCtx<'a> {
    pub root: BorrowedFd<'a>,
    pub bundle: &'a Path,
    /// The container's cgroup directories, for `cgroup` mounts on v1 hosts.
    pub cgroup: Option<&'a crate::cgroups::Cgroup>,
    pub cgroupns: bool,
    pub userns: bool,
}

fn mount_err(m: &Mount, e: Errno) -> Error {
    Error::Path {
        op: "mount",
        path: m.destination().clone(),
        source: e,
    }
}

/// Mount one configured mount inside the root.
pub fn mount_one(ctx: &MountCtx<'_>, m: &Mount) -> Result<()> {
    let o = parse_options(m)?;
    let dest = m.destination();
    let typ = m
        .typ()
        .clone()
        .unwrap_or_else(|| if o.bind { "bind".into() } else { "none".into() });
    if o.bind {
        return bind_mount(ctx, m, &o);
    }
    if matches!(typ.as_str(), "proc" | "sysfs") {
        // CVE-2019-16884 / CVE-2023-27561: procfs and sysfs must land on a
        // real directory at exactly the configured place, never through a
        // symlink somewhere else in the rootfs.
        let resolved = fsutil::resolve_in_root(ctx.root, dest)?;
        let lexical: PathBuf = dest
            .components()
            .filter(|c| matches!(c, std::path::Component::Normal(_)))
            .collect();
        if resolved != lexical {
            return Err(Error::InvalidConfig(format!(
                "{typ} mount destination {} is or goes through a symlink",
                dest.display()
            )));
        }
    }
    if typ == "cgroup" || typ == "cgroup2" {
        return crate::cgroupfs_mount::mount_cgroup(ctx, m, &o);
    }
    let target = fsutil::open_in_root(ctx.root, dest, Create::Dir)?;
    if fsutil::file_type(&target).map_err(|e| mount_err(m, e))? != SFlag::S_IFDIR {
        return Err(Error::InvalidConfig(format!(
            "mount destination {} is not a directory",
            dest.display()
        )));
    }
    let source = m.source().clone().unwrap_or_else(|| PathBuf::from(&typ));
    let mut data = o.data.join(",");
    let flags = o.flags & !MsFlags::MS_REMOUNT;
    let mut r = mount(
        Some(&source),
        &fsutil::fd_path(target.as_fd()),
        Some(typ.as_str()),
        flags,
        Some(data.as_str()),
    );
    if r == Err(Errno::EINVAL) && typ == "devpts" && data.contains("gid=") {
        // gid 5 (tty) may not be mapped in a user namespace.
        data = o
            .data
            .iter()
            .filter(|d| !d.starts_with("gid="))
            .cloned()
            .collect::<Vec<_>>()
            .join(",");
        r = mount(
            Some(&source),
            &fsutil::fd_path(target.as_fd()),
            Some(typ.as_str()),
            flags,
            Some(data.as_str()),
        );
    }
    if matches!(r, Err(Errno::EPERM)) && ctx.userns && matches!(typ.as_str(), "sysfs" | "mqueue") {
        // Without a network (or IPC) namespace of its own the container may
        // not mount a fresh sysfs (mqueue): bind the host's instead, as runc.
        let host = if typ == "sysfs" {
            "/sys"
        } else {
            "/dev/mqueue"
        };
        r = mount(
            Some(host),
            &fsutil::fd_path(target.as_fd()),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        );
        if r.is_ok() {
            remount(ctx, m, &o)?;
            if o.flags.contains(MsFlags::MS_RDONLY) {
                remount_submounts_ro(ctx, m)?;
            }
        }
    }
    r.map_err(|e| mount_err(m, e))?;
    apply_propagation(ctx, m, &o)
}

fn bind_mount(ctx: &MountCtx<'_>, m: &Mount, o: &Options) -> Result<()> {
    let Some(src) = m.source() else {
        return Err(Error::InvalidConfig(format!(
            "bind mount {} has no source",
            m.destination().display()
        )));
    };
    let src = if src.is_absolute() {
        src.clone()
    } else {
        ctx.bundle.join(src)
    };
    // The source is a host path chosen by the caller; open it once and use
    // the descriptor, so what is checked is what is mounted.
    let src_fd =
        nix::fcntl::open(&src, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).map_err(|e| {
            Error::Path {
                op: "open bind source",
                path: src.clone(),
                source: e,
            }
        })?;
    let is_dir = fsutil::file_type(&src_fd).map_err(|e| mount_err(m, e))? == SFlag::S_IFDIR;
    let target = fsutil::open_in_root(
        ctx.root,
        m.destination(),
        if is_dir { Create::Dir } else { Create::File },
    )?;
    let tdir = fsutil::file_type(&target).map_err(|e| mount_err(m, e))? == SFlag::S_IFDIR;
    if tdir != is_dir {
        return Err(Error::InvalidConfig(format!(
            "bind mount {}: source is a {} but the destination is not",
            m.destination().display(),
            if is_dir { "directory" } else { "file" }
        )));
    }
    let mut flags = MsFlags::MS_BIND;
    if o.recursive {
        flags |= MsFlags::MS_REC;
    }
    mount(
        Some(&fsutil::fd_path(src_fd.as_fd())),
        &fsutil::fd_path(target.as_fd()),
        None::<&str>,
        flags,
        None::<&str>,
    )
    .map_err(|e| mount_err(m, e))?;
    drop(target);
    remount(ctx, m, o)?;
    apply_propagation(ctx, m, o)
}

/// Reopen a mount's destination after mounting: the descriptor now names
/// the new mount's root (the one used for mounting named what was below).
fn reopen(ctx: &MountCtx<'_>, m: &Mount) -> Result<OwnedFd> {
    fsutil::open_in_root(ctx.root, m.destination(), Create::No)
}

/// Apply flags to a bind mount with MS_REMOUNT, keeping the flags the kernel
/// locked (in a user namespace, nosuid/nodev/noexec/ro of the source stay).
fn remount(ctx: &MountCtx<'_>, m: &Mount, o: &Options) -> Result<()> {
    let wanted = o.flags & !MsFlags::MS_REMOUNT;
    if wanted.is_empty() {
        return Ok(());
    }
    let fd = reopen(ctx, m)?;
    let p = fsutil::fd_path(fd.as_fd());
    let current = nix::sys::statvfs::fstatvfs(&fd)
        .map(|s| vfs_to_ms(s.flags()))
        .unwrap_or(MsFlags::empty());
    let locked = current
        & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY);
    let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | wanted | (locked & !o.cleared);
    match mount(None::<&str>, &p, None::<&str>, flags, None::<&str>) {
        Ok(()) => Ok(()),
        Err(Errno::EPERM) if ctx.userns => {
            mount(None::<&str>, &p, None::<&str>, flags | locked, None::<&str>)
                .map_err(|e| mount_err(m, e))
        }
        Err(e) => Err(mount_err(m, e)),
    }
}

/// CVE-2023-25809: the recursive bind of the host's /sys brings the host's
/// mounts below it (cgroupfs among them) along, read-write. A read-only
/// mount must be read-only all the way down: remount each one of them.
fn remount_submounts_ro(ctx: &MountCtx<'_>, m: &Mount) -> Result<()> {
    let top = reopen(ctx, m)?;
    let real = std::fs::read_link(fsutil::fd_path(top.as_fd())).map_err(|e| Error::Io {
        op: "resolve mount",
        path: m.destination().clone(),
        source: e,
    })?;
    let info = std::fs::read_to_string("/proc/thread-self/mountinfo").map_err(|e| Error::Io {
        op: "read",
        path: "/proc/thread-self/mountinfo".into(),
        source: e,
    })?;
    let mut below: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|p| p.starts_with(&real) && *p != real)
        .collect();
    below.sort();
    below.dedup();
    for p in below {
        let rel = p.strip_prefix(&real).expect("filtered by prefix");
        let fd = match fsutil::open_in_root(ctx.root, &m.destination().join(rel), Create::No) {
            Ok(fd) => fd,
            // Below a mount that hides it: not reachable, nothing to do.
            Err(Error::Path {
                source: Errno::ENOENT | Errno::EACCES,
                ..
            }) => continue,
            Err(e) => return Err(e),
        };
        let cur = nix::sys::statvfs::fstatvfs(&fd)
            .map(|s| vfs_to_ms(s.flags()))
            .map_err(|e| mount_err(m, e))?;
        // In a user namespace the kernel refuses any change to locked
        // nosuid/nodev/noexec/atime flags: keep them exactly.
        let mut keep = cur
            & (MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC
                | MsFlags::MS_NOATIME
                | MsFlags::MS_NODIRATIME
                | MsFlags::MS_RELATIME);
        if !cur.intersects(MsFlags::MS_NOATIME | MsFlags::MS_RELATIME) {
            keep |= MsFlags::MS_STRICTATIME;
        }
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | keep;
        mount(
            None::<&str>,
            &fsutil::fd_path(fd.as_fd()),
            None::<&str>,
            flags,
            None::<&str>,
        )
        .map_err(|e| Error::Path {
            op: "remount read-only",
            path: p.clone(),
            source: e,
        })?;
    }
    Ok(())
}

/// Undo mountinfo's octal escapes (space, tab, newline, backslash).
fn unescape_mountinfo(s: &str) -> PathBuf {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1] <= b'3'
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

fn apply_propagation(ctx: &MountCtx<'_>, m: &Mount, o: &Options) -> Result<()> {
    if o.propagation.is_empty() {
        return Ok(());
    }
    let fd = reopen(ctx, m)?;
    // Apply each propagation type separately, as the kernel takes one at a time.
    for f in [
        MsFlags::MS_SHARED,
        MsFlags::MS_SLAVE,
        MsFlags::MS_PRIVATE,
        MsFlags::MS_UNBINDABLE,
    ] {
        if o.propagation.contains(f) {
            let flags = f | (o.propagation & MsFlags::MS_REC);
            mount(
                None::<&str>,
                &fsutil::fd_path(fd.as_fd()),
                None::<&str>,
                flags,
                None::<&str>,
            )
            .map_err(|e| mount_err(m, e))?;
        }
    }
    Ok(())
}

pub fn vfs_to_ms(f: nix::sys::statvfs::FsFlags) -> MsFlags {
    use nix::sys::statvfs::FsFlags as F;
    let mut out = MsFlags::empty();
    for (a, b) in [
        (F::ST_RDONLY, MsFlags::MS_RDONLY),
        (F::ST_NOSUID, MsFlags::MS_NOSUID),
        (F::ST_NODEV, MsFlags::MS_NODEV),
        (F::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (F::ST_NOATIME, MsFlags::MS_NOATIME),
        (F::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (F::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(a) {
            out |= b;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::MountBuilder;

    fn opts(list: &[&str]) -> Options {
        let m = MountBuilder::default()
            .destination("/x")
            .options(list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .build()
            .unwrap();
        parse_options(&m).unwrap()
    }

    #[test]
    fn flags_data_and_propagation_are_separated() {
        let o = opts(&[
            "nosuid",
            "noexec",
            "nodev",
            "mode=755",
            "size=65536k",
            "rprivate",
        ]);
        assert_eq!(
            o.flags,
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV
        );
        assert_eq!(o.data, vec!["mode=755", "size=65536k"]);
        assert_eq!(o.propagation, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
        assert!(!o.bind);
    }

    #[test]
    fn later_options_override_earlier_ones() {
        assert_eq!(opts(&["ro", "rw"]).flags, MsFlags::empty());
        assert_eq!(opts(&["rw", "ro"]).flags, MsFlags::MS_RDONLY);
        assert!(opts(&["rw"]).cleared.contains(MsFlags::MS_RDONLY));
    }

    #[test]
    fn bind_and_rbind() {
        let o = opts(&["rbind", "ro"]);
        assert!(o.bind && o.recursive);
        let o = opts(&["bind"]);
        assert!(o.bind && !o.recursive);
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(
            unescape_mountinfo("/a\\040b/c\\134d"),
            PathBuf::from("/a b/c\\d")
        );
        assert_eq!(unescape_mountinfo("/plain\\"), PathBuf::from("/plain\\"));
        assert_eq!(unescape_mountinfo("/odd\\777"), PathBuf::from("/odd\\777"));
    }

    #[test]
    fn unsupported_options_are_refused() {
        for bad in ["idmap", "rro", "rnosuid", "a,b"] {
            let m = MountBuilder::default()
                .destination("/x")
                .options(vec![bad.to_string()])
                .build()
                .unwrap();
            assert!(parse_options(&m).is_err(), "{bad}");
        }
    }
}
