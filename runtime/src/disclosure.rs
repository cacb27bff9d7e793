//! Automated disclosure checks on a staged output (QQHR Art. 9, 17: no direct exposure of
//! raw, sensitive or private data), configured from the `[disclosure]` section of the
//! scenario's dataset policies (the strictest setting of all of them wins).
//!
//! In the spirit of ACRO, an output's kind decides its risks and each risk has a check:
//!
//! | check | what it looks at | finding |
//! |---|---|---|
//! | `type_and_size` | kind allow-list, byte cap, row cap, SVG vocabulary | policy's severity |
//! | `identifiers` | resident IDs (checksum), mobiles, bank cards (Luhn), e-mail, plates | 〃 |
//! | `raw_values` | cells and words against hashed sets of rare raw values | 〃 |
//! | `threshold` | threshold mode: suppressed cells filled in, small cells, revealing totals | 〃 |
//! | `provenance` | every number traced to the answers the host recorded for the job | 〃 |
//! | `differencing` | threshold mode: tables against the scenario's released tables | 〃 |
//!
//! Each check gives `pass`, `review` (a reviewer must look and say why it is fine) or
//! `fail` (release needs a written override at both tiers, so the supervisor's approval).
//! Reasons name where a finding is, never the raw value found.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use arrow::array::{Array, ArrayRef, RecordBatch};
use arrow::datatypes::DataType;
use regex::Regex;
use sandbox_policies::{CheckSeverities, IdentifierKind, OutputKindName, Policy, Severity};
use serde::Serialize;

use sandbox_core::Lang;
use sandbox_core::job::{OutputKind, StagedOutput};
use sandbox_i18n::Phrase;
use sandbox_mediator::values::{ValueHasher, ValueSet, canonical_cells, canonical_number};

pub use sandbox_store::queries::Withheld;

use crate::Result;

/// How many examples a reason lists.
const EXAMPLES: usize = 5;

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Nothing found.
    Pass,
    /// Found something a reviewer must look at and comment on.
    Review,
    /// A disclosure risk: release needs a written override and the supervisor.
    Fail,
}

impl From<Severity> for Outcome {
    fn from(s: Severity) -> Self {
        match s {
            Severity::Review => Outcome::Review,
            Severity::Fail => Outcome::Fail,
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    /// Check name.
    pub check: &'static str,
    /// Outcome.
    pub outcome: Outcome,
    /// Why, in English (as recorded in the audit trail).
    pub reason: String,
    /// Why, as a phrase of the message catalogue: each reader reads it in their language.
    pub message: Phrase,
}

impl CheckResult {
    fn new(check: &'static str, outcome: Outcome, message: Phrase) -> CheckResult {
        CheckResult {
            check,
            outcome,
            reason: message.say(Lang::En),
            message,
        }
    }
}

/// A recorded check result's reason in `lang`: its phrase when it has one, else the
/// English reason it was recorded with.
pub fn reason_in(lang: Lang, result: &serde_json::Value) -> String {
    serde_json::from_value::<Phrase>(result["message"].clone())
        .map(|p| p.say(lang))
        .unwrap_or_else(|_| result["reason"].as_str().unwrap_or("").to_string())
}

/// Where in an output something was found: a table's cell or a text's line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Place {
    Cell { row: usize, column: String },
    Row(usize),
    Line(usize),
}

impl Place {
    fn phrase(&self) -> Phrase {
        match self {
            Place::Cell { row, column } => Phrase::new("check-at-cell")
                .arg("row", *row)
                .arg("column", column.as_str()),
            Place::Row(row) => Phrase::new("check-at-row").arg("row", *row),
            Place::Line(line) => Phrase::new("check-at-line").arg("line", *line),
        }
    }
}

/// A finding at a place: `line 3: ...`.
fn at(place: &Place, what: Phrase) -> Phrase {
    Phrase::new("check-finding")
        .arg("at", place.phrase())
        .arg("what", what)
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

    /// Whether a check failed: release needs an override at both tiers.
    pub fn failed(&self) -> bool {
        self.results.iter().any(|r| r.outcome == Outcome::Fail)
    }

    /// The worst outcome.
    pub fn worst(&self) -> Outcome {
        self.results
            .iter()
            .map(|r| r.outcome)
            .max()
            .unwrap_or(Outcome::Pass)
    }
}

/// The checks' settings for one scenario: the strictest of its datasets' policies.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Smallest group a released number may describe.
    pub min_group_size: u32,
    /// Largest table, in rows.
    pub max_rows: u32,
    /// Largest file, in bytes.
    pub max_bytes: u64,
    /// Kinds allowed.
    pub kinds: Vec<OutputKindName>,
    /// Identifier kinds scanned for.
    pub identifiers: Vec<IdentifierKind>,
    /// Severity of each check's finding.
    pub severities: CheckSeverities,
    /// Whether the scenario runs in threshold mode (exact answers).
    pub threshold_mode: bool,
}

