//! The nftables ruleset: one table owned by netd, rendered from the state
//! and replaced atomically in one `nft -f -` transaction after every change.
//!
//! Invariant: netd only ever creates, replaces or deletes its own table
//! (`inet berth` by default, one table for IPv4 and IPv6; an `ip` table of
//! the same name, which netd used before dual stack, is deleted with it);
//! no other table or chain is read or written. The table is a pure function
//! of the state, so a teardown leaves exactly the rules of the remaining
//! leases and the last teardown deletes it.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::process::{Command, Stdio};

use crate::state::State;
use crate::wire::PortMapping;
use crate::Error;

/// The default table name (family `inet`).
pub const DEFAULT_TABLE: &str = "berth";

/// Whether `name` is usable as a table name (and safe to splice in a script).
pub fn valid_table_name(name: &str) -> bool {
    let mut c = name.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic())
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        && name.len() <= 64
}

/// The `nft -f` script that replaces table `table` with the rules `state`
/// needs (or deletes it when no network is in use).
pub fn render(state: &State, table: &str) -> String {
    let mut s = String::new();
    for family in ["ip", "inet"] {
        let _ = writeln!(
            s,
            "table {family} {table} {{}}\ndelete table {family} {table}"
        );
    }
    if state.networks.is_empty() {
        return s;
    }
    let _ = writeln!(s, "table inet {table} {{");
    s.push_str(
        "  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n    fib daddr type local jump published\n  }\n",
    );
    s.push_str("  chain output {\n    type nat hook output priority -100; policy accept;\n    fib daddr type local jump published\n  }\n");
    s.push_str("  chain published {\n");
    for (id, lease) in &state.leases {
        let Some(first) = lease.attachments.first() else {
            continue;
        };
        for p in &lease.port_mappings {
            let daddr = p
                .host_ip
                .map(|ip| format!("ip daddr {ip}"))
                .unwrap_or_else(|| "meta nfproto ipv4".into());
            let proto = p.protocol;
            let c = comment(id);
            render_mapping(&mut s, &format!("{daddr} {proto}"), p, first.ip.into(), &c);
            // Over IPv6 only without a host address (an IPv4 one), and never
            // from ::1, which cannot leave the loopback device.
            if let (Some(ip6), None) = (first.ip6, p.host_ip) {
                let matcher = format!("ip6 daddr != ::1 {proto}");
                render_mapping(&mut s, &matcher, p, ip6.into(), &c);
            }
        }
    }
    s.push_str("  }\n");
    render_postrouting(state, &mut s);
    render_forward(state, &mut s);
    s.push_str("}\n");
    s
}

/// DNAT rules of one mapping: one rule for a single port or a range mapped
/// onto the same ports, else one rule per port (nft's `dnat to IP:A-B`
/// picks any port of the range instead of keeping the offset).
fn render_mapping(s: &mut String, matcher: &str, p: &PortMapping, ip: IpAddr, comment: &str) {
    let end = p.host_end().unwrap_or(u16::MAX);
    let (family, bare, with_port) = match ip {
        IpAddr::V4(ip) => ("ip", ip.to_string(), format!("{ip}:")),
        IpAddr::V6(ip) => ("ip6", ip.to_string(), format!("[{ip}]:")),
    };
    if p.range > 1 && p.host_port == p.container_port {
        let _ = writeln!(
            s,
            "    {matcher} dport {}-{end} dnat {family} to {bare} comment \"{comment}\"",
            p.host_port
        );
        return;
    }
    for (host, ctr) in (p.host_port..=end).zip(p.container_port..) {
        let _ = writeln!(
            s,
            "    {matcher} dport {host} dnat {family} to {with_port}{ctr} comment \"{comment}\""
        );
    }
}

