//! runtime.md: state, the lifecycle, and the errors each operation MUST
//! give in the wrong state.

use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use serde_json::json;

use super::{cases, check_eq, expect_err, expect_ok};
use crate::bundle::Bundle;
use crate::case::{Case, Ctx};
use crate::proc::wait_for;

pub fn cases() -> Vec<Case> {
    cases![
        "lifecycle.state_created" => state_created,
        "lifecycle.state_oci_version" => state_oci_version,
        "lifecycle.state_id" => state_id,
        "lifecycle.state_bundle" => state_bundle,
        "lifecycle.state_pid_created" => state_pid_created,
        "lifecycle.state_annotations" => state_annotations,
        "lifecycle.create_does_not_run_process" => create_does_not_run,
        "lifecycle.start_runs_process" => start_runs_process,
        "lifecycle.state_running" => state_running,
        "lifecycle.state_stopped" => state_stopped,
        "lifecycle.create_duplicate_id_fails" => create_duplicate_fails,
        "lifecycle.create_duplicate_id_keeps_original" => create_duplicate_keeps,
        "lifecycle.start_unknown_id_fails" => start_unknown,
        "lifecycle.state_unknown_id_fails" => state_unknown,
        "lifecycle.kill_unknown_id_fails" => kill_unknown,
        "lifecycle.delete_unknown_id_fails" => delete_unknown,
        "lifecycle.start_running_fails" => start_running_fails,
        "lifecycle.start_stopped_fails" => start_stopped_fails,
        "lifecycle.delete_running_fails" => delete_running_fails,
        "lifecycle.delete_running_keeps_container" => delete_running_keeps,
        "lifecycle.delete_stopped" => delete_stopped,
        "lifecycle.state_after_delete_fails" => state_after_delete,
        "lifecycle.kill_stopped_fails" => kill_stopped_fails,
        "lifecycle.kill_created" => kill_created,
        "lifecycle.kill_running_sigkill" => kill_sigkill,
        "lifecycle.kill_running_sigterm" => kill_sigterm,
        "lifecycle.kill_default_is_sigterm" => kill_default,
        "lifecycle.kill_signal_name" => kill_name,
        "lifecycle.kill_signal_sig_prefix" => kill_sig_prefix,
        "lifecycle.kill_signal_number" => kill_number,
        "lifecycle.pid_file_written" => pid_file_written,
        "lifecycle.pid_file_matches_state" => pid_file_matches,
        "lifecycle.pid_is_in_new_pid_namespace" => pid_new_ns,
        "lifecycle.create_stdio_inherited" => stdio_inherited,
        "lifecycle.create_missing_config_fails" => missing_config,
        "lifecycle.create_invalid_config_fails" => invalid_config,
        "lifecycle.create_missing_root_fails" => missing_root,
        "lifecycle.process_not_found_fails" => process_not_found,
    ]
}

const SLEEP: &str = "sleep 1000";
/// A process that exits 0 on TERM and marks USR1 in /tmp (pid 1 of a pid
/// namespace only gets signals it has a handler for).
const TRAPS: &str =
    "trap 'touch /tmp/usr1' USR1; trap 'touch /tmp/term; exit 0' TERM; touch /tmp/ready; while :; do sleep 0.05; done";

fn bundle(ctx: &Ctx, script: &str) -> Result<Bundle> {
    let mut b = ctx.bundle()?;
    b.script(script);
    b.save()?;
    Ok(b)
}

fn state_created(ctx: &Ctx) -> Result<()> {
    let b = bundle(ctx, SLEEP)?;
    let c = ctx.container(&b);
    c.create_ok()?;
    check_eq("status after create", c.status()?.as_str(), "created")
}

fn state_oci_version(ctx: &Ctx) -> Result<()> {
    let b = bundle(ctx, SLEEP)?;
    let c = ctx.container(&b);
    c.create_ok()?;
    let v = c.state()?;
    let ver = v["ociVersion"]
        .as_str()
        .context("state has no string ociVersion")?;
    ensure!(
        ver.starts_with("1."),
        "ociVersion {ver:?} is not a 1.x version"
    );
    Ok(())
}

