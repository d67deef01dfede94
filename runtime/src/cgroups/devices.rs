//! Device access rules: written to cgroup v1 `devices.allow` /
//! `devices.deny`, or reduced to a default verdict plus exceptions
//! ([`effective`]) from which `bpf.rs` builds the cgroup v2 eBPF program.
//!
//! As runc: everything is denied first, then the config's rules are applied
//! in order, then runc's default allowed devices are appended (mknod of any
//! device, /dev/null, zero, full, tty, random, urandom, console, /dev/pts/*
//! and /dev/ptmx), so a config cannot lock a container out of those.
//! Device nodes listed in `linux.devices` get no implicit rule: engines add
//! explicit ones (docker does for `--device`).

use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::write;
use crate::error::{Error, Result};

/// runc's default allowed devices: (type, major, minor, access).
pub const DEFAULT_DEVICE_RULES: &[(char, i64, i64, &str)] = &[
    ('c', -1, -1, "m"),
    ('b', -1, -1, "m"),
    ('c', 1, 3, "rwm"),    // /dev/null
    ('c', 1, 8, "rwm"),    // /dev/random
    ('c', 1, 7, "rwm"),    // /dev/full
    ('c', 5, 0, "rwm"),    // /dev/tty
    ('c', 1, 5, "rwm"),    // /dev/zero
    ('c', 1, 9, "rwm"),    // /dev/urandom
    ('c', 5, 1, "rwm"),    // /dev/console
    ('c', 136, -1, "rwm"), // /dev/pts/*
    ('c', 5, 2, "rwm"),    // /dev/ptmx
];

fn type_char(t: Option<LinuxDeviceType>) -> char {
    match t.unwrap_or_default() {
        LinuxDeviceType::A => 'a',
        LinuxDeviceType::B => 'b',
        LinuxDeviceType::C | LinuxDeviceType::U => 'c',
        LinuxDeviceType::P => 'p',
    }
}

/// Check one rule (before anything exists).
pub(super) fn validate_rule(i: usize, r: &LinuxDeviceCgroup) -> Result<()> {
    let bad = |m: String| {
        Err(Error::InvalidConfig(format!(
            "linux.resources.devices[{i}]: {m}"
        )))
    };
    if type_char(r.typ()) == 'p' {
        return bad("type \"p\" (fifo) cannot be a cgroup device rule: use a, b or c".into());
    }
    for (what, n) in [("major", r.major()), ("minor", r.minor())] {
        if n.is_some_and(|n| n < -1 || n > i32::MAX as i64) {
            return bad(format!("{what} {} is out of range", n.unwrap_or_default()));
        }
    }
    // Empty means all, as in v1_lines.
    let access = r.access().as_deref().unwrap_or("rwm");
    if !access.chars().all(|c| "rwm".contains(c)) {
        return bad(format!("access {access:?} must be made of r, w and m"));
    }
    Ok(())
}

/// A device rule in structured form: type `a`, `b` or `c`, major and minor
/// (`None`: any), access bits ([`ACC_MKNOD`] | [`ACC_READ`] | [`ACC_WRITE`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub typ: char,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

/// Access bits as the kernel's `BPF_DEVCG_ACC_*`.
pub const ACC_MKNOD: u8 = 1;
pub const ACC_READ: u8 = 2;
pub const ACC_WRITE: u8 = 4;

fn access_bits(s: &str) -> u8 {
    s.chars().fold(0, |a, c| {
        a | match c {
            'm' => ACC_MKNOD,
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            _ => 0,
        }
    })
}

impl Rule {
    fn line(&self) -> String {
        if self.typ == 'a' {
            return "a *:* rwm".into();
        }
        let num = |n: Option<u32>| n.map_or_else(|| "*".to_string(), |n| n.to_string());
        let mut acc = String::new();
        for (bit, c) in [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')] {
            if self.access & bit != 0 {
                acc.push(c);
            }
        }
        format!("{} {}:{} {acc}", self.typ, num(self.major), num(self.minor))
    }

    fn same_device(&self, o: &Rule) -> bool {
        self.typ == o.typ && self.major == o.major && self.minor == o.minor
    }
}

/// Every rule in order: deny all, the config's, then runc's defaults.
pub fn all_rules(rules: &[LinuxDeviceCgroup]) -> Vec<(bool, Rule)> {
    let num = |n: Option<i64>| n.filter(|n| *n >= 0).map(|n| n as u32);
    let mut out = vec![(
        false,
        Rule {
            typ: 'a',
            major: None,
            minor: None,
            access: 7,
        },
    )];
    for r in rules {
        let access = r
            .access()
            .as_deref()
            .filter(|a| !a.is_empty())
            .unwrap_or("rwm");
        out.push((
            r.allow(),
            Rule {
                typ: type_char(r.typ()),
                major: num(r.major()),
                minor: num(r.minor()),
                access: access_bits(access),
            },
        ));
    }
    for (t, ma, mi, acc) in DEFAULT_DEVICE_RULES {
        out.push((
            true,
            Rule {
                typ: *t,
                major: num(Some(*ma)),
                minor: num(Some(*mi)),
                access: access_bits(acc),
            },
        ));
    }
    out
}

/// The full ordered rule list for `rules`, as v1 file writes: (allow, line).
pub fn v1_lines(rules: &[LinuxDeviceCgroup]) -> Vec<(bool, String)> {
    all_rules(rules)
        .into_iter()
        .map(|(a, r)| (a, r.line()))
        .collect()
}

/// The state the v1 kernel would end in after the rules: a default verdict
/// and exceptions to it (cgroup v1 `devices` semantics, which v2 emulates).
#[derive(Debug, PartialEq, Eq)]
pub struct Effective {
    pub default_allow: bool,
    pub exceptions: Vec<Rule>,
}

