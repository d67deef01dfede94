use anyhow::Result;

use super::Ctx;
use crate::cli::IdArg;

pub fn run(a: IdArg, ctx: &Ctx, pause: bool) -> Result<i32> {
    berth_runtime::container::set_paused(&ctx.root, &a.id, pause)?;
    Ok(0)
}
