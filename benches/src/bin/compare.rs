//! `cargo xtask bench`: berth-runtime vs runc vs crun, interleaved in one
//! run: `run` (create+start+wait+delete) of `/bin/true` in a busybox bundle,
//! plain and with memory+pids+cpu limits and Docker's default seccomp
//! profile; medians,
//! ratios, peak RSS and binary sizes.
//!
//! Debian's crun refuses hybrid cgroup hosts, so every runtime is run the
//! same way: inside a private mount namespace with /sys/fs/cgroup/unified
//! unmounted (the wrapper's cost is the same for all three).

use std::path::PathBuf;

use anyhow::{Context, Result};
use berth_benches::*;

fn wrapper(dir: &std::path::Path, bin: &std::path::Path) -> Result<Vec<String>> {
    Ok(vec![mount_ns_wrapper(dir, bin)?
        .to_string_lossy()
        .into_owned()])
}

fn runtimes(dir: &std::path::Path) -> Result<Vec<Runtime>> {
    let berth = std::env::var_os("BERTH_RUNTIME")
        .map(PathBuf::from)
        .unwrap_or_else(|| berth_testkit::workspace_root().join("target/release/berth-runtime"));
    let mut v = vec![Runtime {
        name: "berth-runtime".into(),
        argv: wrapper(dir, &berth)?,
        binary: berth,
    }];
    for name in ["crun", "runc"] {
        match which(name) {
            Some(p) => v.push(Runtime {
                name: name.into(),
                argv: wrapper(dir, &p)?,
                binary: p,
            }),
            None => eprintln!("compare: {name} not installed, left out"),
        }
    }
    Ok(v)
}

/// `rounds` interleaved rounds of `run --bundle B <prefix>-<i>` by every
/// runtime, each measured by `measure`: per runtime, its samples, or the
/// first error (after which that runtime is left out of later rounds).
fn interleaved<T>(
    rts: &[Runtime],
    roots: &[tempfile::TempDir],
    bundle: &berth_testkit::Bundle,
    rounds: usize,
    prefix: &str,
    measure: impl Fn(std::process::Command) -> Result<T>,
) -> Vec<std::result::Result<Vec<T>, String>> {
    let mut out: Vec<std::result::Result<Vec<T>, String>> =
        rts.iter().map(|_| Ok(Vec::new())).collect();
    for i in 0..rounds {
        for (k, rt) in rts.iter().enumerate() {
            let Ok(samples) = &mut out[k] else {
                continue;
            };
            let mut c = rt.command(roots[k].path());
            c.args(["run", "--bundle"])
                .arg(bundle.path())
                .arg(format!("{prefix}-{i}"));
            match measure(c) {
                Ok(v) => samples.push(v),
                Err(e) => out[k] = Err(format!("{e:#}")),
            }
        }
    }
    out
}

fn scenario(name: &str, rts: &[Runtime], bundle: &berth_testkit::Bundle) -> Result<()> {
    let roots: Vec<_> = rts.iter().map(|_| berth_testkit::state_root()).collect();
    let n = iterations(30);
    let times = interleaved(rts, &roots, bundle, n, "bench", run_quiet);
    // Peak RSS: the runtime's own processes (measured inside the wrapper),
    // several samples each, interleaved; the median is reported.
    let rss = interleaved(rts, &roots, bundle, 7, "bench-rss", wrapped_peak_rss_kib);
    println!("\n## {name}: run of /bin/true, {n} interleaved iterations");
    println!(
        "{:<15} {:>10} {:>12} {:>14} {:>13}",
        "runtime", "median ms", "vs crun", "peak RSS KiB", "(min-max)"
    );
    let crun_med = rts
        .iter()
        .position(|r| r.name == "crun")
        .and_then(|k| times[k].as_ref().ok())
        .map(|t| median(&mut t.clone()));
    for (k, rt) in rts.iter().enumerate() {
        let t = match &times[k] {
            Ok(t) => t,
            Err(e) => {
                println!("{:<15} failed: {e}", rt.name);
                continue;
            }
        };
        let med = median(&mut t.clone());
        let (rss_med, range) = match &rss[k] {
            Err(e) => (format!("? ({e})"), String::new()),
            Ok(r) => {
                let mut r = r.clone();
                r.sort();
                (
                    r[r.len() / 2].to_string(),
                    format!("({}-{})", r[0], r[r.len() - 1]),
                )
            }
        };
        let ratio = crun_med
            .map(|c| format!("{:.2}x", ms(med) / ms(c)))
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<15} {:>10.2} {:>12} {:>14} {:>13}",
            rt.name,
            ms(med),
            ratio,
            rss_med,
            range
        );
    }
    Ok(())
}

fn main() -> Result<()> {
    let dir = berth_testkit::tempdir("bench");
    let rts = runtimes(dir.path())?;
    let berth = &rts[0];
    let mut bundle = berth_testkit::Bundle::new(&berth.binary);
    // crun 1.8 refuses ociVersion 1.2.0; every runtime here accepts 1.0.2.
    bundle
        .set_args(&["/bin/true"])
        .edit(|c| c["ociVersion"] = serde_json::json!("1.0.2"))
        .save();
    println!("# runtime comparison (every runtime behind the same wrapper, a private mount ns; peak RSS is the runtime's own processes, measured inside it: median of 7 runs)");
    println!("{:<15} {:>12}", "binary", "size bytes");
    for rt in &rts {
        println!(
            "{:<15} {:>12}  {}",
            rt.name,
            size(&rt.binary),
            rt.binary.display()
        );
    }
    scenario("plain", &rts, &bundle).context("plain scenario")?;
    berth_testkit::limit_and_filter(&mut bundle).map_err(anyhow::Error::msg)?;
    scenario(
        "memory+pids+cpu limits + docker default seccomp profile",
        &rts,
        &bundle,
    )
    .context("limited scenario")?;
    Ok(())
}
