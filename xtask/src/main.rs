//! Developer tasks: `cargo xtask demo | test | bench | dist`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

// The tracer knows x86_64 (int3, rip) only; elsewhere `ship` builds the
// dynamic release, which it does not lay out.
#[cfg(target_arch = "x86_64")]
mod layout;
#[cfg(not(target_arch = "x86_64"))]
mod layout {
    use std::path::Path;

    pub fn train(_: &Path, _: &Path) -> anyhow::Result<(usize, usize)> {
        anyhow::bail!("the layout tracer knows x86_64 only")
    }

    pub fn train_monitor(_: &Path, _: &Path, _: &Path) -> anyhow::Result<(usize, usize)> {
        anyhow::bail!("the layout tracer knows x86_64 only")
    }
}
mod ship;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.first().map(String::as_str) {
        Some("demo") => demo(),
        Some("test") => test(&args[1..]),
        Some("bench") => bench(&args[1..]),
        Some("dist") => dist(),
        _ => {
            eprintln!(
                "usage: cargo xtask demo | test [cargo test args] | bench [runtime|pull|engine|net|all] [--quick] | dist"
            );
            std::process::exit(2);
        }
    };
    if let Err(e) = r {
        eprintln!("xtask: {e:#}");
        std::process::exit(1);
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

fn run(mut c: Command) -> Result<()> {
    let desc = format!("{c:?}");
    let st = c.status().with_context(|| format!("spawn {desc}"))?;
    if !st.success() {
        bail!("{desc} failed: {st}");
    }
    Ok(())
}

/// Run `c` like [`run`], but kill its whole process group (SIGKILL, by the
/// group leader's PID) when it overruns `limit`: a hung test must fail the
/// job with its name on screen, not hold CI until the job's own deadline.
fn run_within(mut c: Command, limit: Duration) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let desc = format!("{c:?}");
    let mut child = c
        .process_group(0)
        .spawn()
        .with_context(|| format!("spawn {desc}"))?;
    match berth_testkit::wait_or_kill_group(&mut child, limit, false) {
        Some(st) if st.success() => Ok(()),
        Some(st) => bail!("{desc} failed: {st}"),
        None => bail!(
            "{desc} did not finish within {} min and was killed; the test(s) cargo reported as running for over 60 seconds above are the hung ones",
            limit.as_secs() / 60
        ),
    }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// Build berth-runtime, make a busybox bundle, run it.
fn demo() -> Result<()> {
    let mut b = cargo();
    b.args(["build", "--release", "-p", "berth-runtime"]);
    run(b)?;
    let rt = target_dir().join("release/berth-runtime");
    let bundle = berth_testkit::Bundle::new(&rt);
    let mut bundle = bundle;
    bundle
        .set_script(
            "echo \"hello from $(hostname), pid $$, uid $(id -u)\"; echo 'processes:'; ps -o pid,args; echo 'network:'; ip -o link | cut -d: -f2",
        )
        .edit(|c| c["hostname"] = serde_json::json!("berth-demo"))
        .save();
    let state = berth_testkit::state_root();
    println!(
        "$ berth-runtime run --bundle {} demo",
        bundle.path().display()
    );
    let mut c = Command::new(&rt);
    c.arg("--root")
        .arg(state.path())
        .args(["run", "--bundle"])
        .arg(bundle.path())
        .arg("demo");
    run(c)?;
    println!("demo: ok ({}, bundle from busybox-static)", rt.display());
    Ok(())
}

/// Build everything, run every test, report named skips.
fn test(extra: &[String]) -> Result<()> {
    let skip_log = target_dir().join("berth-skips.log");
    let _ = std::fs::create_dir_all(target_dir());
    let _ = std::fs::remove_file(&skip_log);
    // Binaries other packages' tests drive (conformance runs berth-runtime).
    let mut b = cargo();
    b.args(["build", "--workspace", "--bins"]);
    run(b)?;
    let mut l = cargo();
    l.args(["clippy", "--workspace", "--all-targets", "--quiet"]);
    run(l).context("clippy (deny-level lints, e.g. undocumented unsafe blocks)")?;
    let test = |args: &[&str], runtime: &Path, limit_min: u64| {
        let mut t = cargo();
        t.args(["test", "--no-fail-fast"])
            .args(args)
            .args(extra)
            .env("BERTH_SKIP_LOG", &skip_log)
            .env("BERTH_RUNTIME", runtime);
        run_within(t, Duration::from_secs(limit_min * 60))
    };
    // Deadlines far above the usual run (about 5 and 3 minutes here), well
    // inside CI's own.
    let debug = target_dir().join("debug/berth-runtime");
    let r = test(
        &["--workspace", "--exclude", "berth-conformance"],
        &debug,
        25,
    );
    // The conformance suite (it prints its runc / crun / berth table) runs
    // against berth-runtime as shipped: static, non-PIE, laid out.
    let c = ship::runtime().and_then(|dir| {
        test(
            &[
                "-p",
                "berth-conformance",
                "--",
                "--nocapture",
                "--test-threads",
                "1",
            ],
            &dir.join("berth-runtime"),
            15,
        )
    });
    let r = r.and(c);
    // The side-by-side comparisons, short: CI shows the ratios every run.
    println!("\nbenchmarks (quick: a third of the iterations of `cargo xtask bench`)");
    let r = r.and(bench(&["all".into(), "--quick".into()]));
    let skips = std::fs::read_to_string(&skip_log).unwrap_or_default();
    let n = skips.lines().count();
    println!("\nnamed skips: {n}");
    for l in skips.lines() {
        println!("  {l}");
    }
    r
}

/// `dist`: the binaries as shipped (see `ship`), side by side in one
/// directory, which it prints: berth-runtime, berth, berth-monitor,
/// berth-netd.
fn dist() -> Result<()> {
    let dir = ship::runtime()?;
    ship::build(&["berth-cli", "berth-engine", "berth-netd"])?;
    ship::monitor(&dir)?;
    println!("{}", dir.display());
    Ok(())
}

/// `bench [runtime|pull|engine|net|all] [ARGS]`: the runtime comparison
/// (default), the pull comparison, the engine comparison (berth vs podman),
/// the network comparison (berth-netd vs a veth pair and netavark), or all.
fn bench(args: &[String]) -> Result<()> {
    let (which, rest) = match args.first().map(String::as_str) {
        Some(w @ ("runtime" | "pull" | "engine" | "net" | "all")) => (w, &args[1..]),
        _ => ("runtime", args),
    };
    let all = which == "all";
    if all || which == "runtime" {
        let dir = ship::runtime()?;
        bench_bin(
            "compare",
            rest,
            &[("BERTH_RUNTIME", dir.join("berth-runtime"))],
        )?;
    }
    if all || which == "pull" {
        let mut r = cargo();
        r.args(["build", "--release", "-p", "berth-cli"]);
        run(r)?;
        bench_bin("pull", rest, &[])?;
    }
    if all || which == "engine" {
        // berth, berth-monitor and berth-runtime side by side, so berth
        // finds the others next to itself. The runtime is its own `cargo
        // rustc` (laid out); built with berth, Cargo would unify the
        // dependencies' features differently and relink it.
        let dir = ship::runtime()?;
        ship::build(&["berth-cli", "berth-engine"])?;
        ship::monitor(&dir)?;
        bench_bin("engine", rest, &[("BERTH", dir.join("berth"))])?;
    }
    if all || which == "net" {
        let mut r = cargo();
        r.args(["build", "--release", "-p", "berth-netd"]);
        run(r)?;
        bench_bin("net", rest, &[])?;
    }
    Ok(())
}

/// Run the benches' `bin` (release) with `env` set; whatever it measures
/// is built by the caller.
fn bench_bin(bin: &str, args: &[String], env: &[(&str, PathBuf)]) -> Result<()> {
    let mut b = cargo();
    b.args([
        "run",
        "--release",
        "-p",
        "berth-benches",
        "--bin",
        bin,
        "--",
    ])
    .args(args);
    for (k, v) in env {
        b.env(k, v);
    }
    run_within(b, Duration::from_secs(20 * 60))
}
