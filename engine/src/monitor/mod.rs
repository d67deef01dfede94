//! `berth-monitor`: one per container, conmon-like. Daemonizes (setsid,
//! double fork), becomes a child subreaper, runs `runtime create` and
//! `start` with the container's stdout and stderr as pipes it owns (or,
//! for a tty, the pty master the runtime sends to its console socket),
//! writes them to a json-file log and to attached clients (`attach.sock`,
//! protocol in `crate::attach`), feeds client input to the container's
//! stdin, records the exit status (temp + rename), runs `runtime delete`
//! and then the exit command (the engine's cleanup), and exits.
//! Single-threaded, a poll(2) loop, no async runtime.
//!
//! Contract with the engine: argv as [`Args::parse`] reads it; one line of
//! JSON on the monitor's stdout, `{"pid":N}` or `{"error":"..."}`, once the
//! container has started or failed to; run-dir files as `layout` names them.

mod clients;
mod run;
pub mod time;

use std::ffi::OsString;
use std::path::PathBuf;

pub use run::main;

/// Ignore SIGPIPE, as Rust's own start-up does (the monitor binary has a C
/// `main`): writes to a closed pipe or socket then fail with EPIPE.
pub fn ignore_sigpipe() {
    crate::sys::ignore_sigpipe();
}

