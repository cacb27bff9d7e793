//! Ingest into the domain store: datasets registered with their policies.
//!
//! Ingest reads CSV or Parquet, checks the policy against the real schema, writes the
//! data as Parquet into a temporary folder inside the data directory, and only then
//! records the version and its audit event in one transaction and moves the folder into
//! place. A bad file or a bad policy leaves the data directory as it was.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::encryption::decrypt::FileDecryptionProperties;
use parquet::encryption::encrypt::FileEncryptionProperties;
use sandbox_core::audit::{EventKind, Subject};
use sandbox_core::{Secret, Suite};
use sandbox_policies::{ColumnType, MissingUnit, OutOfRange, Policy};
use sandbox_store::catalog::{self, ColumnReport, DatasetVersion, IngestReport, NewVersion};
use sandbox_store::datakeys::{self, DataKey};
use serde_json::json;

pub use sandbox_store::catalog::DATA_FILE;

use crate::atrest::{self, DatasetKeys};
use crate::{DomainError as Error, Mediator, Result, values};

/// Largest source file accepted, in bytes.
pub const MAX_SOURCE_BYTES: u64 = 8 << 30;

/// Hidden column written at ingest next to the data of a dataset with a privacy unit:
/// each row's rank among its unit's rows (1, 2, ...). Bounding a unit to k rows is then a
/// filter `rank <= k` instead of a sort. No policy names it, so no view shows it.
pub const RANK_COLUMN: &str = "__sandbox_rank";

/// The policy's view of an Arrow type.
pub fn column_type(dt: &DataType) -> ColumnType {
    match dt {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => ColumnType::Int,
        DataType::Float16
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => ColumnType::Float,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => ColumnType::Utf8,
        DataType::Boolean => ColumnType::Bool,
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(..) => ColumnType::Temporal,
        _ => ColumnType::Other,
    }
}

fn input_err(path: &Path, message: impl std::fmt::Display) -> crate::Error {
    Error::Input {
        path: path.display().to_string(),
        message: message.to_string(),
    }
    .into()
}

/// Runs `f`, which decodes the uploaded file: a panic of the decoder on it (see
/// [`crate::contain`]) is the typed input error of a file that cannot be read.
fn decoding<T>(source: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    crate::contain::contained(f).unwrap_or_else(|why| {
        Err(input_err(
            source,
            format!("the file cannot be decoded (its reader failed on it: {why})"),
        ))
    })
}

/// Source format, from the file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Parquet,
}

fn format_of(path: &Path) -> Result<Format> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .as_deref()
    {
        Some("csv") => Ok(Format::Csv),
        Some("parquet") | Some("pq") => Ok(Format::Parquet),
        _ => Err(input_err(path, "expected a .csv or .parquet file")),
    }
}

/// A stream of record batches from the source file.
type Batches = Box<dyn Iterator<Item = std::result::Result<RecordBatch, arrow::error::ArrowError>>>;

/// How much of its source an ingest has read so far, in bytes, for whoever shows progress
/// (the CLI's bar against the file's size). Counted for CSV sources, as they are read to be
/// stored; a Parquet source is read by row group and leaves it at 0.
pub type ReadCounter = Arc<std::sync::atomic::AtomicU64>;

/// A reader that adds what it reads to a [`ReadCounter`].
struct Counted<R> {
    inner: R,
    read: Option<ReadCounter>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(read) = &self.read {
            read.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(n)
    }
}

/// What a registration reads: a file, or bytes held in memory under a file name (an upload
/// through the API: never written to the disk in the clear).
#[derive(Debug, Clone)]
pub enum Source {
    /// A file (the provider's, on the machine).
    File(PathBuf),
    /// Bytes in memory, named as the file they came from (`.csv` or `.parquet`).
    Bytes {
        /// The file name: its extension gives the format; errors and the record name it.
        name: PathBuf,
        /// The contents.
        bytes: bytes::Bytes,
    },
}

impl Source {
    /// Bytes in memory named `name`.
    pub fn memory(name: impl Into<PathBuf>, bytes: Vec<u8>) -> Source {
        Source::Bytes {
            name: name.into(),
            bytes: bytes::Bytes::from(bytes),
        }
    }

    /// The source's name: its path, or the name of the bytes.
    pub fn path(&self) -> &Path {
        match self {
            Source::File(path) => path,
            Source::Bytes { name, .. } => name,
        }
    }

    fn len(&self) -> Result<u64> {
        match self {
            Source::File(path) => Ok(fs::metadata(path).map_err(|e| input_err(path, e))?.len()),
            Source::Bytes { bytes, .. } => Ok(bytes.len() as u64),
        }
    }
}

fn open_source(source: &Source, read: Option<ReadCounter>) -> Result<(SchemaRef, Batches)> {
    let path = source.path();
    if source.len()? > MAX_SOURCE_BYTES {
        return Err(input_err(
            path,
            format!("larger than {MAX_SOURCE_BYTES} bytes"),
        ));
    }
    match (format_of(path)?, source) {
        (Format::Csv, Source::File(_)) => {
            let file = File::open(path).map_err(|e| input_err(path, e))?;
            csv_source(path, file, read)
        }
        (Format::Csv, Source::Bytes { bytes, .. }) => {
            csv_source(path, std::io::Cursor::new(bytes.clone()), read)
        }
        (Format::Parquet, Source::File(_)) => {
            let file = File::open(path).map_err(|e| input_err(path, e))?;
            parquet_source(path, Upload(file))
        }
        (Format::Parquet, Source::Bytes { bytes, .. }) => {
            parquet_source(path, Upload(bytes.clone()))
        }
    }
}

