//! The errors of every netd operation, and their wire codes.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use crate::wire::{ErrorCode, Protocol, Subnet, Subnet6};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    // --- the request on its own
    #[error("read request")]
    ReadRequest(#[source] io::Error),
    #[error("parse request")]
    ParseRequest(#[source] serde_json::Error),
    #[error("container id is empty")]
    EmptyContainerId,
    #[error("request attaches no network")]
    NoNetworks,
    #[error("interface name {0:?} is invalid (1-15 bytes, no '/', ':' or whitespace)")]
    BadInterfaceName(String),
    #[error("network name {0:?} is invalid")]
    BadNetworkName(String),
    #[error("network {network:?}: gateway {gateway} is not a host address of {subnet}")]
    GatewayOutsideSubnet {
        network: String,
        gateway: Ipv4Addr,
        subnet: Subnet,
    },
    #[error("network {network:?}: static ip {ip} is not a free host address of {subnet}")]
    StaticIpOutsideSubnet {
        network: String,
        ip: Ipv4Addr,
        subnet: Subnet,
    },
    #[error("network {network:?}: ip range {range} is not inside subnet {subnet}")]
    IpRangeOutsideSubnet {
        network: String,
        range: Subnet,
        subnet: Subnet,
    },
    #[error("network {network:?}: IPv6 subnet {subnet} is not a unicast range (it overlaps ::/8, fe80::/10 or ff00::/8)")]
    Subnet6Reserved { network: String, subnet: Subnet6 },
    #[error("network {network:?}: gateway6 {gateway} is given without subnet6")]
    Gateway6WithoutSubnet { network: String, gateway: Ipv6Addr },
    #[error("network {network:?}: gateway6 {gateway} is not a host address of {subnet}")]
    Gateway6OutsideSubnet {
        network: String,
        gateway: Ipv6Addr,
        subnet: Subnet6,
    },
    #[error("network {network:?}: static ip6 {ip} is given but the network has no subnet6")]
    StaticIp6WithoutSubnet { network: String, ip: Ipv6Addr },
    #[error("network {network:?}: static ip6 {ip} is not a free host address of {subnet}")]
    StaticIp6OutsideSubnet {
        network: String,
        ip: Ipv6Addr,
        subnet: Subnet6,
    },
    #[error("network {network:?}: mtu {mtu} is outside 68..=65535")]
    BadMtu { network: String, mtu: u32 },
    #[error("network {0:?} is attached twice")]
    DuplicateNetwork(String),
    #[error("interface {0:?} is requested twice")]
    DuplicateInterface(String),
    #[error("a pasta request attaches no bridge network")]
    PastaWithNetworks,
    #[error("container id {0:?} is invalid for pasta (letters, digits, '_', '.', '-')")]
    BadContainerId(String),
    #[error("port mapping uses port 0")]
    ZeroPort,
    #[error("port range {host_port}/{protocol} of {range} ports is empty or passes 65535")]
    BadPortRange {
        host_port: u16,
        protocol: Protocol,
        range: u16,
    },
    #[error("host port {port}/{protocol} is mapped twice")]
    DuplicatePort { port: u16, protocol: Protocol },

    // --- conflicts with the host or other containers
    #[error("network {network:?}: subnet {subnet} overlaps network {other:?} ({other_subnet})")]
    SubnetOverlap {
        network: String,
        subnet: Subnet,
        other: String,
        other_subnet: Subnet,
    },
    #[error(
        "network {network:?}: IPv6 subnet {subnet} overlaps network {other:?} ({other_subnet})"
    )]
    Subnet6Overlap {
        network: String,
        subnet: Subnet6,
        other: String,
        other_subnet: Subnet6,
    },
    #[error(
        "network {network:?}: subnet {subnet} overlaps {ip}/{prefix} on host interface {iface:?}"
    )]
    SubnetOverlapsHost {
        network: String,
        /// `subnet` or `subnet6`, as written.
        subnet: String,
        ip: IpAddr,
        prefix: u8,
        iface: String,
    },
    #[error("network {network:?} is already configured differently (subnet {subnet}, bridge {bridge:?})")]
    NetworkMismatch {
        network: String,
        subnet: Subnet,
        bridge: String,
    },
    #[error("network {network:?}: bridge {bridge:?} belongs to network {other:?}")]
    BridgeInUse {
        network: String,
        bridge: String,
        other: String,
    },
    #[error("network {network:?}: address {ip} is in use by container {owner:?}")]
    IpInUse {
        network: String,
        ip: IpAddr,
        owner: String,
    },
    #[error("network {network:?}: no free address in {pool}")]
    SubnetFull {
        network: String,
        /// The subnet, ip range or IPv6 subnet, as written.
        pool: String,
    },
    #[error("container {0:?} is already set up")]
    AlreadySetUp(String),
    #[error("container {id:?} is set up in netns {}, not {}", leased.display(), path.display())]
    NetnsMismatch {
        id: String,
        path: PathBuf,
        leased: PathBuf,
    },
    #[error("container {0:?} is set up already: connect publishes no ports")]
    ConnectPorts(String),
    #[error("container {id:?} is already connected to network {network:?}")]
    AlreadyConnected { id: String, network: String },
    #[error("host port {port}/{protocol} is already published by container {owner:?}")]
    PortPublished {
        port: u16,
        protocol: Protocol,
        owner: String,
    },
    #[error("host port {port}/{protocol} is in use on the host")]
    PortInUse {
        port: u16,
        protocol: Protocol,
        #[source]
        source: io::Error,
    },
    #[error("interface {0:?} already exists on the host")]
    HostInterfaceExists(String),
    #[error("interface {name:?} already exists in netns {}", path.display())]
    NetnsInterfaceExists { name: String, path: PathBuf },
    #[error("{name:?} exists on the host and is not a bridge")]
    NotABridge { name: String },

    // --- things that do not exist
    #[error("open netns {}", path.display())]
    OpenNetns {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is not a network namespace", path.display())]
    NotNetns { path: PathBuf },
    #[error("no lease for container {0:?}")]
    NoLease(String),
    #[error("container {id:?} is not connected to network {network:?}")]
    NotConnected { id: String, network: String },

    // --- host and state
    #[error("create state dir {}", path.display())]
    StateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("lock {}", path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("read state {}", path.display())]
    ReadState {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("parse state {}", path.display())]
    ParseState {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("write state {}", path.display())]
    WriteState {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("open netlink socket in netns {}", path.display())]
    NetnsSocket {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("open netlink socket")]
    NetlinkSocket(#[source] io::Error),
    #[error("list host interfaces")]
    ListHost(#[source] io::Error),
    #[error("look up interface {name:?}")]
    LookupLink {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("run nft")]
    NftSpawn(#[source] io::Error),
    #[error("nft {action} failed ({status}): {stderr}")]
    NftFailed {
        action: &'static str,
        status: String,
        stderr: String,
    },

    // --- applying
    #[error("run pasta ({binary})")]
    PastaSpawn {
        binary: String,
        #[source]
        source: io::Error,
    },
    #[error("pasta failed ({status}): {stderr}")]
    PastaFailed { status: String, stderr: String },
    #[error("stop pasta (pid {pid})")]
    PastaStop {
        pid: i32,
        #[source]
        source: io::Error,
    },
    #[error("create bridge {name:?}")]
    CreateBridge {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("create veth pair {host:?} / {peer:?}")]
    CreateVeth {
        host: String,
        peer: String,
        #[source]
        source: io::Error,
    },
    #[error("interface {name:?} is missing right after its creation")]
    LinkVanished { name: String },
    #[error("bring up interface {name:?}")]
    LinkUp {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("add address {ip}/{prefix} to {name:?}")]
    AddAddr {
        name: String,
        ip: IpAddr,
        prefix: u8,
        #[source]
        source: io::Error,
    },
    #[error("add default route via {gateway}")]
    AddRoute {
        gateway: IpAddr,
        #[source]
        source: io::Error,
    },
    #[error("write sysctl {}", path.display())]
    Sysctl {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{op} of container {id:?} failed and was rolled back")]
    Apply {
        /// `setup` or `connect`.
        op: &'static str,
        id: String,
        #[source]
        source: Box<Error>,
        rollback_failures: Vec<Error>,
    },

    #[error("start dns responder of network {network:?}")]
    DnsStart {
        network: String,
        #[source]
        source: io::Error,
    },
    #[error("stop dns responder of network {network:?}")]
    DnsStop {
        network: String,
        #[source]
        source: io::Error,
    },
    #[error("dns responder: bind {addr}")]
    DnsBind {
        addr: std::net::SocketAddr,
        #[source]
        source: io::Error,
    },

    // --- teardown
    #[error("delete interface {name:?}")]
    DeleteLink {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("teardown of container {id:?}: {} step(s) failed", failures.len())]
    TeardownIncomplete { id: String, failures: Vec<Error> },
    #[error("disconnect of container {id:?}: {} step(s) failed", failures.len())]
    DisconnectIncomplete { id: String, failures: Vec<Error> },
}

impl Error {
    /// The wire code (and exit status) for this error.
    pub fn code(&self) -> ErrorCode {
        use Error::*;
        match self {
            ReadRequest(_)
            | ParseRequest(_)
            | EmptyContainerId
            | NoNetworks
            | BadInterfaceName(_)
            | BadNetworkName(_)
            | GatewayOutsideSubnet { .. }
            | StaticIpOutsideSubnet { .. }
            | IpRangeOutsideSubnet { .. }
            | Subnet6Reserved { .. }
            | Gateway6WithoutSubnet { .. }
            | Gateway6OutsideSubnet { .. }
            | StaticIp6WithoutSubnet { .. }
            | StaticIp6OutsideSubnet { .. }
            | BadMtu { .. }
            | DuplicateNetwork(_)
            | DuplicateInterface(_)
            | PastaWithNetworks
            | BadContainerId(_)
            | ZeroPort
            | BadPortRange { .. }
            | DuplicatePort { .. } => ErrorCode::InvalidRequest,
            SubnetOverlap { .. }
            | Subnet6Overlap { .. }
            | SubnetOverlapsHost { .. }
            | NetworkMismatch { .. }
            | BridgeInUse { .. }
            | IpInUse { .. }
            | SubnetFull { .. }
            | AlreadySetUp(_)
            | NetnsMismatch { .. }
            | ConnectPorts(_)
            | AlreadyConnected { .. }
            | PortPublished { .. }
            | PortInUse { .. }
            | HostInterfaceExists(_)
            | NetnsInterfaceExists { .. }
            | NotABridge { .. } => ErrorCode::Conflict,
            OpenNetns { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                ErrorCode::NotFound
            }
            NotNetns { .. } | NoLease(_) | NotConnected { .. } => ErrorCode::NotFound,
            Apply { .. } => ErrorCode::ApplyFailed,
            TeardownIncomplete { .. } | DisconnectIncomplete { .. } => {
                ErrorCode::TeardownIncomplete
            }
            _ => ErrorCode::Internal,
        }
    }

    /// Sub-failures worth reporting one by one (rollback or teardown steps),
    /// each as its full chain.
    pub fn details(&self) -> Vec<String> {
        match self {
            Error::Apply {
                rollback_failures: f,
                ..
            }
            | Error::TeardownIncomplete { failures: f, .. }
            | Error::DisconnectIncomplete { failures: f, .. } => {
                f.iter().map(|e| chain(e)).collect()
            }
            _ => Vec::new(),
        }
    }
}

/// `outer: inner: innermost`.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
