//! Review as a conversation (as in OpenSAFELY's Airlock): the outputs of one job are one
//! review request, decided together; reviewers and the job's developer write to one
//! thread; a developer answers a request for changes by resubmitting
//! ([`crate::jobs::Submission::resubmits`]), and the new job's outputs continue the same
//! request. Every comment is an audit event (`review.commented`, with its text), as every
//! decision is.
//!
//! What the developer reads of the thread passes the same threshold-mode check as their
//! job's log lines: a reviewer quoting a total that includes suppressed cells, or a count
//! below `min_group_size` no answer released, is held back from the developer.

use sandbox_core::audit::{EventKind, Subject};
use sandbox_core::authz::{Action, own_job};
use sandbox_core::{OutputStatus, ReviewTier, Role};
use sandbox_store::authz::{self, On};
use sandbox_store::reviews::{self, MAX_COMMENT_CHARS};
use sandbox_store::{Conn, audit, jobs as stored_jobs, outputs, scenarios};
use serde::Serialize;
use serde_json::json;

use super::{Decision, authorized, record_decision, released_if_approved, tier_of};
use crate::jobs::OutputRecord;
use crate::{Domain, Error, Result};

/// A review request's thread: its jobs (first submitted first) with their outputs, and
/// what was said and decided, oldest first.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Thread {
    /// The scenario the jobs ran under.
    pub scenario_id: i64,
    /// The developer who submitted them.
    pub developer: String,
    /// The jobs of the request.
    pub jobs: Vec<ThreadJob>,
    /// Comments and decisions, oldest first.
    pub entries: Vec<Entry>,
    /// Whose turn it is, for the latest job's outputs: `operator`, `supervisor` (each while
    /// an output awaits that tier), `developer` (changes were requested); empty when every
    /// output is decided or none was staged.
    pub awaiting: Vec<String>,
}

/// A job of a review request.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ThreadJob {
    /// Job id.
    pub id: String,
    /// Where it stands.
    pub status: String,
    /// When it was submitted.
    pub created_at: String,
    /// Its outputs.
    pub outputs: Vec<ThreadOutput>,
}

/// An output of a review request.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ThreadOutput {
    /// Output id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Table, text, chart or image.
    pub kind: String,
    /// Where it stands in review.
    pub status: String,
}

/// One line of a thread.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Entry {
    /// When.
    pub at: String,
    /// Who.
    pub author: String,
    /// `comment` or `decision`.
    pub kind: String,
    /// The job it was written on.
    pub job_id: String,
    /// The output a decision was on.
    pub output_id: Option<String>,
    /// A decision's tier (`operator`, `supervisor`).
    pub tier: Option<String>,
    /// A decision (`approve`, `reject`, `request_changes`).
    pub decision: Option<String>,
    /// What was written (a comment, a decision's reason).
    pub text: Option<String>,
}

/// The request `job_id` belongs to, read by `actor`: operators and supervisors read every
/// request, a developer their own.
pub fn thread(domain: &Domain, actor: &str, job_id: &str) -> Result<Thread> {
    let conn = domain.conn()?;
    let who = authz::authorize(&conn, actor, Action::JobRead, On::Domain)?;
    let job = stored_jobs::get(&conn, job_id)?;
    own_job(&who, job_id, &job.submitter)?;
    read(&conn, job.scenario_id, &job.submitter, job_id, who.role)
}

fn read(
    conn: &Conn,
    scenario_id: i64,
    developer: &str,
    job_id: &str,
    reader: Role,
) -> Result<Thread> {
    let chain = reviews::chain(conn, job_id)?;
    let mut jobs = Vec::with_capacity(chain.len());
    let mut entries = Vec::new();
    for id in &chain {
        let record = stored_jobs::get(conn, id)?;
        let staged = outputs::of_job(conn, id)?;
        for o in &staged {
            for r in outputs::reviews(conn, &o.id)? {
                entries.push(Entry {
                    at: r.created_at,
                    author: r.reviewer,
                    kind: "decision".into(),
                    job_id: id.clone(),
                    output_id: Some(o.id.clone()),
                    tier: Some(r.tier.to_string()),
                    decision: Some(r.decision.to_string()),
                    text: r.reason,
                });
            }
        }
        jobs.push(ThreadJob {
            id: id.clone(),
            status: record.status.to_string(),
            created_at: record.created_at,
            outputs: staged
                .iter()
                .map(|o| ThreadOutput {
                    id: o.id.clone(),
                    name: o.name.clone(),
                    kind: o.kind.clone(),
                    status: o.status.to_string(),
                })
                .collect(),
        });
    }
    for c in reviews::comments(conn, &chain)? {
        entries.push(Entry {
            at: c.created_at,
            author: c.author,
            kind: "comment".into(),
            job_id: c.job_id,
            output_id: None,
            tier: None,
            decision: None,
            text: Some(c.body),
        });
    }
    entries.sort_by(|a, b| a.at.cmp(&b.at));
    if reader == Role::Developer {
        // What reviewers wrote reaches the developer as the job's log lines do.
        let texts: Vec<String> = entries
            .iter()
            .map(|e| e.text.clone().unwrap_or_default())
            .collect();
        let last = chain.last().map_or(job_id, String::as_str);
        let readable = crate::jobs::readable_texts(conn, scenario_id, last, texts)?;
        for (e, text) in entries.iter_mut().zip(readable) {
            if e.author != developer && e.text.is_some() {
                e.text = Some(text);
            }
        }
    }
    let awaiting = awaiting(&jobs);
    Ok(Thread {
        scenario_id,
        developer: developer.to_string(),
        jobs,
        entries,
        awaiting,
    })
}

