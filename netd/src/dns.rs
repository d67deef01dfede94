//! The DNS responder of one network: UDP on the gateway address, port 53.
//!
//! It answers A and AAAA queries for container names and aliases leased on
//! its network — or, for a container attached to more networks, on those
//! (read from the state file on every query, so it never serves
//! a record whose lease is gone) and forwards every other query to the
//! upstream resolvers — unless the network is internal, where unknown names
//! get NXDOMAIN. One responder process per network; see `responder.rs`
//! for its lifecycle.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::time::Duration;

use crate::state::{self, State};
use crate::Error;

const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;
const RCODE_NXDOMAIN: u8 = 3;
const RCODE_SERVFAIL: u8 = 2;
const TTL: u32 = 60;

/// A parsed question: the lowercased name without the trailing dot, its
/// type and class, and where the question section ends.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Question {
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
    end: usize,
}

/// The first question of a standard query; `None` for anything else.
pub(crate) fn parse_query(msg: &[u8]) -> Option<Question> {
    let flags = u16::from_be_bytes([*msg.get(2)?, *msg.get(3)?]);
    let qdcount = u16::from_be_bytes([*msg.get(4)?, *msg.get(5)?]);
    if flags & 0x8000 != 0 || (flags >> 11) & 0xf != 0 || qdcount != 1 {
        return None;
    }
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*msg.get(i)?);
        i += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return None; // compression is not used in questions we accept
        }
        labels.push(String::from_utf8_lossy(msg.get(i..i + len)?).to_ascii_lowercase());
        i += len;
    }
    let qtype = u16::from_be_bytes([*msg.get(i)?, *msg.get(i + 1)?]);
    let qclass = u16::from_be_bytes([*msg.get(i + 2)?, *msg.get(i + 3)?]);
    Some(Question {
        name: labels.join("."),
        qtype,
        qclass,
        end: i + 4,
    })
}

/// A response to `query` (header and question copied) with `answers` as A
/// (IPv4) or AAAA (IPv6) records and `rcode`.
pub(crate) fn response(query: &[u8], q: &Question, answers: &[IpAddr], rcode: u8) -> Vec<u8> {
    let mut r = query[..q.end].to_vec();
    let rd = query[2] & 0x01;
    r[2] = 0x80 | 0x04 | rd; // QR, AA, RD copied
    r[3] = 0x80 | rcode; // RA
    r[6..8].copy_from_slice(&(answers.len() as u16).to_be_bytes());
    r[8..12].fill(0);
    for ip in answers {
        let (ty, data) = match ip {
            IpAddr::V4(ip) => (TYPE_A, ip.octets().to_vec()),
            IpAddr::V6(ip) => (TYPE_AAAA, ip.octets().to_vec()),
        };
        r.extend_from_slice(&[0xc0, 12]); // the question's name
        r.extend_from_slice(&ty.to_be_bytes());
        r.extend_from_slice(&CLASS_IN.to_be_bytes());
        r.extend_from_slice(&TTL.to_be_bytes());
        r.extend_from_slice(&(data.len() as u16).to_be_bytes());
        r.extend_from_slice(&data);
    }
    r
}

/// Addresses (IPv4 and IPv6) on `network` of containers called `name`
/// (name or alias).
fn lookup_on(state: &State, network: &str, name: &str) -> Vec<IpAddr> {
    state
        .leases
        .values()
        .flat_map(|l| l.attachments.iter().map(move |a| (l, a)))
        .filter(|(l, a)| {
            a.network == network
                && (l.container_name.eq_ignore_ascii_case(name)
                    || a.aliases.iter().any(|x| x.eq_ignore_ascii_case(name)))
        })
        .flat_map(|(_, a)| std::iter::once(a.ip.into()).chain(a.ip6.map(IpAddr::from)))
        .collect()
}

/// What `name` is for the container asking from address `from` on
/// `network`: its addresses on `network`, else (docker's rule: a container
/// resolves the names of every network it is attached to) on the asking
/// container's other networks, in the order it joined them.
pub(crate) fn lookup(state: &State, network: &str, name: &str, from: IpAddr) -> Vec<IpAddr> {
    let own = lookup_on(state, network, name);
    if !own.is_empty() {
        return own;
    }
    let asker = state.leases.values().find(|l| {
        l.attachments.iter().any(|a| {
            a.network == network
                && (IpAddr::from(a.ip) == from || a.ip6.map(IpAddr::from) == Some(from))
        })
    });
    let Some(asker) = asker else { return own };
    (asker.attachments.iter())
        .filter(|a| a.network != network)
        .map(|a| lookup_on(state, &a.network, name))
        .find(|ips| !ips.is_empty())
        .unwrap_or_default()
}

/// What the responder needs to know.
pub struct ServeConfig<'a> {
    pub state_dir: &'a Path,
    pub network: &'a str,
    pub listen: Ipv4Addr,
    pub internal: bool,
    pub upstreams: Vec<SocketAddr>,
}

