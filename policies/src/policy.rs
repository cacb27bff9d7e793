//! The dataset policy: catalog fields, privacy unit, and per-column rules.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{PolicyError, Result};
use crate::level::{Access, Level};

/// Desensitization applied to a column before any query sees it (QQHR Art. 5, 10).
///
/// In TOML, the parameterless kinds are strings (`desensitize = "keyed_hash"`), the others
/// tables with a `kind` (`desensitize = { kind = "mask", keep_prefix = 3, keep_suffix = 4 }`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "DesensitizeRepr", into = "DesensitizeRepr")]
#[schemars(with = "DesensitizeRepr")]
pub enum Desensitize {
    /// HMAC-SHA256 with the domain secret: join keys match across datasets, values cannot
    /// be reversed without the secret.
    KeyedHash,
    /// Replace characters with `*`, keeping a prefix and a suffix.
    Mask {
        /// Characters kept at the start.
        keep_prefix: u32,
        /// Characters kept at the end.
        keep_suffix: u32,
    },
    /// Round numbers down to a multiple of `width` (age bands, income brackets).
    Band {
        /// Width of a band.
        width: f64,
    },
    /// Truncate dates and times to a month or a year.
    TruncateDate {
        /// `month` or `year`.
        to: DateUnit,
    },
    /// Keep the first `length` characters (region codes to a coarser region).
    Prefix {
        /// Characters kept.
        length: u32,
    },
    /// Replace every value with null.
    Suppress,
}

/// Unit of date truncation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DateUnit {
    /// First day of the month.
    Month,
    /// First day of the year.
    Year,
}

impl DateUnit {
    /// The name `date_trunc` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            DateUnit::Month => "month",
            DateUnit::Year => "year",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
enum DesensitizeRepr {
    Name(String),
    Table(DesensitizeTable),
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum DesensitizeTable {
    KeyedHash,
    Mask {
        #[serde(default)]
        keep_prefix: u32,
        #[serde(default)]
        keep_suffix: u32,
    },
    Band {
        width: f64,
    },
    TruncateDate {
        to: DateUnit,
    },
    Prefix {
        length: u32,
    },
    Suppress,
}

impl TryFrom<DesensitizeRepr> for Desensitize {
    type Error = String;
    fn try_from(r: DesensitizeRepr) -> std::result::Result<Self, String> {
        Ok(match r {
            DesensitizeRepr::Name(n) => match n.as_str() {
                "keyed_hash" => Desensitize::KeyedHash,
                "suppress" => Desensitize::Suppress,
                "mask" => Desensitize::Mask {
                    keep_prefix: 0,
                    keep_suffix: 0,
                },
                "band" | "truncate_date" | "prefix" => {
                    return Err(format!(
                        "desensitization `{n}` needs parameters: write it as a table with `kind = \"{n}\"`"
                    ));
                }
                other => {
                    return Err(format!(
                        "unknown desensitization `{other}` (keyed_hash, mask, band, truncate_date, prefix, suppress)"
                    ));
                }
            },
            DesensitizeRepr::Table(t) => match t {
                DesensitizeTable::KeyedHash => Desensitize::KeyedHash,
                DesensitizeTable::Mask {
                    keep_prefix,
                    keep_suffix,
                } => Desensitize::Mask {
                    keep_prefix,
                    keep_suffix,
                },
                DesensitizeTable::Band { width } => Desensitize::Band { width },
                DesensitizeTable::TruncateDate { to } => Desensitize::TruncateDate { to },
                DesensitizeTable::Prefix { length } => Desensitize::Prefix { length },
                DesensitizeTable::Suppress => Desensitize::Suppress,
            },
        })
    }
}

impl From<Desensitize> for DesensitizeRepr {
    fn from(d: Desensitize) -> Self {
        match d {
            Desensitize::KeyedHash => DesensitizeRepr::Name("keyed_hash".into()),
            Desensitize::Suppress => DesensitizeRepr::Name("suppress".into()),
            Desensitize::Mask {
                keep_prefix,
                keep_suffix,
            } => DesensitizeRepr::Table(DesensitizeTable::Mask {
                keep_prefix,
                keep_suffix,
            }),
            Desensitize::Band { width } => DesensitizeRepr::Table(DesensitizeTable::Band { width }),
            Desensitize::TruncateDate { to } => {
                DesensitizeRepr::Table(DesensitizeTable::TruncateDate { to })
            }
            Desensitize::Prefix { length } => {
                DesensitizeRepr::Table(DesensitizeTable::Prefix { length })
            }
        }
    }
}

impl Desensitize {
    /// Checks the parameters and that the kind fits the column's type.
    pub fn validate(&self, column: &str, ty: Option<ColumnType>) -> Result<()> {
        let mismatch = |ty: ColumnType, message: &str| PolicyError::TypeMismatch {
            column: column.to_string(),
            ty: ty.to_string(),
            message: message.to_string(),
        };
        match self {
            Desensitize::Band { width } if !(width.is_finite() && *width > 0.0) => {
                return Err(PolicyError::invalid(
                    format!("column `{column}` desensitize"),
                    "band width must be a positive number",
                ));
            }
            Desensitize::Prefix { length: 0 } => {
                return Err(PolicyError::invalid(
                    format!("column `{column}` desensitize"),
                    "prefix length must be at least 1",
                ));
            }
            _ => {}
        }
        if let Some(ty) = ty {
            match self {
                Desensitize::Band { .. } if !ty.is_numeric() => {
                    return Err(mismatch(ty, "`band` needs a numeric column"));
                }
                Desensitize::TruncateDate { .. } if ty != ColumnType::Temporal => {
                    return Err(mismatch(
                        ty,
                        "`truncate_date` needs a date or timestamp column",
                    ));
                }
                Desensitize::Mask { .. } | Desensitize::Prefix { .. } if ty != ColumnType::Utf8 => {
                    return Err(mismatch(ty, "`mask` and `prefix` need a text column"));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The column's type as queries see it after desensitization.
    pub fn output_type(&self, ty: ColumnType) -> ColumnType {
        match self {
            Desensitize::KeyedHash | Desensitize::Mask { .. } | Desensitize::Prefix { .. } => {
                ColumnType::Utf8
            }
            _ => ty,
        }
    }
}

/// Processing mode of a dataset or scenario.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Differential privacy: noisy aggregates, budget charged.
    #[default]
    Dp,
    /// Exact aggregates with small-cell suppression.
    Threshold,
}

/// What ingest does with a row whose privacy unit is empty.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum MissingUnit {
    /// Refuse the whole file, naming the first such row.
    #[default]
    Refuse,
    /// Leave such rows out of the stored dataset, and record how many were left out.
    Drop,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Dp => "dp",
            Mode::Threshold => "threshold",
        })
    }
}

/// Share or open type of a dataset (SYS Art. 24, 37; TJ-BD Art. 15, 21).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ShareType {
    /// Available without conditions.
    Unconditional,
    /// Available under conditions (the default for authorized operation).
    #[default]
    Conditional,
    /// Not available.
    NotShared,
}

