//! config.md `process.terminal` and runtime-linux.md /dev/console: the pty
//! master arrives on `--console-socket`, the process's stdio is the pty,
//! and /dev/console exists.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use serde_json::json;

use super::{cases, expect_err};
use crate::bundle::Bundle;
use crate::case::{Case, Ctx};

pub fn cases() -> Vec<Case> {
    cases![
        "terminal.console_socket_gets_pty" => socket_gets_pty,
        "terminal.stdio_is_tty" => |c| output_has(c, "test -t 0 && test -t 1 && test -t 2 && echo tty-ok", "tty-ok"),
        "terminal.dev_console" => |c| output_has(c, "test -c /dev/console && echo console-ok", "console-ok"),
        "terminal.create_without_socket_fails" => without_socket,
        "terminal.exec_tty" => exec_tty,
    ]
}

/// Accept one connection within `timeout` and take the fd it sends.
fn accept_fd(listener: UnixListener, timeout: Duration) -> Result<OwnedFd> {
    listener.set_nonblocking(true)?;
    let start = Instant::now();
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false)?;
                return crate::sys::recv_fd(&stream);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && start.elapsed() < timeout => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e).context("no connection on the console socket"),
        }
    }
}

/// Create with terminal true and a console socket; returns the pty master.
fn launch_tty<'a>(
    ctx: &'a Ctx,
    b: &mut Bundle,
    script: &str,
) -> Result<(crate::runtime::Container<'a>, OwnedFd)> {
    b.config["process"]["terminal"] = json!(true);
    b.script(script);
    b.save()?;
    let sock = b.path().join("console.sock");
    let listener = UnixListener::bind(&sock).context("bind the console socket")?;
    let timeout = ctx.rt.timeout;
    let t = std::thread::spawn(move || accept_fd(listener, timeout));
    let c = ctx.container(b);
    let created = c.create_with(&["--console-socket", &sock.to_string_lossy()]);
    let master = t
        .join()
        .map_err(|_| anyhow::anyhow!("console socket thread panicked"))?;
    crate::runtime::expect_ok("create --console-socket", &created?)?;
    let master = master?;
    Ok((c, master))
}

/// Read the pty master until `want` shows up, the slave side closes, or time runs out.
fn read_until(master: OwnedFd, want: &str, timeout: Duration) -> String {
    let fd = master;
    let flags = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_GETFL).unwrap_or(0);
    let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
    let _ = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETFL(flags));
    let mut f = std::fs::File::from(fd);
    let mut text = String::new();
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    while start.elapsed() < timeout && !text.contains(want) {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(_) => break,
        }
    }
    text
}

fn socket_gets_pty(ctx: &Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    let (_c, master) = launch_tty(ctx, &mut b, "sleep 1000")?;
    ensure!(
        nix::unistd::isatty(&master).unwrap_or(false),
        "the fd sent on the console socket is not a terminal"
    );
    Ok(())
}

fn output_has(ctx: &Ctx, script: &str, want: &str) -> Result<()> {
    let mut b = ctx.bundle()?;
    let (c, master) = launch_tty(ctx, &mut b, &format!("{script}; sleep 1000"))?;
    c.start_ok()?;
    let text = read_until(master, want, ctx.rt.timeout);
    ensure!(
        text.contains(want),
        "terminal output {text:?} lacks {want:?}"
    );
    Ok(())
}

fn without_socket(ctx: &Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.config["process"]["terminal"] = json!(true);
    b.script("true");
    b.save()?;
    let c = ctx.container(&b);
    expect_err(
        "create with terminal true and no --console-socket",
        c.create()?,
    )
}

/// `exec --tty --detach --console-socket`: the exec'd process gets its own pty.
fn exec_tty(ctx: &Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.script("sleep 1000");
    b.save()?;
    let c = ctx.container(&b);
    c.launch()?;
    let sock = b.path().join("exec-console.sock");
    let listener = UnixListener::bind(&sock).context("bind the console socket")?;
    let timeout = ctx.rt.timeout;
    let t = std::thread::spawn(move || accept_fd(listener, timeout));
    let script = "test -t 0 && test -t 1 && echo exec-tty-ok; sleep 1000";
    let out = ctx.rt.call(&[
        "exec",
        "--tty",
        "--detach",
        "--console-socket",
        &sock.to_string_lossy(),
        &c.id,
        "sh",
        "-c",
        script,
    ]);
    let master = t
        .join()
        .map_err(|_| anyhow::anyhow!("console socket thread panicked"))?;
    crate::runtime::expect_ok("exec --tty --detach --console-socket", &out?)?;
    let text = read_until(master?, "exec-tty-ok", ctx.rt.timeout);
    ensure!(
        text.contains("exec-tty-ok"),
        "exec terminal output {text:?}"
    );
    Ok(())
}
