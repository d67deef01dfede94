//! Attack tests: one per known container-escape class, each named after
//! its CVE, each set up so that a runtime with the original bug would fail
//! it. Root; real containers from busybox bundles.

use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_testkit::{mounts_under, require_root, skip, state_root, tempdir, unique, Bundle};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_berth-runtime");

/// A runtime with a private `--root`; every container it made is force-
/// deleted and every process it started killed on drop.
struct Rt {
    root: tempfile::TempDir,
    ids: std::cell::RefCell<Vec<String>>,
    children: std::cell::RefCell<Vec<Child>>,
}

impl Rt {
    fn new() -> Rt {
        Rt {
            root: state_root(),
            ids: Default::default(),
            children: Default::default(),
        }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--root").arg(self.root.path()).stdin(Stdio::null());
        c
    }

    /// The runtime command line as words, for wrapping in `sh -c`.
    fn argv(&self) -> String {
        format!("{BIN} --root {}", self.root.path().display())
    }

    fn track(&self, id: &str) {
        self.ids.borrow_mut().push(id.to_string());
    }

    fn run(&self, b: &Bundle, id: &str) -> Output {
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
    fn sh(&self, prelude: &str, args: &str) -> Output {
        Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("{prelude}; exec {} {args}", self.argv()))
            .stdin(Stdio::null())
            .output()
            .expect("spawn sh")
    }

    fn create(&self, b: &Bundle, id: &str) -> Output {
        self.ids.borrow_mut().push(id.to_string());
        let mut c = self.cmd();
        c.args(["create", "--bundle"]).arg(b.path()).arg(id);
        created(c)
    }

    fn ok(&self, args: &[&str]) -> Output {
        let o = self.cmd().args(args).output().expect("spawn runtime");
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        o
    }

    fn state(&self, id: &str) -> Value {
        serde_json::from_slice(&self.ok(&["state", id]).stdout).expect("state json")
    }

    /// Create and start a container running `sleep 600`.
    fn sleeper(&self, b: &mut Bundle, id: &str) -> i32 {
        b.set_args(&["sleep", "600"]).save();
        let o = self.create(b, id);
        assert!(o.status.success(), "create: {}", text(&o));
        self.ok(&["start", id]);
        self.state(id)["pid"].as_i64().expect("pid") as i32
    }

