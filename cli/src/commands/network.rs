//! `berth network create|ls|inspect|rm|connect|disconnect`: bridge networks
//! berth-netd attaches containers to (`berth run --network NAME`, `berth
//! network connect NAME CONTAINER`).

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
    /// Connect a container to a network (a running one at once)
    Connect(ConnectArgs),
    /// Disconnect a container from a network (a running one at once)
    Disconnect {
        /// Also when berth-netd cannot detach it from the running container
        #[arg(short, long)]
        force: bool,
        network: String,
        container: String,
    },
}

#[derive(clap::Args, Debug)]
pub struct ConnectArgs {
    /// Static IPv4 address on the network (a user-defined one)
    #[arg(long)]
    pub ip: Option<std::net::Ipv4Addr>,
    /// Another name the network's DNS answers for the container (repeatable)
    #[arg(long)]
    pub alias: Vec<String>,
    pub network: String,
    pub container: String,
}

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// Subnet in CIDR form, IPv4 or IPv6; once per family (default: a free
    /// 10.89.N.0/24, and with --ipv6 a free fd89:0:0:N::/64)
    #[arg(long)]
    pub subnet: Vec<String>,
    /// Gateway address, IPv4 or IPv6; once per family (default: the
    /// subnet's first host, ::1 of the IPv6 subnet)
    #[arg(long)]
    pub gateway: Vec<String>,
    /// Dual stack: IPv6 next to IPv4 (implied by an IPv6 subnet)
    #[arg(long)]
    pub ipv6: bool,
    /// IPv6 subnet in CIDR form (the same as an IPv6 --subnet)
    #[arg(long)]
    pub subnet6: Option<String>,
    /// IPv6 gateway (the same as an IPv6 --gateway)
    #[arg(long)]
    pub gateway6: Option<String>,
    /// Allocate IPv4 addresses only from this CIDR inside --subnet
    #[arg(long)]
    pub ip_range: Option<String>,
    /// Driver option KEY=VALUE: mtu=N (also com.docker.network.driver.mtu)
    #[arg(short = 'o', long = "opt")]
    pub opt: Vec<String>,
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
    let mut ipam =
        vec![json!({"Subnet": c.subnet.to_string(), "Gateway": c.gateway().to_string()})];
    if let Some(r) = c.ip_range {
        ipam[0]["IPRange"] = json!(r.to_string());
    }
    if let (Some(s), Some(g)) = (c.subnet6, c.gateway6()) {
        ipam.push(json!({"Subnet": s.to_string(), "Gateway": g.to_string()}));
    }
    let mut options = serde_json::Map::new();
    if let Some(mtu) = c.mtu {
        options.insert("mtu".into(), json!(mtu.to_string()));
    }
    json!({
        "Name": c.name,
        "Driver": "bridge",
        "NetworkInterface": c.bridge,
        "Subnet": c.subnet.to_string(),
        "Gateway": c.gateway().to_string(),
        "EnableIPv6": c.subnet6.is_some(),
        "IPAM": {"Driver": "default", "Config": ipam},
        "Options": options,
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
                subnets: c.subnet,
                gateways: c.gateway,
                subnet6: c.subnet6,
                gateway6: c.gateway6,
                ipv6: c.ipv6,
                ip_range: c.ip_range,
                options: c.opt,
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
        NetworkCommand::Connect(c) => {
            engine
                .network_connect(&c.network, &c.container, c.ip, &c.alias)
                .with_context(|| format!("network connect {} {}", c.network, c.container))?;
        }
        NetworkCommand::Disconnect {
            force,
            network,
            container,
        } => {
            engine
                .network_disconnect(&network, &container, force)
                .with_context(|| format!("network disconnect {network} {container}"))?;
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
