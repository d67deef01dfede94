//! Image names as Docker normalises them: `alpine` →
//! `docker.io/library/alpine:latest`, `host:5000/x` keeps its host.

use crate::error::{Result, StorageError};

/// A parsed name: `domain/path` plus a tag and/or a digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub domain: String,
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Reference {
    /// Parse and normalise; a name with neither tag nor digest gets `latest`.
    pub fn parse(s: &str) -> Result<Reference> {
        let bad = |reason| StorageError::InvalidReference {
            reference: s.to_string(),
            reason,
        };
        if s.is_empty() || s.len() > 255 {
            return Err(bad("empty or longer than 255 characters"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(crate::Digest::parse(d)?.to_string())),
            None => (s, None),
        };
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i + 1..].contains('/') => {
                (&rest[..i], Some(rest[i + 1..].to_string()))
            }
            _ => (rest, None),
        };
        if let Some(t) = &tag {
            let ok = !t.is_empty()
                && t.len() <= 128
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
            if !ok || t.starts_with(['.', '-']) {
                return Err(bad("invalid tag"));
            }
        }
        let (domain, path) = match name.split_once('/') {
            Some((d, p)) if d.contains(['.', ':']) || d == "localhost" => {
                (d.to_string(), p.to_string())
            }
            _ => ("docker.io".to_string(), name.to_string()),
        };
        let path = if domain == "docker.io" && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        let path_ok = !path.is_empty()
            && path.split('/').all(|c| {
                !c.is_empty()
                    && c.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)
                    })
            });
        if !path_ok || domain.is_empty() {
            return Err(bad("invalid repository name"));
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_string())
        } else {
            tag
        };
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// `domain/path`.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// `domain/path:tag` when tagged.
    pub fn tagged(&self) -> Option<String> {
        self.tag
            .as_ref()
            .map(|t| format!("{}:{t}", self.repository()))
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.repository())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, want: &str) {
        assert_eq!(
            Reference::parse(input).unwrap().to_string(),
            want,
            "{input}"
        );
    }

    #[test]
    fn normalises_like_docker() {
        check("alpine", "docker.io/library/alpine:latest");
        check("alpine:3.19", "docker.io/library/alpine:3.19");
        check("user/app", "docker.io/user/app:latest");
        check("localhost/app", "localhost/app:latest");
        check("127.0.0.1:5000/a/b:v1", "127.0.0.1:5000/a/b:v1");
        let d = crate::Digest::of(b"x");
        check(
            &format!("busybox@{d}"),
            &format!("docker.io/library/busybox@{d}"),
        );
        for bad in ["", "UPPER", "a:", "a:-x", "a//b", "a@sha256:zz"] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
