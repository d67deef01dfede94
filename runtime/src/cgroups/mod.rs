//! Cgroup placement and resource control for containers.
//!
//! Layouts: unified (cgroup v2 at /sys/fs/cgroup), legacy (v1 controllers)
//! and hybrid (v1 controllers plus a cgroup2 mount at
//! /sys/fs/cgroup/unified). On hybrid hosts v1 controllers are used, as runc
//! does. The layout is detected with statfs, not guessed from file names.
//!
//! Paths follow runc's cgroupfs driver: an absolute `cgroupsPath` is relative
//! to each hierarchy's root; a relative one (and the default, the container
//! id) is placed under the cgroup the runtime itself runs in.
//!
//! Resources are checked by [`validate`] before anything exists, then
//! written by [`apply_resources`] (v1: `v1.rs`, v2: `v2.rs`, device rules:
//! `devices.rs`, on v2 as an eBPF program: `bpf.rs`, whose bpf(2) calls are
//! the `unsafe` in `sys.rs`) before the container's process runs user code.
//!
//! Invariant: the cgroup root is only ever `Cgroup::root`; production code
//! uses /sys/fs/cgroup, unit tests a temporary directory.

mod bpf;
mod devices;
pub mod stats;
mod sys;
pub mod update;
mod v1;
mod v2;
mod validate;

use std::fs;
use std::io::ErrorKind;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use oci_spec::runtime::LinuxResources;

use crate::error::{io_err, Error, Result};
use crate::state::State;

pub use bpf::attach_device_filter;
pub use devices::DEFAULT_DEVICE_RULES;
pub use validate::validate;

pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
const TMPFS_MAGIC: i64 = 0x0102_1994;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    Unified,
    Legacy,
    Hybrid,
}

/// Detect the host's cgroup layout.
pub fn layout() -> Layout {
    layout_at(Path::new(CGROUP_ROOT))
}

pub fn layout_at(root: &Path) -> Layout {
    // The field's type differs between targets (i64 on x86_64 glibc).
    #[allow(clippy::unnecessary_cast)]
    let fs_type = |p: &Path| {
        nix::sys::statfs::statfs(p)
            .ok()
            .map(|s| s.filesystem_type().0 as i64)
    };
    match fs_type(root) {
        Some(CGROUP2_SUPER_MAGIC) => Layout::Unified,
        Some(TMPFS_MAGIC) if fs_type(&root.join("unified")) == Some(CGROUP2_SUPER_MAGIC) => {
            Layout::Hybrid
        }
        _ => Layout::Legacy,
    }
}

/// A v1 hierarchy: its mount point and the controllers it carries
/// (e.g. `cpu`, `memory`, `name=systemd`).
#[derive(Clone, Debug)]
pub struct Hierarchy {
    pub mount: PathBuf,
    pub controllers: Vec<String>,
}

/// The v1 hierarchies mounted on this host, from /proc/self/mountinfo.
pub fn v1_hierarchies() -> Vec<Hierarchy> {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in info.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mut post = post.split_whitespace();
        if post.next() != Some("cgroup") {
            continue;
        }
        let _src = post.next();
        let opts = post.next().unwrap_or("");
        let mount = pre.split_whitespace().nth(4).unwrap_or("");
        let controllers: Vec<String> = opts
            .split(',')
            .filter(|o| is_controller_opt(o))
            .map(str::to_string)
            .collect();
        if !mount.is_empty() && !controllers.is_empty() {
            out.push(Hierarchy {
                mount: PathBuf::from(mount),
                controllers,
            });
        }
    }
    out
}

fn is_controller_opt(o: &str) -> bool {
    !matches!(
        o,
        "rw" | "ro" | "nosuid" | "nodev" | "noexec" | "noprefix" | "xattr" | "cpuset_v2_mode"
    ) && !o.starts_with("relatime")
        && !o.starts_with("clone_children")
        && !o.starts_with("release_agent")
}

