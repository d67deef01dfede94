//! What the container-verb tests share: a store with `busybox:test`
//! imported ([`Env`]), the runtime to test with (or a named skip), and small
//! helpers. Each test has its own `--root` and `--runroot`.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Env {
    pub dir: tempfile::TempDir,
    pub runtime: String,
}

/// The runtime to test with, or a named skip.
pub fn runtime(test: &str, which: &str) -> Option<String> {
    if !berth_testkit::require_root(test) {
        return None;
    }
    let path = if which == "crun" {
        // crun refuses cgroup v1 + v2 hybrid hosts; HOST.md's workaround
        // (Env::new writes the wrapper).
        if !berth_testkit::require_path(
            test,
            "/usr/bin/crun",
            "crun is not installed (Debian package crun)",
        ) {
            return None;
        }
        return Some(CRUN_WRAPPER.to_string());
    } else if which == "berth-runtime" {
        std::env::var("BERTH_RUNTIME").unwrap_or_else(|_| {
            berth_testkit::workspace_root()
                .join("target/debug/berth-runtime")
                .display()
                .to_string()
        })
    } else {
        let found = std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(which))
                .find(|p| p.is_file())
        });
        match found {
            Some(p) => p.display().to_string(),
            None => {
                berth_testkit::skip(
                    test,
                    &format!("{which} is not installed (Debian package {which})"),
                );
                return None;
            }
        }
    };
    if !berth_testkit::require_path(
        test,
        &path,
        "berth-runtime not built (cargo build -p berth-runtime, or set BERTH_RUNTIME)",
    ) {
        return None;
    }
    let monitor = Path::new(env!("CARGO_BIN_EXE_berth")).with_file_name("berth-monitor");
    assert!(
        monitor.is_file() || std::env::var_os("BERTH_MONITOR").is_some(),
        "{} missing: build it with the same target dir (cargo test -p berth-engine -p berth-cli)",
        monitor.display()
    );
    Some(path)
}

pub const CRUN_WRAPPER: &str = "crun-wrapper";

impl Env {
    /// A fresh store with `busybox:test` imported.
    pub fn new(name: &str, runtime: String) -> Env {
        let mut e = Env {
            dir: berth_testkit::tempdir(name),
            runtime,
        };
        if e.runtime == CRUN_WRAPPER {
            let w = e.path("crun");
            fs::write(&w, "#!/bin/sh\nexec unshare -m --propagation private sh -c \
                'umount /sys/fs/cgroup/unified 2>/dev/null; exec /usr/bin/crun \"$@\"' crun \"$@\"\n").unwrap();
            fs::set_permissions(&w, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
            e.runtime = w.display().to_string();
        }
        fs::write(e.path("env-berth.toml"), "[run]\nnetwork = \"none\"\n").unwrap();
        let rootfs = e.dir.path().join("rootfs");
        berth_testkit::make_busybox_rootfs(&rootfs);
        let tarball = e.dir.path().join("rootfs.tar");
        let mut b = tar::Builder::new(fs::File::create(&tarball).unwrap());
        b.follow_symlinks(false);
        b.append_dir_all(".", &rootfs).unwrap();
        b.into_inner().unwrap();
        e.ok(&["import", tarball.to_str().unwrap(), "busybox:test"]);
        e
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
        c.arg("--root")
            .arg(self.path("root"))
            .arg("--runroot")
            .arg(self.path("run"))
            .args(args);
        c.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // No berth.toml from this host (tests/config.rs sets its own), and
        // containers without a network unless a test asks for one: the
        // default, the bridge, is the host's berth0 (networks.rs gives each
        // test a bridge, subnet and nftables table of its own).
        c.env("BERTH_CONFIG", self.path("env-berth.toml"));
        c
    }

    pub fn berth(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("spawn berth")
    }

    /// `berth run --runtime R ARGS...`
    pub fn run(&self, args: &[&str]) -> Output {
        let mut a = vec!["run", "--runtime", &self.runtime];
        a.extend_from_slice(args);
        self.berth(&a)
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.berth(args);
        assert!(
            o.status.success(),
            "berth {args:?} failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn ps_all(&self) -> Vec<Value> {
        serde_json::from_str::<Value>(&self.ok(&["ps", "-a", "--format", "json"]))
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    /// Nothing of any container left: no record, snapshot dir, run dir or mount.
    pub fn assert_no_containers(&self) {
        assert_eq!(self.ps_all(), Vec::<Value>::new(), "no container records");
        for d in ["root/containers", "run/containers"] {
            let left: Vec<_> = fs::read_dir(self.path(d))
                .map(|r| r.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            assert!(left.is_empty(), "{d} is empty: {left:?}");
        }
        assert_eq!(
            berth_testkit::mounts_under(self.dir.path()),
            Vec::<String>::new(),
            "no mounts left"
        );
    }
}

impl Drop for Env {
    /// Stop and remove every container, then unmount anything left, so the
    /// store can be deleted.
    fn drop(&mut self) {
        if let Ok(o) = self.cmd(&["ps", "-aq"]).output() {
            for id in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                let _ = self.cmd(&["rm", "-f", id]).output();
            }
        }
        berth_testkit::unmount_all_under(self.dir.path());
    }
}

impl Env {
    /// Each `berth run ARGS busybox:test true` fails with docker's 125 and
    /// a message naming `want`, and leaves no container.
    pub fn assert_run_refused(&self, cases: &[(&[&str], &str)]) {
        for (args, want) in cases {
            let mut a = args.to_vec();
            a.extend(["busybox:test", "true"]);
            let o = self.run(&a);
            assert_eq!(code(&o), 125, "{args:?}: {}", text(&o.stderr));
            assert!(
                text(&o.stderr).contains(want),
                "{args:?}: {}",
                text(&o.stderr)
            );
        }
        self.assert_no_containers();
    }
}

/// A network test's runtime, when nftables is there too (else a named skip).
pub fn net_runtime(test: &str) -> Option<String> {
    let rt = runtime(test, "berth-runtime")?;
    berth_testkit::require_path(
        test,
        "/usr/sbin/nft",
        "nftables is not installed (Debian package nftables)",
    )
    .then_some(rt)
}

impl Env {
    /// `berth ARGS` with `table` as berth-netd's nftables table (a network
    /// test's own, never the host's `berth`).
    pub fn berth_in(&self, table: &str, args: &[&str]) -> Output {
        let mut c = self.cmd(args);
        c.env("BERTH_NETD_NFT_TABLE", table);
        c.output().expect("spawn berth")
    }

    /// [`Env::berth_in`] that must succeed; its stdout.
    pub fn ok_in(&self, table: &str, args: &[&str]) -> String {
        let o = self.berth_in(table, args);
        assert_eq!(code(&o), 0, "{args:?}: {}", text(&o.stderr));
        text(&o.stdout)
    }
}

pub fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Poll `f` until it is true (20 s at most).
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn inspect(e: &Env, c: &str) -> Value {
    serde_json::from_str::<Value>(&e.ok(&["inspect", c])).unwrap()[0].clone()
}
