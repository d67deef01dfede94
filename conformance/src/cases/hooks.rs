//! config.md hooks: each kind runs, in the lifecycle order runtime.md
//! gives, with the state on stdin, its args, env and timeout honoured, and
//! failures handled as the spec says. Hooks read their stdin to the end
//! before acting: a runtime must not depend on that, but crun 1.8 dies of
//! SIGPIPE when a hook exits before it has written the state.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

use super::{cases, check_eq, expect_ok};
use crate::bundle::Bundle;
use crate::case::{Case, Ctx};

pub fn cases() -> Vec<Case> {
    cases![
        "hooks.prestart_runs" => |c| runs(c, "prestart"),
        "hooks.create_runtime_runs" => |c| runs(c, "createRuntime"),
        "hooks.create_container_runs" => |c| runs(c, "createContainer"),
        "hooks.start_container_runs" => |c| runs(c, "startContainer"),
        "hooks.poststart_runs" => |c| runs(c, "poststart"),
        "hooks.poststop_runs" => |c| runs(c, "poststop"),
        "hooks.order" => order,
        "hooks.create_hooks_run_during_create" => during_create,
        "hooks.start_container_in_container" => start_container_in_container,
        "hooks.state_on_stdin_id" => |c| stdin_field(c, "id"),
        "hooks.state_on_stdin_bundle" => |c| stdin_field(c, "bundle"),
        "hooks.state_on_stdin_pid" => |c| stdin_field(c, "pid"),
        "hooks.state_on_stdin_annotations" => |c| stdin_field(c, "annotations"),
        "hooks.args" => args,
        "hooks.env" => env,
        "hooks.prestart_failure_fails" => |c| failing(c, "prestart"),
        "hooks.create_runtime_failure_fails" => |c| failing(c, "createRuntime"),
        "hooks.create_container_failure_fails" => |c| failing(c, "createContainer"),
        "hooks.poststop_failure_ignored" => poststop_failure,
        "hooks.timeout" => timeout,
    ]
}

const KINDS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// A bundle whose hooks of `kinds` append their name to `hooks.log`: host
/// hooks write the bundle's `hooklog/`, startContainer (run inside the
/// container) writes the same directory bind-mounted at /hooklog.
fn hooked(ctx: &Ctx, kinds: &[&str]) -> Result<(Bundle, PathBuf)> {
    let mut b = ctx.bundle()?;
    let dir = b.path().join("hooklog");
    std::fs::create_dir(&dir)?;
    let log = dir.join("hooks.log");
    for k in kinds {
        let target = if *k == "startContainer" {
            "/hooklog/hooks.log".into()
        } else {
            log.to_string_lossy().into_owned()
        };
        b.config["hooks"][*k] = json!([{ "path": "/bin/sh", "args": ["sh", "-c", format!("cat > /dev/null; echo {k} >> {target}")] }]);
    }
    b.add_mount(json!({ "destination": "/hooklog", "type": "bind", "source": dir.to_string_lossy(), "options": ["bind"] }));
    b.script("sleep 1000");
    b.save()?;
    Ok((b, log))
}

