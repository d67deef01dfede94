//! The engine: create containers (record, snapshot, bundle), start them
//! through `berth-monitor`, and find out their state.

use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use berth_storage::{StorageError, Store};

use crate::db::{ContainerDb, ContainerRecord};
use crate::error::{io, EngineError, Result};
use crate::host;
use crate::layout::{
    ATTACH_LOCK, ATTACH_SOCKET, EXIT_FILE, MONITOR_LOCK, NETWORK_FILE, PAUSED_FILE, PID_FILE,
    RESTARTING_FILE, RESTARTS_FILE, STOPPED_FILE,
};
use crate::monitor::time::rfc3339_nanos;
use crate::options::{BindMount, RunOptions};
use crate::spec;
use crate::state::{probe, State};

/// A handle on the store and the container table. Cheap to open; every
/// `berth` process opens its own.
pub struct Engine {
    pub(crate) store: Store,
    pub(crate) db: ContainerDb,
    pub(crate) root: PathBuf,
    pub(crate) runroot: PathBuf,
    /// The `berth` binary: its directory is searched for the runtime and the
    /// monitor, and it is the monitor's exit command for `--rm`.
    pub(crate) self_exe: PathBuf,
    /// The runtime for containers whose options name none (`None`:
    /// berth-runtime).
    pub(crate) default_runtime: Option<String>,
}

fn storage(e: StorageError) -> EngineError {
    EngineError::Storage(e)
}

impl Engine {
    pub fn open(root: &Path, runroot: &Path, self_exe: &Path) -> Result<Engine> {
        let store = Store::open(root, runroot).map_err(storage)?;
        let db = ContainerDb::open(&root.join("berth.db"))?;
        Ok(Engine {
            store,
            db,
            root: root.to_path_buf(),
            runroot: runroot.to_path_buf(),
            self_exe: self_exe.to_path_buf(),
            default_runtime: None,
        })
    }

    /// The runtime (a name or a path) for new containers that name none;
    /// a container keeps the one it was created with.
    pub fn set_default_runtime(&mut self, runtime: Option<String>) {
        self.default_runtime = runtime;
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// `<runroot>/containers/<id>`: monitor lock, pid and exit files.
    pub fn run_dir(&self, id: &str) -> PathBuf {
        self.runroot.join("containers").join(id)
    }

    fn userdata(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id).join("userdata")
    }

    /// A container's record by id, name or unique id prefix.
    pub fn find(&self, key: &str) -> Result<ContainerRecord> {
        self.db.find(key)
    }

    pub fn state(&self, rec: &ContainerRecord) -> State {
        probe(&self.run_dir(&rec.id), rec.started_at.is_some())
    }

    /// Every container with its state, newest first.
    pub fn list(&self) -> Result<Vec<(ContainerRecord, State)>> {
        Ok(self
            .db
            .list()?
            .into_iter()
            .map(|r| {
                let s = self.state(&r);
                (r, s)
            })
            .collect())
    }

