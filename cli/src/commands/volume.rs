//! `berth volume create|ls|inspect|rm|prune`: named volumes (`-v NAME:/dst`).

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use serde_json::{json, Value};

use super::format::{self, Format};
use super::Ctx;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: VolumeCommand,
}

#[derive(Subcommand, Debug)]
pub enum VolumeCommand {
    /// Create a volume (a random name when none is given)
    Create {
        /// Set a label (K=V)
        #[arg(short = 'l', long = "label", value_name = "K=V")]
        label: Vec<String>,
        name: Option<String>,
    },
    /// List volumes
    #[command(alias = "list")]
    Ls {
        /// Only names
        #[arg(short, long)]
        quiet: bool,
        /// table, json or a {{.Field}} template
        #[arg(long, default_value = "table", value_parser = format::parse_format)]
        format: Format,
    },
    /// Show volumes as JSON
    Inspect {
        #[arg(required = true)]
        volumes: Vec<String>,
    },
    /// Remove volumes no container uses
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        volumes: Vec<String>,
    },
    /// Remove every volume no container uses
    Prune,
}

fn view(v: &berth_engine::Volume, users: &[String]) -> Value {
    json!({
        "Name": v.name,
        "Driver": "local",
        "Mountpoint": v.mountpoint,
        "CreatedAt": v.created_at,
        "Labels": v.labels,
        "Containers": users,
    })
}

pub fn run(a: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let engine = ctx.engine()?;
    match a.command {
        VolumeCommand::Create { label, name } => {
            let v = engine
                .volume_create(name.as_deref(), super::parse_labels(&label))
                .context("volume create")?;
            println!("{}", v.name);
        }
        VolumeCommand::Ls { quiet, format } => {
            let rows: Vec<Value> = engine
                .volume_list()?
                .iter()
                .map(|(v, u)| view(v, u))
                .collect();
            if quiet {
                rows.iter()
                    .for_each(|r| println!("{}", r["Name"].as_str().unwrap_or("")));
                return Ok(ExitCode::SUCCESS);
            }
            format::print_rows(&format, &rows, &["DRIVER", "NAME"], |r| {
                vec!["local".into(), format::str_of(&r["Name"])]
            })?;
        }
        VolumeCommand::Inspect { volumes } => {
            let mut out = Vec::new();
            for n in &volumes {
                let (v, u) = engine
                    .volume_inspect(n)
                    .with_context(|| format!("volume inspect {n}"))?;
                out.push(view(&v, &u));
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        VolumeCommand::Rm { volumes } => {
            for n in &volumes {
                engine
                    .volume_remove(n)
                    .with_context(|| format!("volume rm {n}"))?;
                println!("{n}");
            }
        }
        VolumeCommand::Prune => {
            for n in engine.volume_prune()? {
                println!("{n}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
