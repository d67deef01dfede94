//! config-linux.md namespaces (new, inherited, joined by path, and the
//! errors for bad entries) and user namespace mappings.

use std::process::{Child, Command, Stdio};

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

use super::{cases, check_eq};
use crate::case::{Case, Ctx};
use crate::proc::wait_for;

pub fn cases() -> Vec<Case> {
    cases![
        "ns.pid_new" => pid_new,
        "ns.pid_host" => pid_host,
        "ns.net_new" => net_new,
        "ns.net_loopback_only" => net_loopback_only,
        "ns.net_host" => net_host,
        "ns.ipc_new" => ipc_new,
        "ns.ipc_host" => ipc_host,
        "ns.uts_new" => uts_new,
        "ns.uts_host" => uts_host,
        "ns.mount_new" => mount_new,
        "ns.cgroup_new" => cgroup_new,
        "ns.cgroup_host" => cgroup_host,
        "ns.user_new" => user_new,
        "ns.net_path" => net_path,
        "ns.uts_path" => uts_path,
        "ns.ipc_path" => ipc_path,
        "ns.pid_path" => pid_path,
        "ns.path_wrong_type_fails" => path_wrong_type,
        "ns.path_missing_fails" => path_missing,
        "ns.duplicate_type_fails" => duplicate_type,
        "userns.uid_map" => uid_map,
        "userns.gid_map" => gid_map,
        "userns.root_is_host_mapped_uid" => root_mapped,
    ]
}

fn host_ns(ns: &str) -> Result<String> {
    Ok(std::fs::read_link(format!("/proc/self/ns/{ns}"))?
        .to_string_lossy()
        .into_owned())
}

/// The container's `ns` link with the config edited by `edit`.
fn ns_of(ctx: &Ctx, ns: &str, edit: impl FnOnce(&mut crate::bundle::Bundle)) -> Result<Value> {
    let v = ctx.info(edit)?;
    Ok(v["ns"][ns].clone())
}

fn new_ns(ctx: &Ctx, ns: &str, typ: &str) -> Result<()> {
    let got = ns_of(ctx, ns, |b| {
        b.with_namespace(typ, None);
    })?;
    ensure!(
        got != json!(host_ns(ns)?),
        "{typ} namespace is the host's ({got})"
    );
    ensure!(got.is_string(), "no /proc/self/ns/{ns} in the container");
    Ok(())
}

fn host_ns_kept(ctx: &Ctx, ns: &str, typ: &str) -> Result<()> {
    let got = ns_of(ctx, ns, |b| {
        b.without_namespace(typ);
    })?;
    check_eq(
        &format!("{typ} namespace without an entry"),
        &got,
        &json!(host_ns(ns)?),
    )
}

fn pid_new(ctx: &Ctx) -> Result<()> {
    let v = ctx.info(|_| {})?;
    check_eq("pid in a new pid namespace", &v["pid"], &json!(1))
}

fn pid_host(ctx: &Ctx) -> Result<()> {
    host_ns_kept(ctx, "pid", "pid")
}

fn net_new(ctx: &Ctx) -> Result<()> {
    new_ns(ctx, "net", "network")
}

fn net_loopback_only(ctx: &Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    let v = ctx.probe(&mut b, &["read", "/proc/net/dev"])?;
    let text = v["data"].as_str().context("cannot read /proc/net/dev")?;
    let ifaces: Vec<&str> = text
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    check_eq(
        "interfaces in a new network namespace",
        &ifaces,
        &vec!["lo"],
    )
}

fn net_host(ctx: &Ctx) -> Result<()> {
    host_ns_kept(ctx, "net", "network")
}

fn ipc_new(ctx: &Ctx) -> Result<()> {
    new_ns(ctx, "ipc", "ipc")
}

fn ipc_host(ctx: &Ctx) -> Result<()> {
    host_ns_kept(ctx, "ipc", "ipc")
}

fn uts_new(ctx: &Ctx) -> Result<()> {
    new_ns(ctx, "uts", "uts")
}

fn uts_host(ctx: &Ctx) -> Result<()> {
    let got = ns_of(ctx, "uts", |b| {
        b.without_namespace("uts");
        b.config.as_object_mut().map(|o| o.remove("hostname"));
    })?;
    check_eq(
        "uts namespace without an entry",
        &got,
        &json!(host_ns("uts")?),
    )
}

fn mount_new(ctx: &Ctx) -> Result<()> {
    new_ns(ctx, "mnt", "mount")
}

fn cgroup_new(ctx: &Ctx) -> Result<()> {
    new_ns(ctx, "cgroup", "cgroup")
}

fn cgroup_host(ctx: &Ctx) -> Result<()> {
    host_ns_kept(ctx, "cgroup", "cgroup")
}

