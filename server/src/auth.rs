//! Authentication and the record of refusals.
//!
//! [`gate`] sits in front of every `/api/v1` route. It reads `Authorization: Bearer
//! <token>`, verifies the token ([`tokens::authenticate_with`]: Argon2, on the blocking
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

use sandbox_core::{Error, Principal};
use sandbox_runtime::audit::{self, EventKind, Subject};
use sandbox_runtime::tokens;

use crate::AppState;
use crate::error::{ApiError, Refusal};

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

/// The caller's network address (its IP), or `local` when the router is driven without a
/// connection (tests).
#[derive(Debug, Clone)]
pub struct ClientAddr(pub String);

impl ClientAddr {
    fn of(extensions: &axum::http::Extensions) -> ClientAddr {
        ClientAddr(
            extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map_or_else(|| "local".to_string(), |c| c.0.ip().to_string()),
        )
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<ClientAddr, Self::Rejection> {
        Ok(ClientAddr::of(&parts.extensions))
    }
}

/// Longest path recorded in a refusal event.
const MAX_RECORDED_PATH: usize = 256;

/// Bounds what callers who prove no one can add to the audit log: per client address,
/// the first `per_minute` refusals of a minute are recorded one by one; further ones in
/// that minute are answered 429 and recorded together, as one `api.refusals_limited`
/// event with their count, when the minute is over ([`RefusalLimiter::flush`]).
#[derive(Debug)]
pub struct RefusalLimiter {
    per_minute: u32,
    windows: std::sync::Mutex<std::collections::HashMap<String, Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: std::time::Instant,
    recorded: u32,
    limited: u32,
}

const WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

impl RefusalLimiter {
    /// A limiter recording at most `per_minute` refusals per client address and minute.
    pub fn new(per_minute: u32) -> RefusalLimiter {
        RefusalLimiter {
            per_minute,
            windows: std::sync::Mutex::default(),
        }
    }

    /// Whether a refusal from `client` is recorded on its own (`true`) or counted for the
    /// minute's summary (`false`).
    pub fn admit(&self, client: &str) -> bool {
        let Ok(mut w) = self.windows.lock() else {
            return true;
        };
        let now = std::time::Instant::now();
        let e = w.entry(client.to_string()).or_insert(Window {
            started: now,
            recorded: 0,
            limited: 0,
        });
        if e.recorded < self.per_minute {
            e.recorded += 1;
            true
        } else {
            e.limited += 1;
            false
        }
    }

    /// Takes the windows that are over (all of them with `all`) and returns, for each
    /// client with refusals beyond the limit, how many.
    pub fn flush(&self, all: bool) -> Vec<(String, u32)> {
        let Ok(mut w) = self.windows.lock() else {
            return Vec::new();
        };
        let now = std::time::Instant::now();
        let mut out = Vec::new();
        w.retain(|client, e| {
            let over = all || now.duration_since(e.started) >= WINDOW;
            if over && e.limited > 0 {
                out.push((client.clone(), e.limited));
            }
            !over
        });
        out.sort();
        out
    }
}

/// Records the refusals a limiter held back, one event per client.
pub async fn record_limited(state: &AppState, all: bool) {
    let limited = state.limiter.flush(all);
    if limited.is_empty() {
        return;
    }
    let recorded = state
        .blocking(move |d| {
            for (client, n) in limited {
                audit::record_refusal(
                    d,
                    "anonymous",
                    EventKind::ApiRefusalsLimited,
                    &Subject::Client(client),
                    json!({"refused": n, "window_seconds": WINDOW.as_secs(), "status": 429}),
                )?;
            }
            Ok(())
        })
        .await;
    if let Err(e) = recorded {
        tracing::error!(error = %e, "limited refusals could not be recorded");
    }
}

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
    let ClientAddr(client) = ClientAddr::of(req.extensions());
    let token = bearer(req.headers());
    let token_id = token
        .as_deref()
        .ok()
        .and_then(tokens::parse)
        .map(|(id, _)| id.to_string());
    // A refused token is recorded as `anonymous`, unless it verified and its principal is
    // the one refused (suspended or revoked): then under that principal's name.
    let cache = state.verified.clone();
    let authenticated = match token {
        Ok(token) => state
            .blocking(move |d| {
                Ok(match tokens::authenticate_with(d, &token, Some(&cache)) {
                    Ok(p) => Ok(p),
                    Err(e @ Error::Forbidden(_)) => Err((e, tokens::holder(d, &token)?)),
                    Err(e) => Err((e, None)),
                })
            })
            .await
            .unwrap_or_else(|e| Err((e, None))),
        Err(e) => Err((e, None)),
    };
    // A caller who proved no one, refused too often this minute: answered 429, counted.
    if authenticated
        .as_ref()
        .is_err_and(|(_, holder)| holder.is_none())
        && !state.limiter.admit(&client)
    {
        return ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "rate_limited",
            message: "too many refused calls from this address; try again in a minute".into(),
        }
        .into_response();
    }
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
    let subject = Subject::Api { method, path };
    let recorded = state
        .blocking(move |d| {
            audit::record_refusal(d, &actor, EventKind::ApiRefused, &subject, details)
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
