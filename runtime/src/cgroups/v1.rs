//! Resource writes for cgroup v1 hierarchies (also used on hybrid hosts),
//! following runc's fs driver: file names, write order and the
//! memory/swap ordering that keeps the kernel's `limit <= memsw` invariant.

use std::fs;
use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::{devices, read, write, Apply, Cgroup};
use crate::error::{Error, Result};

pub(super) fn apply(cg: &Cgroup, r: &LinuxResources, how: Apply) -> Result<()> {
    if let (Some(m), Some(d)) = (r.memory(), cg.dir_for("memory")) {
        memory(d, m, how.live)?;
    }
    if let Some(c) = r.cpu() {
        if let Some(d) = cg.dir_for("cpu") {
            cpu(d, c)?;
        }
        if let Some(d) = cg.dir_for("cpuset") {
            if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
                write(d, "cpuset.cpus", cpus)?;
            }
            if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
                write(d, "cpuset.mems", mems)?;
            }
        }
    }
    if let (Some(p), Some(d)) = (r.pids(), cg.dir_for("pids")) {
        if p.limit() != 0 {
            write(d, "pids.max", &pids_value(p.limit()))?;
        }
    }
    if let (Some(b), Some(d)) = (r.block_io(), cg.dir_for("blkio")) {
        blkio(d, b)?;
    }
    if let Some(d) = cg.dir_for("hugetlb") {
        for h in r.hugepage_limits().iter().flatten() {
            write(
                d,
                &format!("hugetlb.{}.limit_in_bytes", h.page_size()),
                &h.limit().to_string(),
            )?;
        }
    }
    if let Some(n) = r.network() {
        if let (Some(id), Some(d)) = (n.class_id(), cg.dir_for("net_cls")) {
            write(d, "net_cls.classid", &id.to_string())?;
        }
        if let Some(d) = cg.dir_for("net_prio") {
            for p in n.priorities().iter().flatten() {
                write(
                    d,
                    "net_prio.ifpriomap",
                    &format!("{} {}", p.name(), p.priority()),
                )?;
            }
        }
    }
    if let (Some(rdma), Some(d)) = (r.rdma(), cg.dir_for("rdma")) {
        for (dev, l) in rdma {
            write(d, "rdma.max", &super::v2::rdma_line(dev, l))?;
        }
    }
    if how.devices {
        if let (Some(rules), Some(d)) = (r.devices(), cg.dir_for("devices")) {
            devices::apply_v1(d, rules, how.live)?;
        }
    }
    Ok(())
}

pub(super) fn pids_value(limit: i64) -> String {
    if limit > 0 {
        limit.to_string()
    } else {
        "max".into()
    }
}

fn memory(d: &Path, m: &LinuxMemory, check_before_update: bool) -> Result<()> {
    let limit = m.limit().filter(|l| *l != 0);
    let mut swap = m.swap().filter(|s| *s != 0);
    let has_swap = d.join("memory.memsw.limit_in_bytes").exists();
    // Unlimited memory with no explicit swap means unlimited swap too.
    if limit == Some(-1) && swap.is_none() && has_swap {
        swap = Some(-1);
    }
    if let Some(l) = limit.filter(|l| *l > 0) {
        if check_before_update && m.check_before_update() == Some(true) {
            let usage: u64 = read(d, "memory.usage_in_bytes")?.parse().unwrap_or(0);
            if (l as u64) < usage {
                return Err(Error::Cgroup {
                    path: d.display().to_string(),
                    msg: format!(
                        "memory limit {l} is below the current usage {usage} (checkBeforeUpdate)"
                    ),
                });
            }
        }
    }
    match (limit, swap) {
        (Some(l), Some(s)) => {
            let cur: u64 = read(d, "memory.limit_in_bytes")?
                .parse()
                .unwrap_or(u64::MAX);
            // Raising: swap (memory+swap) first; lowering: memory first.
            if s == -1 || cur < s as u64 {
                write(d, "memory.memsw.limit_in_bytes", &s.to_string())?;
                write(d, "memory.limit_in_bytes", &l.to_string())?;
            } else {
                write(d, "memory.limit_in_bytes", &l.to_string())?;
                write(d, "memory.memsw.limit_in_bytes", &s.to_string())?;
            }
        }
        (Some(l), None) => write(d, "memory.limit_in_bytes", &l.to_string())?,
        (None, Some(s)) => write(d, "memory.memsw.limit_in_bytes", &s.to_string())?,
        (None, None) => {}
    }
    if let Some(r) = m.reservation().filter(|r| *r != 0) {
        write(d, "memory.soft_limit_in_bytes", &r.to_string())?;
    }
    if let Some(s) = m.swappiness() {
        write(d, "memory.swappiness", &s.to_string())?;
    }
    if m.disable_oom_killer() == Some(true) {
        write(d, "memory.oom_control", "1")?;
    }
    if m.kernel().is_some() || m.kernel_tcp().is_some() {
        crate::log::warn(
            "linux.resources.memory.kernel and kernelTCP are ignored (deprecated in the kernel)",
        );
    }
    Ok(())
}

