//! `berth exec [-d] [-i] [-t] [-e K=V] [-u USER] [-w DIR] CONTAINER COMMAND [ARG...]`

use std::process::ExitCode;

use super::Ctx;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Start the command and return at once
    #[arg(short, long)]
    pub detach: bool,
    /// Pass our stdin to the command
    #[arg(short, long)]
    pub interactive: bool,
    /// Give the command a terminal (a pty)
    #[arg(short, long)]
    pub tty: bool,
    /// Set an environment variable
    #[arg(short, long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// USER[:GROUP]
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory
    #[arg(short, long)]
    pub workdir: Option<String>,
    pub container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

pub fn run(a: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let engine = ctx.engine()?;
    let code = engine.exec(
        &a.container,
        &berth_engine::ExecOptions {
            cmd: a.command,
            env: super::run::expand_env(&a.env),
            user: a.user,
            workdir: a.workdir,
            interactive: a.interactive,
            tty: a.tty,
            detach: a.detach,
        },
    )?;
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}
