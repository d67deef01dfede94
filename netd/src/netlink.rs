//! A small synchronous rtnetlink client: exactly the link, address and
//! route operations netd needs.
//!
//! Why not `rtnetlink`: it is built on tokio, and netd is a short-lived
//! process doing a handful of requests. The message layouts below are the
//! kernel's (`linux/rtnetlink.h`, `linux/if_link.h`, `linux/veth.h`).
//! The socket belongs to the network namespace it was created in, which is
//! how the inside of a container is configured (see [`crate::netns`]).

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    self, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType,
};

const NLMSG_HDR: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;

const AF_UNSPEC: u8 = 0;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const IFF_UP: u32 = 0x1;
const NLA_F_NESTED: u16 = 0x8000;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const IFA_FLAGS: u16 = 8;
/// No duplicate address detection: usable at once, never "tentative".
const IFA_F_NODAD: u32 = 0x02;
const IFA_F_TENTATIVE: u32 = 0x40;
const IFA_F_DADFAILED: u32 = 0x08;

const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RTN_UNICAST: u8 = 1;

/// A link as reported by the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mac: Option<[u8; 6]>,
    pub master: Option<u32>,
    pub mtu: Option<u32>,
    /// `IFLA_INFO_KIND` (`bridge`, `veth`, ...), absent for plain devices.
    pub kind: Option<String>,
}

/// An IPv4 address on a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addr {
    pub index: u32,
    pub ip: Ipv4Addr,
    pub prefix: u8,
}

/// An IPv6 address on a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addr6 {
    pub index: u32,
    pub ip: Ipv6Addr,
    pub prefix: u8,
    /// `IFA_F_*` (the extended `IFA_FLAGS` when the kernel sends them).
    pub flags: u32,
}

impl Addr6 {
    /// Still in (or failed) duplicate address detection: not usable.
    pub fn tentative(&self) -> bool {
        self.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED) != 0
    }

    /// Link-local (`fe80::/10`).
    pub fn link_local(&self) -> bool {
        self.ip.segments()[0] & 0xffc0 == 0xfe80
    }
}

/// A netlink message under construction: header, fixed part, attributes.
struct Msg {
    buf: Vec<u8>,
    nests: Vec<usize>,
}

impl Msg {
    fn new(ty: u16, flags: u16) -> Msg {
        let mut buf = vec![0u8; NLMSG_HDR];
        buf[4..6].copy_from_slice(&ty.to_ne_bytes());
        buf[6..8].copy_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        Msg {
            buf,
            nests: Vec::new(),
        }
    }

    fn bytes(&mut self, b: &[u8]) -> &mut Msg {
        self.buf.extend_from_slice(b);
        self
    }

    /// `struct ifinfomsg`.
    fn ifinfo(&mut self, index: u32, flags: u32, change: u32) -> &mut Msg {
        self.bytes(&[AF_UNSPEC, 0, 0, 0])
            .bytes(&index.to_ne_bytes());
        self.bytes(&flags.to_ne_bytes())
            .bytes(&change.to_ne_bytes())
    }

    fn attr(&mut self, ty: u16, payload: &[u8]) -> &mut Msg {
        let len = 4 + payload.len();
        self.bytes(&(len as u16).to_ne_bytes())
            .bytes(&ty.to_ne_bytes())
            .bytes(payload);
        self.pad()
    }

    fn attr_str(&mut self, ty: u16, s: &str) -> &mut Msg {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        self.attr(ty, &b)
    }

    fn attr_u32(&mut self, ty: u16, v: u32) -> &mut Msg {
        self.attr(ty, &v.to_ne_bytes())
    }

    fn pad(&mut self) -> &mut Msg {
        while self.buf.len() % 4 != 0 {
            self.buf.push(0);
        }
        self
    }

    fn begin(&mut self, ty: u16) -> &mut Msg {
        self.nests.push(self.buf.len());
        self.bytes(&[0, 0])
            .bytes(&(ty | NLA_F_NESTED).to_ne_bytes())
    }

    fn end(&mut self) -> &mut Msg {
        let start = self.nests.pop().expect("netlink nest underflow");
        let len = (self.buf.len() - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }

    fn finish(&mut self, seq: u32) -> &[u8] {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        &self.buf
    }
}

/// Iterate `(type, payload)` over a run of netlink attributes.
fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([b[0], b[1]]));
        let ty = u16::from_ne_bytes([b[2], b[3]]) & !NLA_F_NESTED;
        if len < 4 || len > b.len() {
            return None;
        }
        let payload = &b[4..len];
        b = &b[((len + 3) & !3).min(b.len())..];
        Some((ty, payload))
    })
}

