//! config-linux.md control groups: cgroupsPath, resources written to the
//! container's cgroup (read back from the host, v1 or v2), limits that are
//! enforced, the device allowlist, and removal on delete.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};

use super::{cases, check_eq, expect_ok};
use crate::bundle::Bundle;
use crate::case::{skip, Case, Ctx};

pub fn cases() -> Vec<Case> {
    cases![
        "cgroups.path_honored" => path_honored,
        "cgroups.removed_on_delete" => removed_on_delete,
        "cgroups.memory_limit" => |c| value(c, json!({"memory": {"limit": 67108864}}), "memory", ("memory.limit_in_bytes", "memory.max"), "67108864"),
        "cgroups.memory_reservation" => |c| value(c, json!({"memory": {"reservation": 33554432}}), "memory", ("memory.soft_limit_in_bytes", "memory.low"), "33554432"),
        "cgroups.memory_swap" => memory_swap,
        "cgroups.memory_limit_enforced" => memory_enforced,
        "cgroups.pids_limit" => |c| value(c, json!({"pids": {"limit": 42}}), "pids", ("pids.max", "pids.max"), "42"),
        "cgroups.pids_limit_enforced" => pids_enforced,
        "cgroups.cpu_shares" => |c| v1_only(c, json!({"cpu": {"shares": 512}}), "cpu", "cpu.shares", "512"),
        "cgroups.cpu_quota" => |c| v1_only(c, json!({"cpu": {"quota": 50000, "period": 100000}}), "cpu", "cpu.cfs_quota_us", "50000"),
        "cgroups.cpu_period" => |c| v1_only(c, json!({"cpu": {"quota": 50000, "period": 200000}}), "cpu", "cpu.cfs_period_us", "200000"),
        "cgroups.cpuset_cpus" => |c| value(c, json!({"cpu": {"cpus": "0"}}), "cpuset", ("cpuset.cpus", "cpuset.cpus"), "0"),
        "cgroups.cpuset_mems" => |c| value(c, json!({"cpu": {"mems": "0"}}), "cpuset", ("cpuset.mems", "cpuset.mems"), "0"),
        "cgroups.blkio_weight" => blkio_weight,
        "cgroups.devices_deny" => devices_deny,
        "cgroups.devices_allow" => devices_allow,
        "cgroups.unified" => unified,
    ]
}

const CG: &str = "/sys/fs/cgroup";

