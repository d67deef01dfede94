//! `--mount`, anonymous volumes (`-v /dst`, the image's VOLUME), docker's
//! copy-up of image content into an empty volume, `rm -v`, and image labels
//! merged under the container's, the image's STOPSIGNAL. As root, with
//! berth-runtime.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use common::*;
use serde_json::{json, Value};

fn volume_names(e: &Env) -> Vec<String> {
    e.ok(&["volume", "ls", "-q"])
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn mount_flag_makes_bind_volume_and_tmpfs_mounts() {
    let test = "mount_flag_makes_bind_volume_and_tmpfs_mounts";
    let Some(rt) = runtime(test, "berth-runtime") else {
        return;
    };
    let e = Env::new("mount-flag", rt);
    let host = e.path("hostdir");
    fs::create_dir_all(&host).unwrap();
    fs::write(host.join("f"), "from the host\n").unwrap();
    let bind = format!("type=bind,source={},target=/b,readonly", host.display());
    let out = e.ok(&[
        "run",
        "--rm",
        "--runtime",
        &e.runtime,
        "--mount",
        &bind,
        "--mount",
        "type=volume,source=mvol,target=/v",
        "--mount",
        "type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770",
        "busybox:test",
        "sh",
        "-c",
        "cat /b/f; touch /b/x 2>/dev/null && echo writable || echo read-only; \
         echo kept > /v/file; grep ' /t ' /proc/mounts",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "from the host");
    assert_eq!(lines[1], "read-only");
    assert!(lines[2].starts_with("tmpfs /t tmpfs "), "{out}");
    assert!(
        lines[2].contains("size=1024k") && lines[2].contains("mode=1770"),
        "{out}"
    );
    assert!(!host.join("x").exists());
    // The named volume outlives the container.
    let again = e.ok(&[
        "run",
        "--rm",
        "--runtime",
        &e.runtime,
        "-v",
        "mvol:/w",
        "busybox:test",
        "cat",
        "/w/file",
    ]);
    assert_eq!(again, "kept\n");
    let bad = [
        "type=bind,target=/x",
        "type=bind,source=relative,target=/x",
        "type=nfs,target=/x",
        "source=mvol",
        "type=volume,source=mvol,target=/x,bogus=1",
        "type=tmpfs,source=a,target=/x",
        "type=tmpfs,target=/x,tmpfs-size=lots",
        "type=volume,target=relative",
    ]
    .map(|b| ["--mount", b]);
    let cases: Vec<(&[&str], &str)> = bad.iter().map(|a| (&a[..], "--mount")).collect();
    e.assert_run_refused(&cases);
    e.ok(&["volume", "rm", "mvol"]);
    e.assert_no_containers();
    assert_eq!(volume_names(&e), Vec::<String>::new());
}

#[test]
fn anonymous_volumes_go_with_rm_v_and_with_rm() {
    let test = "anonymous_volumes_go_with_rm_v_and_with_rm";
    let Some(rt) = runtime(test, "berth-runtime") else {
        return;
    };
    let e = Env::new("mount-anon", rt);
    e.ok(&["volume", "create", "named"]);
    e.ok(&[
        "create",
        "--runtime",
        &e.runtime,
        "--name",
        "a",
        "-v",
        "/anon",
        "--mount",
        "type=volume,target=/anon2",
        "-v",
        "named:/n",
        "busybox:test",
        "true",
    ]);
    let v = inspect(&e, "a");
    let anon: Vec<String> = v["Mounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["Type"] == "volume" && m["Name"] != "named")
        .map(|m| m["Name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(anon.len(), 2, "{v}");
    let mut names = volume_names(&e);
    names.sort();
    let mut want = anon.clone();
    want.push("named".into());
    want.sort();
    assert_eq!(names, want);
    e.ok(&["rm", "-v", "a"]);
    assert_eq!(
        volume_names(&e),
        vec!["named".to_string()],
        "rm -v keeps named volumes"
    );

    let o = e.run(&[
        "--rm",
        "-v",
        "/scratch",
        "busybox:test",
        "sh",
        "-c",
        "echo x > /scratch/f",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(
        volume_names(&e),
        vec!["named".to_string()],
        "--rm takes its anonymous volume"
    );
    e.ok(&["volume", "rm", "named"]);
    e.assert_no_containers();
}

/// busybox plus a layer with /data/seed.txt (uid 1234, mode 0640), and
/// `escape`, a symlink to a host directory; VOLUMEs on both; labels.
fn load_volume_image(e: &Env, secret_dir: &std::path::Path) {
    let base = fs::read(e.path("rootfs.tar")).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o750);
    h.set_uid(1234);
    h.set_size(0);
    b.append_data(&mut h, "data", &[][..]).unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o640);
    h.set_uid(1234);
    h.set_size(5);
    b.append_data(&mut h, "data/seed.txt", &b"seed\n"[..])
        .unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "escape", secret_dir).unwrap();
    let layer = b.into_inner().unwrap();
    let archive = e.path("vol-image.tar");
    berth_testkit::oci::write_archive(
        &archive,
        &[base, layer],
        "volimg:test",
        json!({
            "Cmd": ["sh"], "Env": ["PATH=/bin"],
            "Volumes": {"/data": {}, "/escape": {}},
            "Labels": {"from.image": "yes", "shared": "image"},
            "StopSignal": "SIGUSR1",
        }),
    );
    e.ok(&["load", "-i", archive.to_str().unwrap()]);
}

#[test]
fn image_volumes_get_a_copy_of_the_image_content_and_never_follow_symlinks() {
    let test = "image_volumes_get_a_copy_of_the_image_content_and_never_follow_symlinks";
    let Some(rt) = runtime(test, "berth-runtime") else {
        return;
    };
    let e = Env::new("mount-copyup", rt);
    // A host directory a naive copy-up would copy through the image's
    // symlink.
    let secret = e.path("host-secret");
    fs::create_dir_all(&secret).unwrap();
    fs::write(secret.join("key"), "host only\n").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o700)).unwrap();
    load_volume_image(&e, &secret);
    let out = e.ok(&[
        "run", "--runtime", &e.runtime, "--name", "c", "--label", "shared=container",
        "volimg:test", "sh", "-c",
        "stat -c '%u %a' /data /data/seed.txt; cat /data/seed.txt; echo new > /data/new; ls -A /escape | wc -l",
    ]);
    assert_eq!(
        out, "1234 750\n1234 640\nseed\n0\n",
        "copy-up with owners and modes"
    );
    let v = inspect(&e, "c");
    let mounts: Vec<&Value> = v["Mounts"].as_array().unwrap().iter().collect();
    let data = mounts
        .iter()
        .find(|m| m["Destination"] == "/data")
        .expect("a /data volume");
    assert_eq!(data["Type"], "volume");
    let src = std::path::PathBuf::from(data["Source"].as_str().unwrap());
    assert_eq!(fs::read_to_string(src.join("new")).unwrap(), "new\n");
    let esc = mounts
        .iter()
        .find(|m| m["Destination"] == "/escape")
        .expect("an /escape volume");
    let esc_src = std::path::PathBuf::from(esc["Source"].as_str().unwrap());
    assert_eq!(
        fs::read_dir(&esc_src).unwrap().count(),
        0,
        "nothing copied through the symlink"
    );
    assert_eq!(
        fs::read_to_string(secret.join("key")).unwrap(),
        "host only\n"
    );
    assert_eq!(
        fs::read_dir(&secret).unwrap().count(),
        1,
        "the host directory is untouched"
    );
    assert_eq!(v["Config"]["StopSignal"], "USR1", "the image's STOPSIGNAL");
    let labels = &v["Config"]["Labels"];
    assert_eq!(labels["from.image"], "yes");
    assert_eq!(labels["shared"], "container", "the container's label wins");
    // A label filter sees the image's labels too, as docker's does.
    assert_eq!(
        e.ok(&["ps", "-aq", "--filter", "label=from.image=yes"])
            .lines()
            .count(),
        1
    );
    // Mounting an explicit volume over a VOLUME path: no anonymous one.
    e.ok(&[
        "run",
        "--rm",
        "--runtime",
        &e.runtime,
        "-v",
        "mine:/data",
        "-v",
        "mine2:/escape",
        "volimg:test",
        "true",
    ]);
    let mut names = volume_names(&e);
    names.retain(|n| n.starts_with("mine"));
    assert_eq!(names, vec!["mine".to_string(), "mine2".to_string()]);
    e.ok(&["rm", "-v", "c"]);
    e.ok(&["volume", "rm", "mine", "mine2"]);
    assert_eq!(volume_names(&e), Vec::<String>::new());
    e.assert_no_containers();
}
