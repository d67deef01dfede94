//! Metadata in SQLite (`berth.db`, WAL): images, their layers, tags, the
//! unpacked layer index and leases. Every multi-row change is one
//! `BEGIN IMMEDIATE` transaction, so concurrent `berth` processes see either
//! all of an image or none of it.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::error::{db, Result, StorageError};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS images(
    id TEXT PRIMARY KEY,
    manifest_digest TEXT NOT NULL,
    manifest_media_type TEXT NOT NULL,
    config_digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS image_layers(
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    chain_id TEXT NOT NULL,
    blob_digest TEXT NOT NULL,
    blob_size INTEGER NOT NULL,
    media_type TEXT NOT NULL,
    PRIMARY KEY(image_id, idx)
);
CREATE TABLE IF NOT EXISTS tags(
    name TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS layers(
    chain_id TEXT PRIMARY KEY,
    diff_id TEXT NOT NULL,
    parent TEXT,
    size INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS leases(
    id TEXT PRIMARY KEY,
    created INTEGER NOT NULL,
    expires INTEGER
);
CREATE TABLE IF NOT EXISTS lease_refs(
    lease_id TEXT NOT NULL REFERENCES leases(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    PRIMARY KEY(lease_id, kind, key)
);
";

/// One layer of an image, bottom first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageLayer {
    pub chain_id: String,
    pub diff_id: String,
    pub blob_digest: String,
    pub blob_size: u64,
    pub media_type: String,
    /// Uncompressed size.
    pub size: u64,
}

/// An image as the store records it. `id` is the config digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRecord {
    pub id: String,
    pub manifest_digest: String,
    pub manifest_media_type: String,
    pub config_digest: String,
    pub size: u64,
    pub created: i64,
    pub layers: Vec<ImageLayer>,
    pub tags: Vec<String>,
}

/// What a lease protects from garbage collection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseKind {
    Blob,
    Layer,
    Image,
}

impl LeaseKind {
    fn as_str(self) -> &'static str {
        match self {
            LeaseKind::Blob => "blob",
            LeaseKind::Layer => "layer",
            LeaseKind::Image => "image",
        }
    }
}

/// The metadata database.
pub struct Db {
    conn: Mutex<Connection>,
}

impl Db {
    pub fn open(path: &Path) -> Result<Db> {
        let oerr = |source| StorageError::OpenDb {
            path: path.to_path_buf(),
            source,
        };
        // Opening is serialised between processes: switching a new database
        // to WAL and creating the schema can fail with SQLITE_BUSY without
        // the busy handler ever running (two first opens at once).
        let _init = init_lock(path)?;
        let conn = Connection::open(path).map_err(oerr)?;
        conn.busy_timeout(Duration::from_secs(60)).map_err(oerr)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(oerr)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(oerr)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(oerr)?;
        conn.execute_batch(SCHEMA).map_err(oerr)?;
        Ok(Db {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record a layer as unpacked (idempotent).
    pub fn add_layer(
        &self,
        chain_id: &str,
        diff_id: &str,
        parent: Option<&str>,
        size: u64,
    ) -> Result<()> {
        self.lock()
            .execute(
                "INSERT OR IGNORE INTO layers(chain_id, diff_id, parent, size) VALUES(?1, ?2, ?3, ?4)",
                params![chain_id, diff_id, parent, size as i64],
            )
            .map_err(db("insert layer"))?;
        Ok(())
    }

    /// `(diff_id, size)` of an unpacked layer.
    pub fn layer(&self, chain_id: &str) -> Result<Option<(String, u64)>> {
        self.lock()
            .query_row(
                "SELECT diff_id, size FROM layers WHERE chain_id = ?1",
                [chain_id],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)),
            )
            .optional()
            .map_err(db("read layer"))
    }

    pub fn all_layers(&self) -> Result<Vec<String>> {
        let c = self.lock();
        let mut st = c
            .prepare("SELECT chain_id FROM layers")
            .map_err(db("list layers"))?;
        let rows = st.query_map([], |r| r.get(0)).map_err(db("list layers"))?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
            .map_err(db("list layers"))
    }

    pub fn remove_layer(&self, chain_id: &str) -> Result<()> {
        self.lock()
            .execute("DELETE FROM layers WHERE chain_id = ?1", [chain_id])
            .map_err(db("delete layer"))?;
        Ok(())
    }

    /// Insert (or replace) an image with its layers and add `tags`, moving
    /// each tag from whatever image held it.
    pub fn put_image(&self, img: &ImageRecord) -> Result<()> {
        let mut c = self.lock();
        let tx = c
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db("begin"))?;
        tx.execute(
            "INSERT OR IGNORE INTO images(id, manifest_digest, manifest_media_type, config_digest, size, created)
             VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
            params![img.id, img.manifest_digest, img.manifest_media_type, img.config_digest, img.size as i64, img.created],
        )
        .map_err(db("insert image"))?;
        for (i, l) in img.layers.iter().enumerate() {
            tx.execute(
                "INSERT OR IGNORE INTO image_layers(image_id, idx, chain_id, blob_digest, blob_size, media_type)
                 VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                params![img.id, i as i64, l.chain_id, l.blob_digest, l.blob_size as i64, l.media_type],
            )
            .map_err(db("insert image layer"))?;
        }
        for t in &img.tags {
            tx.execute(
                "INSERT OR REPLACE INTO tags(name, image_id) VALUES(?1, ?2)",
                params![t, img.id],
            )
            .map_err(db("insert tag"))?;
        }
        tx.commit().map_err(db("commit image"))
    }

