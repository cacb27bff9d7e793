//! Errors at the edge: [`crate::Error`] to a status code and a JSON body `{error, message}`.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::Error;

/// Why a call was refused, carried on a 401 or 403 response for [`super::auth::gate`] to
/// record.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The error code.
    pub code: &'static str,
    /// The message given to the caller.
    pub reason: String,
}

/// An error as the API answers it.
#[derive(Debug)]
pub struct ApiError {
    /// Status code.
    pub status: StatusCode,
    /// Stable machine-readable code, e.g. `forbidden`.
    pub code: &'static str,
    /// What to tell the caller.
    pub message: String,
}

impl ApiError {
    /// A 400 for a malformed request.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
            message: message.into(),
        }
    }

    /// A 503: no job slot came free in time.
    pub fn busy(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "busy",
            message: message.into(),
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        let (status, code) = match &e {
            Error::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            Error::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Error::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Error::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Error::Review(_) => (StatusCode::CONFLICT, "review"),
            Error::Budget { .. } => (StatusCode::CONFLICT, "budget"),
            Error::Stopped(_) => (StatusCode::LOCKED, "stopped"),
            Error::Cancelled(_) => (StatusCode::CONFLICT, "cancelled"),
            Error::Busy(_) => (StatusCode::TOO_MANY_REQUESTS, "busy"),
            Error::Policy(_) => (StatusCode::UNPROCESSABLE_ENTITY, "policy"),
            Error::Refused(_) => (StatusCode::UNPROCESSABLE_ENTITY, "query_refused"),
            Error::Input { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "input"),
            Error::Guest(_) => (StatusCode::UNPROCESSABLE_ENTITY, "module"),
            Error::Limit { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "limit"),
            Error::Verify(_) => (StatusCode::UNPROCESSABLE_ENTITY, "verification_failed"),
            Error::Store(_)
            | Error::Io(_)
            | Error::Engine(_)
            | Error::Internal(_)
            | Error::Remote { .. } => {
                tracing::error!(error = %e, "internal error answering a request");
                return ApiError {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    code: "internal",
                    message: "internal error; see the server log".into(),
                };
            }
        };
        ApiError {
            status,
            code,
            message: e.to_string(),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        ApiError {
            status: r.status(),
            code: "bad_request",
            message: r.body_text(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let refused = matches!(
            self.status,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        );
        let mut response = (
            self.status,
            Json(json!({"error": self.code, "message": self.message})),
        )
            .into_response();
        if refused {
            response.extensions_mut().insert(Refusal {
                code: self.code,
                reason: self.message,
            });
        }
        response
    }
}