    fn spawn(&self, c: &mut Command) -> u32 {
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
fn created(mut c: Command) -> Output {
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

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn bundle(script: &str) -> Bundle {
    let mut b = Bundle::new(Path::new(BIN));
    b.set_script(script);
    b.save();
    b
}

fn add_mount(b: &mut Bundle, m: Value) {
    b.config["mounts"].as_array_mut().expect("mounts").push(m);
}

/// Replace the mount at `dest` (the spec's /dev tmpfs, say) by `m`.
fn replace_mount(b: &mut Bundle, dest: &str, m: Value) {
    let mounts = b.config["mounts"].as_array_mut().expect("mounts");
    let i = mounts
        .iter()
        .position(|x| x["destination"] == dest)
        .expect("mount present");
    mounts[i] = m;
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// `dir` (outside every rootfs) must be exactly as the test left it.
fn assert_untouched(dir: &Path, expected: &[&str], what: &str) {
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
fn assert_names(o: &Output, what: &str) {
    let t = text(o);
    assert!(!o.status.success(), "must be refused: {t}");
    assert!(t.contains(what), "the error must name {what:?}: {t}");
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
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
fn assert_exe_is_protected(pid: i32, when: &str) -> nix::Result<std::os::fd::OwnedFd> {
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

fn assert_not_writable(opath: &std::os::fd::OwnedFd, when: &str) {
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

#[test]
fn cve_2019_5736_runtime_exe_is_unwritable_during_create_and_exec() {
    let name = "cve_2019_5736_runtime_exe_is_unwritable_during_create_and_exec";
    if !require_root(name) {
        return;
    }
    let rt = Rt::new();
    let id = unique("cve5736");
    let mut b = bundle("true");
    b.set_args(&["sleep", "600"]).save();
    let o = rt.create(&b, &id);
    assert!(o.status.success(), "create: {}", text(&o));
    // The created init is the runtime itself, waiting inside the container.
    let init = rt.state(&id)["pid"].as_i64().unwrap() as i32;
    let held = assert_exe_is_protected(init, "create").expect("open exe");
    let image = std::fs::metadata(format!("/proc/{init}/exe"))
        .map(|m| (m.dev(), m.ino()))
        .unwrap();
    rt.ok(&["start", &id]);
    // The runtime is gone from the init; the handle kept from before must
    // still not allow writing (the original exploit's second step).
    wait_until("the init to exec", || {
        std::fs::metadata(format!("/proc/{init}/exe")).is_ok_and(|m| (m.dev(), m.ino()) != image)
    });
    assert_not_writable(&held, "after start");
    // exec: the runtime process stays alive in the foreground while the
    // exec'd process runs; its image must be protected too.
    let pid = rt.spawn(rt.cmd().args(["exec", &id, "sleep", "600"]));
    wait_until("exec'd process", || {
        let ps = rt
            .cmd()
            .args(["ps", "--format", "json", &id])
            .output()
            .map(|o| o.stdout)
            .unwrap_or_default();
        serde_json::from_slice::<Vec<i64>>(&ps).is_ok_and(|p| p.len() >= 2)
    });
    assert_exe_is_protected(pid as i32, "exec").expect("open exe");
}

#[test]
fn cve_2019_5736_memfd_fallback_is_sealed() {
    let name = "cve_2019_5736_memfd_fallback_is_sealed";
    if !require_root(name) {
        return;
    }
    let rt = Rt::new();
    let id = unique("cve5736m");
    let mut b = bundle("true");
    b.set_args(&["sleep", "600"]).save();
    rt.track(&id);
    let mut c = rt.cmd();
    c.env("BERTH_RUNTIME_SEAL", "memfd")
        .args(["create", "--bundle"])
        .arg(b.path())
        .arg(&id);
    let o = created(c);
    assert!(o.status.success(), "create: {}", text(&o));
    let init = rt.state(&id)["pid"].as_i64().unwrap() as i32;
    let link = std::fs::read_link(format!("/proc/{init}/exe")).unwrap();
    assert!(
        link.to_string_lossy().starts_with("/memfd:berth-runtime"),
        "runs from {}",
        link.display()
    );
    assert_exe_is_protected(init, "create (memfd)").expect("open exe");
}

// ---------------------------------------------------------------------------
// CVE-2024-21626: a leaked host descriptor as the way out (cwd
// /proc/self/fd/N), and descriptors leaking into the container at all.

/// A host directory with a marker only the host can see.
fn host_secret_dir() -> (tempfile::TempDir, String) {
    let d = tempdir("hostdir");
    let marker = unique("host-secret");
    std::fs::write(d.path().join(&marker), "secret").unwrap();
    (d, marker)
}

fn fd_numbers(listing: &str) -> Vec<u32> {
    let mut v: Vec<u32> = listing
        .lines()
        .filter(|l| l.contains(" -> "))
        .filter_map(|l| {
            l.split(" -> ")
                .next()?
                .split_whitespace()
                .last()?
                .parse()
                .ok()
        })
        .collect();
    v.sort();
    v
}

#[test]
fn cve_2024_21626_cwd_through_a_leaked_fd_fails_and_no_host_fd_leaks() {
    let name = "cve_2024_21626_cwd_through_a_leaked_fd_fails_and_no_host_fd_leaks";
    if !require_root(name) {
        return;
    }
    let (host, marker) = host_secret_dir();
    let hostq = host.path().display().to_string();
    let rt = Rt::new();
    // The caller leaks a host directory into the runtime as fd 7; a
    // runtime that keeps it open until the chdir lets the container start
    // in the host directory.
    for n in 3..=9 {
        let mut b = bundle("pwd; ls");
        b.config["process"]["cwd"] = json!(format!("/proc/self/fd/{n}"));
        b.save();
        let id = unique("cve21626");
        rt.track(&id);
        let o = rt.sh(
            &format!("exec 7<'{hostq}'"),
            &format!("run --bundle '{}' {id}", b.path().display()),
        );
        let t = text(&o);
        assert!(
            !t.contains(&marker),
            "cwd /proc/self/fd/{n} reached the host directory: {t}"
        );
        assert!(
            !t.contains("(unreachable)"),
            "cwd /proc/self/fd/{n} is outside the root: {t}"
        );
        if n == 7 {
            assert!(
                !o.status.success(),
                "cwd through the leaked fd must fail: {t}"
            );
        }
    }
    // Nothing but stdio (and what --preserve-fds asks for) reaches the
    // container, even when the caller leaks descriptors.
    for (preserve, want) in [(0, vec![0, 1, 2]), (1, vec![0, 1, 2, 3])] {
        let b = bundle("ls -l /proc/$$/fd; true");
        let id = unique("cve21626-fds");
        rt.track(&id);
        let o = rt.sh(
            &format!("exec 3<'{hostq}' 7<'{hostq}'"),
            &format!(
                "run --preserve-fds {preserve} --bundle '{}' {id}",
                b.path().display()
            ),
        );
        let t = text(&o);
        assert!(o.status.success(), "{t}");
        assert_eq!(
            fd_numbers(&String::from_utf8_lossy(&o.stdout)),
            want,
            "descriptors in the container: {t}"
        );
    }
    // exec: the same two checks against a running container.
    let mut b = bundle("true");
    let id = unique("cve21626-exec");
    rt.sleeper(&mut b, &id);
    let o = rt.sh(
        &format!("exec 7<'{hostq}'"),
        &format!("exec --cwd /proc/self/fd/7 {id} ls"),
    );
    let t = text(&o);
    assert!(
        !o.status.success() && !t.contains(&marker),
        "exec with cwd through the leaked fd: {t}"
    );
    let o = rt.sh(
        &format!("exec 7<'{hostq}'"),
        &format!("exec {id} sh -c 'ls -l /proc/$$/fd; true'"),
    );
    assert_eq!(
        fd_numbers(&String::from_utf8_lossy(&o.stdout)),
        vec![0, 1, 2],
        "exec leaks descriptors: {}",
        text(&o)
    );
}

// ---------------------------------------------------------------------------
// CVE-2019-18837 / CVE-2021-30465: mount destinations through symlinks.

#[test]
fn cve_2019_18837_cve_2021_30465_mount_destination_symlinks_stay_inside() {
    let name = "cve_2019_18837_cve_2021_30465_mount_destination_symlinks_stay_inside";
    if !require_root(name) {
        return;
    }
    let rt = Rt::new();
    let outside = tempdir("outside");
    let out_abs = outside.path().to_path_buf();
    let src = tempdir("bindsrc");
    std::fs::write(src.path().join("from-bind"), "x").unwrap();
    // A relative symlink that climbs out of the rootfs: an error.
    for typ in ["tmpfs", "bind"] {
        let mut b = bundle("true");
        let up = "../".repeat(40);
        std::os::unix::fs::symlink(format!("{up}{}", out_abs.display()), b.rootfs().join("rel"))
            .unwrap();
        add_mount(&mut b, mount_of(typ, "/rel/sub", src.path()));
        b.save();
        let o = rt.create(&b, &unique("cve18837-rel"));
        assert!(
            !o.status.success(),
            "{typ} mount through an escaping symlink must fail"
        );
        assert_names(&o, "outside the container root");
        assert_untouched(&out_abs, &[], typ);
    }
    // An absolute symlink: resolved against the container root, as the
    // container would see it, so the mount lands inside the rootfs.
    for typ in ["tmpfs", "bind"] {
        let mut b = bundle("stat -f -c %T /abs/sub; ls /abs/sub; touch /abs/sub/made-inside");
        std::os::unix::fs::symlink(&out_abs, b.rootfs().join("abs")).unwrap();
        add_mount(&mut b, mount_of(typ, "/abs/sub", src.path()));
        b.save();
        let o = rt.run(&b, &unique("cve18837-abs"));
        let t = text(&o);
        assert!(o.status.success(), "{typ}: {t}");
        if typ == "tmpfs" {
            assert!(
                t.contains("tmpfs"),
                "the container sees its tmpfs at /abs/sub: {t}"
            );
        } else {
            assert!(
                t.contains("from-bind"),
                "the container sees the bind at /abs/sub: {t}"
            );
        }
        assert_untouched(&out_abs, &[], typ);
        let inside = b
            .rootfs()
            .join(out_abs.strip_prefix("/").unwrap())
            .join("sub");
        assert!(
            inside.is_dir(),
            "the mount point was made inside the rootfs at {}",
            inside.display()
        );
    }
}

/// CVE-2021-30465 proper: the destination is swapped between a directory
/// and an escaping symlink while containers are being created. Whatever the
/// timing, nothing is made outside the rootfs, and a container that was
/// created has its mount where the config says.
#[test]
fn cve_2021_30465_mount_destination_swapped_to_a_symlink_during_create() {
    let name = "cve_2021_30465_mount_destination_swapped_to_a_symlink_during_create";
    if !require_root(name) {
        return;
    }
    let rt = Rt::new();
    let outside = tempdir("outside");
    let mut b = bundle("true");
    b.set_args(&["sleep", "600"]);
    add_mount(
        &mut b,
        json!({"destination": "/race/sub", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}),
    );
    b.save();
    let rootfs = b.rootfs();
    std::fs::create_dir(rootfs.join("race")).unwrap();
    std::os::unix::fs::symlink(
        format!("{}{}", "../".repeat(40), outside.path().display()),
        rootfs.join("race-alt"),
    )
    .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (stop, rootfs) = (stop.clone(), rootfs.clone());
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                nix::fcntl::renameat2(
                    nix::fcntl::AT_FDCWD,
                    &rootfs.join("race"),
                    nix::fcntl::AT_FDCWD,
                    &rootfs.join("race-alt"),
                    nix::fcntl::RenameFlags::RENAME_EXCHANGE,
                )
                .expect("exchange");
                swaps += 1;
            }
            swaps
        })
    };
    let (mut made, mut refused) = (0, 0);
    for _ in 0..30 {
        let id = unique("cve30465");
        let o = rt.create(&b, &id);
        if o.status.success() {
            made += 1;
            let pid = rt.state(&id)["pid"].as_i64().unwrap();
            let info = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
            // The directory may have been renamed to race-alt after the
            // mount (the mount moves with it): still inside the root.
            let at = |p: &str| info.lines().any(|l| l.split_whitespace().nth(4) == Some(p));
            assert!(
                at("/race/sub") || at("/race-alt/sub"),
                "the tmpfs is not inside the root:\n{info}"
            );
            rt.ok(&["delete", "--force", &id]);
        } else {
            refused += 1;
        }
        assert_untouched(outside.path(), &[], "swapped destination");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    eprintln!("{name}: {made} created, {refused} refused, {swaps} swaps");
}

fn mount_of(typ: &str, dest: &str, src: &Path) -> Value {
    if typ == "bind" {
        json!({"destination": dest, "type": "bind", "source": src, "options": ["rbind"]})
    } else {
        json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]})
    }
}

// ---------------------------------------------------------------------------
// CVE-2019-16884 / CVE-2023-27561 / CVE-2025-54867: /proc, /sys, /dev as
// symlinks in the rootfs.

#[test]
fn cve_2019_16884_cve_2023_27561_cve_2025_54867_proc_sys_dev_symlinks_are_contained() {
    let name = "cve_2019_16884_cve_2023_27561_cve_2025_54867_proc_sys_dev_symlinks_are_contained";
    if !require_root(name) {
        return;
    }
    let rt = Rt::new();
    for dir in ["proc", "sys", "dev"] {
        // Escaping relative link: refused, nothing made outside.
        let outside = tempdir("outside");
        let mut b = bundle("true");
        std::fs::remove_dir(b.rootfs().join(dir)).unwrap();
        std::os::unix::fs::symlink(
            format!("{}{}", "../".repeat(40), outside.path().display()),
            b.rootfs().join(dir),
        )
        .unwrap();
        b.config["linux"]["sysctl"] = json!({"kernel.shmmax": "123456789"});
        b.save();
        let o = rt.create(&b, &unique("cve16884-rel"));
        assert!(
            !o.status.success(),
            "/{dir} escaping the rootfs must fail: {}",
            text(&o)
        );
        assert_untouched(outside.path(), &[], dir);

        // Link to a decoy directory inside the rootfs holding fake procfs
        // files: procfs and sysfs are never mounted through it, and no
        // write (sysctl, device node) lands in the decoy or outside.
        let outside = tempdir("outside");
        let mut b = bundle("ls /dev/null && cat /proc/sys/kernel/shmmax");
        let decoy = b.rootfs().join(format!("decoy-{dir}"));
        std::fs::create_dir_all(decoy.join("sys/kernel")).unwrap();
        std::fs::write(decoy.join("sys/kernel/shmmax"), "decoy").unwrap();
        std::fs::remove_dir(b.rootfs().join(dir)).unwrap();
        std::os::unix::fs::symlink(format!("/decoy-{dir}"), b.rootfs().join(dir)).unwrap();
        b.config["linux"]["sysctl"] = json!({"kernel.shmmax": "123456789"});
        b.save();
        let o = rt.run(&b, &unique("cve16884-abs"));
        let t = text(&o);
        assert_eq!(
            std::fs::read_to_string(decoy.join("sys/kernel/shmmax")).unwrap(),
            "decoy",
            "/{dir}: a write landed in the decoy"
        );
        assert_untouched(outside.path(), &[], dir);
        if dir == "dev" {
            // /dev through an in-root link is the container's own choice:
            // devices are made in the decoy, inside the rootfs.
            assert!(
                o.status.success() && t.contains("123456789"),
                "/dev -> /decoy-dev: {t}"
            );
        } else {
            assert!(!o.status.success(), "{dir} mounted through a symlink: {t}");
            assert_names(&o, "symlink");
        }
    }
}

// ---------------------------------------------------------------------------
// CVE-2025-31133 / CVE-2025-62161: masking with a /dev/null that is not
// the null device.

#[test]
fn cve_2025_31133_cve_2025_62161_masking_refuses_a_fake_dev_null() {
    let name = "cve_2025_31133_cve_2025_62161_masking_refuses_a_fake_dev_null";
    if !require_root(name) {
        return;
    }
    let rt = Rt::new();
    type MakeNull = fn(&Path, &Path);
    let cases: [(&str, MakeNull); 3] = [
        ("regular file", |dev, _| {
            std::fs::write(dev.join("null"), "not null").unwrap()
        }),
        ("symlink to core_pattern", |dev, _| {
            std::os::unix::fs::symlink("/proc/sys/kernel/core_pattern", dev.join("null")).unwrap()
        }),
        ("symlink to a host file", |dev, secret| {
            std::os::unix::fs::symlink(secret, dev.join("null")).unwrap()
        }),
    ];
    let secret_dir = tempdir("secret");
    let secret = secret_dir.path().join("secret");
    for (what, make) in cases {
        // /dev bind-mounted from a directory the attacker controls.
        let dev = tempdir("dev");
        std::fs::write(&secret, "secret").unwrap();
        make(dev.path(), &secret);
        let mut b = bundle("echo container-ran");
        replace_mount(
            &mut b,
            "/dev",
            json!({"destination": "/dev", "type": "bind", "source": dev.path(), "options": ["rbind"]}),
        );
        b.save();
        let o = rt.run(&b, &unique("cve31133"));
        let t = text(&o);
        assert!(
            !o.status.success() && !t.contains("container-ran"),
            "{what}: masking went ahead: {t}"
        );
        assert_names(&o, "/dev/null");
        assert_eq!(std::fs::read_to_string(&secret).unwrap(), "secret");
    }
    // A regular file bind-mounted over the container's /dev/null.
    let file_dir = tempdir("fakenull");
    std::fs::write(file_dir.path().join("fake"), "fake").unwrap();
    let mut b = bundle("echo container-ran");
    add_mount(
        &mut b,
        json!({"destination": "/dev/null", "type": "bind", "source": file_dir.path().join("fake"), "options": ["bind"]}),
    );
    b.save();
    let o = rt.run(&b, &unique("cve31133-bind"));
    let t = text(&o);
    assert!(
        !o.status.success() && !t.contains("container-ran"),
        "a file bound over /dev/null was used: {t}"
    );
    assert_eq!(
        std::fs::read_to_string(file_dir.path().join("fake")).unwrap(),
        "fake"
    );
}

// ---------------------------------------------------------------------------
// CVE-2025-52565: /dev/console as a symlink redirecting the console mount.

#[test]
fn cve_2025_52565_console_symlink_cannot_redirect_the_console_mount() {
    let name = "cve_2025_52565_console_symlink_cannot_redirect_the_console_mount";
    if !require_root(name) {
        return;
    }
    let rt = Rt::new();
    for target in ["/proc/sys/kernel/core_pattern", "pts/ptmx", "/dev/pts/0"] {
        let dev = tempdir("dev");
        std::os::unix::fs::symlink(target, dev.path().join("console")).unwrap();
        // A bind-mounted /dev gets no default devices: bring a real null.
        nix::sys::stat::mknod(
            &dev.path().join("null"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(1, 3),
        )
        .unwrap();
        let mut b = bundle("true");
        b.set_script(
            "cat /proc/self/mountinfo > /mountinfo.txt; readlink /proc/self/fd/0 > /stdin.txt",
        );
        b.config["process"]["terminal"] = json!(true);
        b.config["root"]["readonly"] = json!(false);
        replace_mount(
            &mut b,
            "/dev",
            json!({"destination": "/dev", "type": "bind", "source": dev.path(), "options": ["rbind"]}),
        );
        b.save();
        let sockdir = tempdir("console");
        let sock = sockdir.path().join("console.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        let id = unique("cve52565");
        rt.track(&id);
        let taker = std::thread::spawn(move || {
            let (conn, _) = listener.accept().expect("console socket connection");
            berth_runtime::sys::recv_fd(conn.as_raw_fd()).expect("pty master")
        });
        let mut c = rt.cmd();
        c.args(["create", "--console-socket"])
            .arg(&sock)
            .arg("--bundle")
            .arg(b.path())
            .arg(&id);
        let o = created(c);
        assert!(o.status.success(), "create: {}", text(&o));
        let master = taker.join().unwrap();
        rt.ok(&["start", &id]);
        wait_until("container exit", || rt.state(&id)["status"] == "stopped");
        drop(master);
        let info =
            std::fs::read_to_string(b.rootfs().join("mountinfo.txt")).expect("mountinfo written");
        let points: Vec<&str> = info
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4))
            .collect();
        assert!(
            points.contains(&"/dev/console"),
            "{target}: the console is mounted at /dev/console: {points:?}"
        );
        for bad in [
            "/proc/sys/kernel/core_pattern",
            "/dev/pts/ptmx",
            "/dev/pts/0",
        ] {
            assert!(
                !points.contains(&bad),
                "console link to {target}: a mount landed on {bad}"
            );
        }
        let stdin = std::fs::read_to_string(b.rootfs().join("stdin.txt")).unwrap();
        assert!(stdin.starts_with("/dev/pts/"), "stdio is the pty: {stdin}");
        let meta = std::fs::symlink_metadata(dev.path().join("console")).unwrap();
        assert!(
            meta.file_type().is_file(),
            "{target}: /dev/console was replaced by a fresh file"
        );
    }
}

// ---------------------------------------------------------------------------
// CVE-2025-52881: procfs writes (sysctl) redirected by mounts over /proc.

#[test]
fn cve_2025_52881_sysctl_writes_go_through_verified_procfs() {
    let name = "cve_2025_52881_sysctl_writes_go_through_verified_procfs";
    if !require_root(name) {
        return;
    }
    let rt = Rt::new();
    // Control: the sysctl is applied in the container's own procfs.
    let mut b = bundle("cat /proc/sys/kernel/shmmax");
    b.config["linux"]["sysctl"] = json!({"kernel.shmmax": "123456789"});
    b.save();
    let o = rt.run(&b, &unique("cve52881-ok"));
    assert!(
        o.status.success() && text(&o).contains("123456789"),
        "sysctl control: {}",
        text(&o)
    );
    // A host file bound over the sysctl's procfs file, and a host
    // directory bound over its procfs directory: the write must fail
    // instead of landing in them.
    let host = tempdir("sysctl");
    std::fs::write(host.path().join("shmmax"), "host-file").unwrap();
    let cases = [
        ("/proc/sys/kernel/shmmax", host.path().join("shmmax")),
        ("/proc/sys/kernel", host.path().to_path_buf()),
    ];
    for (dest, src) in cases {
        let mut b = bundle("echo container-ran");
        add_mount(
            &mut b,
            json!({"destination": dest, "type": "bind", "source": src, "options": ["bind"]}),
        );
        b.config["linux"]["sysctl"] = json!({"kernel.shmmax": "123456789"});
        b.save();
        let o = rt.run(&b, &unique("cve52881"));
        let t = text(&o);
        assert!(
            !o.status.success() && !t.contains("container-ran"),
            "{dest}: sysctl written through a bind mount: {t}"
        );
        assert_eq!(
            std::fs::read_to_string(host.path().join("shmmax")).unwrap(),
            "host-file",
            "{dest}: the write landed on the host"
        );
    }
}

// ---------------------------------------------------------------------------
// CVE-2022-29162: exec must not hand out inheritable capabilities.

fn cap_line(status: &str, key: &str) -> u64 {
    let l = status
        .lines()
        .find(|l| l.starts_with(key))
        .unwrap_or_else(|| panic!("{key} in {status}"));
    u64::from_str_radix(l.split_whitespace().nth(1).unwrap(), 16).unwrap()
}

#[test]
fn cve_2022_29162_exec_gets_no_inheritable_capabilities() {
    let name = "cve_2022_29162_exec_gets_no_inheritable_capabilities";
    if !require_root(name) {
        return;
    }
    let rt = Rt::new();
    let mut b = bundle("true");
    let id = unique("cve29162");
    let init = rt.sleeper(&mut b, &id);
    let init_status = std::fs::read_to_string(format!("/proc/{init}/status")).unwrap();
    assert_eq!(
        cap_line(&init_status, "CapInh:"),
        0,
        "the init has inheritable capabilities"
    );
    for extra in [
        &[][..],
        &["--cap", "CAP_NET_RAW"][..],
        &["--cap", "CAP_SYS_ADMIN", "--cap", "CAP_NET_ADMIN"][..],
    ] {
        let mut args = vec!["exec"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[&id, "cat", "/proc/self/status"]);
        let o = rt.ok(&args);
        let status = String::from_utf8_lossy(&o.stdout);
        assert_eq!(
            cap_line(&status, "CapInh:"),
            0,
            "exec {extra:?} got inheritable capabilities"
        );
        assert_eq!(
            cap_line(&status, "CapAmb:") & !cap_line(&status, "CapInh:"),
            0
        );
        if extra.contains(&"CAP_NET_RAW") {
            assert_ne!(
                cap_line(&status, "CapEff:") & (1 << 13),
                0,
                "--cap CAP_NET_RAW is effective"
            );
        }
    }
    // Inheritable capabilities only when the process asks for them.
    let caps = ["CAP_NET_RAW"];
    let process = json!({"args": ["cat", "/proc/self/status"], "cwd": "/", "user": {"uid": 0, "gid": 0},
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps, "inheritable": caps}});
    let pfile = tempdir("process");
    let path = pfile.path().join("process.json");
    std::fs::write(&path, process.to_string()).unwrap();
    let o = rt.ok(&["exec", "--process", path.to_str().unwrap(), &id]);
    let status = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        cap_line(&status, "CapInh:"),
        1 << 13,
        "asked-for inheritable capability: {status}"
    );
}

