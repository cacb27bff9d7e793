//! Table `console_sessions`: review-console sessions, kept as the SHA-256 of their id
//! (never the id), with the principal, the token they were opened with, a CSRF secret and
//! when they expire or ended. Sessions end and are never deleted (a trigger).

use crate::db::{OptionalExt, args};
use sandbox_core::audit::{EventKind, Subject};
use sandbox_core::principal::{Principal, Status};
use sandbox_core::sha256_hex;
use serde_json::json;

use crate::{Conn, Result, audit, principals};

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

impl Session {
    /// The audit subject naming this session.
    pub fn subject(&self) -> Subject {
        Subject::Session(self.id_sha256[..16].to_string())
    }
}

/// Opens a session lasting `hours` for `principal`, signed in with token `token_id`, and
/// records it. Returns the session id (for the cookie; never stored) and the session.
pub fn open(
    conn: &mut Conn,
    principal: &Principal,
    token_id: &str,
    hours: i64,
) -> Result<(String, Session)> {
    let id = hex::encode(sandbox_core::ids::random::<32>()?);
    let csrf = hex::encode(sandbox_core::ids::random::<32>()?);
    let id_sha256 = sha256_hex(id.as_bytes());
    let now = chrono::Utc::now();
    let expires = now + chrono::Duration::hours(hours);
    let tx = conn.write()?;
    tx.execute(
        "INSERT INTO console_sessions (id_sha256, principal, token_id, csrf, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        args![
            id_sha256,
            principal.name,
            token_id,
            csrf,
            crate::now(),
            expires.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        ],
    )?;
    let session = Session {
        principal: principal.clone(),
        csrf,
        id_sha256,
    };
    audit::append(
        &tx,
        &principal.name,
        EventKind::ConsoleSignedIn,
        &session.subject(),
        json!({"token_id": token_id, "expires_at": expires.to_rfc3339()}),
    )?;
    tx.commit()?;
    Ok((id, session))
}

/// The session a cookie's id names, if it is still valid: not ended, not expired, its
/// token not revoked, its principal active.
pub fn find(conn: &Conn, id: &str) -> Result<Option<Session>> {
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let id_sha256 = sha256_hex(id.as_bytes());
    let row: Option<(String, String, String)> = conn
        .query_row(
            "SELECT s.principal, s.csrf, s.expires_at FROM console_sessions s
             JOIN api_tokens t ON t.id = s.token_id
             WHERE s.id_sha256 = ?1 AND s.ended_at IS NULL AND t.revoked_at IS NULL",
            args![id_sha256],
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
    let principal = match principals::lookup(conn, &name)? {
        Some(p) if p.status == Status::Active => p,
        _ => return Ok(None),
    };
    Ok(Some(Session {
        principal,
        csrf,
        id_sha256,
    }))
}

/// Ends a session (signing out), recorded.
pub fn end(conn: &mut Conn, session: &Session) -> Result<()> {
    let tx = conn.write()?;
    tx.execute(
        "UPDATE console_sessions SET ended_at = ?2 WHERE id_sha256 = ?1 AND ended_at IS NULL",
        args![session.id_sha256, crate::now()],
    )?;
    audit::append(
        &tx,
        &session.principal.name,
        EventKind::ConsoleSignedOut,
        &session.subject(),
        json!({}),
    )?;
    tx.commit()?;
    Ok(())
}
