//! `berth logs [-f] [--tail N] CONTAINER`

use std::process::ExitCode;
use std::time::Duration;

use berth_engine::LogFollower;

use super::Ctx;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Keep following the output until the container exits
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
    pub container: String,
}

pub fn run(a: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let engine = ctx.engine()?;
    let rec = engine.find(&a.container)?;
    let mut f = LogFollower::open(&rec.log_path)?;
    let first = match a.tail {
        Some(n) => f.skip_to_tail(n)?,
        None => f.poll()?,
    };
    super::run::print_lines(&first);
    if a.follow {
        loop {
            let running = engine.state(&rec).is_running();
            super::run::print_lines(&f.poll()?);
            if !running {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(ExitCode::SUCCESS)
}
