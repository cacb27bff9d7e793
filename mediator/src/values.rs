//! Hashed sets of rare raw values, built at ingest, against which outputs are checked.
//!
//! For every column at or above the policy's `disclosure.raw_value_level` (except the
//! privacy unit, which the mediator only ever reads as a keyed pseudonym), ingest keeps the
//! values held by fewer than `min_group_size` units (by rows when there is no unit): a
//! value many people share discloses nobody, a rare one may. Each value is written in its
//! canonical text form ([`canonical_cells`]), hashed with HMAC-SHA256 under a key derived
//! from the domain secret, truncated to 64 bits, sorted. The raw values themselves are not
//! kept, and without the domain secret the hashes cannot be tested against guesses.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float32Type, Float64Type};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::SessionConfig;
use sandbox_core::Secret;
use sandbox_policies::Policy;
use serde::{Deserialize, Serialize};

use crate::{DomainError as Error, Result};

/// Folder of the value sets inside a dataset version's folder.
pub const VALUES_DIR: &str = "values";
const INDEX_FILE: &str = "index.json";

/// One column's set, as listed in the index.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetInfo {
    /// Column name.
    pub column: String,
    /// File name inside [`VALUES_DIR`].
    pub file: String,
    /// Number of hashed values.
    pub values: usize,
}

/// A loaded value set.
#[derive(Debug, Clone)]
pub struct ValueSet {
    /// Dataset name.
    pub dataset: String,
    /// Column name.
    pub column: String,
    hashes: Vec<u64>,
}

impl ValueSet {
    /// A set of the given canonical values (for checks against values known otherwise).
    pub fn of(dataset: &str, column: &str, hasher: &ValueHasher, values: &[&str]) -> ValueSet {
        let mut hashes: Vec<u64> = values.iter().map(|v| hasher.hash(v)).collect();
        hashes.sort_unstable();
        hashes.dedup();
        ValueSet {
            dataset: dataset.to_string(),
            column: column.to_string(),
            hashes,
        }
    }

    /// Whether the canonical text `value` is in the set.
    pub fn contains(&self, hasher: &ValueHasher, value: &str) -> bool {
        self.hashes.binary_search(&hasher.hash(value)).is_ok()
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }
}

/// The keyed hash of value sets.
#[derive(Clone, Debug)]
pub struct ValueHasher {
    mac: sandbox_core::suite::Mac,
}

impl ValueHasher {
    /// A hasher keyed from the domain secret (its own key, not the pseudonym key), with
    /// the secret's suite's MAC.
    pub fn new(secret: &Secret) -> Result<Self> {
        Ok(ValueHasher {
            mac: secret.derive("sandbox raw-value sets v1").keyed(),
        })
    }

    /// The 64-bit keyed hash of a canonical value.
    pub fn hash(&self, value: &str) -> u64 {
        let bytes = self.mac.of(value.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&bytes[..8]);
        u64::from_le_bytes(first)
    }
}

/// The canonical text of a number: integers without a fraction, others in the shortest
/// form that reads back to the same value.
pub fn canonical_number(x: f64) -> Option<String> {
    if !x.is_finite() {
        return None;
    }
    if x.fract() == 0.0 && x.abs() < 1e15 {
        Some(format!("{}", x as i64))
    } else {
        Some(format!("{x}"))
    }
}

/// The canonical text of every cell of an array (`None` for nulls): numbers by
/// [`canonical_number`], text trimmed, other types as Arrow displays them.
pub fn canonical_cells(array: &ArrayRef) -> Result<Vec<Option<String>>> {
    let n = array.len();
    let mut out = Vec::with_capacity(n);
    match array.data_type() {
        DataType::Float64 => {
            let a = array.as_primitive::<Float64Type>();
            for i in 0..n {
                out.push(if a.is_null(i) {
                    None
                } else {
                    canonical_number(a.value(i))
                });
            }
        }
        DataType::Float32 => {
            let a = array.as_primitive::<Float32Type>();
            for i in 0..n {
                out.push(if a.is_null(i) {
                    None
                } else {
                    canonical_number(f64::from(a.value(i)))
                });
            }
        }
        _ => {
            let fmt = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default())?;
            for i in 0..n {
                out.push(if array.is_null(i) {
                    None
                } else {
                    Some(fmt.value(i).to_string().trim().to_string())
                });
            }
        }
    }
    Ok(out)
}

/// File beside a freshly written version's data, for the time of building its value sets:
/// the raw values of the set columns the data file does not hold raw ([`aside_columns`]),
/// with the raw privacy unit, encrypted like the data file. Removed before the version's
/// folder moves into place.
pub const ASIDE_FILE: &str = "aside.parquet";

/// The columns that get a value set: at or above the policy's `raw_value_level`, the
/// privacy unit excepted.
fn set_columns(policy: &Policy) -> Vec<&str> {
    let level = policy.disclosure.raw_value_level;
    let unit = policy.dataset.privacy_unit.as_deref();
    policy
        .columns
        .iter()
        .filter(|c| c.level.get() >= level && Some(c.name.as_str()) != unit)
        .map(|c| c.name.as_str())
        .collect()
}

