//! Errors of policy and scenario parsing and validation.

use crate::level::{Access, Level};

/// `Result` with [`PolicyError`] as the default error.
pub type Result<T, E = PolicyError> = std::result::Result<T, E>;

/// Why a policy or scenario was refused. Every variant names the offending item.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    /// The text is not valid TOML for the format, or has unknown fields.
    #[error("cannot parse {what}: {message}")]
    Parse {
        /// "policy" or "scenario".
        what: &'static str,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A field holds a value outside its allowed range or form.
    #[error("invalid {field}: {message}")]
    Invalid {
        /// The field, e.g. `dataset.name`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The policy names a column the dataset does not have.
    #[error("policy names column `{column}`, which the dataset does not have")]
    UnknownColumn {
        /// The column.
        column: String,
    },
    /// The dataset has a column the policy does not classify.
    #[error("column `{column}` has no policy entry: every column must be classified")]
    UnclassifiedColumn {
        /// The column.
        column: String,
    },
    /// The same column is listed twice.
    #[error("column `{column}` is listed more than once")]
    DuplicateColumn {
        /// The column.
        column: String,
    },
    /// The access rule exceeds what the column's classification level allows.
    #[error(
        "column `{column}`: access `{access}` is above the ceiling of level {level} (at most {ceiling})"
    )]
    AccessAboveCeiling {
        /// The column.
        column: String,
        /// Its classification level.
        level: Level,
        /// The access asked for.
        access: Access,
        /// The accesses its level allows, for the message.
        ceiling: String,
    },
    /// An `aggregate` column lacks the bounds that DP sensitivity is derived from.
    #[error(
        "column `{column}` has access `aggregate` but no bounds: its sensitivity would be unbounded"
    )]
    MissingBounds {
        /// The column.
        column: String,
    },
    /// Bounds are not finite, not within ±2^53, or lower is not below upper.
    #[error(
        "column `{column}`: bounds [{lower}, {upper}] must be finite, within ±2^53, with lower < upper"
    )]
    InvalidBounds {
        /// The column.
        column: String,
        /// Lower bound.
        lower: f64,
        /// Upper bound.
        upper: f64,
    },
    /// The column's type does not fit its rule (e.g. bounds on a text column).
    #[error("column `{column}` of type {ty}: {message}")]
    TypeMismatch {
        /// The column.
        column: String,
        /// Its type in the data.
        ty: String,
        /// What does not fit.
        message: String,
    },
    /// The privacy unit is missing, unknown or exposed.
    #[error("privacy unit: {message}")]
    PrivacyUnit {
        /// What is wrong.
        message: String,
    },
    /// A scenario names a dataset that is not registered.
    #[error("scenario names dataset `{dataset}`, which is not registered")]
    UnknownDataset {
        /// The dataset.
        dataset: String,
    },
    /// A scenario asks for a column it may not have.
    #[error("scenario asks for `{dataset}.{column}`: {message}")]
    ScenarioColumn {
        /// The dataset.
        dataset: String,
        /// The column.
        column: String,
        /// Why it is refused.
        message: String,
    },
}

impl PolicyError {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        PolicyError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}