/// The batches of a CSV source (a UTF-8 byte order mark skipped).
fn csv_source<R: Read + Seek + 'static>(
    path: &Path,
    mut file: R,
    read: Option<ReadCounter>,
) -> Result<(SchemaRef, Batches)> {
    let mut head = [0u8; 3];
    let n = file.read(&mut head).map_err(|e| input_err(path, e))?;
    let bom = n == 3 && head == [0xEF, 0xBB, 0xBF];
    file.seek(SeekFrom::Start(if bom { 3 } else { 0 }))
        .map_err(|e| input_err(path, e))?;
    let format = arrow::csv::reader::Format::default().with_header(true);
    let (schema, rows) = format
        .infer_schema(&mut file, None)
        .map_err(|e| input_err(path, format!("cannot read CSV: {e}")))?;
    if rows == 0 {
        return Err(input_err(path, "the CSV has a header but no rows"));
    }
    if schema.fields().is_empty() {
        return Err(input_err(path, "the CSV has no columns"));
    }
    file.seek(SeekFrom::Start(if bom { 3 } else { 0 }))
        .map_err(|e| input_err(path, e))?;
    let schema = Arc::new(schema);
    let reader = arrow::csv::ReaderBuilder::new(schema.clone())
        .with_format(format)
        .with_batch_size(64 * 1024)
        .build(Counted { inner: file, read })
        .map_err(|e| input_err(path, format!("cannot read CSV: {e}")))?;
    Ok((schema, Box::new(reader)))
}

/// The batches of a Parquet source, read through [`Upload`].
fn parquet_source<C>(path: &Path, file: Upload<C>) -> Result<(SchemaRef, Batches)>
where
    C: parquet::file::reader::ChunkReader + 'static,
{
    // The columns' types come from the Parquet schema alone: the Arrow schema a
    // writer may embed in the footer (`ARROW:schema`) is the uploader's bytes, and
    // Arrow's decoder panics on types it does not know (the ingest fuzzer found
    // it). Stored files are read with it: they are ours.
    let options = ArrowReaderOptions::new().with_skip_arrow_metadata(true);
    let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(file, options)
        .map_err(|e| input_err(path, format!("not a readable Parquet file: {e}")))?;
    let schema = builder.schema().clone();
    let reader = builder
        .with_batch_size(64 * 1024)
        .build()
        .map_err(|e| input_err(path, format!("cannot read Parquet: {e}")))?;
    Ok((schema, Box::new(reader)))
}

/// An uploaded Parquet file as its reader sees it: every reader of a range fails a read
/// once the end of the file has been reported. The parquet crate's Thrift decoder, skipping
/// a field of a page header, loops over the element count a crafted header claims, taking
/// each end-of-file read as a byte: a 21 KB file kept it reading for minutes (fuzz finding
/// 10). A reader that reads on after being told the file ended is one of those loops.
struct Upload<C>(C);

impl<C: parquet::file::reader::ChunkReader> parquet::file::reader::Length for Upload<C> {
    fn len(&self) -> u64 {
        parquet::file::reader::Length::len(&self.0)
    }
}

impl<C: parquet::file::reader::ChunkReader> parquet::file::reader::ChunkReader for Upload<C> {
    type T = EndOnce<C::T>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(EndOnce {
            inner: self.0.get_read(start)?,
            ended: false,
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<bytes::Bytes> {
        self.0.get_bytes(start, length)
    }
}

/// A reader that reports the end once, then fails.
struct EndOnce<R> {
    inner: R,
    ended: bool,
}

impl<R: Read> Read for EndOnce<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.ended && !buf.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "read past the end of the file",
            ));
        }
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.ended = true;
        }
        Ok(n)
    }
}

/// The first value of a column the policy gives bounds to that is not a number, in a
/// source that read it as text: `row N, column `c`: `v` is not a number`.
fn first_non_number(source: &Source, policy: &Policy, schema: &Schema) -> Result<Option<String>> {
    let text_columns: Vec<(usize, String)> = policy
        .columns
        .iter()
        .filter(|c| c.bounds().is_some())
        .filter_map(|c| {
            let i = schema.index_of(&c.name).ok()?;
            (column_type(schema.field(i).data_type()) == ColumnType::Utf8)
                .then(|| (i, c.name.clone()))
        })
        .collect();
    if text_columns.is_empty() {
        return Ok(None);
    }
    let (_, batches) = open_source(source, None)?;
    let mut row = 0usize;
    for batch in batches {
        let Ok(batch) = batch else { return Ok(None) };
        for (i, name) in &text_columns {
            let Some(values) = batch.column(*i).as_any().downcast_ref::<StringArray>() else {
                continue;
            };
            for (r, v) in values.iter().enumerate() {
                if let Some(v) = v
                    && !v.trim().is_empty()
                    && v.trim().parse::<f64>().is_err()
                {
                    return Ok(Some(format!(
                        "row {}, column `{name}`: `{v}` is not a number (the policy gives the column bounds)",
                        row + r + 1
                    )));
                }
            }
        }
        row += batch.num_rows();
    }
    Ok(None)
}

/// A failure writing the stored file: the disk's (full, read-only, failing) as I/O, the
/// rest as internal.
fn store_failure(what: &str, e: parquet::errors::ParquetError) -> crate::Error {
    if let parquet::errors::ParquetError::External(inner) = &e
        && let Some(io) = inner.downcast_ref::<std::io::Error>()
    {
        return Error::Io(std::io::Error::new(io.kind(), format!("{what}: {io}"))).into();
    }
    Error::Internal(format!("{what}: {e}")).into()
}

/// Refuses dates and times outside the calendar the engine computes with (chrono's, years
/// -262143 to 262142): a Parquet file can hold them, and a query that reads one (as text,
/// as a date part) would fail for that row only, which is a one-bit answer about it.
fn representable_times(source: &Path, batch: &RecordBatch, first_row: i64) -> Result<()> {
    let strict = arrow::compute::CastOptions {
        safe: false,
        ..Default::default()
    };
    for (c, field) in batch.schema().fields().iter().enumerate() {
        if column_type(field.data_type()) != ColumnType::Temporal {
            continue;
        }
        let column = batch.column(c);
        if arrow::compute::cast_with_options(column, &DataType::Utf8, &strict).is_ok() {
            continue;
        }
        let row = (0..column.len())
            .find(|&r| {
                arrow::compute::cast_with_options(&column.slice(r, 1), &DataType::Utf8, &strict)
                    .is_err()
            })
            .unwrap_or(0);
        return Err(input_err(
            source,
            format!(
                "row {}, column `{}`: a date or time outside the years -262143 to 262142",
                first_row + row as i64 + 1,
                field.name()
            ),
        ));
    }
    Ok(())
}

