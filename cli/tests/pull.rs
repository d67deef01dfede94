//! `berth pull` against a local Debian `docker-registry` on 127.0.0.1 (a
//! free port, started by the test and stopped by PID), filled by skopeo.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use berth_testkit::registry::{Registry, REGISTRY};
use serde_json::{json, Value};

const SKOPEO: &str = "/usr/bin/skopeo";

/// A berth store with its own root.
struct Berth {
    dir: tempfile::TempDir,
}

impl Berth {
    fn new(name: &str) -> Berth {
        Berth {
            dir: berth_testkit::tempdir(name),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("--root")
            .arg(self.dir.path().join("root"))
            .arg("--runroot")
            .arg(self.dir.path().join("run"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> Output {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "berth {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o
    }

    fn images(&self) -> Vec<Value> {
        let o = self.ok(&["images", "--format", "json"]);
        serde_json::from_slice::<Value>(&o.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
}

fn skopeo(args: &[&str]) {
    let o = Command::new(SKOPEO)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Import a busybox rootfs (plus a marker file) into `b` as `name` and save
/// it as an oci-archive; returns the archive path.
fn busybox_archive(b: &Berth, name: &str, marker: &str) -> PathBuf {
    let rootfs = b.path(&format!("rootfs-{marker}"));
    berth_testkit::make_busybox_rootfs(&rootfs);
    fs::write(rootfs.join("etc/marker"), marker).unwrap();
    let tb = b.path(&format!("{marker}.tar"));
    let mut t = tar::Builder::new(fs::File::create(&tb).unwrap());
    t.follow_symlinks(false);
    t.append_dir_all(".", &rootfs).unwrap();
    t.into_inner().unwrap().sync_all().unwrap();
    b.ok(&["import", tb.to_str().unwrap(), name]);
    let archive = b.path(&format!("{marker}.oci.tar"));
    b.ok(&["save", "-o", archive.to_str().unwrap(), name]);
    archive
}

fn needs(name: &str) -> bool {
    berth_testkit::require_root(name)
        && berth_testkit::require_path(name, REGISTRY, "Debian docker-registry")
        && berth_testkit::require_path(name, SKOPEO, "Debian skopeo")
}

#[test]
fn pull_then_pull_again_then_by_digest() {
    if !needs("pull_then_pull_again_then_by_digest") {
        return;
    }
    let reg = Registry::start();
    let src = Berth::new("pull-src");
    let archive = busybox_archive(&src, "bb:1", "one");
    let target = reg.name("test/busybox:1");
    skopeo(&[
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        &format!("oci-archive:{}", archive.display()),
        &format!("docker://{target}"),
    ]);
    // skopeo compresses the uncompressed layer on the way, so ask the
    // registry which manifest it now serves.
    let o = Command::new(SKOPEO)
        .args([
            "inspect",
            "--tls-verify=false",
            &format!("docker://{target}"),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let want = serde_json::from_slice::<Value>(&o.stdout).unwrap()["Digest"].clone();

    let b = Berth::new("pull-dst");
    let o = b.ok(&["pull", "--tls-verify=false", &target]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("Copying blob"), "first pull downloads: {err}");
    let imgs = b.images();
    assert_eq!(imgs.len(), 1);
    assert_eq!(imgs[0]["Digest"], want);
    assert_eq!(imgs[0]["RepoTags"], json!([target]));
    let lower = b.path("root/layers");
    assert_eq!(fs::read_dir(&lower).unwrap().count(), 1);

    let o = b.ok(&["pull", "--tls-verify=false", &target]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !err.contains("Copying blob"),
        "second pull downloads nothing: {err}"
    );
    assert_eq!(
        err.matches("already present").count(),
        2,
        "config and layer skipped: {err}"
    );

    let by_digest = format!("{}@{}", reg.name("test/busybox"), want.as_str().unwrap());
    let o = b.ok(&["pull", "--tls-verify=false", &by_digest]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        format!("sha256:{}", imgs[0]["Id"].as_str().unwrap())
    );
    assert!(b.ok(&["system", "check"]).status.success());
}

#[test]
fn pull_zstd_layer() {
    if !needs("pull_zstd_layer") {
        return;
    }
    let reg = Registry::start();
    let src = Berth::new("zstd-src");
    let archive = busybox_archive(&src, "bb:z", "zstd");
    let target = reg.name("test/zstd:1");
    skopeo(&[
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        "--dest-compress-format",
        "zstd",
        "--dest-compress",
        &format!("oci-archive:{}", archive.display()),
        &format!("docker://{target}"),
    ]);
    let b = Berth::new("zstd-dst");
    b.ok(&["pull", "--tls-verify=false", &target]);
    let inspect: Value =
        serde_json::from_slice(&b.ok(&["image", "inspect", &target]).stdout).unwrap();
    let manifest_type = inspect[0]["ManifestType"].as_str().unwrap().to_string();
    let root = b.path("root");
    let digest = inspect[0]["Digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let manifest: Value =
        serde_json::from_slice(&fs::read(root.join("blobs/sha256").join(digest)).unwrap()).unwrap();
    assert!(
        manifest["layers"][0]["mediaType"]
            .as_str()
            .unwrap()
            .ends_with("zstd"),
        "{manifest_type} {manifest}"
    );
    let lower = inspect[0]["GraphDriver"]["Data"]["LowerDirs"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        fs::read_to_string(Path::new(&lower).join("etc/marker")).unwrap(),
        "zstd"
    );
}

/// Write an OCI layout dir holding an index of two images, one per
/// platform, from two berth-saved archives.
fn multi_arch_layout(dir: &Path, amd: &Path, arm: &Path) {
    fs::create_dir_all(dir).unwrap();
    let mut entries = Vec::new();
    for (archive, arch) in [(amd, "amd64"), (arm, "arm64")] {
        tar::Archive::new(fs::File::open(archive).unwrap())
            .unpack(dir)
            .unwrap();
        let index: Value =
            serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
        let mut m = index["manifests"][0].clone();
        m.as_object_mut().unwrap().remove("annotations");
        m["platform"] = json!({"os": "linux", "architecture": arch});
        entries.push(m);
    }
    let image_index = serde_json::to_vec(
        &json!({"schemaVersion": 2, "mediaType": berth_storage::OCI_INDEX, "manifests": entries}),
    )
    .unwrap();
    let d = berth_storage::Digest::of(&image_index);
    fs::write(dir.join("blobs/sha256").join(d.hex()), &image_index).unwrap();
    let top = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": berth_storage::OCI_INDEX, "digest": d.as_str(), "size": image_index.len(),
        "annotations": {"org.opencontainers.image.ref.name": "multi"}}]});
    fs::write(dir.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
}

#[test]
fn pull_chooses_the_platform_from_an_index() {
    if !needs("pull_chooses_the_platform_from_an_index") {
        return;
    }
    let reg = Registry::start();
    let src = Berth::new("multi-src");
    let amd = busybox_archive(&src, "plat:amd64", "amd64");
    let arm = busybox_archive(&src, "plat:arm64", "arm64");
    let layout = src.path("layout");
    multi_arch_layout(&layout, &amd, &arm);
    let target = reg.name("test/multi:1");
    skopeo(&[
        "copy",
        "--quiet",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:multi", layout.display()),
        &format!("docker://{target}"),
    ]);

    let b = Berth::new("multi-dst");
    b.ok(&["pull", "--tls-verify=false", &target]);
    let host: Value = serde_json::from_slice(&b.ok(&["image", "inspect", &target]).stdout).unwrap();
    let lower = host[0]["GraphDriver"]["Data"]["LowerDirs"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        fs::read_to_string(Path::new(&lower).join("etc/marker")).unwrap(),
        berth_storage::host_arch()
    );

    let b2 = Berth::new("multi-arm");
    b2.ok(&[
        "pull",
        "--tls-verify=false",
        "--platform",
        "linux/arm64",
        &target,
    ]);
    let arm_img: Value =
        serde_json::from_slice(&b2.ok(&["image", "inspect", &target]).stdout).unwrap();
    let lower = arm_img[0]["GraphDriver"]["Data"]["LowerDirs"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        fs::read_to_string(Path::new(&lower).join("etc/marker")).unwrap(),
        "arm64"
    );
    let o = b2.run(&[
        "pull",
        "--tls-verify=false",
        "--platform",
        "linux/s390x",
        &target,
    ]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no manifest for platform"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn two_concurrent_pulls_both_succeed_and_store_once() {
    if !needs("two_concurrent_pulls_both_succeed_and_store_once") {
        return;
    }
    let reg = Registry::start();
    let src = Berth::new("conc-src");
    let archive = busybox_archive(&src, "bb:c", "conc");
    let target = reg.name("test/conc:1");
    skopeo(&[
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        &format!("oci-archive:{}", archive.display()),
        &format!("docker://{target}"),
    ]);
    let b = Berth::new("conc-dst");
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("--root")
            .arg(b.path("root"))
            .args(["pull", "-q", "--tls-verify=false", &target])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (p1, p2) = (spawn(), spawn());
    let (o1, o2) = (
        p1.wait_with_output().unwrap(),
        p2.wait_with_output().unwrap(),
    );
    assert!(
        o1.status.success() && o2.status.success(),
        "{} / {}",
        String::from_utf8_lossy(&o1.stderr),
        String::from_utf8_lossy(&o2.stderr)
    );
    assert_eq!(o1.stdout, o2.stdout, "same image id");
    assert_eq!(b.images().len(), 1);
    assert_eq!(
        fs::read_dir(b.path("root/layers")).unwrap().count(),
        1,
        "layer unpacked once"
    );
    assert_eq!(
        fs::read_dir(b.path("root/blobs/sha256")).unwrap().count(),
        3,
        "manifest, config, layer once each"
    );
    let o = b.ok(&["system", "check"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("store is consistent"));
}

#[test]
fn pulls_killed_at_random_points_leave_a_store_that_recovers() {
    if !needs("pulls_killed_at_random_points_leave_a_store_that_recovers") {
        return;
    }
    let reg = Registry::start();
    let src = Berth::new("kill-src");
    let archive = busybox_archive(&src, "bb:k", "kill");
    let target = reg.name("test/kill:1");
    skopeo(&[
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        &format!("oci-archive:{}", archive.display()),
        &format!("docker://{target}"),
    ]);
    let b = Berth::new("kill-dst");
    // A fixed pseudo-random schedule of kill delays (xorshift), spread over
    // the life of a pull; each round also drops what earlier rounds kept
    // half the time, so kills land in downloads, unpacks and commits.
    let mut x: u32 = 0x9e37_79b9;
    for round in 0..20 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let delay = Duration::from_millis(u64::from(x % 120));
        if round % 2 == 1 {
            let _ = b.run(&["rmi", &target]);
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("--root")
            .arg(b.path("root"))
            .args(["pull", "-q", "--tls-verify=false", &target])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL, by this child's PID
        let _ = child.wait();
    }
    b.ok(&["pull", "-q", "--tls-verify=false", &target]);
    assert_eq!(b.images().len(), 1);
    let o = b.run(&["system", "check"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "check after kills: {out}");
    assert!(
        !out.contains("found:"),
        "no unrepaired inconsistency: {out}"
    );
    let o = b.ok(&["system", "check"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("store is consistent"));
}

#[test]
fn push_to_a_new_name_keeps_the_digest() {
    if !needs("push_to_a_new_name_keeps_the_digest") {
        return;
    }
    let reg = Registry::start();
    let b = Berth::new("push-src");
    let tb = {
        let rootfs = b.path("rootfs");
        berth_testkit::make_busybox_rootfs(&rootfs);
        let tb = b.path("rootfs.tar");
        let mut t = tar::Builder::new(fs::File::create(&tb).unwrap());
        t.follow_symlinks(false);
        t.append_dir_all(".", &rootfs).unwrap();
        t.into_inner().unwrap().sync_all().unwrap();
        tb
    };
    b.ok(&["import", tb.to_str().unwrap(), "local:1"]);
    let digest = b.images()[0]["Digest"].as_str().unwrap().to_string();
    let dest = reg.name("pushed/app:v1");
    let o = b.ok(&["push", "--tls-verify=false", "local:1", &dest]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        digest,
        "push reports the manifest digest"
    );
    let o = Command::new(SKOPEO)
        .args(["inspect", "--tls-verify=false", &format!("docker://{dest}")])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        serde_json::from_slice::<Value>(&o.stdout).unwrap()["Digest"],
        json!(digest),
        "registry serves the same manifest"
    );
    let o = b.ok(&["push", "--tls-verify=false", "local:1", &dest]);
    assert_eq!(
        String::from_utf8_lossy(&o.stderr)
            .matches("already present")
            .count(),
        2,
        "second push uploads nothing"
    );

    let other = Berth::new("push-dst");
    other.ok(&["pull", "--tls-verify=false", &dest]);
    assert_eq!(other.images()[0]["Digest"], json!(digest));
    assert_eq!(other.images()[0]["Id"], b.images()[0]["Id"]);
}

#[test]
fn login_writes_docker_config_and_logout_removes_it() {
    if !needs("login_writes_docker_config_and_logout_removes_it") {
        return;
    }
    let reg = Registry::start();
    let b = Berth::new("login");
    let cfg_dir = b.path("docker");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_berth"))
            .env("DOCKER_CONFIG", &cfg_dir)
            .arg("--root")
            .arg(b.path("root"))
            .args(args)
            .output()
            .unwrap()
    };
    let host = format!("127.0.0.1:{}", reg.port);
    let o = run(&[
        "login",
        "--tls-verify=false",
        "-u",
        "alice",
        "-p",
        "s3cret",
        &host,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cfg_path = cfg_dir.join("config.json");
    let cfg: Value = serde_json::from_slice(&fs::read(&cfg_path).unwrap()).unwrap();
    assert_eq!(
        cfg["auths"][&host]["auth"], "YWxpY2U6czNjcmV0",
        "base64 of alice:s3cret"
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&fs::metadata(&cfg_path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "credentials are private");
    let o = run(&["logout", &host]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cfg: Value = serde_json::from_slice(&fs::read(&cfg_path).unwrap()).unwrap();
    assert!(cfg["auths"].get(&host).is_none());
    assert!(
        !run(&["logout", &host]).status.success(),
        "logging out twice fails"
    );
}
