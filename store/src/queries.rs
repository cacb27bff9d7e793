//! Tables `queries` and `released_cells`: every query a module asked, answered or refused,
//! with what it was answered (for provenance) and what a threshold answer withheld (for
//! the output checks); and threshold mode's differencing guard, what each unit contributed
//! to each cell a threshold answer released. Charges are written by [`crate::ledger::charge`].

use crate::db::{OptionalExt, args};
use sandbox_core::audit::{EventKind, Subject};
use sandbox_core::refusal::Refusal;
use serde::Serialize;
use serde_json::json;

use crate::{Conn, Result, audit, scenarios};

/// A refused query to record.
#[derive(Debug, Clone)]
pub struct Refused<'a> {
    /// The query's id.
    pub query_id: &'a str,
    /// The scenario it was asked under.
    pub scenario_id: i64,
    /// The job asking, if any.
    pub job_id: Option<&'a str>,
    /// Who asked.
    pub actor: &'a str,
    /// The SQL.
    pub sql: &'a str,
    /// Why it was refused.
    pub refusal: &'a Refusal,
}

/// Records a refused query and its audit event, and runs usage monitoring in the same
/// transaction: when the scenario's over-scope refusals reach the limit it is suspended
/// there and then, and the reason is returned (the caller interrupts its running jobs
/// once this has committed).
pub fn record_refusal(conn: &mut Conn, q: &Refused<'_>) -> Result<Option<String>> {
    let tx = conn.write()?;
    tx.execute(
        "INSERT INTO queries (id, job_id, scenario_id, sql, status, rule, reason, created_at)
         VALUES (?1, ?2, ?3, ?4, 'refused', ?5, ?6, ?7)",
        args![
            q.query_id,
            q.job_id,
            q.scenario_id,
            q.sql,
            q.refusal.rule.as_str(),
            q.refusal.to_string(),
            crate::now()
        ],
    )?;
    audit::append(
        &tx,
        q.actor,
        EventKind::QueryRefused,
        &Subject::Scenario(q.scenario_id),
        json!({"query_id": q.query_id, "job_id": q.job_id, "sql": q.sql, "rule": q.refusal.rule, "column": q.refusal.column, "reason": q.refusal.message}),
    )?;
    // Usage monitoring (Shuangyashan Art. 31): enough over-scope refusals suspend the
    // scenario in this same transaction.
    let suspended = scenarios::monitor_refusal(&tx, q.scenario_id)?;
    tx.commit()?;
    Ok(suspended)
}

/// Runs `f` with the connection's commits unsynchronized: what it writes becomes durable
/// with the next synchronous commit (in WAL mode), such as the next charge.
fn unsynced<T>(conn: &Conn, f: impl FnOnce() -> Result<T>) -> Result<T> {
    conn.set_synchronous(false)?;
    let out = f();
    conn.set_synchronous(true)?;
    out
}

/// Records the answer a charged query was given (JSON rows), for provenance. Without an
/// fsync of its own: the charge, committed before anything was released, was synchronous.
/// With it, what each of the answer's columns can be trusted to.
pub fn record_answer(
    conn: &Conn,
    query_id: &str,
    answer_json: &str,
    accuracy: &[ColumnAccuracy],
) -> Result<()> {
    let accuracy = serde_json::to_string(accuracy)?;
    unsynced(conn, || {
        conn.execute(
            "UPDATE queries SET answer_json = ?2, accuracy_json = ?3 WHERE id = ?1",
            args![query_id, answer_json, accuracy],
        )?;
        Ok(())
    })
}

/// What one column of a noisy answer can be trusted to, as the mediator attached it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct ColumnAccuracy {
    /// The column, as the module named it.
    pub column: String,
    /// The scale of its noise, when it is one statistic released as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_scale: Option<f64>,
    /// Half-width of its 95 % interval (the widest of its cells for a derived column).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci95: Option<f64>,
    /// The unit its values are rounded to where the policy says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounding: Option<f64>,
    /// Cells withheld (NULL) as too uncertain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withheld: Option<u64>,
}

/// What a threshold-mode answer withheld, as the mediator recorded it (never shown to the
/// module): the keys of the suppressed cells and each statistic's total over all cells.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Withheld {
    /// Keys of suppressed cells, each value in canonical text.
    pub cells: Vec<Vec<String>>,
    /// Each statistic's exact total over every cell, suppressed ones included.
    pub totals: Vec<f64>,
}

/// Records what a threshold answer withheld (never sent to a module), like the answer.
pub fn record_withheld(conn: &Conn, query_id: &str, withheld: &Withheld) -> Result<()> {
    let text = serde_json::to_string(withheld)?;
    unsynced(conn, || {
        conn.execute(
            "UPDATE queries SET withheld_json = ?2 WHERE id = ?1",
            args![query_id, text],
        )?;
        Ok(())
    })
}

/// Threshold mode's released cells over the datasets a query reads, in a write
/// transaction (`BEGIN IMMEDIATE`): the guard's look-ups and the record of what the query
/// releases are one step, so two threshold queries never both release a pair the guard
/// would have caught. Dropped without [`ReleasedCells::commit`], nothing is recorded.
pub struct ReleasedCells<'c> {
    tx: crate::Tx<'c>,
    datasets: Vec<String>,
}

/// Opens the released cells over `datasets` for one threshold answer.
pub fn released_cells<'c>(conn: &'c mut Conn, datasets: &[String]) -> Result<ReleasedCells<'c>> {
    let mut datasets = datasets.to_vec();
    datasets.sort();
    datasets.dedup();
    Ok(ReleasedCells {
        tx: conn.write()?,
        datasets,
    })
}

