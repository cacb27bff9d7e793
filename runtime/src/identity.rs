//! Principals: named identities with one role each, and a status (Qiqihar Art. 14, 23): an
//! active principal acts; a suspended or revoked one is refused by every domain function
//! (through [`find`] and [`require`]) and by the server. Revocation is final.

use std::fmt;
use std::str::FromStr;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{Error, Result, audit, store};

/// What a principal does in the domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Registers datasets and their policies.
    Provider,
    /// Runs the platform: approves scenarios, first-tier review.
    Operator,
    /// Writes modules, applies for scenarios, submits jobs.
    Developer,
    /// Second-tier review, audit.
    Supervisor,
    /// Identity administration only: the first principal of a domain may be one (to
    /// bootstrap it); adds principals, issues and revokes tokens, qualifies, suspends and
    /// revokes principals. Decides nothing else and sees no scenario, job or output.
    Admin,
}

impl Role {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Provider => "provider",
            Role::Operator => "operator",
            Role::Developer => "developer",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    /// Whether the role administers identities (adds principals, issues tokens, changes a
    /// principal's status).
    pub fn administers_identities(self) -> bool {
        matches!(self, Role::Operator | Role::Admin)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Role> {
        match s {
            "provider" => Ok(Role::Provider),
            "operator" => Ok(Role::Operator),
            "developer" => Ok(Role::Developer),
            "supervisor" => Ok(Role::Supervisor),
            "admin" => Ok(Role::Admin),
            other => Err(Error::Forbidden(format!(
                "unknown role `{other}` (provider, operator, developer, supervisor, admin)"
            ))),
        }
    }
}

/// Whether a principal may act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// May act in its role.
    Active,
    /// Refused everywhere until qualified again.
    Suspended,
    /// Refused everywhere, for good.
    Revoked,
}

