//! Tables: query results from the host, and tables a module builds to emit.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Decimal32Type, Decimal64Type, Decimal128Type, Float16Type, Float32Type, Float64Type, Int8Type,
    Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, RecordBatchOptions,
    StringArray,
};
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use crate::abi;
use crate::error::{Error, Result};

/// A table: an Arrow schema (with the host's metadata) and its rows, held as one
/// [`RecordBatch`].
///
/// Tables come from [`Context::query`](crate::Context::query), or are built with
/// [`Table::builder`] (or from any `RecordBatch`) and emitted with
/// [`Context::emit_table`](crate::Context::emit_table).
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    batch: RecordBatch,
}

impl Table {
    /// Starts building a table column by column.
    ///
    /// ```
    /// # use sandbox_sdk::Table;
    /// let t = Table::builder()
    ///     .column_str("district", vec!["north", "south"])
    ///     .column_f64("share", vec![0.25, 0.75])
    ///     .build()?;
    /// assert_eq!(t.num_rows(), 2);
    /// # Ok::<(), sandbox_sdk::Error>(())
    /// ```
    pub fn builder() -> TableBuilder {
        TableBuilder::default()
    }

    /// Wraps a record batch (schema metadata included) as a table.
    pub fn from_record_batch(batch: RecordBatch) -> Self {
        Table { batch }
    }

    /// Decodes an Arrow IPC stream (a schema message followed by record batches); the
    /// batches are concatenated into one.
    pub fn from_ipc(bytes: &[u8]) -> Result<Self> {
        let decode = |e: arrow_schema::ArrowError| Error::Decode(format!("Arrow IPC stream: {e}"));
        let reader = StreamReader::try_new(bytes, None).map_err(decode)?;
        let schema = reader.schema();
        let batches = reader.collect::<Result<Vec<_>, _>>().map_err(decode)?;
        let batch = match batches.as_slice() {
            [] => RecordBatch::new_empty(schema),
            [one] => one.clone(),
            _ => arrow_select::concat::concat_batches(&schema, &batches).map_err(decode)?,
        };
        Ok(Table { batch })
    }

    /// Encodes the table as an Arrow IPC stream (uncompressed), the format of
    /// [`Context::emit_table`](crate::Context::emit_table).
    pub fn to_ipc(&self) -> Result<Vec<u8>> {
        let encode =
            |e: arrow_schema::ArrowError| Error::invalid(format!("Arrow IPC encoding: {e}"));
        let mut writer =
            StreamWriter::try_new(Vec::new(), self.batch.schema_ref()).map_err(encode)?;
        writer.write(&self.batch).map_err(encode)?;
        writer.finish().map_err(encode)?;
        writer.into_inner().map_err(encode)
    }

    /// The number of rows.
    pub fn num_rows(&self) -> usize {
        self.batch.num_rows()
    }

    /// The number of columns.
    pub fn num_columns(&self) -> usize {
        self.batch.num_columns()
    }

    /// The column names, in order.
    pub fn column_names(&self) -> Vec<&str> {
        self.batch
            .schema_ref()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect()
    }

    /// The Arrow schema, with its metadata.
    pub fn schema(&self) -> &SchemaRef {
        self.batch.schema_ref()
    }

    /// The rows as one Arrow record batch.
    pub fn record_batch(&self) -> &RecordBatch {
        &self.batch
    }

    /// Unwraps the record batch.
    pub fn into_record_batch(self) -> RecordBatch {
        self.batch
    }