/// Masquerade: connections to published ports from 127.0.0.0/8 (they need
/// a routable source), hairpin connections (a container reaching a
/// published port of its own network), and outbound traffic of
/// non-internal networks.
fn render_postrouting(state: &State, s: &mut String) {
    s.push_str(
        "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n",
    );
    for n in state.networks.values() {
        let (br, net) = (&n.config.bridge, n.config.subnet);
        let _ = writeln!(s, "    oifname \"{br}\" ip saddr 127.0.0.0/8 masquerade");
        let _ = writeln!(
            s,
            "    oifname \"{br}\" ip saddr {net} ct status dnat masquerade"
        );
        if !n.config.internal {
            let _ = writeln!(s, "    oifname != \"{br}\" ip saddr {net} masquerade");
        }
        let Some(net6) = n.config.subnet6 else {
            continue;
        };
        let _ = writeln!(
            s,
            "    oifname \"{br}\" ip6 saddr {net6} ct status dnat masquerade"
        );
        if !n.config.internal {
            let _ = writeln!(s, "    oifname != \"{br}\" ip6 saddr {net6} masquerade");
        }
    }
    s.push_str("  }\n");
}

/// Isolation: nothing is routed into or out of an internal network's
/// bridge, nor between two netd bridges except to published ports (the
/// rules match interfaces, so they hold for IPv4 and IPv6 alike).
fn render_forward(state: &State, s: &mut String) {
    s.push_str("  chain forward {\n    type filter hook forward priority filter; policy accept;\n");
    for n in state.networks.values().filter(|n| n.config.internal) {
        let br = &n.config.bridge;
        let _ = writeln!(s, "    iifname \"{br}\" oifname != \"{br}\" drop");
        let _ = writeln!(s, "    oifname \"{br}\" iifname != \"{br}\" drop");
    }
    // Published ports stay reachable from other networks (through a host
    // address, DNAT'ed), as from anywhere else.
    s.push_str("    ct status dnat accept\n");
    for n in state.networks.values() {
        let br = &n.config.bridge;
        for o in state.networks.values().filter(|o| o.config.bridge != *br) {
            let _ = writeln!(
                s,
                "    iifname \"{br}\" oifname \"{}\" drop",
                o.config.bridge
            );
        }
    }
    s.push_str("  }\n");
}

/// A container id made safe for a quoted nft comment.
fn comment(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
        .take(64)
        .collect()
}

/// Replace the table with the rules for `state`.
pub fn apply(state: &State, table: &str) -> Result<(), Error> {
    run_script(&render(state, table), "apply")
}

