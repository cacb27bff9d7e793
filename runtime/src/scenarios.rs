//! Scenarios: a developer applies, an operator decides (JZ Art. 11; QQHR Art. 15, 16);
//! operators suspend, reinstate and revoke them; usage monitoring watches their use
//! (Shuangyashan Art. 31).

use sandbox_core::audit::{EventKind, Subject};
use sandbox_core::authz::Action;
use sandbox_core::job::{Interrupt, StopTarget};
use sandbox_policies::{Policy, Scenario};
use sandbox_store::authz::{self, On};
use sandbox_store::{audit, catalog, ledger, scenarios};
use serde::Serialize;
use serde_json::json;

pub use sandbox_core::ScenarioStatus as Status;
pub use sandbox_store::ledger::Balance;
pub use sandbox_store::scenarios::{ScenarioRecord, UsageSettings};

use crate::{Domain, Error, Result};

/// A developer applies for a scenario. The scenario is checked against the registered
/// policies: datasets exist, columns exist and are not `none`.
pub fn apply(domain: &Domain, actor: &str, spec_text: &str) -> Result<ScenarioRecord> {
    let mut conn = domain.conn()?;
    authz::authorize(&conn, actor, Action::ScenarioApply, On::Domain)?;
    let spec = Scenario::from_toml_str(spec_text)?;
    let mut policies: Vec<Policy> = Vec::new();
    for d in &spec.datasets {
        match catalog::get(&conn, &d.name).map_err(Error::from) {
            Ok(v) => policies.push(v.policy),
            Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    spec.validate_against(|name| policies.iter().find(|p| p.dataset.name == name))?;
    not_retired(&conn, &spec)?;
    recipients_known(&conn, &spec)?;
    crate::consent::conditions_hold(&conn, &spec, None)?;
    let tx = conn.write()?;
    if scenarios::id_of(&tx, &spec.name)?.is_some() {
        return Err(Error::Conflict(format!("scenario `{}` exists", spec.name)));
    }
    let id = scenarios::insert(&tx, &spec, spec_text, actor)?;
    audit::append(
        &tx,
        actor,
        EventKind::ScenarioApplied,
        &Subject::Scenario(id),
        json!({"name": spec.name, "purpose": spec.purpose, "datasets": spec.datasets, "valid_from": spec.valid_from, "valid_until": spec.valid_until, "budget": spec.budget, "mode": spec.mode, "type": spec.scenario_type, "recipients": spec.recipients}),
    )?;
    let record = scenarios::get(&tx, id)?;
    tx.commit()?;
    Ok(record)
}

/// The recipients a scenario names are data users or registered organisations (TJ-Sec
/// Art. 9, 11): a product's scope names only those who can receive it.
fn recipients_known(conn: &sandbox_store::Conn, spec: &Scenario) -> Result<()> {
    for r in &spec.recipients {
        match r {
            sandbox_policies::Grantee::Principal(name) => {
                match sandbox_store::principals::lookup(conn, name)? {
                    Some(p) if p.role == sandbox_core::principal::Role::DataUser => {}
                    Some(p) => {
                        return Err(Error::Invalid(format!(
                            "recipients: `{name}` is a {}, not a data user",
                            p.role
                        )));
                    }
                    None => {
                        return Err(Error::Invalid(format!("recipients: no principal `{name}`")));
                    }
                }
            }
            sandbox_policies::Grantee::Organisation(code) => {
                if sandbox_store::organisations::get(conn, code)?.is_none() {
                    return Err(Error::Invalid(format!(
                        "recipients: no organisation {code} in the register"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// An operator approves or rejects a pending scenario (by id or name). Nobody decides their own
/// application (JZ Art. 15). An approval makes the scenario usable once every consent it
/// needs is in (`consent::promote`; at once, if they are); until then it stays pending,
/// approved by the operator.
pub fn decide(
    domain: &Domain,
    actor: &str,
    key: &str,
    approve: bool,
    reason: Option<&str>,
) -> Result<ScenarioRecord> {
    let mut conn = domain.conn()?;
    authz::authorize(&conn, actor, Action::ScenarioDecide, On::Domain)?;
    let tx = conn.write()?;
    let record = scenarios::resolve(&tx, key)?;
    let id = record.id;
    if record.developer == actor {
        return Err(Error::Forbidden("nobody decides their own scenario".into()));
    }
    if record.status != Status::Pending {
        return Err(Error::Conflict(format!(
            "scenario {id} is {}, not pending",
            record.status.as_str()
        )));
    }
    if let Some(by) = &record.decided_by {
        return Err(Error::Conflict(format!(
            "scenario {id} was approved by `{by}`; it awaits its consents"
        )));
    }
    if approve {
        not_retired(&tx, &record.spec)?;
        recipients_known(&tx, &record.spec)?;
        crate::consent::conditions_hold(&tx, &record.spec, Some(id))?;
    }
    let status = if approve {
        Status::Pending
    } else {
        Status::Rejected
    };
    scenarios::decide(&tx, id, status, actor, reason)?;
    let awaiting: Vec<serde_json::Value> = if approve {
        crate::consent::state(&tx, &scenarios::get(&tx, id)?)?
            .items
            .iter()
            .filter(|i| i.state != crate::consent::ConsentState::NoObjection)
            .map(|i| json!({"party": i.party, "dataset": i.dataset}))
            .collect()
    } else {
        Vec::new()
    };
    audit::append(
        &tx,
        actor,
        if approve {
            EventKind::ScenarioApproved
        } else {
            EventKind::ScenarioRejected
        },
        &Subject::Scenario(id),
        json!({"reason": reason, "awaiting": awaiting}),
    )?;
    let record = if approve {
        crate::consent::promote(&tx, id, actor)?
    } else {
        scenarios::get(&tx, id)?
    };
    tx.commit()?;
    Ok(record)
}

/// Refuses a new scenario over a retired dataset (one registered by mistake).
fn not_retired(conn: &sandbox_store::Conn, spec: &Scenario) -> Result<()> {
    for d in &spec.datasets {
        if let Some(r) = catalog::retired(conn, &d.name)? {
            return Err(Error::Invalid(format!(
                "dataset `{}` was retired on {} by {}: {}",
                d.name, r.at, r.by, r.reason
            )));
        }
    }
    Ok(())
}

/// A scenario, by id or name, for someone who belongs to it (see
/// [`sandbox_store::authz::member`]).
pub fn show(domain: &Domain, actor: &str, key: &str) -> Result<ScenarioRecord> {
    let conn = domain.conn()?;
    let who = authz::authorize(&conn, actor, Action::ScenarioRead, On::Domain)?;
    let record = scenarios::resolve(&conn, key)?;
    if !authz::member(&conn, &who, &record)? {
        return Err(Error::Forbidden(format!(
            "`{actor}` is not a member of scenario {}",
            record.id
        )));
    }
    Ok(record)
}

/// The scenarios `actor` belongs to.
pub fn list(domain: &Domain, actor: &str) -> Result<Vec<ScenarioRecord>> {
    let conn = domain.conn()?;
    let who = authz::authorize(&conn, actor, Action::ScenarioRead, On::Domain)?;
    let mut out = Vec::new();
    for r in scenarios::list(&conn)? {
        if authz::member(&conn, &who, &r)? {
            out.push(r);
        }
    }
    Ok(out)
}

/// A scenario's budget, for its members who may read budgets.
pub fn budget(domain: &Domain, actor: &str, key: &str) -> Result<Balance> {
    let conn = domain.conn()?;
    let record = scenarios::resolve(&conn, key)?;
    authz::authorize(&conn, actor, Action::BudgetRead, On::Scenario(&record))?;
    Ok(ledger::balance(&conn, record.id)?)
}

/// An operator's change to a scenario's standing.
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
    fn kind(self) -> EventKind {
        match self {
            Change::Suspend => EventKind::ScenarioSuspended,
            Change::Reinstate => EventKind::ScenarioReinstated,
            Change::Revoke => EventKind::ScenarioRevoked,
        }
    }
}

/// Suspends, reinstates or revokes a scenario (operators; a reason is required). Once
/// that is recorded, running jobs of a suspended or revoked scenario in this process are
/// interrupted, and the mediator refuses its queries wherever they come from.
pub fn change(
    domain: &Domain,
    actor: &str,
    key: &str,
    change: Change,
    reason: &str,
) -> Result<ScenarioRecord> {
    let mut conn = domain.conn()?;
    authz::authorize(&conn, actor, Action::ScenarioStatus, On::Domain)?;
    if reason.trim().is_empty() {
        return Err(Error::Invalid(format!(
            "{} needs a reason",
            change.kind().as_str()
        )));
    }
    let tx = conn.write()?;
    let record = scenarios::resolve(&tx, key)?;
    let id = record.id;
    let to = match (change, record.status) {
        (Change::Suspend, Status::Approved) => Status::Suspended,
        (Change::Reinstate, Status::Suspended) => Status::Approved,
        (Change::Revoke, Status::Pending | Status::Approved | Status::Suspended) => Status::Revoked,
        (_, from) => {
            return Err(Error::Conflict(format!(
                "scenario {id} is {}; it cannot be {}",
                from.as_str(),
                change.kind().as_str().trim_start_matches("scenario.")
            )));
        }
    };
    scenarios::set_status(&tx, id, to, reason)?;
    let target = StopTarget::Scenario(id);
    let interrupts = to != Status::Approved;
    let covered = if interrupts {
        domain.covered(&target)
    } else {
        Vec::new()
    };
    audit::append(
        &tx,
        actor,
        change.kind(),
        &Subject::Scenario(id),
        json!({"from": record.status.as_str(), "to": to.as_str(), "reason": reason, "interrupted": covered}),
    )?;
    if interrupts {
        domain.commit_interrupting(tx, &target, Interrupt::Suspended)?;
    } else {
        tx.commit()?;
    }
    Ok(scenarios::get(&conn, id)?)
}

/// The domain's usage settings (operators and supervisors).
pub fn usage_settings(domain: &Domain, actor: &str) -> Result<UsageSettings> {
    let conn = domain.conn()?;
    authz::authorize(&conn, actor, Action::UsageRead, On::Domain)?;
    Ok(scenarios::usage_settings(&conn)?)
}

/// An operator sets the usage settings (recorded).
pub fn set_usage_settings(
    domain: &Domain,
    actor: &str,
    settings: UsageSettings,
) -> Result<UsageSettings> {
    let mut conn = domain.conn()?;
    authz::authorize(&conn, actor, Action::UsageSettings, On::Domain)?;
    if settings.idle_days == 0 {
        return Err(Error::Invalid("idle days must be at least 1".into()));
    }
    let tx = conn.write()?;
    let before = scenarios::usage_settings(&tx)?;
    scenarios::set_usage_settings(&tx, settings)?;
    audit::append(
        &tx,
        actor,
        EventKind::UsageSettings,
        &Subject::Domain,
        json!({"from": before, "to": settings}),
    )?;
    tx.commit()?;
    Ok(settings)
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
    /// When it was last flagged idle.
    #[serde(skip)]
    #[schemars(skip)]
    idle_flagged_at: Option<String>,
}

fn days_since(ts: &str, today: chrono::NaiveDate) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(ts)
        .ok()
        .map(|t| (today - t.date_naive()).num_days())
}

fn usage_of(conn: &sandbox_store::Conn, today: chrono::NaiveDate) -> Result<Vec<Usage>> {
    let settings = scenarios::usage_settings(conn)?;
    let mut out = Vec::new();
    for r in scenarios::list(conn)? {
        let c = scenarios::usage_counts(conn, r.id)?;
        let since = c.last_job_at.as_deref().or(c.decided_at.as_deref());
        let idle_days = since.and_then(|t| days_since(t, today));
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
            if settings.max_refusals > 0
                && c.counted_refusals * 2 >= i64::from(settings.max_refusals)
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
            status_reason: c.status_reason,
            valid_until: r.spec.valid_until,
            jobs: c.jobs,
            last_job_at: c.last_job_at,
            idle_days,
            answered: c.answered,
            refused: c.refused,
            counted_refusals: c.counted_refusals,
            epsilon_spent: r.epsilon_spent,
            epsilon_total: c.epsilon_total,
            flags,
            idle_flagged_at: c.idle_flagged_at,
        });
    }
    Ok(out)
}

/// The usage of every scenario, as of `today` (operators and supervisors).
pub fn usage(domain: &Domain, actor: &str, today: chrono::NaiveDate) -> Result<Vec<Usage>> {
    let conn = domain.conn()?;
    authz::authorize(&conn, actor, Action::UsageRead, On::Domain)?;
    usage_of(&conn, today)
}

/// Records a `scenario.idle` event (by `system`) for every approved scenario idle for the
/// domain's idle days, once per idle period (Shuangyashan Art. 31: three months without
/// use). Returns their ids. The operator then rectifies, suspends or revokes.
pub fn flag_idle(domain: &Domain, today: chrono::NaiveDate) -> Result<Vec<i64>> {
    let mut conn = domain.conn()?;
    let tx = conn.write()?;
    let settings = scenarios::usage_settings(&tx)?;
    let mut flagged = Vec::new();
    for u in usage_of(&tx, today)? {
        if !u.flags.contains(&"idle") {
            continue;
        }
        // Flagged already, and not used since.
        if let Some(flag) = &u.idle_flagged_at
            && u.last_job_at.as_ref().is_none_or(|last| last < flag)
        {
            continue;
        }
        scenarios::mark_idle(&tx, u.id)?;
        audit::append(
            &tx,
            "system",
            EventKind::ScenarioIdle,
            &Subject::Scenario(u.id),
            json!({"idle_days": u.idle_days, "last_job_at": u.last_job_at, "limit_days": settings.idle_days}),
        )?;
        flagged.push(u.id);
    }
    tx.commit()?;
    Ok(flagged)
}
