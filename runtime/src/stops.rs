//! Emergency stops (QQHR Art. 20): a supervisor or an operator stops a scenario, a
//! developer or the whole domain. Running jobs it covers are interrupted once the stop is
//! recorded, and new jobs, queries and review decisions it covers are refused, until the
//! stop is lifted. Every step is audited.

use sandbox_core::audit::{EventKind, Subject};
use sandbox_core::authz::Action;
use sandbox_core::job::{Interrupt, StopTarget};
use sandbox_store::authz::{self, On};
use sandbox_store::{audit, stops};
use serde::Serialize;
use serde_json::json;

pub use sandbox_store::stops::StopRow as StopEntry;

use crate::{Domain, Error, Result};

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

/// Puts a stop in force and, once it is recorded, interrupts the running jobs it covers.
pub fn stop(domain: &Domain, actor: &str, scope: Scope, reason: &str) -> Result<Stop> {
    let mut conn = domain.conn()?;
    authz::authorize(&conn, actor, Action::Stop, On::Domain)?;
    if reason.trim().is_empty() {
        return Err(Error::Invalid("an emergency stop needs a reason".into()));
    }
    let (kind, target) = scope.parts();
    let now = sandbox_store::now();
    let tx = conn.write()?;
    let id = stops::insert(&tx, kind, &target, reason, actor, &now)?;
    let covered = domain.covered(&scope.target());
    audit::append(
        &tx,
        actor,
        EventKind::StopImposed,
        &Subject::Stop(id),
        json!({"scope": kind, "target": target, "reason": reason, "interrupted": covered}),
    )?;
    // In force (committed) before any running job is interrupted, so a job cannot slip a
    // query in between: the mediator refuses it from the commit on.
    let interrupted = domain.commit_interrupting(tx, &scope.target(), Interrupt::Stop)?;
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
    authz::authorize(&conn, actor, Action::Stop, On::Domain)?;
    if reason.trim().is_empty() {
        return Err(Error::Invalid("lifting a stop needs a reason".into()));
    }
    let tx = conn.write()?;
    if !stops::lift(&tx, id, actor)? {
        return Err(Error::NotFound(format!("no stop {id} in force")));
    }
    audit::append(
        &tx,
        actor,
        EventKind::StopLifted,
        &Subject::Stop(id),
        json!({"reason": reason}),
    )?;
    tx.commit()?;
    Ok(())
}

/// The stops in force, newest first; with `all`, the lifted ones too. For operators and
/// supervisors (who impose and lift them).
pub fn list(domain: &Domain, actor: &str, all: bool) -> Result<Vec<StopEntry>> {
    let conn = domain.conn()?;
    authz::authorize(&conn, actor, Action::Stop, On::Domain)?;
    Ok(stops::list(&conn, all)?)
}
