//! The container lifecycle as seen from the runtime's side: create, start,
//! state, kill, delete, pause/resume. Each operation takes the container's
//! lock for its whole duration.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::unistd::Pid;

use crate::cgroups::{self, Cgroup};
use crate::config;
use crate::error::{io_err, Error, Result};
use crate::hooks::{self, Kind};
use crate::init::{self, InitArgs};
use crate::ns;
use crate::state::{self, Locked, Root, State, Status, EXEC_FIFO};
use crate::sync::{self, Msg};
use crate::sys::{self, Forked};

pub const OCI_VERSION: &str = "1.2.0";

pub struct CreateOpts<'a> {
    pub id: &'a str,
    pub bundle: &'a Path,
    pub pid_file: Option<&'a Path>,
    /// A connected console socket (required when `process.terminal`).
    pub console: Option<OwnedFd>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    pub systemd_cgroup: bool,
    pub rootless: bool,
}

/// Create a container: everything up to (not including) running the user
/// process. On failure nothing is left behind: no process, no cgroup, no
/// state directory.
pub fn create(root: &Root, o: CreateOpts<'_>) -> Result<State> {
    state::validate_id(o.id)?;
    let bundle = config::load_bundle(o.bundle)?;
    let spec = bundle.spec;
    let process = spec.process().as_ref().expect("validated");
    if process.terminal().unwrap_or(false) && o.console.is_none() {
        return Err(Error::InvalidConfig(
            "cannot allocate a terminal without a console socket (--console-socket)".into(),
        ));
    }
    let mut seccomp_listener = None;
    let mut seccomp = None;
    if let Some(s) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        seccomp = Some(crate::seccomp::Program::prepare(
            s,
            Some(&root.seccomp_cache()),
        )?);
        crate::seccomp::notify::check_listener(s)?;
        seccomp_listener = crate::seccomp::connect_listener(s)?;
    }
    let linux = spec.linux().as_ref().expect("validated");
    let nsplan = ns::plan(linux)?;
    let locked = root.create_dir(o.id)?;
    let mut guard = Cleanup {
        locked: Some(locked),
        cgroup: None,
        pid: None,
    };
    let dir = guard.locked.as_ref().expect("set").dir.clone();

    let fifo_path = dir.join(EXEC_FIFO);
    nix::unistd::mkfifo(&fifo_path, Mode::from_bits_truncate(0o622)).map_err(|e| Error::Path {
        op: "mkfifo",
        path: fifo_path.clone(),
        source: e,
    })?;
    let fifo = nix::fcntl::open(&fifo_path, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| Error::Path {
            op: "open",
            path: fifo_path.clone(),
            source: e,
        })?;

    let cgroup = match cgroups::resolve(linux.cgroups_path().as_deref(), o.id, o.systemd_cgroup) {
        // runc's rule: a rootless container that asks for no limits runs
        // without a cgroup when it may not make one (no delegation); one
        // that asks for limits fails.
        Ok(c) if o.rootless && !c.writable() => {
            if cgroups::has_limits(linux.resources().as_ref()) {
                return Err(Error::InvalidConfig(format!(
                    "rootless: the config asks for resource limits, but cgroup {} may not be made by this user (limits need a delegated cgroup v2 tree)",
                    c.dirs.first().map_or_else(String::new, |d| d.display().to_string())
                )));
            }
            crate::log::debug(&format!(
                "rootless: no writable cgroup for {}, running without one",
                o.id
            ));
            None
        }
        Ok(c) => Some(c),
        Err(e) if o.rootless => {
            crate::log::warn(&format!("running without a cgroup: {e}"));
            None
        }
        Err(e) => return Err(e),
    };
    if let (Some(cg), Some(res)) = (&cgroup, linux.resources()) {
        // Before any cgroup or process exists.
        cgroups::validate(cg, res)?;
    }
    let listen_fds = listen_fds();
    let mut extra_env = Vec::new();
    if let Some(n) = listen_fds {
        extra_env.push(format!("LISTEN_FDS={n}"));
        extra_env.push("LISTEN_PID=1".to_string());
    }
    // The cgroup exists, with its limits, before the container's first
    // process: that process moves itself in before anything else.
    let cgroup_join = match &cgroup {
        Some(cg) => {
            // Armed first: a create that fails half-way is undone too.
            guard.cgroup = Some(cg.clone());
            cg.create()?;
            if let Some(res) = linux.resources() {
                crate::cgroups::apply_resources(cg, res)?;
            }
            cg.self_join_files()?
        }
        None => Vec::new(),
    };
    let (parent_chan, child_chan) = sync::pair()?;
    let new_user = nsplan.new_user;
    let args = InitArgs {
        id: o.id.to_string(),
        spec: spec.clone(),
        rootfs: bundle.rootfs.clone(),
        bundle: bundle.dir.clone(),
        chan: child_chan,
        fifo,
        console_socket: o.console,
        no_pivot: o.no_pivot,
        no_new_keyring: o.no_new_keyring,
        preserve_fds: o.preserve_fds + listen_fds.unwrap_or(0),
        extra_env,
        cgroup: cgroup.clone(),
        cgroup_join,
        ns: nsplan,
        seccomp_listener,
        seccomp,
    };
    let child = match sys::fork().map_err(crate::error::sys("fork"))? {
        Forked::Child => {
            drop(parent_chan);
            init::intermediate(args)
        }
        Forked::Parent(pid) => pid,
    };
    drop(args);
    let reap = |p: Pid| {
        let _ = nix::sys::wait::waitpid(p, None);
    };
    let result = (|| -> Result<State> {
        parent_chan.expect("user namespace", |m| matches!(m, Msg::UsernsReady))?;
        if new_user {
            write_id_maps(child.as_raw(), linux, o.rootless)?;
        }
        parent_chan.send(&Msg::Proceed { state: None })?;
        let pid = match parent_chan.expect("init pid", |m| matches!(m, Msg::InitPid { .. }))? {
            Msg::InitPid { pid } => pid,
            _ => unreachable!("checked by expect"),
        };
        guard.pid = Some(pid);
        reap(child);
        if let Some(adj) = process.oom_score_adj() {
            std::fs::write(format!("/proc/{pid}/oom_score_adj"), adj.to_string())
                .map_err(io_err("write oom_score_adj of", format!("/proc/{pid}")))?;
        }
        parent_chan.send(&Msg::Proceed { state: None })?;
        let start_time = state::process_start_time(pid)
            .ok_or_else(|| Error::Init("container init exited during set-up".into()))?;
        let mut st = State {
            oci_version: OCI_VERSION.to_string(),
            id: o.id.to_string(),
            status: Status::Creating,
            pid,
            bundle: bundle.dir.clone(),
            annotations: spec.annotations().clone().unwrap_or_default(),
            init_start_time: start_time,
            created: state::now_rfc3339(),
            config: spec.clone(),
            cgroup_path: cgroup.as_ref().map(cgroups::to_saved),
            rootless: o.rootless,
            exit_status: None,
        };
        parent_chan.expect("createRuntime hooks", |m| matches!(m, Msg::RunCreateHooks))?;
        let json = state_json(&st);
        let hooks_ok = hooks::run_all(Kind::Prestart, &Kind::Prestart.of(&spec), json.as_bytes())
            .and_then(|_| {
                hooks::run_all(
                    Kind::CreateRuntime,
                    &Kind::CreateRuntime.of(&spec),
                    json.as_bytes(),
                )
            });
        if let Err(e) = hooks_ok {
            let _ = parent_chan.send(&Msg::Abort {
                msg: crate::error::chain(&e),
            });
            return Err(e);
        }
        parent_chan.send(&Msg::Proceed { state: Some(json) })?;
        parent_chan.expect("container set-up", |m| matches!(m, Msg::Ready))?;
        st.status = Status::Created;
        guard.locked.as_ref().expect("set").save(&st)?;
        if let Some(p) = o.pid_file {
            write_pid_file(p, pid)?;
        }
        Ok(st)
    })();
    if result.is_err() {
        // The intermediate may still be alive if it failed early.
        let _ = kill(child, Signal::SIGKILL);
        reap(child);
        return result;
    }
    guard.disarm();
    result
}

