use std::collections::HashSet;
use std::os::fd::AsRawFd;

use anyhow::{bail, Context, Result};
use berth_runtime::{console, container, exec, foreground, sys};
use oci_spec::runtime::{Capability, Process};

use super::Ctx;
use crate::cli::ExecArgs;

fn build_process(a: &ExecArgs, ctx: &Ctx) -> Result<Process> {
    if let Some(p) = &a.process {
        let data =
            std::fs::read(p).with_context(|| format!("read process spec {}", p.display()))?;
        let proc: Process =
            serde_json::from_slice(&data).map_err(|e| berth_runtime::Error::ProcessSpec {
                path: p.clone(),
                msg: e.to_string(),
            })?;
        return Ok(proc);
    }
    if a.args.is_empty() {
        bail!("exec needs a command (or --process)");
    }
    let st = container::state(&ctx.root, &a.id)?;
    let mut p = st.config.process().clone().unwrap_or_default();
    p.set_args(Some(a.args.clone()));
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(a.env.iter().cloned());
    p.set_env(Some(env));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    p.set_terminal(Some(a.tty));
    p.set_console_size(None);
    if let Some(u) = &a.user {
        let (uid, gid) = match u.split_once(':') {
            Some((u, g)) => (u.parse::<u32>()?, g.parse::<u32>()?),
            None => (u.parse::<u32>().context("--user must be UID[:GID]")?, 0),
        };
        let user = p.user_mut();
        user.set_uid(uid);
        user.set_gid(gid);
    }
    if !a.additional_gids.is_empty() {
        p.user_mut()
            .set_additional_gids(Some(a.additional_gids.clone()));
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if !a.cap.is_empty() {
        let mut c = p
            .capabilities()
            .clone()
            .unwrap_or_else(berth_runtime::capabilities::empty_caps);
        let extra: HashSet<Capability> = a
            .cap
            .iter()
            .map(|n| {
                serde_json::from_value(serde_json::Value::String(n.clone()))
                    .with_context(|| format!("unknown capability {n}"))
            })
            .collect::<Result<_>>()?;
        let add = |s: &Option<HashSet<Capability>>| {
            Some(
                s.clone()
                    .unwrap_or_default()
                    .union(&extra)
                    .copied()
                    .collect(),
            )
        };
        c.set_bounding(add(c.bounding()));
        c.set_effective(add(c.effective()));
        c.set_permitted(add(c.permitted()));
        c.set_ambient(add(c.ambient()));
        p.set_capabilities(Some(c));
    }
    Ok(p)
}

pub fn run(a: ExecArgs, ctx: &Ctx) -> Result<i32> {
    let process = build_process(&a, ctx)?;
    let terminal = process.terminal().unwrap_or(false);
    let mut console = a
        .console_socket
        .as_deref()
        .map(console::connect)
        .transpose()?;
    let mut ours = None;
    if terminal && console.is_none() {
        if a.detach {
            bail!("cannot allocate a terminal when detached without --console-socket");
        }
        let (theirs, mine) = super::run::internal_console()?;
        console = Some(theirs);
        ours = Some(mine);
    }
    let sfd = if a.detach {
        None
    } else {
        Some(foreground::block_signals()?)
    };
    let started = exec::exec(
        &ctx.root,
        exec::ExecOpts {
            id: &a.id,
            process,
            console,
            pid_file: a.pid_file.as_deref(),
            detach: a.detach,
            preserve_fds: a.preserve_fds,
        },
    )?;
    let master = match ours {
        Some(s) => Some(sys::recv_fd(s.as_raw_fd())?),
        None => None,
    };
    let Some(sfd) = sfd else { return Ok(0) };
    let code = foreground::wait(started.pid, sfd, master)?;
    foreground::unblock_signals();
    Ok(code)
}
