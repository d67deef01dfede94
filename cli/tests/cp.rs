//! `berth cp` end to end as root: docker's rules in both directions, for
//! running, created and exited containers (and one whose root filesystem
//! is not mounted), `-` tar streams, ownership with and without `-a`,
//! volumes and bind mounts, and symlinks in the container that point at
//! host paths (which must never reach them).

mod common;

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::*;

/// A host file with a given body, mode, mtime and owner.
fn host_file(p: &Path, body: &str, mode: u32, mtime: i64, owner: (u32, u32)) {
    fs::write(p, body).unwrap();
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
    std::os::unix::fs::lchown(p, Some(owner.0), Some(owner.1)).unwrap();
    let t = nix::sys::time::TimeSpec::new(mtime, 0);
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        p,
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();
}

/// `d/` (0750) holding `a`, `sub/b` and `link -> a`.
fn host_dir(d: &Path) {
    fs::create_dir_all(d.join("sub")).unwrap();
    fs::write(d.join("a"), "a").unwrap();
    fs::write(d.join("sub/b"), "b").unwrap();
    symlink("a", d.join("link")).unwrap();
    fs::set_permissions(d, fs::Permissions::from_mode(0o750)).unwrap();
}

/// Where the container's root filesystem is on the host.
fn merged(e: &Env, c: &str) -> PathBuf {
    PathBuf::from(
        inspect(e, c)["GraphDriver"]["Data"]["MergedDir"]
            .as_str()
            .unwrap(),
    )
}

/// (mode, uid, gid, mtime) of a path, not following a symlink.
fn meta(p: &Path) -> (u32, u32, u32, i64) {
    let m = fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.mode() & 0o7777, m.uid(), m.gid(), m.mtime())
}

/// `berth cp ARGS` must fail with 125 and say `what`.
fn refused(e: &Env, args: &[&str], what: &str) {
    let mut a = vec!["cp"];
    a.extend_from_slice(args);
    let o = e.berth(&a);
    assert_eq!(code(&o), 125, "cp {args:?}: {}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains(what),
        "cp {args:?}: want {what:?} in {}",
        text(&o.stderr)
    );
}

fn run_detached(e: &Env, args: &[&str]) {
    let mut a = vec!["-d"];
    a.extend_from_slice(args);
    let o = e.run(&a);
    assert_eq!(code(&o), 0, "run {args:?}: {}", text(&o.stderr));
}

