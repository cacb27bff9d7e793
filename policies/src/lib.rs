//! Policy and scenario model for Sandbox.
//!
//! A **policy** is what a data provider states about a dataset when it is registered into
//! the domain: catalog fields (SYS Art. 12), the privacy unit, and for every column a
//! classification level (TJ-Sec Art. 6, JZ Art. 14) and an access rule. A **scenario** is
//! the agreement under which a developer may use datasets (QQHR Art. 15, 16: one scenario,
//! one agreement): purpose, the columns it needs (minimum necessary), a validity window
//! (JZ Art. 9) and a privacy budget.
//!
//! This crate is pure: parsing, validation and decisions. It does no I/O, no async, and
//! knows nothing of DataFusion or wasmtime.
//!
//! ```
//! use sandbox_policies::{Policy, ColumnType};
//! let policy = Policy::from_toml_str(r#"
//!     [dataset]
//!     name = "residents"
//!     summary = "Registered residents"
//!     provider = "Public Security Bureau"
//!     privacy_unit = "citizen_id"
//!
//!     [[column]]
//!     name = "citizen_id"
//!     level = 4
//!     access = "join_key"
//!     desensitize = "keyed_hash"
//!
//!     [[column]]
//!     name = "income"
//!     level = 3
//!     access = "aggregate"
//!     bounds = [0, 500000]
//! "#).unwrap();
//! let schema = [("citizen_id", ColumnType::Utf8), ("income", ColumnType::Float)];
//! policy.validate_against(&schema).unwrap();
//! ```

#![forbid(unsafe_code)]

mod error;
mod grantee;
mod level;
mod policy;
mod scenario;

pub use error::{PolicyError, Result};
pub use grantee::{Grantee, check_credit_code};
pub use level::{Access, Level, Use};
pub use policy::{
    CheckSeverities, ColumnPolicy, ColumnType, Conditions, DatasetSpec, DateUnit, Desensitize,
    Disclosure, Dominance, IdentifierKind, MAX_VALUE_BOUND, MissingUnit, Mode, OutOfRange,
    OutputKindName, Policy, Rounding, Severity, ShareType, Stored,
};
pub use scenario::{
    Accounting, AgreementTerms, BudgetSpec, LimitsSpec, MAX_VALIDITY_DAYS, Scenario,
    ScenarioDataset,
};

/// JSON Schema of the policy format, for editors and validators.
pub fn policy_schema() -> serde_json::Value {
    schemars::schema_for!(Policy).to_value()
}

/// JSON Schema of the scenario format.
pub fn scenario_schema() -> serde_json::Value {
    schemars::schema_for!(Scenario).to_value()
}
