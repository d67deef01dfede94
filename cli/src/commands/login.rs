//! `berth login [-u USER] [-p PASS | --password-stdin] REGISTRY` and
//! `berth logout REGISTRY`: credentials in Docker's `config.json`.

use std::io::Read;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use berth_storage::RegistryOptions;

use super::Ctx;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(short, long)]
    pub username: Option<String>,
    #[arg(short, long, conflicts_with = "password_stdin")]
    pub password: Option<String>,
    /// Read the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
    /// Require HTTPS with verified certificates (false: plain HTTP)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub tls_verify: bool,
    /// Registry host[:port]
    pub registry: String,
}

#[derive(clap::Args, Debug)]
pub struct LogoutArgs {
    /// Registry host[:port]
    pub registry: String,
}

pub fn run(a: Args, _ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let Some(user) = a.username else {
        bail!("a username is needed (-u)")
    };
    let password = match (a.password, a.password_stdin) {
        (Some(p), _) => p,
        (None, true) => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("read password from stdin")?;
            s.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => bail!("a password is needed (-p or --password-stdin)"),
    };
    let opts = RegistryOptions {
        insecure: !a.tls_verify,
        credentials: Some((user.clone(), password.clone())),
        ..Default::default()
    };
    berth_storage::verify_login(&a.registry, &opts)
        .with_context(|| format!("log in to {}", a.registry))?;
    let path = berth_storage::save_credentials(&a.registry, &user, &password)?;
    println!("Login Succeeded (credentials in {})", path.display());
    Ok(ExitCode::SUCCESS)
}

pub fn logout(a: LogoutArgs, _ctx: &Ctx) -> anyhow::Result<ExitCode> {
    if berth_storage::remove_credentials(&a.registry)? {
        println!("Removed login credentials for {}", a.registry);
        Ok(ExitCode::SUCCESS)
    } else {
        bail!("not logged in to {}", a.registry)
    }
}
