//! `cargo xtask bench engine`: berth vs podman end to end, side by side in
//! one run, on the same busybox image imported into both stores from the
//! same tarball (`berth import` / `podman import`):
//!
//! 1. `run --rm IMAGE true` (`--network none`), interleaved: berth with
//!    berth-runtime, runc and crun; podman with crun and runc. Mean, median,
//!    ratios to berth.
//! 2. Idle memory of the per-container monitor of one `run -d … sleep 1000`:
//!    berth-monitor vs conmon (RSS, PSS, private, from smaps_rollup).
//! 3. N containers (100; 20 with --quick) per engine started `run -d …
//!    sleep 1000` one after another, then removed `rm -f` one by one, the
//!    engines taking turns: each engine's total time per phase and its
//!    monitors' memory summed while all run, berth vs podman with crun.
//!
//! Debian's crun refuses hybrid cgroup hosts, so crun runs behind HOST.md's
//! wrapper (a private mount namespace with /sys/fs/cgroup/unified
//! unmounted) for both engines alike. Nothing is asserted.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Result};
use berth_benches::engines::{busybox_tarball, Berth, Podman, STEP_LIMIT};
use berth_benches::*;

const BERTH_IMAGE: &str = "bench-busybox:latest";
const PODMAN_IMAGE: &str = "localhost/bench-busybox:latest";

enum Engine<'a> {
    Berth(&'a Berth),
    Podman(&'a Podman),
}

/// One engine + runtime pairing.
struct Setup<'a> {
    name: String,
    engine: Engine<'a>,
    runtime: &'a Path,
}

impl Setup<'_> {
    fn is_podman(&self) -> bool {
        matches!(self.engine, Engine::Podman(_))
    }

    fn image(&self) -> &'static str {
        match self.engine {
            Engine::Berth(_) => BERTH_IMAGE,
            Engine::Podman(_) => PODMAN_IMAGE,
        }
    }

    /// `run --runtime R --network none ARGS`
    fn run(&self, args: &[&str]) -> Command {
        let mut c = match self.engine {
            Engine::Berth(b) => {
                let mut c = b.command(&["run", "--runtime"]);
                c.arg(self.runtime);
                c
            }
            Engine::Podman(p) => p.command(Some(self.runtime), &["run"]),
        };
        c.args(["--network", "none"]).args(args);
        c
    }

    /// `rm -f ID`. berth's sends SIGKILL at once; podman's would first wait
    /// 10 s for SIGTERM, which `sleep` as pid 1 ignores, so it gets
    /// `--time 0`.
    fn rm(&self, id: &str) -> Command {
        match self.engine {
            Engine::Berth(b) => b.command(&["rm", "-f", id]),
            Engine::Podman(p) => p.command(Some(self.runtime), &["rm", "-f", "--time", "0", id]),
        }
    }

    /// The pid of each container's monitor: berth-monitor or conmon.
    fn monitor_pids(&self, ids: &[String]) -> Result<Vec<i32>> {
        match self.engine {
            Engine::Berth(b) => ids.iter().map(|id| b.monitor_pid(id)).collect(),
            Engine::Podman(p) => p.conmon_pids(ids),
        }
    }

    fn monitor_name(&self) -> &'static str {
        match self.engine {
            Engine::Berth(_) => "berth-monitor",
            Engine::Podman(_) => "conmon",
        }
    }
}

/// The runtimes other than berth-runtime: runc as installed, crun behind the
/// wrapper on a hybrid host.
struct Others {
    runc: Option<PathBuf>,
    crun: Option<PathBuf>,
}

fn others(dir: &Path) -> Result<Others> {
    let runc = which("runc");
    let crun = match which("crun") {
        Some(p) if hybrid_cgroups() => Some(mount_ns_wrapper(dir, &p)?),
        other => other,
    };
    for (name, p) in [("runc", &runc), ("crun", &crun)] {
        if p.is_none() {
            println!("({name} not installed: left out)");
        }
    }
    Ok(Others { runc, crun })
}

