//! `berth completion SHELL` and `berth generate-man DIR`: shell completions
//! and man pages from the same clap definitions that parse the command line.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::CommandFactory as _;

use super::Ctx;

#[derive(clap::Args, Debug)]
pub struct CompletionArgs {
    /// The shell to write a completion script for
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(clap::Args, Debug)]
pub struct ManArgs {
    /// Directory to write berth.1 and berth-VERB.1 into (created if missing)
    pub dir: PathBuf,
}

/// Print the completion script on stdout.
pub fn completion(a: CompletionArgs, _ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let shell = match a.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut cmd = crate::Cli::command();
    // clap_complete panics on a failed write: render first, then write.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "berth", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)
        .and_then(|()| out.flush())
        .context("write the completion script")?;
    Ok(ExitCode::SUCCESS)
}

/// Write a man page for berth and one per visible subcommand, nested ones
/// too (`berth-image-ls.1`); print each path.
pub fn man(a: ManArgs, _ctx: &Ctx) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&a.dir).with_context(|| format!("create {}", a.dir.display()))?;
    let mut cmd = crate::Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut pages = Vec::new();
    collect(&cmd, &mut pages);
    let mut stdout = std::io::stdout().lock();
    for page in pages {
        let man = clap_mangen::Man::new(page);
        let path = a.dir.join(man.get_filename());
        let mut out = Vec::new();
        man.render(&mut out)
            .with_context(|| format!("render {}", path.display()))?;
        std::fs::write(&path, out).with_context(|| format!("write {}", path.display()))?;
        writeln!(stdout, "{}", path.display()).context("write to stdout")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `cmd` and its visible subcommands, depth first.
fn collect(cmd: &clap::Command, out: &mut Vec<clap::Command>) {
    out.push(cmd.clone());
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        collect(sub, out);
    }
}
