//! `save` / `load` in oci-archive form (docker-archive in
//! `docker_archive.rs`): a tar of an OCI image layout
//! (`oci-layout`, `index.json`, `blobs/sha256/<hex>`), as `skopeo` and
//! `podman` read and write it. Manifests, configs and layer blobs are
//! copied byte for byte, so digests survive a round trip.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::Path;

use serde_json::{json, Value};

use crate::db::ImageRecord;
use crate::digest::Digest;
use crate::error::{Result, StorageError};
use crate::store::{parse_json, to_json, Store};
use crate::util::temp_name;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const NAME_ANNOTATION: &str = "io.containerd.image.name";
const REF_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// Write an archive at `path` through a temp file beside it, synced, then
/// renamed into place; on any error the temp file is removed and `path`
/// is as it was.
pub(crate) fn save_atomically(
    path: &Path,
    write: impl FnOnce(BufWriter<&File>) -> Result<()>,
) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{}", temp_name("berth-save")));
    let werr = |source| StorageError::WriteArchive {
        path: path.to_path_buf(),
        source,
    };
    let file = File::create(&tmp).map_err(werr)?;
    let res = write(BufWriter::new(&file)).and_then(|()| file.sync_all().map_err(werr));
    if let Err(e) = res.and_then(|()| fs::rename(&tmp, path).map_err(werr)) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

impl Store {
    /// Write the images `refs` name as an oci-archive at `path` (through a
    /// temp file renamed into place).
    pub fn save_oci_archive(&self, refs: &[&str], path: &Path) -> Result<()> {
        save_atomically(path, |w| self.write_oci_archive(refs, w))
    }

