//! Scenarios: a developer applies, an operator decides (JZ Art. 11; QQHR Art. 15, 16).

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use sandbox_policies::{Policy, Scenario};
use serde::Serialize;
use serde_json::json;

use crate::identity::{self, Role};
use crate::{Domain, Error, Result, audit, catalog, store};

/// Where a scenario stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
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
