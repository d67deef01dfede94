//! Helpers for the comparison runs: timing whole commands, peak RSS through
//! `/usr/bin/time -f %M`, resident memory of running processes, medians and
//! ratios. Nothing here asserts timings.

pub mod engines;

pub mod net_host;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

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

/// Peak RSS in KiB of a command that goes through [`mount_ns_wrapper`],
/// by `/usr/bin/time -f %M` inside the wrapper: the largest of the
/// runtime's processes, each at its peak (the wrapper's own not counted).
pub fn wrapped_peak_rss_kib(mut c: Command) -> Result<u64> {
    let f = tempfile::NamedTempFile::new().context("temp file for the RSS")?;
    let desc = format!("{c:?}");
    c.env("BERTH_BENCH_RSS", f.path());
    run_quiet(c).with_context(|| format!("RSS sample of {desc}"))?;
    let text = std::fs::read_to_string(f.path())?;
    // The figure is the last line (one before it tells of a non-zero exit).
    let last = text.lines().last().unwrap_or("").trim();
    last.parse()
        .with_context(|| format!("parse peak RSS from {text:?}"))
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

pub fn mean(v: &[Duration]) -> Duration {
    if v.is_empty() {
        Duration::ZERO
    } else {
        v.iter().sum::<Duration>() / v.len() as u32
    }
}

/// Run a command to completion and return how long it took and its stdout;
/// error (with its stderr) on failure. Output goes to files, not pipes, so
/// a daemon it leaves behind cannot hold the call open. The command runs in
/// a process group of its own, which gets SIGKILL (by the command's PID,
/// the group's id) when it overruns `limit`. The wait itself blocks (no
/// polling), so the time is the command's own.
pub fn timed(mut c: Command, limit: Duration) -> Result<(Duration, String)> {
    use std::os::unix::process::CommandExt;
    let desc = format!("{c:?}");
    let dir = berth_testkit::tempdir("out");
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let t = Instant::now();
    let mut child = c
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path)?)
        .stderr(std::fs::File::create(&err_path)?)
        .process_group(0)
        .spawn()
        .with_context(|| desc.clone())?;
    let group = Pid::from_raw(child.id() as i32);
    let (done, dog) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let overran = dog.recv_timeout(limit) == Err(std::sync::mpsc::RecvTimeoutError::Timeout);
        if overran {
            let _ = killpg(group, Signal::SIGKILL);
        }
        overran
    });
    let status = child.wait().with_context(|| desc.clone());
    let d = t.elapsed();
    drop(done);
    let overran = watchdog.join().unwrap_or(false);
    let status = status?;
    let read =
        |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    if overran {
        bail!("{desc}: killed after {} s", limit.as_secs());
    }
    if !status.success() {
        bail!("{desc}: {status}: {}", read(&err_path).trim());
    }
    Ok((d, read(&out_path)))
}

/// Resident memory of a running process, in KiB, from
/// `/proc/PID/smaps_rollup`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mem {
    pub rss: u64,
    /// Proportional set size: shared pages divided among their sharers.
    pub pss: u64,
    /// Pages no other process maps (what exiting would free).
    pub private: u64,
}

impl Mem {
    pub fn of(pid: i32) -> Result<Mem> {
        let path = format!("/proc/{pid}/smaps_rollup");
        let s = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
        let field = |name: &str| -> Result<u64> {
            s.lines()
                .find_map(|l| {
                    let v = l.strip_prefix(name)?.strip_prefix(':')?;
                    v.trim().strip_suffix("kB")?.trim().parse().ok()
                })
                .with_context(|| format!("{path} has no {name}"))
        };
        Ok(Mem {
            rss: field("Rss")?,
            pss: field("Pss")?,
            private: field("Private_Clean")? + field("Private_Dirty")?,
        })
    }

    pub fn sum(v: &[Mem]) -> Mem {
        v.iter().fold(Mem::default(), |a, m| Mem {
            rss: a.rss + m.rss,
            pss: a.pss + m.pss,
            private: a.private + m.private,
        })
    }
}

/// The short name (`/proc/PID/comm`) of a running process.
pub fn comm(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Drop `p`'s pages from the page cache (posix_fadvise DONTNEED; pages a
/// running process maps stay), so that the next exec reads it back from
/// disk as after a reboot. A binary the build just wrote sits in the page
/// cache in the linker's large write folios, which this kernel maps whole
/// on a fault; one installed long ago (conmon) came in by readahead.
pub fn evict_from_page_cache(p: &Path) -> std::io::Result<()> {
    let f = std::fs::File::open(p)?;
    nix::fcntl::posix_fadvise(
        &f,
        0,
        0,
        nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
    )
    .map_err(std::io::Error::from)
}

/// Whether an ELF executable has no program interpreter (a static or
/// static-pie build); `None` when it is not a 64-bit ELF file.
pub fn is_static(p: &Path) -> Option<bool> {
    let b = std::fs::read(p).ok()?;
    if b.get(..5)? != b"\x7fELF\x02" {
        return None;
    }
    let int = |at: usize, n: usize| -> Option<usize> {
        let mut v = [0u8; 8];
        v[..n].copy_from_slice(b.get(at..at + n)?);
        usize::try_from(u64::from_le_bytes(v)).ok()
    };
    let (phoff, phentsize, phnum) = (int(0x20, 8)?, int(0x36, 2)?, int(0x38, 2)?);
    const PT_INTERP: usize = 3;
    for i in 0..phnum {
        if int(phoff + i * phentsize, 4)? == PT_INTERP {
            return Some(false);
        }
    }
    Some(true)
}

/// Whether cgroups are hybrid here (v1 controllers plus a cgroup2 mount at
/// /sys/fs/cgroup/unified), which Debian's crun refuses (HOST.md).
pub fn hybrid_cgroups() -> bool {
    Path::new("/sys/fs/cgroup/unified").exists()
}

/// `dir/<name of bin>`: a script that runs `bin` in a private mount
/// namespace, with /sys/fs/cgroup/unified unmounted on a hybrid host
/// (HOST.md's way of running crun here). Named like `bin`, because engines
/// look at a runtime's name (podman passes `--log-format=json` only to
/// runtimes it knows by name). With `BERTH_BENCH_RSS=FILE` in its
/// environment, `bin` runs under `/usr/bin/time -f %M -o FILE`, so the
/// peak RSS written there is the runtime's alone, not the wrapper's
/// (util-linux's umount alone peaks at about 2.7 MiB).
pub fn mount_ns_wrapper(dir: &Path, bin: &Path) -> Result<PathBuf> {
    let script = dir.join(bin.file_name().context("runtime path has no file name")?);
    let bin = bin.display();
    let timed = r#"${BERTH_BENCH_RSS:+/usr/bin/time -f %M -o "$BERTH_BENCH_RSS"}"#;
    let body = if hybrid_cgroups() {
        format!("#!/bin/sh\nexec unshare -m --propagation private sh -c 'umount /sys/fs/cgroup/unified && exec {timed} \"$0\" \"$@\"' {bin} \"$@\"\n")
    } else {
        format!("#!/bin/sh\nexec unshare -m --propagation private {timed} {bin} \"$@\"\n")
    };
    std::fs::write(&script, body).with_context(|| format!("write {}", script.display()))?;
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    Ok(script)
}