/// The largest magnitude a bound may have, for a column and for any value an aggregate
/// reads: 2^53, up to which a float holds every integer (beyond it, and times the rows a
/// unit contributes, a sensitivity is no longer a number the noise can be calibrated to).
pub const MAX_VALUE_BOUND: f64 = 9_007_199_254_740_992.0;

/// The type of a column as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    /// Integer of any width.
    Int,
    /// Floating point or decimal.
    Float,
    /// Text.
    Utf8,
    /// Boolean.
    Bool,
    /// Date or timestamp.
    Temporal,
    /// Anything else.
    Other,
}

impl ColumnType {
    /// Whether values are numbers.
    pub fn is_numeric(self) -> bool {
        matches!(self, ColumnType::Int | ColumnType::Float)
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ColumnType::Int => "int",
            ColumnType::Float => "float",
            ColumnType::Utf8 => "utf8",
            ColumnType::Bool => "bool",
            ColumnType::Temporal => "temporal",
            ColumnType::Other => "other",
        })
    }
}

/// Catalog fields and privacy settings of a dataset (SYS Art. 12).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    /// Name used in SQL: lowercase letters, digits and `_`, starting with a letter.
    pub name: String,
    /// Human title.
    #[serde(default)]
    pub title: Option<String>,
    /// What the data is.
    pub summary: String,
    /// Providing department (数源部门).
    pub provider: String,
    /// Provider's organisation code.
    #[serde(default)]
    pub provider_code: Option<String>,
    /// Industry or domain (e.g. "public security").
    #[serde(default)]
    pub industry: Option<String>,
    /// Time span covered, e.g. "2025-01/2025-12".
    #[serde(default)]
    pub time_covered: Option<String>,
    /// Area covered, e.g. a city name.
    #[serde(default)]
    pub area_covered: Option<String>,
    /// How often the provider updates it.
    #[serde(default)]
    pub update_frequency: Option<String>,
    /// Share type.
    #[serde(default)]
    pub share_type: ShareType,
    /// Open type.
    #[serde(default = "not_shared")]
    pub open_type: ShareType,
    /// The conditions under which it is shared (SYS Art. 12, 24).
    #[serde(default)]
    pub share_conditions: Option<String>,
    /// How it is shared (here: through the sandbox, usable but not visible).
    #[serde(default)]
    pub share_method: Option<String>,
    /// The conditions under which it is opened to the public, if ever.
    #[serde(default)]
    pub open_conditions: Option<String>,
    /// The column identifying the person or entity protected: one unit's rows are bounded
    /// together. Absent only when `row_privacy` is set.
    #[serde(default)]
    pub privacy_unit: Option<String>,
    /// Each row is its own privacy unit.
    #[serde(default)]
    pub row_privacy: bool,
    /// Most rows one unit contributes to a query (contribution bound k).
    #[serde(default = "one")]
    pub max_rows_per_unit: u32,
    /// Most groups (cells of a GROUP BY) one unit contributes to; absent, at most
    /// `max_rows_per_unit`. Keys released by τ-thresholding need a smaller threshold when a
    /// unit can touch fewer keys.
    #[serde(default)]
    pub max_groups_per_unit: Option<u32>,
    /// Rows whose privacy unit is empty cannot be bounded: refuse the file (the default)
    /// or drop them at ingest.
    #[serde(default)]
    pub missing_unit: MissingUnit,
    /// Processing mode.
    #[serde(default)]
    pub mode: Mode,
    /// Values outside a column's bounds or declared categories: keep them (the default;
    /// every query clamps them to the bounds), drop their rows at ingest (counted), or
    /// refuse the file (naming the first such row, column and value).
    #[serde(default)]
    pub out_of_range: OutOfRange,
    /// Store each desensitized column as queries see it (the keyed pseudonym, the mask,
    /// the band, ...) instead of its raw values: the raw values never reach the domain
    /// store. Rare raw values are still hashed into the value sets at ingest. A version's
    /// policy is fixed, so what it stores is too; a different desensitization needs the
    /// data registered again. Columns with access `none` are never stored, whatever this
    /// says (the privacy unit excepted: bounding needs it).
    #[serde(default)]
    pub store_desensitized: bool,
}

