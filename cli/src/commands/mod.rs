//! One module per subcommand: an `Args` struct and
//! `pub fn run(args, &Ctx) -> anyhow::Result<ExitCode>`.
//!
//! To add a subcommand: write `commands/<name>.rs` with `Args` and `run`,
//! add `mod <name>;`, a variant to [`Command`] and an arm to [`run`].

mod cp;
mod exec;
mod export;
mod format;
mod image;
mod images;
mod import;
mod info;
mod inspect;
mod load;
mod login;
mod logs;
mod network;
mod pause;
mod port;
mod progress;
mod ps;
mod pull;
mod push;
mod rename;
mod rm;
mod rmi;
mod run;
mod save;
mod start;
mod stats;
mod stop;
mod system;
mod tag;
mod top;
mod volume;
mod wait;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};

/// `--label K=V` values (`K` alone: an empty value).
pub fn parse_labels(labels: &[String]) -> std::collections::BTreeMap<String, String> {
    labels
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.clone(), String::new()),
        })
        .collect()
}

/// Options every subcommand shares (as podman's).
#[derive(Args, Debug, Clone)]
pub struct GlobalArgs {
    /// Persistent storage root (default /var/lib/berth; rootless $XDG_DATA_HOME/berth)
    #[arg(long, global = true, env = "BERTH_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Runtime state root (default /run/berth; rootless $XDG_RUNTIME_DIR/berth)
    #[arg(long, global = true, env = "BERTH_RUNROOT", value_name = "DIR")]
    pub runroot: Option<PathBuf>,
}

/// What every command gets: resolved global options.
pub struct Ctx {
    pub root: PathBuf,
    pub runroot: PathBuf,
}

impl Ctx {
    pub fn new(g: GlobalArgs) -> Ctx {
        let rootless = !nix_is_root();
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/tmp"));
        let root = g
            .root
            .unwrap_or_else(|| match (rootless, std::env::var_os("XDG_DATA_HOME")) {
                (false, _) => PathBuf::from("/var/lib/berth"),
                (true, Some(x)) => PathBuf::from(x).join("berth"),
                (true, None) => home.join(".local/share/berth"),
            });
        let runroot =
            g.runroot
                .unwrap_or_else(|| match (rootless, std::env::var_os("XDG_RUNTIME_DIR")) {
                    (false, _) => PathBuf::from("/run/berth"),
                    (true, Some(x)) => PathBuf::from(x).join("berth"),
                    (true, None) => {
                        std::env::temp_dir().join(format!("berth-run-{}", std::process::id()))
                    }
                });
        Ctx { root, runroot }
    }

    /// Open the image store.
    pub fn store(&self) -> anyhow::Result<berth_storage::Store> {
        berth_storage::Store::open(&self.root, &self.runroot)
            .with_context(|| format!("open image store at {}", self.root.display()))
    }

    /// Open the container engine (over the same store).
    pub fn engine(&self) -> anyhow::Result<berth_engine::Engine> {
        let exe = std::env::current_exe().context("find the berth binary")?;
        berth_engine::Engine::open(&self.root, &self.runroot, &exe)
            .with_context(|| format!("open container engine at {}", self.root.display()))
    }
}