/// The cgroup directory of `pid` for `controller`: the v1 hierarchy when
/// the controller is mounted there, else the unified one.
fn cgroup_dir(pid: i32, controller: &str) -> Result<(PathBuf, bool)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
    for l in text.lines() {
        let mut parts = l.splitn(3, ':');
        let (_, ctrls, path) = (
            parts.next(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        if ctrls.split(',').any(|c| c == controller) {
            let dir = Path::new(CG)
                .join(controller)
                .join(path.trim_start_matches('/'));
            if dir.exists() {
                return Ok((dir, true));
            }
        }
    }
    if let Some(l) = text.lines().find(|l| l.starts_with("0::")) {
        if Path::new(CG).join("cgroup.controllers").exists() {
            return Ok((Path::new(CG).join(l[3..].trim_start_matches('/')), false));
        }
    }
    Err(skip(format!("host has no {controller} cgroup controller")))
}

/// Create a sleeping container with `resources`; call `f` with it.
fn with_created<T>(
    ctx: &Ctx,
    resources: Value,
    f: impl FnOnce(&crate::runtime::Container, &Bundle) -> Result<T>,
) -> Result<T> {
    let mut b = ctx.bundle()?;
    if let (Some(dst), Some(src)) = (
        b.config["linux"]["resources"].as_object_mut(),
        resources.as_object(),
    ) {
        dst.extend(src.clone());
    }
    b.script("sleep 1000");
    b.save()?;
    let c = ctx.container(&b);
    c.create_ok()?;
    f(&c, &b)
}

fn read_cg(pid: i32, controller: &str, files: (&str, &str)) -> Result<String> {
    let (dir, v1) = cgroup_dir(pid, controller)?;
    let f = dir.join(if v1 { files.0 } else { files.1 });
    Ok(std::fs::read_to_string(&f)
        .with_context(|| format!("read {}", f.display()))?
        .trim()
        .to_string())
}

fn value(ctx: &Ctx, res: Value, controller: &str, files: (&str, &str), want: &str) -> Result<()> {
    let got = with_created(ctx, res, |c, _| read_cg(c.pid()?, controller, files))?;
    check_eq(files.0, got.as_str(), want)
}

fn v1_only(ctx: &Ctx, res: Value, controller: &str, file: &str, want: &str) -> Result<()> {
    if !Path::new(CG).join(controller).join(file).exists() {
        return Err(skip(format!("host has no cgroup v1 {file}")));
    }
    value(ctx, res, controller, (file, file), want)
}

fn path_honored(ctx: &Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    // Named after the container, so a leftover is swept up like a default one.
    let c = ctx.container(&b);
    let want = format!("/{}", c.id);
    b.config["linux"]["cgroupsPath"] = json!(want);
    b.script("sleep 1000");
    b.save()?;
    c.create_ok()?;
    let text = std::fs::read_to_string(format!("/proc/{}/cgroup", c.pid()?))?;
    let line = text
        .lines()
        .find(|l| l.contains(":pids:") || l.starts_with("0::"))
        .context("no pids cgroup line")?;
    check_eq(
        "cgroup path of the container",
        &line.rsplit(':').next(),
        &Some(want.as_str()),
    )
}

fn removed_on_delete(ctx: &Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    let c = ctx.container(&b);
    b.config["linux"]["cgroupsPath"] = json!(format!("/{}", c.id));
    b.script("sleep 1000");
    b.save()?;
    c.create_ok()?;
    let (dir, _) = cgroup_dir(c.pid()?, "pids")?;
    ensure!(
        dir.exists(),
        "{} missing while the container exists",
        dir.display()
    );
    expect_ok("kill", c.kill(Some("KILL"))?)?;
    c.wait_status("stopped")?;
    expect_ok("delete", c.delete(false)?)?;
    ensure!(!dir.exists(), "{} still exists after delete", dir.display());
    Ok(())
}

fn memory_swap(ctx: &Ctx) -> Result<()> {
    let probe = Path::new(CG).join("memory/memory.memsw.limit_in_bytes");
    if !probe.exists() && !Path::new(CG).join("cgroup.controllers").exists() {
        return Err(skip("host has no swap accounting (memory.memsw.*)"));
    }
    let res = json!({"memory": {"limit": 67108864, "swap": 134217728}});
    let got = with_created(ctx, res, |c, _| {
        read_cg(
            c.pid()?,
            "memory",
            ("memory.memsw.limit_in_bytes", "memory.swap.max"),
        )
    })?;
    // v2 counts swap alone: swap.max = swap - limit.
    ensure!(got == "134217728" || got == "67108864", "swap limit {got}");
    Ok(())
}

fn swap_on() -> bool {
    std::fs::read_to_string("/proc/swaps")
        .map(|s| s.lines().count() > 1)
        .unwrap_or(false)
}

fn memory_enforced(ctx: &Ctx) -> Result<()> {
    if swap_on() {
        return Err(skip("host has swap on: a memory limit need not kill"));
    }
    let mut b = ctx.bundle()?;
    b.config["linux"]["resources"]["memory"] = json!({ "limit": 16777216 });
    b.probe(&["alloc", "64"]);
    let out = ctx.run(&mut b)?;
    ensure!(
        !out.success() && !out.stdout.contains("\"ok\":true"),
        "allocating 64 MiB under a 16 MiB limit succeeded: {}",
        out.describe()
    );
    Ok(())
}

fn pids_enforced(ctx: &Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.config["linux"]["resources"]["pids"] = json!({ "limit": 8 });
    let v = ctx.probe(&mut b, &["spawn", "20"])?;
    let started = v["started"].as_u64().context("probe gave no count")?;
    ensure!(
        started < 20,
        "started {started} processes under pids.limit 8"
    );
    Ok(())
}

fn blkio_weight(ctx: &Ctx) -> Result<()> {
    if !Path::new(CG).join("blkio/blkio.weight").exists()
        && !Path::new(CG).join("blkio/blkio.bfq.weight").exists()
    {
        return Err(skip(
            "host blkio controller has no weight file (no CFQ/BFQ)",
        ));
    }
    let file = if Path::new(CG).join("blkio/blkio.weight").exists() {
        "blkio.weight"
    } else {
        "blkio.bfq.weight"
    };
    let got = with_created(ctx, json!({"blockIO": {"weight": 300}}), |c, _| {
        read_cg(c.pid()?, "blkio", (file, "io.weight"))
    })?;
    ensure!(got.contains("300"), "{file} {got:?}");
    Ok(())
}

const EPERM: i32 = nix::errno::Errno::EPERM as i32;

/// Open a char device 240:0 (no driver: ENXIO when the cgroup lets it
/// through, EPERM when it does not).
fn open_dev240(ctx: &Ctx, allow: bool) -> Result<Value> {
    let mut b = ctx.bundle()?;
    b.config["linux"]["devices"] = json!([{ "path": "/dev/berth-240", "type": "c", "major": 240, "minor": 0, "fileMode": 0o666 }]);
    if allow {
        b.config["linux"]["resources"]["devices"]
            .as_array_mut()
            .context("devices")?
            .push(json!({ "allow": true, "type": "c", "major": 240, "minor": 0, "access": "rw" }));
    }
    ctx.probe(&mut b, &["open", "/dev/berth-240", "r"])
}

fn devices_deny(ctx: &Ctx) -> Result<()> {
    let v = open_dev240(ctx, false)?;
    check_eq(
        "open of a device the cgroup denies",
        &v,
        &json!({ "ok": false, "errno": EPERM }),
    )
}

fn devices_allow(ctx: &Ctx) -> Result<()> {
    let v = open_dev240(ctx, true)?;
    if v["errno"] == json!(EPERM) {
        bail!("open of an allowed device was refused: {v}");
    }
    Ok(())
}

fn unified(ctx: &Ctx) -> Result<()> {
    if !Path::new(CG).join("cgroup.controllers").exists() {
        return Err(skip("host is not on the cgroup v2 unified hierarchy"));
    }
    let got = with_created(ctx, json!({"unified": {"pids.max": "17"}}), |c, _| {
        read_cg(c.pid()?, "pids", ("pids.max", "pids.max"))
    })?;
    check_eq("pids.max set through unified", got.as_str(), "17")
}
