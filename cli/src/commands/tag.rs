//! `berth tag IMAGE NAME...`

use std::process::ExitCode;

use anyhow::Context as _;

use super::Ctx;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Image to name (name, id or digest)
    pub image: String,
    /// New names
    #[arg(required = true)]
    pub names: Vec<String>,
}

pub fn run(a: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let store = ctx.store()?;
    for n in &a.names {
        store
            .tag(&a.image, n)
            .with_context(|| format!("tag {} as {n}", a.image))?;
    }
    Ok(ExitCode::SUCCESS)
}