/// How a column of a dataset version is kept in the domain store ([`Policy::stored`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Its values as provided.
    Raw,
    /// Its values desensitized as the policy says: what every query sees.
    Desensitized,
    /// Not at all: no query can ever see it.
    Not,
}

/// What ingest does with a value outside its column's bounds or categories.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OutOfRange {
    /// Store it; every query clamps it to the bounds.
    #[default]
    Keep,
    /// Leave its row out of the stored dataset, and count it.
    Drop,
    /// Refuse the whole file.
    Refuse,
}

impl OutOfRange {
    /// Its name, as in policies.
    pub fn as_str(self) -> &'static str {
        match self {
            OutOfRange::Keep => "keep",
            OutOfRange::Drop => "drop",
            OutOfRange::Refuse => "refuse",
        }
    }
}

fn one() -> u32 {
    1
}

fn not_shared() -> ShareType {
    ShareType::NotShared
}

/// The policy of one column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ColumnPolicy {
    /// Column name, as in the data.
    pub name: String,
    /// Classification level.
    pub level: Level,
    /// Access rule.
    pub access: Access,
    /// Desensitization applied before queries see the column.
    #[serde(default)]
    pub desensitize: Option<Desensitize>,
    /// Clamping range `[lower, upper]`: the sensitivity of aggregates.
    #[serde(default)]
    pub bounds: Option<[f64; 2]>,
    /// Declared public category list: group keys released without thresholding.
    #[serde(default)]
    pub categories: Option<Vec<String>>,
    /// What the column holds.
    #[serde(default)]
    pub description: Option<String>,
}

/// Disclosure-control settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Disclosure {
    /// Smallest group a released cell may describe.
    #[serde(default = "default_min_group")]
    pub min_group_size: u32,
    /// Largest output table, in rows.
    #[serde(default = "default_max_rows")]
    pub max_output_rows: u32,
    /// nk-dominance rule for sums in threshold mode: a cell is suppressed when its `n`
    /// largest contributors hold more than `k` of its total.
    #[serde(default)]
    pub dominance: Dominance,
    /// p% rule for sums in threshold mode: a cell is suppressed when the total less its two
    /// largest contributions is below `p_ratio` of the largest (the second largest could
    /// estimate the largest to within p%).
    #[serde(default = "default_p_ratio")]
    pub p_ratio: f64,
    /// Output kinds a module may release from this dataset (default: all three).
    #[serde(default = "default_output_kinds")]
    pub output_kinds: Vec<OutputKindName>,
    /// Largest output file, in bytes.
    #[serde(default = "default_max_bytes")]
    pub max_output_bytes: u64,
    /// Identifier kinds the output scan looks for (default: all).
    #[serde(default = "default_identifiers")]
    pub identifiers: Vec<IdentifierKind>,
    /// Columns at this level or above get a hashed set of their rare raw values at ingest
    /// (values held by fewer than `min_group_size` units); outputs are checked against it.
    #[serde(default = "default_raw_value_level")]
    pub raw_value_level: u8,
    /// What each output check's finding means for review.
    #[serde(default)]
    pub checks: CheckSeverities,
    /// How released numbers are rounded: `noise` (the default) to what their noise
    /// supports (one digit below the leading digit of their 95 % interval), `none` as
    /// drawn. Where several policies meet, `noise` wins.
    #[serde(default)]
    pub rounding: Rounding,
}

