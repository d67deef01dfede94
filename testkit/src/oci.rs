//! OCI image archives for tests: an `oci-archive` (a tar of an OCI image
//! layout) of one image, built from uncompressed layer tars and the
//! image config's `config` object, for `berth load`.

use std::fs;
use std::path::Path;

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

fn sha256(data: &[u8]) -> String {
    let h = Sha256::digest(data);
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// Write an oci-archive to `out` with one image tagged `name`: `layers`
/// (uncompressed tars, bottom first) and `config` as the image config's
/// `config` (Cmd, Env, Volumes, Labels, …).
pub fn write_archive(out: &Path, layers: &[Vec<u8>], name: &str, config: Value) {
    let mut blobs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for l in layers {
        let d = format!("sha256:{}", sha256(l));
        descs.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": l.len()}));
        diff_ids.push(d.clone());
        blobs.push((d, l.clone()));
    }
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    let config = serde_json::to_vec(&json!({
        "architecture": arch, "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let cd = format!("sha256:{}", sha256(&config));
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
        "layers": descs,
    }))
    .unwrap();
    let md = format!("sha256:{}", sha256(&manifest));
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md,
            "size": manifest.len(), "annotations": {"org.opencontainers.image.ref.name": name}}],
    }))
    .unwrap();
    blobs.push((cd, config));
    blobs.push((md, manifest));
    let mut b = tar::Builder::new(fs::File::create(out).unwrap());
    let mut file = |path: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, path, data).unwrap();
    };
    file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    file("index.json", &index);
    for (d, data) in &blobs {
        file(&format!("blobs/sha256/{}", &d[7..]), data);
    }
    b.into_inner().unwrap();
}