fn state_id(ctx: &Ctx) -> Result<()> {
    let b = bundle(ctx, SLEEP)?;
    let c = ctx.container(&b);
    c.create_ok()?;
    check_eq("state id", &c.state()?["id"], &json!(c.id))
}

fn state_bundle(ctx: &Ctx) -> Result<()> {
    let b = bundle(ctx, SLEEP)?;
    let c = ctx.container(&b);
    c.create_ok()?;
    let want = std::fs::canonicalize(b.path())?;
    let got = c.state()?["bundle"]
        .as_str()
        .map(std::path::PathBuf::from)
        .context("state has no bundle")?;
    ensure!(
        got.is_absolute(),
        "state bundle {} is not absolute",
        got.display()
    );
    check_eq(
        "state bundle",
        &std::fs::canonicalize(&got).unwrap_or(got),
        &want,
    )
}

fn state_pid_created(ctx: &Ctx) -> Result<()> {
    let b = bundle(ctx, SLEEP)?;
    let c = ctx.container(&b);
    c.create_ok()?;
    let pid = c.pid()?;
    ensure!(
        pid > 0,
        "state pid {pid} of a created container is not positive"
    );
    ensure!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "state pid {pid} does not exist on the host"
    );
    Ok(())
}

fn state_annotations(ctx: &Ctx) -> Result<()> {
    let mut b = bundle(ctx, SLEEP)?;
    b.config["annotations"] = json!({ "org.berth.conformance": "yes", "com.example.key": "value" });
    b.save()?;
    let c = ctx.container(&b);
    c.create_ok()?;
    let st = c.state()?;
    check_eq(
        "state annotations",
        &st["annotations"],
        &b.config["annotations"],
    )
}

fn create_does_not_run(ctx: &Ctx) -> Result<()> {
    let b = bundle(ctx, "touch /tmp/started; sleep 1000")?;
    let c = ctx.container(&b);
    c.create_ok()?;
    std::thread::sleep(Duration::from_millis(300));
    ensure!(
        !b.in_rootfs("/tmp/started").exists(),
        "the user process ran before start"
    );
    Ok(())
}

fn start_runs_process(ctx: &Ctx) -> Result<()> {
    let b = bundle(ctx, "touch /tmp/started; sleep 1000")?;
    let c = ctx.container(&b);
    c.launch()?;
    let f = b.in_rootfs("/tmp/started");
    wait_for(ctx.rt.timeout, || f.exists().then_some(()))
        .context("the user process did not run after start")
}

fn state_running(ctx: &Ctx) -> Result<()> {
    let b = bundle(ctx, SLEEP)?;
    let c = ctx.container(&b);
    c.launch()?;
    check_eq("status after start", c.status()?.as_str(), "running")
}

fn state_stopped(ctx: &Ctx) -> Result<()> {
    let b = bundle(ctx, "exit 0")?;
    let c = ctx.container(&b);
    c.launch()?;
    c.wait_status("stopped")
}

fn create_duplicate_fails(ctx: &Ctx) -> Result<()> {
    let b = bundle(ctx, SLEEP)?;
    let c = ctx.container(&b);
    c.create_ok()?;
    expect_err("create with an existing id", create_again(ctx, &c.id)?)
}

fn create_duplicate_keeps(ctx: &Ctx) -> Result<()> {
    let b = bundle(ctx, SLEEP)?;
    let c = ctx.container(&b);
    c.create_ok()?;
    let before = c.state()?;
    let _ = create_again(ctx, &c.id)?;
    let after = c.state()?;
    check_eq("status", &after["status"], &before["status"])?;
    check_eq("pid", &after["pid"], &before["pid"])?;
    check_eq("bundle", &after["bundle"], &before["bundle"])
}

/// `create` of another bundle under an id already in use (no Container:
/// its drop would delete the original).
fn create_again(ctx: &Ctx, id: &str) -> Result<crate::proc::Output> {
    let b2 = bundle(ctx, SLEEP)?;
    let bs = b2.path().to_string_lossy().into_owned();
    crate::proc::run(
        &mut ctx.rt.command(&["create", "--bundle", &bs, id]),
        None,
        ctx.rt.timeout,
    )
}

