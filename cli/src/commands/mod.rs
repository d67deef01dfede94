//! One module per subcommand: an `Args` struct and
//! `pub fn run(args, &Ctx) -> anyhow::Result<ExitCode>`.
//!
//! To add a subcommand: write `commands/<name>.rs` with `Args` and `run`,
//! add `mod <name>;`, a variant to [`Command`] and an arm to [`run`].

mod attach;
mod cp;
mod exec;
mod export;
mod format;
mod generate;
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
    /// Default OCI runtime for new containers: a name next to berth or on
    /// PATH, or a path (default berth-runtime). Given before the subcommand;
    /// `run/create --runtime` wins, and a container keeps the runtime it was
    /// created with.
    // Not `global`: `run` and `create` have their own `--runtime`.
    #[arg(long, value_name = "NAME|PATH")]
    pub runtime: Option<String>,
    /// Diagnostics on stderr: error, warn (default), info or debug
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
}

/// What every command gets: resolved global options.
pub struct Ctx {
    pub root: PathBuf,
    pub runroot: PathBuf,
    /// The default runtime for new containers (`None`: berth-runtime).
    pub runtime: Option<String>,
    /// berth.toml's `[run]`: defaults for `run`/`create` options left unset.
    pub run_defaults: crate::config::RunDefaults,
}

impl Ctx {
    /// Resolve the global options: flags (and their environment variables)
    /// over berth.toml (when `cmd` reads it) over the built-in defaults;
    /// start logging.
    pub fn new(g: GlobalArgs, cmd: &Command) -> anyhow::Result<Ctx> {
        let cfg = if cmd.reads_config() {
            crate::config::load()?
        } else {
            crate::config::Config::default()
        };
        let sources = cfg.sources.clone();
        let flags = crate::config::Flags {
            root: g.root,
            runroot: g.runroot,
            runtime: g.runtime,
            log_level: g.log_level,
        };
        let s = crate::config::Settings::resolve(flags, cfg, Ctx::builtin())?;
        crate::logging::init(s.log_level);
        for f in &sources {
            log::debug!("read config file {}", f.display());
        }
        log::debug!(
            "root {}, runroot {}, default runtime {}",
            s.root.display(),
            s.runroot.display(),
            s.runtime.as_deref().unwrap_or("berth-runtime")
        );
        Ok(Ctx {
            root: s.root,
            runroot: s.runroot,
            runtime: s.runtime,
            run_defaults: s.run,
        })
    }

    /// Where things go when neither a flag nor berth.toml says.
    fn builtin() -> crate::config::Defaults {
        let rootless = !nix_is_root();
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/tmp"));
        let root = match (rootless, std::env::var_os("XDG_DATA_HOME")) {
            (false, _) => PathBuf::from("/var/lib/berth"),
            (true, Some(x)) => PathBuf::from(x).join("berth"),
            (true, None) => home.join(".local/share/berth"),
        };
        let runroot = match (rootless, std::env::var_os("XDG_RUNTIME_DIR")) {
            (false, _) => PathBuf::from("/run/berth"),
            (true, Some(x)) => PathBuf::from(x).join("berth"),
            (true, None) => berth_engine::rootless::runtime_dir(),
        };
        crate::config::Defaults { root, runroot }
    }

    /// Open the image store.
    pub fn store(&self) -> anyhow::Result<berth_storage::Store> {
        berth_storage::Store::open(&self.root, &self.runroot)
            .with_context(|| format!("open image store at {}", self.root.display()))
    }

    /// Open the container engine (over the same store).
    pub fn engine(&self) -> anyhow::Result<berth_engine::Engine> {
        let exe = std::env::current_exe().context("find the berth binary")?;
        let mut e = berth_engine::Engine::open(&self.root, &self.runroot, &exe)
            .with_context(|| format!("open container engine at {}", self.root.display()))?;
        e.set_default_runtime(self.runtime.clone());
        Ok(e)
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
    /// Attach this terminal to a running container (detach: ctrl-p ctrl-q)
    Attach(attach::Args),
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
    /// Print a shell completion script (bash, zsh or fish)
    Completion(generate::CompletionArgs),
    /// Write man pages for berth and every subcommand into DIR
    #[command(hide = true)]
    GenerateMan(generate::ManArgs),
    /// Remove an --rm container after it exits (run by its monitor)
    #[command(hide = true)]
    ContainerCleanup(wait::CleanupArgs),
}

impl Command {
    /// Whether berth.toml applies. Not to a monitor's cleanup (its argv
    /// says everything, and the file may have changed or gone since the
    /// container started), nor to completions and man pages (the same on
    /// every host).
    fn reads_config(&self) -> bool {
        !matches!(
            self,
            Command::ContainerCleanup(_) | Command::Completion(_) | Command::GenerateMan(_)
        )
    }
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
        Command::Run(mut a) => {
            run_defaults(&mut a.create, ctx);
            run::run(*a, ctx)
        }
        Command::Create(mut a) => {
            run_defaults(&mut a, ctx);
            run::create(*a, ctx)
        }
        Command::Start(a) => start::run(a, ctx),
        Command::Attach(a) => attach::run(a, ctx),
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
        Command::Completion(a) => generate::completion(a, ctx),
        Command::GenerateMan(a) => generate::man(a, ctx),
        Command::ContainerCleanup(a) => wait::cleanup(a, ctx),
    }
}

/// berth.toml's `[run]` for what the command line left unset.
fn run_defaults(a: &mut run::CreateArgs, ctx: &Ctx) {
    let d = &ctx.run_defaults;
    a.network = a.network.take().or_else(|| d.network.clone());
    a.stop_timeout = a.stop_timeout.or(d.stop_timeout);
    a.stop_signal = a.stop_signal.take().or_else(|| d.stop_signal.clone());
}
