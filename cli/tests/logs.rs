//! Logs: json-file and k8s-file formats, size rotation (`--log-opt
//! max-size`, `max-file`), `logs -t` and `--since`. As root, berth-runtime.

mod common;

use std::fs;

use common::*;

#[test]
fn k8s_file_log_driver_writes_cri_records() {
    let test = "k8s_file_log_driver_writes_cri_records";
    let Some(rt) = runtime(test, "berth-runtime") else {
        return;
    };
    let e = Env::new("logs-k8s", rt);
    let o = e.run(&[
        "--name",
        "k",
        "--log-driver",
        "k8s-file",
        "busybox:test",
        "sh",
        "-c",
        "echo out; echo err >&2; printf partial",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "out\npartial");
    assert_eq!(text(&o.stderr), "err\n");
    let v = inspect(&e, "k");
    assert_eq!(v["HostConfig"]["LogConfig"]["Type"], "k8s-file");
    let path = v["LogPath"].as_str().unwrap().to_string();
    assert!(path.ends_with("/ctr.log"), "{path}");
    let file = fs::read_to_string(&path).unwrap();
    let recs: Vec<Vec<&str>> = file.lines().map(|l| l.splitn(4, ' ').collect()).collect();
    let mut seen: Vec<(&str, &str, &str)> = recs.iter().map(|r| (r[1], r[2], r[3])).collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("stderr", "F", "err"),
            ("stdout", "F", "out"),
            ("stdout", "P", "partial")
        ],
        "{file}"
    );
    for r in &recs {
        assert!(
            berth_storage::parse_rfc3339(r[0]).is_some(),
            "a time: {}",
            r[0]
        );
    }
    let o = e.berth(&["logs", "k"]);
    assert_eq!(text(&o.stdout), "out\npartial");
    assert_eq!(text(&o.stderr), "err\n");
    e.ok(&["rm", "k"]);
    e.assert_no_containers();
}

#[test]
fn log_rotation_keeps_max_file_files_of_max_size() {
    let test = "log_rotation_keeps_max_file_files_of_max_size";
    let Some(rt) = runtime(test, "berth-runtime") else {
        return;
    };
    let e = Env::new("logs-rotate", rt);
    e.ok(&[
        "run",
        "-d",
        "--runtime",
        &e.runtime,
        "--name",
        "r",
        "--log-opt",
        "max-size=2k",
        "--log-opt",
        "max-file=3",
        "busybox:test",
        "sh",
        "-c",
        "i=0; while [ $i -lt 500 ]; do echo line-$i; i=$((i+1)); done",
    ]);
    eventually("r exited", || {
        inspect(&e, "r")["State"]["Status"] == "exited"
    });
    let v = inspect(&e, "r");
    assert_eq!(v["HostConfig"]["LogConfig"]["Config"]["max-file"], "3");
    let path = v["LogPath"].as_str().unwrap().to_string();
    for f in [path.clone(), format!("{path}.1"), format!("{path}.2")] {
        let n = fs::metadata(&f)
            .unwrap_or_else(|e| panic!("{f}: {e}"))
            .len();
        assert!(n > 0 && n <= 2048, "{f}: {n} bytes");
    }
    assert!(!std::path::Path::new(&format!("{path}.3")).exists());
    // `logs` reads the kept files oldest first: the tail of the output, whole.
    let out = e.ok(&["logs", "r"]);
    let nums: Vec<u32> = out
        .lines()
        .map(|l| l.strip_prefix("line-").unwrap().parse().unwrap())
        .collect();
    assert_eq!(*nums.last().unwrap(), 499);
    assert!(
        nums.len() > 50,
        "three files of 2 KiB hold more than 50 lines"
    );
    assert!(
        nums.windows(2).all(|w| w[1] == w[0] + 1),
        "contiguous: {nums:?}"
    );
    e.ok(&["rm", "r"]);
    e.assert_no_containers();
}

#[test]
fn logs_timestamps_and_since() {
    let test = "logs_timestamps_and_since";
    let Some(rt) = runtime(test, "berth-runtime") else {
        return;
    };
    let e = Env::new("logs-since", rt);
    e.ok(&[
        "run",
        "--runtime",
        &e.runtime,
        "--name",
        "s",
        "busybox:test",
        "sh",
        "-c",
        "echo a; echo b",
    ]);
    let out = e.ok(&["logs", "-t", "s"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2);
    for (l, want) in lines.iter().zip(["a", "b"]) {
        let (t, rest) = l.split_once(' ').unwrap();
        assert!(berth_storage::parse_rfc3339(t).is_some(), "{l}");
        assert_eq!(rest, want);
    }
    assert_eq!(e.ok(&["logs", "--since", "1h", "s"]), "a\nb\n");
    assert_eq!(
        e.ok(&["logs", "--since", "2000-01-01T00:00:00Z", "s"]),
        "a\nb\n"
    );
    let later = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600)
        .to_string();
    assert_eq!(e.ok(&["logs", "--since", &later, "s"]), "");
    let o = e.berth(&["logs", "--since", "yesterday", "s"]);
    assert_eq!(code(&o), 125);
    assert!(text(&o.stderr).contains("--since"), "{}", text(&o.stderr));
    e.ok(&["rm", "s"]);
    e.assert_no_containers();
}

#[test]
fn bad_log_options_are_refused_before_anything_exists() {
    let test = "bad_log_options_are_refused_before_anything_exists";
    let Some(rt) = runtime(test, "berth-runtime") else {
        return;
    };
    let e = Env::new("logs-bad", rt);
    e.assert_run_refused(&[
        (&["--log-driver", "syslog"][..], "--log-driver"),
        (&["--log-opt", "max-size=lots"][..], "max-size"),
        (
            &["--log-opt", "max-size=1m", "--log-opt", "max-file=0"][..],
            "max-file",
        ),
        (&["--log-opt", "max-file=2"][..], "max-file needs max-size"),
        (&["--log-opt", "mode=non-blocking"][..], "--log-opt"),
    ]);
}