/// The five capability sets as configured, for a non-root user (ambient
/// capabilities are what such a process keeps across exec).
#[test]
fn capabilities_all_five_sets_as_configured_for_a_non_root_user() {
    let name = "capabilities_all_five_sets_as_configured_for_a_non_root_user";
    if !require_root(name) {
        return;
    }
    let rt = Rt::new();
    let b_caps = ["CAP_NET_RAW", "CAP_CHOWN", "CAP_KILL"];
    let mut b = bundle("grep ^Cap /proc/self/status");
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    b.config["process"]["capabilities"] = json!({"bounding": b_caps, "permitted": ["CAP_NET_RAW", "CAP_CHOWN"],
        "effective": ["CAP_NET_RAW", "CAP_CHOWN"], "inheritable": ["CAP_NET_RAW"], "ambient": ["CAP_NET_RAW"]});
    b.save();
    let o = rt.run(&b, &unique("caps"));
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let (raw, chown, kill) = (1u64 << 13, 1u64 << 0, 1u64 << 5);
    assert_eq!(cap_line(&t, "CapBnd:"), raw | chown | kill, "{t}");
    assert_eq!(cap_line(&t, "CapInh:"), raw, "{t}");
    assert_eq!(cap_line(&t, "CapAmb:"), raw, "{t}");
    // After exec a non-root process keeps only its ambient capabilities.
    assert_eq!(cap_line(&t, "CapPrm:"), raw, "{t}");
    assert_eq!(cap_line(&t, "CapEff:"), raw, "{t}");
}