/// Undo a half-made create.
struct Cleanup {
    locked: Option<Locked>,
    cgroup: Option<Cgroup>,
    pid: Option<i32>,
}

impl Cleanup {
    fn disarm(&mut self) {
        self.locked = None;
        self.cgroup = None;
        self.pid = None;
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        if let Some(cg) = &self.cgroup {
            kill_all_and_wait(cg);
            let _ = cg.destroy();
        }
        if let Some(l) = self.locked.take() {
            let _ = l.remove();
        }
    }
}

fn kill_all_and_wait(cg: &Cgroup) {
    for _ in 0..500 {
        let pids = cg.pids();
        if pids.is_empty() {
            return;
        }
        if cg.frozen() {
            let _ = cg.set_frozen(false);
        }
        for p in pids {
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn listen_fds() -> Option<u32> {
    let n: u32 = std::env::var("LISTEN_FDS").ok()?.parse().ok()?;
    (n > 0).then_some(n)
}

fn write_id_maps(pid: i32, linux: &oci_spec::runtime::Linux, rootless: bool) -> Result<()> {
    let fmt = |m: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
        m.iter()
            .flatten()
            .map(|x| format!("{} {} {}\n", x.container_id(), x.host_id(), x.size()))
            .collect::<String>()
    };
    if rootless {
        let p = format!("/proc/{pid}/setgroups");
        std::fs::write(&p, "deny").map_err(io_err("write", p))?;
    }
    for (file, text) in [
        ("uid_map", fmt(linux.uid_mappings())),
        ("gid_map", fmt(linux.gid_mappings())),
    ] {
        let p = format!("/proc/{pid}/{file}");
        std::fs::write(&p, text).map_err(io_err("write", p))?;
    }
    Ok(())
}

pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o644)
        .open(&tmp)
        .map_err(io_err("create pid file", &tmp))?;
    f.write_all(pid.to_string().as_bytes())
        .map_err(io_err("write pid file", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err("rename pid file to", path))
}

pub fn state_json(st: &State) -> String {
    serde_json::to_string(&st.oci()).expect("state serializes")
}

/// Release a created container's init to exec the user process, then run
/// the poststart hooks.
pub fn start(root: &Root, id: &str) -> Result<()> {
    let locked = root.lock(id)?;
    let mut st = root.load(id)?;
    match st.status {
        Status::Created => {}
        Status::Stopped => {
            return Err(Error::BadStatus {
                id: id.into(),
                status: "stopped".into(),
                expected: "created",
            })
        }
        s => {
            return Err(Error::BadStatus {
                id: id.into(),
                status: s.to_string(),
                expected: "created",
            })
        }
    }
    let fifo_path = locked.dir.join(EXEC_FIFO);
    let fifo = match nix::fcntl::open(
        &fifo_path,
        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(f) => f,
        Err(Errno::ENXIO) => return Err(Error::NotRunning),
        Err(e) => {
            return Err(Error::Path {
                op: "open",
                path: fifo_path,
                source: e,
            })
        }
    };
    nix::unistd::write(&fifo, &[0u8]).map_err(|e| Error::Path {
        op: "write",
        path: fifo_path.clone(),
        source: e,
    })?;
    // The init holds the fifo open (close-on-exec) until it execs the
    // user's program or dies: poll for "no readers left".
    wait_fifo_closed(&fifo, &st);
    drop(fifo);
    let _ = std::fs::remove_file(&fifo_path);
    st.status = Status::Running;
    locked.save(&st)?;
    // The process was started: poststart hooks see "running" even if a
    // short-lived process has already exited by the time they run (the
    // status `state` reports is always derived live).
    let json = state_json(&st);
    for e in hooks::run_all_warn(
        Kind::Poststart,
        &Kind::Poststart.of(&st.config),
        json.as_bytes(),
    ) {
        crate::log::warn(&e.to_string());
    }
    Ok(())
}

fn wait_fifo_closed(fifo: &OwnedFd, st: &State) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    loop {
        let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::empty())];
        match poll(&mut fds, PollTimeout::from(100u16)) {
            Ok(n) if n > 0 => {
                if fds[0]
                    .revents()
                    .is_some_and(|r| r.intersects(PollFlags::POLLERR | PollFlags::POLLHUP))
                {
                    return;
                }
            }
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return,
        }
        if !state::init_alive(st) {
            return;
        }
    }
}

