//! Fixtures for every Berth test: a busybox rootfs built from Debian's
//! `busybox-static`, OCI bundles made from `<runtime> spec` and edited per
//! test, unique names, and named skips.
//!
//! Skips: a test that cannot run on this host calls [`skip`] (or a
//! `require_*` helper), which prints `SKIP <test>: <reason>` and appends the
//! line to the skip log (`$BERTH_SKIP_LOG`, default
//! `target/berth-skips.log`) that `cargo xtask test` reports at the end — so
//! a skip is never a silent pass. Under `CI=true`, where the job runs as
//! root, a missing privilege is a failure, not a skip.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{json, Value};

pub mod oci;
pub mod registry;

/// Where Debian's busybox-static installs its binary.
pub const BUSYBOX: &str = "/bin/busybox";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique across parallel tests and test processes (container ids,
/// cgroup names, interface names need different lengths: keep `prefix` short).
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{n}-{:x}", std::process::id(), nanos & 0xffff)
}

/// Record a named skip for `test` and print it.
pub fn skip(test: &str, reason: &str) {
    let line = format!("SKIP {test}: {reason}");
    eprintln!("{line}");
    let log = std::env::var_os("BERTH_SKIP_LOG")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/berth-skips.log"));
    if let Some(d) = log.parent() {
        let _ = std::fs::create_dir_all(d);
    }
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
    {
        let _ = writeln!(f, "{line}");
    }
}

/// Whether the tests run as root. Without root: a named skip (a failure
/// under `CI=true`, where the job always runs as root).
#[must_use]
pub fn require_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: needs root, and CI runs as root");
    }
    skip(test, "needs root");
    false
}

/// Whether `path` exists; otherwise a named skip (`what` says what is missing).
#[must_use]
pub fn require_path(test: &str, path: &str, what: &str) -> bool {
    if Path::new(path).exists() {
        return true;
    }
    skip(test, &format!("{what} ({path} not found)"));
    false
}

/// The workspace root (two levels above this crate's manifest).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

/// A scratch directory under /tmp, removed on drop.
pub fn tempdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("berth-{prefix}-"))
        .tempdir()
        .expect("tempdir")
}

