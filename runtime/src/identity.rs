//! Principals: named identities with one role each.

use std::fmt;
use std::str::FromStr;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{Error, Result, audit, store};

/// What a principal does in the domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
}

impl Role {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Provider => "provider",
            Role::Operator => "operator",
            Role::Developer => "developer",
            Role::Supervisor => "supervisor",
        }
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
            other => Err(Error::Forbidden(format!(
                "unknown role `{other}` (provider, operator, developer, supervisor)"
            ))),
        }
    }
}

/// A named identity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Principal {
    /// Unique name.
    pub name: String,
    /// Role.
    pub role: Role,
}

/// Looks a principal up.
pub fn find(conn: &Connection, name: &str) -> Result<Option<Principal>> {
    let row: Option<String> = conn
        .query_row(
            "SELECT role FROM principals WHERE name = ?1",
            params![name],
            |r| r.get(0),
        )
        .optional()?;
    row.map(|role| {
        Ok(Principal {
            name: name.to_string(),
            role: role.parse()?,
        })
    })
    .transpose()
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
    let mut stmt = conn.prepare("SELECT name, role FROM principals ORDER BY name")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (name, role) = row?;
        out.push(Principal {
            name,
            role: role.parse()?,
        });
    }
    Ok(out)
}

/// Adds a principal. The first principal of a domain must be an operator and may be
/// added by anyone with the data directory; after that only an operator adds principals.
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
        if role != Role::Operator {
            return Err(Error::Forbidden(
                "the first principal of a domain must be an operator".into(),
            ));
        }
        "system".to_string()
    } else {
        let actor = actor.ok_or_else(|| {
            Error::Forbidden("adding a principal needs an operator (--as NAME)".into())
        })?;
        require(&tx, actor, Role::Operator)?;
        actor.to_string()
    };
    if find(&tx, name)?.is_some() {
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
    })
}
