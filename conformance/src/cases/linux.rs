//! config.md hostname/domainname and config-linux.md devices (default and
//! configured), masked and readonly paths, sysctl, personality.

use anyhow::{ensure, Result};
use serde_json::{json, Value};

use super::{cases, check_eq};
use crate::case::{skip, Case, Ctx};

pub fn cases() -> Vec<Case> {
    cases![
        "linux.hostname" => hostname,
        "linux.domainname" => domainname,
        "linux.hostname_without_uts_fails" => hostname_without_uts,
        "devices.default_null" => |c| default_dev(c, "/dev/null", 1, 3),
        "devices.default_zero" => |c| default_dev(c, "/dev/zero", 1, 5),
        "devices.default_full" => |c| default_dev(c, "/dev/full", 1, 7),
        "devices.default_random" => |c| default_dev(c, "/dev/random", 1, 8),
        "devices.default_urandom" => |c| default_dev(c, "/dev/urandom", 1, 9),
        "devices.default_tty" => |c| default_dev(c, "/dev/tty", 5, 0),
        "devices.default_ptmx" => default_ptmx,
        "devices.default_null_writable" => null_writable,
        "devices.symlink_fd" => |c| dev_link(c, "/dev/fd", "/proc/self/fd"),
        "devices.symlink_stdin" => |c| dev_link(c, "/dev/stdin", "/proc/self/fd/0"),
        "devices.symlink_stdout" => |c| dev_link(c, "/dev/stdout", "/proc/self/fd/1"),
        "devices.symlink_stderr" => |c| dev_link(c, "/dev/stderr", "/proc/self/fd/2"),
        "devices.config_char" => config_char,
        "devices.config_block" => config_block,
        "devices.config_fifo" => config_fifo,
        "devices.config_file_mode" => config_mode,
        "devices.config_uid_gid" => config_owner,
        "masked.file" => masked_file,
        "masked.dir" => masked_dir,
        "masked.missing_path_ignored" => masked_missing,
        "masked.proc_kcore" => masked_kcore,
        "masked.proc_keys" => |c| masked_default(c, "/proc/keys"),
        "masked.proc_timer_list" => |c| masked_default(c, "/proc/timer_list"),
        "masked.sys_firmware" => masked_firmware,
        "readonly.path" => readonly_path,
        "readonly.proc_sys" => readonly_proc_sys,
        "readonly.proc_sysrq_trigger" => readonly_sysrq,
        "readonly.missing_path_ignored" => readonly_missing,
        "sysctl.net_ipv4_ip_forward" => |c| sysctl(c, "net.ipv4.ip_forward", "1"),
        "sysctl.net_core_somaxconn" => |c| sysctl(c, "net.core.somaxconn", "1000"),
        "sysctl.kernel_msgmax" => |c| sysctl(c, "kernel.msgmax", "4096"),
        "personality.linux32" => personality_linux32,
        "personality.linux" => personality_linux,
    ]
}

fn hostname(ctx: &Ctx) -> Result<()> {
    let v = ctx.info(|b| b.config["hostname"] = json!("berth-conf-host"))?;
    check_eq("hostname", &v["hostname"], &json!("berth-conf-host"))
}

fn domainname(ctx: &Ctx) -> Result<()> {
    let v = ctx.info(|b| b.config["domainname"] = json!("berth.example"))?;
    check_eq("domainname", &v["domainname"], &json!("berth.example"))
}

fn hostname_without_uts(ctx: &Ctx) -> Result<()> {
    // The host's own name: a runtime that wrongly applies it changes nothing.
    let host = nix::unistd::gethostname()?.to_string_lossy().into_owned();
    let mut b = ctx.bundle()?;
    b.without_namespace("uts");
    b.config["hostname"] = json!(host);
    super::create_or_start_fails(ctx, &mut b, "a hostname without a new uts namespace")
}

fn stat(ctx: &Ctx, edit: impl FnOnce(&mut crate::bundle::Bundle), path: &str) -> Result<Value> {
    let mut b = ctx.bundle()?;
    edit(&mut b);
    ctx.probe(&mut b, &["stat", path])
}

fn default_dev(ctx: &Ctx, path: &str, major: u64, minor: u64) -> Result<()> {
    let v = stat(ctx, |_| {}, path)?;
    check_eq(
        path,
        &(v["kind"].clone(), v["major"].clone(), v["minor"].clone()),
        &(json!("char"), json!(major), json!(minor)),
    )
}

