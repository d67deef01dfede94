//! `teardown`: best effort; every step is attempted and every failure
//! reported.

use std::path::Path;

use crate::netlink::Netlink;
use crate::netns::Netns;
use crate::state::{LeaseAttachment, LockedState, State};
use crate::wire::{Request, TeardownResult};
use crate::{nft, responder, Error, Options};

/// Remove the interfaces, rules and lease of `req.container_id`.
///
/// The lease is dropped even when a step fails (its failures are in
/// [`Error::TeardownIncomplete`]); bridges netd created go with the last
/// lease that used them.
pub fn teardown(netns_path: &Path, req: &Request, opts: &Options) -> Result<TeardownResult, Error> {
    if req.container_id.is_empty() {
        return Err(Error::EmptyContainerId);
    }
    if crate::pasta::is_set_up(opts, &req.container_id) {
        return crate::pasta::teardown(req, opts);
    }
    let mut host = Netlink::open().map_err(Error::NetlinkSocket)?;
    let locked = LockedState::lock(&opts.state_dir)?;
    let mut state = locked.load()?;
    let lease = state
        .leases
        .remove(&req.container_id)
        .ok_or_else(|| Error::NoLease(req.container_id.clone()))?;
    let mut failures = Vec::new();
    let mut result = TeardownResult {
        container_id: req.container_id.clone(),
        removed_interfaces: Vec::new(),
        removed_bridges: Vec::new(),
    };
    let gone = &lease.attachments;
    remove_interfaces(&mut host, netns_path, gone, &mut result, &mut failures);
    let dir = &opts.state_dir;
    remove_unused_networks(&mut host, dir, &mut state, gone, &mut result, &mut failures);
    if let Err(e) = nft::apply(&state, &opts.nft_table) {
        failures.push(e);
    }
    if let Err(e) = locked.save(&state) {
        failures.push(e);
    }
    if failures.is_empty() {
        Ok(result)
    } else {
        Err(Error::TeardownIncomplete {
            id: req.container_id.clone(),
            failures,
        })
    }
}

/// Delete each veth by its host end; if that end is gone, delete the
/// inside end through the netns (a missing netns took the pair with it).
pub(crate) fn remove_interfaces(
    host: &mut Netlink,
    netns_path: &Path,
    attachments: &[LeaseAttachment],
    result: &mut TeardownResult,
    failures: &mut Vec<Error>,
) {
    let mut inside: Option<Netlink> = None;
    for a in attachments {
        match delete_link(host, &a.host_interface) {
            Ok(true) => {
                result.removed_interfaces.push(a.host_interface.clone());
                continue;
            }
            Ok(false) => {}
            Err(e) => {
                failures.push(e);
                continue;
            }
        }
        if inside.is_none() {
            inside = match Netns::open(netns_path) {
                Ok(ns) => match ns.netlink() {
                    Ok(nl) => Some(nl),
                    Err(e) => {
                        failures.push(e);
                        None
                    }
                },
                Err(_) => None, // no netns, no interface left in it
            };
        }
        if let Some(nl) = inside.as_mut() {
            if let Err(e) = delete_link(nl, &a.interface) {
                failures.push(e);
            }
        }
    }
}

/// Networks without leases leave the state, with their DNS responder and
/// (if netd created it) their bridge: those of `attachments` (just
/// removed from `state`).
pub(crate) fn remove_unused_networks(
    host: &mut Netlink,
    state_dir: &Path,
    state: &mut State,
    attachments: &[LeaseAttachment],
    result: &mut TeardownResult,
    failures: &mut Vec<Error>,
) {
    for a in attachments {
        if state.network_in_use(&a.network) {
            continue;
        }
        let Some(net) = state.networks.remove(&a.network) else {
            continue;
        };
        if let Err(e) = responder::stop(state_dir, &net.config.name) {
            failures.push(e);
        }
        if !net.created_bridge {
            continue;
        }
        match delete_link(host, &net.config.bridge) {
            Ok(true) => result.removed_bridges.push(net.config.bridge.clone()),
            Ok(false) => {}
            Err(e) => failures.push(e),
        }
    }
}

/// Delete the link called `name`; `Ok(false)` when there is none. The
/// kernel may remove it between the lookup and the delete (a veth whose
/// peer's namespace is being destroyed): that ENODEV counts as none too.
pub(crate) fn delete_link(nl: &mut Netlink, name: &str) -> Result<bool, Error> {
    let err = |source| Error::DeleteLink {
        name: name.to_string(),
        source,
    };
    match nl.link_by_name(name).map_err(err)? {
        Some(l) => match nl.delete_link(l.index) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(nix::errno::Errno::ENODEV as i32) => Ok(false),
            Err(e) => Err(err(e)),
        },
        None => Ok(false),
    }
}
