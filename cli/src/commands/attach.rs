//! `berth attach [--no-stdin] [--detach-keys KEYS] [--sig-proxy=BOOL] CONTAINER`,
//! and the attached session `run -i/-t` and `start -a` share.

use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::time::Duration;

use berth_engine::attach::{self, AttachEnd, AttachOptions, Signal, SignalGuard};
use berth_engine::{AttachHold, Engine};

use super::Ctx;

/// docker's default detach sequence.
pub const DEFAULT_DETACH_KEYS: &str = "ctrl-p,ctrl-q";

/// The options every attaching verb has.
#[derive(clap::Args, Debug, Clone)]
pub struct StreamArgs {
    /// Key sequence that detaches, leaving the container running
    #[arg(long = "detach-keys", value_name = "KEYS", default_value = DEFAULT_DETACH_KEYS)]
    pub detach_keys: String,
    /// Pass signals this process receives on to the container
    #[arg(long = "sig-proxy", value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
}

impl StreamArgs {
    pub fn options(&self, stdin: bool, tty: bool) -> anyhow::Result<AttachOptions> {
        let keys = if self.detach_keys.is_empty() {
            None
        } else {
            Some(
                attach::parse_detach_keys(&self.detach_keys)
                    .map_err(|e| anyhow::anyhow!("--detach-keys: {e}"))?,
            )
        };
        Ok(AttachOptions {
            stdin,
            tty,
            detach_keys: keys,
            sig_proxy: self.sig_proxy,
        })
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Do not attach stdin
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    #[command(flatten)]
    pub stream: StreamArgs,
    pub container: String,
}

pub fn run(a: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let engine = ctx.engine()?;
    let rec = engine.find(&a.container)?;
    let o = a
        .stream
        .options(rec.options.interactive && !a.no_stdin, rec.options.tty)?;
    let hold = engine.attach_lock(&rec.id)?;
    let signals = SignalGuard::new()?;
    let sock = engine.attach(&rec.id)?;
    session(&engine, &rec.id, sock, &o, &signals, hold)
}

/// Start a container attached from its first byte of output (`run`
/// without `-d` for a container with `-i` or `-t`, `start -a`).
pub fn start(
    engine: &Engine,
    id: &str,
    stream: &StreamArgs,
    stdin: bool,
) -> anyhow::Result<ExitCode> {
    let rec = engine.find(id)?;
    let o = stream.options(stdin && rec.options.interactive, rec.options.tty)?;
    // Held before start so a --rm container cannot vanish before we read it.
    let hold = engine.attach_lock(&rec.id)?;
    let signals = SignalGuard::new()?;
    let (_pid, sock) = engine.start_attached(&rec.id)?;
    session(engine, &rec.id, sock, &o, &signals, hold)
}

/// Copy stdio until the container exits (its exit code) or the detach
/// keys are typed (0, the container runs on).
fn session(
    engine: &Engine,
    id: &str,
    sock: UnixStream,
    o: &AttachOptions,
    signals: &SignalGuard,
    hold: AttachHold,
) -> anyhow::Result<ExitCode> {
    let kill = |sig: Signal| {
        let _ = engine.kill(id, &(sig as i32).to_string());
    };
    let end = attach::session(sock, o, signals, &kill)?;
    if end == AttachEnd::Detached {
        return Ok(ExitCode::SUCCESS);
    }
    let code = wait_exit(engine, id)?;
    let auto_remove = engine
        .find(id)
        .map(|r| r.options.auto_remove)
        .unwrap_or(false);
    finish_rm(engine, id, auto_remove, hold);
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

/// A foreground `--rm` reader has the exit code: remove the container here
/// (the monitor's exit command then finds nothing to do); failing that,
/// let the monitor do it and wait for it. Either way it is gone on return.
pub fn finish_rm(engine: &Engine, id: &str, auto_remove: bool, hold: AttachHold) {
    if auto_remove && !matches!(engine.remove_exited(id), Ok(true)) {
        drop(hold);
        engine.wait_monitor(id);
    }
}

/// The container's exit code, once its monitor has recorded it.
pub fn wait_exit(engine: &Engine, id: &str) -> anyhow::Result<i32> {
    let rec = engine.find(id)?;
    loop {
        let st = engine.state(&rec);
        if st.status == berth_engine::Status::Exited {
            return Ok(st.exit_code.unwrap_or(255));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
