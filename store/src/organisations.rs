//! Table `organisations` (QQHR Art. 14, 23): the register of the organisations principals
//! belong to, and what the ledger and the authorization read of them.

use crate::db::{OptionalExt, args};
use sandbox_core::principal::Organisation;

use crate::{Conn, Result};

/// An organisation's fields as written (registration or change).
#[derive(Debug, Clone, PartialEq)]
pub struct OrganisationFields<'a> {
    /// Name.
    pub name: &'a str,
    /// Security officer.
    pub security_officer: &'a str,
    /// How to reach them.
    pub security_contact: &'a str,
    /// Last day qualified, YYYY-MM-DD.
    pub qualified_until: &'a str,
    /// Cap on ε across its members' scenarios.
    pub epsilon_cap: Option<f64>,
}

/// Registers an organisation.
pub fn insert(
    conn: &Conn,
    credit_code: &str,
    f: &OrganisationFields<'_>,
    by: &str,
    at: &str,
) -> Result<()> {
    conn.execute(
        "INSERT INTO organisations (credit_code, name, security_officer, security_contact,
             qualified_until, epsilon_cap, created_by, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
        args![
            credit_code,
            f.name,
            f.security_officer,
            f.security_contact,
            f.qualified_until,
            f.epsilon_cap,
            by,
            at
        ],
    )?;
    Ok(())
}

/// Changes an organisation's fields.
pub fn update(conn: &Conn, credit_code: &str, f: &OrganisationFields<'_>, at: &str) -> Result<()> {
    conn.execute(
        "UPDATE organisations SET name = ?2, security_officer = ?3, security_contact = ?4,
             qualified_until = ?5, epsilon_cap = ?6, updated_at = ?7
         WHERE credit_code = ?1",
        args![
            credit_code,
            f.name,
            f.security_officer,
            f.security_contact,
            f.qualified_until,
            f.epsilon_cap,
            at
        ],
    )?;
    Ok(())
}

const SELECT: &str = "SELECT o.credit_code, o.name, o.security_officer, o.security_contact,
        o.qualified_until, o.epsilon_cap, o.created_by, o.created_at, o.updated_at,
        (SELECT COALESCE(SUM(s.epsilon_spent), 0) FROM scenarios s
             JOIN principals p ON p.name = s.developer WHERE p.organisation = o.credit_code)
     FROM organisations o";

fn row(r: &crate::db::Row<'_>) -> crate::Result<Organisation> {
    Ok(Organisation {
        credit_code: r.get(0)?,
        name: r.get(1)?,
        security_officer: r.get(2)?,
        security_contact: r.get(3)?,
        qualified_until: r.get(4)?,
        epsilon_cap: r.get(5)?,
        created_by: r.get(6)?,
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
        epsilon_spent: r.get(9)?,
        members: Vec::new(),
    })
}

fn with_members(conn: &Conn, mut o: Organisation) -> Result<Organisation> {
    o.members = conn.rows(
        "SELECT name FROM principals WHERE organisation = ?1 ORDER BY name",
        args![o.credit_code],
        |r| r.get(0),
    )?;
    Ok(o)
}

/// One organisation, with its members.
pub fn get(conn: &Conn, credit_code: &str) -> Result<Option<Organisation>> {
    let found = conn
        .query_row(
            &format!("{SELECT} WHERE o.credit_code = ?1"),
            args![credit_code],
            row,
        )
        .optional()?;
    found.map(|o| with_members(conn, o)).transpose()
}

/// The register: every organisation by credit code, with its members.
pub fn list(conn: &Conn) -> Result<Vec<Organisation>> {
    let all: Vec<Organisation> =
        conn.rows(&format!("{SELECT} ORDER BY o.credit_code"), args![], row)?;
    all.into_iter().map(|o| with_members(conn, o)).collect()
}

/// Places a principal in an organisation (or in none).
pub fn set_member(conn: &Conn, principal: &str, credit_code: Option<&str>) -> Result<()> {
    conn.execute(
        "UPDATE principals SET organisation = ?2 WHERE name = ?1",
        args![principal, credit_code],
    )?;
    Ok(())
}

/// The organisation of a scenario's developer: its code, qualification's last day, cap
/// and what its members' scenarios have spent together.
#[derive(Debug, Clone, PartialEq)]
pub struct Standing {
    /// Credit code.
    pub credit_code: String,
    /// Last day qualified.
    pub qualified_until: String,
    /// ε cap, if any.
    pub epsilon_cap: Option<f64>,
    /// ε spent by its members' scenarios (0 when it has no cap: not summed).
    pub epsilon_spent: f64,
}

/// The standing of a principal's organisation, if it belongs to one (what its members'
/// scenarios spent is summed only when the organisation has a cap: the authorization
/// path reads this on every call).
pub fn standing_of(conn: &Conn, principal: &str) -> Result<Option<Standing>> {
    conn.query_row(
        "SELECT o.credit_code, o.qualified_until, o.epsilon_cap,
                 CASE WHEN o.epsilon_cap IS NULL THEN 0 ELSE
                 (SELECT COALESCE(SUM(s.epsilon_spent), 0) FROM scenarios s
                      JOIN principals m ON m.name = s.developer
                      WHERE m.organisation = o.credit_code) END
             FROM principals p JOIN organisations o ON o.credit_code = p.organisation
             WHERE p.name = ?1",
        args![principal],
        |r| {
            Ok(Standing {
                credit_code: r.get(0)?,
                qualified_until: r.get(1)?,
                epsilon_cap: r.get(2)?,
                epsilon_spent: r.get(3)?,
            })
        },
    )
    .optional()
}
