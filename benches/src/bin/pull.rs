//! `cargo xtask bench pull`: pull + unpack of the same image from a local
//! registry (Debian `docker-registry` on 127.0.0.1, started here and
//! stopped by PID), interleaved, each tool into a fresh store every time:
//!
//! - `berth pull` (fetch, verify, unpack into its layer store),
//! - `skopeo copy docker://… oci:DIR` + `umoci unpack` (the unbundled
//!   reference pipeline),
//! - `podman pull` (overlay storage).
//!
//! Two images: busybox (small: latency dominates) and a rootfs holding the
//! host's /usr/include (~130 MB, ~8000 files: throughput dominates). Then
//! unpack alone: Berth's layer unpack (the library call `berth pull` makes)
//! vs `tar -xzf` of the same gzip layer blob, as MB/s of uncompressed tar.
//! Medians and ratios to berth; nothing is asserted.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use berth_benches::*;
use berth_testkit::registry::Registry;

struct Tool {
    name: &'static str,
    /// Pull `reference` into the fresh directory `dir`.
    pull: fn(&Env, &str, &Path) -> Result<Duration>,
}

struct Env {
    berth: PathBuf,
    containers_conf: PathBuf,
}

fn berth_pull(env: &Env, reference: &str, dir: &Path) -> Result<Duration> {
    let mut c = Command::new(&env.berth);
    c.arg("--root")
        .arg(dir.join("root"))
        .arg("--runroot")
        .arg(dir.join("run"))
        .args(["pull", "--quiet", "--tls-verify=false", reference]);
    run_quiet(c)
}