/// What ingest measured while writing.
struct Written {
    rows: i64,
    max_unit_rows: i64,
    /// Rows left out because their privacy unit was empty.
    dropped: i64,
    /// Rows the per-unit bound keeps (rank within the unit at most k).
    bounded_rows: i64,
    /// Bounded columns whose every value lies within the bounds.
    within_bounds: Vec<String>,
    sha256: String,
    /// Data files written.
    files: u32,
    /// What was found, and what was stored.
    report: IngestReport,
}

/// What ingest looks for in every column of a source (NULLs, values outside the policy's
/// bounds or declared categories) and what it does with an out-of-range value.
struct Inspect {
    rule: OutOfRange,
    columns: Vec<Inspected>,
}

struct Inspected {
    index: usize,
    bounds: Option<(f64, f64)>,
    categories: Option<std::collections::HashSet<String>>,
    report: ColumnReport,
}

impl Inspect {
    fn new(policy: &Policy, schema: &Schema) -> Inspect {
        let columns = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(index, f)| {
                let c = policy.column(f.name()).filter(|c| c.desensitize.is_none());
                Inspected {
                    index,
                    bounds: c.and_then(|c| c.bounds()),
                    categories: c
                        .and_then(|c| c.categories.as_ref())
                        .map(|cats| cats.iter().cloned().collect()),
                    report: ColumnReport {
                        name: f.name().clone(),
                        ..ColumnReport::default()
                    },
                }
            })
            .collect();
        Inspect {
            rule: policy.dataset.out_of_range,
            columns,
        }
    }

    /// Counts what `batch` (its first row is the source's row `first_row + 1`) holds, and
    /// applies the rule: its rows without an out-of-range value (`drop`, with how many
    /// were left out), or the first such value refused (`refuse`).
    fn batch(
        &mut self,
        source: &Path,
        batch: RecordBatch,
        first_row: i64,
    ) -> Result<(RecordBatch, i64)> {
        let n = batch.num_rows();
        let mut out = vec![false; n];
        let mut first: Option<(usize, String)> = None;
        for c in &mut self.columns {
            let column = batch.column(c.index);
            c.report.nulls += column.null_count() as i64;
            if let Some((lower, upper)) = c.bounds {
                let values = arrow::compute::cast(column, &DataType::Float64)
                    .map_err(|e| input_err(source, e))?;
                let values = values
                    .as_any()
                    .downcast_ref::<arrow::array::Float64Array>()
                    .ok_or_else(|| Error::Internal("cast to Float64 did not give floats".into()))?;
                for (r, v) in values.iter().enumerate() {
                    let Some(v) = v else { continue };
                    let outside = if v < lower {
                        c.report.below_bounds += 1;
                        true
                    } else if v > upper || v.is_nan() {
                        c.report.above_bounds += 1;
                        true
                    } else {
                        false
                    };
                    if outside {
                        out[r] = true;
                        if first.as_ref().is_none_or(|(at, _)| r < *at) {
                            first = Some((
                                r,
                                format!(
                                    "column `{}`: {v} is outside the bounds [{lower}, {upper}]",
                                    c.report.name
                                ),
                            ));
                        }
                    }
                }
            }
            if let Some(categories) = &c.categories {
                let values = arrow::compute::cast(column, &DataType::Utf8)
                    .map_err(|e| input_err(source, e))?;
                let values = values
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .ok_or_else(|| Error::Internal("cast to Utf8 did not give text".into()))?;
                for (r, v) in values.iter().enumerate() {
                    let Some(v) = v else { continue };
                    if !categories.contains(v) {
                        c.report.outside_categories += 1;
                        out[r] = true;
                        if first.as_ref().is_none_or(|(at, _)| r < *at) {
                            first = Some((
                                r,
                                format!(
                                    "column `{}`: `{v}` is not one of the declared categories",
                                    c.report.name
                                ),
                            ));
                        }
                    }
                }
            }
        }
        match (self.rule, first) {
            (OutOfRange::Refuse, Some((r, what))) => Err(input_err(
                source,
                format!(
                    "row {}, {what} (the policy's out_of_range is `refuse`; `keep` stores such values and every query clamps them, `drop` leaves their rows out)",
                    first_row + r as i64 + 1
                ),
            )),
            (OutOfRange::Drop, Some(_)) => {
                let keep =
                    arrow::array::BooleanArray::from(out.iter().map(|o| !o).collect::<Vec<bool>>());
                let dropped = out.iter().filter(|o| **o).count() as i64;
                let kept = arrow::compute::filter_record_batch(&batch, &keep)
                    .map_err(|e| input_err(source, e))?;
                Ok((kept, dropped))
            }
            _ => Ok((batch, 0)),
        }
    }

    /// The columns with something to report.
    fn columns(self) -> Vec<ColumnReport> {
        self.columns
            .into_iter()
            .map(|c| c.report)
            .filter(|r| {
                r.nulls > 0 || r.below_bounds > 0 || r.above_bounds > 0 || r.outside_categories > 0
            })
            .collect()
    }
}

/// A column with policy bounds, checked while writing.
struct BoundsCheck {
    name: String,
    index: usize,
    lower: f64,
    upper: f64,
    within: bool,
}

/// How ingest treats privacy units.
struct Units<'a> {
    column: &'a str,
    missing: MissingUnit,
    /// Rows per unit kept by the bound (k).
    k: i64,
}

/// How the files being written are encrypted, each data file as its part, and read back
/// (the rows set aside by the per-unit bound go through a file of their own, encrypted as
/// the first part).
struct Sealing {
    dataset: String,
    version: i64,
    key: DataKey,
    decryption: Arc<FileDecryptionProperties>,
}

