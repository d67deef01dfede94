//! `berth-runtimetest`: the probe the conformance suite places in every
//! bundle's rootfs (like runtime-tools' runtimetest). Each subcommand
//! observes one thing from inside the container and prints it as one line
//! of JSON; the suite, outside, decides pass or fail. Exit status 2 means
//! bad usage, never a failed expectation.
//!
//! Subcommands: `info`, `stat PATH`, `statfs PATH`, `write PATH`,
//! `read PATH`, `open PATH r|w|rw`, `mkdir PATH OCTAL`, `chown PATH UID GID`,
//! `spawn N`, `alloc MIB`, `ls DIR`.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt};

use serde_json::{json, Value};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    let report = match arg(1).as_str() {
        "info" => info(),
        "stat" => stat(&arg(2)),
        "statfs" => statfs(&arg(2)),
        "write" => result(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(arg(2))
                .and_then(|mut f| f.write_all(b"x")),
        ),
        "read" => match std::fs::read(arg(2)) {
            Ok(b) => json!({ "ok": true, "data": String::from_utf8_lossy(&b) }),
            Err(e) => json!({ "ok": false, "errno": e.raw_os_error() }),
        },
        "open" => open(&arg(2), &arg(3)),
        "mkdir" => match u32::from_str_radix(&arg(3), 8) {
            Ok(mode) => result(std::fs::DirBuilder::new().mode(mode).create(arg(2))),
            Err(_) => usage(),
        },
        "chown" => match (arg(3).parse(), arg(4).parse()) {
            (Ok(u), Ok(g)) => result(std::os::unix::fs::chown(arg(2), Some(u), Some(g))),
            _ => usage(),
        },
        "spawn" => spawn(arg(2).parse().unwrap_or(0)),
        "alloc" => alloc(arg(2).parse().unwrap_or(0)),
        "ls" => match std::fs::read_dir(arg(2)) {
            Ok(rd) => {
                let mut names: Vec<String> = rd
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                json!({ "ok": true, "entries": names })
            }
            Err(e) => json!({ "ok": false, "errno": e.raw_os_error() }),
        },
        _ => usage(),
    };
    println!("{report}");
}

fn usage() -> Value {
    eprintln!(
        "usage: berth-runtimetest info|stat|statfs|write|read|open|mkdir|chown|spawn|ls ARGS"
    );
    std::process::exit(2);
}

fn result<T>(r: std::io::Result<T>) -> Value {
    match r {
        Ok(_) => json!({ "ok": true }),
        Err(e) => json!({ "ok": false, "errno": e.raw_os_error() }),
    }
}

fn read(p: &str) -> Value {
    std::fs::read_to_string(p)
        .map(Value::from)
        .unwrap_or(Value::Null)
}

fn link(p: &str) -> Value {
    std::fs::read_link(p)
        .map(|l| Value::from(l.to_string_lossy().into_owned()))
        .unwrap_or(Value::Null)
}

fn info() -> Value {
    use nix::unistd::{getegid, geteuid, getgid, getgroups, getpid, getuid, isatty};
    let status: BTreeMap<String, String> = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        })
        .collect();
    let ns: BTreeMap<&str, Value> = ["pid", "net", "ipc", "uts", "mnt", "user", "cgroup", "time"]
        .iter()
        .map(|n| (*n, link(&format!("/proc/self/ns/{n}"))))
        .collect();
    let uts = nix::sys::utsname::uname().ok();
    let uts_field = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
        uts.as_ref()
            .map(|u| Value::from(f(u).to_string_lossy().into_owned()))
            .unwrap_or(Value::Null)
    };
    json!({
        "args": std::env::args().collect::<Vec<_>>(),
        "env": std::env::vars().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        "cwd": std::env::current_dir().map(|p| p.to_string_lossy().into_owned()).ok(),
        "uid": getuid().as_raw(), "gid": getgid().as_raw(),
        "euid": geteuid().as_raw(), "egid": getegid().as_raw(),
        "groups": getgroups().map(|g| g.iter().map(|g| g.as_raw()).collect::<Vec<_>>()).unwrap_or_default(),
        "pid": getpid().as_raw(),
        "status": status,
        "rlimits": rlimits(),
        "oom_score_adj": read("/proc/self/oom_score_adj"),
        "hostname": uts_field(|u| u.nodename()),
        "domainname": uts_field(|u| u.domainname()),
        "machine": uts_field(|u| u.machine()),
        // nix's Persona drops the execution domain bits: read the raw value.
        "personality": std::fs::read_to_string("/proc/self/personality").ok().and_then(|s| u64::from_str_radix(s.trim(), 16).ok()),
        "ns": ns,
        "uid_map": read("/proc/self/uid_map"),
        "gid_map": read("/proc/self/gid_map"),
        "mountinfo": read("/proc/self/mountinfo"),
        "cgroup": read("/proc/self/cgroup"),
        "isatty": [
            isatty(std::io::stdin()).unwrap_or(false),
            isatty(std::io::stdout()).unwrap_or(false),
            isatty(std::io::stderr()).unwrap_or(false),
        ],
    })
}

