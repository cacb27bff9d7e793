//! Tables `datasets` and `dataset_versions`: the catalog (SYS Art. 12). The mediator writes
//! a version's files and records it here in the transaction that moves them into place.

use std::path::PathBuf;

use crate::db::{OptionalExt, args};
use sandbox_policies::{ColumnType, Policy};
use serde::Serialize;

use crate::{Conn, DomainError, Result};

/// File name of the data inside a version folder (its first file, the only one of a
/// version of up to [`FILE_ROWS`] rows).
pub const DATA_FILE: &str = "data.parquet";

/// Rows per data file of a version ingest writes by default (64 row groups of 128 Ki
/// rows): a larger version is several files, which a scan reads side by side and which a
/// cluster's executors fetch and decode independently.
pub const FILE_ROWS: usize = 8 * 1024 * 1024;

/// File name of a version's data file number `part` (from 0): [`DATA_FILE`], then
/// `data-1.parquet`, `data-2.parquet`, ...
pub fn data_file_name(part: u32) -> String {
    match part {
        0 => DATA_FILE.to_string(),
        n => format!("data-{n}.parquet"),
    }
}

/// Which data file of a version a file name is ([`data_file_name`]'s inverse); any other
/// name (a file written beside the data under the version's key) counts as the first.
pub fn data_file_part(file_name: &str) -> u32 {
    file_name
        .strip_prefix("data-")
        .and_then(|rest| rest.strip_suffix(".parquet"))
        .filter(|n| !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

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
    /// The domain's content hash (SHA-256, or SM3 in a `gm` domain) of the stored Parquet
    /// files, one after the other.
    pub content_sha256: String,
    /// How many Parquet files hold the version's rows.
    pub data_files: u32,
    /// File name of the source.
    pub source_name: String,
    /// Provider principal who registered it.
    pub registered_by: String,
    /// When the domain obtained it (SYS Art. 41).
    pub obtained_at: String,
    /// What ingest found in the source and did about it.
    pub report: Option<IngestReport>,
    /// When the dataset was retired, by whom and why (refused for new scenarios).
    pub retired: Option<Retired>,
    /// Its authorized-operation status (SYS Art. 12): the approved scenarios that use it
    /// (filled by the catalog's readers).
    #[serde(default)]
    pub authorized_scenarios: Vec<String>,
    /// The format of its source (`csv`, `parquet`).
    #[serde(default)]
    pub source_format: String,
    /// Folder holding the Parquet files.
    #[serde(skip)]
    #[schemars(skip)]
    pub path: PathBuf,
}

impl DatasetVersion {
    /// The Parquet files of this version, in order.
    pub fn data_files(&self) -> Vec<PathBuf> {
        (0..self.data_files.max(1))
            .map(|part| self.path.join(data_file_name(part)))
            .collect()
    }
}

/// What ingest found in a source and what it did about it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct IngestReport {
    /// Rows read from the source.
    pub rows_read: i64,
    /// Rows stored.
    pub rows_stored: i64,
    /// What the policy said to do with values outside bounds or categories: `keep`
    /// (stored; every query clamps them), `drop` (the row is left out, counted) or
    /// `refuse`.
    pub out_of_range: String,
    /// Rows left out for a value outside bounds or categories.
    pub rows_dropped_out_of_range: i64,
    /// Rows left out because their privacy unit was empty.
    pub rows_without_unit: i64,
    /// Distinct privacy units.
    pub units: Option<i64>,
    /// Units with more rows than `max_rows_per_unit` (queries read only their first k).
    pub units_over_max_rows: i64,
    /// Rows beyond `max_rows_per_unit` of their unit.
    pub rows_over_max_rows: i64,
    /// Per column, what was found (columns with nothing to report are left out).
    pub columns: Vec<ColumnReport>,
    /// Columns of the source not stored: no query can ever see them (access `none`).
    #[serde(default)]
    pub columns_not_stored: Vec<String>,
    /// Columns stored desensitized, as every query sees them (`store_desensitized`).
    #[serde(default)]
    pub columns_stored_desensitized: Vec<String>,
}

/// What ingest found in one column.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct ColumnReport {
    /// The column.
    pub name: String,
    /// NULL values.
    pub nulls: i64,
    /// Values below the policy's lower bound.
    pub below_bounds: i64,
    /// Values above the upper bound (or not a number).
    pub above_bounds: i64,
    /// Values outside the declared categories.
    pub outside_categories: i64,
}

/// A dataset's retirement.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Retired {
    /// When.
    pub at: String,
    /// Who.
    pub by: String,
    /// Why.
    pub reason: String,
}

/// A version to record, as ingest measured it.
#[derive(Debug, Clone)]
pub struct NewVersion<'a> {
    /// Dataset name.
    pub name: &'a str,
    /// The version it is written as (the next one when the writing began): refused if
    /// another registration took that number meanwhile.
    pub version: i64,
    /// The policy's text, as registered.
    pub policy_toml: &'a str,
    /// Column names and types.
    pub schema: &'a [(String, ColumnType)],
    /// Rows stored.
    pub rows: i64,
    /// Most rows of one unit.
    pub max_unit_rows: i64,
    /// Content hash of the stored files.
    pub sha256: &'a str,
    /// How many data files it has.
    pub data_files: u32,
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
    /// What ingest found.
    pub report: &'a IngestReport,
}