impl Sealing {
    fn new(dataset: &str, version: i64, key: &DataKey) -> Result<Sealing> {
        Ok(Sealing {
            dataset: dataset.to_string(),
            version,
            key: key.clone(),
            decryption: atrest::decryption(dataset, version, key, 0)?,
        })
    }

    /// The writer properties of data file number `part` (0 for a file beside the data).
    fn writer_properties(&self, part: u32) -> Result<parquet::file::properties::WriterProperties> {
        let encryption: Arc<FileEncryptionProperties> =
            atrest::encryption(&self.dataset, self.version, &self.key, part)?;
        Ok(parquet::file::properties::WriterProperties::builder()
            .set_compression(parquet::basic::Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .with_file_encryption_properties(encryption)
            .build())
    }
}

/// A version's data files being written: [`catalog::data_file_name`]s in a folder, a new
/// one every `file_rows` rows.
struct Parts<'s> {
    dir: &'s Path,
    schema: SchemaRef,
    sealing: &'s Sealing,
    file_rows: usize,
    current: Option<ArrowWriter<File>>,
    /// Rows in the current file.
    in_current: usize,
    /// Files closed.
    closed: u32,
}

impl Parts<'_> {
    fn open(&mut self) -> Result<&mut ArrowWriter<File>> {
        if self.current.is_none() {
            let file = File::create(self.dir.join(catalog::data_file_name(self.closed)))?;
            let writer = ArrowWriter::try_new(
                file,
                self.schema.clone(),
                Some(self.sealing.writer_properties(self.closed)?),
            )
            .map_err(|e| store_failure("parquet writer", e))?;
            self.in_current = 0;
            self.current = Some(writer);
        }
        self.current
            .as_mut()
            .ok_or_else(|| Error::Internal("no data file open".into()).into())
    }

    /// Writes a batch, starting a new file whenever the current one is full.
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut offset = 0;
        while offset < batch.num_rows() {
            // A full file is closed as soon as it is: there is always room here.
            let room = self.file_rows.saturating_sub(self.in_current).max(1);
            let n = room.min(batch.num_rows() - offset);
            self.open()?
                .write(&batch.slice(offset, n))
                .map_err(|e| store_failure("parquet write", e))?;
            offset += n;
            self.in_current += n;
            if self.in_current >= self.file_rows {
                self.close_current()?;
            }
        }
        Ok(())
    }

    fn close_current(&mut self) -> Result<()> {
        if let Some(writer) = self.current.take() {
            writer
                .close()
                .map_err(|e| store_failure("parquet close", e))?;
            self.closed += 1;
        }
        self.in_current = 0;
        Ok(())
    }

    /// Ends the current row group: what is written next starts a row group of its own.
    fn end_row_group(&mut self) -> Result<()> {
        if let Some(writer) = self.current.as_mut() {
            writer
                .flush()
                .map_err(|e| store_failure("parquet flush", e))?;
        }
        Ok(())
    }

    /// Closes the last file; returns how many were written.
    fn finish(mut self) -> Result<u32> {
        self.close_current()?;
        Ok(self.closed)
    }
}

/// Rows per row group of a stored file. A row group is the smallest unit a scan can be
/// split into (byte ranges of a file are read by the row groups that start in them), so
/// this bounds how finely a version's scan spreads over a cluster's tasks, or a
/// session's partitions: about DuckDB's 122,880 rather than the Parquet writer's 1 Mi (a
/// 1 Mi-row version would be one task).
pub const ROW_GROUP_ROWS: usize = 128 * 1024;

/// What of each row reaches the domain store ([`Policy::stored`]): the columns stored, in
/// the source's order, each as provided or through its desensitization (the expression
/// the views use, [`crate::views::desensitized`]), then the rank; and, beside, the raw
/// columns the value sets need that the data file does not hold
/// ([`values::aside_columns`]).
struct Layout {
    /// Source index and, for a column stored desensitized, its desensitization.
    kept: Vec<(
        usize,
        Option<Arc<dyn datafusion::physical_expr::PhysicalExpr>>,
    )>,
    /// Source columns left out (names), for the registration's record.
    dropped: Vec<String>,
    /// Columns stored desensitized (names).
    desensitized: Vec<String>,
    /// The data file's schema.
    stored: SchemaRef,
    /// The domain's suite: the data file's content hash is its hash.
    suite: Suite,
    /// Source indices and schema of the aside file, when the value sets need one.
    aside: Option<(Vec<usize>, SchemaRef)>,
}

impl Layout {
    /// The layout of `policy` over a source with `schema`; `ranked` when a rank column
    /// follows the source's.
    fn new(
        source: &Path,
        policy: &Policy,
        schema: &Schema,
        ranked: bool,
        secret: &Secret,
    ) -> Result<Layout> {
        use sandbox_policies::Stored;
        let df_schema = datafusion::common::DFSchema::try_from(schema.clone())?;
        // The session coerces the expressions' types, as a query's planning does.
        let planner = datafusion::prelude::SessionContext::new();
        let mut kept = Vec::new();
        let mut fields: Vec<arrow::datatypes::FieldRef> = Vec::new();
        let (mut dropped, mut desensitized) = (Vec::new(), Vec::new());
        for (index, field) in schema.fields().iter().enumerate() {
            match policy.stored(field.name()) {
                Stored::Not => dropped.push(field.name().clone()),
                Stored::Desensitized => {
                    let column = policy.column(field.name()).ok_or_else(|| {
                        Error::Internal(format!("column `{}` has no policy", field.name()))
                    })?;
                    let expr = crate::views::desensitized(column, field.data_type(), secret);
                    let physical = planner
                        .create_physical_expr(expr, &df_schema)
                        .map_err(|e| {
                            input_err(
                                source,
                                format!("column `{}` cannot be desensitized: {e}", field.name()),
                            )
                        })?;
                    let data_type = physical.data_type(schema)?;
                    fields.push(Arc::new(arrow::datatypes::Field::new(
                        field.name(),
                        data_type,
                        true,
                    )));
                    kept.push((index, Some(physical)));
                    desensitized.push(field.name().clone());
                }
                Stored::Raw => {
                    fields.push(field.clone());
                    kept.push((index, None));
                }
            }
        }
        if ranked {
            fields.push(Arc::new(arrow::datatypes::Field::new(
                RANK_COLUMN,
                DataType::Int64,
                false,
            )));
        }
        let aside_names = values::aside_columns(policy);
        let aside = if aside_names.is_empty() {
            None
        } else {
            let indices = aside_names
                .iter()
                .map(|c| schema.index_of(c).map_err(|e| input_err(source, e)))
                .collect::<Result<Vec<usize>>>()?;
            let aside_schema = Arc::new(schema.project(&indices)?);
            Some((indices, aside_schema))
        };
        Ok(Layout {
            kept,
            dropped,
            desensitized,
            stored: Arc::new(Schema::new(fields)),
            suite: secret.suite(),
            aside,
        })
    }