/// How released numbers are rounded.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    /// To what their noise supports.
    #[default]
    Noise,
    /// As drawn.
    None,
}

/// An output kind, as named in policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutputKindName {
    /// An Arrow table.
    Table,
    /// Markdown text.
    Text,
    /// An SVG chart.
    Chart,
    /// A PNG chart (re-encoded by the host to its pixels).
    Image,
}

/// An identifier kind the output scan looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IdentifierKind {
    /// Resident ID numbers (GB 11643, with a valid check character).
    ResidentId,
    /// Mainland mobile numbers.
    Mobile,
    /// Bank card numbers (16–19 digits passing the Luhn check).
    BankCard,
    /// E-mail addresses.
    Email,
    /// Vehicle licence plates.
    LicencePlate,
}

/// What a finding of a check means: `fail` needs a written override at both review tiers
/// (the supervisor's approval), `review` a written note from the operator reviewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The reviewer must look and say why it is fine.
    Review,
    /// Release needs an override with the supervisor's approval.
    Fail,
}

/// Severity of each output check's finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckSeverities {
    /// Kind not allowed, or over a row or byte cap.
    #[serde(default = "fail")]
    pub type_and_size: Severity,
    /// An identifier found in the output.
    #[serde(default = "fail")]
    pub identifiers: Severity,
    /// A rare raw value of a protected column found in the output.
    #[serde(default = "fail")]
    pub raw_values: Severity,
    /// Threshold mode: a small cell, or a total that reveals a suppressed cell.
    #[serde(default = "fail")]
    pub threshold: Severity,
    /// Numbers the module did not receive from the mediator (derived or invented).
    #[serde(default = "review")]
    pub provenance: Severity,
    /// Differs from a released output of the scenario by a group below `min_group_size`.
    #[serde(default = "fail")]
    pub differencing: Severity,
}

fn fail() -> Severity {
    Severity::Fail
}

fn review() -> Severity {
    Severity::Review
}

impl Default for CheckSeverities {
    fn default() -> Self {
        CheckSeverities {
            type_and_size: Severity::Fail,
            identifiers: Severity::Fail,
            raw_values: Severity::Fail,
            threshold: Severity::Fail,
            provenance: Severity::Review,
            differencing: Severity::Fail,
        }
    }
}

fn default_output_kinds() -> Vec<OutputKindName> {
    vec![
        OutputKindName::Table,
        OutputKindName::Text,
        OutputKindName::Chart,
        OutputKindName::Image,
    ]
}

fn default_max_bytes() -> u64 {
    4 * 1024 * 1024
}

fn default_identifiers() -> Vec<IdentifierKind> {
    vec![
        IdentifierKind::ResidentId,
        IdentifierKind::Mobile,
        IdentifierKind::BankCard,
        IdentifierKind::Email,
        IdentifierKind::LicencePlate,
    ]
}

fn default_raw_value_level() -> u8 {
    3
}

/// The nk-dominance rule's parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Dominance {
    /// Number of largest contributors.
    pub n: u32,
    /// Share of the total they may hold, in (0, 1].
    pub k: f64,
}

impl Default for Dominance {
    fn default() -> Self {
        Dominance { n: 2, k: 0.9 }
    }
}

fn default_p_ratio() -> f64 {
    0.1
}

fn default_min_group() -> u32 {
    10
}

fn default_max_rows() -> u32 {
    10_000
}

impl Default for Disclosure {
    fn default() -> Self {
        Disclosure {
            min_group_size: default_min_group(),
            max_output_rows: default_max_rows(),
            dominance: Dominance::default(),
            p_ratio: default_p_ratio(),
            output_kinds: default_output_kinds(),
            max_output_bytes: default_max_bytes(),
            identifiers: default_identifiers(),
            raw_value_level: default_raw_value_level(),
            checks: CheckSeverities::default(),
            rounding: Rounding::default(),
        }
    }
}

/// A dataset policy, as written by the provider in TOML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Catalog fields and privacy settings.
    pub dataset: DatasetSpec,
    /// One entry per column of the data.
    #[serde(rename = "column")]
    pub columns: Vec<ColumnPolicy>,
    /// Disclosure-control settings.
    #[serde(default)]
    pub disclosure: Disclosure,
    /// The provider's conditions on the scenarios that use the dataset (JZ Art. 11; SYS
    /// Art. 43), checked at application and at approval.
    #[serde(default)]
    pub conditions: Conditions,
}

/// What a provider allows of the scenarios over its dataset. Empty lists allow any.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    /// Scenario types allowed (a scenario names its `type`); empty: any, typed or not.
    #[serde(default)]
    pub scenario_types: Vec<String>,
    /// Processing modes allowed; empty: any.
    #[serde(default)]
    pub modes: Vec<Mode>,
    /// The most ε one scenario may be granted over the dataset.
    #[serde(default)]
    pub max_epsilon_per_scenario: Option<f64>,
    /// The most ε all scenarios over the dataset may be granted together (a revoked one
    /// counts what it spent): a new scenario does not reset what has been learnt about the
    /// same people.
    #[serde(default)]
    pub max_epsilon_total: Option<f64>,
}

