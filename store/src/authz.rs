//! The one authorization path: the facts a decision depends on, read in the caller's
//! connection (so inside its transaction when it has one), and decided by
//! [`sandbox_core::authz::decide`]. Every domain function that acts for a principal calls
//! [`authorize`], the mediator for every query among them.

use sandbox_core::authz::{self, Action, Facts, ScenarioFacts};
use sandbox_core::principal::{Principal, Role, Status};

use crate::scenarios::ScenarioRecord;
use crate::{Conn, Result, catalog, principals, stops};

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
        Role::Admin => false,
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

/// The facts of a decision, as stored now.
pub fn facts(conn: &Conn, actor: &str, on: On<'_>) -> Result<Facts> {
    let principal = principals::lookup(conn, actor)?;
    let (record, submitter) = match on {
        On::Domain => {
            return Ok(Facts {
                actor: principal,
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
    let submitter_status = if submitter == actor {
        principal.as_ref().map(|p| p.status)
    } else {
        principals::lookup(conn, submitter)?.map(|p| p.status)
    }
    .unwrap_or(Status::Revoked);
    let today = chrono::Utc::now().date_naive();
    let outside_window = (!record.spec.is_valid_on(today)).then(|| {
        format!(
            "scenario `{}` is valid from {} until {}; today is {today}",
            record.spec.name, record.spec.valid_from, record.spec.valid_until
        )
    });
    Ok(Facts {
        actor: principal,
        scenario: Some(ScenarioFacts {
            id: record.id,
            name: record.spec.name.clone(),
            status: record.status,
            outside_window,
            member,
            submitter: submitter.to_string(),
            submitter_status,
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
