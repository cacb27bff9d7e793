//! Jobs: a developer's module run against a scenario.
//!
//! A job is first **queued** ([`enqueue`]: every check that can refuse it runs then, and
//! the module is validated, compiled and stored), then **claimed** by a runner
//! ([`claim`], [`claim_next`]: the checks that depend on time run again) and **run**
//! ([`run_claimed`]). It either succeeds and stages its outputs (written to
//! `staging/<job-id>/`, checked, recorded), or fails with a typed error and stages
//! nothing, or is **cancelled** ([`cancel`]) by its submitter, an operator or a
//! supervisor. The queue is the `jobs` table itself, so it survives a restart and any
//! number of runners (server processes) can share it. [`submit`] is the three steps at
//! once, for the CLI.

use std::fs;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;
use serde_json::json;

use crate::identity::{self, Role};
use crate::review::checks;
use crate::wasm::{
    Interrupt, JobContext, JobLimits, LogLine, ProgressReport, RunStats, StopTarget,
};
use crate::{Domain, Error, Result, audit, scenarios, sha256_hex, store};

/// A job submission.
#[derive(Debug, Clone)]
pub struct Submission<'a> {
    /// Scenario id or name.
    pub scenario: &'a str,
    /// Module bytes.
    pub module: &'a [u8],
    /// Parameters as JSON text (`{}` when none).
    pub params_json: &'a str,
    /// Limits.
    pub limits: JobLimits,
}

/// A staged output as recorded.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct OutputRecord {
    /// Output id.
    pub id: String,
    /// Job id.
    pub job_id: String,
    /// Name given by the module.
    pub name: String,
    /// `table` or `text`.
    pub kind: String,
    /// File name under the job's staging folder.
    pub file_name: String,
    /// SHA-256 of the file.
    pub sha256: String,
    /// Size.
    pub bytes: i64,
    /// Review status.
    pub status: String,
    /// Automated check results.
    pub checks: Option<serde_json::Value>,
}

/// The result of a job.
#[derive(Debug, Clone, Serialize)]
pub struct JobReport {
    /// Job id.
    pub id: String,
    /// `succeeded`, `failed` or `cancelled`.
    pub status: String,
    /// Error kind when failed (e.g. `limit:fuel`, `guest`, `cancelled`).
    pub error_kind: Option<String>,
    /// Error text when failed.
    pub error: Option<String>,
    /// Fuel used.
    pub fuel_used: u64,
    /// Queries made.
    pub queries: u32,
    /// Outputs staged.
    pub outputs: Vec<OutputRecord>,
    /// Log lines.
    pub logs: Vec<crate::wasm::LogLine>,
}

fn error_kind(e: &Error) -> String {
    match e {
        Error::Limit { limit, .. } => format!("limit:{limit}"),
        Error::Guest(_) => "guest".into(),
        Error::Refused(_) => "refused".into(),
        Error::Budget { .. } => "budget".into(),
        Error::Stopped(_) => "stopped".into(),
        Error::Cancelled(_) => "cancelled".into(),
        Error::Forbidden(_) => "forbidden".into(),
        _ => "internal".into(),
    }
}

/// The process running a job, as recorded in `jobs.runner`: `host:pid`.
fn runner() -> &'static str {
    static RUNNER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    RUNNER.get_or_init(|| {
        let host = fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        format!("{host}:{}", std::process::id())
    })
}

/// Submits and runs a job at once (the CLI's way). Validation failures (role, scenario,
/// module) are refused before a job exists; a failure while running ends the job as
/// `failed`.
pub fn submit(domain: &Domain, actor: &str, sub: &Submission<'_>) -> Result<JobReport> {
    // Queued and claimed in one transaction: a server sharing the queue cannot take it.
    match queue(domain, actor, sub, true)? {
        Queued::Claimed(Claimed::Ready(ready)) => run_claimed(domain, ready),
        Queued::Claimed(Claimed::Ended(report)) => Ok(report),
        Queued::Waiting(_) => Err(Error::Internal("the job was not claimed".into())),
    }
}

/// What [`queue`] did with a submission.
enum Queued {
    /// It waits in the queue.
    Waiting(Box<JobRecord>),
    /// It was claimed for this process at once.
    Claimed(Claimed),
}