    /// Create a container: validate, record it, snapshot the image, write
    /// the bundle. On failure nothing is left behind.
    pub fn create(&self, image: &str, mut opts: RunOptions) -> Result<ContainerRecord> {
        let img = self.store.image(image).map_err(|e| match e {
            StorageError::ImageNotFound { .. } => EngineError::ImageNotFound {
                reference: image.to_string(),
            },
            e => storage(e),
        })?;
        let config = self.store.config(&img).map_err(storage)?;
        let args = spec::process_args(&config, &opts)?;
        if let Some(n) = opts.name.as_deref().filter(|n| !host::valid_name(n)) {
            return Err(EngineError::InvalidName(n.to_string()));
        }
        spec::capabilities(&opts, &host::bounding_caps())?;
        if opts.init {
            let p = host::find_init(opts.init_path.as_deref(), &self.self_exe)?;
            opts.init_path = Some(p.display().to_string());
        }
        if let Some(n) = &opts.network_name {
            // A network that does not exist fails here, before anything is made.
            crate::network::get(&self.root, n)?;
        }
        // The image's exposed ports, with --expose's.
        if let Some(ports) = spec::image_field(&config, "ExposedPorts").as_object() {
            let image_ports: Vec<String> = ports.keys().cloned().collect();
            opts.expose(&image_ports)?;
        }
        if let Some(c) = opts.network_container.clone() {
            let target = self.find(&c)?;
            opts.network_container = Some(target.id);
        }
        // The image's STOPSIGNAL unless --stop-signal says otherwise.
        if opts.stop_signal.is_none() {
            if let Some(sig) = spec::image_field(&config, "StopSignal").as_str() {
                opts.stop_signal(sig)?;
            }
        }
        // The image's labels, under the container's own (docker's merge).
        if let Some(labels) = spec::image_field(&config, "Labels").as_object() {
            for (k, v) in labels {
                if let Some(v) = v.as_str() {
                    opts.labels
                        .entry(k.clone())
                        .or_insert_with(|| v.to_string());
                }
            }
        }
        // The image's VOLUMEs no mount covers get anonymous volumes.
        if let Some(vols) = spec::image_field(&config, "Volumes").as_object() {
            for dst in vols.keys() {
                let covered = opts.mounts.iter().any(|m| m.destination == *dst)
                    || opts.tmpfs.iter().any(|(d, _)| d == dst);
                if !covered {
                    opts.mounts.push(BindMount::anonymous(dst, false)?);
                }
            }
        }
        for i in 0..opts.mounts.len() {
            let Some(v) = opts.mounts[i].volume.clone() else {
                continue;
            };
            match self.volume_ensure(&v) {
                Ok(vol) => opts.mounts[i].source = vol.mountpoint,
                Err(e) => {
                    self.remove_anonymous_volumes(&opts.mounts[..i]);
                    return Err(e);
                }
            }
        }
        let made = opts.mounts.clone();
        let rec = self.create_with_volumes(image, &img, &config, args, opts);
        if rec.is_err() {
            self.remove_anonymous_volumes(&made);
        }
        rec
    }

