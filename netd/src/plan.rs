//! Validation: everything a setup checks before it changes anything.
//!
//! [`check_request`] looks at the request alone; [`plan`] checks it against
//! the state (other networks, leases, published ports) and the host
//! (interfaces, addresses, bound ports) and allocates addresses. Nothing
//! here has side effects beyond reading.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpListener, UdpSocket};
use std::path::Path;

use crate::ipam::{allocate4, allocate6, overlaps_host4, overlaps_host6, reserved6};
use crate::netlink::{Link, Netlink};
use crate::state::{Lease, State};
use crate::wire::{NetworkConfig, PortMapping, Protocol, Request};
use crate::Error;

/// What a request does to the container's lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `setup`: the container has no lease; the request makes it.
    Setup,
    /// `connect`: add the request's attachments to the container's lease
    /// (made as by setup when it has none).
    Connect,
}

/// One attachment, ready to apply.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    pub config: NetworkConfig,
    pub ip: Ipv4Addr,
    /// The IPv6 address on a dual-stack network.
    pub ip6: Option<Ipv6Addr>,
    /// Host end of the veth pair.
    pub host_veth: String,
    /// Name inside the netns.
    pub interface: String,
    /// The bridge must be created (it does not exist on the host).
    pub create_bridge: bool,
    pub default_route: bool,
    pub default_route6: bool,
    pub aliases: Vec<String>,
}

