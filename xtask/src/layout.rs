//! Code layout of the shipped berth-runtime: the functions a container's
//! life runs, found by tracing that life, listed for the linker so it puts
//! them side by side.
//!
//! Why: the kernel maps a file's executable pages a 64 KiB window at a time
//! (fault-around), and a large page-cache folio whole, so a process's RSS is
//! every window it touched, not every page. The linker lays functions out
//! by crate and module; a `run` touches a few hundred scattered functions
//! (clap, serde, oci-spec, std, glibc, the runtime itself) and so maps
//! most of the binary's text. Listed by the training step they first run
//! in, the same functions fill a few contiguous windows.
//!
//! How: a ptrace tracer (no debugger, no instrumented build). Every
//! function start of the unstripped binary (`readelf`'s FUNC symbols) gets
//! an `int3` in each process image of it (the first exec and the sealed
//! re-exec); a trap records the function, puts the original byte back in
//! that process and resumes it. Forks are followed (the container's init
//! runs in one); a process that execs anything else (the container's own
//! program) is let go. A trap is taken once per function and process, so a
//! full `run` traces in well under a second.
//!
//! The result is an order, never a behaviour: the linked binary is the same
//! code, and a function the training did not run is still there, only
//! placed after the ones it did.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::FileExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

const INT3: u8 = 0xcc;

/// A function of the traced binary: where it starts, what it is called.
struct Func {
    addr: u64,
    name: String,
}

