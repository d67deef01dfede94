//! Bundles for cases: a busybox rootfs with the probe helper (and the shared
//! libraries it needs) inside, and a baseline `config.json` written by the
//! suite itself — never by `<runtime> spec` — so every runtime gets the very
//! same config.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// Where the probe helper lives inside every rootfs.
pub const HELPER_IN_ROOTFS: &str = "/berth-runtimetest";

/// The probe helper on the host and the shared libraries it loads.
#[derive(Debug, Clone)]
pub struct Helper {
    pub path: PathBuf,
    pub libs: Vec<PathBuf>,
}

impl Helper {
    /// Find the libraries `path` needs with `ldd` (none when it is static).
    pub fn discover(path: &Path) -> Result<Helper> {
        if !path.is_file() {
            bail!(
                "probe helper {} not found (build the berth-runtimetest binary)",
                path.display()
            );
        }
        let out = Command::new("ldd")
            .arg(path)
            .output()
            .context("run ldd on the probe helper")?;
        let text = String::from_utf8_lossy(&out.stdout);
        let libs = text
            .lines()
            .filter_map(|l| l.split_whitespace().rfind(|w| w.starts_with('/')))
            .map(PathBuf::from)
            .collect();
        Ok(Helper {
            path: path.to_path_buf(),
            libs,
        })
    }

    /// Copy the helper and its libraries into `rootfs` at the same paths.
    fn install(&self, rootfs: &Path) -> Result<()> {
        let dst = rootfs.join(HELPER_IN_ROOTFS.trim_start_matches('/'));
        std::fs::copy(&self.path, &dst)
            .with_context(|| format!("copy helper to {}", dst.display()))?;
        for lib in &self.libs {
            let dst = rootfs.join(lib.strip_prefix("/").unwrap_or(lib));
            if let Some(d) = dst.parent() {
                std::fs::create_dir_all(d).with_context(|| format!("mkdir {}", d.display()))?;
            }
            std::fs::copy(lib, &dst)
                .with_context(|| format!("copy {} into rootfs", lib.display()))?;
        }
        Ok(())
    }
}

/// One case's bundle directory, removed on drop.
pub struct Bundle {
    dir: tempfile::TempDir,
    pub config: Value,
}

impl Bundle {
    /// A fresh bundle under `parent` with a busybox rootfs, the helper, and
    /// the baseline config.
    pub fn new(parent: &Path, helper: &Helper) -> Result<Bundle> {
        let dir = tempfile::Builder::new()
            .prefix("bundle-")
            .tempdir_in(parent)
            .context("create bundle dir")?;
        // Traversable by mapped users (user namespace cases).
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .context("chmod bundle dir")?;
        let rootfs = dir.path().join("rootfs");
        berth_testkit::make_busybox_rootfs(&rootfs);
        helper.install(&rootfs)?;
        let mut b = Bundle {
            dir,
            config: baseline(),
        };
        b.save()?;
        Ok(b)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// A path inside the rootfs, seen from the host.
    pub fn in_rootfs(&self, p: &str) -> PathBuf {
        self.rootfs().join(p.trim_start_matches('/'))
    }

    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.config["process"]["args"] = json!(args);
        self
    }

    /// `sh -c SCRIPT`.
    pub fn script(&mut self, script: &str) -> &mut Self {
        self.args(&["sh", "-c", script])
    }

    /// The probe helper with `args`.
    pub fn probe(&mut self, args: &[&str]) -> &mut Self {
        let mut all = vec![HELPER_IN_ROOTFS];
        all.extend_from_slice(args);
        self.args(&all)
    }

    pub fn add_mount(&mut self, m: Value) -> &mut Self {
        self.config["mounts"]
            .as_array_mut()
            .expect("mounts array")
            .push(m);
        self
    }

    pub fn without_namespace(&mut self, typ: &str) -> &mut Self {
        if let Some(a) = self.config["linux"]["namespaces"].as_array_mut() {
            a.retain(|n| n["type"] != typ);
        }
        self
    }

    pub fn with_namespace(&mut self, typ: &str, path: Option<&str>) -> &mut Self {
        self.without_namespace(typ);
        let mut n = json!({ "type": typ });
        if let Some(p) = path {
            n["path"] = json!(p);
        }
        self.config["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces array")
            .push(n);
        self
    }

    /// Write `config.json`.
    pub fn save(&mut self) -> Result<()> {
        let p = self.dir.path().join("config.json");
        std::fs::write(&p, serde_json::to_vec_pretty(&self.config)?)
            .with_context(|| format!("write {}", p.display()))
    }
}

/// The capabilities runc's `spec` grants; the baseline keeps them.
pub const DEFAULT_CAPS: [&str; 3] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

/// The baseline config: what `runc spec` writes, made non-interactive and
/// with a writable rootfs (cases that need a read-only one say so).
pub fn baseline() -> Value {
    let caps = json!(DEFAULT_CAPS);
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": ["true"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps, "ambient": caps
            },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": false },
        "hostname": "berth-conformance",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] },
            { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
              "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }
        ],
        "linux": {
            "resources": { "devices": [{ "allow": false, "access": "rwm" }] },
            "namespaces": [
                { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
                { "type": "uts" }, { "type": "mount" }
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}