impl Conditions {
    /// Refuses a scenario of `scenario_type`, `mode` and granted `epsilon` that the
    /// conditions do not allow (the cumulative cap is the caller's: it needs the other
    /// scenarios).
    pub fn allow(
        &self,
        dataset: &str,
        scenario_type: Option<&str>,
        mode: Mode,
        epsilon: f64,
    ) -> Result<()> {
        let field = |f: &str| format!("dataset `{dataset}`: {f}");
        if !self.scenario_types.is_empty()
            && !scenario_type.is_some_and(|t| self.scenario_types.iter().any(|a| a == t))
        {
            return Err(PolicyError::invalid(
                field("conditions.scenario_types"),
                format!(
                    "its provider allows scenarios of the types {} only",
                    self.scenario_types.join(", ")
                ),
            ));
        }
        if !self.modes.is_empty() && !self.modes.contains(&mode) {
            return Err(PolicyError::invalid(
                field("conditions.modes"),
                format!("its provider does not allow {mode:?} mode").to_lowercase(),
            ));
        }
        if let Some(most) = self.max_epsilon_per_scenario
            && epsilon > most * (1.0 + 1e-9)
        {
            return Err(PolicyError::invalid(
                field("conditions.max_epsilon_per_scenario"),
                format!("its provider allows a scenario at most ε {most}; this one asks {epsilon}"),
            ));
        }
        Ok(())
    }

    fn validate(&self) -> Result<()> {
        for (name, v) in [
            (
                "conditions.max_epsilon_per_scenario",
                self.max_epsilon_per_scenario,
            ),
            ("conditions.max_epsilon_total", self.max_epsilon_total),
        ] {
            if let Some(v) = v
                && !(v.is_finite() && v > 0.0)
            {
                return Err(PolicyError::invalid(name, "a positive number"));
            }
        }
        Ok(())
    }
}

impl Policy {
    /// Parses a policy and checks the rules that need no data (levels, bounds, names).
    pub fn from_toml_str(text: &str) -> Result<Policy> {
        let policy: Policy = toml::from_str(text).map_err(|e| PolicyError::Parse {
            what: "policy",
            message: e.to_string(),
        })?;
        policy.validate()?;
        Ok(policy)
    }

