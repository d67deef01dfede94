//! `exec`: run another process in a running container's namespaces and
//! cgroup, with the container's seccomp profile and the capabilities asked
//! for (none inheritable unless listed).

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::sched::setns;
use nix::sys::signal::{kill, Signal};
use nix::unistd::{Gid, Pid, Uid};
use oci_spec::runtime::{LinuxNamespaceType as T, Process};

use crate::cgroups;
use crate::error::{sys as sys_err, Error, Result};
use crate::ns;
use crate::state::{Root, Status};
use crate::sync::{self, Msg};
use crate::sys::{self, Forked};

pub struct ExecOpts<'a> {
    pub id: &'a str,
    pub process: Process,
    pub console: Option<OwnedFd>,
    pub pid_file: Option<&'a Path>,
    pub detach: bool,
    pub preserve_fds: u32,
}

/// What a started exec gives back.
pub struct Started {
    pub pid: Pid,
}

/// Start the process; the caller waits for it (foreground) or not.
pub fn exec(root: &Root, o: ExecOpts<'_>) -> Result<Started> {
    let st = root.load(o.id)?;
    match st.status {
        Status::Running | Status::Created => {}
        Status::Paused => {
            return Err(Error::BadStatus {
                id: o.id.into(),
                status: "paused".into(),
                expected: "running",
            })
        }
        _ => {
            return Err(Error::BadStatus {
                id: o.id.into(),
                status: st.status.to_string(),
                expected: "running",
            })
        }
    }
    let p = &o.process;
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(Error::InvalidConfig(
            "exec: process args must not be empty".into(),
        ));
    }
    if !p.cwd().is_absolute() {
        return Err(Error::InvalidConfig(format!(
            "exec: cwd {:?} must be absolute",
            p.cwd()
        )));
    }
    let terminal = p.terminal().unwrap_or(false);
    if terminal && o.console.is_none() {
        return Err(Error::InvalidConfig(
            "cannot allocate a terminal without a console socket (--console-socket)".into(),
        ));
    }
    if let Some(c) = p.capabilities() {
        crate::capabilities::validate(c)?;
    }
    let config = &st.config;
    let linux = config.linux().as_ref().expect("validated at create");
    // Open every namespace of the init now, before joining any.
    let mut fds = Vec::new();
    for t in ns::JOIN_ORDER {
        if linux.namespaces().iter().flatten().any(|n| n.typ() == t) {
            let pid = st.pid.to_string();
            if ns::same(&pid, "self", t) {
                continue;
            }
            fds.push((t, ns::open_of_pid(st.pid, t)?));
        }
    }
    // pid and time namespaces apply to children: join them here.
    for (t, fd) in &fds {
        if matches!(t, T::Pid | T::Time) {
            setns(fd, ns::clone_flag(*t))
                .map_err(sys_err(format!("join {} namespace", ns::proc_name(*t))))?;
        }
    }
    let seccomp = linux.seccomp().as_ref();
    // Compiled here, before forking (from the cache when `create` or an
    // earlier exec compiled the same profile).
    let program = seccomp
        .map(|s| crate::seccomp::Program::prepare(s, Some(&root.seccomp_cache())))
        .transpose()?;
    let listener = match seccomp {
        Some(s) => crate::seccomp::connect_listener(s)?,
        None => None,
    };
    let (parent, child) = sync::pair()?;
    let cg = st.cgroup_path.as_deref().map(cgroups::from_saved);
    // The exec'd process moves itself into the container's cgroup first
    // thing (see `Cgroup::self_join_files`).
    let cgroup_join = match &cg {
        Some(cg) => cg.self_join_files()?,
        None => Vec::new(),
    };
    let pid = match sys::fork().map_err(sys_err("fork"))? {
        Forked::Child => {
            drop(parent);
            let e = match cgroups::join_self(&cgroup_join) {
                Err(e) => e,
                Ok(()) => child_side(&child, &fds, &o, config, listener, program.as_ref()),
            };
            let _ = child.send(&Msg::Error {
                msg: crate::error::chain(&e),
            });
            sys::exit_now(1);
        }
        Forked::Parent(pid) => pid,
    };
    drop(child);
    drop(cgroup_join);
    let r = (|| -> Result<()> {
        // The seccomp agent gets the exec'd process's host pid, which only
        // the parent knows.
        let payload = match (seccomp, &listener) {
            (Some(s), Some(_)) => Some(crate::seccomp::notify::payload(
                s,
                &crate::container::state_json(&st),
                Some(pid.as_raw()),
            )?),
            _ => None,
        };
        parent.send(&Msg::Proceed { state: payload })?;
        match parent.recv()? {
            None => Ok(()), // the socket closed on exec
            Some(Msg::Error { msg }) => Err(Error::Init(msg)),
            Some(m) => Err(Error::Sync(format!("unexpected {m:?}"))),
        }
    })();
    if let Err(e) = r {
        let _ = kill(pid, Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
        return Err(e);
    }
    if let Some(pf) = o.pid_file {
        crate::container::write_pid_file(pf, pid.as_raw())?;
    }
    Ok(Started { pid })
}

fn child_side(
    chan: &sync::Chan,
    fds: &[(T, OwnedFd)],
    o: &ExecOpts<'_>,
    config: &oci_spec::runtime::Spec,
    listener: Option<OwnedFd>,
    program: Option<&crate::seccomp::Program>,
) -> Error {
    let r = (|| -> Result<Error> {
        let payload = match chan.expect("cgroup", |m| matches!(m, Msg::Proceed { .. }))? {
            Msg::Proceed { state } => state,
            _ => unreachable!("checked by expect"),
        };
        let notify = match (listener, payload) {
            (Some(sock), Some(p)) => Some(crate::seccomp::Notify::from_payload(sock, p)),
            _ => None,
        };
        for (t, fd) in fds {
            if matches!(t, T::Pid | T::Time) {
                continue;
            }
            setns(fd, ns::clone_flag(*t))
                .map_err(sys_err(format!("join {} namespace", ns::proc_name(*t))))?;
            if *t == T::User {
                let (u, g) = (Uid::from_raw(0), Gid::from_raw(0));
                nix::unistd::setresgid(g, g, g).map_err(sys_err("setgid 0 in user namespace"))?;
                nix::unistd::setresuid(u, u, u).map_err(sys_err("setuid 0 in user namespace"))?;
            }
        }
        if o.process.terminal().unwrap_or(false) {
            let sock = o.console.as_ref().expect("checked");
            let root = nix::fcntl::open(
                "/",
                nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(sys_err("open /"))?;
            let size = o
                .process
                .console_size()
                .map(|b| (b.height() as u16, b.width() as u16));
            let pty = crate::console::open_pty(root.as_fd(), size)?;
            crate::console::send_master(sock.as_fd(), &pty)?;
            crate::console::make_controlling(&pty.peer)?;
        }
        let linux = config.linux().as_ref();
        let f = crate::process::Final {
            process: &o.process,
            seccomp: program,
            seccomp_notify: notify.as_ref(),
            preserve_fds: o.preserve_fds,
            extra_env: Vec::new(),
            // Denied in a user namespace whose setgroups file says so: the
            // container's own, or the one a rootless engine runs us in.
            setgroups: std::fs::read_to_string("/proc/self/setgroups")
                .map(|s| s.trim() != "deny")
                .unwrap_or(true),
            personality: linux.and_then(|l| l.personality().as_ref()),
        };
        Ok(crate::process::finalize_and_exec(&f))
    })();
    match r {
        Ok(e) | Err(e) => e,
    }
}