    /// A schema-level metadata value, e.g. `"sandbox.query_id"`.
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.batch
            .schema_ref()
            .metadata()
            .get(key)
            .map(String::as_str)
    }

    /// The ε the host charged for the query that produced this table (`sandbox.epsilon`);
    /// 0.0 if absent, as for a table the module built itself.
    pub fn epsilon(&self) -> f64 {
        self.metadata_f64(abi::META_EPSILON)
    }

    /// The δ the host charged for the query (`sandbox.delta`); 0.0 if absent.
    pub fn delta(&self) -> f64 {
        self.metadata_f64(abi::META_DELTA)
    }

    /// The noise mechanism the host applied (`sandbox.mechanism`, e.g. `"laplace"`).
    pub fn mechanism(&self) -> Option<&str> {
        self.metadata(abi::META_MECHANISM)
    }

    /// The host's identifier of the query (`sandbox.query_id`).
    pub fn query_id(&self) -> Option<&str> {
        self.metadata(abi::META_QUERY_ID)
    }

    /// The scale of the noise added to a column (field metadata `sandbox.noise_scale`),
    /// if the host reported one.
    pub fn noise_scale(&self, column: &str) -> Option<f64> {
        let schema = self.batch.schema_ref();
        let field = schema.field_with_name(column).ok()?;
        field
            .metadata()
            .get(abi::META_NOISE_SCALE)?
            .trim()
            .parse()
            .ok()
    }

    fn field_f64(&self, column: &str, key: &str) -> Option<f64> {
        let schema = self.batch.schema_ref();
        let field = schema.field_with_name(column).ok()?;
        field.metadata().get(key)?.trim().parse().ok()
    }

    /// The half-width of the column's 95 % interval (field metadata `sandbox.ci95`): the
    /// released value lies within it of the true one 19 times in 20. For an average or a
    /// variance it is the widest of the column's cells.
    pub fn ci95(&self, column: &str) -> Option<f64> {
        self.field_f64(column, abi::META_CI95)
    }

    /// The unit the column's values are rounded to (field metadata `sandbox.rounding`).
    pub fn rounding(&self, column: &str) -> Option<f64> {
        self.field_f64(column, abi::META_ROUNDING)
    }

    /// How many of the column's cells were withheld (NULL) as too uncertain to mean
    /// anything (field metadata `sandbox.withheld`); 0 when none were.
    pub fn withheld(&self, column: &str) -> usize {
        self.field_f64(column, abi::META_WITHHELD)
            .map_or(0, |v| v as usize)
    }

    /// The table with every column that names a rounding unit rounded to it (floats, and
    /// integers to units above 1); metadata kept. [`Context::query`](crate::Context::query)
    /// returns answers this way.
    pub fn rounded(&self) -> Table {
        let schema = self.batch.schema();
        let mut changed = false;
        let columns: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .zip(self.batch.columns())
            .map(|(field, column)| {
                let Some(unit) = field
                    .metadata()
                    .get(abi::META_ROUNDING)
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .filter(|u| u.is_finite() && *u > 0.0)
                else {
                    return column.clone();
                };
                match field.data_type() {
                    DataType::Float64 => {
                        changed = true;
                        let a = column.as_primitive::<Float64Type>();
                        Arc::new(
                            a.iter()
                                .map(|v| v.map(|v| round_to(v, unit)))
                                .collect::<Float64Array>(),
                        ) as ArrayRef
                    }
                    DataType::Int64 if unit > 1.0 => {
                        changed = true;
                        let a = column.as_primitive::<Int64Type>();
                        Arc::new(
                            a.iter()
                                .map(|v| v.map(|v| round_to(v as f64, unit) as i64))
                                .collect::<Int64Array>(),
                        ) as ArrayRef
                    }
                    _ => column.clone(),
                }
            })
            .collect();
        if !changed {
            return self.clone();
        }
        match RecordBatch::try_new(schema, columns) {
            Ok(batch) => Table { batch },
            Err(_) => self.clone(),
        }
    }

    fn metadata_f64(&self, key: &str) -> f64 {
        self.metadata(key)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// The column with this name.
    pub fn column(&self, name: &str) -> Result<&ArrayRef> {
        self.batch.column_by_name(name).ok_or_else(|| {
            Error::invalid(format!(
                "no column named `{name}` (columns: {})",
                self.column_names().join(", ")
            ))
        })
    }

    /// A numeric column as `f64` values (`None` for nulls). Accepts every integer and
    /// floating-point Arrow type, and decimals (converted with their scale).
    pub fn f64_column(&self, name: &str) -> Result<Vec<Option<f64>>> {
        let array = self.column(name)?;
        numeric_as_f64(array.as_ref())
            .ok_or_else(|| type_error(name, array.data_type(), "a numeric type"))
    }

    /// An integer column as `i64` values (`None` for nulls). Accepts every signed and
    /// unsigned integer Arrow type; a `UInt64` value above `i64::MAX` is an error.
    /// Floating-point columns are refused: use [`Table::f64_column`] and round explicitly.
    pub fn i64_column(&self, name: &str) -> Result<Vec<Option<i64>>> {
        let array = self.column(name)?;
        let Some(values) = integer_as_i64(array.as_ref()) else {
            return Err(type_error(name, array.data_type(), "an integer type"));
        };
        values
            .map_err(|v| Error::invalid(format!("column `{name}`: value {v} does not fit in i64")))
    }

    /// A string column (`Utf8`, `LargeUtf8`, `Utf8View`, or a dictionary of those) as
    /// owned strings (`None` for nulls).
    pub fn str_column(&self, name: &str) -> Result<Vec<Option<String>>> {
        let array = self.column(name)?;
        strings(array.as_ref()).ok_or_else(|| type_error(name, array.data_type(), "a string type"))
    }
}