#[test]
fn cp_copies_files_and_directories_both_ways() {
    let test = "cp_copies_files_and_directories_both_ways";
    let Some(rt) = runtime(test, "berth-runtime") else {
        return;
    };
    let e = Env::new("cp-rules", rt);
    let h = e.path("h");
    fs::create_dir(&h).unwrap();
    let f = h.join("f");
    host_file(&f, "body", 0o640, 1_000_000, (1234, 5678));
    host_dir(&h.join("d"));
    let (f, d) = (f.to_str().unwrap(), h.join("d").display().to_string());
    run_detached(&e, &["--name", "c1", "busybox:test", "sleep", "1000"]);
    let m = merged(&e, "c1");

    // Into the container: into a directory, to a new name, onto a file.
    e.ok(&["cp", f, "c1:/tmp"]);
    assert_eq!(fs::read_to_string(m.join("tmp/f")).unwrap(), "body");
    assert_eq!(
        meta(&m.join("tmp/f")),
        (0o640, 1234, 5678, 1_000_000),
        "mode, owner, mtime kept"
    );
    e.ok(&["cp", f, "c1:tmp/g"]);
    assert_eq!(fs::read_to_string(m.join("tmp/g")).unwrap(), "body");
    e.ok(&["cp", f, "c1:/etc/hostname"]);
    assert_eq!(fs::read_to_string(m.join("etc/hostname")).unwrap(), "body");
    assert_eq!(
        e.ok(&["exec", "c1", "cat", "/tmp/f"]),
        "body",
        "the running container sees it"
    );
    // -a: owned by the container's user (root here).
    e.ok(&["cp", "-a", f, "c1:/tmp/owned"]);
    assert_eq!(meta(&m.join("tmp/owned")), (0o640, 0, 0, 1_000_000));

    // Directories: into one, its contents with /., to a new name.
    e.ok(&["cp", &d, "c1:/tmp/"]);
    assert_eq!(fs::read_to_string(m.join("tmp/d/sub/b")).unwrap(), "b");
    assert_eq!(fs::read_link(m.join("tmp/d/link")).unwrap(), Path::new("a"));
    assert_eq!(meta(&m.join("tmp/d")).0, 0o750);
    e.ok(&["cp", &format!("{d}/."), "c1:/tmp/contents"]);
    assert_eq!(fs::read_to_string(m.join("tmp/contents/a")).unwrap(), "a");
    e.ok(&["exec", "c1", "mkdir", "/tmp/existing"]);
    e.ok(&["cp", &format!("{d}/."), "c1:/tmp/existing"]);
    assert_eq!(
        fs::read_to_string(m.join("tmp/existing/sub/b")).unwrap(),
        "b"
    );
    refused(&e, &[&d, "c1:/tmp/f"], "cannot copy directory");
    refused(&e, &[f, "c1:/nonexistent/x"], "does not exist");
    refused(&e, &[f, "c1:/tmp/newdir/"], "does not exist");
    refused(&e, &["nosuch-host-file", "c1:/tmp"], "nosuch-host-file");

    // Out of the container: owned by berth's user unless -a.
    let out = e.path("out");
    fs::create_dir(&out).unwrap();
    let o = |p: &str| out.join(p).display().to_string();
    e.ok(&["cp", "c1:/tmp/f", &o("plain")]);
    assert_eq!(meta(&out.join("plain")), (0o640, 0, 0, 1_000_000));
    e.ok(&["cp", "-a", "c1:/tmp/f", &o("kept")]);
    assert_eq!(meta(&out.join("kept")), (0o640, 1234, 5678, 1_000_000));
    e.ok(&["cp", "c1:/tmp/d", &o("")]);
    assert_eq!(fs::read_to_string(out.join("d/sub/b")).unwrap(), "b");
    assert_eq!(fs::read_link(out.join("d/link")).unwrap(), Path::new("a"));
    e.ok(&["cp", "c1:/tmp/d/.", &o("fresh")]);
    assert_eq!(fs::read_to_string(out.join("fresh/a")).unwrap(), "a");
    e.ok(&["cp", "c1:/bin/sh", &o("sh")]);
    assert!(fs::symlink_metadata(out.join("sh"))
        .unwrap()
        .file_type()
        .is_symlink());
    e.ok(&["cp", "-L", "c1:/bin/sh", &o("sh-binary")]);
    assert!(
        fs::metadata(out.join("sh-binary")).unwrap().len() > 100_000,
        "busybox itself"
    );
    refused(
        &e,
        &["c1:/nosuch", &o("x")],
        "no such container:path: c1:/nosuch",
    );
    refused(&e, &["nosuch:/x", &o("x")], "no such container: nosuch");
    refused(&e, &[f, &o("x")], "at least one container");
    refused(&e, &["c1:/a", "c1:/b"], "between containers");
    refused(&e, &["c1:/tmp/d", &o("plain")], "cannot copy directory");

    // -a into a container with its own user: files become that user's.
    let o2 = e.berth(&[
        "create",
        "--runtime",
        &e.runtime,
        "--name",
        "c2",
        "-u",
        "1000:1000",
        "busybox:test",
        "true",
    ]);
    assert_eq!(code(&o2), 0, "{}", text(&o2.stderr));
    e.ok(&["cp", "-a", f, "c2:/tmp/x"]);
    assert_eq!(meta(&merged(&e, "c2").join("tmp/x")).1, 1000);
    e.ok(&["rm", "-f", "c1", "c2"]);
    e.assert_no_containers();
}

