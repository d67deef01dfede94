//! berth-netd: container networking for a given network namespace path.
//!
//! `setup` validates a [`wire::Request`] completely (request, state, host),
//! then applies it — bridge, veth pair into the netns, addresses, routes,
//! nftables, a DNS responder per DNS-enabled network — rolling back what was
//! applied when a step fails. `teardown` removes a container's interfaces,
//! rules and records best effort, reporting every failure. `connect` adds
//! attachments to a set-up container as setup does (validate, apply, roll
//! back) and `disconnect` removes some as teardown does. Addresses are
//! leased in a state directory under `flock`.
//!
//! Invariants: the state file is only changed under the lock; the nft table
//! is a function of the state; netd changes only interfaces it created (and
//! the gateway address on a pre-existing bridge) and only its own nft table.
//! The crate has no `unsafe`: sockets, `setns`, `flock` and signals go
//! through `nix`.
//!
//! Boundary: netd knows nothing about images or containers beyond an id, a
//! name and a netns path; network definitions come in with each request.

pub mod dns;
pub mod error;
pub mod netlink;
pub mod netns;
pub mod nft;
pub mod state;
pub mod wire;

mod apply;
mod disconnect;
mod ipam;
pub mod pasta;
mod plan;
mod responder;
mod teardown;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use apply::{connect, setup};
pub use disconnect::disconnect;
pub use error::Error;
pub use plan::check_network;
pub use teardown::teardown;

/// Settings that come from the command line rather than the request.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where leases live (`--state-dir`).
    pub state_dir: PathBuf,
    /// The nftables table (family `inet`) netd owns (`--nft-table`).
    pub nft_table: String,
    /// The `berth-netd` binary, run as `dns-serve` for DNS responders.
    pub exe: PathBuf,
    /// Where responders forward names they do not know
    /// (`--dns-upstream`); default: the host's resolvers on port 53.
    pub dns_upstreams: Vec<SocketAddr>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            state_dir: PathBuf::from(state::DEFAULT_STATE_DIR),
            nft_table: nft::DEFAULT_TABLE.to_string(),
            exe: PathBuf::from("berth-netd"),
            dns_upstreams: dns::host_resolvers()
                .into_iter()
                .map(|ip| SocketAddr::from((ip, 53)))
                .collect(),
        }
    }
}

/// Parse a request, mapping syntax errors to [`Error::ParseRequest`].
pub fn parse_request(json: &[u8]) -> Result<wire::Request, Error> {
    serde_json::from_slice(json).map_err(Error::ParseRequest)
}
