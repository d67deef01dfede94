//! Address management: the lowest free address of a network (IPv4 inside
//! its `ip_range` when it has one, IPv6 in its `subnet6`), static addresses
//! checked against the leases, and the overlap tests against host
//! addresses. Pure functions of the state: they run under the state lock
//! (see `state.rs`), which is what keeps concurrent setups from getting the
//! same address.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::state::State;
use crate::wire::{NetworkConfig, Subnet, Subnet6};
use crate::Error;

/// The container's IPv4 address on `n`: `static_ip` if no lease holds it,
/// else the lowest free host address of the ip range (or subnet) that is
/// not the gateway.
pub(crate) fn allocate4(
    n: &NetworkConfig,
    static_ip: Option<Ipv4Addr>,
    state: &State,
) -> Result<Ipv4Addr, Error> {
    if let Some(ip) = static_ip {
        return match state.ip_owner(&n.name, ip) {
            Some(owner) => Err(in_use(n, ip.into(), owner)),
            None => Ok(ip),
        };
    }
    let gw = n.gateway();
    let free = |ip: &Ipv4Addr| *ip != gw && state.ip_owner(&n.name, *ip).is_none();
    let found = match n.ip_range {
        Some(r) => r
            .addresses()
            .filter(|ip| n.subnet.contains_host(*ip))
            .find(free),
        None => n.subnet.hosts().find(free),
    };
    found.ok_or_else(|| Error::SubnetFull {
        network: n.name.clone(),
        pool: n.ip_range.unwrap_or(n.subnet).to_string(),
    })
}

/// The container's IPv6 address on `n` (`None` unless `n` has a
/// `subnet6`): `static_ip6` if no lease holds it, else the lowest free host
/// address that is not the gateway.
pub(crate) fn allocate6(
    n: &NetworkConfig,
    static_ip6: Option<Ipv6Addr>,
    state: &State,
) -> Result<Option<Ipv6Addr>, Error> {
    let (Some(subnet), Some(gw)) = (n.subnet6, n.gateway6()) else {
        return Ok(None);
    };
    if let Some(ip) = static_ip6 {
        return match state.ip6_owner(&n.name, ip) {
            Some(owner) => Err(in_use(n, ip.into(), owner)),
            None => Ok(Some(ip)),
        };
    }
    // Leases are few: the search ends within (leases + 2) candidates even
    // in a /64.
    subnet
        .hosts()
        .find(|ip| *ip != gw && state.ip6_owner(&n.name, *ip).is_none())
        .map(Some)
        .ok_or_else(|| Error::SubnetFull {
            network: n.name.clone(),
            pool: subnet.to_string(),
        })
}

fn in_use(n: &NetworkConfig, ip: std::net::IpAddr, owner: &str) -> Error {
    Error::IpInUse {
        network: n.name.clone(),
        ip,
        owner: owner.to_string(),
    }
}

/// Whether the host address `ip/prefix` shares addresses with `subnet`.
pub(crate) fn overlaps_host4(subnet: &Subnet, ip: Ipv4Addr, prefix: u8) -> bool {
    let mask = u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0);
    subnet.contains(ip) || u32::from(subnet.network()) & mask == u32::from(ip) & mask
}

/// Whether the host address `ip/prefix` shares addresses with `subnet`.
pub(crate) fn overlaps_host6(subnet: &Subnet6, ip: Ipv6Addr, prefix: u8) -> bool {
    let mask = u128::MAX
        .checked_shl(128 - u32::from(prefix.min(128)))
        .unwrap_or(0);
    subnet.contains(ip) || u128::from(subnet.network()) & mask == u128::from(ip) & mask
}

