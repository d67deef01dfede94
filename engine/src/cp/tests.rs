//! docker's copy rules and the archive round trip, between two directories
//! used as roots (no privilege needed: ownership stays the caller's).

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;

use super::*;

/// Source tree: a file, a directory (with a symlink, a hard link and a
/// subdirectory) and a symlink to the file, each with its own mode and
/// modification time.
fn source_tree(p: &Path) {
    fs::create_dir_all(p.join("dir/sub")).unwrap();
    fs::write(p.join("file"), "f").unwrap();
    fs::write(p.join("dir/a"), "a").unwrap();
    fs::write(p.join("dir/sub/b"), "b").unwrap();
    fs::hard_link(p.join("dir/a"), p.join("dir/hard")).unwrap();
    symlink("a", p.join("dir/link")).unwrap();
    symlink("file", p.join("flink")).unwrap();
    fs::set_permissions(p.join("file"), fs::Permissions::from_mode(0o640)).unwrap();
    fs::set_permissions(p.join("dir"), fs::Permissions::from_mode(0o750)).unwrap();
    for (f, t) in [
        ("file", 1_000_000),
        ("dir/a", 2_000_000),
        ("dir", 3_000_000),
    ] {
        let t = nix::sys::time::TimeSpec::new(t, 0);
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            &p.join(f),
            &t,
            &t,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
    }
}

fn copy(src_root: &Path, src: &str, follow: bool, dst_root: &Path, dst: &str) -> Result<()> {
    let s = Root::open(src_root).unwrap();
    let d = Root::open(dst_root).unwrap();
    let sup = UserPath::parse(OsStr::new(src));
    let dup = UserPath::parse(OsStr::new(dst));
    let not_found = || EngineError::NoSuchPath {
        container: "c".into(),
        path: src.into(),
    };
    let source = locate_source(&s, &sup, follow, not_found)?;
    let dest = locate_dest(&d, &dup, dst)?;
    let (dir, top) = plan(&source, &dest, &dup, src, dst)?;
    transfer(&s, &source, &top, &d, &dir, Owner::Process)
}