/// Bind, call `ready`, then answer queries forever.
pub fn serve(cfg: &ServeConfig<'_>, ready: impl FnOnce()) -> Result<(), Error> {
    let addr = SocketAddr::from((cfg.listen, 53));
    let sock = UdpSocket::bind(addr).map_err(|source| Error::DnsBind { addr, source })?;
    ready();
    let mut buf = [0u8; 1500];
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let query = &buf[..n];
        let Some(q) = parse_query(query) else {
            continue;
        };
        let answer = answer(cfg, query, &q, from.ip());
        if let Some(a) = answer {
            let _ = sock.send_to(&a, from);
        }
    }
}

fn answer(cfg: &ServeConfig<'_>, query: &[u8], q: &Question, from: IpAddr) -> Option<Vec<u8>> {
    let state = match state::read_unlocked(cfg.state_dir) {
        Ok(s) => s,
        Err(_) => return Some(response(query, q, &[], RCODE_SERVFAIL)),
    };
    let ips = lookup(&state, cfg.network, &q.name, from);
    if !ips.is_empty() {
        // Known name: its records of the asked type, else none (NOERROR).
        let ips: Vec<IpAddr> = ips
            .into_iter()
            .filter(|ip| match (q.qtype, q.qclass) {
                (TYPE_A, CLASS_IN) => ip.is_ipv4(),
                (TYPE_AAAA, CLASS_IN) => ip.is_ipv6(),
                _ => false,
            })
            .collect();
        return Some(response(query, q, &ips, 0));
    }
    if cfg.internal || cfg.upstreams.is_empty() {
        return Some(response(query, q, &[], RCODE_NXDOMAIN));
    }
    Some(forward(&cfg.upstreams, query).unwrap_or_else(|| response(query, q, &[], RCODE_SERVFAIL)))
}

/// Relay `query` to the first upstream that answers.
fn forward(upstreams: &[SocketAddr], query: &[u8]) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    sock.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut buf = [0u8; 4096];
    for up in upstreams {
        if sock.send_to(query, up).is_err() {
            continue;
        }
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            if from == *up && n >= 2 && buf[..2] == query[..2] {
                return Some(buf[..n].to_vec());
            }
        }
    }
    None
}