fn userns(b: &mut crate::bundle::Bundle) {
    b.with_namespace("user", None);
    b.config["linux"]["uidMappings"] =
        json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    b.config["linux"]["gidMappings"] =
        json!([{ "containerID": 0, "hostID": 200000, "size": 65536 }]);
}

fn user_new(ctx: &Ctx) -> Result<()> {
    let got = ns_of(ctx, "user", userns)?;
    ensure!(
        got.is_string() && got != json!(host_ns("user")?),
        "user namespace is the host's ({got})"
    );
    Ok(())
}

fn map_line(v: &Value) -> Vec<String> {
    v.as_str()
        .unwrap_or_default()
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

fn uid_map(ctx: &Ctx) -> Result<()> {
    let v = ctx.info(userns)?;
    check_eq(
        "uid_map",
        &map_line(&v["uid_map"]),
        &vec!["0 100000 65536".to_string()],
    )
}

fn gid_map(ctx: &Ctx) -> Result<()> {
    let v = ctx.info(userns)?;
    check_eq(
        "gid_map",
        &map_line(&v["gid_map"]),
        &vec!["0 200000 65536".to_string()],
    )
}

fn root_mapped(ctx: &Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    userns(&mut b);
    b.script("sleep 1000");
    b.save()?;
    let c = ctx.container(&b);
    c.create_ok()?;
    let status = std::fs::read_to_string(format!("/proc/{}/status", c.pid()?))?;
    let uid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .context("no Uid line")?;
    let gid = status
        .lines()
        .find(|l| l.starts_with("Gid:"))
        .context("no Gid line")?;
    check_eq(
        "host uid of container root",
        &uid.split_whitespace().nth(1),
        &Some("100000"),
    )?;
    check_eq(
        "host gid of container root",
        &gid.split_whitespace().nth(1),
        &Some("200000"),
    )
}

/// A host process in new namespaces (`unshare FLAGS sleep`), killed by PID on drop.
struct Holder(Child);

impl Holder {
    fn new(flags: &[&str], ns: &str) -> Result<Holder> {
        let child = Command::new("unshare")
            .args(flags)
            .args(["sleep", "1000"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .context("spawn unshare (util-linux)")?;
        let h = Holder(child);
        let host = host_ns(ns)?;
        let pid = h.0.id();
        let ready = wait_for(std::time::Duration::from_secs(5), || {
            let l = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).ok()?;
            (l.to_string_lossy() != host).then_some(())
        });
        ready.context("unshare did not enter a new namespace")?;
        Ok(h)
    }

    fn path(&self, ns: &str) -> String {
        format!("/proc/{}/ns/{ns}", self.0.id())
    }

    fn link(&self, ns: &str) -> Result<Value> {
        Ok(json!(std::fs::read_link(self.path(ns))?.to_string_lossy()))
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn join(ctx: &Ctx, flag: &str, ns: &str, typ: &str) -> Result<()> {
    let h = Holder::new(&[flag], ns)?;
    let p = h.path(ns);
    let got = ns_of(ctx, ns, |b| {
        b.with_namespace(typ, Some(&p));
    })?;
    check_eq(
        &format!("{typ} namespace joined by path"),
        &got,
        &h.link(ns)?,
    )
}

fn net_path(ctx: &Ctx) -> Result<()> {
    join(ctx, "-n", "net", "network")
}

fn uts_path(ctx: &Ctx) -> Result<()> {
    join(ctx, "-u", "uts", "uts")
}

fn ipc_path(ctx: &Ctx) -> Result<()> {
    join(ctx, "-i", "ipc", "ipc")
}

fn pid_path(ctx: &Ctx) -> Result<()> {
    // `unshare -p -f` forks: the sleep child is pid 1 of the new namespace,
    // and the unshare process's pid_for_children names it.
    let h = Holder::new(&["-p", "-f", "--kill-child"], "pid_for_children")?;
    let p = h.path("pid_for_children");
    let want = h.link("pid_for_children")?;
    let got = ns_of(ctx, "pid", |b| {
        b.with_namespace("pid", Some(&p));
    })?;
    check_eq("pid namespace joined by path", &got, &want)
}

fn path_wrong_type(ctx: &Ctx) -> Result<()> {
    let h = Holder::new(&["-u"], "uts")?;
    let mut b = ctx.bundle()?;
    b.with_namespace("network", Some(&h.path("uts")));
    super::create_or_start_fails(
        ctx,
        &mut b,
        "a network namespace path that is a uts namespace",
    )
}

fn path_missing(ctx: &Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.with_namespace("network", Some("/no/such/netns"));
    super::create_or_start_fails(ctx, &mut b, "a namespace path that does not exist")
}

fn duplicate_type(ctx: &Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .context("namespaces")?
        .push(json!({ "type": "network" }));
    super::create_or_start_fails(ctx, &mut b, "a duplicate namespace type")
}