/// Checks a submission and queues it: the developer owns the scenario, which is approved,
/// within its window and under no emergency stop; the parameters are a JSON object; the
/// module validates and compiles (it is stored under its SHA-256). The limits are what the
/// submission asks for within the scenario's grant. Every refusal of a stop or a module
/// is audited; the queued job is (`job.queued`).
pub fn enqueue(domain: &Domain, actor: &str, sub: &Submission<'_>) -> Result<JobRecord> {
    match queue(domain, actor, sub, false)? {
        Queued::Waiting(record) => Ok(*record),
        Queued::Claimed(_) => Err(Error::Internal("a queued job was claimed".into())),
    }
}

fn queue(domain: &Domain, actor: &str, sub: &Submission<'_>, claim_now: bool) -> Result<Queued> {
    let mut conn = domain.conn()?;
    identity::require(&conn, actor, Role::Developer)?;
    let record = scenarios::resolve(&conn, sub.scenario)?;
    if record.developer != actor {
        return Err(Error::Forbidden(format!(
            "scenario `{}` belongs to `{}`",
            record.spec.name, record.developer
        )));
    }
    scenarios::check_usable(&record, chrono::Utc::now().date_naive())?;
    if let Some(stop) = crate::stops::in_force(&conn, record.id, actor)? {
        let tx = conn.transaction()?;
        audit::append(
            &tx,
            actor,
            "job.refused",
            &format!("scenario:{}", record.id),
            json!({"reason": stop}),
        )?;
        tx.commit()?;
        return Err(Error::Stopped(stop));
    }
    let params: serde_json::Value = serde_json::from_str(sub.params_json)
        .map_err(|e| Error::Guest(format!("params are not JSON: {e}")))?;
    if !params.is_object() {
        return Err(Error::Guest("params must be a JSON object".into()));
    }
    // The scenario's grant caps what the submission asks for.
    let limits = sub
        .limits
        .within(&crate::wasm::JobLimits::granted(&record.spec.limits));
    let sha = store_module(domain, &mut conn, actor, record.id, sub.module)?;
    let job_id = crate::new_id("job");
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO jobs (id, scenario_id, submitter, module_sha256, params_json, limits_json, status, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?7)",
        params![
            job_id,
            record.id,
            actor,
            sha,
            sub.params_json,
            serde_json::to_string(&limits)?,
            store::now()
        ],
    )?;
    audit::append(
        &tx,
        actor,
        "job.queued",
        &format!("job:{job_id}"),
        json!({"scenario_id": record.id, "module_sha256": sha, "params": params, "limits": limits}),
    )?;
    if claim_now {
        tx.execute(
            "UPDATE jobs SET status = 'running', started_at = ?2, runner = ?3 WHERE id = ?1",
            params![job_id, store::now(), runner()],
        )?;
        return Ok(Queued::Claimed(start(domain, tx, &job_id)?));
    }
    tx.commit()?;
    Ok(Queued::Waiting(Box::new(job(&conn, &job_id)?)))
}

/// Validates, compiles (into the host's cache) and stores a module; refusals are audited.
/// Returns its SHA-256.
fn store_module(
    domain: &Domain,
    conn: &mut Connection,
    actor: &str,
    scenario_id: i64,
    module: &[u8],
) -> Result<String> {
    let sha = sha256_hex(module);
    if let Err(e) = domain.host().prepare(&sha, module) {
        let tx = conn.transaction()?;
        audit::append(
            &tx,
            actor,
            "module.refused",
            &format!("module:{sha}"),
            json!({"scenario_id": scenario_id, "reason": e.to_string()}),
        )?;
        tx.commit()?;
        return Err(e);
    }
    let module_path = domain.layout().modules().join(format!("{sha}.wasm"));
    if !module_path.exists() {
        let tmp = domain
            .layout()
            .modules()
            .join(format!(".{sha}.{}.tmp", crate::new_id("w")));
        fs::write(&tmp, module)?;
        fs::rename(&tmp, &module_path)?;
    }
    conn.execute(
        "INSERT OR IGNORE INTO modules (sha256, size, stored_at) VALUES (?1, ?2, ?3)",
        params![sha, module.len() as i64, store::now()],
    )?;
    Ok(sha)
}

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

/// A developer uploads a module ahead of its jobs: it is validated, compiled and stored,
/// and later submissions may name it by its SHA-256 ([`module_bytes`]).
pub fn upload_module(domain: &Domain, actor: &str, module: &[u8]) -> Result<ModuleRecord> {
    let mut conn = domain.conn()?;
    identity::require(&conn, actor, Role::Developer)?;
    let sha = store_module(domain, &mut conn, actor, 0, module)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    audit::append(
        &tx,
        actor,
        "module.stored",
        &format!("module:{sha}"),
        json!({"bytes": module.len()}),
    )?;
    tx.commit()?;
    module_record(&conn, &sha)
}