fn unknown(ctx: &Ctx, verb: &[&str]) -> Result<()> {
    let id = ctx.id();
    let mut args = verb.to_vec();
    args.push(&id);
    expect_err(
        &format!("{} of an unknown id", verb[0]),
        ctx.rt.call(&args)?,
    )
}

fn start_unknown(ctx: &Ctx) -> Result<()> {
    unknown(ctx, &["start"])
}

fn state_unknown(ctx: &Ctx) -> Result<()> {
    unknown(ctx, &["state"])
}

fn kill_unknown(ctx: &Ctx) -> Result<()> {
    let id = ctx.id();
    expect_err(
        "kill of an unknown id",
        ctx.rt.call(&["kill", &id, "KILL"])?,
    )
}

fn delete_unknown(ctx: &Ctx) -> Result<()> {
    unknown(ctx, &["delete"])
}

fn start_running_fails(ctx: &Ctx) -> Result<()> {
    let b = bundle(ctx, SLEEP)?;
    let c = ctx.container(&b);
    c.launch()?;
    expect_err("start of a running container", c.start()?)
}

fn start_stopped_fails(ctx: &Ctx) -> Result<()> {
    let b = bundle(ctx, "exit 0")?;
    let c = ctx.container(&b);
    c.launch()?;
    c.wait_status("stopped")?;
    expect_err("start of a stopped container", c.start()?)
}

fn delete_running_fails(ctx: &Ctx) -> Result<()> {
    let b = bundle(ctx, SLEEP)?;
    let c = ctx.container(&b);
    c.launch()?;
    expect_err("delete of a running container", c.delete(false)?)
}

fn delete_running_keeps(ctx: &Ctx) -> Result<()> {
    let b = bundle(ctx, SLEEP)?;
    let c = ctx.container(&b);
    c.launch()?;
    let pid = c.pid()?;
    let _ = c.delete(false)?;
    check_eq(
        "status after a refused delete",
        c.status()?.as_str(),
        "running",
    )?;
    ensure!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the process {pid} is gone after a refused delete"
    );
    Ok(())
}

fn delete_stopped(ctx: &Ctx) -> Result<()> {
    let b = bundle(ctx, "exit 0")?;
    let c = ctx.container(&b);
    c.launch()?;
    c.wait_status("stopped")?;
    expect_ok("delete of a stopped container", c.delete(false)?)
}

fn state_after_delete(ctx: &Ctx) -> Result<()> {
    let b = bundle(ctx, "exit 0")?;
    let c = ctx.container(&b);
    c.launch()?;
    c.wait_status("stopped")?;
    expect_ok("delete", c.delete(false)?)?;
    expect_err("state after delete", ctx.rt.call(&["state", &c.id])?)
}

fn kill_stopped_fails(ctx: &Ctx) -> Result<()> {
    let b = bundle(ctx, "exit 0")?;
    let c = ctx.container(&b);
    c.launch()?;
    c.wait_status("stopped")?;
    expect_err("kill of a stopped container", c.kill(Some("KILL"))?)
}

fn kill_created(ctx: &Ctx) -> Result<()> {
    let b = bundle(ctx, SLEEP)?;
    let c = ctx.container(&b);
    c.create_ok()?;
    expect_ok("kill KILL of a created container", c.kill(Some("KILL"))?)?;
    c.wait_status("stopped")
}

fn kill_sigkill(ctx: &Ctx) -> Result<()> {
    let b = bundle(ctx, SLEEP)?;
    let c = ctx.container(&b);
    c.launch()?;
    expect_ok("kill KILL", c.kill(Some("KILL"))?)?;
    c.wait_status("stopped")
}

