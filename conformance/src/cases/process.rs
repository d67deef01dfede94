//! config.md `process`: args, env, cwd, user, umask, rlimits, capabilities,
//! noNewPrivileges, oomScoreAdj, apparmor/selinux labels, terminal.

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

use super::{cases, check_eq};
use crate::bundle::{Bundle, HELPER_IN_ROOTFS};
use crate::case::{skip, Case, Ctx};

pub fn cases() -> Vec<Case> {
    cases![
        "process.args" => args,
        "process.args_path_lookup" => args_path_lookup,
        "process.env" => env,
        "process.env_no_runtime_leak" => env_no_leak,
        "process.cwd" => cwd,
        "process.user_uid" => user_uid,
        "process.user_gid" => user_gid,
        "process.additional_gids" => additional_gids,
        "process.umask" => umask,
        "process.rlimit_nofile_soft" => rlimit_nofile_soft,
        "process.rlimit_nofile_hard" => rlimit_nofile_hard,
        "process.rlimit_core" => rlimit_core,
        "process.rlimit_nproc" => rlimit_nproc,
        "process.rlimit_msgqueue" => rlimit_msgqueue,
        "process.rlimit_unknown_type_fails" => rlimit_unknown,
        "process.oom_score_adj" => oom_score_adj,
        "process.caps_bounding" => caps_bounding,
        "process.caps_inheritable" => caps_inheritable,
        "process.caps_effective_root" => caps_effective_root,
        "process.caps_permitted_root" => caps_permitted_root,
        "process.caps_ambient_nonroot" => caps_ambient_nonroot,
        "process.caps_chown_denied" => caps_chown_denied,
        "process.caps_chown_allowed" => caps_chown_allowed,
        "process.no_new_privileges_true" => nnp_true,
        "process.no_new_privileges_false" => nnp_false,
        "process.terminal_false_no_tty" => no_tty,
        "process.apparmor_profile" => apparmor,
        "process.selinux_label" => selinux,
    ]
}

const CAPS: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The /proc/PID/status mask of a set of capability names.
fn mask(names: &[&str]) -> u64 {
    names
        .iter()
        .filter_map(|n| CAPS.iter().position(|c| c == n))
        .fold(0, |m, i| m | 1 << i)
}

fn status_mask(info: &Value, key: &str) -> Result<u64> {
    let s = info["status"][key]
        .as_str()
        .with_context(|| format!("/proc/self/status has no {key}"))?;
    u64::from_str_radix(s, 16).with_context(|| format!("{key} {s:?} is not hex"))
}

fn has_env(info: &Value, kv: &str) -> bool {
    info["env"]
        .as_array()
        .is_some_and(|e| e.contains(&json!(kv)))
}

fn args(ctx: &Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    let v = ctx.probe(&mut b, &["info", "two words", "", "--flag"])?;
    check_eq(
        "argv",
        &v["args"],
        &json!([HELPER_IN_ROOTFS, "info", "two words", "", "--flag"]),
    )
}

fn args_path_lookup(ctx: &Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.config["process"]["env"] = json!(["PATH=/nonexistent:/"]);
    b.args(&["berth-runtimetest", "info"]);
    let out = ctx.run(&mut b)?;
    ensure!(
        out.success(),
        "args[0] was not found through PATH: {}",
        out.describe()
    );
    let v: Value = serde_json::from_str(out.stdout.trim()).context("probe output")?;
    check_eq("argv[0]", &v["args"][0], &json!("berth-runtimetest"))
}

fn env(ctx: &Ctx) -> Result<()> {
    let v = ctx.info(|b| {
        b.config["process"]["env"] = json!(["PATH=/bin", "FOO=bar", "EMPTY=", "WITH_EQ=a=b"]);
    })?;
    for kv in ["FOO=bar", "EMPTY=", "WITH_EQ=a=b", "PATH=/bin"] {
        ensure!(
            has_env(&v, kv),
            "{kv} missing from the environment {}",
            v["env"]
        );
    }
    Ok(())
}

fn env_no_leak(ctx: &Ctx) -> Result<()> {
    let v = ctx.info(|_| {})?;
    let leaked = v["env"].as_array().into_iter().flatten().any(|e| {
        e.as_str()
            .is_some_and(|s| s.starts_with(crate::runtime::CANARY))
    });
    ensure!(
        !leaked,
        "the runtime's own environment leaked into the container: {}",
        v["env"]
    );
    Ok(())
}

fn cwd(ctx: &Ctx) -> Result<()> {
    let v = ctx.info(|b| b.config["process"]["cwd"] = json!("/home/user"))?;
    check_eq("cwd", &v["cwd"], &json!("/home/user"))
}

