//! The bridge network as the engine asks berth-netd for it: the default
//! network `berth` (bridge `berth0`, 10.89.0.0/24, as podman's `podman`
//! network), or its definition in `<root>/networks/berth.json` (a netd
//! `NetworkConfig`) where the host needs another bridge or subnet. The
//! request goes to the run dir; the monitor runs berth-netd with it.

use std::path::Path;

use berth_netd::wire::{Attachment, NetworkConfig, Request};

use crate::db::ContainerRecord;
use crate::error::{io, EngineError, Result};

pub const DEFAULT_NETWORK: &str = "berth";

/// The default network's configuration.
pub fn default_network(root: &Path) -> Result<NetworkConfig> {
    let file = root
        .join("networks")
        .join(format!("{DEFAULT_NETWORK}.json"));
    match std::fs::read(&file) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| EngineError::InvalidOption {
            option: "network".into(),
            reason: format!("{}: {e}", file.display()),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(NetworkConfig {
            name: DEFAULT_NETWORK.into(),
            bridge: "berth0".into(),
            subnet: "10.89.0.0/24".parse().expect("a valid subnet"),
            gateway: None,
            internal: false,
            mtu: None,
            dns_enabled: false,
        }),
        Err(e) => Err(io("read", &file)(e)),
    }
}

/// Write the netd request for `rec` into `run_dir`.
pub fn write_request(root: &Path, rec: &ContainerRecord, run_dir: &Path) -> Result<()> {
    let req = Request {
        container_id: rec.id.clone(),
        container_name: rec.name.clone(),
        networks: vec![Attachment {
            network: default_network(root)?,
            interface_name: Some("eth0".into()),
            static_ip: None,
            aliases: Vec::new(),
        }],
        port_mappings: rec.options.publish.clone(),
        dns_servers: None,
    };
    let path = run_dir.join(crate::layout::NETD_REQUEST);
    let json = serde_json::to_vec_pretty(&req).expect("a request serializes");
    std::fs::write(&path, json).map_err(io("write", &path))
}
