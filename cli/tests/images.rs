//! The `berth` image verbs end to end, each test with its own `--root`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new(name: &str) -> Env {
        Env {
            dir: berth_testkit::tempdir(name),
        }
    }

    fn berth(&self, args: &[&str]) -> Output {
        self.berth_stdin(args, None)
    }

    fn berth_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let root = self.dir.path().join("root");
        let run = self.dir.path().join("run");
        let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
        c.arg("--root")
            .arg(&root)
            .arg("--runroot")
            .arg(&run)
            .args(args);
        c.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn berth");
        if let Some(data) = stdin {
            child.stdin.take().unwrap().write_all(data).unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// Run and require success; stdout as text.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.berth(args);
        assert!(
            o.status.success(),
            "berth {args:?} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    fn images_json(&self) -> Vec<Value> {
        serde_json::from_str::<Value>(&self.ok(&["images", "--format", "json"]))
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
}

/// A busybox rootfs tarball (gzip) at `path`.
fn busybox_tarball(path: &Path) {
    let rootfs = berth_testkit::tempdir("cli-rootfs");
    berth_testkit::make_busybox_rootfs(rootfs.path());
    let f = fs::File::create(path).unwrap();
    let gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    b.follow_symlinks(false);
    b.append_dir_all(".", rootfs.path()).unwrap();
    b.into_inner().unwrap().finish().unwrap();
}

#[test]
fn import_busybox_then_images_json_shows_it() {
    if !berth_testkit::require_root("import_busybox_then_images_json_shows_it") {
        return;
    }
    let e = Env::new("cli-import");
    let tb = e.path("rootfs.tar.gz");
    busybox_tarball(&tb);
    let id = e
        .ok(&["import", tb.to_str().unwrap(), "busybox:test"])
        .trim()
        .to_string();
    assert!(
        id.starts_with("sha256:") && id.len() == 71,
        "import prints the id: {id}"
    );
    let imgs = e.images_json();
    assert_eq!(imgs.len(), 1);
    let i = &imgs[0];
    assert_eq!(i["Id"], id[7..]);
    assert_eq!(
        i["RepoTags"],
        serde_json::json!(["docker.io/library/busybox:test"])
    );
    assert!(i["Digest"].as_str().unwrap().starts_with("sha256:"));
    assert!(
        i["Size"].as_u64().unwrap() > 500_000,
        "busybox is in the layer"
    );
    assert!(i["Created"].as_i64().unwrap() > 1_700_000_000);
    let table = e.ok(&["images"]);
    assert!(
        table.contains("docker.io/library/busybox") && table.contains(&id[7..19]),
        "{table}"
    );
    let inspect: Value =
        serde_json::from_str(&e.ok(&["image", "inspect", "busybox:test"])).unwrap();
    assert_eq!(inspect[0]["Id"], id[7..]);
    let lower = inspect[0]["GraphDriver"]["Data"]["LowerDirs"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert!(Path::new(&lower).join("bin/busybox").is_file());
    let tmpl = e.ok(&["images", "--format", "{{.Id}} {{.Size}}"]);
    assert_eq!(tmpl.trim(), format!("{} {}", &id[7..], i["Size"]));
}

#[test]
fn import_from_stdin_and_tag_and_rmi() {
    if !berth_testkit::require_root("import_from_stdin_and_tag_and_rmi") {
        return;
    }
    let e = Env::new("cli-stdin");
    let tb = e.path("rootfs.tar.gz");
    busybox_tarball(&tb);
    let o = e.berth_stdin(&["import", "-", "fromstdin"], Some(&fs::read(&tb).unwrap()));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    e.ok(&["tag", "fromstdin", "localhost/second:v2"]);
    let tags = e.images_json()[0]["RepoTags"].clone();
    assert_eq!(
        tags,
        serde_json::json!(["docker.io/library/fromstdin:latest", "localhost/second:v2"])
    );
    let out = e.ok(&["rmi", "fromstdin"]);
    assert!(
        out.contains("Untagged: docker.io/library/fromstdin:latest") && !out.contains("Deleted"),
        "{out}"
    );
    let out = e.ok(&["rmi", "localhost/second:v2"]);
    assert!(out.contains("Deleted: sha256:"), "{out}");
    assert!(e.images_json().is_empty());
    let o = e.berth(&["rmi", "nosuch"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not found"));
}

#[test]
fn save_rmi_load_keeps_digests() {
    if !berth_testkit::require_root("save_rmi_load_keeps_digests") {
        return;
    }
    let e = Env::new("cli-saveload");
    let tb = e.path("rootfs.tar.gz");
    busybox_tarball(&tb);
    e.ok(&["import", tb.to_str().unwrap(), "keep:1"]);
    let before = e.images_json();
    let archive = e.path("saved.tar");
    e.ok(&["save", "-o", archive.to_str().unwrap(), "keep:1"]);
    e.ok(&["rmi", "keep:1"]);
    assert!(e.images_json().is_empty());
    let out = e.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(
        out.contains("Loaded image: docker.io/library/keep:1"),
        "{out}"
    );
    let after = e.images_json();
    for k in ["Id", "Digest", "RepoTags", "Size", "Created"] {
        assert_eq!(after[0][k], before[0][k], "{k} changed across save/load");
    }
    assert!(e.ok(&["system", "check"]).contains("store is consistent"));
}

#[test]
fn skopeo_reads_what_berth_saves_and_berth_loads_what_skopeo_writes() {
    let name = "skopeo_reads_what_berth_saves_and_berth_loads_what_skopeo_writes";
    if !berth_testkit::require_root(name)
        || !berth_testkit::require_path(name, "/usr/bin/skopeo", "Debian skopeo")
    {
        return;
    }
    let e = Env::new("cli-skopeo");
    let tb = e.path("rootfs.tar.gz");
    busybox_tarball(&tb);
    e.ok(&["import", tb.to_str().unwrap(), "interop:1"]);
    let digest = e.images_json()[0]["Digest"].as_str().unwrap().to_string();
    let archive = e.path("berth.tar");
    e.ok(&["save", "-o", archive.to_str().unwrap(), "interop:1"]);
    let o = Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci-archive:{}", archive.display()))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "skopeo inspect: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["Digest"], digest);
    let copy = e.path("skopeo.tar");
    let o = Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!("oci-archive:{}", archive.display()))
        .arg(format!(
            "oci-archive:{}:localhost/fromskopeo:2",
            copy.display()
        ))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    e.ok(&["rmi", "interop:1"]);
    let out = e.ok(&["load", "-i", copy.to_str().unwrap()]);
    assert!(out.contains("localhost/fromskopeo:2"), "{out}");
    assert_eq!(
        e.images_json()[0]["Digest"],
        digest,
        "skopeo kept the manifest as is"
    );
}

#[test]
fn system_check_reports_corruption_and_repair_fixes_it() {
    if !berth_testkit::require_root("system_check_reports_corruption_and_repair_fixes_it") {
        return;
    }
    let e = Env::new("cli-check");
    let tb = e.path("rootfs.tar.gz");
    busybox_tarball(&tb);
    e.ok(&["import", tb.to_str().unwrap(), "fragile"]);
    assert!(e.ok(&["system", "check"]).contains("store is consistent"));
    let blobs = e.path("root/blobs/sha256");
    let victim = fs::read_dir(&blobs)
        .unwrap()
        .flatten()
        .max_by_key(|f| f.metadata().unwrap().len())
        .unwrap()
        .path();
    fs::write(&victim, b"bit rot").unwrap();
    let o = e.berth(&["system", "check"]);
    assert_eq!(o.status.code(), Some(1), "problems make check fail");
    assert!(String::from_utf8_lossy(&o.stdout).contains("does not match its digest"));
    e.ok(&["system", "check", "--repair"]);
    assert!(e.ok(&["system", "check"]).contains("store is consistent"));
    assert!(
        e.images_json().is_empty(),
        "the image whose layer rotted is dropped"
    );
}

#[test]
fn docker_archive_round_trip_keeps_the_image_id() {
    let name = "docker_archive_round_trip_keeps_the_image_id";
    if !berth_testkit::require_root(name) {
        return;
    }
    let e = Env::new("cli-docker-archive");
    let tb = e.path("rootfs.tar.gz");
    busybox_tarball(&tb);
    e.ok(&["import", tb.to_str().unwrap(), "dock:1"]);
    let before = e.images_json();
    let archive = e.path("docker.tar");
    e.ok(&[
        "save",
        "--format",
        "docker-archive",
        "-o",
        archive.to_str().unwrap(),
        "dock:1",
    ]);
    e.ok(&["rmi", "dock:1"]);
    let out = e.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(
        out.contains("Loaded image: docker.io/library/dock:1"),
        "{out}"
    );
    let after = e.images_json();
    for k in ["Id", "RepoTags", "Size", "Created"] {
        assert_eq!(
            after[0][k], before[0][k],
            "{k} changed across a docker-archive round trip"
        );
    }
    assert!(
        e.ok(&["system", "check"]).contains("store is consistent"),
        "no leftover files from the archive"
    );
    if !berth_testkit::require_path(name, "/usr/bin/skopeo", "Debian skopeo") {
        return;
    }
    let o = Command::new("skopeo")
        .arg("inspect")
        .arg(format!("docker-archive:{}", archive.display()))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "skopeo reads berth's docker-archive: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let copy = e.path("skopeo-docker.tar");
    let o = Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!("docker-archive:{}", archive.display()))
        .arg(format!(
            "docker-archive:{}:localhost/viaskopeo:3",
            copy.display()
        ))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = e.ok(&["load", "-i", copy.to_str().unwrap()]);
    assert!(out.contains("localhost/viaskopeo:3"), "{out}");
    assert_eq!(
        e.images_json()[0]["Id"],
        before[0]["Id"],
        "skopeo's docker-archive loads to the same id"
    );
}

#[test]
fn image_prune_removes_untagged_then_all() {
    if !berth_testkit::require_root("image_prune_removes_untagged_then_all") {
        return;
    }
    let e = Env::new("cli-prune");
    let tb = e.path("rootfs.tar.gz");
    busybox_tarball(&tb);
    // A different rootfs, so the two images differ whenever they are made.
    let small = e.path("small.tar");
    let mut b = tar::Builder::new(fs::File::create(&small).unwrap());
    let mut h = tar::Header::new_gnu();
    h.set_size(5);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "hello", &b"hello"[..]).unwrap();
    b.finish().unwrap();
    drop(b);
    e.ok(&["import", small.to_str().unwrap()]);
    e.ok(&["import", tb.to_str().unwrap(), "named"]);
    let untagged: Vec<Value> = e
        .images_json()
        .into_iter()
        .filter(|i| i["RepoTags"] == serde_json::json!([]))
        .collect();
    assert_eq!(untagged.len(), 1);
    let out = e.ok(&["image", "prune"]);
    assert!(out.contains(untagged[0]["Id"].as_str().unwrap()), "{out}");
    assert_eq!(e.images_json().len(), 1, "the tagged image stays");
    assert!(e
        .ok(&["system", "df"])
        .lines()
        .nth(1)
        .unwrap()
        .starts_with('1'));
    e.ok(&["image", "prune", "-a"]);
    assert!(e.images_json().is_empty());
    assert_eq!(
        fs::read_dir(e.path("root/blobs/sha256")).unwrap().count(),
        0
    );
}

