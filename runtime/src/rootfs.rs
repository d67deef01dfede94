//! Building the container's root: propagation, the rootfs bind, configured
//! mounts, /dev, pivot_root, then the read-only root, masked and read-only
//! paths and sysctls — all through descriptors resolved inside the root.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag};
use oci_spec::runtime::Spec;

use crate::devices;
use crate::error::{path_err, Error, Result};
use crate::fsutil::{self, Create};
use crate::mounts::{self, MountCtx};

const PROC_SUPER_MAGIC: i64 = 0x9fa0;

pub struct Plan<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub cgroup: Option<&'a crate::cgroups::Cgroup>,
    pub userns: bool,
    pub cgroupns: bool,
}

/// Everything before pivot_root. Returns a descriptor of the new root.
pub fn prepare(plan: &Plan<'_>) -> Result<OwnedFd> {
    let linux = plan.spec.linux().as_ref().expect("validated");
    // Nothing we mount may propagate back to the host.
    let prop = linux
        .rootfs_propagation()
        .as_deref()
        .and_then(mounts::propagation_flags);
    let host_prop = match prop {
        Some(p) if p.contains(MsFlags::MS_SHARED) || p.contains(MsFlags::MS_SLAVE) => {
            MsFlags::MS_SLAVE
        }
        Some(p) if p.contains(MsFlags::MS_UNBINDABLE) => MsFlags::MS_SLAVE,
        Some(_) => MsFlags::MS_PRIVATE,
        None => MsFlags::MS_SLAVE,
    };
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        host_prop | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(path_err("make / slave", "/"))?;
    mount(
        Some(plan.rootfs),
        plan.rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(path_err("bind rootfs", plan.rootfs))?;
    // pivot_root refuses a new root whose mount is shared.
    mount(
        None::<&str>,
        plan.rootfs,
        None::<&str>,
        MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(path_err("make rootfs private", plan.rootfs))?;
    let root = nix::fcntl::open(
        plan.rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(path_err("open rootfs", plan.rootfs))?;
    let ctx = MountCtx {
        root: root.as_fd(),
        bundle: plan.bundle,
        cgroup: plan.cgroup,
        cgroupns: plan.cgroupns,
        userns: plan.userns,
    };
    let all = plan.spec.mounts().clone().unwrap_or_default();
    for m in &all {
        mounts::mount_one(&ctx, m)?;
    }
    let dev_is_bind = all.iter().any(|m| {
        m.destination() == Path::new("/dev")
            && (m.typ().as_deref() == Some("bind")
                || mounts::parse_options(m).map(|o| o.bind).unwrap_or(false))
    });
    if !dev_is_bind {
        let mut devs: BTreeMap<PathBuf, devices::Dev> = devices::defaults()
            .into_iter()
            .map(|d| (d.path.clone(), d))
            .collect();
        for d in linux.devices().iter().flatten() {
            let d = devices::from_spec(d)?;
            devs.insert(d.path.clone(), d);
        }
        for d in devs.values() {
            devices::create(root.as_fd(), d, plan.userns)?;
        }
    } else {
        for d in linux.devices().iter().flatten() {
            devices::create(root.as_fd(), &devices::from_spec(d)?, plan.userns)?;
        }
    }
    devices::symlinks(root.as_fd())?;
    Ok(root)
}

/// Make the prepared rootfs the process's root.
pub fn pivot(rootfs: &Path, no_pivot: bool) -> Result<()> {
    nix::unistd::chdir(rootfs).map_err(path_err("chdir", rootfs))?;
    if no_pivot {
        mount(
            Some(rootfs),
            "/",
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        )
        .map_err(path_err("move rootfs", rootfs))?;
        nix::unistd::chroot(".").map_err(path_err("chroot", rootfs))?;
    } else {
        nix::unistd::pivot_root(".", ".").map_err(path_err("pivot_root", rootfs))?;
        // The old root is now stacked under "."; detach it without letting
        // the unmount propagate anywhere.
        mount(
            None::<&str>,
            ".",
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(path_err("make old root slave", "/"))?;
        umount2(".", MntFlags::MNT_DETACH).map_err(path_err("unmount old root", "/"))?;
    }
    nix::unistd::chdir("/").map_err(path_err("chdir", "/"))
}

/// Everything after pivot_root (in the container's root).
pub fn finish(spec: &Spec, userns: bool) -> Result<()> {
    let linux = spec.linux().as_ref().expect("validated");
    if let Some(p) = linux
        .rootfs_propagation()
        .as_deref()
        .and_then(mounts::propagation_flags)
    {
        mount(None::<&str>, "/", None::<&str>, p, None::<&str>)
            .map_err(path_err("set rootfs propagation", "/"))?;
    }
    let root = nix::fcntl::open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(path_err("open", "/"))?;
    // sysctls first: /proc/sys is usually among the read-only paths.
    for (k, v) in linux.sysctl().iter().flatten() {
        write_sysctl(k, v)?;
    }
    for p in linux.readonly_paths().iter().flatten() {
        readonly(root.as_fd(), Path::new(p), userns)?;
    }
    for p in linux.masked_paths().iter().flatten() {
        mask(root.as_fd(), Path::new(p))?;
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        remount_ro(root.as_fd(), Path::new("/"), userns)?;
    }
    Ok(())
}

fn readonly(root: BorrowedFd<'_>, p: &Path, userns: bool) -> Result<()> {
    let fd = match fsutil::open_in_root(root, p, Create::No) {
        Ok(fd) => fd,
        Err(Error::Path {
            source: Errno::ENOENT,
            ..
        }) => return Ok(()),
        Err(e) => return Err(e),
    };
    let fp = fsutil::fd_path(fd.as_fd());
    mount(
        Some(&fp),
        &fp,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(path_err("bind read-only path", p))?;
    drop(fd);
    remount_ro(root, p, userns)
}

fn remount_ro(root: BorrowedFd<'_>, p: &Path, userns: bool) -> Result<()> {
    let fd = fsutil::open_in_root(root, p, Create::No)?;
    let fp = fsutil::fd_path(fd.as_fd());
    let cur = nix::sys::statvfs::fstatvfs(&fd)
        .map(|s| mounts::vfs_to_ms(s.flags()))
        .unwrap_or(MsFlags::empty());
    let keep = cur & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
    let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | keep;
    match mount(None::<&str>, &fp, None::<&str>, flags, None::<&str>) {
        Err(Errno::EPERM) if userns => {
            mount(None::<&str>, &fp, None::<&str>, flags | cur, None::<&str>)
        }
        r => r,
    }
    .map_err(path_err("remount read-only", p))
}

/// Hide a path: a directory under an empty read-only tmpfs, anything else
/// under the container's /dev/null — after checking that it really is the
/// null device (CVE-2025-31133, CVE-2025-62161).
fn mask(root: BorrowedFd<'_>, p: &Path) -> Result<()> {
    let fd = match fsutil::open_in_root(root, p, Create::No) {
        Ok(fd) => fd,
        Err(Error::Path {
            source: Errno::ENOENT,
            ..
        }) => return Ok(()),
        Err(e) => return Err(e),
    };
    let fp = fsutil::fd_path(fd.as_fd());
    if fsutil::file_type(&fd).map_err(path_err("stat masked path", p))? == SFlag::S_IFDIR {
        return mount(
            Some("tmpfs"),
            &fp,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            Some("size=0,nr_inodes=1"),
        )
        .map_err(path_err("mask", p));
    }
    let null_rel = fsutil::resolve_in_root(root, Path::new("/dev/null"))?;
    let null = fsutil::open_resolved(root, &null_rel, OFlag::O_PATH)
        .map_err(path_err("open", "/dev/null"))?;
    if !fsutil::is_dev_null(&null) {
        return Err(Error::InvalidConfig(
            "/dev/null in the container is not the null device: refusing to mask with it".into(),
        ));
    }
    mount(
        Some(&fsutil::fd_path(null.as_fd())),
        &fp,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(path_err("mask", p))
}

/// Open the container's procfs, checking it really is a procfs mount.
pub fn open_proc() -> Result<OwnedFd> {
    let proc = nix::fcntl::open(
        "/proc",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(path_err("open", "/proc"))?;
    check_procfs(&proc, Path::new("/proc"))?;
    Ok(proc)
}

fn check_procfs(fd: &OwnedFd, what: &Path) -> Result<()> {
    let magic = nix::sys::statfs::fstatfs(fd)
        .map(|s| s.filesystem_type().0)
        .unwrap_or(0);
    if magic != PROC_SUPER_MAGIC {
        return Err(Error::InvalidConfig(format!(
            "{} is not on procfs",
            what.display()
        )));
    }
    Ok(())
}

/// Open a file below the container's /proc for writing, through a verified
/// procfs handle, never following symlinks or crossing mounts (a file bind-
/// mounted over a procfs entry is refused: CVE-2025-52881).
pub fn open_proc_file(rel: &Path) -> Result<std::fs::File> {
    let proc = open_proc()?;
    let how = OpenHow::new()
        .flags(OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_XDEV,
        );
    let full = Path::new("/proc").join(rel);
    let fd = openat2(&proc, rel, how).map_err(path_err("open", &full))?;
    check_procfs(&fd, &full)?;
    Ok(std::fs::File::from(fd))
}

fn write_sysctl(key: &str, value: &str) -> Result<()> {
    let rel = PathBuf::from("sys").join(key.replace('.', "/"));
    let mut f = open_proc_file(&rel)?;
    f.write_all(value.as_bytes()).map_err(|e| Error::Io {
        op: "write sysctl",
        path: PathBuf::from("/proc").join(&rel),
        source: e,
    })
}
