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
    /// Filter: id=, name=, label=K or label=K=V, status= (repeated: labels
    /// must all match, other keys any; different keys must all match)
    #[arg(short, long = "filter", value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
    /// table, json or a {{.Field}} template
    #[arg(long, default_value = "table", value_parser = format::parse_format)]
    pub format: Format,
}

/// docker's `ps --filter` for the keys berth knows.
fn matches(
    filters: &[(String, String)],
    r: &berth_engine::ContainerRecord,
    s: &berth_engine::State,
) -> bool {
    let mut keys: Vec<&str> = filters.iter().map(|(k, _)| k.as_str()).collect();
    keys.dedup();
    let one = |k: &str, v: &String| match k {
        "id" => r.id.starts_with(v.as_str()),
        "name" => r.name.contains(v.as_str()),
        "status" => s.status.as_str() == v,
        "label" => match v.split_once('=') {
            Some((lk, lv)) => r.options.labels.get(lk).is_some_and(|x| x == lv),
            None => r.options.labels.contains_key(v.as_str()),
        },
        _ => false,
    };
    // As docker: labels must all match; other repeated keys match any.
    keys.iter().all(|key| {
        let mut same = filters.iter().filter(|(k, _)| k == key);
        if *key == "label" {
            same.all(|(k, v)| one(k, v))
        } else {
            same.any(|(k, v)| one(k, v))
        }
    })
}

pub fn run(a: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let mut filters = Vec::new();
    for f in &a.filter {
        match f.split_once('=') {
            Some((k @ ("id" | "name" | "label" | "status"), v)) => {
                filters.push((k.to_string(), v.to_string()))
            }
            _ => anyhow::bail!("invalid filter {f:?}: use id=, name=, label= or status="),
        }
    }
    filters.sort();
    let engine = ctx.engine()?;
    let rows: Vec<Value> = engine
        .list()?
        .into_iter()
        // A status filter looks at every container, as docker's does.
        .filter(|(_, s)| a.all || s.is_running() || filters.iter().any(|(k, _)| k == "status"))
        .filter(|(r, s)| matches(&filters, r, s))
        .map(|(r, s)| {
            let status = match s.status {
                berth_engine::Status::Running => "Up".to_string(),
                berth_engine::Status::Paused => "Up (Paused)".to_string(),
                berth_engine::Status::Created => "Created".to_string(),
                berth_engine::Status::Restarting => {
                    format!("Restarting ({})", s.exit_code.unwrap_or(255))
                }
                berth_engine::Status::Exited => format!("Exited ({})", s.exit_code.unwrap_or(255)),
            };
            json!({
                "Id": r.id, "Names": r.name, "Image": r.image, "Command": r.args.join(" "),
                "Created": r.created, "State": s.status.as_str(), "Status": status,
                "ExitCode": s.exit_code, "Pid": s.pid,
                "Labels": r.options.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
            })
        })
        .collect();
    if a.quiet {
        for r in &rows {
            println!("{}", &r["Id"].as_str().unwrap_or("")[..12]);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let s = format::str_of;
    format::print_rows(
        &a.format,
        &rows,
        &[
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "NAMES",
        ],
        |r| {
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
        },
    )?;
    Ok(ExitCode::SUCCESS)
}
