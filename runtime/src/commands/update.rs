//! `update`: runc's flags (or a LinuxResources JSON) → a resources patch →
//! `cgroups::update::update_container`.

use std::io::Read;

use anyhow::{bail, Context, Result};
use berth_runtime::cgroups::update::update_container;
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Map, Value};

use super::Ctx;
use crate::cli::UpdateArgs;

pub fn run(a: UpdateArgs, ctx: &Ctx) -> Result<i32> {
    let patch = patch(&a)?;
    update_container(&ctx.root, &a.id, &patch)?;
    Ok(0)
}

/// The resources named by `--resources` and the flags (flags win).
pub fn patch(a: &UpdateArgs) -> Result<LinuxResources> {
    let mut v = match &a.resources {
        None => json!({}),
        Some(p) => {
            let mut text = String::new();
            if p.as_os_str() == "-" {
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("read resources from stdin")?;
            } else {
                text = std::fs::read_to_string(p)
                    .with_context(|| format!("read resources {}", p.display()))?;
            }
            serde_json::from_str(&text).context("resources are not LinuxResources JSON")?
        }
    };
    if a.kernel_memory.is_some() || a.kernel_memory_tcp.is_some() {
        berth_runtime::log::warn(
            "--kernel-memory and --kernel-memory-tcp are obsolete and ignored",
        );
    }
    let mut set = |section: &str, key: &str, val: Value| {
        let obj = v.as_object_mut().expect("object");
        let s = obj
            .entry(section)
            .or_insert_with(|| Value::Object(Map::new()));
        s[key] = val;
    };
    if let Some(m) = &a.memory {
        set("memory", "limit", json!(bytes(m)?));
    }
    if let Some(m) = &a.memory_reservation {
        set("memory", "reservation", json!(bytes(m)?));
    }
    if let Some(m) = &a.memory_swap {
        set("memory", "swap", json!(bytes(m)?));
    }
    let cpu: [(&str, Option<Value>); 7] = [
        ("shares", a.cpu_share.map(|x| json!(x))),
        ("quota", a.cpu_quota.map(|x| json!(x))),
        ("period", a.cpu_period.map(|x| json!(x))),
        ("realtimeRuntime", a.cpu_rt_runtime.map(|x| json!(x))),
        ("realtimePeriod", a.cpu_rt_period.map(|x| json!(x))),
        ("cpus", a.cpuset_cpus.as_ref().map(|x| json!(x))),
        ("mems", a.cpuset_mems.as_ref().map(|x| json!(x))),
    ];
    for (k, val) in cpu {
        if let Some(val) = val {
            set("cpu", k, val);
        }
    }
    if let Some(p) = a.pids_limit {
        set("pids", "limit", json!(p));
    }
    if let Some(w) = a.blkio_weight {
        set("blockIO", "weight", json!(w));
    }
    serde_json::from_value(v).context("resources are not LinuxResources JSON")
}

/// A byte count as docker's `RAMInBytes`: `1024`, `64m`, `1.5g`, `512KiB`, or `-1`.
pub fn bytes(s: &str) -> Result<i64> {
    let t = s.trim();
    if t == "-1" {
        return Ok(-1);
    }
    let lower = t.to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(digits_end);
    let n: f64 = num
        .parse()
        .with_context(|| format!("{s:?} is not a size (e.g. 1024, 64m, 1g)"))?;
    let mult: f64 = match unit.trim_end_matches("ib").trim_end_matches('b') {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => bail!("{s:?}: unknown size unit {unit:?}"),
    };
    let v = n * mult;
    if !v.is_finite() || v > i64::MAX as f64 {
        bail!("{s:?} is too large");
    }
    Ok(v as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_docker() {
        assert_eq!(bytes("1024").unwrap(), 1024);
        assert_eq!(bytes("64m").unwrap(), 64 << 20);
        assert_eq!(bytes("1G").unwrap(), 1 << 30);
        assert_eq!(bytes("512KiB").unwrap(), 512 << 10);
        assert_eq!(bytes("-1").unwrap(), -1);
        assert!(bytes("12x").is_err());
        assert!(bytes("-5").is_err());
    }

    #[test]
    fn flags_override_the_file() {
        let a = UpdateArgs {
            memory: Some("64m".into()),
            cpu_quota: Some(-1),
            pids_limit: Some(7),
            id: "c".into(),
            ..Default::default()
        };
        let r = serde_json::to_value(patch(&a).unwrap()).unwrap();
        assert_eq!(r["memory"]["limit"], 64 << 20);
        assert_eq!(r["cpu"]["quota"], -1);
        assert_eq!(r["pids"]["limit"], 7);
        assert!(r.get("blockIO").is_none());
    }
}
