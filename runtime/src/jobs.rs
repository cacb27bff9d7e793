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
use std::sync::Arc;

use sandbox_core::audit::{EventKind, Subject};
use sandbox_core::authz::Action;
use sandbox_core::job::{Interrupt, LimitRequest, StopTarget};
use sandbox_core::refusal::Rule;
use sandbox_core::{JobStatus, OutputStatus, new_id};
use sandbox_host::{JobContext, RunOutcome, RunStats};
use sandbox_store::authz::{self, On};
use sandbox_store::{Conn, Tx, audit, jobs as stored, outputs as staged, scenarios};
use serde::Serialize;
use serde_json::json;

pub use sandbox_core::job::{JobLimits, LogLine, ProgressReport};
pub use sandbox_store::jobs::{JobFilter, JobRecord, ModuleRecord};
pub use sandbox_store::outputs::OutputRecord;

use crate::disclosure;
use crate::{Domain, Error, Result};

/// A job submission.
#[derive(Debug, Clone)]
pub struct Submission<'a> {
    /// Scenario id or name.
    pub scenario: &'a str,
    /// Module bytes.
    pub module: &'a [u8],
    /// Parameters as JSON text (`{}` when none).
    pub params_json: &'a str,
    /// The limits asked for, within the scenario's grant (none: the grant).
    pub limits: LimitRequest,
    /// The job this one answers: one of the developer's own jobs under the same scenario
    /// on which a reviewer requested changes (the review request's thread continues).
    pub resubmits: Option<&'a str>,
}

/// The result of a job.
#[derive(Debug, Clone, Serialize)]
pub struct JobReport {
    /// Job id.
    pub id: String,
    /// `succeeded`, `failed` or `cancelled`.
    pub status: JobStatus,
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
    pub logs: Vec<LogLine>,
}

