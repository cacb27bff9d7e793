//! What a reviewer sees of an output before deciding (the console's output page, QQHR
//! Art. 17): the output, its job and scenario, every query the job made with its ε, the
//! decisions so far, and the content as it would be released.

use arrow::array::RecordBatch;
use sandbox_core::OutputStatus;
use sandbox_core::authz::Action;
use sandbox_store::authz::{self, On};
use sandbox_store::{jobs as stored_jobs, outputs, queries, scenarios};

use crate::jobs::{self, OutputRecord};
use crate::{Domain, Result};

/// An output awaiting (or past) review, as listed.
#[derive(Debug, Clone)]
pub struct Pending {
    /// Output id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Kind.
    pub kind: String,
    /// Review status.
    pub status: OutputStatus,
    /// Check results.
    pub checks: Option<serde_json::Value>,
    /// When staged.
    pub created_at: String,
    /// Its job.
    pub job_id: String,
    /// Who submitted the job.
    pub submitter: String,
    /// The scenario's name.
    pub scenario: String,
}

/// The outputs in any of `statuses`, oldest first, for a reviewer.
pub fn pending(domain: &Domain, actor: &str, statuses: &[OutputStatus]) -> Result<Vec<Pending>> {
    let conn = domain.conn()?;
    authz::authorize(&conn, actor, Action::OutputRead, On::Domain)?;
    Ok(outputs::pending(&conn, statuses)?
        .into_iter()
        .map(|p| Pending {
            id: p.output.id,
            name: p.output.name,
            kind: p.output.kind,
            status: p.output.status,
            checks: p.output.checks,
            created_at: p.created_at,
            job_id: p.output.job_id,
            submitter: p.submitter,
            scenario: p.scenario,
        })
        .collect())
}

/// A query the output's job made.
#[derive(Debug, Clone)]
pub struct QueryLine {
    /// SQL.
    pub sql: String,
    /// answered or refused.
    pub status: String,
    /// ε charged.
    pub epsilon: f64,
    /// δ charged.
    pub delta: f64,
    /// Mechanism.
    pub mechanism: Option<String>,
    /// Refusal rule.
    pub rule: Option<String>,
    /// What each noisy column of its answer can be trusted to.
    pub accuracy: Vec<sandbox_store::queries::ColumnAccuracy>,
}

/// A review decision recorded.
#[derive(Debug, Clone)]
pub struct ReviewLine {
    /// Who.
    pub reviewer: String,
    /// operator or supervisor.
    pub tier: String,
    /// approve, reject, request_changes.
    pub decision: String,
    /// Why.
    pub reason: Option<String>,
    /// When.
    pub created_at: String,
}

/// How the output's content is shown.
#[derive(Debug)]
pub enum Content {
    /// A table.
    Table(Vec<RecordBatch>),
    /// Markdown text (rendered safely by the console, and shown as written).
    Text(String),
    /// A chart, shown as an image from the console's file route.
    Image,
    /// The file could not be shown.
    Unreadable(String),
}

/// Everything the output page shows.
#[derive(Debug)]
pub struct OutputView {
    /// The output.
    pub output: OutputRecord,
    /// Its job's submitter.
    pub submitter: String,
    /// Module hash.
    pub module_sha256: String,
    /// The job's parameters (JSON text).
    pub params_json: String,
    /// The smallest group a released cell may describe (the strictest of the scenario's
    /// policies): counts below it are marked for the reviewer.
    pub min_group_size: i64,
    /// The scenario's id, name and purpose.
    pub scenario: (i64, String, String),
    /// Datasets of the scenario.
    pub datasets: Vec<String>,
    /// Queries the job made.
    pub queries: Vec<QueryLine>,
    /// Decisions so far.
    pub reviews: Vec<ReviewLine>,
    /// The content.
    pub content: Content,
}

/// An output as a reviewer sees it.
pub fn view(domain: &Domain, actor: &str, id: &str) -> Result<OutputView> {
    let conn = domain.conn()?;
    authz::authorize(&conn, actor, Action::OutputRead, On::Domain)?;
    let output = outputs::get(&conn, id)?;
    let job = stored_jobs::get(&conn, &output.job_id)?;
    let scenario = scenarios::get(&conn, job.scenario_id)?;
    let queries = queries::of_job(&conn, &output.job_id)?
        .into_iter()
        .map(|q| QueryLine {
            sql: q.sql,
            status: q.status,
            epsilon: q.epsilon,
            delta: q.delta,
            mechanism: q.mechanism,
            rule: q.rule,
            accuracy: q.accuracy,
        })
        .collect();
    let reviews = outputs::reviews(&conn, id)?
        .into_iter()
        .map(|r| ReviewLine {
            reviewer: r.reviewer,
            tier: r.tier.to_string(),
            decision: r.decision.to_string(),
            reason: r.reason,
            created_at: r.created_at,
        })
        .collect();
    let content = match jobs::staged_file(domain, &output) {
        Err(e) => Content::Unreadable(e.to_string()),
        Ok(bytes) => match output.kind.as_str() {
            "table" => match sandbox_host::decode_ipc(&bytes) {
                Ok(batches) => Content::Table(batches),
                Err(e) => Content::Unreadable(e.to_string()),
            },
            "text" => Content::Text(String::from_utf8_lossy(&bytes).into_owned()),
            "chart" | "image" => Content::Image,
            other => Content::Unreadable(format!("kind `{other}`")),
        },
    };
    let mut min_group_size = 0i64;
    for d in &scenario.spec.datasets {
        if let Ok(v) = sandbox_store::catalog::get(&conn, &d.name) {
            min_group_size = min_group_size.max(i64::from(v.policy.disclosure.min_group_size));
        }
    }
    Ok(OutputView {
        min_group_size,
        submitter: job.submitter,
        module_sha256: job.module_sha256,
        params_json: job.params_json,
        scenario: (
            scenario.id,
            scenario.spec.name.clone(),
            scenario.spec.purpose.clone(),
        ),
        datasets: scenario
            .spec
            .datasets
            .iter()
            .map(|x| x.name.clone())
            .collect(),
        queries,
        reviews,
        content,
        output,
    })
}
