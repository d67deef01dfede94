//! Loading and validating a bundle's `config.json`. Everything that can be
//! checked before any process or mount exists is checked here, so bad input
//! fails with nothing to clean up.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Error, Result};

/// A loaded bundle: its absolute path, the parsed config and the absolute
/// rootfs path.
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
    pub rootfs: PathBuf,
}

pub fn load_bundle(dir: &Path) -> Result<Bundle> {
    let dir = std::fs::canonicalize(dir).map_err(|source| Error::Bundle {
        path: dir.to_path_buf(),
        source,
    })?;
    let cfg = dir.join("config.json");
    let data = std::fs::read(&cfg).map_err(|source| Error::Bundle {
        path: cfg.clone(),
        source,
    })?;
    let spec: Spec = serde_json::from_slice(&data).map_err(|e| Error::ConfigParse {
        path: cfg.clone(),
        msg: e.to_string(),
    })?;
    let rootfs = validate(&spec, &dir)?;
    Ok(Bundle { dir, spec, rootfs })
}

/// Check the configuration; return the absolute rootfs path.
pub fn validate(spec: &Spec, bundle: &Path) -> Result<PathBuf> {
    let bad = |m: String| Err(Error::InvalidConfig(m));
    let ver = spec.version();
    if !ver.starts_with("1.") {
        return bad(format!(
            "unsupported ociVersion {ver:?}: this runtime implements 1.x"
        ));
    }
    let Some(root) = spec.root() else {
        return bad("root is required".into());
    };
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };
    match std::fs::metadata(&rootfs) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return bad(format!("root.path {} is not a directory", rootfs.display())),
        Err(e) => return bad(format!("root.path {}: {e}", rootfs.display())),
    }
    let Some(process) = spec.process() else {
        return bad("process is required".into());
    };
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return bad("process.args must not be empty".into());
    }
    if !process.cwd().is_absolute() {
        return bad(format!(
            "process.cwd {:?} must be an absolute path",
            process.cwd()
        ));
    }
    for kv in process.env().iter().flatten() {
        if !kv.contains('=') || kv.starts_with('=') {
            return bad(format!("process.env entry {kv:?} is not KEY=VALUE"));
        }
    }
    let Some(linux) = spec.linux() else {
        return bad("linux is required on Linux".into());
    };
    let mut seen = HashSet::new();
    for ns in linux.namespaces().iter().flatten() {
        if !seen.insert(ns.typ()) {
            return bad(format!("namespace {} is listed twice", ns.typ()));
        }
        if let Some(p) = ns.path() {
            if !p.is_absolute() {
                return bad(format!(
                    "namespace {} path {:?} must be absolute",
                    ns.typ(),
                    p
                ));
            }
            if ns.typ() == LinuxNamespaceType::Time {
                // joining is fine; offsets only apply to new ones
            }
            if let Err(e) = std::fs::metadata(p) {
                return bad(format!("namespace {} path {}: {e}", ns.typ(), p.display()));
            }
        }
    }
    let has = |t: LinuxNamespaceType| seen.contains(&t);
    let new_userns = linux
        .namespaces()
        .iter()
        .flatten()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
    let maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if new_userns && !maps {
        return bad("a new user namespace needs uidMappings and gidMappings".into());
    }
    if maps && !has(LinuxNamespaceType::User) {
        return bad("uidMappings/gidMappings need a user namespace".into());
    }
    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        return bad("unable to set hostname without a private UTS namespace".into());
    }
    if spec.domainname().as_deref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts)
    {
        return bad("unable to set domainname without a private UTS namespace".into());
    }
    if !has(LinuxNamespaceType::Mount) {
        return bad("a mount namespace is required".into());
    }
    for (k, _) in linux.sysctl().iter().flatten() {
        check_sysctl(k, &has)?;
    }
    if let Some(p) = linux.rootfs_propagation() {
        if !matches!(
            p.as_str(),
            "" | "private"
                | "rprivate"
                | "slave"
                | "rslave"
                | "shared"
                | "rshared"
                | "unbindable"
                | "runbindable"
        ) {
            return bad(format!("rootfsPropagation {p:?} is not a propagation mode"));
        }
    }
    for m in spec.mounts().iter().flatten() {
        crate::mounts::parse_options(m)?;
        if m.destination().as_os_str().is_empty() {
            return bad("mount destination must not be empty".into());
        }
    }
    for r in process.rlimits().iter().flatten() {
        if r.soft() > r.hard() {
            return bad(format!(
                "rlimit {:?}: soft limit {} exceeds hard limit {}",
                r.typ(),
                r.soft(),
                r.hard()
            ));
        }
    }
    if let Some(caps) = process.capabilities() {
        crate::capabilities::validate(caps)?;
    }
    Ok(rootfs)
}

fn check_sysctl(key: &str, has: &dyn Fn(LinuxNamespaceType) -> bool) -> Result<()> {
    let ipc = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if key.contains("..") || key.contains('/') && key.contains('.') || key.starts_with('.') {
        return Err(Error::InvalidConfig(format!(
            "sysctl {key:?} is not a valid name"
        )));
    }
    let ok = if ipc.contains(&key) || key.starts_with("fs.mqueue.") {
        has(LinuxNamespaceType::Ipc)
    } else if key.starts_with("net.") {
        has(LinuxNamespaceType::Network)
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        has(LinuxNamespaceType::Uts)
    } else {
        false
    };
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidConfig(format!(
            "sysctl {key:?} is not allowed: it is not namespaced or the container does not have its namespace"
        )))
    }
}
