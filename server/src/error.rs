//! Errors at the edge: [`Error`] to a status code and a JSON body `{error, message}`.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use sandbox_core::Error;

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
    /// A 400 for a malformed request ([`Error::Invalid`]).
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::from(Error::Invalid(message.into()))
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
    /// The one mapping ([`Error::status`], [`Error::code`]); the message is the error's
    /// [`Error::detail`], so that a client that maps the answer back (the remote CLI)
    /// prints the phase once. Internal errors are logged and not shown.
    fn from(e: Error) -> ApiError {
        if e.is_internal() {
            tracing::error!(error = %e, "internal error answering a request");
            return ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                code: "internal",
                message: "internal error; see the server log".into(),
            };
        }
        ApiError {
            status: StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code: e.code(),
            message: e.detail(),
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
