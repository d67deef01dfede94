//! `system check` for containers: what a crash, a killed monitor or a
//! deleted directory leaves inconsistent between the records, the run and
//! snapshot directories, the runtime's state and the mount table. With
//! `repair`, the fixes that are safe: stale runtime state is deleted
//! through the runtime binary (`delete --force`), leaked mounts unmounted,
//! directories and leases without a record removed, a dead monitor's exit
//! recorded, a missing bundle written again. Nothing a live monitor owns is
//! touched.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use berth_storage::{LeaseKind, Problem};
use nix::fcntl::{Flock, FlockArg};

use crate::db::ContainerRecord;
use crate::engine::Engine;
use crate::error::{io, EngineError, Result};
use crate::layout::{EXIT_FILE, MONITOR_LOCK};
use crate::monitor::time::rfc3339_nanos;
use crate::state::{monitor_alive, read_exit, write_exit, Exit, Status, MONITOR_DIED};

pub const DEAD_MONITOR: &str = "container monitor died without recording its exit";
pub const STALE_RUNTIME_STATE: &str = "runtime state left for a stopped container";
pub const NO_BUNDLE: &str = "container record without a bundle";
pub const NO_ROOTFS: &str = "container record without a root filesystem (berth rm removes it)";
pub const UNREADABLE: &str = "container record unreadable";
pub const ORPHAN_RUN_DIR: &str = "container run directory without a record";
pub const LIVE_ORPHAN: &str =
    "container run directory without a record, its monitor still running (stop it by its pid)";
pub const ORPHAN_SNAPSHOT: &str = "container snapshot without a record";
pub const ORPHAN_LEASE: &str = "image lease of a container without a record";
pub const ORPHAN_RUNTIME_STATE: &str = "runtime state of a container without a record";
pub const LEAKED_MOUNT: &str = "mount under the container store without a container";

struct Report {
    out: Vec<Problem>,
    repair: bool,
}

impl Report {
    fn note(&mut self, kind: &'static str, subject: String, repaired: bool) {
        self.out.push(Problem {
            kind,
            subject,
            repaired,
        });
    }
}

/// Entries of a directory (none when it does not exist).
fn entries(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    match fs::read_dir(dir) {
        Ok(rd) => Ok(rd
            .flatten()
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io("list", dir)(e)),
    }
}

fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Engine {
    /// Find (and with `repair`, fix) container inconsistencies.
    pub fn check(&self, repair: bool) -> Result<Vec<Problem>> {
        let rows = self.db.rows()?;
        let ids: HashSet<String> = rows.iter().map(|(id, _)| id.clone()).collect();
        let mut r = Report {
            out: Vec::new(),
            repair,
        };
        self.check_mounts(&ids, &mut r);
        for (id, rec) in &rows {
            match rec {
                Ok(rec) => self.check_record(rec, &mut r)?,
                Err(_) => r.note(UNREADABLE, id.clone(), false),
            }
        }
        self.check_run_dirs(&ids, &mut r)?;
        self.check_snapshots(&ids, &mut r)?;
        self.check_runtime_state(&ids, &mut r)?;
        Ok(r.out)
    }

    fn check_record(&self, rec: &ContainerRecord, r: &mut Report) -> Result<()> {
        let subject = format!("{} {}", rec.id, rec.name);
        let run = self.run_dir(&rec.id);
        let st = self.state(rec);
        let state_dir = rec.runtime_root.join(&rec.id);
        if st.status == Status::Exited && read_exit(&run).is_none() {
            // ps shows it exited (255, MONITOR_DIED); make that true and lasting.
            let fixed = r.repair && self.record_dead_monitor(rec)?;
            r.note(DEAD_MONITOR, subject.clone(), fixed);
        } else if !st.is_running() && !monitor_alive(&run) && state_dir.is_dir() {
            let fixed = r.repair && {
                let _ = self.runtime_ok(rec, "delete", &["delete", "--force", &rec.id]);
                !state_dir.exists()
            };
            r.note(STALE_RUNTIME_STATE, subject.clone(), fixed);
        }
        let snapshot = self.store.root().join("containers").join(&rec.id);
        if !snapshot.join("snapshot.json").is_file() {
            r.note(NO_ROOTFS, subject, false);
        } else if !rec.bundle.join("config.json").is_file() {
            let fixed = r.repair && !st.is_running() && self.rewrite_bundle(rec).is_ok();
            r.note(NO_BUNDLE, subject, fixed);
        }
        Ok(())
    }

    /// A started container whose monitor died before recording the exit:
    /// under the monitor's lock (so none starts meanwhile), delete it in
    /// the runtime (killing what is left of it) and its network, and record
    /// the exit the monitor could not. False when a monitor holds the lock
    /// again or the runtime keeps the container.
    fn record_dead_monitor(&self, rec: &ContainerRecord) -> Result<bool> {
        let run = self.run_dir(&rec.id);
        let (f, _) = self.run_file(&rec.id, MONITOR_LOCK)?;
        let Ok(_held) = Flock::lock(f, FlockArg::LockExclusiveNonblock) else {
            return Ok(false);
        };
        if read_exit(&run).is_some() {
            return Ok(true);
        }
        let _ = self.runtime_ok(rec, "delete", &["delete", "--force", &rec.id]);
        if self.runtime_status(rec).is_some() {
            return Ok(false);
        }
        self.detach_network(&rec.id);
        let exit = Exit {
            code: 255,
            finished_at: rfc3339_nanos(SystemTime::now()),
            error: Some(format!(
                "{MONITOR_DIED} (recorded by system check --repair)"
            )),
        };
        write_exit(&run, &exit).map_err(io("write", run.join(EXIT_FILE)))?;
        Ok(true)
    }

    /// Write a stopped container's missing bundle files again from its
    /// record and image (its root filesystem mounted first: the user is
    /// looked up in it).
    fn rewrite_bundle(&self, rec: &ContainerRecord) -> Result<()> {
        self.store
            .mount_snapshot(&rec.id)
            .map_err(EngineError::Storage)?;
        let img = self
            .store
            .image(&rec.image_id)
            .map_err(EngineError::Storage)?;
        let config = self.store.config(&img).map_err(EngineError::Storage)?;
        self.write_bundle(rec, &config, true)
    }

    fn check_run_dirs(&self, ids: &HashSet<String>, r: &mut Report) -> Result<()> {
        for (name, dir) in entries(&self.runroot.join("containers"))? {
            if ids.contains(&name) {
                continue;
            }
            if monitor_alive(&dir) {
                let pid = fs::read_to_string(dir.join(MONITOR_LOCK)).unwrap_or_default();
                r.note(
                    LIVE_ORPHAN,
                    format!("{} (monitor pid {})", dir.display(), pid.trim()),
                    false,
                );
                continue;
            }
            let fixed = r.repair && {
                self.detach_network(&name);
                fs::remove_dir_all(&dir).is_ok()
            };
            r.note(ORPHAN_RUN_DIR, dir.display().to_string(), fixed);
        }
        Ok(())
    }

    fn check_snapshots(&self, ids: &HashSet<String>, r: &mut Report) -> Result<()> {
        let mut dirs = HashSet::new();
        for (name, dir) in entries(&self.store.root().join("containers"))? {
            if ids.contains(&name) {
                continue;
            }
            // Unmounts, deletes and releases the image lease.
            let fixed = r.repair && self.store.remove_snapshot(&name).is_ok();
            r.note(ORPHAN_SNAPSHOT, dir.display().to_string(), fixed);
            dirs.insert(name);
        }
        let leases = self
            .store
            .db()
            .leased(LeaseKind::Image)
            .map_err(EngineError::Storage)?;
        for (_, lease) in leases {
            let Some(id) = lease.strip_prefix("container:") else {
                continue;
            };
            if ids.contains(id) || dirs.contains(id) {
                continue;
            }
            let fixed = r.repair && self.store.db().release(&lease).is_ok();
            r.note(ORPHAN_LEASE, lease.clone(), fixed);
        }
        Ok(())
    }

    /// Each runtime's `--root` under the run root holds one directory per
    /// container it knows. Only a container whose bundle is in this store
    /// is deleted (a run root shared with another store keeps the other's);
    /// one the runtime cannot describe is reported, not touched.
    fn check_runtime_state(&self, ids: &HashSet<String>, r: &mut Report) -> Result<()> {
        let ours = self.store.root().join("containers");
        let ours_real = fs::canonicalize(&ours).unwrap_or_else(|_| ours.clone());
        for (rt_name, rt_root) in entries(&self.runroot.join("runtime"))? {
            let rt = crate::host::find_runtime(Some(&rt_name), &self.self_exe).ok();
            for (id, dir) in entries(&rt_root)? {
                if !is_container_id(&id) || ids.contains(&id) || !dir.is_dir() {
                    continue;
                }
                let bundle = rt
                    .as_deref()
                    .and_then(|rt| runtime_bundle(rt, &rt_root, &id));
                if bundle
                    .as_deref()
                    .is_some_and(|b| !b.starts_with(&ours) && !b.starts_with(&ours_real))
                {
                    continue;
                }
                let fixed = r.repair
                    && bundle.is_some()
                    && rt
                        .as_deref()
                        .is_some_and(|rt| delete_in_runtime(rt, &rt_root, &id));
                r.note(
                    ORPHAN_RUNTIME_STATE,
                    format!("{} in {}", id, rt_root.display()),
                    fixed,
                );
            }
        }
        Ok(())
    }

    /// Mounts under `<root>/containers`: each recorded container's root
    /// filesystem once, nothing else.
    fn check_mounts(&self, ids: &HashSet<String>, r: &mut Report) {
        let base = self.store.root().join("containers");
        let base = fs::canonicalize(&base).unwrap_or(base);
        let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut seen: HashMap<PathBuf, usize> = HashMap::new();
        let mut leaked = Vec::new();
        for p in crate::host::mount_points(&info) {
            let Ok(rel) = p.strip_prefix(&base) else {
                continue;
            };
            let mut parts = rel.iter();
            let expected = match (parts.next(), parts.next(), parts.next()) {
                (Some(id), Some(m), None) => {
                    m == "merged" && ids.contains(id.to_string_lossy().as_ref())
                }
                _ => false,
            };
            let n = seen.entry(p.clone()).or_insert(0);
            *n += 1;
            if !(expected && *n == 1) {
                leaked.push(p);
            }
        }
        // Deepest (and latest) first.
        leaked.reverse();
        leaked.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for p in leaked {
            let fixed = r.repair && berth_storage::unmount(&p).is_ok();
            r.note(LEAKED_MOUNT, p.display().to_string(), fixed);
        }
    }
}

fn runtime(rt: &Path, rt_root: &Path) -> Command {
    let mut c = Command::new(rt);
    c.arg("--root").arg(rt_root).stdin(Stdio::null());
    c
}

/// The bundle the runtime's `state ID` names.
fn runtime_bundle(rt: &Path, rt_root: &Path, id: &str) -> Option<PathBuf> {
    let out = runtime(rt, rt_root)
        .args(["state", id])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v["bundle"].as_str().map(PathBuf::from)
}

/// `RUNTIME --root ROOT delete --force ID` (kills what still runs).
fn delete_in_runtime(rt: &Path, rt_root: &Path, id: &str) -> bool {
    let ok = runtime(rt, rt_root)
        .args(["delete", "--force", id])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok && !rt_root.join(id).exists()
}
