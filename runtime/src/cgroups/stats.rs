//! Resource usage of a container's cgroup in runc's `events` JSON shape
//! (runc `types/events.go`: field names, units and omitted zero values).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde::Serialize;

use super::Cgroup;

fn zero(v: &u64) -> bool {
    *v == 0
}

/// `{"type": "stats"|"oom", "id": …, "data": …}`.
#[derive(Serialize, Debug)]
pub struct Event<'a> {
    #[serde(rename = "type")]
    pub typ: &'static str,
    pub id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Stats>,
}

#[derive(Serialize, Debug, Default)]
pub struct Stats {
    pub cpu: Cpu,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
    pub intel_rdt: BTreeMap<String, u64>,
    pub network_interfaces: Option<Vec<()>>,
}

#[derive(Serialize, Debug, Default)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

#[derive(Serialize, Debug, Default)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Serialize, Debug, Default)]
pub struct Throttling {
    #[serde(skip_serializing_if = "zero")]
    pub periods: u64,
    #[serde(rename = "throttledPeriods", skip_serializing_if = "zero")]
    pub throttled_periods: u64,
    #[serde(rename = "throttledTime", skip_serializing_if = "zero")]
    pub throttled_time: u64,
}

#[derive(Serialize, Debug, Default)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Serialize, Debug, Default)]
pub struct Memory {
    #[serde(skip_serializing_if = "zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

#[derive(Serialize, Debug, Default)]
pub struct Pids {
    #[serde(skip_serializing_if = "zero")]
    pub current: u64,
    #[serde(skip_serializing_if = "zero")]
    pub limit: u64,
}

#[derive(Serialize, Debug, Default, Clone, PartialEq, Eq)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "zero")]
    pub value: u64,
}

#[derive(Serialize, Debug, Default)]
pub struct Blkio {
    #[serde(
        rename = "ioServiceBytesRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioServicedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

#[derive(Serialize, Debug, Default)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "zero")]
    pub max: u64,
    pub failcnt: u64,
}

/// `key value` lines (cpu.stat, memory.stat, memory.events, …).
pub fn flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.to_string(), it.next()?.parse().ok()?))
        })
        .collect()
}

