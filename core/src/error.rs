//! The error type every layer answers with, by phase.
//!
//! Each layer that meets foreign errors (the store's SQLite, the mediator's DataFusion and
//! Arrow) wraps them in an error of its own that converts into this one; what crosses a
//! layer boundary upwards is always an [`Error`].

use sandbox_policies::PolicyError;

use crate::refusal::{Refusal, Rule};

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A failure of the metadata store (SQLite, or another backend), kept with its source.
#[derive(Debug)]
pub struct StoreError(Box<dyn std::error::Error + Send + Sync>);

impl StoreError {
    /// Wraps a backend's error.
    pub fn new(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
        StoreError(Box::new(e))
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Everything that can go wrong in the runtime, grouped by phase.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A policy or scenario was refused.
    #[error("policy: {0}")]
    Policy(#[from] PolicyError),
    /// The mediator refused a query.
    #[error("query refused: {0}")]
    Refused(Refusal),
    /// A request is malformed or names a value that cannot be (a principal's name, a
    /// missing reason, an unknown scope): the caller's input, not the domain's state.
    #[error("invalid: {0}")]
    Invalid(String),
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
    /// What was asked for was withdrawn (a product, with the reason and who withdrew it).
    #[error("withdrawn: {0}")]
    Withdrawn(String),
    /// Review or release refused.
    #[error("review: {0}")]
    Review(String),
    /// The audit log or a product failed verification.
    #[error("verification failed: {0}")]
    Verify(String),
    /// Metadata store failure.
    #[error("store: {0}")]
    Store(StoreError),
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

impl Error {
    /// What happened, without the phase's prefix that [`std::fmt::Display`] adds: the
    /// message a caller is shown next to the error's code.
    pub fn detail(&self) -> String {
        match self {
            Error::Refused(r) => r.to_string(),
            Error::Guest(m)
            | Error::Invalid(m)
            | Error::Busy(m)
            | Error::Cancelled(m)
            | Error::Stopped(m)
            | Error::Unauthenticated(m)
            | Error::Forbidden(m)
            | Error::NotFound(m)
            | Error::Conflict(m)
            | Error::Review(m)
            | Error::Withdrawn(m)
            | Error::Verify(m)
            | Error::Engine(m)
            | Error::Internal(m) => m.clone(),
            Error::Remote { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }
}

/// How an [`Error`] is answered at an edge (the HTTP API, the console): a status code
/// and a stable code; [`Error::from_answer`] is the inverse, for a client of that edge.
///
/// **Invariant:** this is the one table from errors to answers; the API, the console and
/// the remote CLI all go through it.
impl Error {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        self.answer().0
    }

    /// The stable, machine-readable code this error is answered with, e.g. `forbidden`.
    pub fn code(&self) -> &'static str {
        self.answer().1
    }

    /// Whether this is a failure of the system rather than an answer to the caller: its
    /// text is logged, not shown.
    pub fn is_internal(&self) -> bool {
        self.status() == 500
    }

    fn answer(&self) -> (u16, &'static str) {
        match self {
            Error::Invalid(_) => (400, "bad_request"),
            Error::Unauthenticated(_) => (401, "unauthenticated"),
            Error::Forbidden(_) => (403, "forbidden"),
            Error::NotFound(_) => (404, "not_found"),
            Error::Conflict(_) => (409, "conflict"),
            Error::Review(_) => (409, "review"),
            Error::Withdrawn(_) => (410, "withdrawn"),
            Error::Cancelled(_) => (409, "cancelled"),
            Error::Stopped(_) => (423, "stopped"),
            Error::Busy(_) => (429, "busy"),
            Error::Policy(_) => (422, "policy"),
            // The budget's refusal is the caller's state, not the query's form.
            Error::Refused(r) if r.rule == Rule::BudgetExhausted => (409, "budget"),
            Error::Refused(_) => (422, "query_refused"),
            Error::Input { .. } => (422, "input"),
            Error::Guest(_) => (422, "module"),
            Error::Limit { .. } => (422, "limit"),
            Error::Verify(_) => (422, "verification_failed"),
            Error::Store(_)
            | Error::Io(_)
            | Error::Engine(_)
            | Error::Internal(_)
            | Error::Remote { .. } => (500, "internal"),
        }
    }

    /// The error a server's answer stands for: the inverse of [`Error::status`] and
    /// [`Error::code`] where the message alone carries the variant (a refusal's message
    /// is its text, which [`Refusal::parse`] reads back), and [`Error::Remote`] where it
    /// does not (a policy, a limit, whose structure stays on the server). `message` is
    /// the answer's message, which is the error's [`Error::detail`]: printed, the error
    /// shows its phase once.
    pub fn from_answer(status: u16, code: &str, message: String) -> Error {
        if matches!((status, code), (409, "budget") | (422, "query_refused"))
            && let Some(r) = Refusal::parse(&message)
        {
            return Error::Refused(r);
        }
        match (status, code) {
            (400, "bad_request") => Error::Invalid(message),
            (401, _) => Error::Unauthenticated(message),
            (403, _) => Error::Forbidden(message),
            (404, _) => Error::NotFound(message),
            (409, "review") => Error::Review(message),
            (409, "cancelled") => Error::Cancelled(message),
            (409, _) => Error::Conflict(message),
            (410, _) => Error::Withdrawn(message),
            (422, "module") => Error::Guest(message),
            (422, "verification_failed") => Error::Verify(message),
            (423, _) => Error::Stopped(message),
            (429, _) => Error::Busy(message),
            _ => Error::Remote {
                status,
                code: code.to_string(),
                message,
            },
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Internal(format!("json: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Error> {
        vec![
            Error::Invalid("a reason is required".into()),
            Error::Unauthenticated("unknown token t1".into()),
            Error::Forbidden("`dev` is not a member of scenario 3".into()),
            Error::NotFound("job j1".into()),
            Error::Conflict("already decided".into()),
            Error::Review("needs a supervisor".into()),
            Error::Withdrawn("product p1 was withdrawn".into()),
            Error::Cancelled("cancelled by ops".into()),
            Error::Stopped("a stop of the domain is in force".into()),
            Error::Busy("the queue is full".into()),
            Error::Guest("trap".into()),
            Error::Verify("event 3 edited".into()),
            Error::Refused(Refusal::new(Rule::Syntax, "send one statement")),
            Error::Refused(Refusal::column(
                Rule::ColumnAccess,
                "income",
                "not a group column",
            )),
            Error::Refused(Refusal::new(
                Rule::BudgetExhausted,
                "ε 0.4 asked, 0.2 left of 1",
            )),
        ]
    }

    #[test]
    fn an_answer_reads_back_as_the_error_it_answered_and_prints_its_phase_once() {
        for e in samples() {
            let back = Error::from_answer(e.status(), e.code(), e.detail());
            assert_eq!(
                (back.status(), back.code()),
                (e.status(), e.code()),
                "{e:?}"
            );
            assert_eq!(back.to_string(), e.to_string(), "{e:?}");
            assert_eq!(back.detail(), e.detail(), "{e:?}");
        }
        let budget = Error::from_answer(409, "budget", "[budget_exhausted] ε 0.4 asked".into());
        assert!(matches!(budget, Error::Refused(r) if r.rule == Rule::BudgetExhausted));
    }

    #[test]
    fn answers_without_a_local_variant_stay_remote() {
        for (status, code) in [
            (422, "policy"),
            (422, "limit"),
            (500, "internal"),
            (0, "unreachable"),
        ] {
            let e = Error::from_answer(status, code, "m".into());
            assert!(matches!(e, Error::Remote { .. }), "{status} {code}: {e:?}");
        }
        // A refusal text that does not parse is kept as the server said it.
        let e = Error::from_answer(422, "query_refused", "something else".into());
        assert!(matches!(e, Error::Remote { .. }));
    }

    #[test]
    fn every_rule_reads_back_from_its_name() {
        for rule in Rule::ALL {
            let r = Refusal::new(rule, "m");
            assert_eq!(Refusal::parse(&r.to_string()), Some(r));
        }
        assert_eq!(Refusal::parse("[no_such_rule] m"), None);
        assert_eq!(Refusal::parse("plain text"), None);
    }

    #[test]
    fn bad_input_is_its_own_answer() {
        assert_eq!(Error::Invalid("x".into()).status(), 400);
        assert_ne!(
            Error::Invalid("x".into()).code(),
            Error::Conflict("x".into()).code()
        );
        assert!(Error::Internal("x".into()).is_internal());
        assert!(!Error::Invalid("x".into()).is_internal());
    }
}