fn user(ctx: &Ctx, user: Value) -> Result<Value> {
    ctx.info(|b| b.config["process"]["user"] = user)
}

fn user_uid(ctx: &Ctx) -> Result<()> {
    let v = user(ctx, json!({ "uid": 1000, "gid": 1000 }))?;
    check_eq("uid", &v["uid"], &json!(1000))?;
    check_eq("euid", &v["euid"], &json!(1000))
}

fn user_gid(ctx: &Ctx) -> Result<()> {
    let v = user(ctx, json!({ "uid": 1000, "gid": 65534 }))?;
    check_eq("gid", &v["gid"], &json!(65534))?;
    check_eq("egid", &v["egid"], &json!(65534))
}

fn additional_gids(ctx: &Ctx) -> Result<()> {
    let v = user(
        ctx,
        json!({ "uid": 1000, "gid": 1000, "additionalGids": [5, 4242] }),
    )?;
    let groups = v["groups"].as_array().cloned().unwrap_or_default();
    for g in [5, 4242] {
        ensure!(
            groups.contains(&json!(g)),
            "additional gid {g} missing from groups {groups:?}"
        );
    }
    Ok(())
}

fn umask(ctx: &Ctx) -> Result<()> {
    let v = user(ctx, json!({ "uid": 0, "gid": 0, "umask": 0o027 }))?;
    check_eq("Umask", &v["status"]["Umask"], &json!("0027"))
}

fn rlimit(ctx: &Ctx, typ: &str, soft: u64, hard: u64) -> Result<Value> {
    let v = ctx.info(|b| {
        b.config["process"]["rlimits"] = json!([{ "type": typ, "soft": soft, "hard": hard }])
    })?;
    Ok(v["rlimits"][typ].clone())
}

fn rlimit_nofile_soft(ctx: &Ctx) -> Result<()> {
    let got = rlimit(ctx, "RLIMIT_NOFILE", 512, 768)?;
    check_eq("RLIMIT_NOFILE soft", &got[0], &json!(512))
}

fn rlimit_nofile_hard(ctx: &Ctx) -> Result<()> {
    let got = rlimit(ctx, "RLIMIT_NOFILE", 512, 768)?;
    check_eq("RLIMIT_NOFILE hard", &got[1], &json!(768))
}

fn rlimit_core(ctx: &Ctx) -> Result<()> {
    check_eq(
        "RLIMIT_CORE",
        &rlimit(ctx, "RLIMIT_CORE", 4096, 8192)?,
        &json!([4096, 8192]),
    )
}

fn rlimit_nproc(ctx: &Ctx) -> Result<()> {
    check_eq(
        "RLIMIT_NPROC",
        &rlimit(ctx, "RLIMIT_NPROC", 300, 400)?,
        &json!([300, 400]),
    )
}

fn rlimit_msgqueue(ctx: &Ctx) -> Result<()> {
    check_eq(
        "RLIMIT_MSGQUEUE",
        &rlimit(ctx, "RLIMIT_MSGQUEUE", 4096, 8192)?,
        &json!([4096, 8192]),
    )
}

fn rlimit_unknown(ctx: &Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.config["process"]["rlimits"] =
        json!([{ "type": "RLIMIT_NO_SUCH_THING", "soft": 1, "hard": 1 }]);
    super::create_or_start_fails(ctx, &mut b, "an unknown rlimit type")
}

fn oom_score_adj(ctx: &Ctx) -> Result<()> {
    let v = ctx.info(|b| b.config["process"]["oomScoreAdj"] = json!(123))?;
    check_eq(
        "oom_score_adj",
        &v["oom_score_adj"].as_str().map(str::trim),
        &Some("123"),
    )
}

/// Root with every set equal to `set` except as `edit` changes it.
fn caps(ctx: &Ctx, edit: impl FnOnce(&mut Bundle)) -> Result<Value> {
    ctx.info(|b| {
        let set = json!(["CAP_CHOWN", "CAP_KILL", "CAP_SETUID", "CAP_NET_RAW"]);
        b.config["process"]["capabilities"] =
            json!({ "bounding": set, "effective": set, "permitted": set, "inheritable": set, "ambient": set });
        edit(b)
    })
}

fn caps_bounding(ctx: &Ctx) -> Result<()> {
    let want = ["CAP_CHOWN", "CAP_KILL", "CAP_SETUID", "CAP_NET_RAW"];
    let v = caps(ctx, |_| {})?;
    check_eq("CapBnd", &status_mask(&v, "CapBnd")?, &mask(&want))
}

fn caps_inheritable(ctx: &Ctx) -> Result<()> {
    let v = caps(ctx, |b| {
        b.config["process"]["capabilities"]["inheritable"] = json!(["CAP_KILL"])
    })?;
    check_eq("CapInh", &status_mask(&v, "CapInh")?, &mask(&["CAP_KILL"]))
}