fn num(dir: &Path, file: &str) -> u64 {
    fs::read_to_string(dir.join(file))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn nums(dir: &Path, file: &str) -> Vec<u64> {
    fs::read_to_string(dir.join(file))
        .map(|s| {
            s.split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn keyed(dir: &Path, file: &str) -> BTreeMap<String, u64> {
    fs::read_to_string(dir.join(file))
        .map(|s| flat_keyed(&s))
        .unwrap_or_default()
}

/// Collect the usage of `cg`. Controllers that are missing give zeros.
pub fn collect(cg: &Cgroup) -> Stats {
    if cg.is_v2() {
        return v2(&cg.dirs[0]);
    }
    let mut s = Stats::default();
    if let Some(d) = cg.dir_for("cpuacct") {
        v1_cpuacct(d, &mut s.cpu.usage);
    }
    if let Some(d) = cg.dir_for("cpu") {
        s.cpu.throttling = throttling(&keyed(d, "cpu.stat"), 1);
    }
    if let Some(d) = cg.dir_for("memory") {
        v1_memory(d, &mut s.memory);
    }
    if let Some(d) = cg.dir_for("pids") {
        s.pids = Pids {
            current: num(d, "pids.current"),
            limit: num(d, "pids.max"),
        };
    }
    if let Some(d) = cg.dir_for("blkio") {
        let pick = |bfq: &str, throttle: &str| {
            let v = blkio_entries(d, bfq);
            if v.is_empty() {
                blkio_entries(d, throttle)
            } else {
                v
            }
        };
        s.blkio.io_service_bytes_recursive = pick(
            "blkio.bfq.io_service_bytes_recursive",
            "blkio.throttle.io_service_bytes_recursive",
        );
        s.blkio.io_serviced_recursive = pick(
            "blkio.bfq.io_serviced_recursive",
            "blkio.throttle.io_serviced_recursive",
        );
    }
    if let Some(d) = cg.dir_for("hugetlb") {
        for size in super::validate::hugepage_sizes() {
            let f = |x: &str| num(d, &format!("hugetlb.{size}.{x}"));
            s.hugetlb.insert(
                size.clone(),
                Hugetlb {
                    usage: f("usage_in_bytes"),
                    max: f("max_usage_in_bytes"),
                    failcnt: f("failcnt"),
                },
            );
        }
    }
    s
}

fn throttling(stat: &BTreeMap<String, u64>, time_scale: u64) -> Throttling {
    let g = |k: &str| stat.get(k).copied().unwrap_or(0);
    Throttling {
        periods: g("nr_periods"),
        throttled_periods: g("nr_throttled"),
        throttled_time: g("throttled_time").max(g("throttled_usec") * time_scale),
    }
}

fn v1_cpuacct(d: &Path, u: &mut CpuUsage) {
    // cpuacct.stat is in USER_HZ ticks (100 per second on Linux).
    const NS_PER_TICK: u64 = 1_000_000_000 / 100;
    u.total = num(d, "cpuacct.usage");
    u.percpu = nums(d, "cpuacct.usage_percpu");
    u.percpu_kernel = nums(d, "cpuacct.usage_percpu_sys");
    u.percpu_user = nums(d, "cpuacct.usage_percpu_user");
    let st = keyed(d, "cpuacct.stat");
    u.user = st.get("user").copied().unwrap_or(0) * NS_PER_TICK;
    u.kernel = st.get("system").copied().unwrap_or(0) * NS_PER_TICK;
}

fn v1_memory(d: &Path, m: &mut Memory) {
    let entry = |prefix: &str| MemoryEntry {
        limit: num(d, &format!("{prefix}.limit_in_bytes")),
        usage: num(d, &format!("{prefix}.usage_in_bytes")),
        max: num(d, &format!("{prefix}.max_usage_in_bytes")),
        failcnt: num(d, &format!("{prefix}.failcnt")),
    };
    m.usage = entry("memory");
    m.swap = entry("memory.memsw");
    m.kernel = entry("memory.kmem");
    m.kernel_tcp = entry("memory.kmem.tcp");
    m.raw = keyed(d, "memory.stat");
    m.cache = m.raw.get("cache").copied().unwrap_or(0);
}

/// `8:0 Read 4096` lines (v1 blkio).
fn blkio_entries(d: &Path, file: &str) -> Vec<BlkioEntry> {
    let Ok(text) = fs::read_to_string(d.join(file)) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (dev, op, v) = (it.next()?, it.next()?, it.next()?);
            let (ma, mi) = dev.split_once(':')?;
            Some(BlkioEntry {
                major: ma.parse().ok()?,
                minor: mi.parse().ok()?,
                op: op.to_string(),
                value: v.parse().ok()?,
            })
        })
        .collect()
}

fn max_file(d: &Path, file: &str) -> u64 {
    match fs::read_to_string(d.join(file)) {
        Ok(s) if s.trim() == "max" => u64::MAX,
        Ok(s) => s.trim().parse().unwrap_or(0),
        Err(_) => 0,
    }
}

fn v2(d: &Path) -> Stats {
    let mut s = Stats::default();
    let cpu = keyed(d, "cpu.stat");
    let g = |k: &str| cpu.get(k).copied().unwrap_or(0);
    s.cpu.usage.total = g("usage_usec") * 1000;
    s.cpu.usage.user = g("user_usec") * 1000;
    s.cpu.usage.kernel = g("system_usec") * 1000;
    s.cpu.throttling = throttling(&cpu, 1000);
    let events = keyed(d, "memory.events");
    s.memory.usage = MemoryEntry {
        limit: max_file(d, "memory.max"),
        usage: num(d, "memory.current"),
        max: num(d, "memory.peak"),
        failcnt: events.get("max").copied().unwrap_or(0),
    };
    s.memory.swap = MemoryEntry {
        limit: max_file(d, "memory.swap.max"),
        usage: num(d, "memory.swap.current"),
        max: num(d, "memory.swap.peak"),
        failcnt: 0,
    };
    s.memory.raw = keyed(d, "memory.stat");
    s.memory.cache = s.memory.raw.get("file").copied().unwrap_or(0);
    let pmax = max_file(d, "pids.max");
    s.pids = Pids {
        current: num(d, "pids.current"),
        limit: if pmax == u64::MAX { 0 } else { pmax },
    };
    s.blkio = v2_io(d);
    for size in super::validate::hugepage_sizes() {
        let ev = keyed(d, &format!("hugetlb.{size}.events"));
        let max = max_file(d, &format!("hugetlb.{size}.max"));
        let usage = num(d, &format!("hugetlb.{size}.current"));
        if d.join(format!("hugetlb.{size}.current")).exists() {
            s.hugetlb.insert(
                size,
                Hugetlb {
                    usage,
                    max: if max == u64::MAX { 0 } else { max },
                    failcnt: ev.get("max").copied().unwrap_or(0),
                },
            );
        }
    }
    s
}

/// `8:0 rbytes=1 wbytes=2 rios=3 wios=4 …` lines (v2 io.stat).
fn v2_io(d: &Path) -> Blkio {
    let mut b = Blkio::default();
    let Ok(text) = fs::read_to_string(d.join("io.stat")) else {
        return b;
    };
    for l in text.lines() {
        let mut it = l.split_whitespace();
        let Some((ma, mi)) = it.next().and_then(|dev| dev.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (ma.parse(), mi.parse()) else {
            continue;
        };
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse() else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut b.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut b.io_service_bytes_recursive, "Write"),
                "rios" => (&mut b.io_serviced_recursive, "Read"),
                "wios" => (&mut b.io_serviced_recursive, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.into(),
                value,
            });
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_stats_from_files() {
        let t = tempfile::tempdir().expect("tempdir");
        let d = t.path();
        fs::write(d.join("cpu.stat"), "usage_usec 5\nuser_usec 3\nsystem_usec 2\nnr_periods 4\nnr_throttled 1\nthrottled_usec 7\n").unwrap();
        fs::write(d.join("memory.current"), "4096\n").unwrap();
        fs::write(d.join("memory.max"), "max\n").unwrap();
        fs::write(d.join("memory.events"), "low 0\nmax 3\noom 1\noom_kill 1\n").unwrap();
        fs::write(d.join("pids.current"), "2\n").unwrap();
        fs::write(d.join("pids.max"), "10\n").unwrap();
        fs::write(
            d.join("io.stat"),
            "8:0 rbytes=512 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n",
        )
        .unwrap();
        let s = v2(d);
        assert_eq!(
            (s.cpu.usage.total, s.cpu.usage.user, s.cpu.usage.kernel),
            (5000, 3000, 2000)
        );
        assert_eq!(
            (
                s.cpu.throttling.periods,
                s.cpu.throttling.throttled_periods,
                s.cpu.throttling.throttled_time
            ),
            (4, 1, 7000)
        );
        assert_eq!(
            (
                s.memory.usage.usage,
                s.memory.usage.limit,
                s.memory.usage.failcnt
            ),
            (4096, u64::MAX, 3)
        );
        assert_eq!((s.pids.current, s.pids.limit), (2, 10));
        assert_eq!(
            s.blkio.io_service_bytes_recursive[0],
            BlkioEntry {
                major: 8,
                minor: 0,
                op: "Read".into(),
                value: 512
            }
        );
        let json = serde_json::to_value(Event {
            typ: "stats",
            id: "c",
            data: Some(s),
        })
        .unwrap();
        assert_eq!(json["data"]["cpu"]["throttling"]["throttledPeriods"], 1);
        assert_eq!(json["data"]["pids"]["current"], 2);
        // zero values are omitted as runc's omitempty does
        assert!(json["data"]["blkio"]["ioServiceBytesRecursive"][1]
            .get("value")
            .is_none());
    }
}
