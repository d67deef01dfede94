//! Runs the conformance suite against runc, crun (when installed) and
//! berth-runtime, prints one table, and checks two things separately:
//!
//! - `no_suspect_cases`: no case fails on both runc and crun (such a case
//!   is more likely wrong than the runtimes are);
//! - `berth_matches_runc`: the gate — berth-runtime passes every case that
//!   runc or crun passes.
//!
//! berth-runtime comes from `$BERTH_RUNTIME` or `<workspace>/target/debug/
//! berth-runtime` (`cargo xtask test` builds the workspace first).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

/// name -> (result, reason) for one runtime.
type Results = BTreeMap<String, (String, String)>;

struct Runs {
    runc: Option<Results>,
    crun: Option<Results>,
    berth: Option<Results>,
    /// Why a runtime was not run.
    missing: Vec<(String, String)>,
}

static RUNS: OnceLock<Runs> = OnceLock::new();

fn suite(runtime: &Path) -> Results {
    let out = Command::new(env!("CARGO_BIN_EXE_berth-conformance"))
        .arg("--runtime")
        .arg(runtime)
        .args([
            "--format",
            "json",
            "--helper",
            env!("CARGO_BIN_EXE_berth-runtimetest"),
        ])
        .output()
        .expect("run berth-conformance");
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "berth-conformance against {} failed to run: {}",
        runtime.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("suite JSON report");
    v["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (s("name"), (s("result"), s("reason")))
        })
        .collect()
}

fn which(bin: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(bin))
        .find(|p| p.is_file())
}

/// crun, wrapped so it runs on a hybrid-cgroup host (HOST.md): a private
/// mount namespace without the hugetlb-only cgroup2 mount.
/// The wrapper lives in `dir`.
fn crun(dir: &Path) -> Option<PathBuf> {
    let crun = which("crun")?;
    if !Path::new("/sys/fs/cgroup/unified/cgroup.controllers").exists() {
        return Some(crun);
    }
    let w = dir.join("crun");
    let script = format!(
        "#!/bin/sh\nexec unshare -m --propagation private sh -c 'umount /sys/fs/cgroup/unified && exec {} \"$@\"' crun \"$@\"\n",
        crun.display()
    );
    std::fs::write(&w, script).expect("write crun wrapper");
    std::fs::set_permissions(&w, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod crun wrapper");
    Some(w)
}

fn berth() -> Option<PathBuf> {
    let p = std::env::var_os("BERTH_RUNTIME")
        .map(PathBuf::from)
        .unwrap_or_else(|| berth_testkit::workspace_root().join("target/debug/berth-runtime"));
    p.is_file().then_some(p)
}

fn runs() -> &'static Runs {
    RUNS.get_or_init(|| {
        let mut missing = Vec::new();
        let runc = which("runc");
        if runc.is_none() {
            missing.push((
                "runc".into(),
                "runc not installed (Debian package runc)".into(),
            ));
        }
        let wrap_dir = berth_testkit::tempdir("crun-wrap");
        let crun = crun(wrap_dir.path());
        if crun.is_none() {
            missing.push((
                "crun".into(),
                "crun not installed (Debian package crun)".into(),
            ));
        }
        let berth = berth();
        if berth.is_none() {
            missing.push((
                "berth-runtime".into(),
                "no $BERTH_RUNTIME and no target/debug/berth-runtime (build the workspace)".into(),
            ));
        }
        // The three runs are independent (own state roots, unique ids): run them side by side.
        let (r, c, b) = std::thread::scope(|s| {
            let r = s.spawn(|| runc.as_deref().map(suite));
            let c = s.spawn(|| crun.as_deref().map(suite));
            let b = s.spawn(|| berth.as_deref().map(suite));
            (
                r.join().expect("runc run"),
                c.join().expect("crun run"),
                b.join().expect("berth run"),
            )
        });
        let runs = Runs {
            runc: r,
            crun: c,
            berth: b,
            missing,
        };
        print_table(&runs);
        runs
    })
}