    /// The stored form of a batch in the source's layout (with its rank last when ranked).
    fn store(&self, source: &Path, batch: &RecordBatch) -> Result<RecordBatch> {
        let mut columns = Vec::with_capacity(self.stored.fields().len());
        for (index, desensitize) in &self.kept {
            columns.push(match desensitize {
                None => batch.column(*index).clone(),
                Some(physical) => physical
                    .evaluate(batch)
                    .and_then(|v| v.into_array(batch.num_rows()))
                    .map_err(|e| {
                        input_err(
                            source,
                            format!(
                                "column `{}` cannot be desensitized: {e}",
                                batch.schema().field(*index).name()
                            ),
                        )
                    })?,
            });
        }
        if columns.len() < self.stored.fields().len() {
            columns.push(batch.column(batch.num_columns() - 1).clone());
        }
        Ok(RecordBatch::try_new(self.stored.clone(), columns)?)
    }
}

/// The value sets' raw columns of a batch, written to the aside file (encrypted as the
/// data file) while the data file is.
struct Aside {
    indices: Vec<usize>,
    writer: ArrowWriter<File>,
    schema: SchemaRef,
}

impl Aside {
    fn create(layout: &Layout, path: &Path, sealing: &Sealing) -> Result<Option<Aside>> {
        let Some((indices, schema)) = &layout.aside else {
            return Ok(None);
        };
        let writer = ArrowWriter::try_new(
            File::create(path)?,
            schema.clone(),
            Some(sealing.writer_properties(0)?),
        )
        .map_err(|e| store_failure("aside writer", e))?;
        Ok(Some(Aside {
            indices: indices.clone(),
            writer,
            schema: schema.clone(),
        }))
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let columns = self
            .indices
            .iter()
            .map(|i| batch.column(*i).clone())
            .collect();
        let projected = RecordBatch::try_new(self.schema.clone(), columns)?;
        self.writer
            .write(&projected)
            .map_err(|e| store_failure("aside write", e))
    }

    fn close(self) -> Result<()> {
        self.writer
            .close()
            .map_err(|e| store_failure("aside close", e))?;
        Ok(())
    }
}

#[allow(clippy::too_many_arguments)]
fn write_parquet(
    source: &Path,
    schema: SchemaRef,
    batches: Batches,
    units: Option<Units<'_>>,
    bounds: &[(String, f64, f64)],
    mut inspect: Inspect,
    layout: &Layout,
    (dir, file_rows): (&Path, usize),
    sealing: &Sealing,
) -> Result<Written> {
    let mut checks: Vec<BoundsCheck> = bounds
        .iter()
        .filter_map(|(name, lower, upper)| {
            schema.index_of(name).ok().map(|index| BoundsCheck {
                name: name.clone(),
                index,
                lower: *lower,
                upper: *upper,
                within: true,
            })
        })
        .collect();
    let mut ranker = match units {
        Some(units) => Some(UnitRanker {
            index: schema
                .index_of(units.column)
                .map_err(|e| input_err(source, e))?,
            units,
            per_unit: HashMap::new(),
        }),
        None => None,
    };
    // The source's columns with the rank after them; stored as the layout says.
    let ranked_schema = match ranker {
        Some(_) => {
            let mut fields: Vec<arrow::datatypes::FieldRef> =
                schema.fields().iter().cloned().collect();
            fields.push(Arc::new(arrow::datatypes::Field::new(
                RANK_COLUMN,
                DataType::Int64,
                false,
            )));
            Arc::new(Schema::new(fields))
        }
        None => schema.clone(),
    };
    let stored_schema = layout.stored.clone();
    let mut parts = Parts {
        dir,
        schema: stored_schema.clone(),
        sealing,
        file_rows: file_rows.max(1),
        current: None,
        in_current: 0,
        closed: 0,
    };
    let mut aside = Aside::create(layout, &dir.join(values::ASIDE_FILE), sealing)?;
    let mut overflow = Overflow {
        path: dir.join("data.overflow.parquet"),
        writer: None,
        sealing,
    };
    let mut rows = 0i64;
    let mut dropped = 0i64;
    let mut bounded_rows = 0i64;
    let mut read = 0i64;
    let mut dropped_out_of_range = 0i64;
    for batch in batches {
        let batch = batch.map_err(|e| input_err(source, format!("row {}: {e}", read + 1)))?;
        representable_times(source, &batch, read)?;
        let first_row = read;
        read += batch.num_rows() as i64;
        let (mut batch, left_out) = inspect.batch(source, batch, first_row)?;
        dropped_out_of_range += left_out;
        if let Some(ranker) = ranker.as_mut() {
            let ranked = ranker.rank(source, &batch, first_row, &ranked_schema)?;
            dropped += ranked.dropped;
            bounded_rows += ranked.bounded;
            batch = ranked.batch;
        } else {
            bounded_rows += batch.num_rows() as i64;
        }
        for c in checks.iter_mut().filter(|c| c.within) {
            c.observe(source, &batch)?;
        }
        rows += batch.num_rows() as i64;
        if let Some(aside) = aside.as_mut() {
            aside.write(&batch)?;
        }
        let mut batch = layout.store(source, &batch)?;
        if let Some(ranker) = &ranker {
            batch = overflow.set_aside(batch, ranker.units.k, &stored_schema)?;
        }
        parts.write(&batch)?;
    }
    overflow.append_to(&mut parts)?;
    let files = parts.finish()?;
    if let Some(aside) = aside {
        aside.close()?;
    }
    if rows == 0 {
        return Err(input_err(source, "no rows"));
    }
    let sha256 = layout.suite.hash_hex_reading(
        (0..files)
            .map(|part| File::open(dir.join(catalog::data_file_name(part))))
            .collect::<std::io::Result<Vec<File>>>()?,
    )?;
    let k = ranker.as_ref().map_or(1, |r| r.units.k);
    let per_unit: Vec<i64> = ranker
        .as_ref()
        .map(|r| r.per_unit.values().copied().collect())
        .unwrap_or_default();
    let report = IngestReport {
        rows_read: read,
        rows_stored: rows,
        out_of_range: inspect.rule.as_str().to_string(),
        rows_dropped_out_of_range: dropped_out_of_range,
        rows_without_unit: dropped,
        units: ranker.as_ref().map(|r| r.per_unit.len() as i64),
        units_over_max_rows: per_unit.iter().filter(|n| **n > k).count() as i64,
        rows_over_max_rows: per_unit.iter().map(|n| (n - k).max(0)).sum(),
        columns: inspect.columns(),
        columns_not_stored: layout.dropped.clone(),
        columns_stored_desensitized: layout.desensitized.clone(),
    };
    Ok(Written {
        report,
        rows,
        max_unit_rows: ranker
            .and_then(|r| r.per_unit.values().copied().max())
            .unwrap_or(1),
        dropped,
        bounded_rows,
        within_bounds: checks
            .into_iter()
            .filter(|c| c.within)
            .map(|c| c.name)
            .collect(),
        sha256,
        files,
    })
}

