//! `network connect` and `network disconnect`: a container's list of bridge
//! networks (its record's endpoints) changes; on a running container
//! berth-netd attaches or detaches the network live, leaving its other
//! interfaces alone, and the run dir follows (the netd request a restart
//! reads, `network.json`, resolv.conf). A created or stopped container
//! gets the change at its next start.
//!
//! Every change holds the container's network lock
//! ([`crate::layout::NETWORK_LOCK`]), as do the monitor's setup and teardown
//! and `start` while it writes the request: a container's networks are
//! "live" exactly when it runs and `network.json` exists.

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use berth_netd::wire::{Attachment, DisconnectResult, ErrorReply, Request, SetupResult};
use nix::fcntl::{Flock, FlockArg};
use serde::de::DeserializeOwned;

use crate::db::ContainerRecord;
use crate::engine::Engine;
use crate::error::{io, EngineError, Result};
use crate::layout::{NETD_OP_REQUEST, NETD_REQUEST, NETWORK_LOCK};
use crate::network::{self, DEFAULT_NETWORK};
use crate::options::{Endpoint, NetworkMode};

/// A running container's set-up networks: its init's pid and netd's view.
struct Live {
    pid: i32,
    net: SetupResult,
}

impl Engine {
    /// The container's network lock, held until the value is dropped.
    pub(crate) fn network_lock(&self, id: &str) -> Result<Flock<File>> {
        let (f, p) = self.run_file(id, NETWORK_LOCK)?;
        Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| EngineError::Io {
            what: "lock",
            path: p,
            source: e.into(),
        })
    }

    /// Attach container `key` to `network` (docker's `network connect`),
    /// with a static address and aliases on it. Live when it runs, else at
    /// its next start. On failure nothing has changed.
    pub fn network_connect(
        &self,
        network: &str,
        key: &str,
        ip: Option<Ipv4Addr>,
        aliases: &[String],
    ) -> Result<()> {
        let cfg = network::get(&self.root, default_alias(network))?;
        let id = self.find(key)?.id;
        let _held = self.network_lock(&id)?;
        let old = self.find(&id)?;
        let mut endpoints = bridge_endpoints(&old)?;
        if endpoints.iter().any(|e| e.network == cfg.name) {
            return Err(EngineError::AlreadyConnected {
                container: old.name,
                network: cfg.name,
            });
        }
        check_endpoint(&cfg, ip, aliases)?;
        endpoints.push(Endpoint {
            network: cfg.name.clone(),
            ip,
            aliases: aliases.to_vec(),
        });
        let mut rec = old.clone();
        rec.options.endpoints = Some(endpoints);
        let Some(live) = self.live(&old) else {
            return self.commit(&old, &rec, None);
        };
        let run = self.run_dir(&id);
        let req = Request {
            container_id: id.clone(),
            container_name: old.name.clone(),
            networks: vec![Attachment {
                network: cfg,
                interface_name: None,
                static_ip: ip,
                static_ip6: None,
                aliases: aliases.to_vec(),
            }],
            // Published ports went with the last network; they come back
            // with the first one.
            port_mappings: if live.net.interfaces.is_empty() {
                request_of(&run)
                    .map(|r| r.port_mappings)
                    .unwrap_or_default()
            } else {
                Vec::new()
            },
            dns_servers: None,
            pasta: None,
        };
        let res: SetupResult = self.netd_op("connect", live.pid, &req)?;
        let mut net = live.net.clone();
        net.interfaces.extend(res.interfaces);
        net.dns_servers = res.dns_servers;
        net.port_mappings = res.port_mappings;
        let done = self.commit(&old, &rec, Some(&net));
        if done.is_err() {
            let undone = self.netd_op::<DisconnectResult>("disconnect", live.pid, &req);
            let back = self.write_live(&old, &live.net);
            if let Some(e) = undone.err().or(back.err()) {
                log::warn!("undo the connect of {} to {network}: {e}", old.name);
            }
        }
        done
    }

    /// Detach container `key` from `network` (docker's `network
    /// disconnect`): live when it runs, else at its next start. With
    /// `force`, a live detach berth-netd refuses (not attached there, no
    /// lease, the network's definition gone) does not stop the change.
    pub fn network_disconnect(&self, network: &str, key: &str, force: bool) -> Result<()> {
        let network = default_alias(network);
        let id = self.find(key)?.id;
        let _held = self.network_lock(&id)?;
        let old = self.find(&id)?;
        let mut endpoints = bridge_endpoints(&old)?;
        let Some(pos) = endpoints.iter().position(|e| e.network == network) else {
            network::get(&self.root, network)?;
            return Err(EngineError::NotConnected {
                container: old.name,
                network: network.to_string(),
            });
        };
        endpoints.remove(pos);
        let mut rec = old.clone();
        rec.options.endpoints = Some(endpoints);
        let Some(live) = self.live(&old) else {
            return self.commit(&old, &rec, None);
        };
        let mut net = live.net.clone();
        net.interfaces.retain(|i| i.network != network);
        if net.interfaces.is_empty() {
            net.port_mappings.clear();
        }
        let detached = network::get(&self.root, network).and_then(|cfg| {
            let req = Request {
                container_id: id.clone(),
                container_name: old.name.clone(),
                networks: vec![Attachment {
                    network: cfg,
                    interface_name: None,
                    static_ip: None,
                    static_ip6: None,
                    aliases: Vec::new(),
                }],
                port_mappings: Vec::new(),
                dns_servers: None,
                pasta: None,
            };
            self.netd_op::<DisconnectResult>("disconnect", live.pid, &req)
        });
        match detached {
            Ok(res) => net.dns_servers = res.dns_servers,
            // Incomplete: the attachment left the lease all the same.
            Err(EngineError::Netd {
                code: 6, message, ..
            }) => log::warn!("{message}"),
            Err(e) if force => log::warn!("disconnect {} from {network}: {e}", old.name),
            Err(e) => return Err(e),
        }
        self.commit(&old, &rec, Some(&net))
    }

    /// The record, the run dir's netd request and (live) `network.json`
    /// and resolv.conf as of `rec`; on failure, as of `old` again.
    fn commit(
        &self,
        old: &ContainerRecord,
        rec: &ContainerRecord,
        net: Option<&SetupResult>,
    ) -> Result<()> {
        let done = self
            .db
            .update(rec)
            .and_then(|()| self.sync_request(rec))
            .and_then(|()| net.map_or(Ok(()), |n| self.write_live(rec, n)));
        if done.is_err() {
            let back = self.db.update(old).and_then(|()| self.sync_request(old));
            if let Err(e) = back {
                log::warn!("restore the record of {}: {e}", old.name);
            }
        }
        done
    }

    /// The netd request in the run dir (if any: a start writes it anew)
    /// attaches `rec`'s networks, so a restart by the monitor does.
    fn sync_request(&self, rec: &ContainerRecord) -> Result<()> {
        let run = self.run_dir(&rec.id);
        let Some(mut req) = request_of(&run) else {
            return Ok(());
        };
        req.networks = network::attachments(&self.root, rec)?;
        network::save_request(&run, &req)
    }

    /// `network.json` and the name servers in resolv.conf as `net` says.
    fn write_live(&self, rec: &ContainerRecord, net: &SetupResult) -> Result<()> {
        let run = self.run_dir(&rec.id);
        network::save_result(&run, net).map_err(io("write", run.join("network.json")))?;
        network::write_resolv_conf(&rec.bundle, &net.dns_servers)
            .map_err(io("write", rec.bundle.join("resolv.conf")))
    }

    /// The container's networks if they are set up (under the lock:
    /// running, and the monitor's setup wrote `network.json`).
    fn live(&self, rec: &ContainerRecord) -> Option<Live> {
        let st = self.state(rec);
        let pid = st.pid.filter(|_| st.is_running())?;
        let net = network::read_result(&self.run_dir(&rec.id))?;
        Some(Live { pid, net })
    }

    /// `berth-netd OP` for the container whose init is `pid`, with `req`;
    /// its answer, or its error with its code.
    fn netd_op<T: DeserializeOwned>(&self, op: &'static str, pid: i32, req: &Request) -> Result<T> {
        let netd = crate::host::find_binary("berth-netd", &self.self_exe)
            .ok_or(EngineError::NetdNotFound)?;
        let file = self.run_dir(&req.container_id).join(NETD_OP_REQUEST);
        let json = serde_json::to_vec(req).expect("a request serializes");
        std::fs::write(&file, json).map_err(io("write", &file))?;
        let netns = PathBuf::from(format!("/proc/{pid}/ns/net"));
        let state = self.runroot.join("netd");
        log::debug!(
            "berth-netd {op} {} for {}",
            netns.display(),
            req.container_id
        );
        let out = network::netd_command(&netd, &state, op, &netns, &file).output();
        let _ = std::fs::remove_file(&file);
        let out = out.map_err(|source| EngineError::Spawn {
            program: netd,
            source,
        })?;
        if out.status.success() {
            return serde_json::from_slice(&out.stdout).map_err(|e| EngineError::Netd {
                op,
                code: 1,
                message: format!("unreadable answer: {e}"),
            });
        }
        let reply: Option<ErrorReply> = serde_json::from_slice(&out.stdout).ok();
        Err(EngineError::Netd {
            op,
            code: reply.as_ref().map_or(1, |r| r.code),
            message: reply.map_or_else(|| format!("failed: {}", out.status), |r| r.error),
        })
    }
}

