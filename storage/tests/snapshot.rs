//! Snapshots for real: overlay over an image's chain (whiteouts and opaque
//! dirs honoured, writes going to the upper dir) and the copy fallback.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use berth_storage::{copy_layers, mount_overlay, prepare_snapshot, unmount, SnapshotKind, Store};
use common::*;

/// Unmounts on drop, so a failing assertion leaves no mount behind.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = unmount(&self.0);
    }
}

fn check_view(root: &Path) {
    assert!(!root.join("a").exists(), "whiteout hides the lower file");
    assert_eq!(
        tree(&root.join("d")),
        vec!["z".to_string()],
        "opaque dir hides lower entries"
    );
    assert_eq!(fs::read(root.join("keep")).unwrap(), b"keep");
    assert_eq!(fs::read(root.join("new")).unwrap(), b"new");
    assert_eq!(
        fs::read(root.join("r")).unwrap(),
        b"now a file",
        "a file replaces the lower directory"
    );
}

#[test]
fn overlay_snapshot_honours_whiteouts_and_unmounts() {
    let name = "overlay_snapshot_honours_whiteouts_and_unmounts";
    if !berth_testkit::require_root(name) {
        return;
    }
    let t = berth_testkit::tempdir("snap-ovl");
    let s = Store::open(&t.path().join("root"), &t.path().join("run")).unwrap();
    let img = commit_layers(&s, &whiteout_layers(), "snap");
    let lowers = s.lower_dirs("snap").unwrap();
    assert_eq!(lowers.len(), 2);
    assert!(
        lowers[0].ends_with(format!("{}/diff", &img.layers[1].chain_id[7..])),
        "top layer first"
    );
    let c = t.path().join("root/containers/c1");
    let target = c.join("merged");
    mount_overlay(&lowers, &c.join("upper"), &c.join("work"), &target).unwrap();
    let guard = Mounted(target.clone());
    assert_eq!(berth_testkit::mounts_under(t.path()).len(), 1);
    check_view(&target);
    fs::write(target.join("written"), b"w").unwrap();
    fs::remove_file(target.join("keep")).unwrap();
    assert_eq!(
        fs::read(c.join("upper/written")).unwrap(),
        b"w",
        "writes land in the upper dir"
    );
    assert!(
        lowers[1].join("keep").is_file(),
        "lower layers are never changed"
    );
    drop(guard);
    assert!(
        berth_testkit::mounts_under(t.path()).is_empty(),
        "unmounted"
    );
}

#[test]
fn copy_fallback_gives_the_same_view() {
    if !berth_testkit::require_root("copy_fallback_gives_the_same_view") {
        return;
    }
    let t = berth_testkit::tempdir("snap-copy");
    let s = Store::open(&t.path().join("root"), &t.path().join("run")).unwrap();
    commit_layers(&s, &whiteout_layers(), "snap");
    let target = t.path().join("copy");
    copy_layers(&s.lower_dirs("snap").unwrap(), &target).unwrap();
    check_view(&target);
}

#[test]
fn prepare_snapshot_falls_back_to_copy_when_overlay_fails() {
    if !berth_testkit::require_root("prepare_snapshot_falls_back_to_copy_when_overlay_fails") {
        return;
    }
    let t = berth_testkit::tempdir("snap-fb");
    let s = Store::open(&t.path().join("root"), &t.path().join("run")).unwrap();
    commit_layers(&s, &whiteout_layers(), "snap");
    let lowers = s.lower_dirs("snap").unwrap();
    // An upper dir that is a regular file makes the overlay mount fail.
    let bad_upper = t.path().join("upper-file");
    fs::write(&bad_upper, b"").unwrap();
    let target = t.path().join("merged");
    let kind = prepare_snapshot(&lowers, &bad_upper, &t.path().join("work"), &target, true);
    let kind = match kind {
        Ok(k) => k,
        Err(e) => panic!("fallback failed: {e}"),
    };
    let _guard = (kind == SnapshotKind::Overlay).then(|| Mounted(target.clone()));
    assert_eq!(kind, SnapshotKind::Copy);
    check_view(&target);
    assert!(prepare_snapshot(
        &lowers,
        &bad_upper,
        &t.path().join("work"),
        &t.path().join("m2"),
        false
    )
    .is_err());
    assert!(berth_testkit::mounts_under(t.path()).is_empty());
}

#[test]
fn long_layer_chain_beyond_one_page_of_mount_data() {
    let name = "long_layer_chain_beyond_one_page_of_mount_data";
    if !berth_testkit::require_root(name) {
        return;
    }
    let t = berth_testkit::tempdir("snap-long");
    let s = Store::open(&t.path().join("root"), &t.path().join("run")).unwrap();
    let n = 80;
    let mut layers: Vec<Vec<u8>> = (0..n)
        .map(|i| tar_of(&[file(&format!("layer-{i}"), format!("{i}").as_bytes())]))
        .collect();
    layers[0] = tar_of(&[file("bottom", b"b"), file("doomed", b"d")]);
    layers[n - 1] = tar_of(&[file("top", b"t"), file(".wh.doomed", b"")]);
    commit_layers(&s, &layers, "long");
    let lowers = s.lower_dirs("long").unwrap();
    let joined: usize = lowers.iter().map(|p| p.as_os_str().len() + 1).sum();
    assert!(
        joined > 4096,
        "the chain must not fit one page ({joined} bytes)"
    );
    let c = t.path().join("c");
    let target = c.join("merged");
    mount_overlay(&lowers, &c.join("upper"), &c.join("work"), &target).unwrap();
    let _guard = Mounted(target.clone());
    assert_eq!(fs::read(target.join("bottom")).unwrap(), b"b");
    assert_eq!(fs::read(target.join("top")).unwrap(), b"t");
    assert_eq!(fs::read(target.join("layer-40")).unwrap(), b"40");
    assert!(
        !target.join("doomed").exists(),
        "top whiteout hides the bottom file"
    );
}

#[test]
fn container_snapshot_leases_the_image_and_comes_back_after_unmount() {
    let name = "container_snapshot_leases_the_image_and_comes_back_after_unmount";
    if !berth_testkit::require_root(name) {
        return;
    }
    let t = berth_testkit::tempdir("snap-ctr");
    let s = Store::open(&t.path().join("root"), &t.path().join("run")).unwrap();
    commit_layers(&s, &whiteout_layers(), "ctr");
    let id = berth_testkit::unique("c");
    assert!(
        s.create_snapshot("ctr", "../escape", false).is_err(),
        "ids are path components"
    );
    let snap = s.create_snapshot("ctr", &id, false).unwrap();
    let guard = Mounted(snap.rootfs.clone());
    assert_eq!(snap.kind, SnapshotKind::Overlay);
    check_view(&snap.rootfs);
    fs::write(snap.rootfs.join("state"), b"kept").unwrap();
    assert!(matches!(
        s.remove_image("ctr", false),
        Err(berth_storage::StorageError::ImageInUse { .. })
    ));
    // As after a reboot: the mount is gone, the record and upper dir stay.
    unmount(&snap.rootfs).unwrap();
    let again = s.mount_snapshot(&id).unwrap();
    assert_eq!(again, snap);
    assert_eq!(fs::read(again.rootfs.join("state")).unwrap(), b"kept");
    s.remove_snapshot(&id).unwrap();
    drop(guard);
    assert!(berth_testkit::mounts_under(t.path()).is_empty());
    assert!(!t.path().join("root/containers").join(&id).exists());
    s.remove_image("ctr", false).unwrap();
}