fn ne_u32(b: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(..4)?.try_into().ok()?))
}

/// A connected NETLINK_ROUTE socket (in the netns it was created in).
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

impl Netlink {
    /// Open a socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Netlink> {
        let fd = socket::socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )?;
        socket::bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
        Ok(Netlink { fd, seq: 1 })
    }

    /// Send `msg` and collect the payloads of every answer until the ACK,
    /// the end of the dump, or an error.
    fn request(&mut self, msg: &mut Msg) -> io::Result<Vec<Vec<u8>>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let dump = u16::from_ne_bytes([msg.buf[6], msg.buf[7]]) & NLM_F_DUMP == NLM_F_DUMP;
        socket::send(self.fd.as_raw_fd(), msg.finish(seq), MsgFlags::empty())?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = socket::recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty())?;
            let mut b = &buf[..n];
            while b.len() >= NLMSG_HDR {
                let len = ne_u32(b).unwrap_or(0) as usize;
                if len < NLMSG_HDR || len > b.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "truncated netlink message",
                    ));
                }
                let ty = u16::from_ne_bytes([b[4], b[5]]);
                let mseq = ne_u32(&b[8..]).unwrap_or(0);
                let payload = &b[NLMSG_HDR..len];
                b = &b[((len + 3) & !3).min(b.len())..];
                if mseq != seq {
                    continue;
                }
                match ty {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let err = payload
                            .get(..4)
                            .map(|e| i32::from_ne_bytes(e.try_into().unwrap_or([0; 4])));
                        return match err {
                            Some(0) if !dump => Ok(out),
                            Some(e) if e < 0 => Err(io::Error::from_raw_os_error(-e)),
                            _ => Ok(out),
                        };
                    }
                    _ => out.push(payload.to_vec()),
                }
            }
        }
    }

    /// The link called `name`, if any.
    pub fn link_by_name(&mut self, name: &str) -> io::Result<Option<Link>> {
        // ACK so the reply is followed by an end marker.
        let mut m = Msg::new(RTM_GETLINK, NLM_F_ACK);
        m.ifinfo(0, 0, 0).attr_str(IFLA_IFNAME, name);
        match self.request(&mut m) {
            Ok(msgs) => Ok(msgs.first().and_then(|p| parse_link(p))),
            Err(e) if e.raw_os_error() == Some(Errno::ENODEV as i32) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every link.
    pub fn links(&mut self) -> io::Result<Vec<Link>> {
        let mut m = Msg::new(RTM_GETLINK, NLM_F_DUMP);
        m.ifinfo(0, 0, 0);
        Ok(self
            .request(&mut m)?
            .iter()
            .filter_map(|p| parse_link(p))
            .collect())
    }

    /// Every IPv4 address.
    pub fn addrs(&mut self) -> io::Result<Vec<Addr>> {
        let mut m = Msg::new(RTM_GETADDR, NLM_F_DUMP);
        m.bytes(&[AF_INET, 0, 0, 0]).bytes(&0u32.to_ne_bytes());
        Ok(self
            .request(&mut m)?
            .iter()
            .filter_map(|p| parse_addr(p))
            .collect())
    }

    /// Every IPv6 address.
    pub fn addrs6(&mut self) -> io::Result<Vec<Addr6>> {
        let mut m = Msg::new(RTM_GETADDR, NLM_F_DUMP);
        m.bytes(&[AF_INET6, 0, 0, 0]).bytes(&0u32.to_ne_bytes());
        Ok(self
            .request(&mut m)?
            .iter()
            .filter_map(|p| parse_addr6(p))
            .collect())
    }

    /// Create a bridge with a fixed MAC address (fails with EEXIST if the
    /// name is taken). Without a set address a bridge takes the lowest MAC
    /// of its ports and changes it when that port leaves, which breaks
    /// the other containers' ARP entry for the gateway.
    pub fn create_bridge(&mut self, name: &str, mac: [u8; 6], mtu: Option<u32>) -> io::Result<()> {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK);
        m.ifinfo(0, 0, 0)
            .attr_str(IFLA_IFNAME, name)
            .attr(IFLA_ADDRESS, &mac);
        if let Some(mtu) = mtu {
            m.attr_u32(IFLA_MTU, mtu);
        }
        m.begin(IFLA_LINKINFO)
            .attr_str(IFLA_INFO_KIND, "bridge")
            .end();
        self.request(&mut m).map(drop)
    }

    /// Create a veth pair `host` <-> `peer`, the peer created directly in
    /// the network namespace `peer_netns` (an open nsfs file).
    pub fn create_veth(
        &mut self,
        host: &str,
        peer: &str,
        peer_netns: BorrowedFd<'_>,
        mtu: Option<u32>,
    ) -> io::Result<()> {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK);
        m.ifinfo(0, 0, 0).attr_str(IFLA_IFNAME, host);
        if let Some(mtu) = mtu {
            m.attr_u32(IFLA_MTU, mtu);
        }
        m.begin(IFLA_LINKINFO).attr_str(IFLA_INFO_KIND, "veth");
        m.begin(IFLA_INFO_DATA)
            .begin(VETH_INFO_PEER)
            .ifinfo(0, 0, 0);
        m.attr_str(IFLA_IFNAME, peer)
            .attr_u32(IFLA_NET_NS_FD, peer_netns.as_raw_fd() as u32);
        if let Some(mtu) = mtu {
            m.attr_u32(IFLA_MTU, mtu);
        }
        m.end().end().end();
        self.request(&mut m).map(drop)
    }

    /// Bring link `index` up and, if given, enslave it to `master`.
    pub fn set_up(&mut self, index: u32, master: Option<u32>) -> io::Result<()> {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_ACK);
        m.ifinfo(index, IFF_UP, IFF_UP);
        if let Some(master) = master {
            m.attr_u32(IFLA_MASTER, master);
        }
        self.request(&mut m).map(drop)
    }

    pub fn delete_link(&mut self, index: u32) -> io::Result<()> {
        let mut m = Msg::new(RTM_DELLINK, NLM_F_ACK);
        m.ifinfo(index, 0, 0);
        self.request(&mut m).map(drop)
    }

    /// Add `ip/prefix` (with its broadcast address) to link `index`.
    pub fn add_addr(
        &mut self,
        index: u32,
        ip: Ipv4Addr,
        prefix: u8,
        broadcast: Ipv4Addr,
    ) -> io::Result<()> {
        let mut m = Msg::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK);
        m.bytes(&[AF_INET, prefix, 0, RT_SCOPE_UNIVERSE])
            .bytes(&index.to_ne_bytes());
        m.attr(IFA_LOCAL, &ip.octets())
            .attr(IFA_ADDRESS, &ip.octets());
        m.attr(IFA_BROADCAST, &broadcast.octets());
        self.request(&mut m).map(drop)
    }

    /// Add IPv6 `ip/prefix` to link `index` without duplicate address
    /// detection (netd hands out every address exactly once; with DAD the
    /// address would be unusable for a second or so after setup).
    pub fn add_addr6(&mut self, index: u32, ip: Ipv6Addr, prefix: u8) -> io::Result<()> {
        let mut m = Msg::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK);
        m.bytes(&[AF_INET6, prefix, IFA_F_NODAD as u8, RT_SCOPE_UNIVERSE])
            .bytes(&index.to_ne_bytes());
        m.attr(IFA_LOCAL, &ip.octets())
            .attr(IFA_ADDRESS, &ip.octets())
            .attr_u32(IFA_FLAGS, IFA_F_NODAD);
        self.request(&mut m).map(drop)
    }

    /// Add a default route via `gateway` in the main table.
    pub fn add_default_route(&mut self, gateway: Ipv4Addr) -> io::Result<()> {
        let mut m = route_msg(AF_INET);
        m.attr(RTA_GATEWAY, &gateway.octets());
        self.request(&mut m).map(drop)
    }

    /// Add an IPv6 default route via `gateway` on link `index`.
    pub fn add_default_route6(&mut self, gateway: Ipv6Addr, index: u32) -> io::Result<()> {
        let mut m = route_msg(AF_INET6);
        m.attr(RTA_GATEWAY, &gateway.octets())
            .attr_u32(RTA_OIF, index);
        self.request(&mut m).map(drop)
    }
}

