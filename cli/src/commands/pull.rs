//! `berth pull [--platform OS/ARCH] [--tls-verify=false] [-q] REF`

use std::process::ExitCode;

use anyhow::Context as _;
use berth_storage::{PullEvent, RegistryOptions};

use super::Ctx;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Platform to choose from a multi-arch image, as os/arch[/variant]
    #[arg(long)]
    pub platform: Option<String>,
    /// Require HTTPS with verified certificates (false: plain HTTP)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub tls_verify: bool,
    /// Print only the image id
    #[arg(short, long)]
    pub quiet: bool,
    /// Image reference: NAME[:TAG] or NAME@DIGEST (short names as Docker's)
    pub reference: String,
}

pub fn run(a: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let store = ctx.store()?;
    let opts = RegistryOptions {
        insecure: !a.tls_verify,
        platform: a.platform.clone(),
        credentials: None,
    };
    let reporter = super::progress::Reporter::new("Copying", a.quiet);
    let report = |e: PullEvent| reporter.event(e);
    let img = store
        .pull(&a.reference, &opts, &report)
        .with_context(|| format!("pull {}", a.reference))?;
    println!("{}", img.id);
    Ok(ExitCode::SUCCESS)
}
