//! `berth cp [-a] [-L] CONTAINER:SRC DST|-` and
//! `berth cp [-a] [-L] SRC|- CONTAINER:DST`.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use berth_engine::{CopyIn, CopyOptions, CopyOut};

use super::Ctx;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Archive mode: files copied in belong to the container's user
    /// (without it they keep their uid/gid); files copied out keep their
    /// uid/gid in the container (without it they belong to whoever runs
    /// berth)
    #[arg(short, long)]
    pub archive: bool,
    /// Always follow a symbolic link in SRC
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// CONTAINER:SRC_PATH, or a host path (`-`: a tar stream on stdin)
    pub src: String,
    /// CONTAINER:DEST_PATH, or a host path (`-`: a tar stream on stdout)
    pub dst: String,
}

/// docker's reading of an argument: `CONTAINER:PATH`, unless it is an
/// absolute path, has no `:`, or starts with `.` (`./a:b` is a local file).
fn split(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.is_empty() && !c.starts_with('.') => (Some(c), p),
        _ => (None, arg),
    }
}

pub fn run(a: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let opts = CopyOptions {
        archive: a.archive,
        follow_link: a.follow_link,
    };
    match (split(&a.src), split(&a.dst)) {
        ((Some(_), _), (Some(_), _)) => bail!("copying between containers is not supported"),
        ((None, _), (None, _)) => {
            bail!("must specify at least one container source (CONTAINER:PATH)")
        }
        ((Some(c), src), (None, dst)) => {
            let engine = ctx.engine()?;
            if dst == "-" {
                let mut out = std::io::stdout();
                if std::io::IsTerminal::is_terminal(&out) {
                    bail!("refusing to write an archive to a terminal");
                }
                engine.copy_out(c, src, CopyOut::Stream(&mut out), opts)?;
                out.flush().context("flush stdout")?;
            } else {
                engine.copy_out(c, src, CopyOut::Path(Path::new(dst)), opts)?;
            }
        }
        ((None, src), (Some(c), dst)) => {
            let engine = ctx.engine()?;
            if src == "-" {
                let mut input = std::io::stdin();
                engine.copy_in(c, CopyIn::Stream(&mut input), dst, opts)?;
            } else {
                engine.copy_in(c, CopyIn::Path(Path::new(src)), dst, opts)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn arguments_split_as_docker_splits_them() {
        assert_eq!(split("c1:/etc/passwd"), (Some("c1"), "/etc/passwd"));
        assert_eq!(split("c1:etc"), (Some("c1"), "etc"));
        assert_eq!(split("c1:"), (Some("c1"), ""));
        assert_eq!(split("/abs/a:b"), (None, "/abs/a:b"));
        assert_eq!(split("./a:b"), (None, "./a:b"));
        assert_eq!(split("file"), (None, "file"));
        assert_eq!(split("-"), (None, "-"));
    }
}
