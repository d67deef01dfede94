//! Registry credentials from Docker's `config.json`
//! (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`): the
//! `auths.<registry>.auth` base64 `user:password` entries.

use std::path::PathBuf;

use crate::error::{Result, StorageError};

/// Where credentials live: `$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`.
pub fn docker_config_path() -> Option<PathBuf> {
    std::env::var_os("DOCKER_CONFIG")
        .map(|d| PathBuf::from(d).join("config.json"))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json")))
}

/// `(user, password)` for `registry`, if a config names it.
pub fn docker_config_auth(registry: &str) -> Option<(String, String)> {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(docker_config_path()?).ok()?).ok()?;
    let auths = v["auths"].as_object()?;
    let keys = [
        registry.to_string(),
        format!("https://{registry}"),
        format!("http://{registry}"),
    ];
    let hub = registry == "docker.io";
    let entry = auths.iter().find(|(k, _)| {
        let k = k.trim_end_matches('/');
        keys.iter().any(|x| x == k) || (hub && k.contains("index.docker.io"))
    })?;
    let decoded = base64_decode(entry.1["auth"].as_str()?)?;
    let s = String::from_utf8(decoded).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// Record credentials for `registry` (other entries and keys kept), through
/// a temp file renamed into place with mode 0600.
pub fn save_credentials(registry: &str, user: &str, password: &str) -> Result<PathBuf> {
    edit_config(|auths| {
        auths.insert(
            registry.to_string(),
            serde_json::json!({"auth": base64_encode(format!("{user}:{password}").as_bytes())}),
        );
        true
    })
}

/// Forget `registry`'s credentials; `Ok(false)` when there were none.
pub fn remove_credentials(registry: &str) -> Result<bool> {
    let mut found = false;
    edit_config(|auths| {
        let before = auths.len();
        auths.retain(|k, _| {
            k.trim_end_matches('/')
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                != registry
        });
        found = auths.len() != before;
        found
    })?;
    Ok(found)
}

fn edit_config(
    f: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>) -> bool,
) -> Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = docker_config_path().ok_or(StorageError::NoHome)?;
    let werr = |source| StorageError::WriteCredentials {
        path: path.clone(),
        source,
    };
    let mut v: serde_json::Value = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| serde_json::json!({}));
    if !v["auths"].is_object() {
        v["auths"] = serde_json::json!({});
    }
    let Some(auths) = v["auths"].as_object_mut() else {
        return Ok(path);
    };
    if !f(auths) {
        return Ok(path);
    }
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir).map_err(werr)?;
    let tmp = dir.join(format!(".{}", crate::util::temp_name("config.json")));
    let data = serde_json::to_vec_pretty(&v).map_err(|source| StorageError::EncodeJson {
        what: "config.json",
        source,
    })?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(werr)?;
    let res = file
        .write_all(&data)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(werr(e));
    }
    Ok(path)
}

fn base64_encode(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    };
    let bytes: Vec<u8> = s
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'=')
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        let n = chunk.len().saturating_sub(1);
        out.extend_from_slice(&acc.to_be_bytes()[1..1 + n]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_decodes_credentials() {
        assert_eq!(super::base64_decode("dXNlcjpwYXNz").unwrap(), b"user:pass");
        assert_eq!(super::base64_decode("YQ==").unwrap(), b"a");
        assert_eq!(super::base64_decode("YWI=").unwrap(), b"ab");
        assert!(super::base64_decode("*").is_none());
        for s in ["", "a", "ab", "abc", "user:pass", "x:y:z!"] {
            assert_eq!(
                super::base64_decode(&super::base64_encode(s.as_bytes())).unwrap(),
                s.as_bytes()
            );
        }
        assert_eq!(super::base64_encode(b"user:pass"), "dXNlcjpwYXNz");
    }
}