impl Rules {
    /// The strictest combination of the policies' settings.
    pub fn strictest(policies: &[&Policy], threshold_mode: bool) -> Rules {
        let d = sandbox_policies::Disclosure::default();
        let strict = |a: Severity, b: Severity| {
            if a == Severity::Fail || b == Severity::Fail {
                Severity::Fail
            } else {
                Severity::Review
            }
        };
        let mut rules = Rules {
            min_group_size: 1,
            max_rows: u32::MAX,
            max_bytes: u64::MAX,
            kinds: d.output_kinds.clone(),
            identifiers: Vec::new(),
            severities: CheckSeverities {
                type_and_size: Severity::Review,
                identifiers: Severity::Review,
                raw_values: Severity::Review,
                threshold: Severity::Review,
                provenance: Severity::Review,
                differencing: Severity::Review,
            },
            threshold_mode,
        };
        if policies.is_empty() {
            rules.min_group_size = d.min_group_size;
            rules.max_rows = d.max_output_rows;
            rules.max_bytes = d.max_output_bytes;
            rules.identifiers = d.identifiers;
            rules.severities = d.checks;
            return rules;
        }
        for p in policies {
            let d = &p.disclosure;
            rules.min_group_size = rules.min_group_size.max(d.min_group_size);
            rules.max_rows = rules.max_rows.min(d.max_output_rows);
            rules.max_bytes = rules.max_bytes.min(d.max_output_bytes);
            rules.kinds.retain(|k| d.output_kinds.contains(k));
            for i in &d.identifiers {
                if !rules.identifiers.contains(i) {
                    rules.identifiers.push(*i);
                }
            }
            let s = &mut rules.severities;
            let o = &d.checks;
            s.type_and_size = strict(s.type_and_size, o.type_and_size);
            s.identifiers = strict(s.identifiers, o.identifiers);
            s.raw_values = strict(s.raw_values, o.raw_values);
            s.threshold = strict(s.threshold, o.threshold);
            s.provenance = strict(s.provenance, o.provenance);
            s.differencing = strict(s.differencing, o.differencing);
        }
        rules
    }
}

/// Everything the checks compare an output with.
#[derive(Default)]
pub struct CheckContext {
    /// Settings.
    pub rules: Option<Rules>,
    /// Keyed hash of the value sets.
    pub hasher: Option<ValueHasher>,
    /// Rare raw values of the scenario's datasets.
    pub value_sets: Vec<ValueSet>,
    /// Every number of every answer the job received, sorted.
    pub received: Vec<f64>,
    /// Threshold mode: what the job's answers withheld.
    pub withheld: Vec<Withheld>,
    /// Tables already released in the scenario (and the job's other tables), by name.
    pub released_tables: Vec<(String, Vec<RecordBatch>)>,
}

