//! Resource writes for a cgroup v2 directory, following runc's fs2 driver
//! (shares→weight and blkio→io weight conversions, memory+swap→swap.max).
//! Everything here writes into one directory, so the unit tests run it
//! against a temporary directory holding the files the kernel would.

use std::fs;
use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxRdma, LinuxResources};

use super::{read, write, Apply};
use crate::error::{Error, Result};

pub(super) fn apply(d: &Path, r: &LinuxResources, how: Apply) -> Result<()> {
    if let Some(m) = r.memory() {
        memory(d, m, how.live)?;
    }
    if let Some(c) = r.cpu() {
        cpu(d, c)?;
    }
    if let Some(p) = r.pids() {
        if p.limit() != 0 {
            write(d, "pids.max", &super::v1::pids_value(p.limit()))?;
        }
    }
    if let Some(b) = r.block_io() {
        io(d, b)?;
    }
    for h in r.hugepage_limits().iter().flatten() {
        write(
            d,
            &format!("hugetlb.{}.max", h.page_size()),
            &h.limit().to_string(),
        )?;
        let rsvd = format!("hugetlb.{}.rsvd.max", h.page_size());
        if d.join(&rsvd).exists() {
            write(d, &rsvd, &h.limit().to_string())?;
        }
    }
    for (dev, l) in r.rdma().iter().flatten() {
        write(d, "rdma.max", &rdma_line(dev, l))?;
    }
    if how.devices {
        if let Some(rules) = r.devices() {
            super::bpf::attach_device_filter(d, rules)?;
        }
    }
    // `unified` last: it may override anything above, as in runc.
    let mut keys: Vec<_> = r.unified().iter().flatten().collect();
    keys.sort();
    for (k, v) in keys {
        write(d, k, v)?;
    }
    Ok(())
}

/// runc's conversion of cgroup v1 cpu shares [2, 262144] to cgroup v2
/// cpu.weight [1, 10000].
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        0
    } else {
        1 + (shares.saturating_sub(2) * 9999) / 262_142
    }
}

/// runc's conversion of blkio weight [10, 1000] to io.weight [1, 10000].
pub fn blkio_weight_to_io(w: u16) -> u64 {
    if w == 0 {
        0
    } else {
        1 + (u64::from(w).saturating_sub(10) * 9999) / 990
    }
}

/// v1 `memory.swap` is memory+swap; v2 `memory.swap.max` is swap alone.
/// `None`: leave swap alone. (runc's ConvertMemorySwapToCgroupV2Value.)
pub fn swap_max(limit: Option<i64>, swap: Option<i64>) -> Result<Option<String>, String> {
    let (l, s) = (limit.unwrap_or(0), swap.unwrap_or(0));
    if l == -1 && s == 0 {
        return Ok(Some("max".into()));
    }
    match s {
        0 => Ok(None),
        -1 => Ok(Some("max".into())),
        _ if l == 0 || l == -1 => Err("a swap limit needs a memory limit".into()),
        _ if s < l => Err(format!(
            "memory+swap limit {s} must be at least the memory limit {l}"
        )),
        _ => Ok(Some((s - l).to_string())),
    }
}

fn max_or(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

fn memory(d: &Path, m: &LinuxMemory, check_before_update: bool) -> Result<()> {
    let swap = swap_max(m.limit(), m.swap())
        .map_err(|msg| Error::InvalidConfig(format!("linux.resources.memory.swap: {msg}")))?;
    if let Some(s) = swap {
        write(d, "memory.swap.max", &s)?;
    }
    if let Some(l) = m.limit().filter(|l| *l != 0) {
        if check_before_update && m.check_before_update() == Some(true) && l > 0 {
            let usage: u64 = read(d, "memory.current")?.parse().unwrap_or(0);
            if (l as u64) < usage {
                return Err(Error::Cgroup {
                    path: d.display().to_string(),
                    msg: format!(
                        "memory limit {l} is below the current usage {usage} (checkBeforeUpdate)"
                    ),
                });
            }
        }
        write(d, "memory.max", &max_or(l))?;
    }
    if let Some(r) = m.reservation().filter(|r| *r != 0) {
        write(d, "memory.low", &max_or(r))?;
    }
    if m.swappiness().is_some() {
        crate::log::warn(
            "linux.resources.memory.swappiness is not supported on cgroup v2: ignored",
        );
    }
    if m.disable_oom_killer() == Some(true) {
        crate::log::warn(
            "linux.resources.memory.disableOOMKiller is not supported on cgroup v2: ignored",
        );
    }
    Ok(())
}

fn cpu(d: &Path, c: &LinuxCpu) -> Result<()> {
    if let Some(s) = c.shares().filter(|s| *s != 0) {
        write(d, "cpu.weight", &shares_to_weight(s).to_string())?;
    }
    let quota = c.quota().filter(|q| *q != 0);
    let period = c.period().filter(|p| *p != 0);
    if quota.is_some() || period.is_some() {
        let q = quota
            .filter(|q| *q > 0)
            .map_or_else(|| "max".to_string(), |q| q.to_string());
        let p = match period {
            Some(p) => p.to_string(),
            // Keep the current period when only the quota changes.
            None => read(d, "cpu.max")
                .ok()
                .and_then(|s| s.split_whitespace().nth(1).map(str::to_string))
                .unwrap_or_else(|| "100000".into()),
        };
        write(d, "cpu.max", &format!("{q} {p}"))?;
    }
    if let Some(b) = c.burst() {
        write(d, "cpu.max.burst", &b.to_string())?;
    }
    if let Some(i) = c.idle() {
        write(d, "cpu.idle", &i.to_string())?;
    }
    if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        write(d, "cpuset.cpus", cpus)?;
    }
    if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        write(d, "cpuset.mems", mems)?;
    }
    Ok(())
}