/// Whose turn it is in a request: the latest job's outputs decide it.
fn awaiting(jobs: &[ThreadJob]) -> Vec<String> {
    let Some(last) = jobs.last() else {
        return Vec::new();
    };
    let has = |s: &[OutputStatus]| {
        last.outputs
            .iter()
            .any(|o| s.iter().any(|s| o.status == s.as_str()))
    };
    let mut out = Vec::new();
    if has(&[
        OutputStatus::Staged,
        OutputStatus::Checked,
        OutputStatus::Flagged,
    ]) {
        out.push("operator".to_string());
    }
    if has(&[OutputStatus::OperatorApproved]) {
        out.push("supervisor".to_string());
    }
    if has(&[OutputStatus::ChangesRequested]) {
        out.push("developer".to_string());
    }
    out
}

/// Writes `body` to the thread of `job_id`'s request: a reviewer (operator, supervisor),
/// or the job's own developer. Recorded with its text in the audit log.
pub fn comment(domain: &Domain, actor: &str, job_id: &str, body: &str) -> Result<Thread> {
    let mut conn = domain.conn()?;
    let who = authz::authorize(&conn, actor, Action::JobRead, On::Domain)?;
    let job = stored_jobs::get(&conn, job_id)?;
    own_job(&who, job_id, &job.submitter)?;
    if who.role == Role::Developer {
        // A developer writes while the work may go on (no stop, no suspension).
        let scenario = scenarios::get(&conn, job.scenario_id)?;
        let on = On::Work {
            scenario: &scenario,
            submitter: &job.submitter,
        };
        authz::authorize(&conn, actor, Action::JobSubmit, on)?;
    }
    let body = body.trim();
    if body.is_empty() {
        return Err(Error::Invalid("a comment needs some text".into()));
    }
    if body.chars().count() > MAX_COMMENT_CHARS {
        return Err(Error::Invalid(format!(
            "a comment holds at most {MAX_COMMENT_CHARS} characters"
        )));
    }
    let tx = conn.write()?;
    let id = reviews::insert_comment(&tx, job_id, actor, body)?;
    audit::append(
        &tx,
        actor,
        EventKind::ReviewCommented,
        &Subject::Job(job_id.to_string()),
        json!({"comment": id, "scenario_id": job.scenario_id, "text": body}),
    )?;
    tx.commit()?;
    read(
        &*domain.conn()?,
        job.scenario_id,
        &job.submitter,
        job_id,
        who.role,
    )
}

/// Decides on every output of job `job_id` that awaits `actor`'s tier, together: each is
/// checked first (and nothing is recorded if one would be refused), then decided as
/// [`decide`] does, releasing on a supervisor's approval.
pub fn decide_request(
    domain: &Domain,
    actor: &str,
    job_id: &str,
    decision: Decision,
    reason: Option<&str>,
) -> Result<Vec<OutputRecord>> {
    let mut conn = domain.conn()?;
    let who = authz::authorize(&conn, actor, Action::OutputDecide, On::Domain)?;
    let tier = tier_of(who.role)?;
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    let job = stored_jobs::get(&conn, job_id)?;
    let waiting: Vec<OutputRecord> = outputs::of_job(&conn, job_id)?
        .into_iter()
        .filter(|o| match tier {
            ReviewTier::Operator => {
                matches!(o.status, OutputStatus::Checked | OutputStatus::Flagged)
            }
            ReviewTier::Supervisor => o.status == OutputStatus::OperatorApproved,
        })
        .collect();
    if waiting.is_empty() {
        return Err(Error::Review(format!(
            "no output of job {job_id} awaits a {tier}'s decision"
        )));
    }
    for o in &waiting {
        authorized(&mut conn, actor, &o.id)?;
    }
    // Every output's decision in one transaction: all are recorded or none is.
    let tx = conn.write()?;
    for o in &waiting {
        record_decision(&tx, &job, actor, tier, &o.id, decision, reason)?;
    }
    tx.commit()?;
    drop(conn);
    // Releases follow, one product each; one that fails leaves its output approved by the
    // operator, and the supervisor's decision on the request can be taken again.
    let mut decided = Vec::with_capacity(waiting.len());
    for o in &waiting {
        decided.push(released_if_approved(domain, actor, tier, decision, &o.id)?);
    }
    Ok(decided)
}