impl BoundsCheck {
    /// Notes whether the batch's values of the column stay within the bounds.
    fn observe(&mut self, source: &Path, batch: &RecordBatch) -> Result<()> {
        let values = arrow::compute::cast(batch.column(self.index), &DataType::Float64)
            .map_err(|e| input_err(source, e))?;
        let values = values
            .as_any()
            .downcast_ref::<arrow::array::Float64Array>()
            .ok_or_else(|| Error::Internal("cast to Float64 did not give floats".into()))?;
        // Arrow orders NaN above every number: a NaN fails the upper bound.
        let min = arrow::compute::min(values);
        let max = arrow::compute::max(values);
        if min.is_some_and(|m| m.is_nan() || m < self.lower)
            || max.is_some_and(|m| m.is_nan() || m > self.upper)
        {
            self.within = false;
        }
        Ok(())
    }
}

/// Numbers each row by how many rows of its privacy unit came before it (its rank).
struct UnitRanker<'a> {
    /// The unit column's index in the source schema.
    index: usize,
    units: Units<'a>,
    /// Rows seen so far per unit.
    per_unit: HashMap<String, i64>,
}

/// A batch with its rank column, and what ranking it counted.
struct Ranked {
    batch: RecordBatch,
    /// Rows dropped for an empty unit.
    dropped: i64,
    /// Rows within their unit's first k.
    bounded: i64,
}

impl UnitRanker<'_> {
    /// Drops or refuses rows with an empty unit (as the policy says) and appends the rank
    /// column.
    fn rank(
        &mut self,
        source: &Path,
        batch: &RecordBatch,
        first_row: i64,
        stored_schema: &SchemaRef,
    ) -> Result<Ranked> {
        let col = arrow::compute::cast(batch.column(self.index), &DataType::Utf8)
            .map_err(|e| input_err(source, e))?;
        let col = col
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| Error::Internal("cast to Utf8 did not give strings".into()))?;
        let present: arrow::array::BooleanArray = col
            .iter()
            .map(|v| Some(v.is_some_and(|v| !v.trim().is_empty())))
            .collect();
        let missing = present.false_count();
        let mut dropped = 0;
        let mut batch = batch.clone();
        if missing > 0 {
            match self.units.missing {
                MissingUnit::Refuse => {
                    let r = present.iter().position(|p| p != Some(true)).unwrap_or(0);
                    return Err(input_err(
                        source,
                        format!(
                            "row {}: the privacy unit column `{}` is empty (the policy may set `missing_unit = \"drop\"`)",
                            first_row + r as i64 + 1,
                            self.units.column
                        ),
                    ));
                }
                MissingUnit::Drop => {
                    dropped = missing as i64;
                    batch = arrow::compute::filter_record_batch(&batch, &present)?;
                }
            }
        }
        // Ranks of the rows kept (the same rows, in the same order, as the batch now).
        let mut ranks = Vec::with_capacity(batch.num_rows());
        let mut bounded = 0;
        for v in col
            .iter()
            .zip(present.iter())
            .filter_map(|(v, p)| v.filter(|_| p == Some(true)))
        {
            let seen = self.per_unit.entry(v.to_string()).or_default();
            *seen += 1;
            if *seen <= self.units.k {
                bounded += 1;
            }
            ranks.push(*seen);
        }
        let mut columns = batch.columns().to_vec();
        columns.push(Arc::new(arrow::array::Int64Array::from(ranks)));
        Ok(Ranked {
            batch: RecordBatch::try_new(stored_schema.clone(), columns)?,
            dropped,
            bounded,
        })
    }
}

/// Rows past their unit's k-th, set aside in a file (encrypted as the version's own) while
/// the kept rows are written, then appended after every kept row in row groups of their
/// own: the bounding filter (rank <= k) then skips them by row-group statistics. The file
/// goes with it, whether appended or dropped on a failure (a bad row after some were set
/// aside).
struct Overflow<'s> {
    path: std::path::PathBuf,
    writer: Option<ArrowWriter<File>>,
    sealing: &'s Sealing,
}

