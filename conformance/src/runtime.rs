//! Driving a runc-compatible runtime binary through its CLI only: every call
//! is `<runtime> --root <private state dir> <verb> …` with a timeout.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;
use serde_json::Value;

use crate::bundle::Bundle;
use crate::proc::{self, Output};

/// An environment variable every runtime invocation gets: it must not
/// reach the container's process.
pub const CANARY: &str = "BERTH_CONFORMANCE_CANARY";

/// A runtime binary and the private state root the suite gives it.
pub struct Runtime {
    pub bin: PathBuf,
    pub root: PathBuf,
    pub timeout: Duration,
}

impl Runtime {
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(&self.root).args(args).env(CANARY, "1");
        c
    }

    /// Run a runtime verb, capturing its output.
    pub fn call(&self, args: &[&str]) -> Result<Output> {
        proc::run(&mut self.command(args), None, self.timeout)
    }

    /// `run --bundle B ID` in the foreground; the container's stdout and
    /// stderr are the returned output, its exit code the exit code.
    pub fn run(&self, bundle: &Bundle, id: &str) -> Result<Output> {
        let b = bundle.path().to_string_lossy().into_owned();
        let out = self.call(&["run", "--bundle", &b, id]);
        // `run` deletes the container itself; make sure of it either way.
        let _ = self.call(&["delete", "--force", id]);
        out
    }
}

/// A container made by `create`, force-deleted on drop.
pub struct Container<'a> {
    pub rt: &'a Runtime,
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: PathBuf,
    /// The file the container's stdout goes to.
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

impl<'a> Container<'a> {
    pub fn new(rt: &'a Runtime, bundle: &Bundle, id: &str) -> Container<'a> {
        let dir = bundle.path();
        Container {
            rt,
            id: id.to_string(),
            bundle: dir.to_path_buf(),
            pid_file: dir.join("container.pid"),
            stdout: dir.join("container.out"),
            stderr: dir.join("container.err"),
        }
    }

    /// `create --bundle B --pid-file P ID`, whatever it returns.
    pub fn create(&self) -> Result<Output> {
        self.create_with(&[])
    }

    /// `create` with extra flags before the id.
    pub fn create_with(&self, extra: &[&str]) -> Result<Output> {
        let (b, p) = (
            self.bundle.to_string_lossy(),
            self.pid_file.to_string_lossy(),
        );
        let mut args = vec!["create", "--bundle", &b, "--pid-file", &p];
        args.extend_from_slice(extra);
        args.push(&self.id);
        let mut cmd = self.rt.command(&args);
        proc::run_into(&mut cmd, &self.stdout, &self.stderr, self.rt.timeout)
    }

    /// `create`, failing when it fails.
    pub fn create_ok(&self) -> Result<()> {
        expect_ok("create", &self.create()?)
    }

    pub fn start(&self) -> Result<Output> {
        self.rt.call(&["start", &self.id])
    }

    pub fn start_ok(&self) -> Result<()> {
        expect_ok("start", &self.start()?)
    }

    /// `create` then `start`.
    pub fn launch(&self) -> Result<()> {
        self.create_ok()?;
        self.start_ok()
    }

    /// The parsed `state` JSON.
    pub fn state(&self) -> Result<Value> {
        let out = self.rt.call(&["state", &self.id])?;
        if !out.success() {
            bail!("state failed: {}", out.describe());
        }
        serde_json::from_str(&out.stdout)
            .with_context(|| format!("state output is not JSON: {}", out.stdout.trim()))
    }

    pub fn status(&self) -> Result<String> {
        let st = self.state()?;
        st["status"]
            .as_str()
            .map(String::from)
            .context("state has no string status")
    }

    pub fn pid(&self) -> Result<i32> {
        let st = self.state()?;
        let pid = st["pid"].as_i64().context("state has no pid")?;
        Ok(pid as i32)
    }

    pub fn kill(&self, sig: Option<&str>) -> Result<Output> {
        let mut args = vec!["kill", self.id.as_str()];
        args.extend(sig);
        self.rt.call(&args)
    }

    pub fn delete(&self, force: bool) -> Result<Output> {
        if force {
            self.rt.call(&["delete", "--force", &self.id])
        } else {
            self.rt.call(&["delete", &self.id])
        }
    }

    /// Wait until `state` says `want`, reaping the container process (the
    /// suite is its subreaper) so that an exited process can be seen as stopped.
    pub fn wait_status(&self, want: &str) -> Result<()> {
        let pid = self.pid().ok();
        let mut last = String::new();
        let got = proc::wait_for(self.rt.timeout, || {
            if let Some(p) = pid.filter(|p| *p > 0) {
                let _ = waitpid(Pid::from_raw(p), Some(WaitPidFlag::WNOHANG));
            }
            match self.status() {
                Ok(s) if s == want => Some(()),
                Ok(s) => {
                    last = s;
                    None
                }
                Err(e) => {
                    last = format!("{e:#}");
                    None
                }
            }
        });
        got.with_context(|| format!("container never reached status {want:?} (last: {last})"))
    }

    /// What the container has written to its stdout so far.
    pub fn output(&self) -> String {
        proc::read_file_lossy(&self.stdout)
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = self.rt.call(&["delete", "--force", &self.id]);
        remove_default_cgroups(&self.id);
    }
}

/// Safety net for the host: remove (empty) cgroups a runtime left at its
/// default `/<id>` path. rmdir only succeeds on a cgroup with no tasks.
fn remove_default_cgroups(id: &str) {
    let Ok(dirs) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for h in dirs.flatten() {
        let d = h.path().join(id);
        if d.is_dir() {
            let _ = std::fs::remove_dir(&d);
        }
    }
    let _ = std::fs::remove_dir(PathBuf::from("/sys/fs/cgroup").join(id));
}

/// Fail with the command's output unless it succeeded.
pub fn expect_ok(what: &str, out: &Output) -> Result<()> {
    if out.success() {
        Ok(())
    } else {
        bail!("{what} failed: {}", out.describe())
    }
}

/// Reap every exited child (containers reparented to the suite). Only
/// called between cases, when the suite has no child of its own to wait for.
pub fn reap_orphans() {
    while let Ok(st) = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
        if st == nix::sys::wait::WaitStatus::StillAlive {
            break;
        }
    }
}