/// The cgroup of `pid` in a v1 hierarchy carrying `controller`, or the v2
/// path for `controller == ""`.
pub fn proc_cgroup(pid: &str, controller: &str) -> Option<String> {
    let data = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    for line in data.lines() {
        let mut it = line.splitn(3, ':');
        let (_, ctrls, path) = (it.next()?, it.next()?, it.next()?);
        if controller.is_empty() {
            if ctrls.is_empty() {
                return Some(path.to_string());
            }
        } else if ctrls.split(',').any(|c| c == controller) {
            return Some(path.to_string());
        }
    }
    None
}

/// Where a container's cgroup lives: one directory per v1 hierarchy, or one
/// v2 directory.
#[derive(Clone, Debug)]
pub struct Cgroup {
    pub layout: Layout,
    /// Absolute directories, one per hierarchy (v1) or exactly one (v2).
    pub dirs: Vec<PathBuf>,
    /// The cgroup filesystem root the directories are under.
    pub root: PathBuf,
    /// The topmost directory `create` made for each hierarchy
    /// (shared by clones), so that [`Cgroup::destroy`] after a failed create
    /// also removes the parents it made. Empty for a cgroup loaded from
    /// state: like runc, `delete` leaves parents alone.
    created: Arc<Mutex<Vec<(PathBuf, PathBuf)>>>,
}

/// Resolve `cgroupsPath` (or the default) to concrete directories.
pub fn resolve(cgroups_path: Option<&Path>, id: &str, systemd: bool) -> Result<Cgroup> {
    if systemd {
        return Err(Error::Cgroup {
            path: cgroups_path
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            msg: "systemd cgroup driver requested but systemd is not running on this host".into(),
        });
    }
    let rel = cgroups_path
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(id));
    if rel
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(Error::InvalidConfig(format!(
            "cgroupsPath {} must not contain \"..\"",
            rel.display()
        )));
    }
    let layout = layout();
    let place = |mount: &Path, controller: &str| -> PathBuf {
        if rel.is_absolute() {
            mount.join(rel.strip_prefix("/").unwrap_or(&rel))
        } else {
            let own = proc_cgroup("self", controller).unwrap_or_else(|| "/".into());
            mount.join(own.trim_start_matches('/')).join(&rel)
        }
    };
    let dirs = match layout {
        Layout::Unified => vec![place(Path::new(CGROUP_ROOT), "")],
        Layout::Legacy | Layout::Hybrid => v1_hierarchies()
            .iter()
            .map(|h| place(&h.mount, &h.controllers[0]))
            .collect(),
    };
    Ok(Cgroup {
        layout,
        dirs,
        root: PathBuf::from(CGROUP_ROOT),
        created: Arc::default(),
    })
}

impl Cgroup {
    /// A v2 cgroup at `dir` under the cgroup2 root `root` (unit tests point
    /// both into a temporary directory).
    pub fn unified_at(root: &Path, dir: &Path) -> Cgroup {
        Cgroup {
            layout: Layout::Unified,
            dirs: vec![dir.to_path_buf()],
            root: root.to_path_buf(),
            created: Arc::default(),
        }
    }

    pub fn is_v2(&self) -> bool {
        self.layout == Layout::Unified
    }

    /// The directory of the hierarchy carrying `controller` (v1), or the v2
    /// directory.
    pub fn dir_for(&self, controller: &str) -> Option<&Path> {
        match self.layout {
            Layout::Unified => self.dirs.first().map(PathBuf::as_path),
            _ => self.dirs.iter().map(PathBuf::as_path).find(|d| {
                d.strip_prefix(&self.root)
                    .ok()
                    .and_then(|r| r.components().next())
                    .map(|c| {
                        c.as_os_str()
                            .to_string_lossy()
                            .split(',')
                            .any(|x| x == controller)
                    })
                    .unwrap_or(false)
            }),
        }
    }

    /// The mount point of the hierarchy carrying `controller` (v1), or the
    /// v2 root; `None` if the controller is not available.
    pub fn hierarchy_root(&self, controller: &str) -> Option<PathBuf> {
        let dir = self.dir_for(controller)?;
        match self.layout {
            Layout::Unified => {
                let avail =
                    fs::read_to_string(self.root.join("cgroup.controllers")).unwrap_or_default();
                avail
                    .split_whitespace()
                    .any(|c| c == controller)
                    .then(|| self.root.clone())
            }
            _ => {
                let first = dir.strip_prefix(&self.root).ok()?.components().next()?;
                Some(self.root.join(first))
            }
        }
    }

