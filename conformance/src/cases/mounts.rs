//! config.md `root` and `mounts`: types, options, binds, order, and the
//! isolation of the container's mount table from the host's.

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

use super::{cases, check_eq};
use crate::bundle::Bundle;
use crate::case::{Case, Ctx};

pub fn cases() -> Vec<Case> {
    cases![
        "mounts.tmpfs_type" => tmpfs_type,
        "mounts.tmpfs_size" => tmpfs_size,
        "mounts.tmpfs_mode" => tmpfs_mode,
        "mounts.tmpfs_uid_gid" => tmpfs_uid_gid,
        "mounts.option_ro" => option_ro,
        "mounts.option_nosuid" => option_nosuid,
        "mounts.option_nodev" => option_nodev,
        "mounts.option_noexec" => option_noexec,
        "mounts.option_noatime" => option_noatime,
        "mounts.bind_dir" => bind_dir,
        "mounts.bind_file" => bind_file,
        "mounts.bind_ro" => bind_ro,
        "mounts.bind_rw_reaches_host" => bind_rw,
        "mounts.rbind_submounts" => rbind_submounts,
        "mounts.bind_without_submounts" => bind_no_submounts,
        "mounts.order" => order,
        "mounts.destination_created" => destination_created,
        "mounts.proc" => proc_type,
        "mounts.sysfs_ro" => sysfs_ro,
        "mounts.devpts" => devpts,
        "mounts.dev_shm" => dev_shm,
        "mounts.mqueue" => mqueue,
        "mounts.not_visible_on_host" => not_on_host,
        "root.readonly" => root_readonly,
        "root.writable" => root_writable,
        "root.path_absolute" => root_absolute,
        "root.is_bundle_rootfs" => root_is_rootfs,
        "root.propagation_shared" => propagation_shared,
        "root.propagation_slave" => propagation_slave,
        "root.propagation_private" => propagation_private,
    ]
}

const TMPFS_MAGIC: u64 = 0x0102_1994;
const PROC_MAGIC: u64 = 0x9fa0;
const DEVPTS_MAGIC: u64 = 0x1cd1;
const MQUEUE_MAGIC: u64 = 0x1980_0202;
const EROFS: i32 = nix::errno::Errno::EROFS as i32;

fn tmpfs(dest: &str, options: &[&str]) -> Value {
    json!({ "destination": dest, "type": "tmpfs", "source": "tmpfs", "options": options })
}

fn bind(src: &std::path::Path, dest: &str, options: &[&str]) -> Value {
    json!({ "destination": dest, "type": "bind", "source": src.to_string_lossy(), "options": options })
}

/// Probe `args` in a bundle with `mounts` appended to the baseline ones.
fn with_mounts(ctx: &Ctx, mounts: Vec<Value>, args: &[&str]) -> Result<Value> {
    let mut b = ctx.bundle()?;
    for m in mounts {
        b.add_mount(m);
    }
    ctx.probe(&mut b, args)
}

