//! Developer tasks: `cargo xtask demo | test | bench`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.first().map(String::as_str) {
        Some("demo") => demo(),
        Some("test") => test(&args[1..]),
        Some("bench") => bench(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask demo | test [cargo test args] | bench [runtime|pull|engine|net|all] [--quick]"
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
    let test = |args: &[&str], limit_min: u64| {
        let mut t = cargo();
        t.args(["test", "--no-fail-fast"])
            .args(args)
            .args(extra)
            .env("BERTH_SKIP_LOG", &skip_log)
            .env("BERTH_RUNTIME", target_dir().join("debug/berth-runtime"));
        run_within(t, Duration::from_secs(limit_min * 60))
    };
    // Deadlines far above the usual run (about 5 and 3 minutes here), well
    // inside CI's own.
    let r = test(&["--workspace", "--exclude", "berth-conformance"], 25);
    // The conformance suite prints its runc / crun / berth table.
    let c = test(
        &[
            "-p",
            "berth-conformance",
            "--",
            "--nocapture",
            "--test-threads",
            "1",
        ],
        15,
    );
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
        let dir = shipped_build(&["berth-runtime"])?;
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
        // finds the others next to itself. Two invocations: built together,
        // Cargo unifies the dependencies' features differently and relinks
        // berth-runtime, which the runtime bench then relinks again.
        let dir = shipped_build(&["berth-runtime"])?;
        shipped_build(&["berth-cli", "berth-engine"])?;
        shipped_monitor(&dir)?;
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

/// Release builds of `packages` as shipped, returning the directory that
/// holds their binaries: static (glibc with `crt-static`, Debian's
/// `libseccomp.a`) — no dynamic loading on each exec — and not
/// position-independent, as Go builds runc: nothing to relocate at start,
/// so no relocation table read and no relocated pages made private (84 KiB
/// of the idle monitor's RSS, 440 KiB of the runtime's). The price is a
/// fixed address for the binary's own code (the stack, heap and mmaps stay
/// randomised). Built for the explicit host target so that proc-macros stay
/// dynamic. Falls back to the dynamic release build when `libseccomp.a` is
/// missing or the host is not x86_64 glibc.
fn shipped_build(packages: &[&str]) -> Result<PathBuf> {
    shipped_build_with(&["--release"], packages, "release")
}

/// berth-monitor as shipped: built for size (profile `release-small`,
/// opt-level "s"), then put next to `berth` in `dir`. One sits idle beside
/// every container, so its resident pages count for more than its speed.
fn shipped_monitor(dir: &Path) -> Result<()> {
    let small = shipped_build_with(
        &["--profile", "release-small", "--bin", "berth-monitor"],
        &["berth-engine"],
        "release-small",
    )?;
    std::fs::copy(small.join("berth-monitor"), dir.join("berth-monitor"))
        .context("copy the size-built berth-monitor next to berth")?;
    Ok(())
}

fn shipped_build_with(args: &[&str], packages: &[&str], profile_dir: &str) -> Result<PathBuf> {
    let lib = Path::new("/usr/lib/x86_64-linux-gnu/libseccomp.a");
    let host = host_triple()?;
    let mut r = cargo();
    r.arg("build").args(args);
    for p in packages {
        r.args(["-p", p]);
    }
    if !lib.is_file() || host != "x86_64-unknown-linux-gnu" {
        eprintln!(
            "xtask: no static build ({} missing or host {host}); benchmarking the dynamic one",
            lib.display()
        );
        run(r)?;
        return Ok(target_dir().join(profile_dir));
    }
    r.args(["--target", &host])
        .env(
            "RUSTFLAGS",
            "-C target-feature=+crt-static -C relocation-model=static",
        )
        .env("LIBSECCOMP_LINK_TYPE", "static")
        .env("LIBSECCOMP_LIB_PATH", lib.parent().expect("dir"));
    run(r)?;
    Ok(target_dir().join(&host).join(profile_dir))
}

fn host_triple() -> Result<String> {
    let out = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("-vV")
        .output()
        .context("rustc -vV")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .context("rustc -vV printed no host")
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
