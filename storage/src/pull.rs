//! `pull` from an OCI distribution registry with oci-client: manifests and
//! indexes (OCI and Docker schema 2), the host platform chosen from an
//! index, blobs already in the store skipped, missing ones downloaded
//! concurrently into verified blobs, then layers unpacked and the image
//! committed. A killed pull leaves only whole, verified blobs (and temp
//! files `check` removes), so the next pull resumes from them.

use std::io::Write;

use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::Client;
use serde_json::Value;

use crate::archive::{DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use crate::db::{ImageRecord, LeaseKind};
use crate::digest::Digest;
use crate::error::{Result, StorageError};
use crate::reference::Reference;
use crate::store::{host_arch, parse_json, Store};
use crate::util::now_unix;

/// How to reach a registry (and, for pulls, which platform to pick).
#[derive(Clone, Debug, Default)]
pub struct RegistryOptions {
    /// Plain HTTP (and so no certificate checks): `--tls-verify=false`.
    pub insecure: bool,
    /// `os/arch[/variant]` to choose from an index (default: this host).
    pub platform: Option<String>,
    /// Basic credentials; `None` reads the Docker `config.json` or goes
    /// anonymous.
    pub credentials: Option<(String, String)>,
}

/// Progress of a pull, for bars or quiet lines.
#[derive(Clone, Debug)]
pub enum PullEvent {
    /// The manifest to pull was found.
    Resolved { manifest: String },
    /// A blob was already in the store: no download.
    BlobPresent { digest: String },
    /// A download started (`size` from the manifest).
    BlobStart { digest: String, size: u64 },
    /// Bytes received so far.
    BlobProgress {
        digest: String,
        done: u64,
        size: u64,
    },
    /// A download finished and was verified.
    BlobDone { digest: String },
    /// Layers are being unpacked.
    Unpacking,
}

const ACCEPT: [&str; 4] = [OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST];

pub(crate) fn reg(
    reference: &Reference,
    op: &'static str,
) -> impl FnOnce(oci_client::errors::OciDistributionError) -> StorageError {
    let reference = reference.to_string();
    move |source| StorageError::Registry {
        reference,
        op,
        source: Box::new(source),
    }
}

impl Store {
    /// Pull `reference` (normalised as Docker does) into the store.
    pub fn pull(
        &self,
        reference: &str,
        opts: &RegistryOptions,
        progress: &dyn Fn(PullEvent),
    ) -> Result<ImageRecord> {
        let r = Reference::parse(reference)?;
        let rt = runtime()?;
        let _lock = self.lock(false)?;
        rt.block_on(self.pull_async(&r, opts, progress))
    }

    async fn pull_async(
        &self,
        r: &Reference,
        opts: &RegistryOptions,
        progress: &dyn Fn(PullEvent),
    ) -> Result<ImageRecord> {
        let (client, auth) = client_for(r, opts);
        let oref = match (&r.digest, &r.tag) {
            (Some(d), _) => {
                oci_client::Reference::with_digest(r.domain.clone(), r.path.clone(), d.clone())
            }
            (None, t) => oci_client::Reference::with_tag(
                r.domain.clone(),
                r.path.clone(),
                t.clone().unwrap_or_else(|| "latest".into()),
            ),
        };
        let (bytes, _) = client
            .pull_manifest_raw(&oref, &auth, &ACCEPT)
            .await
            .map_err(reg(r, "fetch manifest"))?;
        let mut digest = Digest::of(&bytes);
        if let Some(want) = &r.digest {
            if digest.as_str() != want {
                return Err(StorageError::DigestMismatch {
                    expected: want.clone(),
                    actual: digest.to_string(),
                });
            }
        }
        let mut manifest: Value = parse_json(&bytes, "manifest", &digest)?;
        let mut bytes = bytes.to_vec();
        if manifest["manifests"].is_array() {
            let chosen = choose_platform(&manifest, opts.platform.as_deref()).ok_or_else(|| {
                StorageError::PlatformNotFound {
                    reference: r.to_string(),
                    platform: opts
                        .platform
                        .clone()
                        .unwrap_or_else(|| format!("linux/{}", host_arch())),
                }
            })?;
            let cref = oci_client::Reference::with_digest(
                r.domain.clone(),
                r.path.clone(),
                chosen.to_string(),
            );
            let (b, _) = client
                .pull_manifest_raw(&cref, &auth, &ACCEPT)
                .await
                .map_err(reg(r, "fetch platform manifest"))?;
            digest = Digest::of(&b);
            if digest != chosen {
                return Err(StorageError::DigestMismatch {
                    expected: chosen.to_string(),
                    actual: digest.to_string(),
                });
            }
            manifest = parse_json(&b, "manifest", &digest)?;
            bytes = b.to_vec();
        }
        progress(PullEvent::Resolved {
            manifest: digest.to_string(),
        });
        let mut descs = vec![manifest["config"].clone()];
        descs.extend(manifest["layers"].as_array().cloned().unwrap_or_default());
        let mut missing = Vec::new();
        for d in &descs {
            let dg = Digest::parse(d["digest"].as_str().unwrap_or_default())?;
            if self.blobs().exists(&dg) {
                progress(PullEvent::BlobPresent {
                    digest: dg.to_string(),
                });
            } else {
                missing.push((
                    dg,
                    d["mediaType"].as_str().unwrap_or_default().to_string(),
                    d["size"].as_u64().unwrap_or(0),
                ));
            }
        }
        // Blobs fetched so far stay leased for a day, so garbage collection
        // keeps them for a pull that resumes after this one is killed.
        let lease = format!("pull:{r}");
        self.db().lease(&lease, Some(now_unix() + 86_400), &[])?;
        let downloads = missing.iter().map(|(d, mt, size)| {
            self.fetch_blob(&client, &oref, r, d, mt, *size, &lease, progress)
        });
        futures_util::future::try_join_all(downloads).await?;
        self.blobs().put(&bytes[..], Some(&digest))?;
        progress(PullEvent::Unpacking);
        let tags: Vec<String> = r.tagged().into_iter().collect();
        let img = self.commit_image(&digest, &tags)?;
        self.db().release(&lease)?;
        Ok(img)
    }

    #[allow(clippy::too_many_arguments)]
    async fn fetch_blob(
        &self,
        client: &Client,
        oref: &oci_client::Reference,
        r: &Reference,
        digest: &Digest,
        media_type: &str,
        size: u64,
        lease: &str,
        progress: &dyn Fn(PullEvent),
    ) -> Result<()> {
        let desc = OciDescriptor {
            media_type: media_type.to_string(),
            digest: digest.to_string(),
            size: size as i64,
            ..Default::default()
        };
        progress(PullEvent::BlobStart {
            digest: digest.to_string(),
            size,
        });
        let mut stream = client
            .pull_blob_stream(oref, &desc)
            .await
            .map_err(reg(r, "fetch blob"))?;
        let mut w = self.blobs().writer()?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|source| StorageError::Download {
                digest: digest.to_string(),
                source,
            })?;
            w.write_all(&chunk)
                .map_err(|source| StorageError::Download {
                    digest: digest.to_string(),
                    source,
                })?;
            progress(PullEvent::BlobProgress {
                digest: digest.to_string(),
                done: w.written(),
                size,
            });
        }
        w.commit(Some(digest))?;
        self.db()
            .lease_add(lease, LeaseKind::Blob, digest.as_str())?;
        progress(PullEvent::BlobDone {
            digest: digest.to_string(),
        });
        Ok(())
    }
}

