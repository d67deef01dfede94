//! The binaries as shipped (and as the benchmarks measure them): static
//! (glibc with `crt-static`, Debian's `libseccomp.a`) — no dynamic loading
//! on each exec — and not position-independent, as Go builds runc: nothing
//! to relocate at start, so no relocation table read and no relocated pages
//! made private (84 KiB of the idle monitor's RSS, 440 KiB of the
//! runtime's). The price is a fixed address for the binary's own code (the
//! stack, heap and mmaps stay randomised). Built for the explicit host
//! target so that proc-macros stay dynamic. Falls back to the dynamic
//! release build when `libseccomp.a` is missing or the host is not x86_64
//! glibc. berth-runtime and berth-monitor are also linked with the
//! functions a container's life runs side by side (see `layout`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, Result};

use crate::{cargo, run, target_dir};

const LIBSECCOMP_A: &str = "/usr/lib/x86_64-linux-gnu/libseccomp.a";

/// `cargo <args> --target HOST [-- <rustc>]` with the static, non-PIE
/// flags; returns the directory of the binaries and whether they are
/// static. Where a static build is not possible, runs `cargo <args>
/// [-- <rustc>]`.
fn cargo_static(args: &[&str], rustc: &[&str], profile_dir: &str) -> Result<(PathBuf, bool)> {
    let host = host_triple()?;
    let mut r = cargo();
    r.args(args);
    let is_static = Path::new(LIBSECCOMP_A).is_file() && host == "x86_64-unknown-linux-gnu";
    if is_static {
        r.args(["--target", host])
            .env(
                "RUSTFLAGS",
                "-C target-feature=+crt-static -C relocation-model=static",
            )
            .env("LIBSECCOMP_LINK_TYPE", "static")
            .env(
                "LIBSECCOMP_LIB_PATH",
                Path::new(LIBSECCOMP_A).parent().expect("dir"),
            );
    } else {
        eprintln!(
            "xtask: no static build ({LIBSECCOMP_A} missing or host {host}); building the dynamic one"
        );
    }
    if !rustc.is_empty() {
        r.arg("--").args(rustc);
    }
    run(r)?;
    let dir = if is_static {
        target_dir().join(host).join(profile_dir)
    } else {
        target_dir().join(profile_dir)
    };
    Ok((dir, is_static))
}

/// Release builds of `packages` as shipped; returns their directory.
pub fn build(packages: &[&str]) -> Result<PathBuf> {
    let mut args = vec!["build", "--release"];
    for p in packages {
        args.extend(["-p", p]);
    }
    Ok(cargo_static(&args, &[], "release")?.0)
}

/// berth-runtime as shipped; returns its directory. See [`laid_out`].
/// Built, traced and linked once per xtask run: the conformance suite and
/// every bench use the same binary.
pub fn runtime() -> Result<PathBuf> {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    if let Some(d) = DIR.get() {
        return Ok(d.clone());
    }
    let args = [
        "rustc",
        "--release",
        "-p",
        "berth-runtime",
        "--bin",
        "berth-runtime",
    ];
    let dir = laid_out("berth-runtime", &args, "release", crate::layout::train)?;
    Ok(DIR.get_or_init(|| dir).clone())
}

/// berth-monitor as shipped, put next to `berth` in `dir` (which holds the
/// shipped berth-runtime, its runtime while it is traced): built for size
/// (profile `release-small`, opt-level "s") — one sits idle beside every
/// container, so its resident pages count for more than its speed — and
/// laid out as [`laid_out`] says.
pub fn monitor(dir: &Path) -> Result<()> {
    let args = [
        "rustc",
        "--profile",
        "release-small",
        "-p",
        "berth-engine",
        "--bin",
        "berth-monitor",
    ];
    let runtime = dir.join("berth-runtime");
    let small = laid_out("berth-monitor", &args, "release-small", |bin, out| {
        crate::layout::train_monitor(bin, &runtime, out)
    })?;
    std::fs::copy(small.join("berth-monitor"), dir.join("berth-monitor"))
        .context("copy the size-built berth-monitor next to berth")?;
    Ok(())
}

/// Build binary `name` (`cargo <args>`, a `cargo rustc` of one bin) as
/// shipped and return its directory. Linked twice: once with its symbols,
/// to trace which functions it runs (`train(binary, order file)`), then
/// stripped, with those functions first in the text (lld's
/// `--symbol-ordering-file`). If the trace cannot be made here the second
/// link is made without the order, and that is said on stderr.
fn laid_out(
    name: &str,
    args: &[&str],
    profile_dir: &str,
    train: impl FnOnce(&Path, &Path) -> Result<(usize, usize)>,
) -> Result<PathBuf> {
    let (dir, is_static) = cargo_static(args, &["-C", "strip=none"], profile_dir)?;
    if !is_static {
        // A position-independent build's symbols are not its run-time
        // addresses; the tracer reads them as-is. Strip it as the profile
        // would have.
        cargo_static(args, &[], profile_dir)?;
        return Ok(dir);
    }
    let traced = dir.join(format!("{name}.order"));
    let mut rustc = Vec::new();
    match train(&dir.join(name), &traced).and_then(|counts| Ok((counts, by_content(&traced)?))) {
        Ok(((ran, all), order)) => {
            eprintln!(
                "xtask: layout: {ran} of {all} functions of {name} run in a container's life; linked first ({})",
                order.display()
            );
            rustc = vec![
                "-C".to_string(),
                format!("link-arg=-Wl,--symbol-ordering-file={}", order.display()),
                "-C".to_string(),
                "link-arg=-Wl,--no-warn-symbol-ordering".to_string(),
            ];
        }
        Err(e) => {
            eprintln!("xtask: layout: not applied, {name} linked in the linker's order: {e:#}")
        }
    }
    let rustc: Vec<&str> = rustc.iter().map(String::as_str).collect();
    cargo_static(args, &rustc, profile_dir)?;
    Ok(dir)
}

/// A copy of the order file `traced` named by its content
/// (`NAME.order` -> `NAME.<FNV-1a 64 hex>.order`; older copies removed).
/// Cargo reuses a link whose arguments it has seen: a new order must come
/// with a new path, and the same order with the same one.
fn by_content(traced: &Path) -> Result<PathBuf> {
    let text = std::fs::read(traced).with_context(|| format!("read {}", traced.display()))?;
    let hash = text.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let dir = traced.parent().context("order file has no directory")?;
    let stem = traced
        .file_stem()
        .context("order file has no name")?
        .to_string_lossy()
        .into_owned();
    let path = dir.join(format!("{stem}.{hash:016x}.order"));
    for e in std::fs::read_dir(dir)?.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with(&format!("{stem}.")) && n.ends_with(".order") && e.path() != traced {
            let _ = std::fs::remove_file(e.path());
        }
    }
    std::fs::copy(traced, &path).with_context(|| format!("write {}", path.display()))?;
    Ok(path)
}

/// rustc's host triple (asked once).
fn host_triple() -> Result<&'static str> {
    static HOST: OnceLock<String> = OnceLock::new();
    if let Some(h) = HOST.get() {
        return Ok(h);
    }
    let out = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("-vV")
        .output()
        .context("rustc -vV")?;
    let host = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .context("rustc -vV printed no host")?;
    Ok(HOST.get_or_init(|| host))
}
