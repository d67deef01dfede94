//! Turning `linux.seccomp` into a libseccomp filter context. Everything that
//! can be wrong with a profile is found here, so `Program::prepare` (which
//! compiles in the parent and exports the program) catches it at `create`,
//! before anything exists.

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction as A, LinuxSeccompArg, LinuxSeccompFilterFlag as F,
    LinuxSeccompOperator as Op, LinuxSyscall,
};

use super::SeccompError as E;

/// Syscalls the kernel has but libseccomp 2.5 does not know by name. A
/// profile written for a newer stack (Docker's default profile lists some
/// of them) is not refused for naming them: like runc, the rule is left out
/// with a warning. Any other unknown name is an error (a typo must never
/// silently weaken a profile).
pub const NEWER_THAN_LIBSECCOMP: &[&str] = &[
    "memfd_secret",
    "process_mrelease",
    "futex_waitv",
    "set_mempolicy_home_node",
    "cachestat",
    "fchmodat2",
    "map_shadow_stack",
    "futex_wake",
    "futex_wait",
    "futex_requeue",
    "statmount",
    "listmount",
    "lsm_get_self_attr",
    "lsm_set_self_attr",
    "lsm_list_modules",
    "mseal",
    "setxattrat",
    "getxattrat",
    "listxattrat",
    "removexattrat",
    "open_tree_attr",
    "uretprobe",
    "file_getattr",
    "file_setattr",
];

/// The syscall the runtime itself makes between loading a filter and
/// handing the notify descriptor to the listener: notifying it would hang
/// the container forever (runc forbids `write` for the same reason).
pub const NOTIFY_FORBIDDEN: &[&str] = &["sendmsg"];

/// Largest errno a filter can return (SECCOMP_RET_DATA holds more, but the
/// kernel treats values above MAX_ERRNO as success).
const MAX_ERRNO: u32 = 4095;

/// Syscall arguments are numbered 0..=5.
const MAX_ARG_INDEX: usize = 5;

pub struct Compiled {
    pub ctx: ScmpFilterContext,
    /// Whether some rule uses SCMP_ACT_NOTIFY.
    pub notify: bool,
    /// Names left out because libseccomp does not know them (see
    /// [`NEWER_THAN_LIBSECCOMP`]).
    pub skipped: Vec<String>,
}

pub fn compile(s: &LinuxSeccomp) -> Result<Compiled, E> {
    if s.default_action() == A::ScmpActNotify {
        return Err(E::NotifyAsDefault);
    }
    let default = action(s.default_action(), s.default_errno_ret(), "defaultAction")?;
    let lib = |op: &'static str| move |source| E::Lib { op, source };
    let mut ctx = ScmpFilterContext::new(default).map_err(lib("create filter"))?;
    // no_new_privs follows `process.noNewPrivileges`, not libseccomp's default.
    ctx.set_ctl_nnp(false)
        .map_err(lib("clear the filter's no_new_privs attribute"))?;
    for a in s.architectures().iter().flatten() {
        let arch = arch(*a);
        if !ctx
            .is_arch_present(arch)
            .map_err(lib("query filter architecture"))?
        {
            ctx.add_arch(arch).map_err(|source| E::Arch {
                arch: a.to_string(),
                source,
            })?;
        }
    }
    for f in s.flags().iter().flatten() {
        set_flag(&mut ctx, *f)?;
    }
    let mut out = Compiled {
        ctx,
        notify: false,
        skipped: Vec::new(),
    };
    for (i, sc) in s.syscalls().iter().flatten().enumerate() {
        add_syscall_rule(&mut out, default, i, sc)?;
    }
    if out.notify && s.listener_path().is_none() {
        return Err(E::NotifyWithoutListener);
    }
    Ok(out)
}

fn add_syscall_rule(
    out: &mut Compiled,
    default: ScmpAction,
    i: usize,
    sc: &LinuxSyscall,
) -> Result<(), E> {
    let what = format!("syscalls[{i}]");
    if sc.names().is_empty() {
        return Err(E::Invalid(format!("{what} has no names")));
    }
    let act = action(sc.action(), sc.errno_ret(), &what)?;
    let conds = sc
        .args()
        .iter()
        .flatten()
        .map(|a| condition(a, &what))
        .collect::<Result<Vec<_>, E>>()?;
    if sc.action() == A::ScmpActNotify {
        if let Some(n) = sc
            .names()
            .iter()
            .find(|n| NOTIFY_FORBIDDEN.contains(&n.as_str()))
        {
            return Err(E::NotifyForbidden(n.clone()));
        }
        out.notify = true;
    }
    for name in sc.names() {
        let nr = match ScmpSyscall::from_name(name) {
            Ok(nr) => nr,
            Err(_) if NEWER_THAN_LIBSECCOMP.contains(&name.as_str()) => {
                out.skipped.push(name.clone());
                continue;
            }
            Err(_) => {
                return Err(E::UnknownSyscall {
                    name: name.clone(),
                    rule: what,
                })
            }
        };
        // libseccomp refuses a rule whose action is the default one; such a
        // rule changes nothing, so it is left out (as runc does).
        if act == default {
            continue;
        }
        let rule_err = |source| E::Rule {
            name: name.clone(),
            rule: what.clone(),
            source,
        };
        if repeats_an_argument(sc.args().as_deref().unwrap_or_default()) {
            // libseccomp compares each argument at most once per rule:
            // several conditions on one argument become one rule each (OR),
            // which is what runc does and what Docker's profile relies on.
            for c in &conds {
                out.ctx
                    .add_rule_conditional(act, nr, std::slice::from_ref(c))
                    .map_err(rule_err)?;
            }
        } else {
            out.ctx
                .add_rule_conditional(act, nr, &conds)
                .map_err(rule_err)?;
        }
    }
    Ok(())
}