/// Interface names: 1-15 bytes of `[A-Za-z0-9_.-]` (safe in nft scripts).
pub(crate) fn valid_ifname(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// The name inside the netns of each attachment: the one asked for, else
/// `eth<index>` for a new lease, or the lowest `ethN` the container does
/// not use yet when `lease` (its current one) is extended.
pub(crate) fn interface_names(req: &Request, lease: Option<&Lease>) -> Vec<String> {
    let Some(lease) = lease else {
        return (req.networks.iter().enumerate())
            .map(|(i, a)| {
                a.interface_name
                    .clone()
                    .unwrap_or_else(|| format!("eth{i}"))
            })
            .collect();
    };
    let mut taken: BTreeSet<String> = (lease.attachments.iter())
        .map(|a| a.interface.clone())
        .chain(req.networks.iter().filter_map(|a| a.interface_name.clone()))
        .collect();
    let mut out = Vec::new();
    for a in &req.networks {
        let name = a.interface_name.clone().unwrap_or_else(|| {
            let free = (0..)
                .map(|n| format!("eth{n}"))
                .find(|n| !taken.contains(n));
            free.expect("a free ethN")
        });
        taken.insert(name.clone());
        out.push(name);
    }
    out
}

/// Every name is valid and used once.
fn check_interface_names(names: &[String]) -> Result<(), Error> {
    let mut seen = BTreeSet::new();
    for n in names {
        if !valid_ifname(n) {
            return Err(Error::BadInterfaceName(n.clone()));
        }
        if !seen.insert(n) {
            return Err(Error::DuplicateInterface(n.clone()));
        }
    }
    Ok(())
}

/// Checks that need nothing but the request.
pub(crate) fn check_request(req: &Request) -> Result<(), Error> {
    if req.container_id.is_empty() {
        return Err(Error::EmptyContainerId);
    }
    if req.networks.is_empty() {
        return Err(Error::NoNetworks);
    }
    let mut names = BTreeSet::new();
    // The names asked for (defaults are checked with the lease, in plan).
    let asked: Vec<String> = (req.networks.iter())
        .filter_map(|a| a.interface_name.clone())
        .collect();
    check_interface_names(&asked)?;
    for (i, a) in req.networks.iter().enumerate() {
        check_network(&a.network)?;
        if !names.insert(&a.network.name) {
            return Err(Error::DuplicateNetwork(a.network.name.clone()));
        }
        if let Some(ip) = a.static_ip {
            let n = &a.network;
            if !n.subnet.contains_host(ip) || ip == n.gateway() {
                return Err(Error::StaticIpOutsideSubnet {
                    network: n.name.clone(),
                    ip,
                    subnet: n.subnet,
                });
            }
        }
        check_static_ip6(&a.network, a.static_ip6)?;
        for b in &req.networks[..i] {
            if b.network.subnet.overlaps(&a.network.subnet) {
                return Err(overlap(&a.network, &b.network));
            }
            if let Some(e) = overlap6(&a.network, &b.network) {
                return Err(e);
            }
        }
    }
    check_ports(&req.port_mappings)
}

fn check_static_ip6(n: &NetworkConfig, ip: Option<Ipv6Addr>) -> Result<(), Error> {
    let Some(ip) = ip else { return Ok(()) };
    let network = n.name.clone();
    match n.subnet6 {
        None => Err(Error::StaticIp6WithoutSubnet { network, ip }),
        Some(subnet) if !subnet.contains_host(ip) || Some(ip) == n.gateway6() => {
            Err(Error::StaticIp6OutsideSubnet {
                network,
                ip,
                subnet,
            })
        }
        Some(_) => Ok(()),
    }
}

/// Checks of a network definition on its own (name, bridge, subnets,
/// gateways, ip range, MTU): what `setup` checks first, for callers that
/// define networks (the engine's `network create`).
pub fn check_network(n: &NetworkConfig) -> Result<(), Error> {
    let name_ok = (1..=64).contains(&n.name.len())
        && n.name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !name_ok {
        return Err(Error::BadNetworkName(n.name.clone()));
    }
    if !valid_ifname(&n.bridge) {
        return Err(Error::BadInterfaceName(n.bridge.clone()));
    }
    if !n.subnet.contains_host(n.gateway()) {
        return Err(Error::GatewayOutsideSubnet {
            network: n.name.clone(),
            gateway: n.gateway(),
            subnet: n.subnet,
        });
    }
    if let Some(range) = n.ip_range.filter(|r| !n.subnet.covers(r)) {
        return Err(Error::IpRangeOutsideSubnet {
            network: n.name.clone(),
            range,
            subnet: n.subnet,
        });
    }
    check_ipv6(n)?;
    match n.mtu {
        Some(mtu) if !(68..=65535).contains(&mtu) => Err(Error::BadMtu {
            network: n.name.clone(),
            mtu,
        }),
        _ => Ok(()),
    }
}

/// `subnet6` is a unicast range and `gateway6` one of its host addresses.
fn check_ipv6(n: &NetworkConfig) -> Result<(), Error> {
    let network = n.name.clone();
    match (n.subnet6, n.gateway6) {
        (None, None) => Ok(()),
        (None, Some(gateway)) => Err(Error::Gateway6WithoutSubnet { network, gateway }),
        (Some(subnet), _) if reserved6(&subnet) => Err(Error::Subnet6Reserved { network, subnet }),
        (Some(subnet), Some(gateway)) if !subnet.contains_host(gateway) => {
            Err(Error::Gateway6OutsideSubnet {
                network,
                gateway,
                subnet,
            })
        }
        (Some(_), _) => Ok(()),
    }
}

pub(crate) fn check_ports(ports: &[PortMapping]) -> Result<(), Error> {
    for (i, p) in ports.iter().enumerate() {
        if p.host_port == 0 || p.container_port == 0 {
            return Err(Error::ZeroPort);
        }
        if p.host_end().is_none() || p.container_end().is_none() {
            return Err(Error::BadPortRange {
                host_port: p.host_port,
                protocol: p.protocol,
                range: p.range,
            });
        }
        if ports[..i].iter().any(|q| ports_clash(p, q)) {
            return Err(Error::DuplicatePort {
                port: p.host_port,
                protocol: p.protocol,
            });
        }
    }
    Ok(())
}

/// Whether two mappings claim a common host port.
fn ports_clash(a: &PortMapping, b: &PortMapping) -> bool {
    let end = |p: &PortMapping| p.host_end().unwrap_or(u16::MAX);
    a.host_port <= end(b)
        && b.host_port <= end(a)
        && a.protocol == b.protocol
        && (a.host_ip.is_none() || b.host_ip.is_none() || a.host_ip == b.host_ip)
}

/// The IPv6 subnets of `n` and `other` overlap.
fn overlap6(n: &NetworkConfig, other: &NetworkConfig) -> Option<Error> {
    let (a, b) = (n.subnet6?, other.subnet6?);
    a.overlaps(&b).then(|| Error::Subnet6Overlap {
        network: n.name.clone(),
        subnet: a,
        other: other.name.clone(),
        other_subnet: b,
    })
}

fn overlap(n: &NetworkConfig, other: &NetworkConfig) -> Error {
    Error::SubnetOverlap {
        network: n.name.clone(),
        subnet: n.subnet,
        other: other.name.clone(),
        other_subnet: other.subnet,
    }
}

/// The host end's name: `vb` and a hash of container id and network, so
/// it is stable for a container and fits in 15 bytes.
pub(crate) fn host_veth_name(container_id: &str, network: &str) -> String {
    // FNV-1a, 32 bits.
    let mut h: u32 = 0x811c_9dc5;
    for b in container_id.bytes().chain([0]).chain(network.bytes()) {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    format!("vb{h:08x}")
}

/// Check `req` against the state and the host and allocate addresses: for
/// `setup` the container must have no lease; for `connect` its lease (if
/// any) must be in this netns, publish nothing new and not have the
/// networks yet. Default routes go via the first non-internal attachment
/// of the lease (of the dual-stack ones for IPv6), old ones counted first.
pub(crate) fn plan(
    req: &Request,
    state: &State,
    host: &mut Netlink,
    inside: &mut Netlink,
    netns: &Path,
    mode: Mode,
) -> Result<Vec<Planned>, Error> {
    let lease = state.leases.get(&req.container_id);
    if let Some(lease) = lease {
        check_extend(req, lease, netns, mode)?;
    }
    let names = interface_names(req, lease);
    check_interface_names(&names)?;
    let links = host.links().map_err(Error::ListHost)?;
    let v6 = req.networks.iter().any(|a| a.network.subnet6.is_some());
    let addrs = host_addresses(host, v6)?;
    let mut out = Vec::new();
    let (mut routed, mut routed6) = lease.map_or((false, false), |l| routes_of(l, state));
    for (a, interface) in req.networks.iter().zip(names) {
        let n = &a.network;
        check_against_state(n, state)?;
        let bridge = links.iter().find(|l| l.name == n.bridge);
        check_bridge(n, bridge)?;
        check_host_addresses(n, &links, &addrs)?;
        let ip = allocate4(n, a.static_ip, state)?;
        let ip6 = allocate6(n, a.static_ip6, state)?;
        let host_veth = host_veth_name(&req.container_id, &n.name);
        if links.iter().any(|l| l.name == host_veth) {
            return Err(Error::HostInterfaceExists(host_veth));
        }
        let found = inside
            .link_by_name(&interface)
            .map_err(|source| Error::LookupLink {
                name: interface.clone(),
                source,
            })?;
        if found.is_some() {
            return Err(Error::NetnsInterfaceExists {
                name: interface,
                path: netns.to_path_buf(),
            });
        }
        let default_route = !n.internal && !routed;
        routed |= default_route;
        let default_route6 = !n.internal && ip6.is_some() && !routed6;
        routed6 |= default_route6;
        let create_bridge = bridge.is_none();
        let aliases = a.aliases.clone();
        out.push(Planned {
            config: n.clone(),
            ip,
            ip6,
            host_veth,
            interface,
            create_bridge,
            default_route,
            default_route6,
            aliases,
        });
    }
    if lease.is_none() {
        let published6 = out.first().is_some_and(|p| p.ip6.is_some());
        check_ports_free(req, state, published6)?;
    }
    Ok(out)
}

/// Whether `lease` has an attachment that holds the IPv4 (and one that
/// holds the IPv6) default route: a non-internal (dual-stack) one.
pub(crate) fn routes_of(lease: &Lease, state: &State) -> (bool, bool) {
    let outbound = |name: &str| state.networks.get(name).is_some_and(|n| !n.config.internal);
    let v4 = lease.attachments.iter().any(|a| outbound(&a.network));
    let v6 = (lease.attachments.iter()).any(|a| a.ip6.is_some() && outbound(&a.network));
    (v4, v6)
}

/// A connect may extend `lease`: same netns, no ports, new networks only.
fn check_extend(req: &Request, lease: &Lease, netns: &Path, mode: Mode) -> Result<(), Error> {
    let id = req.container_id.clone();
    if mode == Mode::Setup {
        return Err(Error::AlreadySetUp(id));
    }
    if !same_netns(&lease.netns, netns) {
        let (path, leased) = (netns.to_path_buf(), lease.netns.clone());
        return Err(Error::NetnsMismatch { id, path, leased });
    }
    if !req.port_mappings.is_empty() {
        return Err(Error::ConnectPorts(id));
    }
    for a in &req.networks {
        if lease
            .attachments
            .iter()
            .any(|l| l.network == a.network.name)
        {
            let network = a.network.name.clone();
            return Err(Error::AlreadyConnected { id, network });
        }
    }
    Ok(())
}

/// Whether two paths name the same namespace (device and inode).
fn same_netns(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => (x.dev(), x.ino()) == (y.dev(), y.ino()),
        _ => false,
    }
}

/// The host's addresses as `(link index, address, prefix)`: IPv4, and
/// IPv6 (but link-local) when `v6`.
fn host_addresses(host: &mut Netlink, v6: bool) -> Result<Vec<(u32, IpAddr, u8)>, Error> {
    let mut addrs: Vec<(u32, IpAddr, u8)> = (host.addrs().map_err(Error::ListHost)?)
        .iter()
        .map(|a| (a.index, a.ip.into(), a.prefix))
        .collect();
    if v6 {
        let v6 = host.addrs6().map_err(Error::ListHost)?;
        addrs.extend(
            v6.iter()
                .filter(|a| !a.link_local())
                .map(|a| (a.index, a.ip.into(), a.prefix)),
        );
    }
    Ok(addrs)
}

/// No address on a host interface other than `n`'s bridge shares addresses
/// with `n`'s subnets.
fn check_host_addresses(
    n: &NetworkConfig,
    links: &[Link],
    addrs: &[(u32, IpAddr, u8)],
) -> Result<(), Error> {
    for &(index, ip, prefix) in addrs {
        let on = links
            .iter()
            .find(|l| l.index == index)
            .map(|l| l.name.as_str())
            .unwrap_or("?");
        let subnet = match ip {
            IpAddr::V4(ip) if overlaps_host4(&n.subnet, ip, prefix) => n.subnet.to_string(),
            IpAddr::V6(ip) if n.subnet6.is_some_and(|s| overlaps_host6(&s, ip, prefix)) => {
                n.subnet6.map(|s| s.to_string()).unwrap_or_default()
            }
            _ => continue,
        };
        if on != n.bridge {
            return Err(Error::SubnetOverlapsHost {
                network: n.name.clone(),
                subnet,
                ip,
                prefix,
                iface: on.to_string(),
            });
        }
    }
    Ok(())
}

/// `n` is either known to the state with the same config, or clashes with
/// no known network.
fn check_against_state(n: &NetworkConfig, state: &State) -> Result<(), Error> {
    if let Some(known) = state.networks.get(&n.name) {
        if known.config != *n {
            let (subnet, bridge) = (known.config.subnet, known.config.bridge.clone());
            return Err(Error::NetworkMismatch {
                network: n.name.clone(),
                subnet,
                bridge,
            });
        }
        return Ok(());
    }
    for other in state.networks.values() {
        if other.config.subnet.overlaps(&n.subnet) {
            return Err(overlap(n, &other.config));
        }
        if let Some(e) = overlap6(n, &other.config) {
            return Err(e);
        }
        if other.config.bridge == n.bridge {
            let (network, bridge, other) =
                (n.name.clone(), n.bridge.clone(), other.config.name.clone());
            return Err(Error::BridgeInUse {
                network,
                bridge,
                other,
            });
        }
    }
    Ok(())
}

fn check_bridge(n: &NetworkConfig, bridge: Option<&Link>) -> Result<(), Error> {
    match bridge {
        Some(l) if l.kind.as_deref() != Some("bridge") => Err(Error::NotABridge {
            name: n.bridge.clone(),
        }),
        _ => Ok(()),
    }
}

/// No other lease publishes the same port, and the host can bind it (on
/// `::` too when the ports are also published over IPv6).
fn check_ports_free(req: &Request, state: &State, published6: bool) -> Result<(), Error> {
    for p in &req.port_mappings {
        for (owner, lease) in &state.leases {
            if lease.port_mappings.iter().any(|q| ports_clash(p, q)) {
                let owner = owner.clone();
                return Err(Error::PortPublished {
                    port: p.host_port,
                    protocol: p.protocol,
                    owner,
                });
            }
        }
        let mut any: Vec<IpAddr> = vec![p.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED).into()];
        if published6 && p.host_ip.is_none() {
            any.push(Ipv6Addr::UNSPECIFIED.into());
        }
        for port in p.host_ports() {
            for &ip in &any {
                let bound = match p.protocol {
                    Protocol::Tcp => TcpListener::bind((ip, port)).map(drop),
                    Protocol::Udp => UdpSocket::bind((ip, port)).map(drop),
                };
                bound.map_err(|source| Error::PortInUse {
                    port,
                    protocol: p.protocol,
                    source,
                })?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Attachment;

    fn req(nets: &[(&str, &str)]) -> Request {
        let networks = nets
            .iter()
            .map(|(name, subnet)| Attachment {
                network: NetworkConfig {
                    name: name.to_string(),
                    bridge: format!("br-{name}"),
                    subnet: subnet.parse().unwrap(),
                    gateway: None,
                    internal: false,
                    mtu: None,
                    dns_enabled: false,
                    ip_range: None,
                    subnet6: None,
                    gateway6: None,
                },
                interface_name: None,
                static_ip: None,
                static_ip6: None,
                aliases: vec![],
            })
            .collect();
        Request {
            container_id: "c".into(),
            container_name: "c".into(),
            networks,
            port_mappings: vec![],
            dns_servers: None,
            pasta: None,
        }
    }

    fn check(r: &Request, want: Option<crate::wire::ErrorCode>) {
        assert_eq!(check_request(r).err().map(|e| e.code()), want, "{r:?}");
    }

    #[test]
    fn request_checks() {
        use crate::wire::ErrorCode::*;
        check(&req(&[("a", "10.1.0.0/24")]), None);
        check(
            &req(&[("a", "10.1.0.0/24"), ("b", "10.1.0.0/16")]),
            Some(Conflict),
        );
        check(
            &req(&[("a", "10.1.0.0/24"), ("a", "10.2.0.0/24")]),
            Some(InvalidRequest),
        );
        check(&req(&[]), Some(InvalidRequest));
        let mut r = req(&[("a", "10.1.0.0/24")]);
        r.networks[0].static_ip = Some(Ipv4Addr::new(10, 2, 0, 5));
        check(&r, Some(InvalidRequest));
        r.networks[0].static_ip = Some(Ipv4Addr::new(10, 1, 0, 1));
        check(&r, Some(InvalidRequest));
        let mut r = req(&[("a", "10.1.0.0/24")]);
        r.networks[0].network.bridge = "a-very-long-bridge".into();
        check(&r, Some(InvalidRequest));
        let mut r = req(&[("a", "10.1.0.0/24")]);
        let pm = PortMapping {
            host_ip: None,
            host_port: 80,
            container_port: 80,
            protocol: Protocol::Tcp,
            range: 1,
        };
        r.port_mappings = vec![
            pm,
            PortMapping {
                host_ip: Some(Ipv4Addr::LOCALHOST),
                ..pm
            },
        ];
        check(&r, Some(InvalidRequest));
        r.port_mappings[1].protocol = Protocol::Udp;
        check(&r, None);
        // Ranges: overlapping host ranges clash, ranges past 65535 are invalid.
        r.port_mappings = vec![
            PortMapping {
                host_port: 70,
                range: 11,
                ..pm
            },
            PortMapping {
                host_port: 80,
                container_port: 1000,
                ..pm
            },
        ];
        check(&r, Some(InvalidRequest));
        r.port_mappings[1].host_port = 81;
        check(&r, None);
        r.port_mappings = vec![PortMapping {
            host_port: 65535,
            range: 2,
            ..pm
        }];
        check(&r, Some(InvalidRequest));
    }

    #[test]
    fn dual_stack_request_checks() {
        use crate::wire::ErrorCode::*;
        let v6 = |r: &mut Request, i: usize, s: &str| {
            r.networks[i].network.subnet6 = Some(s.parse().unwrap());
        };
        let mut r = req(&[("a", "10.1.0.0/24"), ("b", "10.2.0.0/24")]);
        v6(&mut r, 0, "fd89:0:0:1::/64");
        v6(&mut r, 1, "fd89:0:0:2::/64");
        check(&r, None);
        // Overlapping IPv6 subnets of one request.
        v6(&mut r, 1, "fd89::/48");
        check(&r, Some(Conflict));
        let mut r = req(&[("a", "10.1.0.0/24")]);
        for reserved in ["fe80::/64", "ff02::/16", "::/96", "::/0"] {
            v6(&mut r, 0, reserved);
            check(&r, Some(InvalidRequest));
        }
        v6(&mut r, 0, "fd89:0:0:1::/64");
        let gw6 =
            |r: &mut Request, g: &str| r.networks[0].network.gateway6 = Some(g.parse().unwrap());
        gw6(&mut r, "fd89:0:0:1::fe");
        check(&r, None);
        gw6(&mut r, "fd89:0:0:2::1");
        check(&r, Some(InvalidRequest));
        gw6(&mut r, "fd89:0:0:1::");
        check(&r, Some(InvalidRequest));
        r.networks[0].network.gateway6 = None;
        // Static IPv6: a host address of the subnet that is not the gateway.
        let ip6 = |r: &mut Request, a: &str| r.networks[0].static_ip6 = Some(a.parse().unwrap());
        ip6(&mut r, "fd89:0:0:1::42");
        check(&r, None);
        ip6(&mut r, "fd89:0:0:1::1");
        check(&r, Some(InvalidRequest));
        ip6(&mut r, "fd89:0:0:9::42");
        check(&r, Some(InvalidRequest));
        // gateway6 or static_ip6 without subnet6.
        let mut r = req(&[("a", "10.1.0.0/24")]);
        ip6(&mut r, "fd89:0:0:1::42");
        check(&r, Some(InvalidRequest));
        let mut r = req(&[("a", "10.1.0.0/24")]);
        gw6(&mut r, "fd89:0:0:1::1");
        check(&r, Some(InvalidRequest));
        // The ip range lies inside the subnet.
        let mut r = req(&[("a", "10.1.0.0/24")]);
        r.networks[0].network.ip_range = Some("10.1.0.64/26".parse().unwrap());
        check(&r, None);
        r.networks[0].network.ip_range = Some("10.1.0.0/16".parse().unwrap());
        check(&r, Some(InvalidRequest));
        r.networks[0].network.ip_range = Some("10.9.0.0/26".parse().unwrap());
        check(&r, Some(InvalidRequest));
    }

    #[test]
    fn connect_names_interfaces_after_the_lease() {
        let mut r = req(&[("a", "10.1.0.0/24"), ("b", "10.2.0.0/24")]);
        assert_eq!(interface_names(&r, None), ["eth0", "eth1"]);
        let lease = |ifs: &[&str]| crate::state::Lease {
            container_name: "c".into(),
            netns: "/x".into(),
            attachments: (ifs.iter())
                .map(|i| crate::state::LeaseAttachment {
                    network: format!("n-{i}"),
                    ip: Ipv4Addr::new(10, 9, 0, 2),
                    ip6: None,
                    host_interface: format!("vb{i}"),
                    interface: i.to_string(),
                    aliases: vec![],
                })
                .collect(),
            port_mappings: vec![],
        };
        // The lowest free ethN, after the lease's and the asked-for names.
        assert_eq!(
            interface_names(&r, Some(&lease(&["eth0"]))),
            ["eth1", "eth2"]
        );
        assert_eq!(
            interface_names(&r, Some(&lease(&["eth1"]))),
            ["eth0", "eth2"]
        );
        r.networks[1].interface_name = Some("eth0".into());
        assert_eq!(
            interface_names(&r, Some(&lease(&["eth2"]))),
            ["eth1", "eth0"]
        );
        // A setup's defaults clash with an asked-for name: refused in plan.
        let names = interface_names(&r, None);
        assert!(matches!(
            check_interface_names(&names),
            Err(Error::DuplicateInterface(_))
        ));
    }

    #[test]
    fn veth_names_fit_and_differ() {
        let a = host_veth_name("c1", "n");
        assert!(valid_ifname(&a) && a.len() == 10);
        assert_ne!(a, host_veth_name("c2", "n"));
        assert_ne!(a, host_veth_name("c1", "m"));
    }
}
