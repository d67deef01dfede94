//! Cgroup placement for containers.
//!
//! Layouts: unified (cgroup v2 at /sys/fs/cgroup), legacy (v1 controllers)
//! and hybrid (v1 controllers plus a cgroup2 mount at
//! /sys/fs/cgroup/unified). On hybrid hosts v1 controllers are used, as runc
//! does. The layout is detected with statfs, not guessed from file names.
//!
//! Paths follow runc's cgroupfs driver: an absolute `cgroupsPath` is relative
//! to each hierarchy's root; a relative one (and the default, the container
//! id) is placed under the cgroup the runtime itself runs in.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::state::State;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
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
    let fs_type = |p: &Path| nix::sys::statfs::statfs(p).ok().map(|s| s.filesystem_type().0 as i64);
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
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else { return Vec::new() };
    let mut out = Vec::new();
    for line in info.lines() {
        let Some((pre, post)) = line.split_once(" - ") else { continue };
        let mut post = post.split_whitespace();
        if post.next() != Some("cgroup") {
            continue;
        }
        let _src = post.next();
        let opts = post.next().unwrap_or("");
        let mount = pre.split_whitespace().nth(4).unwrap_or("");
        let controllers: Vec<String> = opts
            .split(',')
            .filter(|o| !matches!(*o, "rw" | "ro") && !o.starts_with("relatime") && *o != "nosuid" && *o != "nodev" && *o != "noexec" && !o.starts_with("clone_children") && !o.starts_with("release_agent"))
            .map(str::to_string)
            .collect();
        if !mount.is_empty() && !controllers.is_empty() {
            out.push(Hierarchy { mount: PathBuf::from(mount), controllers });
        }
    }
    out
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
}

/// Resolve `cgroupsPath` (or the default) to concrete directories.
pub fn resolve(cgroups_path: Option<&Path>, id: &str, systemd: bool) -> Result<Cgroup> {
    if systemd {
        return Err(Error::Cgroup {
            path: cgroups_path.map(|p| p.display().to_string()).unwrap_or_default(),
            msg: "systemd cgroup driver requested but systemd is not running on this host".into(),
        });
    }
    let rel = cgroups_path.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(id));
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
    Ok(Cgroup { layout, dirs })
}

impl Cgroup {
    /// The directory of the hierarchy carrying `controller` (v1), or the v2
    /// directory.
    pub fn dir_for(&self, controller: &str) -> Option<&Path> {
        match self.layout {
            Layout::Unified => self.dirs.first().map(PathBuf::as_path),
            _ => self.dirs.iter().map(PathBuf::as_path).find(|d| {
                d.strip_prefix(CGROUP_ROOT)
                    .ok()
                    .and_then(|r| r.components().next())
                    .map(|c| c.as_os_str().to_string_lossy().split(',').any(|x| x == controller))
                    .unwrap_or(false)
            }),
        }
    }