fn flags(v: &Value) -> Vec<String> {
    v["flags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str().map(String::from))
        .collect()
}

fn has_flag(ctx: &Ctx, opt: &str) -> Result<()> {
    let v = with_mounts(
        ctx,
        vec![tmpfs("/mnt/opt", &[opt])],
        &["statfs", "/mnt/opt"],
    )?;
    ensure!(
        flags(&v).iter().any(|f| f == opt),
        "mount option {opt} not in effect: flags {:?}",
        flags(&v)
    );
    Ok(())
}

fn tmpfs_type(ctx: &Ctx) -> Result<()> {
    let v = with_mounts(ctx, vec![tmpfs("/mnt/t", &[])], &["statfs", "/mnt/t"])?;
    check_eq("filesystem magic", &v["magic"], &json!(TMPFS_MAGIC))
}

fn tmpfs_size(ctx: &Ctx) -> Result<()> {
    let v = with_mounts(
        ctx,
        vec![tmpfs("/mnt/t", &["size=1m"])],
        &["statfs", "/mnt/t"],
    )?;
    check_eq("tmpfs size", &v["size"], &json!(1024 * 1024))
}

fn tmpfs_mode(ctx: &Ctx) -> Result<()> {
    let v = with_mounts(
        ctx,
        vec![tmpfs("/mnt/t", &["mode=0710"])],
        &["stat", "/mnt/t"],
    )?;
    check_eq("tmpfs root mode", &v["mode"], &json!(0o710))
}

fn tmpfs_uid_gid(ctx: &Ctx) -> Result<()> {
    let v = with_mounts(
        ctx,
        vec![tmpfs("/mnt/t", &["uid=1000", "gid=4242"])],
        &["stat", "/mnt/t"],
    )?;
    check_eq(
        "owner",
        &(v["uid"].clone(), v["gid"].clone()),
        &(json!(1000), json!(4242)),
    )
}

fn option_ro(ctx: &Ctx) -> Result<()> {
    let v = with_mounts(
        ctx,
        vec![tmpfs("/mnt/t", &["ro"])],
        &["write", "/mnt/t/file"],
    )?;
    check_eq(
        "write to a ro mount",
        &v,
        &json!({ "ok": false, "errno": EROFS }),
    )
}

fn option_nosuid(ctx: &Ctx) -> Result<()> {
    has_flag(ctx, "nosuid")
}

fn option_nodev(ctx: &Ctx) -> Result<()> {
    has_flag(ctx, "nodev")
}

fn option_noexec(ctx: &Ctx) -> Result<()> {
    has_flag(ctx, "noexec")
}

fn option_noatime(ctx: &Ctx) -> Result<()> {
    has_flag(ctx, "noatime")
}

/// A host directory under the scratch dir holding `file` with `content`.
fn host_dir(ctx: &Ctx, content: &str) -> Result<tempfile::TempDir> {
    let d = tempfile::Builder::new()
        .prefix("hostdir-")
        .tempdir_in(&ctx.scratch)?;
    std::fs::write(d.path().join("file"), content)?;
    Ok(d)
}

fn bind_dir(ctx: &Ctx) -> Result<()> {
    let d = host_dir(ctx, "bound-dir")?;
    let v = with_mounts(
        ctx,
        vec![bind(d.path(), "/mnt/bound", &["bind"])],
        &["read", "/mnt/bound/file"],
    )?;
    check_eq("file through a bind mount", &v["data"], &json!("bound-dir"))
}

fn bind_file(ctx: &Ctx) -> Result<()> {
    let d = host_dir(ctx, "bound-file")?;
    let v = with_mounts(
        ctx,
        vec![bind(&d.path().join("file"), "/etc/bound-file", &["bind"])],
        &["read", "/etc/bound-file"],
    )?;
    check_eq("bind-mounted file", &v["data"], &json!("bound-file"))
}

fn bind_ro(ctx: &Ctx) -> Result<()> {
    let d = host_dir(ctx, "x")?;
    let v = with_mounts(
        ctx,
        vec![bind(d.path(), "/mnt/bound", &["bind", "ro"])],
        &["write", "/mnt/bound/new"],
    )?;
    check_eq(
        "write through a ro bind",
        &v,
        &json!({ "ok": false, "errno": EROFS }),
    )
}

fn bind_rw(ctx: &Ctx) -> Result<()> {
    let d = host_dir(ctx, "x")?;
    let v = with_mounts(
        ctx,
        vec![bind(d.path(), "/mnt/bound", &["bind", "rw"])],
        &["write", "/mnt/bound/new"],
    )?;
    check_eq("write through a rw bind", &v, &json!({ "ok": true }))?;
    ensure!(
        d.path().join("new").exists(),
        "the write did not reach the host directory"
    );
    Ok(())
}

/// A host directory with a tmpfs mounted on its `sub/` holding `sub/file`;
/// unmounted on drop.
struct Submount(tempfile::TempDir);

impl Submount {
    fn new(ctx: &Ctx) -> Result<Submount> {
        let d = tempfile::Builder::new()
            .prefix("submount-")
            .tempdir_in(&ctx.scratch)?;
        let sub = d.path().join("sub");
        std::fs::create_dir(&sub)?;
        nix::mount::mount(
            Some("tmpfs"),
            &sub,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .context("mount a tmpfs on the host for the submount case")?;
        let s = Submount(d);
        std::fs::write(sub.join("file"), "in-submount")?;
        Ok(s)
    }
}

impl Drop for Submount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0.path().join("sub"), nix::mount::MntFlags::MNT_DETACH);
    }
}

fn rbind_submounts(ctx: &Ctx) -> Result<()> {
    let s = Submount::new(ctx)?;
    let v = with_mounts(
        ctx,
        vec![bind(s.0.path(), "/mnt/r", &["rbind"])],
        &["read", "/mnt/r/sub/file"],
    )?;
    check_eq(
        "file on a submount through rbind",
        &v["data"],
        &json!("in-submount"),
    )
}

fn bind_no_submounts(ctx: &Ctx) -> Result<()> {
    let s = Submount::new(ctx)?;
    let v = with_mounts(
        ctx,
        vec![bind(s.0.path(), "/mnt/r", &["bind"])],
        &["read", "/mnt/r/sub/file"],
    )?;
    check_eq(
        "submount through a non-recursive bind",
        &v["ok"],
        &json!(false),
    )
}

fn order(ctx: &Ctx) -> Result<()> {
    let d = host_dir(ctx, "inner")?;
    let mounts = vec![
        tmpfs("/mnt/outer", &[]),
        bind(d.path(), "/mnt/outer/inner", &["bind"]),
    ];
    let v = with_mounts(ctx, mounts, &["read", "/mnt/outer/inner/file"])?;
    check_eq(
        "nested mount applied after its parent",
        &v["data"],
        &json!("inner"),
    )
}

fn destination_created(ctx: &Ctx) -> Result<()> {
    let v = with_mounts(
        ctx,
        vec![tmpfs("/no/such/deep/dir", &[])],
        &["statfs", "/no/such/deep/dir"],
    )?;
    check_eq(
        "magic at a created destination",
        &v["magic"],
        &json!(TMPFS_MAGIC),
    )
}

