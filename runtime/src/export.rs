//! Tables as the people who receive them open them: CSV (UTF-8 with a byte-order mark, so
//! Excel and WPS read Chinese text right) and XLSX, besides Arrow. One conversion for the
//! CLI, the API and the console; what is signed in a product stays the Arrow file, and a
//! conversion is a copy of its content.

use std::path::Path;

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::{Error, Result};

/// How a table is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// As staged and signed: an Arrow IPC stream.
    Arrow,
    /// Comma-separated values, with a header row.
    Csv,
    /// An Excel workbook of one sheet.
    Xlsx,
}

impl Format {
    /// The format a file name's extension asks for (`.csv`, `.xlsx`; anything else is
    /// Arrow).
    pub fn of_path(path: &Path) -> Format {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("csv") => Format::Csv,
            Some("xlsx") => Format::Xlsx,
            _ => Format::Arrow,
        }
    }

    /// The format named `name` (`arrow`, `csv`, `xlsx`).
    pub fn parse(name: &str) -> Result<Format> {
        match name {
            "arrow" => Ok(Format::Arrow),
            "csv" => Ok(Format::Csv),
            "xlsx" => Ok(Format::Xlsx),
            other => Err(Error::Invalid(format!(
                "format `{other}`: arrow, csv or xlsx"
            ))),
        }
    }

    /// Its file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Arrow => "arrow",
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
        }
    }
}

/// Whether `file_name` is a table (an Arrow file) that converts.
pub fn is_table(file_name: &str) -> bool {
    file_name.ends_with(".arrow")
}

/// The file `file_name` (bytes `bytes`) in `format`: its new name and bytes. Only tables
/// convert; anything else is refused unless asked for as it is.
pub fn convert(file_name: &str, bytes: Vec<u8>, format: Format) -> Result<(String, Vec<u8>)> {
    if format == Format::Arrow {
        return Ok((file_name.to_string(), bytes));
    }
    if !is_table(file_name) {
        return Err(Error::Invalid(format!(
            "`{file_name}` is not a table: only tables are written as CSV or XLSX"
        )));
    }
    let batches = sandbox_host::decode_ipc(&bytes)?;
    let stem = file_name.trim_end_matches(".arrow");
    let out = match format {
        Format::Csv => csv(&batches)?,
        Format::Xlsx => xlsx(stem, &batches)?,
        Format::Arrow => bytes,
    };
    Ok((format!("{stem}.{}", format.extension()), out))
}

/// A staged or released file as a person reads it in a terminal: a table as a grid of its
/// first `max_rows` rows (and how many there are), Markdown as written; a chart is named,
/// not printed; what is said about it in `lang`.
pub fn show(
    file_name: &str,
    bytes: &[u8],
    max_rows: usize,
    lang: sandbox_core::Lang,
) -> Result<String> {
    if is_table(file_name) {
        let batches = sandbox_host::decode_ipc(bytes)?;
        let total: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let mut shown = Vec::new();
        let mut left = max_rows;
        for b in &batches {
            if left == 0 {
                break;
            }
            let n = b.num_rows().min(left);
            shown.push(b.slice(0, n));
            left -= n;
        }
        let grid = arrow::util::pretty::pretty_format_batches(&shown)
            .map_err(|e| Error::Internal(format!("table: {e}")))?;
        let said = if total > max_rows {
            sandbox_i18n::t!(lang, "cli-table-first", total = total, shown = max_rows)
        } else {
            sandbox_i18n::t!(lang, "cli-table-rows", total = total)
        };
        return Ok(format!("{grid}\n{said}"));
    }
    if file_name.ends_with(".md") {
        return String::from_utf8(bytes.to_vec())
            .map_err(|_| Error::Invalid(format!("`{file_name}` is not UTF-8 text")));
    }
    Ok(sandbox_i18n::t!(
        lang,
        "cli-chart-not-shown",
        name = file_name,
        bytes = bytes.len()
    ))
}

/// CSV with a header row and a UTF-8 byte-order mark; NULL is an empty field.
pub fn csv(batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let mut out = "\u{feff}".as_bytes().to_vec();
    {
        let mut writer = arrow::csv::WriterBuilder::new()
            .with_header(true)
            .build(&mut out);
        for b in batches {
            writer
                .write(b)
                .map_err(|e| Error::Internal(format!("csv: {e}")))?;
        }
    }
    Ok(out)
}

