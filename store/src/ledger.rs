//! The privacy-budget ledger: durable, append-only, charged before an answer exists.
//!
//! **Invariant:** a charge, its ledger row, the scenario's running total and its audit
//! event are written in one transaction that holds the scenario's row (SQLite: `BEGIN
//! IMMEDIATE`, every writer; PostgreSQL: the row `FOR UPDATE`), so concurrent queries are
//! serialized on the budget and a crash can lose an answer, never a charge. The running
//! total has a `CHECK` that it never exceeds the scenario's budget.

use crate::db::args;
use sandbox_core::audit::{EventKind, Subject};
use sandbox_core::refusal::{Refusal, Rule};
use serde::Serialize;
use serde_json::json;

use crate::{Conn, DomainError as Error, Result, audit};

/// Tolerance for float comparison of budgets.
const EPS_TOLERANCE: f64 = 1e-9;

/// A scenario's budget at a point in time.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Balance {
    /// Scenario id.
    pub scenario_id: i64,
    /// Total ε.
    pub epsilon_total: f64,
    /// ε spent so far.
    pub epsilon_spent: f64,
    /// Total δ.
    pub delta_total: f64,
    /// δ spent so far.
    pub delta_spent: f64,
    /// Total ρ under zCDP accounting (0 under pure accounting).
    pub rho_total: f64,
    /// ρ spent so far.
    pub rho_spent: f64,
}

impl Balance {
    /// ε left.
    pub fn epsilon_remaining(&self) -> f64 {
        (self.epsilon_total - self.epsilon_spent).max(0.0)
    }
}

/// A charge to make for one query.
#[derive(Debug, Clone)]
pub struct Charge<'a> {
    /// Scenario paying.
    pub scenario_id: i64,
    /// Job asking, if any.
    pub job_id: Option<&'a str>,
    /// The query's id.
    pub query_id: &'a str,
    /// The query text.
    pub sql: &'a str,
    /// Who asks.
    pub actor: &'a str,
    /// ε to charge.
    pub epsilon: f64,
    /// δ to charge.
    pub delta: f64,
    /// ρ to charge (zCDP scenarios; 0 otherwise). Under zCDP the scenario's ε spent is
    /// the (ε, δ) conversion of its ρ spent.
    pub rho: f64,
    /// Mechanism that will be applied.
    pub mechanism: &'a str,
    /// The dataset versions the query reads (name, version), recorded with an answer.
    pub datasets: &'a [(String, i64)],
}

/// Reads a scenario's balance.
pub fn balance(conn: &Conn, scenario_id: i64) -> Result<Balance> {
    conn.query_row(
        "SELECT epsilon_total, epsilon_spent, delta_total, delta_spent, rho_total, rho_spent
         FROM scenarios WHERE id = ?1",
        args![scenario_id],
        |r| {
            Ok(Balance {
                scenario_id,
                epsilon_total: r.get(0)?,
                epsilon_spent: r.get(1)?,
                delta_total: r.get(2)?,
                delta_spent: r.get(3)?,
                rho_total: r.get(4)?,
                rho_spent: r.get(5)?,
            })
        },
    )
    .map_err(|e| match e {
        crate::Error::Db(crate::db::DbError::NoRows) => {
            Error::NotFound(format!("scenario {scenario_id}")).into()
        }
        e => e,
    })
}

