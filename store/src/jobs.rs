//! Tables `modules` and `jobs`: stored modules, and the durable job queue (queued →
//! running → succeeded | failed | cancelled). Any number of runners can share the queue:
//! a claim is one `UPDATE … RETURNING`.

use crate::db::{OptionalExt, args};
use sandbox_core::JobStatus;
use sandbox_core::job::{JobLimits, LogLine, ProgressReport};
use serde::Serialize;

use crate::outputs::{self, OutputRecord};
use crate::{Conn, DomainError, Result};

/// A module as stored.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ModuleRecord {
    /// SHA-256 of its bytes: how jobs name it.
    pub sha256: String,
    /// Size in bytes.
    pub size: i64,
    /// When it was first stored.
    pub stored_at: String,
}

/// Records a stored module (once per hash).
pub fn insert_module(conn: &Conn, sha256: &str, size: usize) -> Result<()> {
    conn.execute(
        "INSERT OR IGNORE INTO modules (sha256, size, stored_at) VALUES (?1, ?2, ?3)",
        args![sha256, size as i64, crate::now()],
    )?;
    Ok(())
}

/// A stored module's record.
pub fn module(conn: &Conn, sha256: &str) -> Result<ModuleRecord> {
    conn.query_row(
        "SELECT sha256, size, stored_at FROM modules WHERE sha256 = ?1",
        args![sha256],
        |r| {
            Ok(ModuleRecord {
                sha256: r.get(0)?,
                size: r.get(1)?,
                stored_at: r.get(2)?,
            })
        },
    )
    .optional()?
    .ok_or_else(|| DomainError::NotFound(format!("module {sha256}")).into())
}

/// A job to queue.
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    /// Job id.
    pub id: &'a str,
    /// Scenario.
    pub scenario_id: i64,
    /// Submitter.
    pub submitter: &'a str,
    /// Module.
    pub module_sha256: &'a str,
    /// Parameters (JSON text).
    pub params_json: &'a str,
    /// The limits it was granted.
    pub limits: &'a JobLimits,
}

/// Queues a job.
pub fn insert_queued(conn: &Conn, job: &NewJob<'_>) -> Result<()> {
    conn.execute(
        "INSERT INTO jobs (id, scenario_id, submitter, module_sha256, params_json, limits_json, status, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?7)",
        args![
            job.id,
            job.scenario_id,
            job.submitter,
            job.module_sha256,
            job.params_json,
            serde_json::to_string(job.limits)?,
            crate::now()
        ],
    )?;
    Ok(())
}

/// The end of a lease of `lease` from now, as the store records times.
pub fn lease_until(lease: std::time::Duration) -> String {
    let lease = chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
    let until = chrono::Utc::now()
        .checked_add_signed(lease)
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
    until.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Claims queued job `id` for `runner`, leased until `until`; whether it was queued.
pub fn claim(conn: &Conn, id: &str, runner: &str, until: &str) -> Result<bool> {
    let n = conn.execute(
        "UPDATE jobs SET status = 'running', started_at = ?2, runner = ?3, lease_until = ?4
         WHERE id = ?1 AND status = 'queued'",
        args![id, crate::now(), runner, until],
    )?;
    Ok(n > 0)
}

/// Claims the oldest queued job for `runner`, leased until `until`, if there is one. On
/// PostgreSQL the job is taken `FOR UPDATE SKIP LOCKED`: servers claiming at once take
/// different jobs and none waits for another's claim.
pub fn claim_next(conn: &Conn, runner: &str, until: &str) -> Result<Option<String>> {
    let pick = if conn.is_postgres() {
        "SELECT id FROM jobs WHERE status = 'queued' ORDER BY created_at, rowid LIMIT 1 FOR UPDATE SKIP LOCKED"
    } else {
        "SELECT id FROM jobs WHERE status = 'queued' ORDER BY created_at, rowid LIMIT 1"
    };
    conn.query_row(
        &format!(
            "UPDATE jobs SET status = 'running', started_at = ?1, runner = ?2, lease_until = ?3
             WHERE id = ({pick})
             RETURNING id"
        ),
        args![crate::now(), runner, until],
        |r| r.get(0),
    )
    .optional()
}

/// What a runner learns when it renews its lease on a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Renewal {
    /// Renewed; the job runs on.
    Renewed,
    /// Renewed, and someone asked for the job to be cancelled.
    CancelRequested(String),
    /// The job is no longer this runner's (its lease lapsed and another server ended it).
    Lost,
}

