//! `berth-netd`: JSON request in (stdin or `--file`), JSON answer out on
//! stdout; on failure `{"error": "...", "code": N}` on stdout and exit N.
//! Logs go to stderr only.

mod commands;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use berth_netd::wire::{ErrorCode, ErrorReply};
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "berth-netd",
    version,
    about = "Container network setup and teardown"
)]
struct Cli {
    /// Lease and lock directory.
    #[arg(long, global = true, env = "BERTH_NETD_STATE_DIR", default_value = berth_netd::state::DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    /// The nftables table (family inet) netd owns; nothing else is touched.
    #[arg(long, global = true, env = "BERTH_NETD_NFT_TABLE", default_value = berth_netd::nft::DEFAULT_TABLE)]
    nft_table: String,
    /// Upstream resolver for names DNS responders do not know (repeatable);
    /// default: the host's non-loopback nameservers, port 53.
    #[arg(long, global = true)]
    dns_upstream: Vec<SocketAddr>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Attach a network namespace to the networks in the request.
    Setup(NetnsArgs),
    /// Detach it again (best effort, every failure reported).
    Teardown(NetnsArgs),
    /// Attach a set-up container to more networks, leaving the others alone.
    Connect(NetnsArgs),
    /// Detach a container from some of its networks (best effort).
    Disconnect(NetnsArgs),
    /// Run a network's DNS responder (started by setup, not by hand).
    #[command(hide = true)]
    DnsServe(DnsServeArgs),
}

#[derive(Args)]
pub struct DnsServeArgs {
    #[arg(long)]
    network: String,
    /// The gateway address to listen on (port 53, UDP).
    #[arg(long)]
    listen: Ipv4Addr,
    /// Answer NXDOMAIN instead of forwarding unknown names.
    #[arg(long)]
    internal: bool,
    #[arg(long)]
    upstream: Vec<SocketAddr>,
}

#[derive(Args)]
pub struct NetnsArgs {
    /// The network namespace (e.g. /run/netns/NAME or /proc/PID/ns/net).
    #[arg(long)]
    netns: PathBuf,
    /// Read the request from this file instead of stdin.
    #[arg(long)]
    file: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help, --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = e.print();
            // The message up to the usage block, on one line.
            let text = e.to_string();
            let lines: Vec<&str> = text
                .lines()
                .take_while(|l| !l.is_empty())
                .map(str::trim)
                .collect();
            let first = lines.join(" ").trim_start_matches("error: ").to_string();
            return reply(
                format!("usage: {first}"),
                ErrorCode::InvalidRequest,
                Vec::new(),
            );
        }
    };
    let mut opts = berth_netd::Options {
        state_dir: cli.state_dir,
        nft_table: cli.nft_table,
        ..berth_netd::Options::default()
    };
    if !cli.dns_upstream.is_empty() {
        opts.dns_upstreams = cli.dns_upstream;
    }
    if let Ok(exe) = std::env::current_exe() {
        opts.exe = exe;
    }
    let answer = match &cli.command {
        Command::Setup(a) => commands::setup::run(a, &opts),
        Command::Teardown(a) => commands::teardown::run(a, &opts),
        Command::Connect(a) => commands::connect::run(a, &opts),
        Command::Disconnect(a) => commands::connect::run_disconnect(a, &opts),
        Command::DnsServe(a) => commands::dns_serve::run(a, &opts),
    };
    match answer {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            let (code, details) = match e.downcast_ref::<berth_netd::Error>() {
                Some(le) => (le.code(), le.details()),
                None => (ErrorCode::Internal, Vec::new()),
            };
            eprintln!("berth-netd: error: {e:#}");
            reply(format!("{e:#}"), code, details)
        }
    }
}

/// Print the error document on stdout (details also on stderr) and
/// return its code as the exit status.
fn reply(error: String, code: ErrorCode, details: Vec<String>) -> ExitCode {
    for d in &details {
        eprintln!("berth-netd:   {d}");
    }
    let reply = ErrorReply {
        error,
        code: code as i32,
        details,
    };
    let json = serde_json::to_string(&reply)
        .unwrap_or_else(|_| r#"{"error":"encode error","code":1}"#.into());
    println!("{json}");
    ExitCode::from(u8::try_from(reply.code).unwrap_or(1))
}