#[test]
fn cp_works_on_created_exited_and_unmounted_containers() {
    let test = "cp_works_on_created_exited_and_unmounted_containers";
    let Some(rt) = runtime(test, "berth-runtime") else {
        return;
    };
    let e = Env::new("cp-stopped", rt);
    let input = e.path("in");
    fs::write(&input, "from the host\n").unwrap();
    let input = input.display().to_string();

    // Created, never started: the file is there when it runs.
    let o = e.berth(&[
        "create",
        "--runtime",
        &e.runtime,
        "--name",
        "cr",
        "busybox:test",
        "cat",
        "/in",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    e.ok(&["cp", &input, "cr:/in"]);
    e.ok(&["start", "cr"]);
    assert_eq!(e.ok(&["wait", "cr"]).trim(), "0");
    assert_eq!(e.ok(&["logs", "cr"]), "from the host\n");

    // Exited: what it wrote can be copied out.
    let o = e.run(&[
        "--name",
        "ex",
        "busybox:test",
        "sh",
        "-c",
        "echo made > /out.txt",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let out = e.path("out.txt").display().to_string();
    e.ok(&["cp", "ex:/out.txt", &out]);
    assert_eq!(fs::read_to_string(&out).unwrap(), "made\n");

    // Its root filesystem unmounted (as after a reboot): mounted for the
    // copy only, in a namespace of its own, and not left mounted.
    let m = merged(&e, "ex");
    nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH).unwrap();
    assert!(berth_testkit::mounts_under(&m).is_empty());
    let again = e.path("again.txt").display().to_string();
    e.ok(&["cp", "ex:/out.txt", &again]);
    assert_eq!(fs::read_to_string(&again).unwrap(), "made\n");
    e.ok(&["cp", &input, "ex:/new"]);
    assert!(
        berth_testkit::mounts_under(&m).is_empty(),
        "still unmounted"
    );
    let upper = m.with_file_name("upper");
    assert_eq!(
        fs::read_to_string(upper.join("new")).unwrap(),
        "from the host\n"
    );
    e.ok(&["rm", "cr", "ex"]);
    e.assert_no_containers();
}

/// A tar header with every numeric field set (as tar(1) writes them).
fn header(t: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(t);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_500_000_000);
    h
}

/// Entry names of a tar archive, with the body of regular files.
fn tar_entries(data: &[u8]) -> Vec<(String, String)> {
    let mut a = tar::Archive::new(data);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().display().to_string();
            let mut body = String::new();
            if e.header().entry_type().is_file() {
                std::io::Read::read_to_string(&mut e, &mut body).unwrap();
            }
            (name, body)
        })
        .collect()
}

