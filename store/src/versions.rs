//! Tables `dataset_objections` and `dataset_suspensions`: what is raised against a dataset
//! version and whether its queries are refused (QQHR Art. 20; JZ Art. 16; SYS Art. 28, 40),
//! and the products whose numbers came from a version (through `query_datasets`).

use crate::db::{OptionalExt, args};

use crate::{Conn, Result};

/// An objection raised against a dataset version.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct Objection {
    /// By whom (its provider, or an operator).
    pub raised_by: String,
    /// Why.
    pub reason: String,
    /// When.
    pub created_at: String,
}

/// A suspension of a dataset version.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct Suspension {
    /// By whom.
    pub suspended_by: String,
    /// Why.
    pub reason: String,
    /// Since when.
    pub suspended_at: String,
    /// Who lifted it, if it was.
    pub lifted_by: Option<String>,
    /// Why.
    pub lift_reason: Option<String>,
    /// When.
    pub lifted_at: Option<String>,
}

/// Records an objection.
pub fn object(conn: &Conn, dataset: &str, version: i64, by: &str, reason: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO dataset_objections (dataset, version, raised_by, reason, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        args![dataset, version, by, reason, crate::now()],
    )?;
    Ok(())
}

/// The objections raised against a version, in order.
pub fn objections(conn: &Conn, dataset: &str, version: i64) -> Result<Vec<Objection>> {
    conn.rows(
        "SELECT raised_by, reason, created_at FROM dataset_objections
             WHERE dataset = ?1 AND version = ?2 ORDER BY id",
        args![dataset, version],
        |r| {
            Ok(Objection {
                raised_by: r.get(0)?,
                reason: r.get(1)?,
                created_at: r.get(2)?,
            })
        },
    )
}

/// Suspends a version (refused by the index when one is in force).
pub fn suspend(conn: &Conn, dataset: &str, version: i64, by: &str, reason: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO dataset_suspensions (dataset, version, suspended_by, reason, suspended_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        args![dataset, version, by, reason, crate::now()],
    )?;
    Ok(())
}

/// Lifts the suspension in force over a version; returns whether there was one.
pub fn lift(conn: &Conn, dataset: &str, version: i64, by: &str, reason: &str) -> Result<bool> {
    let n = conn.execute(
        "UPDATE dataset_suspensions SET lifted_by = ?3, lift_reason = ?4, lifted_at = ?5
         WHERE dataset = ?1 AND version = ?2 AND lifted_at IS NULL",
        args![dataset, version, by, reason, crate::now()],
    )?;
    Ok(n == 1)
}

fn suspension_row(r: &crate::db::Row<'_>) -> crate::Result<Suspension> {
    Ok(Suspension {
        suspended_by: r.get(0)?,
        reason: r.get(1)?,
        suspended_at: r.get(2)?,
        lifted_by: r.get(3)?,
        lift_reason: r.get(4)?,
        lifted_at: r.get(5)?,
    })
}

/// The suspension in force over a version, if any.
pub fn in_force(conn: &Conn, dataset: &str, version: i64) -> Result<Option<Suspension>> {
    conn.query_row(
        "SELECT suspended_by, reason, suspended_at, lifted_by, lift_reason, lifted_at
             FROM dataset_suspensions WHERE dataset = ?1 AND version = ?2 AND lifted_at IS NULL",
        args![dataset, version],
        suspension_row,
    )
    .optional()
}

/// Every suspension of a version, in order.
pub fn suspensions(conn: &Conn, dataset: &str, version: i64) -> Result<Vec<Suspension>> {
    conn.rows(
        "SELECT suspended_by, reason, suspended_at, lifted_by, lift_reason, lifted_at
             FROM dataset_suspensions WHERE dataset = ?1 AND version = ?2 ORDER BY id",
        args![dataset, version],
        suspension_row,
    )
}

/// The products whose job's answered queries read a version, by id.
pub fn derived_products(conn: &Conn, dataset: &str, version: i64) -> Result<Vec<String>> {
    conn.rows(
        "SELECT p.id FROM products p
             WHERE EXISTS (SELECT 1 FROM outputs o
                 JOIN queries q ON q.job_id = o.job_id
                 JOIN query_datasets d ON d.query_id = q.id
                 WHERE o.id = p.output_id AND d.dataset = ?1 AND d.version = ?2)
             ORDER BY p.released_at, p.id",
        args![dataset, version],
        |r| r.get(0),
    )
}

/// The record of a dataset's destruction.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct Destruction {
    /// The dataset.
    pub dataset: String,
    /// By whom (an operator).
    pub destroyed_by: String,
    /// Why (the authorization ended, ...).
    pub reason: String,
    /// When.
    pub destroyed_at: String,
    /// What was destroyed: each version, its files with sizes and SHA-256.
    pub record: serde_json::Value,
}

/// Records a destruction.
pub fn record_destruction(conn: &Conn, d: &Destruction) -> Result<()> {
    conn.execute(
        "INSERT INTO dataset_destructions (dataset, destroyed_by, reason, destroyed_at, record_json)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        args![d.dataset, d.destroyed_by, d.reason, d.destroyed_at, d.record.to_string()],
    )?;
    Ok(())
}

/// A dataset's destruction, if it was destroyed.
pub fn destruction(conn: &Conn, dataset: &str) -> Result<Option<Destruction>> {
    let row: Option<(String, String, String, String)> = conn
        .query_row(
            "SELECT destroyed_by, reason, destroyed_at, record_json FROM dataset_destructions
             WHERE dataset = ?1",
            args![dataset],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    row.map(|(destroyed_by, reason, destroyed_at, record)| {
        Ok(Destruction {
            dataset: dataset.to_string(),
            destroyed_by,
            reason,
            destroyed_at,
            record: serde_json::from_str(&record).map_err(|e| {
                sandbox_core::Error::Internal(format!("destruction of {dataset}: {e}"))
            })?,
        })
    })
    .transpose()
}

/// A recorded decision to put a `not_shared` dataset in a named scenario.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct SharingDecision {
    /// The dataset.
    pub dataset: String,
    /// The scenario's name.
    pub scenario: String,
    /// Its provider, or a supervisor.
    pub decided_by: String,
    /// Why.
    pub reason: String,
    /// When.
    pub decided_at: String,
}

/// Records a sharing decision; whether it is new.
pub fn record_sharing(conn: &Conn, d: &SharingDecision) -> Result<bool> {
    Ok(conn.execute(
        "INSERT OR IGNORE INTO sharing_decisions (dataset, scenario, decided_by, reason, decided_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        args![d.dataset, d.scenario, d.decided_by, d.reason, d.decided_at],
    )? == 1)
}

/// The decision to put `dataset` in scenario `scenario`, if one was recorded.
pub fn sharing(conn: &Conn, dataset: &str, scenario: &str) -> Result<Option<SharingDecision>> {
    conn.query_row(
        "SELECT decided_by, reason, decided_at FROM sharing_decisions
             WHERE dataset = ?1 AND scenario = ?2",
        args![dataset, scenario],
        |r| {
            Ok(SharingDecision {
                dataset: dataset.to_string(),
                scenario: scenario.to_string(),
                decided_by: r.get(0)?,
                reason: r.get(1)?,
                decided_at: r.get(2)?,
            })
        },
    )
    .optional()
}