fn print_table(runs: &Runs) {
    let cols = [
        ("runc", &runs.runc),
        ("crun", &runs.crun),
        ("berth", &runs.berth),
    ];
    let names: std::collections::BTreeSet<&String> = cols
        .iter()
        .filter_map(|(_, r)| r.as_ref())
        .flat_map(|r| r.keys())
        .collect();
    println!("{:<48} {:<6} {:<6} {:<6}", "case", "runc", "crun", "berth");
    for n in names {
        let cell = |r: &Option<Results>| {
            r.as_ref()
                .and_then(|r| r.get(n))
                .map(|(res, _)| res.clone())
                .unwrap_or_else(|| "-".into())
        };
        println!(
            "{:<48} {:<6} {:<6} {:<6}",
            n,
            cell(&runs.runc),
            cell(&runs.crun),
            cell(&runs.berth)
        );
    }
    for (name, r) in cols {
        if let Some(r) = r {
            let count = |w: &str| r.values().filter(|(res, _)| res == w).count();
            println!(
                "{name}: {} pass, {} fail, {} skip",
                count("pass"),
                count("fail"),
                count("skip")
            );
        }
    }
    for (name, r) in cols {
        for (case, (res, why)) in r.iter().flatten() {
            if res != "pass" {
                println!("{name} {res} {case}: {why}");
            }
        }
    }
    for (rt, why) in &runs.missing {
        println!("{rt}: not run: {why}");
    }
}

fn failed(r: &Option<Results>, name: &str) -> bool {
    r.as_ref()
        .and_then(|r| r.get(name))
        .is_some_and(|(res, _)| res == "fail")
}

fn passed(r: &Option<Results>, name: &str) -> bool {
    r.as_ref()
        .and_then(|r| r.get(name))
        .is_some_and(|(res, _)| res == "pass")
}

/// Cases runc 1.1 (Debian 12) fails for documented reasons; each passes on
/// crun 1.8. Only consulted when crun is not there to tell.
const RUNC_1_1_GAPS: [(&str, &str); 4] = [
    ("linux.domainname", "runc < 1.2 ignores domainname"),
    (
        "personality.linux32",
        "runc < 1.2 ignores linux.personality",
    ),
    (
        "root.propagation_shared",
        "runc 1.1 leaves the new / private whatever rootfsPropagation says",
    ),
    (
        "hooks.order",
        "runc 1.1 runs startContainer hooks concurrently with poststart hooks",
    ),
];

/// Cases where runc and crun both race against the spec, so either may
/// fail them on any run: not suspect when both fail.
const RACY_IN_BOTH: &[(&str, &str)] = &[(
    "hooks.order",
    "runc 1.1 and crun 1.8 run poststart hooks as soon as they signal the container to start, racing the startContainer hooks inside it",
)];

#[test]
fn no_suspect_cases() {
    if !berth_testkit::require_root("no_suspect_cases") {
        return;
    }
    let runs = runs();
    let Some(runc) = &runs.runc else {
        berth_testkit::skip(
            "no_suspect_cases",
            "runc not installed (Debian package runc)",
        );
        return;
    };
    // Without crun, every runc failure counts as suspect.
    let suspects: Vec<String> = runc
        .iter()
        .filter(|(n, (res, _))| {
            res == "fail"
                && !RACY_IN_BOTH.iter().any(|(r, _)| r == n)
                && match runs.crun {
                    None => !RUNC_1_1_GAPS.iter().any(|(g, _)| g == n),
                    Some(_) => failed(&runs.crun, n),
                }
        })
        .map(|(n, (_, why))| format!("{n}: {why}"))
        .collect();
    assert!(
        suspects.is_empty(),
        "cases failing on both runc and crun (fix the case or document it):\n{}",
        suspects.join("\n")
    );
}

/// The gate: berth-runtime fails no case that runc or crun passes. To
/// switch it off in CI, mark it `#[ignore]` (it then runs with `--ignored`).
#[test]
fn berth_matches_runc() {
    if !berth_testkit::require_root("berth_matches_runc") {
        return;
    }
    let runs = runs();
    let Some(berth) = &runs.berth else {
        berth_testkit::skip(
            "berth_matches_runc",
            "berth-runtime not built: set $BERTH_RUNTIME or build the workspace",
        );
        return;
    };
    if runs.runc.is_none() && runs.crun.is_none() {
        berth_testkit::skip(
            "berth_matches_runc",
            "neither runc nor crun installed to compare with",
        );
        return;
    }
    let bugs: Vec<String> = berth
        .iter()
        .filter(|(n, (res, _))| res == "fail" && (passed(&runs.runc, n) || passed(&runs.crun, n)))
        .map(|(n, (_, why))| format!("{n}: {why}"))
        .collect();
    assert!(
        bugs.is_empty(),
        "berth-runtime fails {} case(s) that runc or crun passes:\n{}",
        bugs.len(),
        bugs.join("\n")
    );
}