/// A stored module's record.
pub fn module_record(conn: &Connection, sha256: &str) -> Result<ModuleRecord> {
    conn.query_row(
        "SELECT sha256, size, stored_at FROM modules WHERE sha256 = ?1",
        params![sha256],
        |r| {
            Ok(ModuleRecord {
                sha256: r.get(0)?,
                size: r.get(1)?,
                stored_at: r.get(2)?,
            })
        },
    )
    .optional()?
    .ok_or_else(|| Error::NotFound(format!("module {sha256}")))
}

/// The bytes of a stored module, by its SHA-256 (checked again on reading).
pub fn module_bytes(domain: &Domain, sha256: &str) -> Result<Vec<u8>> {
    let plain = sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit());
    if !plain {
        return Err(Error::NotFound(format!("module `{sha256}`")));
    }
    let sha256 = sha256.to_ascii_lowercase();
    module_record(&domain.conn()?, &sha256)?;
    let bytes = fs::read(domain.layout().modules().join(format!("{sha256}.wasm")))?;
    if sha256_hex(&bytes) != sha256 {
        return Err(Error::Verify(format!(
            "the stored module {sha256} does not match its hash"
        )));
    }
    Ok(bytes)
}

/// A claimed job, ready to run.
#[derive(Debug)]
pub struct Ready {
    job_id: String,
    scenario_id: i64,
    submitter: String,
    module_sha256: String,
    params_json: String,
    limits: JobLimits,
}

impl Ready {
    /// The job's id.
    pub fn id(&self) -> &str {
        &self.job_id
    }
}

/// What claiming a job gave.
#[derive(Debug)]
pub enum Claimed {
    /// The job is this runner's to run.
    Ready(Ready),
    /// The job could not start (its scenario is no longer usable, a stop came into force,
    /// its developer was suspended, or it was cancelled meanwhile) and has ended.
    Ended(JobReport),
}

/// Claims a queued job for this process. Refuses (conflict) a job that is not queued.
pub fn claim(domain: &Domain, job_id: &str) -> Result<Claimed> {
    let mut conn = domain.conn()?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let n = tx.execute(
        "UPDATE jobs SET status = 'running', started_at = ?2, runner = ?3 WHERE id = ?1 AND status = 'queued'",
        params![job_id, store::now(), runner()],
    )?;
    if n == 0 {
        let status: Option<String> = tx
            .query_row(
                "SELECT status FROM jobs WHERE id = ?1",
                params![job_id],
                |r| r.get(0),
            )
            .optional()?;
        return Err(match status {
            None => Error::NotFound(format!("job `{job_id}`")),
            Some(s) => Error::Conflict(format!("job {job_id} is {s}, not queued")),
        });
    }
    start(domain, tx, job_id)
}

/// Claims the oldest queued job of the domain, if there is one.
pub fn claim_next(domain: &Domain) -> Result<Option<Claimed>> {
    let mut conn = domain.conn()?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let id: Option<String> = tx
        .query_row(
            "UPDATE jobs SET status = 'running', started_at = ?1, runner = ?2
             WHERE id = (SELECT id FROM jobs WHERE status = 'queued' ORDER BY created_at, rowid LIMIT 1)
             RETURNING id",
            params![store::now(), runner()],
            |r| r.get(0),
        )
        .optional()?;
    match id {
        Some(id) => start(domain, tx, &id).map(Some),
        None => Ok(None),
    }
}