/// What a tree holds: `path kind [content|target]`, sorted.
fn listing(root: &Path) -> Vec<String> {
    fn walk(root: &Path, d: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let m = fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                out.push(format!("{rel}/"));
                walk(root, &p, out);
            } else if m.file_type().is_symlink() {
                out.push(format!("{rel} -> {}", fs::read_link(&p).unwrap().display()));
            } else {
                out.push(format!("{rel} = {}", fs::read_to_string(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// Copy `src` to `dst` into a destination holding `existing_dir/` and
/// `existing_file`; what it holds afterwards besides those, or the error.
fn check(src: &str, follow: bool, dst: &str, want: std::result::Result<&[&str], &str>) {
    let s = tempfile::tempdir().unwrap();
    source_tree(s.path());
    let d = tempfile::tempdir().unwrap();
    fs::create_dir(d.path().join("existing_dir")).unwrap();
    fs::write(d.path().join("existing_file"), "old").unwrap();
    let got = copy(s.path(), src, follow, d.path(), dst).map(|()| {
        listing(d.path())
            .into_iter()
            .filter(|l| l != "existing_dir/" && l != "existing_file = old")
            .collect::<Vec<_>>()
    });
    match (got, want) {
        (Ok(g), Ok(w)) => assert_eq!(g, w, "cp {src} {dst}"),
        (Err(e), Err(w)) => assert!(e.to_string().contains(w), "cp {src} {dst}: {e}"),
        (g, w) => panic!("cp {src} {dst}: got {g:?}, want {w:?}"),
    }
}

#[test]
fn files_follow_dockers_rules() {
    check(
        "/file",
        false,
        "/existing_dir",
        Ok(&["existing_dir/file = f"]),
    );
    check(
        "/file",
        false,
        "/existing_dir/",
        Ok(&["existing_dir/file = f"]),
    );
    check("/file", false, "/new", Ok(&["new = f"]));
    check("/file", false, "/existing_file", Ok(&["existing_file = f"]));
    check(
        "/file",
        false,
        "/new/",
        Err("destination directory /new/ does not exist"),
    );
    check(
        "/file",
        false,
        "/missing/x",
        Err("destination directory /missing does not exist"),
    );
    check("/file/", false, "/new", Err("/file is not a directory"));
    check(
        "/nosuch",
        false,
        "/new",
        Err("no such container:path: c:/nosuch"),
    );
    check(
        "/flink",
        false,
        "/existing_dir",
        Ok(&["existing_dir/flink -> file"]),
    );
    check(
        "/flink",
        true,
        "/existing_dir",
        Ok(&["existing_dir/flink = f"]),
    );
    check("/flink", true, "/new", Ok(&["new = f"]));
}

#[test]
fn directories_follow_dockers_rules() {
    let tree = |at: &str| {
        [
            "/",
            "/a = a",
            "/hard = a",
            "/link -> a",
            "/sub/",
            "/sub/b = b",
        ]
        .iter()
        .map(|s| format!("{at}{s}"))
        .collect::<Vec<_>>()
    };
    let into = tree("existing_dir/dir");
    let contents: Vec<String> = tree("existing_dir").into_iter().skip(1).collect();
    let renamed = tree("new");
    fn as_refs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    check("/dir", false, "/existing_dir", Ok(&as_refs(&into)));
    check("/dir/", false, "/existing_dir", Ok(&as_refs(&into)));
    check("/dir/.", false, "/existing_dir", Ok(&as_refs(&contents)));
    check("/dir", false, "/new", Ok(&as_refs(&renamed)));
    check("/dir/.", false, "/new", Ok(&as_refs(&renamed)));
    check("/dir", false, "/new/", Ok(&as_refs(&renamed)));
    check(
        "/dir",
        false,
        "/existing_file",
        Err("cannot copy directory /dir onto existing file"),
    );
    check(
        "/dir",
        false,
        "/nope/new",
        Err("destination directory /nope does not exist"),
    );
}

#[test]
fn modes_times_and_hard_links_are_kept() {
    let s = tempfile::tempdir().unwrap();
    source_tree(s.path());
    let d = tempfile::tempdir().unwrap();
    copy(s.path(), "/", false, d.path(), "/").unwrap();
    let m = |p: &str| fs::symlink_metadata(d.path().join(p)).unwrap();
    assert_eq!(m("file").mode() & 0o7777, 0o640);
    assert_eq!(m("file").mtime(), 1_000_000);
    assert_eq!(m("dir").mode() & 0o7777, 0o750);
    assert_eq!(
        m("dir").mtime(),
        3_000_000,
        "set after its children were made"
    );
    assert_eq!(m("dir/a").mtime(), 2_000_000);
    assert_eq!(
        m("dir/a").ino(),
        m("dir/hard").ino(),
        "one inode, two names"
    );
}

#[test]
fn existing_directories_and_files_are_not_swapped() {
    let s = tempfile::tempdir().unwrap();
    source_tree(s.path());
    let d = tempfile::tempdir().unwrap();
    fs::create_dir_all(d.path().join("dir/a")).unwrap();
    let e = copy(s.path(), "/dir", false, d.path(), "/").unwrap_err();
    assert!(
        e.to_string().contains("cannot overwrite directory /dir/a"),
        "{e}"
    );
    let d = tempfile::tempdir().unwrap();
    fs::create_dir_all(d.path().join("dir")).unwrap();
    fs::write(d.path().join("dir/sub"), "").unwrap();
    let e = copy(s.path(), "/dir", false, d.path(), "/").unwrap_err();
    assert!(
        e.to_string()
            .contains("cannot overwrite non-directory /dir/sub"),
        "{e}"
    );
}

/// A destination root with symlinks that point out of it, and a file next
/// to it that nothing may touch.
#[test]
fn archives_cannot_write_outside_the_root() {
    let top = tempfile::tempdir().unwrap();
    let root = top.path().join("root");
    let outside = top.path().join("outside");
    fs::create_dir_all(&root).unwrap();
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("victim"), "intact").unwrap();
    symlink("/", root.join("slash")).unwrap();
    symlink("../outside", root.join("up")).unwrap();
    symlink(&outside, root.join("hostpath")).unwrap();

    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, body: &str| {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        // Written raw: the tar crate refuses `..` through its setters.
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        b.append(&h, body.as_bytes()).unwrap();
    };
    add("up/victim", "owned");
    add("hostpath/victim", "owned");
    add(&format!("slash{}/victim", outside.display()), "owned");
    let ok = b.into_inner().unwrap();
    let r = Root::open(&root).unwrap();
    extract::extract(&r, &[], Owner::Process, ok.as_slice()).unwrap();
    assert_eq!(
        fs::read_to_string(outside.join("victim")).unwrap(),
        "intact"
    );
    // Each landed inside the root, where its symlinks lead when `root` is `/`.
    assert_eq!(
        fs::read_to_string(root.join("outside/victim")).unwrap(),
        "owned"
    );
    let inside = root.join(outside.strip_prefix("/").unwrap()).join("victim");
    assert_eq!(fs::read_to_string(inside).unwrap(), "owned");

    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    h.set_entry_type(tar::EntryType::Regular);
    let name = b"../outside/victim";
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_cksum();
    b.append(&h, &b"x"[..]).unwrap();
    let bad = b.into_inner().unwrap();
    let e = extract::extract(&r, &[], Owner::Process, bad.as_slice()).unwrap_err();
    assert!(e.to_string().contains("outside the destination"), "{e}");
    assert_eq!(
        fs::read_to_string(outside.join("victim")).unwrap(),
        "intact"
    );
}