    pub fn set_tag(&self, name: &str, image_id: &str) -> Result<()> {
        self.lock()
            .execute(
                "INSERT OR REPLACE INTO tags(name, image_id) VALUES(?1, ?2)",
                params![name, image_id],
            )
            .map_err(db("set tag"))?;
        Ok(())
    }

    /// Remove a tag; true if it existed.
    pub fn remove_tag(&self, name: &str) -> Result<bool> {
        let n = self
            .lock()
            .execute("DELETE FROM tags WHERE name = ?1", [name])
            .map_err(db("remove tag"))?;
        Ok(n > 0)
    }

    pub fn tag_target(&self, name: &str) -> Result<Option<String>> {
        self.lock()
            .query_row("SELECT image_id FROM tags WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(db("read tag"))
    }

    /// Image ids starting with `prefix` (a hex id prefix).
    pub fn ids_with_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        let c = self.lock();
        let mut st = c
            .prepare("SELECT id FROM images WHERE substr(id, 8, ?2) = ?1")
            .map_err(db("find image"))?;
        let rows = st
            .query_map(params![prefix, prefix.len() as i64], |r| r.get(0))
            .map_err(db("find image"))?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
            .map_err(db("find image"))
    }

    /// Image ids whose manifest digest is `digest`.
    pub fn ids_by_manifest(&self, digest: &str) -> Result<Vec<String>> {
        let c = self.lock();
        let mut st = c
            .prepare("SELECT id FROM images WHERE manifest_digest = ?1")
            .map_err(db("find image"))?;
        let rows = st
            .query_map([digest], |r| r.get(0))
            .map_err(db("find image"))?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
            .map_err(db("find image"))
    }

