//! The cgroup tests' fixture: a container with resources in a cgroup of
//! its own, the host's hierarchies, and clean-up of every cgroup made.
#![allow(dead_code)]

use crate::common::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
pub const CG: &str = "/sys/fs/cgroup";

macro_rules! root_or_skip {
    ($name:expr) => {
        if !require_root($name) {
            return;
        }
    };
}

/// A runtime, a bundle and a unique cgroup; on drop the containers are
/// deleted first (field order), then the cgroup directories.
pub struct Fx {
    pub rt: Rt,
    pub cg: CgDirs,
    pub b: Bundle,
    pub id: String,
}

pub struct CgDirs {
    pub name: String,
}

impl CgDirs {
    /// `/berth-test/<name>/ctr` as cgroupsPath.
    pub fn path(&self) -> String {
        format!("/berth-test/{}/ctr", self.name)
    }

    /// A file of the container's cgroup in the v1 hierarchy `ctrl`.
    pub fn file(&self, ctrl: &str, file: &str) -> PathBuf {
        Path::new(CG)
            .join(ctrl)
            .join("berth-test")
            .join(&self.name)
            .join("ctr")
            .join(file)
    }

    pub fn read(&self, ctrl: &str, file: &str) -> String {
        let p = self.file(ctrl, file);
        std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
            .trim()
            .to_string()
    }

    /// Every directory of ours that exists, in any hierarchy.
    pub fn leftovers(&self) -> Vec<PathBuf> {
        hierarchies()
            .into_iter()
            .map(|h| h.join("berth-test").join(&self.name))
            .filter(|p| p.exists())
            .collect()
    }
}

impl Drop for CgDirs {
    fn drop(&mut self) {
        for h in hierarchies() {
            let parent = h.join("berth-test").join(&self.name);
            let _ = std::fs::remove_dir(parent.join("ctr"));
            let _ = std::fs::remove_dir(&parent);
            // Shared by parallel tests: removed by whoever is last.
            let _ = std::fs::remove_dir(h.join("berth-test"));
        }
    }
}

/// The v1 hierarchies, and the root itself (a v2 host's only hierarchy).
pub fn hierarchies() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(CG)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    v.push(PathBuf::from(CG));
    v
}

pub fn hybrid_or_v1() -> bool {
    Path::new(CG)
        .join("memory")
        .join("memory.limit_in_bytes")
        .exists()
}

pub fn v1_or_skip(test: &str) -> bool {
    if hybrid_or_v1() {
        return true;
    }
    berth_testkit::skip(
        test,
        "these checks read cgroup v1 files; this host is cgroup v2 (see v2_limits_for_real)",
    );
    false
}

impl Fx {
    /// A bundle running `sh -c script` with `resources` merged into
    /// linux.resources and the unique cgroupsPath.
    pub fn new(script: &str, resources: Value) -> Fx {
        let cg = CgDirs { name: unique("cg") };
        let mut b = bundle(script);
        let path = cg.path();
        b.edit(|c| {
            c["linux"]["cgroupsPath"] = json!(path);
            let res = &mut c["linux"]["resources"];
            for (k, v) in resources.as_object().expect("resources object") {
                res[k] = v.clone();
            }
        })
        .save();
        Fx {
            rt: Rt::new(),
            cg,
            b,
            id: unique("c"),
        }
    }

    pub fn bundle_arg(&self) -> &str {
        self.b.path().to_str().expect("utf-8 path")
    }

    pub fn run_detached(&self) {
        self.rt
            .ok(&["run", "-d", "--bundle", self.bundle_arg(), &self.id]);
    }

    pub fn stats(&self) -> Value {
        let out = self.rt.ok(&["events", "--stats", &self.id]);
        let v: Value =
            serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("events json {out:?}: {e}"));
        assert_eq!(v["type"], "stats");
        assert_eq!(v["id"], self.id.as_str());
        v
    }
}

/// Poll `f` until it returns true (`what` names it in the failure).
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
