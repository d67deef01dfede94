//! `berth start [-a [-i]] CONTAINER...`

use std::process::ExitCode;

use anyhow::Context as _;

use super::Ctx;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Attach: copy the output here and exit with the container's code
    #[arg(short, long)]
    pub attach: bool,
    /// Attach stdin too (a container created with -i)
    #[arg(short, long)]
    pub interactive: bool,
    #[command(flatten)]
    pub stream: super::attach::StreamArgs,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(a: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let engine = ctx.engine()?;
    if a.attach {
        let [one] = a.containers.as_slice() else {
            anyhow::bail!("start -a takes exactly one container");
        };
        return super::attach::start(&engine, one, &a.stream, a.interactive);
    }
    for c in &a.containers {
        engine.start(c).with_context(|| format!("start {c}"))?;
        println!("{c}");
    }
    Ok(ExitCode::SUCCESS)
}