impl Drop for Overflow<'_> {
    fn drop(&mut self) {
        drop(self.writer.take());
        match fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(path = %self.path.display(), error = %e, "overflow file left"),
        }
    }
}

impl Overflow<'_> {
    /// Sets aside the rows of a ranked batch past rank `k`; returns the others.
    fn set_aside(&mut self, batch: RecordBatch, k: i64, schema: &SchemaRef) -> Result<RecordBatch> {
        let Some(rank) = batch
            .column(batch.num_columns() - 1)
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>()
        else {
            return Ok(batch);
        };
        if !rank.iter().any(|r| r.is_some_and(|r| r > k)) {
            return Ok(batch);
        }
        let keep: arrow::array::BooleanArray = rank
            .iter()
            .map(|r| Some(r.is_some_and(|r| r <= k)))
            .collect();
        let beyond = arrow::compute::not(&keep)?;
        let rest = arrow::compute::filter_record_batch(&batch, &beyond)?;
        let kept = arrow::compute::filter_record_batch(&batch, &keep)?;
        if self.writer.is_none() {
            let file = File::create(&self.path)?;
            self.writer = Some(
                ArrowWriter::try_new(
                    file,
                    schema.clone(),
                    Some(self.sealing.writer_properties(0)?),
                )
                .map_err(|e| store_failure("overflow writer", e))?,
            );
        }
        if let Some(w) = self.writer.as_mut() {
            w.write(&rest)
                .map_err(|e| store_failure("overflow write", e))?;
        }
        Ok(kept)
    }

    /// Appends the rows set aside, in row groups after the kept rows', and removes the file.
    fn append_to(mut self, parts: &mut Parts<'_>) -> Result<()> {
        let Some(w) = self.writer.take() else {
            return Ok(());
        };
        w.close().map_err(|e| store_failure("overflow close", e))?;
        parts.end_row_group()?;
        let options = ArrowReaderOptions::new()
            .with_file_decryption_properties(self.sealing.decryption.clone());
        let reader =
            ParquetRecordBatchReaderBuilder::try_new_with_options(File::open(&self.path)?, options)
                .and_then(|b| b.build())
                .map_err(|e| store_failure("overflow read", e))?;
        for batch in reader {
            parts.write(&batch?)?;
        }
        Ok(())
    }
}

/// Registers a dataset (a new one, or a new version of an existing one) from `source`
/// with the policy text, for `actor` (a provider: the caller has authorized it). The data
/// is written into a temporary folder of the domain store and moved into place in the
/// transaction that records the version and its `dataset.registered` event; whatever
/// fails leaves the data directory as it was.
pub fn add(
    domain: &Mediator,
    actor: &str,
    source: &Path,
    policy_text: &str,
) -> Result<DatasetVersion> {
    add_counted(domain, actor, source, policy_text, None)
}

/// [`add`], counting the bytes of the source read as it goes into `read`.
pub fn add_counted(
    domain: &Mediator,
    actor: &str,
    source: &Path,
    policy_text: &str,
    read: Option<ReadCounter>,
) -> Result<DatasetVersion> {
    add_source(
        domain,
        actor,
        &Source::File(source.to_path_buf()),
        policy_text,
        read,
    )
}

