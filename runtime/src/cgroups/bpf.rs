//! cgroup v2 device control: an eBPF `BPF_PROG_TYPE_CGROUP_DEVICE` program
//! built from the same rules as v1 (see `devices.rs`), like runc's
//! devicefilter. The rules are first reduced to what v1 would end with — a
//! default verdict and exceptions — then each exception becomes a block that
//! returns the opposite of the default when the device matches.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use oci_spec::runtime::LinuxDeviceCgroup;

use super::devices::{effective, Effective, Rule};
use super::sys::{self, Insn};
use crate::error::{Error, Result};

// Opcodes (linux/bpf_common.h, linux/bpf.h).
const LDX_MEM_W: u8 = 0x61;
const ALU64_AND_K: u8 = 0x57;
const ALU64_RSH_K: u8 = 0x77;
const ALU64_MOV_K: u8 = 0xb7;
const ALU64_MOV_X: u8 = 0xbf;
const JMP_JEQ_K: u8 = 0x15;
const JMP_JNE_K: u8 = 0x55;
const JMP_EXIT: u8 = 0x95;
// bpf_cgroup_dev_ctx.access_type low half (BPF_DEVCG_DEV_*).
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0x0f),
        off,
        imm,
    }
}

/// r2 = device type, r3 = requested access, r4 = major, r5 = minor.
fn prologue() -> Vec<Insn> {
    vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),
        insn(ALU64_AND_K, 2, 0, 0, 0xffff),
        insn(LDX_MEM_W, 3, 1, 0, 0),
        insn(ALU64_RSH_K, 3, 0, 0, 16),
        insn(LDX_MEM_W, 4, 1, 4, 0),
        insn(LDX_MEM_W, 5, 1, 8, 0),
    ]
}

/// One exception: falls through to the next block unless the device
/// matches; then returns `verdict`. An allow exception must cover every
/// requested access bit; a deny exception matches if it names any of them.
fn block(r: &Rule, verdict: bool) -> Vec<Insn> {
    // Jumps are patched to the block's end once its length is known.
    let mut b = Vec::new();
    match r.typ {
        'b' => b.push(insn(JMP_JNE_K, 2, 0, 0, DEV_BLOCK)),
        'c' => b.push(insn(JMP_JNE_K, 2, 0, 0, DEV_CHAR)),
        _ => {}
    }
    b.push(insn(ALU64_MOV_X, 6, 3, 0, 0));
    if verdict {
        b.push(insn(ALU64_AND_K, 6, 0, 0, i32::from(!r.access & 7)));
        b.push(insn(JMP_JNE_K, 6, 0, 0, 0));
    } else {
        b.push(insn(ALU64_AND_K, 6, 0, 0, i32::from(r.access)));
        b.push(insn(JMP_JEQ_K, 6, 0, 0, 0));
    }
    if let Some(m) = r.major {
        b.push(insn(JMP_JNE_K, 4, 0, 0, m as i32));
    }
    if let Some(m) = r.minor {
        b.push(insn(JMP_JNE_K, 5, 0, 0, m as i32));
    }
    b.push(insn(ALU64_MOV_K, 0, 0, 0, i32::from(verdict)));
    b.push(insn(JMP_EXIT, 0, 0, 0, 0));
    let len = b.len();
    for (i, x) in b.iter_mut().enumerate() {
        if x.code == JMP_JNE_K || x.code == JMP_JEQ_K {
            x.off = (len - i - 1) as i16;
        }
    }
    b
}

/// The whole program for an effective rule set.
pub fn program(e: &Effective) -> Vec<Insn> {
    let mut p = prologue();
    for r in &e.exceptions {
        p.extend(block(r, !e.default_allow));
    }
    p.push(insn(ALU64_MOV_K, 0, 0, 0, i32::from(e.default_allow)));
    p.push(insn(JMP_EXIT, 0, 0, 0, 0));
    p
}

