//! Table `api_tokens`: each token's public id and the Argon2id PHC string of its secret,
//! never the secret. Revoked once, never deleted or changed otherwise (triggers).

use crate::db::{OptionalExt, args};
use serde::Serialize;

use crate::{Conn, DomainError, Result};

/// A token as stored (without its hash).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TokenInfo {
    /// Public id.
    pub id: String,
    /// Whose it is.
    pub principal: String,
    /// Who issued it.
    pub issued_by: String,
    /// When.
    pub created_at: String,
    /// When it was revoked, if it was.
    pub revoked_at: Option<String>,
    /// Who revoked it.
    pub revoked_by: Option<String>,
}

/// What authentication reads of a token: whose it is, the stored hash, its revocation.
#[derive(Debug, Clone)]
pub struct Credential {
    /// Whose it is.
    pub principal: String,
    /// Argon2id PHC string of the secret.
    pub hash: String,
    /// When it was revoked, if it was.
    pub revoked_at: Option<String>,
}

/// Records a newly issued token.
pub fn insert(conn: &Conn, id: &str, principal: &str, hash: &str, issued_by: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO api_tokens (id, principal, hash, issued_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        args![id, principal, hash, issued_by, crate::now()],
    )?;
    Ok(())
}

/// Marks a token revoked.
pub fn revoke(conn: &Conn, id: &str, by: &str) -> Result<()> {
    conn.execute(
        "UPDATE api_tokens SET revoked_at = ?2, revoked_by = ?3 WHERE id = ?1",
        args![id, crate::now(), by],
    )?;
    Ok(())
}

/// One token's record.
pub fn get(conn: &Conn, id: &str) -> Result<TokenInfo> {
    conn.query_row(
        "SELECT id, principal, issued_by, created_at, revoked_at, revoked_by
         FROM api_tokens WHERE id = ?1",
        args![id],
        row_info,
    )
    .optional()?
    .ok_or_else(|| DomainError::NotFound(format!("token {id}")).into())
}

fn row_info(r: &crate::db::Row<'_>) -> crate::Result<TokenInfo> {
    Ok(TokenInfo {
        id: r.get(0)?,
        principal: r.get(1)?,
        issued_by: r.get(2)?,
        created_at: r.get(3)?,
        revoked_at: r.get(4)?,
        revoked_by: r.get(5)?,
    })
}

/// Every token, or a principal's, oldest first.
pub fn list(conn: &Conn, principal: Option<&str>) -> Result<Vec<TokenInfo>> {
    conn.rows(
        "SELECT id, principal, issued_by, created_at, revoked_at, revoked_by
         FROM api_tokens WHERE CAST(?1 AS TEXT) IS NULL OR principal = ?1 ORDER BY created_at, id",
        args![principal],
        row_info,
    )
}

/// What authentication needs of token `id`, if it exists.
pub fn credential(conn: &Conn, id: &str) -> Result<Option<Credential>> {
    conn.query_row(
        "SELECT principal, hash, revoked_at FROM api_tokens WHERE id = ?1",
        args![id],
        |r| {
            Ok(Credential {
                principal: r.get(0)?,
                hash: r.get(1)?,
                revoked_at: r.get(2)?,
            })
        },
    )
    .optional()
}