/// An XLSX workbook: one sheet named after the table, a bold header row, numbers as
/// numbers, NULL as an empty cell, everything else as its text; columns fitted.
pub fn xlsx(name: &str, batches: &[RecordBatch]) -> Result<Vec<u8>> {
    use rust_xlsxwriter::{Format as Cell, Workbook};
    let xl = |e: rust_xlsxwriter::XlsxError| Error::Internal(format!("xlsx: {e}"));
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    // Sheet names: at most 31 characters, none of []:*?/\.
    let sheet_name: String = name
        .chars()
        .filter(|c| !"[]:*?/\\".contains(*c))
        .take(31)
        .collect();
    if !sheet_name.trim().is_empty() {
        sheet.set_name(&sheet_name).map_err(xl)?;
    }
    let bold = Cell::new().set_bold();
    let Some(first) = batches.first() else {
        return book.save_to_buffer().map_err(xl);
    };
    let schema = first.schema();
    for (c, field) in schema.fields().iter().enumerate() {
        sheet
            .write_string_with_format(0, col(c)?, field.name(), &bold)
            .map_err(xl)?;
    }
    let options = FormatOptions::default();
    let mut row: u32 = 1;
    for batch in batches {
        for (c, array) in batch.columns().iter().enumerate() {
            let numbers = numeric(array.data_type()).then(|| {
                arrow::compute::cast(array, &DataType::Float64)
                    .ok()
                    .and_then(|a| {
                        a.as_any()
                            .downcast_ref::<arrow::array::Float64Array>()
                            .cloned()
                    })
            });
            let text = ArrayFormatter::try_new(array.as_ref(), &options)
                .map_err(|e| Error::Internal(format!("xlsx: {e}")))?;
            for r in 0..batch.num_rows() {
                let at = row
                    .checked_add(u32::try_from(r).map_err(|_| too_many())?)
                    .ok_or_else(too_many)?;
                if at > 1_048_575 {
                    return Err(too_many());
                }
                if array.is_null(r) {
                    continue;
                }
                match &numbers {
                    Some(Some(n)) if n.value(r).is_finite() => {
                        sheet.write_number(at, col(c)?, n.value(r)).map_err(xl)?;
                    }
                    _ => {
                        sheet
                            .write_string(at, col(c)?, text.value(r).to_string())
                            .map_err(xl)?;
                    }
                }
            }
        }
        row = row
            .checked_add(u32::try_from(batch.num_rows()).map_err(|_| too_many())?)
            .ok_or_else(too_many)?;
    }
    sheet.autofit();
    book.save_to_buffer().map_err(xl)
}

fn numeric(t: &DataType) -> bool {
    t.is_numeric() && !matches!(t, DataType::Decimal256(..))
}

fn col(c: usize) -> Result<u16> {
    u16::try_from(c)
        .ok()
        .filter(|c| *c < 16_384)
        .ok_or_else(|| {
            Error::Invalid("a table of more than 16,384 columns does not fit a sheet".into())
        })
}

fn too_many() -> Error {
    Error::Invalid("a table of more than 1,048,575 rows does not fit a sheet".into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use arrow::array::{Float64Array, Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    fn sample() -> Vec<u8> {
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("区", DataType::Utf8, true),
                Field::new("residents", DataType::Int64, true),
                Field::new("avg_income", DataType::Float64, true),
            ])),
            vec![
                Arc::new(StringArray::from(vec![Some("和平区"), Some("河西区")])),
                Arc::new(Int64Array::from(vec![Some(120), Some(80)])),
                Arc::new(Float64Array::from(vec![Some(41234.5), None])),
            ],
        )
        .unwrap();
        let mut w = arrow::ipc::writer::StreamWriter::try_new(Vec::new(), &batch.schema()).unwrap();
        w.write(&batch).unwrap();
        w.finish().unwrap();
        w.into_inner().unwrap()
    }

    #[test]
    fn a_table_becomes_csv_with_a_bom_and_xlsx() {
        let (name, csv) = convert("by_district.arrow", sample(), Format::Csv).unwrap();
        assert_eq!(name, "by_district.csv");
        let text = String::from_utf8(csv).unwrap();
        assert_eq!(
            text,
            "\u{feff}区,residents,avg_income\n和平区,120,41234.5\n河西区,80,\n"
        );
        let (name, xlsx) = convert("by_district.arrow", sample(), Format::Xlsx).unwrap();
        assert_eq!(name, "by_district.xlsx");
        // A zip (the XLSX container) holding the sheet.
        assert_eq!(&xlsx[..2], b"PK");
        assert!(xlsx.len() > 1000);
    }

    #[test]
    fn a_table_is_shown_as_a_grid_with_its_row_count() {
        let shown = show("t.arrow", &sample(), 1, sandbox_core::Lang::En).unwrap();
        assert!(shown.contains("| 和平区 | 120"), "{shown}");
        assert!(!shown.contains("河西区"), "{shown}");
        assert!(shown.ends_with("2 rows, the first 1 shown"), "{shown}");
        let zh = show("t.arrow", &sample(), 1, sandbox_core::Lang::ZhCn).unwrap();
        assert!(zh.ends_with("共 2 行，显示前 1 行"), "{zh}");
        assert_eq!(
            show("s.md", "# 标题".as_bytes(), 5, sandbox_core::Lang::En).unwrap(),
            "# 标题"
        );
        assert!(
            show("c.svg", b"<svg/>", 5, sandbox_core::Lang::En)
                .unwrap()
                .contains("chart")
        );
    }

    #[test]
    fn only_tables_convert_and_bad_tables_are_refused() {
        assert!(matches!(
            convert("summary.md", b"# hi".to_vec(), Format::Csv),
            Err(Error::Invalid(_))
        ));
        assert_eq!(
            convert("summary.md", b"# hi".to_vec(), Format::Arrow)
                .unwrap()
                .1,
            b"# hi"
        );
        assert!(convert("bad.arrow", b"not arrow".to_vec(), Format::Xlsx).is_err());
        assert_eq!(Format::of_path(Path::new("a/b.XLSX")), Format::Xlsx);
        assert_eq!(Format::of_path(Path::new("b.arrow")), Format::Arrow);
        assert!(Format::parse("pdf").is_err());
    }
}