    /// Stream an oci-archive of the images `refs` name to `out`.
    pub fn write_oci_archive(&self, refs: &[&str], out: impl Write) -> Result<()> {
        let images = refs
            .iter()
            .map(|r| self.image(r))
            .collect::<Result<Vec<ImageRecord>>>()?;
        let werr = |source| StorageError::WriteArchive {
            path: "-".into(),
            source,
        };
        let mut tb = tar::Builder::new(out);
        let mut manifests = Vec::new();
        let mut blobs: Vec<Digest> = Vec::new();
        let mut seen = HashSet::new();
        for (img, r) in images.iter().zip(refs) {
            let md = Digest::parse(&img.manifest_digest)?;
            let desc = |name: Option<&str>| {
                let mut d = json!({"mediaType": img.manifest_media_type, "digest": md.as_str(), "size": self.blobs().size(&md).unwrap_or(0)});
                if let Some(n) = name {
                    d["annotations"] = json!({NAME_ANNOTATION: n, REF_ANNOTATION: n});
                }
                d
            };
            // Name the tag the caller asked for; by id, every tag the image has.
            match crate::store::normalize_tag(r)
                .ok()
                .filter(|t| img.tags.contains(t))
            {
                Some(t) => manifests.push(desc(Some(&t))),
                None if img.tags.is_empty() => manifests.push(desc(None)),
                None => manifests.extend(img.tags.iter().map(|t| desc(Some(t)))),
            }
            let all = [img.manifest_digest.as_str(), img.config_digest.as_str()]
                .into_iter()
                .chain(img.layers.iter().map(|l| l.blob_digest.as_str()));
            for b in all {
                if seen.insert(b.to_string()) {
                    blobs.push(Digest::parse(b)?);
                }
            }
        }
        append_dir(&mut tb, "blobs/").map_err(werr)?;
        append_dir(&mut tb, "blobs/sha256/").map_err(werr)?;
        for b in &blobs {
            let f = self.blobs().open(b)?;
            let len = f
                .metadata()
                .map_err(|source| StorageError::ReadBlob {
                    digest: b.to_string(),
                    source,
                })?
                .len();
            let mut h = file_header(len);
            tb.append_data(&mut h, format!("blobs/sha256/{}", b.hex()), f)
                .map_err(werr)?;
        }
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
        append_bytes(&mut tb, "index.json", &to_json(&index, "index.json")?).map_err(werr)?;
        append_bytes(&mut tb, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(werr)?;
        tb.into_inner().and_then(|mut w| w.flush()).map_err(werr)
    }

    /// Load every image of an archive read from `src`: oci-archive
    /// (`index.json`) or docker-archive (`manifest.json`, as `docker save`
    /// and `podman save` write it); `origin` names the input in errors.
    /// Files the archive holds but no image uses are collected afterwards.
    pub fn load_archive(&self, src: impl Read, origin: &Path) -> Result<Vec<ImageRecord>> {
        let loaded = {
            let _lock = self.lock(false)?;
            let contents = self.read_archive(src, origin)?;
            match (&contents.index, &contents.docker_manifest) {
                (Some(index), _) => self.load_oci_index(index, origin)?,
                (None, Some(_)) => self.load_docker(&contents, origin)?,
                (None, None) => {
                    return Err(StorageError::BadArchive {
                        path: origin.to_path_buf(),
                        reason: "neither index.json nor manifest.json: not an image archive".into(),
                    })
                }
            }
        };
        self.gc()?;
        Ok(loaded)
    }

    /// Store every file of the archive as a blob (`blobs/<alg>/<hex>`
    /// verified against its name), remembering other paths for docker
    /// archives.
    fn read_archive(&self, src: impl Read, origin: &Path) -> Result<ArchiveContents> {
        let rerr = |source| StorageError::ReadArchive {
            path: origin.to_path_buf(),
            source,
        };
        let bad = |reason: String| StorageError::BadArchive {
            path: origin.to_path_buf(),
            reason,
        };
        let mut ar = tar::Archive::new(src);
        let mut c = ArchiveContents::default();
        for entry in ar.entries().map_err(rerr)? {
            let mut entry = entry.map_err(rerr)?;
            let raw = entry.path_bytes().into_owned();
            let comps = crate::unpack::components(&raw)
                .map_err(|r| bad(format!("{}: {r}", String::from_utf8_lossy(&raw))))?;
            let path = String::from_utf8_lossy(&comps.join(&b'/')).into_owned();
            let kind = entry.header().entry_type();
            if kind.is_symlink() {
                if let Some(t) = entry.link_name_bytes() {
                    let base = Path::new(&path).parent().unwrap_or(Path::new(""));
                    let joined = base.join(String::from_utf8_lossy(&t).as_ref());
                    c.links.push((path, lexical_normalize(&joined)));
                }
                continue;
            }
            if !kind.is_file() {
                continue;
            }
            let comps: Vec<&[u8]> = comps.iter().map(Vec::as_slice).collect();
            match comps.as_slice() {
                [b"index.json"] | [b"manifest.json"] => {
                    let mut v = Vec::new();
                    entry.read_to_end(&mut v).map_err(rerr)?;
                    if comps[0] == b"index.json" {
                        c.index = Some(v)
                    } else {
                        c.docker_manifest = Some(v)
                    }
                }
                [b"oci-layout"] | [b"repositories"] => {}
                [b"blobs", alg, hex] => {
                    let d = Digest::parse(&format!(
                        "{}:{}",
                        String::from_utf8_lossy(alg),
                        String::from_utf8_lossy(hex)
                    ))?;
                    if !self.blobs().exists(&d) {
                        self.blobs().put(&mut entry, Some(&d))?;
                    }
                    c.files.insert(path, d);
                }
                _ => {
                    let (d, _) = self.blobs().put(&mut entry, None)?;
                    c.files.insert(path, d);
                }
            }
        }
        Ok(c)
    }

    fn load_oci_index(&self, index: &[u8], origin: &Path) -> Result<Vec<ImageRecord>> {
        let index: Value = serde_json::from_slice(index).map_err(|e| StorageError::BadArchive {
            path: origin.to_path_buf(),
            reason: format!("index.json: {e}"),
        })?;
        let mut out = Vec::new();
        for m in index["manifests"].as_array().cloned().unwrap_or_default() {
            let d = self.pick_manifest(&m)?;
            let name = m["annotations"][NAME_ANNOTATION]
                .as_str()
                .or(m["annotations"][REF_ANNOTATION].as_str());
            let tags: Vec<String> = name
                .and_then(|n| crate::store::normalize_tag(n).ok())
                .into_iter()
                .collect();
            if let Some(i) = out
                .iter()
                .position(|r: &ImageRecord| r.manifest_digest == d.as_str())
            {
                for t in &tags {
                    self.db().set_tag(t, &out[i].id)?;
                }
                continue;
            }
            out.push(self.commit_image(&d, &tags)?);
        }
        Ok(out)
    }

    /// An image manifest for descriptor `m`, choosing this host's platform
    /// from an index.
    fn pick_manifest(&self, m: &Value) -> Result<Digest> {
        let d = Digest::parse(m["digest"].as_str().unwrap_or_default())?;
        let mt = m["mediaType"].as_str().unwrap_or_default();
        if mt != OCI_INDEX && mt != DOCKER_LIST {
            return Ok(d);
        }
        let idx = parse_json(&self.blobs().read(&d)?, "index", &d)?;
        let arch = crate::store::host_arch();
        let chosen = idx["manifests"]
            .as_array()
            .and_then(|ms| {
                ms.iter().find(|c| {
                    c["platform"]["architecture"] == arch && c["platform"]["os"] == "linux"
                })
            })
            .ok_or_else(|| StorageError::UnsupportedMediaType {
                what: "index without a manifest for this platform",
                media_type: mt.to_string(),
            })?;
        self.pick_manifest(chosen)
    }
}

/// What reading an archive found.
#[derive(Default)]
pub(crate) struct ArchiveContents {
    pub index: Option<Vec<u8>>,
    pub docker_manifest: Option<Vec<u8>>,
    /// Archive path → the blob holding that file.
    pub files: HashMap<String, Digest>,
    /// Symlinks (path, target resolved against the link's directory).
    pub links: Vec<(String, String)>,
}

impl ArchiveContents {
    /// The blob for `path`, following archive symlinks.
    pub fn file(&self, path: &str) -> Option<&Digest> {
        let mut p = path.trim_start_matches("./").to_string();
        for _ in 0..8 {
            if let Some(d) = self.files.get(&p) {
                return Some(d);
            }
            p = self.links.iter().find(|(l, _)| *l == p)?.1.clone();
        }
        None
    }
}

/// `a/../b/./c` → `b/c`, without touching the filesystem.
fn lexical_normalize(p: &Path) -> String {
    let mut out: Vec<&std::ffi::OsStr> = Vec::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out.iter()
        .map(|c| c.to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

pub(crate) fn file_header(len: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(len);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

pub(crate) fn append_bytes<W: Write>(
    tb: &mut tar::Builder<W>,
    name: &str,
    data: &[u8],
) -> std::io::Result<()> {
    let mut h = file_header(data.len() as u64);
    tb.append_data(&mut h, name, data)
}

pub(crate) fn append_dir<W: Write>(tb: &mut tar::Builder<W>, name: &str) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(0);
    h.set_mode(0o755);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Directory);
    tb.append_data(&mut h, name, std::io::empty())
}
