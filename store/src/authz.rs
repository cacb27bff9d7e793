//! The one authorization path: the facts a decision depends on, read in the caller's
//! connection (so inside its transaction when it has one), and decided by
//! [`sandbox_core::authz::decide`]. Every domain function that acts for a principal calls
//! [`authorize`], the mediator for every query among them.

use sandbox_core::authz::{self, Action, Facts, ScenarioFacts};
use sandbox_core::principal::{Principal, Role, Status};

use crate::scenarios::ScenarioRecord;
use crate::{Conn, Result, catalog, organisations, principals, stops};

/// What an action concerns.
#[derive(Debug, Clone, Copy)]
pub enum On<'a> {
    /// Nothing beyond the role (the catalog, principals, the audit log, ...).
    Domain,
    /// A scenario; its work is its developer's.
    Scenario(&'a ScenarioRecord),
    /// Work under a scenario submitted by someone (a job, its outputs).
    Work {
        /// The scenario.
        scenario: &'a ScenarioRecord,
        /// Who submitted the work.
        submitter: &'a str,
    },
}

/// Whether `who` belongs to scenario `record`: developers to the scenarios they applied
/// for, providers to those over a dataset they registered, operators and supervisors to
/// every one, admins to none.
pub fn member(conn: &Conn, who: &Principal, record: &ScenarioRecord) -> Result<bool> {
    Ok(match who.role {
        Role::Operator | Role::Supervisor => true,
        Role::Admin | Role::DataUser => false,
        Role::Developer => record.developer == who.name,
        Role::Provider => {
            let mut found = false;
            for d in &record.spec.datasets {
                found |= catalog::registered_by(conn, &d.name, &who.name)?;
            }
            found
        }
    })
}

/// Why a developer's work is suspended although the developer is active: a rectification
/// order over the developer, its organisation or the scenario whose deadline passed
/// unanswered (SYS Art. 31), or its organisation's qualification ended before `today`
/// (QQHR Art. 14, 23).
fn unqualified(
    conn: &Conn,
    p: &Principal,
    today: chrono::NaiveDate,
    scenario: Option<i64>,
) -> Result<Option<String>> {
    if p.role != Role::Developer {
        return Ok(None);
    }
    if let Some(o) = crate::incidents::overdue_over(
        conn,
        &crate::now(),
        &p.name,
        p.organisation.as_deref(),
        scenario,
    )? {
        return Ok(Some(format!(
            "rectification order {} ({} {}) passed its deadline {} unanswered: the work is suspended",
            o.id, o.target_kind, o.target, o.deadline
        )));
    }
    let Some(org) = organisations::standing_of(conn, &p.name)? else {
        return Ok(None);
    };
    let expired = chrono::NaiveDate::parse_from_str(&org.qualified_until, "%Y-%m-%d")
        .map_or(true, |until| until < today);
    Ok(expired.then(|| {
        format!(
            "the qualification of organisation {} (of `{}`) ended on {}",
            org.credit_code, p.name, org.qualified_until
        )
    }))
}

/// The facts of a decision, as stored now.
pub fn facts(conn: &Conn, actor: &str, on: On<'_>) -> Result<Facts> {
    let principal = principals::lookup(conn, actor)?;
    let today = chrono::Utc::now().date_naive();
    let on_scenario = match on {
        On::Domain => None,
        On::Scenario(r) => Some(r.id),
        On::Work { scenario, .. } => Some(scenario.id),
    };
    let actor_unqualified = match &principal {
        Some(p) => unqualified(conn, p, today, on_scenario)?,
        None => None,
    };
    let (record, submitter) = match on {
        On::Domain => {
            return Ok(Facts {
                actor: principal,
                actor_unqualified,
                scenario: None,
            });
        }
        On::Scenario(r) => (r, r.developer.as_str()),
        On::Work {
            scenario,
            submitter,
        } => (scenario, submitter),
    };
    let member = match &principal {
        Some(p) => member(conn, p, record)?,
        None => false,
    };
    let submitter_principal = if submitter == actor {
        principal.clone()
    } else {
        principals::lookup(conn, submitter)?
    };
    let submitter_status = submitter_principal
        .as_ref()
        .map_or(Status::Revoked, |p| p.status);
    let submitter_unqualified = match &submitter_principal {
        Some(p) => unqualified(conn, p, today, Some(record.id))?,
        None => None,
    };
    let outside_window = (!record.spec.is_valid_on(today)).then(|| {
        format!(
            "scenario `{}` is valid from {} until {}; today is {today}",
            record.spec.name, record.spec.valid_from, record.spec.valid_until
        )
    });
    Ok(Facts {
        actor: principal,
        actor_unqualified,
        scenario: Some(ScenarioFacts {
            id: record.id,
            name: record.spec.name.clone(),
            status: record.status,
            outside_window,
            member,
            submitter: submitter.to_string(),
            submitter_status,
            submitter_unqualified,
            stop: stops::in_force(conn, record.id, submitter)?,
        }),
    })
}

/// Refuses `actor` unless it may do `action` on `on` now; returns the principal. The only
/// function through which domain functions authorize.
pub fn authorize(conn: &Conn, actor: &str, action: Action, on: On<'_>) -> Result<Principal> {
    let facts = facts(conn, actor, on)?;
    Ok(authz::decide(action, &facts, actor)?)
}