impl From<RecordBatch> for Table {
    fn from(batch: RecordBatch) -> Self {
        Table::from_record_batch(batch)
    }
}

fn type_error(name: &str, actual: &DataType, expected: &str) -> Error {
    Error::invalid(format!(
        "column `{name}` has type {actual}, expected {expected}"
    ))
}

fn numeric_as_f64(array: &dyn Array) -> Option<Vec<Option<f64>>> {
    macro_rules! prim {
        ($t:ty) => {
            array
                .as_primitive_opt::<$t>()?
                .iter()
                .map(|v| v.map(|x| x as f64))
                .collect()
        };
    }
    fn decimal_divisor(scale: i8) -> f64 {
        10f64.powi(i32::from(scale))
    }
    Some(match array.data_type() {
        DataType::Int8 => prim!(Int8Type),
        DataType::Int16 => prim!(Int16Type),
        DataType::Int32 => prim!(Int32Type),
        DataType::Int64 => prim!(Int64Type),
        DataType::UInt8 => prim!(UInt8Type),
        DataType::UInt16 => prim!(UInt16Type),
        DataType::UInt32 => prim!(UInt32Type),
        DataType::UInt64 => prim!(UInt64Type),
        DataType::Float32 => prim!(Float32Type),
        DataType::Float64 => prim!(Float64Type),
        DataType::Float16 => array
            .as_primitive_opt::<Float16Type>()?
            .iter()
            .map(|v| v.map(|x| x.to_f64()))
            .collect(),
        DataType::Decimal32(_, scale) => {
            let d = decimal_divisor(*scale);
            array
                .as_primitive_opt::<Decimal32Type>()?
                .iter()
                .map(|v| v.map(|x| f64::from(x) / d))
                .collect()
        }
        DataType::Decimal64(_, scale) => {
            let d = decimal_divisor(*scale);
            array
                .as_primitive_opt::<Decimal64Type>()?
                .iter()
                .map(|v| v.map(|x| x as f64 / d))
                .collect()
        }
        DataType::Decimal128(_, scale) => {
            let d = decimal_divisor(*scale);
            array
                .as_primitive_opt::<Decimal128Type>()?
                .iter()
                .map(|v| v.map(|x| x as f64 / d))
                .collect()
        }
        _ => return None,
    })
}

