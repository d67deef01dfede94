//! berth-runtime swapped into Docker (Debian docker.io 20.10 and the
//! containerd it starts): `runtimes` in daemon.json, `docker run --runtime
//! berth --rm`, `-d` + exec + logs + stop, `--memory`, pause/unpause,
//! update, top. dockerd runs with private data-root, exec-root, pidfile and
//! socket, no iptables and no bridge (this host's setup), and is stopped by
//! the PID it was started with.

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Debian's client (another docker client may be first on PATH).
const DOCKER: &str = "/usr/bin/docker";

struct Dockerd {
    dir: tempfile::TempDir,
    daemon: Child,
}

impl Dockerd {
    fn start(runtime: &Path) -> Dockerd {
        let dir = berth_testkit::tempdir("dockerd");
        let d = dir.path();
        let cfg = serde_json::json!({
            "iptables": false, "bridge": "none",
            "exec-opts": ["native.cgroupdriver=cgroupfs"],
            "data-root": d.join("data"), "exec-root": d.join("exec"), "pidfile": d.join("docker.pid"),
            "hosts": [format!("unix://{}", d.join("docker.sock").display())],
            "storage-driver": "overlay2",
            "runtimes": {"berth": {"path": runtime}}
        });
        std::fs::write(d.join("daemon.json"), cfg.to_string()).unwrap();
        let log = std::fs::File::create(d.join("dockerd.log")).unwrap();
        let daemon = Command::new("dockerd")
            .arg("--config-file")
            .arg(d.join("daemon.json"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        let dk = Dockerd { dir, daemon };
        let end = Instant::now() + Duration::from_secs(60);
        while !dk.docker(&["version"]).status.success() {
            assert!(
                Instant::now() < end,
                "dockerd did not come up: {}",
                dk.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        dk
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    fn docker(&self, args: &[&str]) -> Output {
        let mut c = Command::new(DOCKER);
        c.arg("-H")
            .arg(format!(
                "unix://{}",
                self.dir.path().join("docker.sock").display()
            ))
            .args(args);
        berth_testkit::output_within(&mut c, common::CLIENT_TIMEOUT).into_output()
    }

    fn ok(&self, args: &[&str]) -> String {
        common::checked(&format!("docker {args:?}"), self.docker(args), &self.log())
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let _ = self.docker(&["rm", "-f", "-v", "bd1"]);
        common::stop(&mut self.daemon, Duration::from_secs(20));
        for sub in ["data", "exec"] {
            let _ = Command::new("umount")
                .arg("-R")
                .arg(self.dir.path().join(sub))
                .output();
        }
    }
}

#[test]
fn docker_with_berth_runtime() {
    const T: &str = "docker_with_berth_runtime";
    if !berth_testkit::require_root(T) {
        return;
    }
    if !Path::new(DOCKER).is_file() || !Path::new("/usr/sbin/dockerd").is_file() {
        berth_testkit::skip(T, "Docker is not installed (Debian package docker.io)");
        return;
    }
    let Some(berth) = common::berth_runtime(T) else {
        return;
    };
    common::become_subreaper();
    let dk = Dockerd::start(&berth);
    let rootfs = dk.dir.path().join("rootfs");
    berth_testkit::make_busybox_rootfs(&rootfs);
    let tar = dk.dir.path().join("bb.tar");
    assert!(Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap()
        .success());
    dk.ok(&["import", tar.to_str().unwrap(), "bb:latest"]);

    let out = dk.ok(&[
        "run",
        "--runtime",
        "berth",
        "--rm",
        "bb",
        "sh",
        "-c",
        "echo hi-from-docker",
    ]);
    assert_eq!(out.trim(), "hi-from-docker");
    let o = dk.docker(&[
        "run",
        "--runtime",
        "berth",
        "--rm",
        "bb",
        "sh",
        "-c",
        "exit 6",
    ]);
    assert_eq!(o.status.code(), Some(6));

    dk.ok(&[
        "run",
        "--runtime",
        "berth",
        "-d",
        "--name",
        "bd1",
        "--memory",
        "64m",
        "bb",
        "sh",
        "-c",
        "echo started; trap 'exit 0' TERM; while true; do sleep 0.1; done",
    ]);
    let out = dk.ok(&[
        "exec",
        "bd1",
        "sh",
        "-c",
        "echo in-exec; cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]);
    assert_eq!(out, "in-exec\n67108864\n");
    let end = Instant::now() + Duration::from_secs(10);
    while !dk.ok(&["logs", "bd1"]).contains("started") {
        assert!(Instant::now() < end, "no logs");
        std::thread::sleep(Duration::from_millis(50));
    }
    dk.ok(&["pause", "bd1"]);
    assert_eq!(
        dk.ok(&["inspect", "-f", "{{.State.Status}}", "bd1"]).trim(),
        "paused"
    );
    dk.ok(&["unpause", "bd1"]);
    assert_eq!(
        dk.ok(&["inspect", "-f", "{{.State.Status}}", "bd1"]).trim(),
        "running"
    );
    dk.ok(&["update", "--memory", "128m", "--memory-swap", "256m", "bd1"]);
    let out = dk.ok(&[
        "exec",
        "bd1",
        "cat",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]);
    assert_eq!(out.trim(), "134217728", "update reached the cgroup");
    let top = dk.ok(&["top", "bd1"]);
    assert!(top.lines().any(|l| l.contains("while true")), "{top}");
    dk.ok(&["stop", "-t", "5", "bd1"]);
    assert_eq!(
        dk.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "bd1"
        ])
        .trim(),
        "exited 0"
    );
    dk.ok(&["rm", "bd1"]);
    drop(dk);
    common::reap_orphans(Duration::from_secs(5));
    // The engine's parent cgroup (its containers' own are gone).
    common::remove_empty_parent_cgroup("docker");
}