    /// Whether this process may make the directories: the nearest existing
    /// ancestor of each is writable. A rootless runtime without a delegated
    /// cgroup (no systemd, cgroup v1) finds none writable.
    pub fn writable(&self) -> bool {
        self.dirs.iter().all(|d| {
            d.ancestors()
                .find(|p| p.exists())
                .is_some_and(|p| nix::unistd::access(p, nix::unistd::AccessFlags::W_OK).is_ok())
        })
    }

    /// Create the directories (cpuset is seeded from its parent so tasks can
    /// join it; on v2 the controllers are enabled down the path).
    pub fn create(&self) -> Result<()> {
        for d in &self.dirs {
            if let Some(top) = mkdir_p(d)? {
                self.created
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((d.clone(), top));
            }
            if self.is_v2() {
                v2::enable_controllers(&self.root, d)?;
            } else if d.join("cpuset.cpus").exists() {
                seed_cpuset(d)?;
            }
        }
        Ok(())
    }

    /// Open, in every directory, the file through which a process moves
    /// itself in: `tasks` on v1, `cgroup.procs` on v2. The container's
    /// first process writes "0" to each ([`join_self`]) before it does
    /// anything else. On v1 a single thread moving itself is exempt from
    /// the kernel's global threadgroup lock, whose write side waits for an
    /// RCU grace period (7-17 ms here) when the parent writes a pid into
    /// `cgroup.procs`. The files are opened here, by the runtime, so the
    /// kernel checks the write against the opener's credentials even after
    /// the child has entered a user namespace.
    pub fn self_join_files(&self) -> Result<Vec<OwnedFd>> {
        let name = if self.is_v2() {
            "cgroup.procs"
        } else {
            "tasks"
        };
        self.dirs
            .iter()
            .map(|d| {
                let p = d.join(name);
                fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_CLOEXEC)
                    .open(&p)
                    .map(OwnedFd::from)
                    .map_err(|e| Error::Io {
                        op: "open cgroup file",
                        path: p,
                        source: e,
                    })
            })
            .collect()
    }
}

/// Move the calling process, single-threaded, into the cgroup through the
/// files [`Cgroup::self_join_files`] opened.
pub fn join_self(files: &[OwnedFd]) -> Result<()> {
    for f in files {
        nix::unistd::write(f, b"0").map_err(|e| Error::Cgroup {
            path: crate::fsutil::fd_path(f.as_fd()).display().to_string(),
            msg: format!("join: {e}"),
        })?;
    }
    Ok(())
}

impl Cgroup {
    /// Pids of every process in the cgroup (from the first hierarchy that
    /// has any; all hierarchies hold the same tasks).
    pub fn pids(&self) -> Vec<i32> {
        for d in &self.dirs {
            if let Ok(s) = fs::read_to_string(d.join("cgroup.procs")) {
                let v: Vec<i32> = s.lines().filter_map(|l| l.trim().parse().ok()).collect();
                if !v.is_empty() {
                    return v;
                }
            }
        }
        Vec::new()
    }

    /// Freeze (true) or thaw (false) every process in the cgroup.
    pub fn set_frozen(&self, frozen: bool) -> Result<()> {
        if self.is_v2() {
            return v2::set_frozen(&self.dirs[0], frozen);
        }
        let d = self.dir_for("freezer").ok_or_else(|| Error::Cgroup {
            path: "freezer".into(),
            msg: "no freezer hierarchy is mounted".into(),
        })?;
        v1::set_frozen(d, frozen)
    }

    pub fn frozen(&self) -> bool {
        match self.layout {
            Layout::Unified => v2::frozen(&self.dirs[0]),
            _ => self
                .dir_for("freezer")
                .and_then(|d| fs::read_to_string(d.join("freezer.state")).ok())
                .map(|s| s.trim() == "FROZEN")
                .unwrap_or(false),
        }
    }

