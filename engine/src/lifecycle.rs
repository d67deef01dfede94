//! stop, kill, remove, wait and exec: the runtime binary does the work,
//! the monitor's files tell the outcome.

use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::db::ContainerRecord;
use crate::engine::Engine;
use crate::error::{io, EngineError, Result};
use crate::layout::PAUSED_FILE;
use crate::state::Status;

impl Engine {
    pub(crate) fn runtime(&self, rec: &ContainerRecord) -> Command {
        let mut c = Command::new(&rec.runtime);
        c.arg("--root").arg(&rec.runtime_root);
        c
    }

    pub(crate) fn runtime_ok(
        &self,
        rec: &ContainerRecord,
        op: &'static str,
        args: &[&str],
    ) -> Result<()> {
        self.runtime_stdout(rec, op, args).map(drop)
    }

    /// Run the runtime; its stdout on success, its stderr as the error.
    fn runtime_stdout(
        &self,
        rec: &ContainerRecord,
        op: &'static str,
        args: &[&str],
    ) -> Result<Vec<u8>> {
        log::debug!(
            "{} --root {} {}",
            rec.runtime.display(),
            rec.runtime_root.display(),
            args.join(" ")
        );
        let out = self
            .runtime(rec)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| EngineError::Spawn {
                program: rec.runtime.clone(),
                source,
            })?;
        if out.status.success() {
            return Ok(out.stdout);
        }
        log::debug!("runtime {op} of {} failed: {}", rec.id, out.status);
        Err(EngineError::Runtime {
            op,
            id: rec.id.clone(),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }

    /// Send `signal` (a name like `TERM` or a number) to a running container.
    pub fn kill(&self, key: &str, signal: &str) -> Result<()> {
        let rec = self.find(key)?;
        if !self.state(&rec).is_running() {
            return Err(EngineError::NotRunning(rec.id));
        }
        self.runtime_ok(&rec, "kill", &["kill", &rec.id, signal])
    }

    /// Freeze every process of a running container. The `paused` marker
    /// is written first, so a crash in between shows the container paused
    /// (and `unpause` repairs it), never running while frozen.
    pub fn pause(&self, key: &str) -> Result<()> {
        let rec = self.find(key)?;
        let st = self.state(&rec);
        match st.status {
            Status::Running => {}
            Status::Paused => return Err(EngineError::Paused(rec.id)),
            _ => return Err(EngineError::NotRunning(rec.id)),
        }
        let marker = self.run_dir(&rec.id).join(PAUSED_FILE);
        fs::write(&marker, b"").map_err(io("write", &marker))?;
        let r = self.runtime_ok(&rec, "pause", &["pause", &rec.id]);
        if r.is_err() {
            let _ = fs::remove_file(&marker);
        }
        r
    }

    /// Thaw a paused container.
    pub fn unpause(&self, key: &str) -> Result<()> {
        let rec = self.find(key)?;
        if self.state(&rec).status != Status::Paused {
            return Err(EngineError::NotPaused(rec.id));
        }
        self.thaw(&rec)
    }

    /// Resume through the runtime, then drop the marker. A container the
    /// runtime says is not paused (a crash between marker and freeze) only
    /// loses its marker.
    fn thaw(&self, rec: &ContainerRecord) -> Result<()> {
        if let Err(e) = self.runtime_ok(rec, "resume", &["resume", &rec.id]) {
            if self.runtime_status(rec).as_deref() == Some("paused") {
                return Err(e);
            }
        }
        let marker = self.run_dir(&rec.id).join(PAUSED_FILE);
        match fs::remove_file(&marker) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("remove", &marker)(e)),
            _ => Ok(()),
        }
    }

    /// The runtime's own view (`state ID`), when it has one.
    pub(crate) fn runtime_status(&self, rec: &ContainerRecord) -> Option<String> {
        let out = self
            .runtime_stdout(rec, "state", &["state", &rec.id])
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out).ok()?;
        v["status"].as_str().map(str::to_string)
    }

    /// Processes of a running container: pid, parent pid and command line
    /// of each, from the runtime's `ps` and /proc.
    pub fn top(&self, key: &str) -> Result<Vec<(i32, i32, String)>> {
        let rec = self.find(key)?;
        if !self.state(&rec).is_running() {
            return Err(EngineError::NotRunning(rec.id));
        }
        let out = self.runtime_stdout(&rec, "ps", &["ps", "--format", "json", &rec.id])?;
        let pids: Vec<i32> = serde_json::from_slice(&out).map_err(|e| EngineError::Runtime {
            op: "ps",
            id: rec.id.clone(),
            message: format!("not a JSON list of pids: {e}"),
        })?;
        let mut procs: Vec<(i32, i32, String)> = pids
            .into_iter()
            .filter_map(|pid| {
                let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                // The fields after the command name's closing parenthesis.
                let rest = &stat[stat.rfind(')')? + 2..];
                let ppid = rest.split(' ').nth(1)?.parse().ok()?;
                let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
                let cmd = cmdline
                    .split(|b| *b == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ");
                Some((pid, ppid, cmd))
            })
            .collect();
        procs.sort();
        Ok(procs)
    }

    /// Stop (if running) and start again.
    pub fn restart(&self, key: &str, timeout: Option<Duration>) -> Result<()> {
        self.stop(key, timeout)?;
        self.start(key).map(drop)
    }

    /// Give a container a new name.
    pub fn rename(&self, key: &str, name: &str) -> Result<()> {
        if !crate::host::valid_name(name) {
            return Err(EngineError::InvalidName(name.to_string()));
        }
        let mut rec = self.find(key)?;
        rec.name = name.to_string();
        self.db.rename(&rec)
    }

    /// A frozen process cannot act on a signal: thaw a paused container
    /// before stopping or removing it (as docker and podman do).
    fn thaw_if_paused(&self, rec: &ContainerRecord, status: Status) -> Result<()> {
        if status == Status::Paused {
            self.thaw(rec)?;
        }
        Ok(())
    }

    /// Wait up to `timeout` for the container to stop running.
    fn wait_stopped(&self, rec: &ContainerRecord, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        loop {
            if !self.state(rec).is_running() {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The container's stop signal (`--stop-signal`, default TERM), then
    /// SIGKILL after `timeout` (default: its `--stop-timeout`, else 10 s);
    /// returns once it has exited.
    pub fn stop(&self, key: &str, timeout: Option<Duration>) -> Result<()> {
        let rec = self.find(key)?;
        self.hold_down(&rec)?;
        let status = self.state(&rec).status;
        if status == Status::Restarting {
            // The monitor sees the marker and gives up the restart.
            self.wait_monitor(&rec.id);
            return Ok(());
        }
        if !matches!(status, Status::Running | Status::Paused) {
            return Ok(());
        }
        let timeout =
            timeout.unwrap_or(Duration::from_secs(rec.options.stop_timeout.unwrap_or(10)));
        let signal = rec.options.stop_signal.as_deref().unwrap_or("TERM");
        self.thaw_if_paused(&rec, status)?;
        let _ = self.runtime_ok(&rec, "kill", &["kill", &rec.id, signal]);
        if !self.wait_stopped(&rec, timeout) {
            let _ = self.runtime_ok(&rec, "kill", &["kill", &rec.id, "KILL"]);
            if !self.wait_stopped(&rec, Duration::from_secs(30)) {
                return Err(EngineError::Timeout(rec.id));
            }
        }
        self.wait_monitor(&rec.id);
        Ok(())
    }

    /// Mark a container as stopped by the user before signalling it, so
    /// its monitor does not restart it (`--restart`); `start` clears it.
    fn hold_down(&self, rec: &ContainerRecord) -> Result<()> {
        if rec.options.restart == crate::options::RestartPolicy::No {
            return Ok(());
        }
        let run = self.run_dir(&rec.id);
        fs::create_dir_all(&run).map_err(io("create", &run))?;
        let marker = run.join(crate::layout::STOPPED_FILE);
        fs::write(&marker, b"").map_err(io("write", &marker))
    }

    /// `rm -v`: remove a container and then its anonymous volumes.
    pub fn remove_with_volumes(&self, key: &str, force: bool) -> Result<()> {
        let rec = self.find(key)?;
        self.remove(&rec.id, force)?;
        self.remove_anonymous_volumes(&rec.options.mounts);
        Ok(())
    }

    /// Remove a container (`force` kills a running one first).
    pub fn remove(&self, key: &str, force: bool) -> Result<()> {
        let rec = self.find(key)?;
        let st = self.state(&rec);
        if (st.is_running() || st.status == Status::Restarting) && !force {
            return Err(EngineError::Running(rec.id));
        }
        self.hold_down(&rec)?;
        if st.is_running() {
            self.thaw_if_paused(&rec, st.status)?;
            let _ = self.runtime_ok(&rec, "kill", &["kill", &rec.id, "KILL"]);
            if !self.wait_stopped(&rec, Duration::from_secs(30)) {
                return Err(EngineError::Timeout(rec.id));
            }
        }
        self.wait_monitor(&rec.id);
        match self.find(&rec.id) {
            // A --rm container's monitor removed it while we waited.
            Err(EngineError::NoSuchContainer(_)) => Ok(()),
            _ => self.remove_files(&rec, false),
        }
    }

    /// A foreground `run --rm` once it has the exit code: remove the
    /// container here rather than wait for the monitor's exit command
    /// (which, held back by this process's attach lock, then finds nothing
    /// to do). Only once the exit is on record: the monitor writes it after
    /// the runtime's delete and the network's teardown.
    /// `false`: not done here (no exit on record yet), the monitor will.
    pub fn remove_exited(&self, id: &str) -> Result<bool> {
        let rec = self.find(id)?;
        if crate::state::read_exit(&self.run_dir(&rec.id)).is_none() {
            return Ok(false);
        }
        self.remove_files(&rec, true)?;
        self.remove_anonymous_volumes(&rec.options.mounts);
        Ok(true)
    }

    /// The monitor's exit command for `--rm`: remove without waiting for the
    /// monitor (it is our caller). A container already gone is fine.
    pub fn cleanup(&self, id: &str) -> Result<()> {
        match self.find(id) {
            Ok(rec) if rec.options.auto_remove => {
                self.remove_files(&rec, true)?;
                // docker's --rm takes the anonymous volumes along.
                self.remove_anonymous_volumes(&rec.options.mounts);
                Ok(())
            }
            Ok(_) | Err(EngineError::NoSuchContainer(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Remove what is left of a container. `monitor_done`: its monitor
    /// recorded the exit, so the runtime's container and the network are
    /// gone already; otherwise (a dead monitor) they are released here.
    fn remove_files(&self, rec: &ContainerRecord, monitor_done: bool) -> Result<()> {
        if !monitor_done {
            let _ = self.runtime_ok(rec, "delete", &["delete", "--force", &rec.id]);
            self.detach_network(&rec.id);
        }
        self.store
            .remove_snapshot(&rec.id)
            .map_err(EngineError::Storage)?;
        let run = self.run_dir(&rec.id);
        if run.exists() {
            fs::remove_dir_all(&run).map_err(io("remove", &run))?;
        }
        self.db.delete(&rec.id)?;
        Ok(())
    }

    /// Release a bridge attachment the monitor could not (it died): netd's
    /// teardown is keyed by the container id and works without the netns.
    pub(crate) fn detach_network(&self, id: &str) {
        let req = self.run_dir(id).join(crate::layout::NETD_REQUEST);
        if !req.is_file() {
            return;
        }
        if let Some(netd) = crate::host::find_binary("berth-netd", &self.self_exe) {
            let state = self.runroot.join("netd");
            let netns = std::path::Path::new("/nonexistent");
            let _ = crate::network::netd_command(&netd, &state, "teardown", netns, &req)
                .stdout(Stdio::null())
                .status();
        }
    }

    /// Block until the container exits; its exit code.
    pub fn wait(&self, key: &str) -> Result<i32> {
        let id = self.find(key)?.id;
        loop {
            let rec = self.find(&id)?;
            let st = self.state(&rec);
            if st.status == Status::Exited {
                return Ok(st.exit_code.unwrap_or(255));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Engine {
    /// Remove every container that is not running or paused; their ids.
    pub fn prune(&self) -> Result<Vec<String>> {
        let mut gone = Vec::new();
        for (rec, st) in self.list()? {
            if !st.is_running() {
                match self.remove(&rec.id, false) {
                    Ok(()) | Err(EngineError::NoSuchContainer(_)) => gone.push(rec.id),
                    // Started again meanwhile: not ours to remove.
                    Err(EngineError::Running(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(gone)
    }

    /// The first line of the default runtime's `--version`.
    pub fn runtime_version(&self) -> Option<String> {
        let rt = crate::host::find_runtime(self.default_runtime.as_deref(), &self.self_exe).ok()?;
        let out = std::process::Command::new(rt)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .map(str::to_string)
    }

    /// `berth info`: where things are and how many of each.
    pub fn info(&self) -> Result<serde_json::Value> {
        let mut counts = std::collections::BTreeMap::new();
        for (_, st) in self.list()? {
            *counts.entry(st.status.as_str()).or_insert(0u32) += 1;
        }
        let runtime =
            crate::host::find_runtime(self.default_runtime.as_deref(), &self.self_exe).ok();
        Ok(serde_json::json!({
            "Root": self.root,
            "RunRoot": self.runroot,
            "DefaultRuntime": runtime,
            "RuntimeVersion": self.runtime_version(),
            "Containers": counts.values().sum::<u32>(),
            "ContainersRunning": counts.get("running").copied().unwrap_or(0),
            "ContainersPaused": counts.get("paused").copied().unwrap_or(0),
            "ContainersStopped": counts.get("exited").copied().unwrap_or(0) + counts.get("created").copied().unwrap_or(0),
            "Images": self.store.images().map(|v| v.len()).unwrap_or(0),
            "Networks": crate::network::list(&self.root).map(|v| v.len()).unwrap_or(0),
            "Volumes": self.volume_list().map(|v| v.len()).unwrap_or(0),
            "StorageDriver": "overlay",
        }))
    }
}

/// One `stats` sample of a running container.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Stats {
    pub id: String,
    pub name: String,
    /// CPU use over the sample, in percent of one CPU.
    pub cpu_percent: f64,
    pub memory_usage: u64,
    /// The memory limit (the host's memory when unlimited).
    pub memory_limit: u64,
    pub pids: u64,
}

impl Engine {
    /// The runtime's `events --stats` for a running container.
    fn runtime_stats(&self, rec: &ContainerRecord) -> Result<serde_json::Value> {
        let out = self.runtime_stdout(rec, "events", &["events", "--stats", &rec.id])?;
        serde_json::from_slice::<serde_json::Value>(&out)
            .map(|v| v["data"].clone())
            .map_err(|e| EngineError::Runtime {
                op: "events",
                id: rec.id.clone(),
                message: format!("stats are not JSON: {e}"),
            })
    }

    /// CPU, memory and pids of a running container: two samples of the
    /// runtime's cgroup stats `interval` apart.
    pub fn stats(&self, key: &str, interval: Duration) -> Result<Stats> {
        let rec = self.find(key)?;
        if !self.state(&rec).is_running() {
            return Err(EngineError::NotRunning(rec.id));
        }
        let cpu = |v: &serde_json::Value| v["cpu"]["usage"]["total"].as_u64().unwrap_or(0);
        let a = self.runtime_stats(&rec)?;
        let t = Instant::now();
        std::thread::sleep(interval);
        let b = self.runtime_stats(&rec)?;
        let wall = t.elapsed().as_nanos().max(1) as f64;
        let host_mem = fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .map(|k| k * 1024)
            .unwrap_or(u64::MAX);
        let limit = b["memory"]["usage"]["limit"].as_u64().unwrap_or(u64::MAX);
        Ok(Stats {
            cpu_percent: cpu(&b).saturating_sub(cpu(&a)) as f64 / wall * 100.0,
            memory_usage: b["memory"]["usage"]["usage"].as_u64().unwrap_or(0),
            memory_limit: limit.min(host_mem),
            pids: b["pids"]["current"].as_u64().unwrap_or(0),
            id: rec.id,
            name: rec.name,
        })
    }
}
