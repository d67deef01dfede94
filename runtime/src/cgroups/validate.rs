//! Checks on `linux.resources`, run before any process or cgroup exists:
//! value ranges (the kernel's own limits where it has them), and that the
//! controller — and for optional features the file — is there on this host.
//! A config that passes can still be refused by the kernel at write time
//! (e.g. a limit below current usage); that path rolls the container back.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::{devices, Cgroup};
use crate::error::{Error, Result};

fn bad<T>(msg: String) -> Result<T> {
    Err(Error::InvalidConfig(format!("linux.resources.{msg}")))
}

/// Check `r` against the host the cgroup `cg` would be created on.
pub fn validate(cg: &Cgroup, r: &LinuxResources) -> Result<()> {
    let need = |ctrl: &str, what: &str| -> Result<()> {
        if cg.hierarchy_root(ctrl).is_none() {
            return bad(format!(
                "{what}: the {ctrl} cgroup controller is not available on this host"
            ));
        }
        Ok(())
    };
    if let Some(m) = r.memory() {
        memory(cg, m, &need)?;
    }
    if let Some(c) = r.cpu() {
        cpu(cg, c, &need)?;
    }
    if let Some(p) = r.pids() {
        if p.limit() != 0 {
            need("pids", "pids.limit")?;
        }
    }
    if let Some(b) = r.block_io() {
        blkio(cg, b, &need)?;
    }
    hugetlb(r, &need)?;
    if let Some(n) = r.network() {
        if n.class_id().is_some() {
            if cg.is_v2() {
                return bad("network.classID: net_cls does not exist on cgroup v2".into());
            }
            need("net_cls", "network.classID")?;
        }
        if n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
            if cg.is_v2() {
                return bad("network.priorities: net_prio does not exist on cgroup v2".into());
            }
            need("net_prio", "network.priorities")?;
        }
    }
    if r.rdma().as_ref().is_some_and(|m| !m.is_empty()) {
        need("rdma", "rdma")?;
    }
    unified(cg, r)?;
    let rules = r.devices().as_deref().unwrap_or_default();
    for (i, d) in rules.iter().enumerate() {
        devices::validate_rule(i, d)?;
    }
    if !rules.is_empty() && !cg.is_v2() {
        // v2 has no devices controller: an eBPF program does the job.
        need("devices", "devices")?;
    }
    Ok(())
}

type Need<'a> = &'a dyn Fn(&str, &str) -> Result<()>;

fn has_file(cg: &Cgroup, ctrl: &str, file: &str) -> bool {
    cg.hierarchy_root(ctrl)
        .is_some_and(|r| r.join(file).exists())
}

fn memory(cg: &Cgroup, m: &LinuxMemory, need: Need<'_>) -> Result<()> {
    for (name, v) in [
        ("limit", m.limit()),
        ("reservation", m.reservation()),
        ("swap", m.swap()),
    ] {
        match v {
            None | Some(0) => {}
            Some(v) if v < -1 => {
                return bad(format!(
                    "memory.{name} {v} is invalid: use -1 (unlimited) or a byte count"
                ))
            }
            Some(_) => need("memory", &format!("memory.{name}"))?,
        }
    }
    let (limit, swap) = (m.limit().unwrap_or(0), m.swap().unwrap_or(0));
    if swap > 0 {
        if limit > 0 && swap < limit {
            return bad(format!(
                "memory.swap {swap} (memory+swap) must be at least memory.limit {limit}"
            ));
        }
        if !cg.is_v2() && !has_file(cg, "memory", "memory.memsw.limit_in_bytes") {
            return bad("memory.swap: swap accounting is not enabled in this kernel".into());
        }
    }
    if cg.is_v2() {
        super::v2::swap_max(m.limit(), m.swap())
            .or_else(|msg| bad(format!("memory.swap: {msg}")))?;
    }
    if let Some(s) = m.swappiness() {
        if s > 100 {
            return bad(format!("memory.swappiness {s} is over the maximum 100"));
        }
        need("memory", "memory.swappiness")?;
    }
    if m.disable_oom_killer() == Some(true) {
        need("memory", "memory.disableOOMKiller")?;
    }
    Ok(())
}

