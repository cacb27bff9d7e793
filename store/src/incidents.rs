//! Tables `incidents`, `incident_entries` and `rectification_orders` (QQHR Art. 20, 23; JZ
//! Art. 21; SYS Art. 31, 61; TJ-Sec Art. 15).

use crate::db::{OptionalExt, args};

use crate::{Conn, Result};

/// An incident as recorded, with its timeline.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct Incident {
    /// Id.
    pub id: i64,
    /// `general`, `relatively_major`, `major` or `especially_major`.
    pub grade: String,
    /// Title.
    pub title: String,
    /// What happened.
    pub description: String,
    /// Who opened it.
    pub opened_by: String,
    /// When.
    pub opened_at: String,
    /// Who closed it, when, and how it ended.
    pub closed_by: Option<String>,
    /// When.
    pub closed_at: Option<String>,
    /// How it ended.
    pub summary: Option<String>,
    /// What was done under it, in order.
    pub entries: Vec<IncidentEntry>,
}

/// One line of an incident's timeline.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct IncidentEntry {
    /// `action`, `stop`, `suspension`, `withdrawal`, `report` or `notice`.
    pub kind: String,
    /// What it refers to: a stop's id, a scenario, a principal, a product.
    pub reference: Option<String>,
    /// To whom a report or a notice went.
    pub recipient: Option<String>,
    /// What.
    pub text: String,
    /// Who.
    pub by: String,
    /// When.
    pub at: String,
}

/// Opens an incident; returns its id.
pub fn open(conn: &Conn, grade: &str, title: &str, description: &str, by: &str) -> Result<i64> {
    conn.insert(
        "INSERT INTO incidents (grade, title, description, opened_by, opened_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        args![grade, title, description, by, crate::now()],
    )
}

/// Adds a line to an incident's timeline.
pub fn add_entry(conn: &Conn, incident: i64, e: &IncidentEntry) -> Result<()> {
    conn.execute(
        "INSERT INTO incident_entries (incident_id, kind, reference, recipient, text, by, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        args![
            incident,
            e.kind,
            e.reference,
            e.recipient,
            e.text,
            e.by,
            e.at
        ],
    )?;
    Ok(())
}

/// Closes an incident.
pub fn close(conn: &Conn, incident: i64, by: &str, summary: &str) -> Result<bool> {
    Ok(conn.execute(
        "UPDATE incidents SET closed_by = ?2, closed_at = ?3, summary = ?4
         WHERE id = ?1 AND closed_at IS NULL",
        args![incident, by, crate::now(), summary],
    )? == 1)
}

/// One incident with its timeline.
pub fn get(conn: &Conn, id: i64) -> Result<Option<Incident>> {
    let found = conn
        .query_row("SELECT id, grade, title, description, opened_by, opened_at, closed_by, closed_at, summary
             FROM incidents WHERE id = ?1", args![id], |r| {
            Ok(Incident {
                id: r.get(0)?,
                grade: r.get(1)?,
                title: r.get(2)?,
                description: r.get(3)?,
                opened_by: r.get(4)?,
                opened_at: r.get(5)?,
                closed_by: r.get(6)?,
                closed_at: r.get(7)?,
                summary: r.get(8)?,
                entries: Vec::new(),
            })
        })
        .optional()?;
    let Some(mut i) = found else {
        return Ok(None);
    };
    i.entries = conn.rows(
        "SELECT kind, reference, recipient, text, by, at FROM incident_entries
             WHERE incident_id = ?1 ORDER BY id",
        args![id],
        |r| {
            Ok(IncidentEntry {
                kind: r.get(0)?,
                reference: r.get(1)?,
                recipient: r.get(2)?,
                text: r.get(3)?,
                by: r.get(4)?,
                at: r.get(5)?,
            })
        },
    )?;
    Ok(Some(i))
}

/// Every incident's id, newest first.
pub fn ids(conn: &Conn) -> Result<Vec<i64>> {
    conn.rows("SELECT id FROM incidents ORDER BY id DESC", args![], |r| {
        r.get(0)
    })
}

