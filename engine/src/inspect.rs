//! `inspect`: a docker-like JSON view of a container.

use serde_json::{json, Value};

use crate::db::ContainerRecord;
use crate::engine::Engine;
use crate::error::Result;
use crate::options::Endpoint;
use crate::state::Status;

impl Engine {
    pub fn inspect(&self, key: &str) -> Result<Value> {
        let rec = self.find(key)?;
        let st = self.state(&rec);
        let restarts =
            std::fs::read_to_string(self.run_dir(&rec.id).join(crate::layout::RESTARTS_FILE))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
        let mut v = view(&rec, &st, restarts);
        let endpoints = rec.options.endpoints();
        let live = (st.is_running())
            .then(|| crate::network::read_result(&self.run_dir(&rec.id)))
            .flatten();
        v["NetworkSettings"] = match live {
            Some(res) => network_settings(&res, &endpoints),
            None => empty_network_settings(&endpoints),
        };
        Ok(v)
    }
}

/// Not running: each network of the record, without addresses.
fn empty_network_settings(endpoints: &[Endpoint]) -> Value {
    let networks: serde_json::Map<String, Value> = (endpoints.iter())
        .map(|e| (e.network.clone(), endpoint(e, json!({}))))
        .collect();
    json!({"IPAddress": "", "Gateway": "", "MacAddress": "", "GlobalIPv6Address": "",
           "GlobalIPv6PrefixLen": 0, "IPv6Gateway": "", "Ports": {}, "Networks": networks})
}

/// docker's entry for one network: what the record says (static address,
/// aliases) and `addresses` (empty ones when not set up).
fn endpoint(e: &Endpoint, addresses: Value) -> Value {
    let mut v = json!({"IPAddress": "", "IPPrefixLen": 0, "Gateway": "", "MacAddress": "",
                       "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPv6Gateway": "",
                       "Aliases": e.aliases,
                       "IPAMConfig": e.ip.map(|ip| json!({"IPv4Address": ip.to_string()}))});
    if let (Some(v), Some(a)) = (v.as_object_mut(), addresses.as_object()) {
        v.extend(a.clone());
    }
    v
}

/// `(address, prefix length)` of `A/N` (`("", 0)` for none).
fn split_cidr(cidr: Option<&str>) -> (String, u8) {
    let Some(c) = cidr else {
        return (String::new(), 0);
    };
    let (ip, prefix) = c.split_once('/').unwrap_or((c, ""));
    (ip.to_string(), prefix.parse().unwrap_or(0))
}

/// docker's NetworkSettings from what berth-netd answered.
fn network_settings(res: &berth_netd::wire::SetupResult, endpoints: &[Endpoint]) -> Value {
    let mut ports = serde_json::Map::new();
    for m in &res.port_mappings {
        for i in 0..m.range {
            ports.insert(
                format!("{}/{}", m.container_port + i, m.protocol),
                json!([{"HostIp": m.host_ip.map(|a| a.to_string()).unwrap_or_else(|| "0.0.0.0".into()),
                        "HostPort": (m.host_port + i).to_string()}]),
            );
        }
    }
    let mut networks = serde_json::Map::new();
    let gateway6 = |i: &berth_netd::wire::InterfaceResult| {
        i.gateway6.map(|g| g.to_string()).unwrap_or_default()
    };
    for i in &res.interfaces {
        let (ip, prefix) = split_cidr(Some(&i.address));
        let (ip6, prefix6) = split_cidr(i.address6.as_deref());
        let addresses = json!({"IPAddress": ip, "IPPrefixLen": prefix,
                   "Gateway": i.gateway.to_string(), "MacAddress": i.mac_address,
                   "GlobalIPv6Address": ip6, "GlobalIPv6PrefixLen": prefix6,
                   "IPv6Gateway": gateway6(i)});
        let e = (endpoints.iter().find(|e| e.network == i.network).cloned()).unwrap_or_else(|| {
            Endpoint {
                network: i.network.clone(),
                ..Endpoint::default()
            }
        });
        networks.insert(i.network.clone(), endpoint(&e, addresses));
    }
    let first = res.interfaces.first();
    let (ip6, prefix6) = split_cidr(first.and_then(|i| i.address6.as_deref()));
    json!({
        "IPAddress": split_cidr(first.map(|i| i.address.as_str())).0,
        "Gateway": first.map(|i| i.gateway.to_string()).unwrap_or_default(),
        "MacAddress": first.map(|i| i.mac_address.clone()).unwrap_or_default(),
        "GlobalIPv6Address": ip6,
        "GlobalIPv6PrefixLen": prefix6,
        "IPv6Gateway": first.map(gateway6).unwrap_or_default(),
        "Ports": ports,
        "Networks": networks,
    })
}

