//! One module per subcommand: each turns its arguments into a library call.

mod create;
mod delete;
mod events;
mod exec;
mod features;
mod kill;
mod list;
mod pause;
mod ps;
mod run;
mod spec;
mod start;
mod state;
mod update;

use anyhow::Result;
use berth_runtime::log;
use berth_runtime::state::Root;

use crate::cli::{Cli, Command, LogFormat};

/// What every command gets from the global flags.
pub struct Ctx {
    pub root: Root,
    pub systemd_cgroup: bool,
    pub rootless: bool,
}

pub fn dispatch(cli: Cli) -> Result<i32> {
    let format = match cli.log_format {
        LogFormat::Text => log::Format::Text,
        LogFormat::Json => log::Format::Json,
    };
    log::init(cli.log.clone(), format, cli.debug);
    let euid_root = nix::unistd::geteuid().is_root();
    let rootless = match cli.rootless.as_str() {
        "true" => true,
        "false" => false,
        // runc's auto: not root, or root only inside a user namespace.
        "auto" | "" => !euid_root || berth_runtime::sys::in_user_namespace(),
        other => anyhow::bail!("--rootless must be auto, true or false, not {other:?}"),
    };
    if matches!(
        cli.command,
        Command::Create(_) | Command::Run(_) | Command::Exec(_)
    ) {
        // Before entering any container namespace (CVE-2019-5736).
        berth_runtime::seal::ensure_sealed()?;
    }
    let ctx = Ctx {
        root: Root::new(cli.root.clone().unwrap_or_else(|| default_root(rootless))),
        systemd_cgroup: cli.systemd_cgroup,
        rootless,
    };
    match cli.command {
        Command::Create(a) => create::run(a, &ctx),
        Command::Start(a) => start::run(a, &ctx),
        Command::State(a) => state::run(a, &ctx),
        Command::Kill(a) => kill::run(a, &ctx),
        Command::Delete(a) => delete::run(a, &ctx),
        Command::Run(a) => run::run(a, &ctx),
        Command::Exec(a) => exec::run(a, &ctx),
        Command::List(a) => list::run(a, &ctx),
        Command::Ps(a) => ps::run(a, &ctx),
        Command::Pause(a) => pause::run(a, &ctx, true),
        Command::Resume(a) => pause::run(a, &ctx, false),
        Command::Spec(a) => spec::run(a),
        Command::Features => features::run(),
        Command::Update(a) => update::run(a, &ctx),
        Command::Events(a) => events::run(a, &ctx),
    }
}

/// runc's default state root: `$XDG_RUNTIME_DIR/berth-runtime` for a
/// rootless runtime that has one, else `/run/berth-runtime`.
fn default_root(rootless: bool) -> std::path::PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| rootless && !d.is_empty()) {
        Some(d) => std::path::PathBuf::from(d).join("berth-runtime"),
        None => std::path::PathBuf::from("/run/berth-runtime"),
    }
}
