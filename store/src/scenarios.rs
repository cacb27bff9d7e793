//! Table `scenarios`: applications, decisions, standing, budgets' totals (the ledger keeps
//! the charges), and usage monitoring's counts (Shuangyashan Art. 31).

use crate::db::{OptionalExt, args};
use sandbox_core::ScenarioStatus as Status;
use sandbox_core::audit::{EventKind, Subject};
use sandbox_policies::Scenario;
use serde::Serialize;
use serde_json::json;

use crate::{Conn, DomainError, Result, audit, meta};

/// A stored scenario.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ScenarioRecord {
    /// Id.
    pub id: i64,
    /// The developer who applied.
    pub developer: String,
    /// The agreement.
    pub spec: Scenario,
    /// Status.
    pub status: Status,
    /// Who decided.
    pub decided_by: Option<String>,
    /// ε spent.
    pub epsilon_spent: f64,
}

impl ScenarioRecord {
    /// Refuses unless the scenario may be used on `today`: approved and within its window.
    pub fn check_usable(&self, today: chrono::NaiveDate) -> sandbox_core::Result<()> {
        if self.status != Status::Approved {
            return Err(DomainError::Forbidden(format!(
                "scenario `{}` is {}",
                self.spec.name,
                self.status.as_str()
            )));
        }
        if !self.spec.is_valid_on(today) {
            return Err(DomainError::Forbidden(format!(
                "scenario `{}` is valid from {} until {}; today is {today}",
                self.spec.name, self.spec.valid_from, self.spec.valid_until
            )));
        }
        Ok(())
    }
}

/// Records an application (pending). Returns its id.
pub fn insert(conn: &Conn, spec: &Scenario, spec_text: &str, developer: &str) -> Result<i64> {
    conn.insert(
        "INSERT INTO scenarios (name, developer, spec_toml, status, epsilon_total, delta_total, rho_total, created_at)
         VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6, ?7)",
        args![
            spec.name,
            developer,
            spec_text,
            spec.budget.epsilon,
            spec.budget.delta,
            spec.budget.rho_total(),
            crate::now()
        ],
    )
}

/// The id of the scenario named `name`, if any.
pub fn id_of(conn: &Conn, name: &str) -> Result<Option<i64>> {
    conn.query_row(
        "SELECT id FROM scenarios WHERE name = ?1",
        args![name],
        |r| r.get(0),
    )
    .optional()
}

/// Reads a scenario.
pub fn get(conn: &Conn, id: i64) -> Result<ScenarioRecord> {
    let row = conn
        .query_row("SELECT developer, spec_toml, status, decided_by, epsilon_spent FROM scenarios WHERE id = ?1", args![id], |r| {
            Ok((
                r.get::<String>(0)?,
                r.get::<String>(1)?,
                r.get::<String>(2)?,
                r.get::<Option<String>>(3)?,
                r.get::<f64>(4)?,
            ))
        })
        .optional()?
        .ok_or_else(|| DomainError::NotFound(format!("scenario {id}")))?;
    let (developer, spec_toml, status, decided_by, epsilon_spent) = row;
    Ok(ScenarioRecord {
        id,
        developer,
        spec: parsed(&spec_toml)?,
        status: Status::parse(&status)?,
        decided_by,
        epsilon_spent,
    })
}

/// A stored agreement, parsed: every query reads its scenario (several times), and parsing
/// the TOML was a measurable part of a small query's time. Kept by its text, so an entry
/// can never answer for another agreement, whatever the domain or the row.
fn parsed(spec_toml: &str) -> Result<Scenario> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock, PoisonError};
    const KEPT: usize = 256;
    static PARSED: OnceLock<Mutex<HashMap<String, Scenario>>> = OnceLock::new();
    let cache = PARSED.get_or_init(Mutex::default);
    if let Some(spec) = cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(spec_toml)
    {
        return Ok(spec.clone());
    }
    let spec = Scenario::from_stored_toml(spec_toml).map_err(DomainError::from)?;
    let mut kept = cache.lock().unwrap_or_else(PoisonError::into_inner);
    if kept.len() >= KEPT {
        kept.clear();
    }
    kept.insert(spec_toml.to_string(), spec.clone());
    Ok(spec)
}

