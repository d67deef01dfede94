//! The JSON contract between `berth-netd` and its caller (the engine).
//!
//! This module is the only place the wire format is defined; both ends
//! (the engine serializing a request, `berth-netd` answering it) use these
//! types. `netd/PROTOCOL.md` documents them field by field.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

mod subnet;

pub use subnet::{Subnet, Subnet6, SubnetParseError};

/// The request read from stdin (or `--file`) by every command: `setup`
/// and `connect` use all of it, `disconnect` the id and the networks'
/// names, `teardown` only the id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// The container id; the lease key: one setup per id at a time.
    pub container_id: String,
    /// The container name (recorded with the lease, answered by DNS later).
    pub container_name: String,
    /// The networks to attach, in order: the first one gets `eth0`, and
    /// published ports are forwarded to its address.
    pub networks: Vec<Attachment>,
    /// Ports published on the host.
    #[serde(default)]
    pub port_mappings: Vec<PortMapping>,
    /// DNS servers to report; default: the host's non-loopback resolvers
    /// (none when every network is internal).
    #[serde(default)]
    pub dns_servers: Option<Vec<Ipv4Addr>>,
    /// User-mode networking by pasta (Debian `passt`) instead of bridge
    /// networks — what a rootless engine asks for: `networks` must be
    /// empty; `port_mappings` become pasta's forwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pasta: Option<Pasta>,
}

/// How pasta connects the netns (one pasta process per container).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pasta {
    /// The pasta binary; default `pasta` on PATH.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary: Option<std::path::PathBuf>,
    /// Let the container reach the host's loopback through the gateway
    /// address (pasta's own default; off here, as in podman: a container
    /// does not see the services the host keeps on 127.0.0.1).
    #[serde(default, skip_serializing_if = "is_false")]
    pub map_gw: bool,
}

/// One network the container joins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    /// The network's configuration (the engine owns network definitions).
    pub network: NetworkConfig,
    /// Interface name inside the netns; default `eth<index>`.
    #[serde(default)]
    pub interface_name: Option<String>,
    /// A static address instead of the next free one.
    #[serde(default)]
    pub static_ip: Option<Ipv4Addr>,
    /// A static IPv6 address instead of the next free one (the network
    /// must have `subnet6`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub static_ip6: Option<Ipv6Addr>,
    /// Extra names the container answers to on this network.
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// A bridge network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// The network name (unique among configured networks).
    pub name: String,
    /// The bridge interface (at most 15 bytes); created if missing.
    pub bridge: String,
    /// The IPv4 subnet, e.g. `10.89.0.0/24`.
    pub subnet: Subnet,
    /// The bridge address and the containers' default gateway; default:
    /// the first host address of the subnet.
    #[serde(default)]
    pub gateway: Option<Ipv4Addr>,
    /// No outbound NAT, no default route, no forwarding off the bridge.
    #[serde(default)]
    pub internal: bool,
    /// MTU for the bridge and the veth pair; default: the kernel's (1500).
    #[serde(default)]
    pub mtu: Option<u32>,
    /// Run a DNS responder on the gateway address answering container
    /// names and aliases of this network (user-defined networks).
    #[serde(default)]
    pub dns_enabled: bool,
    /// Automatic IPv4 addresses come from this part of `subnet` only
    /// (static ones and the gateway may be anywhere in the subnet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<Subnet>,
    /// The IPv6 subnet of a dual-stack network, e.g. `fd89:0:0:1::/64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet6: Option<Subnet6>,
    /// The bridge's IPv6 address and the containers' IPv6 default
    /// gateway; default: `::1` of `subnet6`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway6: Option<Ipv6Addr>,
}

impl NetworkConfig {
    /// The gateway, defaulting to the first host address of the subnet.
    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway.unwrap_or_else(|| self.subnet.first_host())
    }

    /// The IPv6 gateway of a dual-stack network, defaulting to `::1` of
    /// its subnet.
    pub fn gateway6(&self) -> Option<Ipv6Addr> {
        self.gateway6
            .or_else(|| self.subnet6.map(|s| s.first_host()))
    }
}

/// A published port or port range:
/// `HOST_IP:HOST_PORT[+i] -> CONTAINER_PORT[+i]/PROTOCOL` for `i < range`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortMapping {
    /// Only traffic to this host address; default: every local address.
    #[serde(default)]
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_port: u16,
    #[serde(default)]
    pub protocol: Protocol,
    /// How many consecutive ports, starting at `host_port` and
    /// `container_port`; default 1.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub range: u16,
}

