use anyhow::Result;

use super::Ctx;
use crate::cli::DeleteArgs;

pub fn run(a: DeleteArgs, ctx: &Ctx) -> Result<i32> {
    berth_runtime::container::delete(&ctx.root, &a.id, a.force)?;
    Ok(0)
}