/// Finds a scenario by id or name.
pub fn resolve(conn: &Conn, key: &str) -> Result<ScenarioRecord> {
    if let Ok(id) = key.parse::<i64>() {
        return get(conn, id);
    }
    let id = id_of(conn, key)?.ok_or_else(|| DomainError::NotFound(format!("scenario `{key}`")))?;
    get(conn, id)
}

/// Every scenario, by id.
pub fn list(conn: &Conn) -> Result<Vec<ScenarioRecord>> {
    let ids: Vec<i64> = conn.rows("SELECT id FROM scenarios ORDER BY id", args![], |r| {
        r.get(0)
    })?;
    ids.into_iter().map(|id| get(conn, id)).collect()
}

/// Records an operator's decision on a pending scenario.
pub fn decide(conn: &Conn, id: i64, status: Status, by: &str, reason: Option<&str>) -> Result<()> {
    conn.execute(
        "UPDATE scenarios SET status = ?2, decided_by = ?3, decided_at = ?4, decision_reason = ?5 WHERE id = ?1",
        args![id, status.as_str(), by, crate::now(), reason],
    )?;
    Ok(())
}

/// Makes a pending scenario the operator approved usable (its consents are in).
pub fn set_usable(conn: &Conn, id: i64) -> Result<()> {
    conn.execute(
        "UPDATE scenarios SET status = 'approved' WHERE id = ?1 AND status = 'pending' AND decided_by IS NOT NULL",
        args![id],
    )?;
    Ok(())
}

/// Changes a scenario's standing (suspended, approved again, revoked), with the reason.
pub fn set_status(conn: &Conn, id: i64, to: Status, reason: &str) -> Result<()> {
    conn.execute(
        "UPDATE scenarios SET status = ?2, status_reason = ?3, status_changed_at = ?4 WHERE id = ?1",
        args![id, to.as_str(), reason, crate::now()],
    )?;
    Ok(())
}

/// Usage monitoring settings (Shuangyashan Art. 31), domain-wide.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct UsageSettings {
    /// Refused over-scope queries (since approval or reinstatement) at which a scenario is
    /// suspended automatically; 0 turns automatic suspension off.
    pub max_refusals: u32,
    /// Days without a job after which an approved scenario is flagged idle.
    pub idle_days: u32,
}

impl Default for UsageSettings {
    fn default() -> Self {
        UsageSettings {
            max_refusals: 20,
            idle_days: 90,
        }
    }
}

const MAX_REFUSALS: &str = "usage_max_refusals";
const IDLE_DAYS: &str = "usage_idle_days";

/// The domain's usage settings.
pub fn usage_settings(conn: &Conn) -> Result<UsageSettings> {
    let read = |key: &str| -> Result<Option<u32>> {
        meta::get(conn, key)?
            .map(|v| {
                v.parse::<u32>().map_err(|_| {
                    DomainError::Internal(format!("meta {key} = `{v}` is not a count")).into()
                })
            })
            .transpose()
    };
    let d = UsageSettings::default();
    Ok(UsageSettings {
        max_refusals: read(MAX_REFUSALS)?.unwrap_or(d.max_refusals),
        idle_days: read(IDLE_DAYS)?.unwrap_or(d.idle_days),
    })
}

/// Stores the usage settings.
pub fn set_usage_settings(conn: &Conn, settings: UsageSettings) -> Result<()> {
    meta::set(conn, MAX_REFUSALS, &settings.max_refusals.to_string())?;
    meta::set(conn, IDLE_DAYS, &settings.idle_days.to_string())?;
    Ok(())
}

/// Refusals that count towards automatic suspension: a query that reached for more than
/// the scenario allows. Mistakes (syntax, types) and refusals of the scenario's own state
/// (expired, stopped, suspended, budget spent) do not.
pub fn over_scope_refusals(conn: &Conn, id: i64) -> Result<i64> {
    conn.query_row(
        "SELECT COUNT(*) FROM queries q JOIN scenarios s ON s.id = q.scenario_id
         WHERE q.scenario_id = ?1 AND q.status = 'refused'
           AND q.rule NOT IN ('syntax', 'invalid_query', 'scenario', 'budget_exhausted')
           AND q.created_at >= COALESCE(s.status_changed_at, s.decided_at, s.created_at)",
        args![id],
        |r| r.get(0),
    )
}

