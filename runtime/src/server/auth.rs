//! Authentication and the record of refusals.
//!
//! [`gate`] sits in front of every `/api/v1` route. It reads `Authorization: Bearer
//! <token>`, verifies the token ([`crate::tokens::authenticate`]: Argon2, on the blocking
//! pool), and hands the handler the [`Caller`]. Whatever answers 401 or 403 (no token, a
//! bad or revoked token, a suspended principal, the role table, scenario membership, a
//! domain function's own check) is recorded here as an `api.refused` audit event, in a
//! transaction of its own after the request's work has ended, so the refused request's
//! rollback cannot take the record with it. If the record cannot be written, the caller
//! gets a 500, never a refusal that left no trace.

use axum::extract::{FromRequestParts, OriginalUri, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::error::{ApiError, Refusal};
use crate::identity::Principal;
use crate::{Error, audit, tokens};

/// The authenticated principal of a request.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Caller, ApiError> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| Error::Unauthenticated("no authenticated principal".into()).into())
    }
}

/// Longest path recorded in a refusal event.
const MAX_RECORDED_PATH: usize = 256;

fn bearer(headers: &HeaderMap) -> Result<String, Error> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| Error::Unauthenticated("no bearer token".into()))?;
    let text = value
        .to_str()
        .map_err(|_| Error::Unauthenticated("the Authorization header is not text".into()))?;
    let token = text
        .strip_prefix("Bearer ")
        .ok_or_else(|| Error::Unauthenticated("Authorization is not `Bearer <token>`".into()))?;
    Ok(token.trim().to_string())
}

/// The middleware: authenticate, run the handler, record any refusal.
pub async fn gate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    // The full path: under `nest`, the request's own URI has lost its `/api/v1` prefix.
    let mut path = req
        .extensions()
        .get::<OriginalUri>()
        .map_or_else(|| req.uri().path(), |u| u.path())
        .to_string();
    if path.len() > MAX_RECORDED_PATH {
        let mut cut = MAX_RECORDED_PATH;
        while !path.is_char_boundary(cut) {
            cut -= 1;
        }
        path.truncate(cut);
        path.push('…');
    }
    let token = bearer(req.headers());
    let token_id = token
        .as_deref()
        .ok()
        .and_then(tokens::parse)
        .map(|(id, _)| id.to_string());
    // A refused token is recorded as `anonymous`, unless it verified and its principal is
    // the one refused (suspended or revoked): then under that principal's name.
    let authenticated = match token {
        Ok(token) => state
            .blocking(move |d| {
                let conn = d.conn()?;
                Ok(match tokens::authenticate(&conn, &token) {
                    Ok(p) => Ok(p),
                    Err(e @ Error::Forbidden(_)) => {
                        let holder = tokens::parse(&token)
                            .and_then(|(id, _)| tokens::get(&conn, id).ok())
                            .map(|t| t.principal);
                        Err((e, holder))
                    }
                    Err(e) => Err((e, None)),
                })
            })
            .await
            .unwrap_or_else(|e| Err((e, None))),
        Err(e) => Err((e, None)),
    };
    let (actor, response) = match authenticated {
        Ok(principal) => {
            let name = principal.name.clone();
            req.extensions_mut().insert(Caller(principal.clone()));
            let mut response = next.run(req).await;
            // For the request log.
            response.extensions_mut().insert(Caller(principal));
            (name, response)
        }
        Err((e, holder)) => (
            holder.unwrap_or_else(|| "anonymous".to_string()),
            ApiError::from(e).into_response(),
        ),
    };
    let status = response.status();
    if status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN {
        return response;
    }
    let (code, reason) = response
        .extensions()
        .get::<Refusal>()
        .map(|r| (r.code, r.reason.clone()))
        .unwrap_or(("refused", "refused".to_string()));
    let details = json!({
        "method": method,
        "path": path,
        "status": status.as_u16(),
        "error": code,
        "reason": reason,
        "token_id": token_id,
    });
    let subject = format!("api:{method} {path}");
    let recorded = state
        .blocking(move |d| {
            let mut conn = d.conn()?;
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            audit::append(&tx, &actor, "api.refused", &subject, details)?;
            tx.commit()?;
            Ok(())
        })
        .await;
    match recorded {
        Ok(()) => response,
        Err(e) => {
            tracing::error!(error = %e, "a refused call could not be recorded");
            ApiError::from(Error::Internal(format!("refusal not recorded: {e}"))).into_response()
        }
    }
}
