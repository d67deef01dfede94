//! `update`: change a live container's resources. As runc: the new values
//! are merged over the ones the container has, the result is checked as a
//! whole, written, and kept in the container's state so the next update
//! starts from it.

use oci_spec::runtime::LinuxResources;
use serde_json::Value;

use super::{apply, from_saved, validate, Apply};
use crate::error::{Error, Result};
use crate::state::{Root, Status};

/// Merge `patch` over `base`: objects recursively, anything else (numbers,
/// strings, lists) replaced.
pub fn merge(base: &LinuxResources, patch: &LinuxResources) -> LinuxResources {
    fn deep(into: &mut Value, from: Value) {
        match (into, from) {
            (Value::Object(a), Value::Object(b)) => {
                for (k, v) in b {
                    match a.get_mut(&k) {
                        Some(slot) if !v.is_null() => deep(slot, v),
                        None if !v.is_null() => {
                            a.insert(k, v);
                        }
                        _ => {}
                    }
                }
            }
            (slot, v) => *slot = v,
        }
    }
    let mut b = serde_json::to_value(base).expect("resources serialize");
    deep(
        &mut b,
        serde_json::to_value(patch).expect("resources serialize"),
    );
    serde_json::from_value(b).expect("merged resources deserialize")
}

/// Apply `patch` to container `id`; returns the resources it now has.
pub fn update_container(root: &Root, id: &str, patch: &LinuxResources) -> Result<LinuxResources> {
    let locked = root.lock(id)?;
    let mut st = root.load(id)?;
    if st.status == Status::Stopped {
        return Err(Error::BadStatus {
            id: id.into(),
            status: "stopped".into(),
            expected: "running, created or paused",
        });
    }
    let cg = st
        .cgroup_path
        .as_deref()
        .map(from_saved)
        .ok_or_else(|| Error::Cgroup {
            path: id.into(),
            msg: "container has no cgroup to update".into(),
        })?;
    let current = st
        .config
        .linux()
        .as_ref()
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    let merged = merge(&current, patch);
    validate(&cg, &merged)?;
    let how = Apply {
        devices: patch.devices().is_some(),
        live: true,
    };
    apply(&cg, &merged, how)?;
    let mut cfg = serde_json::to_value(&st.config).expect("spec serializes");
    cfg["linux"]["resources"] = serde_json::to_value(&merged).expect("resources serialize");
    st.config = serde_json::from_value(cfg).map_err(|e| Error::StateCorrupt {
        id: id.into(),
        source: e,
    })?;
    locked.save(&st)?;
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(j: &str) -> LinuxResources {
        serde_json::from_str(j).expect("json")
    }

    #[test]
    fn patch_overrides_only_what_it_names() {
        let base = res(
            r#"{"memory":{"limit":100,"swap":200},"cpu":{"shares":512,"cpus":"0"},"pids":{"limit":5}}"#,
        );
        let m = merge(
            &base,
            &res(r#"{"memory":{"limit":150},"cpu":{"quota":1000}}"#),
        );
        let m = serde_json::to_value(m).unwrap();
        assert_eq!(m["memory"]["limit"], 150);
        assert_eq!(m["memory"]["swap"], 200);
        assert_eq!(m["cpu"]["shares"], 512);
        assert_eq!(m["cpu"]["quota"], 1000);
        assert_eq!(m["cpu"]["cpus"], "0");
        assert_eq!(m["pids"]["limit"], 5);
    }
}