fn caps_effective_root(ctx: &Ctx) -> Result<()> {
    let v = caps(ctx, |_| {})?;
    check_eq(
        "CapEff",
        &status_mask(&v, "CapEff")?,
        &mask(&["CAP_CHOWN", "CAP_KILL", "CAP_SETUID", "CAP_NET_RAW"]),
    )
}

fn caps_permitted_root(ctx: &Ctx) -> Result<()> {
    let v = caps(ctx, |_| {})?;
    check_eq(
        "CapPrm",
        &status_mask(&v, "CapPrm")?,
        &mask(&["CAP_CHOWN", "CAP_KILL", "CAP_SETUID", "CAP_NET_RAW"]),
    )
}

/// A non-root process keeps exactly its ambient set across exec.
fn caps_ambient_nonroot(ctx: &Ctx) -> Result<()> {
    let v = caps(ctx, |b| {
        b.config["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
        b.config["process"]["capabilities"]["ambient"] = json!(["CAP_NET_RAW"]);
    })?;
    check_eq(
        "CapAmb",
        &status_mask(&v, "CapAmb")?,
        &mask(&["CAP_NET_RAW"]),
    )?;
    check_eq(
        "CapEff of a non-root process",
        &status_mask(&v, "CapEff")?,
        &mask(&["CAP_NET_RAW"]),
    )
}

fn chown_probe(ctx: &Ctx, caps: Value) -> Result<Value> {
    let mut b = ctx.bundle()?;
    std::fs::write(b.in_rootfs("/tmp/owned"), "x")?;
    b.config["process"]["capabilities"] =
        json!({ "bounding": caps, "effective": caps, "permitted": caps, "ambient": caps });
    ctx.probe(&mut b, &["chown", "/tmp/owned", "1000", "1000"])
}

fn caps_chown_denied(ctx: &Ctx) -> Result<()> {
    let v = chown_probe(ctx, json!(["CAP_KILL"]))?;
    check_eq(
        "chown without CAP_CHOWN",
        &v,
        &json!({ "ok": false, "errno": libc_eperm() }),
    )
}

fn caps_chown_allowed(ctx: &Ctx) -> Result<()> {
    let v = chown_probe(ctx, json!(["CAP_KILL", "CAP_CHOWN"]))?;
    check_eq("chown with CAP_CHOWN", &v, &json!({ "ok": true }))
}

pub fn libc_eperm() -> i32 {
    nix::errno::Errno::EPERM as i32
}

fn nnp_true(ctx: &Ctx) -> Result<()> {
    let v = ctx.info(|b| b.config["process"]["noNewPrivileges"] = json!(true))?;
    check_eq("NoNewPrivs", &v["status"]["NoNewPrivs"], &json!("1"))
}

fn nnp_false(ctx: &Ctx) -> Result<()> {
    let host = std::fs::read_to_string("/proc/self/status")?;
    if host
        .lines()
        .any(|l| l.starts_with("NoNewPrivs:") && l.ends_with('1'))
    {
        return Err(skip("the suite itself runs with no_new_privs set"));
    }
    let v = ctx.info(|b| b.config["process"]["noNewPrivileges"] = json!(false))?;
    check_eq("NoNewPrivs", &v["status"]["NoNewPrivs"], &json!("0"))
}

fn no_tty(ctx: &Ctx) -> Result<()> {
    let v = ctx.info(|_| {})?;
    check_eq(
        "isatty(0,1,2) with terminal false",
        &v["isatty"],
        &json!([false, false, false]),
    )
}

fn apparmor(ctx: &Ctx) -> Result<()> {
    if !std::path::Path::new("/sys/kernel/security/apparmor").exists() {
        return Err(skip("host has no AppArmor"));
    }
    let mut b = ctx.bundle()?;
    b.config["process"]["apparmorProfile"] = json!("unconfined");
    let v = ctx.probe(&mut b, &["read", "/proc/self/attr/current"])?;
    check_eq(
        "apparmor label",
        &v["data"].as_str().map(str::trim),
        &Some("unconfined"),
    )
}

fn selinux(ctx: &Ctx) -> Result<()> {
    if !std::path::Path::new("/sys/fs/selinux/enforce").exists() {
        return Err(skip("host has no SELinux"));
    }
    let label = "system_u:system_r:container_t:s0";
    let mut b = ctx.bundle()?;
    b.config["process"]["selinuxLabel"] = json!(label);
    let v = ctx.probe(&mut b, &["read", "/proc/self/attr/current"])?;
    check_eq(
        "selinux label",
        &v["data"].as_str().map(|s| s.trim_end_matches('\0').trim()),
        &Some(label),
    )
}
