//! docker-archive (`docker save` / `podman save` format): `manifest.json`
//! naming a config file and uncompressed layer tars per image. The config
//! is kept byte for byte, so the image id (its digest) survives; the
//! manifest is rebuilt, as Docker itself does.

use std::io::{Read, Write};
use std::path::Path;

use serde_json::{json, Value};

use crate::archive::{append_bytes, file_header, ArchiveContents, OCI_MANIFEST};
use crate::db::ImageRecord;
use crate::digest::Digest;
use crate::error::{Result, StorageError};
use crate::store::{normalize_tag, to_json, Store};

impl Store {
    pub(crate) fn load_docker(
        &self,
        c: &ArchiveContents,
        origin: &Path,
    ) -> Result<Vec<ImageRecord>> {
        let bad = |reason: String| StorageError::BadArchive {
            path: origin.to_path_buf(),
            reason,
        };
        let manifest: Value =
            serde_json::from_slice(c.docker_manifest.as_deref().unwrap_or_default())
                .map_err(|e| bad(format!("manifest.json: {e}")))?;
        let mut out = Vec::new();
        for m in manifest
            .as_array()
            .ok_or_else(|| bad("manifest.json is not an array".into()))?
        {
            let cfg_path = m["Config"].as_str().unwrap_or_default();
            let config = c
                .file(cfg_path)
                .ok_or_else(|| bad(format!("config {cfg_path} missing")))?;
            let mut layers = Vec::new();
            for l in m["Layers"].as_array().cloned().unwrap_or_default() {
                let p = l.as_str().unwrap_or_default();
                let d = c.file(p).ok_or_else(|| bad(format!("layer {p} missing")))?;
                let media_type = self.layer_media_type(d)?;
                layers.push(json!({"mediaType": media_type, "digest": d.as_str(), "size": self.blobs().size(d)?}));
            }
            let oci = json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.as_str(), "size": self.blobs().size(config)?},
                "layers": layers,
            });
            let md = self.blobs().put_bytes(&to_json(&oci, "image manifest")?)?;
            let tags: Vec<String> = m["RepoTags"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|t| normalize_tag(t.as_str()?).ok())
                        .collect()
                })
                .unwrap_or_default();
            out.push(self.commit_image(&md, &tags)?);
        }
        Ok(out)
    }

    /// Write the images `refs` name as a docker-archive at `path` (through
    /// a temp file renamed into place).
    pub fn save_docker_archive(&self, refs: &[&str], path: &Path) -> Result<()> {
        crate::archive::save_atomically(path, |w| self.write_docker_archive(refs, w))
    }

    /// Stream a docker-archive of the images `refs` name: layers are
    /// decompressed to plain tars named by their diff id.
    pub fn write_docker_archive(&self, refs: &[&str], out: impl Write) -> Result<()> {
        let werr = |source| StorageError::WriteArchive {
            path: "-".into(),
            source,
        };
        let mut tb = tar::Builder::new(out);
        let mut manifest = Vec::new();
        let mut written = std::collections::HashSet::new();
        for r in refs {
            let img = self.image(r)?;
            let cd = Digest::parse(&img.config_digest)?;
            let cfg_name = format!("{}.json", cd.hex());
            if written.insert(cfg_name.clone()) {
                append_bytes(&mut tb, &cfg_name, &self.blobs().read(&cd)?).map_err(werr)?;
            }
            let mut layer_names = Vec::new();
            for l in &img.layers {
                let diff = Digest::parse(&l.diff_id)?;
                let name = format!("{}/layer.tar", diff.hex());
                if written.insert(name.clone()) {
                    let blob = Digest::parse(&l.blob_digest)?;
                    let plain = crate::compress::decompress(self.blobs().open(&blob)?)?;
                    let mut h = file_header(l.size);
                    tb.append_data(&mut h, &name, plain.take(l.size))
                        .map_err(werr)?;
                }
                layer_names.push(name);
            }
            let tags = match normalize_tag(r).ok().filter(|t| img.tags.contains(t)) {
                Some(t) => vec![t],
                None => img.tags.clone(),
            };
            manifest.push(json!({"Config": cfg_name, "RepoTags": tags, "Layers": layer_names}));
        }
        append_bytes(
            &mut tb,
            "manifest.json",
            &to_json(&Value::Array(manifest), "manifest.json")?,
        )
        .map_err(werr)?;
        tb.into_inner().and_then(|mut w| w.flush()).map_err(werr)
    }
}
