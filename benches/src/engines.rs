//! The two engines the engine bench drives, each with a private store made
//! from the same busybox tarball, and a `Drop` that removes every container
//! and image it made, unmounts what is left and deletes the store.
//!
//! Podman's configuration follows HOST.md (cgroupfs, file events, ulimits
//! within the host's hard limit, overlay storage from the first call) with
//! every path of its own under a temp dir — except `static_dir`, which is
//! deliberately left at its default (`<graphroot>/libpod`): conmon's exit
//! command (`podman container cleanup`) is passed `--root`, `--runroot` and
//! `--tmpdir` but not the static dir, so with `static_dir` set elsewhere the
//! cleanup opens a different, empty database, fails with "no such
//! container", and every `podman run --rm` and `podman wait` then sits out
//! conmon's 20-second timeout ("Exceeded conmon timeout"). For the same
//! reason the events log is left at its default under `tmp_dir`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::timed;

/// The longest a single engine command may take before it counts as hung.
pub const STEP_LIMIT: Duration = Duration::from_secs(120);

/// Put the busybox rootfs (Debian's busybox-static) in a tarball under
/// `dir`: what both engines import.
pub fn busybox_tarball(dir: &Path) -> Result<PathBuf> {
    let rootfs = dir.join("rootfs");
    berth_testkit::make_busybox_rootfs(&rootfs);
    let tarball = dir.join("rootfs.tar");
    let mut tar = Command::new("tar");
    tar.arg("-C").arg(&rootfs).arg("-cf").arg(&tarball).arg(".");
    timed(tar, STEP_LIMIT).context("tar of the busybox rootfs")?;
    Ok(tarball)
}

/// `berth` with its own `--root` and `--runroot`.
pub struct Berth {
    pub bin: PathBuf,
    dir: tempfile::TempDir,
}

impl Berth {
    /// A fresh store with `tarball` imported as `image`.
    pub fn new(bin: &Path, tarball: &Path, image: &str) -> Result<Berth> {
        let b = Berth {
            bin: bin.to_path_buf(),
            dir: berth_testkit::tempdir("eb-berth"),
        };
        let mut c = b.command(&["import"]);
        c.arg(tarball).arg(image);
        timed(c, STEP_LIMIT).context("berth import")?;
        Ok(b)
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root")
            .arg(self.dir.path().join("root"))
            .arg("--runroot")
            .arg(self.dir.path().join("run"))
            .args(args);
        c
    }

    /// The pid of the container's berth-monitor: what it wrote into the
    /// monitor lock it holds for its whole life (engine/src/layout.rs).
    pub fn monitor_pid(&self, id: &str) -> Result<i32> {
        let lock = self
            .dir
            .path()
            .join("run/containers")
            .join(id)
            .join(berth_engine::layout::MONITOR_LOCK);
        let pid: i32 = std::fs::read_to_string(&lock)
            .with_context(|| format!("read {}", lock.display()))?
            .trim()
            .parse()
            .with_context(|| format!("{} holds no pid", lock.display()))?;
        match crate::comm(pid).as_deref() {
            Some("berth-monitor") => Ok(pid),
            other => bail!(
                "pid {pid} from {} is {other:?}, not berth-monitor",
                lock.display()
            ),
        }
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        let mut ps = self.command(&["ps", "-aq"]);
        ps.stderr(Stdio::null());
        if let Ok((_, ids)) = timed(ps, STEP_LIMIT) {
            for id in ids.split_whitespace() {
                let _ = timed(self.command(&["rm", "-f", id]), STEP_LIMIT);
            }
        }
        berth_testkit::unmount_all_under(self.dir.path());
    }
}

/// podman with private configuration, storage and temp dirs.
pub struct Podman {
    dir: tempfile::TempDir,
    /// Whether podman's cgroupfs parent (`/libpod_parent`, where conmon
    /// goes) is ours to remove afterwards.
    made_libpod_parent: bool,
}

fn libpod_parents() -> Vec<PathBuf> {
    std::fs::read_dir("/sys/fs/cgroup")
        .map(|d| {
            d.flatten()
                .map(|h| h.path().join("libpod_parent"))
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default()
}

impl Podman {
    /// A fresh store with `tarball` imported (`podman import`) as `image`.
    pub fn new(tarball: &Path, image: &str) -> Result<Podman> {
        // Short: podman refuses a runroot longer than 50 characters.
        let dir = berth_testkit::tempdir("ep");
        let d = dir.path();
        let conf = format!(
            "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n\
             [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n\
             tmp_dir = \"{0}/tmp\"\nvolume_path = \"{0}/volumes\"\n",
            d.display()
        );
        std::fs::write(d.join("containers.conf"), conf)?;
        let storage = format!(
            "[storage]\ndriver = \"overlay\"\nrunroot = \"{0}/run\"\ngraphroot = \"{0}/root\"\n",
            d.display()
        );
        std::fs::write(d.join("storage.conf"), storage)?;
        let p = Podman {
            dir,
            made_libpod_parent: libpod_parents().is_empty(),
        };
        let mut c = p.command(None, &["import", "--quiet"]);
        c.arg(tarball).arg(image);
        timed(c, STEP_LIMIT).context("podman import")?;
        Ok(p)
    }

    /// `podman [--runtime R] ARGS` with this store's configuration.
    pub fn command(&self, runtime: Option<&Path>, args: &[&str]) -> Command {
        let d = self.dir.path();
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", d.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", d.join("storage.conf"));
        if let Some(r) = runtime {
            c.arg("--runtime").arg(r);
        }
        c.args(args);
        c
    }

    /// The conmon pid of each container in `ids`, as podman records it.
    pub fn conmon_pids(&self, ids: &[String]) -> Result<Vec<i32>> {
        let mut c = self.command(None, &["inspect", "--format", "{{.State.ConmonPid}}"]);
        c.args(ids);
        let (_, out) = timed(c, STEP_LIMIT)?;
        let pids = out
            .split_whitespace()
            .map(|p| p.parse().with_context(|| format!("conmon pid {p:?}")))
            .collect::<Result<Vec<i32>>>()?;
        if pids.len() != ids.len() {
            bail!(
                "podman inspect gave {} conmon pids for {} containers",
                pids.len(),
                ids.len()
            );
        }
        for &pid in &pids {
            if crate::comm(pid).as_deref() != Some("conmon") {
                bail!("conmon pid {pid} from podman inspect is not a running conmon");
            }
        }
        Ok(pids)
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = timed(
            self.command(None, &["rm", "--all", "--force", "--time", "0"]),
            STEP_LIMIT,
        );
        let _ = timed(self.command(None, &["rmi", "--all", "--force"]), STEP_LIMIT);
        // c/storage's overlay driver bind-mounts its home onto itself.
        berth_testkit::unmount_all_under(self.dir.path());
        if self.made_libpod_parent {
            // rmdir only removes cgroups without tasks or children.
            for p in libpod_parents() {
                let _ = std::fs::remove_dir(p.join("conmon"));
                let _ = std::fs::remove_dir(&p);
            }
        }
    }
}