/// Send `sig` (None: the default) to a trapping process; `marker` must appear.
fn signal_marker(ctx: &Ctx, sig: Option<&str>, marker: &str) -> Result<()> {
    let b = bundle(ctx, TRAPS)?;
    let c = ctx.container(&b);
    c.launch()?;
    // Signal only once the shell has installed its traps.
    let ready = b.in_rootfs("/tmp/ready");
    wait_for(ctx.rt.timeout, || ready.exists().then_some(()))
        .context("the process never got ready")?;
    expect_ok(&format!("kill {sig:?}"), c.kill(sig)?)?;
    let f = b.in_rootfs(marker);
    if wait_for(Duration::from_secs(5), || f.exists().then_some(())).is_none() {
        bail!("signal {sig:?} did not reach the process ({marker} missing)");
    }
    Ok(())
}

fn kill_sigterm(ctx: &Ctx) -> Result<()> {
    signal_marker(ctx, Some("TERM"), "/tmp/term")
}

fn kill_default(ctx: &Ctx) -> Result<()> {
    signal_marker(ctx, None, "/tmp/term")
}

fn kill_name(ctx: &Ctx) -> Result<()> {
    signal_marker(ctx, Some("USR1"), "/tmp/usr1")
}

fn kill_sig_prefix(ctx: &Ctx) -> Result<()> {
    signal_marker(ctx, Some("SIGUSR1"), "/tmp/usr1")
}

fn kill_number(ctx: &Ctx) -> Result<()> {
    signal_marker(ctx, Some("10"), "/tmp/usr1")
}

fn pid_file_written(ctx: &Ctx) -> Result<()> {
    let b = bundle(ctx, SLEEP)?;
    let c = ctx.container(&b);
    c.create_ok()?;
    let text = std::fs::read_to_string(&c.pid_file).context("pid file missing after create")?;
    let pid: i32 = text
        .trim()
        .parse()
        .with_context(|| format!("pid file holds {text:?}, not a pid"))?;
    ensure!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "pid {pid} from the pid file does not exist"
    );
    Ok(())
}

fn pid_file_matches(ctx: &Ctx) -> Result<()> {
    let b = bundle(ctx, SLEEP)?;
    let c = ctx.container(&b);
    c.create_ok()?;
    let text = std::fs::read_to_string(&c.pid_file).context("pid file missing after create")?;
    check_eq(
        "pid file vs state pid",
        &text.trim().parse::<i64>().ok(),
        &Some(c.pid()? as i64),
    )
}

fn pid_new_ns(ctx: &Ctx) -> Result<()> {
    let b = bundle(ctx, SLEEP)?;
    let c = ctx.container(&b);
    c.create_ok()?;
    let theirs = std::fs::read_link(format!("/proc/{}/ns/pid", c.pid()?))?;
    let ours = std::fs::read_link("/proc/self/ns/pid")?;
    ensure!(theirs != ours, "state pid is in the host pid namespace");
    Ok(())
}

fn stdio_inherited(ctx: &Ctx) -> Result<()> {
    let b = bundle(ctx, "echo hello-from-container")?;
    let c = ctx.container(&b);
    c.launch()?;
    c.wait_status("stopped")?;
    let out = c.output();
    ensure!(
        out.contains("hello-from-container"),
        "stdout given to create got {out:?}"
    );
    Ok(())
}

fn create_expect_err(ctx: &Ctx, b: &Bundle, what: &str) -> Result<()> {
    let c = ctx.container(b);
    expect_err(what, c.create()?)
}

fn missing_config(ctx: &Ctx) -> Result<()> {
    let b = bundle(ctx, SLEEP)?;
    std::fs::remove_file(b.path().join("config.json"))?;
    create_expect_err(ctx, &b, "create without config.json")
}

fn invalid_config(ctx: &Ctx) -> Result<()> {
    let b = bundle(ctx, SLEEP)?;
    std::fs::write(b.path().join("config.json"), "{ this is not json")?;
    create_expect_err(ctx, &b, "create with a malformed config.json")
}

fn missing_root(ctx: &Ctx) -> Result<()> {
    let mut b = bundle(ctx, SLEEP)?;
    b.config["root"]["path"] = json!("no-such-rootfs");
    b.save()?;
    create_expect_err(ctx, &b, "create with a missing root.path")
}

fn process_not_found(ctx: &Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.args(&["/no/such/binary"]);
    super::create_or_start_fails(ctx, &mut b, "that args[0] does not exist")
}
