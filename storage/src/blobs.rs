//! Content-addressed blobs under `blobs/sha256/<hex>`.
//!
//! **Invariant:** a file under `blobs/sha256/` always holds exactly the bytes
//! its name is the digest of: content is written to `tmp/`, hashed while
//! written, fsynced, checked against the expected digest and only then
//! renamed into place (and the directory fsynced). A crash leaves at worst a
//! stray temp file, which `system check` removes.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::digest::{Digest, HashingReader, HashingWriter};
use crate::error::{Result, StorageError};
use crate::util::{fsync_dir, temp_name};

/// The blob directory of a store.
#[derive(Clone, Debug)]
pub struct BlobStore {
    dir: PathBuf,
    tmp: PathBuf,
}

impl BlobStore {
    /// Blobs in `root/blobs/sha256`, temp files in `tmp`.
    pub fn new(root: &Path, tmp: &Path) -> Result<BlobStore> {
        let dir = root.join("blobs/sha256");
        for d in [dir.as_path(), tmp] {
            fs::create_dir_all(d).map_err(|source| StorageError::CreateDir {
                path: d.to_path_buf(),
                source,
            })?;
        }
        Ok(BlobStore {
            dir,
            tmp: tmp.to_path_buf(),
        })
    }

    pub fn path(&self, d: &Digest) -> PathBuf {
        self.dir.join(d.hex())
    }

    pub fn exists(&self, d: &Digest) -> bool {
        self.path(d).is_file()
    }

    pub fn open(&self, d: &Digest) -> Result<File> {
        File::open(self.path(d)).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => StorageError::BlobMissing {
                digest: d.to_string(),
            },
            _ => StorageError::ReadBlob {
                digest: d.to_string(),
                source,
            },
        })
    }

    pub fn read(&self, d: &Digest) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.open(d)?
            .read_to_end(&mut v)
            .map_err(|source| StorageError::ReadBlob {
                digest: d.to_string(),
                source,
            })?;
        Ok(v)
    }

    pub fn size(&self, d: &Digest) -> Result<u64> {
        let m = fs::metadata(self.path(d)).map_err(|source| StorageError::ReadBlob {
            digest: d.to_string(),
            source,
        })?;
        Ok(m.len())
    }

    /// Store `data`, returning its digest.
    pub fn put_bytes(&self, data: &[u8]) -> Result<Digest> {
        self.put(data, None).map(|(d, _)| d)
    }

    /// Stream `src` into the store. With `expected`, the content must hash to
    /// it or nothing is stored. Returns the digest and size.
    pub fn put(&self, mut src: impl Read, expected: Option<&Digest>) -> Result<(Digest, u64)> {
        let mut w = self.writer()?;
        if let Err(e) = io::copy(&mut src, &mut w) {
            let path = w.tmp.clone();
            w.abort();
            return Err(StorageError::WriteBlob { path, source: e });
        }
        w.commit(expected)
    }

    /// A writer for a new blob: bytes go to a temp file and are hashed;
    /// [`BlobWriter::commit`] verifies and renames it into place.
    pub fn writer(&self) -> Result<BlobWriter> {
        let tmp = self.tmp.join(temp_name("blob"));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|source| StorageError::WriteBlob {
                path: tmp.clone(),
                source,
            })?;
        Ok(BlobWriter {
            inner: Some(HashingWriter::new(file)),
            tmp,
            dir: self.dir.clone(),
        })
    }

    /// Re-hash a stored blob; `Ok(false)` when its content no longer matches.
    pub fn verify(&self, d: &Digest) -> Result<bool> {
        let mut r = HashingReader::new(self.open(d)?);
        io::copy(&mut r, &mut io::sink()).map_err(|source| StorageError::ReadBlob {
            digest: d.to_string(),
            source,
        })?;
        Ok(r.finish().0 == *d)
    }

    pub fn remove(&self, d: &Digest) -> Result<()> {
        match fs::remove_file(self.path(d)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(StorageError::WriteBlob {
                path: self.path(d),
                source: e,
            }),
            _ => Ok(()),
        }
    }

    /// Every blob file name; names that are not digests are returned apart.
    pub fn list(&self) -> Result<(Vec<Digest>, Vec<PathBuf>)> {
        let rd = fs::read_dir(&self.dir).map_err(|source| StorageError::Check {
            op: "list blobs",
            path: self.dir.clone(),
            source,
        })?;
        let (mut good, mut bad) = (Vec::new(), Vec::new());
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            match Digest::parse(&format!("sha256:{name}")) {
                Ok(d) => good.push(d),
                Err(_) => bad.push(e.path()),
            }
        }
        Ok((good, bad))
    }
}

/// A blob being written; dropped without [`commit`](Self::commit), its
/// temp file is removed.
pub struct BlobWriter {
    inner: Option<HashingWriter<File>>,
    tmp: PathBuf,
    dir: PathBuf,
}

impl BlobWriter {
    /// Fsync, check against `expected`, and rename into place (a blob
    /// already present is kept as is). Returns the digest and size.
    pub fn commit(mut self, expected: Option<&Digest>) -> Result<(Digest, u64)> {
        let werr = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StorageError::WriteBlob { path, source }
        };
        let Some(w) = self.inner.take() else {
            return Err(StorageError::WriteBlob {
                path: self.tmp.clone(),
                source: io::Error::other("blob writer already finished"),
            });
        };
        let (file, digest, size) = w.finish();
        file.sync_all().map_err(werr(&self.tmp))?;
        drop(file);
        if let Some(exp) = expected {
            if *exp != digest {
                return Err(StorageError::DigestMismatch {
                    expected: exp.to_string(),
                    actual: digest.to_string(),
                });
            }
        }
        let dst = self.dir.join(digest.hex());
        if !dst.is_file() {
            fs::rename(&self.tmp, &dst).map_err(werr(&self.tmp))?;
            fsync_dir(&self.dir).map_err(werr(&self.dir))?;
        }
        Ok((digest, size))
    }

    /// Drop the partial blob.
    pub fn abort(self) {}

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.inner.as_ref().map(HashingWriter::count).unwrap_or(0)
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.inner.as_mut() {
            Some(w) => w.write(buf),
            None => Err(io::Error::other("blob writer already finished")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.as_mut().map_or(Ok(()), |w| w.flush())
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        // After a successful commit the temp name is gone; otherwise this
        // removes the partial download.
        let _ = fs::remove_file(&self.tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_verifies_expected_digest_and_leaves_nothing_on_mismatch() {
        let t = tempfile::tempdir().unwrap();
        let bs = BlobStore::new(t.path(), &t.path().join("tmp")).unwrap();
        let d = bs.put_bytes(b"hello").unwrap();
        assert_eq!(d, Digest::of(b"hello"));
        assert_eq!(bs.read(&d).unwrap(), b"hello");
        let wrong = Digest::of(b"other");
        let err = bs.put(&b"hello!"[..], Some(&wrong)).unwrap_err();
        assert!(matches!(err, StorageError::DigestMismatch { .. }), "{err}");
        assert!(!bs.exists(&wrong));
        assert_eq!(
            fs::read_dir(t.path().join("tmp")).unwrap().count(),
            0,
            "temp file left behind"
        );
        fs::write(bs.path(&d), b"corrupt").unwrap();
        assert!(!bs.verify(&d).unwrap());
    }
}
