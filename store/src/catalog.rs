//! Tables `datasets` and `dataset_versions`: the catalog (SYS Art. 12). The mediator writes
//! a version's files and records it here in the transaction that moves them into place.

use std::path::PathBuf;

use rusqlite::{OptionalExtension, params};
use sandbox_policies::{ColumnType, Policy};
use serde::Serialize;

use crate::{Conn, DomainError, Result};

/// File name of the data inside a version folder.
pub const DATA_FILE: &str = "data.parquet";

/// A registered dataset version.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct DatasetVersion {
    /// Dataset name (as in SQL).
    pub name: String,
    /// Version, from 1.
    pub version: i64,
    /// The policy it was registered with.
    pub policy: Policy,
    /// Column names and types.
    pub schema: Vec<(String, ColumnType)>,
    /// Number of rows.
    pub row_count: i64,
    /// Most rows any one privacy unit has (1 under row privacy).
    pub max_unit_rows: i64,
    /// Rows of the source left out at ingest because their privacy unit was empty.
    pub rows_dropped: i64,
    /// Rows the per-unit bound keeps (each unit's first k rows), when recorded.
    pub bounded_rows: Option<i64>,
    /// Bounded columns (without desensitization) whose every value lies within the
    /// policy's bounds: clamping them changes nothing.
    pub within_bounds: Vec<String>,
    /// SHA-256 of the stored Parquet file.
    pub content_sha256: String,
    /// File name of the source.
    pub source_name: String,
    /// Provider principal who registered it.
    pub registered_by: String,
    /// When the domain obtained it (SYS Art. 41).
    pub obtained_at: String,
    /// Folder holding the Parquet file.
    #[serde(skip)]
    #[schemars(skip)]
    pub path: PathBuf,
}

impl DatasetVersion {
    /// The Parquet file of this version.
    pub fn data_file(&self) -> PathBuf {
        self.path.join(DATA_FILE)
    }
}

/// A version to record, as ingest measured it.
#[derive(Debug, Clone)]
pub struct NewVersion<'a> {
    /// Dataset name.
    pub name: &'a str,
    /// The policy's text, as registered.
    pub policy_toml: &'a str,
    /// Column names and types.
    pub schema: &'a [(String, ColumnType)],
    /// Rows stored.
    pub rows: i64,
    /// Most rows of one unit.
    pub max_unit_rows: i64,
    /// SHA-256 of the stored file.
    pub sha256: &'a str,
    /// The source's file name.
    pub source_name: &'a str,
    /// The provider registering it.
    pub registered_by: &'a str,
    /// Rows left out for an empty unit.
    pub rows_dropped: i64,
    /// Rows the per-unit bound keeps.
    pub bounded_rows: i64,
    /// Bounded columns within their bounds.
    pub within_bounds: &'a [String],
}

/// Records a new version of a dataset (the first, or the next) and makes it current.
/// Returns its number.
pub fn record_version(conn: &Conn, v: &NewVersion<'_>) -> Result<i64> {
    let current = current_version(conn, v.name)?;
    let version = current.map_or(1, |c| c + 1);
    let now = crate::now();
    if current.is_some() {
        conn.execute(
            "UPDATE datasets SET current_version = ?2 WHERE name = ?1",
            params![v.name, version],
        )?;
    } else {
        conn.execute(
            "INSERT INTO datasets (name, current_version, created_at) VALUES (?1, ?2, ?3)",
            params![v.name, version, now],
        )?;
    }
    conn.execute(
        "INSERT INTO dataset_versions (dataset, version, policy_toml, schema_json, row_count,
             max_unit_rows, content_sha256, source_name, registered_by, obtained_at,
             rows_dropped, bounded_rows, within_bounds)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            v.name,
            version,
            v.policy_toml,
            serde_json::to_string(v.schema)?,
            v.rows,
            v.max_unit_rows,
            v.sha256,
            v.source_name,
            v.registered_by,
            now,
            v.rows_dropped,
            v.bounded_rows,
            serde_json::to_string(v.within_bounds)?
        ],
    )?;
    Ok(version)
}

/// The current version number of a dataset, if it is registered.
pub fn current_version(conn: &Conn, name: &str) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT current_version FROM datasets WHERE name = ?1")?
        .query_row(params![name], |r| r.get(0))
        .optional()?)
}

/// One version of a dataset.
pub fn get_version(conn: &Conn, name: &str, version: i64) -> Result<DatasetVersion> {
    let row = conn
        .query_row(
            "SELECT policy_toml, schema_json, row_count, max_unit_rows, content_sha256,
                    source_name, registered_by, obtained_at, rows_dropped, bounded_rows,
                    within_bounds
             FROM dataset_versions WHERE dataset = ?1 AND version = ?2",
            params![name, version],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, String>(7)?,
                    r.get::<_, i64>(8)?,
                    r.get::<_, Option<i64>>(9)?,
                    r.get::<_, String>(10)?,
                ))
            },
        )
        .optional()?
        .ok_or_else(|| DomainError::NotFound(format!("dataset `{name}` version {version}")))?;
    let (
        policy_toml,
        schema_json,
        row_count,
        max_unit_rows,
        sha,
        source_name,
        by,
        at,
        dropped,
        bounded,
        within,
    ) = row;
    Ok(DatasetVersion {
        name: name.to_string(),
        version,
        policy: Policy::from_toml_str(&policy_toml).map_err(DomainError::from)?,
        schema: serde_json::from_str(&schema_json)?,
        row_count,
        max_unit_rows,
        rows_dropped: dropped,
        bounded_rows: bounded,
        within_bounds: serde_json::from_str(&within)?,
        content_sha256: sha,
        source_name,
        registered_by: by,
        obtained_at: at,
        path: conn.layout().dataset_version(name, version),
    })
}

/// The current version of a dataset.
pub fn get(conn: &Conn, name: &str) -> Result<DatasetVersion> {
    let version = current_version(conn, name)?
        .ok_or_else(|| DomainError::NotFound(format!("dataset `{name}`")))?;
    get_version(conn, name, version)
}

/// The current version of every dataset, by name.
pub fn list(conn: &Conn) -> Result<Vec<DatasetVersion>> {
    let names: Vec<String> = conn
        .prepare("SELECT name FROM datasets ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<std::result::Result<_, _>>()?;
    names.iter().map(|n| get(conn, n)).collect()
}

/// The policy text a version was registered with.
pub fn policy_toml(conn: &Conn, name: &str, version: i64) -> Result<String> {
    Ok(conn.query_row(
        "SELECT policy_toml FROM dataset_versions WHERE dataset = ?1 AND version = ?2",
        params![name, version],
        |r| r.get(0),
    )?)
}

/// Whether `provider` registered any version of `dataset`.
pub fn registered_by(conn: &Conn, dataset: &str, provider: &str) -> Result<bool> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM dataset_versions WHERE dataset = ?1 AND registered_by = ?2",
        )?
        .query_row(params![dataset, provider], |r| r.get(0))?;
    Ok(n > 0)
}