/// The host's non-loopback resolvers from `/etc/resolv.conf`.
pub fn host_resolvers() -> Vec<Ipv4Addr> {
    let conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    conf.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|ip| ip.trim().parse::<Ipv4Addr>().ok())
        .filter(|ip| !ip.is_loopback())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for `name` of type `qtype` with id 0x1234 and RD set.
    pub(crate) fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            q.push(l.len() as u8);
            q.extend_from_slice(l.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&CLASS_IN.to_be_bytes());
        q
    }

    #[test]
    fn parse_and_answer() {
        let msg = query("Web.example", TYPE_A);
        let q = parse_query(&msg).expect("query");
        assert_eq!((q.name.as_str(), q.qtype), ("web.example", TYPE_A));
        let r = response(&msg, &q, &[Ipv4Addr::new(10, 0, 0, 2).into()], 0);
        assert_eq!(&r[..2], &[0x12, 0x34]);
        assert_eq!(r[2] & 0x80, 0x80, "QR set");
        assert_eq!(u16::from_be_bytes([r[6], r[7]]), 1);
        assert_eq!(&r[r.len() - 4..], &[10, 0, 0, 2]);
        // Responses are not queries.
        assert!(parse_query(&r).is_none());
        assert!(parse_query(&msg[..10]).is_none());
    }

    fn state_with(name: &str, alias: &str, ip: Ipv4Addr, ip6: Option<&str>) -> State {
        use crate::state::{Lease, LeaseAttachment};
        let mut st = State::default();
        let att = LeaseAttachment {
            network: "n".into(),
            ip,
            ip6: ip6.map(|a| a.parse().expect("ipv6")),
            host_interface: "vb0".into(),
            interface: "eth0".into(),
            aliases: vec![alias.into()],
        };
        let lease = Lease {
            container_name: name.into(),
            netns: "/x".into(),
            attachments: vec![att],
            port_mappings: vec![],
        };
        st.leases.insert("id".into(), lease);
        st
    }

    /// `(rcode, answer count)` of what the responder says to `name`/`qtype`.
    fn check(dir: &Path, internal: bool, name: &str, qtype: u16) -> (u8, u16) {
        let cfg = ServeConfig {
            state_dir: dir,
            network: "n",
            listen: Ipv4Addr::LOCALHOST,
            internal,
            upstreams: vec![],
        };
        let q = query(name, qtype);
        let from = IpAddr::from(Ipv4Addr::new(10, 0, 0, 99));
        let r = answer(&cfg, &q, &parse_query(&q).expect("query"), from).expect("answer");
        (r[3] & 0x0f, u16::from_be_bytes([r[6], r[7]]))
    }

    #[test]
    fn answers_from_the_state_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let st = state_with("web", "www", Ipv4Addr::new(10, 0, 0, 2), None);
        std::fs::write(
            dir.path().join("state.json"),
            serde_json::to_vec(&st).expect("json"),
        )
        .expect("write");
        let from = IpAddr::from(Ipv4Addr::new(10, 0, 0, 99));
        assert_eq!(
            lookup(&st, "n", "WEB", from),
            vec![IpAddr::from(Ipv4Addr::new(10, 0, 0, 2))]
        );
        assert!(lookup(&st, "other", "web", from).is_empty());
        assert_eq!(check(dir.path(), false, "web", TYPE_A), (0, 1));
        assert_eq!(check(dir.path(), false, "www", TYPE_A), (0, 1));
        assert_eq!(
            check(dir.path(), false, "web", TYPE_AAAA),
            (0, 0),
            "AAAA of a known name without IPv6"
        );
        assert_eq!(
            check(dir.path(), true, "unknown", TYPE_A),
            (RCODE_NXDOMAIN, 0)
        );
        assert_eq!(
            check(dir.path(), false, "unknown", TYPE_A),
            (RCODE_NXDOMAIN, 0),
            "no upstream"
        );
    }

    /// Adds container `name` attached to `(network, ip)`s, in order.
    fn attach(st: &mut State, name: &str, nets: &[(&str, [u8; 4])]) {
        use crate::state::{Lease, LeaseAttachment};
        let attachments = (nets.iter().enumerate())
            .map(|(i, (network, ip))| LeaseAttachment {
                network: network.to_string(),
                ip: Ipv4Addr::from(*ip),
                ip6: None,
                host_interface: format!("vb{name}{i}"),
                interface: format!("eth{i}"),
                aliases: vec![],
            })
            .collect();
        let lease = Lease {
            container_name: name.into(),
            netns: "/x".into(),
            attachments,
            port_mappings: vec![],
        };
        st.leases.insert(name.into(), lease);
    }

    #[test]
    fn a_container_on_two_networks_resolves_names_of_both() {
        let mut st = State::default();
        attach(
            &mut st,
            "both",
            &[("a", [10, 1, 0, 2]), ("b", [10, 2, 0, 2])],
        );
        attach(&mut st, "on-a", &[("a", [10, 1, 0, 3])]);
        attach(&mut st, "on-b", &[("b", [10, 2, 0, 3])]);
        attach(
            &mut st,
            "also",
            &[("b", [10, 2, 0, 4]), ("a", [10, 1, 0, 4])],
        );
        let ip = |a: [u8; 4]| IpAddr::from(Ipv4Addr::from(a));
        let both_on_a = ip([10, 1, 0, 2]);
        // Asked on a, by the container on both: b's names too.
        assert_eq!(lookup(&st, "a", "on-b", both_on_a), vec![ip([10, 2, 0, 3])]);
        assert_eq!(lookup(&st, "a", "on-a", both_on_a), vec![ip([10, 1, 0, 3])]);
        // A name on both networks: the address on the asked one.
        assert_eq!(lookup(&st, "a", "also", both_on_a), vec![ip([10, 1, 0, 4])]);
        assert_eq!(
            lookup(&st, "b", "also", ip([10, 2, 0, 2])),
            vec![ip([10, 2, 0, 4])]
        );
        // A container only on a does not see b's names, nor does a stranger.
        assert!(lookup(&st, "a", "on-b", ip([10, 1, 0, 3])).is_empty());
        assert!(lookup(&st, "a", "on-b", ip([10, 1, 0, 99])).is_empty());
    }

    #[test]
    fn answers_aaaa_with_the_ipv6_address() {
        let dir = tempfile::tempdir().expect("tempdir");
        let st = state_with("web", "www", Ipv4Addr::new(10, 0, 0, 2), Some("fd89::2"));
        std::fs::write(
            dir.path().join("state.json"),
            serde_json::to_vec(&st).expect("json"),
        )
        .expect("write");
        assert_eq!(check(dir.path(), false, "www", TYPE_AAAA), (0, 1));
        assert_eq!(check(dir.path(), false, "web", TYPE_A), (0, 1));
        assert_eq!(check(dir.path(), false, "web", 16), (0, 0), "TXT");
        let q = query("web", TYPE_AAAA);
        let ips = vec![IpAddr::from(
            "fd89::2".parse::<std::net::Ipv6Addr>().unwrap(),
        )];
        let r = response(&q, &parse_query(&q).expect("query"), &ips, 0);
        // name pointer, type, class, ttl, rdlength 16, the address.
        let rr = &r[q.len()..];
        assert_eq!(&rr[2..4], &TYPE_AAAA.to_be_bytes());
        assert_eq!(&rr[10..12], &16u16.to_be_bytes());
        assert_eq!(
            &rr[12..],
            &"fd89::2".parse::<std::net::Ipv6Addr>().unwrap().octets()
        );
    }
}