    /// Remove the directories (and the parents this value created). Fails
    /// only if one still holds processes after a short wait (the kernel
    /// empties dying cgroups asynchronously).
    pub fn destroy(&self) -> Result<()> {
        let mut last = None;
        for d in &self.dirs {
            for attempt in 0..200 {
                match fs::remove_dir(d) {
                    Ok(()) => break,
                    Err(e) if e.kind() == ErrorKind::NotFound => break,
                    Err(e) if attempt == 199 => {
                        last = Some(Error::Io {
                            op: "remove cgroup",
                            path: d.clone(),
                            source: e,
                        })
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
                }
            }
        }
        // Parents we made, bottom up; one still in use (another container
        // under it) stays.
        for (leaf, top) in self
            .created
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            for p in leaf.ancestors().skip(1) {
                if !p.starts_with(top) || fs::remove_dir(p).is_err() {
                    break;
                }
            }
        }
        last.map_or(Ok(()), Err)
    }

    /// A counter that grows by one per OOM event in the cgroup: v2
    /// `memory.events` "oom"; v1 `memory.oom_control` "oom_kill" plus
    /// "under_oom" (so a cgroup whose OOM killer is disabled, and whose
    /// tasks therefore wait instead of dying, counts too). `None` without a
    /// memory controller.
    pub fn oom_count(&self) -> Option<u64> {
        let (dir, file) = match self.layout {
            Layout::Unified => (self.dirs.first()?.clone(), "memory.events"),
            _ => (self.dir_for("memory")?.to_path_buf(), "memory.oom_control"),
        };
        let kv = stats::flat_keyed(&fs::read_to_string(dir.join(file)).ok()?);
        let get = |k: &str| kv.get(k).copied().unwrap_or(0);
        Some(match self.layout {
            Layout::Unified => get("oom"),
            _ => get("oom_kill") + get("under_oom"),
        })
    }
}

/// Apply `linux.resources` to the cgroup. Call [`validate`] first: this
/// only writes, and stops at the first write the kernel refuses.
pub fn apply_resources(cg: &Cgroup, r: &LinuxResources) -> Result<()> {
    apply(
        cg,
        r,
        Apply {
            devices: true,
            live: false,
        },
    )
}

/// What an apply includes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Apply {
    /// Rewrite the device rules (create, and updates that name devices).
    pub devices: bool,
    /// An update of an existing container: honours
    /// `memory.checkBeforeUpdate` and changes device rules without a
    /// deny-all gap.
    pub live: bool,
}

pub(crate) fn apply(cg: &Cgroup, r: &LinuxResources, how: Apply) -> Result<()> {
    if cg.is_v2() {
        v2::apply(&cg.dirs[0], r, how)
    } else {
        v1::apply(cg, r, how)
    }
}

/// Whether the container's cgroup is frozen.
pub fn is_frozen(st: &State) -> bool {
    st.cgroup_path
        .as_ref()
        .map(|p| from_saved(p).frozen())
        .unwrap_or(false)
}

/// Serialize the resolved directories for the state file.
pub fn to_saved(cg: &Cgroup) -> String {
    let tag = match cg.layout {
        Layout::Unified => "v2",
        Layout::Legacy => "v1",
        Layout::Hybrid => "hybrid",
    };
    let dirs: Vec<String> = cg.dirs.iter().map(|d| d.display().to_string()).collect();
    format!("{tag}:{}", dirs.join(":"))
}

pub fn from_saved(s: &str) -> Cgroup {
    let mut it = s.split(':');
    let layout = match it.next() {
        Some("v2") => Layout::Unified,
        Some("hybrid") => Layout::Hybrid,
        _ => Layout::Legacy,
    };
    Cgroup {
        layout,
        dirs: it.map(PathBuf::from).collect(),
        root: PathBuf::from(CGROUP_ROOT),
        created: Arc::default(),
    }
}

/// `create_dir_all`, retried when another process removes an empty
/// ancestor between our mkdirs (cleanup of a shared parent racing us).
/// Returns the topmost directory it made, if any.
fn mkdir_p(d: &Path) -> Result<Option<PathBuf>> {
    let top = d
        .ancestors()
        .take_while(|p| !p.exists())
        .last()
        .map(Path::to_path_buf);
    let mut attempt = 0;
    loop {
        match fs::create_dir_all(d) {
            Err(e) if e.kind() == ErrorKind::NotFound && attempt < 20 => attempt += 1,
            r => return r.map(|()| top).map_err(io_err("create cgroup", d)),
        }
    }
}