/// FUNC symbols of an unstripped static (non-PIE) ELF binary, by `readelf`
/// (binutils): their addresses are the addresses they run at.
fn functions(bin: &Path) -> Result<Vec<Func>> {
    let out = Command::new("readelf")
        .args(["-sW", "--syms"])
        .arg(bin)
        .output()
        .context("readelf (binutils)")?;
    if !out.status.success() {
        bail!(
            "readelf -s {}: {}",
            bin.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let mut seen = HashSet::new();
    let mut v = Vec::new();
    // "Num: Value Size Type Bind Vis Ndx Name"
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 8 || f[3] != "FUNC" || f[6] == "UND" {
            continue;
        }
        let Ok(addr) = u64::from_str_radix(f[1], 16) else {
            continue;
        };
        if addr != 0 && seen.insert(addr) {
            v.push(Func {
                addr,
                name: f[7].to_string(),
            });
        }
    }
    if v.is_empty() {
        bail!("{} has no function symbols (stripped?)", bin.display());
    }
    Ok(v)
}

/// Follows every process of a traced command and records the functions of
/// `bin` they run, in the order they first run.
pub struct Tracer {
    image: Vec<u8>,
    funcs: Vec<Func>,
    by_addr: HashMap<u64, usize>,
    /// Text span holding every function start: [lo, hi).
    lo: u64,
    hi: u64,
    /// Original byte at each function start (read from the first image).
    orig: HashMap<u64, u8>,
    hit: Vec<bool>,
    /// Functions run, first run first, each with the step (the how-manyth
    /// `run`/`settle`) it first ran in.
    order: Vec<(usize, usize)>,
    step: usize,
    /// Processes being traced.
    tracees: HashSet<i32>,
}

impl Tracer {
    pub fn new(bin: &Path) -> Result<Tracer> {
        let funcs = functions(bin)?;
        let by_addr = funcs.iter().enumerate().map(|(i, f)| (f.addr, i)).collect();
        let lo = funcs.iter().map(|f| f.addr).min().expect("not empty");
        let hi = funcs.iter().map(|f| f.addr).max().expect("not empty") + 1;
        Ok(Tracer {
            image: std::fs::read(bin).with_context(|| format!("read {}", bin.display()))?,
            hit: vec![false; funcs.len()],
            funcs,
            by_addr,
            lo,
            hi,
            orig: HashMap::new(),
            order: Vec::new(),
            step: 0,
            tracees: HashSet::new(),
        })
    }

    /// Names of the functions run so far, first run first.
    #[cfg(test)]
    pub fn order(&self) -> impl Iterator<Item = &str> {
        self.order.iter().map(|&(_, i)| self.funcs[i].name.as_str())
    }

    pub fn counts(&self) -> (usize, usize) {
        (self.order.len(), self.funcs.len())
    }

    /// Write the functions run, one name a line (lld's
    /// `--symbol-ordering-file`): by the step they first ran in, then by
    /// address. Within a step the runtime's processes run side by side, so
    /// which of them first reached a function varies; this order does not,
    /// and the same trace links the same binary. Returns (run, all) counts.
    fn write_order(&self, out: &Path) -> Result<(usize, usize)> {
        let mut v = self.order.clone();
        v.sort_by_key(|&(step, i)| (step, self.funcs[i].addr));
        let mut text = String::new();
        for (_, i) in v {
            text.push_str(&self.funcs[i].name);
            text.push('\n');
        }
        std::fs::write(out, text).with_context(|| format!("write {}", out.display()))?;
        Ok(self.counts())
    }

    /// Run `cmd` under the tracer until it exits; its other processes
    /// (a created container's init) stay traced for the next command. Fails
    /// if it fails or overruns `limit` (then every tracee is killed, by pid).
    pub fn run(&mut self, mut cmd: Command, limit: Duration) -> Result<()> {
        let desc = format!("{cmd:?}");
        // SAFETY: PTRACE_TRACEME between fork and exec only marks this
        // child as traced by its parent; it touches no memory of ours.
        unsafe {
            cmd.pre_exec(|| {
                if libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("spawn {desc}"))?;
        let root = child.id() as i32;
        // Reaped below by waitpid, never through `child`.
        drop(child);
        self.tracees.insert(root);
        self.step += 1;
        self.serve(Some(root), &desc, limit)
    }

    /// Follow the processes still traced (a daemon a command left behind)
    /// until every one has exited or been let go.
    pub fn settle(&mut self, what: &str, limit: Duration) -> Result<()> {
        self.step += 1;
        self.serve(None, what, limit)
    }

    /// Handle the tracees' stops until `root` exits (with `None`: until
    /// none is left). `root`, if given, is in its first stop, just after
    /// its traced exec.
    fn serve(&mut self, root: Option<i32>, desc: &str, limit: Duration) -> Result<()> {
        let mut root_started = false;
        let deadline = Instant::now() + limit;
        loop {
            if root.is_none() && self.tracees.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill_all();
                bail!("{desc}: did not finish under the tracer within {limit:?}");
            }
            let mut status = 0;
            // SAFETY: waitpid writes only the status integer we pass.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::__WALL | libc::WNOHANG) };
            if pid == 0 {
                std::thread::sleep(Duration::from_micros(200));
                continue;
            }
            if pid < 0 {
                let e = std::io::Error::last_os_error();
                if root.is_none() && e.raw_os_error() == Some(libc::ECHILD) {
                    // Nothing traced or ours is left.
                    self.tracees.clear();
                    return Ok(());
                }
                bail!("{desc}: waitpid: {e}");
            }
            if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
                self.tracees.remove(&pid);
                if Some(pid) == root {
                    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
                        return Ok(());
                    }
                    self.kill_all();
                    bail!("{desc}: failed under the tracer (wait status {status:#x})");
                }
                continue;
            }
            if !libc::WIFSTOPPED(status) {
                continue;
            }
            let sig = libc::WSTOPSIG(status);
            let event = status >> 16;
            if Some(pid) == root && !root_started {
                // The stop after the traced exec: follow forks and execs.
                root_started = true;
                let opts = libc::PTRACE_O_TRACEFORK
                    | libc::PTRACE_O_TRACEVFORK
                    | libc::PTRACE_O_TRACECLONE
                    | libc::PTRACE_O_TRACEEXEC
                    | libc::PTRACE_O_EXITKILL;
                ptrace(libc::PTRACE_SETOPTIONS, pid, opts as usize)?;
                self.on_exec(pid)?;
                cont(pid, 0)?;
                continue;
            }
            if !self.tracees.contains(&pid) {
                // A new child, attached by the fork option, in its first stop.
                self.tracees.insert(pid);
                cont(pid, 0)?;
                continue;
            }
            match event {
                libc::PTRACE_EVENT_EXEC => {
                    if self.on_exec(pid)? {
                        cont(pid, 0)?;
                    } else {
                        // Not ours (the container's program): let it go.
                        ptrace(libc::PTRACE_DETACH, pid, 0)?;
                        self.tracees.remove(&pid);
                    }
                }
                libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK | libc::PTRACE_EVENT_CLONE => {
                    cont(pid, 0)?
                }
                0 if sig == libc::SIGTRAP && self.on_trap(pid)? => cont(pid, 0)?,
                0 => cont(pid, sig)?,
                _ => cont(pid, 0)?,
            }
        }
    }

    fn kill_all(&mut self) {
        for &p in &self.tracees {
            // SAFETY: kill by pid of a process this tracer started or
            // followed from one it started.
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
        self.tracees.clear();
    }

    /// A process just exec'd. If the image is the traced binary, put an
    /// int3 on every function not yet run; returns whether it is.
    fn on_exec(&mut self, pid: i32) -> Result<bool> {
        let exe = std::fs::read(format!("/proc/{pid}/exe")).unwrap_or_default();
        if exe != self.image {
            return Ok(false);
        }
        let mem = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(format!("/proc/{pid}/mem"))
            .with_context(|| format!("open /proc/{pid}/mem"))?;
        let mut text = vec![0u8; (self.hi - self.lo) as usize];
        mem.read_exact_at(&mut text, self.lo)
            .with_context(|| format!("read text of {pid}"))?;
        for (i, f) in self.funcs.iter().enumerate() {
            if self.hit[i] {
                continue;
            }
            let off = (f.addr - self.lo) as usize;
            self.orig.entry(f.addr).or_insert(text[off]);
            text[off] = INT3;
        }
        mem.write_all_at(&text, self.lo)
            .with_context(|| format!("write breakpoints into {pid}"))?;
        Ok(true)
    }

    /// A SIGTRAP stop: if it is one of our breakpoints, record the function,
    /// restore its byte in this process and step back onto it.
    fn on_trap(&mut self, pid: i32) -> Result<bool> {
        let mut regs = std::mem::MaybeUninit::<libc::user_regs_struct>::uninit();
        // SAFETY: PTRACE_GETREGS fills the user_regs_struct we pass.
        if unsafe { libc::ptrace(libc::PTRACE_GETREGS, pid, 0, regs.as_mut_ptr()) } == -1 {
            bail!("GETREGS {pid}: {}", std::io::Error::last_os_error());
        }
        // SAFETY: initialised by the successful GETREGS above.
        let mut regs = unsafe { regs.assume_init() };
        let at = regs.rip.wrapping_sub(1);
        let (Some(&i), Some(&b)) = (self.by_addr.get(&at), self.orig.get(&at)) else {
            return Ok(false);
        };
        if !self.hit[i] {
            self.hit[i] = true;
            self.order.push((self.step, i));
        }
        std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/proc/{pid}/mem"))
            .and_then(|m| m.write_all_at(&[b], at))
            .with_context(|| format!("restore {at:#x} in {pid}"))?;
        regs.rip = at;
        // SAFETY: PTRACE_SETREGS reads the struct we pass.
        if unsafe { libc::ptrace(libc::PTRACE_SETREGS, pid, 0, &regs) } == -1 {
            bail!("SETREGS {pid}: {}", std::io::Error::last_os_error());
        }
        Ok(true)
    }
}

fn ptrace(req: libc::c_uint, pid: i32, data: usize) -> Result<()> {
    // SAFETY: requests used here (SETOPTIONS, CONT, DETACH) take an integer
    // `data` and no pointer.
    if unsafe { libc::ptrace(req, pid, 0, data) } == -1 {
        let e = std::io::Error::last_os_error();
        // The tracee died under us (killed with its container): not an error.
        if e.raw_os_error() == Some(libc::ESRCH) {
            return Ok(());
        }
        bail!("ptrace({req}) {pid}: {e}");
    }
    Ok(())
}

fn cont(pid: i32, sig: i32) -> Result<()> {
    ptrace(libc::PTRACE_CONT, pid, sig as usize)
}

/// Trace a container's life as engines drive it — `run` of a plain and of a
/// limited, seccomp-filtered container; `create`, `state`, `start`,
/// `exec`, `list`, `kill`, `delete` of a long-running one — with the
/// unstripped build `bin`, and write the functions it ran to `out` (see
/// [`Tracer::write_order`]). Returns (run, all) counts.
pub fn train(bin: &Path, out: &Path) -> Result<(usize, usize)> {
    let mut t = Tracer::new(bin)?;
    let root = berth_testkit::state_root();
    let limit = Duration::from_secs(60);
    let cmd = |args: &[&str]| {
        let mut c = Command::new(bin);
        c.arg("--root").arg(root.path()).args(args);
        c
    };
    let path = |b: &berth_testkit::Bundle| b.path().to_string_lossy().into_owned();

    let mut plain = berth_testkit::Bundle::new(bin);
    plain.set_args(&["/bin/true"]).save();
    t.run(
        cmd(&["run", "--bundle", &path(&plain), "layout-run"]),
        limit,
    )?;

    // Without Docker's profile installed, the filtered run is left out.
    if berth_testkit::limit_and_filter(&mut plain).is_ok() {
        t.run(
            cmd(&["run", "--bundle", &path(&plain), "layout-limits"]),
            limit,
        )?;
    }

    let mut long = berth_testkit::Bundle::new(bin);
    long.set_args(&["/bin/sleep", "60"]).save();
    let id = "layout-life";
    let steps: [&[&str]; 8] = [
        &["create", "--bundle", &path(&long), id],
        &["state", id],
        &["start", id],
        &["exec", id, "/bin/true"],
        &["list"],
        &["ps", id],
        &["kill", id, "KILL"],
        &["delete", "--force", id],
    ];
    let mut r = Ok(());
    for s in steps {
        r = t.run(cmd(s), limit);
        if r.is_err() {
            break;
        }
    }
    if r.is_err() {
        // Leave nothing running: the container's init is this tracer's.
        let _ = cmd(&["delete", "--force", id]).output();
    }
    r?;
    t.write_order(out)
}

/// Trace berth-monitor (the unstripped build `monitor`) through a
/// detached container's life as the engine starts it — start-up, the
/// runtime's `create` and `start`, the idle poll loop, the exit, `delete`
/// — with `runtime` as its runtime, and write the order to `out`.
pub fn train_monitor(monitor: &Path, runtime: &Path, out: &Path) -> Result<(usize, usize)> {
    let mut t = Tracer::new(monitor)?;
    let work = berth_testkit::tempdir("layout-monitor");
    let rt_root = work.path().join("runtime");
    let run_dir = work.path().join("run");
    std::fs::create_dir_all(&run_dir)?;
    let mut bundle = berth_testkit::Bundle::new(runtime);
    bundle.set_args(&["/bin/sleep", "60"]).save();
    let id = berth_testkit::unique("layout-monitor");
    let limit = Duration::from_secs(60);
    let mut m = Command::new(monitor);
    m.arg("--id")
        .arg(&id)
        .arg("--runtime")
        .arg(runtime)
        .arg("--runtime-root")
        .arg(&rt_root)
        .arg("--bundle")
        .arg(bundle.path())
        .arg("--run-dir")
        .arg(&run_dir)
        .arg("--log")
        .arg(work.path().join("log.json"))
        .args(["--log-driver", "json-file"]);
    let rt = |args: &[&str]| {
        let mut c = Command::new(runtime);
        c.arg("--root").arg(&rt_root).args(args);
        c
    };
    // The monitor's first process exits once the container runs; the
    // daemon it left idles until the container is killed, then deletes it
    // and exits.
    let r = t
        .run(m, limit)
        .and_then(|()| t.run(rt(&["kill", &id, "KILL"]), limit))
        .and_then(|()| t.settle("berth-monitor after the container's exit", limit));
    if r.is_err() {
        let _ = rt(&["delete", "--force", &id]).output();
    }
    r?;
    t.write_order(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROGRAM: &str = r#"
#include <stdio.h>
#include <unistd.h>
#include <sys/wait.h>
__attribute__((noinline)) int never(int x) { return x * 3; }
__attribute__((noinline)) int second(int x) { return x + 1; }
__attribute__((noinline)) int first(int x) { return x * 2; }
__attribute__((noinline)) int in_child(int x) { return x - 1; }
int main(int argc, char **argv) {
    int v = second(first(argc));
    pid_t p = fork();
    if (p == 0)
        _exit(in_child(v) == 2 ? 0 : 1);
    int st;
    if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return 3;
    if (argc > 5)
        v = never(v);
    if (v != 3)
        return 4;
    execl("/bin/true", "true", (char *)0);
    return 5;
}
"#;

    /// A static, non-PIE program traced: the functions it runs are
    /// recorded in the order they first run, the forked child's included,
    /// the one it never calls is not; every breakpoint is put back (the
    /// results it checks, its child's among them, come out right and it
    /// exits 0), and its exec of another program is let go.
    #[test]
    fn traces_the_functions_run_first_run_first_through_fork_and_exec() {
        let dir = berth_testkit::tempdir("layout");
        let src = dir.path().join("prog.c");
        let bin = dir.path().join("prog");
        std::fs::write(&src, PROGRAM).unwrap();
        let cc = Command::new("gcc")
            .args(["-O1", "-static", "-no-pie", "-o"])
            .arg(&bin)
            .arg(&src)
            .output();
        match cc {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                berth_testkit::skip(
                    "layout_traces",
                    &format!(
                        "gcc -static failed (libc6-dev's libc.a?): {}",
                        String::from_utf8_lossy(&o.stderr).trim()
                    ),
                );
                return;
            }
            Err(e) => {
                berth_testkit::skip("layout_traces", &format!("no gcc: {e}"));
                return;
            }
        }
        let mut t = Tracer::new(&bin).unwrap();
        t.run(Command::new(&bin), Duration::from_secs(30)).unwrap();
        let order: Vec<&str> = t.order().collect();
        let pos = |f: &str| order.iter().position(|n| *n == f);
        let (Some(main), Some(first), Some(second), Some(child)) =
            (pos("main"), pos("first"), pos("second"), pos("in_child"))
        else {
            panic!("a function that ran is missing: {order:?}");
        };
        assert!(
            main < first && first < second && second < child,
            "{order:?}"
        );
        assert_eq!(pos("never"), None, "{order:?}");
        let (ran, all) = t.counts();
        assert!(ran < all, "{ran} of {all}");
        // The order file: one step here, so by address, whichever process
        // got to a function first.
        let file = dir.path().join("prog.order");
        assert_eq!(t.write_order(&file).unwrap(), (ran, all));
        // (A local name two objects share, glibc has some, is left out.)
        let mut addr: HashMap<&str, Option<u64>> = HashMap::new();
        for f in &t.funcs {
            addr.entry(f.name.as_str())
                .and_modify(|a| *a = None)
                .or_insert(Some(f.addr));
        }
        let names = std::fs::read_to_string(&file).unwrap();
        assert_eq!(names.lines().count(), ran);
        let listed: Vec<u64> = names.lines().filter_map(|n| addr[n]).collect();
        assert!(listed.windows(2).all(|w| w[0] < w[1]), "{listed:x?}");
        assert!(t.tracees.is_empty(), "left traced: {:?}", t.tracees);
    }

    #[test]
    fn a_stripped_binary_is_refused_with_a_reason() {
        let e = Tracer::new(Path::new("/bin/busybox"))
            .err()
            .expect("refused");
        assert!(format!("{e:#}").contains("no function symbols"), "{e:#}");
    }
}
