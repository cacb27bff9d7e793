//! Automated disclosure checks on a staged output (QQHR Art. 9, 17: no direct exposure of
//! raw, sensitive or private data).

use std::sync::LazyLock;

use arrow::array::{Array, RecordBatch};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use regex::Regex;
use serde::Serialize;

use crate::Result;
use crate::wasm::{OutputKind, StagedOutput};

/// Most rows a table output may have.
pub const MAX_TABLE_ROWS: usize = 10_000;

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Nothing found.
    Pass,
    /// A disclosure risk: release needs a written override and the supervisor.
    Fail,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    /// Check name.
    pub check: &'static str,
    /// Outcome.
    pub outcome: Outcome,
    /// Why.
    pub reason: String,
}

/// All checks of one output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckReport {
    /// Results in order.
    pub results: Vec<CheckResult>,
}

impl CheckReport {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.results.iter().all(|r| r.outcome == Outcome::Pass)
    }
}

static RESIDENT_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b\d{17}[\dXx]\b").unwrap_or_else(|_| unreachable_regex()));
static MOBILE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b1[3-9]\d{9}\b").unwrap_or_else(|_| unreachable_regex()));

fn unreachable_regex() -> Regex {
    // The patterns above are constants; this keeps the code free of `unwrap`.
    Regex::new("$^").unwrap_or_else(|_| std::process::abort())
}

/// Whether an 18-character string is a resident ID number with a valid GB 11643 check
/// character.
pub fn is_resident_id(s: &str) -> bool {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let b = s.as_bytes();
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = b[..17]
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    b[17].to_ascii_uppercase() == CHECK[(sum % 11) as usize]
}

/// Finds resident ID numbers (with valid checksum) and mobile numbers in text.
pub fn scan_identifiers(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for m in RESIDENT_ID.find_iter(text) {
        if is_resident_id(m.as_str()) {
            found.push(format!("resident ID number {}", mask(m.as_str())));
        }
    }
    for m in MOBILE.find_iter(text) {
        found.push(format!("mobile number {}", mask(m.as_str())));
    }
    found
}

fn mask(s: &str) -> String {
    let n = s.chars().count();
    s.chars()
        .enumerate()
        .map(|(i, c)| if i < 3 || i + 4 >= n { c } else { '*' })
        .collect()
}

fn table_text(batches: &[RecordBatch]) -> Result<String> {
    let mut text = String::new();
    let options = FormatOptions::default();
    for b in batches {
        for f in b.schema().fields() {
            text.push_str(f.name());
            text.push('\n');
        }
        for col in b.columns() {
            let fmt = ArrayFormatter::try_new(col.as_ref(), &options)?;
            for i in 0..col.len() {
                text.push_str(&fmt.value(i).to_string());
                text.push('\n');
            }
        }
    }
    Ok(text)
}

/// Runs every check on an output.
pub fn run(output: &StagedOutput) -> Result<CheckReport> {
    let mut results = Vec::new();
    let text = match output.kind {
        OutputKind::Table => {
            let batches = crate::wasm::decode_ipc_public(&output.bytes)?;
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            results.push(CheckResult {
                check: "type_and_size",
                outcome: if rows <= MAX_TABLE_ROWS {
                    Outcome::Pass
                } else {
                    Outcome::Fail
                },
                reason: format!("table, {rows} rows, {} bytes", output.bytes.len()),
            });
            table_text(&batches)?
        }
        OutputKind::Text => {
            let text = String::from_utf8_lossy(&output.bytes).into_owned();
            results.push(CheckResult {
                check: "type_and_size",
                outcome: Outcome::Pass,
                reason: format!("Markdown text, {} bytes", output.bytes.len()),
            });
            text
        }
        OutputKind::Chart => {
            let words = crate::wasm::check_svg(&output.bytes);
            results.push(CheckResult {
                check: "type_and_size",
                outcome: if words.is_ok() {
                    Outcome::Pass
                } else {
                    Outcome::Fail
                },
                reason: match &words {
                    Ok(_) => format!("SVG chart, {} bytes", output.bytes.len()),
                    Err(e) => format!("SVG chart refused: {e}"),
                },
            });
            words.unwrap_or_else(|_| String::from_utf8_lossy(&output.bytes).into_owned())
        }
    };
    let found = scan_identifiers(&text);
    results.push(CheckResult {
        check: "identifier_scan",
        outcome: if found.is_empty() {
            Outcome::Pass
        } else {
            Outcome::Fail
        },
        reason: if found.is_empty() {
            "no resident ID or mobile numbers".into()
        } else {
            format!("found {}", found.join(", "))
        },
    });
    Ok(CheckReport { results })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_id_checksum() {
        // A well-known sample number with a valid check digit.
        assert!(is_resident_id("11010519491231002X"));
        assert!(!is_resident_id("110105194912310021"));
        assert!(!is_resident_id("1101051949123100"));
    }

    #[test]
    fn scan_finds_ids_and_mobiles_not_other_numbers() {
        let found = scan_identifiers("id 11010519491231002X phone 13812345678 income 123456.78");
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(scan_identifiers("count 12345678901234 avg 52000.5").is_empty());
        // An invalid checksum is not reported as an ID.
        assert!(scan_identifiers("110105194912310021").is_empty());
    }
}