fn setups<'a>(
    b: &'a Berth,
    runtime: &'a Path,
    p: Option<&'a Podman>,
    o: &'a Others,
) -> Vec<Setup<'a>> {
    let setup = |name: &str, engine, runtime| Setup {
        name: name.into(),
        engine,
        runtime,
    };
    let mut v = vec![setup("berth + berth-runtime", Engine::Berth(b), runtime)];
    if let Some(r) = &o.runc {
        v.push(setup("berth + runc", Engine::Berth(b), r));
    }
    if let Some(c) = &o.crun {
        v.push(setup("berth + crun", Engine::Berth(b), c));
    }
    if let Some(p) = p {
        if let Some(c) = &o.crun {
            v.push(setup("podman + crun", Engine::Podman(p), c));
        }
        if let Some(r) = &o.runc {
            v.push(setup("podman + runc", Engine::Podman(p), r));
        }
    }
    v
}

/// Scenario 1: `run --rm IMAGE true`, interleaved.
fn run_rm(setups: &[Setup]) {
    let n = iterations(30);
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); setups.len()];
    let mut failed: Vec<Option<String>> = vec![None; setups.len()];
    // One untimed run each first: first-use costs (podman's cgroup parent,
    // page cache) are not what is measured.
    for (k, s) in setups.iter().enumerate() {
        if let Err(e) = timed(s.run(&["--rm", s.image(), "true"]), STEP_LIMIT) {
            failed[k] = Some(format!("{e:#}"));
        }
    }
    for _ in 0..n {
        for (k, s) in setups.iter().enumerate() {
            if failed[k].is_some() {
                continue;
            }
            match timed(s.run(&["--rm", s.image(), "true"]), STEP_LIMIT) {
                Ok((d, _)) => times[k].push(d),
                Err(e) => failed[k] = Some(format!("{e:#}")),
            }
        }
    }
    println!("\n## run --rm IMAGE true (--network none), {n} interleaved iterations");
    println!(
        "{:<22} {:>9} {:>10} {:>9}",
        "engine + runtime", "mean ms", "median ms", "vs berth"
    );
    let medians: Vec<Option<Duration>> = (0..setups.len())
        .map(|k| failed[k].is_none().then(|| median(&mut times[k].clone())))
        .collect();
    for (k, s) in setups.iter().enumerate() {
        match medians[k] {
            None => println!(
                "{:<22} failed: {}",
                s.name,
                failed[k].as_deref().unwrap_or("?")
            ),
            Some(med) => {
                let ratio = medians[0]
                    .map(|b| format!("{:.2}x", ms(med) / ms(b)))
                    .unwrap_or_else(|| "-".into());
                println!(
                    "{:<22} {:>9.1} {:>10.1} {:>9}",
                    s.name,
                    ms(mean(&times[k])),
                    ms(med),
                    ratio
                );
            }
        }
    }
    if hybrid_cgroups() {
        println!("(crun runs behind HOST.md's wrapper, unshare + sh + umount, for both engines)");
    }
    let podman_best = setups
        .iter()
        .zip(&medians)
        .filter(|(s, _)| s.is_podman())
        .filter_map(|(_, m)| *m)
        .min();
    if let (Some(b), Some(p)) = (medians[0], podman_best) {
        let f = ms(b) / ms(p);
        println!(
            "target (DESIGN.md: berth at most 1/5 of podman): berth / fastest podman = {f:.2} (1/{:.1}): {}",
            1.0 / f,
            if f <= 0.2 { "met" } else { "not met" }
        );
    }
}

/// A container started `run -d IMAGE sleep 1000`; its id.
fn start_sleeper(s: &Setup) -> Result<(Duration, String)> {
    let (d, out) = timed(s.run(&["-d", s.image(), "sleep", "1000"]), STEP_LIMIT)?;
    let id = out.trim().to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!("{}: run -d printed {out:?}, not an id", s.name);
    }
    Ok((d, id))
}

fn idle_one(s: &Setup, monitor_bin: Option<&Path>) -> Result<Mem> {
    if let Some(b) = monitor_bin {
        evict_from_page_cache(b)?;
    }
    let (_, id) = start_sleeper(s)?;
    std::thread::sleep(Duration::from_secs(1));
    let mem = s
        .monitor_pids(std::slice::from_ref(&id))
        .and_then(|pids| Mem::of(pids[0]));
    let removed = timed(s.rm(&id), STEP_LIMIT);
    let mem = mem?;
    removed?;
    Ok(mem)
}

