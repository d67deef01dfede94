//! seccomp filters from `linux.seccomp`, compiled with libseccomp.
//!
//! [`Program::prepare`] compiles the whole profile in the runtime's parent
//! process (or takes it from the cache, see [`program`]), so every mistake
//! (unknown syscall name, bad errnoRet, bad argument index, flag the kernel
//! lacks, notify without a listener) fails `create` before anything exists.
//! The container process only loads the prepared program
//! ([`Program::load`]); for `SCMP_ACT_NOTIFY` it then hands the
//! notification descriptor to the listener (see [`notify`]).

mod compile;
pub mod notify;
pub mod program;

use std::path::PathBuf;

use oci_spec::runtime::LinuxSeccompFilterFlag as F;
use serde_json::json;

pub use notify::{connect_listener, Notify};
pub use program::Program;

/// What can be wrong with a profile or with applying it.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("unknown syscall {name:?} in {rule}")]
    UnknownSyscall { name: String, rule: String },
    #[error("{0}")]
    Invalid(String),
    #[error("SCMP_ACT_NOTIFY cannot be the default action")]
    NotifyAsDefault,
    #[error("SCMP_ACT_NOTIFY is used but listenerPath is not set")]
    NotifyWithoutListener,
    #[error("SCMP_ACT_NOTIFY cannot be used for {0:?}: the runtime needs it to deliver the notify descriptor")]
    NotifyForbidden(String),
    #[error("SCMP_ACT_NOTIFY is used but the runtime passed no listener connection to the filter loader")]
    NotifyNotConnected,
    #[error("filter flag {flag} is not supported here (libseccomp API level {api})")]
    FlagUnsupported { flag: String, api: u32 },
    #[error("set filter flag {flag}")]
    Flag {
        flag: String,
        #[source]
        source: libseccomp::error::SeccompError,
    },
    #[error("add architecture {arch}")]
    Arch {
        arch: String,
        #[source]
        source: libseccomp::error::SeccompError,
    },
    #[error("add rule for {name:?} ({rule})")]
    Rule {
        name: String,
        rule: String,
        #[source]
        source: libseccomp::error::SeccompError,
    },
    #[error("{op}")]
    Lib {
        op: &'static str,
        #[source]
        source: libseccomp::error::SeccompError,
    },
    #[error("seccomp listenerPath {path} is not a unix socket")]
    ListenerNotSocket {
        path: PathBuf,
        #[source]
        source: Option<std::io::Error>,
    },
    #[error("connect to seccomp listener {path}")]
    ListenerConnect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("send the notify descriptor to the seccomp listener")]
    ListenerSend(#[source] nix::errno::Errno),
    #[error("container state for the seccomp listener is not json")]
    StateJson(#[source] serde_json::Error),
}

// The crate error has a string-carrying `Seccomp` variant; keep the typed
// chain in the message until it carries `SeccompError` as its source.
impl From<SeccompError> for crate::Error {
    fn from(e: SeccompError) -> Self {
        crate::Error::Seccomp(crate::error::chain(&e))
    }
}

const ACTIONS: &[&str] = &[
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
];

const OPERATORS: &[&str] = &[
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
];

const ARCHS: &[&str] = &[
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
];

const KNOWN_FLAGS: &[F] = &[
    F::SeccompFilterFlagTsync,
    F::SeccompFilterFlagSpecAllow,
    F::SeccompFilterFlagLog,
];

/// The seccomp part of `features`, in runc's shape.
pub fn features() -> serde_json::Value {
    let known: Vec<String> = KNOWN_FLAGS.iter().map(|f| f.to_string()).collect();
    let supported: Vec<String> = KNOWN_FLAGS
        .iter()
        .filter(|f| compile::flag_supported(**f))
        .map(|f| f.to_string())
        .collect();
    json!({
        "enabled": true,
        "actions": ACTIONS,
        "operators": OPERATORS,
        "archs": ARCHS,
        "knownFlags": known,
        "supportedFlags": supported,
    })
}

pub fn libseccomp_version() -> String {
    match libseccomp::ScmpVersion::current() {
        Ok(v) => format!("{}.{}.{}", v.major, v.minor, v.micro),
        Err(_) => "unknown".into(),
    }
}

#[cfg(test)]
mod tests;
