//! Scenarios: a developer applies, an operator decides (JZ Art. 11; QQHR Art. 15, 16).

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use sandbox_policies::{Policy, Scenario};
use serde::Serialize;
use serde_json::json;

use crate::identity::{self, Role};
use crate::{Domain, Error, Result, audit, catalog, store};

/// Where a scenario stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Applied for, not decided.
    Pending,
    /// Approved: jobs may run within its window.
    Approved,
    /// Rejected by an operator.
    Rejected,
    /// Suspended (usage monitoring or emergency stop).
    Suspended,
    /// Revoked for good.
    Revoked,
}

impl Status {
    fn parse(s: &str) -> Result<Status> {
        Ok(match s {
            "pending" => Status::Pending,
            "approved" => Status::Approved,
            "rejected" => Status::Rejected,
            "suspended" => Status::Suspended,
            "revoked" => Status::Revoked,
            other => return Err(Error::Internal(format!("scenario status `{other}`"))),
        })
    }

    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Rejected => "rejected",
            Status::Suspended => "suspended",
            Status::Revoked => "revoked",
        }
    }
}

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

/// A developer applies for a scenario. The scenario is checked against the registered
/// policies: datasets exist, columns exist and are not `none`.
pub fn apply(domain: &Domain, actor: &str, spec_text: &str) -> Result<ScenarioRecord> {
    let mut conn = domain.conn()?;
    identity::require(&conn, actor, Role::Developer)?;
    let spec = Scenario::from_toml_str(spec_text)?;
    let mut policies: Vec<Policy> = Vec::new();
    for d in &spec.datasets {
        match catalog::get(&conn, domain, &d.name) {
            Ok(v) => policies.push(v.policy),
            Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    spec.validate_against(|name| policies.iter().find(|p| p.dataset.name == name))?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let exists: Option<i64> = tx
        .query_row(
            "SELECT id FROM scenarios WHERE name = ?1",
            params![spec.name],
            |r| r.get(0),
        )
        .optional()?;
    if exists.is_some() {
        return Err(Error::Conflict(format!("scenario `{}` exists", spec.name)));
    }
    tx.execute(
        "INSERT INTO scenarios (name, developer, spec_toml, status, epsilon_total, delta_total, rho_total, created_at)
         VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6, ?7)",
        params![
            spec.name,
            actor,
            spec_text,
            spec.budget.epsilon,
            spec.budget.delta,
            spec.budget.rho_total(),
            store::now()
        ],
    )?;
    let id = tx.last_insert_rowid();
    audit::append(
        &tx,
        actor,
        "scenario.applied",
        &format!("scenario:{id}"),
        json!({"name": spec.name, "purpose": spec.purpose, "datasets": spec.datasets, "valid_from": spec.valid_from, "valid_until": spec.valid_until, "budget": spec.budget, "mode": spec.mode}),
    )?;
    tx.commit()?;
    get(&conn, id)
}

/// An operator approves or rejects a pending scenario. Nobody decides their own
/// application (JZ Art. 15).
pub fn decide(
    domain: &Domain,
    actor: &str,
    id: i64,
    approve: bool,
    reason: Option<&str>,
) -> Result<ScenarioRecord> {
    let mut conn = domain.conn()?;
    identity::require(&conn, actor, Role::Operator)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let record = get(&tx, id)?;
    if record.developer == actor {
        return Err(Error::Forbidden("nobody decides their own scenario".into()));
    }
    if record.status != Status::Pending {
        return Err(Error::Conflict(format!(
            "scenario {id} is {}, not pending",
            record.status.as_str()
        )));
    }
    let status = if approve {
        Status::Approved
    } else {
        Status::Rejected
    };
    tx.execute(
        "UPDATE scenarios SET status = ?2, decided_by = ?3, decided_at = ?4, decision_reason = ?5 WHERE id = ?1",
        params![id, status.as_str(), actor, store::now(), reason],
    )?;
    audit::append(
        &tx,
        actor,
        if approve {
            "scenario.approved"
        } else {
            "scenario.rejected"
        },
        &format!("scenario:{id}"),
        json!({"reason": reason}),
    )?;
    tx.commit()?;
    get(&conn, id)
}

/// Reads a scenario.
pub fn get(conn: &Connection, id: i64) -> Result<ScenarioRecord> {
    let row = conn
        .query_row(
            "SELECT developer, spec_toml, status, decided_by, epsilon_spent FROM scenarios WHERE id = ?1",
            params![id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, f64>(4)?,
                ))
            },
        )
        .optional()?
        .ok_or_else(|| Error::NotFound(format!("scenario {id}")))?;
    let (developer, spec_toml, status, decided_by, epsilon_spent) = row;
    Ok(ScenarioRecord {
        id,
        developer,
        spec: Scenario::from_toml_str(&spec_toml)?,
        status: Status::parse(&status)?,
        decided_by,
        epsilon_spent,
    })
}

