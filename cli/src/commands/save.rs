//! `berth save -o FILE IMAGE...`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};

use super::Ctx;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Archive to write (stdout when omitted and stdout is not a terminal)
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Archive format
    #[arg(long, default_value = "oci-archive", value_parser = ["oci-archive", "docker-archive"])]
    pub format: String,
    #[arg(required = true)]
    pub images: Vec<String>,
}

pub fn run(a: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let store = ctx.store()?;
    let refs: Vec<&str> = a.images.iter().map(String::as_str).collect();
    let docker = a.format == "docker-archive";
    match &a.output {
        Some(p) if docker => store.save_docker_archive(&refs, p),
        Some(p) => store.save_oci_archive(&refs, p),
        None => {
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                bail!("refusing to write an archive to a terminal; use -o FILE");
            }
            let out = std::io::stdout().lock();
            if docker {
                store.write_docker_archive(&refs, out)
            } else {
                store.write_oci_archive(&refs, out)
            }
        }
    }
    .with_context(|| {
        format!(
            "save to {}",
            a.output
                .as_ref()
                .map_or("stdout".into(), |p| p.display().to_string())
        )
    })?;
    Ok(ExitCode::SUCCESS)
}
