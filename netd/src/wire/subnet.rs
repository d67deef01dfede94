//! Subnets in CIDR form, as they appear on the wire: [`Subnet`] (IPv4,
//! `"10.89.0.0/24"`) and [`Subnet6`] (IPv6, `"fd89:0:0:1::/64"`).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An IPv4 subnet in CIDR form; serialized as `"10.89.0.0/24"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subnet {
    network: Ipv4Addr,
    prefix: u8,
}

impl Subnet {
    /// A subnet; host bits of `addr` must be zero and `prefix` at most 30
    /// (there must be room for a gateway and a container).
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Subnet, SubnetParseError> {
        if prefix > 30 {
            return Err(SubnetParseError::Prefix(prefix, 30));
        }
        let s = Subnet {
            network: addr,
            prefix,
        };
        if u32::from(addr) & !s.mask() != 0 {
            return Err(SubnetParseError::HostBits(s.to_string()));
        }
        Ok(s)
    }

    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    fn mask(&self) -> u32 {
        u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0)
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !self.mask())
    }

    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// Whether `ip` is a usable host address (not network, not broadcast).
    pub fn contains_host(&self, ip: Ipv4Addr) -> bool {
        self.contains(ip) && ip != self.network && ip != self.broadcast()
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network)
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.contains(other.network) || other.contains(self.network)
    }

    /// Whether every address of `other` is in this subnet.
    pub fn covers(&self, other: &Subnet) -> bool {
        self.prefix <= other.prefix && self.contains(other.network)
    }

    /// Every usable host address, in order.
    pub fn hosts(&self) -> impl Iterator<Item = Ipv4Addr> {
        (u32::from(self.network) + 1..u32::from(self.broadcast())).map(Ipv4Addr::from)
    }

    /// Every address from the network address to the broadcast address.
    pub fn addresses(&self) -> impl Iterator<Item = Ipv4Addr> {
        (u32::from(self.network)..=u32::from(self.broadcast())).map(Ipv4Addr::from)
    }
}

/// An IPv6 subnet in CIDR form; serialized as `"fd89:0:0:1::/64"`.
///
/// Its host addresses are every address but the first (the subnet-router
/// anycast address); IPv6 has no broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subnet6 {
    network: Ipv6Addr,
    prefix: u8,
}

impl Subnet6 {
    /// A subnet; host bits of `addr` must be zero and `prefix` at most 126
    /// (room for a gateway and a container).
    pub fn new(addr: Ipv6Addr, prefix: u8) -> Result<Subnet6, SubnetParseError> {
        if prefix > 126 {
            return Err(SubnetParseError::Prefix(prefix, 126));
        }
        let s = Subnet6 {
            network: addr,
            prefix,
        };
        if u128::from(addr) & !s.mask() != 0 {
            return Err(SubnetParseError::HostBits(s.to_string()));
        }
        Ok(s)
    }

