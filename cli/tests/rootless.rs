//! `berth` run by a user without privileges: its own user and mount
//! namespaces (held by a pause process), overlay snapshots in them, the
//! runtime without a cgroup, and pasta networking with published ports.
//! Each test runs berth as a uid of its own (no passwd entry, so no
//! subordinate ids: uid 0 inside maps to that uid alone), with HOME and
//! XDG_RUNTIME_DIR in its temp dir, and copies of the binaries the user
//! can reach. Network traffic stays on the host's loopback.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

struct User {
    dir: tempfile::TempDir,
    uid: u32,
}

const BINARIES: [&str; 4] = ["berth", "berth-runtime", "berth-monitor", "berth-netd"];

impl User {
    /// A fresh user (uid from `slot`) with `busybox:test` imported, or a
    /// named skip when the host cannot give a user namespaces.
    fn new(test: &str, slot: u32) -> Option<User> {
        if !berth_testkit::require_root(test) {
            return None;
        }
        let max = fs::read_to_string("/proc/sys/user/max_user_namespaces").unwrap_or_default();
        if max.trim() == "0" {
            berth_testkit::skip(
                test,
                "user namespaces are disabled (user.max_user_namespaces=0)",
            );
            return None;
        }
        let uid = 40_000 + (std::process::id() % 5_000) * 4 + slot;
        let dir = berth_testkit::tempdir(test);
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let u = User { dir, uid };
        // The binaries where the user can reach them (the checkout may sit
        // in a directory only root may enter).
        let built = Path::new(env!("CARGO_BIN_EXE_berth")).parent().unwrap();
        let bin = u.path("bin");
        fs::create_dir(&bin).unwrap();
        for b in BINARIES {
            let to = bin.join(b);
            let from = match b {
                "berth-runtime" => std::env::var("BERTH_RUNTIME")
                    .map(PathBuf::from)
                    .unwrap_or_else(|_| built.join(b)),
                _ => built.join(b),
            };
            if fs::hard_link(&from, &to).is_err() {
                fs::copy(&from, &to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
            }
        }
        for d in ["home", "xdg"] {
            fs::create_dir(u.path(d)).unwrap();
            std::os::unix::fs::chown(u.path(d), Some(uid), Some(uid)).unwrap();
            fs::set_permissions(u.path(d), fs::Permissions::from_mode(0o700)).unwrap();
        }
        let rootfs = u.path("rootfs");
        berth_testkit::make_busybox_rootfs(&rootfs);
        fs::write(rootfs.join("index.html"), "from the container\n").unwrap();
        let tarball = u.path("rootfs.tar");
        let mut b = tar::Builder::new(fs::File::create(&tarball).unwrap());
        b.follow_symlinks(false);
        b.append_dir_all(".", &rootfs).unwrap();
        b.into_inner().unwrap();
        fs::set_permissions(&tarball, fs::Permissions::from_mode(0o644)).unwrap();
        u.ok(&["import", tarball.to_str().unwrap(), "busybox:test"]);
        Some(u)
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// The user's berth state: `$XDG_RUNTIME_DIR/berth`.
    fn runroot(&self) -> PathBuf {
        self.path("xdg/berth")
    }

    fn berth(&self, args: &[&str]) -> Output {
        let mut c = Command::new(self.path("bin/berth"));
        c.args(args)
            .env_clear()
            .env("HOME", self.path("home"))
            .env("XDG_RUNTIME_DIR", self.path("xdg"))
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .uid(self.uid)
            .gid(self.uid)
            .current_dir(self.path("home"))
            .stdin(Stdio::null());
        berth_testkit::output_within(&mut c, Duration::from_secs(60)).into_output()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.berth(args);
        assert!(
            o.status.success(),
            "berth {args:?} as uid {} failed ({}): {}",
            self.uid,
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    fn inspect(&self, c: &str) -> Value {
        let v: Value = serde_json::from_str(&self.ok(&["inspect", c])).unwrap();
        v[0].clone()
    }

    fn pause_pid(&self) -> Option<i32> {
        fs::read_to_string(self.runroot().join("pause.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for User {
    /// Every container goes, then the pause process (ours, by its pid):
    /// the namespaces and the mounts in them go with it.
    fn drop(&mut self) {
        let ids = self.berth(&["ps", "-aq"]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = self.berth(&["rm", "-f", id]);
        }
        if let Some(pid) = self.pause_pid() {
            let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == "berth-pause" {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                let end = Instant::now() + Duration::from_secs(10);
                while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < end {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
}

fn host_uid_of(pid: i64) -> u32 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn rootless_containers_run_as_the_user_in_its_namespace() {
    let Some(u) = User::new("rootless_containers_run_as_the_user_in_its_namespace", 0) else {
        return;
    };
    let out = u.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox:test",
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map; touch /made && ls -n /made",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0", "{out}");
    let map: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(map, ["0", &u.uid.to_string(), "1"], "{out}");
    assert!(
        lines[2].contains(" 0 "),
        "a file made inside is root's there: {out}"
    );

    u.ok(&[
        "run",
        "-d",
        "--name",
        "sleeper",
        "--network",
        "none",
        "busybox:test",
        "sleep",
        "300",
    ]);
    let pid = u.inspect("sleeper")["State"]["Pid"].as_i64().unwrap();
    assert!(pid > 0);
    assert_eq!(
        host_uid_of(pid),
        u.uid,
        "root in the container is the user on the host"
    );
    assert_eq!(u.ok(&["exec", "sleeper", "id", "-u"]).trim(), "0");
    // The store is the user's, in its home; nothing under the host's.
    assert!(u.path("home/.local/share/berth").is_dir());
    let pause = u.pause_pid().expect("a pause process holds the namespaces");
    assert_eq!(host_uid_of(i64::from(pause)), u.uid);
    u.ok(&["rm", "-f", "sleeper"]);
    assert_eq!(u.ok(&["ps", "-aq"]).trim(), "");
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "the container's process is gone"
    );

    // A bridge needs root: refused clearly, nothing made.
    let o = u.berth(&["run", "--rm", "--network", "bridge", "busybox:test", "true"]);
    assert_eq!(o.status.code(), Some(125));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("rootless") && err.lines().count() == 1,
        "{err}"
    );
    assert_eq!(u.ok(&["ps", "-aq"]).trim(), "");
    // So do limits where the user may not make a cgroup (no delegation:
    // cgroup v1 without systemd, as on this host kind).
    let o = u.berth(&[
        "run",
        "--rm",
        "--memory",
        "64m",
        "--network",
        "none",
        "busybox:test",
        "true",
    ]);
    if !o.status.success() {
        assert_eq!(o.status.code(), Some(125));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("rootless") && err.contains("limits"), "{err}");
    }
    assert_eq!(u.ok(&["ps", "-aq"]).trim(), "");
}

/// Whether pasta can work here, or a named skip.
fn pasta_usable(test: &str) -> bool {
    if !berth_testkit::require_path(
        test,
        "/usr/bin/pasta",
        "pasta is not installed (Debian package passt)",
    ) {
        return false;
    }
    let mode = fs::metadata("/dev/net/tun").map(|m| m.permissions().mode() & 0o006);
    if mode.ok() != Some(0o006) {
        berth_testkit::skip(
            test,
            "/dev/net/tun is not read-write for users (Debian's udev makes it 0666; scripts/setup-debian.sh sets it)",
        );
        return false;
    }
    let routes = fs::read_to_string("/proc/net/route").unwrap_or_default();
    if !routes
        .lines()
        .skip(1)
        .any(|l| l.split_whitespace().nth(1) == Some("00000000"))
    {
        berth_testkit::skip(test, "the host has no default IPv4 route for pasta to copy");
        return false;
    }
    true
}

/// A free TCP port on 127.0.0.1 (bound, then released).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// GET `/index.html` from 127.0.0.1:`port`, retrying while it comes up.
fn http_get(port: u16) -> String {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let got = std::net::TcpStream::connect(("127.0.0.1", port)).and_then(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n")?;
            let mut t = String::new();
            s.read_to_string(&mut t)?;
            Ok(t)
        });
        match got {
            Ok(t) if t.contains("200") => return t,
            _ if Instant::now() < end => std::thread::sleep(Duration::from_millis(100)),
            other => panic!("no page from 127.0.0.1:{port}: {other:?}"),
        }
    }
}

#[test]
fn rootless_pasta_publishes_ports_and_maps_the_gateway_to_the_host_loopback() {
    let test = "rootless_pasta_publishes_ports_and_maps_the_gateway_to_the_host_loopback";
    if !pasta_usable(test) {
        return;
    }
    let Some(u) = User::new(test, 1) else { return };

    // The default network of a rootless berth is pasta: an eth0 with the
    // host's address and a default route.
    let out = u.ok(&[
        "run",
        "--rm",
        "busybox:test",
        "sh",
        "-c",
        "ip -o -4 addr show eth0; ip route",
    ]);
    assert!(
        out.contains("inet ") && out.contains("default via"),
        "{out}"
    );

    // A server on the host's loopback, reached through the gateway address
    // with --map-gw. (Without it that address is the host's real gateway,
    // which a test must not contact.)
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let serve = std::thread::spawn(move || {
        let (mut s, _) = server.accept().unwrap();
        let mut buf = [0u8; 512];
        let _ = s.read(&mut buf);
        s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 15\r\n\r\nfrom host lo 1\n")
            .unwrap();
    });
    let script =
        format!("gw=$(ip route | awk '/default/ {{print $3}}'); wget -qO- http://$gw:{port}/");
    let out = u.ok(&[
        "run",
        "--rm",
        "--network",
        "pasta:--map-gw",
        "busybox:test",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(out, "from host lo 1\n");
    serve.join().unwrap();

    // A published port answers on the host's 127.0.0.1.
    let host_port = free_port();
    let publish = format!("127.0.0.1:{host_port}:80");
    u.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &publish,
        "busybox:test",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/",
    ]);
    let page = http_get(host_port);
    assert!(page.ends_with("from the container\n"), "{page}");
    let i = u.inspect("web");
    assert_eq!(i["HostConfig"]["NetworkMode"], "pasta", "{i}");
    let id = i["Id"].as_str().unwrap().to_string();
    let pid_file = u.runroot().join(format!("netd/pasta/{id}.pid"));
    let pasta: i32 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        host_uid_of(i64::from(pasta)),
        u.uid,
        "pasta runs as the user"
    );

    // Removal stops that pasta and unpublishes the port.
    u.ok(&["rm", "-f", "web"]);
    assert!(!pid_file.exists(), "pid file left");
    let end = Instant::now() + Duration::from_secs(5);
    while Path::new(&format!("/proc/{pasta}")).exists() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    let comm = fs::read_to_string(format!("/proc/{pasta}/comm")).unwrap_or_default();
    assert!(!comm.starts_with("pas"), "pasta {pasta} still runs");
    assert!(std::net::TcpStream::connect(("127.0.0.1", host_port)).is_err());
}

#[test]
fn pasta_is_refused_to_root_with_a_clear_error() {
    if !berth_testkit::require_root("pasta_is_refused_to_root_with_a_clear_error") {
        return;
    }
    let d = berth_testkit::tempdir("pasta-root");
    fs::write(d.path().join("none.toml"), "").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("--root")
        .arg(d.path().join("root"))
        .arg("--runroot")
        .arg(d.path().join("run"))
        .args(["run", "--rm", "--network", "pasta", "busybox:test", "true"])
        .env("BERTH_CONFIG", d.path().join("none.toml"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("pasta") && err.contains("rootless"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}