/// Finds a scenario by id or name.
pub fn resolve(conn: &Connection, key: &str) -> Result<ScenarioRecord> {
    if let Ok(id) = key.parse::<i64>() {
        return get(conn, id);
    }
    let id: i64 = conn
        .query_row(
            "SELECT id FROM scenarios WHERE name = ?1",
            params![key],
            |r| r.get(0),
        )
        .optional()?
        .ok_or_else(|| Error::NotFound(format!("scenario `{key}`")))?;
    get(conn, id)
}

/// Every scenario.
pub fn list(conn: &Connection) -> Result<Vec<ScenarioRecord>> {
    let ids: Vec<i64> = conn
        .prepare("SELECT id FROM scenarios ORDER BY id")?
        .query_map([], |r| r.get(0))?
        .collect::<std::result::Result<_, _>>()?;
    ids.into_iter().map(|id| get(conn, id)).collect()
}

/// Checks that a scenario may be used today: approved and within its window.
pub fn check_usable(record: &ScenarioRecord, today: chrono::NaiveDate) -> Result<()> {
    if record.status != Status::Approved {
        return Err(Error::Forbidden(format!(
            "scenario `{}` is {}",
            record.spec.name,
            record.status.as_str()
        )));
    }
    if !record.spec.is_valid_on(today) {
        return Err(Error::Forbidden(format!(
            "scenario `{}` is valid from {} until {}; today is {today}",
            record.spec.name, record.spec.valid_from, record.spec.valid_until
        )));
    }
    Ok(())
}

/// An operator's change to an approved scenario's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Approved → suspended: jobs and queries refused until reinstated (Shuangyashan
    /// Art. 31: rectify, else cut off).
    Suspend,
    /// Suspended → approved. Usage monitoring counts refusals afresh from here.
    Reinstate,
    /// Pending, approved or suspended → revoked, for good.
    Revoke,
}

impl Change {
    fn action(self) -> &'static str {
        match self {
            Change::Suspend => "scenario.suspended",
            Change::Reinstate => "scenario.reinstated",
            Change::Revoke => "scenario.revoked",
        }
    }
}