fn rlimits() -> Value {
    use nix::sys::resource::{getrlimit, Resource};
    let all = [
        ("RLIMIT_AS", Resource::RLIMIT_AS),
        ("RLIMIT_CORE", Resource::RLIMIT_CORE),
        ("RLIMIT_CPU", Resource::RLIMIT_CPU),
        ("RLIMIT_DATA", Resource::RLIMIT_DATA),
        ("RLIMIT_FSIZE", Resource::RLIMIT_FSIZE),
        ("RLIMIT_LOCKS", Resource::RLIMIT_LOCKS),
        ("RLIMIT_MEMLOCK", Resource::RLIMIT_MEMLOCK),
        ("RLIMIT_MSGQUEUE", Resource::RLIMIT_MSGQUEUE),
        ("RLIMIT_NICE", Resource::RLIMIT_NICE),
        ("RLIMIT_NOFILE", Resource::RLIMIT_NOFILE),
        ("RLIMIT_NPROC", Resource::RLIMIT_NPROC),
        ("RLIMIT_RSS", Resource::RLIMIT_RSS),
        ("RLIMIT_RTPRIO", Resource::RLIMIT_RTPRIO),
        ("RLIMIT_RTTIME", Resource::RLIMIT_RTTIME),
        ("RLIMIT_SIGPENDING", Resource::RLIMIT_SIGPENDING),
        ("RLIMIT_STACK", Resource::RLIMIT_STACK),
    ];
    let m: BTreeMap<&str, Value> = all
        .iter()
        .filter_map(|(n, r)| getrlimit(*r).ok().map(|(s, h)| (*n, json!([s, h]))))
        .collect();
    json!(m)
}

fn stat(p: &str) -> Value {
    let md = match std::fs::symlink_metadata(p) {
        Ok(m) => m,
        Err(e) => return json!({ "exists": false, "errno": e.raw_os_error() }),
    };
    let ft = md.file_type();
    let kind = if ft.is_symlink() {
        "symlink"
    } else if ft.is_dir() {
        "dir"
    } else if ft.is_char_device() {
        "char"
    } else if ft.is_block_device() {
        "block"
    } else if ft.is_fifo() {
        "fifo"
    } else if ft.is_socket() {
        "socket"
    } else {
        "file"
    };
    json!({
        "exists": true, "kind": kind, "mode": md.mode() & 0o7777,
        "uid": md.uid(), "gid": md.gid(), "size": md.size(),
        "major": nix::sys::stat::major(md.rdev()), "minor": nix::sys::stat::minor(md.rdev()),
        "link": link(p),
    })
}

fn statfs(p: &str) -> Value {
    use nix::sys::statvfs::FsFlags;
    let vfs = match nix::sys::statvfs::statvfs(p) {
        Ok(v) => v,
        Err(e) => return json!({ "ok": false, "errno": e as i32 }),
    };
    let names = [
        (FsFlags::ST_RDONLY, "ro"),
        (FsFlags::ST_NOSUID, "nosuid"),
        (FsFlags::ST_NODEV, "nodev"),
        (FsFlags::ST_NOEXEC, "noexec"),
        (FsFlags::ST_NOATIME, "noatime"),
        (FsFlags::ST_NODIRATIME, "nodiratime"),
        (FsFlags::ST_RELATIME, "relatime"),
    ];
    let flags: Vec<&str> = names
        .iter()
        .filter(|(f, _)| vfs.flags().contains(*f))
        .map(|(_, n)| *n)
        .collect();
    let magic = nix::sys::statfs::statfs(p)
        .map(|s| s.filesystem_type().0 as u64)
        .unwrap_or(0);
    json!({
        "ok": true, "flags": flags, "magic": magic,
        "size": vfs.blocks() as u64 * vfs.fragment_size() as u64,
    })
}

fn open(p: &str, how: &str) -> Value {
    let mut o = std::fs::OpenOptions::new();
    match how {
        "r" => o.read(true),
        "w" => o.write(true),
        "rw" => o.read(true).write(true),
        _ => return usage(),
    };
    result(o.open(p))
}

/// Start up to `n` `sleep` children; report how many could be started.
fn spawn(n: usize) -> Value {
    let mut kids = Vec::new();
    let mut errno = None;
    for _ in 0..n {
        match std::process::Command::new("/bin/sleep").arg("30").spawn() {
            Ok(c) => kids.push(c),
            Err(e) => {
                errno = e.raw_os_error();
                break;
            }
        }
    }
    let started = kids.len();
    for mut k in kids {
        let _ = k.kill();
        let _ = k.wait();
    }
    json!({ "started": started, "errno": errno })
}

/// Allocate and touch `mib` MiB; only returns when the memory was granted.
fn alloc(mib: usize) -> Value {
    let mut v: Vec<u8> = Vec::new();
    for _ in 0..mib {
        let mut chunk = vec![0u8; 1 << 20];
        for i in (0..chunk.len()).step_by(4096) {
            chunk[i] = 1;
        }
        v.extend_from_slice(&chunk);
    }
    json!({ "ok": true, "bytes": v.len() })
}