fn skopeo_umoci(_env: &Env, reference: &str, dir: &Path) -> Result<Duration> {
    let layout = dir.join("oci");
    let mut copy = Command::new("skopeo");
    copy.args(["copy", "--quiet", "--src-tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .arg(format!("oci:{}:latest", layout.display()));
    let t = run_quiet(copy)?;
    let mut unpack = Command::new("umoci");
    unpack
        .args(["unpack", "--image"])
        .arg(format!("{}:latest", layout.display()))
        .arg(dir.join("bundle"));
    Ok(t + run_quiet(unpack)?)
}

fn podman_pull(env: &Env, reference: &str, dir: &Path) -> Result<Duration> {
    let mut c = Command::new("podman");
    c.env("CONTAINERS_CONF", &env.containers_conf)
        .arg("--root")
        .arg(dir.join("root"))
        .arg("--runroot")
        .arg(dir.join("run"))
        .args(["--storage-driver", "overlay"])
        .args(["pull", "--quiet", "--tls-verify=false", reference]);
    let r = run_quiet(c);
    // c/storage's overlay driver bind-mounts its home onto itself.
    berth_testkit::unmount_all_under(dir);
    r
}

fn tools() -> Vec<Tool> {
    let mut v = vec![Tool {
        name: "berth",
        pull: berth_pull,
    }];
    if which("skopeo").is_some() && which("umoci").is_some() {
        v.push(Tool {
            name: "skopeo+umoci",
            pull: skopeo_umoci,
        });
    } else {
        eprintln!("pull bench: skopeo or umoci not installed, left out");
    }
    if which("podman").is_some() {
        v.push(Tool {
            name: "podman",
            pull: podman_pull,
        });
    } else {
        eprintln!("pull bench: podman not installed, left out");
    }
    v
}

/// Make an image from `rootfs` with berth, save it as an oci-archive and
/// push it to the registry with skopeo (which gzips the layer); returns the
/// reference.
fn publish(env: &Env, reg: &Registry, work: &Path, rootfs: &Path, name: &str) -> Result<String> {
    let tarball = work.join(format!("{name}.tar"));
    let mut tar = Command::new("tar");
    tar.arg("-C").arg(rootfs).arg("-cf").arg(&tarball).arg(".");
    run_quiet(tar)?;
    let store = work.join(format!("{name}-store"));
    let berth = |args: &[&str]| {
        let mut c = Command::new(&env.berth);
        c.arg("--root")
            .arg(store.join("root"))
            .arg("--runroot")
            .arg(store.join("run"))
            .args(args);
        run_quiet(c)
    };
    berth(&["import", tarball.to_str().unwrap(), name])?;
    let archive = work.join(format!("{name}.oci.tar"));
    berth(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        archive.to_str().unwrap(),
        name,
    ])?;
    let reference = reg.name(&format!("bench/{name}:latest"));
    let mut copy = Command::new("skopeo");
    copy.args(["copy", "--quiet", "--dest-tls-verify=false"])
        .arg(format!("oci-archive:{}", archive.display()))
        .arg(format!("docker://{reference}"));
    run_quiet(copy)?;
    Ok(reference)
}

fn usr_include_rootfs(work: &Path) -> Result<PathBuf> {
    let rootfs = work.join("rootfs-include");
    berth_testkit::make_busybox_rootfs(&rootfs);
    std::fs::create_dir_all(rootfs.join("usr"))?;
    let mut cp = Command::new("cp");
    cp.args(["-a", "/usr/include"])
        .arg(rootfs.join("usr/include"));
    run_quiet(cp).context("copy /usr/include (Debian libc6-dev)")?;
    Ok(rootfs)
}

fn pulls(env: &Env, tools: &[Tool], work: &Path, label: &str, reference: &str, n: usize) {
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); tools.len()];
    let mut failed: Vec<Option<String>> = vec![None; tools.len()];
    for i in 0..n {
        for (k, t) in tools.iter().enumerate() {
            if failed[k].is_some() {
                continue;
            }
            // Short: podman refuses a runroot longer than 50 characters.
            let dir = work.join(format!("{k}{}{i}", &label[..1]));
            if let Err(e) = std::fs::create_dir(&dir) {
                failed[k] = Some(format!("mkdir {}: {e}", dir.display()));
                continue;
            }
            match (t.pull)(env, reference, &dir) {
                Ok(d) => times[k].push(d),
                Err(e) => failed[k] = Some(format!("{e:#}")),
            }
            berth_testkit::unmount_all_under(&dir);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    println!("\n## pull + unpack of {label} from a local registry, {n} interleaved iterations");
    println!("{:<14} {:>10} {:>10}", "tool", "median ms", "vs berth");
    let base = failed[0].is_none().then(|| median(&mut times[0].clone()));
    for (k, t) in tools.iter().enumerate() {
        if let Some(e) = &failed[k] {
            println!("{:<14} failed: {e}", t.name);
            continue;
        }
        let med = median(&mut times[k]);
        let ratio = base
            .map(|b| format!("{:.2}x", ms(med) / ms(b)))
            .unwrap_or_else(|| "-".into());
        println!("{:<14} {:>10.1} {:>10}", t.name, ms(med), ratio);
    }
}

/// The single layer blob of `reference`, as skopeo stores it in an OCI
/// layout (gzip, as the registry serves it).
fn layer_blob(reference: &str, work: &Path) -> Result<PathBuf> {
    let layout = work.join("layer-layout");
    let mut copy = Command::new("skopeo");
    copy.args(["copy", "--quiet", "--src-tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .arg(format!("oci:{}:latest", layout.display()));
    run_quiet(copy)?;
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json"))?)?;
    let blob = |digest: &str| {
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .context("index.json has no manifest")?;
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob(manifest_digest))?)?;
    let layers = manifest["layers"].as_array().context("manifest layers")?;
    if layers.len() != 1 {
        bail!("expected one layer, found {}", layers.len());
    }
    Ok(blob(layers[0]["digest"].as_str().context("layer digest")?))
}

fn unpacks(work: &Path, label: &str, blob: &Path, n: usize) -> Result<()> {
    let mut berth = Vec::new();
    let mut tar = Vec::new();
    let mut bytes = 0u64;
    for i in 0..n {
        let dest = work.join(format!("unpack-berth-{i}"));
        std::fs::create_dir(&dest)?;
        let t = Instant::now();
        let stats = berth_storage::unpack_layer(
            std::fs::File::open(blob)?,
            &dest,
            &berth_storage::UnpackOptions::default(),
        )?;
        berth.push(t.elapsed());
        bytes = stats.size;
        std::fs::remove_dir_all(&dest)?;

        let dest = work.join(format!("unpack-tar-{i}"));
        std::fs::create_dir(&dest)?;
        let mut c = Command::new("tar");
        c.arg("-C").arg(&dest).arg("-xzf").arg(blob);
        tar.push(run_quiet(c)?);
        std::fs::remove_dir_all(&dest)?;
    }
    let mb = bytes as f64 / 1e6;
    let (b, t) = (median(&mut berth), median(&mut tar));
    println!("\n## unpack of the {label} layer ({mb:.1} MB uncompressed tar), {n} interleaved iterations");
    println!(
        "{:<14} {:>10} {:>10} {:>10}",
        "unpacker", "median ms", "MB/s", "vs berth"
    );
    for (name, d) in [("berth", b), ("tar -xzf", t)] {
        println!(
            "{:<14} {:>10.1} {:>10.1} {:>9.2}x",
            name,
            ms(d),
            mb / d.as_secs_f64(),
            ms(d) / ms(b)
        );
    }
    Ok(())
}

fn main() -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("the pull bench runs as root (podman's overlay storage, device nodes in layers)");
    }
    let work_dir = berth_testkit::tempdir("pb");
    let work = work_dir.path();
    let conf = work.join("containers.conf");
    std::fs::write(
        &conf,
        format!(
            "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\nevents_logfile_path = \"{0}/events.log\"\ntmp_dir = \"{0}/tmp\"\n",
            work.display()
        ),
    )?;
    let env = Env {
        berth: std::env::var_os("BERTH")
            .map(PathBuf::from)
            .unwrap_or_else(|| berth_testkit::workspace_root().join("target/release/berth")),
        containers_conf: conf,
    };
    if !env.berth.is_file() {
        bail!(
            "{} not built (cargo build --release -p berth-cli)",
            env.berth.display()
        );
    }
    let reg = Registry::start();
    let tools = tools();
    println!(
        "# pull benchmark (registry 127.0.0.1:{}, every pull into an empty store)",
        reg.port
    );

    let bb = work.join("rootfs-busybox");
    berth_testkit::make_busybox_rootfs(&bb);
    let small = publish(&env, &reg, work, &bb, "busybox")?;
    pulls(&env, &tools, work, "busybox", &small, iterations(15));

    let inc = usr_include_rootfs(work)?;
    let large = publish(&env, &reg, work, &inc, "usr-include")?;
    pulls(&env, &tools, work, "usr-include", &large, iterations(5));

    let blob = layer_blob(&large, work)?;
    unpacks(work, "usr-include", &blob, iterations(5))?;
    berth_testkit::unmount_all_under(work);
    Ok(())
}