/// Why the monitor could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("bad arguments: {0}")]
    Args(&'static str),
    #[error("{what}")]
    Sys {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Runtime(String),
}

pub(crate) fn sys(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> MonitorError {
    let what = what.into();
    move |source| MonitorError::Sys { what, source }
}

/// The monitor's command line.
#[derive(Debug, Default)]
pub struct Args {
    pub id: String,
    pub runtime: PathBuf,
    pub runtime_root: PathBuf,
    pub bundle: PathBuf,
    pub run_dir: PathBuf,
    pub log: PathBuf,
    /// Wait for `attach.lock` before the exit command (a foreground reader).
    pub remove: bool,
    /// Run after the container has exited and been deleted.
    pub exit_command: Vec<OsString>,
    /// berth-netd and its state dir: attach the container's network
    /// namespace (request in the run dir's `netd-request.json`) between
    /// `create` and `start`; detach it after the exit.
    pub netd: Option<PathBuf>,
    pub netd_state: Option<PathBuf>,
    /// The container has a terminal (`process.terminal`): the runtime gets
    /// a console socket and the pty master is the container's stdio.
    pub tty: bool,
    /// Keep the container's stdin open (a pipe fed by attached clients).
    pub stdin: bool,
    /// Wait (a few seconds at most) for the first attach client before
    /// `runtime start`, so a foreground client misses no output.
    pub attach_wait: bool,
    /// What to do when the container exits (`--restart`).
    pub restart: crate::options::RestartPolicy,
    /// The log's format and rotation.
    pub log_config: crate::logs::LogConfig,
}

impl Args {
    /// Build the argv the engine passes (without argv[0]).
    pub fn to_argv(&self) -> Vec<OsString> {
        let mut v: Vec<OsString> = Vec::new();
        let mut kv = |k: &str, val: OsString| {
            v.push(k.into());
            v.push(val);
        };
        kv("--id", self.id.clone().into());
        kv("--runtime", self.runtime.clone().into());
        kv("--runtime-root", self.runtime_root.clone().into());
        kv("--bundle", self.bundle.clone().into());
        kv("--run-dir", self.run_dir.clone().into());
        kv("--log", self.log.clone().into());
        if let (Some(n), Some(d)) = (&self.netd, &self.netd_state) {
            kv("--netd", n.clone().into());
            kv("--netd-state", d.clone().into());
        }
        if self.restart != crate::options::RestartPolicy::No {
            kv("--restart", self.restart.as_arg().into());
        }
        kv("--log-driver", self.log_config.driver.as_str().into());
        if let Some(n) = self.log_config.max_size {
            kv("--log-max-size", n.to_string().into());
        }
        if let Some(n) = self.log_config.max_files {
            kv("--log-max-files", n.to_string().into());
        }
        for (on, flag) in [
            (self.remove, "--rm"),
            (self.tty, "--tty"),
            (self.stdin, "--stdin"),
            (self.attach_wait, "--attach-wait"),
        ] {
            if on {
                v.push(flag.into());
            }
        }
        if !self.exit_command.is_empty() {
            v.push("--".into());
            v.extend(self.exit_command.iter().cloned());
        }
        v
    }

    /// Parse what [`Args::to_argv`] wrote.
    pub fn parse(mut it: impl Iterator<Item = OsString>) -> Result<Args, MonitorError> {
        let mut a = Args::default();
        while let Some(k) = it.next() {
            let k = k.to_string_lossy().into_owned();
            let flag = match k.as_str() {
                "--rm" => Some(&mut a.remove),
                "--tty" => Some(&mut a.tty),
                "--stdin" => Some(&mut a.stdin),
                "--attach-wait" => Some(&mut a.attach_wait),
                _ => None,
            };
            if let Some(f) = flag {
                *f = true;
                continue;
            }
            if k == "--" {
                a.exit_command = it.by_ref().collect();
                break;
            }
            let v = it
                .next()
                .ok_or(MonitorError::Args("option without a value"))?;
            match k.as_str() {
                "--id" => a.id = v.to_string_lossy().into_owned(),
                "--runtime" => a.runtime = v.into(),
                "--runtime-root" => a.runtime_root = v.into(),
                "--bundle" => a.bundle = v.into(),
                "--run-dir" => a.run_dir = v.into(),
                "--log" => a.log = v.into(),
                "--netd" => a.netd = Some(v.into()),
                "--netd-state" => a.netd_state = Some(v.into()),
                "--log-driver" => {
                    a.log_config.driver = v
                        .to_string_lossy()
                        .parse()
                        .map_err(|_| MonitorError::Args("bad --log-driver"))?
                }
                "--log-max-size" => {
                    a.log_config.max_size = Some(
                        v.to_string_lossy()
                            .parse()
                            .map_err(|_| MonitorError::Args("bad --log-max-size"))?,
                    )
                }
                "--log-max-files" => {
                    a.log_config.max_files = Some(
                        v.to_string_lossy()
                            .parse()
                            .map_err(|_| MonitorError::Args("bad --log-max-files"))?,
                    )
                }
                "--restart" => {
                    a.restart = v
                        .to_string_lossy()
                        .parse()
                        .map_err(|_| MonitorError::Args("bad --restart"))?
                }
                _ => return Err(MonitorError::Args("unknown option")),
            }
        }
        if a.id.is_empty() || a.run_dir.as_os_str().is_empty() || a.log.as_os_str().is_empty() {
            return Err(MonitorError::Args("--id, --run-dir and --log are required"));
        }
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_round_trips() {
        let a = Args {
            id: "abc".into(),
            runtime: "/bin/rt".into(),
            runtime_root: "/run/x".into(),
            bundle: "/b".into(),
            run_dir: "/r".into(),
            log: "/l".into(),
            remove: true,
            exit_command: vec!["berth".into(), "--rm".into(), "x".into()],
            netd: Some("/bin/netd".into()),
            netd_state: Some("/run/n".into()),
            tty: true,
            stdin: false,
            attach_wait: true,
            restart: crate::options::RestartPolicy::OnFailure(3),
            log_config: crate::logs::LogConfig {
                driver: crate::logs::LogDriver::K8sFile,
                max_size: Some(1 << 20),
                max_files: Some(4),
            },
        };
        let b = Args::parse(a.to_argv().into_iter()).unwrap();
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        assert!(Args::parse(vec![OsString::from("--bogus"), "x".into()].into_iter()).is_err());
    }
}