/// The job has just been claimed in `tx`: checks again what may have changed while it was
/// queued, then records `job.started` (or ends the job) and commits.
fn start(domain: &Domain, tx: rusqlite::Transaction<'_>, job_id: &str) -> Result<Claimed> {
    let (scenario_id, submitter, module_sha256, params_json, limits_json, cancel_by): (
        i64,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
    ) = tx.query_row(
        "SELECT scenario_id, submitter, module_sha256, params_json, limits_json, cancel_requested_by FROM jobs WHERE id = ?1",
        params![job_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
    )?;
    let limits: JobLimits = match limits_json {
        Some(text) => serde_json::from_str(&text)?,
        None => JobLimits::default(),
    };
    let record = scenarios::get(&tx, scenario_id)?;
    let refusal = if let Some(by) = cancel_by {
        Some(Error::Cancelled(format!(
            "cancelled by `{by}` before it started"
        )))
    } else if let Err(e) = identity::require(&tx, &submitter, Role::Developer) {
        Some(e)
    } else if let Err(e) = scenarios::check_usable(&record, chrono::Utc::now().date_naive()) {
        Some(e)
    } else {
        crate::stops::in_force(&tx, scenario_id, &submitter)?.map(Error::Stopped)
    };
    if let Some(e) = refusal {
        let report = end(&tx, job_id, &e, &RunStats::default())?;
        tx.commit()?;
        domain.host().forget(job_id);
        return Ok(Claimed::Ended(report));
    }
    audit::append(
        &tx,
        "system",
        "job.started",
        &format!("job:{job_id}"),
        json!({"scenario_id": scenario_id, "module_sha256": module_sha256, "limits": limits, "runner": runner()}),
    )?;
    tx.commit()?;
    Ok(Claimed::Ready(Ready {
        job_id: job_id.to_string(),
        scenario_id,
        submitter,
        module_sha256,
        params_json,
        limits,
    }))
}

/// Runs a claimed job to its end: stages its outputs, or records why it failed or that it
/// was cancelled.
pub fn run_claimed(domain: &Domain, ready: Ready) -> Result<JobReport> {
    let mut conn = domain.conn()?;
    let job_id = ready.job_id.clone();
    let ran = (|| {
        // A module compiled already (a repeat job) is not read again.
        let pre = domain.host().prepare_with(&ready.module_sha256, || {
            module_bytes(domain, &ready.module_sha256)
        })?;
        let ctx = JobContext {
            domain: domain.clone(),
            scenario_id: ready.scenario_id,
            job_id: job_id.clone(),
            actor: ready.submitter.clone(),
            params_json: ready.params_json.clone(),
        };
        Ok(domain.host().run(&pre, ctx, &ready.limits))
    })();
    let (outcome, stats) = match ran {
        Ok(ran) => ran,
        Err(e) => (Err(e), RunStats::default()),
    };
    let staged = outcome.and_then(|o| {
        stage(
            domain,
            &mut conn,
            &job_id,
            &ready.submitter,
            ready.scenario_id,
            o,
            &stats,
        )
    });
    domain.host().forget(&job_id);
    match staged {
        Ok(outputs) => Ok(JobReport {
            id: job_id,
            status: "succeeded".into(),
            error_kind: None,
            error: None,
            fuel_used: stats.fuel_used,
            queries: stats.queries,
            outputs,
            logs: stats.logs,
        }),
        Err(e) => {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let report = end(&tx, &job_id, &e, &stats)?;
            tx.commit()?;
            Ok(report)
        }
    }
}

/// Records a job's end without outputs (failed or cancelled) in `tx`.
fn end(tx: &Connection, job_id: &str, e: &Error, stats: &RunStats) -> Result<JobReport> {
    let kind = error_kind(e);
    let text = e.to_string();
    let status = if matches!(e, Error::Cancelled(_)) {
        "cancelled"
    } else {
        "failed"
    };
    tx.execute(
        "UPDATE jobs SET status = ?2, error_kind = ?3, error = ?4, fuel_used = ?5, queries = ?6, logs_json = ?7, finished_at = ?8 WHERE id = ?1",
        params![
            job_id,
            status,
            kind,
            text,
            stats.fuel_used as i64,
            stats.queries,
            serde_json::to_string(&stats.logs)?,
            store::now()
        ],
    )?;
    audit::append(
        tx,
        "system",
        &format!("job.{status}"),
        &format!("job:{job_id}"),
        json!({"error_kind": kind, "error": text, "fuel_used": stats.fuel_used, "queries": stats.queries, "emitted_not_staged": stats.emitted, "logs": stats.logs}),
    )?;
    Ok(JobReport {
        id: job_id.to_string(),
        status: status.into(),
        error_kind: Some(kind),
        error: Some(text),
        fuel_used: stats.fuel_used,
        queries: stats.queries,
        outputs: Vec::new(),
        logs: stats.logs.clone(),
    })
}

/// Cancels a job: its submitter, an operator or a supervisor. A queued job ends at once;
/// a running one is interrupted within a tick if this process runs it, and gets no further
/// answers from the mediator wherever it runs (the request is recorded on the job).
pub fn cancel(
    domain: &Domain,
    actor: &str,
    job_id: &str,
    reason: Option<&str>,
) -> Result<JobRecord> {
    let mut conn = domain.conn()?;
    let p = identity::find(&conn, actor)?
        .ok_or_else(|| Error::Forbidden(format!("unknown principal `{actor}`")))?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (submitter, status): (String, String) = tx
        .query_row(
            "SELECT submitter, status FROM jobs WHERE id = ?1",
            params![job_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .ok_or_else(|| Error::NotFound(format!("job `{job_id}`")))?;
    let may = submitter == actor || matches!(p.role, Role::Operator | Role::Supervisor);
    if !may {
        return Err(Error::Forbidden(format!(
            "job {job_id} was submitted by someone else"
        )));
    }
    if submitter != actor && reason.is_none_or(|r| r.trim().is_empty()) {
        return Err(Error::Conflict(
            "cancelling someone else's job needs a reason".into(),
        ));
    }
    match status.as_str() {
        "queued" => {
            tx.execute(
                "UPDATE jobs SET status = 'cancelled', error_kind = 'cancelled', error = ?2,
                     cancel_requested_by = ?3, finished_at = ?4 WHERE id = ?1",
                params![
                    job_id,
                    format!("cancelled by `{actor}` before it started"),
                    actor,
                    store::now()
                ],
            )?;
            audit::append(
                &tx,
                actor,
                "job.cancelled",
                &format!("job:{job_id}"),
                json!({"from": "queued", "reason": reason}),
            )?;
            tx.commit()?;
        }
        "running" => {
            tx.execute(
                "UPDATE jobs SET cancel_requested_by = ?2 WHERE id = ?1",
                params![job_id, actor],
            )?;
            let interrupted = domain.host().interrupt(
                domain.layout().root(),
                &StopTarget::Job(job_id.to_string()),
                Interrupt::Cancel,
            );
            audit::append(
                &tx,
                actor,
                "job.cancel_requested",
                &format!("job:{job_id}"),
                json!({"reason": reason, "interrupted": interrupted}),
            )?;
            tx.commit()?;
        }
        other => {
            return Err(Error::Conflict(format!(
                "job {job_id} is {other}; only a queued or running job can be cancelled"
            )));
        }
    }
    job(&conn, job_id)
}

/// Ends a job this process was running whose end could not be recorded (a store error, a
/// bug): failed as `internal`, if it is still recorded as running, with nothing staged.
pub fn abandon(domain: &Domain, job_id: &str, why: &str) -> Result<()> {
    let mut conn = domain.conn()?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let n = tx.execute(
        "UPDATE jobs SET status = 'failed', error_kind = 'internal', error = ?2, finished_at = ?3
         WHERE id = ?1 AND status = 'running'",
        params![job_id, why, store::now()],
    )?;
    if n > 0 {
        audit::append(
            &tx,
            "system",
            "job.failed",
            &format!("job:{job_id}"),
            json!({"error_kind": "internal", "error": why}),
        )?;
    }
    tx.commit()?;
    domain.host().forget(job_id);
    Ok(())
}

/// Ends the jobs recorded as running by a process of this host that no longer exists (a
/// runner that crashed or was killed): each is failed as `interrupted`, recorded. Jobs
/// running in live processes, or on other hosts, are left alone. Returns their ids.
pub fn recover(domain: &Domain) -> Result<Vec<String>> {
    let mut conn = domain.conn()?;
    let me = runner();
    let host = me.rsplit_once(':').map_or(me, |(h, _)| h).to_string();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let running: Vec<(String, Option<String>)> = tx
        .prepare("SELECT id, runner FROM jobs WHERE status = 'running'")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<std::result::Result<_, _>>()?;
    let mut ended = Vec::new();
    for (id, runner) in running {
        let dead = match runner.as_deref().and_then(|r| r.rsplit_once(':')) {
            Some((h, pid)) if h == host => {
                pid != std::process::id().to_string()
                    && !std::path::Path::new("/proc").join(pid).exists()
            }
            _ => false,
        };
        if dead {
            let e = Error::Internal("its runner ended before the job did".into());
            tx.execute(
                "UPDATE jobs SET status = 'failed', error_kind = 'interrupted', error = ?2, finished_at = ?3 WHERE id = ?1",
                params![id, e.to_string(), store::now()],
            )?;
            audit::append(
                &tx,
                "system",
                "job.failed",
                &format!("job:{id}"),
                json!({"error_kind": "interrupted", "error": e.to_string(), "runner": runner}),
            )?;
            ended.push(id);
        }
    }
    tx.commit()?;
    Ok(ended)
}

/// The log lines of a job: as they come while it runs in this process, as recorded once
/// it has ended.
pub fn logs(domain: &Domain, conn: &Connection, job_id: &str) -> Result<Vec<LogLine>> {
    if let Some(lines) = domain.host().logs(domain.layout().root(), job_id) {
        return Ok(lines);
    }
    let logs: Option<Option<String>> = conn
        .query_row(
            "SELECT logs_json FROM jobs WHERE id = ?1",
            params![job_id],
            |r| r.get(0),
        )
        .optional()?;
    match logs {
        None => Err(Error::NotFound(format!("job `{job_id}`"))),
        Some(None) => Ok(Vec::new()),
        Some(Some(text)) => Ok(serde_json::from_str(&text)?),
    }
}

/// Writes the outputs to the job's staging folder, runs the automated checks and records
/// everything in one transaction. If any step fails, the folder is removed.
fn stage(
    domain: &Domain,
    conn: &mut Connection,
    job_id: &str,
    actor: &str,
    scenario_id: i64,
    outcome: crate::wasm::RunOutcome,
    stats: &RunStats,
) -> Result<Vec<OutputRecord>> {
    let dir = domain.layout().staging().join(job_id);
    let tmp = domain.layout().staging().join(format!(".{job_id}.tmp"));
    fs::create_dir_all(&tmp)?;
    let result = (|| {
        let mut records = Vec::new();
        let mut ctx = check_context(domain, conn, scenario_id, job_id)?;
        // The job's tables are compared with each other too: released together, two of
        // them could form a differencing pair.
        for o in &outcome.outputs {
            if o.kind == crate::wasm::OutputKind::Table
                && let Ok(batches) = crate::wasm::decode_ipc_public(&o.bytes)
            {
                ctx.released_tables
                    .push((format!("{} (this job)", o.name), batches));
            }
        }
        for o in &outcome.outputs {
            let ext = o.kind.extension();
            let file_name = format!("{}.{ext}", o.name);
            fs::write(tmp.join(&file_name), &o.bytes)?;
            let report = {
                // Not compared with itself.
                let own = format!("{} (this job)", o.name);
                let saved: Vec<(String, Vec<arrow::array::RecordBatch>)> = ctx
                    .released_tables
                    .iter()
                    .filter(|(n, _)| *n == own)
                    .cloned()
                    .collect();
                ctx.released_tables.retain(|(n, _)| *n != own);
                let report = checks::run(&ctx, o);
                ctx.released_tables.extend(saved);
                report?
            };
            records.push(OutputRecord {
                id: crate::new_id("out"),
                job_id: job_id.to_string(),
                name: o.name.clone(),
                kind: o.kind.as_str().to_string(),
                file_name,
                sha256: sha256_hex(&o.bytes),
                bytes: o.bytes.len() as i64,
                status: if report.failed() {
                    "flagged"
                } else {
                    "checked"
                }
                .to_string(),
                checks: Some(serde_json::to_value(&report)?),
            });
        }
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for r in &records {
            tx.execute(
                "INSERT INTO outputs (id, job_id, name, kind, file_name, sha256, bytes, status, checks_json, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    r.id,
                    r.job_id,
                    r.name,
                    r.kind,
                    r.file_name,
                    r.sha256,
                    r.bytes,
                    r.status,
                    r.checks.as_ref().map(|c| c.to_string()),
                    store::now()
                ],
            )?;
            audit::append(
                &tx,
                actor,
                "output.staged",
                &format!("output:{}", r.id),
                json!({"job_id": job_id, "name": r.name, "kind": r.kind, "sha256": r.sha256, "bytes": r.bytes}),
            )?;
            audit::append(
                &tx,
                "system",
                "output.checked",
                &format!("output:{}", r.id),
                json!({"job_id": job_id, "from": "staged", "to": r.status, "checks": r.checks}),
            )?;
        }
        tx.execute(
            "UPDATE jobs SET status = 'succeeded', fuel_used = ?2, queries = ?3, logs_json = ?4, finished_at = ?5 WHERE id = ?1",
            params![
                job_id,
                stats.fuel_used as i64,
                stats.queries,
                serde_json::to_string(&stats.logs)?,
                store::now()
            ],
        )?;
        audit::append(
            &tx,
            "system",
            "job.succeeded",
            &format!("job:{job_id}"),
            json!({"scenario_id": scenario_id, "outputs": records.len(), "fuel_used": stats.fuel_used, "queries": stats.queries, "logs": stats.logs}),
        )?;
        fs::rename(&tmp, &dir)?;
        if let Err(e) = tx.commit() {
            let _ = fs::remove_dir_all(&dir);
            return Err(e.into());
        }
        Ok(records)
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}

/// Reads a job's staged outputs.
pub fn outputs(conn: &Connection, job_id: &str) -> Result<Vec<OutputRecord>> {
    let mut stmt =
        conn.prepare("SELECT id FROM outputs WHERE job_id = ?1 ORDER BY created_at, name")?;
    let ids: Vec<String> = stmt
        .query_map(params![job_id], |r| r.get(0))?
        .collect::<std::result::Result<_, _>>()?;
    ids.iter().map(|id| output(conn, id)).collect()
}

/// Reads one output.
pub fn output(conn: &Connection, id: &str) -> Result<OutputRecord> {
    conn.query_row(
        "SELECT id, job_id, name, kind, file_name, sha256, bytes, status, checks_json FROM outputs WHERE id = ?1",
        params![id],
        |r| {
            Ok(OutputRecord {
                id: r.get(0)?,
                job_id: r.get(1)?,
                name: r.get(2)?,
                kind: r.get(3)?,
                file_name: r.get(4)?,
                sha256: r.get(5)?,
                bytes: r.get(6)?,
                status: r.get(7)?,
                checks: r
                    .get::<_, Option<String>>(8)?
                    .and_then(|s| serde_json::from_str(&s).ok()),
            })
        },
    )
    .optional()?
    .ok_or_else(|| Error::NotFound(format!("output `{id}`")))
}

/// The staged file of an output.
pub fn staged_file(domain: &Domain, o: &OutputRecord) -> Result<Vec<u8>> {
    if !crate::plain_file_name(&o.job_id) || !crate::plain_file_name(&o.file_name) {
        return Err(Error::Internal(format!(
            "output {} names no plain file",
            o.id
        )));
    }
    Ok(fs::read(
        domain.layout().staging().join(&o.job_id).join(&o.file_name),
    )?)
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
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub status: String,
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
}

const JOB_COLUMNS: &str = "id, scenario_id, submitter, module_sha256, status, error_kind, error, fuel_used, queries, limits_json, cancel_requested_by, created_at, started_at, finished_at";

fn job_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRecord> {
    Ok(JobRecord {
        id: r.get(0)?,
        scenario_id: r.get(1)?,
        submitter: r.get(2)?,
        module_sha256: r.get(3)?,
        status: r.get(4)?,
        error_kind: r.get(5)?,
        error: r.get(6)?,
        fuel_used: r.get(7)?,
        queries: r.get(8)?,
        limits: r
            .get::<_, Option<String>>(9)?
            .and_then(|s| serde_json::from_str(&s).ok()),
        cancel_requested_by: r.get(10)?,
        created_at: r.get(11)?,
        started_at: r.get(12)?,
        finished_at: r.get(13)?,
        queue_position: None,
        progress: None,
        outputs: Vec::new(),
    })
}

fn complete(conn: &Connection, mut record: JobRecord) -> Result<JobRecord> {
    if record.status == "queued" {
        record.queue_position = Some(conn.query_row(
            "SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND (created_at, rowid) < (SELECT created_at, rowid FROM jobs WHERE id = ?1)",
            params![record.id],
            |r| r.get(0),
        )?);
    }
    record.outputs = outputs(conn, &record.id)?;
    Ok(record)
}

/// Reads a job (without its live progress: see [`job_in`]).
pub fn job(conn: &Connection, id: &str) -> Result<JobRecord> {
    let record = conn
        .query_row(
            &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
            params![id],
            job_row,
        )
        .optional()?
        .ok_or_else(|| Error::NotFound(format!("job `{id}`")))?;
    complete(conn, record)
}

/// Reads a job with its progress if it is running in this process.
pub fn job_in(domain: &Domain, conn: &Connection, id: &str) -> Result<JobRecord> {
    let mut record = job(conn, id)?;
    if record.status == "running" {
        record.progress = domain.host().progress(domain.layout().root(), id);
    }
    Ok(record)
}

/// Which jobs to list.
#[derive(Debug, Clone, Default)]
pub struct JobFilter<'a> {
    /// Only this submitter's.
    pub submitter: Option<&'a str>,
    /// Only this scenario's.
    pub scenario_id: Option<i64>,
    /// Only in this status.
    pub status: Option<&'a str>,
    /// At most this many, newest first (default 100).
    pub limit: Option<i64>,
}

/// Jobs, newest first.
pub fn list(domain: &Domain, conn: &Connection, filter: &JobFilter<'_>) -> Result<Vec<JobRecord>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs
         WHERE (?1 IS NULL OR submitter = ?1) AND (?2 IS NULL OR scenario_id = ?2) AND (?3 IS NULL OR status = ?3)
         ORDER BY created_at DESC, rowid DESC LIMIT ?4"
    ))?;
    let rows: Vec<JobRecord> = stmt
        .query_map(
            params![
                filter.submitter,
                filter.scenario_id,
                filter.status,
                filter.limit.unwrap_or(100).clamp(1, 1000)
            ],
            job_row,
        )?
        .collect::<std::result::Result<_, _>>()?;
    rows.into_iter()
        .map(|r| {
            let mut r = complete(conn, r)?;
            if r.status == "running" {
                r.progress = domain.host().progress(domain.layout().root(), &r.id);
            }
            Ok(r)
        })
        .collect()
}

/// How many jobs wait in the queue, in all and of one submitter.
pub fn queued(conn: &Connection, submitter: Option<&str>) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND (?1 IS NULL OR submitter = ?1)",
        params![submitter],
        |r| r.get(0),
    )?)
}