    /// Create the directories (cpuset is seeded from its parent so tasks can
    /// join it) and move `pid` into all of them.
    pub fn create_and_enter(&self, pid: i32) -> Result<()> {
        for d in &self.dirs {
            fs::create_dir_all(d).map_err(|e| cg_err(d, "create", e))?;
            if self.layout != Layout::Unified && d.join("cpuset.cpus").exists() {
                seed_cpuset(d)?;
            }
            write(d, "cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }

    /// Move `pid` into the (existing) cgroup directories.
    pub fn enter(&self, pid: i32) -> Result<()> {
        for d in &self.dirs {
            write(d, "cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }

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
        match self.layout {
            Layout::Unified => {
                let d = &self.dirs[0];
                write(d, "cgroup.freeze", if frozen { "1" } else { "0" })
            }
            _ => {
                let d = self.dir_for("freezer").ok_or_else(|| Error::Cgroup {
                    path: "freezer".into(),
                    msg: "no freezer hierarchy is mounted".into(),
                })?;
                let want = if frozen { "FROZEN" } else { "THAWED" };
                for _ in 0..1000 {
                    write(d, "freezer.state", want)?;
                    let now = fs::read_to_string(d.join("freezer.state")).unwrap_or_default();
                    if now.trim() == want {
                        return Ok(());
                    }
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Err(Error::Cgroup { path: d.display().to_string(), msg: format!("did not become {want}") })
            }
        }
    }

    pub fn frozen(&self) -> bool {
        match self.layout {
            Layout::Unified => fs::read_to_string(self.dirs[0].join("cgroup.freeze"))
                .map(|s| s.trim() == "1")
                .unwrap_or(false),
            _ => self
                .dir_for("freezer")
                .and_then(|d| fs::read_to_string(d.join("freezer.state")).ok())
                .map(|s| s.trim() == "FROZEN")
                .unwrap_or(false),
        }
    }

    /// Remove the directories. Fails only if one still holds processes after
    /// a short wait (the kernel empties dying cgroups asynchronously).
    pub fn destroy(&self) -> Result<()> {
        let mut last = None;
        for d in &self.dirs {
            for attempt in 0..200 {
                match fs::remove_dir(d) {
                    Ok(()) => break,
                    Err(e) if e.kind() == ErrorKind::NotFound => break,
                    Err(e) if attempt == 199 => last = Some(cg_err(d, "remove", e)),
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
                }
            }
        }
        last.map_or(Ok(()), Err)
    }
}

/// Apply `linux.resources` to the cgroup. This covers the basic limits
/// (memory, pids, cpu shares/quota, cpuset); see issue 3 for the rest.
pub fn apply_resources(cg: &Cgroup, r: &oci_spec::runtime::LinuxResources) -> Result<()> {
    let v2 = cg.layout == Layout::Unified;
    let at = |ctrl: &str| cg.dir_for(ctrl).map(Path::to_path_buf);
    if let Some(m) = r.memory() {
        if let (Some(limit), Some(d)) = (m.limit(), at("memory")) {
            if v2 {
                write(&d, "memory.max", &if limit < 0 { "max".to_string() } else { limit.to_string() })?;
            } else {
                write(&d, "memory.limit_in_bytes", &limit.to_string())?;
            }
        }
    }
    if let Some(p) = r.pids() {
        if let Some(d) = at("pids") {
            let l = p.limit();
            write(&d, "pids.max", &if l <= 0 { "max".to_string() } else { l.to_string() })?;
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(d) = at("cpu") {
            if v2 {
                if c.quota().is_some() || c.period().is_some() {
                    let q = c.quota().filter(|q| *q > 0).map(|q| q.to_string()).unwrap_or_else(|| "max".into());
                    write(&d, "cpu.max", &format!("{q} {}", c.period().unwrap_or(100_000)))?;
                }
            } else {
                if let Some(s) = c.shares() {
                    write(&d, "cpu.shares", &s.to_string())?;
                }
                if let Some(p) = c.period() {
                    write(&d, "cpu.cfs_period_us", &p.to_string())?;
                }
                if let Some(q) = c.quota() {
                    write(&d, "cpu.cfs_quota_us", &q.to_string())?;
                }
            }
        }
        if let Some(d) = at("cpuset") {
            if let Some(cpus) = c.cpus() {
                write(&d, "cpuset.cpus", cpus)?;
            }
            if let Some(mems) = c.mems() {
                write(&d, "cpuset.mems", mems)?;
            }
        }
    }
    Ok(())
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
    Cgroup { layout, dirs: it.map(PathBuf::from).collect() }
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

pub(crate) fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let p = dir.join(file);
    fs::write(&p, value).map_err(|e| cg_err(&p, "write", e))
}

fn cg_err(p: &Path, op: &str, e: std::io::Error) -> Error {
    Error::Cgroup { path: p.display().to_string(), msg: format!("{op}: {e}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_form_round_trips() {
        let cg = Cgroup {
            layout: Layout::Hybrid,
            dirs: vec!["/sys/fs/cgroup/memory/a".into(), "/sys/fs/cgroup/pids/a".into()],
        };
        let back = from_saved(&to_saved(&cg));
        assert_eq!(back.layout, Layout::Hybrid);
        assert_eq!(back.dirs, cg.dirs);
        assert_eq!(back.dir_for("pids"), Some(Path::new("/sys/fs/cgroup/pids/a")));
        assert_eq!(back.dir_for("cpu"), None);
    }

    #[test]
    fn systemd_driver_without_systemd_is_a_clear_error() {
        let e = resolve(Some(Path::new("system.slice:berth:x")), "x", true).unwrap_err();
        assert!(e.to_string().contains("systemd"), "{e}");
    }
}
