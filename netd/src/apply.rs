//! `setup`: validate, then apply, rolling back on failure.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::netlink::{format_mac, Netlink};
use crate::netns::Netns;
use crate::plan::{check_request, plan, Mode, Planned};
use crate::state::{Lease, LeaseAttachment, LockedState, NetworkState, State};
use crate::wire::{InterfaceResult, Request, SetupResult};
use crate::{dns, nft, responder, Error, Options};

/// Something applied that rollback must undo (in reverse order).
enum Undo {
    /// A host interface netd created (deleting a veth end removes its
    /// peer in the netns, with the addresses and routes on it).
    DeleteLink(String),
    /// A DNS responder netd started for a network.
    StopResponder(String),
    /// The nft table as it was (it is replaced as a whole).
    RestoreNft(Box<State>),
}

/// Set up `req` in the network namespace at `netns_path`.
pub fn setup(netns_path: &Path, req: &Request, opts: &Options) -> Result<SetupResult, Error> {
    if req.pasta.is_some() {
        return crate::pasta::setup(netns_path, req, opts);
    }
    attach(netns_path, req, opts, Mode::Setup)
}

/// Add `req`'s networks to the container's lease (made as by [`setup`]
/// when it has none), leaving its other interfaces alone. The result lists
/// the new interfaces only; its `dns_servers` and `port_mappings` are the
/// lease's after the change.
pub fn connect(netns_path: &Path, req: &Request, opts: &Options) -> Result<SetupResult, Error> {
    attach(netns_path, req, opts, Mode::Connect)
}

fn attach(
    netns_path: &Path,
    req: &Request,
    opts: &Options,
    mode: Mode,
) -> Result<SetupResult, Error> {
    check_request(req)?;
    let netns = Netns::open(netns_path)?;
    let mut inside = netns.netlink()?;
    let mut host = Netlink::open().map_err(Error::NetlinkSocket)?;
    let locked = LockedState::lock(&opts.state_dir)?;
    let old = locked.load()?;
    let planned = plan(req, &old, &mut host, &mut inside, netns_path, mode)?;
    let new = with_lease(&old, req, &planned, netns_path);

    let mut undo = Vec::new();
    let mut interfaces = Vec::new();
    let mut result = apply_links(
        &planned,
        &netns,
        &mut host,
        &mut inside,
        &mut undo,
        &mut interfaces,
    );
    if result.is_ok() {
        result = nft::apply(&new, &opts.nft_table);
        if result.is_ok() {
            undo.push(Undo::RestoreNft(Box::new(old)));
        }
    }
    if result.is_ok() {
        result = start_responders(&planned, opts, &mut undo);
    }
    if result.is_ok() {
        result = locked.save(&new);
    }
    if let Err(source) = result {
        let rollback_failures = rollback(&mut host, opts, undo);
        return Err(Error::Apply {
            op: match mode {
                Mode::Setup => "setup",
                Mode::Connect => "connect",
            },
            id: req.container_id.clone(),
            source: Box::new(source),
            rollback_failures,
        });
    }
    let lease = &new.leases[&req.container_id];
    Ok(SetupResult {
        container_id: req.container_id.clone(),
        interfaces,
        dns_servers: dns_servers(req.dns_servers.as_deref(), &new, lease),
        port_mappings: lease.port_mappings.clone(),
    })
}

/// A DNS responder for every DNS-enabled network that lacks one.
fn start_responders(
    planned: &[Planned],
    opts: &Options,
    undo: &mut Vec<Undo>,
) -> Result<(), Error> {
    for p in planned.iter().filter(|p| p.config.dns_enabled) {
        if responder::ensure(opts, &p.config)? {
            undo.push(Undo::StopResponder(p.config.name.clone()));
        }
    }
    Ok(())
}

/// `state` plus the new lease or attachments (and the networks they
/// bring in).
fn with_lease(state: &State, req: &Request, planned: &[Planned], netns: &Path) -> State {
    let mut new = state.clone();
    for p in planned {
        let created_before = new
            .networks
            .get(&p.config.name)
            .is_some_and(|n| n.created_bridge);
        let ns = NetworkState {
            config: p.config.clone(),
            created_bridge: p.create_bridge || created_before,
        };
        new.networks.insert(p.config.name.clone(), ns);
    }
    let attachments = planned.iter().map(|p| LeaseAttachment {
        network: p.config.name.clone(),
        ip: p.ip,
        ip6: p.ip6,
        host_interface: p.host_veth.clone(),
        interface: p.interface.clone(),
        aliases: p.aliases.clone(),
    });
    let lease = new
        .leases
        .entry(req.container_id.clone())
        .or_insert_with(|| Lease {
            container_name: req.container_name.clone(),
            netns: netns.to_path_buf(),
            attachments: Vec::new(),
            port_mappings: req.port_mappings.clone(),
        });
    lease.attachments.extend(attachments);
    new
}

