//! config.json for a container: the image config (Env, Entrypoint, Cmd,
//! WorkingDir, User) merged with the run options by docker's rules, and
//! docker's defaults (capabilities, masked and read-only paths, mounts,
//! devices, /etc/hostname, /etc/hosts, /etc/resolv.conf from userdata).

use std::path::Path;

use serde_json::{json, Value};

use crate::error::{EngineError, Result};
use crate::options::{NetworkMode, RunOptions};
use crate::user::User;

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// docker's default capability set.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

const MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];
const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The image's `config` object (OCI image config).
pub(crate) fn image_field<'a>(image: &'a Value, key: &str) -> &'a Value {
    &image["config"][key]
}

/// docker: `--entrypoint` replaces the entrypoint and drops the image's Cmd;
/// CMD arguments replace the image's Cmd.
pub fn process_args(image: &Value, o: &RunOptions) -> Result<Vec<String>> {
    let (entry, image_cmd) = match &o.entrypoint {
        Some(e) if e.is_empty() => (Vec::new(), Vec::new()),
        Some(e) => (vec![e.clone()], Vec::new()),
        None => (
            strings(image_field(image, "Entrypoint")),
            strings(image_field(image, "Cmd")),
        ),
    };
    let cmd = if o.cmd.is_empty() {
        image_cmd
    } else {
        o.cmd.clone()
    };
    let args: Vec<String> = entry.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(EngineError::NoCommand);
    }
    Ok(args)
}

/// Environment: PATH default, HOSTNAME, the image's Env, then `-e`
/// (later wins), HOME from passwd unless set.
pub fn env(image: &Value, o: &RunOptions, hostname: &str, home: &str) -> Vec<String> {
    let mut out: Vec<String> = vec![
        format!("PATH={DEFAULT_PATH}"),
        format!("HOSTNAME={hostname}"),
    ];
    if o.tty {
        // docker's default for a container with a terminal
        out.push("TERM=xterm".to_string());
    }
    let mut set = |kv: String| {
        let key = kv.split('=').next().unwrap_or("").to_string();
        out.retain(|e| e.split('=').next() != Some(key.as_str()));
        out.push(kv);
    };
    for kv in strings(image_field(image, "Env"))
        .into_iter()
        .chain(o.env.iter().cloned())
    {
        if kv.contains('=') {
            set(kv);
        }
    }
    if !out.iter().any(|e| e.starts_with("HOME=")) {
        out.push(format!("HOME={home}"));
    }
    out
}

/// The user spec in effect: `-u`, else the image's User.
pub fn user_spec(image: &Value, o: &RunOptions) -> String {
    o.user.clone().unwrap_or_else(|| {
        image_field(image, "User")
            .as_str()
            .unwrap_or("")
            .to_string()
    })
}

pub fn workdir(image: &Value, o: &RunOptions) -> String {
    let w = o.workdir.clone().unwrap_or_else(|| {
        image_field(image, "WorkingDir")
            .as_str()
            .unwrap_or("")
            .to_string()
    });
    if w.is_empty() {
        "/".into()
    } else {
        w
    }
}

/// Capabilities: docker's defaults (or every capability this host allows
/// for `--privileged`), plus `--cap-add`, minus `--cap-drop` (`ALL` works).
pub fn capabilities(o: &RunOptions, host_caps: &[String]) -> Result<Vec<String>> {
    let norm = |c: &str| {
        let c = c.to_ascii_uppercase();
        if c == "ALL" || c.starts_with("CAP_") {
            c
        } else {
            format!("CAP_{c}")
        }
    };
    let mut caps: Vec<String> = if o.privileged {
        host_caps.to_vec()
    } else {
        DEFAULT_CAPS.iter().map(|s| s.to_string()).collect()
    };
    for c in &o.cap_drop {
        let c = norm(c);
        if c == "ALL" {
            caps.clear()
        } else {
            caps.retain(|x| *x != c)
        }
    }
    for c in &o.cap_add {
        let c = norm(c);
        let add: Vec<String> = if c == "ALL" {
            host_caps.to_vec()
        } else {
            vec![c]
        };
        for c in add {
            if !host_caps.contains(&c) {
                return Err(crate::options::invalid(
                    "--cap-add",
                    format!("{c} is not available on this host"),
                ));
            }
            if !caps.contains(&c) {
                caps.push(c);
            }
        }
    }
    Ok(caps)
}

/// What [`build`] needs besides the options.
pub struct SpecInput<'a> {
    pub id: &'a str,
    pub hostname: &'a str,
    pub image: &'a Value,
    pub opts: &'a RunOptions,
    pub args: &'a [String],
    pub user: &'a User,
    pub rootfs: &'a Path,
    /// Holds hostname, hosts and resolv.conf.
    pub userdata: &'a Path,
    pub host_caps: &'a [String],
}

