//! Console sessions: a principal signs in with an API token and gets a session cookie.
//!
//! The session id is 32 bytes from the operating system's random source; the store keeps
//! only its SHA-256 (`console_sessions`), the principal, the token it was opened with, a
//! CSRF secret, and when it expires or ended. A session is valid while it has not ended,
//! has not expired, its token is not revoked and its principal is active: revoking the
//! token or suspending the principal ends every session opened with it at once. Sessions
//! end, and are never deleted (a trigger).

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde_json::json;

use crate::identity::{self, Principal};
use crate::{Result, audit, sha256_hex, store};

/// How long a session lasts.
pub const SESSION_HOURS: i64 = 8;

/// An open session.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who.
    pub principal: Principal,
    /// The CSRF secret every form of this session carries.
    pub csrf: String,
    /// SHA-256 of the session id: how it is named in the audit log.
    pub id_sha256: String,
}

/// Opens a session for `principal`, signed in with token `token_id`. Returns the session
/// id (for the cookie; never stored) and the session.
pub fn open(
    conn: &mut Connection,
    principal: &Principal,
    token_id: &str,
) -> Result<(String, Session)> {
    let id = hex::encode(crate::tokens::random::<32>()?);
    let csrf = hex::encode(crate::tokens::random::<32>()?);
    let id_sha256 = sha256_hex(id.as_bytes());
    let now = chrono::Utc::now();
    let expires = now + chrono::Duration::hours(SESSION_HOURS);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO console_sessions (id_sha256, principal, token_id, csrf, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            id_sha256,
            principal.name,
            token_id,
            csrf,
            store::now(),
            expires.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        ],
    )?;
    audit::append(
        &tx,
        &principal.name,
        "console.signed_in",
        &format!("session:{}", &id_sha256[..16]),
        json!({"token_id": token_id, "expires_at": expires.to_rfc3339()}),
    )?;
    tx.commit()?;
    Ok((
        id,
        Session {
            principal: principal.clone(),
            csrf,
            id_sha256,
        },
    ))
}

/// The session a cookie's id names, if it is still valid.
pub fn find(conn: &Connection, id: &str) -> Result<Option<Session>> {
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let id_sha256 = sha256_hex(id.as_bytes());
    let row: Option<(String, String, String)> = conn
        .query_row(
            "SELECT s.principal, s.csrf, s.expires_at FROM console_sessions s
             JOIN api_tokens t ON t.id = s.token_id
             WHERE s.id_sha256 = ?1 AND s.ended_at IS NULL AND t.revoked_at IS NULL",
            params![id_sha256],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((name, csrf, expires_at)) = row else {
        return Ok(None);
    };
    let expired =
        chrono::DateTime::parse_from_rfc3339(&expires_at).map_or(true, |t| t < chrono::Utc::now());
    if expired {
        return Ok(None);
    }
    // Suspended or revoked principals have no session.
    let principal = match identity::find(conn, &name) {
        Ok(Some(p)) => p,
        _ => return Ok(None),
    };
    Ok(Some(Session {
        principal,
        csrf,
        id_sha256,
    }))
}

/// Ends a session (signing out).
pub fn end(conn: &mut Connection, session: &Session) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "UPDATE console_sessions SET ended_at = ?2 WHERE id_sha256 = ?1 AND ended_at IS NULL",
        params![session.id_sha256, store::now()],
    )?;
    audit::append(
        &tx,
        &session.principal.name,
        "console.signed_out",
        &format!("session:{}", &session.id_sha256[..16]),
        json!({}),
    )?;
    tx.commit()?;
    Ok(())
}

/// Whether a form's CSRF value is the session's (compared as digests, so the time taken
/// says nothing about how much of it matched).
pub fn csrf_ok(session: &Session, given: &str) -> bool {
    sha256_hex(given.as_bytes()) == sha256_hex(session.csrf.as_bytes())
}