/// Scenario 2: idle `-d` containers, one at a time (so nothing is shared
/// with another monitor of the same kind); their monitors' memory. The
/// resident text pages vary by a few dozen KiB from run to run, hence
/// several samples and the median. Before each sample the monitor's binary
/// leaves the page cache (both engines alike), so it is read from disk as
/// after a reboot rather than mapped from the build's write folios.
fn idle_monitor(pair: &[&Setup], bins: &[Option<PathBuf>]) {
    let n = iterations(9);
    println!(
        "\n## idle monitor memory: `run -d IMAGE sleep 1000`, read 1 s after start, one container at a time, median of {n}"
    );
    println!("(before each sample the monitor binary is dropped from the page cache: read from disk, as after a reboot)");
    println!(
        "{:<15} {:<22} {:>8} {:>13} {:>8} {:>12}",
        "monitor", "engine + runtime", "RSS KiB", "(min-max)", "PSS KiB", "private KiB"
    );
    for (s, bin) in pair.iter().zip(bins) {
        match (0..n)
            .map(|_| idle_one(s, bin.as_deref()))
            .collect::<Result<Vec<Mem>>>()
        {
            Ok(mut mems) => {
                mems.sort_by_key(|m| m.rss);
                let mid = mems[mems.len() / 2];
                let range = format!("({}-{})", mems[0].rss, mems[mems.len() - 1].rss);
                println!(
                    "{:<15} {:<22} {:>8} {:>13} {:>8} {:>12}",
                    s.monitor_name(),
                    s.name,
                    mid.rss,
                    range,
                    mid.pss,
                    mid.private
                );
                if !s.is_podman() {
                    println!(
                        "target (DESIGN.md: monitor under 1 MiB per container): berth-monitor RSS {} KiB: {}",
                        mid.rss,
                        if mid.rss < 1024 { "met" } else { "not met" }
                    );
                }
            }
            Err(e) => println!("{:<15} failed: {e:#}", s.name),
        }
    }
}

/// What scenario 3 measured for one engine.
#[derive(Default)]
struct Many {
    start: Duration,
    remove: Duration,
    mem: Mem,
    ids: Vec<String>,
    failed: Option<String>,
}

/// Start `n` containers per engine, alternating engines so that load from
/// elsewhere on the host falls on both alike; read the monitors' memory
/// while all run; remove them all, alternating again — every container
/// started, also after a failure.
fn many_interleaved(pair: &[&Setup], n: usize) -> Vec<Many> {
    let mut m: Vec<Many> = pair.iter().map(|_| Many::default()).collect();
    for _ in 0..n {
        for (s, m) in pair.iter().zip(m.iter_mut()) {
            if m.failed.is_some() {
                continue;
            }
            match start_sleeper(s) {
                Ok((d, id)) => {
                    m.start += d;
                    m.ids.push(id);
                }
                Err(e) => m.failed = Some(format!("{e:#}")),
            }
        }
    }
    for (s, m) in pair.iter().zip(m.iter_mut()) {
        if m.failed.is_some() {
            continue;
        }
        let mems = s.monitor_pids(&m.ids).and_then(|pids| {
            pids.iter()
                .map(|&pid| Mem::of(pid))
                .collect::<Result<Vec<_>>>()
        });
        match mems {
            Ok(v) => m.mem = Mem::sum(&v),
            Err(e) => m.failed = Some(format!("{e:#}")),
        }
    }
    for i in 0..n {
        for (s, m) in pair.iter().zip(m.iter_mut()) {
            let Some(id) = m.ids.get(i) else { continue };
            match timed(s.rm(id), STEP_LIMIT) {
                Ok((d, _)) => m.remove += d,
                Err(e) => {
                    m.failed.get_or_insert(format!("{e:#}"));
                }
            }
        }
    }
    m
}