/// Records a new version of a dataset (the first, or the next) and makes it current.
/// Returns its number.
pub fn record_version(conn: &Conn, v: &NewVersion<'_>) -> Result<i64> {
    let current = current_version(conn, v.name)?;
    let version = current.map_or(1, |c| c + 1);
    if version != v.version {
        return Err(DomainError::Conflict(format!(
            "dataset `{}` got version {} while this one was being written as version {}: register it again",
            v.name,
            version - 1,
            v.version
        ))
        .into());
    }
    let now = crate::now();
    if current.is_some() {
        conn.execute(
            "UPDATE datasets SET current_version = ?2 WHERE name = ?1",
            args![v.name, version],
        )?;
    } else {
        conn.execute(
            "INSERT INTO datasets (name, current_version, created_at) VALUES (?1, ?2, ?3)",
            args![v.name, version, now],
        )?;
    }
    conn.execute(
        "INSERT INTO dataset_versions (dataset, version, policy_toml, schema_json, row_count,
             max_unit_rows, content_sha256, source_name, registered_by, obtained_at,
             rows_dropped, bounded_rows, within_bounds, report_json, data_files)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        args![
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
            serde_json::to_string(v.within_bounds)?,
            serde_json::to_string(v.report)?,
            v.data_files
        ],
    )?;
    Ok(version)
}

/// The current version number of a dataset, if it is registered.
pub fn current_version(conn: &Conn, name: &str) -> Result<Option<i64>> {
    conn.query_row(
        "SELECT current_version FROM datasets WHERE name = ?1",
        args![name],
        |r| r.get(0),
    )
    .optional()
}

/// One version of a dataset.
pub fn get_version(conn: &Conn, name: &str, version: i64) -> Result<DatasetVersion> {
    let row = conn
        .query_row(
            "SELECT policy_toml, schema_json, row_count, max_unit_rows, content_sha256,
                    source_name, registered_by, obtained_at, rows_dropped, bounded_rows,
                    within_bounds, report_json, data_files
             FROM dataset_versions WHERE dataset = ?1 AND version = ?2",
            args![name, version],
            |r| {
                Ok((
                    r.get::<String>(0)?,
                    r.get::<String>(1)?,
                    r.get::<i64>(2)?,
                    r.get::<i64>(3)?,
                    r.get::<String>(4)?,
                    r.get::<String>(5)?,
                    r.get::<String>(6)?,
                    r.get::<String>(7)?,
                    r.get::<i64>(8)?,
                    r.get::<Option<i64>>(9)?,
                    r.get::<String>(10)?,
                    r.get::<Option<String>>(11)?,
                    r.get::<u32>(12)?,
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
        report,
        data_files,
    ) = row;
    let source_format = std::path::Path::new(&source_name)
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
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
        data_files,
        source_name,
        registered_by: by,
        obtained_at: at,
        report: report.and_then(|r| serde_json::from_str(&r).ok()),
        retired: retired(conn, name)?,
        authorized_scenarios: Vec::new(),
        source_format,
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
    let names: Vec<String> =
        conn.rows("SELECT name FROM datasets ORDER BY name", args![], |r| {
            r.get(0)
        })?;
    names.iter().map(|n| get(conn, n)).collect()
}

/// A dataset's retirement, if it was retired.
pub fn retired(conn: &Conn, name: &str) -> Result<Option<Retired>> {
    conn.query_row(
        "SELECT retired_at, retired_by, retire_reason FROM datasets
             WHERE name = ?1 AND retired_at IS NOT NULL",
        args![name],
        |r| {
            Ok(Retired {
                at: r.get(0)?,
                by: r.get(1)?,
                reason: r.get(2)?,
            })
        },
    )
    .optional()
}

/// Retires a dataset; whether it was in use (not retired already).
pub fn retire(conn: &Conn, name: &str, by: &str, reason: &str) -> Result<bool> {
    let n = conn.execute(
        "UPDATE datasets SET retired_at = ?2, retired_by = ?3, retire_reason = ?4
         WHERE name = ?1 AND retired_at IS NULL",
        args![name, crate::now(), by, reason],
    )?;
    Ok(n > 0)
}

/// The policy text a version was registered with.
pub fn policy_toml(conn: &Conn, name: &str, version: i64) -> Result<String> {
    conn.query_row(
        "SELECT policy_toml FROM dataset_versions WHERE dataset = ?1 AND version = ?2",
        args![name, version],
        |r| r.get(0),
    )
}

/// Whether `provider` registered any version of `dataset`.
pub fn registered_by(conn: &Conn, dataset: &str, provider: &str) -> Result<bool> {
    let n: i64 = conn.query_row(
        "SELECT COUNT(*) FROM dataset_versions WHERE dataset = ?1 AND registered_by = ?2",
        args![dataset, provider],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A data file's name says which part it is, and nothing else is taken for a later part
    /// (a file beside the data counts as the first, the one whose AAD names no part).
    #[test]
    fn data_file_names_and_parts_are_inverse() {
        for part in [0, 1, 2, 9, 10, 4_000_000] {
            assert_eq!(data_file_part(&data_file_name(part)), part);
        }
        assert_eq!(data_file_name(0), DATA_FILE);
        for other in [
            "aside.parquet",
            "data.overflow.parquet",
            "data-0.parquet",
            "data-01.parquet",
            "data--1.parquet",
            "data-1.parquet.tmp",
            "data-x.parquet",
            "data-.parquet",
            "data-99999999999.parquet",
        ] {
            assert_eq!(data_file_part(other), 0, "{other}");
        }
    }
}