impl CheckContext {
    /// Adds the numbers of a recorded answer (its JSON rows).
    pub fn receive_answer_json(&mut self, json: &str) {
        let Ok(serde_json::Value::Array(rows)) = serde_json::from_str::<serde_json::Value>(json)
        else {
            return;
        };
        for row in rows {
            if let serde_json::Value::Object(map) = row {
                for v in map.values() {
                    match v {
                        serde_json::Value::Number(n) => {
                            if let Some(x) = n.as_f64() {
                                self.received.push(x);
                            }
                        }
                        serde_json::Value::String(s) => {
                            if let Ok(x) = s.trim().parse::<f64>() {
                                self.received.push(x);
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    /// Sorts what was received; call once after the last [`Self::receive_answer_json`].
    pub fn seal(&mut self) {
        self.received.retain(|x| x.is_finite());
        self.received.sort_by(f64::total_cmp);
    }

    fn traced(&self, n: &Number) -> bool {
        let tol = match n.decimals {
            Some(d) => 0.5 * 10f64.powi(-(d as i32)) * (1.0 + 1e-9) + 1e-9 * n.value.abs(),
            None => 1e-9 * n.value.abs().max(1.0),
        };
        let lo = n.value - tol;
        let i = self.received.partition_point(|v| *v < lo);
        self.received.get(i).is_some_and(|v| *v <= n.value + tol)
    }
}

/// A number found in an output.
#[derive(Debug, Clone)]
struct Number {
    /// As written.
    text: String,
    value: f64,
    /// Digits after the decimal point as written (`None`: exponent form, compare exactly).
    decimals: Option<u32>,
    /// Where, for reasons.
    at: Place,
}

fn number_of(text: &str, at: Place) -> Option<Number> {
    let clean: String = text.chars().filter(|c| *c != ',').collect();
    let value: f64 = clean.parse().ok()?;
    if !value.is_finite() {
        return None;
    }
    let decimals = if clean.contains(['e', 'E']) {
        None
    } else {
        Some(
            clean
                .split_once('.')
                .map_or(0, |(_, frac)| frac.len() as u32),
        )
    };
    Some(Number {
        text: text.to_string(),
        value,
        decimals,
        at,
    })
}

/// What an output says, taken apart for the checks.
struct Content {
    /// All text (headers and cells of a table, the words of a chart).
    text: String,
    /// Values to test against the raw-value sets, with where they are.
    values: Vec<(String, Place)>,
    /// Numbers, with where they are.
    numbers: Vec<Number>,
    /// The table, for tables.
    table: Option<Vec<RecordBatch>>,
}

static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
        .unwrap_or_else(|_| unreachable_regex())
});
static WORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"[^\s,;:!?()\[\]{}<>|"'`*#，。；：！？（）、《》“”]+"#)
        .unwrap_or_else(|_| unreachable_regex())
});

fn is_numeric(dt: &DataType) -> bool {
    dt.is_numeric()
}

fn table_content(batches: Vec<RecordBatch>) -> Result<Content> {
    let mut text = String::new();
    let mut values = Vec::new();
    let mut numbers = Vec::new();
    let mut row_base = 0usize;
    for b in &batches {
        let schema = b.schema();
        for (j, f) in schema.fields().iter().enumerate() {
            if row_base == 0 {
                text.push_str(f.name());
                text.push('\n');
            }
            let col: &ArrayRef = b.column(j);
            let numeric = is_numeric(col.data_type());
            for (i, cell) in canonical_cells(col)?.into_iter().enumerate() {
                let Some(cell) = cell else { continue };
                let at = Place::Cell {
                    row: row_base + i + 1,
                    column: f.name().clone(),
                };
                text.push_str(&cell);
                text.push('\n');
                if numeric {
                    if let Some(n) = number_of(&cell, at.clone()) {
                        numbers.push(n);
                    }
                } else {
                    for m in NUMBER.find_iter(&cell) {
                        if let Some(n) = number_of(m.as_str(), at.clone()) {
                            numbers.push(n);
                        }
                    }
                    word_values(&cell, &at, &mut values);
                }
                values.push((cell, at));
            }
        }
        row_base += b.num_rows();
    }
    Ok(Content {
        text,
        values,
        numbers,
        table: Some(batches),
    })
}

fn text_content(text: String) -> Content {
    let mut values = Vec::new();
    let mut numbers = Vec::new();
    for (line_no, line) in text.lines().enumerate() {
        let at = Place::Line(line_no + 1);
        for m in NUMBER.find_iter(line) {
            if let Some(n) = number_of(m.as_str(), at.clone()) {
                if let Some(c) = canonical_number(n.value) {
                    values.push((c, at.clone()));
                }
                numbers.push(n);
            }
        }
        word_values(line, &at, &mut values);
        // Markdown table cells may hold several words.
        if line.contains('|') {
            for cell in line.split('|') {
                let cell = cell.trim();
                if !cell.is_empty() {
                    values.push((cell.to_string(), at.clone()));
                }
            }
        }
    }
    Content {
        text,
        values,
        numbers,
        table: None,
    }
}

/// The words of a line as values to test: each word, each run of two and three words (a
/// name in Latin script), and in Chinese text, where words are not separated, every run of
/// two to four Han characters (the length of a personal name).
fn word_values(line: &str, at: &Place, values: &mut Vec<(String, Place)>) {
    let words: Vec<&str> = WORD
        .find_iter(line)
        .map(|m| m.as_str().trim_matches(['.', '-', '_']))
        .filter(|w| !w.is_empty())
        .collect();
    for (i, w) in words.iter().enumerate() {
        values.push((w.to_string(), at.clone()));
        for n in [2, 3] {
            if i + n <= words.len() {
                values.push((words[i..i + n].join(" "), at.clone()));
            }
        }
        let chars: Vec<char> = w.chars().collect();
        if chars.len() > 2 && chars.iter().any(|c| is_han(*c)) {
            for start in 0..chars.len() {
                for len in 2..=4 {
                    if start + len <= chars.len() && len < chars.len() {
                        let window = &chars[start..start + len];
                        if window.iter().all(|c| is_han(*c)) {
                            values.push((window.iter().collect(), at.clone()));
                        }
                    }
                }
            }
        }
    }
}

fn is_han(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}')
}

/// Runs every check on an output, with what it is compared against.
pub fn run(ctx: &CheckContext, output: &StagedOutput) -> Result<CheckReport> {
    let default_rules;
    let rules = match &ctx.rules {
        Some(r) => r,
        None => {
            default_rules = Rules::strictest(&[], false);
            &default_rules
        }
    };
    let mut results = Vec::new();
    let bytes = output.bytes.len();
    let kind_name = match output.kind {
        OutputKind::Table => OutputKindName::Table,
        OutputKind::Text => OutputKindName::Text,
        OutputKind::Chart => OutputKindName::Chart,
        OutputKind::Png => OutputKindName::Image,
    };
    let mut size_problems: Vec<sandbox_i18n::Part> = Vec::new();
    if !rules.kinds.contains(&kind_name) {
        size_problems.push(
            Phrase::new("check-kind-not-allowed")
                .arg("kind", output.kind.as_str())
                .into(),
        );
    }
    if bytes as u64 > rules.max_bytes {
        size_problems.push(
            Phrase::new("check-over-bytes")
                .arg("bytes", bytes)
                .arg("cap", rules.max_bytes)
                .into(),
        );
    }
    let (content, what) = match output.kind {
        OutputKind::Table => {
            let batches = sandbox_host::decode_ipc(&output.bytes)?;
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            if rows as u64 > u64::from(rules.max_rows) {
                size_problems.push(
                    Phrase::new("check-over-rows")
                        .arg("rows", rows)
                        .arg("cap", rules.max_rows)
                        .into(),
                );
            }
            (
                table_content(batches)?,
                Phrase::new("check-what-table").arg("rows", rows),
            )
        }
        OutputKind::Text => (
            text_content(String::from_utf8_lossy(&output.bytes).into_owned()),
            Phrase::new("check-what-text"),
        ),
        OutputKind::Png => match sandbox_host::reencode_png(&output.bytes) {
            Ok(png) => (
                text_content(String::new()),
                Phrase::new("check-what-png-size")
                    .arg("width", png.width)
                    .arg("height", png.height),
            ),
            Err(e) => {
                size_problems.push(
                    Phrase::new("check-png-refused")
                        .arg("error", e.to_string())
                        .into(),
                );
                (text_content(String::new()), Phrase::new("check-what-png"))
            }
        },
        OutputKind::Chart => match sandbox_host::check_svg(&output.bytes) {
            Ok(words) => (text_content(words), Phrase::new("check-what-svg")),
            Err(e) => {
                size_problems.push(
                    Phrase::new("check-svg-refused")
                        .arg("error", e.to_string())
                        .into(),
                );
                (
                    text_content(String::from_utf8_lossy(&output.bytes).into_owned()),
                    Phrase::new("check-what-svg"),
                )
            }
        },
    };
    results.push(CheckResult::new(
        "type_and_size",
        if size_problems.is_empty() {
            Outcome::Pass
        } else {
            rules.severities.type_and_size.into()
        },
        if size_problems.is_empty() {
            Phrase::new("check-size-allowed")
                .arg("what", what)
                .arg("bytes", bytes)
        } else {
            Phrase::new("check-size-problems")
                .arg("what", what)
                .arg("problems", sandbox_i18n::Part::Items(size_problems))
        },
    ));

    let found = scan_identifiers_of(&content.text, &rules.identifiers);
    results.push(CheckResult::new(
        "identifiers",
        if found.is_empty() {
            Outcome::Pass
        } else {
            rules.severities.identifiers.into()
        },
        if found.is_empty() {
            Phrase::new("check-identifiers-none").arg(
                "kinds",
                sandbox_i18n::Part::List(
                    rules
                        .identifiers
                        .iter()
                        .map(|i| Phrase::new(identifier_name(*i)).into())
                        .collect(),
                ),
            )
        } else {
            Phrase::new("check-identifiers-found").arg(
                "found",
                sandbox_i18n::Part::List(found.into_iter().map(Into::into).collect()),
            )
        },
    ));

    results.push(raw_values(ctx, rules, &content));
    let traced: Vec<bool> = content.numbers.iter().map(|n| ctx.traced(n)).collect();
    if rules.threshold_mode {
        results.push(threshold(ctx, rules, &content, &traced));
    }
    if output.kind == OutputKind::Png {
        // Pixels: no text to scan and no numbers to trace. The reviewer reads the image.
        results.push(CheckResult::new(
            "provenance",
            Outcome::Review,
            Phrase::new("check-provenance-image"),
        ));
    } else {
        results.push(provenance(rules, &content, &traced));
    }
    results.push(differencing(ctx, rules, &content)?);
    Ok(CheckReport { results })
}

/// What the threshold rules find in one log line of a threshold-mode job, if anything
/// (what a finding means, never the number found).
pub fn log_line_finding(ctx: &CheckContext, line: &str) -> Option<String> {
    let rules = ctx.rules.as_ref()?;
    let content = text_content(line.to_string());
    let traced: Vec<bool> = content.numbers.iter().map(|n| ctx.traced(n)).collect();
    // What each finding means, without where or which number: the line is the one read.
    let mut findings: Vec<String> = threshold_findings(ctx, rules, &content, &traced)
        .into_iter()
        .map(|f| f.what.say(Lang::En))
        .collect();
    findings.dedup();
    (!findings.is_empty()).then(|| findings.join("; "))
}

fn raw_values(ctx: &CheckContext, rules: &Rules, content: &Content) -> CheckResult {
    let Some(hasher) = &ctx.hasher else {
        return CheckResult::new(
            "raw_values",
            Outcome::Pass,
            Phrase::new("check-raw-no-sets"),
        );
    };
    let mut hits: Vec<Phrase> = Vec::new();
    let mut seen = HashSet::new();
    for (value, at) in &content.values {
        if !specific(value) {
            continue;
        }
        // A number the module received from the mediator was released under the policy
        // (noisy, or exact above the thresholds): equal to a raw value by coincidence only.
        if let Some(n) = number_of(value, Place::Line(0))
            && ctx.traced(&n)
        {
            continue;
        }
        for set in &ctx.value_sets {
            if set.contains(hasher, value) && seen.insert((at.clone(), set.column.clone())) {
                hits.push(self::at(
                    at,
                    Phrase::new("check-raw-hit")
                        .arg("column", format!("{}.{}", set.dataset, set.column)),
                ));
            }
        }
    }
    let columns: Vec<String> = ctx
        .value_sets
        .iter()
        .map(|s| format!("{}.{}", s.dataset, s.column))
        .collect();
    CheckResult::new(
        "raw_values",
        if hits.is_empty() {
            Outcome::Pass
        } else {
            rules.severities.raw_values.into()
        },
        if hits.is_empty() {
            if columns.is_empty() {
                Phrase::new("check-raw-no-columns")
            } else {
                Phrase::new("check-raw-clean").arg(
                    "columns",
                    sandbox_i18n::Part::List(columns.into_iter().map(Into::into).collect()),
                )
            }
        } else {
            examples(hits)
        },
    )
}

/// Whether a value is specific enough to point at someone: numbers need four significant
/// digits or more (ages, counts and codes are shared by too many to disclose anyone, and would match
/// by chance), text two characters or more.
fn specific(value: &str) -> bool {
    if value.parse::<f64>().is_ok() {
        // Significant digits: a round number (an axis tick, a bin edge) is too coarse to
        // point at anyone even when a few people hold it.
        let digits: String = value.chars().filter(char::is_ascii_digit).collect();
        let significant = if value.contains('.') {
            digits.trim_start_matches('0')
        } else {
            digits.trim_start_matches('0').trim_end_matches('0')
        };
        significant.len() >= 4
    } else {
        value.chars().count() >= 2
    }
}

/// Up to [`EXAMPLES`] findings, and how many more there are.
fn examples(items: Vec<Phrase>) -> Phrase {
    let more = items.len().saturating_sub(EXAMPLES);
    let shown =
        sandbox_i18n::Part::Items(items.into_iter().take(EXAMPLES).map(Into::into).collect());
    if more > 0 {
        Phrase::new("check-examples-more")
            .arg("items", shown)
            .arg("more", more)
    } else {
        Phrase::new("check-examples").arg("items", shown)
    }
}

fn threshold(ctx: &CheckContext, rules: &Rules, content: &Content, traced: &[bool]) -> CheckResult {
    let findings = threshold_findings(ctx, rules, content, traced);
    if !findings.is_empty() {
        return CheckResult::new(
            "threshold",
            rules.severities.threshold.into(),
            examples(findings.into_iter().map(Finding::phrase).collect()),
        );
    }
    let untraced = traced.iter().filter(|t| !**t).count();
    let clean = untraced == 0 || content.table.is_none();
    CheckResult::new(
        "threshold",
        if clean {
            Outcome::Pass
        } else {
            Outcome::Review
        },
        if clean {
            Phrase::new("check-threshold-clean").arg("min", rules.min_group_size)
        } else {
            Phrase::new("check-threshold-derived").arg("count", untraced)
        },
    )
}

/// A threshold rule's finding: where (and which number), and what it means.
struct Finding {
    at: Place,
    number: Option<String>,
    what: Phrase,
}

impl Finding {
    /// `line 3 (6): what` for the reviewer (the developer's held-back note says only what).
    fn phrase(self) -> Phrase {
        match self.number {
            Some(n) => Phrase::new("check-finding-number")
                .arg("at", self.at.phrase())
                .arg("number", n)
                .arg("what", self.what),
            None => at(&self.at, self.what),
        }
    }
}

/// The threshold rules' findings in some content.
fn threshold_findings(
    ctx: &CheckContext,
    rules: &Rules,
    content: &Content,
    traced: &[bool],
) -> Vec<Finding> {
    let min = f64::from(rules.min_group_size);
    let mut findings = Vec::new();
    // A number the mediator did not release that describes fewer than min_group_size.
    for (n, t) in content.numbers.iter().zip(traced) {
        if !t && n.value.fract() == 0.0 && n.value > 0.0 && n.value < min {
            // The number beside its place (the reviewer reads which number; the
            // developer's held-back note never does).
            findings.push(Finding {
                at: n.at.clone(),
                number: Some(n.text.clone()),
                what: Phrase::new("check-threshold-small").arg("min", rules.min_group_size),
            });
        }
    }
    // A total over all cells, suppressed ones included, minus the released cells gives the
    // suppressed ones away.
    for w in ctx.withheld.iter().filter(|w| !w.cells.is_empty()) {
        for total in &w.totals {
            for n in &content.numbers {
                if (n.value - total).abs() <= 1e-9 * total.abs().max(1.0) {
                    findings.push(Finding {
                        at: n.at.clone(),
                        number: Some(n.text.clone()),
                        what: Phrase::new("check-threshold-total"),
                    });
                }
            }
        }
    }
    // A table row for a suppressed cell's key holds a number: the cell was filled in.
    if let Some(batches) = &content.table {
        let keys: Vec<&Vec<String>> = ctx.withheld.iter().flat_map(|w| &w.cells).collect();
        if !keys.is_empty() {
            let mut row_base = 0;
            for b in batches {
                let cells: Vec<Vec<Option<String>>> = b
                    .columns()
                    .iter()
                    .map(canonical_cells)
                    .collect::<std::result::Result<_, _>>()
                    .unwrap_or_default();
                for r in 0..b.num_rows() {
                    let row: HashSet<&str> = cells
                        .iter()
                        .filter_map(|c| c.get(r).and_then(|v| v.as_deref()))
                        .collect();
                    let has_number = b.columns().iter().zip(&cells).any(|(a, c)| {
                        is_numeric(a.data_type()) && c.get(r).is_some_and(Option::is_some)
                    });
                    if has_number
                        && keys
                            .iter()
                            .any(|k| !k.is_empty() && k.iter().all(|v| row.contains(v.as_str())))
                    {
                        findings.push(Finding {
                            at: Place::Row(row_base + r + 1),
                            number: None,
                            what: Phrase::new("check-threshold-filled"),
                        });
                    }
                }
                row_base += b.num_rows();
            }
        }
    }
    findings
}

fn provenance(rules: &Rules, content: &Content, traced: &[bool]) -> CheckResult {
    // Each place once, with the numbers found there: `line 3: 41,200, 38,000`.
    let mut places: Vec<(Place, Vec<sandbox_i18n::Part>)> = Vec::new();
    let mut count = 0usize;
    for (n, _) in content.numbers.iter().zip(traced).filter(|(_, t)| !**t) {
        count += 1;
        match places.iter_mut().find(|(at, _)| *at == n.at) {
            Some((_, numbers)) => numbers.push(n.text.clone().into()),
            None => places.push((n.at.clone(), vec![n.text.clone().into()])),
        }
    }
    let untraced: Vec<Phrase> = places
        .into_iter()
        .map(|(place, numbers)| {
            at(
                &place,
                Phrase::new("check-numbers").arg("numbers", sandbox_i18n::Part::List(numbers)),
            )
        })
        .collect();
    CheckResult::new(
        "provenance",
        if untraced.is_empty() {
            Outcome::Pass
        } else {
            rules.severities.provenance.into()
        },
        if untraced.is_empty() {
            Phrase::new("check-provenance-clean").arg("count", content.numbers.len())
        } else {
            Phrase::new("check-provenance-untraced")
                .arg("untraced", count)
                .arg("count", content.numbers.len())
                .arg("places", examples(untraced))
        },
    )
}

/// A table as rows keyed by its non-numeric columns, with its numeric columns by name.
struct Keyed {
    rows: HashMap<Vec<String>, HashMap<String, f64>>,
    numeric: HashSet<String>,
    keys: Vec<String>,
}

fn keyed(batches: &[RecordBatch]) -> Result<Keyed> {
    let mut out = Keyed {
        rows: HashMap::new(),
        numeric: HashSet::new(),
        keys: Vec::new(),
    };
    for b in batches {
        let schema = b.schema();
        let mut key_cols = Vec::new();
        let mut num_cols = Vec::new();
        for (j, f) in schema.fields().iter().enumerate() {
            let cells = canonical_cells(b.column(j))?;
            if is_numeric(f.data_type()) {
                out.numeric.insert(f.name().clone());
                num_cols.push((f.name().clone(), cells));
            } else {
                if !out.keys.contains(f.name()) {
                    out.keys.push(f.name().clone());
                }
                key_cols.push(cells);
            }
        }
        for r in 0..b.num_rows() {
            let key: Vec<String> = key_cols
                .iter()
                .map(|c| c.get(r).cloned().flatten().unwrap_or_default())
                .collect();
            let entry = out.rows.entry(key).or_default();
            for (name, cells) in &num_cols {
                if let Some(Some(v)) = cells.get(r)
                    && let Ok(x) = v.parse::<f64>()
                {
                    entry.insert(name.clone(), x);
                }
            }
        }
    }
    Ok(out)
}

fn differencing(ctx: &CheckContext, rules: &Rules, content: &Content) -> Result<CheckResult> {
    let Some(batches) = &content.table else {
        return Ok(CheckResult::new(
            "differencing",
            Outcome::Pass,
            Phrase::new("check-differencing-not-table"),
        ));
    };
    if !rules.threshold_mode {
        return Ok(CheckResult::new(
            "differencing",
            Outcome::Pass,
            Phrase::new("check-differencing-dp"),
        ));
    }
    let new = keyed(batches)?;
    let min = f64::from(rules.min_group_size);
    let mut findings = Vec::new();
    for (name, old_batches) in &ctx.released_tables {
        let old = keyed(old_batches)?;
        if old.keys != new.keys {
            continue;
        }
        for (key, values) in &new.rows {
            let Some(old_values) = old.rows.get(key) else {
                continue;
            };
            for (column, a) in values {
                if let Some(b) = old_values.get(column) {
                    let d = (a - b).abs();
                    if a.fract() == 0.0 && b.fract() == 0.0 && d > 0.0 && d < min {
                        let found = if key.is_empty() {
                            Phrase::new("check-differencing-cell")
                        } else {
                            Phrase::new("check-differencing-row-cell").arg(
                                "row",
                                sandbox_i18n::Part::List(
                                    key.iter().map(|k| k.as_str().into()).collect(),
                                ),
                            )
                        };
                        findings.push(
                            found
                                .arg("column", column.as_str())
                                .arg("table", name.as_str())
                                .arg("min", rules.min_group_size),
                        );
                    }
                }
            }
        }
    }
    Ok(CheckResult::new(
        "differencing",
        if findings.is_empty() {
            Outcome::Pass
        } else {
            rules.severities.differencing.into()
        },
        if findings.is_empty() {
            Phrase::new("check-differencing-clean")
                .arg("tables", ctx.released_tables.len())
                .arg("min", rules.min_group_size)
        } else {
            examples(findings)
        },
    ))
}

static RESIDENT_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b\d{17}[\dXx]\b").unwrap_or_else(|_| unreachable_regex()));
static MOBILE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b1[3-9]\d{9}\b").unwrap_or_else(|_| unreachable_regex()));
static BANK_CARD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b\d{16,19}\b|\b\d{4}(?:[ -]\d{4}){3}(?:[ -]?\d{1,3})?\b")
        .unwrap_or_else(|_| unreachable_regex())
});
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
        .unwrap_or_else(|_| unreachable_regex())
});
static PLATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼][A-HJ-NP-Z][·•\s]?[A-HJ-NP-Z0-9]{4}[A-HJ-NP-Z0-9挂学警港澳]{1,2}",
    )
    .unwrap_or_else(|_| unreachable_regex())
});

