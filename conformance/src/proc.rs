//! The one process-spawn helper every case uses: stdin from /dev/null (or a
//! string), stdout and stderr captured through temp files (never pipes: a
//! container started by `create` keeps the stdio it was given, and a pipe
//! would then never reach EOF), and a timeout after which the process is
//! killed by PID.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// What a finished command left behind.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// The exit code, or 128+signal when killed by a signal (as a shell reports it).
    pub fn code(&self) -> i32 {
        use std::os::unix::process::ExitStatusExt;
        self.status
            .code()
            .or_else(|| self.status.signal().map(|s| 128 + s))
            .unwrap_or(-1)
    }

    /// A one-line summary for failure messages.
    pub fn describe(&self) -> String {
        let mut s = format!("exit {}", self.code());
        for (name, text) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            let t = text.trim();
            if !t.is_empty() {
                let t: String = t.chars().take(600).collect();
                s.push_str(&format!("; {name}: {t}"));
            }
        }
        s
    }
}

/// Run `cmd` to completion with `stdin` as its input, killing it after `timeout`.
pub fn run(cmd: &mut Command, stdin: Option<&str>, timeout: Duration) -> Result<Output> {
    let out = tempfile::tempfile().context("create stdout capture file")?;
    let err = tempfile::tempfile().context("create stderr capture file")?;
    run_inner(cmd, stdin, out, err, timeout)
}

/// Like [`run`], but stdout and stderr go to (appended) files that outlive
/// the command: what `create` hands to the container's process.
pub fn run_into(cmd: &mut Command, out: &Path, err: &Path, timeout: Duration) -> Result<Output> {
    let open = |p: &Path| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(p)
            .with_context(|| format!("open {}", p.display()))
    };
    let (o, e) = (open(out)?, open(err)?);
    let (olen, elen) = (
        o.metadata().map(|m| m.len()).unwrap_or(0),
        e.metadata().map(|m| m.len()).unwrap_or(0),
    );
    let mut res = run_inner(cmd, None, o, e, timeout)?;
    res.stdout = read_file_lossy(out)
        .get(olen as usize..)
        .unwrap_or_default()
        .to_string();
    res.stderr = read_file_lossy(err)
        .get(elen as usize..)
        .unwrap_or_default()
        .to_string();
    Ok(res)
}

fn run_inner(
    cmd: &mut Command,
    stdin: Option<&str>,
    mut out: File,
    mut err: File,
    timeout: Duration,
) -> Result<Output> {
    let input = match stdin {
        Some(text) => {
            let mut f = tempfile::tempfile().context("create stdin file")?;
            f.write_all(text.as_bytes()).context("write stdin file")?;
            f.rewind().context("rewind stdin file")?;
            Stdio::from(f)
        }
        None => Stdio::null(),
    };
    cmd.stdin(input)
        .stdout(out.try_clone().context("dup stdout capture")?)
        .stderr(err.try_clone().context("dup stderr capture")?);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("spawn {:?}", cmd.get_program()))?;
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().context("wait for child")? {
            break st;
        }
        if start.elapsed() > timeout {
            let pid = Pid::from_raw(child.id() as i32);
            let _ = kill(pid, Signal::SIGKILL);
            let _ = child.wait();
            anyhow::bail!(
                "{:?} {:?} timed out after {timeout:?}",
                cmd.get_program(),
                cmd.get_args().collect::<Vec<_>>()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Ok(Output {
        status,
        stdout: read_all(&mut out)?,
        stderr: read_all(&mut err)?,
    })
}

fn read_all(f: &mut File) -> Result<String> {
    f.rewind().context("rewind capture file")?;
    let mut s = String::new();
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).context("read capture file")?;
    s.push_str(&String::from_utf8_lossy(&buf));
    Ok(s)
}

/// Read a capture file that a still-running process may be writing to.
pub fn read_file_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// Poll `f` until it returns `Some`, or give up after `timeout`.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