    pub fn image(&self, id: &str) -> Result<Option<ImageRecord>> {
        let c = self.lock();
        let head = c
            .query_row(
                "SELECT manifest_digest, manifest_media_type, config_digest, size, created FROM images WHERE id = ?1",
                [id],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, i64>(3)?, r.get::<_, i64>(4)?)),
            )
            .optional()
            .map_err(db("read image"))?;
        let Some((manifest_digest, manifest_media_type, config_digest, size, created)) = head
        else {
            return Ok(None);
        };
        let mut st = c
            .prepare(
                "SELECT il.chain_id, COALESCE(l.diff_id, ''), il.blob_digest, il.blob_size, il.media_type, COALESCE(l.size, 0)
                 FROM image_layers il LEFT JOIN layers l ON l.chain_id = il.chain_id
                 WHERE il.image_id = ?1 ORDER BY il.idx",
            )
            .map_err(db("read image layers"))?;
        let layers = st
            .query_map([id], |r| {
                Ok(ImageLayer {
                    chain_id: r.get(0)?,
                    diff_id: r.get(1)?,
                    blob_digest: r.get(2)?,
                    blob_size: r.get::<_, i64>(3)? as u64,
                    media_type: r.get(4)?,
                    size: r.get::<_, i64>(5)? as u64,
                })
            })
            .map_err(db("read image layers"))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(db("read image layers"))?;
        let mut st = c
            .prepare("SELECT name FROM tags WHERE image_id = ?1 ORDER BY name")
            .map_err(db("read tags"))?;
        let tags = st
            .query_map([id], |r| r.get(0))
            .map_err(db("read tags"))?
            .collect::<rusqlite::Result<Vec<String>>>()
            .map_err(db("read tags"))?;
        Ok(Some(ImageRecord {
            id: id.to_string(),
            manifest_digest,
            manifest_media_type,
            config_digest,
            size: size as u64,
            created,
            layers,
            tags,
        }))
    }

    pub fn image_ids(&self) -> Result<Vec<String>> {
        let c = self.lock();
        let mut st = c
            .prepare("SELECT id FROM images ORDER BY created DESC, id")
            .map_err(db("list images"))?;
        let rows = st.query_map([], |r| r.get(0)).map_err(db("list images"))?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
            .map_err(db("list images"))
    }

    pub fn delete_image(&self, id: &str) -> Result<()> {
        self.lock()
            .execute("DELETE FROM images WHERE id = ?1", [id])
            .map_err(db("delete image"))?;
        Ok(())
    }

    /// Blob digests and chain ids some image refers to.
    pub fn referenced(&self) -> Result<(HashSet<String>, HashSet<String>)> {
        let c = self.lock();
        let q = |sql: &str| -> Result<HashSet<String>> {
            let mut st = c.prepare(sql).map_err(db("collect references"))?;
            let rows = st
                .query_map([], |r| r.get(0))
                .map_err(db("collect references"))?;
            rows.collect::<rusqlite::Result<HashSet<String>>>()
                .map_err(db("collect references"))
        };
        let blobs = q("SELECT manifest_digest FROM images UNION SELECT config_digest FROM images UNION SELECT blob_digest FROM image_layers")?;
        let layers = q("SELECT chain_id FROM image_layers")?;
        Ok((blobs, layers))
    }

    /// Take a lease on resources (extending one with the same id).
    pub fn lease(&self, id: &str, expires: Option<i64>, refs: &[(LeaseKind, &str)]) -> Result<()> {
        let mut c = self.lock();
        let tx = c
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db("begin"))?;
        tx.execute(
            "INSERT INTO leases(id, created, expires) VALUES(?1, ?2, ?3)
             ON CONFLICT(id) DO UPDATE SET expires = excluded.expires",
            params![id, crate::util::now_unix(), expires],
        )
        .map_err(db("create lease"))?;
        for (k, key) in refs {
            tx.execute(
                "INSERT OR IGNORE INTO lease_refs(lease_id, kind, key) VALUES(?1, ?2, ?3)",
                params![id, k.as_str(), key],
            )
            .map_err(db("add lease reference"))?;
        }
        tx.commit().map_err(db("commit lease"))
    }

    /// Add a resource to an existing lease.
    pub fn lease_add(&self, id: &str, kind: LeaseKind, key: &str) -> Result<()> {
        self.lock()
            .execute(
                "INSERT OR IGNORE INTO lease_refs(lease_id, kind, key) VALUES(?1, ?2, ?3)",
                params![id, kind.as_str(), key],
            )
            .map_err(db("add lease reference"))?;
        Ok(())
    }

    pub fn release(&self, id: &str) -> Result<()> {
        self.lock()
            .execute("DELETE FROM leases WHERE id = ?1", [id])
            .map_err(db("release lease"))?;
        Ok(())
    }

    /// Remove leases whose expiry has passed.
    pub fn expire_leases(&self, now: i64) -> Result<usize> {
        self.lock()
            .execute(
                "DELETE FROM leases WHERE expires IS NOT NULL AND expires < ?1",
                [now],
            )
            .map_err(db("expire leases"))
    }

    /// Keys of `kind` held by any lease, with the lease id.
    pub fn leased(&self, kind: LeaseKind) -> Result<Vec<(String, String)>> {
        let c = self.lock();
        let mut st = c
            .prepare("SELECT key, lease_id FROM lease_refs WHERE kind = ?1")
            .map_err(db("read leases"))?;
        let rows = st
            .query_map([kind.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(db("read leases"))?;
        rows.collect::<rusqlite::Result<Vec<(String, String)>>>()
            .map_err(db("read leases"))
    }

    /// Tags pointing at no image.
    pub fn dangling_tags(&self) -> Result<Vec<String>> {
        let c = self.lock();
        let mut st = c
            .prepare("SELECT name FROM tags WHERE image_id NOT IN (SELECT id FROM images)")
            .map_err(db("check tags"))?;
        let rows = st.query_map([], |r| r.get(0)).map_err(db("check tags"))?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
            .map_err(db("check tags"))
    }

    /// SQLite's own consistency check.
    pub fn integrity_check(&self) -> Result<String> {
        self.lock()
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(db("integrity check"))
    }
}

/// An exclusive `flock` on `<db>.init-lock`, held while a connection is set
/// up (released on drop).
fn init_lock(path: &Path) -> Result<nix::fcntl::Flock<std::fs::File>> {
    let lock_path = path.with_extension("db.init-lock");
    let ioerr = |source| StorageError::InitLock {
        path: lock_path.clone(),
        source,
    };
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(ioerr)?;
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| ioerr(std::io::Error::from(e)))
}