    /// The policy as TOML text.
    pub fn to_toml_string(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| PolicyError::invalid("policy", e.to_string()))
    }

    /// The column's policy, if the column is classified.
    pub fn column(&self, name: &str) -> Option<&ColumnPolicy> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// How ingest keeps `column` in the domain store, and so how a view reads it back:
    /// the one rule of what reaches the disk. A column no query can ever see (access
    /// `none`, or unclassified) is not stored, the privacy unit excepted (bounding and the
    /// differencing guard read it); a desensitized column is stored desensitized when
    /// `store_desensitized` is set; everything else as provided.
    pub fn stored(&self, column: &str) -> Stored {
        let unit = self.dataset.privacy_unit.as_deref() == Some(column);
        match self.column(column) {
            Some(c) if c.access == Access::None && !unit => Stored::Not,
            None if !unit => Stored::Not,
            Some(c) if c.desensitize.is_some() && self.dataset.store_desensitized => {
                Stored::Desensitized
            }
            _ => Stored::Raw,
        }
    }

    /// Checks everything that does not need the data's schema.
    pub fn validate(&self) -> Result<()> {
        let d = &self.dataset;
        check_identifier("dataset.name", &d.name)?;
        self.conditions.validate()?;
        if d.summary.trim().is_empty() {
            return Err(PolicyError::invalid("dataset.summary", "must not be empty"));
        }
        if d.provider.trim().is_empty() {
            return Err(PolicyError::invalid(
                "dataset.provider",
                "must not be empty",
            ));
        }
        if d.max_rows_per_unit == 0 || d.max_rows_per_unit > 1000 {
            return Err(PolicyError::invalid(
                "dataset.max_rows_per_unit",
                "must be between 1 and 1000",
            ));
        }
        if let Some(g) = d.max_groups_per_unit
            && (g == 0 || g > d.max_rows_per_unit)
        {
            return Err(PolicyError::invalid(
                "dataset.max_groups_per_unit",
                "must be between 1 and max_rows_per_unit (a unit's rows cannot fill more groups)",
            ));
        }
        if self.columns.is_empty() {
            return Err(PolicyError::invalid(
                "column",
                "a policy needs at least one column",
            ));
        }
        let mut seen = BTreeSet::new();
        for c in &self.columns {
            check_identifier(&format!("column `{}` name", c.name), &c.name)?;
            if !seen.insert(c.name.as_str()) {
                return Err(PolicyError::DuplicateColumn {
                    column: c.name.clone(),
                });
            }
            c.validate()?;
        }
        match (&d.privacy_unit, d.row_privacy) {
            (Some(_), true) => {
                return Err(PolicyError::PrivacyUnit {
                    message: "set either `privacy_unit` or `row_privacy`, not both".into(),
                });
            }
            (None, false) => {
                return Err(PolicyError::PrivacyUnit {
                    message: "name the `privacy_unit` column, or set `row_privacy = true`".into(),
                });
            }
            (None, true) => {
                if d.missing_unit == MissingUnit::Drop {
                    return Err(PolicyError::invalid(
                        "dataset.missing_unit",
                        "applies to a `privacy_unit` column, not to row privacy",
                    ));
                }
                if d.max_rows_per_unit != 1 {
                    return Err(PolicyError::invalid(
                        "dataset.max_rows_per_unit",
                        "must be 1 under row privacy",
                    ));
                }
            }
            (Some(unit), false) => {
                let col = self.column(unit).ok_or_else(|| PolicyError::PrivacyUnit {
                    message: format!("column `{unit}` is not in the policy"),
                })?;
                if !matches!(col.access, Access::None | Access::JoinKey) {
                    return Err(PolicyError::PrivacyUnit {
                        message: format!(
                            "column `{unit}` identifies units: its access must be `none` or `join_key`, not `{}`",
                            col.access
                        ),
                    });
                }
            }
        }
        if self.disclosure.min_group_size == 0 {
            return Err(PolicyError::invalid(
                "disclosure.min_group_size",
                "must be at least 1",
            ));
        }
        let dominance = &self.disclosure.dominance;
        if dominance.n == 0 || !(dominance.k > 0.0 && dominance.k <= 1.0) {
            return Err(PolicyError::invalid(
                "disclosure.dominance",
                "n must be at least 1 and k in (0, 1]",
            ));
        }
        if !(self.disclosure.p_ratio >= 0.0 && self.disclosure.p_ratio < 1.0) {
            return Err(PolicyError::invalid(
                "disclosure.p_ratio",
                "must be in [0, 1)",
            ));
        }
        if self.disclosure.max_output_bytes == 0 {
            return Err(PolicyError::invalid(
                "disclosure.max_output_bytes",
                "must be at least 1",
            ));
        }
        if !(1..=5).contains(&self.disclosure.raw_value_level) {
            return Err(PolicyError::invalid(
                "disclosure.raw_value_level",
                "must be a level from 1 to 4, or 5 for none",
            ));
        }
        if self.disclosure.max_output_rows == 0 {
            return Err(PolicyError::invalid(
                "disclosure.max_output_rows",
                "must be at least 1",
            ));
        }
        Ok(())
    }

    /// Checks the policy against the real schema of the data: every column classified,
    /// no unknown column, rules fit the types.
    pub fn validate_against(&self, schema: &[(&str, ColumnType)]) -> Result<()> {
        self.validate()?;
        let types: BTreeMap<&str, ColumnType> = schema.iter().copied().collect();
        for c in &self.columns {
            let Some(ty) = types.get(c.name.as_str()) else {
                return Err(PolicyError::UnknownColumn {
                    column: c.name.clone(),
                });
            };
            if c.bounds.is_some() && !ty.is_numeric() {
                return Err(PolicyError::TypeMismatch {
                    column: c.name.clone(),
                    ty: ty.to_string(),
                    message: "bounds need a numeric column".into(),
                });
            }
            if let Some(d) = &c.desensitize {
                d.validate(&c.name, Some(*ty))?;
            }
            let seen = c.desensitize.as_ref().map_or(*ty, |d| d.output_type(*ty));
            if c.access == Access::Aggregate && !seen.is_numeric() {
                return Err(PolicyError::TypeMismatch {
                    column: c.name.clone(),
                    ty: ty.to_string(),
                    message: "access `aggregate` needs a numeric column".into(),
                });
            }
        }
        for (name, _) in schema {
            if self.column(name).is_none() {
                return Err(PolicyError::UnclassifiedColumn {
                    column: (*name).to_string(),
                });
            }
        }
        Ok(())
    }
}