/// `state`: the OCI state of a container.
pub fn state(root: &Root, id: &str) -> Result<State> {
    root.load(id)
}

/// Parse a signal given by name (`KILL`, `SIGKILL`) or number.
pub fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| Error::BadSignal(s.to_string()));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<Signal>()
        .map_err(|_| Error::BadSignal(s.to_string()))
}

/// `kill`: signal the init, or with `all` every process of the container.
pub fn kill_container(root: &Root, id: &str, sig: Signal, all: bool) -> Result<()> {
    let _locked = root.lock(id)?;
    let st = root.load(id)?;
    if st.status == Status::Stopped {
        return Err(Error::NotRunning);
    }
    if all {
        let pids = container_pids(&st);
        let cg = st.cgroup_path.as_deref().map(cgroups::from_saved);
        let frozen = cg.as_ref().is_some_and(|c| c.frozen());
        for p in pids {
            let _ = kill(Pid::from_raw(p), sig);
        }
        // A frozen process only sees SIGKILL once thawed.
        if frozen && sig == Signal::SIGKILL {
            if let Some(c) = cg {
                let _ = c.set_frozen(false);
            }
        }
        return Ok(());
    }
    match kill(Pid::from_raw(st.pid), sig) {
        Ok(()) => Ok(()),
        Err(Errno::ESRCH) => Err(Error::Init("no such process".into())),
        Err(e) => Err(Error::Sys {
            op: format!("kill {}", st.pid),
            source: e,
        }),
    }
}

