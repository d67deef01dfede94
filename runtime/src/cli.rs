//! runc's command line, as go-runc, dockerd and conmon call it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "berth-runtime",
    version,
    about = "A strict OCI runtime with runc's command line",
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Directory for container state (tmpfs recommended; default
    /// /run/berth-runtime, rootless $XDG_RUNTIME_DIR/berth-runtime)
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Log file (default: stderr)
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Log format
    #[arg(long = "log-format", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Enable debug logging
    #[arg(long)]
    pub debug: bool,
    /// Use the systemd cgroup driver (cgroupsPath as slice:prefix:name)
    #[arg(long = "systemd-cgroup")]
    pub systemd_cgroup: bool,
    /// Rootless mode: auto, true or false
    #[arg(long, default_value = "auto")]
    pub rootless: String,
    /// Path to criu (accepted for compatibility; checkpointing is not supported)
    #[arg(long, hide = true)]
    pub criu: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container (its process waits for `start`)
    Create(CreateArgs),
    /// Start a created container's process
    Start(IdArg),
    /// Print the OCI state of a container
    State(IdArg),
    /// Send a signal to the container's init (or all its processes)
    Kill(KillArgs),
    /// Delete a container and its resources
    Delete(DeleteArgs),
    /// Create and start a container
    Run(RunArgs),
    /// Run a new process inside a container
    Exec(ExecArgs),
    /// List containers
    List(ListArgs),
    /// List the processes of a container
    Ps(PsArgs),
    /// Suspend all processes of a container
    Pause(IdArg),
    /// Resume all processes of a paused container
    Resume(IdArg),
    /// Create a default config.json
    Spec(SpecArgs),
    /// Print what this runtime supports (JSON)
    Features,
    /// Update a container's resource limits
    Update(UpdateArgs),
    /// Print resource usage statistics and OOM notifications (JSON)
    Events(EventsArgs),
}

#[derive(Args, Debug)]
pub struct IdArg {
    pub id: String,
}

#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    /// Path to the bundle directory
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// File to write the init's pid to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket to send the pty master to (terminal: true)
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Use chroot (MS_MOVE) instead of pivot_root
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N extra descriptors (3..3+N) to the container
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal every process of the container
    #[arg(short, long)]
    pub all: bool,
    pub id: String,
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// Kill a running container first
    #[arg(short, long)]
    pub force: bool,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Detach: exit after start
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's state after it exits
    #[arg(long)]
    pub keep: bool,
    /// Do not become a subreaper (accepted for compatibility)
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// process.json to run (instead of the arguments)
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Working directory
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Extra environment variables (KEY=VALUE)
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Allocate a pty
    #[arg(short, long)]
    pub tty: bool,
    /// UID[:GID]
    #[arg(short, long)]
    pub user: Option<String>,
    /// Additional gids
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Set no_new_privs
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// Add a capability (CAP_X), repeatable
    #[arg(short, long)]
    pub cap: Vec<String>,
    /// Detach from the process
    #[arg(short, long)]
    pub detach: bool,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// AppArmor profile (accepted; AppArmor is not supported here)
    #[arg(long)]
    pub apparmor: Option<String>,
    /// SELinux label (accepted; SELinux is not supported here)
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    pub id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    /// Only ids
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct PsArgs {
    #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    pub id: String,
    /// Arguments for ps(1) (default -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct SpecArgs {
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    #[arg(long)]
    pub rootless: bool,
}

/// `update`: runc's flags; `--resources` (a LinuxResources JSON file or `-`)
/// first, the flags over it.
#[derive(Args, Debug, Default)]
pub struct UpdateArgs {
    /// LinuxResources JSON file, or - for stdin
    #[arg(short, long)]
    pub resources: Option<PathBuf>,
    /// Per cgroup block IO weight (10-1000)
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// CPU CFS period (µs)
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    /// CPU CFS quota (µs), -1 for none
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(long = "cpu-share", alias = "cpu-shares")]
    pub cpu_share: Option<u64>,
    /// CPU realtime period (µs)
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    /// CPU realtime runtime (µs)
    #[arg(long = "cpu-rt-runtime", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPUs to use (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes to use
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Obsolete, ignored
    #[arg(long = "kernel-memory", hide = true)]
    pub kernel_memory: Option<String>,
    /// Obsolete, ignored
    #[arg(long = "kernel-memory-tcp", hide = true)]
    pub kernel_memory_tcp: Option<String>,
    /// Memory limit (bytes, or with a k/m/g suffix), -1 for none
    #[arg(long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit, -1 for unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Maximum number of pids, -1 for none
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Print one stats event and exit
    #[arg(long)]
    pub stats: bool,
    /// Interval between stats events (Go duration: 5s, 500ms, 1m)
    #[arg(long, default_value = "5s")]
    pub interval: String,
    pub id: String,
}