fn one() -> u16 {
    1
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if signature
fn is_one(n: &u16) -> bool {
    *n == 1
}

impl PortMapping {
    /// The last host port of the mapping (`None` if it passes 65535).
    pub fn host_end(&self) -> Option<u16> {
        self.host_port.checked_add(self.range.checked_sub(1)?)
    }

    /// The last container port of the mapping (`None` if it passes 65535).
    pub fn container_end(&self) -> Option<u16> {
        self.container_port.checked_add(self.range.checked_sub(1)?)
    }

    /// The host ports of the mapping.
    pub fn host_ports(&self) -> impl Iterator<Item = u16> {
        let end = self.host_end().unwrap_or(u16::MAX);
        self.host_port..=end
    }
}

/// A malformed `-p` specification.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PortSpecError {
    #[error("port spec {0:?}: expected [IP:]HOST[-END]:CONTAINER[-END][/tcp|udp]")]
    Syntax(String),
    #[error("port spec {spec:?}: bad port {port:?} (1-65535)")]
    Port { spec: String, port: String },
    #[error("port spec {0:?}: range ends before it starts")]
    Reversed(String),
    #[error("port spec {0:?}: host and container ranges differ in length")]
    LengthMismatch(String),
    #[error("port spec {spec:?}: unknown protocol {protocol:?}")]
    Protocol { spec: String, protocol: String },
}

impl FromStr for PortMapping {
    type Err = PortSpecError;

    /// `[IP:]HOST[-HOST_END]:CONTAINER[-CONTAINER_END][/tcp|udp]`.
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let (ports, protocol) = match spec.split_once('/') {
            None => (spec, Protocol::Tcp),
            Some((p, "tcp")) => (p, Protocol::Tcp),
            Some((p, "udp")) => (p, Protocol::Udp),
            Some((_, other)) => {
                return Err(PortSpecError::Protocol {
                    spec: spec.to_owned(),
                    protocol: other.to_owned(),
                })
            }
        };
        let parts: Vec<&str> = ports.split(':').collect();
        let (host_ip, host, ctr) = match parts.as_slice() {
            [h, c] => (None, *h, *c),
            [ip, h, c] => {
                let ip = ip
                    .parse()
                    .map_err(|_| PortSpecError::Syntax(spec.to_owned()))?;
                (Some(ip), *h, *c)
            }
            _ => return Err(PortSpecError::Syntax(spec.to_owned())),
        };
        let (host_port, host_len) = port_range(spec, host)?;
        let (container_port, ctr_len) = port_range(spec, ctr)?;
        if host_len != ctr_len {
            return Err(PortSpecError::LengthMismatch(spec.to_owned()));
        }
        Ok(PortMapping {
            host_ip,
            host_port,
            container_port,
            protocol,
            range: host_len,
        })
    }
}

/// `START[-END]` as (start, length).
fn port_range(spec: &str, s: &str) -> Result<(u16, u16), PortSpecError> {
    let port = |p: &str| match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(PortSpecError::Port {
            spec: spec.to_owned(),
            port: p.to_owned(),
        }),
    };
    let (start, end) = match s.split_once('-') {
        None => (port(s)?, port(s)?),
        Some((a, b)) => (port(a)?, port(b)?),
    };
    if end < start {
        return Err(PortSpecError::Reversed(spec.to_owned()));
    }
    Ok((start, end - start + 1))
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// What `setup` prints on success.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetupResult {
    pub container_id: String,
    /// One entry per attachment, in request order.
    pub interfaces: Vec<InterfaceResult>,
    pub dns_servers: Vec<Ipv4Addr>,
    /// The published ports, as applied.
    pub port_mappings: Vec<PortMapping>,
}

/// One configured interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceResult {
    pub network: String,
    /// The name inside the netns.
    pub name: String,
    /// The host end of the veth pair (attached to the bridge).
    pub host_interface: String,
    /// `aa:bb:cc:dd:ee:ff`, of the interface inside the netns.
    pub mac_address: String,
    /// The container's address in CIDR form, e.g. `10.89.0.2/24`.
    pub address: String,
    pub gateway: Ipv4Addr,
    /// Whether a default route via `gateway` was added (the first
    /// non-internal network only).
    pub default_route: bool,
    /// The container's IPv6 address in CIDR form (dual-stack networks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address6: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway6: Option<Ipv6Addr>,
    /// Whether an IPv6 default route via `gateway6` was added (the first
    /// non-internal dual-stack network only).
    #[serde(default, skip_serializing_if = "is_false")]
    pub default_route6: bool,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if signature
fn is_false(b: &bool) -> bool {
    !*b
}

/// What `teardown` prints on success.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeardownResult {
    pub container_id: String,
    /// Host-side interfaces removed.
    pub removed_interfaces: Vec<String>,
    /// Bridges removed because no container used them any more.
    pub removed_bridges: Vec<String>,
}

/// What `disconnect` prints on success.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisconnectResult {
    pub container_id: String,
    /// Host-side interfaces removed.
    pub removed_interfaces: Vec<String>,
    /// Bridges removed because no container used them any more.
    pub removed_bridges: Vec<String>,
    /// The container's DNS servers from now on (as `setup` chooses them,
    /// from the networks it keeps; none when it keeps none).
    pub dns_servers: Vec<Ipv4Addr>,
}

/// What either command prints on failure (and exits with `code`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// The full error chain, outermost first, joined by `: `.
    pub error: String,
    /// The exit status, see [`ErrorCode`].
    pub code: i32,
    /// Teardown: one message per failed step (all steps are attempted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