fn repeats_an_argument(args: &[LinuxSeccompArg]) -> bool {
    let mut seen = [false; MAX_ARG_INDEX + 1];
    for a in args {
        if let Some(s) = seen.get_mut(a.index()) {
            if *s {
                return true;
            }
            *s = true;
        }
    }
    false
}

/// The libseccomp action of a spec action; `errno` is `errnoRet`
/// (`defaultErrnoRet` for the default action).
pub fn action(a: A, errno: Option<u32>, what: &str) -> Result<ScmpAction, E> {
    let ret = || -> Result<u32, E> {
        let v = errno.unwrap_or(libc::EPERM as u32);
        if v > MAX_ERRNO {
            return Err(E::Invalid(format!(
                "{what}: errnoRet {v} is above {MAX_ERRNO}"
            )));
        }
        Ok(v)
    };
    if errno.is_some() && !matches!(a, A::ScmpActErrno | A::ScmpActTrace) {
        return Err(E::Invalid(format!(
            "{what}: errnoRet is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not {a}"
        )));
    }
    Ok(match a {
        A::ScmpActKill | A::ScmpActKillThread => ScmpAction::KillThread,
        A::ScmpActKillProcess => ScmpAction::KillProcess,
        A::ScmpActTrap => ScmpAction::Trap,
        A::ScmpActErrno => ScmpAction::Errno(ret()? as i32),
        A::ScmpActTrace => ScmpAction::Trace(ret()? as u16),
        A::ScmpActNotify => ScmpAction::Notify,
        A::ScmpActLog => ScmpAction::Log,
        A::ScmpActAllow => ScmpAction::Allow,
    })
}

fn condition(a: &LinuxSeccompArg, what: &str) -> Result<ScmpArgCompare, E> {
    if a.index() > MAX_ARG_INDEX {
        return Err(E::Invalid(format!(
            "{what}: argument index {} is above {MAX_ARG_INDEX}",
            a.index()
        )));
    }
    let op = match a.op() {
        Op::ScmpCmpNe => ScmpCompareOp::NotEqual,
        Op::ScmpCmpLt => ScmpCompareOp::Less,
        Op::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        Op::ScmpCmpEq => ScmpCompareOp::Equal,
        Op::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        Op::ScmpCmpGt => ScmpCompareOp::Greater,
        // The spec's `value` is the mask, `valueTwo` the value compared
        // with the masked argument.
        Op::ScmpCmpMaskedEq => {
            return Ok(ScmpArgCompare::new(
                a.index() as u32,
                ScmpCompareOp::MaskedEqual(a.value()),
                a.value_two().unwrap_or(0),
            ))
        }
    };
    Ok(ScmpArgCompare::new(a.index() as u32, op, a.value()))
}

pub fn arch(a: Arch) -> ScmpArch {
    match a {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
    }
}

/// libseccomp API level needed for a filter flag (3: the kernel knows
/// SECCOMP_FILTER_FLAG_LOG; 4: SECCOMP_FILTER_FLAG_SPEC_ALLOW).
pub fn flag_api_level(f: F) -> u32 {
    match f {
        F::SeccompFilterFlagLog => 3,
        F::SeccompFilterFlagSpecAllow => 4,
        F::SeccompFilterFlagTsync => 1,
    }
}

pub fn flag_supported(f: F) -> bool {
    libseccomp::get_api() >= flag_api_level(f)
}

fn set_flag(ctx: &mut ScmpFilterContext, f: F) -> Result<(), E> {
    if !flag_supported(f) {
        return Err(E::FlagUnsupported {
            flag: f.to_string(),
            api: libseccomp::get_api(),
        });
    }
    let r = match f {
        F::SeccompFilterFlagLog => ctx.set_ctl_log(true).map(drop),
        F::SeccompFilterFlagSpecAllow => ctx.set_ctl_ssb(true).map(drop),
        // TSYNC synchronises the filter to every thread; the runtime is
        // single-threaded when it loads the filter, so there is nothing to
        // synchronise (runc ignores the flag too).
        F::SeccompFilterFlagTsync => Ok(()),
    };
    r.map_err(|source| E::Flag {
        flag: f.to_string(),
        source,
    })
}
