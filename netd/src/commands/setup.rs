use berth_netd::Options;

use crate::NetnsArgs;

pub fn run(args: &NetnsArgs, opts: &Options) -> anyhow::Result<String> {
    check_table(opts)?;
    let req = super::read_request(args)?;
    let result = berth_netd::setup(&args.netns, &req, opts)?;
    Ok(serde_json::to_string(&result)?)
}

pub(crate) fn check_table(opts: &Options) -> anyhow::Result<()> {
    anyhow::ensure!(
        berth_netd::nft::valid_table_name(&opts.nft_table),
        "invalid nft table name {:?}",
        opts.nft_table
    );
    Ok(())
}