// ---------------------------------------------------------------------------
// CVE-2023-25809: rootless container without a cgroup namespace.

#[test]
fn cve_2023_25809_rootless_without_cgroupns_has_read_only_cgroupfs() {
    let name = "cve_2023_25809_rootless_without_cgroupns_has_read_only_cgroupfs";
    if !require_root(name) {
        return;
    }
    let rt = Rt::new();
    let mut b = bundle(
        "grep ' /sys/fs/cgroup' /proc/self/mountinfo; mkdir /sys/fs/cgroup/escape; echo mkdir=$?",
    );
    // A rootless container's shape: a user namespace mapping root to an
    // unprivileged range, no network namespace (so /sys is the host's,
    // bound recursively) and no cgroup namespace. Started by root with
    // --rootless true: a truly unprivileged caller cannot create cgroups
    // on this host (no delegation), which the runtime does not tolerate yet.
    b.without_namespace("cgroup")
        .without_namespace("network")
        .with_namespace("user", None);
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    chown_tree(&b.rootfs(), 100000);
    b.save();
    let id = unique("cve25809");
    rt.track(&id);
    let o = rt
        .cmd()
        .args(["--rootless", "true", "run", "--bundle"])
        .arg(b.path())
        .arg(&id)
        .output()
        .unwrap();
    let t = text(&o);
    assert!(
        t.contains("mkdir="),
        "the rootless-style container must run: {t}"
    );
    let lines: Vec<&str> = t
        .lines()
        .filter(|l| l.contains(" /sys/fs/cgroup"))
        .collect();
    assert!(!lines.is_empty(), "no cgroup mounts seen: {t}");
    for l in &lines {
        let opts = l.split_whitespace().nth(5).unwrap_or("");
        assert!(
            opts.split(',').any(|o| o == "ro"),
            "cgroupfs mounted read-write in a rootless container: {l}\n{t}"
        );
    }
    assert!(t.contains("mkdir=1"), "{t}");
}

fn chown_tree(p: &Path, id: u32) {
    let _ = std::os::unix::fs::lchown(p, Some(id), Some(id));
    if std::fs::symlink_metadata(p)
        .map(|m| m.is_dir())
        .unwrap_or(false)
    {
        for e in std::fs::read_dir(p).unwrap().flatten() {
            chown_tree(&e.path(), id);
        }
    }
}

// ---------------------------------------------------------------------------
// AppArmor and SELinux.

#[test]
fn apparmor_profile_is_applied() {
    let name = "apparmor_profile_is_applied";
    if !Path::new("/sys/kernel/security/apparmor").exists() {
        skip(name, "AppArmor is not enabled on this host");
        return;
    }
    panic!("{name}: AppArmor is enabled here but berth-runtime does not apply process.apparmorProfile yet");
}

#[test]
fn selinux_labels_are_applied() {
    let name = "selinux_labels_are_applied";
    if !Path::new("/sys/fs/selinux/enforce").exists() {
        skip(name, "SELinux is not enabled on this host");
        return;
    }
    panic!("{name}: SELinux is enabled here but berth-runtime does not apply selinuxLabel/mountLabel yet");
}
