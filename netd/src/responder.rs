//! Lifecycle of the per-network DNS responder processes.
//!
//! Setup starts `berth-netd dns-serve` for a DNS-enabled network unless one
//! is already running; the last teardown on the network stops it. The
//! process is found again through `<state>/dns/<network>.pid`, and a pid is
//! only signalled after `/proc/PID/cmdline` shows it is this network's
//! responder for this state dir (pids are reused).

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::wire::NetworkConfig;
use crate::{Error, Options};

fn dns_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("dns")
}

fn pid_file(state_dir: &Path, network: &str) -> PathBuf {
    dns_dir(state_dir).join(format!("{network}.pid"))
}

/// The pid of `network`'s responder, if it is running.
pub(crate) fn running(state_dir: &Path, network: &str) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pid_file(state_dir, network))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    let has = |a: &[u8]| args.contains(&a);
    let ours =
        has(b"dns-serve") && has(network.as_bytes()) && has(state_dir.as_os_str().as_bytes());
    ours.then_some(pid)
}

/// Start `network`'s responder (if not running) and wait until it listens.
/// Returns whether a new process was started.
pub(crate) fn ensure(opts: &Options, n: &NetworkConfig) -> Result<bool, Error> {
    if running(&opts.state_dir, &n.name).is_some() {
        return Ok(false);
    }
    let dir = dns_dir(&opts.state_dir);
    let err = |source| Error::DnsStart {
        network: n.name.clone(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(err)?;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{}.log", n.name)))
        .map_err(err)?;
    let mut cmd = Command::new(&opts.exe);
    cmd.arg("--state-dir").arg(&opts.state_dir);
    cmd.args([
        "dns-serve",
        "--network",
        &n.name,
        "--listen",
        &n.gateway().to_string(),
    ]);
    if n.internal {
        cmd.arg("--internal");
    }
    for up in &opts.dns_upstreams {
        cmd.arg("--upstream").arg(up.to_string());
    }
    // Its own process group: it outlives this short-lived process.
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .process_group(0);
    let mut child = cmd.spawn().map_err(err)?;
    let mut line = String::new();
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| err(std::io::Error::other("no stdout pipe")))?;
    let _ = BufReader::new(stdout).read_line(&mut line);
    if line.trim() != "ready" {
        let _ = child.wait();
        let log = dir.join(format!("{}.log", n.name));
        return Err(err(std::io::Error::other(format!(
            "exited before listening, see {}",
            log.display()
        ))));
    }
    let tmp = dir.join(format!(".{}.pid.tmp", n.name));
    std::fs::write(&tmp, child.id().to_string())
        .and_then(|()| std::fs::rename(&tmp, pid_file(&opts.state_dir, &n.name)))
        .map_err(err)?;
    Ok(true)
}

/// Stop `network`'s responder (nothing to do when none runs).
pub(crate) fn stop(state_dir: &Path, network: &str) -> Result<(), Error> {
    let err = |source| Error::DnsStop {
        network: network.to_string(),
        source,
    };
    if let Some(pid) = running(state_dir, network) {
        kill(Pid::from_raw(pid), Signal::SIGTERM).map_err(|e| err(e.into()))?;
        // Not our child (it was reparented): wait for it to be gone, which
        // for a zombie means an empty cmdline.
        let deadline = Instant::now() + Duration::from_secs(5);
        while running(state_dir, network).is_some() {
            if Instant::now() > deadline {
                return Err(err(std::io::Error::other(format!(
                    "pid {pid} still running after SIGTERM"
                ))));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    match std::fs::remove_file(pid_file(state_dir, network)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(err(e)),
        _ => Ok(()),
    }
}