/// `RTM_NEWROUTE` for a default route of `family` in the main table
/// (attributes follow).
fn route_msg(family: u8) -> Msg {
    let mut m = Msg::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK);
    m.bytes(&[
        family,
        0,
        0,
        0,
        RT_TABLE_MAIN,
        RTPROT_BOOT,
        RT_SCOPE_UNIVERSE,
        RTN_UNICAST,
    ]);
    m.bytes(&0u32.to_ne_bytes());
    m
}

fn parse_link(p: &[u8]) -> Option<Link> {
    let index = ne_u32(p.get(4..8)?)?;
    let mut link = Link {
        index,
        name: String::new(),
        mac: None,
        master: None,
        mtu: None,
        kind: None,
    };
    for (ty, v) in attrs(p.get(16..)?) {
        match ty {
            IFLA_IFNAME => {
                link.name = String::from_utf8_lossy(v.split(|&c| c == 0).next()?).into_owned()
            }
            IFLA_ADDRESS if v.len() == 6 => link.mac = v.try_into().ok(),
            IFLA_MASTER => link.master = ne_u32(v),
            IFLA_MTU => link.mtu = ne_u32(v),
            IFLA_LINKINFO => {
                link.kind = attrs(v).find(|(t, _)| *t == IFLA_INFO_KIND).map(|(_, k)| {
                    String::from_utf8_lossy(k.split(|&c| c == 0).next().unwrap_or(k)).into_owned()
                });
            }
            _ => {}
        }
    }
    Some(link)
}

