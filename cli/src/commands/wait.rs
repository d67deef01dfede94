//! `berth wait CONTAINER...`: print each exit code.

use std::process::ExitCode;

use super::Ctx;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(a: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let engine = ctx.engine()?;
    for c in &a.containers {
        println!("{}", engine.wait(c)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// `berth container-cleanup ID` (hidden): the monitor's exit command for
/// `--rm` containers.
#[derive(clap::Args, Debug)]
pub struct CleanupArgs {
    pub id: String,
}

pub fn cleanup(a: CleanupArgs, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    ctx.engine()?.cleanup(&a.id)?;
    Ok(ExitCode::SUCCESS)
}
