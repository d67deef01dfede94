//! `berth import TARBALL|- [NAME]`

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use super::Ctx;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Rootfs tarball (gzip, zstd or plain); `-` reads stdin
    pub tarball: PathBuf,
    /// Name for the image, e.g. `myimage:1.0`
    pub name: Option<String>,
}

pub fn run(a: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let store = ctx.store()?;
    let src: Box<dyn Read> = if a.tarball.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(File::open(&a.tarball).with_context(|| format!("open {}", a.tarball.display()))?)
    };
    let img = store
        .import(src, a.name.as_deref())
        .context("import image")?;
    println!("{}", img.id);
    Ok(ExitCode::SUCCESS)
}
