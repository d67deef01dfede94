//! `berth stats [--no-stream] [--format table|json] [CONTAINER...]`: CPU,
//! memory and pids of running containers (all of them by default), from the
//! runtime's cgroup stats; streams a new table every second unless
//! `--no-stream`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use super::format::{self, Format};
use super::Ctx;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// One sample, then exit
    #[arg(long)]
    pub no_stream: bool,
    /// table, json or a {{.Field}} template
    #[arg(long, default_value = "table", value_parser = format::parse_format)]
    pub format: Format,
    pub containers: Vec<String>,
}

fn mib(b: u64) -> String {
    format!("{:.1}MiB", b as f64 / (1 << 20) as f64)
}

pub fn run(a: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let engine = ctx.engine()?;
    loop {
        let keys: Vec<String> = if a.containers.is_empty() {
            engine
                .list()?
                .into_iter()
                .filter(|(_, s)| s.is_running())
                .map(|(r, _)| r.id)
                .collect()
        } else {
            a.containers.clone()
        };
        let mut rows = Vec::new();
        for k in &keys {
            let s = engine
                .stats(k, Duration::from_millis(250))
                .with_context(|| format!("stats {k}"))?;
            rows.push(serde_json::json!({
                "ID": &s.id[..12], "Name": s.name, "CPUPerc": format!("{:.2}%", s.cpu_percent),
                "MemUsage": format!("{} / {}", mib(s.memory_usage), mib(s.memory_limit)),
                "MemUsageBytes": s.memory_usage, "MemLimitBytes": s.memory_limit, "PIDs": s.pids,
            }));
        }
        let s = format::str_of;
        format::print_rows(
            &a.format,
            &rows,
            &["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "PIDS"],
            |r| {
                vec![
                    s(&r["ID"]),
                    s(&r["Name"]),
                    s(&r["CPUPerc"]),
                    s(&r["MemUsage"]),
                    r["PIDs"].to_string(),
                ]
            },
        )?;
        if a.no_stream {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_millis(750));
    }
}
