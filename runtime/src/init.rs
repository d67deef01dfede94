//! The container side of `create`: the intermediate process that enters or
//! creates the namespaces, and the init that builds the root, waits for
//! `start` and execs the container's process.

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use nix::sched::{setns, unshare, CloneFlags};
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{LinuxNamespaceType as T, Spec};

use crate::error::{sys as sys_err, Error, Result};
use crate::hooks;
use crate::ns;
use crate::sync::{Chan, Msg};
use crate::sys::{self, Forked};
use crate::{console, rootfs};

/// What the child processes of `create` need; built by the parent before
/// forking, so the children only consume it.
pub struct InitArgs {
    pub id: String,
    pub spec: Spec,
    pub rootfs: PathBuf,
    pub bundle: PathBuf,
    pub chan: Chan,
    /// The exec fifo, opened read-write: `start` writes one byte to it.
    pub fifo: OwnedFd,
    pub console_socket: Option<OwnedFd>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    pub extra_env: Vec<String>,
    pub cgroup: Option<crate::cgroups::Cgroup>,
    /// The cgroup's `tasks` (v1) or `cgroup.procs` (v2) files, opened by
    /// the parent: the intermediate moves itself in through them first.
    pub cgroup_join: Vec<OwnedFd>,
    pub ns: ns::Plan,
    /// Connected to `linux.seccomp.listenerPath` (host view) when the
    /// profile notifies.
    pub seccomp_listener: Option<OwnedFd>,
    /// `linux.seccomp`, compiled by the parent.
    pub seccomp: Option<crate::seccomp::Program>,
}

/// The intermediate child. Never returns.
pub fn intermediate(a: InitArgs) -> ! {
    match stage_namespaces(&a) {
        Ok(()) => {}
        Err(e) => {
            let _ = a.chan.send(&Msg::Error {
                msg: crate::error::chain(&e),
            });
            sys::exit_now(1);
        }
    }
    match sys::fork() {
        Ok(Forked::Child) => container_init(a),
        Ok(Forked::Parent(pid)) => {
            let _ = a.chan.send(&Msg::InitPid { pid: pid.as_raw() });
            sys::exit_now(0);
        }
        Err(e) => {
            let _ = a.chan.send(&Msg::Error {
                msg: format!("fork container init: {e}"),
            });
            sys::exit_now(1);
        }
    }
}

fn stage_namespaces(a: &InitArgs) -> Result<()> {
    // Before any namespace: the cgroup namespace, if new, is rooted at the
    // cgroup the process is in when it is made; the limits hold from here.
    crate::cgroups::join_self(&a.cgroup_join)?;
    for (t, fd) in &a.ns.join {
        setns(fd, ns::clone_flag(*t))
            .map_err(sys_err(format!("join {} namespace", ns::proc_name(*t))))?;
        if *t == T::User {
            become_root()?;
        }
    }
    if a.ns.new_user {
        unshare(CloneFlags::CLONE_NEWUSER).map_err(sys_err("create user namespace"))?;
    }
    a.chan.send(&Msg::UsernsReady)?;
    a.chan
        .expect("id maps", |m| matches!(m, Msg::Proceed { .. }))?;
    if a.ns.new_user {
        become_root()?;
    }
    unshare(a.ns.new).map_err(sys_err("create namespaces"))?;
    if a.ns.new.contains(ns::clone_flag(T::Time)) {
        write_time_offsets(&a.spec)?;
    }
    Ok(())
}

fn become_root() -> Result<()> {
    let (u, g) = (Uid::from_raw(0), Gid::from_raw(0));
    nix::unistd::setresgid(g, g, g).map_err(sys_err("setgid 0 in user namespace"))?;
    nix::unistd::setresuid(u, u, u).map_err(sys_err("setuid 0 in user namespace"))?;
    Ok(())
}

