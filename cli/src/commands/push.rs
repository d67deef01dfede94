//! `berth push [--tls-verify=false] [-q] IMAGE [DESTINATION]`

use std::process::ExitCode;

use anyhow::Context as _;
use berth_storage::{PullEvent, RegistryOptions};

use super::Ctx;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Require HTTPS with verified certificates (false: plain HTTP)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub tls_verify: bool,
    /// Print only the manifest digest
    #[arg(short, long)]
    pub quiet: bool,
    /// Image to push (name, id or digest)
    pub image: String,
    /// Where to push (default: the image's own name)
    pub destination: Option<String>,
}

pub fn run(a: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let store = ctx.store()?;
    let opts = RegistryOptions {
        insecure: !a.tls_verify,
        ..RegistryOptions::default()
    };
    let reporter = super::progress::Reporter::new("Pushing", a.quiet);
    let report = |e: PullEvent| reporter.event(e);
    let dest = a.destination.as_deref();
    let digest = store
        .push(&a.image, dest, &opts, &report)
        .with_context(|| format!("push {}", dest.unwrap_or(&a.image)))?;
    println!("{digest}");
    Ok(ExitCode::SUCCESS)
}
