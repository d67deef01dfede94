//! berth-runtime in place of runc under podman (Debian's podman 4.3 +
//! conmon): run --rm, -d + exec + logs + stop + rm, --memory, -it via a pty.
//! Podman runs with a private root, runroot and config (cgroupfs manager,
//! file events, ulimits within this host's hard limits) and is reset at the
//! end.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

struct Podman {
    dir: tempfile::TempDir,
    runtime: PathBuf,
    _serial: std::sync::MutexGuard<'static, ()>,
}

/// Podman tests share podman's parent cgroup (`libpod_parent`), which the
/// last one removes: run them one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Podman {
    fn new() -> Podman {
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = berth_testkit::tempdir("podman");
        std::fs::write(
            dir.path().join("containers.conf"),
            "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n\
             [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("storage.conf"),
            format!(
                "[storage]\ndriver = \"overlay\"\nrunroot = \"{0}/run\"\ngraphroot = \"{0}/graph\"\n",
                dir.path().display()
            ),
        )
        .unwrap();
        Podman {
            dir,
            runtime: bin().to_path_buf(),
            _serial: serial,
        }
    }

    fn cmd(&self) -> Command {
        let d = self.dir.path();
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", d.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", d.join("storage.conf"))
            .arg("--root")
            .arg(d.join("graph"))
            .arg("--runroot")
            .arg(d.join("run"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .arg("--runtime")
            .arg(&self.runtime);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("spawn podman")
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "podman {args:?}: {}\n{}",
            o.status,
            stderr(&o)
        );
        stdout(&o)
    }

    /// A busybox image made with `podman import`.
    fn import_busybox(&self) -> String {
        let rootfs = self.dir.path().join("rootfs");
        berth_testkit::make_busybox_rootfs(&rootfs);
        let tar = self.dir.path().join("bb.tar");
        let st = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(st.success());
        let name = format!("localhost/{}:latest", unique("bb"));
        self.ok(&["import", tar.to_str().unwrap(), &name]);
        name
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self
            .cmd()
            .args(["rm", "--all", "--force", "--time", "0"])
            .output();
        let _ = self.cmd().args(["system", "reset", "--force"]).output();
        // podman's parent cgroup, left empty (rmdir fails if anything uses it)
        if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
            for e in rd.flatten() {
                let _ = std::fs::remove_dir(e.path().join("libpod_parent/conmon"));
                let _ = std::fs::remove_dir(e.path().join("libpod_parent"));
            }
        }
    }
}

fn podman_available(test: &str) -> bool {
    require_root(test)
        && berth_testkit::require_path(test, "/usr/bin/podman", "podman is not installed")
}

#[test]
fn podman_run_rm_with_berth_runtime() {
    if !podman_available("podman_run_rm_with_berth_runtime") {
        return;
    }
    let p = Podman::new();
    let img = p.import_busybox();
    let out = p.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        &img,
        "sh",
        "-c",
        "echo hi-from-podman; id -u",
    ]);
    assert_eq!(out, "hi-from-podman\n0\n");
    let o = p.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        &img,
        "sh",
        "-c",
        "exit 4",
    ]);
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(
        p.ok(&["ps", "-aq"]).trim(),
        "",
        "--rm removed the container"
    );
}

#[test]
fn podman_detached_exec_logs_stop_rm() {
    if !podman_available("podman_detached_exec_logs_stop_rm") {
        return;
    }
    let p = Podman::new();
    let img = p.import_busybox();
    let name = unique("pd");
    p.ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        &img,
        "sh",
        "-c",
        "echo started; trap 'exit 0' TERM; while true; do sleep 0.1; done",
    ]);
    assert_eq!(
        p.ok(&["exec", &name, "sh", "-c", "echo in-exec"]),
        "in-exec\n"
    );
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !p.ok(&["logs", &name]).contains("started") {
        assert!(std::time::Instant::now() < end, "no log output");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    p.ok(&["stop", "-t", "5", &name]);
    let st = p.ok(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        &name,
    ]);
    assert_eq!(
        st.trim(),
        "exited 0",
        "stopped by SIGTERM through the runtime's kill"
    );
    p.ok(&["rm", &name]);
}

#[test]
fn podman_memory_limit_reaches_the_cgroup() {
    if !podman_available("podman_memory_limit_reaches_the_cgroup") {
        return;
    }
    let p = Podman::new();
    let img = p.import_busybox();
    let out = p.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--memory",
        "64m",
        &img,
        "cat",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]);
    assert_eq!(out.trim(), "67108864");
}

#[test]
fn podman_interactive_tty() {
    if !podman_available("podman_interactive_tty") {
        return;
    }
    if !Path::new("/usr/bin/script").exists() {
        berth_testkit::skip(
            "podman_interactive_tty",
            "script(1) from bsdutils is not installed",
        );
        return;
    }
    let p = Podman::new();
    let img = p.import_busybox();
    let c = p.cmd();
    let mut line: Vec<String> = vec![c.get_program().to_string_lossy().into_owned()];
    line.extend(c.get_args().map(|a| a.to_string_lossy().into_owned()));
    line.extend(["run", "--rm", "-it", "--network", "none", &img, "sh", "-c"].map(String::from));
    // One shell word for the container's script (script(1) runs the line
    // through sh). The pause lets podman attach before the output starts.
    line.push("'sleep 0.5; test -t 0 && test -t 1 && tty && echo tty-ok'".to_string());
    let envs: Vec<(String, String)> = c
        .get_envs()
        .filter_map(|(k, v)| {
            Some((
                k.to_string_lossy().into_owned(),
                v?.to_string_lossy().into_owned(),
            ))
        })
        .collect();
    let o = Command::new("script")
        .args(["-qec", &line.join(" "), "/dev/null"])
        .envs(envs)
        .output()
        .unwrap();
    let out = stdout(&o);
    assert!(
        out.contains("/dev/pts/0") && out.contains("tty-ok"),
        "stdin and stdout are the pty: {out}\n{}",
        stderr(&o)
    );
    assert!(o.status.success(), "{out}\n{}", stderr(&o));
}
