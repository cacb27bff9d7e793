//! The data directory and its SQLite metadata store.
//!
//! ```text
//! <data-dir>/sandbox.db                SQLite: catalog, policies, scenarios, principals,
//!                                      jobs, queries, ledger, outputs, reviews, products,
//!                                      audit events
//! <data-dir>/domain/<dataset>/<v>/     Parquet files of a dataset version
//! <data-dir>/modules/<sha256>.wasm     submitted modules
//! <data-dir>/staging/<job-id>/         candidate outputs
//! <data-dir>/products/<product-id>/    released files, manifest.json, manifest.sig
//! <data-dir>/keys/domain.ed25519       the domain's signing key
//! ```

mod schema;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::{Error, Result};

pub use schema::SCHEMA_VERSION;

/// File name of the metadata database inside a data directory.
pub const DB_FILE: &str = "sandbox.db";

/// Paths of a data directory.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The layout rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Layout { root: root.into() }
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The SQLite file.
    pub fn db(&self) -> PathBuf {
        self.root.join(DB_FILE)
    }

    /// Folder of all dataset versions.
    pub fn domain(&self) -> PathBuf {
        self.root.join("domain")
    }

    /// Folder of one dataset version.
    pub fn dataset_version(&self, dataset: &str, version: i64) -> PathBuf {
        self.domain().join(dataset).join(version.to_string())
    }

    /// Folder of stored modules.
    pub fn modules(&self) -> PathBuf {
        self.root.join("modules")
    }

    /// Folder of staged outputs.
    pub fn staging(&self) -> PathBuf {
        self.root.join("staging")
    }

    /// Folder of released products.
    pub fn products(&self) -> PathBuf {
        self.root.join("products")
    }

    /// Folder of keys.
    pub fn keys(&self) -> PathBuf {
        self.root.join("keys")
    }

    /// Every folder the layout needs.
    pub fn folders(&self) -> Vec<PathBuf> {
        vec![
            self.domain(),
            self.modules(),
            self.staging(),
            self.products(),
            self.keys(),
        ]
    }
}

/// Opens a connection to the metadata store with the settings every caller needs.
pub fn connect(layout: &Layout) -> Result<Connection> {
    let path = layout.db();
    if !path.exists() {
        return Err(Error::NotFound(format!(
            "no Sandbox data directory at {} (run `sandbox init {}`)",
            layout.root().display(),
            layout.root().display()
        )));
    }
    let conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    configure(&conn)?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(Error::Conflict(format!(
            "metadata schema version {version} is newer than this build's {SCHEMA_VERSION}"
        )));
    }
    if version < SCHEMA_VERSION {
        // Forward migrations, each in its own transaction.
        schema::migrate(&conn)?;
    }
    Ok(conn)
}

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// Creates the database at `layout` and applies the migrations.
pub fn create(layout: &Layout) -> Result<Connection> {
    let conn = Connection::open(layout.db())?;
    configure(&conn)?;
    schema::migrate(&conn)?;
    Ok(conn)
}

/// Now, as RFC 3339 UTC text with microseconds (sortable).
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
