use std::io::Write;

use berth_netd::dns::{serve, ServeConfig};
use berth_netd::Options;

use crate::DnsServeArgs;

/// Serve until killed. `ready` on stdout tells the parent (setup) that the
/// socket is bound; stdout then goes to /dev/null so the parent's pipe
/// closes.
pub fn run(args: &DnsServeArgs, opts: &Options) -> anyhow::Result<String> {
    let cfg = ServeConfig {
        state_dir: &opts.state_dir,
        network: &args.network,
        listen: args.listen,
        internal: args.internal,
        upstreams: args.upstream.clone(),
    };
    serve(&cfg, || {
        let mut out = std::io::stdout();
        let _ = writeln!(out, "ready").and_then(|()| out.flush());
        if let Ok(null) = std::fs::File::options().write(true).open("/dev/null") {
            let _ = nix::unistd::dup2_stdout(&null);
        }
    })?;
    Ok(String::new())
}