fn seed_cpuset(dir: &Path) -> Result<()> {
    for f in ["cpuset.cpus", "cpuset.mems"] {
        let cur = fs::read_to_string(dir.join(f)).unwrap_or_default();
        if !cur.trim().is_empty() {
            continue;
        }
        // Walk up to the first ancestor with a value, seeding on the way down.
        let mut chain = vec![dir.to_path_buf()];
        let mut p = dir.parent();
        let mut value = String::new();
        while let Some(pp) = p {
            let v = fs::read_to_string(pp.join(f)).unwrap_or_default();
            if !v.trim().is_empty() {
                value = v.trim().to_string();
                break;
            }
            chain.push(pp.to_path_buf());
            p = pp.parent();
        }
        for d in chain.iter().rev() {
            write(d, f, &value)?;
        }
    }
    Ok(())
}

/// Write `value` to the cgroup file `dir/file`. The file must exist (the
/// kernel makes them; we never create one).
pub(crate) fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    use std::io::Write;
    let p = dir.join(file);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&p)
        .map_err(|e| Error::Io {
            op: "open cgroup file",
            path: p.clone(),
            source: e,
        })?;
    f.write_all(value.as_bytes()).map_err(|e| Error::Cgroup {
        path: p.display().to_string(),
        msg: format!("write {value:?}: {e}"),
    })
}

/// Read a cgroup file, trimmed.
pub(crate) fn read(dir: &Path, file: &str) -> Result<String> {
    let p = dir.join(file);
    fs::read_to_string(&p)
        .map(|s| s.trim().to_string())
        .map_err(io_err("read cgroup file", p))
}

/// Whether `res` asks for a limit a cgroup enforces (memory, cpu, pids,
/// block I/O, hugepages, network, rdma, unified keys). Device rules are not
/// one here: without a cgroup the devices a rootless container sees are
/// bind mounts of nodes its user may already open.
pub fn has_limits(res: Option<&LinuxResources>) -> bool {
    let Some(r) = res else { return false };
    r.memory().is_some()
        || r.cpu().is_some()
        || r.pids().is_some()
        || r.block_io().is_some()
        || r.hugepage_limits().as_ref().is_some_and(|v| !v.is_empty())
        || r.network().is_some()
        || r.rdma().as_ref().is_some_and(|m| !m.is_empty())
        || r.unified().as_ref().is_some_and(|m| !m.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_form_round_trips() {
        let cg = Cgroup {
            layout: Layout::Hybrid,
            dirs: vec![
                "/sys/fs/cgroup/memory/a".into(),
                "/sys/fs/cgroup/pids/a".into(),
            ],
            root: CGROUP_ROOT.into(),
            created: Arc::default(),
        };
        let back = from_saved(&to_saved(&cg));
        assert_eq!(back.layout, Layout::Hybrid);
        assert_eq!(back.dirs, cg.dirs);
        assert_eq!(
            back.dir_for("pids"),
            Some(Path::new("/sys/fs/cgroup/pids/a"))
        );
        assert_eq!(back.dir_for("cpu"), None);
        assert_eq!(
            back.hierarchy_root("memory"),
            Some(PathBuf::from("/sys/fs/cgroup/memory"))
        );
    }

    #[test]
    fn systemd_driver_without_systemd_is_a_clear_error() {
        let e = resolve(Some(Path::new("system.slice:berth:x")), "x", true).unwrap_err();
        assert!(e.to_string().contains("systemd"), "{e}");
    }

    #[test]
    fn dotdot_in_cgroups_path_is_refused() {
        let e = resolve(Some(Path::new("/a/../../b")), "x", false).unwrap_err();
        assert!(e.to_string().contains(".."), "{e}");
    }

    #[test]
    fn write_never_creates_a_file() {
        let t = tempfile::tempdir().unwrap();
        let e = write(t.path(), "memory.max", "1").unwrap_err();
        assert!(e.to_string().contains("memory.max"), "{e}");
        assert!(!t.path().join("memory.max").exists());
    }
}
