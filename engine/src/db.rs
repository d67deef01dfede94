//! Container records in the store's SQLite database (`berth.db`, WAL),
//! in a table of their own. Writes are single statements or `BEGIN
//! IMMEDIATE` transactions, so several `berth` processes can share it; the
//! `UNIQUE` name column makes name allocation race-free.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::{EngineError, Result};
use crate::options::RunOptions;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS containers(
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created INTEGER NOT NULL,
    record TEXT NOT NULL
);
";

/// Everything the engine remembers about a container.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    pub name: String,
    /// The image reference as given, and the resolved image id.
    pub image: String,
    pub image_id: String,
    pub created: i64,
    pub created_at: String,
    pub started_at: Option<String>,
    /// The runtime binary and its `--root`.
    pub runtime: PathBuf,
    pub runtime_root: PathBuf,
    /// The process: `args[0]` and the rest, as in the bundle.
    pub args: Vec<String>,
    pub hostname: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub log_path: PathBuf,
    pub options: RunOptions,
}

pub struct ContainerDb {
    conn: Connection,
    path: PathBuf,
}

impl ContainerDb {
    pub fn open(path: &Path) -> Result<ContainerDb> {
        let err = |source| EngineError::Db {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(60)).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        // NORMAL in WAL mode: a commit is not fsynced, a checkpoint is. The
        // database never tears; a power cut may lose the last container
        // changes, which leaves snapshot and run dirs without a record, and
        // `system check --repair` removes those. (The image store's own
        // connection stays FULL: blobs and leases protect data.)
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        Ok(ContainerDb {
            conn,
            path: path.to_path_buf(),
        })
    }

    fn err(&self) -> impl FnOnce(rusqlite::Error) -> EngineError + '_ {
        move |source| EngineError::Db {
            path: self.path.clone(),
            source,
        }
    }

    /// Insert a new record; fails with `NameInUse` if the name is taken.
    pub fn insert(&self, r: &ContainerRecord) -> Result<()> {
        let json = serde_json::to_string(r).map_err(|source| EngineError::BadRecord {
            id: r.id.clone(),
            source,
        })?;
        match self.conn.execute(
            "INSERT INTO containers(id, name, created, record) VALUES (?1, ?2, ?3, ?4)",
            params![r.id, r.name, r.created, json],
        ) {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(EngineError::NameInUse(r.name.clone()))
            }
            Err(e) => Err(self.err()(e)),
        }
    }

    /// Replace a record (same id and name).
    pub fn update(&self, r: &ContainerRecord) -> Result<()> {
        let json = serde_json::to_string(r).map_err(|source| EngineError::BadRecord {
            id: r.id.clone(),
            source,
        })?;
        self.conn
            .execute(
                "UPDATE containers SET record = ?2 WHERE id = ?1",
                params![r.id, json],
            )
            .map(|_| ())
            .map_err(self.err())
    }

    /// Give a record a new name; fails with `NameInUse` if it is taken.
    pub fn rename(&self, r: &ContainerRecord) -> Result<()> {
        let json = serde_json::to_string(r).map_err(|source| EngineError::BadRecord {
            id: r.id.clone(),
            source,
        })?;
        match self.conn.execute(
            "UPDATE containers SET name = ?2, record = ?3 WHERE id = ?1",
            params![r.id, r.name, json],
        ) {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(EngineError::NameInUse(r.name.clone()))
            }
            Err(e) => Err(self.err()(e)),
        }
    }

    pub fn delete(&self, id: &str) -> Result<bool> {
        self.conn
            .execute("DELETE FROM containers WHERE id = ?1", params![id])
            .map(|n| n > 0)
            .map_err(self.err())
    }

    /// Find by full id, name, or unique id prefix.
    pub fn find(&self, key: &str) -> Result<ContainerRecord> {
        let row: Option<String> = self
            .conn
            .query_row(
                "SELECT record FROM containers WHERE id = ?1 OR name = ?1",
                params![key],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err())?;
        let json = match row {
            Some(j) => j,
            None if !key.is_empty() && key.bytes().all(|b| b.is_ascii_hexdigit()) => {
                let mut st = self
                    .conn
                    .prepare("SELECT record FROM containers WHERE id LIKE ?1 || '%' LIMIT 2")
                    .map_err(self.err())?;
                let rows: Vec<String> = st
                    .query_map(params![key.to_ascii_lowercase()], |r| r.get(0))
                    .map_err(self.err())?
                    .collect::<std::result::Result<_, _>>()
                    .map_err(self.err())?;
                match rows.as_slice() {
                    [one] => one.clone(),
                    _ => return Err(EngineError::NoSuchContainer(key.to_string())),
                }
            }
            None => return Err(EngineError::NoSuchContainer(key.to_string())),
        };
        parse(&json, key)
    }

    /// Every record, newest first.
    pub fn list(&self) -> Result<Vec<ContainerRecord>> {
        self.rows()?.into_iter().map(|(_, r)| r).collect()
    }

    /// Every row's id and record, an unreadable record as its error
    /// (for `system check`).
    pub fn rows(&self) -> Result<Vec<(String, Result<ContainerRecord>)>> {
        let mut st = self
            .conn
            .prepare("SELECT id, record FROM containers ORDER BY created DESC, id")
            .map_err(self.err())?;
        let rows: Vec<(String, String)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(self.err())?
            .collect::<std::result::Result<_, _>>()
            .map_err(self.err())?;
        Ok(rows
            .into_iter()
            .map(|(id, j)| {
                let r = parse(&j, &id);
                (id, r)
            })
            .collect())
    }
}

fn parse(json: &str, id: &str) -> Result<ContainerRecord> {
    serde_json::from_str(json).map_err(|source| EngineError::BadRecord {
        id: id.to_string(),
        source,
    })
}