/// Suspends, reinstates or revokes a scenario (operators; a reason is required). Running
/// jobs of a suspended or revoked scenario in this process are interrupted, and the
/// mediator refuses its queries wherever they come from.
pub fn change(
    domain: &Domain,
    actor: &str,
    id: i64,
    change: Change,
    reason: &str,
) -> Result<ScenarioRecord> {
    let mut conn = domain.conn()?;
    identity::require(&conn, actor, Role::Operator)?;
    if reason.trim().is_empty() {
        return Err(Error::Conflict(format!(
            "{} needs a reason",
            change.action()
        )));
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let record = get(&tx, id)?;
    let to = match (change, record.status) {
        (Change::Suspend, Status::Approved) => Status::Suspended,
        (Change::Reinstate, Status::Suspended) => Status::Approved,
        (Change::Revoke, Status::Pending | Status::Approved | Status::Suspended) => Status::Revoked,
        (_, from) => {
            return Err(Error::Conflict(format!(
                "scenario {id} is {}; it cannot be {}",
                from.as_str(),
                change.action().trim_start_matches("scenario.")
            )));
        }
    };
    set_status_in(&tx, id, to, reason)?;
    let interrupted = if to == Status::Approved {
        Vec::new()
    } else {
        domain.host().interrupt(
            domain.layout().root(),
            &crate::wasm::StopTarget::Scenario(id),
            crate::wasm::Interrupt::Suspended,
        )
    };
    audit::append(
        &tx,
        actor,
        change.action(),
        &format!("scenario:{id}"),
        json!({"from": record.status.as_str(), "to": to.as_str(), "reason": reason, "interrupted": interrupted}),
    )?;
    tx.commit()?;
    get(&conn, id)
}

fn set_status_in(conn: &Connection, id: i64, to: Status, reason: &str) -> Result<()> {
    conn.execute(
        "UPDATE scenarios SET status = ?2, status_reason = ?3, status_changed_at = ?4 WHERE id = ?1",
        params![id, to.as_str(), reason, store::now()],
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

/// The domain's usage settings.
pub fn usage_settings(conn: &Connection) -> Result<UsageSettings> {
    let read = |key: &str| -> Result<Option<u32>> {
        let v: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
            .optional()?;
        v.map(|v| {
            v.parse::<u32>()
                .map_err(|_| Error::Internal(format!("meta {key} = `{v}` is not a count")))
        })
        .transpose()
    };
    let d = UsageSettings::default();
    Ok(UsageSettings {
        max_refusals: read("usage_max_refusals")?.unwrap_or(d.max_refusals),
        idle_days: read("usage_idle_days")?.unwrap_or(d.idle_days),
    })
}

/// An operator sets the usage settings (recorded).
pub fn set_usage_settings(
    domain: &Domain,
    actor: &str,
    settings: UsageSettings,
) -> Result<UsageSettings> {
    let mut conn = domain.conn()?;
    identity::require(&conn, actor, Role::Operator)?;
    if settings.idle_days == 0 {
        return Err(Error::Conflict("idle days must be at least 1".into()));
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let before = usage_settings(&tx)?;
    for (key, value) in [
        ("usage_max_refusals", settings.max_refusals),
        ("usage_idle_days", settings.idle_days),
    ] {
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value.to_string()],
        )?;
    }
    audit::append(
        &tx,
        actor,
        "usage.settings",
        "domain",
        json!({"from": before, "to": settings}),
    )?;
    tx.commit()?;
    Ok(settings)
}

/// Refusals that count towards automatic suspension: a query that reached for more than
/// the scenario allows. Mistakes (syntax, types) and refusals of the scenario's own state
/// (expired, stopped, suspended, budget spent) do not.
fn over_scope_refusals(conn: &Connection, id: i64) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM queries q JOIN scenarios s ON s.id = q.scenario_id
         WHERE q.scenario_id = ?1 AND q.status = 'refused'
           AND q.rule NOT IN ('syntax', 'invalid_query', 'scenario', 'budget_exhausted')
           AND q.created_at >= COALESCE(s.status_changed_at, s.decided_at, s.created_at)",
        params![id],
        |r| r.get(0),
    )?)
}

/// Called in the transaction that records a refused query: if the scenario's over-scope
/// refusals reach the domain's limit, suspends it (recorded, by `system`) and returns why.
/// The caller interrupts its running jobs once the transaction has committed.
pub(crate) fn monitor_refusal(conn: &Connection, id: i64) -> Result<Option<String>> {
    let settings = usage_settings(conn)?;
    if settings.max_refusals == 0 {
        return Ok(None);
    }
    let status: Option<String> = conn
        .query_row(
            "SELECT status FROM scenarios WHERE id = ?1",
            params![id],
            |r| r.get(0),
        )
        .optional()?;
    if status.as_deref() != Some("approved") {
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
    set_status_in(conn, id, Status::Suspended, &reason)?;
    audit::append(
        conn,
        "system",
        "scenario.suspended",
        &format!("scenario:{id}"),
        json!({"from": "approved", "to": "suspended", "reason": reason, "refusals": refusals, "limit": settings.max_refusals}),
    )?;
    Ok(Some(reason))
}

/// One scenario's use, for usage monitoring.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Usage {
    /// Scenario id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Its developer.
    pub developer: String,
    /// Status.
    pub status: Status,
    /// Why it has that status, when an operator or monitoring changed it.
    pub status_reason: Option<String>,
    /// Last day of its validity window.
    #[schemars(with = "String")]
    pub valid_until: chrono::NaiveDate,
    /// Jobs submitted.
    pub jobs: i64,
    /// When the last job was submitted.
    pub last_job_at: Option<String>,
    /// Days since the last job (or since approval, if none).
    pub idle_days: Option<i64>,
    /// Queries answered.
    pub answered: i64,
    /// Queries refused, in all.
    pub refused: i64,
    /// Over-scope refusals counted towards suspension since approval or reinstatement.
    pub counted_refusals: i64,
    /// ε spent and granted.
    pub epsilon_spent: f64,
    /// ε granted.
    pub epsilon_total: f64,
    /// What needs a person's attention: `idle`, `expired`, `expires_soon` (within 30
    /// days), `refusals` (at half the limit or more), `suspended`.
    pub flags: Vec<&'static str>,
}

