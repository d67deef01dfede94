//! `berth image inspect|ls|rm|tag|history`

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use serde_json::{json, Value};

use super::{images, rmi, tag, Ctx};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: ImageCommand,
}

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Show image details as JSON
    Inspect(InspectArgs),
    /// List images (as `berth images`)
    #[command(alias = "list")]
    Ls(images::Args),
    /// Remove images (as `berth rmi`)
    Rm(rmi::Args),
    /// Name an image (as `berth tag`)
    Tag(tag::Args),
    /// Show the history of an image
    History(InspectArgs),
    /// Remove untagged images (with -a, every image no container uses)
    Prune {
        #[arg(short, long)]
        all: bool,
    },
}

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    #[arg(required = true)]
    pub images: Vec<String>,
}

pub fn run(a: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    match a.command {
        ImageCommand::Inspect(i) => inspect(i, ctx),
        ImageCommand::Ls(i) => images::run(i, ctx),
        ImageCommand::Rm(i) => rmi::run(i, ctx),
        ImageCommand::Tag(i) => tag::run(i, ctx),
        ImageCommand::History(i) => history(i, ctx),
        ImageCommand::Prune { all } => {
            for id in ctx.store()?.prune_images(all)? {
                println!("Deleted: {id}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn inspect(a: InspectArgs, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let store = ctx.store()?;
    let mut out = Vec::new();
    for r in &a.images {
        let img = store.image(r).with_context(|| format!("inspect {r}"))?;
        let config = store.config(&img)?;
        let mut v = images::image_json(&img);
        let extra = json!({
            "ManifestType": img.manifest_media_type,
            "Architecture": config["architecture"],
            "Os": config["os"],
            "Config": config["config"],
            "Author": config["author"],
            "RootFS": {"Type": "layers", "Layers": img.layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
            "GraphDriver": {"Name": "overlay", "Data": {
                "LowerDirs": store.lower_dirs(&img.id).map(|d| d.iter().map(|p| p.display().to_string()).collect::<Vec<_>>()).unwrap_or_default(),
            }},
            "History": config["history"],
        });
        if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
            m.extend(e);
        }
        out.push(v);
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}

fn history(a: InspectArgs, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let store = ctx.store()?;
    for r in &a.images {
        let img = store.image(r).with_context(|| format!("history of {r}"))?;
        let config = store.config(&img)?;
        println!("{:<30}  {:<40}  COMMENT", "CREATED", "CREATED BY");
        for h in config["history"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .rev()
        {
            println!(
                "{:<30}  {:<40}  {}",
                h["created"].as_str().unwrap_or("<missing>"),
                h["created_by"].as_str().unwrap_or(""),
                h["comment"].as_str().unwrap_or("")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
