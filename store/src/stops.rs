//! Table `stops`: emergency stops (QQHR Art. 20), in force until lifted, never deleted (a
//! trigger).

use crate::db::{OptionalExt, args};

use crate::{Conn, Result};

/// Records a stop in force. Returns its id.
pub fn insert(
    conn: &Conn,
    scope: &str,
    target: &str,
    reason: &str,
    by: &str,
    at: &str,
) -> Result<i64> {
    conn.insert(
        "INSERT INTO stops (scope, target, reason, stopped_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        args![scope, target, reason, by, at],
    )
}

/// Lifts stop `id` if it is in force; whether it was.
pub fn lift(conn: &Conn, id: i64, by: &str) -> Result<bool> {
    let n = conn.execute(
        "UPDATE stops SET lifted_by = ?2, lifted_at = ?3 WHERE id = ?1 AND lifted_at IS NULL",
        args![id, by, crate::now()],
    )?;
    Ok(n > 0)
}

/// The stop in force that covers work of `developer` under scenario `scenario_id`, if any,
/// as a sentence.
pub fn in_force(conn: &Conn, scenario_id: i64, developer: &str) -> Result<Option<String>> {
    conn.query_row(
        "SELECT id, scope, reason FROM stops WHERE lifted_at IS NULL AND (
                 scope = 'domain'
                 OR (scope = 'scenario' AND target = ?1)
                 OR (scope = 'developer' AND target = ?2))
             ORDER BY id LIMIT 1",
        args![scenario_id.to_string(), developer],
        |r| {
            Ok(format!(
                "stop {} on the {} is in force: {}",
                r.get::<i64>(0)?,
                r.get::<String>(1)?,
                r.get::<String>(2)?
            ))
        },
    )
    .optional()
}

/// A stop as recorded, lifted or not.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct StopRow {
    /// Id.
    pub id: i64,
    /// `scenario`, `developer` or `domain`.
    pub scope: String,
    /// The scenario id or developer name (empty for the domain).
    pub target: String,
    /// Why.
    pub reason: String,
    /// Who stopped.
    pub stopped_by: String,
    /// When.
    pub created_at: String,
    /// Whether it is in force (not lifted).
    pub in_force: bool,
    /// Who lifted it.
    pub lifted_by: Option<String>,
    /// When it was lifted.
    pub lifted_at: Option<String>,
}

/// The stops in force (with `all`, the lifted ones too), newest first.
pub fn list(conn: &Conn, all: bool) -> Result<Vec<StopRow>> {
    conn.rows(
        "SELECT id, scope, target, reason, stopped_by, created_at, lifted_by, lifted_at
             FROM stops WHERE ?1 OR lifted_at IS NULL ORDER BY id DESC",
        args![all],
        |r| {
            Ok(StopRow {
                id: r.get(0)?,
                scope: r.get(1)?,
                target: r.get(2)?,
                reason: r.get(3)?,
                stopped_by: r.get(4)?,
                created_at: r.get(5)?,
                in_force: r.get::<Option<String>>(7)?.is_none(),
                lifted_by: r.get(6)?,
                lifted_at: r.get(7)?,
            })
        },
    )
}