impl ReleasedCells<'_> {
    /// The cells released earlier over any of the datasets (any scenario, any developer)
    /// with between `lo` and `hi` units: each as its id and its sorted (unit, contribution)
    /// pairs in little-endian bytes.
    pub fn sized(&self, lo: usize, hi: usize) -> Result<Vec<(i64, Vec<u8>)>> {
        let mut out: Vec<(i64, Vec<u8>)> = Vec::new();
        // A cell over several of the datasets is listed under each of them.
        let mut seen = std::collections::HashSet::new();
        for dataset in &self.datasets {
            let rows = self.tx.rows(
                "SELECT c.id, c.units FROM released_cell_datasets d
                 JOIN released_cells c ON c.id = d.cell_id
                 WHERE d.dataset = ?1 AND d.n_units BETWEEN ?2 AND ?3",
                args![dataset, lo as i64, hi as i64],
                |r| Ok((r.get::<i64>(0)?, r.get::<Vec<u8>>(1)?)),
            )?;
            for (id, units) in rows {
                if seen.insert(id) {
                    out.push((id, units));
                }
            }
        }
        Ok(out)
    }

    /// Records a cell the query releases: `units` holds `n_units` sorted (unit,
    /// contribution) pairs, 16 bytes each.
    /// A cell recorded before with the same pairs is kept once (under the first query that
    /// released it), listed under every dataset it was released over.
    pub fn record(&self, query_id: &str, n_units: usize, units: &[u8]) -> Result<()> {
        let earlier: Option<i64> = self
            .tx
            .query_row(
                "SELECT id FROM released_cells WHERE n_units = ?1 AND units = ?2 LIMIT 1",
                args![n_units as i64, units],
                |r| r.get(0),
            )
            .optional()?;
        let id = match earlier {
            Some(id) => id,
            None => self.tx.insert(
                "INSERT INTO released_cells (query_id, n_units, units) VALUES (?1, ?2, ?3)",
                args![query_id, n_units as i64, units],
            )?,
        };
        for dataset in &self.datasets {
            self.tx.execute(
                "INSERT OR IGNORE INTO released_cell_datasets (dataset, n_units, cell_id)
                 VALUES (?1, ?2, ?3)",
                args![dataset, n_units as i64, id],
            )?;
        }
        Ok(())
    }

    /// Commits the cells recorded: from here on every later threshold query over the
    /// datasets is compared with them.
    pub fn commit(self) -> Result<()> {
        self.tx.commit()
    }
}

/// The answers a job received (JSON rows) with what each withheld, if anything (a record
/// that does not parse counts as nothing withheld).
pub fn answers_of_job(conn: &Conn, job_id: &str) -> Result<Vec<JobAnswer>> {
    let rows: Vec<(String, Option<String>, Option<String>)> = conn.rows(
        "SELECT answer_json, withheld_json, accuracy_json FROM queries
             WHERE job_id = ?1 AND status = 'answered' AND answer_json IS NOT NULL",
        args![job_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    Ok(rows
        .into_iter()
        .map(|(answer_json, w, a)| JobAnswer {
            answer_json,
            withheld: w.and_then(|w| serde_json::from_str(&w).ok()),
            accuracy: a
                .and_then(|a| serde_json::from_str(&a).ok())
                .unwrap_or_default(),
        })
        .collect())
}

/// An answer a job received, as recorded.
#[derive(Debug, Clone)]
pub struct JobAnswer {
    /// Its rows as JSON (as drawn, then as rounded when the SDK rounds them).
    pub answer_json: String,
    /// Threshold mode: what it withheld.
    pub withheld: Option<Withheld>,
    /// What each noisy column can be trusted to, with the unit it is rounded to.
    pub accuracy: Vec<ColumnAccuracy>,
}

/// The dataset versions a job's answered queries read, each once, by name then version
/// (empty for jobs answered before the versions were recorded).
pub fn versions_read(conn: &Conn, job_id: &str) -> Result<Vec<(String, i64)>> {
    conn.rows(
        "SELECT DISTINCT d.dataset, d.version FROM query_datasets d
             JOIN queries q ON q.id = d.query_id
             WHERE q.job_id = ?1 AND q.status = 'answered'
             ORDER BY d.dataset, d.version",
        args![job_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// A job's query as a product manifest lists it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct QueryEntry {
    /// Query id.
    pub id: String,
    /// The SQL.
    pub sql: String,
    /// `answered` or `refused`.
    pub status: String,
    /// The rule a refusal broke.
    pub rule: Option<String>,
    /// ε charged.
    pub epsilon: f64,
    /// δ charged.
    pub delta: f64,
    /// Mechanism of an answer.
    pub mechanism: Option<String>,
    /// When.
    pub at: String,
    /// What each noisy column of the answer can be trusted to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accuracy: Vec<ColumnAccuracy>,
}

/// Every query of a job, in order.
pub fn of_job(conn: &Conn, job_id: &str) -> Result<Vec<QueryEntry>> {
    conn.rows(
        "SELECT id, sql, status, rule, epsilon, delta, mechanism, created_at, accuracy_json
             FROM queries WHERE job_id = ?1 ORDER BY created_at, id",
        args![job_id],
        |r| {
            Ok(QueryEntry {
                id: r.get(0)?,
                sql: r.get(1)?,
                status: r.get(2)?,
                rule: r.get(3)?,
                epsilon: r.get(4)?,
                delta: r.get(5)?,
                mechanism: r.get(6)?,
                at: r.get(7)?,
                accuracy: r
                    .get::<Option<String>>(8)?
                    .and_then(|a| serde_json::from_str(&a).ok())
                    .unwrap_or_default(),
            })
        },
    )
}
