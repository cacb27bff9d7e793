//! Jobs: a developer's module run against a scenario.
//!
//! A job either succeeds and stages its outputs (written to `staging/<job-id>/`, checked,
//! recorded), or fails with a typed error and stages nothing.

use std::fs;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::json;

use crate::identity::{self, Role};
use crate::review::checks;
use crate::wasm::{JobContext, JobLimits, RunStats};
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
#[derive(Debug, Clone, Serialize)]
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
    /// `succeeded` or `failed`.
    pub status: String,
    /// Error kind when failed (e.g. `limit:fuel`, `guest`).
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
        _ => "internal".into(),
    }
}

/// Submits and runs a job. Validation failures (role, scenario, module) are refused
/// before a job exists; a failure while running ends the job as `failed`.
pub fn submit(domain: &Domain, actor: &str, sub: &Submission<'_>) -> Result<JobReport> {
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
    let sha = sha256_hex(sub.module);
    let pre = match domain.host().prepare(&sha, sub.module) {
        Ok(pre) => pre,
        Err(e) => {
            let tx = conn.transaction()?;
            audit::append(
                &tx,
                actor,
                "module.refused",
                &format!("module:{sha}"),
                json!({"scenario_id": record.id, "reason": e.to_string()}),
            )?;
            tx.commit()?;
            return Err(e);
        }
    };
    let module_path = domain.layout().modules().join(format!("{sha}.wasm"));
    if !module_path.exists() {
        let tmp = domain.layout().modules().join(format!(".{sha}.tmp"));
        fs::write(&tmp, sub.module)?;
        fs::rename(&tmp, &module_path)?;
    }
    let job_id = crate::new_id("job");
    {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT OR IGNORE INTO modules (sha256, size, stored_at) VALUES (?1, ?2, ?3)",
            params![sha, sub.module.len() as i64, store::now()],
        )?;
        tx.execute(
            "INSERT INTO jobs (id, scenario_id, submitter, module_sha256, params_json, status, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6)",
            params![job_id, record.id, actor, sha, sub.params_json, store::now()],
        )?;
        audit::append(
            &tx,
            actor,
            "job.started",
            &format!("job:{job_id}"),
            json!({"scenario_id": record.id, "module_sha256": sha, "params": params, "limits": limits}),
        )?;
        tx.commit()?;
    }
    let ctx = JobContext {
        domain: domain.clone(),
        scenario_id: record.id,
        job_id: job_id.clone(),
        actor: actor.to_string(),
        params_json: sub.params_json.to_string(),
    };
    let (outcome, stats) = domain.host().run(&pre, ctx, &limits);
    let staged =
        outcome.and_then(|o| stage(domain, &mut conn, &job_id, actor, record.id, o, &stats));
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
            let kind = error_kind(&e);
            let text = e.to_string();
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            tx.execute(
                "UPDATE jobs SET status = 'failed', error_kind = ?2, error = ?3, fuel_used = ?4, finished_at = ?5 WHERE id = ?1",
                params![job_id, kind, text, stats.fuel_used as i64, store::now()],
            )?;
            audit::append(
                &tx,
                "system",
                "job.failed",
                &format!("job:{job_id}"),
                json!({"error_kind": kind, "error": text, "fuel_used": stats.fuel_used, "queries": stats.queries, "emitted_not_staged": stats.emitted, "logs": stats.logs}),
            )?;
            tx.commit()?;
            Ok(JobReport {
                id: job_id,
                status: "failed".into(),
                error_kind: Some(kind),
                error: Some(text),
                fuel_used: stats.fuel_used,
                queries: stats.queries,
                outputs: Vec::new(),
                logs: stats.logs,
            })
        }
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
            "UPDATE jobs SET status = 'succeeded', fuel_used = ?2, finished_at = ?3 WHERE id = ?1",
            params![job_id, stats.fuel_used as i64, store::now()],
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

/// A job as recorded, with its outputs.
#[derive(Debug, Clone, Serialize)]
pub struct JobRecord {
    /// Job id.
    pub id: String,
    /// Scenario id.
    pub scenario_id: i64,
    /// Who submitted it.
    pub submitter: String,
    /// SHA-256 of the module.
    pub module_sha256: String,
    /// `running`, `succeeded` or `failed`.
    pub status: String,
    /// Error kind when failed.
    pub error_kind: Option<String>,
    /// Error text when failed.
    pub error: Option<String>,
    /// Fuel used, once finished.
    pub fuel_used: Option<i64>,
    /// When it was submitted.
    pub created_at: String,
    /// When it ended.
    pub finished_at: Option<String>,
    /// Outputs staged.
    pub outputs: Vec<OutputRecord>,
}

/// Reads a job.
pub fn job(conn: &Connection, id: &str) -> Result<JobRecord> {
    let mut record = conn
        .query_row(
            "SELECT id, scenario_id, submitter, module_sha256, status, error_kind, error, fuel_used, created_at, finished_at
             FROM jobs WHERE id = ?1",
            params![id],
            |r| {
                Ok(JobRecord {
                    id: r.get(0)?,
                    scenario_id: r.get(1)?,
                    submitter: r.get(2)?,
                    module_sha256: r.get(3)?,
                    status: r.get(4)?,
                    error_kind: r.get(5)?,
                    error: r.get(6)?,
                    fuel_used: r.get(7)?,
                    created_at: r.get(8)?,
                    finished_at: r.get(9)?,
                    outputs: Vec::new(),
                })
            },
        )
        .optional()?
        .ok_or_else(|| Error::NotFound(format!("job `{id}`")))?;
    record.outputs = outputs(conn, id)?;
    Ok(record)
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
