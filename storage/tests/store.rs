//! The store through its public API: import, tags, removal with GC,
//! oci-archive round trips, leases, concurrency and `check`/repair.

mod common;

use std::fs;
use std::path::Path;

use berth_storage::{LeaseKind, StorageError, Store};
use common::*;

fn open(t: &tempfile::TempDir) -> Store {
    Store::open(&t.path().join("root"), &t.path().join("run")).unwrap()
}

fn count(dir: &Path) -> usize {
    fs::read_dir(dir).map(|r| r.count()).unwrap_or(0)
}

#[test]
fn import_tag_and_remove_collects_everything() {
    if !berth_testkit::require_root("import_tag_and_remove_collects_everything") {
        return;
    }
    let t = berth_testkit::tempdir("st-import");
    let s = open(&t);
    let img = s.import(&busybox_tar()[..], Some("bb")).unwrap();
    assert_eq!(img.tags, vec!["docker.io/library/bb:latest".to_string()]);
    assert_eq!(img.layers.len(), 1);
    let lower = s.lower_dirs("bb").unwrap();
    assert!(lower[0].join("bin/busybox").is_file());
    assert_eq!(
        s.resolve(&img.id[7..19]).unwrap(),
        img.id,
        "id prefix resolves"
    );
    assert_eq!(
        s.resolve(&img.manifest_digest).unwrap(),
        img.id,
        "manifest digest resolves"
    );
    s.tag("bb", "localhost/other:2").unwrap();
    assert_eq!(s.image("localhost/other:2").unwrap().id, img.id);
    assert!(matches!(
        s.remove_image(&img.id, false),
        Err(StorageError::ImageHasTags { .. })
    ));
    let r = s.remove_image("bb", false).unwrap();
    assert!(r.deleted.is_empty(), "only untagged: another tag remains");
    let r = s.remove_image("localhost/other:2", false).unwrap();
    assert_eq!(r.deleted, vec![img.id.clone()]);
    assert!(s.images().unwrap().is_empty());
    assert_eq!(
        count(&t.path().join("root/blobs/sha256")),
        0,
        "blobs collected"
    );
    assert_eq!(count(&t.path().join("root/layers")), 0, "layers collected");
    assert!(matches!(
        s.image("bb"),
        Err(StorageError::ImageNotFound { .. })
    ));
}

#[test]
fn save_remove_load_keeps_digests() {
    if !berth_testkit::require_root("save_remove_load_keeps_digests") {
        return;
    }
    let t = berth_testkit::tempdir("st-saveload");
    let s = open(&t);
    let img = commit_layers(&s, &whiteout_layers(), "two:layers");
    let archive = t.path().join("out.tar");
    s.save_oci_archive(&["two:layers"], &archive).unwrap();
    s.remove_image("two:layers", false).unwrap();
    assert_eq!(count(&t.path().join("root/blobs/sha256")), 0);
    let loaded = s
        .load_archive(fs::File::open(&archive).unwrap(), &archive)
        .unwrap();
    assert_eq!(loaded.len(), 1);
    let l = &loaded[0];
    assert_eq!(
        (&l.id, &l.manifest_digest, &l.tags),
        (&img.id, &img.manifest_digest, &img.tags)
    );
    assert_eq!(l.layers, img.layers);
    assert!(s.check(false).unwrap().is_empty());
}

#[test]
fn a_wrong_diff_id_is_refused_and_records_nothing() {
    let t = berth_testkit::tempdir("st-diffid");
    let s = open(&t);
    let layer = tar_of(&[file("f", b"1")]);
    let d = s.blobs().put_bytes(&layer).unwrap();
    let config = serde_json::json!({"rootfs": {"type": "layers", "diff_ids": [berth_storage::Digest::of(b"other").as_str()]}});
    let cb = serde_json::to_vec(&config).unwrap();
    let cd = s.blobs().put_bytes(&cb).unwrap();
    let m = serde_json::json!({"schemaVersion": 2, "config": {"digest": cd.as_str(), "size": cb.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d.as_str(), "size": layer.len()}]});
    let md = s
        .blobs()
        .put_bytes(&serde_json::to_vec(&m).unwrap())
        .unwrap();
    assert!(matches!(
        s.commit_image(&md, &[]),
        Err(StorageError::DiffIdMismatch { .. })
    ));
    assert!(s.images().unwrap().is_empty());
    assert_eq!(count(&t.path().join("root/layers")), 0);
    assert_eq!(count(&t.path().join("root/tmp")), 0, "work dir cleaned up");
}

