//! `berth logs [-f] [--tail N] [-t] [--since WHEN] CONTAINER`

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_engine::{LogFollower, LogLine};

use super::Ctx;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Keep following the output until the container exits
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
    /// Show each line's time
    #[arg(short, long)]
    pub timestamps: bool,
    /// Only lines since a time: RFC 3339, Unix seconds, or a duration ago (10s, 5m, 2h)
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    pub container: String,
}

/// `--since` as an RFC 3339 UTC string with nanoseconds, the form log
/// records carry, so records compare as strings.
fn since(s: &str) -> anyhow::Result<String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
    let secs = if let Some(t) = berth_storage::parse_rfc3339(s) {
        t
    } else if let Ok(n) = s.parse::<i64>() {
        n
    } else {
        let (num, unit) = s.split_at(s.trim_end_matches(char::is_alphabetic).len());
        let n: i64 = num.parse().map_err(|_| {
            anyhow::anyhow!("--since {s:?}: use RFC 3339, Unix seconds or a duration like 10m")
        })?;
        let mult = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            _ => anyhow::bail!("--since {s:?}: a duration's unit is s, m or h"),
        };
        now - n * mult
    };
    let t = UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64);
    Ok(berth_engine::monitor::time::rfc3339_nanos(t))
}

fn show(lines: Vec<LogLine>, a: &Args, from: &Option<String>) {
    let mut lines: Vec<LogLine> = lines
        .into_iter()
        .filter(|l| from.as_ref().is_none_or(|f| l.time.as_str() >= f.as_str()))
        .collect();
    if a.timestamps {
        for l in &mut lines {
            l.log = format!("{} {}", l.time, l.log);
        }
    }
    super::run::print_lines(&lines);
}

pub fn run(a: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let from = a.since.as_deref().map(since).transpose()?;
    let engine = ctx.engine()?;
    let rec = engine.find(&a.container)?;
    let mut f = LogFollower::open(&rec.log_path)?;
    let first = match a.tail {
        Some(n) => f.skip_to_tail(n)?,
        None => f.poll()?,
    };
    show(first, &a, &from);
    if a.follow {
        loop {
            let running = engine.state(&rec).is_running();
            show(f.poll()?, &a, &from);
            if !running {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(ExitCode::SUCCESS)
}