/// Called in the transaction that records a refused query: if the scenario's over-scope
/// refusals reach the domain's limit, suspends it (recorded, by `system`) and returns why.
/// The caller interrupts its running jobs once the transaction has committed.
pub fn monitor_refusal(conn: &Conn, id: i64) -> Result<Option<String>> {
    let settings = usage_settings(conn)?;
    if settings.max_refusals == 0 {
        return Ok(None);
    }
    let status: Option<String> = conn
        .query_row(
            "SELECT status FROM scenarios WHERE id = ?1",
            args![id],
            |r| r.get(0),
        )
        .optional()?;
    if status.as_deref() != Some(Status::Approved.as_str()) {
        return Ok(None);
    }
    let refusals = over_scope_refusals(conn, id)?;
    if refusals < i64::from(settings.max_refusals) {
        return Ok(None);
    }
    let reason = format!(
        "{refusals} queries refused for reaching beyond the scenario (limit {}): suspended by usage monitoring (Shuangyashan Art. 31)",
        settings.max_refusals
    );
    set_status(conn, id, Status::Suspended, &reason)?;
    audit::append(
        conn,
        "system",
        EventKind::ScenarioSuspended,
        &Subject::Scenario(id),
        json!({"from": "approved", "to": "suspended", "reason": reason, "refusals": refusals, "limit": settings.max_refusals}),
    )?;
    Ok(Some(reason))
}

/// What usage monitoring counts of one scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageCounts {
    /// Jobs submitted.
    pub jobs: i64,
    /// When the last job was submitted.
    pub last_job_at: Option<String>,
    /// Queries answered.
    pub answered: i64,
    /// Queries refused.
    pub refused: i64,
    /// When it was decided.
    pub decided_at: Option<String>,
    /// Why it has its status.
    pub status_reason: Option<String>,
    /// ε granted.
    pub epsilon_total: f64,
    /// Over-scope refusals since approval or reinstatement.
    pub counted_refusals: i64,
    /// When it was last flagged idle.
    pub idle_flagged_at: Option<String>,
}

/// The usage counts of scenario `id`.
pub fn usage_counts(conn: &Conn, id: i64) -> Result<UsageCounts> {
    let (jobs, last_job_at): (i64, Option<String>) = conn.query_row(
        "SELECT COUNT(*), MAX(created_at) FROM jobs WHERE scenario_id = ?1",
        args![id],
        |x| Ok((x.get(0)?, x.get(1)?)),
    )?;
    let (answered, refused): (i64, i64) = conn.query_row(
        "SELECT COUNT(CASE WHEN status = 'answered' THEN 1 END), COUNT(CASE WHEN status = 'refused' THEN 1 END) FROM queries WHERE scenario_id = ?1",
        args![id],
        |x| Ok((x.get(0)?, x.get(1)?)),
    )?;
    let (decided_at, status_reason, epsilon_total, idle_flagged_at): (
        Option<String>,
        Option<String>,
        f64,
        Option<String>,
    ) = conn.query_row(
        "SELECT decided_at, status_reason, epsilon_total, idle_flagged_at FROM scenarios WHERE id = ?1",
        args![id],
        |x| Ok((x.get(0)?, x.get(1)?, x.get(2)?, x.get(3)?)),
    )?;
    Ok(UsageCounts {
        jobs,
        last_job_at,
        answered,
        refused,
        decided_at,
        status_reason,
        epsilon_total,
        counted_refusals: over_scope_refusals(conn, id)?,
        idle_flagged_at,
    })
}

/// Records that scenario `id` was flagged idle now.
pub fn mark_idle(conn: &Conn, id: i64) -> Result<()> {
    conn.execute(
        "UPDATE scenarios SET idle_flagged_at = ?2 WHERE id = ?1",
        args![id, crate::now()],
    )?;
    Ok(())
}

/// Every scenario's ε spent and granted, for the metrics.
pub fn budgets(conn: &Conn) -> Result<Vec<(i64, f64, f64)>> {
    conn.rows(
        "SELECT id, epsilon_spent, epsilon_total FROM scenarios",
        args![],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
}

/// Scenarios by status, for the metrics.
pub fn count_by_status(conn: &Conn) -> Result<Vec<(String, i64)>> {
    crate::count_by(
        conn,
        "SELECT status, COUNT(*) FROM scenarios GROUP BY status",
    )
}
