//! `berth system check [--repair]`, `berth system prune`

use std::process::ExitCode;

use clap::Subcommand;

use super::Ctx;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: SystemCommand,
}

#[derive(Subcommand, Debug)]
pub enum SystemCommand {
    /// Verify every blob digest and database reference
    Check {
        /// Fix what can be fixed (remove corrupt blobs, stale temp files,
        /// dangling rows; re-unpack missing layers)
        #[arg(long, short)]
        repair: bool,
    },
    /// Remove blobs and layers no image refers to
    Prune,
    /// Show what the image store holds
    Df,
}

pub fn run(a: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let store = ctx.store()?;
    match a.command {
        SystemCommand::Check { repair } => {
            let problems = store.check(repair)?;
            if problems.is_empty() {
                println!("store is consistent");
                return Ok(ExitCode::SUCCESS);
            }
            for p in &problems {
                let state = if p.repaired {
                    "repaired"
                } else if p.is_garbage() {
                    "garbage"
                } else {
                    "found"
                };
                println!("{state}: {}: {}", p.kind, p.subject);
            }
            let repaired = problems.iter().filter(|p| p.repaired).count();
            let garbage = problems
                .iter()
                .filter(|p| !p.repaired && p.is_garbage())
                .count();
            let left = problems.len() - repaired - garbage;
            println!("{left} unrepaired problems, {repaired} repaired, {garbage} unreferenced blobs (`berth system prune` removes them)");
            Ok(if left == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        SystemCommand::Df => {
            let du = store.disk_usage()?;
            println!("IMAGES  BLOBS  BLOB BYTES  LAYERS  LAYER BYTES");
            println!(
                "{:<6}  {:<5}  {:<10}  {:<6}  {}",
                du.images, du.blobs, du.blob_bytes, du.layers, du.layer_bytes
            );
            Ok(ExitCode::SUCCESS)
        }
        SystemCommand::Prune => {
            let r = store.gc()?;
            println!(
                "removed {} blobs and {} layers, {} bytes",
                r.blobs.len(),
                r.layers.len(),
                r.bytes
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