#[test]
fn a_leased_image_is_not_removed() {
    let t = berth_testkit::tempdir("st-lease");
    let s = open(&t);
    let img = commit_layers(&s, &[tar_of(&[file("f", b"1")])], "leased");
    s.db()
        .lease("container-1", None, &[(LeaseKind::Image, &img.id)])
        .unwrap();
    assert!(matches!(
        s.remove_image("leased", false),
        Err(StorageError::ImageInUse { .. })
    ));
    s.gc().unwrap();
    assert!(s.lower_dirs("leased").unwrap()[0].is_dir());
    s.db().release("container-1").unwrap();
    s.remove_image("leased", false).unwrap();
    assert_eq!(count(&t.path().join("root/layers")), 0);
}

#[test]
fn concurrent_imports_store_the_layer_once() {
    if !berth_testkit::require_root("concurrent_imports_store_the_layer_once") {
        return;
    }
    let t = berth_testkit::tempdir("st-conc");
    let tar = busybox_tar();
    let root = t.path().join("root");
    std::thread::scope(|sc| {
        let hs: Vec<_> = (0..4)
            .map(|i| {
                let (tar, root, run) = (&tar, &root, t.path().join("run"));
                sc.spawn(move || {
                    Store::open(root, &run)
                        .unwrap()
                        .import(&tar[..], Some(&format!("c{i}")))
                        .unwrap()
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
    let s = open(&t);
    assert_eq!(
        s.images()
            .unwrap()
            .iter()
            .map(|i| i.tags.len())
            .sum::<usize>(),
        4
    );
    assert_eq!(
        count(&root.join("layers")),
        1,
        "one unpacked layer shared by all"
    );
    assert!(s.check(false).unwrap().is_empty(), "{:?}", s.check(false));
}

#[test]
fn check_finds_and_repairs_damage() {
    if !berth_testkit::require_root("check_finds_and_repairs_damage") {
        return;
    }
    let t = berth_testkit::tempdir("st-check");
    let s = open(&t);
    let good = commit_layers(&s, &whiteout_layers(), "good");
    let bad = commit_layers(&s, &[tar_of(&[file("only-in-bad", b"1")])], "bad");
    assert!(s.check(false).unwrap().is_empty());
    // Damage: a corrupt blob, a missing unpacked layer, a stale temp file,
    // and an orphan layer dir.
    fs::write(
        s.blobs()
            .path(&berth_storage::Digest::parse(&bad.layers[0].blob_digest).unwrap()),
        b"garbage",
    )
    .unwrap();
    let lost = s.lower_dirs("good").unwrap()[0]
        .parent()
        .unwrap()
        .to_path_buf();
    fs::remove_dir_all(&lost).unwrap();
    fs::write(t.path().join("root/tmp/blob-stale"), b"half").unwrap();
    fs::create_dir_all(t.path().join("root/layers/orphan/diff")).unwrap();
    let found = s.check(false).unwrap();
    let kinds: Vec<&str> = found.iter().map(|p| p.kind).collect();
    for k in [
        "blob content does not match its digest",
        "stale temporary file",
        "unpacked layer directory without a row",
        "layer row without unpacked directory",
    ] {
        assert!(kinds.contains(&k), "{k} not reported in {found:?}");
    }
    assert!(
        found
            .iter()
            .all(|p| !p.repaired || p.kind == "stale temporary file"),
        "check alone repairs only leftovers"
    );
    assert!(
        !t.path().join("root/tmp/blob-stale").exists(),
        "a killed writer's temp file is always removed"
    );
    let fixed = s.check(true).unwrap();
    assert!(!fixed.is_empty());
    assert!(
        s.check(false).unwrap().is_empty(),
        "clean after repair: {:?}",
        s.check(false)
    );
    assert_eq!(
        s.image("good").unwrap().id,
        good.id,
        "the repairable image survives"
    );
    assert!(
        s.lower_dirs("good").unwrap().iter().all(|d| d.is_dir()),
        "missing layer re-unpacked"
    );
    assert!(
        matches!(s.image("bad"), Err(StorageError::ImageNotFound { .. })),
        "image with a corrupt blob dropped"
    );
}
