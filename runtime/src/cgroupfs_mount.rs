//! `cgroup` / `cgroup2` mounts inside the container. With a cgroup
//! namespace the hierarchies are mounted fresh (the namespace makes the
//! container's cgroup their root); without one the container's own cgroup
//! directories are bind-mounted, so the host tree is never exposed.

use std::os::fd::AsFd;
use std::path::Path;

use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Mount;

use crate::cgroups::{self, Layout};
use crate::error::{Error, Result};
use crate::fsutil::{self, Create};
use crate::mounts::{MountCtx, Options};

pub fn mount_cgroup(ctx: &MountCtx<'_>, m: &Mount, o: &Options) -> Result<()> {
    let dest = m.destination();
    let err = |e| Error::Path {
        op: "mount cgroup",
        path: dest.clone(),
        source: e,
    };
    let ro = o.flags & MsFlags::MS_RDONLY;
    let base = o.flags
        & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RELATIME);
    let Some(cg) = ctx.cgroup else {
        if ctx.userns && crate::sys::in_user_namespace() {
            // A rootless container without a cgroup (nothing delegated):
            // there is no tree of its own to show, and the host's is not
            // the container's business. /sys/fs/cgroup stays empty.
            crate::log::debug(&format!(
                "rootless without a cgroup: no cgroup mount at {}",
                dest.display()
            ));
            return Ok(());
        }
        return Err(Error::InvalidConfig(format!(
            "cgroup mount {} needs the container to have a cgroup",
            dest.display()
        )));
    };
    let target = fsutil::open_in_root(ctx.root, dest, Create::Dir)?;
    if cg.layout == Layout::Unified {
        if ctx.cgroupns {
            mount(
                Some("cgroup2"),
                &fsutil::fd_path(target.as_fd()),
                Some("cgroup2"),
                base | ro,
                None::<&str>,
            )
            .map_err(err)?;
        } else {
            drop(target);
            bind(ctx, &cg.dirs[0], dest, base | ro).map_err(err)?;
        }
        return Ok(());
    }
    mount(
        Some("tmpfs"),
        &fsutil::fd_path(target.as_fd()),
        Some("tmpfs"),
        base,
        Some("mode=755"),
    )
    .map_err(err)?;
    drop(target);
    let hierarchies = cgroups::v1_hierarchies();
    for dir in &cg.dirs {
        let Some(h) = hierarchies.iter().find(|h| dir.starts_with(&h.mount)) else {
            continue;
        };
        let name = h
            .mount
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.is_empty() {
            continue;
        }
        let sub = dest.join(&name);
        let t = fsutil::open_in_root(ctx.root, &sub, Create::Dir)?;
        if ctx.cgroupns {
            let opts = h.controllers.join(",");
            mount(
                Some("cgroup"),
                &fsutil::fd_path(t.as_fd()),
                Some("cgroup"),
                base | ro,
                Some(opts.as_str()),
            )
            .map_err(err)?;
        } else {
            drop(t);
            bind(ctx, dir, &sub, base | ro).map_err(err)?;
        }
        // cpu,cpuacct style co-mounts get a symlink per controller name.
        if name.contains(',') {
            let tmpfs = fsutil::open_in_root(ctx.root, dest, Create::No)?;
            for c in name.split(',') {
                let _ = nix::unistd::symlinkat(name.as_str(), &tmpfs, c);
            }
        }
    }
    if !ro.is_empty() {
        let t = fsutil::open_in_root(ctx.root, dest, Create::No)?;
        mount(
            None::<&str>,
            &fsutil::fd_path(t.as_fd()),
            None::<&str>,
            MsFlags::MS_REMOUNT | base | ro,
            Some("mode=755"),
        )
        .map_err(err)?;
    }
    Ok(())
}

/// Bind `src` (a host cgroup directory) onto `dst` in the root, then apply
/// `flags` to the new mount (reopened, so the remount hits the new mount).
fn bind(ctx: &MountCtx<'_>, src: &Path, dst: &Path, flags: MsFlags) -> nix::Result<()> {
    let t =
        fsutil::open_in_root(ctx.root, dst, Create::Dir).map_err(|_| nix::errno::Errno::ENOENT)?;
    mount(
        Some(src),
        &fsutil::fd_path(t.as_fd()),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )?;
    if !flags.is_empty() {
        let t = fsutil::open_in_root(ctx.root, dst, Create::No)
            .map_err(|_| nix::errno::Errno::ENOENT)?;
        mount(
            None::<&str>,
            &fsutil::fd_path(t.as_fd()),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags,
            None::<&str>,
        )?;
    }
    Ok(())
}