/// Go's flag package accepts `-long-flag`; go-runc and conmon use it (e.g.
/// `-no-subreaper`). Rewrite single-dash long flags clap knows to `--`,
/// up to the first positional argument of the subcommand.
pub fn normalize_args(args: Vec<String>) -> Vec<String> {
    use clap::CommandFactory;
    let cmd = Cli::command();
    let mut longs: Vec<(String, bool)> = Vec::new();
    let mut collect = |c: &clap::Command| {
        for a in c.get_arguments() {
            if let Some(l) = a.get_long() {
                let takes = a.get_action().takes_values();
                longs.push((l.to_string(), takes));
            }
        }
    };
    collect(&cmd);
    for s in cmd.get_subcommands() {
        collect(s);
    }
    let find = |name: &str| longs.iter().find(|(l, _)| l == name).map(|(_, t)| *t);
    let subcommands: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    let mut out = Vec::with_capacity(args.len());
    let mut seen_sub = false;
    let mut expect_value = false;
    let mut done = false;
    for (i, a) in args.into_iter().enumerate() {
        if i == 0 || done {
            out.push(a);
            continue;
        }
        if expect_value {
            expect_value = false;
            out.push(a);
            continue;
        }
        if a == "--" {
            done = true;
            out.push(a);
            continue;
        }
        if let Some(rest) = a
            .strip_prefix('-')
            .filter(|r| !r.starts_with('-') && r.len() > 1)
        {
            let name = rest.split('=').next().unwrap_or(rest);
            if let Some(takes) = find(name) {
                expect_value = takes && !rest.contains('=');
                out.push(format!("-{a}"));
                continue;
            }
        }
        if let Some(rest) = a.strip_prefix("--") {
            let name = rest.split('=').next().unwrap_or(rest);
            expect_value = find(name).unwrap_or(false) && !rest.contains('=');
            out.push(a);
            continue;
        }
        if !a.starts_with('-') {
            if !seen_sub && subcommands.contains(&a) {
                seen_sub = true;
            } else if seen_sub {
                // first positional of the subcommand: the rest is theirs
                done = true;
            }
        }
        out.push(a);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> Vec<String> {
        normalize_args(s.split_whitespace().map(String::from).collect())
    }

    #[test]
    fn go_style_single_dash_flags_parse() {
        assert_eq!(
            norm("r -root /x -log-format json run -no-subreaper -d id"),
            norm("r --root /x --log-format json run --no-subreaper -d id")
        );
        assert_eq!(
            norm("r create -bundle /b -pid-file=/p id"),
            norm("r create --bundle /b --pid-file=/p id")
        );
    }

    #[test]
    fn container_arguments_are_left_alone() {
        assert_eq!(
            norm("r exec id ls -all -cwd"),
            vec!["r", "exec", "id", "ls", "-all", "-cwd"]
        );
        assert_eq!(norm("r exec -cwd /tmp id sh -c true")[2], "--cwd");
    }

    #[test]
    fn every_documented_command_parses() {
        for line in [
            "r --root /r --log /l --log-format json --systemd-cgroup create --bundle b --pid-file p --console-socket s --no-pivot --no-new-keyring --preserve-fds 2 id",
            "r start id", "r state id", "r kill id", "r kill --all id 9", "r kill id KILL",
            "r delete --force id", "r run -d --keep -b b id", "r exec -t --console-socket s -e A=b -u 1:2 --cap CAP_KILL -d --pid-file p id sh -c x",
            "r exec --process p.json id", "r list -f json", "r list -q", "r ps -f json id", "r ps id -o pid",
            "r pause id", "r resume id", "r spec --rootless -b d", "r features",
            "r update --resources - --memory 64m --memory-swap -1 --cpu-quota -1 --cpu-share 512 --pids-limit 9 id",
            "r update --cpu-shares 2 --kernel-memory 1 --cpuset-cpus 0 id", "r events --stats --interval 1s id",
        ] {
            let args = norm(line);
            if let Err(e) = Cli::try_parse_from(&args) {
                panic!("{line}: {e}");
            }
        }
    }
}
