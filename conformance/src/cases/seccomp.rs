//! config-linux.md seccomp: actions (errno, errnoRet, kill), argument
//! filters, and that unlisted syscalls keep working.

use anyhow::{ensure, Result};
use serde_json::{json, Value};

use super::{cases, check_eq};
use crate::case::{Case, Ctx};

pub fn cases() -> Vec<Case> {
    cases![
        "seccomp.filter_mode" => filter_mode,
        "seccomp.errno_default_eperm" => errno_default,
        "seccomp.errno_ret" => errno_ret,
        "seccomp.other_syscalls_allowed" => others_allowed,
        "seccomp.args_match" => args_match,
        "seccomp.args_no_match" => args_no_match,
        "seccomp.kill" => kill,
        "seccomp.trap" => trap,
        "seccomp.log_allows" => log_allows,
    ]
}

const EPERM: i32 = nix::errno::Errno::EPERM as i32;

fn rule(action: &str, extra: Value) -> Value {
    let mut r = json!({ "names": ["mkdir", "mkdirat"], "action": action });
    if let (Some(r), Some(e)) = (r.as_object_mut(), extra.as_object()) {
        r.extend(e.clone());
    }
    r
}

fn policy(rules: Vec<Value>) -> Value {
    json!({ "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"], "syscalls": rules })
}

fn probe(ctx: &Ctx, seccomp: Value, args: &[&str]) -> Result<Value> {
    let mut b = ctx.bundle()?;
    b.config["linux"]["seccomp"] = seccomp;
    ctx.probe(&mut b, args)
}

fn filter_mode(ctx: &Ctx) -> Result<()> {
    let v = probe(
        ctx,
        policy(vec![rule("SCMP_ACT_ERRNO", json!({}))]),
        &["info"],
    )?;
    check_eq(
        "Seccomp mode in /proc/self/status",
        &v["status"]["Seccomp"],
        &json!("2"),
    )
}

fn errno_default(ctx: &Ctx) -> Result<()> {
    let v = probe(
        ctx,
        policy(vec![rule("SCMP_ACT_ERRNO", json!({}))]),
        &["mkdir", "/tmp/d", "755"],
    )?;
    check_eq(
        "mkdir under SCMP_ACT_ERRNO",
        &v,
        &json!({ "ok": false, "errno": EPERM }),
    )
}

fn errno_ret(ctx: &Ctx) -> Result<()> {
    let v = probe(
        ctx,
        policy(vec![rule("SCMP_ACT_ERRNO", json!({ "errnoRet": 95 }))]),
        &["mkdir", "/tmp/d", "755"],
    )?;
    check_eq(
        "mkdir under errnoRet 95",
        &v,
        &json!({ "ok": false, "errno": 95 }),
    )
}

fn others_allowed(ctx: &Ctx) -> Result<()> {
    let v = probe(
        ctx,
        policy(vec![rule("SCMP_ACT_ERRNO", json!({}))]),
        &["write", "/tmp/file"],
    )?;
    check_eq("write with an unrelated rule", &v, &json!({ "ok": true }))
}

/// mkdir (mode is arg 1) and mkdirat (mode is arg 2) refused for mode 0711 only.
fn mode_rules() -> Value {
    policy(vec![
        json!({ "names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                "args": [{ "index": 1, "value": 0o711, "op": "SCMP_CMP_EQ" }] }),
        json!({ "names": ["mkdirat"], "action": "SCMP_ACT_ERRNO",
                "args": [{ "index": 2, "value": 0o711, "op": "SCMP_CMP_EQ" }] }),
    ])
}

fn args_match(ctx: &Ctx) -> Result<()> {
    let v = probe(ctx, mode_rules(), &["mkdir", "/tmp/d", "711"])?;
    check_eq(
        "mkdir 0711 with a rule on mode 0711",
        &v,
        &json!({ "ok": false, "errno": EPERM }),
    )
}

fn args_no_match(ctx: &Ctx) -> Result<()> {
    let v = probe(ctx, mode_rules(), &["mkdir", "/tmp/d", "755"])?;
    check_eq(
        "mkdir 0755 with a rule on mode 0711",
        &v,
        &json!({ "ok": true }),
    )
}

fn kill(ctx: &Ctx) -> Result<()> {
    killed_by_sigsys(ctx, "SCMP_ACT_KILL")
}

/// SCMP_ACT_TRAP sends SIGSYS, which the probe does not handle.
fn trap(ctx: &Ctx) -> Result<()> {
    killed_by_sigsys(ctx, "SCMP_ACT_TRAP")
}

fn log_allows(ctx: &Ctx) -> Result<()> {
    let v = probe(
        ctx,
        policy(vec![rule("SCMP_ACT_LOG", json!({}))]),
        &["mkdir", "/tmp/d", "755"],
    )?;
    check_eq("mkdir under SCMP_ACT_LOG", &v, &json!({ "ok": true }))
}

fn killed_by_sigsys(ctx: &Ctx, action: &str) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.config["linux"]["seccomp"] = policy(vec![rule(action, json!({}))]);
    b.probe(&["mkdir", "/tmp/d", "755"]);
    let out = ctx.run(&mut b)?;
    ensure!(
        !out.success() && !out.stdout.contains("\"ok\""),
        "mkdir under {action} returned: {}",
        out.describe()
    );
    check_eq("exit code (128 + SIGSYS)", &out.code(), &(128 + 31))
}