fn logged(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

/// Create, start, kill, delete; returns the log.
fn full_cycle(ctx: &Ctx, b: &Bundle, log: &Path) -> Result<Vec<String>> {
    let c = ctx.container(b);
    c.launch()?;
    expect_ok("kill", c.kill(Some("KILL"))?)?;
    c.wait_status("stopped")?;
    expect_ok("delete", c.delete(false)?)?;
    Ok(logged(log))
}

fn runs(ctx: &Ctx, kind: &str) -> Result<()> {
    let (b, log) = hooked(ctx, &[kind])?;
    let got = full_cycle(ctx, &b, &log)?;
    check_eq(&format!("{kind} hook runs"), &got, &vec![kind.to_string()])
}

fn order(ctx: &Ctx) -> Result<()> {
    let (b, log) = hooked(ctx, &KINDS)?;
    let got = full_cycle(ctx, &b, &log)?;
    let pos = |k: &str| got.iter().position(|g| g == k);
    for k in KINDS {
        ensure!(pos(k).is_some(), "{k} hook did not run: {got:?}");
    }
    for (a, z) in [
        ("prestart", "createContainer"),
        ("createRuntime", "createContainer"),
        ("createContainer", "startContainer"),
        ("startContainer", "poststart"),
        ("poststart", "poststop"),
    ] {
        ensure!(pos(a) < pos(z), "{a} must run before {z}: {got:?}");
    }
    Ok(())
}

fn during_create(ctx: &Ctx) -> Result<()> {
    let (b, log) = hooked(ctx, &["createRuntime", "createContainer", "startContainer"])?;
    let c = ctx.container(&b);
    c.create_ok()?;
    let mut got = logged(&log);
    got.sort();
    check_eq(
        "hooks run by create",
        &got,
        &vec!["createContainer".to_string(), "createRuntime".to_string()],
    )
}

fn start_container_in_container(ctx: &Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    // Resolved and run inside the container: the marker lands in its rootfs.
    b.config["hooks"]["startContainer"] = json!([{ "path": "/bin/sh", "args": ["sh", "-c", "cat > /dev/null; hostname > /tmp/hook-hostname"] }]);
    b.script("sleep 1000");
    b.save()?;
    let c = ctx.container(&b);
    c.launch()?;
    // `start` may return before the container's process gets to its hooks.
    let marker = b.in_rootfs("/tmp/hook-hostname");
    let got = crate::proc::wait_for(ctx.rt.timeout, || {
        std::fs::read_to_string(&marker)
            .ok()
            .filter(|s| !s.is_empty())
    })
    .context("startContainer hook left no marker in the rootfs")?;
    check_eq(
        "hostname seen by startContainer",
        got.trim(),
        "berth-conformance",
    )
}

fn stdin_field(ctx: &Ctx, field: &str) -> Result<()> {
    let mut b = ctx.bundle()?;
    let f = b.path().join("hook-state.json");
    b.config["annotations"] = json!({ "org.berth.hook": "yes" });
    b.config["hooks"]["poststart"] =
        json!([{ "path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}", f.display())] }]);
    b.script("sleep 1000");
    b.save()?;
    let c = ctx.container(&b);
    c.launch()?;
    let text = std::fs::read_to_string(&f).context("poststart hook wrote nothing")?;
    let v: Value = serde_json::from_str(&text)
        .with_context(|| format!("hook stdin is not state JSON: {text:?}"))?;
    match field {
        "id" => check_eq("state id on hook stdin", &v["id"], &json!(c.id)),
        "bundle" => check_eq(
            "state bundle on hook stdin",
            &v["bundle"],
            &json!(std::fs::canonicalize(b.path())?.to_string_lossy()),
        ),
        "pid" => check_eq("state pid on hook stdin", &v["pid"], &json!(c.pid()?)),
        _ => check_eq(
            "state annotations on hook stdin",
            &v["annotations"],
            &b.config["annotations"],
        ),
    }
}

fn one_hook(ctx: &Ctx, hook: Value) -> Result<(Bundle, PathBuf)> {
    let mut b = ctx.bundle()?;
    let out = b.path().join("hook.out");
    b.config["hooks"]["createRuntime"] = json!([hook]);
    b.script("sleep 1000");
    b.save()?;
    Ok((b, out))
}

fn args(ctx: &Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    let out = b.path().join("hook.out");
    let script = format!("cat > /dev/null; echo \"$0|$1|$2\" > {}", out.display());
    b.config["hooks"]["createRuntime"] =
        json!([{ "path": "/bin/sh", "args": ["sh", "-c", script, "zero", "one two", "three"] }]);
    b.script("sleep 1000");
    b.save()?;
    ctx.container(&b).create_ok()?;
    check_eq(
        "hook args",
        std::fs::read_to_string(&out).unwrap_or_default().trim(),
        "zero|one two|three",
    )
}

fn env(ctx: &Ctx) -> Result<()> {
    let (b, out) = one_hook(ctx, json!({}))?;
    let mut b = b;
    let script = format!("cat > /dev/null; echo \"$HOOK_VAR\" > {}", out.display());
    b.config["hooks"]["createRuntime"] = json!([{ "path": "/bin/sh", "args": ["sh", "-c", script], "env": ["HOOK_VAR=from-config"] }]);
    b.save()?;
    ctx.container(&b).create_ok()?;
    check_eq(
        "hook env",
        std::fs::read_to_string(&out).unwrap_or_default().trim(),
        "from-config",
    )
}

fn failing(ctx: &Ctx, kind: &str) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.config["hooks"][kind] = json!([{ "path": "/bin/sh", "args": ["sh", "-c", "exit 3"] }]);
    b.script("touch /tmp/ran; sleep 1000");
    super::create_or_start_fails(ctx, &mut b, &format!("a failing {kind} hook"))?;
    ensure!(
        !b.in_rootfs("/tmp/ran").exists(),
        "the user process ran although a {kind} hook failed"
    );
    Ok(())
}

fn poststop_failure(ctx: &Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.config["hooks"]["poststop"] = json!([{ "path": "/bin/sh", "args": ["sh", "-c", "exit 3"] }]);
    b.script("sleep 1000");
    b.save()?;
    let c = ctx.container(&b);
    c.launch()?;
    expect_ok("kill", c.kill(Some("KILL"))?)?;
    c.wait_status("stopped")?;
    let _ = c.delete(false)?;
    super::expect_err(
        "state after a delete whose poststop hook failed",
        ctx.rt.call(&["state", &c.id])?,
    )
}

fn timeout(ctx: &Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.config["hooks"]["createRuntime"] =
        json!([{ "path": "/bin/sh", "args": ["sh", "-c", "exec sleep 30"], "timeout": 1 }]);
    super::create_or_start_fails(
        ctx,
        &mut b,
        "a createRuntime hook that outlived its timeout",
    )
}
