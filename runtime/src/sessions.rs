//! Review-console sessions: an operator, a supervisor, a developer (who reads the review of
//! their own jobs and answers it), a provider (who consents to the scenarios over its
//! datasets and objects to its versions) or a data user signs in with an API token and
//! gets a session (its id goes in a cookie; the store keeps only its SHA-256). A session
//! is valid while it has not ended or expired, its token is not revoked and its principal
//! is active: revoking the token or suspending the principal ends every session opened
//! with it at once. Signing in and out are audited.

use sandbox_core::Role;
use sandbox_store::sessions;

pub use sandbox_store::sessions::Session;

use crate::{Domain, Error, Result, tokens};

/// How long a session lasts.
pub const SESSION_HOURS: i64 = 8;

/// Opens a session for the principal `token` proves, who must be an operator, a
/// supervisor, a developer, a provider or a data user (not an admin, who administers
/// identities from the command line). Returns the session id (for the cookie; never
/// stored) and the session. A refusal carries the name of the principal refused when the
/// token proved one (a suspended principal, a developer), so that the caller can record
/// it under that name.
pub fn sign_in(domain: &Domain, token: &str) -> Result<(String, Session), (Error, Option<String>)> {
    let p = tokens::authenticate(domain, token)
        .map_err(|e| (e, tokens::holder(domain, token).ok().flatten()))?;
    if !matches!(
        p.role,
        Role::Operator | Role::Supervisor | Role::Developer | Role::Provider | Role::DataUser
    ) {
        return Err((
            Error::Forbidden(format!(
                "the console is for operators, supervisors, developers, providers and data users; `{}` is a {}",
                p.name, p.role
            )),
            Some(p.name),
        ));
    }
    let token_id = tokens::parse(token).map(|(id, _)| id).unwrap_or_default();
    let opened = (|| -> Result<(String, Session)> {
        let mut conn = domain.conn()?;
        Ok(sessions::open(&mut conn, &p, token_id, SESSION_HOURS)?)
    })();
    opened.map_err(|e| (e, None))
}

/// The session a cookie's id names, if it is still valid.
pub fn find(domain: &Domain, id: &str) -> Result<Option<Session>> {
    Ok(sessions::find(&*domain.conn()?, id)?)
}

/// Ends a session (signing out).
pub fn sign_out(domain: &Domain, session: &Session) -> Result<()> {
    Ok(sessions::end(&mut *domain.conn()?, session)?)
}

/// Whether a form's CSRF value is the session's (compared as digests, so the time taken
/// says nothing about how much of it matched).
pub fn csrf_ok(session: &Session, given: &str) -> bool {
    sandbox_core::sha256_hex(given.as_bytes()) == sandbox_core::sha256_hex(session.csrf.as_bytes())
}
