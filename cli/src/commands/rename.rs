//! `berth rename CONTAINER NEW_NAME` and `berth restart [-t S] CONTAINER...`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use super::Ctx;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub container: String,
    pub new_name: String,
}

pub fn run(a: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    ctx.engine()?
        .rename(&a.container, &a.new_name)
        .with_context(|| format!("rename {}", a.container))?;
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args, Debug)]
pub struct RestartArgs {
    /// Seconds to wait after the stop signal before SIGKILL (default: the
    /// container's --stop-timeout, else 10)
    #[arg(short = 't', long = "time")]
    pub time: Option<u64>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn restart(a: RestartArgs, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let engine = ctx.engine()?;
    for c in &a.containers {
        engine
            .restart(c, a.time.map(Duration::from_secs))
            .with_context(|| format!("restart {c}"))?;
        println!("{c}");
    }
    Ok(ExitCode::SUCCESS)
}