fn unreachable_regex() -> Regex {
    // The patterns above are constants; this keeps the code free of `unwrap`.
    Regex::new("$^").unwrap_or_else(|_| std::process::abort())
}

/// The catalogue's message for a kind of identifier, in the plural.
fn identifier_name(i: IdentifierKind) -> &'static str {
    match i {
        IdentifierKind::ResidentId => "identifier-resident-ids",
        IdentifierKind::Mobile => "identifier-mobiles",
        IdentifierKind::BankCard => "identifier-bank-cards",
        IdentifierKind::Email => "identifier-emails",
        IdentifierKind::LicencePlate => "identifier-plates",
    }
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

/// Whether a digit string passes the Luhn check (ISO/IEC 7812 card numbers).
pub fn luhn(digits: &str) -> bool {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Finds identifiers of every kind in text (masked, in English).
pub fn scan_identifiers(text: &str) -> Vec<String> {
    scan_identifiers_of(text, &sandbox_policies::Disclosure::default().identifiers)
        .iter()
        .map(|p| p.say(Lang::En))
        .collect()
}

/// Whether a run of digits at `range` stands on its own rather than being part of a
/// decimal number: the digits after a decimal point (`51234.17812345259`) or before one
/// (`13812345678.25`) are a number's, not an identifier.
fn standalone(text: &str, range: std::ops::Range<usize>) -> bool {
    let bytes = text.as_bytes();
    let before = range.start.checked_sub(1).map(|i| bytes[i]);
    let after = bytes.get(range.end).copied();
    let after2 = bytes.get(range.end + 1).copied();
    let fraction =
        before == Some(b'.') && range.start >= 2 && bytes[range.start - 2].is_ascii_digit();
    let integer_part = after == Some(b'.') && after2.is_some_and(|b| b.is_ascii_digit());
    !fraction && !integer_part
}

/// Finds identifiers of the given kinds in text, masked for the reason.
fn scan_identifiers_of(text: &str, kinds: &[IdentifierKind]) -> Vec<Phrase> {
    let found_one = |id: &str, masked: String| Phrase::new(id).arg("value", masked);
    let mut found = Vec::new();
    let mut id_spans = Vec::new();
    if kinds.contains(&IdentifierKind::ResidentId) {
        for m in RESIDENT_ID.find_iter(text) {
            if standalone(text, m.range()) && is_resident_id(m.as_str()) {
                found.push(found_one("identifier-resident-id", mask(m.as_str())));
                id_spans.push(m.range());
            }
        }
    }
    if kinds.contains(&IdentifierKind::Mobile) {
        for m in MOBILE.find_iter(text) {
            if standalone(text, m.range()) {
                found.push(found_one("identifier-mobile", mask(m.as_str())));
            }
        }
    }
    if kinds.contains(&IdentifierKind::BankCard) {
        for m in BANK_CARD.find_iter(text) {
            if id_spans.iter().any(|r| r.contains(&m.start())) || !standalone(text, m.range()) {
                continue;
            }
            let digits: String = m.as_str().chars().filter(char::is_ascii_digit).collect();
            if (16..=19).contains(&digits.len()) && luhn(&digits) {
                found.push(found_one("identifier-bank-card", mask(&digits)));
            }
        }
    }
    if kinds.contains(&IdentifierKind::Email) {
        for m in EMAIL.find_iter(text) {
            found.push(found_one("identifier-email", mask(m.as_str())));
        }
    }
    if kinds.contains(&IdentifierKind::LicencePlate) {
        for m in PLATE.find_iter(text) {
            found.push(found_one("identifier-plate", mask(m.as_str())));
        }
    }
    found
}

fn mask(s: &str) -> String {
    let n = s.chars().count();
    let keep = if n >= 10 { 3 } else { 1 };
    s.chars()
        .enumerate()
        .map(|(i, c)| if i < keep || i + keep >= n { c } else { '*' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_of_a_decimal_number_are_not_identifiers() {
        // The fraction of a noisy average, the integer part of a noisy sum.
        assert!(scan_identifiers("51234.17812345259").is_empty());
        assert!(scan_identifiers("13812345678.25").is_empty());
        assert!(scan_identifiers("0.4532015112830366").is_empty());
        // On their own, or at the end of a sentence, they are.
        assert_eq!(scan_identifiers("call 13812345678.").len(), 1);
        assert_eq!(scan_identifiers("13812345678").len(), 1);
        assert_eq!(scan_identifiers("card 4532015112830366, thanks").len(), 1);
    }

    #[test]
    fn resident_id_checksum() {
        // A well-known sample number with a valid check digit.
        assert!(is_resident_id("11010519491231002X"));
        assert!(!is_resident_id("110105194912310021"));
        assert!(!is_resident_id("1101051949123100"));
    }

    #[test]
    fn luhn_accepts_valid_card_numbers_only() {
        assert!(luhn("4111111111111111"));
        assert!(luhn("79927398713"));
        assert!(!luhn("4111111111111112"));
        assert!(!luhn(""));
    }

    #[test]
    fn scan_finds_every_kind_and_not_other_numbers() {
        let found = scan_identifiers(
            "id 11010519491231002X phone 13812345678 card 4111 1111 1111 1111 mail li.lei@example.cn car 京A12345 income 123456.78",
        );
        assert_eq!(found.len(), 5, "{found:?}");
        assert!(found.iter().any(|f| f.starts_with("bank card")));
        assert!(found.iter().any(|f| f.starts_with("e-mail")));
        assert!(found.iter().any(|f| f.starts_with("licence plate")));
        assert!(scan_identifiers("count 12345678901234 avg 52000.5").is_empty());
        // An invalid checksum is not reported as an ID, nor a card failing Luhn.
        assert!(scan_identifiers("110105194912310021").is_empty());
        assert!(scan_identifiers("4111111111111112").is_empty());
        // Masked: the reason does not repeat the identifier.
        assert!(!found.iter().any(|f| f.contains("13812345678")));
    }

    #[test]
    fn a_raw_value_counts_unless_the_mediator_released_that_number() {
        let hasher = ValueHasher::new(&sandbox_core::Secret::new(
            sandbox_core::Suite::Standard,
            [7u8; 32],
        ))
        .unwrap_or_else(|_| std::process::abort());
        let set = ValueSet::of("residents", "income", &hasher, &["48123", "Wang Fang"]);
        let output = StagedOutput {
            name: "note".into(),
            kind: OutputKind::Text,
            bytes: b"Top: 48,123 yuan (Wang Fang); 12 people".to_vec(),
        };
        let mut ctx = CheckContext {
            hasher: Some(hasher),
            value_sets: vec![set],
            ..Default::default()
        };
        let raw = |ctx: &CheckContext| {
            run(ctx, &output)
                .ok()
                .and_then(|r| r.results.into_iter().find(|r| r.check == "raw_values"))
                .map(|r| (r.outcome, r.reason))
        };
        let (outcome, reason) = raw(&ctx).unwrap_or((Outcome::Pass, String::new()));
        assert_eq!(outcome, Outcome::Fail);
        assert!(reason.contains("line 1"), "{reason}");
        assert!(
            !reason.contains("48"),
            "the reason names no value: {reason}"
        );
        // The name is still a finding once the number came from an answer.
        ctx.receive_answer_json(r#"[{"top": 48123.2}]"#);
        ctx.seal();
        let (outcome, reason) = raw(&ctx).unwrap_or((Outcome::Pass, String::new()));
        assert_eq!(outcome, Outcome::Fail);
        assert_eq!(reason.matches("equals a rare value").count(), 1, "{reason}");
        let name_free = StagedOutput {
            bytes: b"Top: 48,123 yuan; 12 people".to_vec(),
            ..output.clone()
        };
        let r = run(&ctx, &name_free).unwrap_or(CheckReport { results: vec![] });
        assert!(
            r.results
                .iter()
                .any(|r| r.check == "raw_values" && r.outcome == Outcome::Pass)
        );
        // A Chinese name inside a sentence, without separators.
        let hasher = ValueHasher::new(&sandbox_core::Secret::new(
            sandbox_core::Suite::Standard,
            [7u8; 32],
        ))
        .unwrap_or_else(|_| std::process::abort());
        let ctx = CheckContext {
            value_sets: vec![ValueSet::of("residents", "name", &hasher, &["王芳"])],
            hasher: Some(hasher),
            ..Default::default()
        };
        let chinese = StagedOutput {
            bytes: "收入最高的是王芳，其次是张伟。".as_bytes().to_vec(),
            ..output.clone()
        };
        let r = run(&ctx, &chinese).unwrap_or(CheckReport { results: vec![] });
        assert!(
            r.results
                .iter()
                .any(|r| r.check == "raw_values" && r.outcome == Outcome::Fail),
            "{r:?}"
        );
    }

    #[test]
    fn numbers_are_traced_with_the_precision_they_are_written_in() {
        let mut ctx = CheckContext::default();
        ctx.receive_answer_json(r#"[{"district":"A","n":1234.567},{"district":"B","n":"88"}]"#);
        ctx.seal();
        let n = |s: &str| {
            number_of(s, Place::Line(0)).unwrap_or(Number {
                text: String::new(),
                value: f64::NAN,
                decimals: None,
                at: Place::Line(0),
            })
        };
        assert!(ctx.traced(&n("1234.567")));
        assert!(ctx.traced(&n("1234.57")));
        assert!(ctx.traced(&n("1,235")));
        assert!(ctx.traced(&n("88")));
        assert!(!ctx.traced(&n("1234.5")));
        assert!(!ctx.traced(&n("1236")));
        assert!(!ctx.traced(&n("89")));
    }

    #[test]
    fn findings_read_in_the_reviewers_language_from_what_was_recorded() {
        let hasher = ValueHasher::new(&sandbox_core::Secret::new(
            sandbox_core::Suite::Standard,
            [7u8; 32],
        ))
        .unwrap_or_else(|_| std::process::abort());
        let set = ValueSet::of("residents", "income", &hasher, &["48123"]);
        let output = StagedOutput {
            name: "note".into(),
            kind: OutputKind::Text,
            bytes: "Top district: 48,123 yuan\nsee 13812345678"
                .as_bytes()
                .to_vec(),
        };
        let ctx = CheckContext {
            hasher: Some(hasher),
            value_sets: vec![set],
            ..Default::default()
        };
        let report = run(&ctx, &output).unwrap_or(CheckReport {
            results: Vec::new(),
        });
        // Recorded as the API and the store keep it, then read back in each language.
        let recorded = serde_json::to_value(&report).unwrap_or_default();
        let result = |check: &str| {
            recorded["results"]
                .as_array()
                .and_then(|r| r.iter().find(|r| r["check"] == check))
                .cloned()
                .unwrap_or_default()
        };
        let raw = result("raw_values");
        assert_eq!(
            reason_in(Lang::En, &raw),
            "line 1: equals a rare value of `residents.income`"
        );
        assert_eq!(raw["reason"], reason_in(Lang::En, &raw));
        assert_eq!(
            reason_in(Lang::ZhCn, &raw),
            "第 1 行：与“residents.income”的一个罕见值相同"
        );
        let provenance = reason_in(Lang::ZhCn, &result("provenance"));
        assert!(
            provenance.starts_with("2 个数中有 2 个不在模块收到的任何回答中"),
            "{provenance}"
        );
        let identifiers = reason_in(Lang::ZhCn, &result("identifiers"));
        assert!(identifiers.starts_with("发现手机号 138"), "{identifiers}");
        // A result recorded before phrases were kept reads as it was written.
        let old = serde_json::json!({"check": "provenance", "reason": "as written"});
        assert_eq!(reason_in(Lang::ZhCn, &old), "as written");
    }
}