    fn create_with_volumes(
        &self,
        image: &str,
        img: &berth_storage::ImageRecord,
        config: &serde_json::Value,
        args: Vec<String>,
        opts: RunOptions,
    ) -> Result<ContainerRecord> {
        let wanted = opts.runtime.as_deref().or(self.default_runtime.as_deref());
        let runtime = host::find_runtime(wanted, &self.self_exe)?;
        host::find_monitor(&self.self_exe)?;
        let id = host::random_id()?;
        let rt_name = runtime
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let userdata = self.userdata(&id);
        let rec = ContainerRecord {
            name: opts
                .name
                .clone()
                .unwrap_or_else(|| format!("berth_{}", &id[..12])),
            image: image.to_string(),
            image_id: img.id.clone(),
            created: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0),
            created_at: rfc3339_nanos(SystemTime::now()),
            started_at: None,
            runtime_root: self.runroot.join("runtime").join(rt_name),
            runtime,
            args,
            hostname: opts
                .hostname
                .clone()
                .unwrap_or_else(|| id[..12].to_string()),
            bundle: userdata.clone(),
            rootfs: PathBuf::new(),
            log_path: userdata.join(match opts.log.driver {
                crate::logs::LogDriver::JsonFile => "json.log",
                crate::logs::LogDriver::K8sFile => "ctr.log",
            }),
            options: opts,
            id,
        };
        self.db.insert(&rec)?;
        let snap = match self.store.create_snapshot(&img.id, &rec.id, true) {
            Ok(s) => s,
            Err(e) => {
                undo("delete the record", &rec.id, self.db.delete(&rec.id));
                return Err(storage(e));
            }
        };
        let mut rec = rec;
        rec.rootfs = snap.rootfs;
        let done = crate::volumes::copy_up_all(&rec.rootfs, &rec.options.mounts)
            .and_then(|()| self.write_bundle(&rec, config, false))
            .and_then(|()| self.db.update(&rec));
        if let Err(e) = done {
            undo(
                "remove the snapshot",
                &rec.id,
                self.store.remove_snapshot(&rec.id),
            );
            undo("delete the record", &rec.id, self.db.delete(&rec.id));
            return Err(e);
        }
        log::info!(
            "created container {} ({}) with runtime {}",
            rec.id,
            rec.name,
            rec.runtime.display()
        );
        Ok(rec)
    }

    /// The bundle in the userdata dir: config.json, the files bind-mounted
    /// over /etc, the log. `only_missing` keeps files that exist (a repair).
    pub(crate) fn write_bundle(
        &self,
        rec: &ContainerRecord,
        config: &serde_json::Value,
        only_missing: bool,
    ) -> Result<()> {
        let ud = &rec.bundle;
        fs::create_dir_all(ud).map_err(io("create", ud))?;
        let o = &rec.options;
        let user = crate::user::resolve(&rec.rootfs, &spec::user_spec(config, o))?;
        let caps = host::bounding_caps();
        let cfg = spec::build(&spec::SpecInput {
            id: &rec.id,
            hostname: &rec.hostname,
            image: config,
            opts: o,
            args: &rec.args,
            user: &user,
            rootfs: &rec.rootfs,
            userdata: ud,
            host_caps: &caps,
        })?;
        let files = [
            ("hostname", format!("{}\n", rec.hostname)),
            ("hosts", spec::hosts_file(o.network, &rec.hostname)),
            ("resolv.conf", spec::resolv_conf(o.network)),
            ("config.json", cfg.to_string()),
        ];
        for (name, body) in files {
            let p = ud.join(name);
            if only_missing && p.exists() {
                continue;
            }
            fs::write(&p, body).map_err(io("write", &p))?;
        }
        // The log exists from the start: `logs` and a foreground `run` open it.
        if only_missing && rec.log_path.exists() {
            return Ok(());
        }
        fs::write(&rec.log_path, b"").map_err(io("write", &rec.log_path))
    }

    /// Start a created (or exited) container under a new monitor; returns
    /// the container's pid once it runs.
    pub fn start(&self, key: &str) -> Result<i32> {
        let (mut rec, mut cmd) = self.monitor_command(key, false)?;
        let out = cmd.output().map_err(|source| EngineError::Spawn {
            program: cmd.get_program().into(),
            source,
        })?;
        self.started(&mut rec, &out.stdout)
    }

    /// Start a container with this process attached from the first byte of
    /// output: the monitor waits for our connection to its attach socket
    /// before it starts the container. Returns the pid and the connection.
    pub fn start_attached(&self, key: &str) -> Result<(i32, UnixStream)> {
        let (mut rec, mut cmd) = self.monitor_command(key, true)?;
        let program: PathBuf = cmd.get_program().into();
        let spawn = |source| EngineError::Spawn {
            program: program.clone(),
            source,
        };
        let mut child = cmd.spawn().map_err(spawn)?;
        let run = self.run_dir(&rec.id);
        // The monitor listens before it creates the container; its first
        // process exits (report written) only once it started or failed.
        let (_dir, path) =
            crate::attach::socket_path(&run, ATTACH_SOCKET).map_err(io("open", &run))?;
        let sock = loop {
            if let Ok(s) = UnixStream::connect(&path) {
                break Some(s);
            }
            if child.try_wait().map_err(spawn)?.is_some() {
                break None;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let mut report = Vec::new();
        if let Some(mut out) = child.stdout.take() {
            let _ = out.read_to_end(&mut report);
        }
        let _ = child.wait();
        let pid = self.started(&mut rec, &report)?;
        match sock {
            Some(s) => Ok((pid, s)),
            // Started without us (we were too slow): attach now.
            None => Ok((pid, self.attach(&rec.id)?)),
        }
    }

    /// A connection to a running container's monitor (`berth attach`).
    pub fn attach(&self, key: &str) -> Result<UnixStream> {
        let rec = self.find(key)?;
        if !self.state(&rec).is_running() {
            return Err(EngineError::NotRunning(rec.id));
        }
        let run = self.run_dir(&rec.id);
        crate::attach::connect(&run).map_err(|e| EngineError::Io {
            what: "connect to",
            path: run.join(ATTACH_SOCKET),
            source: e,
        })
    }

    /// The monitor command that starts `key`, its run dir made ready.
    fn monitor_command(&self, key: &str, attach_wait: bool) -> Result<(ContainerRecord, Command)> {
        let rec = self.find(key)?;
        let status = self.state(&rec).status;
        if rec_is_up(status) {
            return Err(EngineError::Running(rec.id));
        }
        let run = self.run_dir(&rec.id);
        fs::create_dir_all(&run).map_err(io("create", &run))?;
        // A `network connect` meanwhile changes the record before we read
        // it, or the request after we wrote it.
        let held = self.network_lock(&rec.id)?;
        let rec = self.find(&rec.id)?;
        for f in [
            EXIT_FILE,
            PID_FILE,
            PAUSED_FILE,
            NETWORK_FILE,
            ATTACH_SOCKET,
            STOPPED_FILE,
            RESTARTING_FILE,
            RESTARTS_FILE,
        ] {
            let _ = fs::remove_file(run.join(f));
        }
        let monitor = host::find_monitor(&self.self_exe)?;
        // After a reboot (or a cleanup) the overlay is not mounted any more.
        self.store.mount_snapshot(&rec.id).map_err(storage)?;
        if rec.options.network == crate::options::NetworkMode::Container {
            self.join_network_of(&rec)?;
        }
        let (netd, netd_state) = if matches!(
            rec.options.network,
            crate::options::NetworkMode::Bridge | crate::options::NetworkMode::Pasta
        ) {
            crate::network::write_request(&self.root, &rec, &run)?;
            let netd =
                host::find_binary("berth-netd", &self.self_exe).ok_or(EngineError::NetdNotFound)?;
            (Some(netd), Some(self.runroot.join("netd")))
        } else {
            (None, None)
        };
        drop(held);
        let margs = crate::monitor::Args {
            netd,
            netd_state,
            id: rec.id.clone(),
            runtime: rec.runtime.clone(),
            runtime_root: rec.runtime_root.clone(),
            bundle: rec.bundle.clone(),
            run_dir: run.clone(),
            log: rec.log_path.clone(),
            remove: rec.options.auto_remove,
            exit_command: if rec.options.auto_remove {
                self.cleanup_command(&rec.id)
            } else {
                Vec::new()
            },
            tty: rec.options.tty,
            stdin: rec.options.interactive,
            attach_wait,
            restart: rec.options.restart,
            log_config: rec.options.log,
        };
        log::debug!("start {} under {}", rec.id, monitor.display());
        let mut cmd = Command::new(&monitor);
        cmd.args(margs.to_argv())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        Ok((rec, cmd))
    }

    /// Act on the monitor's report: the pid, or the start failure with
    /// docker's exit code.
    fn started(&self, rec: &mut ContainerRecord, report: &[u8]) -> Result<i32> {
        let v: serde_json::Value = serde_json::from_slice(report).unwrap_or_default();
        if let Some(pid) = v["pid"].as_i64() {
            // Read again: `network connect` may have changed it meanwhile.
            *rec = self.find(&rec.id)?;
            rec.started_at = Some(rfc3339_nanos(SystemTime::now()));
            self.db.update(rec)?;
            log::info!("started container {} (pid {pid})", rec.id);
            return Ok(pid as i32);
        }
        let message = v["error"].as_str().map(String::from).unwrap_or_else(|| {
            format!(
                "berth-monitor failed: {}",
                String::from_utf8_lossy(report).trim()
            )
        });
        let message = runtime_message(&message);
        Err(EngineError::Start {
            code: start_failure_code(&message),
            message,
        })
    }

    /// What the monitor runs for `--rm`: `berth … container-cleanup ID`.
    fn cleanup_command(&self, id: &str) -> Vec<OsString> {
        vec![
            self.self_exe.clone().into(),
            "--root".into(),
            self.root.clone().into(),
            "--runroot".into(),
            self.runroot.clone().into(),
            "container-cleanup".into(),
            id.into(),
        ]
    }

    /// A lock file in a container's run dir (made if missing), open for
    /// writing; its path.
    pub(crate) fn run_file(&self, id: &str, name: &str) -> Result<(fs::File, PathBuf)> {
        let run = self.run_dir(id);
        fs::create_dir_all(&run).map_err(io("create", &run))?;
        let p = run.join(name);
        let f = fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(io("open", &p))?;
        Ok((f, p))
    }

    /// A shared hold on the container's attach lock: while held, a `--rm`
    /// container's monitor waits before removing it (so a foreground reader
    /// gets all output and the exit code).
    pub fn attach_lock(&self, id: &str) -> Result<AttachHold> {
        let (f, p) = self.run_file(id, ATTACH_LOCK)?;
        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockShared).map_err(|(_, e)| {
            EngineError::Io {
                what: "lock",
                path: p,
                source: e.into(),
            }
        })
    }

    /// Block until the container's monitor has exited (its `--rm` cleanup
    /// included).
    pub fn wait_monitor(&self, id: &str) {
        let p = self.run_dir(id).join(MONITOR_LOCK);
        if let Ok(f) = fs::File::open(&p) {
            let _ = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockShared);
        }
    }
}

