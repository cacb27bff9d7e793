//! Tables `outputs`, `reviews` and `products`: staged outputs and their checks, the review
//! decisions on them, and the products released from them.

use crate::db::{OptionalExt, args};
use sandbox_core::{Decision, OutputStatus, ReviewTier};
use serde::Serialize;

use crate::{Conn, DomainError, Result};

/// A staged output as recorded.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct OutputRecord {
    /// Output id.
    pub id: String,
    /// Job id.
    pub job_id: String,
    /// Name given by the module.
    pub name: String,
    /// `table`, `text` or `chart`.
    pub kind: String,
    /// File name under the job's staging folder.
    pub file_name: String,
    /// SHA-256 of the file.
    pub sha256: String,
    /// Size.
    pub bytes: i64,
    /// Review status.
    pub status: OutputStatus,
    /// Automated check results.
    pub checks: Option<serde_json::Value>,
}

/// Records a staged output.
pub fn insert(conn: &Conn, o: &OutputRecord) -> Result<()> {
    conn.execute(
        "INSERT INTO outputs (id, job_id, name, kind, file_name, sha256, bytes, status, checks_json, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        args![
            o.id,
            o.job_id,
            o.name,
            o.kind,
            o.file_name,
            o.sha256,
            o.bytes,
            o.status.as_str(),
            o.checks.as_ref().map(|c| c.to_string()),
            crate::now()
        ],
    )?;
    Ok(())
}

/// Reads one output.
pub fn get(conn: &Conn, id: &str) -> Result<OutputRecord> {
    let row = conn
        .query_row(
            "SELECT id, job_id, name, kind, file_name, sha256, bytes, status, checks_json FROM outputs WHERE id = ?1",
            args![id],
            |r| {
                Ok((
                    OutputRecord {
                        id: r.get(0)?,
                        job_id: r.get(1)?,
                        name: r.get(2)?,
                        kind: r.get(3)?,
                        file_name: r.get(4)?,
                        sha256: r.get(5)?,
                        bytes: r.get(6)?,
                        status: OutputStatus::Staged,
                        checks: r
                            .get::<Option<String>>(8)?
                            .and_then(|s| serde_json::from_str(&s).ok()),
                    },
                    r.get::<String>(7)?,
                ))
            },
        )
        .optional()?
        .ok_or_else(|| DomainError::NotFound(format!("output `{id}`")))?;
    let (mut o, status) = row;
    o.status = OutputStatus::parse(&status)?;
    Ok(o)
}

/// A job's outputs, in the order staged.
pub fn of_job(conn: &Conn, job_id: &str) -> Result<Vec<OutputRecord>> {
    let ids: Vec<String> = conn.rows(
        "SELECT id FROM outputs WHERE job_id = ?1 ORDER BY created_at, name",
        args![job_id],
        |r| r.get(0),
    )?;
    ids.iter().map(|id| get(conn, id)).collect()
}

/// Every output, newest first.
pub fn all(conn: &Conn) -> Result<Vec<OutputRecord>> {
    let ids: Vec<String> = conn.rows(
        "SELECT id FROM outputs ORDER BY created_at DESC",
        args![],
        |r| r.get(0),
    )?;
    ids.iter().map(|id| get(conn, id)).collect()
}

/// Sets an output's status.
pub fn set_status(conn: &Conn, id: &str, status: OutputStatus) -> Result<()> {
    conn.execute(
        "UPDATE outputs SET status = ?2 WHERE id = ?1",
        args![id, status.as_str()],
    )?;
    Ok(())
}

/// Sends an output back as flagged with the checks that failed at release.
pub fn flag(conn: &Conn, id: &str, checks: &serde_json::Value) -> Result<()> {
    conn.execute(
        "UPDATE outputs SET status = 'flagged', checks_json = ?2 WHERE id = ?1",
        args![id, checks.to_string()],
    )?;
    Ok(())
}

/// A released table of a scenario: its job, file and name.
#[derive(Debug, Clone)]
pub struct ReleasedTable {
    /// The job that staged it.
    pub job_id: String,
    /// Its file under the job's staging folder.
    pub file_name: String,
    /// Its name.
    pub name: String,
}

/// Every table released under a scenario, oldest first.
pub fn released_tables(conn: &Conn, scenario_id: i64) -> Result<Vec<ReleasedTable>> {
    conn.rows(
        "SELECT o.job_id, o.file_name, o.name FROM outputs o JOIN jobs j ON j.id = o.job_id
             WHERE j.scenario_id = ?1 AND o.status = 'released' AND o.kind = 'table'
             ORDER BY o.created_at",
        args![scenario_id],
        |r| {
            Ok(ReleasedTable {
                job_id: r.get(0)?,
                file_name: r.get(1)?,
                name: r.get(2)?,
            })
        },
    )
}