/// Whether a set column's set is built from the data file: the column and the unit that
/// counts its holders are both stored raw there ([`Policy::stored`]).
fn from_data_file(policy: &Policy, column: &str) -> bool {
    use sandbox_policies::Stored;
    policy.stored(column) == Stored::Raw
        && policy
            .dataset
            .privacy_unit
            .as_deref()
            .is_none_or(|u| policy.stored(u) == Stored::Raw)
}

/// What ingest writes into [`ASIDE_FILE`]: the set columns not built from the data file,
/// then the privacy unit (raw) when there is one; empty when every set comes from the data
/// file.
pub fn aside_columns(policy: &Policy) -> Vec<&str> {
    let mut columns: Vec<&str> = set_columns(policy)
        .into_iter()
        .filter(|c| !from_data_file(policy, c))
        .collect();
    if !columns.is_empty()
        && let Some(unit) = policy.dataset.privacy_unit.as_deref()
    {
        columns.push(unit);
    }
    columns
}

/// Builds the value sets of a freshly written version of `dataset` (number `version`)
/// from the files in `folder` (its `files` data files and, when ingest wrote one, its
/// [`ASIDE_FILE`]) into `dir` (`<version>/values`), reading them through the mediator's
/// session (the version's key made readable beforehand). Returns what it wrote.
pub fn build(
    mediator: &crate::Mediator,
    (dataset, version): (&str, i64),
    (folder, files): (&Path, u32),
    policy: &Policy,
    hasher: &ValueHasher,
    dir: &Path,
) -> Result<Vec<SetInfo>> {
    let runtime = mediator.runtime();
    let unit = policy.dataset.privacy_unit.as_deref();
    let columns = set_columns(policy);
    fs::create_dir_all(dir)?;
    let mut index = Vec::new();
    if !columns.is_empty() {
        let ctx = mediator.session(SessionConfig::new());
        let register = |table: &str, files: Vec<std::path::PathBuf>| -> Result<()> {
            let listing = runtime.block_on(crate::atrest::file_table(
                &ctx.state(),
                (dataset, version),
                &files,
            ))?;
            ctx.register_table(table, Arc::new(listing))?;
            Ok(())
        };
        register(
            "t",
            (0..files.max(1))
                .map(|part| folder.join(sandbox_store::catalog::data_file_name(part)))
                .collect(),
        )?;
        if !aside_columns(policy).is_empty() {
            register("a", vec![folder.join(ASIDE_FILE)])?;
        }
        let min = policy.disclosure.min_group_size;
        for (i, column) in columns.iter().enumerate() {
            let c = quote(column);
            let table = if from_data_file(policy, column) {
                "t"
            } else {
                "a"
            };
            let holders = match unit {
                Some(u) => format!("COUNT(DISTINCT {})", quote(u)),
                None => "COUNT(*)".to_string(),
            };
            let sql = format!(
                "SELECT {c} AS v FROM {table} WHERE {c} IS NOT NULL GROUP BY {c} HAVING {holders} < {min}"
            );
            let batches: Vec<RecordBatch> =
                runtime.block_on(async { ctx.sql(&sql).await?.collect().await })?;
            let mut hashes = Vec::new();
            for b in &batches {
                for v in canonical_cells(b.column(0))?.into_iter().flatten() {
                    hashes.push(hasher.hash(&v));
                }
            }
            hashes.sort_unstable();
            hashes.dedup();
            let file = format!("{i}.u64");
            let bytes: Vec<u8> = hashes.iter().flat_map(|h| h.to_le_bytes()).collect();
            fs::write(dir.join(&file), bytes)?;
            index.push(SetInfo {
                column: column.to_string(),
                file,
                values: hashes.len(),
            });
        }
    }
    fs::write(dir.join(INDEX_FILE), serde_json::to_vec_pretty(&index)?)?;
    Ok(index)
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Loads the value sets of a dataset version (none for versions registered before sets
/// existed).
pub fn load(dataset: &str, version_dir: &Path) -> Result<Vec<ValueSet>> {
    let dir = version_dir.join(VALUES_DIR);
    let index = match fs::read(dir.join(INDEX_FILE)) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let index: Vec<SetInfo> = serde_json::from_slice(&index)
        .map_err(|e| Error::Verify(format!("value-set index of `{dataset}`: {e}")))?;
    let mut sets = Vec::new();
    for info in index {
        if info.file.contains('/') || info.file.contains("..") {
            return Err(Error::Verify(format!(
                "value-set index of `{dataset}` names `{}`",
                info.file
            ))
            .into());
        }
        let bytes = fs::read(dir.join(&info.file))?;
        if bytes.len() % 8 != 0 {
            return Err(Error::Verify(format!(
                "value set `{}` of `{dataset}` is truncated",
                info.column
            ))
            .into());
        }
        let hashes = sandbox_core::ids::u64s_le(&bytes);
        sets.push(ValueSet {
            dataset: dataset.to_string(),
            column: info.column,
            hashes,
        });
    }
    Ok(sets)
}

/// Summary for the audit event of a registration: column → number of rare values.
pub fn summary(index: &[SetInfo]) -> BTreeMap<String, usize> {
    index.iter().map(|s| (s.column.clone(), s.values)).collect()
}
