//! `push`: an image's blobs (skipping those the registry has) streamed
//! from the store, then its manifest byte for byte, so the digest the
//! registry serves is the digest the store holds.

use std::fs::File;
use std::io::Read;

use oci_client::errors::OciDistributionError;

use crate::digest::Digest;
use crate::error::{Result, StorageError};
use crate::pull::{client_for, reg, runtime, PullEvent, RegistryOptions};
use crate::reference::Reference;
use crate::store::Store;

impl Store {
    /// Push the image `image` names to `destination` (default: `image`
    /// itself, which must then name a registry). Returns the manifest
    /// digest.
    pub fn push(
        &self,
        image: &str,
        destination: Option<&str>,
        opts: &RegistryOptions,
        progress: &dyn Fn(PullEvent),
    ) -> Result<Digest> {
        let img = self.image(image)?;
        let r = Reference::parse(destination.unwrap_or(image))?;
        let rt = runtime()?;
        rt.block_on(async {
            let (client, auth) = client_for(&r, opts);
            let oref = oci_client::Reference::with_tag(
                r.domain.clone(),
                r.path.clone(),
                r.tag.clone().unwrap_or_else(|| "latest".into()),
            );
            client
                .auth(&oref, &auth, oci_client::RegistryOperation::Push)
                .await
                .map_err(reg(&r, "authenticate"))?;
            let blobs = img
                .layers
                .iter()
                .map(|l| l.blob_digest.as_str())
                .chain([img.config_digest.as_str()]);
            for b in blobs {
                let d = Digest::parse(b)?;
                if client
                    .blob_exists(&oref, d.as_str())
                    .await
                    .map_err(reg(&r, "check blob"))?
                {
                    progress(PullEvent::BlobPresent {
                        digest: d.to_string(),
                    });
                    continue;
                }
                let size = self.blobs().size(&d)?;
                progress(PullEvent::BlobStart {
                    digest: d.to_string(),
                    size,
                });
                let stream = file_stream(self.blobs().open(&d)?);
                client
                    .push_blob_stream(&oref, stream, d.as_str(), Some(size))
                    .await
                    .map_err(reg(&r, "push blob"))?;
                progress(PullEvent::BlobDone {
                    digest: d.to_string(),
                });
            }
            let md = Digest::parse(&img.manifest_digest)?;
            let body = self.blobs().read(&md)?;
            let ct = http::HeaderValue::from_str(&img.manifest_media_type).map_err(|_| {
                StorageError::UnsupportedMediaType {
                    what: "manifest",
                    media_type: img.manifest_media_type.clone(),
                }
            })?;
            client
                .push_manifest_raw(&oref, body, ct)
                .await
                .map_err(reg(&r, "push manifest"))?;
            Ok(md)
        })
    }
}

/// Check that `registry` answers and, where it hands out tokens, that it
/// accepts the credentials (a registry using plain HTTP Basic checks them
/// only on the first real request).
pub fn verify_login(registry: &str, opts: &RegistryOptions) -> Result<()> {
    let r = Reference::parse(&format!("{registry}/berth/login-check"))?;
    let (client, auth) = client_for(&r, opts);
    let oref = oci_client::Reference::with_tag(r.domain.clone(), r.path.clone(), "latest".into());
    runtime()?
        .block_on(client.auth(&oref, &auth, oci_client::RegistryOperation::Pull))
        .map_err(reg(&r, "log in"))?;
    Ok(())
}

/// A blob file as a stream of 1 MiB chunks.
fn file_stream(
    f: File,
) -> impl futures_util::Stream<Item = std::result::Result<bytes::Bytes, OciDistributionError>>
       + Send
       + 'static {
    futures_util::stream::unfold(Some(f), |state| async move {
        let mut f = state?;
        let mut buf = vec![0u8; 1 << 20];
        match f.read(&mut buf) {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(bytes::Bytes::from(buf)), Some(f)))
            }
            Err(e) => Some((Err(OciDistributionError::IoError(e)), None)),
        }
    })
}
