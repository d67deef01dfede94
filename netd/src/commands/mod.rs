pub mod connect;
pub mod dns_serve;
pub mod setup;
pub mod teardown;

use std::io::Read;

use berth_netd::wire::Request;

use crate::NetnsArgs;

/// The request from `--file` or stdin.
fn read_request(args: &NetnsArgs) -> Result<Request, berth_netd::Error> {
    let bytes = match &args.file {
        Some(f) => std::fs::read(f).map_err(berth_netd::Error::ReadRequest)?,
        None => {
            let mut b = Vec::new();
            std::io::stdin()
                .read_to_end(&mut b)
                .map_err(berth_netd::Error::ReadRequest)?;
            b
        }
    };
    berth_netd::parse_request(&bytes)
}