/// Every process of the container: from its cgroup, or (without one) the
/// processes sharing the init's pid namespace.
pub fn container_pids(st: &State) -> Vec<i32> {
    if let Some(cg) = st.cgroup_path.as_deref().map(cgroups::from_saved) {
        let p = cg.pids();
        if !p.is_empty() {
            return p;
        }
    }
    if !state::init_alive(st) {
        return Vec::new();
    }
    let init = st.pid.to_string();
    let own_pidns = !ns::same(&init, "self", oci_spec::runtime::LinuxNamespaceType::Pid);
    if !own_pidns {
        return vec![st.pid];
    }
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Ok(p) = name.parse::<i32>() {
                if ns::same(&name, &init, oci_spec::runtime::LinuxNamespaceType::Pid) {
                    out.push(p);
                }
            }
        }
    }
    out.sort();
    out
}

/// `delete`: remove a stopped (or, like runc, a created) container; with
/// `force`, kill a running one first.
pub fn delete(root: &Root, id: &str, force: bool) -> Result<()> {
    let locked = match root.lock(id) {
        Ok(l) => l,
        Err(Error::NotFound(_)) if force => return Ok(()),
        Err(e) => return Err(e),
    };
    let st = match root.load(id) {
        Ok(st) => st,
        // A create that crashed before writing its state: nothing ran.
        Err(Error::NotFound(_)) => return locked.remove(),
        // A state file emptied by a power loss: its processes are gone too.
        Err(Error::StateCorrupt { .. }) if force => return locked.remove(),
        Err(e) => return Err(e),
    };
    match st.status {
        Status::Stopped | Status::Created => {}
        s if force => {
            let _ = s;
        }
        s => return Err(Error::DeleteNotStopped(id.into(), s.to_string())),
    }
    destroy(locked, &st)
}

fn destroy(locked: Locked, st: &State) -> Result<()> {
    let cg = st.cgroup_path.as_deref().map(cgroups::from_saved);
    if state::init_alive(st) {
        let _ = kill(Pid::from_raw(st.pid), Signal::SIGKILL);
    }
    match &cg {
        Some(c) => kill_all_and_wait(c),
        None => {
            for p in container_pids(st) {
                let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while state::init_alive(st) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    if let Some(c) = &cg {
        c.destroy()?;
    }
    let mut stopped = st.clone();
    stopped.status = Status::Stopped;
    let json = state_json(&stopped);
    for e in hooks::run_all_warn(
        Kind::Poststop,
        &Kind::Poststop.of(&st.config),
        json.as_bytes(),
    ) {
        crate::log::warn(&e.to_string());
    }
    locked.remove()
}

/// `pause` / `resume`.
pub fn set_paused(root: &Root, id: &str, pause: bool) -> Result<()> {
    let _locked = root.lock(id)?;
    let st = root.load(id)?;
    let expected = if pause {
        Status::Running
    } else {
        Status::Paused
    };
    if st.status != expected {
        return Err(Error::BadStatus {
            id: id.into(),
            status: st.status.to_string(),
            expected: if pause { "running" } else { "paused" },
        });
    }
    let cg = st
        .cgroup_path
        .as_deref()
        .map(cgroups::from_saved)
        .ok_or_else(|| Error::Cgroup {
            path: id.into(),
            msg: "container has no cgroup to freeze".into(),
        })?;
    cg.set_frozen(pause)
}

/// All containers' states (those whose state cannot be read are skipped).
pub fn list(root: &Root) -> Result<Vec<State>> {
    Ok(root
        .ids()?
        .iter()
        .filter_map(|id| root.load(id).ok())
        .collect())
}
