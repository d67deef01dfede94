//! `berth run [OPTIONS] IMAGE [COMMAND [ARG...]]`

use std::io::Write;
use std::process::ExitCode;

use berth_engine::{BindMount, RunOptions};

use super::Ctx;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Networking: by default the container joins the default network `berth` \
(bridge berth0, 10.89.0.0/24, or as ROOT/networks/berth.json defines it; attached by berth-netd, \
with outbound NAT; `-p`/`-P` publish ports), as docker's default bridge. `--network NAME` joins a \
network `berth network create` made (containers resolve each other by name there), `none` gives \
loopback only, `host` the host's network, `container:NAME` another container's, `pasta` \
user-mode networking by pasta (the default when berth runs as a user without privileges; \
`pasta:--map-gw` lets the gateway address reach the host's loopback). berth.toml's [run] \
network changes the default."
)]
pub struct Args {
    /// Run in the background and print the container id
    #[arg(short, long)]
    pub detach: bool,
    #[command(flatten)]
    pub stream: super::attach::StreamArgs,
    #[command(flatten)]
    pub create: CreateArgs,
}

/// The options `create` and `run` share.
#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// Remove the container when it exits (done by its monitor)
    #[arg(long)]
    pub rm: bool,
    /// Name for the container
    #[arg(long)]
    pub name: Option<String>,
    /// Keep stdin open (attached: ours is forwarded)
    #[arg(short, long)]
    pub interactive: bool,
    /// Give the container a terminal (a pty)
    #[arg(short, long)]
    pub tty: bool,
    /// Log format: json-file (docker's, the default) or k8s-file (CRI, podman's)
    #[arg(long = "log-driver", value_name = "DRIVER")]
    pub log_driver: Option<String>,
    /// Log rotation: max-size=SIZE, max-file=N
    #[arg(long = "log-opt", value_name = "K=V")]
    pub log_opt: Vec<String>,
    /// Run an init as PID 1 that forwards signals and reaps zombies
    #[arg(long)]
    pub init: bool,
    /// The (static) init for --init (default: berth-init, catatonit, tini-static or docker-init)
    #[arg(long = "init-path", value_name = "PATH")]
    pub init_path: Option<String>,
    /// Restart policy: no, always, unless-stopped, on-failure[:MAX]
    #[arg(long, default_value = "no", value_name = "POLICY")]
    pub restart: String,
    /// Set an environment variable (K=V, or K to copy it from here)
    #[arg(short, long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// USER[:GROUP], names from the image's /etc/passwd and /etc/group
    #[arg(short, long)]
    pub user: Option<String>,
    /// Override the image's entrypoint ("" clears it)
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Bind mount SRC:DST[:ro] (SRC an absolute host path, or a volume name: created if missing), or DST alone: an anonymous volume
    #[arg(short, long = "volume", value_name = "SRC:DST[:ro]")]
    pub volume: Vec<String>,
    /// Mount: type=bind|volume|tmpfs,source=…,target=…[,readonly][,tmpfs-size=…]
    #[arg(long = "mount", value_name = "SPEC")]
    pub mount: Vec<String>,
    /// Mount the container's root filesystem read-only
    #[arg(long)]
    pub read_only: bool,
    /// Memory limit (e.g. 64m, 1g)
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Maximum number of processes
    #[arg(long)]
    pub pids_limit: Option<i64>,
    /// Add a capability (or ALL)
    #[arg(long)]
    pub cap_add: Vec<String>,
    /// Drop a capability (or ALL)
    #[arg(long)]
    pub cap_drop: Vec<String>,
    /// Every capability, all devices, no masked paths
    #[arg(long)]
    pub privileged: bool,
    /// Mount a tmpfs: PATH[:OPTIONS] (nosuid,nodev,noexec added)
    #[arg(long, value_name = "PATH[:OPTS]")]
    pub tmpfs: Vec<String>,
    /// Resource limit: NAME=SOFT[:HARD] (nofile, nproc, core, …)
    #[arg(long, value_name = "NAME=SOFT[:HARD]")]
    pub ulimit: Vec<String>,
    /// CPUs the container may use (CFS quota), e.g. 1.5
    #[arg(long)]
    pub cpus: Option<String>,
    /// Signal `stop` sends first (default TERM)
    #[arg(long = "stop-signal", value_name = "SIGNAL")]
    pub stop_signal: Option<String>,
    /// Seconds `stop` waits before SIGKILL (default 10)
    #[arg(long = "stop-timeout", value_name = "SECONDS")]
    pub stop_timeout: Option<u64>,
    /// Publish a port: [IP:]HOST[-END]:CTR[-END][/tcp|udp] (bridge network or pasta)
    #[arg(short = 'p', long = "publish", value_name = "SPEC")]
    pub publish: Vec<String>,
    /// Publish every exposed port on a free host port
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port or range: PORT[-END][/tcp|udp]
    #[arg(long, value_name = "PORT")]
    pub expose: Vec<String>,
    /// Static IPv4 address on a user-defined network
    #[arg(long, value_name = "ADDR")]
    pub ip: Option<std::net::Ipv4Addr>,
    /// Another name the network's DNS answers for this container
    #[arg(long = "network-alias", value_name = "NAME")]
    pub network_alias: Vec<String>,
    /// Read environment variables from a file (K=V or K lines, # comments)
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<std::path::PathBuf>,
    /// Set a label (K=V, or K for an empty value)
    #[arg(short = 'l', long = "label", value_name = "K=V")]
    pub label: Vec<String>,
    /// seccomp=unconfined|PROFILE.json, no-new-privileges[=true|false]
    #[arg(long = "security-opt", value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// Container host name (default: the id's first 12 digits)
    #[arg(long)]
    pub hostname: Option<String>,
    /// Network: bridge (the default network `berth`), none, host, a network's name,
    /// container:NAME, or pasta[:--map-gw] (rootless default)
    #[arg(long, value_name = "none|host|bridge|NAME|container:NAME|pasta")]
    pub network: Option<String>,
    /// OCI runtime: a name looked up next to berth and on PATH, or a path
    /// (default: the global --runtime, berth.toml's, else berth-runtime;
    /// runc and crun work too)
    #[arg(long, value_name = "NAME|PATH")]
    pub runtime: Option<String>,
    /// Image to run
    pub image: String,
    /// Command and arguments (default: the image's)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `-e K` takes K from this environment; absent means not set.
