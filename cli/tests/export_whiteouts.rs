//! `berth export` of a stopped container, and whiteouts of a two-layer image
//! seen from inside a container: as root, with berth-runtime
//! (`$BERTH_RUNTIME`, default target/debug/berth-runtime), each test with its
//! own `--root` and `--runroot`.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::json;

/// berth-runtime's path, or a named skip.
fn runtime(test: &str) -> Option<String> {
    if !berth_testkit::require_root(test) {
        return None;
    }
    let path = std::env::var("BERTH_RUNTIME").unwrap_or_else(|_| {
        berth_testkit::workspace_root()
            .join("target/debug/berth-runtime")
            .display()
            .to_string()
    });
    if !berth_testkit::require_path(
        test,
        &path,
        "berth-runtime not built (cargo build -p berth-runtime, or set BERTH_RUNTIME)",
    ) {
        return None;
    }
    Some(path)
}

struct Env {
    dir: tempfile::TempDir,
    runtime: String,
}

impl Env {
    fn new(name: &str, runtime: String) -> Env {
        Env {
            dir: berth_testkit::tempdir(name),
            runtime,
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
        c.arg("--root")
            .arg(self.path("root"))
            .arg("--runroot")
            .arg(self.path("run"))
            .args(args);
        c.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    fn berth(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("spawn berth")
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.berth(args);
        assert!(
            o.status.success(),
            "berth {args:?} failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// `berth run --runtime R ARGS...`, which must succeed; its stdout.
    fn run_ok(&self, args: &[&str]) -> String {
        // No network: these tests need none (the default is the bridge).
        let mut a = vec!["run", "--runtime", &self.runtime, "--network", "none"];
        a.extend_from_slice(args);
        self.ok(&a)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Ok(o) = self.cmd(&["ps", "-aq"]).output() {
            for id in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                let _ = self.cmd(&["rm", "-f", id]).output();
            }
        }
        berth_testkit::unmount_all_under(self.dir.path());
    }
}

/// A tar of busybox plus `extra` regular files (path, contents).
fn base_layer(dir: &Path, extra: &[(&str, &str)]) -> Vec<u8> {
    let rootfs = dir.join("rootfs");
    berth_testkit::make_busybox_rootfs(&rootfs);
    for (p, data) in extra {
        let f = rootfs.join(p);
        fs::create_dir_all(f.parent().unwrap()).unwrap();
        fs::write(f, data).unwrap();
    }
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.append_dir_all(".", &rootfs).unwrap();
    b.into_inner().unwrap()
}

fn entry(b: &mut tar::Builder<Vec<u8>>, path: &str, kind: tar::EntryType, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(if kind == tar::EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_size(data.len() as u64);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, path, data).unwrap();
}

/// Busybox with `/gone.txt`, `/keep.txt`, `/swap/{old1,old2}` (a directory)
/// and `/opq/{a,b}`; then an upper layer that deletes `/gone.txt`, replaces
/// the directory `/swap` with a file, makes `/opq` opaque with a new `/opq/c`,
/// and adds `/new.txt`.
fn two_layer_archive(dir: &Path, out: &Path) {
    let lower = base_layer(
        dir,
        &[
            ("gone.txt", "gone\n"),
            ("keep.txt", "keep\n"),
            ("swap/old1", "1\n"),
            ("swap/old2", "2\n"),
            ("opq/a", "a\n"),
            ("opq/b", "b\n"),
        ],
    );
    let mut b = tar::Builder::new(Vec::new());
    entry(&mut b, ".wh.gone.txt", tar::EntryType::Regular, b"");
    entry(&mut b, ".wh.swap", tar::EntryType::Regular, b"");
    entry(&mut b, "swap", tar::EntryType::Regular, b"now a file\n");
    entry(&mut b, "opq", tar::EntryType::Directory, b"");
    entry(&mut b, "opq/.wh..wh..opq", tar::EntryType::Regular, b"");
    entry(&mut b, "opq/c", tar::EntryType::Regular, b"c\n");
    entry(&mut b, "new.txt", tar::EntryType::Regular, b"new\n");
    let upper = b.into_inner().unwrap();
    berth_testkit::oci::write_archive(
        out,
        &[lower, upper],
        "whiteouts:test",
        json!({"Cmd": ["sh"], "Env": ["PATH=/bin"]}),
    );
}

/// The normalized paths of a tar's entries (no leading `./`, no trailing `/`).
fn tar_paths(data: &[u8]) -> BTreeSet<String> {
    let mut a = tar::Archive::new(data);
    a.entries()
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path().unwrap().display().to_string();
            p.trim_start_matches("./").trim_end_matches('/').to_string()
        })
        .collect()
}

fn load_two_layers(e: &Env) {
    let archive = e.path("img.tar");
    two_layer_archive(e.dir.path(), &archive);
    e.ok(&["load", "-i", archive.to_str().unwrap()]);
}

#[test]
fn run_shows_whiteouts_and_replaced_directory() {
    let test = "run_shows_whiteouts_and_replaced_directory";
    let Some(rt) = runtime(test) else { return };
    let e = Env::new("wh-run", rt);
    load_two_layers(&e);
    let out = e.run_ok(&[
        "--rm", "whiteouts:test", "sh", "-c",
        "ls /; echo ---; ls /opq; echo ---; cat /swap; test -f /swap && echo swap-is-file; test -e /gone.txt || echo gone-is-gone",
    ]);
    let parts: Vec<&str> = out.split("---\n").collect();
    assert_eq!(parts.len(), 3, "output: {out}");
    let root: BTreeSet<&str> = parts[0].split_whitespace().collect();
    for p in ["keep.txt", "new.txt", "swap", "opq", "bin"] {
        assert!(root.contains(p), "/{p} present: {root:?}");
    }
    assert!(!root.contains("gone.txt"), "/gone.txt deleted: {root:?}");
    assert_eq!(
        parts[1].split_whitespace().collect::<Vec<_>>(),
        ["c"],
        "opaque /opq has only c"
    );
    assert_eq!(
        parts[2], "now a file\nswap-is-file\ngone-is-gone\n",
        "output: {out}"
    );
}

#[test]
fn export_of_a_stopped_container_has_its_writes_and_not_deleted_files() {
    let test = "export_of_a_stopped_container_has_its_writes_and_not_deleted_files";
    let Some(rt) = runtime(test) else { return };
    let e = Env::new("export", rt);
    load_two_layers(&e);
    e.run_ok(&[
        "--name",
        "exp",
        "whiteouts:test",
        "sh",
        "-c",
        "echo hello > /written.txt; rm /keep.txt",
    ]);
    let out = e.path("exp.tar");
    e.ok(&["export", "-o", out.to_str().unwrap(), "exp"]);
    let paths = tar_paths(&fs::read(&out).unwrap());
    for p in ["written.txt", "new.txt", "swap", "opq/c", "bin/busybox"] {
        assert!(paths.contains(p), "{p} in the export");
    }
    for p in ["keep.txt", "gone.txt", "swap/old1", "opq/a", ".wh.gone.txt"] {
        assert!(!paths.contains(p), "{p} not in the export");
    }
    let mut a = tar::Archive::new(fs::File::open(&out).unwrap());
    let mut found = false;
    for en in a.entries().unwrap() {
        let mut en = en.unwrap();
        if en.path().unwrap().ends_with("written.txt") {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut en, &mut s).unwrap();
            assert_eq!(s, "hello\n");
            found = true;
        }
    }
    assert!(found, "written.txt readable");
    // The same tar on stdout.
    let o = e.berth(&["export", "exp"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        tar_paths(&o.stdout),
        paths,
        "stdout export equals -o export"
    );
    e.ok(&["rm", "exp"]);
    assert_eq!(
        berth_testkit::mounts_under(e.dir.path()),
        Vec::<String>::new(),
        "no mounts left"
    );
}
