//! `berth network create|ls|inspect|rm`: bridge networks berth-netd attaches
//! containers to (`berth run --network NAME`).

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use serde_json::{json, Value};

use super::format::{self, Format};
use super::Ctx;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: NetworkCommand,
}

#[derive(Subcommand, Debug)]
pub enum NetworkCommand {
    /// Define a bridge network
    Create(CreateArgs),
    /// List networks
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Show networks as JSON
    Inspect {
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove every user network no container uses
    Prune,
    /// Remove networks no container uses
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        networks: Vec<String>,
    },
}

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// IPv4 subnet in CIDR form (default: a free 10.89.N.0/24)
    #[arg(long)]
    pub subnet: Option<String>,
    /// Gateway address (default: the subnet's first host)
    #[arg(long)]
    pub gateway: Option<String>,
    /// Bridge interface name (default: berthN)
    #[arg(long)]
    pub bridge: Option<String>,
    /// No outbound NAT, no default route
    #[arg(long)]
    pub internal: bool,
    /// No DNS responder (containers do not resolve each other by name)
    #[arg(long)]
    pub disable_dns: bool,
    pub name: String,
}

#[derive(clap::Args, Debug)]
pub struct LsArgs {
    /// Only names
    #[arg(short, long)]
    pub quiet: bool,
    /// table, json or a {{.Field}} template
    #[arg(long, default_value = "table", value_parser = format::parse_format)]
    pub format: Format,
}

fn view(c: &berth_netd::wire::NetworkConfig, users: &[String]) -> Value {
    json!({
        "Name": c.name,
        "Driver": "bridge",
        "NetworkInterface": c.bridge,
        "Subnet": c.subnet.to_string(),
        "Gateway": c.gateway().to_string(),
        "Internal": c.internal,
        "DNSEnabled": c.dns_enabled,
        "Containers": users,
    })
}

pub fn run(a: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let engine = ctx.engine()?;
    match a.command {
        NetworkCommand::Create(c) => {
            let n = berth_engine::NewNetwork {
                name: c.name.clone(),
                subnet: c.subnet,
                gateway: c.gateway,
                bridge: c.bridge,
                internal: c.internal,
                dns: !c.disable_dns,
            };
            let cfg = engine
                .network_create(&n)
                .with_context(|| format!("network create {}", c.name))?;
            println!("{}", cfg.name);
        }
        NetworkCommand::Ls(l) => {
            let rows: Vec<Value> = engine
                .network_list()?
                .iter()
                .map(|(c, u)| view(c, u))
                .collect();
            if l.quiet {
                rows.iter()
                    .for_each(|r| println!("{}", r["Name"].as_str().unwrap_or("")));
                return Ok(ExitCode::SUCCESS);
            }
            let s = format::str_of;
            format::print_rows(
                &l.format,
                &rows,
                &["NAME", "BRIDGE", "SUBNET", "DNS"],
                |r| {
                    vec![
                        s(&r["Name"]),
                        s(&r["NetworkInterface"]),
                        s(&r["Subnet"]),
                        r["DNSEnabled"].to_string(),
                    ]
                },
            )?;
        }
        NetworkCommand::Inspect { networks } => {
            let mut out = Vec::new();
            for n in &networks {
                let (c, u) = engine
                    .network_inspect(n)
                    .with_context(|| format!("network inspect {n}"))?;
                out.push(view(&c, &u));
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        NetworkCommand::Prune => {
            for n in engine.network_prune()? {
                println!("{n}");
            }
        }
        NetworkCommand::Rm { networks } => {
            for n in &networks {
                engine
                    .network_remove(n)
                    .with_context(|| format!("network rm {n}"))?;
                println!("{n}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