fn nix_is_root() -> bool {
    // `id -u` without a libc dependency: /proc/self/status has the euid.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create an image from a rootfs tarball (`-` for stdin)
    Import(import::Args),
    /// List images
    Images(images::Args),
    /// Manage images
    Image(image::Args),
    /// Pull an image from a registry
    Pull(pull::Args),
    /// Push an image to a registry
    Push(push::Args),
    /// Store registry credentials (Docker config.json)
    Login(login::Args),
    /// Forget registry credentials
    Logout(login::LogoutArgs),
    /// Add a name to an image
    Tag(tag::Args),
    /// Remove images
    Rmi(rmi::Args),
    /// Write images to an archive
    Save(save::Args),
    /// Load images from an archive
    Load(load::Args),
    /// Store maintenance
    System(system::Args),
    /// Run a command in a new container
    Run(Box<run::Args>),
    /// Create a container without starting it
    Create(Box<run::CreateArgs>),
    /// Start created or stopped containers
    Start(start::Args),
    /// List containers
    Ps(ps::Args),
    /// Show a container's output
    Logs(logs::Args),
    /// Run a command in a running container
    Exec(exec::Args),
    /// Write a container's filesystem as a tar archive
    Export(export::Args),
    /// Copy files between a container and the host (`-`: a tar stream)
    Cp(cp::Args),
    /// Stop containers (SIGTERM, then SIGKILL after a timeout)
    Stop(stop::Args),
    /// Send a signal to containers
    Kill(stop::KillArgs),
    /// Stop, then start containers again
    Restart(rename::RestartArgs),
    /// Freeze every process of containers
    Pause(pause::Args),
    /// Thaw paused containers
    Unpause(pause::Args),
    /// List a container's processes
    Top(top::Args),
    /// CPU, memory and pids of running containers
    Stats(stats::Args),
    /// Give a container a new name
    Rename(rename::Args),
    /// Manage bridge networks
    Network(network::Args),
    /// List a container's published ports
    Port(port::Args),
    /// Manage named volumes
    Volume(volume::Args),
    /// Manage containers (prune)
    Container(info::ContainerArgs),
    /// Show where berth keeps things and how many of each (JSON)
    Info,
    /// Show berth's and the default runtime's versions
    Version,
    /// Remove containers
    Rm(rm::Args),
    /// Show containers as JSON
    Inspect(inspect::Args),
    /// Wait for containers to exit and print their exit codes
    Wait(wait::Args),
    /// Remove an --rm container after it exits (run by its monitor)
    #[command(hide = true)]
    ContainerCleanup(wait::CleanupArgs),
}

pub fn run(cmd: Command, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Import(a) => import::run(a, ctx),
        Command::Images(a) => images::run(a, ctx),
        Command::Image(a) => image::run(a, ctx),
        Command::Pull(a) => pull::run(a, ctx),
        Command::Push(a) => push::run(a, ctx),
        Command::Login(a) => login::run(a, ctx),
        Command::Logout(a) => login::logout(a, ctx),
        Command::Tag(a) => tag::run(a, ctx),
        Command::Rmi(a) => rmi::run(a, ctx),
        Command::Save(a) => save::run(a, ctx),
        Command::Load(a) => load::run(a, ctx),
        Command::System(a) => system::run(a, ctx),
        Command::Run(a) => run::run(*a, ctx),
        Command::Create(a) => run::create(*a, ctx),
        Command::Start(a) => start::run(a, ctx),
        Command::Ps(a) => ps::run(a, ctx),
        Command::Logs(a) => logs::run(a, ctx),
        Command::Exec(a) => exec::run(a, ctx),
        Command::Export(a) => export::run(a, ctx),
        Command::Cp(a) => cp::run(a, ctx),
        Command::Stop(a) => stop::run(a, ctx),
        Command::Kill(a) => stop::kill(a, ctx),
        Command::Restart(a) => rename::restart(a, ctx),
        Command::Pause(a) => pause::pause(a, ctx),
        Command::Unpause(a) => pause::unpause(a, ctx),
        Command::Top(a) => top::run(a, ctx),
        Command::Stats(a) => stats::run(a, ctx),
        Command::Rename(a) => rename::run(a, ctx),
        Command::Network(a) => network::run(a, ctx),
        Command::Port(a) => port::run(a, ctx),
        Command::Volume(a) => volume::run(a, ctx),
        Command::Container(a) => info::container(a, ctx),
        Command::Info => info::info(ctx),
        Command::Version => info::version(ctx),
        Command::Rm(a) => rm::run(a, ctx),
        Command::Inspect(a) => inspect::run(a, ctx),
        Command::Wait(a) => wait::run(a, ctx),
        Command::ContainerCleanup(a) => wait::cleanup(a, ctx),
    }
}