fn cpu(cg: &Cgroup, c: &LinuxCpu, need: Need<'_>) -> Result<()> {
    if let Some(s) = c.shares().filter(|s| *s != 0) {
        if !(2..=262_144).contains(&s) {
            return bad(format!(
                "cpu.shares {s} is out of the kernel's range [2, 262144]"
            ));
        }
        need("cpu", "cpu.shares")?;
    }
    if let Some(q) = c.quota().filter(|q| *q != 0) {
        if q != -1 && !(1000..=i64::MAX / 1000).contains(&q) {
            return bad(format!(
                "cpu.quota {q} is invalid: use -1 (unlimited) or at least 1000 (µs)"
            ));
        }
        need("cpu", "cpu.quota")?;
    }
    if let Some(p) = c.period().filter(|p| *p != 0) {
        if !(1000..=1_000_000).contains(&p) {
            return bad(format!(
                "cpu.period {p} is out of the kernel's range [1000, 1000000] (µs)"
            ));
        }
        need("cpu", "cpu.period")?;
    }
    if let Some(b) = c.burst() {
        let file = if cg.is_v2() {
            "cpu.max.burst"
        } else {
            "cpu.cfs_burst_us"
        };
        need("cpu", "cpu.burst")?;
        if !cg.is_v2() && !has_file(cg, "cpu", file) {
            return bad(format!("cpu.burst {b}: this kernel has no {file}"));
        }
    }
    if let Some(i) = c.idle() {
        if !(0..=1).contains(&i) {
            return bad(format!("cpu.idle {i} must be 0 or 1"));
        }
        need("cpu", "cpu.idle")?;
        if !cg.is_v2() && !has_file(cg, "cpu", "cpu.idle") {
            return bad("cpu.idle: this kernel has no cpu.idle".into());
        }
    }
    realtime(cg, c)?;
    for (name, v) in [("cpus", c.cpus()), ("mems", c.mems())] {
        if let Some(list) = v.as_deref().filter(|s| !s.is_empty()) {
            need("cpuset", &format!("cpu.{name}"))?;
            cpuset_list(cg, name, list)?;
        }
    }
    Ok(())
}

fn realtime(cg: &Cgroup, c: &LinuxCpu) -> Result<()> {
    let runtime = c.realtime_runtime().unwrap_or(0);
    let period = c.realtime_period().unwrap_or(0);
    if runtime == 0 && period == 0 {
        return Ok(());
    }
    if cg.is_v2() {
        return bad("cpu.realtimeRuntime/realtimePeriod: realtime group scheduling does not exist on cgroup v2".into());
    }
    if !has_file(cg, "cpu", "cpu.rt_runtime_us") {
        return bad("cpu.realtimeRuntime: this kernel has no realtime group scheduling (CONFIG_RT_GROUP_SCHED)".into());
    }
    if runtime < -1 {
        return bad(format!(
            "cpu.realtimeRuntime {runtime} is invalid: use -1 or microseconds"
        ));
    }
    if period != 0 && runtime > 0 && runtime as u64 > period {
        return bad(format!(
            "cpu.realtimeRuntime {runtime} exceeds cpu.realtimePeriod {period}"
        ));
    }
    Ok(())
}

/// Parse a cpuset list (`0-3,5`).
pub fn parse_list(s: &str) -> Option<BTreeSet<u32>> {
    let mut out = BTreeSet::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                if a > b || b - a > 65_536 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => {
                out.insert(part.trim().parse().ok()?);
            }
        }
    }
    Some(out)
}

fn cpuset_list(cg: &Cgroup, name: &str, list: &str) -> Result<()> {
    let Some(want) = parse_list(list) else {
        return bad(format!("cpu.{name} {list:?} is not a list like 0-3,5"));
    };
    let Some(root) = cg.hierarchy_root("cpuset") else {
        return Ok(());
    };
    let file = match (cg.is_v2(), name) {
        (true, "cpus") => "cpuset.cpus.effective",
        (true, _) => "cpuset.mems.effective",
        (false, "cpus") => "cpuset.effective_cpus",
        (false, _) => "cpuset.effective_mems",
    };
    let have = fs::read_to_string(root.join(file))
        .ok()
        .and_then(|s| parse_list(&s));
    if let Some(have) = have {
        if let Some(missing) = want.iter().find(|c| !have.contains(c)) {
            return bad(format!(
                "cpu.{name} {list:?}: {missing} is not available on this host (have {})",
                fs::read_to_string(root.join(file))
                    .unwrap_or_default()
                    .trim()
            ));
        }
    }
    Ok(())
}

