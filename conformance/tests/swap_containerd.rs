//! berth-runtime swapped into containerd 1.6 (Debian) through its runc shim
//! v2 with another binary (`ctr run --runc-binary`, the same knob as
//! `BinaryName` in config.toml): run --rm, run -d + exec + pause/resume +
//! metrics + kill + delete. containerd runs on private root, state and
//! sockets under a temp dir (CRI plugin disabled) and is stopped by PID.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::which;

struct Containerd {
    dir: tempfile::TempDir,
    daemon: Child,
    runtime: PathBuf,
    rootfs: PathBuf,
    ids: Vec<String>,
}

impl Containerd {
    fn start(runtime: PathBuf) -> Containerd {
        let dir = berth_testkit::tempdir("containerd");
        let d = dir.path();
        std::fs::write(
            d.join("config.toml"),
            format!(
                "version = 2\nroot = \"{0}/root\"\nstate = \"{0}/state\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{0}/containerd.sock\"\n\
                 [ttrpc]\n  address = \"{0}/containerd-ttrpc.sock\"\n",
                d.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(d.join("containerd.log")).unwrap();
        let daemon = Command::new("containerd")
            .arg("--config")
            .arg(d.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let rootfs = d.join("rootfs");
        berth_testkit::make_busybox_rootfs(&rootfs);
        let c = Containerd {
            dir,
            daemon,
            runtime,
            rootfs,
            ids: Vec::new(),
        };
        let end = Instant::now() + Duration::from_secs(20);
        while !c.ctr(&["version"]).status.success() {
            assert!(
                Instant::now() < end,
                "containerd did not come up: {}",
                c.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        c
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    fn ctr(&self, args: &[&str]) -> Output {
        let mut c = Command::new("ctr");
        c.arg("--address")
            .arg(self.dir.path().join("containerd.sock"))
            .args(args);
        berth_testkit::output_within(&mut c, common::CLIENT_TIMEOUT).into_output()
    }

    fn ok(&self, args: &[&str]) -> String {
        common::checked(&format!("ctr {args:?}"), self.ctr(args), &self.log())
    }

    /// `ctr run` with berth-runtime as the shim's runc binary.
    fn run(&mut self, id: &str, extra: &[&str], cmd: &[&str]) -> Output {
        self.ids.push(id.to_string());
        let rt = self.runtime.to_string_lossy().into_owned();
        let rootfs = self.rootfs.to_string_lossy().into_owned();
        // `--rootfs` is a flag; the rootfs path is then the first positional.
        let mut args = vec!["run", "--runc-binary", &rt];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--rootfs", &rootfs]);
        args.push(id);
        args.extend_from_slice(cmd);
        self.ctr(&args)
    }

    fn task_status(&self, id: &str) -> String {
        let out = self.ok(&["task", "ls"]);
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .and_then(|l| l.split_whitespace().nth(2))
            .unwrap_or("")
            .to_string()
    }

    fn wait_status(&self, id: &str, want: &str) {
        let end = Instant::now() + Duration::from_secs(15);
        while self.task_status(id) != want {
            assert!(
                Instant::now() < end,
                "{id}: task status {:?}, wanted {want}",
                self.task_status(id)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        for id in self.ids.clone() {
            let _ = self.ctr(&["task", "kill", "-s", "SIGKILL", &id]);
            let _ = self.ctr(&["task", "delete", "--force", &id]);
            let _ = self.ctr(&["container", "delete", &id]);
        }
        common::stop(&mut self.daemon, Duration::from_secs(10));
        let _ = Command::new("umount")
            .arg("-R")
            .arg(self.dir.path().join("state"))
            .output();
    }
}

#[test]
fn containerd_with_berth_runtime() {
    const T: &str = "containerd_with_berth_runtime";
    if !berth_testkit::require_root(T) {
        return;
    }
    if which("containerd").is_none()
        || which("ctr").is_none()
        || which("containerd-shim-runc-v2").is_none()
    {
        berth_testkit::skip(T, "containerd is not installed (Debian package containerd)");
        return;
    }
    let Some(berth) = common::berth_runtime(T) else {
        return;
    };
    common::become_subreaper();
    let mut c = Containerd::start(berth);

    // run --rm in the foreground: output and exit status come through.
    let id = berth_testkit::unique("ctd").replace('-', "");
    let o = c.run(
        &id,
        &["--rm"],
        &["sh", "-c", "echo hi-from-containerd; exit 5"],
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "hi-from-containerd",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(5), "exit status through the shim");

    // detached: exec, pause/resume, metrics, kill, delete.
    let id = berth_testkit::unique("ctdd").replace('-', "");
    let o = c.run(
        &id,
        &["-d"],
        &["sh", "-c", "while true; do sleep 0.1; done"],
    );
    assert!(
        o.status.success(),
        "run -d: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    c.wait_status(&id, "RUNNING");
    let out = c.ok(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        &id,
        "sh",
        "-c",
        "echo in-exec",
    ]);
    assert_eq!(out.trim(), "in-exec");
    c.ok(&["task", "pause", &id]);
    c.wait_status(&id, "PAUSED");
    c.ok(&["task", "resume", &id]);
    c.wait_status(&id, "RUNNING");
    let metrics = c.ok(&["task", "metrics", &id]);
    let usage: u64 = metrics
        .lines()
        .find(|l| l.starts_with("memory.usage_in_bytes") || l.starts_with("memory.usage "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no memory usage in metrics:\n{metrics}"));
    assert!(
        usage > 0,
        "metrics come from the container's cgroup:\n{metrics}"
    );
    c.ok(&["task", "kill", "-s", "SIGKILL", &id]);
    c.wait_status(&id, "STOPPED");
    c.ok(&["task", "delete", &id]);
    c.ok(&["container", "delete", &id]);
    assert!(!c.ok(&["task", "ls"]).contains(&id));
    drop(c);
    common::reap_orphans(Duration::from_secs(5));
    // The engine's parent cgroup (its containers' own are gone).
    common::remove_empty_parent_cgroup("default");
}