fn default_ptmx(ctx: &Ctx) -> Result<()> {
    let v = stat(ctx, |_| {}, "/dev/ptmx")?;
    let ok = v["link"] == json!("pts/ptmx")
        || v["link"] == json!("/dev/pts/ptmx")
        || (v["kind"] == json!("char") && v["major"] == json!(5) && v["minor"] == json!(2));
    ensure!(
        ok,
        "/dev/ptmx is neither a link to pts/ptmx nor char 5:2: {v}"
    );
    Ok(())
}

fn null_writable(ctx: &Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    let v = ctx.probe(&mut b, &["open", "/dev/null", "rw"])?;
    check_eq("open /dev/null rw", &v, &json!({ "ok": true }))
}

fn dev_link(ctx: &Ctx, path: &str, target: &str) -> Result<()> {
    let v = stat(ctx, |_| {}, path)?;
    check_eq(&format!("{path} link"), &v["link"], &json!(target))
}

fn device(ctx: &Ctx, dev: Value) -> Result<Value> {
    let path = dev["path"].as_str().unwrap_or_default().to_string();
    stat(ctx, |b| b.config["linux"]["devices"] = json!([dev]), &path)
}

fn config_char(ctx: &Ctx) -> Result<()> {
    let v = device(
        ctx,
        json!({ "path": "/dev/berth-char", "type": "c", "major": 1, "minor": 3 }),
    )?;
    check_eq(
        "device",
        &(v["kind"].clone(), v["major"].clone(), v["minor"].clone()),
        &(json!("char"), json!(1), json!(3)),
    )
}

fn config_block(ctx: &Ctx) -> Result<()> {
    let v = device(
        ctx,
        json!({ "path": "/dev/berth-block", "type": "b", "major": 7, "minor": 200 }),
    )?;
    check_eq(
        "device",
        &(v["kind"].clone(), v["major"].clone(), v["minor"].clone()),
        &(json!("block"), json!(7), json!(200)),
    )
}

fn config_fifo(ctx: &Ctx) -> Result<()> {
    let v = device(ctx, json!({ "path": "/dev/berth-fifo", "type": "p" }))?;
    check_eq("device kind", &v["kind"], &json!("fifo"))
}

fn config_mode(ctx: &Ctx) -> Result<()> {
    let v = device(
        ctx,
        json!({ "path": "/dev/berth-char", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640 }),
    )?;
    check_eq("device mode", &v["mode"], &json!(0o640))
}

fn config_owner(ctx: &Ctx) -> Result<()> {
    let v = device(
        ctx,
        json!({ "path": "/dev/berth-char", "type": "c", "major": 1, "minor": 3, "uid": 1000, "gid": 4242 }),
    )?;
    check_eq(
        "device owner",
        &(v["uid"].clone(), v["gid"].clone()),
        &(json!(1000), json!(4242)),
    )
}

fn masked_file(ctx: &Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    std::fs::write(b.in_rootfs("/etc/secret"), "do-not-read")?;
    b.config["linux"]["maskedPaths"] = json!(["/etc/secret"]);
    let v = ctx.probe(&mut b, &["read", "/etc/secret"])?;
    ensure!(
        v["data"] != json!("do-not-read"),
        "masked file still readable: {v}"
    );
    Ok(())
}

fn masked_dir(ctx: &Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    std::fs::create_dir_all(b.in_rootfs("/etc/secretdir"))?;
    std::fs::write(b.in_rootfs("/etc/secretdir/file"), "x")?;
    b.config["linux"]["maskedPaths"] = json!(["/etc/secretdir"]);
    let v = ctx.probe(&mut b, &["ls", "/etc/secretdir"])?;
    ensure!(
        !v["entries"]
            .as_array()
            .is_some_and(|e| e.contains(&json!("file"))),
        "masked directory still lists its content: {v}"
    );
    Ok(())
}

fn masked_missing(ctx: &Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.config["linux"]["maskedPaths"] = json!(["/no/such/path"]);
    let v = ctx.probe(&mut b, &["stat", "/no/such/path"])?;
    check_eq("missing masked path", &v["exists"], &json!(false))
}

