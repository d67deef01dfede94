use anyhow::Result;

use super::Ctx;
use crate::cli::IdArg;

pub fn run(a: IdArg, ctx: &Ctx) -> Result<i32> {
    let st = berth_runtime::container::state(&ctx.root, &a.id)?;
    println!("{}", serde_json::to_string_pretty(&st.oci())?);
    Ok(0)
}