#[test]
fn cp_streams_tar_archives_on_stdin_and_stdout() {
    let test = "cp_streams_tar_archives_on_stdin_and_stdout";
    let Some(rt) = runtime(test, "berth-runtime") else {
        return;
    };
    let e = Env::new("cp-stream", rt);
    run_detached(&e, &["--name", "s", "busybox:test", "sleep", "1000"]);

    let o = e.berth(&["cp", "s:/etc", "-"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let entries = tar_entries(&o.stdout);
    assert_eq!(entries[0].0, "etc");
    let passwd = entries
        .iter()
        .find(|(n, _)| n == "etc/passwd")
        .expect("etc/passwd");
    assert!(passwd.1.starts_with("root:x:0:0"), "{}", passwd.1);
    let o = e.berth(&["cp", "s:/etc/.", "-"]);
    assert!(
        tar_entries(&o.stdout).iter().any(|(n, _)| n == "passwd"),
        "contents only"
    );

    // A tar on stdin is unpacked into a directory, owners as recorded.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = header(tar::EntryType::Directory, 0o700, 0);
    b.append_data(&mut h, "t", std::io::empty()).unwrap();
    let mut h = header(tar::EntryType::Regular, 0o600, 2);
    h.set_uid(4321);
    h.set_gid(4322);
    h.set_mtime(2_000_000);
    b.append_data(&mut h, "t/x", &b"hi"[..]).unwrap();
    let archive = b.into_inner().unwrap();
    let stdin_cp = |dst: &str| {
        let mut c = e.cmd(&["cp", "-", dst]);
        c.stdin(Stdio::piped());
        let mut child = c.spawn().unwrap();
        child.stdin.take().unwrap().write_all(&archive).unwrap();
        child.wait_with_output().unwrap()
    };
    let o = stdin_cp("s:/tmp");
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let m = merged(&e, "s");
    assert_eq!(fs::read_to_string(m.join("tmp/t/x")).unwrap(), "hi");
    assert_eq!(meta(&m.join("tmp/t/x")), (0o600, 4321, 4322, 2_000_000));
    assert_eq!(meta(&m.join("tmp/t")).0, 0o700);
    let o = stdin_cp("s:/etc/passwd");
    assert_eq!(code(&o), 125);
    assert!(
        text(&o.stderr).contains("is not a directory"),
        "{}",
        text(&o.stderr)
    );
    e.ok(&["rm", "-f", "s"]);
    e.assert_no_containers();
}

#[test]
fn cp_goes_through_volumes_and_bind_mounts() {
    let test = "cp_goes_through_volumes_and_bind_mounts";
    let Some(rt) = runtime(test, "berth-runtime") else {
        return;
    };
    let e = Env::new("cp-mounts", rt);
    let (bind, ro) = (e.path("bind"), e.path("ro"));
    fs::create_dir(&bind).unwrap();
    fs::create_dir(&ro).unwrap();
    let f = e.path("f");
    fs::write(&f, "data").unwrap();
    let f = f.to_str().unwrap();
    let v = |s: &Path, d: &str| format!("{}:{d}", s.display());
    run_detached(
        &e,
        &[
            "--name",
            "v",
            "-v",
            &v(&bind, "/data"),
            "-v",
            &format!("{}:/ro:ro", ro.display()),
            "-v",
            "vol1:/vol",
            "busybox:test",
            "sleep",
            "1000",
        ],
    );
    let m = merged(&e, "v");
    e.ok(&["cp", f, "v:/data/"]);
    assert_eq!(
        fs::read_to_string(bind.join("f")).unwrap(),
        "data",
        "in the bind mount's source"
    );
    assert!(
        !m.join("data/f").exists(),
        "not in the root filesystem under it"
    );
    e.ok(&["cp", f, "v:/vol/x"]);
    assert_eq!(
        fs::read_to_string(e.path("root/volumes/vol1/_data/x")).unwrap(),
        "data"
    );
    refused(&e, &[f, "v:/ro/"], "read-only");
    assert!(
        fs::read_dir(&ro).unwrap().next().is_none(),
        "nothing written to a :ro mount"
    );
    let back = e.path("back").display().to_string();
    e.ok(&["cp", "v:/data/f", &back]);
    assert_eq!(fs::read_to_string(&back).unwrap(), "data");

    // Stopped, its mounts are still where its paths lead.
    e.ok(&["stop", "-t", "1", "v"]);
    e.ok(&["cp", f, "v:/data/g"]);
    assert_eq!(fs::read_to_string(bind.join("g")).unwrap(), "data");

    // --read-only: refused outside its volumes, allowed in them.
    run_detached(
        &e,
        &[
            "--read-only",
            "--name",
            "rofs",
            "-v",
            &v(&bind, "/w"),
            "busybox:test",
            "sleep",
            "1000",
        ],
    );
    refused(&e, &[f, "rofs:/tmp/"], "read-only");
    e.ok(&["cp", f, "rofs:/w/h"]);
    assert_eq!(fs::read_to_string(bind.join("h")).unwrap(), "data");
    e.ok(&["rm", "-f", "v", "rofs"]);
    e.ok(&["volume", "rm", "vol1"]);
    e.assert_no_containers();
}

#[test]
fn cp_symlinks_in_the_container_never_reach_host_files() {
    let test = "cp_symlinks_in_the_container_never_reach_host_files";
    let Some(rt) = runtime(test, "berth-runtime") else {
        return;
    };
    let e = Env::new("cp-escape", rt);
    // The target: a host directory with a file only this test knows.
    let secret = e.path("secret");
    fs::create_dir(&secret).unwrap();
    let marker = berth_testkit::unique("secret-body");
    fs::write(secret.join("victim"), &marker).unwrap();
    let s = secret.display().to_string();
    let evil = e.path("evil");
    fs::write(&evil, "evil").unwrap();
    let evil = evil.display().to_string();
    let untouched = || {
        let names: Vec<_> = fs::read_dir(&secret)
            .unwrap()
            .map(|d| d.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["victim"], "nothing added to the host directory");
        assert_eq!(fs::read_to_string(secret.join("victim")).unwrap(), marker);
    };
    run_detached(&e, &["--name", "c", "busybox:test", "sleep", "1000"]);
    let script =
        format!("ln -s / /escape && ln -s ../../../../../../../.. /up && ln -s {s} /tmp/abs");
    e.ok(&["exec", "c", "sh", "-c", &script]);

    // Reading: every spelling resolves inside the container, where the
    // host path does not exist.
    let out = e.path("out");
    let o = out.display().to_string();
    for src in [
        format!("c:/escape{s}/victim"),
        format!("c:/up{s}/victim"),
        "c:/tmp/abs/victim".into(),
    ] {
        refused(&e, &[&src, &o], "no such container:path");
        refused(&e, &["-L", &src, &o], "no such container:path");
        assert!(!out.exists(), "{src} read nothing");
    }
    refused(&e, &["-L", "c:/tmp/abs", &o], "no such container:path");
    // Without -L the link itself is copied, as a link.
    e.ok(&["cp", "c:/tmp/abs", &o]);
    assert_eq!(fs::read_link(&out).unwrap(), secret);
    fs::remove_file(&out).unwrap();

    // Writing: refused while the path does not exist in the container...
    for dst in [
        format!("c:/escape{s}/victim"),
        format!("c:/up{s}/"),
        "c:/tmp/abs/".into(),
        "c:/tmp/abs/new".into(),
    ] {
        refused(&e, &[&evil, &dst], "does not exist");
        untouched();
    }
    // ...and once it does, it lands there, inside the container.
    e.ok(&["exec", "c", "mkdir", "-p", &s]);
    let m = merged(&e, "c");
    let inside = m.join(secret.strip_prefix("/").unwrap());
    e.ok(&["cp", &evil, "c:/tmp/abs/"]);
    e.ok(&["cp", &evil, &format!("c:/up{s}/victim")]);
    assert_eq!(fs::read_to_string(inside.join("evil")).unwrap(), "evil");
    assert_eq!(fs::read_to_string(inside.join("victim")).unwrap(), "evil");
    untouched();

    // A tar on stdin whose entries go through those links, make their own,
    // or climb with `..`: contained, and the `..` entry refused.
    let mut b = tar::Builder::new(Vec::new());
    // Names written raw: the tar crate refuses `..` through its setters.
    let file = |b: &mut tar::Builder<Vec<u8>>, name: &str| {
        let mut h = header(tar::EntryType::Regular, 0o644, 5);
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        b.append(&h, &b"pwned"[..]).unwrap();
    };
    file(&mut b, &format!("escape{s}/pwned1"));
    let mut h = header(tar::EntryType::Symlink, 0o777, 0);
    b.append_link(&mut h, "mylink", &secret).unwrap();
    file(&mut b, "mylink/pwned2");
    file(&mut b, &format!("../../../../../../..{s}/pwned3"));
    let archive = b.into_inner().unwrap();
    let mut c = e.cmd(&["cp", "-", "c:/"]);
    c.stdin(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(&archive).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        code(&o),
        125,
        "the .. entry is refused: {}",
        text(&o.stderr)
    );
    assert!(
        text(&o.stderr).contains("outside the destination"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(fs::read_to_string(inside.join("pwned1")).unwrap(), "pwned");
    assert_eq!(fs::read_to_string(inside.join("pwned2")).unwrap(), "pwned");
    untouched();
    e.ok(&["rm", "-f", "c"]);
    e.assert_no_containers();
}