fn apply_links(
    planned: &[Planned],
    netns: &Netns,
    host: &mut Netlink,
    inside: &mut Netlink,
    undo: &mut Vec<Undo>,
    out: &mut Vec<InterfaceResult>,
) -> Result<(), Error> {
    let lo = index_of(inside, "lo")?;
    inside.set_up(lo, None).map_err(|source| Error::LinkUp {
        name: "lo".into(),
        source,
    })?;
    for p in planned {
        let bridge = ensure_bridge(host, p, undo)?;
        let mtu = p.config.mtu;
        host.create_veth(&p.host_veth, &p.interface, netns.fd(), mtu)
            .map_err(|source| Error::CreateVeth {
                host: p.host_veth.clone(),
                peer: p.interface.clone(),
                source,
            })?;
        undo.push(Undo::DeleteLink(p.host_veth.clone()));
        let hv = index_of(host, &p.host_veth)?;
        host.set_up(hv, Some(bridge))
            .map_err(|source| Error::LinkUp {
                name: p.host_veth.clone(),
                source,
            })?;
        out.push(configure_inside(inside, p)?);
    }
    Ok(())
}

/// The bridge's index, creating and addressing it when needed.
fn ensure_bridge(host: &mut Netlink, p: &Planned, undo: &mut Vec<Undo>) -> Result<u32, Error> {
    let n = &p.config;
    if p.create_bridge {
        host.create_bridge(&n.bridge, random_mac(), n.mtu)
            .map_err(|source| Error::CreateBridge {
                name: n.bridge.clone(),
                source,
            })?;
        undo.push(Undo::DeleteLink(n.bridge.clone()));
        // Only on interfaces netd creates: 127.0.0.0/8 sources may be routed
        // out of the bridge (DNAT of published ports from localhost), and
        // packets arriving on it may be forwarded (hairpin, outbound NAT).
        sysctl("ipv4", &n.bridge, "route_localnet", "1")?;
        sysctl(
            "ipv4",
            &n.bridge,
            "forwarding",
            if n.internal { "0" } else { "1" },
        )?;
        if n.subnet6.is_some() {
            // A host booted with IPv6 off by default still gets it here.
            sysctl("ipv6", &n.bridge, "disable_ipv6", "0")?;
            // IPv6 forwarding per interface (Linux 6.17+): what
            // `forwarding` above is for IPv4. Older kernels only have the
            // global switch, which netd leaves alone.
            let key = "force_forwarding";
            if Path::new(&format!("/proc/sys/net/ipv6/conf/{}/{key}", n.bridge)).exists() {
                sysctl("ipv6", &n.bridge, key, if n.internal { "0" } else { "1" })?;
            }
        }
    }
    let index = index_of(host, &n.bridge)?;
    let (gw, prefix) = (n.gateway(), n.subnet.prefix());
    let addr_err = |ip: std::net::IpAddr, prefix| {
        let name = n.bridge.clone();
        move |source| Error::AddAddr {
            name,
            ip,
            prefix,
            source,
        }
    };
    let has_gw = host
        .addrs()
        .map_err(Error::ListHost)?
        .iter()
        .any(|a| a.index == index && a.ip == gw);
    if !has_gw {
        host.add_addr(index, gw, prefix, n.subnet.broadcast())
            .map_err(addr_err(gw.into(), prefix))?;
    }
    if let (Some(subnet6), Some(gw6)) = (n.subnet6, n.gateway6()) {
        let has_gw6 = host
            .addrs6()
            .map_err(Error::ListHost)?
            .iter()
            .any(|a| a.index == index && a.ip == gw6);
        if !has_gw6 {
            host.add_addr6(index, gw6, subnet6.prefix())
                .map_err(addr_err(gw6.into(), subnet6.prefix()))?;
        }
    }
    host.set_up(index, None).map_err(|source| Error::LinkUp {
        name: n.bridge.clone(),
        source,
    })?;
    Ok(index)
}

