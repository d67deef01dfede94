//! `berth ps [-a] [-q] [--format table|json|TEMPLATE]`

use std::process::ExitCode;

use serde_json::{json, Value};

use super::format::{self, Format};
use super::Ctx;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Show all containers (default: running only)
    #[arg(short, long)]
    pub all: bool,
    /// Only ids
    #[arg(short, long)]
    pub quiet: bool,
    /// table, json or a {{.Field}} template
    #[arg(long, default_value = "table", value_parser = format::parse_format)]
    pub format: Format,
}

pub fn run(a: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let engine = ctx.engine()?;
    let rows: Vec<Value> = engine
        .list()?
        .into_iter()
        .filter(|(_, s)| a.all || s.is_running())
        .map(|(r, s)| {
            let status = match s.status {
                berth_engine::Status::Running => "Up".to_string(),
                berth_engine::Status::Paused => "Up (Paused)".to_string(),
                berth_engine::Status::Created => "Created".to_string(),
                berth_engine::Status::Exited => format!("Exited ({})", s.exit_code.unwrap_or(255)),
            };
            json!({
                "Id": r.id, "Names": r.name, "Image": r.image, "Command": r.args.join(" "),
                "Created": r.created, "State": s.status.as_str(), "Status": status,
                "ExitCode": s.exit_code, "Pid": s.pid,
            })
        })
        .collect();
    if a.quiet {
        for r in &rows {
            println!("{}", &r["Id"].as_str().unwrap_or("")[..12]);
        }
        return Ok(ExitCode::SUCCESS);
    }
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        Format::Template(t) => rows
            .iter()
            .for_each(|r| println!("{}", format::render(&t, r))),
        Format::Table => {
            let s = |v: &Value| v.as_str().unwrap_or("").to_string();
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let mut cmd = s(&r["Command"]);
                    if cmd.len() > 30 {
                        cmd.truncate(27);
                        cmd.push_str("...");
                    }
                    vec![
                        s(&r["Id"])[..12].to_string(),
                        s(&r["Image"]),
                        format!("\"{cmd}\""),
                        format::human_age(r["Created"].as_i64().unwrap_or(0)),
                        s(&r["Status"]),
                        s(&r["Names"]),
                    ]
                })
                .collect();
            format::table(
                &[
                    "CONTAINER ID",
                    "IMAGE",
                    "COMMAND",
                    "CREATED",
                    "STATUS",
                    "NAMES",
                ],
                &cells,
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