fn cpu(d: &Path, c: &LinuxCpu) -> Result<()> {
    // Realtime bandwidth first (runc does the same): moving an RT task in
    // fails without it.
    if let Some(p) = c.realtime_period().filter(|p| *p != 0) {
        write(d, "cpu.rt_period_us", &p.to_string())?;
    }
    if let Some(r) = c.realtime_runtime().filter(|r| *r != 0) {
        write(d, "cpu.rt_runtime_us", &r.to_string())?;
    }
    if let Some(s) = c.shares().filter(|s| *s != 0) {
        write(d, "cpu.shares", &s.to_string())?;
        let got = read(d, "cpu.shares")?;
        if got != s.to_string() {
            return Err(Error::Cgroup {
                path: d.join("cpu.shares").display().to_string(),
                msg: format!("cpu shares {s} out of range: the kernel set {got}"),
            });
        }
    }
    if let Some(p) = c.period().filter(|p| *p != 0) {
        write(d, "cpu.cfs_period_us", &p.to_string())?;
    }
    if let Some(q) = c.quota().filter(|q| *q != 0) {
        write(d, "cpu.cfs_quota_us", &q.to_string())?;
    }
    if let Some(b) = c.burst() {
        write(d, "cpu.cfs_burst_us", &b.to_string())?;
    }
    if let Some(i) = c.idle() {
        write(d, "cpu.idle", &i.to_string())?;
    }
    Ok(())
}

fn blkio(d: &Path, b: &LinuxBlockIo) -> Result<()> {
    // CFQ's blkio.weight is gone from current kernels; BFQ has its own.
    let weight_file = if d.join("blkio.weight").exists() {
        "blkio.weight"
    } else {
        "blkio.bfq.weight"
    };
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        write(d, weight_file, &w.to_string())?;
    }
    if let Some(w) = b.leaf_weight().filter(|w| *w != 0) {
        write(d, "blkio.leaf_weight", &w.to_string())?;
    }
    for wd in b.weight_device().iter().flatten() {
        if let Some(w) = wd.weight() {
            let file = if weight_file == "blkio.weight" {
                "blkio.weight_device"
            } else {
                "blkio.bfq.weight"
            };
            write(d, file, &format!("{}:{} {w}", wd.major(), wd.minor()))?;
        }
        if let Some(w) = wd.leaf_weight() {
            write(
                d,
                "blkio.leaf_weight_device",
                &format!("{}:{} {w}", wd.major(), wd.minor()),
            )?;
        }
    }
    let throttles = [
        (
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
        ),
        (
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
        ),
        (
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
        ),
        (
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
        ),
    ];
    for (file, list) in throttles {
        for t in list.iter().flatten() {
            write(
                d,
                file,
                &format!("{}:{} {}", t.major(), t.minor(), t.rate()),
            )?;
        }
    }
    Ok(())
}

pub(super) fn set_frozen(d: &Path, frozen: bool) -> Result<()> {
    let want = if frozen { "FROZEN" } else { "THAWED" };
    for _ in 0..1000 {
        write(d, "freezer.state", want)?;
        let now = fs::read_to_string(d.join("freezer.state")).unwrap_or_default();
        if now.trim() == want {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    if frozen {
        // Leave it thawed rather than half-frozen.
        let _ = write(d, "freezer.state", "THAWED");
    }
    Err(Error::Cgroup {
        path: d.display().to_string(),
        msg: format!("did not become {want}"),
    })
}
