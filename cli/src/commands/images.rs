//! `berth images [--format table|json|TEMPLATE] [-q]`

use std::process::ExitCode;

use berth_storage::ImageRecord;
use serde_json::{json, Value};

use super::format::{self, Format};
use super::Ctx;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output format: table, json or a {{.Field}} template
    #[arg(long, default_value = "table", value_parser = format::parse_format)]
    pub format: Format,
    /// Print only image ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Show full ids
    #[arg(long)]
    pub no_trunc: bool,
}

/// The JSON object `images --format json` prints per image.
pub fn image_json(i: &ImageRecord) -> Value {
    let hex = i.id.trim_start_matches("sha256:");
    json!({
        "Id": hex,
        "RepoTags": i.tags,
        "RepoDigests": i.tags.iter().map(|t| format!("{}@{}", repo_of(t), i.manifest_digest)).collect::<Vec<_>>(),
        "Digest": i.manifest_digest,
        "Size": i.size,
        "Created": i.created,
        "CreatedAt": berth_storage::rfc3339(i.created),
        "Layers": i.layers.len(),
    })
}

pub fn repo_of(tag: &str) -> &str {
    match tag.rfind(':') {
        Some(c) if !tag[c..].contains('/') => &tag[..c],
        _ => tag,
    }
}

pub fn run(a: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let images = ctx.store()?.images()?;
    let short = |id: &str| {
        let hex = id.trim_start_matches("sha256:");
        if a.no_trunc {
            hex.to_string()
        } else {
            hex[..12.min(hex.len())].to_string()
        }
    };
    if a.quiet {
        for i in &images {
            println!("{}", short(&i.id));
        }
        return Ok(ExitCode::SUCCESS);
    }
    match &a.format {
        Format::Json => {
            let v: Vec<Value> = images.iter().map(image_json).collect();
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Format::Template(t) => {
            for i in &images {
                println!("{}", format::render(t, &image_json(i)));
            }
        }
        Format::Table => {
            let mut rows = Vec::new();
            for i in &images {
                let names: Vec<(String, String)> = if i.tags.is_empty() {
                    vec![("<none>".into(), "<none>".into())]
                } else {
                    i.tags
                        .iter()
                        .map(|t| {
                            (
                                repo_of(t).to_string(),
                                t[repo_of(t).len()..].trim_start_matches(':').to_string(),
                            )
                        })
                        .collect()
                };
                for (repo, tag) in names {
                    rows.push(vec![
                        repo,
                        tag,
                        short(&i.id),
                        format::human_age(i.created),
                        format::human_size(i.size),
                    ]);
                }
            }
            format::table(&["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], &rows);
        }
    }
    Ok(ExitCode::SUCCESS)
}
