//! seccomp filters from `linux.seccomp` (libseccomp).
//!
//! Placeholder until the filter compiler lands: a container that asks for a
//! filter is refused with a clear error rather than run unconfined.

use oci_spec::runtime::LinuxSeccomp;

use crate::error::{Error, Result};

/// Check a profile before anything is created.
pub fn validate(_s: &LinuxSeccomp) -> Result<()> {
    Err(Error::Seccomp("seccomp profiles are not supported yet by this build".into()))
}

/// Load the filter into the calling thread (right before exec).
pub fn load(s: &LinuxSeccomp) -> Result<()> {
    validate(s)
}

/// The seccomp part of `features`.
pub fn features() -> serde_json::Value {
    serde_json::json!({"enabled": false})
}

pub fn libseccomp_version() -> String {
    match libseccomp::ScmpVersion::current() {
        Ok(v) => format!("{}.{}.{}", v.major, v.minor, v.micro),
        Err(_) => "unknown".into(),
    }
}