pub fn expand_env(env: &[String]) -> Vec<String> {
    env.iter()
        .filter_map(|e| {
            if e.contains('=') {
                Some(e.clone())
            } else {
                std::env::var(e).ok().map(|v| format!("{e}={v}"))
            }
        })
        .collect()
}

/// docker's env-file format: `K=V` or `K` per line; blank lines and lines
/// starting with `#` are skipped; values are taken literally (no quotes).
fn read_env_files(files: &[std::path::PathBuf]) -> anyhow::Result<Vec<String>> {
    let mut env = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f)
            .map_err(|e| anyhow::anyhow!("read env file {}: {e}", f.display()))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let key = line.split('=').next().unwrap_or("");
            if key.is_empty() || key.contains(char::is_whitespace) {
                anyhow::bail!("{}:{}: invalid variable name {key:?}", f.display(), n + 1);
            }
            env.push(line.to_string());
        }
    }
    Ok(env)
}

fn options(a: &CreateArgs) -> anyhow::Result<RunOptions> {
    let mut o = RunOptions {
        name: a.name.clone(),
        env: expand_env(&[read_env_files(&a.env_file)?, a.env.clone()].concat()),
        labels: super::parse_labels(&a.label),
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        entrypoint: a.entrypoint.clone(),
        cmd: a.command.clone(),
        mounts: a
            .volume
            .iter()
            .map(|v| BindMount::parse(v))
            .collect::<Result<_, _>>()?,
        read_only: a.read_only,
        memory: a
            .memory
            .as_deref()
            .map(berth_engine::parse_size)
            .transpose()?,
        pids_limit: a.pids_limit,
        cap_add: a.cap_add.clone(),
        cap_drop: a.cap_drop.clone(),
        privileged: a.privileged,
        hostname: a.hostname.clone(),
        auto_remove: a.rm,
        tty: a.tty,
        interactive: a.interactive,
        init: a.init,
        init_path: a.init_path.clone(),
        runtime: a.runtime.clone(),
        ..RunOptions::default()
    };
    o.restart = a.restart.parse()?;
    o.log_options(a.log_driver.as_deref(), &a.log_opt)?;
    if a.rm && o.restart != berth_engine::RestartPolicy::No {
        anyhow::bail!("conflicting options: --restart and --rm");
    }
    // docker's default bridge; a rootless berth has none, pasta instead.
    let default = if berth_engine::rootless::active() {
        "pasta"
    } else {
        "bridge"
    };
    o.set_network(a.network.as_deref().unwrap_or(default))?;
    o.tmpfs(&a.tmpfs)?;
    for m in &a.mount {
        o.mount(m)?;
    }
    o.ulimits(&a.ulimit)?;
    if let Some(c) = &a.cpus {
        o.cpus(c)?;
    }
    if let Some(s) = &a.stop_signal {
        o.stop_signal(s)?;
    }
    o.stop_timeout = a.stop_timeout;
    o.security_opts(&a.security_opt)?;
    o.publish(&a.publish)?;
    o.publish_all = a.publish_all;
    o.expose(&a.expose)?;
    o.ip = a.ip;
    o.aliases = a.network_alias.clone();
    o.check_network()?;
    Ok(o)
}

/// `berth create`: make the container, print its id.
pub fn create(a: CreateArgs, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let rec = ctx.engine()?.create(&a.image, options(&a)?)?;
    println!("{}", rec.id);
    Ok(ExitCode::SUCCESS)
}

pub fn run(a: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let (detach, stream, a) = (a.detach, a.stream, a.create);
    stream.options(a.interactive, a.tty)?; // refuse bad values before anything exists
    let opts = options(&a)?;
    let engine = ctx.engine()?;
    let rec = engine.create(&a.image, opts)?;
    // Held before start so a --rm container cannot vanish before we read it.
    if detach {
        if let Err(e) = engine.start(&rec.id) {
            if a.rm {
                let _ = engine.remove_with_volumes(&rec.id, true);
            }
            return Err(e.into());
        }
        println!("{}", rec.id);
        return Ok(ExitCode::SUCCESS);
    }
    // Attached from the first byte through the monitor's socket: its end
    // comes when the exit is on record, so the code is there at once.
    let started = super::attach::start(&engine, &rec.id, &stream, true);
    if started.is_err() && a.rm {
        let _ = engine.remove_with_volumes(&rec.id, true);
    }
    started
}

/// Write log lines to our stdout/stderr as the container wrote them.
pub fn print_lines(lines: &[berth_engine::LogLine]) {
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    for l in lines {
        let _ = if l.stream == "stderr" {
            err.write_all(l.log.as_bytes())
        } else {
            out.write_all(l.log.as_bytes())
        };
    }
    let _ = out.flush();
    let _ = err.flush();
}
