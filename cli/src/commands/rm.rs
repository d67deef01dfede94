//! `berth rm [-f] [-v] CONTAINER...`

use std::process::ExitCode;

use anyhow::Context as _;

use super::Ctx;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Kill a running container first
    #[arg(short, long)]
    pub force: bool,
    /// Remove the container's anonymous volumes too
    #[arg(short, long)]
    pub volumes: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(a: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let engine = ctx.engine()?;
    for c in &a.containers {
        let removed = if a.volumes {
            engine.remove_with_volumes(c, a.force)
        } else {
            engine.remove(c, a.force)
        };
        removed.with_context(|| format!("remove container {c}"))?;
        println!("{c}");
    }
    Ok(ExitCode::SUCCESS)
}
