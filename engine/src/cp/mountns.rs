//! The container's filesystem as docker's `cp` sees it: its root
//! filesystem with its volumes and bind mounts on top, running or not.
//!
//! All of it happens on a thread of its own that first unshares its mount
//! namespace (private propagation), so nothing mounted here is visible to
//! the host or the container, and everything mounted here goes away with
//! the thread: the overlay snapshot when it was not mounted (a container
//! after a reboot), a bind of the root (made read-only for `--read-only`
//! containers), and each volume or bind mount on its destination, which is
//! resolved (and created, as the runtime would) inside the root. The
//! host's paths are the same on that thread, so both sides of a copy run
//! there (other threads it starts share its namespace).

use std::ffi::OsString;
use std::os::fd::AsFd;
use std::path::Path;

use berth_storage::{SnapshotKind, Store};
use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::stat::{fstat, Mode, SFlag};

use super::root::{fd_path, kind, Root, UserPath};
use crate::error::{cp_err, EngineError, Result};
use crate::options::BindMount;

/// What the copy needs to know about the container.
pub(crate) struct FsSpec<'a> {
    pub id: &'a str,
    pub rootfs: &'a Path,
    pub running: bool,
    pub mounts: &'a [BindMount],
    pub read_only: bool,
}

/// The container's filesystem, set up.
pub(crate) struct ContainerFs {
    pub root: Root,
    /// Where volumes and bind mounts are (resolved), and whether read-only.
    pub mounts: Vec<(Vec<OsString>, bool)>,
    pub read_only: bool,
}

const NONE: Option<&str> = None;

/// Run `f` on the container's filesystem, on a thread in a private mount
/// namespace; everything mounted for it is gone when this returns.
pub(crate) fn with_container_fs<T: Send>(
    store: &Store,
    spec: &FsSpec<'_>,
    f: impl FnOnce(&ContainerFs) -> Result<T> + Send,
) -> Result<T> {
    std::thread::scope(|s| {
        let t = s.spawn(|| {
            nix::sched::unshare(CloneFlags::CLONE_NEWNS)
                .map_err(cp_err("unshare the mount namespace for", spec.rootfs))?;
            mount(NONE, "/", NONE, MsFlags::MS_REC | MsFlags::MS_PRIVATE, NONE)
                .map_err(cp_err("make mounts private under", "/"))?;
            let was_mounted = is_mounted(spec.rootfs);
            let snap = store
                .mount_snapshot(spec.id)
                .map_err(EngineError::Storage)?;
            let mounted_here = !was_mounted && snap.kind == SnapshotKind::Overlay;
            let r = if spec.running && mounted_here {
                // Its own overlay is elsewhere; a second one on the same
                // upper directory would corrupt it.
                Err(EngineError::RootfsNotMounted(spec.id.to_string()))
            } else {
                setup(spec).and_then(|fs| f(&fs))
            };
            // Not needed for correctness (the namespace dies with this
            // thread), but it releases the overlay at once.
            let _ = umount2(spec.rootfs, MntFlags::MNT_DETACH);
            if mounted_here {
                let _ = umount2(spec.rootfs, MntFlags::MNT_DETACH);
            }
            r
        });
        t.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// Whether `p` is a mount point in this thread's mount namespace.
fn is_mounted(p: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/thread-self/mountinfo").unwrap_or_default();
    crate::host::mount_points(&info).iter().any(|m| m == p)
}

fn setup(spec: &FsSpec<'_>) -> Result<ContainerFs> {
    let rootfs = spec.rootfs;
    mount(
        Some(rootfs),
        rootfs,
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        NONE,
    )
    .map_err(cp_err("bind", rootfs))?;
    let root = Root::open(rootfs).map_err(cp_err("open", rootfs))?;
    let mut binds: Vec<(Vec<OsString>, &BindMount)> = spec
        .mounts
        .iter()
        .map(|m| (UserPath::parse(m.destination.as_ref()).comps, m))
        .collect();
    // Parents before children, as docker sorts them.
    binds.sort_by_key(|(d, _)| d.len());
    let mut mounts = Vec::new();
    for (dest, m) in binds {
        let src = nix::fcntl::open(&m.source, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(cp_err("open mount source", &m.source))?;
        let is_dir = fstat(&src)
            .map(|st| kind(&st) == SFlag::S_IFDIR)
            .unwrap_or(false);
        let (resolved, target) = root
            .make_path(&dest, !is_dir)
            .map_err(cp_err("make mount point", &m.destination))?;
        mount(
            Some(fd_path(src.as_fd()).as_path()),
            fd_path(target.as_fd()).as_path(),
            NONE,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            NONE,
        )
        .map_err(cp_err("bind mount", &m.source))?;
        if m.readonly {
            // Opened again, the destination is now the bind's root.
            let top = root
                .open_exact(&resolved, OFlag::O_PATH)
                .map_err(cp_err("open", &m.destination))?;
            remount_ro(&top).map_err(cp_err("make read-only", &m.destination))?;
        }
        mounts.push((resolved, m.readonly));
    }
    if spec.read_only {
        remount_ro(&root.fd()).map_err(cp_err("make read-only", rootfs))?;
    }
    Ok(ContainerFs {
        root,
        mounts,
        read_only: spec.read_only,
    })
}

fn remount_ro(fd: &impl AsFd) -> nix::Result<()> {
    mount(
        NONE,
        fd_path(fd.as_fd()).as_path(),
        NONE,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
        NONE,
    )
}
