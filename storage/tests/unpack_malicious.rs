//! The malicious-layer corpus: each tar tries to create or change
//! something outside the layer directory; each is refused or contained,
//! and nothing outside the layer changes.

mod common;

use std::fs;
use std::path::Path;

use berth_storage::{unpack_layer, StorageError, UnpackOptions};
use common::*;

/// A layer dir and a sibling "outside" dir with a victim file; both removed
/// on drop.
struct Scene {
    _tmp: tempfile::TempDir,
    layer: std::path::PathBuf,
    outside: std::path::PathBuf,
}

impl Scene {
    fn new(name: &str) -> Scene {
        let tmp = berth_testkit::tempdir(name);
        let layer = tmp.path().join("layer");
        let outside = tmp.path().join("outside");
        fs::create_dir_all(&layer).unwrap();
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("victim"), b"original").unwrap();
        Scene {
            _tmp: tmp,
            layer,
            outside,
        }
    }

    fn unpack(&self, tar: &[u8]) -> berth_storage::Result<berth_storage::UnpackStats> {
        unpack_layer(tar, &self.layer, &UnpackOptions::default())
    }

    /// The outside dir holds exactly the untouched victim.
    fn assert_outside_untouched(&self) {
        assert_eq!(tree(&self.outside), vec!["victim".to_string()]);
        assert_eq!(fs::read(self.outside.join("victim")).unwrap(), b"original");
        let m = fs::metadata(self.outside.join("victim")).unwrap();
        assert_eq!(
            std::os::unix::fs::MetadataExt::nlink(&m),
            1,
            "victim gained a hardlink"
        );
    }
}

fn leak(p: &Path) -> &'static str {
    Box::leak(p.display().to_string().into_boxed_str())
}

fn assert_unsafe(r: berth_storage::Result<berth_storage::UnpackStats>) {
    match r {
        Err(StorageError::UnsafeEntry { .. }) => {}
        other => panic!("expected an unsafe-entry refusal, got {other:?}"),
    }
}

#[test]
fn dotdot_path_is_refused() {
    let s = Scene::new("mal-dotdot");
    let t = tar_of(&[
        file("../outside/victim", b"pwned"),
        file("../outside/new", b"pwned"),
    ]);
    assert_unsafe(s.unpack(&t));
    s.assert_outside_untouched();
}

#[test]
fn dotdot_inside_path_is_refused() {
    let s = Scene::new("mal-dotdot2");
    let t = tar_of(&[dir("a"), file("a/../../outside/victim", b"pwned")]);
    assert_unsafe(s.unpack(&t));
    s.assert_outside_untouched();
}

#[test]
fn absolute_path_is_contained() {
    let s = Scene::new("mal-abs");
    let abs = format!("{}/victim", s.outside.display());
    let t = tar_of(&[file(&abs, b"pwned")]);
    s.unpack(&t)
        .expect("absolute names are taken relative to the layer");
    s.assert_outside_untouched();
    let inside = s.layer.join(abs.trim_start_matches('/'));
    assert_eq!(fs::read(inside).unwrap(), b"pwned");
}

#[test]
fn file_through_symlink_dir_is_refused() {
    let s = Scene::new("mal-symdir");
    let t = tar_of(&[
        symlink("esc", leak(&s.outside)),
        file("esc/victim", b"pwned"),
        file("esc/new", b"pwned"),
    ]);
    assert_unsafe(s.unpack(&t));
    s.assert_outside_untouched();
}

#[test]
fn relative_symlink_escape_then_file_is_refused() {
    let s = Scene::new("mal-symrel");
    let t = tar_of(&[symlink("esc", "../outside"), file("esc/victim", b"pwned")]);
    assert_unsafe(s.unpack(&t));
    s.assert_outside_untouched();
}

#[test]
fn file_replacing_symlink_does_not_write_through_it() {
    let s = Scene::new("mal-symfile");
    let target = format!("{}/victim", s.outside.display());
    let t = tar_of(&[symlink("f", leak(Path::new(&target))), file("f", b"pwned")]);
    s.unpack(&t)
        .expect("a later entry replaces the symlink itself");
    s.assert_outside_untouched();
    assert!(fs::symlink_metadata(s.layer.join("f")).unwrap().is_file());
    assert_eq!(fs::read(s.layer.join("f")).unwrap(), b"pwned");
}

#[test]
fn dir_entry_over_symlink_does_not_follow_it() {
    let s = Scene::new("mal-symdirent");
    let t = tar_of(&[
        symlink("d", leak(&s.outside)),
        dir("d"),
        file("d/new", b"x"),
    ]);
    s.unpack(&t).expect("the directory replaces the symlink");
    s.assert_outside_untouched();
    assert!(fs::symlink_metadata(s.layer.join("d")).unwrap().is_dir());
    assert!(s.layer.join("d/new").is_file());
}