/// Populate `dir` as a busybox root filesystem: the static busybox binary,
/// a symlink per applet in /bin, /etc/passwd and /etc/group with root,
/// nobody and a test user (uid/gid 1000), and the usual empty directories.
pub fn make_busybox_rootfs(dir: &Path) {
    assert!(
        Path::new(BUSYBOX).exists(),
        "{BUSYBOX} missing: install Debian's busybox-static (see README)"
    );
    for d in [
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "etc",
        "proc",
        "sys",
        "dev",
        "tmp",
        "root",
        "home/user",
        "var",
        "run",
    ] {
        std::fs::create_dir_all(dir.join(d)).expect("mkdir rootfs");
    }
    std::fs::copy(BUSYBOX, dir.join("bin/busybox")).expect("copy busybox");
    let out = Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&out.stdout).lines() {
        if applet != "busybox" {
            let _ = std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet));
        }
    }
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .expect("passwd");
    std::fs::write(
        dir.join("etc/group"),
        "root:x:0:\ntty:x:5:\nuser:x:1000:\nnogroup:x:65534:\n",
    )
    .expect("group");
    std::fs::set_permissions(
        dir.join("tmp"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .expect("chmod tmp");
}

/// An OCI bundle: `rootfs/` (busybox) and `config.json` made by
/// `<runtime> spec`, then made non-interactive (terminal false, args
/// `true`). Edit `config` and call [`Bundle::save`].
pub struct Bundle {
    pub dir: tempfile::TempDir,
    pub config: Value,
}

impl Bundle {
    /// A bundle whose config comes from `runtime spec` (any runc-compatible
    /// runtime binary).
    pub fn new(runtime: &Path) -> Bundle {
        let dir = tempdir("bundle");
        make_busybox_rootfs(&dir.path().join("rootfs"));
        let st = Command::new(runtime)
            .arg("spec")
            .current_dir(dir.path())
            .status()
            .expect("run spec");
        assert!(st.success(), "{} spec failed", runtime.display());
        let config: Value = serde_json::from_slice(
            &std::fs::read(dir.path().join("config.json")).expect("read config"),
        )
        .expect("config json");
        let mut b = Bundle { dir, config };
        b.config["process"]["terminal"] = json!(false);
        b.set_args(&["true"]);
        b.save();
        b
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    pub fn set_args(&mut self, args: &[&str]) -> &mut Self {
        self.config["process"]["args"] = json!(args);
        self
    }

    /// `sh -c SCRIPT`.
    pub fn set_script(&mut self, script: &str) -> &mut Self {
        self.set_args(&["sh", "-c", script])
    }

    /// Apply an edit to the config.
    pub fn edit(&mut self, f: impl FnOnce(&mut Value)) -> &mut Self {
        f(&mut self.config);
        self
    }

    /// Write `config.json`.
    pub fn save(&mut self) -> &mut Self {
        std::fs::write(
            self.dir.path().join("config.json"),
            serde_json::to_vec_pretty(&self.config).expect("json"),
        )
        .expect("write config");
        self
    }

    /// Remove a namespace type from the config.
    pub fn without_namespace(&mut self, typ: &str) -> &mut Self {
        if let Some(a) = self.config["linux"]["namespaces"].as_array_mut() {
            a.retain(|n| n["type"] != typ);
        }
        self
    }

    /// Add a namespace (optionally joined by path).
    pub fn with_namespace(&mut self, typ: &str, path: Option<&str>) -> &mut Self {
        self.without_namespace(typ);
        let mut n = json!({"type": typ});
        if let Some(p) = path {
            n["path"] = json!(p);
        }
        self.config["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces")
            .push(n);
        self
    }
}

/// A private runtime state root (`--root`) for one test, removed on drop.
pub fn state_root() -> tempfile::TempDir {
    tempdir("state")
}

/// Mount points under `prefix` in the host's mount table (for leak checks).
pub fn mounts_under(prefix: &Path) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .filter(|m| Path::new(m).starts_with(prefix))
        .map(String::from)
        .collect()
}

/// Detach (MNT_DETACH) every mount under `prefix`, deepest first: the
/// clean-up tests, benches and their fixtures' Drop share.
pub fn unmount_all_under(prefix: &Path) {
    let mut mounts = mounts_under(prefix);
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in mounts {
        let _ = nix::mount::umount2(Path::new(&m), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Where Debian's containers-common installs Docker's default seccomp profile.
pub const CONTAINERS_SECCOMP_PROFILE: &str = "/usr/share/containers/seccomp.json";

/// containers-common's default profile (Docker's, as podman ships it) in
/// OCI form, as podman would hand it to the runtime for an amd64 container
/// with the default capabilities (none of the rules that need one).
pub fn default_seccomp_profile_as_oci(d: &Value) -> Value {
    let arches: Vec<Value> = d["archMap"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["architecture"] == "SCMP_ARCH_X86_64")
        .flat_map(|a| {
            std::iter::once(a["architecture"].clone()).chain(
                a["subArchitectures"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            )
        })
        .collect();
    let listed = |v: &Value, k: &str| v[k].as_array().map(|a| !a.is_empty()).unwrap_or(false);
    let mut rules = Vec::new();
    for s in d["syscalls"].as_array().expect("syscalls") {
        let inc = &s["includes"];
        if listed(inc, "caps")
            || (listed(inc, "arches")
                && !inc["arches"].as_array().unwrap().contains(&json!("amd64")))
        {
            continue;
        }
        let mut r = json!({"names": s["names"], "action": s["action"]});
        for k in ["args", "errnoRet"] {
            if !s[k].is_null() {
                r[k] = s[k].clone();
            }
        }
        rules.push(r);
    }
    let mut p =
        json!({"defaultAction": d["defaultAction"], "architectures": arches, "syscalls": rules});
    if !d["defaultErrnoRet"].is_null() {
        p["defaultErrnoRet"] = d["defaultErrnoRet"].clone();
    }
    p
}

/// The benchmarks' "limited" container, as an engine would ask for it:
/// Docker's default seccomp profile (from containers-common, in OCI form)
/// and memory, pids, cpu and device limits. Errors if the profile is not
/// installed.
pub fn limit_and_filter(bundle: &mut Bundle) -> Result<(), String> {
    let p = CONTAINERS_SECCOMP_PROFILE;
    let d: Value = std::fs::read(p)
        .map_err(|e| format!("read {p} (Debian golang-github-containers-common): {e}"))
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| format!("{p}: {e}")))?;
    let profile = default_seccomp_profile_as_oci(&d);
    bundle
        .edit(|c| {
            c["linux"]["seccomp"] = profile;
            c["linux"]["resources"] = json!({
                "memory": {"limit": 268435456},
                "pids": {"limit": 256},
                "cpu": {"quota": 50000, "period": 100000},
                "devices": [{"allow": false, "access": "rwm"}]
            });
        })
        .save();
    Ok(())
}

/// Wait for `child` (spawned as the leader of its own process group) for at
/// most `limit`; then SIGKILL the whole group (by the child's PID, the
/// group's id), reap the child and return `None`. With `reap_all`, every
/// exited child of this process is reaped while waiting (for a subreaper);
/// otherwise only `child`. `xtask` and [`output_within`] share it.
pub fn wait_or_kill_group(
    child: &mut std::process::Child,
    limit: std::time::Duration,
    reap_all: bool,
) -> Option<std::process::ExitStatus> {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    use std::os::unix::process::ExitStatusExt;
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let deadline = std::time::Instant::now() + limit;
    loop {
        if reap_all {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, code)) if p == pid => {
                    return Some(std::process::ExitStatus::from_raw(code << 8))
                }
                Ok(WaitStatus::Signaled(p, sig, _)) if p == pid => {
                    return Some(std::process::ExitStatus::from_raw(sig as i32))
                }
                Ok(WaitStatus::StillAlive) | Err(_) => {}
                Ok(_) => continue,
            }
        } else if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        if std::time::Instant::now() >= deadline {
            let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(pid, None);
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// What a command run under [`output_within`] did.
#[derive(Debug)]
pub struct Bounded {
    /// `None` when the deadline passed and the command's process group was
    /// killed.
    pub status: Option<std::process::ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl Bounded {
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// stdout then stderr, and a line saying so when the deadline passed.
    pub fn text(&self) -> String {
        let mut t = format!("{}{}", self.stdout, self.stderr);
        if self.status.is_none() {
            t.push_str("\n(killed: deadline passed)");
        }
        t
    }

    /// As a [`std::process::Output`]; a killed command shows as killed by
    /// SIGKILL, with a line on stderr saying why.
    pub fn into_output(self) -> std::process::Output {
        use std::os::unix::process::ExitStatusExt;
        let mut stderr = self.stderr.into_bytes();
        if self.status.is_none() {
            stderr.extend_from_slice(b"\n(killed: deadline passed)");
        }
        std::process::Output {
            status: self.status.unwrap_or_else(|| ExitStatusExt::from_raw(9)),
            stdout: self.stdout.into_bytes(),
            stderr,
        }
    }
}

/// Run `cmd` to completion, but never longer than `limit`: it runs in a
/// process group of its own, which gets SIGKILL (by its PID, which is the
/// group's id) when the limit passes. Output goes to files, not pipes, so a
/// daemon the command leaves behind holding its stdout cannot stall the
/// caller; stdin is /dev/null. External tools (podman, docker, ctr, script)
/// go through this so that a hang fails one test instead of the whole run.
pub fn output_within(cmd: &mut Command, limit: std::time::Duration) -> Bounded {
    bounded(cmd, limit, false)
}

/// [`output_within`] for a test process that is a child subreaper: while
/// waiting it also reaps every orphan handed to it (e.g. podman's conmon,
/// which podman waits on until it is reaped). Only for test binaries that
/// run nothing else concurrently: it takes any child's exit status.
pub fn output_within_reaping(cmd: &mut Command, limit: std::time::Duration) -> Bounded {
    bounded(cmd, limit, true)
}

// wait_or_kill_group reaps the child on every path.
#[allow(clippy::zombie_processes)]
fn bounded(cmd: &mut Command, limit: std::time::Duration, reap_all: bool) -> Bounded {
    use std::os::unix::process::CommandExt;
    let dir = tempdir("out");
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let out = std::fs::File::create(&out_path).expect("stdout file");
    let err = std::fs::File::create(&err_path).expect("stderr file");
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let status = wait_or_kill_group(&mut child, limit, reap_all);
    let read =
        |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    Bounded {
        status,
        stdout: read(&out_path),
        stderr: read(&err_path),
    }
}