fn error_kind(e: &Error) -> String {
    match e {
        Error::Limit { limit, .. } => format!("limit:{limit}"),
        Error::Guest(_) => "guest".into(),
        Error::Refused(r) if r.rule == Rule::BudgetExhausted => "budget".into(),
        Error::Refused(_) => "refused".into(),
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
    let mut report = match queue(domain, actor, sub, true)? {
        Queued::Claimed(Claimed::Ready(ready)) => run_claimed(domain, ready)?,
        Queued::Claimed(Claimed::Ended(report)) => report,
        Queued::Waiting(_) => return Err(Error::Internal("the job was not claimed".into())),
    };
    // The report goes back to its developer: its log lines as a developer reads them.
    let conn = domain.conn()?;
    let scenario_id = scenarios::resolve(&conn, sub.scenario)?.id;
    report.logs = readable_logs(&conn, scenario_id, &report.id, report.logs)?;
    Ok(report)
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
    authz::authorize(&conn, actor, Action::JobSubmit, On::Domain)?;
    let record = scenarios::resolve(&conn, sub.scenario)?;
    let on = On::Work {
        scenario: &record,
        submitter: actor,
    };
    match authz::authorize(&conn, actor, Action::JobSubmit, on).map_err(Error::from) {
        Ok(_) => {}
        Err(Error::Stopped(stop)) => {
            let tx = conn.write()?;
            audit::append(
                &tx,
                actor,
                EventKind::JobRefused,
                &Subject::Scenario(record.id),
                json!({"reason": stop}),
            )?;
            tx.commit()?;
            return Err(Error::Stopped(stop));
        }
        Err(e) => return Err(e),
    }
    let params: serde_json::Value = serde_json::from_str(sub.params_json)
        .map_err(|e| Error::Guest(format!("params are not JSON: {e}")))?;
    if !params.is_object() {
        return Err(Error::Guest("params must be a JSON object".into()));
    }
    // What the submission asks for, within the scenario's grant.
    let limits = sub.limits.within(&JobLimits::granted(&record.spec.limits));
    if let Some(earlier) = sub.resubmits {
        may_resubmit(&conn, actor, record.id, earlier)?;
    }
    let sha = store_module(domain, &mut conn, actor, record.id, sub.module)?;
    let job_id = new_id("job");
    let tx = conn.write()?;
    stored::insert_queued(
        &tx,
        &stored::NewJob {
            id: &job_id,
            scenario_id: record.id,
            submitter: actor,
            module_sha256: &sha,
            params_json: sub.params_json,
            limits: &limits,
        },
    )?;
    if let Some(earlier) = sub.resubmits {
        // Checked again inside the transaction: two resubmissions cannot both answer it.
        may_resubmit(&tx, actor, record.id, earlier)?;
        sandbox_store::reviews::link_resubmission(&tx, &job_id, earlier)?;
    }
    audit::append(
        &tx,
        actor,
        EventKind::JobQueued,
        &Subject::Job(job_id.clone()),
        json!({"scenario_id": record.id, "module_sha256": sha, "params": params, "limits": limits, "resubmits": sub.resubmits}),
    )?;
    if claim_now {
        stored::claim(
            &tx,
            &job_id,
            runner(),
            &stored::lease_until(domain.job_lease()),
        )?;
        return Ok(Queued::Claimed(start(domain, tx, &job_id)?));
    }
    tx.commit()?;
    Ok(Queued::Waiting(Box::new(stored::get(&conn, &job_id)?)))
}

/// Whether `actor` may answer job `earlier` with a new job under scenario `scenario_id`:
/// it is the actor's own, under the same scenario, a reviewer requested changes on one of
/// its outputs, and no job answered it yet.
fn may_resubmit(conn: &Conn, actor: &str, scenario_id: i64, earlier: &str) -> Result<()> {
    let job = stored::get(conn, earlier)?;
    if job.submitter != actor {
        return Err(Error::Forbidden(format!(
            "job {earlier} was submitted by someone else"
        )));
    }
    if job.scenario_id != scenario_id {
        return Err(Error::Invalid(format!(
            "job {earlier} ran under scenario {}; a resubmission runs under the same scenario",
            job.scenario_id
        )));
    }
    let asked = staged::of_job(conn, earlier)?
        .iter()
        .any(|o| o.status == OutputStatus::ChangesRequested);
    if !asked {
        return Err(Error::Review(format!(
            "no reviewer requested changes on job {earlier}; submit a new job instead"
        )));
    }
    if let Some(next) = sandbox_store::reviews::answered_by(conn, earlier)? {
        return Err(Error::Conflict(format!(
            "job {earlier} was already answered by job {next}; resubmit that one if changes are requested on it"
        )));
    }
    Ok(())
}

/// Validates, compiles (into the host's cache) and stores a module; refusals are audited.
/// Returns its hash (the suite's: SHA-256, or SM3).
fn store_module(
    domain: &Domain,
    conn: &mut Conn,
    actor: &str,
    scenario_id: i64,
    module: &[u8],
) -> Result<String> {
    let sha = domain.keys().suite().hash_hex(module);
    if let Err(e) = domain.host().prepare(&sha, module) {
        let tx = conn.write()?;
        audit::append(
            &tx,
            actor,
            EventKind::ModuleRefused,
            &Subject::Module(sha.clone()),
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
            .join(format!(".{sha}.{}.tmp", new_id("w")));
        fs::write(&tmp, module)?;
        fs::rename(&tmp, &module_path)?;
    }
    stored::insert_module(conn, &sha, module.len())?;
    Ok(sha)
}

/// A developer uploads a module ahead of its jobs: it is validated, compiled and stored,
/// and later submissions may name it by its SHA-256 ([`module_bytes`]).
pub fn upload_module(domain: &Domain, actor: &str, module: &[u8]) -> Result<ModuleRecord> {
    let mut conn = domain.conn()?;
    authz::authorize(&conn, actor, Action::JobSubmit, On::Domain)?;
    let sha = store_module(domain, &mut conn, actor, 0, module)?;
    let tx = conn.write()?;
    audit::append(
        &tx,
        actor,
        EventKind::ModuleStored,
        &Subject::Module(sha.clone()),
        json!({"bytes": module.len()}),
    )?;
    tx.commit()?;
    Ok(stored::module(&conn, &sha)?)
}

/// The bytes of a stored module, by its SHA-256 (checked again on reading).
pub fn module_bytes(domain: &Domain, sha256: &str) -> Result<Vec<u8>> {
    let plain = sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit());
    if !plain {
        return Err(Error::NotFound(format!("module `{sha256}`")));
    }
    let sha256 = sha256.to_ascii_lowercase();
    stored::module(&*domain.conn()?, &sha256)?;
    let bytes = fs::read(domain.layout().modules().join(format!("{sha256}.wasm")))?;
    if domain.keys().suite().hash_hex(&bytes) != sha256 {
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
    job: stored::Claimed,
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
    let tx = conn.write()?;
    if !stored::claim(
        &tx,
        job_id,
        runner(),
        &stored::lease_until(domain.job_lease()),
    )? {
        return Err(match stored::status(&tx, job_id)? {
            None => Error::NotFound(format!("job `{job_id}`")),
            Some(s) => Error::Conflict(format!("job {job_id} is {s}, not queued")),
        });
    }
    start(domain, tx, job_id)
}

/// Claims the oldest queued job of the domain, if there is one. Claims lock the job they
/// take (servers sharing a PostgreSQL store take different jobs, side by side).
pub fn claim_next(domain: &Domain) -> Result<Option<Claimed>> {
    let mut conn = domain.conn()?;
    let tx = conn.write_shared()?;
    match stored::claim_next(&tx, runner(), &stored::lease_until(domain.job_lease()))? {
        Some(id) => start(domain, tx, &id).map(Some),
        None => Ok(None),
    }
}

/// The job has just been claimed in `tx`: checks again what may have changed while it was
/// queued (a cancel, then the one authorization path: its submitter, its scenario, the
/// stops), then records `job.started` (or ends the job) and commits.
fn start(domain: &Domain, tx: Tx<'_>, job_id: &str) -> Result<Claimed> {
    let job = stored::claimed(&tx, job_id)?;
    let record = scenarios::get(&tx, job.scenario_id)?;
    let refusal = if let Some(by) = &job.cancel_requested_by {
        Some(Error::Cancelled(format!(
            "cancelled by `{by}` before it started"
        )))
    } else {
        authz::authorize(
            &tx,
            &job.submitter,
            Action::JobSubmit,
            On::Work {
                scenario: &record,
                submitter: &job.submitter,
            },
        )
        .err()
        .map(Error::from)
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
        EventKind::JobStarted,
        &Subject::Job(job_id.to_string()),
        json!({"scenario_id": job.scenario_id, "module_sha256": job.module_sha256, "limits": job.limits, "runner": runner()}),
    )?;
    tx.commit()?;
    Ok(Claimed::Ready(Ready {
        job_id: job_id.to_string(),
        job,
    }))
}

/// The announcement of an interruption to other servers: `why target`, as
/// [`follow_interrupts`] reads it.
pub(crate) fn announcement(target: &StopTarget, why: Interrupt) -> String {
    let target = match target {
        StopTarget::Job(id) => format!("job:{id}"),
        StopTarget::Scenario(id) => format!("scenario:{id}"),
        StopTarget::Developer(name) => format!("developer:{name}"),
        StopTarget::Domain => "domain".to_string(),
    };
    format!("{} {target}", why as u8)
}

fn announced(payload: &str) -> Option<(StopTarget, Interrupt)> {
    let (why, target) = payload.split_once(' ')?;
    let why = Interrupt::from_u8(why.parse().ok()?)?;
    let target = match target.split_once(':') {
        None if target == "domain" => StopTarget::Domain,
        Some(("job", id)) => StopTarget::Job(id.to_string()),
        Some(("scenario", id)) => StopTarget::Scenario(id.parse().ok()?),
        Some(("developer", name)) => StopTarget::Developer(name.to_string()),
        _ => return None,
    };
    Some((target, why))
}

/// Follows the interruptions other servers of the store announce (a stop, a suspension,
/// a cancel recorded there) and interrupts the jobs they cover that this process runs,
/// until `done` is set; listens again when the connection is lost. Returns at once on
/// SQLite, whose one server interrupts its own jobs.
pub fn follow_interrupts(domain: &Domain, done: &std::sync::atomic::AtomicBool) {
    use std::sync::atomic::Ordering;
    use std::time::Duration;
    while !done.load(Ordering::Relaxed) {
        let listener = match sandbox_store::signals::Listener::listen(domain.layout()) {
            Ok(Some(l)) => l,
            Ok(None) => return,
            // The server not reachable now: the tables stay the truth meanwhile.
            Err(_) => {
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        while !done.load(Ordering::Relaxed) {
            match listener.next(Duration::from_millis(250)) {
                Ok(Some(payload)) => {
                    if let Some((target, why)) = announced(&payload) {
                        domain
                            .host()
                            .interrupt(domain.layout().root(), &target, why);
                    }
                }
                Ok(None) => {}
                Err(_) => break,
            }
        }
    }
}

/// How long a running job is leased at a time unless the domain says otherwise
/// ([`Domain::with_job_lease`]).
pub const JOB_LEASE: std::time::Duration = std::time::Duration::from_secs(30);

/// The lease on a job this process runs, renewed by a thread of its own every third of
/// it until dropped. A renewal also brings what another server recorded: a cancel asked
/// for there interrupts the job here; a job no longer this runner's (its lease lapsed and
/// another server ended it) is interrupted, as it is when the lease could not be renewed
/// before it ran out.
struct Lease {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Lease {
    fn hold(domain: &Domain, job_id: &str) -> Result<Lease> {
        use std::sync::mpsc::{RecvTimeoutError, channel};
        use std::time::Instant;
        let (stop, stopped) = channel::<()>();
        let domain = domain.clone();
        let job = job_id.to_string();
        let lease = domain.job_lease();
        let thread = std::thread::Builder::new()
            .name("sandbox-lease".into())
            .spawn(move || {
                let target = StopTarget::Job(job.clone());
                let interrupt = |why| {
                    domain
                        .host()
                        .interrupt(domain.layout().root(), &target, why)
                };
                let mut held_until = Instant::now() + lease;
                loop {
                    match stopped.recv_timeout(lease / 3) {
                        Err(RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                    let renewed = domain.conn().and_then(|conn| {
                        Ok(stored::renew(
                            &conn,
                            &job,
                            runner(),
                            &stored::lease_until(lease),
                        )?)
                    });
                    match renewed {
                        Ok(stored::Renewal::Renewed) => held_until = Instant::now() + lease,
                        Ok(stored::Renewal::CancelRequested(_)) => {
                            held_until = Instant::now() + lease;
                            interrupt(Interrupt::Cancel);
                        }
                        Ok(stored::Renewal::Lost) => {
                            interrupt(Interrupt::Stop);
                            return;
                        }
                        Err(_) if Instant::now() >= held_until => {
                            interrupt(Interrupt::Stop);
                            return;
                        }
                        Err(_) => {}
                    }
                }
            })
            .map_err(|e| Error::Internal(format!("the job's lease cannot be held: {e}")))?;
        Ok(Lease {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Runs a claimed job to its end: stages its outputs, or records why it failed or that it
/// was cancelled.
pub fn run_claimed(domain: &Domain, ready: Ready) -> Result<JobReport> {
    let mut conn = domain.conn()?;
    let Ready { job_id, job } = ready;
    // Renewed until the job's end is recorded (this function's end).
    let _lease = Lease::hold(domain, &job_id)?;
    let ran = (|| {
        // A module compiled already (a repeat job) is not read again.
        let pre = domain.host().prepare_with(&job.module_sha256, || {
            module_bytes(domain, &job.module_sha256)
        })?;
        let ctx = JobContext {
            port: domain.mediator().clone() as Arc<dyn sandbox_core::port::QueryPort>,
            domain: domain.layout().root().to_path_buf(),
            scenario_id: job.scenario_id,
            job_id: job_id.clone(),
            actor: job.submitter.clone(),
            params_json: job.params_json.clone(),
        };
        Ok(domain.host().run(&pre, ctx, &job.limits))
    })();
    let (outcome, stats) = match ran {
        Ok(ran) => ran,
        Err(e) => (Err(e), RunStats::default()),
    };
    let staged = outcome.and_then(|o| {
        stage(
            domain,
            &mut conn,
            &Staging {
                job_id: &job_id,
                actor: &job.submitter,
                scenario_id: job.scenario_id,
            },
            o,
            &stats,
        )
    });
    domain.host().forget(&job_id);
    match staged {
        Ok(outputs) => Ok(JobReport {
            id: job_id,
            status: JobStatus::Succeeded,
            error_kind: None,
            error: None,
            fuel_used: stats.fuel_used,
            queries: stats.queries,
            outputs,
            logs: stats.logs,
        }),
        Err(e) => {
            let tx = conn.write()?;
            let report = end(&tx, &job_id, &e, &stats)?;
            tx.commit()?;
            Ok(report)
        }
    }
}

fn usage(stats: &RunStats) -> stored::Usage<'_> {
    stored::Usage {
        fuel_used: stats.fuel_used,
        queries: stats.queries,
        logs: &stats.logs,
    }
}

/// Records a job's end without outputs (failed or cancelled) in `tx`.
fn end(tx: &Conn, job_id: &str, e: &Error, stats: &RunStats) -> Result<JobReport> {
    let kind = error_kind(e);
    let text = e.to_string();
    let status = if matches!(e, Error::Cancelled(_)) {
        JobStatus::Cancelled
    } else {
        JobStatus::Failed
    };
    stored::end(tx, job_id, status, &kind, &text, usage(stats))?;
    audit::append(
        tx,
        "system",
        if status == JobStatus::Cancelled {
            EventKind::JobCancelled
        } else {
            EventKind::JobFailed
        },
        &Subject::Job(job_id.to_string()),
        json!({"error_kind": kind, "error": text, "fuel_used": stats.fuel_used, "queries": stats.queries, "emitted_not_staged": stats.emitted, "logs": stats.logs}),
    )?;
    Ok(JobReport {
        id: job_id.to_string(),
        status,
        error_kind: Some(kind),
        error: Some(text),
        fuel_used: stats.fuel_used,
        queries: stats.queries,
        outputs: Vec::new(),
        logs: stats.logs.clone(),
    })
}

/// Cancels a job: its submitter, an operator or a supervisor. A queued job ends at once;
/// a running one is flagged on the job (so the mediator refuses its further queries
/// wherever it runs) and, once that is recorded, interrupted within a tick if this process
/// runs it.
pub fn cancel(
    domain: &Domain,
    actor: &str,
    job_id: &str,
    reason: Option<&str>,
) -> Result<JobRecord> {
    let mut conn = domain.conn()?;
    let p = authz::authorize(&conn, actor, Action::JobCancel, On::Domain)?;
    let tx = conn.write()?;
    let (submitter, status) = stored::submitter_and_status(&tx, job_id)?
        .ok_or_else(|| Error::NotFound(format!("job `{job_id}`")))?;
    sandbox_core::authz::own_job(&p, job_id, &submitter)?;
    if submitter != actor && reason.is_none_or(|r| r.trim().is_empty()) {
        return Err(Error::Invalid(
            "cancelling someone else's job needs a reason".into(),
        ));
    }
    match status {
        JobStatus::Queued => {
            stored::cancel_queued(
                &tx,
                job_id,
                actor,
                &format!("cancelled by `{actor}` before it started"),
            )?;
            audit::append(
                &tx,
                actor,
                EventKind::JobCancelled,
                &Subject::Job(job_id.to_string()),
                json!({"from": "queued", "reason": reason}),
            )?;
            tx.commit()?;
        }
        JobStatus::Running => {
            stored::request_cancel(&tx, job_id, actor)?;
            let target = StopTarget::Job(job_id.to_string());
            audit::append(
                &tx,
                actor,
                EventKind::JobCancelRequested,
                &Subject::Job(job_id.to_string()),
                json!({"reason": reason, "interrupted": domain.covered(&target)}),
            )?;
            domain.commit_interrupting(tx, &target, Interrupt::Cancel)?;
        }
        other => {
            return Err(Error::Conflict(format!(
                "job {job_id} is {other}; only a queued or running job can be cancelled"
            )));
        }
    }
    job_record(domain, &conn, job_id)
}

/// Ends a job this process was running whose end could not be recorded (a store error, a
/// bug): failed as `internal`, if it is still recorded as running, with nothing staged.
pub fn abandon(domain: &Domain, job_id: &str, why: &str) -> Result<()> {
    let mut conn = domain.conn()?;
    let tx = conn.write()?;
    if stored::fail_running(&tx, job_id, "internal", why)? {
        audit::append(
            &tx,
            "system",
            EventKind::JobFailed,
            &Subject::Job(job_id.to_string()),
            json!({"error_kind": "internal", "error": why}),
        )?;
    }
    tx.commit()?;
    domain.host().forget(job_id);
    Ok(())
}

/// Ends the jobs whose runner is gone: those whose lease lapsed (a runner on any host that
/// stopped renewing it), and those recorded as running by a process of this host that no
/// longer exists (a runner that crashed or was killed). Each is failed as `interrupted`,
/// recorded. Jobs leased by live runners are left alone. Returns their ids.
pub fn recover(domain: &Domain) -> Result<Vec<String>> {
    let mut conn = domain.conn()?;
    let me = runner();
    let host = me.rsplit_once(':').map_or(me, |(h, _)| h).to_string();
    // Read first: every server runs this once a lease, and most times there is nothing to
    // end (the write below re-checks each job as it ends it).
    let now = sandbox_store::now();
    let lapsed = stored::lapsed(&conn, &now)?;
    let dead: Vec<(String, Option<String>)> = stored::running(&conn)?
        .into_iter()
        .filter(
            |(_, runner)| match runner.as_deref().and_then(|r| r.rsplit_once(':')) {
                Some((h, pid)) if h == host => {
                    pid != std::process::id().to_string()
                        && !std::path::Path::new("/proc").join(pid).exists()
                }
                _ => false,
            },
        )
        .collect();
    let mut ended = Vec::new();
    if !lapsed.is_empty() || !dead.is_empty() {
        let tx = conn.write()?;
        // Jobs whose runner stopped renewing its lease, on whatever host (one renewed
        // meanwhile is left alone).
        for (id, runner) in lapsed {
            let error = Error::Internal("its runner's lease lapsed before the job ended".into())
                .to_string();
            if stored::fail_lapsed(&tx, &id, &now, "interrupted", &error)? {
                record_interrupted(&tx, &id, runner.as_deref(), &error)?;
                ended.push(id);
            }
        }
        for (id, runner) in dead {
            let error = Error::Internal("its runner ended before the job did".into()).to_string();
            if stored::fail_running(&tx, &id, "interrupted", &error)? {
                record_interrupted(&tx, &id, runner.as_deref(), &error)?;
                ended.push(id);
            }
        }
        tx.commit()?;
    }
    sweep_staging(domain, &conn)?;
    Ok(ended)
}

/// The event of a job [`recover`] failed because its runner is gone.
fn record_interrupted(tx: &Conn, id: &str, runner: Option<&str>, error: &str) -> Result<()> {
    audit::append(
        tx,
        "system",
        EventKind::JobFailed,
        &Subject::Job(id.to_string()),
        json!({"error_kind": "interrupted", "error": error, "runner": runner}),
    )?;
    Ok(())
}

/// Removes the temporary staging folders (`.{job}.tmp`) a killed runner left: outputs are
/// written there and renamed into place in the transaction that records them, so a folder
/// still there belongs to a job that is no longer running, and nothing refers to it.
fn sweep_staging(domain: &Domain, conn: &Conn) -> Result<()> {
    let staging = domain.layout().staging();
    let Ok(entries) = fs::read_dir(&staging) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(job_id) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else {
            continue;
        };
        // Only a job known not to run (ended, or never recorded) loses its folder: a store
        // that does not answer now removes nothing.
        let running = match stored::get(conn, job_id).map_err(Error::from) {
            Ok(job) => job.status == JobStatus::Running,
            Err(Error::NotFound(_)) => false,
            Err(e) => return Err(e),
        };
        if !running {
            // A runner on another server may have just renamed it into place.
            match fs::remove_dir_all(entry.path()) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// A job for someone who may read it: operators and supervisors any, a developer their
/// own; with its progress if it runs in this process.
pub fn job(domain: &Domain, actor: &str, id: &str) -> Result<JobRecord> {
    let conn = domain.conn()?;
    let who = authz::authorize(&conn, actor, Action::JobRead, On::Domain)?;
    let record = job_record(domain, &conn, id)?;
    sandbox_core::authz::own_job(&who, &record.id, &record.submitter)?;
    Ok(record)
}

fn job_record(domain: &Domain, conn: &Conn, id: &str) -> Result<JobRecord> {
    let mut record = stored::get(conn, id)?;
    if record.status == JobStatus::Running {
        record.progress = domain.host().progress(domain.layout().root(), id);
    }
    Ok(record)
}

/// The log lines of a job `actor` may read: as they come while it runs in this process,
/// as recorded once it has ended; a developer reads them as [`readable_logs`] leaves them.
pub fn logs(domain: &Domain, actor: &str, job_id: &str) -> Result<Vec<LogLine>> {
    let conn = domain.conn()?;
    let who = authz::authorize(&conn, actor, Action::JobRead, On::Domain)?;
    let record = job_record(domain, &conn, job_id)?;
    sandbox_core::authz::own_job(&who, &record.id, &record.submitter)?;
    let lines = match domain.host().logs(domain.layout().root(), job_id) {
        Some(lines) => lines,
        None => stored::logs(&conn, job_id)?
            .ok_or_else(|| Error::NotFound(format!("job `{job_id}`")))?,
    };
    match who.role {
        sandbox_core::Role::Developer => readable_logs(&conn, record.scenario_id, job_id, lines),
        _ => Ok(lines),
    }
}

/// A job's log lines as its developer reads them. A module's log lines reach the developer
/// without review; in DP mode they hold nothing but noisy answers, but in threshold mode
/// the module holds exact ones, and what it computes from several (a total less the cells
/// released beside it) can give a suppressed cell away. So in threshold mode every line is
/// put through the output checks' threshold rules (a count below `min_group_size` that no
/// answer released, a number equal to a total that includes suppressed cells); a line
/// that fails them is held back, and operators and supervisors read it as written.
fn readable_logs(
    conn: &Conn,
    scenario_id: i64,
    job_id: &str,
    lines: Vec<LogLine>,
) -> Result<Vec<LogLine>> {
    let (levels, texts): (Vec<_>, Vec<_>) = lines.into_iter().map(|l| (l.level, l.text)).unzip();
    Ok(levels
        .into_iter()
        .zip(readable_texts(conn, scenario_id, job_id, texts)?)
        .map(|(level, text)| LogLine { level, text })
        .collect())
}

/// Texts as the developer of job `job_id` may read them (log lines, what reviewers
/// wrote): in threshold mode, a text holding a total that includes suppressed cells, or a
/// count below `min_group_size` that none of the job's answers released, is replaced by a
/// note saying why it is held back.
pub(crate) fn readable_texts(
    conn: &Conn,
    scenario_id: i64,
    job_id: &str,
    texts: Vec<String>,
) -> Result<Vec<String>> {
    let record = scenarios::get(conn, scenario_id)?;
    if record.spec.mode != sandbox_policies::Mode::Threshold {
        return Ok(texts);
    }
    let mut policies = Vec::new();
    for d in &record.spec.datasets {
        policies.push(sandbox_store::catalog::get(conn, &d.name)?.policy);
    }
    let policies: Vec<&sandbox_policies::Policy> = policies.iter().collect();
    let mut ctx = disclosure::CheckContext {
        rules: Some(disclosure::Rules::strictest(&policies, true)),
        ..Default::default()
    };
    for a in sandbox_store::queries::answers_of_job(conn, job_id)? {
        ctx.receive_answer_json(&a.answer_json);
        if let Some(w) = a.withheld {
            ctx.withheld.push(w);
        }
    }
    ctx.seal();
    Ok(texts
        .into_iter()
        .map(|text| match disclosure::log_line_finding(&ctx, &text) {
            Some(why) => {
                format!("[held back: {why}; operators and supervisors can read this line]")
            }
            None => text,
        })
        .collect())
}

/// Jobs `actor` may read, newest first: a developer's own, everyone's for operators and
/// supervisors (a developer's filter on another submitter is refused).
pub fn list(domain: &Domain, actor: &str, filter: &JobFilter<'_>) -> Result<Vec<JobRecord>> {
    let conn = domain.conn()?;
    let who = authz::authorize(&conn, actor, Action::JobRead, On::Domain)?;
    let mut filter = filter.clone();
    if who.role == sandbox_core::Role::Developer {
        if filter.submitter.is_some_and(|s| s != who.name) {
            return Err(Error::Forbidden(
                "a developer lists their own jobs only".into(),
            ));
        }
        filter.submitter = Some(who.name.as_str());
    }
    let mut rows = stored::list(&conn, &filter)?;
    for r in &mut rows {
        if r.status == JobStatus::Running {
            r.progress = domain.host().progress(domain.layout().root(), &r.id);
        }
    }
    Ok(rows)
}

/// How many jobs wait in the queue, in all or of one submitter.
pub fn queued(domain: &Domain, submitter: Option<&str>) -> Result<i64> {
    Ok(stored::queued(&*domain.conn()?, submitter)?)
}

/// Where a job's outputs are staged and whose they are.
struct Staging<'a> {
    job_id: &'a str,
    actor: &'a str,
    scenario_id: i64,
}

/// Writes the outputs to the job's staging folder, runs the automated checks and records
/// everything in one transaction. If any step fails, the folder is removed.
fn stage(
    domain: &Domain,
    conn: &mut Conn,
    at: &Staging<'_>,
    outcome: RunOutcome,
    stats: &RunStats,
) -> Result<Vec<OutputRecord>> {
    let dir = domain.layout().staging().join(at.job_id);
    let tmp = domain
        .layout()
        .staging()
        .join(format!(".{}.tmp", at.job_id));
    fs::create_dir_all(&tmp)?;
    let result = (|| {
        let records = check_outputs(domain, conn, at, &outcome, &tmp)?;
        let tx = conn.write()?;
        for r in &records {
            staged::insert(&tx, r)?;
            audit::append(
                &tx,
                at.actor,
                EventKind::OutputStaged,
                &Subject::Output(r.id.clone()),
                json!({"job_id": at.job_id, "name": r.name, "kind": r.kind, "sha256": r.sha256, "bytes": r.bytes}),
            )?;
            audit::append(
                &tx,
                "system",
                EventKind::OutputChecked,
                &Subject::Output(r.id.clone()),
                json!({"job_id": at.job_id, "from": "staged", "to": r.status, "checks": r.checks}),
            )?;
        }
        stored::succeed(&tx, at.job_id, usage(stats))?;
        audit::append(
            &tx,
            "system",
            EventKind::JobSucceeded,
            &Subject::Job(at.job_id.to_string()),
            json!({"scenario_id": at.scenario_id, "outputs": records.len(), "fuel_used": stats.fuel_used, "queries": stats.queries, "logs": stats.logs}),
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

/// Writes each output into `tmp` and checks it (against the scenario's released tables
/// and the job's other tables: released together, two of them could form a differencing
/// pair). Returns their records.
fn check_outputs(
    domain: &Domain,
    conn: &Conn,
    at: &Staging<'_>,
    outcome: &RunOutcome,
    tmp: &std::path::Path,
) -> Result<Vec<OutputRecord>> {
    let mut ctx = check_context(domain, conn, at.scenario_id, at.job_id)?;
    let outputs = rounded_outputs(conn, at.job_id, &outcome.outputs)?;
    let own = |name: &str| format!("{name} (this job)");
    for o in &outputs {
        if o.kind == sandbox_core::job::OutputKind::Table
            && let Ok(batches) = sandbox_host::decode_ipc(&o.bytes)
        {
            ctx.released_tables.push((own(&o.name), batches));
        }
    }
    let mut records = Vec::new();
    for o in &outputs {
        let file_name = format!("{}.{}", o.name, o.kind.extension());
        fs::write(tmp.join(&file_name), &o.bytes)?;
        // Not compared with itself.
        let mine = own(&o.name);
        let saved: Vec<_> = ctx
            .released_tables
            .iter()
            .filter(|(n, _)| *n == mine)
            .cloned()
            .collect();
        ctx.released_tables.retain(|(n, _)| *n != mine);
        let report = disclosure::run(&ctx, o);
        ctx.released_tables.extend(saved);
        let report = report?;
        records.push(OutputRecord {
            id: new_id("out"),
            job_id: at.job_id.to_string(),
            name: o.name.clone(),
            kind: o.kind.as_str().to_string(),
            file_name,
            sha256: domain.keys().suite().hash_hex(&o.bytes),
            bytes: o.bytes.len() as i64,
            status: if report.failed() {
                OutputStatus::Flagged
            } else {
                OutputStatus::Checked
            },
            checks: Some(serde_json::to_value(&report)?),
        });
    }
    Ok(records)
}

/// The outputs as staged: each table held to the rounding rule of the policies the job's
/// answers came under ([`sandbox_mediator::accuracy::round_staged`]), whether the module
/// asked for rounded answers or not. Every path to staging goes through here.
fn rounded_outputs(
    conn: &Conn,
    job_id: &str,
    outputs: &[sandbox_core::job::StagedOutput],
) -> Result<Vec<sandbox_core::job::StagedOutput>> {
    let mut received = sandbox_mediator::accuracy::ReceivedUnits::default();
    for a in sandbox_store::queries::answers_of_job(conn, job_id)? {
        received.add_answer(&a.answer_json, &a.accuracy);
    }
    received.seal();
    let mut staged = Vec::with_capacity(outputs.len());
    for o in outputs {
        let mut o = o.clone();
        if o.kind == sandbox_core::job::OutputKind::Table {
            // A table that does not decode is staged as it came, for the checks to refuse.
            if let Ok(batches) = sandbox_host::decode_ipc(&o.bytes)
                && let Some(first) = batches.first()
            {
                let table = arrow::compute::concat_batches(&first.schema(), &batches)
                    .map_err(|e| Error::Internal(format!("staged table: {e}")))?;
                if let Some(rounded) = sandbox_mediator::accuracy::round_staged(&table, &received)?
                {
                    o.bytes = sandbox_mediator::encode_ipc(&rounded)?;
                }
            }
        }
        staged.push(o);
    }
    Ok(staged)
}

/// One output, for someone who reads outputs (operators and supervisors).
pub fn output(domain: &Domain, actor: &str, id: &str) -> Result<OutputRecord> {
    let conn = domain.conn()?;
    authz::authorize(&conn, actor, Action::OutputRead, On::Domain)?;
    Ok(staged::get(&conn, id)?)
}

/// Every output, newest first, for someone who reads outputs.
pub fn all_outputs(domain: &Domain, actor: &str) -> Result<Vec<OutputRecord>> {
    let conn = domain.conn()?;
    authz::authorize(&conn, actor, Action::OutputRead, On::Domain)?;
    Ok(staged::all(&conn)?)
}

/// An output's staged file as `actor` (who reads outputs) takes it away, in `format`: the
/// one path every download of an unreleased output goes through (API, console, CLI), each
/// recorded as an `output.downloaded` event with the format and the hash of what left.
/// Returns the file's name in that format and its bytes.
pub fn download_output(
    domain: &Domain,
    actor: &str,
    id: &str,
    format: crate::export::Format,
) -> Result<(String, Vec<u8>)> {
    let mut conn = domain.conn()?;
    authz::authorize(&conn, actor, Action::OutputRead, On::Domain)?;
    let o = staged::get(&conn, id)?;
    let (name, bytes) = crate::export::convert(&o.file_name, staged_file(domain, &o)?, format)?;
    let tx = conn.write()?;
    audit::append(
        &tx,
        actor,
        EventKind::OutputDownloaded,
        &Subject::Output(o.id.clone()),
        json!({"job_id": o.job_id, "file": name, "format": format.extension(), "bytes": bytes.len(),
               domain.keys().suite().hash_name(): domain.keys().suite().hash_hex(&bytes)}),
    )?;
    tx.commit()?;
    Ok((name, bytes))
}

/// The staged file of an output.
pub fn staged_file(domain: &Domain, o: &OutputRecord) -> Result<Vec<u8>> {
    if !sandbox_core::plain_file_name(&o.job_id) || !sandbox_core::plain_file_name(&o.file_name) {
        return Err(Error::Internal(format!(
            "output {} names no plain file",
            o.id
        )));
    }
    Ok(fs::read(
        domain.layout().staging().join(&o.job_id).join(&o.file_name),
    )?)
}

/// What the automated checks of a job's outputs compare them with: the scenario's rules,
/// the rare-value sets of its datasets, every answer the job received, what threshold
/// answers withheld, and the tables already released in the scenario.
pub(crate) fn check_context(
    domain: &Domain,
    conn: &Conn,
    scenario_id: i64,
    job_id: &str,
) -> Result<disclosure::CheckContext> {
    let record = scenarios::get(conn, scenario_id)?;
    let mut versions = Vec::new();
    for d in &record.spec.datasets {
        versions.push(sandbox_store::catalog::get(conn, &d.name)?);
    }
    let policies: Vec<&sandbox_policies::Policy> = versions.iter().map(|v| &v.policy).collect();
    let mut ctx = disclosure::CheckContext {
        rules: Some(disclosure::Rules::strictest(
            &policies,
            record.spec.mode == sandbox_policies::Mode::Threshold,
        )),
        hasher: Some(sandbox_mediator::values::ValueHasher::new(
            domain.keys().pseudonym_secret()?,
        )?),
        ..Default::default()
    };
    for v in &versions {
        ctx.value_sets
            .extend(sandbox_mediator::values::load(&v.name, &v.path)?);
    }
    for a in sandbox_store::queries::answers_of_job(conn, job_id)? {
        ctx.receive_answer_json(&a.answer_json);
        if let Some(w) = a.withheld {
            ctx.withheld.push(w);
        }
    }
    ctx.seal();
    for t in staged::released_tables(conn, scenario_id)? {
        let path = domain.layout().staging().join(&t.job_id).join(&t.file_name);
        let batches = sandbox_host::decode_ipc(&fs::read(&path)?)?;
        ctx.released_tables
            .push((format!("{} (job {})", t.name, t.job_id), batches));
    }
    Ok(ctx)
}
