//! `berth top CONTAINER`: the container's processes (host pids).

use std::process::ExitCode;

use anyhow::Context as _;

use super::Ctx;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub container: String,
}

pub fn run(a: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let engine = ctx.engine()?;
    let procs = engine
        .top(&a.container)
        .with_context(|| format!("top {}", a.container))?;
    println!("{:<10} {:<10} COMMAND", "PID", "PPID");
    for (pid, ppid, cmd) in procs {
        println!("{pid:<10} {ppid:<10} {cmd}");
    }
    Ok(ExitCode::SUCCESS)
}
