//! `berth pause CONTAINER...` and `berth unpause CONTAINER...`: freeze and
//! thaw every process of running containers (the runtime's pause/resume).

use std::process::ExitCode;

use anyhow::Context as _;

use super::Ctx;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn pause(a: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let engine = ctx.engine()?;
    for c in &a.containers {
        engine.pause(c).with_context(|| format!("pause {c}"))?;
        println!("{c}");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn unpause(a: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let engine = ctx.engine()?;
    for c in &a.containers {
        engine.unpause(c).with_context(|| format!("unpause {c}"))?;
        println!("{c}");
    }
    Ok(ExitCode::SUCCESS)
}
