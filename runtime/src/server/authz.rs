//! Authorization: the one place that decides who may call what.
//!
//! [`allows`] is the role × action table; [`authorize`] applies it; [`member`] is scenario
//! membership (a developer uses only the scenarios they applied for; a provider sees the
//! scenarios that use a dataset they registered; operators and supervisors see every
//! scenario). Every handler calls [`authorize`] (and, for a scenario, [`authorize_in`])
//! before it touches the domain. Separation of duties (nobody decides their own scenario,
//! reviews their own job's output, or gives both approvals) stays with the domain functions
//! the handlers call.

use rusqlite::{Connection, params};

use crate::identity::{Principal, Role};
use crate::scenarios::ScenarioRecord;
use crate::{Error, Result};

/// What a call does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Who am I.
    WhoAmI,
    /// Read the catalog (SYS Art. 12).
    CatalogRead,
    /// Register a dataset with its policy.
    DatasetRegister,
    /// Read scenarios (filtered by membership).
    ScenarioRead,
    /// Apply for a scenario.
    ScenarioApply,
    /// Approve or reject a scenario.
    ScenarioDecide,
    /// Read a scenario's budget.
    BudgetRead,
    /// Submit a job under a scenario, or upload a module for later jobs.
    JobSubmit,
    /// Read a job's status and logs, list jobs.
    JobRead,
    /// Cancel a queued or running job (the submitter, operators, supervisors).
    JobCancel,
    /// Suspend, reinstate or revoke a scenario.
    ScenarioStatus,
    /// Read the usage report (Shuangyashan Art. 31) and the metrics.
    UsageRead,
    /// Change the usage monitoring settings.
    UsageSettings,
    /// Read staged outputs, their checks and files.
    OutputRead,
    /// Approve, reject or request changes on an output.
    OutputDecide,
    /// List and download released products.
    ProductRead,
    /// Read the audit log, verify it, get proofs.
    AuditRead,
    /// Impose or lift an emergency stop (QQHR Art. 20).
    Stop,
    /// Read principals.
    PrincipalRead,
    /// Qualify, suspend or revoke a principal (Qiqihar Art. 14, 23).
    PrincipalStatus,
    /// Add a principal.
    PrincipalAdd,
    /// Issue a token for a principal (shown once).
    TokenIssue,
    /// List tokens (one's own; operators and admins every one).
    TokenRead,
    /// Revoke a token (one's own; operators and admins any).
    TokenRevoke,
}

impl Action {
    /// Stable name, as recorded.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::WhoAmI => "whoami",
            Action::CatalogRead => "catalog.read",
            Action::DatasetRegister => "dataset.register",
            Action::ScenarioRead => "scenario.read",
            Action::ScenarioApply => "scenario.apply",
            Action::ScenarioDecide => "scenario.decide",
            Action::BudgetRead => "budget.read",
            Action::JobSubmit => "job.submit",
            Action::JobRead => "job.read",
            Action::JobCancel => "job.cancel",
            Action::ScenarioStatus => "scenario.status",
            Action::UsageRead => "usage.read",
            Action::UsageSettings => "usage.settings",
            Action::OutputRead => "output.read",
            Action::OutputDecide => "output.decide",
            Action::ProductRead => "product.read",
            Action::AuditRead => "audit.read",
            Action::Stop => "stop",
            Action::PrincipalRead => "principal.read",
            Action::PrincipalStatus => "principal.status",
            Action::PrincipalAdd => "principal.add",
            Action::TokenIssue => "token.issue",
            Action::TokenRead => "token.read",
            Action::TokenRevoke => "token.revoke",
        }
    }
}

/// The role × action table. Scenario-scoped actions also need [`member`].
pub fn allows(role: Role, action: Action) -> bool {
    use Action::*;
    use Role::*;
    match action {
        WhoAmI | CatalogRead | ProductRead | TokenRead | TokenRevoke => true,
        // An admin administers identities and sees nothing of the scenarios.
        ScenarioRead => role != Admin,
        DatasetRegister => role == Provider,
        ScenarioApply | JobSubmit => role == Developer,
        ScenarioDecide | ScenarioStatus | UsageSettings => role == Operator,
        PrincipalStatus | PrincipalAdd | TokenIssue => matches!(role, Operator | Admin),
        PrincipalRead => matches!(role, Operator | Supervisor | Admin),
        BudgetRead | JobRead | JobCancel => matches!(role, Operator | Supervisor | Developer),
        OutputRead | OutputDecide | AuditRead | Stop | UsageRead => {
            matches!(role, Operator | Supervisor)
        }
    }
}

/// Refuses `caller` unless its role may do `action`.
pub fn authorize(caller: &Principal, action: Action) -> Result<()> {
    if allows(caller.role, action) {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "a {} may not {}",
            caller.role,
            action.as_str()
        )))
    }
}

/// Whether `caller` belongs to scenario `record`.
pub fn member(conn: &Connection, caller: &Principal, record: &ScenarioRecord) -> Result<bool> {
    Ok(match caller.role {
        Role::Operator | Role::Supervisor => true,
        Role::Admin => false,
        Role::Developer => record.developer == caller.name,
        Role::Provider => {
            let mut stmt = conn.prepare_cached(
                "SELECT COUNT(*) FROM dataset_versions WHERE dataset = ?1 AND registered_by = ?2",
            )?;
            let mut found = false;
            for d in &record.spec.datasets {
                let n: i64 = stmt.query_row(params![d.name, caller.name], |r| r.get(0))?;
                found |= n > 0;
            }
            found
        }
    })
}

/// Refuses a developer a job someone else submitted (everyone else who may read jobs
/// reads them all).
pub fn own_job(caller: &Principal, job: &crate::jobs::JobRecord) -> Result<()> {
    if caller.role == Role::Developer && job.submitter != caller.name {
        return Err(Error::Forbidden(format!(
            "job {} was submitted by someone else",
            job.id
        )));
    }
    Ok(())
}

/// Refuses `caller` unless its role may do `action` and it belongs to the scenario.
pub fn authorize_in(
    conn: &Connection,
    caller: &Principal,
    action: Action,
    record: &ScenarioRecord,
) -> Result<()> {
    authorize(caller, action)?;
    if member(conn, caller, record)? {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "`{}` is not a member of scenario {}",
            caller.name, record.id
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_operators_and_supervisors_review_read_the_audit_and_stop() {
        for action in [
            Action::OutputRead,
            Action::OutputDecide,
            Action::AuditRead,
            Action::Stop,
        ] {
            assert!(allows(Role::Operator, action));
            assert!(allows(Role::Supervisor, action));
            assert!(!allows(Role::Developer, action));
            assert!(!allows(Role::Provider, action));
        }
        assert!(allows(Role::Developer, Action::JobSubmit));
        assert!(!allows(Role::Operator, Action::JobSubmit));
        assert!(allows(Role::Provider, Action::DatasetRegister));
        assert!(!allows(Role::Operator, Action::DatasetRegister));
    }
}
