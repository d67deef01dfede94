//! Tar fixtures written header by header, so tests can produce entries a
//! well-behaved tar writer would refuse (`..`, absolute names, escapes).
#![allow(dead_code)]

use std::io::Write;

pub enum Kind {
    File(Vec<u8>),
    Dir,
    Symlink(&'static str),
    Hardlink(&'static str),
    Char(u32, u32),
    Fifo,
}

pub struct E {
    pub path: String,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub xattrs: Vec<(String, Vec<u8>)>,
}

pub fn file(path: &str, data: &[u8]) -> E {
    E {
        path: path.into(),
        kind: Kind::File(data.to_vec()),
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: 1_600_000_000,
        xattrs: vec![],
    }
}
pub fn dir(path: &str) -> E {
    E {
        path: path.into(),
        kind: Kind::Dir,
        mode: 0o755,
        uid: 0,
        gid: 0,
        mtime: 1_600_000_000,
        xattrs: vec![],
    }
}
pub fn symlink(path: &str, target: &'static str) -> E {
    E {
        path: path.into(),
        kind: Kind::Symlink(target),
        mode: 0o777,
        uid: 0,
        gid: 0,
        mtime: 1_600_000_000,
        xattrs: vec![],
    }
}
pub fn hardlink(path: &str, target: &'static str) -> E {
    E {
        path: path.into(),
        kind: Kind::Hardlink(target),
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: 1_600_000_000,
        xattrs: vec![],
    }
}
pub fn chardev(path: &str, major: u32, minor: u32) -> E {
    E {
        path: path.into(),
        kind: Kind::Char(major, minor),
        mode: 0o666,
        uid: 0,
        gid: 0,
        mtime: 1_600_000_000,
        xattrs: vec![],
    }
}

/// A tar of `entries`, names and link targets written verbatim.
pub fn tar_of(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        if !e.xattrs.is_empty() {
            let kv: Vec<(String, &[u8])> = e
                .xattrs
                .iter()
                .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.as_slice()))
                .collect();
            b.append_pax_extensions(kv.iter().map(|(k, v)| (k.as_str(), *v)))
                .unwrap();
        }
        let mut h = tar::Header::new_ustar();
        let name = e.path.as_bytes();
        assert!(name.len() < 100, "test paths stay short");
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_mode(e.mode);
        h.set_uid(e.uid);
        h.set_gid(e.gid);
        h.set_mtime(e.mtime);
        let mut data: &[u8] = &[];
        match &e.kind {
            Kind::File(d) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(d.len() as u64);
                data = d;
            }
            Kind::Dir => h.set_entry_type(tar::EntryType::Directory),
            Kind::Symlink(t) | Kind::Hardlink(t) => {
                let kind = if matches!(e.kind, Kind::Symlink(_)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                };
                h.set_entry_type(kind);
                h.as_old_mut().linkname[..t.len()].copy_from_slice(t.as_bytes());
            }
            Kind::Char(ma, mi) => {
                h.set_entry_type(tar::EntryType::Char);
                h.set_device_major(*ma).unwrap();
                h.set_device_minor(*mi).unwrap();
            }
            Kind::Fifo => h.set_entry_type(tar::EntryType::Fifo),
        }
        if !matches!(e.kind, Kind::File(_)) {
            h.set_size(0);
        }
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    w.write_all(data).unwrap();
    w.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
}

/// Every path (relative) under `dir`, sorted — to compare trees.
pub fn tree(dir: &std::path::Path) -> Vec<String> {
    fn walk(base: &std::path::Path, d: &std::path::Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(base).unwrap().display().to_string());
            if e.file_type().unwrap().is_dir() {
                walk(base, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A tar of a busybox rootfs built from Debian's busybox-static.
pub fn busybox_tar() -> Vec<u8> {
    let dir = berth_testkit::tempdir("bbroot");
    berth_testkit::make_busybox_rootfs(dir.path());
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.append_dir_all(".", dir.path()).unwrap();
    b.into_inner().unwrap()
}

/// Store `layers` (uncompressed tars, bottom first) as an OCI image and
/// commit it under `tag`.
pub fn commit_layers(
    store: &berth_storage::Store,
    layers: &[Vec<u8>],
    tag: &str,
) -> berth_storage::ImageRecord {
    use berth_storage::Digest;
    let mut descs = Vec::new();
    let mut diffs = Vec::new();
    for l in layers {
        let gz = gzip(l);
        let d = store.blobs().put_bytes(&gz).unwrap();
        descs.push(serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d.as_str(), "size": gz.len()}));
        diffs.push(Digest::of(l).to_string());
    }
    let config = serde_json::json!({
        "created": "2024-01-02T03:04:05Z", "architecture": berth_storage::host_arch(), "os": "linux",
        "config": {"Cmd": ["/bin/sh"]}, "rootfs": {"type": "layers", "diff_ids": diffs},
    });
    let cb = serde_json::to_vec(&config).unwrap();
    let cd = store.blobs().put_bytes(&cb).unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": berth_storage::OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.as_str(), "size": cb.len()},
        "layers": descs,
    });
    let md = store
        .blobs()
        .put_bytes(&serde_json::to_vec(&manifest).unwrap())
        .unwrap();
    store
        .commit_image(&md, &[berth_storage::normalize_tag(tag).unwrap()])
        .unwrap()
}

/// Layers where the upper one deletes `a`, makes `d` opaque, replaces the
/// directory `r` with a file and adds `new`.
pub fn whiteout_layers() -> Vec<Vec<u8>> {
    let lower = tar_of(&[
        file("a", b"a"),
        dir("d"),
        file("d/x", b"x"),
        file("d/y", b"y"),
        file("keep", b"keep"),
        dir("r"),
        file("r/inner", b"i"),
    ]);
    let upper = tar_of(&[
        file(".wh.a", b""),
        dir("d"),
        file("d/.wh..wh..opq", b""),
        file("d/z", b"z"),
        file("new", b"new"),
        file("r", b"now a file"),
    ]);
    vec![lower, upper]
}
