//! Helpers for the comparison runs: timing whole commands, peak RSS through
//! `/usr/bin/time -f %M`, medians and ratios. Nothing here asserts timings.

pub mod net_host;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// A runtime under comparison: how to invoke it.
pub struct Runtime {
    pub name: String,
    /// argv prefix (the binary, possibly behind a wrapper).
    pub argv: Vec<String>,
    /// The binary itself (for its size).
    pub binary: PathBuf,
}

impl Runtime {
    pub fn command(&self, root: &Path) -> Command {
        let mut c = Command::new(&self.argv[0]);
        c.args(&self.argv[1..]).arg("--root").arg(root);
        c
    }
}

/// Run a command to completion, quietly; error on failure.
pub fn run_quiet(mut c: Command) -> Result<Duration> {
    let desc = format!("{c:?}");
    let t = Instant::now();
    let out = c
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| desc.clone())?;
    let d = t.elapsed();
    if !out.status.success() {
        bail!(
            "{desc}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(d)
}

/// Peak RSS in KiB of a command, by `/usr/bin/time -f %M`.
pub fn peak_rss_kib(c: &Command) -> Result<u64> {
    let mut t = Command::new("/usr/bin/time");
    t.arg("-f")
        .arg("%M")
        .arg(c.get_program())
        .args(c.get_args());
    let out = t
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output()
        .context("/usr/bin/time (Debian package time)")?;
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap_or("").trim().to_string();
    last.parse()
        .with_context(|| format!("parse peak RSS from {err:?}"))
}

pub fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    if v.is_empty() {
        Duration::ZERO
    } else {
        v[v.len() / 2]
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Size in bytes of a file.
pub fn size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// Find a program on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// Whether `--quick` was passed (CI's run: fewer iterations, same scenarios).
pub fn quick() -> bool {
    std::env::args().any(|a| a == "--quick")
}

/// `full` iterations, or a third of them (at least 3) under `--quick`.
pub fn iterations(full: usize) -> usize {
    if quick() {
        (full / 3).max(3)
    } else {
        full
    }
}
