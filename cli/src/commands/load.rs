//! `berth load [-i FILE]`

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use super::Ctx;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Archive to read (stdin when omitted)
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    /// Print only image ids
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(a: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let store = ctx.store()?;
    let (src, origin): (Box<dyn Read>, PathBuf) = match &a.input {
        Some(p) => (
            Box::new(BufReader::new(
                File::open(p).with_context(|| format!("open {}", p.display()))?,
            )),
            p.clone(),
        ),
        None => (Box::new(std::io::stdin().lock()), PathBuf::from("-")),
    };
    let imgs = store.load_archive(src, &origin).context("load archive")?;
    for i in imgs {
        if a.quiet || i.tags.is_empty() {
            println!("Loaded image: {}", i.id);
        } else {
            for t in &i.tags {
                println!("Loaded image: {t}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