/// Charges the budget, or refuses if it cannot pay. Either way the outcome is recorded
/// (query row and audit event) in the same transaction.
pub fn charge(conn: &mut Conn, c: &Charge<'_>) -> Result<Balance> {
    if !(c.epsilon.is_finite() && c.epsilon >= 0.0 && c.delta.is_finite() && c.delta >= 0.0) {
        return Err(Error::Internal(format!("bad charge ε={} δ={}", c.epsilon, c.delta)).into());
    }
    // Charges on one scenario serialize on its row; charges on different scenarios wait
    // for each other only at the audit append (and on an organisation's row, below).
    let tx = conn.write_shared()?;
    tx.lock(
        "SELECT id FROM scenarios WHERE id = ?1 FOR UPDATE",
        args![c.scenario_id],
    )?;
    let before = balance(&tx, c.scenario_id)?;
    let now = crate::now();
    let zcdp = before.rho_total > 0.0;
    let over_eps = if zcdp {
        before.rho_spent + c.rho > before.rho_total * (1.0 + EPS_TOLERANCE)
    } else {
        before.epsilon_spent + c.epsilon > before.epsilon_total * (1.0 + EPS_TOLERANCE)
    };
    let over_delta =
        before.delta_spent + c.delta > before.delta_total * (1.0 + EPS_TOLERANCE) + 1e-15;
    // The ε the scenario will have spent, as its row records it.
    let (rho_after, epsilon_after) = if zcdp {
        let rho = (before.rho_spent + c.rho).min(before.rho_total);
        let l = (1.0 / before.delta_total.max(f64::MIN_POSITIVE)).ln();
        (
            rho,
            (rho + 2.0 * (rho * l).sqrt()).min(before.epsilon_total),
        )
    } else {
        (
            before.rho_spent,
            (before.epsilon_spent + c.epsilon).min(before.epsilon_total),
        )
    };
    // The cap of the developer's organisation across its members' scenarios (QQHR Art. 14).
    let developer: String = tx.query_row(
        "SELECT developer FROM scenarios WHERE id = ?1",
        args![c.scenario_id],
        |r| r.get(0),
    )?;
    // An organisation's cap spans its members' scenarios: their charges serialize on its row.
    tx.lock(
        "SELECT o.credit_code FROM organisations o JOIN principals p ON p.organisation = o.credit_code
         WHERE p.name = ?1 AND o.epsilon_cap IS NOT NULL FOR UPDATE OF o",
        args![developer],
    )?;
    let over_cap = crate::organisations::standing_of(&tx, &developer)?.and_then(|org| {
        let cap = org.epsilon_cap?;
        let added = (epsilon_after - before.epsilon_spent).max(0.0);
        (org.epsilon_spent + added > cap * (1.0 + EPS_TOLERANCE)).then(|| {
            format!(
                "query needs ε={added:.4}; organisation {} has ε={:.4} of its cap {cap:.4} left across its scenarios",
                org.credit_code,
                (cap - org.epsilon_spent).max(0.0)
            )
        })
    });
    if over_eps || over_delta || over_cap.is_some() {
        let message = if let Some(m) = over_cap.filter(|_| !(over_eps || over_delta)) {
            m
        } else if zcdp {
            format!(
                "query needs ρ={:.6}; scenario has ρ={:.6} of {:.6} left (zCDP)",
                c.rho,
                (before.rho_total - before.rho_spent).max(0.0),
                before.rho_total
            )
        } else {
            format!(
                "query needs ε={:.4} δ={:e}; scenario has ε={:.4} of {:.4} and δ={:e} of {:e} left",
                c.epsilon,
                c.delta,
                before.epsilon_remaining(),
                before.epsilon_total,
                (before.delta_total - before.delta_spent).max(0.0),
                before.delta_total
            )
        };
        tx.execute(
            "INSERT INTO queries (id, job_id, scenario_id, sql, status, rule, reason, created_at)
             VALUES (?1, ?2, ?3, ?4, 'refused', 'budget_exhausted', ?5, ?6)",
            args![c.query_id, c.job_id, c.scenario_id, c.sql, message, now],
        )?;
        audit::append(
            &tx,
            c.actor,
            EventKind::QueryRefused,
            &Subject::Scenario(c.scenario_id),
            json!({"query_id": c.query_id, "job_id": c.job_id, "sql": c.sql, "rule": "budget_exhausted", "reason": message}),
        )?;
        tx.commit()?;
        return Err(Error::Refused(Refusal::new(Rule::BudgetExhausted, message)).into());
    }
    tx.execute(
        "INSERT INTO queries (id, job_id, scenario_id, sql, status, epsilon, delta, mechanism, created_at)
         VALUES (?1, ?2, ?3, ?4, 'answered', ?5, ?6, ?7, ?8)",
        args![c.query_id, c.job_id, c.scenario_id, c.sql, c.epsilon, c.delta, c.mechanism, now],
    )?;
    for (dataset, version) in c.datasets {
        tx.execute(
            "INSERT OR IGNORE INTO query_datasets (query_id, dataset, version) VALUES (?1, ?2, ?3)",
            args![c.query_id, dataset, version],
        )?;
    }
    tx.execute(
        "INSERT INTO ledger (scenario_id, job_id, query_id, epsilon, delta, rho, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        args![
            c.scenario_id,
            c.job_id,
            c.query_id,
            c.epsilon,
            c.delta,
            c.rho,
            now
        ],
    )?;
    if zcdp {
        tx.execute(
            "UPDATE scenarios SET rho_spent = ?2, epsilon_spent = ?3 WHERE id = ?1",
            args![c.scenario_id, rho_after, epsilon_after],
        )?;
    } else {
        // Clamp to the total so float rounding cannot trip the CHECK on an exact spend.
        tx.execute(
            "UPDATE scenarios SET
                 epsilon_spent = CASE WHEN epsilon_spent + ?2 > epsilon_total
                                      THEN epsilon_total ELSE epsilon_spent + ?2 END,
                 delta_spent = CASE WHEN delta_spent + ?3 > delta_total
                                    THEN delta_total ELSE delta_spent + ?3 END
             WHERE id = ?1",
            args![c.scenario_id, c.epsilon, c.delta],
        )?;
    }
    audit::append(
        &tx,
        c.actor,
        EventKind::QueryCharged,
        &Subject::Scenario(c.scenario_id),
        json!({"query_id": c.query_id, "job_id": c.job_id, "sql": c.sql, "epsilon": c.epsilon, "delta": c.delta, "rho": c.rho, "mechanism": c.mechanism}),
    )?;
    let after = balance(&tx, c.scenario_id)?;
    tx.commit()?;
    Ok(after)
}

/// Sum of the ledger's rows for a scenario: must equal the running total.
pub fn ledger_sum(conn: &Conn, scenario_id: i64) -> Result<f64> {
    conn.query_row(
        "SELECT COALESCE(SUM(epsilon), 0) FROM ledger WHERE scenario_id = ?1",
        args![scenario_id],
        |r| r.get(0),
    )
}