/// Exit statuses (and the `code` field of [`ErrorReply`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum ErrorCode {
    /// Unexpected failure (state dir, nft missing, ...).
    Internal = 1,
    /// The request is malformed or invalid on its own.
    InvalidRequest = 2,
    /// The request conflicts with the host or other containers (overlapping
    /// subnet, address or port in use, container already set up).
    Conflict = 3,
    /// Something named does not exist (netns, lease).
    NotFound = 4,
    /// Applying failed; what was applied was rolled back.
    ApplyFailed = 5,
    /// Teardown finished but some steps failed (see `details`).
    TeardownIncomplete = 6,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_port_specs() {
        let p: PortMapping = "127.0.0.1:8000-8002:80-82/udp".parse().expect("range");
        assert_eq!(
            p,
            PortMapping {
                host_ip: Some(Ipv4Addr::LOCALHOST),
                host_port: 8000,
                container_port: 80,
                protocol: Protocol::Udp,
                range: 3,
            }
        );
        let p: PortMapping = "8080:80".parse().expect("single");
        assert_eq!((p.host_port, p.container_port, p.range), (8080, 80, 1));
        assert_eq!(p.protocol, Protocol::Tcp);
        for bad in [
            "8000-8002:80-81",
            "8002-8000:80-82",
            "0:80",
            "80",
            "80:80/sctp",
            "x:80:80",
            "70000:80",
        ] {
            assert!(bad.parse::<PortMapping>().is_err(), "{bad}");
        }
    }

    #[test]
    fn range_is_omitted_when_one_and_defaults_to_one() {
        let p: PortMapping = "8080:80".parse().expect("single");
        let j = serde_json::to_string(&p).expect("json");
        assert!(!j.contains("range"), "{j}");
        let back: PortMapping = serde_json::from_str(&j).expect("back");
        assert_eq!(back, p);
        let r: PortMapping =
            serde_json::from_str(r#"{"host_port":2,"container_port":2,"range":65535}"#)
                .expect("range");
        assert_eq!(r.host_end(), None);
    }

    #[test]
    fn request_roundtrip_and_defaults() {
        let j = r#"{"container_id":"c1","container_name":"web","networks":[
            {"network":{"name":"n","bridge":"br0","subnet":"10.9.0.0/24"}}],
            "port_mappings":[{"host_port":8080,"container_port":80}]}"#;
        let r: Request = serde_json::from_str(j).unwrap();
        assert_eq!(r.networks[0].network.gateway(), Ipv4Addr::new(10, 9, 0, 1));
        assert_eq!(r.port_mappings[0].protocol, Protocol::Tcp);
        let back: Request = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        assert!(serde_json::from_str::<Request>(r#"{"container_id":"c"}"#).is_err());
        // An IPv4-only request does not mention the IPv6 fields at all (an
        // older netd, which rejects unknown fields, still reads it).
        let j = serde_json::to_string(&r).unwrap();
        for f in ["subnet6", "gateway6", "static_ip6", "ip_range"] {
            assert!(!j.contains(f), "{f} in {j}");
        }
    }

    #[test]
    fn dual_stack_request() {
        let j = r#"{"container_id":"c1","container_name":"web","networks":[
            {"network":{"name":"n","bridge":"br0","subnet":"10.9.0.0/24",
             "ip_range":"10.9.0.128/25","subnet6":"fd89:0:0:9::/64"},
             "static_ip6":"fd89:0:0:9::42"}]}"#;
        let r: Request = serde_json::from_str(j).unwrap();
        let n = &r.networks[0].network;
        assert_eq!(n.gateway6(), Some("fd89:0:0:9::1".parse().unwrap()));
        assert_eq!(n.ip_range, Some("10.9.0.128/25".parse().unwrap()));
        assert_eq!(
            r.networks[0].static_ip6,
            Some("fd89:0:0:9::42".parse().unwrap())
        );
        let back: Request = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        // A v4 subnet where a v6 one belongs is a parse error.
        let bad = j.replace("fd89:0:0:9::/64", "10.10.0.0/24");
        let e = serde_json::from_str::<Request>(&bad).unwrap_err();
        assert!(e.to_string().contains("not IPv6"), "{e}");
        // The result of an IPv4-only network has no IPv6 fields.
        let res = InterfaceResult {
            network: "n".into(),
            name: "eth0".into(),
            host_interface: "vb0".into(),
            mac_address: String::new(),
            address: "10.9.0.2/24".into(),
            gateway: Ipv4Addr::new(10, 9, 0, 1),
            default_route: true,
            address6: None,
            gateway6: None,
            default_route6: false,
        };
        let j = serde_json::to_string(&res).unwrap();
        for f in ["address6", "gateway6", "default_route6"] {
            assert!(!j.contains(f), "{f} in {j}");
        }
        assert_eq!(serde_json::from_str::<InterfaceResult>(&j).unwrap(), res);
    }
}
