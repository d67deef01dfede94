//! What a well-formed layer unpacks to: every entry type, metadata, and
//! whiteouts in overlay form, from plain, gzip and zstd streams.

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use berth_storage::{get_xattr, unpack_layer, Digest, UnpackOptions};
use common::*;

fn rich_layer() -> Vec<u8> {
    let mut owned = file("etc/owned", b"mine");
    owned.uid = 1000;
    owned.gid = 1001;
    owned.mode = 0o4750;
    owned.mtime = 1_234_567_890;
    let mut xa = file("etc/xa", b"x");
    xa.xattrs
        .push(("user.berth.test".into(), b"value".to_vec()));
    let mut d = dir("etc");
    d.mtime = 1_111_111_111;
    tar_of(&[
        d,
        file("etc/hello", b"hello\n"),
        owned,
        xa,
        hardlink("etc/hello-link", "etc/hello"),
        symlink("etc/abs-link", "/etc/hello"),
        symlink("rel-link", "etc/hello"),
        file("deep/er/path/file", b"parents created"),
        file(".wh.gone", b""),
        dir("opaque"),
        file("opaque/.wh..wh..opq", b""),
        file("opaque/kept", b"k"),
        E {
            kind: Kind::Fifo,
            ..file("fifo", b"")
        },
        chardev("dev/null", 1, 3),
    ])
}

fn check_tree(layer: &std::path::Path) {
    assert_eq!(fs::read(layer.join("etc/hello")).unwrap(), b"hello\n");
    let owned = fs::metadata(layer.join("etc/owned")).unwrap();
    assert_eq!((owned.uid(), owned.gid()), (1000, 1001));
    assert_eq!(owned.mode() & 0o7777, 0o4750, "setuid kept after chown");
    assert_eq!(owned.mtime(), 1_234_567_890);
    assert_eq!(
        get_xattr(&layer.join("etc/xa"), "user.berth.test")
            .unwrap()
            .as_deref(),
        Some(&b"value"[..])
    );
    let (a, b) = (
        fs::metadata(layer.join("etc/hello")).unwrap(),
        fs::metadata(layer.join("etc/hello-link")).unwrap(),
    );
    assert_eq!(a.ino(), b.ino(), "hardlink shares the inode");
    assert_eq!(
        fs::read_link(layer.join("etc/abs-link")).unwrap().to_str(),
        Some("/etc/hello")
    );
    assert_eq!(
        fs::read_link(layer.join("rel-link")).unwrap().to_str(),
        Some("etc/hello")
    );
    assert_eq!(
        fs::read(layer.join("deep/er/path/file")).unwrap(),
        b"parents created"
    );
    let wh = fs::symlink_metadata(layer.join("gone")).unwrap();
    assert!(
        wh.file_type().is_char_device() && wh.rdev() == 0,
        "whiteout is a 0/0 char device"
    );
    assert!(!layer.join(".wh.gone").exists());
    assert_eq!(
        get_xattr(&layer.join("opaque"), "trusted.overlay.opaque")
            .unwrap()
            .as_deref(),
        Some(&b"y"[..])
    );
    assert!(!layer.join("opaque/.wh..wh..opq").exists());
    assert!(layer.join("opaque/kept").is_file());
    assert!(fs::symlink_metadata(layer.join("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    let null = fs::symlink_metadata(layer.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), nix::sys::stat::makedev(1, 3));
    assert_eq!(
        fs::metadata(layer.join("etc")).unwrap().mtime(),
        1_111_111_111,
        "dir mtime set after its children"
    );
}

fn unpack_as(name: &str, data: &[u8], tar: &[u8]) {
    if !berth_testkit::require_root(name) {
        return;
    }
    let tmp = berth_testkit::tempdir(name);
    let stats = unpack_layer(data, tmp.path(), &UnpackOptions::default()).expect("unpack");
    assert_eq!(
        stats.diff_id,
        Digest::of(tar),
        "diff id is the digest of the uncompressed tar"
    );
    assert_eq!(stats.size, tar.len() as u64);
    check_tree(tmp.path());
}

#[test]
fn plain_layer_unpacks_every_entry_type() {
    let t = rich_layer();
    unpack_as("plain_layer_unpacks_every_entry_type", &t, &t);
}

#[test]
fn gzip_layer_unpacks_every_entry_type() {
    let t = rich_layer();
    unpack_as("gzip_layer_unpacks_every_entry_type", &gzip(&t), &t);
}

#[test]
fn zstd_layer_unpacks_every_entry_type() {
    let t = rich_layer();
    unpack_as("zstd_layer_unpacks_every_entry_type", &zstd(&t), &t);
}

#[test]
fn later_entries_replace_earlier_ones() {
    let tmp = berth_testkit::tempdir("replace");
    let t = tar_of(&[
        dir("x"),
        file("x/a", b"1"),
        file("x", b"now a file"),
        file("y", b"1"),
        dir("y"),
        file("y/b", b"2"),
    ]);
    unpack_layer(&t[..], tmp.path(), &UnpackOptions::default()).unwrap();
    assert_eq!(fs::read(tmp.path().join("x")).unwrap(), b"now a file");
    assert_eq!(fs::read(tmp.path().join("y/b")).unwrap(), b"2");
}
