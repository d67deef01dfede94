use berth_netd::Options;

use crate::NetnsArgs;

pub fn run(args: &NetnsArgs, opts: &Options) -> anyhow::Result<String> {
    super::setup::check_table(opts)?;
    let req = super::read_request(args)?;
    let result = berth_netd::connect(&args.netns, &req, opts)?;
    Ok(serde_json::to_string(&result)?)
}

pub fn run_disconnect(args: &NetnsArgs, opts: &Options) -> anyhow::Result<String> {
    super::setup::check_table(opts)?;
    let req = super::read_request(args)?;
    let result = berth_netd::disconnect(&args.netns, &req, opts)?;
    Ok(serde_json::to_string(&result)?)
}