impl Status {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Suspended => "suspended",
            Status::Revoked => "revoked",
        }
    }

    fn parse(s: &str) -> Result<Status> {
        match s {
            "active" => Ok(Status::Active),
            "suspended" => Ok(Status::Suspended),
            "revoked" => Ok(Status::Revoked),
            other => Err(Error::Internal(format!("principal status `{other}`"))),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A named identity.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Principal {
    /// Unique name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Whether it may act.
    pub status: Status,
}

/// Looks a principal up whatever its status.
pub fn lookup(conn: &Connection, name: &str) -> Result<Option<Principal>> {
    let row: Option<(String, String)> = conn
        .query_row(
            "SELECT role, status FROM principals WHERE name = ?1",
            params![name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    row.map(|(role, status)| {
        Ok(Principal {
            name: name.to_string(),
            role: role.parse()?,
            status: Status::parse(&status)?,
        })
    })
    .transpose()
}

/// Looks up a principal who is to act: `None` when unknown, refused when suspended or
/// revoked (Qiqihar Art. 23), so every domain function that checks its actor refuses them.
pub fn find(conn: &Connection, name: &str) -> Result<Option<Principal>> {
    match lookup(conn, name)? {
        Some(p) if p.status != Status::Active => Err(Error::Forbidden(format!(
            "principal `{name}` is {}",
            p.status
        ))),
        other => Ok(other),
    }
}

/// The principal `name`, which must have `role`.
pub fn require(conn: &Connection, name: &str, role: Role) -> Result<Principal> {
    let p =
        find(conn, name)?.ok_or_else(|| Error::Forbidden(format!("unknown principal `{name}`")))?;
    if p.role != role {
        return Err(Error::Forbidden(format!(
            "`{name}` is a {}; this needs a {role}",
            p.role
        )));
    }
    Ok(p)
}

/// Every principal.
pub fn list(conn: &Connection) -> Result<Vec<Principal>> {
    let mut stmt = conn.prepare("SELECT name, role, status FROM principals ORDER BY name")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (name, role, status) = row?;
        out.push(Principal {
            name,
            role: role.parse()?,
            status: Status::parse(&status)?,
        });
    }
    Ok(out)
}

/// Refuses `name` unless it is an active principal that administers identities (an
/// operator or an admin).
pub fn require_identity_admin(conn: &Connection, name: &str) -> Result<Principal> {
    let p =
        find(conn, name)?.ok_or_else(|| Error::Forbidden(format!("unknown principal `{name}`")))?;
    if !p.role.administers_identities() {
        return Err(Error::Forbidden(format!(
            "`{name}` is a {}; principals and tokens are administered by operators and admins",
            p.role
        )));
    }
    Ok(p)
}

/// Adds a principal. The first principal of a domain must be an operator or an admin and
/// may be added by anyone with the data directory; after that an operator or an admin adds
/// principals.
pub fn add(
    conn: &mut Connection,
    actor: Option<&str>,
    name: &str,
    role: Role,
) -> Result<Principal> {
    let ok_name = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok_name {
        return Err(Error::Forbidden(format!(
            "principal name `{name}`: 1-64 characters of letters, digits, `-`, `_`, `.`"
        )));
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let count: i64 = tx.query_row("SELECT COUNT(*) FROM principals", [], |r| r.get(0))?;
    let actor_name = if count == 0 {
        if !role.administers_identities() {
            return Err(Error::Forbidden(
                "the first principal of a domain must be an operator or an admin".into(),
            ));
        }
        "system".to_string()
    } else {
        let actor = actor.ok_or_else(|| {
            Error::Forbidden("adding a principal needs an operator or an admin (--as NAME)".into())
        })?;
        require_identity_admin(&tx, actor)?;
        actor.to_string()
    };
    if lookup(&tx, name)?.is_some() {
        return Err(Error::Conflict(format!("principal `{name}` exists")));
    }
    tx.execute(
        "INSERT INTO principals (name, role, created_at) VALUES (?1, ?2, ?3)",
        params![name, role.as_str(), store::now()],
    )?;
    audit::append(
        &tx,
        &actor_name,
        "principal.added",
        &format!("principal:{name}"),
        json!({"role": role}),
    )?;
    tx.commit()?;
    Ok(Principal {
        name: name.to_string(),
        role,
        status: Status::Active,
    })
}

/// An operator changes a principal's status (Qiqihar Art. 14, 23), with a written reason:
/// `Active` qualifies a suspended principal again, `Suspended` and `Revoked` refuse it
/// everywhere from now on (revocation is final, held by a trigger) and interrupt the
/// running jobs of a developer in this process. Nobody changes their own status, and the
/// last active operator stays active. Audited in the same transaction.
pub fn set_status(
    domain: &crate::Domain,
    actor: &str,
    name: &str,
    status: Status,
    reason: &str,
) -> Result<Principal> {
    let mut conn = domain.conn()?;
    require_identity_admin(&conn, actor)?;
    if reason.trim().is_empty() {
        return Err(Error::Conflict(format!(
            "changing the status of `{name}` needs a reason"
        )));
    }
    if actor == name {
        return Err(Error::Forbidden("nobody changes their own status".into()));
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let p = lookup(&tx, name)?.ok_or_else(|| Error::NotFound(format!("principal `{name}`")))?;
    if p.status == status {
        return Err(Error::Conflict(format!(
            "principal `{name}` is already {status}"
        )));
    }
    if p.status == Status::Revoked {
        return Err(Error::Conflict(format!(
            "principal `{name}` is revoked; revocation is final"
        )));
    }
    if p.role.administers_identities() && status != Status::Active {
        let others: i64 = tx.query_row(
            "SELECT COUNT(*) FROM principals WHERE role IN ('operator', 'admin') AND status = 'active' AND name != ?1",
            params![name],
            |r| r.get(0),
        )?;
        if others == 0 {
            return Err(Error::Conflict(
                "the last active operator or admin cannot be suspended or revoked".into(),
            ));
        }
    }
    tx.execute(
        "UPDATE principals SET status = ?2 WHERE name = ?1",
        params![name, status.as_str()],
    )?;
    let interrupted = if status != Status::Active && p.role == Role::Developer {
        domain.host().interrupt(
            domain.layout().root(),
            &crate::wasm::StopTarget::Developer(name.to_string()),
            crate::wasm::Interrupt::Suspended,
        )
    } else {
        Vec::new()
    };
    let action = match status {
        Status::Active => "principal.qualified",
        Status::Suspended => "principal.suspended",
        Status::Revoked => "principal.revoked",
    };
    audit::append(
        &tx,
        actor,
        action,
        &format!("principal:{name}"),
        json!({"role": p.role, "from": p.status, "to": status, "reason": reason, "interrupted": interrupted}),
    )?;
    tx.commit()?;
    Ok(Principal { status, ..p })
}
