//! API tokens: how a principal proves who it is to the server.
//!
//! A token is `sbx_<id>_<secret>`: `id` is 16 hex digits, public, the key the token is
//! looked up by; `secret` is 32 bytes from the operating system's random source, as 64 hex
//! digits. The token is shown once, when it is issued; the store keeps only the id and the
//! Argon2id PHC string of the secret (`api_tokens`). Tokens are revoked, never deleted or
//! changed otherwise (triggers). Operators and admins issue tokens; an operator, an admin
//! or the token's own principal revokes one. Every issue and revocation is an audit event
//! in the transaction that makes it.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use sandbox_core::audit::{EventKind, Subject};
use sandbox_core::authz::Action;
use sandbox_core::ids::random;
use sandbox_core::principal::{Principal, Status};
use sandbox_store::authz::{self, On};
use sandbox_store::{audit, principals, tokens};
use serde::Serialize;
use serde_json::json;

pub use sandbox_store::tokens::TokenInfo;

use crate::{Domain, Error, Result};

/// The prefix every token starts with.
pub const PREFIX: &str = "sbx_";
const ID_BYTES: usize = 8;
const SECRET_BYTES: usize = 32;
const SALT_BYTES: usize = 16;

/// A token as issued: the only time its secret is seen.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Issued {
    /// Public id.
    pub id: String,
    /// Whose it is.
    pub principal: String,
    /// The whole token, `sbx_<id>_<secret>`.
    pub token: String,
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Splits a token into its public id and its secret; `None` when it is not a token.
pub fn parse(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (is_hex(id, 2 * ID_BYTES) && is_hex(secret, 2 * SECRET_BYTES)).then_some((id, secret))
}

/// An operator or an admin issues a token for an active principal (themselves included).
pub fn issue(domain: &Domain, actor: &str, principal: &str) -> Result<Issued> {
    let mut conn = domain.conn()?;
    let tx = conn.write()?;
    authz::authorize(&tx, actor, Action::TokenIssue, On::Domain)?;
    let p = principals::lookup(&tx, principal)?
        .ok_or_else(|| Error::NotFound(format!("principal `{principal}`")))?;
    if p.status != Status::Active {
        return Err(Error::Conflict(format!(
            "principal `{principal}` is {}; no token is issued for it",
            p.status
        )));
    }
    let id = hex::encode(random::<ID_BYTES>()?);
    let secret = hex::encode(random::<SECRET_BYTES>()?);
    let hash = Argon2::default()
        .hash_password_with_salt(secret.as_bytes(), &random::<SALT_BYTES>()?)
        .map_err(|e| Error::Internal(format!("argon2: {e}")))?
        .to_string();
    tokens::insert(&tx, &id, principal, &hash, actor)?;
    audit::append(
        &tx,
        actor,
        EventKind::TokenIssued,
        &Subject::Token(id.clone()),
        json!({"principal": principal, "role": p.role}),
    )?;
    tx.commit()?;
    Ok(Issued {
        token: format!("{PREFIX}{id}_{secret}"),
        id,
        principal: principal.to_string(),
    })
}

/// Revokes a token: an operator, an admin, or the principal the token belongs to.
pub fn revoke(domain: &Domain, actor: &str, id: &str, reason: &str) -> Result<TokenInfo> {
    let mut conn = domain.conn()?;
    let tx = conn.write()?;
    let who = authz::authorize(&tx, actor, Action::TokenRevoke, On::Domain)?;
    if reason.trim().is_empty() {
        return Err(Error::Invalid("revoking a token needs a reason".into()));
    }
    let info = tokens::get(&tx, id)?;
    if !who.role.administers_identities() && info.principal != actor {
        return Err(Error::Forbidden(format!(
            "`{actor}` is a {}; only an operator, an admin or its own principal revokes a token",
            who.role
        )));
    }
    if info.revoked_at.is_some() {
        return Err(Error::Conflict(format!("token {id} is already revoked")));
    }
    tokens::revoke(&tx, id, actor)?;
    audit::append(
        &tx,
        actor,
        EventKind::TokenRevoked,
        &Subject::Token(id.to_string()),
        json!({"principal": info.principal, "reason": reason}),
    )?;
    let info = tokens::get(&tx, id)?;
    tx.commit()?;
    Ok(info)
}

