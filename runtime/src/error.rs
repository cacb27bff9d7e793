//! The runtime's error type, by phase.

use sandbox_policies::PolicyError;

use crate::mediate::Refusal;

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the runtime, grouped by phase.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A policy or scenario was refused.
    #[error("policy: {0}")]
    Policy(#[from] PolicyError),
    /// The mediator refused a query.
    #[error("query refused: {0}")]
    Refused(Refusal),
    /// The privacy budget cannot pay for a query.
    #[error("budget: {message}")]
    Budget {
        /// What was asked and what is left.
        message: String,
    },
    /// Bad input data (CSV, Parquet) at ingest.
    #[error("input {path}: {message}")]
    Input {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The module is not acceptable (validation) or failed while running.
    #[error("module: {0}")]
    Guest(String),
    /// A job limit was reached.
    #[error("limit `{limit}` reached: {message}")]
    Limit {
        /// The limit's name, e.g. `fuel`.
        limit: &'static str,
        /// Detail.
        message: String,
    },
    /// Too much work waiting: try again later.
    #[error("busy: {0}")]
    Busy(String),
    /// The job was cancelled by its submitter or an operator.
    #[error("cancelled: {0}")]
    Cancelled(String),
    /// An emergency stop ended or refused the work.
    #[error("emergency stop: {0}")]
    Stopped(String),
    /// The caller did not prove who it is (no token, a malformed, unknown or revoked
    /// token, a secret that does not verify).
    #[error("not authenticated: {0}")]
    Unauthenticated(String),
    /// The actor may not do this (role, separation of duties, state).
    #[error("not permitted: {0}")]
    Forbidden(String),
    /// Something named does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A request conflicts with the current state.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Review or release refused.
    #[error("review: {0}")]
    Review(String),
    /// The audit log or a product failed verification.
    #[error("verification failed: {0}")]
    Verify(String),
    /// Metadata store failure.
    #[error("store: {0}")]
    Store(#[from] rusqlite::Error),
    /// File system failure.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// Query engine failure.
    #[error("query engine: {0}")]
    Engine(String),
    /// A server refused or failed a call made through it (the CLI's `--server`), with a
    /// status and code that have no local counterpart, or the server could not be reached
    /// (status 0).
    #[error("server ({status} {code}): {message}")]
    Remote {
        /// HTTP status (0: not reached).
        status: u16,
        /// The server's error code.
        code: String,
        /// The server's message.
        message: String,
    },
    /// A bug or an unexpected state.
    #[error("internal: {0}")]
    Internal(String),
}

impl From<datafusion::error::DataFusionError> for Error {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        Error::Engine(e.to_string())
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Internal(format!("json: {e}"))
    }
}

impl From<arrow::error::ArrowError> for Error {
    fn from(e: arrow::error::ArrowError) -> Self {
        Error::Engine(e.to_string())
    }
}

/// Builds an [`Error::Internal`] with `format!` arguments.
#[macro_export]
macro_rules! internal_err {
    ($($arg:tt)*) => { $crate::Error::Internal(format!($($arg)*)) };
}