fn masked_kcore(ctx: &Ctx) -> Result<()> {
    let v = stat(ctx, |_| {}, "/proc/kcore")?;
    ensure!(
        v["exists"] == json!(false) || v["size"] == json!(0),
        "/proc/kcore is not masked: {v}"
    );
    Ok(())
}

/// A default masked file reads as empty (it is /dev/null or gone).
fn masked_default(ctx: &Ctx, path: &str) -> Result<()> {
    let mut b = ctx.bundle()?;
    let v = ctx.probe(&mut b, &["read", path])?;
    ensure!(
        v["ok"] == json!(false) || v["data"] == json!(""),
        "{path} is not masked: {v}"
    );
    Ok(())
}

fn masked_firmware(ctx: &Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    let v = ctx.probe(&mut b, &["ls", "/sys/firmware"])?;
    ensure!(
        v["ok"] == json!(false) || v["entries"] == json!([]),
        "/sys/firmware is not masked: {v}"
    );
    Ok(())
}

fn readonly_sysrq(ctx: &Ctx) -> Result<()> {
    // Opening for write fails on the read-only bind before anything is written.
    if !std::path::Path::new("/proc/sysrq-trigger").exists() {
        return Err(skip(
            "host kernel has no /proc/sysrq-trigger (CONFIG_MAGIC_SYSRQ off)",
        ));
    }
    let mut b = ctx.bundle()?;
    let v = ctx.probe(&mut b, &["open", "/proc/sysrq-trigger", "w"])?;
    check_eq(
        "open /proc/sysrq-trigger for writing",
        &v,
        &json!({ "ok": false, "errno": EROFS }),
    )
}

fn ro_write(ctx: &Ctx, edit: impl FnOnce(&mut crate::bundle::Bundle), path: &str) -> Result<Value> {
    let mut b = ctx.bundle()?;
    edit(&mut b);
    ctx.probe(&mut b, &["write", path])
}

const EROFS: i32 = nix::errno::Errno::EROFS as i32;

fn readonly_path(ctx: &Ctx) -> Result<()> {
    let v = ro_write(
        ctx,
        |b| {
            let _ = std::fs::create_dir_all(b.in_rootfs("/etc/rodir"));
            b.config["linux"]["readonlyPaths"] = json!(["/etc/rodir"]);
        },
        "/etc/rodir/file",
    )?;
    check_eq(
        "write under a readonly path",
        &v,
        &json!({ "ok": false, "errno": EROFS }),
    )
}

fn readonly_proc_sys(ctx: &Ctx) -> Result<()> {
    let v = ro_write(ctx, |_| {}, "/proc/sys/kernel/hostname")?;
    check_eq(
        "write to /proc/sys",
        &v,
        &json!({ "ok": false, "errno": EROFS }),
    )
}

fn readonly_missing(ctx: &Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.config["linux"]["readonlyPaths"] = json!(["/no/such/path"]);
    let v = ctx.probe(&mut b, &["stat", "/no/such/path"])?;
    check_eq("missing readonly path", &v["exists"], &json!(false))
}

fn sysctl(ctx: &Ctx, key: &str, value: &str) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.config["linux"]["sysctl"] = json!({ key: value });
    let v = ctx.probe(
        &mut b,
        &["read", &format!("/proc/sys/{}", key.replace('.', "/"))],
    )?;
    check_eq(key, &v["data"].as_str().map(str::trim), &Some(value))
}

const PER_LINUX32: i64 = 0x0008;

fn personality_linux32(ctx: &Ctx) -> Result<()> {
    if std::env::consts::ARCH != "x86_64" && std::env::consts::ARCH != "aarch64" {
        return Err(skip(
            "LINUX32 personality is only checked on 64-bit x86 and arm",
        ));
    }
    let v = ctx.info(|b| b.config["linux"]["personality"] = json!({ "domain": "LINUX32" }))?;
    check_eq(
        "personality",
        &v["personality"].as_i64().map(|p| p & 0xff),
        &Some(PER_LINUX32),
    )?;
    ensure!(
        v["machine"] != json!(std::env::consts::ARCH),
        "uname machine still {} under LINUX32",
        v["machine"]
    );
    Ok(())
}

fn personality_linux(ctx: &Ctx) -> Result<()> {
    let v = ctx.info(|b| b.config["linux"]["personality"] = json!({ "domain": "LINUX" }))?;
    check_eq(
        "personality",
        &v["personality"].as_i64().map(|p| p & 0xff),
        &Some(0),
    )
}