fn io(d: &Path, b: &LinuxBlockIo) -> Result<()> {
    let bfq = d.join("io.bfq.weight").exists();
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        if bfq {
            write(d, "io.bfq.weight", &w.to_string())?;
        } else {
            write(d, "io.weight", &blkio_weight_to_io(w).to_string())?;
        }
    }
    for wd in b.weight_device().iter().flatten() {
        if let Some(w) = wd.weight() {
            let (file, v) = if bfq {
                ("io.bfq.weight", u64::from(w))
            } else {
                ("io.weight", blkio_weight_to_io(w))
            };
            write(d, file, &format!("{}:{} {v}", wd.major(), wd.minor()))?;
        }
    }
    let throttles = [
        ("rbps", b.throttle_read_bps_device()),
        ("wbps", b.throttle_write_bps_device()),
        ("riops", b.throttle_read_iops_device()),
        ("wiops", b.throttle_write_iops_device()),
    ];
    for (key, list) in throttles {
        for t in list.iter().flatten() {
            let rate = if t.rate() == 0 {
                "max".to_string()
            } else {
                t.rate().to_string()
            };
            write(
                d,
                "io.max",
                &format!("{}:{} {key}={rate}", t.major(), t.minor()),
            )?;
        }
    }
    Ok(())
}

/// One `rdma.max` line (same format on v1 and v2).
pub(super) fn rdma_line(dev: &str, l: &LinuxRdma) -> String {
    let v = |x: Option<u32>| x.map_or_else(|| "max".to_string(), |n| n.to_string());
    format!(
        "{dev} hca_handle={} hca_object={}",
        v(l.hca_handles()),
        v(l.hca_objects())
    )
}

/// Enable every available controller in `cgroup.subtree_control` of each
/// ancestor of `dir` below and including `root`, so `dir` gets the
/// controllers' files. A controller the kernel refuses is skipped; a later
/// write to its file then fails with the file's name.
pub(super) fn enable_controllers(root: &Path, dir: &Path) -> Result<()> {
    let Ok(rel) = dir.strip_prefix(root) else {
        return Err(Error::Cgroup {
            path: dir.display().to_string(),
            msg: format!("not under {}", root.display()),
        });
    };
    let mut cur = root.to_path_buf();
    for comp in rel.components() {
        let avail = fs::read_to_string(cur.join("cgroup.controllers")).unwrap_or_default();
        for c in avail.split_whitespace() {
            if let Err(e) = write(&cur, "cgroup.subtree_control", &format!("+{c}")) {
                crate::log::debug(&format!("enable {c} in {}: {e}", cur.display()));
            }
        }
        cur.push(comp);
    }
    Ok(())
}

pub(super) fn set_frozen(d: &Path, frozen: bool) -> Result<()> {
    write(d, "cgroup.freeze", if frozen { "1" } else { "0" })?;
    // The freeze completes asynchronously: cgroup.events says when.
    let want = if frozen { "1" } else { "0" };
    for _ in 0..1000 {
        let ev = fs::read_to_string(d.join("cgroup.events")).unwrap_or_default();
        match super::stats::flat_keyed(&ev).get("frozen") {
            Some(v) if v.to_string() == want => return Ok(()),
            None => return Ok(()),
            _ => std::thread::sleep(std::time::Duration::from_millis(1)),
        }
    }
    if frozen {
        let _ = write(d, "cgroup.freeze", "0");
    }
    Err(Error::Cgroup {
        path: d.display().to_string(),
        msg: format!(
            "did not become {}",
            if frozen { "frozen" } else { "thawed" }
        ),
    })
}

