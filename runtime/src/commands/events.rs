//! `events [--stats] [--interval D] ID`: runc's JSON events on stdout, one
//! per line: `stats` every interval (once with `--stats`) and `oom` when the
//! container runs out of memory (a process is OOM-killed, or with the OOM
//! killer disabled, its tasks start waiting). Ends when the container stops
//! or is deleted.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use berth_runtime::cgroups::{self, stats};
use berth_runtime::container;
use berth_runtime::state::Status;

use super::Ctx;
use crate::cli::EventsArgs;

/// How often the OOM counter and the container's liveness are checked.
const POLL: Duration = Duration::from_millis(100);

pub fn run(a: EventsArgs, ctx: &Ctx) -> Result<i32> {
    let interval = go_duration(&a.interval)?;
    let st = container::state(&ctx.root, &a.id)?;
    if st.status == Status::Stopped {
        bail!("container with id {} is not running", a.id);
    }
    let Some(cg) = st.cgroup_path.as_deref().map(cgroups::from_saved) else {
        bail!("container {} has no cgroup", a.id);
    };
    let mut out = std::io::stdout().lock();
    let mut emit = |typ: &'static str, data: Option<stats::Stats>| -> Result<()> {
        let ev = stats::Event {
            typ,
            id: &a.id,
            data,
        };
        serde_json::to_writer(&mut out, &ev)?;
        out.write_all(b"\n")?;
        out.flush().context("write event")
    };
    if a.stats {
        emit("stats", Some(stats::collect(&cg)))?;
        return Ok(0);
    }
    let mut ooms = cg.oom_count().unwrap_or(0);
    let mut next = Instant::now() + interval;
    loop {
        std::thread::sleep(POLL.min(next.saturating_duration_since(Instant::now())));
        match container::state(&ctx.root, &a.id) {
            Ok(s) if s.status != Status::Stopped => {}
            _ => return Ok(0),
        }
        let now = cg.oom_count().unwrap_or(ooms);
        for _ in ooms..now {
            emit("oom", None)?;
        }
        ooms = now;
        if Instant::now() >= next {
            emit("stats", Some(stats::collect(&cg)))?;
            next += interval;
        }
    }
}

/// A Go duration (`5s`, `500ms`, `1m30s`, `2h`, `1.5s`).
pub fn go_duration(s: &str) -> Result<Duration> {
    let mut total = 0f64;
    let mut rest = s.trim();
    if rest.is_empty() {
        bail!("empty duration");
    }
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..n_end]
            .parse()
            .with_context(|| format!("invalid duration {s:?}"))?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..u_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            u => bail!("invalid duration {s:?}: unknown unit {u:?}"),
        };
        total += n * scale;
        rest = &rest[u_end..];
    }
    if total <= 0.0 {
        bail!("duration {s:?} must be positive");
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(go_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(go_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert!(go_duration("5").is_err());
        assert!(go_duration("0s").is_err());
    }
}