/// A private podman (root, runroot and config under one temp dir, set up as
/// HOST.md says), torn down with its mounts on drop.
struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    fn new() -> Podman {
        let dir = berth_testkit::tempdir("podman");
        let d = dir.path();
        fs::write(
            d.join("containers.conf"),
            "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
        )
        .unwrap();
        fs::write(
            d.join("storage.conf"),
            format!("[storage]\ndriver = \"overlay\"\nrunroot = \"{0}/run\"\ngraphroot = \"{0}/root\"\n", d.display()),
        )
        .unwrap();
        Podman { dir }
    }

    fn run(&self, args: &[&str]) -> Output {
        let d = self.dir.path();
        Command::new("podman")
            .env("CONTAINERS_CONF", d.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", d.join("storage.conf"))
            .arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("run"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.run(&["system", "reset", "--force"]);
        // c/storage's overlay driver bind-mounts its home; undo what is left.
        berth_testkit::unmount_all_under(self.dir.path());
    }
}

#[test]
fn podman_loads_what_berth_saves_and_berth_loads_what_podman_saves() {
    let name = "podman_loads_what_berth_saves_and_berth_loads_what_podman_saves";
    if !berth_testkit::require_root(name)
        || !berth_testkit::require_path(name, "/usr/bin/podman", "Debian podman")
    {
        return;
    }
    let e = Env::new("cli-podman");
    let tb = e.path("rootfs.tar.gz");
    busybox_tarball(&tb);
    e.ok(&["import", tb.to_str().unwrap(), "podtest:1"]);
    let ours = e.images_json()[0].clone();
    let pm = Podman::new();
    for format in ["oci-archive", "docker-archive"] {
        let archive = e.path(&format!("{format}.tar"));
        e.ok(&[
            "save",
            "--format",
            format,
            "-o",
            archive.to_str().unwrap(),
            "podtest:1",
        ]);
        assert!(pm
            .ok(&["load", "-i", archive.to_str().unwrap()])
            .contains("docker.io/library/podtest:1"));
        let listed: Value = serde_json::from_str(&pm.ok(&["images", "--format", "json"])).unwrap();
        assert_eq!(
            listed[0]["Id"], ours["Id"],
            "podman sees the same image id from our {format}"
        );
        pm.ok(&["rmi", "docker.io/library/podtest:1"]);
    }
    let archive = e.path("docker.tar");
    e.ok(&[
        "save",
        "--format",
        "docker-archive",
        "-o",
        archive.to_str().unwrap(),
        "podtest:1",
    ]);
    pm.ok(&["load", "-i", archive.to_str().unwrap()]);
    let from_podman = e.path("from-podman.tar");
    pm.ok(&[
        "save",
        "-o",
        from_podman.to_str().unwrap(),
        "docker.io/library/podtest:1",
    ]);
    e.ok(&["rmi", "podtest:1"]);
    let out = e.ok(&["load", "-i", from_podman.to_str().unwrap()]);
    assert!(out.contains("docker.io/library/podtest:1"), "{out}");
    assert_eq!(
        e.images_json()[0]["Id"],
        ours["Id"],
        "podman's docker-archive loads to the same id"
    );
    drop(pm);
}

#[test]
fn importing_a_malicious_tar_fails_clearly_and_leaves_the_store_consistent() {
    let name = "importing_a_malicious_tar_fails_clearly_and_leaves_the_store_consistent";
    if !berth_testkit::require_root(name) {
        return;
    }
    let e = Env::new("cli-evil");
    let victim = e.path("victim");
    // A tar whose entry climbs out with `..` (written header by header:
    // the tar crate's own path setters refuse it).
    let mut h = tar::Header::new_ustar();
    let evil = format!("../../../../../../..{}", victim.display());
    h.as_old_mut().name[..evil.len()].copy_from_slice(evil.as_bytes());
    h.set_size(5);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, &b"pwned"[..]).unwrap();
    let data = b.into_inner().unwrap();
    let o = e.berth_stdin(&["import", "-", "evil"], Some(&data));
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("unsafe layer entry") && err.contains("parent-directory"),
        "{err}"
    );
    assert!(!victim.exists(), "nothing written outside the store");
    assert!(e.images_json().is_empty());
    let o = e.berth(&["system", "check"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && !out.contains("found:"),
        "store consistent after the refusal: {out}"
    );
    e.ok(&["system", "prune"]);
    assert!(e.ok(&["system", "check"]).contains("store is consistent"));
}
