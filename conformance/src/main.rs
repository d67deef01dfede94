//! `berth-conformance --runtime PATH [--filter PATTERN] [--format table|json|tap]`:
//! runs OCI runtime-spec cases against any runc-compatible runtime binary.
//! Exit status: 0 when no case failed, 1 when some did, 2 on a setup error.

mod bundle;
mod case;
mod cases;
mod proc;
mod runtime;
mod sys;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;

use case::{Ctx, Format, Outcome};

#[derive(Parser, Debug)]
#[command(
    name = "berth-conformance",
    about = "OCI runtime-spec conformance suite for runc-compatible runtimes"
)]
struct Args {
    /// The runtime binary (runc, crun, berth-runtime, or a wrapper script).
    #[arg(long)]
    runtime: Option<PathBuf>,
    /// Run only cases whose name contains one of these comma-separated substrings.
    #[arg(long)]
    filter: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// The in-container probe; defaults to `berth-runtimetest` next to this binary.
    #[arg(long, env = "BERTH_RUNTIMETEST")]
    helper: Option<PathBuf>,
    /// Seconds any single runtime command may take.
    #[arg(long, default_value_t = 20)]
    timeout: u64,
    /// Print the case names and exit.
    #[arg(long)]
    list: bool,
}

fn main() {
    let code = match real_main() {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            eprintln!("berth-conformance: {e:#}");
            2
        }
    };
    std::process::exit(code);
}

fn real_main() -> Result<bool> {
    let args = Args::parse();
    let all = cases::all();
    let selected: Vec<&case::Case> = all
        .iter()
        .filter(|c| matches(&args.filter, c.name))
        .collect();
    if args.list {
        for c in &selected {
            println!("{}", c.name);
        }
        return Ok(true);
    }
    let runtime = args.runtime.context("--runtime PATH is required")?;
    let runtime = std::fs::canonicalize(&runtime)
        .with_context(|| format!("runtime {} not found", runtime.display()))?;
    let helper_path = match args.helper {
        Some(p) => p,
        None => std::env::current_exe()
            .context("find own path")?
            .with_file_name("berth-runtimetest"),
    };
    // Containers started by `create` are reparented to us: reap them so an
    // exited one reads as stopped on every runtime.
    nix::sys::prctl::set_child_subreaper(true).context("become a child subreaper")?;
    let scratch = tempfile::Builder::new()
        .prefix("berth-conformance-")
        .tempdir()
        .context("create scratch dir")?;
    std::fs::set_permissions(
        scratch.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .context("chmod scratch dir")?;
    let root = scratch.path().join("state");
    std::fs::create_dir(&root).context("create runtime state root")?;
    let ctx = Ctx {
        rt: runtime::Runtime {
            bin: runtime.clone(),
            root,
            timeout: Duration::from_secs(args.timeout),
        },
        helper: bundle::Helper::discover(&helper_path)?,
        scratch: scratch.path().to_path_buf(),
    };
    if args.format == Format::Tap {
        println!("TAP version 13\n1..{}", selected.len());
    }
    let mut results = Vec::new();
    for (i, c) in selected.iter().enumerate() {
        let o = case::run_case(&ctx, c);
        if let Some(line) = case::render_line(args.format, i + 1, c.name, &o) {
            println!("{line}");
        }
        results.push((c.name.to_string(), o));
    }
    println!(
        "{}",
        case::render_summary(args.format, &runtime.to_string_lossy(), &results)
    );
    Ok(!results.iter().any(|(_, o)| matches!(o, Outcome::Fail(_))))
}

fn matches(filter: &Option<String>, name: &str) -> bool {
    match filter {
        None => true,
        Some(f) => f.split(',').any(|p| name.contains(p.trim())),
    }
}