/// Whether `subnet` reaches into addresses a container network cannot use:
/// `::/8` (unspecified, loopback, IPv4-mapped), link-local `fe80::/10`,
/// multicast `ff00::/8`.
pub(crate) fn reserved6(subnet: &Subnet6) -> bool {
    ["::/8", "fe80::/10", "ff00::/8"].iter().any(|r| {
        r.parse::<Subnet6>()
            .is_ok_and(|reserved| reserved.overlaps(subnet))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Lease, LeaseAttachment};
    use crate::wire::ErrorCode;

    fn net(subnet: &str, range: Option<&str>, subnet6: Option<&str>) -> NetworkConfig {
        NetworkConfig {
            name: "n".into(),
            bridge: "br-n".into(),
            subnet: subnet.parse().unwrap(),
            gateway: None,
            internal: false,
            mtu: None,
            dns_enabled: false,
            ip_range: range.map(|r| r.parse().unwrap()),
            subnet6: subnet6.map(|s| s.parse().unwrap()),
            gateway6: None,
        }
    }

    /// A state where container `c<i>` holds the i-th pair of addresses.
    fn leased(held: &[(&str, Option<&str>)]) -> State {
        let mut st = State::default();
        for (i, (ip, ip6)) in held.iter().enumerate() {
            let att = LeaseAttachment {
                network: "n".into(),
                ip: ip.parse().unwrap(),
                ip6: ip6.map(|a| a.parse().unwrap()),
                host_interface: format!("vb{i}"),
                interface: "eth0".into(),
                aliases: vec![],
            };
            let lease = Lease {
                container_name: format!("c{i}"),
                netns: "/x".into(),
                attachments: vec![att],
                port_mappings: vec![],
            };
            st.leases.insert(format!("c{i}"), lease);
        }
        st
    }

    fn v4(n: &NetworkConfig, st: &State) -> Result<String, ErrorCode> {
        allocate4(n, None, st)
            .map(|ip| ip.to_string())
            .map_err(|e| e.code())
    }

    fn v6(n: &NetworkConfig, st: &State) -> Result<Option<String>, ErrorCode> {
        allocate6(n, None, st)
            .map(|ip| ip.map(|i| i.to_string()))
            .map_err(|e| e.code())
    }

    #[test]
    fn ipv4_lowest_free_skipping_the_gateway() {
        let n = net("10.1.0.0/29", None, None);
        assert_eq!(v4(&n, &leased(&[])), Ok("10.1.0.2".into()));
        let st = leased(&[("10.1.0.2", None), ("10.1.0.4", None)]);
        assert_eq!(v4(&n, &st), Ok("10.1.0.3".into()));
        let full: Vec<_> = (2..7).map(|i| format!("10.1.0.{i}")).collect();
        let held: Vec<_> = full.iter().map(|a| (a.as_str(), None)).collect();
        assert_eq!(v4(&n, &leased(&held)), Err(ErrorCode::Conflict));
    }

    #[test]
    fn ipv4_range_bounds_automatic_addresses_only() {
        let n = net("10.1.0.0/24", Some("10.1.0.128/30"), None);
        assert_eq!(v4(&n, &leased(&[])), Ok("10.1.0.128".into()));
        let st = leased(&[("10.1.0.128", None), ("10.1.0.129", None)]);
        assert_eq!(v4(&n, &st), Ok("10.1.0.130".into()));
        let st = leased(&[
            ("10.1.0.128", None),
            ("10.1.0.129", None),
            ("10.1.0.130", None),
            ("10.1.0.131", None),
        ]);
        let e = allocate4(&n, None, &st).unwrap_err();
        assert!(e.to_string().contains("10.1.0.128/30"), "{e}");
        // A static address outside the range is fine (docker's rule).
        let ip = Ipv4Addr::new(10, 1, 0, 9);
        assert_eq!(allocate4(&n, Some(ip), &st).ok(), Some(ip));
        // The range's first address is the subnet's network address: skipped.
        let n = net("10.1.0.0/24", Some("10.1.0.0/30"), None);
        assert_eq!(v4(&n, &leased(&[])), Ok("10.1.0.2".into()), "gateway .1");
    }

    #[test]
    fn ipv6_lowest_free_skipping_the_gateway() {
        assert_eq!(v6(&net("10.1.0.0/24", None, None), &leased(&[])), Ok(None));
        let n = net("10.1.0.0/24", None, Some("fd89:0:0:1::/64"));
        assert_eq!(v6(&n, &leased(&[])), Ok(Some("fd89:0:0:1::2".into())));
        let st = leased(&[("10.1.0.2", Some("fd89:0:0:1::2")), ("10.1.0.3", None)]);
        assert_eq!(v6(&n, &st), Ok(Some("fd89:0:0:1::3".into())));
        let mut n = net("10.1.0.0/24", None, Some("fd89::/126"));
        n.gateway6 = Some("fd89::3".parse().unwrap());
        assert_eq!(v6(&n, &leased(&[])), Ok(Some("fd89::1".into())));
        let st = leased(&[("10.1.0.2", Some("fd89::1")), ("10.1.0.3", Some("fd89::2"))]);
        assert_eq!(v6(&n, &st), Err(ErrorCode::Conflict), "full /126");
        // A static address held by another lease is a conflict.
        let held: Ipv6Addr = "fd89::2".parse().unwrap();
        let e = allocate6(&n, Some(held), &st).unwrap_err();
        assert_eq!(e.code(), ErrorCode::Conflict);
        assert!(e.to_string().contains("c1"), "{e}");
    }

    #[test]
    fn host_overlap_and_reserved_ranges() {
        let s: Subnet = "10.1.0.0/24".parse().unwrap();
        assert!(overlaps_host4(&s, Ipv4Addr::new(10, 1, 0, 7), 32));
        assert!(overlaps_host4(&s, Ipv4Addr::new(10, 9, 9, 9), 8));
        assert!(!overlaps_host4(&s, Ipv4Addr::new(10, 2, 0, 1), 24));
        let s6: Subnet6 = "fd89:0:0:1::/64".parse().unwrap();
        assert!(overlaps_host6(&s6, "fd89:0:0:1::99".parse().unwrap(), 128));
        assert!(overlaps_host6(&s6, "fd89::1".parse().unwrap(), 48));
        assert!(!overlaps_host6(&s6, "fd00::2".parse().unwrap(), 64));
        for (r, reserved) in [
            ("fd89::/64", false),
            ("2001:db8::/32", false),
            ("::/64", true),
            ("::/0", true),
            ("fe80::/64", true),
            ("febf::/16", true),
            ("fec0::/10", false),
            ("ff02::/16", true),
        ] {
            assert_eq!(reserved6(&r.parse().unwrap()), reserved, "{r}");
        }
    }
}
