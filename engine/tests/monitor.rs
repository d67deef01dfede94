//! `berth-monitor` on its own, driving berth-runtime on a busybox bundle:
//! the start report, the json-file log, the exit file, `runtime delete`,
//! the exit command after the attach lock, and a failed start.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use berth_engine::layout::{ATTACH_LOCK, EXIT_FILE};
use berth_engine::monitor::Args;
use serde_json::Value;

fn runtime(test: &str) -> Option<PathBuf> {
    if !berth_testkit::require_root(test) {
        return None;
    }
    let p = std::env::var("BERTH_RUNTIME").unwrap_or_else(|_| {
        berth_testkit::workspace_root()
            .join("target/debug/berth-runtime")
            .display()
            .to_string()
    });
    berth_testkit::require_path(
        test,
        &p,
        "berth-runtime not built (cargo build -p berth-runtime, or set BERTH_RUNTIME)",
    )
    .then(|| PathBuf::from(p))
}

struct Setup {
    bundle: berth_testkit::Bundle,
    state: tempfile::TempDir,
    args: Args,
}

fn setup(rt: &Path, script: &str) -> Setup {
    let mut bundle = berth_testkit::Bundle::new(rt);
    bundle.set_script(script).save();
    let state = berth_testkit::tempdir("mon-state");
    let run_dir = state.path().join("run");
    fs::create_dir_all(&run_dir).unwrap();
    let args = Args {
        id: berth_testkit::unique("mon"),
        runtime: rt.to_path_buf(),
        runtime_root: state.path().join("rt"),
        bundle: bundle.path().to_path_buf(),
        log: state.path().join("ctr.log"),
        run_dir,
        remove: false,
        exit_command: Vec::new(),
        ..Args::default()
    };
    Setup {
        bundle,
        state,
        args,
    }
}

fn start(a: &Args) -> (bool, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_berth-monitor"))
        .args(a.to_argv())
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("monitor report: {}", String::from_utf8_lossy(&out.stdout)));
    (out.status.success(), v)
}

fn wait_for(p: &Path) {
    let end = Instant::now() + Duration::from_secs(20);
    while !p.exists() {
        assert!(
            Instant::now() < end,
            "timed out waiting for {}",
            p.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn runtime_knows(a: &Args) -> bool {
    Command::new(&a.runtime)
        .arg("--root")
        .arg(&a.runtime_root)
        .args(["state", &a.id])
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn monitor_logs_output_records_exit_and_deletes() {
    let Some(rt) = runtime("monitor_logs_output_records_exit_and_deletes") else {
        return;
    };
    let s = setup(&rt, "echo out; echo err >&2; printf partial; exit 5");
    let (ok, report) = start(&s.args);
    assert!(ok, "{report}");
    assert!(report["pid"].as_i64().unwrap() > 1, "{report}");
    wait_for(&s.args.run_dir.join(EXIT_FILE));
    let exit: Value =
        serde_json::from_slice(&fs::read(s.args.run_dir.join(EXIT_FILE)).unwrap()).unwrap();
    assert_eq!(exit["exit_code"], 5);
    assert!(exit["finished_at"].as_str().unwrap().ends_with('Z'));
    // The monitor drains and closes the log before it exits; wait for that.
    let end = Instant::now() + Duration::from_secs(20);
    while runtime_knows(&s.args) || berth_engine_monitor_alive(&s.args) {
        assert!(Instant::now() < end, "monitor did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
    let lines: Vec<Value> = fs::read_to_string(&s.args.log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut got: Vec<(String, String)> = lines
        .iter()
        .map(|l| {
            (
                l["stream"].as_str().unwrap().into(),
                l["log"].as_str().unwrap().into(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("stderr".into(), "err\n".into()),
            ("stdout".into(), "out\n".into()),
            ("stdout".into(), "partial".into())
        ]
    );
    assert!(
        lines
            .iter()
            .all(|l| l["time"].as_str().unwrap().len() == 30),
        "RFC 3339 with nanoseconds"
    );
    drop(s.bundle);
}

fn berth_engine_monitor_alive(a: &Args) -> bool {
    let f = fs::File::open(a.run_dir.join(berth_engine::layout::MONITOR_LOCK)).unwrap();
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockSharedNonblock).is_err()
}

#[test]
fn monitor_runs_exit_command_after_the_reader_lets_go() {
    let Some(rt) = runtime("monitor_runs_exit_command_after_the_reader_lets_go") else {
        return;
    };
    let mut s = setup(&rt, "exit 0");
    let marker = s.state.path().join("cleaned");
    s.args.remove = true;
    s.args.exit_command = vec!["/bin/touch".into(), marker.clone().into()];
    // A foreground reader holds the attach lock.
    let f = fs::File::create(s.args.run_dir.join(ATTACH_LOCK)).unwrap();
    let reader = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockShared).unwrap();
    let (ok, report) = start(&s.args);
    assert!(ok, "{report}");
    wait_for(&s.args.run_dir.join(EXIT_FILE));
    std::thread::sleep(Duration::from_millis(200));
    assert!(!marker.exists(), "the exit command waits for the reader");
    drop(reader);
    wait_for(&marker);
    assert!(!runtime_knows(&s.args), "runtime container deleted");
}

#[test]
fn monitor_reports_a_failed_start_and_leaves_nothing() {
    let Some(rt) = runtime("monitor_reports_a_failed_start_and_leaves_nothing") else {
        return;
    };
    let mut s = setup(&rt, "true");
    s.bundle.set_args(&["/no/such/program"]).save();
    let (ok, report) = start(&s.args);
    assert!(!ok);
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("/no/such/program"),
        "{report}"
    );
    assert!(!runtime_knows(&s.args), "runtime container deleted");
    assert!(!s.args.run_dir.join(EXIT_FILE).exists());
}
