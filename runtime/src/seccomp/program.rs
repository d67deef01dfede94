//! A filter compiled once, before the runtime forks, and loaded with the
//! raw seccomp(2) call in the container process.
//!
//! libseccomp spends milliseconds turning a large profile (Docker's default
//! lists some 350 syscalls) into BPF. The runtime compiles in the parent
//! (which must compile anyway, to refuse a bad profile before anything
//! exists) and hands the exported program to its children, which only
//! load it. Engines start many containers with the same profile, so the
//! exported program is also kept in a cache under the runtime's root
//! (`<root>/.seccomp-cache`, mode 0700, written by rename): the next create
//! or exec with the same profile, libseccomp, kernel and architecture
//! loads the cached program without compiling. A cache file holds its full
//! key (the profile as JSON plus those versions) and is used only when the
//! key matches byte for byte, so the file name (a 64-bit hash) can collide
//! without harm; anything malformed is ignored and rewritten. A hit marks
//! its file used (mtime); a write keeps the [`MAX_CACHED`] most recently
//! used programs and drops the rest, and temp files a dead writer left.

use std::hash::{Hash, Hasher};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction as A, LinuxSeccompFilterFlag as F};

use super::compile;
use super::notify::Notify;
use super::SeccompError as E;

/// Programs the cache keeps: an engine uses a handful of profiles; a host
/// that cycles through many keeps the recently used ones.
pub const MAX_CACHED: usize = 64;

/// The kernel's limit on a classic BPF program (BPF_MAXINSNS).
const MAX_INSNS: usize = 4096;
/// One `struct sock_filter`.
const INSN: usize = 8;
const MAGIC: &[u8; 8] = b"BERTHSC1";

const SECCOMP_FILTER_FLAG_LOG: libc::c_uint = 1 << 1;
const SECCOMP_FILTER_FLAG_SPEC_ALLOW: libc::c_uint = 1 << 2;
const SECCOMP_FILTER_FLAG_NEW_LISTENER: libc::c_uint = 1 << 3;

/// A filter ready to load.
#[derive(Clone, Debug)]
pub struct Program {
    /// `struct sock_filter` instructions, as libseccomp exports them.
    bpf: Vec<u8>,
    /// seccomp(2) flags for the load.
    flags: libc::c_uint,
    /// Whether some rule uses SCMP_ACT_NOTIFY.
    pub notify: bool,
    /// Whether this one came from the cache.
    pub cached: bool,
}

impl Program {
    /// Compile `s` (or take it from the cache in `cache_dir`, when given).
    /// Every error a profile can have is reported here.
    pub fn prepare(s: &LinuxSeccomp, cache_dir: Option<&Path>) -> crate::Result<Program> {
        let notify = uses_notify(s);
        let flags = flags(s, notify);
        let key = cache_key(s);
        if let Some(dir) = cache_dir {
            if let Some(bpf) = read_cached(&cache_path(dir, &key), &key) {
                return Ok(Program {
                    bpf,
                    flags,
                    notify,
                    cached: true,
                });
            }
        }
        let c = compile::compile(s)?;
        for name in &c.skipped {
            crate::log::warn(&format!(
                "seccomp: syscall {name:?} is unknown to libseccomp {}: its rule is left out",
                super::libseccomp_version()
            ));
        }
        let bpf = export(&c.ctx)?;
        if let Some(dir) = cache_dir {
            // A cache that cannot be written only costs the next compile.
            match write_cached(dir, &key, &bpf) {
                Ok(()) => evict(dir, MAX_CACHED),
                Err(e) => crate::log::debug(&format!("seccomp cache not written: {e}")),
            }
        }
        Ok(Program {
            bpf,
            flags,
            notify,
            cached: false,
        })
    }

    /// Load into the calling process; with `notify`, hand the notification
    /// descriptor to the listener right after.
    pub fn load(&self, notify: Option<&Notify>) -> crate::Result<()> {
        let target = match (self.notify, notify) {
            (true, Some(n)) => Some(n),
            (true, None) => return Err(E::NotifyNotConnected.into()),
            (false, _) => None,
        };
        let listener = crate::sys::seccomp_set_filter(self.flags, &self.bpf)
            .map_err(|e| crate::Error::Seccomp(format!("load seccomp filter: {e}")))?;
        if let (Some(n), Some(fd)) = (target, listener) {
            super::notify::deliver(n, fd.as_raw_fd())?;
        }
        Ok(())
    }
}

fn uses_notify(s: &LinuxSeccomp) -> bool {
    s.syscalls()
        .iter()
        .flatten()
        .any(|r| r.action() == A::ScmpActNotify)
}

fn flags(s: &LinuxSeccomp, notify: bool) -> libc::c_uint {
    let mut f = 0;
    for flag in s.flags().iter().flatten() {
        f |= match flag {
            F::SeccompFilterFlagLog => SECCOMP_FILTER_FLAG_LOG,
            F::SeccompFilterFlagSpecAllow => SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            // The loading process is single-threaded: nothing to sync.
            F::SeccompFilterFlagTsync => 0,
        };
    }
    if notify {
        f |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
    }
    f
}