fn write_time_offsets(spec: &Spec) -> Result<()> {
    let Some(offsets) = spec.linux().as_ref().and_then(|l| l.time_offsets().clone()) else {
        return Ok(());
    };
    let mut text = String::new();
    for (clock, off) in offsets {
        text.push_str(&format!(
            "{clock} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    std::fs::write("/proc/self/timens_offsets", text).map_err(|e| Error::Io {
        op: "write",
        path: "/proc/self/timens_offsets".into(),
        source: e,
    })
}

/// The container's init. Never returns.
fn container_init(a: InitArgs) -> ! {
    // The intermediate process reports our pid on the same channel: wait
    // for the parent's go-ahead, so our messages never overtake that one.
    if a.chan
        .expect("go-ahead for set-up", |m| {
            matches!(m, Msg::Proceed { state: None })
        })
        .is_err()
    {
        sys::exit_now(1);
    }
    let (peer, state_json) = match setup(&a) {
        Ok(p) => p,
        Err(e) => {
            let _ = a.chan.send(&Msg::Error {
                msg: crate::error::chain(&e),
            });
            sys::exit_now(1);
        }
    };
    drop(a.chan);
    // Wait for `start`: it writes one byte to the fifo.
    let mut fifo = std::fs::File::from(a.fifo);
    let mut b = [0u8; 1];
    loop {
        match fifo.read(&mut b) {
            Ok(1) => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            _ => sys::exit_now(1),
        }
    }
    let err = run_container_process(
        &a.spec,
        peer,
        a.preserve_fds,
        &a.extra_env,
        &state_json,
        fifo,
        (a.seccomp.as_ref(), a.seccomp_listener),
    );
    eprintln!("berth-runtime: {}", crate::error::chain(&err));
    sys::exit_now(127);
}

/// Everything before `start`. Returns the pty peer when `terminal` is set,
/// and the state JSON for the container-side hooks.
fn setup(a: &InitArgs) -> Result<(Option<OwnedFd>, String)> {
    let spec = &a.spec;
    let linux = spec.linux().as_ref().expect("validated");
    let process = spec.process().as_ref().expect("validated");
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).map_err(sys_err("sethostname"))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|h| !h.is_empty()) {
        sys::set_domainname(d).map_err(sys_err("setdomainname"))?;
    }
    if !a.no_new_keyring {
        sys::join_session_keyring(&format!("_ses.{}", a.id));
    }
    let plan = rootfs::Plan {
        spec,
        rootfs: &a.rootfs,
        bundle: &a.bundle,
        cgroup: a.cgroup.as_ref(),
        userns: a.ns.has_user,
        cgroupns: a.ns.has_cgroup,
    };
    let root = rootfs::prepare(&plan)?;
    // runc creates a missing cwd (as root, before the user switch).
    crate::fsutil::open_in_root(root.as_fd(), process.cwd(), crate::fsutil::Create::Dir)?;
    let mut peer = None;
    if process.terminal().unwrap_or(false) {
        let sock = a.console_socket.as_ref().ok_or_else(|| {
            Error::InvalidConfig("terminal is set but no console socket was given".into())
        })?;
        let size = process
            .console_size()
            .map(|b| (b.height() as u16, b.width() as u16));
        let pty = console::open_pty(root.as_fd(), size)?;
        console::send_master(sock.as_fd(), &pty)?;
        crate::devices::bind_console(root.as_fd(), &pty.peer)?;
        peer = Some(pty.peer);
    }
    drop(root);
    a.chan.send(&Msg::RunCreateHooks)?;
    let state = match a.chan.recv()? {
        Some(Msg::Proceed { state: Some(s) }) => s,
        Some(Msg::Abort { msg }) => return Err(Error::Init(msg)),
        other => {
            return Err(Error::Sync(format!(
                "expected go-ahead for createContainer hooks, got {other:?}"
            )))
        }
    };
    hooks::run_all(
        hooks::Kind::CreateContainer,
        &hooks::Kind::CreateContainer.of(spec),
        state.as_bytes(),
    )?;
    rootfs::pivot(&a.rootfs, a.no_pivot)?;
    rootfs::finish(spec, a.ns.has_user)?;
    let _ = linux;
    // Fail `create`, not `start`, when the program does not exist.
    let env = process.env().clone().unwrap_or_default();
    let path_env = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let args = process.args().clone().unwrap_or_default();
    crate::process::find_program(&args[0], path_env)?;
    a.chan.send(&Msg::Ready)?;
    Ok((peer, state))
}

/// After `start`: startContainer hooks, then the final set-up and exec.
fn run_container_process(
    spec: &Spec,
    peer: Option<OwnedFd>,
    preserve_fds: u32,
    extra_env: &[String],
    state_json: &str,
    fifo: std::fs::File,
    (program, seccomp_listener): (Option<&crate::seccomp::Program>, Option<OwnedFd>),
) -> Error {
    let state = state_json.replace("\"status\":\"creating\"", "\"status\":\"created\"");
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let notify = match (seccomp, seccomp_listener) {
        (Some(s), Some(sock)) => match crate::seccomp::Notify::new(s, sock, &state, None) {
            Ok(n) => Some(n),
            Err(e) => return e.into(),
        },
        _ => None,
    };
    if let Err(e) = hooks::run_all(
        hooks::Kind::StartContainer,
        &hooks::Kind::StartContainer.of(spec),
        state.as_bytes(),
    ) {
        return e;
    }
    let process = spec.process().as_ref().expect("validated");
    if let Some(peer) = peer {
        if let Err(e) = console::make_controlling(&peer) {
            return e;
        }
    }
    let linux = spec.linux().as_ref();
    let f = crate::process::Final {
        process,
        seccomp: program,
        seccomp_notify: notify.as_ref(),
        preserve_fds,
        extra_env: extra_env.to_vec(),
        setgroups: setgroups_allowed(),
        personality: linux.and_then(|l| l.personality().as_ref()),
    };
    // The fifo stays open (close-on-exec) until exec: `start` waits for it
    // to close to know the process is running.
    let e = crate::process::finalize_and_exec(&f);
    drop(fifo);
    e
}

fn setgroups_allowed() -> bool {
    std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() != "deny")
        .unwrap_or(true)
}