fn blkio(cg: &Cgroup, b: &LinuxBlockIo, need: Need<'_>) -> Result<()> {
    let ctrl = if cg.is_v2() { "io" } else { "blkio" };
    let mut weights: Vec<(String, u16)> = Vec::new();
    weights.extend(b.weight().map(|w| ("blockIO.weight".to_string(), w)));
    weights.extend(
        b.leaf_weight()
            .map(|w| ("blockIO.leafWeight".to_string(), w)),
    );
    for (i, wd) in b.weight_device().iter().flatten().enumerate() {
        weights.extend(
            wd.weight()
                .map(|w| (format!("blockIO.weightDevice[{i}].weight"), w)),
        );
        weights.extend(
            wd.leaf_weight()
                .map(|w| (format!("blockIO.weightDevice[{i}].leafWeight"), w)),
        );
        block_device(
            &format!("blockIO.weightDevice[{i}]"),
            wd.major(),
            wd.minor(),
        )?;
    }
    for (name, w) in weights.iter().filter(|(_, w)| *w != 0) {
        if !(10..=1000).contains(w) {
            return bad(format!("{name} {w} is out of range [10, 1000]"));
        }
        need(ctrl, name)?;
        if !cg.is_v2() && !weight_supported(cg) {
            return bad(format!(
                "{name}: this kernel has no blkio weight (needs the BFQ or CFQ scheduler)"
            ));
        }
    }
    let throttles = [
        ("throttleReadBpsDevice", b.throttle_read_bps_device()),
        ("throttleWriteBpsDevice", b.throttle_write_bps_device()),
        ("throttleReadIOPSDevice", b.throttle_read_iops_device()),
        ("throttleWriteIOPSDevice", b.throttle_write_iops_device()),
    ];
    for (name, list) in throttles {
        for (i, t) in list.iter().flatten().enumerate() {
            need(ctrl, &format!("blockIO.{name}"))?;
            if !cg.is_v2() && !has_file(cg, "blkio", "blkio.throttle.read_bps_device") {
                return bad(format!(
                    "blockIO.{name}: this kernel has no blkio throttling"
                ));
            }
            block_device(&format!("blockIO.{name}[{i}]"), t.major(), t.minor())?;
        }
    }
    Ok(())
}

fn weight_supported(cg: &Cgroup) -> bool {
    let Some(root) = cg.hierarchy_root("blkio") else {
        return false;
    };
    root.join("blkio.weight").exists()
        || fs::read_dir(&root)
            .map(|rd| {
                rd.flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with("blkio.bfq."))
            })
            .unwrap_or(false)
}

fn block_device(what: &str, major: i64, minor: i64) -> Result<()> {
    if !Path::new(&format!("/sys/dev/block/{major}:{minor}")).exists() {
        return bad(format!("{what}: there is no block device {major}:{minor}"));
    }
    Ok(())
}

/// Hugepage sizes the kernel offers, as cgroup file names spell them (2MB, 1GB).
pub fn hugepage_sizes() -> Vec<String> {
    let Ok(rd) = fs::read_dir("/sys/kernel/mm/hugepages") else {
        return Vec::new();
    };
    let mut out: Vec<String> = rd
        .flatten()
        .filter_map(|e| {
            let kb: u64 = e
                .file_name()
                .to_string_lossy()
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            Some(match kb {
                k if k >= 1 << 20 && k % (1 << 20) == 0 => format!("{}GB", k >> 20),
                k if k >= 1 << 10 && k % (1 << 10) == 0 => format!("{}MB", k >> 10),
                k => format!("{k}KB"),
            })
        })
        .collect();
    out.sort();
    out
}

fn hugetlb(r: &LinuxResources, need: Need<'_>) -> Result<()> {
    let limits = r.hugepage_limits().as_deref().unwrap_or_default();
    if limits.is_empty() {
        return Ok(());
    }
    let sizes = hugepage_sizes();
    for (i, h) in limits.iter().enumerate() {
        if !sizes.contains(h.page_size()) {
            return bad(format!(
                "hugepageLimits[{i}].pageSize {:?} is not one of this host's sizes {sizes:?}",
                h.page_size()
            ));
        }
        if h.limit() < 0 {
            return bad(format!(
                "hugepageLimits[{i}].limit {} must not be negative",
                h.limit()
            ));
        }
        need("hugetlb", &format!("hugepageLimits[{i}]"))?;
    }
    Ok(())
}

