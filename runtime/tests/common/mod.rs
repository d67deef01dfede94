//! Shared helpers for the runtime's integration tests: a runtime with a
//! private `--root`, run as an external binary exactly as callers run it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use berth_testkit::{require_root, unique, Bundle};

pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_berth-runtime"))
}

/// A runtime with its own state root; deletes leftover containers on drop.
pub struct Rt {
    pub root: tempfile::TempDir,
}

impl Rt {
    pub fn new() -> Rt {
        Rt {
            root: berth_testkit::state_root(),
        }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(bin());
        c.arg("--root").arg(self.root.path());
        c
    }

    /// Run with the given args; stdin null, output captured through files
    /// (not pipes: a created container keeps its stdio open, and waiting for
    /// a pipe's EOF would wait for the container).
    pub fn run(&self, args: &[&str]) -> Output {
        let out = tempfile::tempfile().expect("tempfile");
        let err = tempfile::tempfile().expect("tempfile");
        let status = self
            .cmd()
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup"))
            .stderr(err.try_clone().expect("dup"))
            .status()
            .expect("spawn berth-runtime");
        Output {
            status,
            stdout: read_all(out),
            stderr: read_all(err),
        }
    }

    /// Create a container whose stdout and stderr go to a file; returns it.
    pub fn create_logged(&self, bundle: &Bundle, id: &str) -> PathBuf {
        let log = bundle.path().join(format!("{id}.log"));
        let f = std::fs::File::create(&log).expect("log file");
        let status = self
            .cmd()
            .args(["create", "--bundle", bundle.path().to_str().unwrap(), id])
            .stdin(Stdio::null())
            .stdout(f.try_clone().expect("dup"))
            .stderr(f)
            .status()
            .expect("spawn berth-runtime");
        assert!(
            status.success(),
            "create {id} failed: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        log
    }

    /// Run and require success; return stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "berth-runtime {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Run and require failure; return stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            !o.status.success(),
            "berth-runtime {args:?} should have failed:\nstdout: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        String::from_utf8_lossy(&o.stderr).into_owned()
    }

    pub fn state(&self, id: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["state", id])).expect("state json")
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap_or("").to_string()
    }

    /// Create a container from `bundle` with `id`, stdio detached.
    pub fn create(&self, bundle: &Bundle, id: &str) {
        self.ok(&["create", "--bundle", bundle.path().to_str().unwrap(), id]);
    }

    /// Wait until the container reaches `status` (10 s at most).
    pub fn wait_status(&self, id: &str, status: &str) {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.status(id);
            if s == status {
                return;
            }
            assert!(
                Instant::now() < end,
                "{id}: status stuck at {s}, wanted {status}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn state_dir(&self, id: &str) -> PathBuf {
        self.root.path().join(id)
    }
}

impl Drop for Rt {
    fn drop(&mut self) {
        if let Ok(rd) = std::fs::read_dir(self.root.path()) {
            for e in rd.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = self.run(&["delete", "--force", &id]);
            }
        }
    }
}

/// A fresh busybox bundle running `sh -c script`.
pub fn bundle(script: &str) -> Bundle {
    let mut b = Bundle::new(bin());
    b.set_script(script).save();
    b
}

/// Whether a process exists (not a zombie).
pub fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let st = s
                .rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .next()
                .unwrap_or("");
            st != "Z" && st != "X"
        })
        .unwrap_or(false)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn read_all(mut f: std::fs::File) -> Vec<u8> {
    use std::io::{Read, Seek};
    let mut v = Vec::new();
    let _ = f.rewind();
    let _ = f.read_to_end(&mut v);
    v
}

/// Wait until `path` contains `needle` (10 s at most); return the content.
pub fn wait_for_text(path: &Path, needle: &str) -> String {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let s = std::fs::read_to_string(path).unwrap_or_default();
        if s.contains(needle) {
            return s;
        }
        assert!(
            Instant::now() < end,
            "{} never contained {needle:?}; has: {s}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
