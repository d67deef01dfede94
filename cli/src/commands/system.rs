//! `berth system check [--repair]` (the image store, then the containers),
//! `berth system prune`, `berth system df`

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
    /// Verify every blob digest and database reference, and the containers'
    /// records, directories, runtime state and mounts
    Check {
        /// Fix what can be fixed (remove corrupt blobs, stale temp files,
        /// dangling rows; re-unpack missing layers; delete stale runtime
        /// state, unmount leaked mounts, remove directories and leases
        /// without a container, record dead monitors' exits, rewrite
        /// missing bundles)
        #[arg(long, short)]
        repair: bool,
    },
    /// Remove blobs and layers no image refers to
    Prune,
    /// Show what the image store holds
    Df,
}

pub fn run(a: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    match a.command {
        SystemCommand::Check { repair } => {
            let engine = ctx.engine()?;
            let mut problems = engine.store().check(repair)?;
            problems.extend(engine.check(repair)?);
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
            let du = ctx.store()?.disk_usage()?;
            println!("IMAGES  BLOBS  BLOB BYTES  LAYERS  LAYER BYTES");
            println!(
                "{:<6}  {:<5}  {:<10}  {:<6}  {}",
                du.images, du.blobs, du.blob_bytes, du.layers, du.layer_bytes
            );
            Ok(ExitCode::SUCCESS)
        }
        SystemCommand::Prune => {
            let r = ctx.store()?.gc()?;
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
