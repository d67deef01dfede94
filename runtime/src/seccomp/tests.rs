use oci_spec::runtime::LinuxSeccomp;
use serde_json::{json, Value};

use super::compile::compile;
use super::*;

fn profile(v: Value) -> LinuxSeccomp {
    serde_json::from_value(v).expect("profile parses")
}

fn rules(list: Value) -> LinuxSeccomp {
    profile(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/x.sock", "syscalls": list}),
    )
}

/// `want`: Ok(()) or Err(text the error must contain).
fn check(p: LinuxSeccomp, want: Result<(), &str>) {
    // The profile alone (create also checks for a live listener socket).
    let got = compile(&p).map(drop).map_err(crate::Error::from);
    match want {
        Ok(()) => assert!(got.is_ok(), "{p:?}: {got:?}"),
        Err(text) => {
            let e = got.expect_err("must fail").to_string();
            assert!(e.contains(text), "{e:?} does not mention {text:?}");
        }
    }
}

/// The filter as libseccomp's pseudo-code, for checking what was compiled.
fn pfc(p: &LinuxSeccomp) -> String {
    let c = compile(p).expect("compiles");
    let f = tempfile::tempfile().expect("tempfile");
    c.ctx.export_pfc(&f).expect("export");
    let mut f = f;
    use std::io::{Read, Seek};
    f.rewind().unwrap();
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    s
}

#[test]
fn every_action_compiles() {
    for a in [
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_TRAP",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_TRACE",
        "SCMP_ACT_LOG",
        "SCMP_ACT_NOTIFY",
    ] {
        check(rules(json!([{"names": ["mkdir"], "action": a}])), Ok(()));
    }
    for a in [
        "SCMP_ACT_KILL",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_LOG",
        "SCMP_ACT_TRAP",
        "SCMP_ACT_TRACE",
    ] {
        check(
            profile(
                json!({"defaultAction": a, "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}),
            ),
            Ok(()),
        );
    }
}

#[test]
fn errno_ret_is_what_the_filter_returns() {
    let p =
        rules(json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]));
    let text = pfc(&p);
    assert!(text.contains("ERRNO(38)"), "{text}");
    let d = profile(
        json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 13,
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}),
    );
    assert!(pfc(&d).contains("ERRNO(13)"));
    let plain = rules(json!([{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]));
    assert!(
        pfc(&plain).contains(&format!("ERRNO({})", libc::EPERM)),
        "EPERM is the default errno"
    );
}

#[test]
fn bad_errno_ret_is_refused() {
    check(
        rules(json!([{"names": ["mkdir"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}])),
        Err("errnoRet is only valid"),
    );
    check(
        rules(json!([{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5000}])),
        Err("above 4095"),
    );
    check(
        profile(json!({"defaultAction": "SCMP_ACT_KILL", "defaultErrnoRet": 1})),
        Err("defaultAction"),
    );
}

#[test]
fn unknown_syscall_names_are_errors() {
    check(
        rules(json!([{"names": ["read", "mkdirr"], "action": "SCMP_ACT_ERRNO"}])),
        Err("unknown syscall \"mkdirr\""),
    );
    check(
        rules(json!([{"names": [], "action": "SCMP_ACT_ERRNO"}])),
        Err("no names"),
    );
}

#[test]
fn syscalls_too_new_for_libseccomp_are_left_out_not_refused() {
    let names: Vec<&str> = compile::NEWER_THAN_LIBSECCOMP.to_vec();
    check(
        rules(json!([{"names": names, "action": "SCMP_ACT_ERRNO"}])),
        Ok(()),
    );
}

#[test]
fn syscalls_of_other_architectures_are_known() {
    // socketcall does not exist on x86_64 but on x86: a profile for both.
    let p = profile(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["socketcall"], "action": "SCMP_ACT_ERRNO"}]}),
    );
    check(p, Ok(()));
}