/// Outputs by status, for the metrics.
pub fn count_by_status(conn: &Conn) -> Result<Vec<(String, i64)>> {
    crate::count_by(conn, "SELECT status, COUNT(*) FROM outputs GROUP BY status")
}

/// Records a review decision.
pub fn insert_review(
    conn: &Conn,
    output_id: &str,
    reviewer: &str,
    tier: ReviewTier,
    decision: Decision,
    reason: Option<&str>,
) -> Result<()> {
    conn.execute(
        "INSERT INTO reviews (output_id, reviewer, tier, decision, reason, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        args![
            output_id,
            reviewer,
            tier.as_str(),
            decision.as_str(),
            reason,
            crate::now()
        ],
    )?;
    Ok(())
}

/// An approval as the manifest records it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Approval {
    /// The tier that approved.
    pub tier: ReviewTier,
    /// Who.
    pub reviewer: String,
    /// Why (the override reason for a flagged output).
    pub reason: Option<String>,
    /// When.
    pub at: String,
}

/// Every approval of an output, in order.
pub fn approvals(conn: &Conn, output_id: &str) -> Result<Vec<Approval>> {
    let rows: Vec<(String, String, Option<String>, String)> = conn.rows(
        "SELECT tier, reviewer, reason, created_at FROM reviews
             WHERE output_id = ?1 AND decision = 'approve' ORDER BY id",
        args![output_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    rows.into_iter()
        .map(|(tier, reviewer, reason, at)| {
            Ok(Approval {
                tier: ReviewTier::parse(&tier)?,
                reviewer,
                reason,
                at,
            })
        })
        .collect()
}

/// A released product as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductRow {
    /// Product id.
    pub id: String,
    /// The output it releases.
    pub output_id: String,
    /// Who released it.
    pub released_by: String,
    /// When.
    pub released_at: String,
}

/// Records a released product.
pub fn insert_product(
    conn: &Conn,
    id: &str,
    output_id: &str,
    manifest_sha256: &str,
    released_by: &str,
    released_at: &str,
) -> Result<()> {
    conn.execute(
        "INSERT INTO products (id, output_id, manifest_sha256, released_by, released_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        args![id, output_id, manifest_sha256, released_by, released_at],
    )?;
    Ok(())
}

/// Every product, in the order released.
pub fn products(conn: &Conn) -> Result<Vec<ProductRow>> {
    conn.rows(
        "SELECT id, output_id, released_by, released_at FROM products ORDER BY released_at",
        args![],
        |r| {
            Ok(ProductRow {
                id: r.get(0)?,
                output_id: r.get(1)?,
                released_by: r.get(2)?,
                released_at: r.get(3)?,
            })
        },
    )
}

/// A review decision as recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewRow {
    /// Who decided.
    pub reviewer: String,
    /// At which tier.
    pub tier: ReviewTier,
    /// What.
    pub decision: Decision,
    /// Why.
    pub reason: Option<String>,
    /// When.
    pub created_at: String,
}

/// Every review decision on an output, in order.
pub fn reviews(conn: &Conn, output_id: &str) -> Result<Vec<ReviewRow>> {
    let rows: Vec<(String, String, String, Option<String>, String)> = conn
        .rows("SELECT reviewer, tier, decision, reason, created_at FROM reviews WHERE output_id = ?1 ORDER BY id", args![output_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?;
    rows.into_iter()
        .map(|(reviewer, tier, decision, reason, created_at)| {
            Ok(ReviewRow {
                reviewer,
                tier: ReviewTier::parse(&tier)?,
                decision: Decision::parse(&decision)?,
                reason,
                created_at,
            })
        })
        .collect()
}

/// An output awaiting a decision, with its job and scenario.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The output.
    pub output: OutputRecord,
    /// When it was staged.
    pub created_at: String,
    /// Who submitted its job.
    pub submitter: String,
    /// Its scenario's name.
    pub scenario: String,
}

/// The outputs in any of `statuses`, oldest first.
pub fn pending(conn: &Conn, statuses: &[OutputStatus]) -> Result<Vec<Pending>> {
    let mut out = Vec::new();
    for status in statuses {
        let rows: Vec<(String, String, String, String)> = conn.rows(
            "SELECT o.id, o.created_at, j.submitter, s.name
             FROM outputs o JOIN jobs j ON j.id = o.job_id JOIN scenarios s ON s.id = j.scenario_id
             WHERE o.status = ?1 ORDER BY o.created_at, o.id",
            args![status.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
        for (id, created_at, submitter, scenario) in rows {
            out.push(Pending {
                output: get(conn, &id)?,
                created_at,
                submitter,
                scenario,
            });
        }
    }
    out.sort_by(|a, b| a.created_at.cmp(&b.created_at));
    Ok(out)
}
