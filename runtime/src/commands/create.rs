use anyhow::Result;
use berth_runtime::{console, container};

use super::Ctx;
use crate::cli::CreateArgs;

pub fn opts<'a>(a: &'a CreateArgs, ctx: &Ctx) -> Result<container::CreateOpts<'a>> {
    let console = a
        .console_socket
        .as_deref()
        .map(console::connect)
        .transpose()?;
    Ok(container::CreateOpts {
        id: &a.id,
        bundle: &a.bundle,
        pid_file: a.pid_file.as_deref(),
        console,
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
        systemd_cgroup: ctx.systemd_cgroup,
        rootless: ctx.rootless,
    })
}

pub fn run(a: CreateArgs, ctx: &Ctx) -> Result<i32> {
    container::create(&ctx.root, opts(&a, ctx)?)?;
    Ok(0)
}
