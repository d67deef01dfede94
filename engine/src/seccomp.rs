//! `linux.seccomp` for a container: Docker's default profile (see
//! `engine/profiles/README.md`), or a profile file in the same format from
//! `--security-opt seccomp=FILE`, resolved for the container's capabilities
//! and the host's architecture — rules whose `includes` name capabilities
//! the container lacks, or another architecture, are left out; rules whose
//! `excludes` name one it has are left out too.

use serde_json::{json, Value};

use crate::error::Result;
use crate::options::invalid;

const DEFAULT_PROFILE: &str = include_str!("../profiles/seccomp-default.json");

/// What `--security-opt seccomp=…` asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Seccomp {
    /// Docker's default profile.
    #[default]
    Default,
    /// No filter at all.
    Unconfined,
    /// A profile file (Docker's format), read at create.
    File(std::path::PathBuf),
}

/// The OCI seccomp section, or `None` when unconfined.
pub fn section(choice: &Seccomp, caps: &[String]) -> Result<Option<Value>> {
    let text = match choice {
        Seccomp::Unconfined => return Ok(None),
        Seccomp::Default => DEFAULT_PROFILE.to_string(),
        Seccomp::File(p) => std::fs::read_to_string(p).map_err(|e| {
            invalid(
                "--security-opt seccomp",
                format!("read {}: {e}", p.display()),
            )
        })?,
    };
    let profile: Value = serde_json::from_str(&text).map_err(|e| {
        invalid(
            "--security-opt seccomp",
            format!("the profile is not JSON: {e}"),
        )
    })?;
    resolve(&profile, caps, std::env::consts::ARCH).map(Some)
}

/// Docker's arch names for the OCI ones the rules' `arches` use.
fn docker_arch(rust_arch: &str) -> (&'static str, &'static str) {
    match rust_arch {
        "x86_64" => ("SCMP_ARCH_X86_64", "amd64"),
        "aarch64" => ("SCMP_ARCH_AARCH64", "arm64"),
        "x86" => ("SCMP_ARCH_X86", "386"),
        "arm" => ("SCMP_ARCH_ARM", "arm"),
        "powerpc64" => ("SCMP_ARCH_PPC64LE", "ppc64le"),
        "s390x" => ("SCMP_ARCH_S390X", "s390x"),
        "riscv64" => ("SCMP_ARCH_RISCV64", "riscv64"),
        _ => ("", ""),
    }
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Resolve a Docker-format profile (an OCI-format one passes through with
/// its `architectures`).
pub fn resolve(p: &Value, caps: &[String], rust_arch: &str) -> Result<Value> {
    let bad = |r: String| invalid("--security-opt seccomp", r);
    let default = p["defaultAction"]
        .as_str()
        .ok_or_else(|| bad("the profile has no defaultAction".into()))?;
    let (scmp_arch, arch) = docker_arch(rust_arch);
    let architectures: Vec<Value> = match p["archMap"].as_array() {
        Some(map) => map
            .iter()
            .filter(|m| m["architecture"] == scmp_arch)
            .flat_map(|m| {
                std::iter::once(m["architecture"].clone()).chain(
                    m["subArchitectures"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default(),
                )
            })
            .collect(),
        None => p["architectures"].as_array().cloned().unwrap_or_default(),
    };
    let has = |c: &&str| caps.iter().any(|x| x == c);
    let mut rules = Vec::new();
    for s in p["syscalls"].as_array().into_iter().flatten() {
        let (inc, exc) = (&s["includes"], &s["excludes"]);
        let inc_arches = strings(&inc["arches"]);
        if !strings(&inc["caps"]).iter().all(has)
            || (!inc_arches.is_empty() && !inc_arches.contains(&arch))
            || strings(&exc["caps"]).iter().any(has)
            || strings(&exc["arches"]).contains(&arch)
        {
            continue;
        }
        let mut names = strings(&s["names"]);
        if let Some(n) = s["name"].as_str() {
            names.push(n);
        }
        let action = s["action"]
            .as_str()
            .ok_or_else(|| bad(format!("a rule for {names:?} has no action")))?;
        let mut r = json!({"names": names, "action": action});
        for k in ["args", "errnoRet"] {
            if !s[k].is_null() {
                r[k] = s[k].clone();
            }
        }
        rules.push(r);
    }
    let mut out = json!({
        "defaultAction": default,
        "architectures": architectures,
        "syscalls": rules,
    });
    if !p["defaultErrnoRet"].is_null() {
        out["defaultErrnoRet"] = p["defaultErrnoRet"].clone();
    }
    if !p["flags"].is_null() {
        out["flags"] = p["flags"].clone();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names the profile allows.
    fn names(v: &Value) -> Vec<String> {
        v["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["action"] == "SCMP_ACT_ALLOW")
            .flat_map(|r| strings(&r["names"]).into_iter().map(str::to_string))
            .collect()
    }

    #[test]
    fn the_default_profile_follows_capabilities_and_arch() {
        let p: Value = serde_json::from_str(DEFAULT_PROFILE).unwrap();
        let plain = resolve(&p, &["CAP_CHOWN".into()], "x86_64").unwrap();
        assert_eq!(plain["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(
            plain["architectures"],
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
        let n = names(&plain);
        assert!(n.iter().any(|x| x == "read"), "ordinary syscalls allowed");
        assert!(
            !n.iter().any(|x| x == "bpf"),
            "bpf needs CAP_SYS_ADMIN/CAP_BPF"
        );
        let admin = resolve(&p, &["CAP_SYS_ADMIN".into()], "x86_64").unwrap();
        assert!(
            names(&admin).iter().any(|x| x == "bpf"),
            "bpf with CAP_SYS_ADMIN"
        );
        let arm = resolve(&p, &[], "aarch64").unwrap();
        assert_eq!(
            arm["architectures"],
            json!(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"])
        );
        assert!(
            !names(&arm).iter().any(|x| x == "arch_prctl"),
            "x86-only rule left out"
        );
    }

    #[test]
    fn a_profile_without_default_action_is_refused() {
        let e = resolve(&json!({"syscalls": []}), &[], "x86_64").unwrap_err();
        assert!(e.to_string().contains("defaultAction"), "{e}");
    }
}