pub fn effective(rules: &[LinuxDeviceCgroup]) -> Effective {
    let mut st = Effective {
        default_allow: false,
        exceptions: Vec::new(),
    };
    for (allow, r) in all_rules(rules) {
        if r.typ == 'a' {
            st = Effective {
                default_allow: allow,
                exceptions: Vec::new(),
            };
        } else if allow == st.default_allow {
            // Same verdict as the default: narrows matching exceptions.
            for e in st.exceptions.iter_mut().filter(|e| e.same_device(&r)) {
                e.access &= !r.access;
            }
            st.exceptions.retain(|e| e.access != 0);
        } else if let Some(e) = st.exceptions.iter_mut().find(|e| e.same_device(&r)) {
            e.access |= r.access;
        } else {
            st.exceptions.push(r);
        }
    }
    st
}

/// Write the rules to a v1 `devices` cgroup. With `live` (an update of a
/// running container) the change is made without a moment of deny-all when
/// the default verdict stays the same: first the new exceptions are added,
/// then what is no longer wanted is removed (runc avoids the gap the same way).
pub(super) fn apply_v1(dir: &Path, rules: &[LinuxDeviceCgroup], live: bool) -> Result<()> {
    let current = live
        .then(|| std::fs::read_to_string(dir.join("devices.list")).ok())
        .flatten();
    let target = effective(rules);
    match current.map(|c| parse_list(&c)) {
        Some(cur) if cur.default_allow == target.default_allow => {
            let (add, remove) = if target.default_allow {
                ("devices.deny", "devices.allow")
            } else {
                ("devices.allow", "devices.deny")
            };
            for (file, line) in transition(&cur, &target, add, remove) {
                write(dir, file, &line)?;
            }
        }
        _ => {
            for (allow, line) in v1_lines(rules) {
                write(
                    dir,
                    if allow {
                        "devices.allow"
                    } else {
                        "devices.deny"
                    },
                    &line,
                )?;
            }
        }
    }
    Ok(())
}

/// The writes that turn `cur` into `target` (same default verdict).
fn transition<'a>(
    cur: &Effective,
    target: &Effective,
    add: &'a str,
    remove: &'a str,
) -> Vec<(&'a str, String)> {
    let mut out: Vec<(&str, String)> = target.exceptions.iter().map(|e| (add, e.line())).collect();
    for c in &cur.exceptions {
        let keep = target
            .exceptions
            .iter()
            .find(|t| t.same_device(c))
            .map_or(0, |t| t.access);
        let gone = c.access & !keep;
        if gone != 0 {
            out.push((
                remove,
                Rule {
                    access: gone,
                    ..c.clone()
                }
                .line(),
            ));
        }
    }
    out
}

/// Parse v1 `devices.list`: `a *:* rwm` alone means allow-all, otherwise
/// each line is an allowed exception to deny-all.
pub fn parse_list(text: &str) -> Effective {
    let mut e = Effective {
        default_allow: false,
        exceptions: Vec::new(),
    };
    for l in text.lines() {
        let mut it = l.split_whitespace();
        let (Some(t), Some(dev), Some(acc)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let Some((ma, mi)) = dev.split_once(':') else {
            continue;
        };
        if t == "a" {
            e.default_allow = true;
            continue;
        }
        let typ = t.chars().next().unwrap_or('a');
        e.exceptions.push(Rule {
            typ,
            major: ma.parse().ok(),
            minor: mi.parse().ok(),
            access: access_bits(acc),
        });
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(json: &str) -> Vec<LinuxDeviceCgroup> {
        serde_json::from_str(json).expect("rules")
    }

    #[test]
    fn deny_all_first_then_config_then_defaults() {
        let l = v1_lines(&rules(
            r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":11,"access":"w"}]"#,
        ));
        assert_eq!(l[0], (false, "a *:* rwm".into()));
        assert_eq!(l[1], (false, "a *:* rwm".into()));
        assert_eq!(l[2], (true, "c 1:11 w".into()));
        assert!(l.contains(&(true, "c 136:* rwm".into())));
        assert!(l.contains(&(true, "c *:* m".into())));
        assert_eq!(l.len(), 3 + DEFAULT_DEVICE_RULES.len());
    }

    #[test]
    fn live_update_adds_before_it_removes() {
        let cur = parse_list("c 1:3 rwm\nc 1:11 rw\nc 136:* rwm\n");
        let target = effective(&rules(
            r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":11,"access":"w"}]"#,
        ));
        let t = transition(&cur, &target, "devices.allow", "devices.deny");
        let first_deny = t
            .iter()
            .position(|(f, _)| *f == "devices.deny")
            .expect("a removal");
        assert!(
            t[..first_deny].iter().all(|(f, _)| *f == "devices.allow"),
            "adds first: {t:?}"
        );
        assert!(t.contains(&("devices.allow", "c 1:11 w".into())));
        assert_eq!(
            t[first_deny..],
            [("devices.deny", "c 1:11 r".to_string())],
            "only the dropped read goes"
        );
        assert!(parse_list("a *:* rwm\n").default_allow);
    }

    #[test]
    fn bad_rules_are_refused() {
        for (json, want) in [
            (
                r#"{"allow":true,"type":"c","major":1,"minor":3,"access":"rwx"}"#,
                "access",
            ),
            (
                r#"{"allow":true,"type":"c","major":-7,"access":"r"}"#,
                "major",
            ),
            (r#"{"allow":true,"type":"p","access":"r"}"#, "fifo"),
        ] {
            let r: LinuxDeviceCgroup = serde_json::from_str(json).expect("rule");
            let e = validate_rule(0, &r).unwrap_err();
            assert!(e.to_string().contains(want), "{json}: {e}");
        }
    }
}
