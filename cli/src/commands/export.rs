//! `berth export [-o FILE] CONTAINER`: a tar of the container's filesystem.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};

use super::Ctx;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// File to write (stdout when omitted and stdout is not a terminal)
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    pub container: String,
}

pub fn run(a: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let engine = ctx.engine()?;
    let rec = engine
        .find(&a.container)
        .with_context(|| format!("find container {}", a.container))?;
    let what = || format!("export container {}", a.container);
    match &a.output {
        Some(p) => {
            let f = std::fs::File::create(p).with_context(|| format!("create {}", p.display()))?;
            let f = engine
                .store()
                .export_snapshot(&rec.id, f)
                .with_context(what)?;
            f.sync_all()
                .with_context(|| format!("sync {}", p.display()))?;
        }
        None => {
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                bail!("refusing to write an archive to a terminal; use -o FILE");
            }
            let out = std::io::stdout().lock();
            let mut out = engine
                .store()
                .export_snapshot(&rec.id, out)
                .with_context(what)?;
            out.flush().context("flush stdout")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
