//! Attack tests: one per known container-escape class, each named after
//! its CVE, each set up so that a runtime with the original bug would fail
//! it. Root; real containers from busybox bundles.

mod security_support;

use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixListener;
use std::path::Path;

use berth_testkit::{require_root, tempdir, unique};
use serde_json::{json, Value};

use security_support::*;

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
