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
use std::time::Duration;

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

/// Docker's default seccomp profile (from Debian's containers-common), in
/// the OCI form an engine hands to the runtime.
fn docker_profile() -> Result<serde_json::Value> {
    let p = berth_testkit::CONTAINERS_SECCOMP_PROFILE;
    let d: serde_json::Value = serde_json::from_slice(
        &std::fs::read(p)
            .with_context(|| format!("read {p} (Debian golang-github-containers-common)"))?,
    )?;
    Ok(berth_testkit::default_seccomp_profile_as_oci(&d))
}

fn limited(bundle: &mut berth_testkit::Bundle) -> Result<()> {
    let profile = docker_profile()?;
    bundle.edit(|c| {
        c["linux"]["seccomp"] = profile;
        c["linux"]["resources"] = serde_json::json!({
            "memory": {"limit": 268435456},
            "pids": {"limit": 256},
            "cpu": {"quota": 50000, "period": 100000},
            "devices": [{"allow": false, "access": "rwm"}]
        });
    });
    bundle.save();
    Ok(())
}

fn scenario(name: &str, rts: &[Runtime], bundle: &berth_testkit::Bundle) -> Result<()> {
    let roots: Vec<_> = rts.iter().map(|_| berth_testkit::state_root()).collect();
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); rts.len()];
    let mut failed: Vec<Option<String>> = vec![None; rts.len()];
    let n = iterations(30);
    for i in 0..n {
        for (k, rt) in rts.iter().enumerate() {
            if failed[k].is_some() {
                continue;
            }
            let mut c = rt.command(roots[k].path());
            c.args(["run", "--bundle"])
                .arg(bundle.path())
                .arg(format!("bench-{i}"));
            match run_quiet(c) {
                Ok(d) => times[k].push(d),
                Err(e) => failed[k] = Some(format!("{e:#}")),
            }
        }
    }
    println!("\n## {name}: run of /bin/true, {n} interleaved iterations");
    println!(
        "{:<15} {:>10} {:>12} {:>14}",
        "runtime", "median ms", "vs crun", "peak RSS KiB"
    );
    let crun_med = rts
        .iter()
        .position(|r| r.name == "crun")
        .filter(|k| failed[*k].is_none())
        .map(|k| median(&mut times[k].clone()));
    for (k, rt) in rts.iter().enumerate() {
        if let Some(e) = &failed[k] {
            println!("{:<15} failed: {e}", rt.name);
            continue;
        }
        let med = median(&mut times[k]);
        let mut c = rt.command(roots[k].path());
        c.args(["run", "--bundle"])
            .arg(bundle.path())
            .arg("bench-rss");
        let rss = peak_rss_kib(&c)
            .map(|r| r.to_string())
            .unwrap_or_else(|e| format!("? ({e})"));
        let ratio = crun_med
            .map(|c| format!("{:.2}x", ms(med) / ms(c)))
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<15} {:>10.2} {:>12} {:>14}",
            rt.name,
            ms(med),
            ratio,
            rss
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
    println!("# runtime comparison (wrapper: private mount ns; RSS is of the wrapped run, wrapper included)");
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
    limited(&mut bundle)?;
    scenario(
        "memory+pids+cpu limits + docker default seccomp profile",
        &rts,
        &bundle,
    )
    .context("limited scenario")?;
    Ok(())
}