fn mounts(i: &SpecInput<'_>) -> Vec<Value> {
    let mut m = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
    ];
    for f in ["hostname", "hosts", "resolv.conf"] {
        m.push(json!({"destination": format!("/etc/{f}"), "type": "bind",
            "source": i.userdata.join(f), "options": ["rbind", "rprivate"]}));
    }
    for b in &i.opts.mounts {
        let mut opts = vec!["rbind", "rprivate"];
        if b.readonly {
            opts.push("ro");
        }
        m.push(json!({"destination": b.destination, "type": "bind", "source": b.source, "options": opts}));
    }
    for (dst, opts) in &i.opts.tmpfs {
        m.push(json!({"destination": dst, "type": "tmpfs", "source": "tmpfs", "options": opts}));
    }
    if let (true, Some(p)) = (i.opts.init, &i.opts.init_path) {
        m.push(
            json!({"destination": INIT_PATH, "type": "bind", "source": p,
            "options": ["bind", "ro", "nosuid", "nodev", "rprivate"]}),
        );
    }
    m
}

/// Where `--init`'s binary appears in the container (in /dev, a tmpfs the
/// runtime makes, so even a read-only image root takes it).
pub const INIT_PATH: &str = "/dev/init";

/// The process's argv: the command, under the init with `--init`.
fn argv(i: &SpecInput<'_>) -> Vec<String> {
    if !i.opts.init {
        return i.args.to_vec();
    }
    let mut v = vec![INIT_PATH.to_string(), "--".to_string()];
    v.extend(i.args.iter().cloned());
    v
}

/// docker's device cgroup rules: deny all, allow the default devices.
fn device_rules(privileged: bool) -> Value {
    if privileged {
        return json!([{"allow": true, "access": "rwm"}]);
    }
    let mut r = vec![json!({"allow": false, "access": "rwm"})];
    for (t, maj, min, acc) in [
        ("c", None, None, "m"),
        ("b", None, None, "m"),
        ("c", Some(1), Some(3), "rwm"),
        ("c", Some(1), Some(8), "rwm"),
        ("c", Some(1), Some(7), "rwm"),
        ("c", Some(5), Some(0), "rwm"),
        ("c", Some(1), Some(5), "rwm"),
        ("c", Some(1), Some(9), "rwm"),
        ("c", Some(5), Some(1), "rwm"),
        ("c", Some(136), None, "rwm"),
        ("c", Some(5), Some(2), "rwm"),
        ("c", Some(10), Some(200), "rwm"),
    ] {
        let mut d = json!({"allow": true, "type": t, "access": acc});
        if let Some(x) = maj {
            d["major"] = json!(x)
        }
        if let Some(x) = min {
            d["minor"] = json!(x)
        }
        r.push(d);
    }
    Value::Array(r)
}

/// The OCI runtime config.
pub fn build(i: &SpecInput<'_>) -> Result<Value> {
    let o = i.opts;
    let caps = capabilities(o, i.host_caps)?;
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    if o.network != NetworkMode::Host {
        namespaces.push(json!({"type": "network"}));
    }
    let mut resources = json!({"devices": device_rules(o.privileged)});
    if let Some(m) = o.memory {
        resources["memory"] = json!({"limit": m});
    }
    if let Some(p) = o.pids_limit {
        resources["pids"] = json!({"limit": p});
    }
    if let Some(q) = o.cpu_quota {
        resources["cpu"] = json!({"quota": q, "period": 100_000});
    }
    let seccomp = if o.privileged {
        None
    } else {
        crate::seccomp::section(&o.seccomp, &caps)?
    };
    let (masked, readonly): (&[&str], &[&str]) = if o.privileged {
        (&[], &[])
    } else {
        (MASKED, READONLY)
    };
    let mut spec = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": o.tty,
            "user": {"uid": i.user.uid, "gid": i.user.gid, "additionalGids": i.user.additional_gids},
            "args": argv(i),
            "env": env(i.image, o, i.hostname, &i.user.home),
            "cwd": workdir(i.image, o),
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": o.no_new_privileges
        },
        "root": {"path": i.rootfs, "readonly": o.read_only},
        "hostname": i.hostname,
        "mounts": mounts(i),
        "linux": {
            "namespaces": namespaces,
            "cgroupsPath": format!("/berth/{}", i.id),
            "resources": resources,
            "maskedPaths": masked,
            "readonlyPaths": readonly
        }
    });
    if let Some(s) = seccomp {
        spec["linux"]["seccomp"] = s;
    }
    if !o.ulimits.is_empty() {
        spec["process"]["rlimits"] = o
            .ulimits
            .iter()
            .map(|(t, soft, hard)| json!({"type": t, "soft": soft, "hard": hard}))
            .collect();
    }
    Ok(spec)
}

/// /etc/hosts for the container.
pub fn hosts_file(network: NetworkMode, hostname: &str) -> String {
    if network == NetworkMode::Host {
        if let Ok(h) = std::fs::read_to_string("/etc/hosts") {
            return h;
        }
    }
    format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n\
         127.0.1.1\t{hostname}\n"
    )
}

/// /etc/resolv.conf: the host's; without host networking, loopback
/// nameservers (unreachable from the container) are dropped, as docker does.
pub fn resolv_conf(network: NetworkMode) -> String {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    if network == NetworkMode::Host {
        return host;
    }
    host.lines()
        .filter(|l| {
            let mut w = l.split_whitespace();
            !(w.next() == Some("nameserver")
                && w.next()
                    .is_some_and(|a| a.starts_with("127.") || a == "::1"))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

#[cfg(test)]
mod tests;
