//! `disconnect`: remove some of a container's attachments and leave the
//! others alone. Checked first (the lease exists and has every network),
//! then best effort as teardown: every step is attempted, every failure
//! reported, and the attachments leave the lease anyway.

use std::collections::BTreeSet;
use std::path::Path;

use crate::apply::{dns_servers, index_of};
use crate::netlink::Netlink;
use crate::netns::Netns;
use crate::state::{Lease, LeaseAttachment, LockedState, State};
use crate::teardown::{remove_interfaces, remove_unused_networks};
use crate::wire::{DisconnectResult, Request, TeardownResult};
use crate::{nft, Error, Options};

/// Remove the attachments of `req.container_id` to the networks named in
/// `req.networks` (only their names are used): their veth pairs, addresses,
/// DNS records, nft rules and lease entries. The lease goes with its last
/// attachment; a network goes (responder, bridge) with its last lease. When
/// the attachment holding a default route goes, the next one that may hold
/// it (non-internal, dual stack for IPv6) gets it.
pub fn disconnect(
    netns_path: &Path,
    req: &Request,
    opts: &Options,
) -> Result<DisconnectResult, Error> {
    let id = req.container_id.clone();
    if id.is_empty() {
        return Err(Error::EmptyContainerId);
    }
    if req.networks.is_empty() {
        return Err(Error::NoNetworks);
    }
    let mut names = BTreeSet::new();
    for a in &req.networks {
        if !names.insert(a.network.name.as_str()) {
            return Err(Error::DuplicateNetwork(a.network.name.clone()));
        }
    }
    let mut host = Netlink::open().map_err(Error::NetlinkSocket)?;
    let locked = LockedState::lock(&opts.state_dir)?;
    let mut state = locked.load()?;
    let old = state
        .leases
        .get(&id)
        .cloned()
        .ok_or_else(|| Error::NoLease(id.clone()))?;
    for n in &names {
        if !old.attachments.iter().any(|a| a.network == *n) {
            let network = n.to_string();
            return Err(Error::NotConnected { id, network });
        }
    }
    let (gone, kept): (Vec<LeaseAttachment>, Vec<LeaseAttachment>) = (old.attachments.iter())
        .cloned()
        .partition(|a| names.contains(a.network.as_str()));
    let left = Lease {
        attachments: kept,
        ..old.clone()
    };
    let before = route_holders(&old, &state);
    let after = route_holders(&left, &state);
    if left.attachments.is_empty() {
        state.leases.remove(&id);
    } else {
        state.leases.insert(id.clone(), left.clone());
    }

    let mut result = TeardownResult {
        container_id: id.clone(),
        removed_interfaces: Vec::new(),
        removed_bridges: Vec::new(),
    };
    let mut failures = Vec::new();
    remove_interfaces(&mut host, netns_path, &gone, &mut result, &mut failures);
    if before != after {
        if let Err(e) = move_default_routes(netns_path, &state, &left, before, after) {
            failures.push(e);
        }
    }
    let dns = dns_servers(req.dns_servers.as_deref(), &state, &left);
    let dir = &opts.state_dir;
    remove_unused_networks(
        &mut host,
        dir,
        &mut state,
        &gone,
        &mut result,
        &mut failures,
    );
    if let Err(e) = nft::apply(&state, &opts.nft_table) {
        failures.push(e);
    }
    if let Err(e) = locked.save(&state) {
        failures.push(e);
    }
    if !failures.is_empty() {
        return Err(Error::DisconnectIncomplete { id, failures });
    }
    Ok(DisconnectResult {
        container_id: id,
        removed_interfaces: result.removed_interfaces,
        removed_bridges: result.removed_bridges,
        dns_servers: dns,
    })
}

/// The attachments (by network name) holding the IPv4 and the IPv6
/// default route: the first non-internal one, of the dual-stack ones for
/// IPv6 (the rule setup and connect follow).
fn route_holders(lease: &Lease, state: &State) -> (Option<String>, Option<String>) {
    let outbound =
        |a: &&LeaseAttachment| (state.networks.get(&a.network)).is_some_and(|n| !n.config.internal);
    let mut out = lease.attachments.iter().filter(outbound);
    let v4 = out.next().map(|a| a.network.clone());
    let v6 = (lease.attachments.iter())
        .filter(outbound)
        .find(|a| a.ip6.is_some())
        .map(|a| a.network.clone());
    (v4, v6)
}

type Holders = (Option<String>, Option<String>);

/// Default routes via the new holders whose predecessor went (its route
/// went with its interface). A netns that is gone needs none.
fn move_default_routes(
    netns_path: &Path,
    state: &State,
    lease: &Lease,
    before: Holders,
    after: Holders,
) -> Result<(), Error> {
    let netns = match Netns::open(netns_path) {
        Ok(ns) => ns,
        Err(Error::OpenNetns { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(())
        }
        Err(e) => return Err(e),
    };
    let mut inside = netns.netlink()?;
    let config = |name: &str| state.networks.get(name).map(|n| n.config.clone());
    let interface = |name: &str| {
        (lease.attachments.iter())
            .find(|a| a.network == name)
            .map(|a| a.interface.clone())
    };
    if let (true, Some(n)) = (before.0 != after.0, after.0.as_deref().and_then(config)) {
        let gateway = n.gateway();
        inside
            .add_default_route(gateway)
            .map_err(|source| Error::AddRoute {
                gateway: gateway.into(),
                source,
            })?;
    }
    let holder6 = after.1.as_deref();
    if let (true, Some(name)) = (before.1 != after.1, holder6) {
        let gw6 = config(name).and_then(|n| n.gateway6());
        let ifname = interface(name);
        if let (Some(gateway), Some(ifname)) = (gw6, ifname) {
            let index = index_of(&mut inside, &ifname)?;
            inside
                .add_default_route6(gateway, index)
                .map_err(|source| Error::AddRoute {
                    gateway: gateway.into(),
                    source,
                })?;
        }
    }
    Ok(())
}