pub(super) fn frozen(d: &Path) -> bool {
    fs::read_to_string(d.join("cgroup.freeze"))
        .map(|s| s.trim() == "1")
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::{apply, Cgroup};

    const FILES: &[&str] = &[
        "cgroup.controllers",
        "cgroup.subtree_control",
        "cgroup.procs",
        "cgroup.freeze",
        "memory.max",
        "memory.low",
        "memory.swap.max",
        "memory.current",
        "cpu.weight",
        "cpu.max",
        "cpu.max.burst",
        "cpu.idle",
        "cpuset.cpus",
        "cpuset.mems",
        "pids.max",
        "io.weight",
        "io.max",
        "hugetlb.2MB.max",
        "rdma.max",
    ];

    fn fake_cgroup() -> (tempfile::TempDir, Cgroup) {
        let t = tempfile::tempdir().expect("tempdir");
        let dir = t.path().join("berth/c1");
        for d in [t.path(), &t.path().join("berth"), &dir] {
            fs::create_dir_all(d).expect("mkdir");
            for f in FILES {
                fs::write(d.join(f), "").expect("touch");
            }
            fs::write(d.join("cgroup.controllers"), "cpu memory pids io\n").expect("controllers");
        }
        fs::write(dir.join("cpu.max"), "max 100000\n").expect("cpu.max");
        let cg = Cgroup::unified_at(t.path(), &dir);
        (t, cg)
    }

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).expect("resources json")
    }

    fn file(cg: &Cgroup, f: &str) -> String {
        fs::read_to_string(cg.dirs[0].join(f))
            .expect("read")
            .trim()
            .to_string()
    }

    fn check(json: &str, want: &[(&str, &str)]) {
        let (_t, cg) = fake_cgroup();
        apply(
            &cg,
            &res(json),
            Apply {
                devices: true,
                live: true,
            },
        )
        .expect("apply");
        for (f, v) in want {
            assert_eq!(file(&cg, f), *v, "{f} after {json}");
        }
    }

    #[test]
    fn memory_files() {
        check(
            r#"{"memory":{"limit":1048576,"reservation":524288,"swap":3145728}}"#,
            &[
                ("memory.max", "1048576"),
                ("memory.low", "524288"),
                ("memory.swap.max", "2097152"),
            ],
        );
        check(
            r#"{"memory":{"limit":-1}}"#,
            &[("memory.max", "max"), ("memory.swap.max", "max")],
        );
    }

    #[test]
    fn cpu_files() {
        check(
            r#"{"cpu":{"shares":1024,"quota":50000,"period":200000,"burst":1000,"idle":1,"cpus":"0","mems":"0"}}"#,
            &[
                ("cpu.weight", "39"),
                ("cpu.max", "50000 200000"),
                ("cpu.max.burst", "1000"),
                ("cpu.idle", "1"),
                ("cpuset.cpus", "0"),
                ("cpuset.mems", "0"),
            ],
        );
        // quota alone keeps the current period; -1 is unlimited
        check(r#"{"cpu":{"quota":20000}}"#, &[("cpu.max", "20000 100000")]);
        check(
            r#"{"cpu":{"quota":-1,"period":100000}}"#,
            &[("cpu.max", "max 100000")],
        );
    }

    #[test]
    fn pids_io_hugetlb_rdma_unified_files() {
        check(r#"{"pids":{"limit":42}}"#, &[("pids.max", "42")]);
        check(r#"{"pids":{"limit":-1}}"#, &[("pids.max", "max")]);
        check(
            r#"{"blockIO":{"weight":500,"throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576}]}}"#,
            &[("io.weight", "4950"), ("io.max", "8:0 rbps=1048576")],
        );
        check(
            r#"{"hugepageLimits":[{"pageSize":"2MB","limit":4194304}]}"#,
            &[("hugetlb.2MB.max", "4194304")],
        );
        check(
            r#"{"rdma":{"mlx4_0":{"hcaHandles":3}}}"#,
            &[("rdma.max", "mlx4_0 hca_handle=3 hca_object=max")],
        );
        check(
            r#"{"pids":{"limit":5},"unified":{"pids.max":"7","memory.low":"1"}}"#,
            &[("pids.max", "7"), ("memory.low", "1")],
        );
    }

    #[test]
    fn conversions_match_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(blkio_weight_to_io(10), 1);
        assert_eq!(blkio_weight_to_io(1000), 10_000);
        assert_eq!(swap_max(Some(100), Some(100)), Ok(Some("0".into())));
        assert_eq!(swap_max(Some(100), None), Ok(None));
        assert!(swap_max(None, Some(100)).is_err());
        assert!(swap_max(Some(200), Some(100)).is_err());
    }

    #[test]
    fn check_before_update_refuses_a_limit_below_usage() {
        let (_t, cg) = fake_cgroup();
        fs::write(cg.dirs[0].join("memory.current"), "2000000\n").expect("usage");
        let r = res(r#"{"memory":{"limit":1000000,"checkBeforeUpdate":true}}"#);
        let e = apply(
            &cg,
            &r,
            Apply {
                devices: false,
                live: true,
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("below the current usage"), "{e}");
        assert_eq!(file(&cg, "memory.max"), "");
    }

    #[test]
    fn controllers_are_enabled_down_the_path_and_freeze_writes() {
        let (t, cg) = fake_cgroup();
        enable_controllers(t.path(), &cg.dirs[0]).expect("enable");
        // one write per controller: the file holds the last one
        assert_eq!(
            fs::read_to_string(t.path().join("cgroup.subtree_control")).unwrap(),
            "+io"
        );
        assert_eq!(
            fs::read_to_string(t.path().join("berth/cgroup.subtree_control")).unwrap(),
            "+io"
        );
        assert_eq!(file(&cg, "cgroup.subtree_control"), "");
        cg.set_frozen(true).expect("freeze");
        assert!(cg.frozen());
        cg.set_frozen(false).expect("thaw");
        assert!(!cg.frozen());
    }
}