/// Tokens `actor` may see: operators and admins every one (or one principal's), everyone
/// else their own.
pub fn list(domain: &Domain, actor: &str, principal: Option<&str>) -> Result<Vec<TokenInfo>> {
    let conn = domain.conn()?;
    let who = authz::authorize(&conn, actor, Action::TokenRead, On::Domain)?;
    let whose = if who.role.administers_identities() {
        principal
    } else {
        match principal {
            Some(p) if p != who.name => {
                return Err(Error::Forbidden(format!(
                    "a {} lists their own tokens only",
                    who.role
                )));
            }
            _ => Some(who.name.as_str()),
        }
    };
    Ok(tokens::list(&conn, whose)?)
}

/// Tokens whose secret has verified, so that a server checks Argon2 once per token rather
/// than once per request. An entry holds the SHA-256 of the secret and the PHC string it
/// verified against; it is used only while the stored hash is the same and the token is
/// not revoked (both read on every request), so revocation takes effect at once.
#[derive(Debug, Default)]
pub struct VerifiedCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, ([u8; 32], String)>>,
}

/// Entries a cache keeps before it starts again.
const CACHE_ENTRIES: usize = 4096;

impl VerifiedCache {
    fn hit(&self, id: &str, secret: &str, phc: &str) -> bool {
        let digest = digest(secret);
        self.entries
            .lock()
            .ok()
            .and_then(|e| e.get(id).map(|(d, p)| *d == digest && p == phc))
            .unwrap_or(false)
    }

    fn insert(&self, id: &str, secret: &str, phc: &str) {
        if let Ok(mut e) = self.entries.lock() {
            if e.len() >= CACHE_ENTRIES {
                e.clear();
            }
            e.insert(id.to_string(), (digest(secret), phc.to_string()));
        }
    }
}

fn digest(secret: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(secret.as_bytes()).into()
}

/// The principal an existing token was issued to, whether or not its secret verifies or
/// the principal may act (for recording a refusal under the name refused).
pub fn holder(domain: &Domain, token: &str) -> Result<Option<String>> {
    let Some((id, _)) = parse(token) else {
        return Ok(None);
    };
    Ok(tokens::credential(&*domain.conn()?, id)?.map(|c| c.principal))
}

/// The principal a token proves: [`Error::Unauthenticated`] when the token is malformed,
/// unknown, revoked or its secret does not verify; [`Error::Forbidden`] when its principal
/// is suspended or revoked. Verification is Argon2 (tens of milliseconds): call it off the
/// async executor.
pub fn authenticate(domain: &Domain, token: &str) -> Result<Principal> {
    authenticate_with(domain, token, None)
}

/// [`authenticate`], skipping Argon2 for a token `cache` has seen verify against the same
/// stored hash.
pub fn authenticate_with(
    domain: &Domain,
    token: &str,
    cache: Option<&VerifiedCache>,
) -> Result<Principal> {
    let (id, secret) =
        parse(token).ok_or_else(|| Error::Unauthenticated("not a Sandbox API token".into()))?;
    let conn = domain.conn()?;
    let tokens::Credential {
        principal,
        hash,
        revoked_at,
    } = tokens::credential(&conn, id)?
        .ok_or_else(|| Error::Unauthenticated(format!("unknown token {id}")))?;
    if revoked_at.is_some() {
        return Err(Error::Unauthenticated(format!("token {id} is revoked")));
    }
    if !cache.is_some_and(|c| c.hit(id, secret, &hash)) {
        Argon2::default()
            .verify_password(secret.as_bytes(), hash.as_str())
            .map_err(|_| Error::Unauthenticated(format!("token {id} does not verify")))?;
        if let Some(c) = cache {
            c.insert(id, secret, &hash);
        }
    }
    let p = principals::lookup(&conn, &principal)?
        .ok_or_else(|| Error::Internal(format!("token {id} names no principal")))?;
    if p.status != Status::Active {
        return Err(Error::Forbidden(format!(
            "principal `{principal}` is {}",
            p.status
        )));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_strictly() {
        let id = "0123456789abcdef";
        let secret = "ab".repeat(32);
        let token = format!("sbx_{id}_{secret}");
        assert_eq!(parse(&token), Some((id, secret.as_str())));
        for bad in [
            String::new(),
            format!("sbx_{id}"),
            format!("sbx_{id}_{}", &secret[1..]),
            format!("sbx_{id}_{secret}0"),
            format!("sbx_{}_{secret}", id.to_uppercase()),
            format!("xyz_{id}_{secret}"),
            format!("sbx_{id}_{}", secret.replace('a', "g")),
        ] {
            assert_eq!(parse(&bad), None, "{bad}");
        }
    }
}