/// A client and credentials for the registry of `r`.
pub(crate) fn client_for(r: &Reference, opts: &RegistryOptions) -> (Client, RegistryAuth) {
    // Another caller may have installed it already; either way one is set.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = ClientConfig {
        protocol: if opts.insecure {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        },
        platform_resolver: None,
        ..Default::default()
    };
    let auth = match &opts.credentials {
        Some((u, p)) => RegistryAuth::Basic(u.clone(), p.clone()),
        None => crate::auth::docker_config_auth(&r.domain)
            .map_or(RegistryAuth::Anonymous, |(u, p)| RegistryAuth::Basic(u, p)),
    };
    (Client::new(config), auth)
}

/// A current-thread runtime for one registry operation.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| StorageError::Runtime { source })
}

/// The manifest digest for `platform` (`os/arch[/variant]`, default this
/// host) in an index.
fn choose_platform(index: &Value, platform: Option<&str>) -> Option<Digest> {
    let host = format!("linux/{}", host_arch());
    let want: Vec<&str> = platform.unwrap_or(&host).split('/').collect();
    let (os, arch, variant) = (
        want.first().copied()?,
        want.get(1).copied()?,
        want.get(2).copied(),
    );
    index["manifests"].as_array()?.iter().find_map(|m| {
        let p = &m["platform"];
        let ok =
            p["os"] == os && p["architecture"] == arch && variant.is_none_or(|v| p["variant"] == v);
        ok.then(|| Digest::parse(m["digest"].as_str()?).ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chooses_the_requested_platform() {
        let (a, b) = (Digest::of(b"amd64"), Digest::of(b"arm64"));
        let idx = serde_json::json!({"manifests": [
            {"digest": a.as_str(), "platform": {"os": "linux", "architecture": "amd64"}},
            {"digest": b.as_str(), "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        ]});
        assert_eq!(choose_platform(&idx, Some("linux/arm64")), Some(b.clone()));
        assert_eq!(choose_platform(&idx, Some("linux/arm64/v8")), Some(b));
        assert_eq!(choose_platform(&idx, Some("linux/amd64")), Some(a));
        assert_eq!(choose_platform(&idx, Some("linux/s390x")), None);
    }
}
