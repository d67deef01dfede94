//! What the attack tests share: a runtime with a private `--root` that
//! force-deletes its containers and kills its processes on drop, bundle and
//! mount editing, and the checks that nothing outside the rootfs changed.
#![allow(dead_code)]

use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_testkit::{mounts_under, state_root, Bundle};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_berth-runtime");

/// A runtime with a private `--root`; every container it made is force-
/// deleted and every process it started killed on drop.
pub struct Rt {
    pub root: tempfile::TempDir,
    ids: std::cell::RefCell<Vec<String>>,
    children: std::cell::RefCell<Vec<Child>>,
}

impl Rt {
    pub fn new() -> Rt {
        Rt {
            root: state_root(),
            ids: Default::default(),
            children: Default::default(),
        }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--root").arg(self.root.path()).stdin(Stdio::null());
        c
    }

    /// The runtime command line as words, for wrapping in `sh -c`.
    pub fn argv(&self) -> String {
        format!("{BIN} --root {}", self.root.path().display())
    }

    pub fn track(&self, id: &str) {
        self.ids.borrow_mut().push(id.to_string());
    }

    pub fn run(&self, b: &Bundle, id: &str) -> Output {
        self.track(id);
        self.cmd()
            .args(["run", "--bundle"])
            .arg(b.path())
            .arg(id)
            .output()
            .expect("spawn runtime")
    }

    /// `sh -c` around the runtime: `prelude` runs first (e.g. `exec 7<DIR`
    /// to hand the runtime an inherited descriptor), then `exec runtime ARGS`.
    pub fn sh(&self, prelude: &str, args: &str) -> Output {
        Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("{prelude}; exec {} {args}", self.argv()))
            .stdin(Stdio::null())
            .output()
            .expect("spawn sh")
    }

    pub fn create(&self, b: &Bundle, id: &str) -> Output {
        self.ids.borrow_mut().push(id.to_string());
        let mut c = self.cmd();
        c.args(["create", "--bundle"]).arg(b.path()).arg(id);
        created(c)
    }

    pub fn ok(&self, args: &[&str]) -> Output {
        let o = self.cmd().args(args).output().expect("spawn runtime");
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        o
    }

    /// The ids of the containers this runtime root knows.
    pub fn list_ids(&self) -> Vec<String> {
        let out = self
            .cmd()
            .args(["list", "--format", "json"])
            .output()
            .expect("list");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["id"].as_str().map(String::from))
            .collect()
    }

    pub fn state(&self, id: &str) -> Value {
        serde_json::from_slice(&self.ok(&["state", id]).stdout).expect("state json")
    }

    /// Create and start a container running `sleep 600`.
    pub fn sleeper(&self, b: &mut Bundle, id: &str) -> i32 {
        b.set_args(&["sleep", "600"]).save();
        let o = self.create(b, id);
        assert!(o.status.success(), "create: {}", text(&o));
        self.ok(&["start", id]);
        self.state(id)["pid"].as_i64().expect("pid") as i32
    }

    pub fn spawn(&self, c: &mut Command) -> u32 {
        let child = c
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let pid = child.id();
        self.children.borrow_mut().push(child);
        pid
    }
}

impl Drop for Rt {
    fn drop(&mut self) {
        for c in self.children.borrow_mut().iter_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for id in self.ids.borrow().iter() {
            let _ = self.cmd().args(["delete", "--force", id]).output();
        }
    }
}

/// Run a `create`: the created init keeps the stdio it was given until
/// `start`, so its output goes to files, not to pipes nobody would close.
pub fn created(mut c: Command) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let (o, e) = (dir.path().join("out"), dir.path().join("err"));
    let status = c
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap())
        .status()
        .expect("spawn runtime");
    Output {
        status,
        stdout: std::fs::read(&o).unwrap_or_default(),
        stderr: std::fs::read(&e).unwrap_or_default(),
    }
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn bundle(script: &str) -> Bundle {
    let mut b = Bundle::new(Path::new(BIN));
    b.set_script(script);
    b.save();
    b
}

pub fn add_mount(b: &mut Bundle, m: Value) {
    b.config["mounts"].as_array_mut().expect("mounts").push(m);
}

/// Replace the mount at `dest` (the spec's /dev tmpfs, say) by `m`.
pub fn replace_mount(b: &mut Bundle, dest: &str, m: Value) {
    let mounts = b.config["mounts"].as_array_mut().expect("mounts");
    let i = mounts
        .iter()
        .position(|x| x["destination"] == dest)
        .expect("mount present");
    mounts[i] = m;
}

pub fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// `dir` (outside every rootfs) must be exactly as the test left it.
pub fn assert_untouched(dir: &Path, expected: &[&str], what: &str) {
    let mut got = entries(dir);
    got.sort();
    let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(
        got,
        want,
        "{what}: something was created outside the rootfs in {}",
        dir.display()
    );
    assert!(
        mounts_under(dir).is_empty(),
        "{what}: something was mounted outside the rootfs"
    );
}

/// A refused container: it must fail, and its error must name the problem.
pub fn assert_names(o: &Output, what: &str) {
    let t = text(o);
    assert!(!o.status.success(), "must be refused: {t}");
    assert!(t.contains(what), "the error must name {what:?}: {t}");
}

pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------
// CVE-2019-5736: the runtime binary overwritten through /proc/<pid>/exe.

/// The runtime's image (a detached read-only overlay of its directory, or a
/// sealed memfd copy: see `seal.rs`) is not the host binary's inode, and
/// what a container process could do with the runtime's `/proc/<pid>/exe`
/// fails:
/// keep an O_PATH handle, then reopen it for writing. Writing back the
/// byte that is already there is harmless on the real binary, so a
/// vulnerable runtime fails this check without damage.
pub fn assert_exe_is_protected(pid: i32, when: &str) -> nix::Result<std::os::fd::OwnedFd> {
    let exe = format!("/proc/{pid}/exe");
    let host = std::fs::metadata(BIN).unwrap();
    let seen = std::fs::metadata(&exe).unwrap();
    assert!(
        (seen.dev(), seen.ino()) != (host.dev(), host.ino()),
        "{when}: /proc/{pid}/exe is the host binary"
    );
    let opath = nix::fcntl::open(
        exe.as_str(),
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    assert_not_writable(&opath, when);
    Ok(opath)
}

pub fn assert_not_writable(opath: &std::os::fd::OwnedFd, when: &str) {
    let via = format!("/proc/self/fd/{}", opath.as_raw_fd());
    let mut first = [0u8; 1];
    std::fs::File::open(&via)
        .expect("reopen for reading")
        .read_exact_at(&mut first, 0)
        .expect("read");
    if let Ok(f) = std::fs::OpenOptions::new().write(true).open(&via) {
        assert!(
            f.write_at(&first, 0).is_err(),
            "{when}: the runtime's executable can be written through /proc/<pid>/exe"
        );
    }
}