/// Load the program for `rules` and attach it to the cgroup2 directory
/// `dir`, then detach the programs that were there before (an update
/// replaces them; between the two both apply, so access only narrows).
pub fn attach_device_filter(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    let prog = program(&effective(rules));
    let fd: OwnedFd = sys::load_device_prog(&prog).map_err(|(source, log)| Error::Sys {
        op: format!(
            "load the eBPF device program for {} (verifier: {log})",
            dir.display()
        ),
        source,
    })?;
    let d = open(
        dir,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|source| Error::Path {
        op: "open cgroup",
        path: dir.to_path_buf(),
        source,
    })?;
    let old = sys::attached_device_progs(d.as_fd()).unwrap_or_default();
    sys::attach_device_prog(d.as_fd(), fd.as_fd()).map_err(|source| Error::Path {
        op: "attach the eBPF device program to",
        path: dir.to_path_buf(),
        source,
    })?;
    for o in old {
        sys::detach_device_prog(d.as_fd(), o.as_fd()).map_err(|source| Error::Path {
            op: "detach the previous eBPF device program from",
            path: dir.to_path_buf(),
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run the program on one request, as the kernel would (a tiny
    /// interpreter for exactly the instructions `program` emits).
    fn run(p: &[Insn], typ: i32, access: u8, major: u32, minor: u32) -> bool {
        let mut r = [0u64; 11];
        let ctx = [((access as u32) << 16) | typ as u32, major, minor];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_MEM_W => r[dst] = u64::from(ctx[i.off as usize / 4]),
                ALU64_AND_K => r[dst] &= i.imm as u64,
                ALU64_RSH_K => r[dst] >>= i.imm,
                ALU64_MOV_K => r[dst] = i.imm as u64,
                ALU64_MOV_X => r[dst] = r[src],
                JMP_JEQ_K if r[dst] == i.imm as u64 => pc += i.off as usize,
                JMP_JNE_K if r[dst] != i.imm as u64 => pc += i.off as usize,
                JMP_JEQ_K | JMP_JNE_K => {}
                JMP_EXIT => return r[0] == 1,
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
    }

    fn prog(json: &str) -> Vec<Insn> {
        program(&effective(
            &serde_json::from_str::<Vec<LinuxDeviceCgroup>>(json).expect("rules"),
        ))
    }

    const R: u8 = super::super::devices::ACC_READ;
    const W: u8 = super::super::devices::ACC_WRITE;
    const M: u8 = super::super::devices::ACC_MKNOD;

    #[test]
    fn default_rules_allow_only_the_standard_devices() {
        let p = prog(r#"[{"allow":false,"access":"rwm"}]"#);
        assert!(run(&p, DEV_CHAR, R | W, 1, 3), "/dev/null");
        assert!(run(&p, DEV_CHAR, R, 136, 7), "/dev/pts/7");
        assert!(run(&p, DEV_BLOCK, M, 8, 0), "mknod of any block device");
        assert!(!run(&p, DEV_BLOCK, R, 8, 0), "reading a disk");
        assert!(!run(&p, DEV_CHAR, W, 1, 11), "/dev/kmsg");
        assert!(!run(&p, DEV_CHAR, R, 1, 1), "/dev/mem");
    }

    #[test]
    fn config_rules_add_and_narrow() {
        let p = prog(
            r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":11,"access":"w"}]"#,
        );
        assert!(run(&p, DEV_CHAR, W, 1, 11));
        assert!(!run(&p, DEV_CHAR, R | W, 1, 11), "read was not allowed");
        let p = prog(
            r#"[{"allow":true,"access":"rwm"},{"allow":false,"type":"b","major":8,"access":"r"}]"#,
        );
        assert!(run(&p, DEV_CHAR, R | W, 1, 11), "allow-all default");
        assert!(
            !run(&p, DEV_BLOCK, R, 8, 3),
            "denied by major wildcard minor"
        );
        assert!(run(&p, DEV_BLOCK, W, 8, 3), "write was not denied");
    }

    #[test]
    fn encoding_is_the_kernels() {
        let p = prologue();
        assert_eq!(
            p[0],
            Insn {
                code: 0x61,
                regs: 0x12,
                off: 0,
                imm: 0
            }
        );
        assert_eq!(
            p[4],
            Insn {
                code: 0x61,
                regs: 0x14,
                off: 4,
                imm: 0
            }
        );
        assert_eq!(std::mem::size_of::<Insn>(), 8);
    }
}
