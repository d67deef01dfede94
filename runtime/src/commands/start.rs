use anyhow::Result;

use super::Ctx;
use crate::cli::IdArg;

pub fn run(a: IdArg, ctx: &Ctx) -> Result<i32> {
    berth_runtime::container::start(&ctx.root, &a.id)?;
    Ok(0)
}
