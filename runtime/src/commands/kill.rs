use anyhow::Result;
use berth_runtime::container;

use super::Ctx;
use crate::cli::KillArgs;

pub fn run(a: KillArgs, ctx: &Ctx) -> Result<i32> {
    let sig = container::parse_signal(&a.signal)?;
    container::kill_container(&ctx.root, &a.id, sig, a.all)?;
    Ok(0)
}
