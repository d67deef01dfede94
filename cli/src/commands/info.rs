//! `berth info` (JSON), `berth version`, `berth container prune`.

use std::process::ExitCode;

use super::Ctx;

pub fn info(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(&ctx.engine()?.info()?)?);
    Ok(ExitCode::SUCCESS)
}

pub fn version(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    println!("berth {}", env!("CARGO_PKG_VERSION"));
    if let Some(v) = ctx.engine().ok().and_then(|e| e.runtime_version()) {
        println!("runtime: {v}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `berth container prune`: remove every stopped container.
#[derive(clap::Args, Debug)]
pub struct ContainerArgs {
    #[command(subcommand)]
    pub command: ContainerCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum ContainerCommand {
    /// Remove every container that is not running
    Prune,
}

pub fn container(a: ContainerArgs, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    match a.command {
        ContainerCommand::Prune => {
            for id in ctx.engine()?.prune()? {
                println!("{id}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
