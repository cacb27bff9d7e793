//! Table `principals`: names, roles and statuses (revocation is final and nothing is
//! deleted: triggers).

use crate::db::{OptionalExt, args};
use sandbox_core::Lang;
use sandbox_core::principal::{Principal, Role, Status};

use crate::{Conn, Result};

/// A principal whatever its status.
pub fn lookup(conn: &Conn, name: &str) -> Result<Option<Principal>> {
    let row: Option<(String, String, Option<String>, Option<String>)> = conn
        .query_row(
            "SELECT role, status, language, organisation FROM principals WHERE name = ?1",
            args![name],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    row.map(|(role, status, language, organisation)| {
        Ok(Principal {
            name: name.to_string(),
            role: role.parse::<Role>()?,
            status: Status::parse(&status)?,
            language: language.as_deref().and_then(Lang::from_tag),
            organisation,
        })
    })
    .transpose()
}

/// Every principal, by name.
pub fn list(conn: &Conn) -> Result<Vec<Principal>> {
    let rows = conn.rows(
        "SELECT name, role, status, language, organisation FROM principals ORDER BY name",
        args![],
        |r| {
            Ok((
                r.get::<String>(0)?,
                r.get::<String>(1)?,
                r.get::<String>(2)?,
                r.get::<Option<String>>(3)?,
                r.get::<Option<String>>(4)?,
            ))
        },
    )?;
    let mut out = Vec::new();
    for row in rows {
        let (name, role, status, language, organisation) = row;
        out.push(Principal {
            name,
            role: role.parse()?,
            status: Status::parse(&status)?,
            language: language.as_deref().and_then(Lang::from_tag),
            organisation,
        });
    }
    Ok(out)
}

/// How many principals there are.
pub fn count(conn: &Conn) -> Result<i64> {
    conn.query_row("SELECT COUNT(*) FROM principals", args![], |r| r.get(0))
}

/// Sets the language a principal reads Sandbox in (`None`: the client's, else the
/// domain's default).
pub fn set_language(conn: &Conn, name: &str, language: Option<Lang>) -> Result<()> {
    conn.execute(
        "UPDATE principals SET language = ?2 WHERE name = ?1",
        args![name, language.map(Lang::tag)],
    )?;
    Ok(())
}

/// Records a new, active principal.
pub fn insert(conn: &Conn, name: &str, role: Role) -> Result<()> {
    conn.execute(
        "INSERT INTO principals (name, role, created_at) VALUES (?1, ?2, ?3)",
        args![name, role.as_str(), crate::now()],
    )?;
    Ok(())
}

/// Sets a principal's status.
pub fn set_status(conn: &Conn, name: &str, status: Status) -> Result<()> {
    conn.execute(
        "UPDATE principals SET status = ?2 WHERE name = ?1",
        args![name, status.as_str()],
    )?;
    Ok(())
}

/// Active operators and admins other than `name`: who would be left to administer
/// identities.
pub fn other_active_administrators(conn: &Conn, name: &str) -> Result<i64> {
    conn.query_row(
        "SELECT COUNT(*) FROM principals WHERE role IN ('operator', 'admin') AND status = 'active' AND name != ?1",
        args![name],
        |r| r.get(0),
    )
}