/// Renews `runner`'s lease on running job `id` until `until`.
pub fn renew(conn: &Conn, id: &str, runner: &str, until: &str) -> Result<Renewal> {
    let cancel: Option<Option<String>> = conn
        .query_row(
            "UPDATE jobs SET lease_until = ?3 WHERE id = ?1 AND status = 'running' AND runner = ?2
             RETURNING cancel_requested_by",
            args![id, runner, until],
            |r| r.get(0),
        )
        .optional()?;
    Ok(match cancel {
        None => Renewal::Lost,
        Some(None) => Renewal::Renewed,
        Some(Some(by)) => Renewal::CancelRequested(by),
    })
}

/// Fails running job `id` if its lease ended before `now` (one renewed meanwhile stays);
/// whether it did.
pub fn fail_lapsed(conn: &Conn, id: &str, now: &str, kind: &str, error: &str) -> Result<bool> {
    let n = conn.execute(
        "UPDATE jobs SET status = 'failed', error_kind = ?3, error = ?4, finished_at = ?5
         WHERE id = ?1 AND status = 'running' AND lease_until < ?2",
        args![id, now, kind, error, crate::now()],
    )?;
    Ok(n > 0)
}

/// Running jobs whose lease ended before `now`, with their runners.
pub fn lapsed(conn: &Conn, now: &str) -> Result<Vec<(String, Option<String>)>> {
    conn.rows(
        "SELECT id, runner FROM jobs WHERE status = 'running' AND lease_until < ?1 ORDER BY id",
        args![now],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// A job's status, if it exists.
pub fn status(conn: &Conn, id: &str) -> Result<Option<JobStatus>> {
    let s: Option<String> = conn
        .query_row("SELECT status FROM jobs WHERE id = ?1", args![id], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(s.map(|s| JobStatus::parse(&s)).transpose()?)
}

/// What a runner needs of a job it claimed.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// Scenario.
    pub scenario_id: i64,
    /// Submitter.
    pub submitter: String,
    /// Module.
    pub module_sha256: String,
    /// Parameters (JSON text).
    pub params_json: String,
    /// The limits it was granted (the host's defaults for a job queued before they were
    /// recorded).
    pub limits: JobLimits,
    /// Who asked for it to be cancelled while it was queued.
    pub cancel_requested_by: Option<String>,
}

/// A claimed job's particulars.
pub fn claimed(conn: &Conn, id: &str) -> Result<Claimed> {
    let (scenario_id, submitter, module_sha256, params_json, limits_json, cancel_requested_by): (
        i64,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
    ) = conn.query_row(
        "SELECT scenario_id, submitter, module_sha256, params_json, limits_json, cancel_requested_by FROM jobs WHERE id = ?1",
        args![id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
    )?;
    let limits = match limits_json {
        Some(text) => serde_json::from_str(&text)?,
        None => JobLimits::default(),
    };
    Ok(Claimed {
        scenario_id,
        submitter,
        module_sha256,
        params_json,
        limits,
        cancel_requested_by,
    })
}

/// What a run used, as a job's end records it.
#[derive(Debug, Clone, Copy)]
pub struct Usage<'a> {
    /// Fuel used.
    pub fuel_used: u64,
    /// Queries made.
    pub queries: u32,
    /// Log lines.
    pub logs: &'a [LogLine],
}

/// The refusal of an end recorded for a job that is no longer running (another server
/// ended it when its runner's lease lapsed).
fn not_running(id: &str) -> crate::Error {
    crate::DomainError::Conflict(format!(
        "job {id} is no longer running here: its lease lapsed and it was ended"
    ))
    .into()
}

/// Records a job's successful end (refused unless it is running).
pub fn succeed(conn: &Conn, id: &str, used: Usage<'_>) -> Result<()> {
    let n = conn.execute(
        "UPDATE jobs SET status = 'succeeded', fuel_used = ?2, queries = ?3, logs_json = ?4, finished_at = ?5
         WHERE id = ?1 AND status = 'running'",
        args![
            id,
            used.fuel_used as i64,
            used.queries,
            serde_json::to_string(used.logs)?,
            crate::now()
        ],
    )?;
    if n == 0 {
        return Err(not_running(id));
    }
    Ok(())
}

/// Records a job's end without outputs: `failed` or `cancelled`, with the error's kind and
/// text (refused unless it is running).
pub fn end(
    conn: &Conn,
    id: &str,
    status: JobStatus,
    kind: &str,
    error: &str,
    used: Usage<'_>,
) -> Result<()> {
    let n = conn.execute(
        "UPDATE jobs SET status = ?2, error_kind = ?3, error = ?4, fuel_used = ?5, queries = ?6, logs_json = ?7, finished_at = ?8
         WHERE id = ?1 AND status = 'running'",
        args![
            id,
            status.as_str(),
            kind,
            error,
            used.fuel_used as i64,
            used.queries,
            serde_json::to_string(used.logs)?,
            crate::now()
        ],
    )?;
    if n == 0 {
        return Err(not_running(id));
    }
    Ok(())
}

/// Fails a job if it is still recorded as running; whether it was.
pub fn fail_running(conn: &Conn, id: &str, kind: &str, error: &str) -> Result<bool> {
    let n = conn.execute(
        "UPDATE jobs SET status = 'failed', error_kind = ?2, error = ?3, finished_at = ?4
         WHERE id = ?1 AND status = 'running'",
        args![id, kind, error, crate::now()],
    )?;
    Ok(n > 0)
}

/// A job's submitter and status, if it exists.
pub fn submitter_and_status(conn: &Conn, id: &str) -> Result<Option<(String, JobStatus)>> {
    let row: Option<(String, String)> = conn
        .query_row(
            "SELECT submitter, status FROM jobs WHERE id = ?1",
            args![id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    row.map(|(s, st)| Ok((s, JobStatus::parse(&st)?)))
        .transpose()
}

/// Cancels a queued job, recording who did it and why it ended.
pub fn cancel_queued(conn: &Conn, id: &str, by: &str, error: &str) -> Result<()> {
    conn.execute(
        "UPDATE jobs SET status = 'cancelled', error_kind = 'cancelled', error = ?2,
             cancel_requested_by = ?3, finished_at = ?4 WHERE id = ?1",
        args![id, error, by, crate::now()],
    )?;
    Ok(())
}

/// Records that `by` asked for a running job to be cancelled.
pub fn request_cancel(conn: &Conn, id: &str, by: &str) -> Result<()> {
    conn.execute(
        "UPDATE jobs SET cancel_requested_by = ?2 WHERE id = ?1",
        args![id, by],
    )?;
    Ok(())
}

/// Who asked for job `id` to be cancelled: `None` when the job does not exist,
/// `Some(None)` when nobody did.
pub fn cancel_requested_by(conn: &Conn, id: &str) -> Result<Option<Option<String>>> {
    conn.query_row(
        "SELECT cancel_requested_by FROM jobs WHERE id = ?1",
        args![id],
        |r| r.get(0),
    )
    .optional()
}

/// Every running job with the runner recorded for it.
pub fn running(conn: &Conn) -> Result<Vec<(String, Option<String>)>> {
    conn.rows(
        "SELECT id, runner FROM jobs WHERE status = 'running'",
        args![],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// A finished job's log lines: `None` when the job does not exist.
pub fn logs(conn: &Conn, id: &str) -> Result<Option<Vec<LogLine>>> {
    let logs: Option<Option<String>> = conn
        .query_row("SELECT logs_json FROM jobs WHERE id = ?1", args![id], |r| {
            r.get(0)
        })
        .optional()?;
    match logs {
        None => Ok(None),
        Some(None) => Ok(Some(Vec::new())),
        Some(Some(text)) => Ok(Some(serde_json::from_str(&text)?)),
    }
}

/// A job as recorded, with its outputs.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct JobRecord {
    /// Job id.
    pub id: String,
    /// Scenario id.
    pub scenario_id: i64,
    /// Who submitted it.
    pub submitter: String,
    /// SHA-256 of the module.
    pub module_sha256: String,
    /// Where it stands.
    pub status: JobStatus,
    /// Error kind when failed or cancelled.
    pub error_kind: Option<String>,
    /// Error text when failed or cancelled.
    pub error: Option<String>,
    /// Fuel used, once finished.
    pub fuel_used: Option<i64>,
    /// Queries made, once finished.
    pub queries: Option<i64>,
    /// The limits it runs under.
    pub limits: Option<JobLimits>,
    /// Who asked for it to be cancelled.
    pub cancel_requested_by: Option<String>,
    /// When it was submitted.
    pub created_at: String,
    /// When it started.
    pub started_at: Option<String>,
    /// When it ended.
    pub finished_at: Option<String>,
    /// While queued: how many queued jobs are ahead of it.
    pub queue_position: Option<i64>,
    /// While it runs in this process: what it has done so far.
    pub progress: Option<ProgressReport>,
    /// Outputs staged.
    pub outputs: Vec<OutputRecord>,
    /// Parameters (JSON text).
    #[serde(skip)]
    #[schemars(skip)]
    pub params_json: String,
}

const JOB_COLUMNS: &str = "id, scenario_id, submitter, module_sha256, status, error_kind, error, fuel_used, queries, limits_json, cancel_requested_by, created_at, started_at, finished_at, params_json";

type JobRow = (JobRecord, String);

fn job_row(r: &crate::db::Row<'_>) -> crate::Result<JobRow> {
    Ok((
        JobRecord {
            id: r.get(0)?,
            scenario_id: r.get(1)?,
            submitter: r.get(2)?,
            module_sha256: r.get(3)?,
            status: JobStatus::Queued,
            error_kind: r.get(5)?,
            error: r.get(6)?,
            fuel_used: r.get(7)?,
            queries: r.get(8)?,
            limits: r
                .get::<Option<String>>(9)?
                .and_then(|s| serde_json::from_str(&s).ok()),
            cancel_requested_by: r.get(10)?,
            created_at: r.get(11)?,
            started_at: r.get(12)?,
            finished_at: r.get(13)?,
            queue_position: None,
            progress: None,
            outputs: Vec::new(),
            params_json: r.get(14)?,
        },
        r.get(4)?,
    ))
}

fn complete(conn: &Conn, (mut record, status): JobRow) -> Result<JobRecord> {
    record.status = JobStatus::parse(&status)?;
    if record.status == JobStatus::Queued {
        record.queue_position = Some(conn.query_row(
            "SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND (created_at, rowid) < (SELECT created_at, rowid FROM jobs WHERE id = ?1)",
            args![record.id],
            |r| r.get(0),
        )?);
    }
    record.outputs = outputs::of_job(conn, &record.id)?;
    Ok(record)
}

/// Reads a job.
pub fn get(conn: &Conn, id: &str) -> Result<JobRecord> {
    let row = conn
        .query_row(
            &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
            args![id],
            job_row,
        )
        .optional()?
        .ok_or_else(|| DomainError::NotFound(format!("job `{id}`")))?;
    complete(conn, row)
}

/// Which jobs to list.
#[derive(Debug, Clone, Default)]
pub struct JobFilter<'a> {
    /// Only this submitter's.
    pub submitter: Option<&'a str>,
    /// Only this scenario's.
    pub scenario_id: Option<i64>,
    /// Only in this status.
    pub status: Option<JobStatus>,
    /// At most this many, newest first (default 100).
    pub limit: Option<i64>,
}

/// Jobs, newest first.
pub fn list(conn: &Conn, filter: &JobFilter<'_>) -> Result<Vec<JobRecord>> {
    let rows: Vec<JobRow> = conn.rows(
        &format!(
            "SELECT {JOB_COLUMNS} FROM jobs
             WHERE (CAST(?1 AS TEXT) IS NULL OR submitter = ?1) AND (CAST(?2 AS BIGINT) IS NULL OR scenario_id = ?2)
               AND (CAST(?3 AS TEXT) IS NULL OR status = ?3)
             ORDER BY created_at DESC, rowid DESC LIMIT ?4"
        ),
        args![
                filter.submitter,
                filter.scenario_id,
                filter.status.map(JobStatus::as_str),
                filter.limit.unwrap_or(100).clamp(1, 1000)
        ],
        job_row,
    )?;
    rows.into_iter().map(|r| complete(conn, r)).collect()
}

/// How many jobs wait in the queue, in all or of one submitter.
pub fn queued(conn: &Conn, submitter: Option<&str>) -> Result<i64> {
    conn.query_row(
        "SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND (CAST(?1 AS TEXT) IS NULL OR submitter = ?1)",
        args![submitter],
        |r| r.get(0),
    )
}

/// Jobs by status, for the metrics.
pub fn count_by_status(conn: &Conn) -> Result<Vec<(String, i64)>> {
    crate::count_by(conn, "SELECT status, COUNT(*) FROM jobs GROUP BY status")
}
