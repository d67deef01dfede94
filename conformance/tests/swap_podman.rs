//! berth-runtime swapped into podman (`podman --runtime PATH`): run --rm,
//! -d + exec + logs + stop + rm, --memory, and -it through a pty (script).
//! Podman runs with private storage and config under a temp dir (HOST.md:
//! cgroupfs manager, file events, ulimits within the host's hard limit,
//! overlay from the first call) on a busybox image made with
//! `podman import`. runc goes through the same steps first as the control:
//! when runc fails a step, the step reports a named skip rather than
//! blaming berth-runtime. Podman's default seccomp profile stays on.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

struct Podman {
    dir: tempfile::TempDir,
    image: String,
    /// Whether podman's cgroupfs parent (`/libpod_parent`, where conmon
    /// goes) is ours to remove afterwards.
    made_libpod_parent: bool,
}

fn libpod_parents() -> Vec<PathBuf> {
    std::fs::read_dir("/sys/fs/cgroup")
        .map(|d| {
            d.flatten()
                .map(|h| h.path().join("libpod_parent"))
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default()
}

/// The longest any podman call may take before it counts as hung.
const STEP_TIMEOUT: Duration = Duration::from_secs(90);

impl Podman {
    fn new() -> Podman {
        let dir = berth_testkit::tempdir("podman");
        let d = dir.path();
        // static_dir and the events log stay at their defaults (under the
        // graphroot and tmp_dir): conmon's exit command, `podman container
        // cleanup`, gets --root/--runroot/--tmpdir but not the static dir,
        // so a static_dir elsewhere makes it open an empty database and
        // every `run --rm`/`wait` sit out conmon's 20 s timeout.
        let conf = format!(
            "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n\
             [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n\
             tmp_dir = \"{0}/tmp\"\nvolume_path = \"{0}/volumes\"\n",
            d.display()
        );
        std::fs::write(d.join("containers.conf"), conf).expect("containers.conf");
        let storage = format!(
            "[storage]\ndriver = \"overlay\"\nrunroot = \"{0}/run\"\ngraphroot = \"{0}/root\"\n",
            d.display()
        );
        std::fs::write(d.join("storage.conf"), storage).expect("storage.conf");
        let rootfs = d.join("rootfs");
        berth_testkit::make_busybox_rootfs(&rootfs);
        let tar = d.join("rootfs.tar");
        let st = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .expect("run tar");
        assert!(st.success(), "tar of the busybox rootfs failed");
        let made_libpod_parent = libpod_parents().is_empty();
        let p = Podman {
            dir,
            image: format!("localhost/{}:latest", berth_testkit::unique("berth-bb")),
            made_libpod_parent,
        };
        let out = p.podman(None, &["import", &tar.to_string_lossy(), &p.image]);
        assert!(out.0, "podman import failed: {}", out.1);
        p
    }

    /// `podman [--runtime R] ARGS`, returning (success, stdout + stderr);
    /// killed with its process group after [`STEP_TIMEOUT`].
    fn podman(&self, runtime: Option<&Path>, args: &[&str]) -> (bool, String) {
        let d = self.dir.path();
        let mut c = Command::new("podman");
        if let Some(r) = runtime {
            c.arg("--runtime").arg(r);
        }
        c.args(args)
            .env("CONTAINERS_CONF", d.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", d.join("storage.conf"));
        let out = berth_testkit::output_within_reaping(&mut c, STEP_TIMEOUT);
        (out.success(), out.text())
    }

    fn stdout(&self, runtime: &Path, args: &[&str]) -> Result<String, String> {
        match self.podman(Some(runtime), args) {
            (true, t) => Ok(t),
            (false, t) => Err(format!("podman {args:?}: {t}")),
        }
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.podman(None, &["rm", "--all", "--force", "--time", "0"]);
        let _ = self.podman(None, &["rmi", "--all", "--force"]);
        berth_testkit::unmount_all_under(self.dir.path());
        if self.made_libpod_parent {
            // rmdir only removes cgroups without tasks or children.
            for p in libpod_parents() {
                let _ = std::fs::remove_dir(p.join("conmon"));
                let _ = std::fs::remove_dir(&p);
            }
        }
    }
}

type Step = fn(&Podman, &Path) -> Result<(), String>;

fn run_rm(p: &Podman, rt: &Path) -> Result<(), String> {
    let mut a = vec!["run", "--rm", "--network", "none"];
    a.extend_from_slice(&[&p.image, "echo", "hello-from-podman"]);
    let out = p.stdout(rt, &a)?;
    out.contains("hello-from-podman")
        .then_some(())
        .ok_or(format!("run output: {out}"))
}

fn detached(p: &Podman, rt: &Path) -> Result<(), String> {
    let name = berth_testkit::unique("bcp");
    let mut a = vec!["run", "-d", "--name", &name, "--network", "none"];
    a.extend_from_slice(&[&p.image, "sh", "-c", "echo logged-line; exec sleep 1000"]);
    p.stdout(rt, &a)?;
    let res = (|| {
        let out = p.stdout(rt, &["exec", &name, "echo", "exec-line"])?;
        if !out.contains("exec-line") {
            return Err(format!("exec output: {out}"));
        }
        let logs = wait_until(|| {
            p.stdout(rt, &["logs", &name])
                .ok()
                .filter(|l| l.contains("logged-line"))
        });
        logs.ok_or("logs never showed the container's output")?;
        p.stdout(rt, &["stop", "--time", "1", &name])?;
        p.stdout(rt, &["rm", &name])?;
        Ok(())
    })();
    let _ = p.podman(Some(rt), &["rm", "--force", "--time", "0", &name]);
    res
}

fn wait_until<T>(mut f: impl FnMut() -> Option<T>) -> Option<T> {
    for _ in 0..50 {
        if let Some(v) = f() {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

fn memory(p: &Podman, rt: &Path) -> Result<(), String> {
    let mut a = vec!["run", "--rm", "--network", "none", "--memory", "64m"];
    let script = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max";
    a.extend_from_slice(&[&p.image, "sh", "-c", script]);
    let out = p.stdout(rt, &a)?;
    out.contains("67108864")
        .then_some(())
        .ok_or(format!("memory limit inside: {out}"))
}

/// `podman run -it` under `script`, which gives it a pty as its terminal.
/// podman proxies SIGTERM to the container rather than dying of it, so the
/// whole process group is killed (SIGKILL) when the step overruns.
fn tty(p: &Podman, rt: &Path) -> Result<(), String> {
    let d = p.dir.path();
    let mut cmd = format!(
        "CONTAINERS_CONF={0}/containers.conf CONTAINERS_STORAGE_CONF={0}/storage.conf exec podman --runtime {1} run --rm -it --network none",
        d.display(),
        rt.display()
    );
    cmd.push_str(&format!(
        " {} sh -c 'sleep 0.5; test -t 0 && test -t 1 && echo is-a-tty'",
        p.image
    ));
    let mut c = Command::new("script");
    c.args(["-qec", &cmd, "/dev/null"]);
    let out = berth_testkit::output_within_reaping(&mut c, STEP_TIMEOUT);
    out.stdout
        .contains("is-a-tty")
        .then_some(())
        .ok_or(format!("-it output: {}", out.text()))
}

fn which(bin: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(bin))
        .find(|p| p.is_file())
}

#[test]
fn podman_with_berth_runtime() {
    const T: &str = "podman_with_berth_runtime";
    if !berth_testkit::require_root(T) {
        return;
    }
    let (Some(_), Some(runc)) = (which("podman"), which("runc")) else {
        berth_testkit::skip(
            T,
            "podman or runc not installed (Debian packages podman, runc)",
        );
        return;
    };
    let berth = std::env::var_os("BERTH_RUNTIME")
        .map(PathBuf::from)
        .unwrap_or_else(|| berth_testkit::workspace_root().join("target/debug/berth-runtime"));
    if !berth.is_file() {
        berth_testkit::skip(
            T,
            "berth-runtime not built: set $BERTH_RUNTIME or build the workspace",
        );
        return;
    }
    // conmon outlives podman's call and is handed to us: podman waits (20 s)
    // until it is reaped, and this host's pid 1 does not reap.
    nix::sys::prctl::set_child_subreaper(true).expect("subreaper");
    let p = Podman::new();
    let steps: [(&str, Step); 4] = [
        ("run_rm", run_rm),
        ("detached_exec_logs_stop_rm", detached),
        ("memory", memory),
        ("tty", tty),
    ];
    let mut failures = Vec::new();
    for (name, step) in steps {
        let t = std::time::Instant::now();
        let control = step(&p, &runc);
        eprintln!("podman {name} with runc: {:.1}s", t.elapsed().as_secs_f64());
        if let Err(e) = control {
            berth_testkit::skip(
                &format!("{T}::{name}"),
                &format!("fails with runc too, so podman is not usable here: {e}"),
            );
            continue;
        }
        let t = std::time::Instant::now();
        let r = step(&p, &berth);
        eprintln!(
            "podman {name} with berth-runtime: {:.1}s",
            t.elapsed().as_secs_f64()
        );
        match r {
            Ok(()) => println!("podman {name} with berth-runtime: pass"),
            Err(e) => {
                println!("podman {name} with berth-runtime: FAIL: {e}");
                failures.push(format!("{name}: {e}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "podman with berth-runtime failed:\n{}",
        failures.join("\n")
    );
}