/// Scenario 3: `n` containers started, then removed, one command each.
fn many(pair: &[&Setup]) {
    let n = if quick() { 20 } else { 100 };
    println!(
        "\n## {n} containers per engine{}: `run -d IMAGE sleep 1000` one after another, then `rm -f` one by one, the engines taking turns",
        if quick() { " (--quick; the full run uses 100)" } else { "" }
    );
    println!(
        "{:<22} {:>8} {:>9} {:>8} {:>9} {:>10} {:>10} {:>12}",
        "engine + runtime",
        "start s",
        "vs berth",
        "rm s",
        "vs berth",
        "Σ RSS MiB",
        "Σ PSS MiB",
        "PSS/ctr KiB"
    );
    let results = many_interleaved(pair, n);
    let base = results
        .first()
        .filter(|m| m.failed.is_none())
        .map(|m| (m.start, m.remove));
    let vs = |d: Duration, b: Option<Duration>| {
        b.map(|b| format!("{:.2}x", d.as_secs_f64() / b.as_secs_f64()))
            .unwrap_or_else(|| "-".into())
    };
    for (s, m) in pair.iter().zip(&results) {
        match &m.failed {
            None => println!(
                "{:<22} {:>8.2} {:>9} {:>8.2} {:>9} {:>10.1} {:>10.1} {:>12}",
                s.name,
                m.start.as_secs_f64(),
                vs(m.start, base.map(|b| b.0)),
                m.remove.as_secs_f64(),
                vs(m.remove, base.map(|b| b.1)),
                m.mem.rss as f64 / 1024.0,
                m.mem.pss as f64 / 1024.0,
                m.mem.pss / n as u64,
            ),
            Some(e) => println!("{:<22} failed: {e}", s.name),
        }
    }
    println!("(Σ: an engine's {n} monitors, berth-monitor or conmon, while all containers run; podman rm -f is given --time 0, as berth rm -f kills at once)");
}

fn describe(name: &str, p: &Path) {
    // e_type: ET_EXEC (2) is position-dependent, ET_DYN (3) is a PIE.
    let pie = std::fs::read(p)
        .ok()
        .and_then(|b| b.get(0x10..0x12).map(|t| t == [3, 0]));
    let kind = match is_static(p) {
        Some(true) if pie == Some(true) => "static-pie",
        Some(true) => "static",
        Some(false) => "dynamic",
        None => "script or unknown",
    };
    println!(
        "{name:<15} {:>10} bytes  {kind:<17} {}",
        size(p),
        p.display()
    );
}

fn version(cmd: &str, arg: &str) -> String {
    let mut c = Command::new(cmd);
    c.arg(arg);
    timed(c, STEP_LIMIT)
        .map(|(_, o)| o.lines().next().unwrap_or("").trim().to_string())
        .unwrap_or_else(|e| format!("? ({e})"))
}

fn main() -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("the engine bench runs as root (containers, cgroups, podman's overlay storage)");
    }
    let berth_bin = std::env::var_os("BERTH")
        .map(PathBuf::from)
        .unwrap_or_else(|| berth_testkit::workspace_root().join("target/release/berth"));
    let monitor = berth_bin.with_file_name("berth-monitor");
    let runtime = berth_bin.with_file_name("berth-runtime");
    for bin in [&berth_bin, &monitor, &runtime] {
        if !bin.is_file() {
            bail!(
                "{} not built (cargo build --release -p berth-runtime; cargo build --release -p berth-cli -p berth-engine)",
                bin.display()
            );
        }
    }
    let work = berth_testkit::tempdir("engine");
    let tarball = busybox_tarball(work.path())?;
    println!("# engine benchmark: berth vs podman, the same busybox tarball imported into both");
    describe("berth", &berth_bin);
    describe("berth-monitor", &monitor);
    describe("berth-runtime", &runtime);
    let o = others(work.path())?;
    let berth = Berth::new(&berth_bin, &tarball, BERTH_IMAGE)?;
    let podman = match which("podman") {
        None => {
            println!("(podman not installed: left out)");
            None
        }
        Some(_) => match Podman::new(&tarball, PODMAN_IMAGE) {
            Ok(p) => Some(p),
            Err(e) => {
                println!("(podman left out: {e:#})");
                None
            }
        },
    };
    if podman.is_some() {
        println!("{}; conmon {}", version("podman", "--version"), {
            let v = version("conmon", "--version");
            v.trim_start_matches("conmon version ").to_string()
        });
        if let Some(c) = which("conmon") {
            describe("conmon", &c);
        }
    }
    let all = setups(&berth, &runtime, podman.as_ref(), &o);
    run_rm(&all);
    // Monitors: berth with its runtime vs podman with crun (or runc).
    let mut pair: Vec<&Setup> = vec![&all[0]];
    if let Some(p) = all.iter().find(|s| s.is_podman()) {
        pair.push(p);
    }
    let bins: Vec<Option<PathBuf>> = (pair.iter())
        .map(|s| {
            if s.is_podman() {
                which("conmon")
            } else {
                Some(monitor.clone())
            }
        })
        .collect();
    idle_monitor(&pair, &bins);
    many(&pair);
    drop(all);
    drop(podman);
    drop(berth);
    berth_testkit::unmount_all_under(work.path());
    Ok(())
}