fn unified(cg: &Cgroup, r: &LinuxResources) -> Result<()> {
    let Some(map) = r.unified().as_ref().filter(|m| !m.is_empty()) else {
        return Ok(());
    };
    if !cg.is_v2() {
        return bad(
            "unified: key/values need cgroup v2; this host uses cgroup v1 controllers".into(),
        );
    }
    for k in map.keys() {
        let Some((ctrl, _)) = k.split_once('.') else {
            return bad(format!(
                "unified: key {k:?} is not a cgroup file name (controller.file)"
            ));
        };
        let cgroup_core = k.starts_with("cgroup.")
            && !matches!(
                k.as_str(),
                "cgroup.freeze" | "cgroup.max.depth" | "cgroup.max.descendants"
            );
        if k.contains('/') || k.contains("..") || cgroup_core {
            return bad(format!("unified: key {k:?} may not be set"));
        }
        if ctrl != "cgroup" && cg.hierarchy_root(ctrl).is_none() {
            return bad(format!(
                "unified: key {k:?}: the {ctrl} controller is not available on this host"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuset_lists_parse() {
        assert_eq!(
            parse_list("0-2,5"),
            Some([0, 1, 2, 5].into_iter().collect())
        );
        assert_eq!(parse_list("3"), Some([3].into_iter().collect()));
        assert_eq!(parse_list("2-1"), None);
        assert_eq!(parse_list("a"), None);
    }

    fn v2_fake() -> (tempfile::TempDir, Cgroup) {
        let t = tempfile::tempdir().expect("tempdir");
        fs::write(
            t.path().join("cgroup.controllers"),
            "cpu memory pids cpuset\n",
        )
        .expect("controllers");
        fs::write(t.path().join("cpuset.cpus.effective"), "0-1\n").expect("cpus");
        let cg = Cgroup::unified_at(t.path(), &t.path().join("x"));
        (t, cg)
    }

    fn check(json: &str, want: Option<&str>) {
        let (_t, cg) = v2_fake();
        let r: LinuxResources = serde_json::from_str(json).expect("json");
        match (validate(&cg, &r), want) {
            (Ok(()), None) => {}
            (Err(e), Some(w)) => assert!(e.to_string().contains(w), "{json}: {e}"),
            (res, w) => panic!("{json}: got {res:?}, wanted error {w:?}"),
        }
    }

    #[test]
    fn v2_values_are_checked() {
        check(
            r#"{"memory":{"limit":1048576,"swap":2097152},"cpu":{"shares":512,"quota":5000,"cpus":"1"},"pids":{"limit":9}}"#,
            None,
        );
        check(r#"{"memory":{"limit":-5}}"#, Some("memory.limit -5"));
        check(
            r#"{"memory":{"swap":100}}"#,
            Some("swap limit needs a memory limit"),
        );
        check(
            r#"{"memory":{"swappiness":101}}"#,
            Some("over the maximum 100"),
        );
        check(r#"{"cpu":{"shares":1}}"#, Some("[2, 262144]"));
        check(r#"{"cpu":{"period":10}}"#, Some("[1000, 1000000]"));
        check(r#"{"cpu":{"quota":-2}}"#, Some("cpu.quota -2"));
        check(r#"{"cpu":{"cpus":"7"}}"#, Some("7 is not available"));
        check(
            r#"{"cpu":{"realtimeRuntime":1000}}"#,
            Some("does not exist on cgroup v2"),
        );
        check(
            r#"{"blockIO":{"weight":500}}"#,
            Some("io cgroup controller is not available"),
        );
        check(
            r#"{"hugepageLimits":[{"pageSize":"3MB","limit":1}]}"#,
            Some("3MB"),
        );
        check(r#"{"network":{"classID":1}}"#, Some("net_cls"));
        check(r#"{"unified":{"memory.high":"1000"}}"#, None);
        check(r#"{"unified":{"../x":"1"}}"#, Some("may not be set"));
        check(r#"{"unified":{"rdma.max":"1"}}"#, Some("rdma controller"));
        check(r#"{"devices":[{"allow":false,"access":"rwm"}]}"#, None);
        check(
            r#"{"devices":[{"allow":true,"type":"c","access":"rwz"}]}"#,
            Some("access"),
        );
    }
}
