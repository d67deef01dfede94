//! `berth`: docker-like verbs over the Berth libraries. Only glue: clap
//! arguments → `commands::<name>::run` → library calls; one exit point.

mod commands;
mod config;
mod logging;

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "berth",
    version,
    about = "Daemonless containers and images",
    propagate_version = true
)]
struct Cli {
    #[command(flatten)]
    global: commands::GlobalArgs,
    #[command(subcommand)]
    command: commands::Command,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        // docker's code for a usage error is 125 (help and --version: 0).
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 125 } else { 0 });
        }
    };
    // A rootless user's berth joins its user and mount namespaces before
    // anything else (while it has one thread).
    let ctx = commands::Ctx::new(cli.global, &cli.command).and_then(|ctx| {
        berth_engine::rootless::enter(&ctx.runroot).map_err(anyhow::Error::msg)?;
        Ok(ctx)
    });
    match ctx.and_then(|ctx| commands::run(cli.command, &ctx)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("berth: {e:#}");
            // docker's codes: 125 for berth's own failures, 126/127 when
            // the container's command cannot be run.
            let code = e
                .downcast_ref::<berth_engine::EngineError>()
                .map_or(125, berth_engine::EngineError::exit_code);
            ExitCode::from(code)
        }
    }
}
