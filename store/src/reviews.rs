//! Tables `review_comments` and `resubmissions`: the thread of a review request (the
//! outputs of a job, and of the jobs resubmitted in answer to it), append-only.

use crate::db::{OptionalExt, args};

use crate::{Conn, Result};

/// Longest comment, in characters (the table's CHECK counts them too).
pub const MAX_COMMENT_CHARS: usize = 4000;

/// A comment as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentRow {
    /// Id.
    pub id: i64,
    /// The job it was written on.
    pub job_id: String,
    /// Who wrote it.
    pub author: String,
    /// What it says.
    pub body: String,
    /// When.
    pub created_at: String,
}

/// Records a comment on `job_id`. Returns its id.
pub fn insert_comment(conn: &Conn, job_id: &str, author: &str, body: &str) -> Result<i64> {
    conn.insert(
        "INSERT INTO review_comments (job_id, author, body, created_at) VALUES (?1, ?2, ?3, ?4)",
        args![job_id, author, body, crate::now()],
    )
}

/// The comments on any of `jobs`, oldest first.
pub fn comments(conn: &Conn, jobs: &[String]) -> Result<Vec<CommentRow>> {
    let mut out = Vec::new();
    for job in jobs {
        let rows = conn.rows(
            "SELECT id, job_id, author, body, created_at FROM review_comments WHERE job_id = ?1",
            args![job],
            |r| {
                Ok(CommentRow {
                    id: r.get(0)?,
                    job_id: r.get(1)?,
                    author: r.get(2)?,
                    body: r.get(3)?,
                    created_at: r.get(4)?,
                })
            },
        )?;
        out.extend(rows);
    }
    out.sort_by_key(|c| c.id);
    Ok(out)
}

/// Records that `job_id` answers a request for changes on `resubmits`.
pub fn link_resubmission(conn: &Conn, job_id: &str, resubmits: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO resubmissions (job_id, resubmits) VALUES (?1, ?2)",
        args![job_id, resubmits],
    )?;
    Ok(())
}

/// The job that answered `job_id`, if one did.
pub fn answered_by(conn: &Conn, job_id: &str) -> Result<Option<String>> {
    conn.query_row(
        "SELECT job_id FROM resubmissions WHERE resubmits = ?1",
        args![job_id],
        |r| r.get(0),
    )
    .optional()
}

/// The jobs of `job_id`'s review request, first submitted first: the chain of
/// resubmissions it belongs to.
pub fn chain(conn: &Conn, job_id: &str) -> Result<Vec<String>> {
    let mut first = job_id.to_string();
    // Each job answers at most one and is answered by at most one: a chain, no cycles
    // (a job can only answer one submitted before it). The bound is a guard all the same.
    for _ in 0..10_000 {
        let earlier: Option<String> = conn
            .query_row(
                "SELECT resubmits FROM resubmissions WHERE job_id = ?1",
                args![first],
                |r| r.get(0),
            )
            .optional()?;
        match earlier {
            Some(e) => first = e,
            None => break,
        }
    }
    let mut out = vec![first];
    while out.len() < 10_000 {
        let Some(last) = out.last() else { break };
        match answered_by(conn, last)? {
            Some(next) => out.push(next),
            None => break,
        }
    }
    Ok(out)
}
