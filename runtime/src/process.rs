//! The last steps before the container's process runs, shared by `create`
//! (the init) and `exec`: rlimits, user and groups, capabilities, umask,
//! cwd, no_new_privs, seccomp, signals, descriptors, execve.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::sys::resource::{setrlimit, Resource};
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{PosixRlimitType, Process};

use crate::error::{sys as sys_err, Error, Result};
use crate::sys;

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub struct Final<'a> {
    pub process: &'a Process,
    pub seccomp: Option<&'a crate::seccomp::Program>,
    /// Where a notifying filter's descriptor goes (see `seccomp::notify`).
    pub seccomp_notify: Option<&'a crate::seccomp::Notify>,
    /// Descriptors 3..3+preserve survive exec.
    pub preserve_fds: u32,
    /// Extra environment (LISTEN_FDS, …), appended.
    pub extra_env: Vec<String>,
    /// Whether setgroups(2) is allowed (not in a user namespace whose
    /// setgroups file says deny).
    pub setgroups: bool,
    pub personality: Option<&'a oci_spec::runtime::LinuxPersonality>,
}

/// Perform the final set-up and exec. Returns only on failure.
pub fn finalize_and_exec(f: &Final<'_>) -> Error {
    match finalize(f) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

enum Never {}

fn finalize(f: &Final<'_>) -> Result<Never> {
    let p = f.process;
    let args = p.args().clone().unwrap_or_default();
    let mut env: Vec<String> = p.env().clone().unwrap_or_default();
    env.extend(f.extra_env.iter().cloned());
    let path_env = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH)
        .to_string();
    set_rlimits(p)?;
    if let Some(pers) = f.personality {
        apply_personality(pers)?;
    }
    let nnp = p.no_new_privileges().unwrap_or(false);
    let mut seccomp_loaded = false;
    if !nnp {
        // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN, which
        // the user switch below may drop: load it now.
        if let Some(s) = f.seccomp {
            s.load(f.seccomp_notify)?;
            seccomp_loaded = true;
        }
    }
    crate::capabilities::drop_bounding(p.capabilities().as_ref())?;
    nix::sys::prctl::set_keepcaps(true).map_err(sys_err("set keep-caps"))?;
    let user = p.user();
    if f.setgroups {
        let gids: Vec<Gid> = user
            .additional_gids()
            .iter()
            .flatten()
            .map(|g| Gid::from_raw(*g))
            .collect();
        nix::unistd::setgroups(&gids).map_err(sys_err("setgroups"))?;
    }
    let gid = Gid::from_raw(user.gid());
    let uid = Uid::from_raw(user.uid());
    nix::unistd::setresgid(gid, gid, gid).map_err(sys_err(format!("setgid {gid}")))?;
    nix::unistd::setresuid(uid, uid, uid).map_err(sys_err(format!("setuid {uid}")))?;
    nix::sys::prctl::set_keepcaps(false).map_err(sys_err("clear keep-caps"))?;
    crate::capabilities::apply(p.capabilities().as_ref())?;
    if let Some(mask) = user.umask() {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask & 0o777));
    }
    change_dir(p.cwd())?;
    let prog = find_program(&args[0], &path_env)?;
    if nnp {
        nix::sys::prctl::set_no_new_privs().map_err(sys_err("set no_new_privs"))?;
    }
    sys::reset_signals();
    sys::close_range_from(3 + f.preserve_fds, true).map_err(sys_err("close descriptors"))?;
    for fd in 3..3 + f.preserve_fds {
        sys::clear_cloexec(fd as i32).map_err(sys_err(format!("preserve fd {fd}")))?;
    }
    if !seccomp_loaded {
        if let Some(s) = f.seccomp {
            s.load(f.seccomp_notify)?;
        }
    }
    let cprog = cstr(prog.as_os_str().as_bytes())?;
    let cargs: Vec<CString> = args
        .iter()
        .map(|a| cstr(a.as_bytes()))
        .collect::<Result<_>>()?;
    let cenv: Vec<CString> = env
        .iter()
        .map(|a| cstr(a.as_bytes()))
        .collect::<Result<_>>()?;
    let argv: Vec<&std::ffi::CStr> = cargs.iter().map(|c| c.as_c_str()).collect();
    let envp: Vec<&std::ffi::CStr> = cenv.iter().map(|c| c.as_c_str()).collect();
    let e = sys::execve(&cprog, &argv, &envp);
    Err(Error::Init(format!("exec {:?}: {}", args[0], e.desc())))
}

fn cstr(b: &[u8]) -> Result<CString> {
    CString::new(b)
        .map_err(|_| Error::InvalidConfig("argument or environment contains a NUL byte".into()))
}