fn days_since(ts: &str, today: chrono::NaiveDate) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(ts)
        .ok()
        .map(|t| (today - t.date_naive()).num_days())
}

/// The usage of every scenario, as of `today`.
pub fn usage(conn: &Connection, today: chrono::NaiveDate) -> Result<Vec<Usage>> {
    let settings = usage_settings(conn)?;
    let mut out = Vec::new();
    for r in list(conn)? {
        let (jobs, last_job_at): (i64, Option<String>) = conn.query_row(
            "SELECT COUNT(*), MAX(created_at) FROM jobs WHERE scenario_id = ?1",
            params![r.id],
            |x| Ok((x.get(0)?, x.get(1)?)),
        )?;
        let (answered, refused): (i64, i64) = conn.query_row(
            "SELECT COALESCE(SUM(status = 'answered'), 0), COALESCE(SUM(status = 'refused'), 0) FROM queries WHERE scenario_id = ?1",
            params![r.id],
            |x| Ok((x.get(0)?, x.get(1)?)),
        )?;
        let (decided_at, status_reason, epsilon_total): (Option<String>, Option<String>, f64) =
            conn.query_row(
                "SELECT decided_at, status_reason, epsilon_total FROM scenarios WHERE id = ?1",
                params![r.id],
                |x| Ok((x.get(0)?, x.get(1)?, x.get(2)?)),
            )?;
        let since = last_job_at.as_deref().or(decided_at.as_deref());
        let idle_days = since.and_then(|t| days_since(t, today));
        let counted_refusals = over_scope_refusals(conn, r.id)?;
        let mut flags = Vec::new();
        if r.status == Status::Approved {
            if idle_days.is_some_and(|d| d >= i64::from(settings.idle_days)) {
                flags.push("idle");
            }
            if today > r.spec.valid_until {
                flags.push("expired");
            } else if (r.spec.valid_until - today).num_days() <= 30 {
                flags.push("expires_soon");
            }
            if settings.max_refusals > 0 && counted_refusals * 2 >= i64::from(settings.max_refusals)
            {
                flags.push("refusals");
            }
        }
        if r.status == Status::Suspended {
            flags.push("suspended");
        }
        out.push(Usage {
            id: r.id,
            name: r.spec.name.clone(),
            developer: r.developer.clone(),
            status: r.status,
            status_reason,
            valid_until: r.spec.valid_until,
            jobs,
            last_job_at,
            idle_days,
            answered,
            refused,
            counted_refusals,
            epsilon_spent: r.epsilon_spent,
            epsilon_total,
            flags,
        });
    }
    Ok(out)
}

/// Records a `scenario.idle` event (by `system`) for every approved scenario idle for the
/// domain's idle days, once per idle period (Shuangyashan Art. 31: three months without
/// use). Returns their ids. The operator then rectifies, suspends or revokes.
pub fn flag_idle(domain: &Domain, today: chrono::NaiveDate) -> Result<Vec<i64>> {
    let mut conn = domain.conn()?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let settings = usage_settings(&tx)?;
    let mut flagged = Vec::new();
    for u in usage(&tx, today)? {
        if !u.flags.contains(&"idle") {
            continue;
        }
        let last_flag: Option<String> = tx.query_row(
            "SELECT idle_flagged_at FROM scenarios WHERE id = ?1",
            params![u.id],
            |r| r.get(0),
        )?;
        // Flagged already, and not used since.
        if let Some(flag) = &last_flag
            && u.last_job_at.as_ref().is_none_or(|last| last < flag)
        {
            continue;
        }
        tx.execute(
            "UPDATE scenarios SET idle_flagged_at = ?2 WHERE id = ?1",
            params![u.id, store::now()],
        )?;
        audit::append(
            &tx,
            "system",
            "scenario.idle",
            &format!("scenario:{}", u.id),
            json!({"idle_days": u.idle_days, "last_job_at": u.last_job_at, "limit_days": settings.idle_days}),
        )?;
        flagged.push(u.id);
    }
    tx.commit()?;
    Ok(flagged)
}