/// Running, paused, or between an exit and its restart: its monitor lives.
pub(crate) fn rec_is_up(s: crate::state::Status) -> bool {
    use crate::state::Status;
    matches!(s, Status::Running | Status::Paused | Status::Restarting)
}

/// A shared hold on a container's attach lock (see [`Engine::attach_lock`]).
pub type AttachHold = nix::fcntl::Flock<fs::File>;

/// A rollback step of a failed create: when it fails too, something is
/// left behind (`berth rm` or `system check` finds it), so say so.
fn undo<T, E: std::fmt::Display>(what: &str, id: &str, r: std::result::Result<T, E>) {
    if let Err(e) = r {
        log::warn!("{what} of the half-made container {id}: {e}");
    }
}

/// The gist of a runtime's error output: its last line, and of a logrus
/// line (`time=… level=error msg="…"`) only the message.
pub fn runtime_message(out: &str) -> String {
    let last = out
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    match last.find("msg=\"") {
        Some(i) => {
            let rest = &last[i + 5..];
            let end = rest.rfind('"').unwrap_or(rest.len());
            rest[..end].replace("\\\"", "\"")
        }
        None => last.to_string(),
    }
}

/// docker's codes for a process that could not start: 127 when the command
/// is not found, 126 when it cannot be executed, else 125.
pub fn start_failure_code(message: &str) -> u8 {
    let m = message.to_ascii_lowercase();
    let about_exec = m.contains("exec") || m.contains("executable") || m.contains("command");
    let missing =
        m.contains("not found") || m.contains("no such file") || m.contains("no such executable");
    if about_exec && missing {
        127
    } else if about_exec
        && (m.contains("permission denied") || m.contains("operation not permitted"))
    {
        126
    } else {
        125
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_messages_and_codes() {
        let runc = "time=\"x\" level=error msg=\"a\"\ntime=\"y\" level=error msg=\"runc create failed: exec: \\\"nosuch\\\": executable file not found in $PATH\"\n";
        let m = runtime_message(runc);
        assert_eq!(
            m,
            "runc create failed: exec: \"nosuch\": executable file not found in $PATH"
        );
        assert_eq!(start_failure_code(&m), 127);
        assert_eq!(
            start_failure_code("exec: \"/etc/passwd\": permission denied"),
            126
        );
        assert_eq!(
            start_failure_code("mount /x: no such file or directory"),
            125
        );
        assert_eq!(
            start_failure_code("open executable: Operation not permitted"),
            126
        );
        assert_eq!(runtime_message("plain error\n"), "plain error");
    }
}