/// Everything the compiled program depends on.
fn cache_key(s: &LinuxSeccomp) -> Vec<u8> {
    let uts = nix::sys::utsname::uname().ok();
    let release = uts
        .as_ref()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let machine = uts
        .as_ref()
        .map(|u| u.machine().to_string_lossy().into_owned())
        .unwrap_or_default();
    let profile = serde_json::to_string(s).expect("a parsed profile serializes");
    format!(
        "libseccomp {} api {}\nkernel {release} {machine}\n{profile}",
        super::libseccomp_version(),
        libseccomp::get_api()
    )
    .into_bytes()
}

fn cache_path(dir: &Path, key: &[u8]) -> PathBuf {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    dir.join(format!("{:016x}.bpf", h.finish()))
}

/// The program in `path` when the file is ours, whole, and for `key`.
fn read_cached(path: &Path, key: &[u8]) -> Option<Vec<u8>> {
    let f = std::fs::File::open(path).ok()?;
    let limit = (MAGIC.len() + 8 + key.len() + MAX_INSNS * INSN) as u64;
    let mut buf = Vec::new();
    (&f).take(limit + 1).read_to_end(&mut buf).ok()?;
    let rest = buf.strip_prefix(MAGIC.as_slice())?;
    let (len, rest) = rest.split_at_checked(8)?;
    let key_len = u64::from_le_bytes(len.try_into().ok()?) as usize;
    let (stored_key, bpf) = rest.split_at_checked(key_len)?;
    let hit = stored_key == key
        && !bpf.is_empty()
        && bpf.len() % INSN == 0
        && bpf.len() <= MAX_INSNS * INSN;
    if hit {
        // Recently used: eviction goes by mtime. Best effort.
        let _ = f.set_modified(std::time::SystemTime::now());
    }
    hit.then(|| bpf.to_vec())
}

/// Keep the `keep` most recently used programs in `dir`; remove the others
/// and temp files older than a minute (a writer that died). Races with
/// other runtimes only cost a compile.
fn evict(dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut programs = Vec::new();
    for e in entries.flatten() {
        let (Ok(m), Some(name)) = (e.metadata(), e.file_name().to_str().map(str::to_owned)) else {
            continue;
        };
        let Ok(mtime) = m.modified() else { continue };
        if name.ends_with(".bpf") {
            programs.push((mtime, e.path()));
        } else if name.contains(".tmp")
            && mtime
                .elapsed()
                .is_ok_and(|a| a > std::time::Duration::from_secs(60))
        {
            let _ = std::fs::remove_file(e.path());
        }
    }
    if programs.len() > keep {
        programs.sort();
        for (_, p) in &programs[..programs.len() - keep] {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn write_cached(dir: &Path, key: &[u8], bpf: &[u8]) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let path = cache_path(dir, key);
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    let r = (|| {
        f.write_all(MAGIC)?;
        f.write_all(&(key.len() as u64).to_le_bytes())?;
        f.write_all(key)?;
        f.write_all(bpf)?;
        std::fs::rename(&tmp, &path)
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// libseccomp's BPF for `ctx`, through a memfd.
fn export(ctx: &libseccomp::ScmpFilterContext) -> crate::Result<Vec<u8>> {
    let fd =
        nix::sys::memfd::memfd_create(c"berth-seccomp", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(|e| crate::Error::Seccomp(format!("memfd for the seccomp program: {e}")))?;
    ctx.export_bpf(&fd).map_err(|source| E::Lib {
        op: "export seccomp filter",
        source,
    })?;
    let mut f = std::fs::File::from(fd);
    let mut bpf = Vec::new();
    f.seek(SeekFrom::Start(0))
        .and_then(|_| f.read_to_end(&mut bpf))
        .map_err(|e| crate::Error::Seccomp(format!("read the exported seccomp program: {e}")))?;
    if bpf.is_empty() || bpf.len() % INSN != 0 || bpf.len() > MAX_INSNS * INSN {
        return Err(crate::Error::Seccomp(format!(
            "libseccomp exported a program of {} bytes",
            bpf.len()
        )));
    }
    Ok(bpf)
}

#[cfg(test)]
mod cache_tests {
    use super::*;

    #[test]
    fn eviction_keeps_the_most_recently_used_and_drops_dead_temp_files() {
        let dir = tempfile::tempdir().expect("tmp");
        let d = dir.path();
        let base = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        let mut paths = Vec::new();
        for i in 0..10u8 {
            let key = vec![i; 3];
            write_cached(d, &key, &[0u8; INSN]).expect("write");
            let p = cache_path(d, &key);
            let f = std::fs::File::options().write(true).open(&p).expect("open");
            f.set_modified(base + std::time::Duration::from_secs(u64::from(i)))
                .expect("mtime");
            paths.push((key, p));
        }
        // Program 0, the oldest, is used: it becomes the newest.
        assert!(read_cached(&paths[0].1, &paths[0].0).is_some());
        let dead = d.join("x.tmp1");
        std::fs::write(&dead, b"half").expect("tmp");
        std::fs::File::options()
            .write(true)
            .open(&dead)
            .and_then(|f| f.set_modified(base))
            .expect("old tmp");
        let fresh = d.join("y.tmp2");
        std::fs::write(&fresh, b"being written").expect("tmp");
        evict(d, 4);
        let left: Vec<bool> = paths.iter().map(|(_, p)| p.exists()).collect();
        let mut want = vec![false; 10];
        for i in [0, 7, 8, 9] {
            want[i] = true;
        }
        assert_eq!(left, want);
        assert!(!dead.exists(), "a dead writer's temp file goes");
        assert!(fresh.exists(), "a live writer's temp file stays");
    }
}
