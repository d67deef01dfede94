//! Facts about the host the engine needs: where binaries are, which
//! capabilities it may grant, random ids.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{io, EngineError, Result};

/// `name` next to `self_exe`, else on `PATH`.
pub fn find_binary(name: &str, self_exe: &Path) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return p.is_file().then_some(p);
    }
    let sibling = self_exe.parent().map(|d| d.join(name));
    if let Some(s) = sibling.filter(|s| s.is_file()) {
        return Some(s);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// The OCI runtime to use: a path, a name, or `berth-runtime` by default.
pub fn find_runtime(name: Option<&str>, self_exe: &Path) -> Result<PathBuf> {
    let name = name.unwrap_or("berth-runtime");
    find_binary(name, self_exe)
        .map(|p| std::fs::canonicalize(&p).unwrap_or(p))
        .ok_or_else(|| EngineError::RuntimeNotFound {
            name: name.to_string(),
        })
}

/// `berth-monitor`: `$BERTH_MONITOR`, next to `self_exe`, or on PATH.
pub fn find_monitor(self_exe: &Path) -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("BERTH_MONITOR").map(PathBuf::from) {
        return p.is_file().then_some(p).ok_or(EngineError::MonitorNotFound);
    }
    find_binary("berth-monitor", self_exe).ok_or(EngineError::MonitorNotFound)
}

/// Where `--init` looks when not told: berth's own name first, then the
/// static inits podman and docker ship.
const INITS: &[&str] = &[
    "berth-init",
    "/usr/libexec/podman/catatonit",
    "catatonit",
    "tini-static",
    "docker-init",
];

/// The init `--init` bind-mounts into the container: `path`, else the
/// first of [`INITS`] found. It runs in the container's root, which need
/// not have a libc, so it must be statically linked.
pub fn find_init(path: Option<&str>, self_exe: &Path) -> Result<PathBuf> {
    let found = match path {
        Some(p) => find_binary(p, self_exe),
        None => INITS.iter().find_map(|n| find_binary(n, self_exe)),
    };
    let p = found.ok_or_else(|| EngineError::Init {
        reason: match path {
            Some(p) => format!("init {p} not found"),
            None => format!(
                "no init found (looked for {}); install tini or catatonit, or give --init-path",
                INITS.join(", ")
            ),
        },
    })?;
    let p = std::fs::canonicalize(&p).unwrap_or(p);
    if !is_static_elf(&p) {
        return Err(EngineError::Init {
            reason: format!(
                "{} is not a statically linked executable (an init runs without the image's libc)",
                p.display()
            ),
        });
    }
    Ok(p)
}

/// An ELF executable without a program interpreter (PT_INTERP).
pub fn is_static_elf(p: &Path) -> bool {
    let Ok(b) = std::fs::read(p) else {
        return false;
    };
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 {
        return false; // 64-bit ELF only
    }
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(b[0x20..0x28].try_into().unwrap_or_default()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).all(|i| {
        let o = phoff + i * phentsize;
        b.get(o..o + 4)
            .map(|t| u32::from_le_bytes(t.try_into().unwrap_or_default()) != 3)
            .unwrap_or(false)
    })
}

const CAP_NAMES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The capabilities in this process's bounding set (what a container may
/// get: on some hosts CAP_SYS_RESOURCE is not there).
pub fn bounding_caps() -> Vec<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .unwrap_or(u64::MAX);
    CAP_NAMES
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1u64 << i) != 0)
        .map(|(_, n)| format!("CAP_{n}"))
        .collect()
}

/// 64 random hex digits.
pub fn random_id() -> Result<String> {
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(io("read", "/dev/urandom"))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// docker's name rule.
pub fn valid_name(n: &str) -> bool {
    let mut b = n.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && b.all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c))
        && n.len() <= 128
}

/// The mount points a mountinfo table lists (its fifth field, with the
/// kernel's octal escapes of space, tab, newline and backslash undone).
pub fn mount_points(mountinfo: &str) -> Vec<PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| {
            let b = m.as_bytes();
            let mut out = Vec::with_capacity(b.len());
            let mut i = 0;
            while i < b.len() {
                let oct = b
                    .get(i + 1..i + 4)
                    .filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
                match oct {
                    Some(d) => {
                        out.push(d.iter().fold(0u8, |a, c| a.wrapping_mul(8) + (c - b'0')));
                        i += 4;
                    }
                    None => {
                        out.push(b[i]);
                        i += 1;
                    }
                }
            }
            PathBuf::from(std::ffi::OsString::from_vec(out))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_elf_detection() {
        // This test binary is dynamically linked; a text file is no ELF.
        assert!(!is_static_elf(&std::env::current_exe().unwrap()));
        assert!(!is_static_elf(Path::new("/etc/passwd")));
        assert!(!is_static_elf(Path::new("/nonexistent")));
        if Path::new("/usr/bin/tini-static").is_file() {
            assert!(is_static_elf(Path::new("/usr/bin/tini-static")));
        }
        if Path::new("/bin/busybox").is_file() {
            assert!(is_static_elf(Path::new("/bin/busybox")), "busybox-static");
        }
        let e = find_init(Some("/etc/passwd"), Path::new("/x")).unwrap_err();
        assert!(e.to_string().contains("not a statically linked"), "{e}");
        let e = find_init(Some("/nonexistent/init"), Path::new("/x")).unwrap_err();
        assert!(e.to_string().contains("not found"), "{e}");
    }

    #[test]
    fn mountinfo_mount_points_are_unescaped() {
        let info = "36 35 98:0 /mnt1 /mnt/a\\040b rw,noatime master:1 - ext3 /dev/root rw\n\
                    37 35 0:5 / /plain rw - tmpfs tmpfs rw\n";
        assert_eq!(
            mount_points(info),
            vec![PathBuf::from("/mnt/a b"), PathBuf::from("/plain")]
        );
    }

    #[test]
    fn ids_and_names() {
        let id = random_id().unwrap();
        assert_eq!(id.len(), 64);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(id, random_id().unwrap());
        for (n, ok) in [
            ("web", true),
            ("a.b-c_1", true),
            ("", false),
            ("-x", false),
            ("a/b", false),
        ] {
            assert_eq!(valid_name(n), ok, "{n}");
        }
        assert!(bounding_caps().contains(&"CAP_CHOWN".to_string()));
    }
}
