//! The SDK's error type.

use serde::Deserialize;

use crate::abi;

/// `Result` with the SDK's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a module: a host call failed, the host sent data the
/// SDK could not decode, the job's parameters do not fit, or the module gave up.
///
/// The host-call variants mirror the ABI's status codes; their `message` comes from the
/// host's JSON error response.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The mediator refused the query by policy (status `REFUSED`).
    #[error("query refused by policy{}: {message}", fmt_rule(rule.as_deref()))]
    Refused {
        /// The policy rule that refused the query, if the host named one.
        rule: Option<String>,
        /// The host's explanation.
        message: String,
    },
    /// The privacy budget is exhausted (status `BUDGET`).
    #[error("privacy budget exhausted: {message}")]
    Budget {
        /// The host's explanation.
        message: String,
    },
    /// A job limit was reached: number of queries, outputs, bytes or log volume (status
    /// `LIMIT`).
    #[error("job limit reached: {message}")]
    Limit {
        /// The host's explanation.
        message: String,
    },
    /// An argument was rejected, by the host (status `INVALID_ARGUMENT`) or by the SDK
    /// before calling it (bad output name, unknown column, mismatched column lengths, ...).
    #[error("invalid argument: {message}")]
    InvalidArgument {
        /// What was wrong.
        message: String,
    },
    /// The host failed (status `INTERNAL`, `NO_RESPONSE` or an unknown status), or the
    /// module is not running inside the Sandbox host.
    #[error("internal error: {message}")]
    Internal {
        /// The host's explanation.
        message: String,
    },
    /// The host sent data that could not be decoded (bad Arrow IPC or JSON).
    #[error("could not decode data from the host: {0}")]
    Decode(String),
    /// The job's parameters do not fit the type the module asked for.
    #[error("invalid job parameters: {0}")]
    Params(String),
    /// The module itself gave up; see [`Error::module`].
    #[error("{0}")]
    Module(String),
}

fn fmt_rule(rule: Option<&str>) -> String {
    rule.map(|r| format!(" (rule `{r}`)")).unwrap_or_default()
}

/// The host's JSON error response. Parsed leniently: every field is optional.
#[derive(Deserialize, Default)]
struct HostError {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    rule: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

impl Error {
    /// An error raised by the module's own logic, logged as the failure reason when it is
    /// returned from the analysis function.
    ///
    /// ```
    /// # use sandbox_sdk::Error;
    /// let err = Error::module("no districts in the result");
    /// assert_eq!(err.to_string(), "no districts in the result");
    /// ```
    pub fn module(message: impl Into<String>) -> Self {
        Error::Module(message.into())
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidArgument {
            message: message.into(),
        }
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Error::Internal {
            message: message.into(),
        }
    }

    /// The error for a failed host call: the status code picks the variant, the JSON
    /// response (if any) supplies the rule and message.
    pub(crate) fn from_host(status: i32, response: &[u8]) -> Self {
        let parsed = if response.is_empty() {
            None
        } else {
            Some(
                serde_json::from_slice::<HostError>(response).unwrap_or_else(|_| {
                    // Not the documented JSON: keep whatever text the host sent.
                    HostError {
                        message: Some(String::from_utf8_lossy(response).into_owned()),
                        ..HostError::default()
                    }
                }),
            )
        };
        let HostError {
            kind,
            rule,
            message,
        } = parsed.unwrap_or_default();
        let message = message.filter(|m| !m.is_empty()).unwrap_or_else(|| {
            format!(
                "host returned status {status} ({}) without a message",
                kind.as_deref().unwrap_or(status_name(status))
            )
        });
        match status {
            abi::STATUS_INVALID_ARGUMENT => Error::InvalidArgument { message },
            abi::STATUS_REFUSED => Error::Refused {
                rule: rule.filter(|r| !r.is_empty()),
                message,
            },
            abi::STATUS_BUDGET => Error::Budget { message },
            abi::STATUS_LIMIT => Error::Limit { message },
            abi::STATUS_NO_RESPONSE => Error::Internal {
                message: format!("no pending response: {message}"),
            },
            _ => Error::Internal { message },
        }
    }
}

fn status_name(status: i32) -> &'static str {
    match status {
        abi::STATUS_OK => "OK",
        abi::STATUS_INVALID_ARGUMENT => "INVALID_ARGUMENT",
        abi::STATUS_REFUSED => "REFUSED",
        abi::STATUS_BUDGET => "BUDGET",
        abi::STATUS_LIMIT => "LIMIT",
        abi::STATUS_INTERNAL => "INTERNAL",
        abi::STATUS_NO_RESPONSE => "NO_RESPONSE",
        _ => "unknown status",
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn refused_with_rule() {
        let body = br#"{"kind":"refused","rule":"min_group_size","message":"groups too small"}"#;
        let err = Error::from_host(abi::STATUS_REFUSED, body);
        assert_eq!(
            err,
            Error::Refused {
                rule: Some("min_group_size".into()),
                message: "groups too small".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "query refused by policy (rule `min_group_size`): groups too small"
        );
    }

    #[test]
    fn refused_without_rule() {
        let err = Error::from_host(abi::STATUS_REFUSED, br#"{"kind":"refused","message":"no"}"#);
        assert!(matches!(err, Error::Refused { rule: None, .. }));
        assert_eq!(err.to_string(), "query refused by policy: no");
    }

    #[test]
    fn status_picks_the_variant() {
        let body = br#"{"kind":"budget","message":"m"}"#;
        assert!(matches!(
            Error::from_host(abi::STATUS_BUDGET, body),
            Error::Budget { .. }
        ));
        assert!(matches!(
            Error::from_host(abi::STATUS_LIMIT, body),
            Error::Limit { .. }
        ));
        assert!(matches!(
            Error::from_host(abi::STATUS_INVALID_ARGUMENT, body),
            Error::InvalidArgument { .. }
        ));
        assert!(matches!(
            Error::from_host(abi::STATUS_INTERNAL, body),
            Error::Internal { .. }
        ));
        assert!(matches!(
            Error::from_host(abi::STATUS_NO_RESPONSE, body),
            Error::Internal { .. }
        ));
        // Unknown statuses are INTERNAL.
        assert!(matches!(Error::from_host(42, body), Error::Internal { .. }));
        assert!(matches!(Error::from_host(-1, body), Error::Internal { .. }));
    }

    #[test]
    fn missing_or_malformed_response() {
        let err = Error::from_host(abi::STATUS_LIMIT, b"");
        let Error::Limit { message } = err else {
            panic!("expected Limit, got {err:?}");
        };
        assert!(message.contains("status 4 (LIMIT)"), "{message}");

        let err = Error::from_host(abi::STATUS_INTERNAL, b"plain text failure");
        assert_eq!(err, Error::internal("plain text failure"));

        let err = Error::from_host(abi::STATUS_REFUSED, br#"{"kind":"refused","rule":""}"#);
        let Error::Refused { rule, message } = err else {
            panic!("expected Refused");
        };
        assert_eq!(rule, None);
        assert!(message.contains("without a message"), "{message}");
    }

    #[test]
    fn unknown_json_fields_are_ignored() {
        let body = br#"{"kind":"budget","message":"spent","remaining":0.0}"#;
        assert_eq!(
            Error::from_host(abi::STATUS_BUDGET, body),
            Error::Budget {
                message: "spent".into()
            }
        );
    }
}
