//! Namespaces: user namespace mappings, joining namespaces by path, uts,
//! sysctl and rlimits/umask/oom_score_adj of the process.

mod common;

use common::*;
use serde_json::json;

#[test]
fn user_namespace_maps_root_to_an_unprivileged_uid() {
    if !require_root("user_namespace_maps_root_to_an_unprivileged_uid") {
        return;
    }
    let rt = Rt::new();
    let mut b = bundle("id -u; cat /proc/self/uid_map; echo ready; exec sleep 100");
    b.with_namespace("user", None)
        .edit(|c| {
            c["linux"]["uidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            c["linux"]["gidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        })
        .save();
    // The mapped root must be able to read the rootfs.
    chown_tree(&b.rootfs(), 100000);
    let id = unique("userns");
    let log = rt.create_logged(&b, &id);
    rt.ok(&["start", &id]);
    let out = wait_for_text(&log, "ready");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("0"), "uid 0 inside: {out}");
    let map: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(map, vec!["0", "100000", "65536"]);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line.split_whitespace().skip(1).all(|u| u == "100000"),
        "outside it is uid 100000: {uid_line}"
    );
    rt.ok(&["delete", "--force", &id]);
}

fn chown_tree(p: &std::path::Path, id: u32) {
    let st = std::process::Command::new("chown")
        .args(["-R", "-h", &format!("{id}:{id}")])
        .arg(p)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn joining_a_network_namespace_by_path() {
    if !require_root("joining_a_network_namespace_by_path") {
        return;
    }
    let rt = Rt::new();
    let ns = unique("bns");
    let ok = std::process::Command::new("ip")
        .args(["netns", "add", &ns])
        .status()
        .unwrap();
    assert!(ok.success());
    struct Del(String);
    impl Drop for Del {
        fn drop(&mut self) {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", &self.0])
                .status();
        }
    }
    let _del = Del(ns.clone());
    let dummy = format!("d{}", &ns[ns.len() - 6..]);
    let ok = std::process::Command::new("ip")
        .args([
            "-n",
            &ns,
            "link",
            "add",
            &dummy,
            "type",
            "veth",
            "peer",
            "name",
            &format!("{dummy}p"),
        ])
        .status()
        .unwrap();
    assert!(ok.success());
    let mut b = bundle("ip -o link | cut -d: -f2");
    b.with_namespace("network", Some(&format!("/var/run/netns/{ns}")))
        .save();
    let out = rt.ok(&["run", "-b", b.path().to_str().unwrap(), &unique("joinnet")]);
    assert!(
        out.contains(&dummy),
        "sees the joined namespace's interface: {out}"
    );
}

#[test]
fn process_settings_are_applied() {
    if !require_root("process_settings_are_applied") {
        return;
    }
    let rt = Rt::new();
    let mut b = bundle("ulimit -n; umask; cat /proc/self/oom_score_adj; id -G; hostname; cat /proc/sys/kernel/domainname; cat /proc/sys/net/ipv4/ip_forward; cat /proc/sys/kernel/shmmni; pwd");
    b.edit(|c| {
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}]);
        c["process"]["user"] =
            json!({"uid": 1000, "gid": 1000, "umask": 18, "additionalGids": [5, 65534]});
        c["process"]["oomScoreAdj"] = json!(500);
        c["process"]["cwd"] = json!("/home/user");
        c["hostname"] = json!("h1");
        c["domainname"] = json!("d1");
        c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234"});
        c["root"]["readonly"] = json!(false);
    })
    .save();
    let out = rt.ok(&["run", "-b", b.path().to_str().unwrap(), &unique("proc")]);
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(
        l,
        vec![
            "256",
            "0022",
            "500",
            "1000 5 65534",
            "h1",
            "d1",
            "1",
            "1234",
            "/home/user"
        ],
        "{out}"
    );
}

#[test]
fn readonly_root_masked_and_readonly_paths() {
    if !require_root("readonly_root_masked_and_readonly_paths") {
        return;
    }
    let rt = Rt::new();
    let b = bundle(
        "touch /x 2>/dev/null && echo root-rw || echo root-ro; \
         cat /proc/kcore 2>/dev/null | wc -c; \
         echo 1 > /proc/sysrq-trigger 2>/dev/null && echo sysrq-rw || echo sysrq-ro; \
         ls /sys/firmware | wc -l",
    );
    let out = rt.ok(&["run", "-b", b.path().to_str().unwrap(), &unique("ro")]);
    let l: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(l, vec!["root-ro", "0", "sysrq-ro", "0"], "{out}");
}

#[test]
fn mounts_are_made_with_their_options() {
    if !require_root("mounts_are_made_with_their_options") {
        return;
    }
    let rt = Rt::new();
    let host = berth_testkit::tempdir("bindsrc");
    std::fs::write(host.path().join("f"), "from-host\n").unwrap();
    let mut b = bundle("cat /data/f; touch /data/g 2>/dev/null && echo rw || echo ro; grep ' /scratch ' /proc/mounts | cut -d' ' -f3,4; cat /etc/one");
    let file = host.path().join("one");
    std::fs::write(&file, "single-file").unwrap();
    b.edit(|c| {
        let m = c["mounts"].as_array_mut().unwrap();
        m.push(json!({"destination": "/data", "type": "bind", "source": host.path(), "options": ["rbind", "ro"]}));
        m.push(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "size=1m"]}));
        m.push(json!({"destination": "/etc/one", "type": "bind", "source": file, "options": ["bind"]}));
    })
    .save();
    let out = rt.ok(&["run", "-b", b.path().to_str().unwrap(), &unique("mnt")]);
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "from-host");
    assert_eq!(l[1], "ro");
    assert!(
        l[2].starts_with("tmpfs rw,nosuid") && l[2].contains("size=1024k"),
        "{}",
        l[2]
    );
    assert_eq!(l[3], "single-file");
    assert!(
        berth_testkit::mounts_under(b.path()).is_empty(),
        "no mount leaked to the host"
    );
}

#[test]
fn devices_from_the_config_are_created() {
    if !require_root("devices_from_the_config_are_created") {
        return;
    }
    let rt = Rt::new();
    let mut b = bundle("ls -l /dev/mydev /dev/null | cut -c1-10; ls -l /dev/mydev | tr -s ' ' | cut -d' ' -f5,6; readlink /dev/fd; readlink /dev/ptmx");
    b.edit(|c| {
        c["linux"]["devices"] = json!([{"path": "/dev/mydev", "type": "c", "major": 1, "minor": 5, "fileMode": 432, "uid": 1000, "gid": 1000}]);
    })
    .save();
    let out = rt.ok(&["run", "-b", b.path().to_str().unwrap(), &unique("dev")]);
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "crw-rw----", "{out}");
    assert_eq!(l[1], "crw-rw-rw-", "{out}");
    assert_eq!(l[2], "1, 5", "{out}");
    assert_eq!(l[3], "/proc/self/fd");
    assert_eq!(l[4], "pts/ptmx");
}
