//! Emergency stops (QQHR Art. 20): a supervisor or an operator stops a scenario, a
//! developer or the whole domain. Running jobs it covers are interrupted, new jobs and
//! queries it covers are refused, until the stop is lifted. Every step is audited.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::json;

use crate::identity::{self, Role};
use crate::wasm::StopTarget;
use crate::{Domain, Error, Result, audit, store};

/// What a stop covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "scope", content = "target", rename_all = "snake_case")]
pub enum Scope {
    /// One scenario (by id).
    Scenario(i64),
    /// One developer (by principal name).
    Developer(String),
    /// Everything.
    Domain,
}

impl Scope {
    fn parts(&self) -> (&'static str, String) {
        match self {
            Scope::Scenario(id) => ("scenario", id.to_string()),
            Scope::Developer(name) => ("developer", name.clone()),
            Scope::Domain => ("domain", String::new()),
        }
    }

    fn target(&self) -> StopTarget {
        match self {
            Scope::Scenario(id) => StopTarget::Scenario(*id),
            Scope::Developer(name) => StopTarget::Developer(name.clone()),
            Scope::Domain => StopTarget::Domain,
        }
    }
}

/// A stop as recorded.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Stop {
    /// Id.
    pub id: i64,
    /// What it covers.
    #[serde(flatten)]
    pub scope: Scope,
    /// Why.
    pub reason: String,
    /// Who stopped.
    pub stopped_by: String,
    /// When.
    pub created_at: String,
    /// Jobs of this process interrupted when the stop was made.
    pub interrupted: Vec<String>,
}

fn require_authority(conn: &Connection, actor: &str) -> Result<()> {
    let p = identity::find(conn, actor)?
        .ok_or_else(|| Error::Forbidden(format!("unknown principal `{actor}`")))?;
    if !matches!(p.role, Role::Supervisor | Role::Operator) {
        return Err(Error::Forbidden(format!(
            "`{actor}` is a {}; an emergency stop needs a supervisor or an operator",
            p.role
        )));
    }
    Ok(())
}

/// Puts a stop in force and interrupts the running jobs it covers.
pub fn stop(domain: &Domain, actor: &str, scope: Scope, reason: &str) -> Result<Stop> {
    let mut conn = domain.conn()?;
    require_authority(&conn, actor)?;
    if reason.trim().is_empty() {
        return Err(Error::Conflict("an emergency stop needs a reason".into()));
    }
    let (kind, target) = scope.parts();
    let now = store::now();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO stops (scope, target, reason, stopped_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![kind, target, reason, actor, now],
    )?;
    let id = tx.last_insert_rowid();
    // In force before any running job is interrupted: a job cannot slip a query in between.
    let interrupted = domain.host().stop(domain.layout().root(), &scope.target());
    audit::append(
        &tx,
        actor,
        "stop.imposed",
        &format!("stop:{id}"),
        json!({"scope": kind, "target": target, "reason": reason, "interrupted": interrupted}),
    )?;
    tx.commit()?;
    Ok(Stop {
        id,
        scope,
        reason: reason.to_string(),
        stopped_by: actor.to_string(),
        created_at: now,
        interrupted,
    })
}

/// Lifts a stop.
pub fn lift(domain: &Domain, actor: &str, id: i64, reason: &str) -> Result<()> {
    let mut conn = domain.conn()?;
    require_authority(&conn, actor)?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let n = tx.execute(
        "UPDATE stops SET lifted_by = ?2, lifted_at = ?3 WHERE id = ?1 AND lifted_at IS NULL",
        params![id, actor, store::now()],
    )?;
    if n == 0 {
        return Err(Error::NotFound(format!("no stop {id} in force")));
    }
    audit::append(
        &tx,
        actor,
        "stop.lifted",
        &format!("stop:{id}"),
        json!({"reason": reason}),
    )?;
    tx.commit()?;
    Ok(())
}

/// The stop in force that covers work of `developer` under scenario `scenario_id`, if any.
pub fn in_force(conn: &Connection, scenario_id: i64, developer: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT id, scope, reason FROM stops WHERE lifted_at IS NULL AND (
                 scope = 'domain'
                 OR (scope = 'scenario' AND target = ?1)
                 OR (scope = 'developer' AND target = ?2))
             ORDER BY id LIMIT 1",
            params![scenario_id.to_string(), developer],
            |r| {
                Ok(format!(
                    "stop {} on the {} is in force: {}",
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?
                ))
            },
        )
        .optional()?)
}