fn set_rlimits(p: &Process) -> Result<()> {
    for r in p.rlimits().iter().flatten() {
        let res = rlimit_resource(r.typ())?;
        setrlimit(res, r.soft(), r.hard()).map_err(|e| {
            Error::Init(format!(
                "setrlimit {:?} soft={} hard={}: {e}",
                r.typ(),
                r.soft(),
                r.hard()
            ))
        })?;
    }
    Ok(())
}

pub fn rlimit_resource(t: PosixRlimitType) -> Result<Resource> {
    use PosixRlimitType as T;
    Ok(match t {
        T::RlimitCpu => Resource::RLIMIT_CPU,
        T::RlimitFsize => Resource::RLIMIT_FSIZE,
        T::RlimitData => Resource::RLIMIT_DATA,
        T::RlimitStack => Resource::RLIMIT_STACK,
        T::RlimitCore => Resource::RLIMIT_CORE,
        T::RlimitRss => Resource::RLIMIT_RSS,
        T::RlimitNproc => Resource::RLIMIT_NPROC,
        T::RlimitNofile => Resource::RLIMIT_NOFILE,
        T::RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        T::RlimitAs => Resource::RLIMIT_AS,
        T::RlimitLocks => Resource::RLIMIT_LOCKS,
        T::RlimitSigpending => Resource::RLIMIT_SIGPENDING,
        T::RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
        T::RlimitNice => Resource::RLIMIT_NICE,
        T::RlimitRtprio => Resource::RLIMIT_RTPRIO,
        T::RlimitRttime => Resource::RLIMIT_RTTIME,
    })
}

fn apply_personality(p: &oci_spec::runtime::LinuxPersonality) -> Result<()> {
    use nix::sys::personality::Persona;
    use oci_spec::runtime::LinuxPersonalityDomain as D;
    let base = match p.domain() {
        D::PerLinux => Persona::empty(),
        D::PerLinux32 => Persona::from_bits_retain(0x0008),
    };
    nix::sys::personality::set(base).map_err(sys_err("personality"))?;
    Ok(())
}

/// chdir into the configured cwd and make sure it is inside the container
/// root: a cwd reached through a leaked host descriptor (/proc/self/fd/N)
/// is "unreachable" from the new root (CVE-2024-21626).
fn change_dir(cwd: &Path) -> Result<()> {
    nix::unistd::chdir(cwd).map_err(|e| Error::Path {
        op: "chdir to cwd",
        path: cwd.into(),
        source: e,
    })?;
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() => Ok(()),
        _ => Err(Error::InvalidConfig(format!(
            "cwd {} is outside the container root",
            cwd.display()
        ))),
    }
}

/// Find the program like execvp would, in the container's PATH.
pub fn find_program(arg0: &str, path_env: &str) -> Result<PathBuf> {
    use nix::unistd::{access, AccessFlags};
    let executable = |p: &Path| {
        access(p, AccessFlags::X_OK).is_ok()
            && std::fs::metadata(p).map(|m| m.is_file()).unwrap_or(false)
    };
    if arg0.contains('/') {
        // runc's words: engines tell 127 (missing) from 126 (not runnable)
        // by them.
        let p = PathBuf::from(arg0);
        return match std::fs::metadata(&p) {
            Err(_) => Err(Error::Init(format!(
                "exec: stat {arg0}: no such file or directory"
            ))),
            Ok(_) if executable(&p) => Ok(p),
            Ok(_) => Err(Error::Init(format!("exec: {arg0:?}: permission denied"))),
        };
    }
    for dir in path_env.split(':').filter(|d| !d.is_empty()) {
        let p = Path::new(dir).join(arg0);
        if executable(&p) {
            return Ok(p);
        }
    }
    Err(Error::Init(format!(
        "exec: {arg0:?}: executable file not found in $PATH"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_lookup_uses_runcs_words() {
        let d = tempfile::tempdir().unwrap();
        let exe = d.path().join("prog");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&exe, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let plain = d.path().join("data");
        std::fs::write(&plain, "").unwrap();
        let path = d.path().to_str().unwrap();
        assert_eq!(find_program("prog", path).unwrap(), exe);
        assert_eq!(find_program(exe.to_str().unwrap(), "").unwrap(), exe);
        let missing = find_program(&format!("{path}/nope"), "")
            .unwrap_err()
            .to_string();
        assert!(missing.contains("no such file or directory"), "{missing}");
        for not_runnable in [plain.to_str().unwrap(), path] {
            let e = find_program(not_runnable, "").unwrap_err().to_string();
            assert!(e.contains("permission denied"), "{e}");
        }
        let e = find_program("nope", path).unwrap_err().to_string();
        assert!(e.contains("not found in $PATH"), "{e}");
    }
}