impl ColumnPolicy {
    fn validate(&self) -> Result<()> {
        if !self.level.allows(self.access) {
            return Err(PolicyError::AccessAboveCeiling {
                column: self.name.clone(),
                level: self.level,
                access: self.access,
                ceiling: self
                    .level
                    .ceiling()
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        if self.level == Level::HIGHLY_SENSITIVE
            && self.access == Access::JoinKey
            && self.desensitize != Some(Desensitize::KeyedHash)
        {
            return Err(PolicyError::invalid(
                format!("column `{}` desensitize", self.name),
                "a level-4 join key must be desensitized with `keyed_hash`",
            ));
        }
        if let Some(d) = &self.desensitize {
            d.validate(&self.name, None)?;
        }
        if self.access == Access::Aggregate && self.bounds.is_none() {
            return Err(PolicyError::MissingBounds {
                column: self.name.clone(),
            });
        }
        if let Some([lower, upper]) = self.bounds
            && !(lower.is_finite()
                && upper.is_finite()
                && lower < upper
                && lower.abs().max(upper.abs()) <= MAX_VALUE_BOUND)
        {
            return Err(PolicyError::InvalidBounds {
                column: self.name.clone(),
                lower,
                upper,
            });
        }
        if let Some(categories) = &self.categories {
            if self.access != Access::Group && self.access != Access::Plain {
                return Err(PolicyError::invalid(
                    format!("column `{}` categories", self.name),
                    "categories are declared only for `group` columns",
                ));
            }
            if categories.is_empty() || categories.len() > 10_000 {
                return Err(PolicyError::invalid(
                    format!("column `{}` categories", self.name),
                    "must list between 1 and 10000 values",
                ));
            }
            let unique: BTreeSet<&String> = categories.iter().collect();
            if unique.len() != categories.len() {
                return Err(PolicyError::invalid(
                    format!("column `{}` categories", self.name),
                    "values must be distinct",
                ));
            }
        }
        Ok(())
    }

    /// The clamping bounds, if any.
    pub fn bounds(&self) -> Option<(f64, f64)> {
        self.bounds.map(|[l, u]| (l, u))
    }
}

/// Checks a SQL-safe identifier: `[a-z][a-z0-9_]{0,62}`.
pub(crate) fn check_identifier(field: &str, name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && name.len() <= 63;
    if ok {
        Ok(())
    } else {
        Err(PolicyError::invalid(
            field,
            format!(
                "`{name}` must be lowercase letters, digits and `_`, starting with a letter, at most 63 characters"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::level::Use;

    const BASE: &str = r#"
[dataset]
name = "residents"
summary = "Residents"
provider = "PSB"
privacy_unit = "citizen_id"

[[column]]
name = "citizen_id"
level = 4
access = "join_key"
desensitize = "keyed_hash"

[[column]]
name = "district"
level = 2
access = "group"
categories = ["a", "b"]

[[column]]
name = "income"
level = 3
access = "aggregate"
bounds = [0, 500000]
"#;

    fn schema() -> Vec<(&'static str, ColumnType)> {
        vec![
            ("citizen_id", ColumnType::Utf8),
            ("district", ColumnType::Utf8),
            ("income", ColumnType::Float),
        ]
    }

    #[test]
    fn valid_policy_passes() {
        let p = Policy::from_toml_str(BASE).unwrap();
        p.validate_against(&schema()).unwrap();
        assert_eq!(p.dataset.max_rows_per_unit, 1);
        assert_eq!(p.dataset.mode, Mode::Dp);
    }

    #[test]
    fn what_is_stored_follows_what_a_query_can_see() {
        let with_phone =
            format!("{BASE}\n[[column]]\nname = \"phone\"\nlevel = 4\naccess = \"none\"\n");
        let p = Policy::from_toml_str(&with_phone).unwrap();
        assert_eq!(p.stored("phone"), Stored::Not);
        assert_eq!(p.stored("unclassified"), Stored::Not);
        assert_eq!(p.stored("citizen_id"), Stored::Raw);
        assert_eq!(p.stored("income"), Stored::Raw);
        let p = Policy::from_toml_str(&with_phone.replace(
            "privacy_unit = \"citizen_id\"",
            "privacy_unit = \"citizen_id\"\nstore_desensitized = true",
        ))
        .unwrap();
        assert_eq!(p.stored("citizen_id"), Stored::Desensitized);
        assert_eq!(p.stored("district"), Stored::Raw);
        assert_eq!(p.stored("phone"), Stored::Not);
        // The privacy unit is stored even when no query may see it: bounding reads it.
        let p = Policy::from_toml_str(&BASE.replace(
            "access = \"join_key\"\ndesensitize = \"keyed_hash\"",
            "access = \"none\"",
        ))
        .unwrap();
        assert_eq!(p.stored("citizen_id"), Stored::Raw);
    }

    #[test]
    fn access_above_level_is_refused() {
        let text = BASE.replace(
            "level = 3\naccess = \"aggregate\"",
            "level = 3\naccess = \"group\"",
        );
        let err = Policy::from_toml_str(&text).unwrap_err();
        assert!(
            matches!(err, PolicyError::AccessAboveCeiling { ref column, .. } if column == "income")
        );
        let text = BASE.replace(
            "level = 4\naccess = \"join_key\"",
            "level = 4\naccess = \"plain\"",
        );
        assert!(matches!(
            Policy::from_toml_str(&text).unwrap_err(),
            PolicyError::AccessAboveCeiling { .. }
        ));
    }

    #[test]
    fn aggregate_without_bounds_is_refused() {
        let text = BASE.replace("bounds = [0, 500000]\n", "");
        assert_eq!(
            Policy::from_toml_str(&text).unwrap_err(),
            PolicyError::MissingBounds {
                column: "income".into()
            }
        );
    }

    #[test]
    fn inverted_bounds_are_refused() {
        let text = BASE.replace("bounds = [0, 500000]", "bounds = [10, 1]");
        assert!(matches!(
            Policy::from_toml_str(&text).unwrap_err(),
            PolicyError::InvalidBounds { .. }
        ));
    }

    #[test]
    fn unknown_and_unclassified_columns_are_refused() {
        let p = Policy::from_toml_str(BASE).unwrap();
        let err = p
            .validate_against(&[
                ("citizen_id", ColumnType::Utf8),
                ("district", ColumnType::Utf8),
            ])
            .unwrap_err();
        assert_eq!(
            err,
            PolicyError::UnknownColumn {
                column: "income".into()
            }
        );
        let mut s = schema();
        s.push(("phone", ColumnType::Utf8));
        assert_eq!(
            p.validate_against(&s).unwrap_err(),
            PolicyError::UnclassifiedColumn {
                column: "phone".into()
            }
        );
    }

    #[test]
    fn aggregate_on_text_is_refused() {
        let p = Policy::from_toml_str(BASE).unwrap();
        let mut s = schema();
        s[2] = ("income", ColumnType::Utf8);
        assert!(matches!(
            p.validate_against(&s).unwrap_err(),
            PolicyError::TypeMismatch { .. }
        ));
    }

    #[test]
    fn unknown_fields_and_bad_levels_do_not_parse() {
        let text = BASE.replace("level = 2", "level = 7");
        assert!(matches!(
            Policy::from_toml_str(&text).unwrap_err(),
            PolicyError::Parse { .. }
        ));
        let text = BASE.replace("level = 2", "level = 2\nsecret = true");
        assert!(matches!(
            Policy::from_toml_str(&text).unwrap_err(),
            PolicyError::Parse { .. }
        ));
    }

    #[test]
    fn privacy_unit_must_not_be_groupable() {
        let text = BASE.replace(
            "privacy_unit = \"citizen_id\"",
            "privacy_unit = \"district\"",
        );
        assert!(matches!(
            Policy::from_toml_str(&text).unwrap_err(),
            PolicyError::PrivacyUnit { .. }
        ));
    }

    #[test]
    fn level_four_join_key_needs_keyed_hash() {
        let text = BASE.replace("desensitize = \"keyed_hash\"\n", "");
        assert!(matches!(
            Policy::from_toml_str(&text).unwrap_err(),
            PolicyError::Invalid { .. }
        ));
    }

    #[test]
    fn desensitization_forms_parse_and_check_types() {
        let text = BASE.replace(
            "categories = [\"a\", \"b\"]",
            "categories = [\"a\", \"b\"]\ndesensitize = { kind = \"prefix\", length = 2 }",
        );
        let p = Policy::from_toml_str(&text).unwrap();
        assert_eq!(
            p.column("district").unwrap().desensitize,
            Some(Desensitize::Prefix { length: 2 })
        );
        p.validate_against(&schema()).unwrap();
        // Round trip through TOML keeps the form.
        let again = Policy::from_toml_str(&p.to_toml_string().unwrap()).unwrap();
        assert_eq!(again, p);
        // A text-only kind on a number is refused against the schema.
        let text = BASE.replace(
            "bounds = [0, 500000]",
            "bounds = [0, 500000]\ndesensitize = { kind = \"mask\", keep_prefix = 1 }",
        );
        let p = Policy::from_toml_str(&text).unwrap();
        assert!(matches!(
            p.validate_against(&schema()).unwrap_err(),
            PolicyError::TypeMismatch { .. }
        ));
        // Parameters are required where they matter, and checked.
        let text = BASE.replace(
            "access = \"group\"",
            "access = \"group\"\ndesensitize = \"band\"",
        );
        assert!(matches!(
            Policy::from_toml_str(&text).unwrap_err(),
            PolicyError::Parse { .. }
        ));
        let text = BASE.replace(
            "access = \"group\"",
            "access = \"group\"\ndesensitize = { kind = \"band\", width = -1 }",
        );
        assert!(matches!(
            Policy::from_toml_str(&text).unwrap_err(),
            PolicyError::Invalid { .. }
        ));
    }

    #[test]
    fn access_permits_uses() {
        assert!(Access::Group.permits(Use::Group));
        assert!(Access::Group.permits(Use::Filter));
        assert!(!Access::Group.permits(Use::Aggregate));
        assert!(Access::Aggregate.permits(Use::Aggregate));
        assert!(!Access::Aggregate.permits(Use::Group));
        assert!(!Access::JoinKey.permits(Use::Filter));
        assert!(!Access::None.permits(Use::Count));
        assert!(!Access::Aggregate.permits(Use::Output));
        assert!(Access::Plain.permits(Use::Output));
    }
}
