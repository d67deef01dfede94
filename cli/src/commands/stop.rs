//! `berth stop [-t SECONDS] CONTAINER...` and `berth kill [-s SIGNAL] CONTAINER...`

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use super::Ctx;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Seconds to wait after the stop signal before SIGKILL (default: the
    /// container's --stop-timeout, else 10)
    #[arg(short = 't', long = "time")]
    pub time: Option<u64>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(a: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let engine = ctx.engine()?;
    for c in &a.containers {
        engine
            .stop(c, a.time.map(Duration::from_secs))
            .with_context(|| format!("stop {c}"))?;
        println!("{c}");
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args, Debug)]
pub struct KillArgs {
    /// Signal name or number
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn kill(a: KillArgs, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let engine = ctx.engine()?;
    let sig = a.signal.trim_start_matches("SIG").to_string();
    for c in &a.containers {
        engine.kill(c, &sig).with_context(|| format!("kill {c}"))?;
        println!("{c}");
    }
    Ok(ExitCode::SUCCESS)
}