/// [`add_counted`] of a file or of bytes in memory.
pub fn add_source(
    domain: &Mediator,
    actor: &str,
    source: &Source,
    policy_text: &str,
    read: Option<ReadCounter>,
) -> Result<DatasetVersion> {
    let policy = Policy::from_toml_str(policy_text).map_err(Error::from)?;
    let mut conn = domain.conn()?;
    let name = policy.dataset.name.clone();
    let tmp = domain
        .layout()
        .domain()
        .join(format!(".ingest-{}", sandbox_core::new_id("tmp")));
    fs::create_dir_all(&tmp)?;
    // The version this file will be: its key and its authenticated data name it. Another
    // registration of the dataset that commits first takes the number, and this one is
    // refused at its commit (nothing half-written).
    let version = catalog::current_version(&conn, &name)?.map_or(1, |v| v + 1);
    let key = DataKey::fresh()?;
    let outcome = (|| {
        let sealing = Sealing::new(&name, version, &key)?;
        let secret = domain.keys().pseudonym_secret()?;
        let (columns, written) = stage(
            source,
            &policy,
            read,
            (&tmp, domain.file_rows()),
            &sealing,
            secret,
        )?;
        let hasher = values::ValueHasher::new(secret)?;
        domain.dataset_keys().remember(&name, version, &key)?;
        let value_sets = values::build(
            domain,
            (&name, version),
            (&tmp, written.files),
            &policy,
            &hasher,
            &tmp.join(values::VALUES_DIR),
        )?;
        // The raw values the sets needed go with the sets built.
        match fs::remove_file(tmp.join(values::ASIDE_FILE)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        let source_name = source
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tx = conn.write()?;
        catalog::record_version(
            &tx,
            &NewVersion {
                version,
                name: &name,
                policy_toml: policy_text,
                schema: &columns,
                rows: written.rows,
                max_unit_rows: written.max_unit_rows,
                sha256: &written.sha256,
                data_files: written.files,
                source_name: &source_name,
                registered_by: actor,
                rows_dropped: written.dropped,
                bounded_rows: written.bounded_rows,
                within_bounds: &written.within_bounds,
                report: &written.report,
            },
        )?;
        datakeys::record(&tx, &name, version, &key)?;
        sandbox_store::audit::append(
            &tx,
            actor,
            EventKind::DatasetRegistered,
            &Subject::Dataset {
                name: name.clone(),
                version,
            },
            json!({
                "provider": policy.dataset.provider,
                "rows": written.rows,
                "rows_dropped_without_unit": written.dropped,
                "report": written.report,
                "sha256": written.sha256,
                "data_files": written.files,
                "encrypted": {"file": key.file_id(), "master_key": domain.keys().provider().key_id()},
                "source": source_name,
                "rare_value_sets": values::summary(&value_sets),
                "columns": policy.columns.iter().map(|c| json!({"name": c.name, "level": c.level, "access": c.access})).collect::<Vec<_>>(),
            }),
        )?;
        let final_dir = domain.layout().dataset_version(&name, version);
        if final_dir.exists() {
            return Err(Error::Conflict(format!("{} exists", final_dir.display())).into());
        }
        if let Some(parent) = final_dir.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::rename(&tmp, &final_dir)?;
        if let Err(e) = tx.commit() {
            let _ = fs::remove_dir_all(&final_dir);
            return Err(e.into());
        }
        Ok(version)
    })();
    match outcome {
        Ok(version) => Ok(catalog::get_version(&conn, &name, version)?),
        Err(e) => {
            domain.dataset_keys().forget(&name, version);
            let _ = fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

/// What a source comes to under a policy, without registering it: the rows and what was
/// found in each column, or the typed error registration would give.
#[derive(Debug, Clone)]
pub struct Examined {
    /// Rows the version would hold.
    pub rows: i64,
    /// Rows left out because their privacy unit was empty.
    pub rows_dropped: i64,
    /// The most rows of one privacy unit.
    pub max_unit_rows: i64,
    /// What ingest found in each column.
    pub report: IngestReport,
}

/// Decodes `source` and checks it against the policy text as registration would, writing
/// the version's files into `scratch` (a folder of the caller's, left empty): the stage of
/// registration that reads the provider's bytes, on its own.
pub fn examine(source: &Path, policy_text: &str, scratch: &Path) -> Result<Examined> {
    let source = &Source::File(source.to_path_buf());
    let policy = Policy::from_toml_str(policy_text).map_err(Error::from)?;
    let target = scratch.join(format!(".examine-{}", sandbox_core::new_id("tmp")));
    fs::create_dir_all(&target)?;
    // Encrypted like a version's files, under a key nobody keeps.
    let sealing = Sealing::new(&policy.dataset.name, 0, &DataKey::fresh()?)?;
    // Desensitized (when stored so) under a secret nobody keeps either.
    let staged = stage(
        source,
        &policy,
        None,
        (&target, catalog::FILE_ROWS),
        &sealing,
        &Secret::new(Suite::Standard, rand::random()),
    );
    let _ = fs::remove_dir_all(&target);
    let (_, written) = staged?;
    Ok(Examined {
        rows: written.rows,
        rows_dropped: written.dropped,
        max_unit_rows: written.max_unit_rows,
        report: written.report,
    })
}

/// Registration's first stage, which every source goes through: decodes `source`, checks
/// its columns against the policy, and writes the bounded, inspected data files (of
/// `file_rows` rows) into the folder `dir`.
fn stage(
    source: &Source,
    policy: &Policy,
    read: Option<ReadCounter>,
    (dir, file_rows): (&Path, usize),
    sealing: &Sealing,
    secret: &Secret,
) -> Result<(Vec<(String, ColumnType)>, Written)> {
    let path = source.path();
    let (schema, batches) = decoding(path, || open_source(source, read))?;
    let columns: Vec<(String, ColumnType)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), column_type(f.data_type())))
        .collect();
    let view: Vec<(&str, ColumnType)> = columns.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    if let Err(e) = policy.validate_against(&view) {
        // A column the policy bounds that reads as text holds a value that is not a
        // number: name the first one, with its row, rather than the type it made.
        if let Some(found) = decoding(path, || first_non_number(source, policy, &schema))? {
            return Err(input_err(path, found));
        }
        return Err(Error::from(e).into());
    }
    let layout = Layout::new(
        path,
        policy,
        &schema,
        policy.dataset.privacy_unit.is_some(),
        secret,
    )?;
    let written = decoding(path, || {
        write_parquet(
            path,
            schema.clone(),
            batches,
            policy.dataset.privacy_unit.as_deref().map(|column| Units {
                column,
                missing: policy.dataset.missing_unit,
                k: i64::from(policy.dataset.max_rows_per_unit),
            }),
            &policy
                .columns
                .iter()
                .filter(|c| c.desensitize.is_none())
                .filter_map(|c| c.bounds().map(|(l, u)| (c.name.clone(), l, u)))
                .collect::<Vec<_>>(),
            Inspect::new(policy, &schema),
            &layout,
            (dir, file_rows),
            sealing,
        )
    })?;
    Ok((columns, written))
}

/// The Arrow schema of a dataset version's stored files (its first file's).
pub fn arrow_schema(keys: &DatasetKeys, version: &DatasetVersion) -> Result<Arc<Schema>> {
    Ok(stored_reader(keys, version, 0)?.schema().clone())
}

/// A reader of a dataset version's stored data file number `part` (decrypted with its
/// key, as that part).
pub fn stored_reader(
    keys: &DatasetKeys,
    version: &DatasetVersion,
    part: u32,
) -> Result<ParquetRecordBatchReaderBuilder<File>> {
    let file = File::open(version.path.join(catalog::data_file_name(part)))?;
    let mut options = ArrowReaderOptions::new();
    if let Some(props) = keys.decryption(&version.name, version.version, part)? {
        options = options.with_file_decryption_properties(props);
    }
    Ok(
        ParquetRecordBatchReaderBuilder::try_new_with_options(file, options).map_err(|e| {
            Error::Verify(format!(
                "the stored file {} of `{}` version {}: {e}",
                catalog::data_file_name(part),
                version.name,
                version.version
            ))
        })?,
    )
}

/// Readers of every data file of a dataset version, in order.
pub fn stored_readers(
    keys: &DatasetKeys,
    version: &DatasetVersion,
) -> Result<Vec<ParquetRecordBatchReaderBuilder<File>>> {
    (0..version.data_files.max(1))
        .map(|part| stored_reader(keys, version, part))
        .collect()
}
