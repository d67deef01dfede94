//! `berth rmi [-f] IMAGE...`

use std::process::ExitCode;

use anyhow::Context as _;

use super::Ctx;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Remove an image by id even when it has several names
    #[arg(short, long)]
    pub force: bool,
    /// Images (name, id or digest)
    #[arg(required = true)]
    pub images: Vec<String>,
}

pub fn run(a: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let store = ctx.store()?;
    for i in &a.images {
        let rep = store
            .remove_image(i, a.force)
            .with_context(|| format!("remove image {i}"))?;
        for t in rep.untagged {
            println!("Untagged: {t}");
        }
        for d in rep.deleted {
            println!("Deleted: {d}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