/// Feed `script` to `nft -f -`.
fn run_script(script: &str, action: &'static str) -> Result<(), Error> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(Error::NftSpawn)?;
    let write = child
        .stdin
        .take()
        .map(|mut i| i.write_all(script.as_bytes()));
    let out = child.wait_with_output().map_err(Error::NftSpawn)?;
    if let Some(Err(e)) = write {
        return Err(Error::NftSpawn(e));
    }
    if !out.status.success() {
        return Err(Error::NftFailed {
            action,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Lease, LeaseAttachment, NetworkState};
    use crate::wire::{NetworkConfig, Protocol};

    fn state(internal: bool) -> State {
        let mut st = State::default();
        let config = NetworkConfig {
            name: "n".into(),
            bridge: "br-t".into(),
            subnet: "10.7.0.0/24".parse().unwrap(),
            gateway: None,
            internal,
            mtu: None,
            dns_enabled: false,
            ip_range: None,
            subnet6: None,
            gateway6: None,
        };
        st.networks.insert(
            "n".into(),
            NetworkState {
                config,
                created_bridge: true,
            },
        );
        let att = LeaseAttachment {
            network: "n".into(),
            ip: "10.7.0.2".parse().unwrap(),
            ip6: None,
            host_interface: "bn1".into(),
            interface: "eth0".into(),
            aliases: vec![],
        };
        let pm = PortMapping {
            host_ip: None,
            host_port: 8080,
            container_port: 80,
            protocol: Protocol::Udp,
            range: 1,
        };
        let lease = Lease {
            container_name: "c".into(),
            netns: "/x".into(),
            attachments: vec![att],
            port_mappings: vec![pm],
        };
        st.leases.insert("c\"1".into(), lease);
        st
    }

    #[test]
    fn renders_dnat_and_masquerade() {
        let r = render(&state(false), "berth");
        assert!(
            r.contains("meta nfproto ipv4 udp dport 8080 dnat ip to 10.7.0.2:80 comment \"c1\""),
            "{r}"
        );
        assert!(
            r.contains("oifname != \"br-t\" ip saddr 10.7.0.0/24 masquerade"),
            "{r}"
        );
        assert!(!r.contains("drop"), "{r}");
        assert!(!r.contains("ip6"), "an IPv4-only network: {r}");
    }

    /// `state(internal)` with the network dual-stack and the container at
    /// fd89:7::2.
    fn dual_stack(internal: bool) -> State {
        let mut st = state(internal);
        for n in st.networks.values_mut() {
            n.config.subnet6 = Some("fd89:7::/64".parse().unwrap());
        }
        for l in st.leases.values_mut() {
            l.attachments[0].ip6 = Some("fd89:7::2".parse().unwrap());
        }
        st
    }

    #[test]
    fn renders_ipv6_dnat_and_masquerade() {
        let mut st = dual_stack(false);
        let lease = st.leases.values_mut().next().expect("lease");
        let pm = lease.port_mappings[0];
        lease.port_mappings.push(PortMapping {
            host_ip: Some("127.0.0.1".parse().unwrap()),
            host_port: 8443,
            container_port: 443,
            protocol: Protocol::Tcp,
            ..pm
        });
        lease.port_mappings.push(PortMapping {
            host_port: 9000,
            container_port: 9000,
            range: 2,
            ..pm
        });
        let r = render(&st, "berth");
        for want in [
            "ip6 daddr != ::1 udp dport 8080 dnat ip6 to [fd89:7::2]:80 comment \"c1\"",
            "ip6 daddr != ::1 udp dport 9000-9001 dnat ip6 to fd89:7::2 comment",
            "ip daddr 127.0.0.1 tcp dport 8443 dnat ip to 10.7.0.2:443 comment",
            "oifname \"br-t\" ip6 saddr fd89:7::/64 ct status dnat masquerade",
            "oifname != \"br-t\" ip6 saddr fd89:7::/64 masquerade",
        ] {
            assert!(r.contains(want), "{want} in {r}");
        }
        // A mapping bound to an IPv4 host address is IPv4 only.
        assert!(!r.contains("dport 8443 dnat ip6"), "{r}");
        let r = render(&dual_stack(true), "berth");
        assert!(
            !r.contains("oifname != \"br-t\" ip6 saddr"),
            "internal: {r}"
        );
    }

    #[test]
    fn renders_port_ranges() {
        let mut st = state(false);
        let lease = st.leases.values_mut().next().expect("lease");
        let pm = lease.port_mappings[0];
        lease.port_mappings = vec![
            PortMapping {
                host_port: 9000,
                container_port: 9000,
                protocol: Protocol::Tcp,
                range: 3,
                ..pm
            },
            PortMapping {
                host_port: 7000,
                container_port: 80,
                range: 2,
                ..pm
            },
        ];
        let r = render(&st, "berth");
        assert!(
            r.contains("tcp dport 9000-9002 dnat ip to 10.7.0.2 comment"),
            "{r}"
        );
        assert!(
            r.contains("udp dport 7000 dnat ip to 10.7.0.2:80 comment"),
            "{r}"
        );
        assert!(
            r.contains("udp dport 7001 dnat ip to 10.7.0.2:81 comment"),
            "{r}"
        );
        assert!(!r.contains("7002"), "{r}");
    }

    #[test]
    fn internal_network_is_not_masqueraded() {
        let r = render(&state(true), "berth");
        assert!(
            !r.contains("oifname != \"br-t\" ip saddr 10.7.0.0/24 masquerade"),
            "{r}"
        );
        assert!(
            r.contains("iifname \"br-t\" oifname != \"br-t\" drop"),
            "{r}"
        );
    }

    #[test]
    fn empty_state_deletes_the_table_only() {
        assert_eq!(
            render(&State::default(), "t1"),
            "table ip t1 {}\ndelete table ip t1\ntable inet t1 {}\ndelete table inet t1\n"
        );
        assert!(
            valid_table_name("berth_x1") && !valid_table_name("1x") && !valid_table_name("a b")
        );
    }
}
