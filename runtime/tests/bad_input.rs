//! Bad input: a clear one-line error, a non-zero exit, and nothing left
//! behind (no state directory, no mount, no process).

mod common;

use common::*;
use serde_json::json;

fn check_refused(rt: &Rt, b: &Bundle, want: &str) {
    let id = unique("bad");
    let err = rt.fails(&["create", "-b", b.path().to_str().unwrap(), &id]);
    assert!(
        err.to_lowercase().contains(&want.to_lowercase()),
        "wanted {want:?} in: {err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(!rt.state_dir(&id).exists(), "state left behind for {want}");
    assert!(
        berth_testkit::mounts_under(b.path()).is_empty(),
        "mount left behind for {want}"
    );
    let procs = std::process::Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&procs.stdout).contains(&id),
        "process left behind"
    );
}

#[test]
fn missing_bundle() {
    if !require_root("missing_bundle") {
        return;
    }
    let rt = Rt::new();
    let err = rt.fails(&["create", "-b", "/nonexistent/bundle", &unique("nob")]);
    assert!(err.contains("/nonexistent/bundle"), "{err}");
    assert_eq!(
        std::fs::read_dir(rt.root.path())
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );
}

#[test]
fn malformed_and_invalid_configs() {
    if !require_root("malformed_and_invalid_configs") {
        return;
    }
    let rt = Rt::new();
    let b = bundle("true");
    std::fs::write(b.path().join("config.json"), "{ this is not json").unwrap();
    check_refused(&rt, &b, "config");
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|c| {
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "bogus"}))
            }),
            "bogus",
        ),
        (Box::new(|c| c["process"]["args"] = json!([])), "args"),
        (Box::new(|c| c["process"]["cwd"] = json!("relative")), "cwd"),
        (Box::new(|c| c["ociVersion"] = json!("2.0.0")), "ociVersion"),
        (
            Box::new(|c| c["root"]["path"] = json!("no-such-rootfs")),
            "root",
        ),
        (
            Box::new(|c| c["linux"]["sysctl"] = json!({"kernel.panic": "1"})),
            "sysctl",
        ),
        (
            Box::new(|c| c["process"]["args"] = json!(["/no/such/program"])),
            "/no/such/program",
        ),
        (
            Box::new(|c| {
                c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 10, "soft": 20}])
            }),
            "rlimit",
        ),
        (
            Box::new(|c| {
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "pid"}))
            }),
            "twice",
        ),
        (
            Box::new(|c| {
                c["linux"]["namespaces"] =
                    json!([{"type": "mount"}, {"type": "network", "path": "/no/such/ns"}])
            }),
            "/no/such/ns",
        ),
    ];
    for (edit, want) in cases {
        let mut b = bundle("true");
        b.edit(|c| edit(c)).save();
        check_refused(&rt, &b, want);
    }
}

#[test]
fn a_mount_target_symlinked_out_of_the_rootfs_is_refused() {
    if !require_root("a_mount_target_symlinked_out_of_the_rootfs_is_refused") {
        return;
    }
    let rt = Rt::new();
    let outside = berth_testkit::tempdir("outside");
    let mut b = bundle("true");
    let depth = b.rootfs().components().count();
    let up = "../".repeat(depth + 2);
    let rel_target = format!(
        "{up}{}",
        outside.path().strip_prefix("/").unwrap().display()
    );
    std::os::unix::fs::symlink(&rel_target, b.rootfs().join("escape")).unwrap();
    b.edit(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/escape/sub", "type": "tmpfs", "source": "tmpfs"}));
    })
    .save();
    check_refused(&rt, &b, "outside the container root");
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        0,
        "nothing created outside"
    );
}

#[test]
fn an_id_in_use_is_refused_without_touching_the_existing_container() {
    if !require_root("an_id_in_use_is_refused_without_touching_the_existing_container") {
        return;
    }
    let rt = Rt::new();
    let b = bundle("sleep 100");
    let id = unique("dup");
    rt.create(&b, &id);
    let err = rt.fails(&["create", "-b", b.path().to_str().unwrap(), &id]);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(
        rt.status(&id),
        "created",
        "the first container is untouched"
    );
    rt.ok(&["delete", "--force", &id]);
}