/// Every output, newest first.
pub fn all_outputs(conn: &Connection) -> Result<Vec<OutputRecord>> {
    let ids: Vec<String> = conn
        .prepare("SELECT id FROM outputs ORDER BY created_at DESC")?
        .query_map([], |r| r.get(0))?
        .collect::<std::result::Result<_, _>>()?;
    ids.iter().map(|id| output(conn, id)).collect()
}

/// What the automated checks of a job's outputs compare them with: the scenario's rules,
/// the rare-value sets of its datasets, every answer the job received, what threshold
/// answers withheld, and the tables already released in the scenario.
pub(crate) fn check_context(
    domain: &Domain,
    conn: &Connection,
    scenario_id: i64,
    job_id: &str,
) -> Result<checks::CheckContext> {
    let record = scenarios::get(conn, scenario_id)?;
    let mut versions = Vec::new();
    for d in &record.spec.datasets {
        versions.push(crate::catalog::get(conn, domain, &d.name)?);
    }
    let policies: Vec<&sandbox_policies::Policy> = versions.iter().map(|v| &v.policy).collect();
    let mut ctx = checks::CheckContext {
        rules: Some(checks::Rules::strictest(
            &policies,
            record.spec.mode == sandbox_policies::Mode::Threshold,
        )),
        hasher: Some(crate::catalog::values::ValueHasher::new(
            &crate::keys::pseudonym_secret(domain.layout())?,
        )?),
        ..Default::default()
    };
    for v in &versions {
        ctx.value_sets
            .extend(crate::catalog::values::load(&v.name, &v.path)?);
    }
    let answers: Vec<(String, Option<String>)> = conn
        .prepare(
            "SELECT answer_json, withheld_json FROM queries
             WHERE job_id = ?1 AND status = 'answered' AND answer_json IS NOT NULL",
        )?
        .query_map(params![job_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<std::result::Result<_, _>>()?;
    for (answer, withheld) in &answers {
        ctx.receive_answer_json(answer);
        if let Some(w) = withheld
            && let Ok(w) = serde_json::from_str::<checks::Withheld>(w)
        {
            ctx.withheld.push(w);
        }
    }
    ctx.seal();
    let released: Vec<(String, String, String)> = conn
        .prepare(
            "SELECT o.job_id, o.file_name, o.name FROM outputs o JOIN jobs j ON j.id = o.job_id
             WHERE j.scenario_id = ?1 AND o.status = 'released' AND o.kind = 'table'
             ORDER BY o.created_at",
        )?
        .query_map(params![scenario_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<std::result::Result<_, _>>()?;
    for (job, file, name) in released {
        let path = domain.layout().staging().join(&job).join(&file);
        let bytes = fs::read(&path)?;
        let batches = crate::wasm::decode_ipc_public(&bytes)?;
        ctx.released_tables
            .push((format!("{name} (job {job})"), batches));
    }
    Ok(ctx)
}