    pub fn network(&self) -> Ipv6Addr {
        self.network
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    fn mask(&self) -> u128 {
        u128::MAX
            .checked_shl(128 - u32::from(self.prefix))
            .unwrap_or(0)
    }

    /// The last address of the subnet.
    pub fn last(&self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.network) | !self.mask())
    }

    /// `::1` of the subnet: the default gateway.
    pub fn first_host(&self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.network) + 1)
    }

    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        u128::from(ip) & self.mask() == u128::from(self.network)
    }

    /// Whether `ip` is a usable host address (in the subnet, not its first).
    pub fn contains_host(&self, ip: Ipv6Addr) -> bool {
        self.contains(ip) && ip != self.network
    }

    pub fn overlaps(&self, other: &Subnet6) -> bool {
        self.contains(other.network) || other.contains(self.network)
    }

    /// Every usable host address, in order (lazily: a /64 has 2^64).
    pub fn hosts(&self) -> impl Iterator<Item = Ipv6Addr> {
        (u128::from(self.network) + 1..=u128::from(self.last())).map(Ipv6Addr::from)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl fmt::Display for Subnet6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SubnetParseError {
    #[error("subnet {0:?} is not in ADDRESS/PREFIX form")]
    Syntax(String),
    #[error("subnet {0:?} is an IPv6 subnet, not IPv4")]
    NotIpv4(String),
    #[error("subnet {0:?} is an IPv4 subnet, not IPv6")]
    NotIpv6(String),
    #[error("subnet prefix /{0} is longer than /{1}")]
    Prefix(u8, u8),
    #[error("subnet {0} has host bits set")]
    HostBits(String),
}

/// `ADDRESS/PREFIX` split and parsed as `A`; `wrong` when it parses as
/// the other family.
fn split<A: FromStr, B: FromStr>(
    s: &str,
    wrong: fn(String) -> SubnetParseError,
) -> Result<(A, u8), SubnetParseError> {
    let syntax = || SubnetParseError::Syntax(s.to_string());
    let (a, p) = s.split_once('/').ok_or_else(syntax)?;
    let prefix: u8 = p.parse().map_err(|_| syntax())?;
    match a.parse::<A>() {
        Ok(addr) => Ok((addr, prefix)),
        Err(_) if a.parse::<B>().is_ok() => Err(wrong(s.to_string())),
        Err(_) => Err(syntax()),
    }
}

impl FromStr for Subnet {
    type Err = SubnetParseError;
    fn from_str(s: &str) -> Result<Subnet, SubnetParseError> {
        let (addr, prefix) = split::<Ipv4Addr, Ipv6Addr>(s, SubnetParseError::NotIpv4)?;
        Subnet::new(addr, prefix)
    }
}

impl FromStr for Subnet6 {
    type Err = SubnetParseError;
    fn from_str(s: &str) -> Result<Subnet6, SubnetParseError> {
        let (addr, prefix) = split::<Ipv6Addr, Ipv4Addr>(s, SubnetParseError::NotIpv6)?;
        Subnet6::new(addr, prefix)
    }
}

macro_rules! serde_as_string {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$t, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

serde_as_string!(Subnet);
serde_as_string!(Subnet6);

#[cfg(test)]
mod tests {
    use super::*;

    fn check_subnet(s: &str, ok: bool) {
        assert_eq!(s.parse::<Subnet>().is_ok(), ok, "{s}");
    }

    fn check_subnet6(s: &str, want: Result<(), SubnetParseError>) {
        assert_eq!(s.parse::<Subnet6>().map(drop), want, "{s}");
    }

    #[test]
    fn subnet_parse() {
        check_subnet("10.89.0.0/24", true);
        check_subnet("10.89.0.1/24", false);
        check_subnet("10.89.0.0/31", false);
        check_subnet("10.89.0.0", false);
        check_subnet("10.89.0/24", false);
        check_subnet("0.0.0.0/0", true);
        assert_eq!(
            "fd00::/64".parse::<Subnet>(),
            Err(SubnetParseError::NotIpv4("fd00::/64".into()))
        );
    }

    #[test]
    fn subnet6_parse() {
        use SubnetParseError::*;
        check_subnet6("fd89:0:0:1::/64", Ok(()));
        check_subnet6("FD89::/48", Ok(()));
        check_subnet6("fd89::/126", Ok(()));
        check_subnet6("::/0", Ok(()));
        check_subnet6("fd89::/127", Err(Prefix(127, 126)));
        check_subnet6("fd89::1/64", Err(HostBits("fd89::1/64".into())));
        check_subnet6("10.0.0.0/24", Err(NotIpv6("10.0.0.0/24".into())));
        check_subnet6("fd89::", Err(Syntax("fd89::".into())));
        check_subnet6("fd89::/x", Err(Syntax("fd89::/x".into())));
        check_subnet6("fd89:::/64", Err(Syntax("fd89:::/64".into())));
        let s: Subnet6 = "fd89:0:0:1::/64".parse().expect("subnet");
        assert_eq!(s.to_string(), "fd89:0:0:1::/64");
        assert_eq!(s.first_host(), "fd89:0:0:1::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(
            serde_json::to_string(&s).expect("json"),
            r#""fd89:0:0:1::/64""#
        );
        let back: Subnet6 = serde_json::from_str(r#""fd89:0:0:1::/64""#).expect("back");
        assert_eq!(back, s);
        assert!(serde_json::from_str::<Subnet6>(r#""10.0.0.0/8""#).is_err());
    }

    #[test]
    fn subnet_overlap_and_hosts() {
        let a: Subnet = "10.0.0.0/16".parse().unwrap();
        let b: Subnet = "10.0.5.0/24".parse().unwrap();
        let c: Subnet = "10.1.0.0/24".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c));
        assert!(a.covers(&b) && !b.covers(&a) && !a.covers(&c) && a.covers(&a));
        let d: Subnet = "192.168.1.0/30".parse().unwrap();
        let hosts: Vec<_> = d.hosts().collect();
        assert_eq!(
            hosts,
            vec![Ipv4Addr::new(192, 168, 1, 1), Ipv4Addr::new(192, 168, 1, 2)]
        );
        assert_eq!(d.addresses().count(), 4);
        assert!(!d.contains_host(Ipv4Addr::new(192, 168, 1, 3)));
    }

    #[test]
    fn subnet6_overlap_and_hosts() {
        let a: Subnet6 = "fd89::/48".parse().unwrap();
        let b: Subnet6 = "fd89:0:0:7::/64".parse().unwrap();
        let c: Subnet6 = "fd89:1::/64".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c) && !b.overlaps(&c));
        let d: Subnet6 = "fd89::/126".parse().unwrap();
        let hosts: Vec<String> = d.hosts().map(|h| h.to_string()).collect();
        assert_eq!(hosts, ["fd89::1", "fd89::2", "fd89::3"]);
        assert!(!d.contains_host("fd89::".parse().unwrap()));
        assert!(!d.contains_host("fd89::4".parse().unwrap()));
        let all: Subnet6 = "::/0".parse().unwrap();
        assert!(all.contains("ffff::1".parse().unwrap()));
        assert_eq!(all.last(), Ipv6Addr::from(u128::MAX));
        // Lazy: the first hosts of a /64 come at once.
        let big: Subnet6 = "fd89::/64".parse().unwrap();
        assert_eq!(big.hosts().nth(1), Some("fd89::2".parse().unwrap()));
    }
}