fn parse_addr(p: &[u8]) -> Option<Addr> {
    if *p.first()? != AF_INET {
        return None;
    }
    let prefix = *p.get(1)?;
    let index = ne_u32(p.get(4..8)?)?;
    let mut ip = None;
    for (ty, v) in attrs(p.get(8..)?) {
        let octets: Option<[u8; 4]> = v.try_into().ok();
        match (ty, octets) {
            (IFA_LOCAL, Some(o)) => ip = Some(Ipv4Addr::from(o)),
            (IFA_ADDRESS, Some(o)) if ip.is_none() => ip = Some(Ipv4Addr::from(o)),
            _ => {}
        }
    }
    Some(Addr {
        index,
        ip: ip?,
        prefix,
    })
}

fn parse_addr6(p: &[u8]) -> Option<Addr6> {
    if *p.first()? != AF_INET6 {
        return None;
    }
    let prefix = *p.get(1)?;
    let mut flags = u32::from(*p.get(2)?);
    let index = ne_u32(p.get(4..8)?)?;
    let mut ip = None;
    for (ty, v) in attrs(p.get(8..)?) {
        let octets: Option<[u8; 16]> = v.try_into().ok();
        match (ty, octets) {
            (IFA_LOCAL, Some(o)) => ip = Some(Ipv6Addr::from(o)),
            (IFA_ADDRESS, Some(o)) if ip.is_none() => ip = Some(Ipv6Addr::from(o)),
            (IFA_FLAGS, _) => flags = ne_u32(v).unwrap_or(flags),
            _ => {}
        }
    }
    Some(Addr6 {
        index,
        ip: ip?,
        prefix,
        flags,
    })
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_attribute_lengths() {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_ACK);
        m.ifinfo(0, 0, 0)
            .begin(IFLA_LINKINFO)
            .attr_str(IFLA_INFO_KIND, "veth")
            .end();
        let b = m.finish(7).to_vec();
        assert_eq!(ne_u32(&b).unwrap() as usize, b.len());
        let top: Vec<_> = attrs(&b[32..]).collect();
        assert_eq!(top.len(), 1);
        assert_eq!(top[0].0, IFLA_LINKINFO);
        let inner: Vec<_> = attrs(top[0].1).collect();
        assert_eq!(inner, vec![(IFLA_INFO_KIND, &b"veth\0"[..])]);
    }

    #[test]
    fn parse_link_message() {
        let mut m = Msg::new(RTM_NEWLINK, 0);
        m.ifinfo(42, 0, 0)
            .attr_str(IFLA_IFNAME, "eth0")
            .attr(IFLA_ADDRESS, &[2, 0, 0, 0, 0, 1]);
        m.attr_u32(IFLA_MTU, 1400);
        let b = m.finish(1).to_vec();
        let l = parse_link(&b[NLMSG_HDR..]).unwrap();
        assert_eq!((l.index, l.name.as_str(), l.mtu), (42, "eth0", Some(1400)));
        assert_eq!(format_mac(&l.mac.unwrap()), "02:00:00:00:00:01");
    }

    #[test]
    fn ipv6_address_message_roundtrip() {
        let ip: Ipv6Addr = "fd89:0:0:1::2".parse().unwrap();
        let mut m = Msg::new(RTM_NEWADDR, 0);
        m.bytes(&[AF_INET6, 64, IFA_F_NODAD as u8, RT_SCOPE_UNIVERSE])
            .bytes(&7u32.to_ne_bytes());
        m.attr(IFA_ADDRESS, &ip.octets())
            .attr_u32(IFA_FLAGS, IFA_F_NODAD | IFA_F_TENTATIVE);
        let b = m.finish(1).to_vec();
        let a = parse_addr6(&b[NLMSG_HDR..]).expect("addr");
        assert_eq!((a.index, a.ip, a.prefix), (7, ip, 64));
        assert!(a.tentative() && !a.link_local());
        assert!(parse_addr(&b[NLMSG_HDR..]).is_none(), "not IPv4");
    }
}
