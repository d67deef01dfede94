//! OCI hooks: run with the container state on stdin, the hook's own args and
//! env, and its `timeout` enforced.

use std::io::{Read, Seek, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::memfd::{memfd_create, MFdFlags};
use oci_spec::runtime::Hook;

use crate::error::{Error, Result};

/// The hook points, in lifecycle order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Prestart => "prestart",
            Kind::CreateRuntime => "createRuntime",
            Kind::CreateContainer => "createContainer",
            Kind::StartContainer => "startContainer",
            Kind::Poststart => "poststart",
            Kind::Poststop => "poststop",
        }
    }

    pub fn of(self, spec: &oci_spec::runtime::Spec) -> Vec<Hook> {
        let Some(h) = spec.hooks() else {
            return Vec::new();
        };
        #[allow(deprecated)]
        let list = match self {
            Kind::Prestart => h.prestart(),
            Kind::CreateRuntime => h.create_runtime(),
            Kind::CreateContainer => h.create_container(),
            Kind::StartContainer => h.start_container(),
            Kind::Poststart => h.poststart(),
            Kind::Poststop => h.poststop(),
        };
        list.clone().unwrap_or_default()
    }
}

/// Run every hook of `kind`, in order, stopping at the first failure.
pub fn run_all(kind: Kind, hooks: &[Hook], state_json: &[u8]) -> Result<()> {
    for h in hooks {
        run_one(kind, h, state_json)?;
    }
    Ok(())
}

/// Run every hook of `kind`, in order, continuing past failures (poststart,
/// poststop: the spec asks for a warning); returns the failures.
pub fn run_all_warn(kind: Kind, hooks: &[Hook], state_json: &[u8]) -> Vec<Error> {
    hooks
        .iter()
        .filter_map(|h| run_one(kind, h, state_json).err())
        .collect()
}

fn run_one(kind: Kind, hook: &Hook, state_json: &[u8]) -> Result<()> {
    let path = hook.path();
    let herr = |msg: String| Error::Hook {
        kind: kind.name(),
        path: path.display().to_string(),
        msg,
    };
    if !path.is_absolute() {
        return Err(herr("path must be absolute".into()));
    }
    let out = memfd_create("berth-hook-output", MFdFlags::MFD_CLOEXEC)
        .map_err(|e| herr(format!("memfd: {e}")))?;
    let out = std::fs::File::from(out);
    let mut cmd = Command::new(path);
    let args = hook.args().clone().unwrap_or_default();
    if let Some((argv0, rest)) = args.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear();
    for kv in hook.env().clone().unwrap_or_default() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(out.try_clone().map_err(|e| herr(e.to_string()))?)
        .stderr(out.try_clone().map_err(|e| herr(e.to_string()))?);
    let mut child = cmd.spawn().map_err(|e| herr(format!("start: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin closes the pipe: not an error.
        let _ = stdin.write_all(state_json);
    }
    let timeout = hook
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Duration::from_secs(t as u64));
    let started = Instant::now();
    let mut nap = Duration::from_micros(200);
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) => {}
            Err(e) => return Err(herr(format!("wait: {e}"))),
        }
        if let Some(t) = timeout {
            if started.elapsed() >= t {
                let _ = child.kill();
                let _ = child.wait();
                return Err(herr(format!("timed out after {}s", t.as_secs())));
            }
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(10));
    };
    if status.success() {
        return Ok(());
    }
    let mut out = out;
    let mut text = String::new();
    let _ = out.rewind();
    let _ = out.take(4096).read_to_string(&mut text);
    let text = text.trim();
    Err(herr(if text.is_empty() {
        format!("failed: {status}")
    } else {
        format!("failed: {status}: {}", text.replace('\n', " "))
    }))
}