#[test]
fn hardlink_with_dotdot_target_is_refused() {
    let s = Scene::new("mal-hldotdot");
    let t = tar_of(&[hardlink("hl", "../outside/victim")]);
    assert_unsafe(s.unpack(&t));
    s.assert_outside_untouched();
}

#[test]
fn hardlink_with_absolute_target_stays_inside() {
    let s = Scene::new("mal-hlabs");
    let target = format!("{}/victim", s.outside.display());
    let t = tar_of(&[hardlink("hl", leak(Path::new(&target)))]);
    let err = s
        .unpack(&t)
        .expect_err("target resolved inside the layer, where it does not exist");
    assert!(matches!(err, StorageError::UnpackEntry { .. }), "{err:?}");
    s.assert_outside_untouched();
    assert!(!s.layer.join("hl").exists());
}

#[test]
fn hardlink_through_symlink_is_refused() {
    let s = Scene::new("mal-hlsym");
    let t = tar_of(&[
        symlink("esc", leak(&s.outside)),
        hardlink("hl", "esc/victim"),
    ]);
    assert_unsafe(s.unpack(&t));
    s.assert_outside_untouched();
}

#[test]
fn hardlink_to_escaping_symlink_links_the_symlink_itself() {
    let s = Scene::new("mal-hltosym");
    let target = format!("{}/victim", s.outside.display());
    let t = tar_of(&[
        symlink("sl", leak(Path::new(&target))),
        hardlink("hl", "sl"),
        file("hl", b"pwned"),
    ]);
    s.unpack(&t).expect("contained");
    s.assert_outside_untouched();
}

#[test]
fn device_node_refused_without_privilege() {
    let s = Scene::new("mal-dev");
    let t = tar_of(&[chardev("dev/sda", 8, 0)]);
    let opts = UnpackOptions {
        allow_devices: false,
        preserve_owner: false,
        ..UnpackOptions::default()
    };
    assert_unsafe(unpack_layer(&t[..], &s.layer, &opts));
    assert!(!s.layer.join("dev/sda").exists());
}

#[test]
fn decompression_bomb_is_stopped_at_the_limit() {
    let s = Scene::new("mal-bomb");
    let zeros = vec![0u8; 16 << 20];
    let t = gzip(&tar_of(&[file("bomb", &zeros)]));
    assert!(t.len() < 100 << 10, "the fixture compresses well");
    let opts = UnpackOptions {
        max_bytes: 1 << 20,
        ..UnpackOptions::default()
    };
    match unpack_layer(&t[..], &s.layer, &opts) {
        Err(StorageError::LayerTooLarge { limit }) => assert_eq!(limit, 1 << 20),
        other => panic!("expected the size limit, got {other:?}"),
    }
    let written = fs::metadata(s.layer.join("bomb"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(written <= 1 << 20, "wrote {written} bytes past the limit");
}

#[test]
fn entry_count_limit() {
    let s = Scene::new("mal-count");
    let entries: Vec<E> = (0..50).map(|i| file(&format!("f{i}"), b"")).collect();
    let opts = UnpackOptions {
        max_entries: 10,
        ..UnpackOptions::default()
    };
    assert!(matches!(
        unpack_layer(&tar_of(&entries)[..], &s.layer, &opts),
        Err(StorageError::TooManyEntries { .. })
    ));
}

#[test]
fn whiteout_cannot_escape_or_target_dotdot() {
    let s = Scene::new("mal-wh");
    assert_unsafe(s.unpack(&tar_of(&[file("../outside/.wh.victim", b"")])));
    assert_unsafe(s.unpack(&tar_of(&[file("a/.wh...", b"")])));
    s.assert_outside_untouched();
}

#[test]
fn overlay_xattrs_are_never_taken_from_the_tar() {
    if !berth_testkit::require_root("overlay_xattrs_are_never_taken_from_the_tar") {
        return;
    }
    let s = Scene::new("mal-ovlx");
    let mut d = dir("d");
    d.xattrs
        .push(("trusted.overlay.redirect".into(), b"/etc".to_vec()));
    d.xattrs
        .push(("trusted.overlay.opaque".into(), b"y".to_vec()));
    s.unpack(&tar_of(&[d])).unwrap();
    for name in ["trusted.overlay.redirect", "trusted.overlay.opaque"] {
        assert!(
            xattr(&s.layer.join("d"), name).is_none(),
            "{name} was set from the tar"
        );
    }
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    berth_storage::get_xattr(path, name).unwrap()
}