/// `None` if the type is not an integer type; `Some(Err(v))` for a `UInt64` out of range.
fn integer_as_i64(array: &dyn Array) -> Option<Result<Vec<Option<i64>>, u64>> {
    macro_rules! prim {
        ($t:ty) => {
            Ok(array
                .as_primitive_opt::<$t>()?
                .iter()
                .map(|v| v.map(i64::from))
                .collect())
        };
    }
    Some(match array.data_type() {
        DataType::Int8 => prim!(Int8Type),
        DataType::Int16 => prim!(Int16Type),
        DataType::Int32 => prim!(Int32Type),
        DataType::Int64 => prim!(Int64Type),
        DataType::UInt8 => prim!(UInt8Type),
        DataType::UInt16 => prim!(UInt16Type),
        DataType::UInt32 => prim!(UInt32Type),
        DataType::UInt64 => array
            .as_primitive_opt::<UInt64Type>()?
            .iter()
            .map(|v| v.map(|x| i64::try_from(x).map_err(|_| x)).transpose())
            .collect(),
        _ => return None,
    })
}

fn strings(array: &dyn Array) -> Option<Vec<Option<String>>> {
    let owned = |v: Option<&str>| v.map(str::to_owned);
    Some(match array.data_type() {
        DataType::Utf8 => array.as_string_opt::<i32>()?.iter().map(owned).collect(),
        DataType::LargeUtf8 => array.as_string_opt::<i64>()?.iter().map(owned).collect(),
        DataType::Utf8View => array.as_string_view_opt()?.iter().map(owned).collect(),
        DataType::Dictionary(_, _) => {
            let dict = array.as_any_dictionary_opt()?;
            let values = strings(dict.values().as_ref())?;
            let keys = dict.keys();
            dict.normalized_keys()
                .into_iter()
                .enumerate()
                .map(|(i, k)| {
                    if keys.is_null(i) {
                        None
                    } else {
                        values.get(k).cloned().flatten()
                    }
                })
                .collect()
        }
        _ => return None,
    })
}

/// A value accepted by [`TableBuilder::column_str`]: `&str`, `String`, `&String`, or an
/// `Option` of those (`None` is a null).
pub trait StrValue: sealed::Sealed {
    /// The value as an owned, optional string.
    fn into_value(self) -> Option<String>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for &str {}
    impl Sealed for String {}
    impl Sealed for &String {}
    impl<T: Sealed> Sealed for Option<T> {}
}

impl StrValue for &str {
    fn into_value(self) -> Option<String> {
        Some(self.to_owned())
    }
}

impl StrValue for String {
    fn into_value(self) -> Option<String> {
        Some(self)
    }
}

impl StrValue for &String {
    fn into_value(self) -> Option<String> {
        Some(self.clone())
    }
}

impl<T: StrValue> StrValue for Option<T> {
    fn into_value(self) -> Option<String> {
        self.and_then(StrValue::into_value)
    }
}

/// Builds a [`Table`] column by column; see [`Table::builder`].
///
/// Column lengths and names are checked by [`TableBuilder::build`]: every column must have
/// the same length, names must be unique, and there must be at least one column. All
/// columns are nullable.
#[derive(Debug, Default)]
#[must_use = "a builder does nothing until `build()` is called"]
pub struct TableBuilder {
    columns: Vec<(String, ArrayRef)>,
}

impl TableBuilder {
    /// Adds a string column (`Utf8`). Values are `&str`, `String` or `Option`s of those.
    pub fn column_str<I>(self, name: impl Into<String>, values: I) -> Self
    where
        I: IntoIterator,
        I::Item: StrValue,
    {
        let array: StringArray = values.into_iter().map(StrValue::into_value).collect();
        self.column(name, Arc::new(array))
    }