fn magic_of(ctx: &Ctx, path: &str) -> Result<Value> {
    with_mounts(ctx, vec![], &["statfs", path])
}

fn proc_type(ctx: &Ctx) -> Result<()> {
    check_eq(
        "/proc magic",
        &magic_of(ctx, "/proc")?["magic"],
        &json!(PROC_MAGIC),
    )
}

fn sysfs_ro(ctx: &Ctx) -> Result<()> {
    let v = magic_of(ctx, "/sys")?;
    ensure!(
        flags(&v).iter().any(|f| f == "ro"),
        "/sys mounted with ro is writable: {:?}",
        flags(&v)
    );
    Ok(())
}

fn devpts(ctx: &Ctx) -> Result<()> {
    check_eq(
        "/dev/pts magic",
        &magic_of(ctx, "/dev/pts")?["magic"],
        &json!(DEVPTS_MAGIC),
    )
}

fn dev_shm(ctx: &Ctx) -> Result<()> {
    let v = magic_of(ctx, "/dev/shm")?;
    check_eq("/dev/shm magic", &v["magic"], &json!(TMPFS_MAGIC))?;
    for f in ["nosuid", "nodev", "noexec"] {
        ensure!(
            flags(&v).iter().any(|g| g == f),
            "/dev/shm lacks {f}: {:?}",
            flags(&v)
        );
    }
    Ok(())
}

fn mqueue(ctx: &Ctx) -> Result<()> {
    check_eq(
        "/dev/mqueue magic",
        &magic_of(ctx, "/dev/mqueue")?["magic"],
        &json!(MQUEUE_MAGIC),
    )
}

fn not_on_host(ctx: &Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.add_mount(tmpfs("/mnt/private", &[]));
    b.script("sleep 1000");
    b.save()?;
    let c = ctx.container(&b);
    c.launch()?;
    let leaked = berth_testkit::mounts_under(&std::fs::canonicalize(b.path())?);
    ensure!(
        leaked.is_empty(),
        "container mounts visible in the host mount table: {leaked:?}"
    );
    Ok(())
}

fn root_probe(ctx: &Ctx, edit: impl FnOnce(&mut Bundle), args: &[&str]) -> Result<Value> {
    let mut b = ctx.bundle()?;
    edit(&mut b);
    ctx.probe(&mut b, args)
}

fn root_readonly(ctx: &Ctx) -> Result<()> {
    let v = root_probe(
        ctx,
        |b| b.config["root"]["readonly"] = json!(true),
        &["write", "/newfile"],
    )?;
    check_eq(
        "write to a readonly root",
        &v,
        &json!({ "ok": false, "errno": EROFS }),
    )
}

fn root_writable(ctx: &Ctx) -> Result<()> {
    let v = root_probe(
        ctx,
        |b| b.config["root"]["readonly"] = json!(false),
        &["write", "/newfile"],
    )?;
    check_eq("write to a writable root", &v, &json!({ "ok": true }))
}

fn root_absolute(ctx: &Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.config["root"]["path"] = json!(b.rootfs().to_string_lossy());
    let v = ctx.probe(&mut b, &["stat", "/berth-runtimetest"])?;
    check_eq(
        "helper in an absolute root.path",
        &v["exists"],
        &json!(true),
    )
}

fn root_is_rootfs(ctx: &Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    std::fs::write(b.in_rootfs("/marker"), "this-bundle")?;
    let v = ctx.probe(&mut b, &["read", "/marker"])?;
    check_eq(
        "/marker inside the container",
        &v["data"],
        &json!("this-bundle"),
    )
}

/// The optional fields (between the options and " - ") of `/`'s mountinfo line.
fn root_propagation(ctx: &Ctx, prop: &str) -> Result<String> {
    let v = root_probe(
        ctx,
        |b| b.config["linux"]["rootfsPropagation"] = json!(prop),
        &["info"],
    )?;
    let info = v["mountinfo"].as_str().context("no mountinfo")?;
    let line = info
        .lines()
        .rfind(|l| l.split_whitespace().nth(4) == Some("/"))
        .context("no / in mountinfo")?;
    let (head, _) = line.split_once(" - ").context("malformed mountinfo")?;
    Ok(head
        .split_whitespace()
        .skip(6)
        .collect::<Vec<_>>()
        .join(" "))
}

fn propagation_shared(ctx: &Ctx) -> Result<()> {
    let f = root_propagation(ctx, "shared")?;
    ensure!(
        f.contains("shared:"),
        "rootfsPropagation shared: / has {f:?}"
    );
    Ok(())
}

fn propagation_slave(ctx: &Ctx) -> Result<()> {
    // A slave receives events but sends none back; whether it has a master
    // depends on the host's mount (private on hosts without systemd).
    let f = root_propagation(ctx, "slave")?;
    ensure!(
        !f.contains("shared:"),
        "rootfsPropagation slave: / is shared ({f:?})"
    );
    Ok(())
}

fn propagation_private(ctx: &Ctx) -> Result<()> {
    let f = root_propagation(ctx, "private")?;
    ensure!(f.is_empty(), "rootfsPropagation private: / has {f:?}");
    Ok(())
}
