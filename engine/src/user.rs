//! `USER[:GROUP]` resolved through the image's /etc/passwd and /etc/group,
//! docker's rules: names must exist, numeric ids need not; supplementary
//! groups are the groups that list the user; HOME from passwd or `/`.

use std::path::Path;

use crate::error::{EngineError, Result};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

/// Read `etc/<file>` inside `rootfs` without following a symlink out of it:
/// a symlinked `etc` or file counts as absent.
fn read_etc(rootfs: &Path, file: &str) -> String {
    let etc = rootfs.join("etc");
    let path = etc.join(file);
    let plain = |p: &Path| {
        std::fs::symlink_metadata(p)
            .map(|m| !m.file_type().is_symlink())
            .unwrap_or(false)
    };
    if plain(&etc) && plain(&path) {
        std::fs::read_to_string(path).unwrap_or_default()
    } else {
        String::new()
    }
}

fn passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).unwrap_or(&"/").to_string(),
            })
        })
        .collect()
}

/// (name, gid, members)
fn groups(text: &str) -> Vec<(String, u32, Vec<String>)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            let members = f.get(3).map(|m| {
                m.split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            });
            Some((
                f.first()?.to_string(),
                f.get(2)?.parse().ok()?,
                members.unwrap_or_default(),
            ))
        })
        .collect()
}

/// Resolve `spec` (`""` is root) against the files of `rootfs`.
pub fn resolve(rootfs: &Path, spec: &str) -> Result<User> {
    resolve_in(
        &read_etc(rootfs, "passwd"),
        &read_etc(rootfs, "group"),
        spec,
    )
}

pub fn resolve_in(passwd_text: &str, group_text: &str, spec: &str) -> Result<User> {
    let unknown = || EngineError::UnknownUser {
        user: spec.to_string(),
    };
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let u = if u.is_empty() { "0" } else { u };
    let users = passwd(passwd_text);
    let entry = match u.parse::<u32>() {
        Ok(uid) => users.iter().find(|e| e.uid == uid),
        Err(_) => Some(users.iter().find(|e| e.name == u).ok_or_else(unknown)?),
    };
    let uid = entry
        .map(|e| e.uid)
        .unwrap_or_else(|| u.parse().unwrap_or(0));
    let all_groups = groups(group_text);
    let gid = match g {
        None | Some("") => entry.map(|e| e.gid).unwrap_or(0),
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => all_groups
                .iter()
                .find(|(n, _, _)| n == g)
                .map(|(_, gid, _)| *gid)
                .ok_or_else(unknown)?,
        },
    };
    let mut additional_gids: Vec<u32> = match (entry, g) {
        (Some(e), None) => all_groups
            .iter()
            .filter(|(_, _, m)| m.contains(&e.name))
            .map(|(_, gid, _)| *gid)
            .filter(|&x| x != gid)
            .collect(),
        _ => Vec::new(),
    };
    additional_gids.dedup();
    let home = entry.map(|e| e.home.clone()).unwrap_or_else(|| "/".into());
    Ok(User {
        uid,
        gid,
        additional_gids,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str =
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nuser:x:1000:\nwheel:x:10:user,other\nstaff:x:50:\n";

    fn check(spec: &str, want: Option<(u32, u32, &[u32], &str)>) {
        let got = resolve_in(PASSWD, GROUP, spec);
        match want {
            Some((uid, gid, extra, home)) => {
                let u = got.unwrap_or_else(|e| panic!("{spec}: {e}"));
                assert_eq!(
                    (u.uid, u.gid, u.additional_gids.as_slice(), u.home.as_str()),
                    (uid, gid, extra, home),
                    "{spec}"
                );
            }
            None => assert!(got.is_err(), "{spec} should fail"),
        }
    }

    #[test]
    fn docker_user_rules() {
        check("", Some((0, 0, &[], "/root")));
        check("root", Some((0, 0, &[], "/root")));
        check("user", Some((1000, 1000, &[10], "/home/user")));
        check("1000", Some((1000, 1000, &[10], "/home/user")));
        check("user:staff", Some((1000, 50, &[], "/home/user")));
        check("user:77", Some((1000, 77, &[], "/home/user")));
        check("4242", Some((4242, 0, &[], "/")));
        check("4242:4243", Some((4242, 4243, &[], "/")));
        check("nosuch", None);
        check("user:nosuch", None);
    }
}