#[test]
fn every_operator_compiles_and_masked_eq_uses_value_as_mask() {
    for op in [
        "SCMP_CMP_NE",
        "SCMP_CMP_LT",
        "SCMP_CMP_LE",
        "SCMP_CMP_EQ",
        "SCMP_CMP_GE",
        "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ",
    ] {
        check(
            rules(
                json!([{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
            "args": [{"index": 0, "value": 8, "valueTwo": 8, "op": op}]}]),
            ),
            Ok(()),
        );
    }
    let p = rules(json!([{"names": ["clone"], "action": "SCMP_ACT_ERRNO",
        "args": [{"index": 0, "value": 0x7e020000u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}]));
    let text = pfc(&p);
    assert!(text.contains("& 0x7e020000"), "mask is `value`: {text}");
}

#[test]
fn conditions_on_one_argument_are_alternatives() {
    // Docker's profile allows personality(0), personality(8), … as one entry.
    let p = rules(
        json!([{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [
        {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]),
    );
    let text = pfc(&p);
    assert!(text.contains("== 8") && text.contains("== 0"), "{text}");
    check(
        rules(
            json!([{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]),
        ),
        Err("argument index 6"),
    );
}

#[test]
fn notify_rules_need_a_listener_and_a_safe_syscall() {
    check(
        profile(json!({"defaultAction": "SCMP_ACT_NOTIFY"})),
        Err("default action"),
    );
    check(
        profile(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
        ),
        Err("listenerPath is not set"),
    );
    check(
        rules(json!([{"names": ["sendmsg"], "action": "SCMP_ACT_NOTIFY"}])),
        Err("\"sendmsg\""),
    );
}

#[test]
fn a_notifying_profile_is_not_loaded_without_its_listener() {
    let p = rules(json!([{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]));
    let e = Program::prepare(&p, None)
        .and_then(|prog| prog.load(None))
        .expect_err("refused before loading anything");
    assert!(e.to_string().contains("no listener connection"), "{e}");
}

#[test]
fn flags_the_kernel_supports_compile() {
    for f in KNOWN_FLAGS {
        let p = profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": [f.to_string()]}));
        if compile::flag_supported(*f) {
            check(p, Ok(()));
        } else {
            check(p, Err("not supported"));
        }
    }
}

#[test]
fn rules_with_the_default_action_are_harmless() {
    check(
        rules(json!([{"names": ["read"], "action": "SCMP_ACT_ALLOW"}])),
        Ok(()),
    );
}

#[test]
fn features_lists_runc_fields() {
    let f = features();
    assert_eq!(f["enabled"], json!(true));
    for k in [
        "actions",
        "operators",
        "archs",
        "knownFlags",
        "supportedFlags",
    ] {
        assert!(f[k].as_array().is_some_and(|a| !a.is_empty()), "{k}");
    }
    assert!(f["actions"]
        .as_array()
        .unwrap()
        .contains(&json!("SCMP_ACT_NOTIFY")));
    assert!(f["operators"]
        .as_array()
        .unwrap()
        .contains(&json!("SCMP_CMP_MASKED_EQ")));
}

fn cache_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[test]
fn a_prepared_program_is_cached_and_the_cache_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let p =
        rules(json!([{"names": ["mkdir", "rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]));
    let first = Program::prepare(&p, Some(&cache)).expect("compiles");
    assert!(!first.cached);
    let files = cache_files(&cache);
    assert_eq!(files.len(), 1, "one cache file: {files:?}");
    let second = Program::prepare(&p, Some(&cache)).expect("cached");
    assert!(second.cached, "the second prepare reads the cache");
    assert_eq!(
        format!("{first:?}").replace("cached: false", ""),
        format!("{second:?}").replace("cached: true", "")
    );

    // Another profile is another entry, never the first one's program.
    let other = rules(json!([{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]));
    let o = Program::prepare(&other, Some(&cache)).expect("compiles");
    assert!(!o.cached);
    assert_eq!(cache_files(&cache).len(), 2);

    // A damaged file is ignored, then rewritten whole.
    let bytes = std::fs::read(&files[0]).unwrap();
    std::fs::write(&files[0], &bytes[..bytes.len() - 3]).unwrap();
    let again = Program::prepare(&p, Some(&cache)).expect("recompiles");
    assert!(!again.cached, "a truncated cache file must not be loaded");
    assert_eq!(std::fs::read(&files[0]).unwrap(), bytes);

    // A file under the right name holding another key is not used.
    let foreign = std::fs::read(
        cache_files(&cache)
            .into_iter()
            .find(|f| *f != files[0])
            .unwrap(),
    )
    .unwrap();
    std::fs::write(&files[0], foreign).unwrap();
    let again = Program::prepare(&p, Some(&cache)).expect("recompiles");
    assert!(
        !again.cached,
        "a cache file for another key must not be loaded"
    );
}

#[test]
fn a_bad_profile_is_refused_before_the_cache_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let p = rules(json!([{"names": ["no_such_syscall"], "action": "SCMP_ACT_ERRNO"}]));
    let e = Program::prepare(&p, Some(&cache)).expect_err("refused");
    assert!(e.to_string().contains("no_such_syscall"), "{e}");
    assert!(cache_files(&cache).is_empty());
}
