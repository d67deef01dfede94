//! Capability and LSM hardening tests: exec gets no inheritable
//! capabilities (CVE-2022-29162), the five sets as configured, read-only
//! cgroupfs for rootless without a cgroup namespace (CVE-2023-25809),
//! AppArmor and SELinux (named skips where the host has neither).

mod security_support;

use std::path::Path;

use berth_testkit::{require_root, skip, tempdir, unique};
use serde_json::json;

use security_support::*;

fn cap_line(status: &str, key: &str) -> u64 {
    let l = status
        .lines()
        .find(|l| l.starts_with(key))
        .unwrap_or_else(|| panic!("{key} in {status}"));
    u64::from_str_radix(l.split_whitespace().nth(1).unwrap(), 16).unwrap()
}

#[test]
fn cve_2022_29162_exec_gets_no_inheritable_capabilities() {
    let name = "cve_2022_29162_exec_gets_no_inheritable_capabilities";
    if !require_root(name) {
        return;
    }
    let rt = Rt::new();
    let mut b = bundle("true");
    let id = unique("cve29162");
    let init = rt.sleeper(&mut b, &id);
    let init_status = std::fs::read_to_string(format!("/proc/{init}/status")).unwrap();
    assert_eq!(
        cap_line(&init_status, "CapInh:"),
        0,
        "the init has inheritable capabilities"
    );
    for extra in [
        &[][..],
        &["--cap", "CAP_NET_RAW"][..],
        &["--cap", "CAP_SYS_ADMIN", "--cap", "CAP_NET_ADMIN"][..],
    ] {
        let mut args = vec!["exec"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[&id, "cat", "/proc/self/status"]);
        let o = rt.ok(&args);
        let status = String::from_utf8_lossy(&o.stdout);
        assert_eq!(
            cap_line(&status, "CapInh:"),
            0,
            "exec {extra:?} got inheritable capabilities"
        );
        assert_eq!(
            cap_line(&status, "CapAmb:") & !cap_line(&status, "CapInh:"),
            0
        );
        if extra.contains(&"CAP_NET_RAW") {
            assert_ne!(
                cap_line(&status, "CapEff:") & (1 << 13),
                0,
                "--cap CAP_NET_RAW is effective"
            );
        }
    }
    // Inheritable capabilities only when the process asks for them.
    let caps = ["CAP_NET_RAW"];
    let process = json!({"args": ["cat", "/proc/self/status"], "cwd": "/", "user": {"uid": 0, "gid": 0},
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps, "inheritable": caps}});
    let pfile = tempdir("process");
    let path = pfile.path().join("process.json");
    std::fs::write(&path, process.to_string()).unwrap();
    let o = rt.ok(&["exec", "--process", path.to_str().unwrap(), &id]);
    let status = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        cap_line(&status, "CapInh:"),
        1 << 13,
        "asked-for inheritable capability: {status}"
    );
}

/// The five capability sets as configured, for a non-root user (ambient
/// capabilities are what such a process keeps across exec).
#[test]
fn capabilities_all_five_sets_as_configured_for_a_non_root_user() {
    let name = "capabilities_all_five_sets_as_configured_for_a_non_root_user";
    if !require_root(name) {
        return;
    }
    let rt = Rt::new();
    let b_caps = ["CAP_NET_RAW", "CAP_CHOWN", "CAP_KILL"];
    let mut b = bundle("grep ^Cap /proc/self/status");
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    b.config["process"]["capabilities"] = json!({"bounding": b_caps, "permitted": ["CAP_NET_RAW", "CAP_CHOWN"],
        "effective": ["CAP_NET_RAW", "CAP_CHOWN"], "inheritable": ["CAP_NET_RAW"], "ambient": ["CAP_NET_RAW"]});
    b.save();
    let o = rt.run(&b, &unique("caps"));
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let (raw, chown, kill) = (1u64 << 13, 1u64 << 0, 1u64 << 5);
    assert_eq!(cap_line(&t, "CapBnd:"), raw | chown | kill, "{t}");
    assert_eq!(cap_line(&t, "CapInh:"), raw, "{t}");
    assert_eq!(cap_line(&t, "CapAmb:"), raw, "{t}");
    // After exec a non-root process keeps only its ambient capabilities.
    assert_eq!(cap_line(&t, "CapPrm:"), raw, "{t}");
    assert_eq!(cap_line(&t, "CapEff:"), raw, "{t}");
}

// ---------------------------------------------------------------------------
// CVE-2023-25809: rootless container without a cgroup namespace.

#[test]
fn cve_2023_25809_rootless_without_cgroupns_has_read_only_cgroupfs() {
    let name = "cve_2023_25809_rootless_without_cgroupns_has_read_only_cgroupfs";
    if !require_root(name) {
        return;
    }
    let rt = Rt::new();
    let mut b = bundle(
        "grep ' /sys/fs/cgroup' /proc/self/mountinfo; mkdir /sys/fs/cgroup/escape; echo mkdir=$?",
    );
    // A rootless container's shape: a user namespace mapping root to an
    // unprivileged range, no network namespace (so /sys is the host's,
    // bound recursively) and no cgroup namespace. Started by root with
    // --rootless true: a truly unprivileged caller cannot create cgroups
    // on this host (no delegation), which the runtime does not tolerate yet.
    b.without_namespace("cgroup")
        .without_namespace("network")
        .with_namespace("user", None);
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    chown_tree(&b.rootfs(), 100000);
    b.save();
    let id = unique("cve25809");
    rt.track(&id);
    let o = rt
        .cmd()
        .args(["--rootless", "true", "run", "--bundle"])
        .arg(b.path())
        .arg(&id)
        .output()
        .unwrap();
    let t = text(&o);
    assert!(
        t.contains("mkdir="),
        "the rootless-style container must run: {t}"
    );
    let lines: Vec<&str> = t
        .lines()
        .filter(|l| l.contains(" /sys/fs/cgroup"))
        .collect();
    assert!(!lines.is_empty(), "no cgroup mounts seen: {t}");
    for l in &lines {
        let opts = l.split_whitespace().nth(5).unwrap_or("");
        assert!(
            opts.split(',').any(|o| o == "ro"),
            "cgroupfs mounted read-write in a rootless container: {l}\n{t}"
        );
    }
    assert!(t.contains("mkdir=1"), "{t}");
}

fn chown_tree(p: &Path, id: u32) {
    let _ = std::os::unix::fs::lchown(p, Some(id), Some(id));
    if std::fs::symlink_metadata(p)
        .map(|m| m.is_dir())
        .unwrap_or(false)
    {
        for e in std::fs::read_dir(p).unwrap().flatten() {
            chown_tree(&e.path(), id);
        }
    }
}

// ---------------------------------------------------------------------------
// AppArmor and SELinux.

#[test]
fn apparmor_profile_is_applied() {
    let name = "apparmor_profile_is_applied";
    if !Path::new("/sys/kernel/security/apparmor").exists() {
        skip(name, "AppArmor is not enabled on this host");
        return;
    }
    panic!("{name}: AppArmor is enabled here but berth-runtime does not apply process.apparmorProfile yet");
}

#[test]
fn selinux_labels_are_applied() {
    let name = "selinux_labels_are_applied";
    if !Path::new("/sys/fs/selinux/enforce").exists() {
        skip(name, "SELinux is not enabled on this host");
        return;
    }
    panic!("{name}: SELinux is enabled here but berth-runtime does not apply selinuxLabel/mountLabel yet");
}