/// docker's name of the default network, `bridge`, is ours.
fn default_alias(network: &str) -> &str {
    if network == "bridge" {
        DEFAULT_NETWORK
    } else {
        network
    }
}

/// The netd request in `run_dir`, if there is one.
fn request_of(run_dir: &Path) -> Option<Request> {
    let b = std::fs::read(run_dir.join(NETD_REQUEST)).ok()?;
    serde_json::from_slice(&b).ok()
}

/// The bridge networks of `rec`; an error for network modes that have none
/// to change (none, host, container:).
fn bridge_endpoints(rec: &ContainerRecord) -> Result<Vec<Endpoint>> {
    let o = &rec.options;
    if o.network == NetworkMode::Bridge {
        return Ok(o.endpoints());
    }
    Err(EngineError::FixedNetworkMode {
        container: rec.name.clone(),
        mode: o.network_mode_name(),
    })
}

/// docker's rules for `--ip` and `--alias`: a static address only on a
/// user-defined network, a host address of its subnet but the gateway.
fn check_endpoint(
    cfg: &berth_netd::wire::NetworkConfig,
    ip: Option<Ipv4Addr>,
    aliases: &[String],
) -> Result<()> {
    let bad = |option: &str, reason: String| EngineError::InvalidOption {
        option: option.into(),
        reason,
    };
    if let Some(ip) = ip {
        if cfg.name == DEFAULT_NETWORK {
            return Err(bad(
                "--ip",
                "a static address needs a user-defined network".into(),
            ));
        }
        if !cfg.subnet.contains_host(ip) || ip == cfg.gateway() {
            let subnet = cfg.subnet;
            return Err(bad(
                "--ip",
                format!("{ip} is not a host address of {subnet} (nor its gateway)"),
            ));
        }
    }
    match aliases.iter().find(|a| !crate::host::valid_name(a)) {
        Some(a) => Err(bad("--alias", format!("{a:?} is not a valid name"))),
        None => Ok(()),
    }
}