/// A rectification order as recorded.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct Order {
    /// Id.
    pub id: i64,
    /// `principal`, `organisation` or `scenario`.
    pub target_kind: String,
    /// The principal's name, the organisation's code, the scenario's id.
    pub target: String,
    /// What is to be rectified.
    pub requirement: String,
    /// By when (RFC 3339, UTC).
    pub deadline: String,
    /// Which supervisor issued it.
    pub issued_by: String,
    /// When.
    pub issued_at: String,
    /// `open`, `answered`, `closed` or `enforced`.
    pub status: String,
    /// The target's answer.
    pub answer: Option<String>,
    /// Who answered.
    pub answered_by: Option<String>,
    /// When.
    pub answered_at: Option<String>,
    /// Who closed it.
    pub closed_by: Option<String>,
    /// When.
    pub closed_at: Option<String>,
    /// When the deadline's suspension was recorded.
    pub enforced_at: Option<String>,
}

const ORDER: &str = "SELECT id, target_kind, target, requirement, deadline, issued_by, issued_at,
    status, answer, answered_by, answered_at, closed_by, closed_at, enforced_at
    FROM rectification_orders";

fn order_row(r: &crate::db::Row<'_>) -> crate::Result<Order> {
    Ok(Order {
        id: r.get(0)?,
        target_kind: r.get(1)?,
        target: r.get(2)?,
        requirement: r.get(3)?,
        deadline: r.get(4)?,
        issued_by: r.get(5)?,
        issued_at: r.get(6)?,
        status: r.get(7)?,
        answer: r.get(8)?,
        answered_by: r.get(9)?,
        answered_at: r.get(10)?,
        closed_by: r.get(11)?,
        closed_at: r.get(12)?,
        enforced_at: r.get(13)?,
    })
}

/// Issues an order; returns its id.
pub fn issue_order(
    conn: &Conn,
    kind: &str,
    target: &str,
    requirement: &str,
    deadline: &str,
    by: &str,
) -> Result<i64> {
    conn.insert(
        "INSERT INTO rectification_orders (target_kind, target, requirement, deadline, issued_by, issued_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        args![kind, target, requirement, deadline, by, crate::now()],
    )
}

/// One order.
pub fn order(conn: &Conn, id: i64) -> Result<Option<Order>> {
    conn.query_row(&format!("{ORDER} WHERE id = ?1"), args![id], order_row)
        .optional()
}

/// Every order, newest first.
pub fn orders(conn: &Conn) -> Result<Vec<Order>> {
    conn.rows(&format!("{ORDER} ORDER BY id DESC"), args![], order_row)
}

/// Records the target's answer.
pub fn answer_order(conn: &Conn, id: i64, text: &str, by: &str) -> Result<()> {
    conn.execute(
        "UPDATE rectification_orders SET status = 'answered', answer = ?2, answered_by = ?3, answered_at = ?4
         WHERE id = ?1",
        args![id, text, by, crate::now()],
    )?;
    Ok(())
}

/// Closes an order (the answer accepted).
pub fn close_order(conn: &Conn, id: i64, by: &str) -> Result<()> {
    conn.execute(
        "UPDATE rectification_orders SET status = 'closed', closed_by = ?2, closed_at = ?3 WHERE id = ?1",
        args![id, by, crate::now()],
    )?;
    Ok(())
}

/// Marks an order enforced.
pub fn enforce_order(conn: &Conn, id: i64) -> Result<()> {
    conn.execute(
        "UPDATE rectification_orders SET status = 'enforced', enforced_at = ?2 WHERE id = ?1",
        args![id, crate::now()],
    )?;
    Ok(())
}

/// Open orders whose deadline is before `now` (unanswered: their targets are suspended).
pub fn overdue(conn: &Conn, now: &str) -> Result<Vec<Order>> {
    conn.rows(
        &format!("{ORDER} WHERE status = 'open' AND deadline < ?1 ORDER BY id"),
        args![now],
        order_row,
    )
}

/// The first overdue unanswered order over a principal, its organisation or a scenario.
pub fn overdue_over(
    conn: &Conn,
    now: &str,
    principal: &str,
    organisation: Option<&str>,
    scenario: Option<i64>,
) -> Result<Option<Order>> {
    conn.query_row(
        &format!(
            "{ORDER} WHERE status = 'open' AND deadline < ?1 AND (
                 (target_kind = 'principal' AND target = ?2)
                 OR (target_kind = 'organisation' AND target = ?3)
                 OR (target_kind = 'scenario' AND target = ?4)) ORDER BY id LIMIT 1"
        ),
        args![
            now,
            principal,
            organisation,
            scenario.map(|s| s.to_string())
        ],
        order_row,
    )
    .optional()
}
