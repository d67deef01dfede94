//! The runc CLI contract that containerd's go-runc, dockerd and podman rely
//! on beyond the spec's operations: run, exec, list, ps, pause/resume,
//! delete --force, spec, features.

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};

use super::{cases, check_eq, expect_err, expect_ok};
use crate::bundle::{Bundle, HELPER_IN_ROOTFS};
use crate::case::{skip, Case, Ctx};
use crate::proc::wait_for;
use crate::runtime::Container;

pub fn cases() -> Vec<Case> {
    cases![
        "cli.run_exit_code" => run_exit_code,
        "cli.run_stdout" => run_stdout,
        "cli.delete_force_running" => delete_force_running,
        "cli.list_json" => list_json,
        "cli.ps_json" => ps_json,
        "cli.exec_output" => exec_output,
        "cli.exec_exit_code" => exec_exit_code,
        "cli.exec_process_json" => exec_process_json,
        "cli.exec_joins_namespaces" => exec_joins_namespaces,
        "cli.exec_detach_pid_file" => exec_detach,
        "cli.exec_stopped_fails" => exec_stopped_fails,
        "cli.pause_resume" => pause_resume,
        "cli.kill_all" => kill_all,
        "cli.spec_writes_config" => spec_writes_config,
        "cli.features_json" => features_json,
    ]
}

fn running<'a>(ctx: &'a Ctx, b: &mut Bundle) -> Result<Container<'a>> {
    b.script("sleep 1000");
    b.save()?;
    let c = ctx.container(b);
    c.launch()?;
    Ok(c)
}

fn run_exit_code(ctx: &Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.script("exit 42");
    check_eq("run exit code", &ctx.run(&mut b)?.code(), &42)
}

fn run_stdout(ctx: &Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.script("echo out-line; echo err-line >&2");
    let out = ctx.run(&mut b)?;
    expect_ok("run", &out)?;
    ensure!(out.stdout.contains("out-line"), "stdout: {:?}", out.stdout);
    ensure!(out.stderr.contains("err-line"), "stderr: {:?}", out.stderr);
    Ok(())
}

fn delete_force_running(ctx: &Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    let c = running(ctx, &mut b)?;
    let pid = c.pid()?;
    expect_ok("delete --force of a running container", c.delete(true)?)?;
    expect_err(
        "state after delete --force",
        ctx.rt.call(&["state", &c.id])?,
    )?;
    let gone = wait_for(ctx.rt.timeout, || {
        let _ = nix::sys::wait::waitpid(
            nix::unistd::Pid::from_raw(pid),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        );
        (!std::path::Path::new(&format!("/proc/{pid}")).exists()).then_some(())
    });
    gone.with_context(|| format!("process {pid} still exists after delete --force"))
}

fn list_json(ctx: &Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    let c = running(ctx, &mut b)?;
    let out = ctx.rt.call(&["list", "--format", "json"])?;
    expect_ok("list --format json", &out)?;
    let v: Value = serde_json::from_str(&out.stdout)
        .with_context(|| format!("list output is not JSON: {}", out.stdout))?;
    let found = v
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["id"] == json!(c.id));
    let e = found.with_context(|| format!("list does not show {}: {}", c.id, out.stdout))?;
    check_eq("listed status", &e["status"], &json!("running"))
}

fn ps_json(ctx: &Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    let c = running(ctx, &mut b)?;
    let out = ctx.rt.call(&["ps", "--format", "json", &c.id])?;
    ensure!(out.success(), "ps failed: {}", out.describe());
    let v: Value = serde_json::from_str(&out.stdout)
        .with_context(|| format!("ps output is not JSON: {}", out.stdout))?;
    let pid = c.pid()? as i64;
    ensure!(
        v.as_array()
            .is_some_and(|a| a.iter().any(|p| p.as_i64() == Some(pid))),
        "ps {} lacks init pid {pid}",
        out.stdout
    );
    Ok(())
}

fn exec_output(ctx: &Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    let c = running(ctx, &mut b)?;
    let out = ctx.rt.call(&["exec", &c.id, "echo", "exec-output"])?;
    ensure!(
        out.success() && out.stdout.contains("exec-output"),
        "exec: {}",
        out.describe()
    );
    Ok(())
}

fn exec_exit_code(ctx: &Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    let c = running(ctx, &mut b)?;
    let out = ctx.rt.call(&["exec", &c.id, "sh", "-c", "exit 7"])?;
    check_eq("exec exit code", &out.code(), &7)
}

fn exec_process_json(ctx: &Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    let c = running(ctx, &mut b)?;
    let mut p = b.config["process"].clone();
    p["args"] = json!([HELPER_IN_ROOTFS, "info"]);
    p["env"] = json!(["PATH=/bin", "EXEC_MARK=yes"]);
    p["cwd"] = json!("/tmp");
    p["user"] = json!({ "uid": 1000, "gid": 1000 });
    let f = b.path().join("process.json");
    std::fs::write(&f, serde_json::to_vec(&p)?)?;
    let out = ctx
        .rt
        .call(&["exec", "--process", &f.to_string_lossy(), &c.id])?;
    ensure!(out.success(), "exec --process failed: {}", out.describe());
    let v: Value = serde_json::from_str(out.stdout.trim())
        .with_context(|| format!("probe output: {}", out.stdout))?;
    check_eq("exec cwd", &v["cwd"], &json!("/tmp"))?;
    check_eq("exec uid", &v["uid"], &json!(1000))?;
    check_eq("exec gid", &v["gid"], &json!(1000))?;
    ensure!(
        v["env"]
            .as_array()
            .is_some_and(|e| e.contains(&json!("EXEC_MARK=yes"))),
        "exec env: {}",
        v["env"]
    );
    Ok(())
}