/// docker's `HostConfig.RestartPolicy`.
fn restart_policy(p: crate::options::RestartPolicy) -> Value {
    use crate::options::RestartPolicy as P;
    let (name, max) = match p {
        P::No => ("no", 0),
        P::Always => ("always", 0),
        P::UnlessStopped => ("unless-stopped", 0),
        P::OnFailure(n) => ("on-failure", n),
    };
    json!({"Name": name, "MaximumRetryCount": max})
}

fn view(rec: &ContainerRecord, st: &crate::state::State, restarts: u32) -> Value {
    let o = &rec.options;
    json!({
        "Id": rec.id,
        "Name": format!("/{}", rec.name),
        "Created": rec.created_at,
        "Path": rec.args.first(),
        "Args": rec.args.get(1..).unwrap_or_default(),
        "State": {
            "Status": st.status.as_str(),
            "Running": st.is_running(),
            "Paused": st.status == Status::Paused,
            "Restarting": st.status == Status::Restarting,
            "Pid": st.pid.unwrap_or(0),
            "ExitCode": st.exit_code.unwrap_or(0),
            "Error": st.error.clone().unwrap_or_default(),
            "StartedAt": rec.started_at.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
            "FinishedAt": st.finished_at.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
        },
        "Mounts": o.mounts.iter().map(|m| json!({
            "Type": if m.volume.is_some() { "volume" } else { "bind" },
            "Name": m.volume,
            "Source": m.source,
            "Destination": m.destination,
            "RW": !m.readonly,
        })).collect::<Vec<_>>(),
        "RestartCount": restarts,
        "Image": rec.image_id,
        "LogPath": rec.log_path,
        "Driver": "overlay",
        "GraphDriver": {"Data": {"MergedDir": rec.rootfs}, "Name": "overlay"},
        "Config": {
            "Hostname": rec.hostname,
            "Tty": o.tty,
            "ExposedPorts": o.expose.iter().map(|p| (p.clone(), json!({}))).collect::<serde_json::Map<_, _>>(),
            "OpenStdin": o.interactive,
            "AttachStdin": o.interactive,
            "User": o.user.clone().unwrap_or_default(),
            "Env": o.env,
            "Cmd": o.cmd,
            "Entrypoint": o.entrypoint,
            "WorkingDir": o.workdir.clone().unwrap_or_default(),
            "Image": rec.image,
            "Labels": o.labels,
            "StopSignal": o.stop_signal.clone().unwrap_or_else(|| "TERM".into()),
            "StopTimeout": o.stop_timeout.unwrap_or(10),
        },
        "HostConfig": {
            "AutoRemove": o.auto_remove,
            "Init": o.init,
            "LogConfig": {
                "Type": o.log.driver.as_str(),
                "Config": {
                    "max-size": o.log.max_size.map(|n| n.to_string()),
                    "max-file": o.log.max_files.map(|n| n.to_string()),
                },
            },
            "RestartPolicy": restart_policy(o.restart),
            "Binds": o.mounts.iter().map(|m| format!("{}:{}{}", m.volume.clone().unwrap_or_else(|| m.source.display().to_string()), m.destination, if m.readonly { ":ro" } else { "" })).collect::<Vec<_>>(),
            "ReadonlyRootfs": o.read_only,
            "Memory": o.memory.unwrap_or(0),
            "PidsLimit": o.pids_limit,
            "NanoCpus": o.cpu_quota.map(|q| q * 10_000).unwrap_or(0),
            "Tmpfs": o.tmpfs.iter().map(|(d, opts)| (d.clone(), opts.join(","))).collect::<std::collections::BTreeMap<_, _>>(),
            "Ulimits": o.ulimits.iter().map(|(t, s, h)| json!({"Name": t.trim_start_matches("RLIMIT_").to_ascii_lowercase(), "Soft": s, "Hard": h})).collect::<Vec<_>>(),
            "CapAdd": o.cap_add,
            "CapDrop": o.cap_drop,
            "Privileged": o.privileged,
            "NetworkMode": o.network_mode_name(),
            "PublishAllPorts": o.publish_all,
            "Runtime": rec.runtime,
        },
    })
}