    /// Adds a `Float64` column. Values are `f64` or `Option<f64>`.
    pub fn column_f64<I>(self, name: impl Into<String>, values: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<Option<f64>>,
    {
        let array: Float64Array = values.into_iter().map(Into::into).collect();
        self.column(name, Arc::new(array))
    }

    /// Adds an `Int64` column. Values are `i64` or `Option<i64>`.
    pub fn column_i64<I>(self, name: impl Into<String>, values: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<Option<i64>>,
    {
        let array: Int64Array = values.into_iter().map(Into::into).collect();
        self.column(name, Arc::new(array))
    }

    /// Adds a `Boolean` column. Values are `bool` or `Option<bool>`.
    pub fn column_bool<I>(self, name: impl Into<String>, values: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<Option<bool>>,
    {
        let array: BooleanArray = values.into_iter().map(Into::into).collect();
        self.column(name, Arc::new(array))
    }

    /// Adds a column from any Arrow array, e.g. one taken from a query result with
    /// [`Table::column`].
    pub fn column(mut self, name: impl Into<String>, array: ArrayRef) -> Self {
        self.columns.push((name.into(), array));
        self
    }

    /// Checks the columns and builds the table.
    pub fn build(self) -> Result<Table> {
        let Some((first_name, first)) = self.columns.first() else {
            return Err(Error::invalid("a table needs at least one column"));
        };
        let rows = first.len();
        let mut seen = HashSet::new();
        for (name, array) in &self.columns {
            if !seen.insert(name.as_str()) {
                return Err(Error::invalid(format!("duplicate column name `{name}`")));
            }
            if array.len() != rows {
                return Err(Error::invalid(format!(
                    "column `{name}` has {} rows but column `{first_name}` has {rows}",
                    array.len()
                )));
            }
        }
        let fields: Vec<Field> = self
            .columns
            .iter()
            .map(|(name, array)| Field::new(name, array.data_type().clone(), true))
            .collect();
        let arrays = self.columns.into_iter().map(|(_, a)| a).collect();
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), arrays, &options)
            .map(Table::from_record_batch)
            .map_err(|e| Error::invalid(format!("building table: {e}")))
    }
}

/// At most this many rows are shown by `Display`.
const DISPLAY_ROWS: usize = 20;

impl fmt::Display for Table {
    /// A small text table: a header, a rule, and up to 20 rows. Numbers are right-aligned,
    /// nulls are shown as `NULL`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.num_rows().min(DISPLAY_ROWS);
        let columns: Vec<(&str, bool, Vec<String>)> = self
            .batch
            .schema_ref()
            .fields()
            .iter()
            .zip(self.batch.columns())
            .map(|(field, array)| {
                let cells = (0..shown).map(|row| cell(array.as_ref(), row)).collect();
                (field.name().as_str(), field.data_type().is_numeric(), cells)
            })
            .collect();
        let widths: Vec<usize> = columns
            .iter()
            .map(|(name, _, cells)| {
                cells
                    .iter()
                    .map(|c| c.chars().count())
                    .chain([name.chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();

        write_row(
            f,
            &widths,
            columns.iter().map(|(name, _, _)| (*name, false)),
        )?;
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        writeln!(f, "{}", rule.join("-+-"))?;
        for row in 0..shown {
            write_row(
                f,
                &widths,
                columns
                    .iter()
                    .map(|(_, numeric, cells)| (cells[row].as_str(), *numeric)),
            )?;
        }
        let hidden = self.num_rows() - shown;
        if hidden > 0 {
            writeln!(f, "... {hidden} more rows")?;
        }
        write!(f, "({} rows)", self.num_rows())
    }
}

/// One line of the text table: cells padded to their column's width, numbers right-aligned.
fn write_row<'a>(
    f: &mut fmt::Formatter<'_>,
    widths: &[usize],
    cells: impl Iterator<Item = (&'a str, bool)>,
) -> fmt::Result {
    let mut out = String::new();
    for (i, ((text, right), width)) in cells.zip(widths).enumerate() {
        if i > 0 {
            out.push_str(" | ");
        }
        let pad = width.saturating_sub(text.chars().count());
        if right {
            out.extend(std::iter::repeat_n(' ', pad));
            out.push_str(text);
        } else {
            out.push_str(text);
            out.extend(std::iter::repeat_n(' ', pad));
        }
    }
    writeln!(f, "{}", out.trim_end())
}

/// One cell as text, for `Display`.
fn cell(array: &dyn Array, row: usize) -> String {
    if array.is_null(row) {
        return "NULL".to_owned();
    }
    let one = array.slice(row, 1);
    let one = one.as_ref();
    if let Some(v) = strings(one) {
        return v.into_iter().next().flatten().unwrap_or_default();
    }
    if let Some(b) = one.as_boolean_opt() {
        return b.value(0).to_string();
    }
    if let Some(Ok(v)) = integer_as_i64(one) {
        return v
            .first()
            .copied()
            .flatten()
            .map(|x| x.to_string())
            .unwrap_or_default();
    }
    if let Some(a) = one.as_primitive_opt::<UInt64Type>() {
        return a.value(0).to_string();
    }
    if let Some(v) = numeric_as_f64(one) {
        return v
            .first()
            .copied()
            .flatten()
            .map(|x| x.to_string())
            .unwrap_or_default();
    }
    format!("<{}>", one.data_type())
}

/// Rounds `v` to a multiple of `unit` (a power of ten), printed without float residue.
fn round_to(v: f64, unit: f64) -> f64 {
    let r = (v / unit).round() * unit;
    let decimals = (-unit.log10().floor()).clamp(0.0, 15.0) as i32;
    let f = 10f64.powi(decimals);
    (r * f).round() / f
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;

    use arrow_array::types::Int8Type as DictKey;
    use arrow_array::{DictionaryArray, Int32Array, StringViewArray, UInt64Array};

    use super::*;

    fn sample() -> Table {
        Table::builder()
            .column_str("district", vec!["north", "south", "east"])
            .column_i64("residents", vec![120, 80, 45])
            .column_f64("avg_income", vec![Some(41234.5), None, Some(38000.25)])
            .build()
            .expect("valid table")
    }

    #[test]
    fn answers_are_rounded_to_the_unit_their_columns_name() {
        let t = sample();
        let schema = t.schema();
        let with = |name: &str, unit: &str| {
            let f = schema.field_with_name(name).expect("field").clone();
            f.with_metadata(std::collections::HashMap::from([
                (abi::META_ROUNDING.to_string(), unit.to_string()),
                (abi::META_CI95.to_string(), "123.4".to_string()),
                (abi::META_WITHHELD.to_string(), "1".to_string()),
            ]))
        };
        let fields = vec![
            schema.field(0).clone(),
            with("residents", "10"),
            with("avg_income", "0.1"),
        ];
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            t.record_batch().columns().to_vec(),
        )
        .expect("batch");
        let t = Table::from_record_batch(batch);
        let r = t.rounded();
        assert_eq!(
            r.i64_column("residents").expect("ints"),
            [Some(120), Some(80), Some(50)]
        );
        assert_eq!(
            r.f64_column("avg_income").expect("floats"),
            [Some(41234.5), None, Some(38000.3)]
        );
        assert_eq!(r.ci95("avg_income"), Some(123.4));
        assert_eq!(r.rounding("residents"), Some(10.0));
        assert_eq!(r.withheld("avg_income"), 1);
        assert_eq!(r.withheld("district"), 0);
        // Without a unit nothing changes.
        assert_eq!(sample().rounded(), sample());
    }

    #[test]
    fn builder_basics() {
        let t = sample();
        assert_eq!(t.num_rows(), 3);
        assert_eq!(t.num_columns(), 3);
        assert_eq!(t.column_names(), ["district", "residents", "avg_income"]);
        assert_eq!(t.epsilon(), 0.0);
        assert_eq!(t.mechanism(), None);
        assert_eq!(
            t.str_column("district").expect("strings"),
            [
                Some("north".to_owned()),
                Some("south".to_owned()),
                Some("east".to_owned())
            ]
        );
        assert_eq!(
            t.i64_column("residents").expect("ints"),
            [Some(120), Some(80), Some(45)]
        );
        assert_eq!(
            t.f64_column("residents").expect("ints as floats"),
            [Some(120.0), Some(80.0), Some(45.0)]
        );
        assert_eq!(
            t.f64_column("avg_income").expect("floats"),
            [Some(41234.5), None, Some(38000.25)]
        );
    }

    #[test]
    fn builder_accepts_owned_and_optional_values() {
        let names = vec!["a".to_string(), "b".to_string()];
        let t = Table::builder()
            .column_str("owned", names.clone())
            .column_str("borrowed", &names)
            .column_str("optional", vec![Some("x"), None])
            .column_bool("flag", vec![true, false])
            .column_i64("n", [Some(1), None])
            .build()
            .expect("valid table");
        assert_eq!(
            t.str_column("optional").expect("strings"),
            [Some("x".to_owned()), None]
        );
        assert_eq!(t.i64_column("n").expect("ints"), [Some(1), None]);
    }

    #[test]
    fn builder_checks_lengths_names_and_emptiness() {
        let err = Table::builder()
            .column_str("a", vec!["x", "y"])
            .column_f64("b", vec![1.0])
            .build()
            .expect_err("length mismatch");
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
        assert!(err.to_string().contains("`b` has 1 rows"), "{err}");

        let err = Table::builder()
            .column_f64("a", vec![1.0])
            .column_f64("a", vec![2.0])
            .build()
            .expect_err("duplicate");
        assert!(matches!(err, Error::InvalidArgument { .. }));

        let err = Table::builder().build().expect_err("no columns");
        assert!(matches!(err, Error::InvalidArgument { .. }));

        // Zero rows is fine.
        let t = Table::builder()
            .column_f64("a", Vec::<f64>::new())
            .build()
            .expect("empty table");
        assert_eq!(t.num_rows(), 0);
    }

    #[test]
    fn ipc_round_trip_keeps_data_and_metadata() {
        let t = sample();
        let bytes = t.to_ipc().expect("encode");
        let back = Table::from_ipc(&bytes).expect("decode");
        assert_eq!(back, t);

        // With host metadata.
        let schema = t.schema().as_ref().clone().with_metadata(HashMap::from([
            (abi::META_EPSILON.to_owned(), "0.5".to_owned()),
            (abi::META_DELTA.to_owned(), "1e-6".to_owned()),
            (abi::META_MECHANISM.to_owned(), "laplace".to_owned()),
            (abi::META_QUERY_ID.to_owned(), "q-7".to_owned()),
        ]));
        let fields: Vec<Field> = schema
            .fields()
            .iter()
            .map(|f| {
                let f = f.as_ref().clone();
                if f.name() == "residents" {
                    f.with_metadata(HashMap::from([(
                        abi::META_NOISE_SCALE.to_owned(),
                        "2.0".to_owned(),
                    )]))
                } else {
                    f
                }
            })
            .collect();
        let schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
        let batch = RecordBatch::try_new(schema, t.record_batch().columns().to_vec())
            .expect("same columns");
        let bytes = Table::from(batch).to_ipc().expect("encode");
        let back = Table::from_ipc(&bytes).expect("decode");
        assert_eq!(back.epsilon(), 0.5);
        assert_eq!(back.delta(), 1e-6);
        assert_eq!(back.mechanism(), Some("laplace"));
        assert_eq!(back.query_id(), Some("q-7"));
        assert_eq!(back.noise_scale("residents"), Some(2.0));
        assert_eq!(back.noise_scale("district"), None);
        assert_eq!(back.noise_scale("nope"), None);
    }

    #[test]
    fn ipc_multiple_batches_are_concatenated() {
        let t = sample();
        let mut writer = StreamWriter::try_new(Vec::new(), t.schema()).expect("writer");
        writer.write(t.record_batch()).expect("first");
        writer.write(&t.record_batch().slice(0, 2)).expect("second");
        writer.finish().expect("finish");
        let bytes = writer.into_inner().expect("bytes");
        let back = Table::from_ipc(&bytes).expect("decode");
        assert_eq!(back.num_rows(), 5);

        // A stream with a schema and no batches is an empty table.
        let mut writer = StreamWriter::try_new(Vec::new(), t.schema()).expect("writer");
        writer.finish().expect("finish");
        let back = Table::from_ipc(&writer.into_inner().expect("bytes")).expect("decode");
        assert_eq!(back.num_rows(), 0);
        assert_eq!(back.num_columns(), 3);
    }

    #[test]
    fn bad_ipc_is_a_decode_error() {
        assert!(matches!(Table::from_ipc(b""), Err(Error::Decode(_))));
        assert!(matches!(
            Table::from_ipc(b"not arrow at all"),
            Err(Error::Decode(_))
        ));
        let bytes = sample().to_ipc().expect("encode");
        assert!(matches!(
            Table::from_ipc(&bytes[..bytes.len() / 2]),
            Err(Error::Decode(_))
        ));
    }

    #[test]
    fn column_errors() {
        let t = sample();
        let err = t.column("missing").expect_err("missing column");
        assert!(matches!(err, Error::InvalidArgument { .. }));
        assert!(
            err.to_string().contains("district, residents, avg_income"),
            "{err}"
        );
        assert!(matches!(
            t.f64_column("district"),
            Err(Error::InvalidArgument { .. })
        ));
        assert!(matches!(
            t.i64_column("avg_income"),
            Err(Error::InvalidArgument { .. })
        ));
        assert!(matches!(
            t.str_column("residents"),
            Err(Error::InvalidArgument { .. })
        ));
    }

    #[test]
    fn other_arrow_types() {
        let dict: DictionaryArray<DictKey> = vec![Some("a"), None, Some("b"), Some("a")]
            .into_iter()
            .collect();
        let t = Table::builder()
            .column("small", Arc::new(Int32Array::from(vec![1, -2, 3, 4])))
            .column("big", Arc::new(UInt64Array::from(vec![1, 2, u64::MAX, 4])))
            .column(
                "view",
                Arc::new(StringViewArray::from(vec!["w", "x", "y", "z"])),
            )
            .column("dict", Arc::new(dict))
            .build()
            .expect("valid table");
        assert_eq!(
            t.i64_column("small").expect("i32"),
            [Some(1), Some(-2), Some(3), Some(4)]
        );
        assert!(matches!(
            t.i64_column("big"),
            Err(Error::InvalidArgument { .. })
        ));
        assert_eq!(t.f64_column("big").expect("u64")[2], Some(u64::MAX as f64));
        assert_eq!(t.str_column("view").expect("view")[3].as_deref(), Some("z"));
        assert_eq!(
            t.str_column("dict").expect("dict"),
            [
                Some("a".to_owned()),
                None,
                Some("b".to_owned()),
                Some("a".to_owned())
            ]
        );
    }

    #[test]
    fn decimal_as_f64() {
        let array = arrow_array::Decimal128Array::from(vec![Some(12345), None])
            .with_precision_and_scale(10, 2)
            .expect("valid decimal");
        let t = Table::builder()
            .column("d", Arc::new(array))
            .build()
            .expect("valid table");
        assert_eq!(t.f64_column("d").expect("decimal"), [Some(123.45), None]);
    }

    #[test]
    fn display_is_a_small_text_table() {
        let text = sample().to_string();
        let expected = "\
district | residents | avg_income
---------+-----------+-----------
north    |       120 |    41234.5
south    |        80 |       NULL
east     |        45 |   38000.25
(3 rows)";
        assert_eq!(text, expected);

        let many = Table::builder()
            .column_i64("n", 0..25)
            .build()
            .expect("valid table")
            .to_string();
        assert!(many.contains("... 5 more rows"), "{many}");
        assert!(many.ends_with("(25 rows)"), "{many}");
    }
}
