//! /dev inside the container: the default devices, `linux.devices`, the
//! usual symlinks, and the console.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, Mode, SFlag};
use nix::unistd::{fchownat, Gid, Uid};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use crate::error::{Error, Result};
use crate::fsutil::{self, Create};

/// A device node to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dev {
    pub path: PathBuf,
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The devices every container gets (runc's list).
pub fn defaults() -> Vec<Dev> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .iter()
    .map(|(n, ma, mi)| Dev {
        path: PathBuf::from("/dev").join(n),
        kind: SFlag::S_IFCHR,
        major: *ma,
        minor: *mi,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

pub fn from_spec(d: &LinuxDevice) -> Result<Dev> {
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        LinuxDeviceType::A => {
            return Err(Error::InvalidConfig(format!(
                "device {}: type 'a' cannot be created",
                d.path().display()
            )))
        }
    };
    if !d.path().is_absolute() || !d.path().starts_with("/dev") {
        return Err(Error::InvalidConfig(format!(
            "device path {} must be under /dev",
            d.path().display()
        )));
    }
    if d.major() < 0 || d.minor() < 0 {
        return Err(Error::InvalidConfig(format!(
            "device {}: negative major/minor",
            d.path().display()
        )));
    }
    Ok(Dev {
        path: d.path().clone(),
        kind,
        major: d.major() as u64,
        minor: d.minor() as u64,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    })
}

/// Create `dev` inside the root: mknod, or in a user namespace (where mknod
/// is refused) bind-mount the host's node onto an empty file.
pub fn create(root: BorrowedFd<'_>, dev: &Dev, userns: bool) -> Result<()> {
    let parent = dev.path.parent().unwrap_or(Path::new("/dev"));
    let name = dev
        .path
        .file_name()
        .ok_or_else(|| Error::InvalidConfig(format!("device path {}", dev.path.display())))?;
    let dir = fsutil::open_in_root(root, parent, Create::Dir)?;
    let dirfd = nix::fcntl::openat(
        &dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::Path {
        op: "open device directory",
        path: parent.into(),
        source: e,
    })?;
    // Replace whatever is there (the image's own node, or a symlink).
    match nix::unistd::unlinkat(&dirfd, name, nix::unistd::UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => {
            return Err(Error::Path {
                op: "replace device",
                path: dev.path.clone(),
                source: e,
            })
        }
    }
    if userns {
        nix::fcntl::openat(
            &dirfd,
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        )
        .map_err(|e| Error::Path {
            op: "create device mount point",
            path: dev.path.clone(),
            source: e,
        })?;
        let t = fsutil::open_in_root(root, &dev.path, Create::No)?;
        let host = nix::fcntl::open(&dev.path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| Error::Path {
                op: "open host device",
                path: dev.path.clone(),
                source: e,
            })?;
        mount(
            Some(&fsutil::fd_path(host.as_fd())),
            &fsutil::fd_path(t.as_fd()),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| Error::Path {
            op: "bind device",
            path: dev.path.clone(),
            source: e,
        })?;
        return Ok(());
    }
    let old = nix::sys::stat::umask(Mode::empty());
    let r = nix::sys::stat::mknodat(
        &dirfd,
        name,
        dev.kind,
        Mode::from_bits_truncate(dev.mode),
        makedev(dev.major, dev.minor),
    );
    nix::sys::stat::umask(old);
    r.map_err(|e| Error::Path {
        op: "mknod",
        path: dev.path.clone(),
        source: e,
    })?;
    fchownat(
        &dirfd,
        name,
        Some(Uid::from_raw(dev.uid)),
        Some(Gid::from_raw(dev.gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| Error::Path {
        op: "chown device",
        path: dev.path.clone(),
        source: e,
    })?;
    Ok(())
}

/// The root's /dev (made if missing), opened as a directory through
/// descriptors only.
fn dev_dir(root: BorrowedFd<'_>) -> Result<OwnedFd> {
    let dev = fsutil::open_in_root(root, Path::new("/dev"), Create::Dir)?;
    let dirfd = nix::fcntl::openat(
        &dev,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::Path {
        op: "open",
        path: "/dev".into(),
        source: e,
    })?;
    Ok(dirfd)
}

/// /dev/fd, /dev/std{in,out,err}, /dev/ptmx and /dev/core.
pub fn symlinks(root: BorrowedFd<'_>) -> Result<()> {
    let dirfd = dev_dir(root)?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
        ("pts/ptmx", "ptmx"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        if name == "ptmx" {
            // Replace a ptmx node (from a bind-mounted /dev) by the link to
            // this container's devpts instance.
            let _ = nix::unistd::unlinkat(&dirfd, name, nix::unistd::UnlinkatFlags::NoRemoveDir);
        }
        match nix::unistd::symlinkat(target, &dirfd, name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => {
                return Err(Error::Path {
                    op: "symlink",
                    path: PathBuf::from("/dev").join(name),
                    source: e,
                })
            }
        }
    }
    Ok(())
}

/// Bind the pty `peer` onto /dev/console in the root. /dev/console is
/// created fresh as a regular file (whatever was there, a symlink into
/// /dev/pts included, is removed first), and the mount is made through
/// descriptors only (CVE-2025-52565).
pub fn bind_console(root: BorrowedFd<'_>, peer: &OwnedFd) -> Result<()> {
    let dirfd = dev_dir(root)?;
    match nix::unistd::unlinkat(&dirfd, "console", nix::unistd::UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => {
            return Err(Error::Path {
                op: "remove",
                path: "/dev/console".into(),
                source: e,
            })
        }
    }
    let console = nix::fcntl::openat(
        &dirfd,
        "console",
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(|e| Error::Path {
        op: "create",
        path: "/dev/console".into(),
        source: e,
    })?;
    if fsutil::file_type(&console).ok() != Some(SFlag::S_IFREG) {
        return Err(Error::InvalidConfig(
            "/dev/console is not the file just created".into(),
        ));
    }
    mount(
        Some(&fsutil::fd_path(peer.as_fd())),
        &fsutil::fd_path(console.as_fd()),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| Error::Path {
        op: "bind console",
        path: "/dev/console".into(),
        source: e,
    })
}