fn exec_joins_namespaces(ctx: &Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    let c = running(ctx, &mut b)?;
    let out = ctx.rt.call(&["exec", &c.id, HELPER_IN_ROOTFS, "info"])?;
    ensure!(out.success(), "exec failed: {}", out.describe());
    let v: Value = serde_json::from_str(out.stdout.trim())
        .with_context(|| format!("probe output: {}", out.stdout))?;
    let pid = c.pid()?;
    for ns in ["pid", "net", "ipc", "uts", "mnt"] {
        let init = std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))?;
        check_eq(
            &format!("{ns} namespace of exec vs init"),
            &v["ns"][ns],
            &json!(init.to_string_lossy()),
        )?;
    }
    Ok(())
}

fn exec_detach(ctx: &Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    let c = running(ctx, &mut b)?;
    let pf = b.path().join("exec.pid");
    let pfs = pf.to_string_lossy().into_owned();
    let out = ctx.rt.call(&[
        "exec",
        "--detach",
        "--pid-file",
        &pfs,
        &c.id,
        "sleep",
        "1000",
    ])?;
    expect_ok("exec --detach", out)?;
    let text = std::fs::read_to_string(&pf).context("exec pid file missing")?;
    let pid: i32 = text
        .trim()
        .parse()
        .with_context(|| format!("exec pid file holds {text:?}"))?;
    // The pid may be written just before the process execs: wait for it.
    let comm = || {
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let _ = wait_for(ctx.rt.timeout, || (comm() == "sleep").then_some(()));
    let res = check_eq("exec'd process", comm().as_str(), "sleep");
    // Reap the detached process (reparented to the suite) before the
    // container goes, so the runtime can remove its cgroup.
    let p = nix::unistd::Pid::from_raw(pid);
    if nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGKILL).is_ok() {
        let _ = nix::sys::wait::waitpid(p, None);
    }
    res
}

fn exec_stopped_fails(ctx: &Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.script("exit 0");
    b.save()?;
    let c = ctx.container(&b);
    c.launch()?;
    c.wait_status("stopped")?;
    expect_err(
        "exec in a stopped container",
        ctx.rt.call(&["exec", &c.id, "true"])?,
    )
}

fn pause_resume(ctx: &Ctx) -> Result<()> {
    if !std::path::Path::new("/sys/fs/cgroup/freezer").exists()
        && !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
    {
        return Err(skip("host has no freezer cgroup"));
    }
    let mut b = ctx.bundle()?;
    let c = running(ctx, &mut b)?;
    expect_ok("pause", ctx.rt.call(&["pause", &c.id])?)?;
    let paused = c.status()?;
    expect_ok("resume", ctx.rt.call(&["resume", &c.id])?)?;
    check_eq("status after pause", paused.as_str(), "paused")?;
    check_eq("status after resume", c.status()?.as_str(), "running")
}

fn spec_writes_config(ctx: &Ctx) -> Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("spec-")
        .tempdir_in(&ctx.scratch)?;
    let mut cmd = std::process::Command::new(&ctx.rt.bin);
    cmd.arg("spec").current_dir(dir.path());
    expect_ok("spec", crate::proc::run(&mut cmd, None, ctx.rt.timeout)?)?;
    let text = std::fs::read_to_string(dir.path().join("config.json"))
        .context("spec wrote no config.json")?;
    let v: Value = serde_json::from_str(&text).context("spec's config.json is not JSON")?;
    ensure!(v["ociVersion"].is_string(), "spec config has no ociVersion");
    ensure!(
        v["process"]["args"].is_array(),
        "spec config has no process.args"
    );
    ensure!(
        v["root"]["path"].is_string(),
        "spec config has no root.path"
    );
    Ok(())
}

fn features_json(ctx: &Ctx) -> Result<()> {
    let out = ctx.rt.call(&["features"])?;
    if !out.success() {
        bail!("features failed: {}", out.describe());
    }
    let v: Value = serde_json::from_str(&out.stdout)
        .with_context(|| format!("features output is not JSON: {}", out.stdout))?;
    ensure!(
        v["ociVersionMin"].is_string() && v["ociVersionMax"].is_string(),
        "features lacks ociVersionMin/Max"
    );
    ensure!(v["hooks"].is_array(), "features lacks hooks");
    ensure!(v["mountOptions"].is_array(), "features lacks mountOptions");
    Ok(())
}

/// Without a pid namespace, killing init leaves other processes: `kill
/// --all` must reach every process of the container.
fn kill_all(ctx: &Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.without_namespace("pid");
    let c = running(ctx, &mut b)?;
    let pf = b.path().join("exec.pid");
    let out = ctx.rt.call(&[
        "exec",
        "--detach",
        "--pid-file",
        &pf.to_string_lossy(),
        &c.id,
        "sleep",
        "1000",
    ])?;
    expect_ok("exec --detach", out)?;
    let text = std::fs::read_to_string(&pf).context("exec pid file missing")?;
    let extra = nix::unistd::Pid::from_raw(
        text.trim()
            .parse()
            .with_context(|| format!("exec pid file holds {text:?}"))?,
    );
    expect_ok(
        "kill --all",
        ctx.rt.call(&["kill", "--all", &c.id, "KILL"])?,
    )?;
    let gone = wait_for(ctx.rt.timeout, || {
        let _ = nix::sys::wait::waitpid(extra, Some(nix::sys::wait::WaitPidFlag::WNOHANG));
        (!std::path::Path::new(&format!("/proc/{extra}")).exists()).then_some(())
    });
    if gone.is_none() {
        let _ = nix::sys::signal::kill(extra, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(extra, None);
        bail!("exec'd process {extra} survived kill --all");
    }
    Ok(())
}