fn configure_inside(inside: &mut Netlink, p: &Planned) -> Result<InterfaceResult, Error> {
    let n = &p.config;
    let link = inside
        .link_by_name(&p.interface)
        .map_err(|source| Error::LookupLink {
            name: p.interface.clone(),
            source,
        })?
        .ok_or_else(|| Error::LinkVanished {
            name: p.interface.clone(),
        })?;
    let prefix = n.subnet.prefix();
    inside
        .add_addr(link.index, p.ip, prefix, n.subnet.broadcast())
        .map_err(|source| Error::AddAddr {
            name: p.interface.clone(),
            ip: p.ip.into(),
            prefix,
            source,
        })?;
    let v6 = n.subnet6.zip(p.ip6).zip(n.gateway6());
    if let Some(((subnet6, ip6), _)) = v6 {
        inside
            .add_addr6(link.index, ip6, subnet6.prefix())
            .map_err(|source| Error::AddAddr {
                name: p.interface.clone(),
                ip: ip6.into(),
                prefix: subnet6.prefix(),
                source,
            })?;
    }
    inside
        .set_up(link.index, None)
        .map_err(|source| Error::LinkUp {
            name: p.interface.clone(),
            source,
        })?;
    if p.default_route {
        let gateway = n.gateway();
        inside
            .add_default_route(gateway)
            .map_err(|source| Error::AddRoute {
                gateway: gateway.into(),
                source,
            })?;
    }
    if let (true, Some((_, gateway))) = (p.default_route6, v6) {
        inside
            .add_default_route6(gateway, link.index)
            .map_err(|source| Error::AddRoute {
                gateway: gateway.into(),
                source,
            })?;
    }
    Ok(InterfaceResult {
        network: n.name.clone(),
        name: p.interface.clone(),
        host_interface: p.host_veth.clone(),
        mac_address: link.mac.as_ref().map(format_mac).unwrap_or_default(),
        address: format!("{}/{}", p.ip, prefix),
        gateway: n.gateway(),
        default_route: p.default_route,
        address6: v6.map(|((s, ip), _)| format!("{ip}/{}", s.prefix())),
        gateway6: v6.map(|(_, gw)| gw),
        default_route6: p.default_route6,
    })
}

pub(crate) fn index_of(nl: &mut Netlink, name: &str) -> Result<u32, Error> {
    nl.link_by_name(name)
        .map_err(|source| Error::LookupLink {
            name: name.to_string(),
            source,
        })?
        .map(|l| l.index)
        .ok_or_else(|| Error::LinkVanished {
            name: name.to_string(),
        })
}

/// A random unicast, locally administered MAC address.
fn random_mac() -> [u8; 6] {
    let mut mac = [0u8; 6];
    let read = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut mac));
    if read.is_err() {
        // Still unique enough per host: derived from the clock and the pid.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let v = t.as_nanos() as u64 ^ (u64::from(std::process::id()) << 32);
        mac.copy_from_slice(&v.to_be_bytes()[2..]);
    }
    mac[0] = (mac[0] & 0xfe) | 0x02;
    mac
}

/// `net.<family>.conf.<ifname>.<key> = value` (`family`: ipv4 or ipv6).
fn sysctl(family: &str, ifname: &str, key: &str, value: &str) -> Result<(), Error> {
    let path = PathBuf::from(format!("/proc/sys/net/{family}/conf/{ifname}/{key}"));
    std::fs::write(&path, value).map_err(|source| Error::Sysctl { path, source })
}

/// Undo in reverse order; every failure is returned, none stops the rest.
fn rollback(host: &mut Netlink, opts: &Options, undo: Vec<Undo>) -> Vec<Error> {
    let mut failures = Vec::new();
    for u in undo.into_iter().rev() {
        let done = match u {
            Undo::DeleteLink(name) => crate::teardown::delete_link(host, &name).map(drop),
            Undo::StopResponder(network) => responder::stop(&opts.state_dir, &network),
            Undo::RestoreNft(old) => nft::apply(&old, &opts.nft_table),
        };
        if let Err(e) = done {
            failures.push(e);
        }
    }
    failures
}

/// The request's DNS servers; else the gateways of the lease's
/// DNS-enabled networks; else the host's non-loopback resolvers when any
/// of its networks has outbound access.
pub(crate) fn dns_servers(
    asked: Option<&[Ipv4Addr]>,
    state: &State,
    lease: &Lease,
) -> Vec<Ipv4Addr> {
    if let Some(d) = asked {
        return d.to_vec();
    }
    let networks: Vec<_> = (lease.attachments.iter())
        .filter_map(|a| state.networks.get(&a.network))
        .map(|n| &n.config)
        .collect();
    let responders: Vec<_> = (networks.iter())
        .filter(|n| n.dns_enabled)
        .map(|n| n.gateway())
        .collect();
    if !responders.is_empty() {
        return responders;
    }
    if networks.iter().all(|n| n.internal) {
        return Vec::new();
    }
    dns::host_resolvers()
}
