//! Authorization: the one role × action table, and the one decision every domain function
//! that acts for a principal goes through.
//!
//! [`allows`] is the table. [`decide`] is the decision: the acting principal is known and
//! active, its role may do the action, it belongs to the scenario the action concerns, and
//! what the action needs of that scenario holds (usable, not suspended, no emergency stop
//! in force over it, its developer or the domain; the work's submitter active). The facts
//! ([`Facts`]) are read by the store (`sandbox_store::authz::authorize` gathers them and
//! calls [`decide`]); the rules are here, testable without a store.

use crate::principal::{Principal, Role, Status};
use crate::status::ScenarioStatus;
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
    /// Retire a dataset registered by mistake (its provider, or an operator).
    DatasetRetire,
    /// Object to, suspend or reinstate a dataset version (its provider, or an operator).
    DatasetSuspend,
    /// Destroy a dataset's files at the end of its authorization (operators).
    DatasetDestroy,
    /// Decide that a `not_shared` dataset may go into a named scenario (its provider, a
    /// supervisor; SYS Art. 24).
    DatasetShare,
    /// Read scenarios (filtered by membership).
    ScenarioRead,
    /// Apply for a scenario.
    ScenarioApply,
    /// Approve or reject a scenario.
    ScenarioDecide,
    /// Record a no-objection or an objection to a scenario (its datasets' providers, a
    /// supervisor).
    ScenarioConsent,
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
    /// Read the product catalog (every product's existence, content, scope and dates);
    /// download a product's files where entitled (`review::entitlement`).
    ProductRead,
    /// Withdraw a released product with a reason (QQHR Art. 20, 23; SYS Art. 28).
    ProductWithdraw,
    /// Grant a released product to a data user or an organisation beyond its scope at
    /// release.
    ProductGrant,
    /// Read the audit log, verify it, get proofs.
    AuditRead,
    /// Impose or lift an emergency stop (QQHR Art. 20).
    Stop,
    /// Open, log and close incidents, read them (operators and supervisors).
    IncidentManage,
    /// Issue and close rectification orders (supervisors).
    OrderIssue,
    /// Answer a rectification order addressed to oneself (developers).
    OrderAnswer,
    /// Read rectification orders (one's own, for a developer).
    OrderRead,
    /// Read principals.
    PrincipalRead,
    /// Read the register of organisations (QQHR Art. 14, 23) and export it.
    OrganisationRead,
    /// Register or change an organisation, place principals in it.
    OrganisationManage,
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
    /// Ask a query under a scenario (the mediator, for a job's module).
    Query,
    /// Set one's own preferences (the language one reads Sandbox in).
    PreferencesSet,
    /// Set the domain's default language and time zone.
    SettingsSet,
}

impl Action {
    /// Stable name, as recorded.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::WhoAmI => "whoami",
            Action::CatalogRead => "catalog.read",
            Action::DatasetRegister => "dataset.register",
            Action::DatasetRetire => "dataset.retire",
            Action::DatasetSuspend => "dataset.suspend",
            Action::DatasetDestroy => "dataset.destroy",
            Action::DatasetShare => "dataset.share",
            Action::ScenarioRead => "scenario.read",
            Action::ScenarioApply => "scenario.apply",
            Action::ScenarioDecide => "scenario.decide",
            Action::ScenarioConsent => "scenario.consent",
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
            Action::ProductWithdraw => "product.withdraw",
            Action::ProductGrant => "product.grant",
            Action::AuditRead => "audit.read",
            Action::Stop => "stop",
            Action::IncidentManage => "incident.manage",
            Action::OrderIssue => "order.issue",
            Action::OrderAnswer => "order.answer",
            Action::OrderRead => "order.read",
            Action::PrincipalRead => "principal.read",
            Action::OrganisationRead => "organisation.read",
            Action::OrganisationManage => "organisation.manage",
            Action::PrincipalStatus => "principal.status",
            Action::PrincipalAdd => "principal.add",
            Action::TokenIssue => "token.issue",
            Action::TokenRead => "token.read",
            Action::TokenRevoke => "token.revoke",
            Action::Query => "query",
            Action::PreferencesSet => "preferences.set",
            Action::SettingsSet => "settings.set",
        }
    }

    /// What the action does, in words, after "may not" in a refusal.
    pub fn describe(self) -> &'static str {
        match self {
            Action::WhoAmI => "ask who they are",
            Action::CatalogRead => "read the catalog",
            Action::DatasetRegister => "register datasets",
            Action::DatasetRetire => "retire datasets",
            Action::DatasetSuspend => "object to, suspend or reinstate dataset versions",
            Action::DatasetDestroy => "destroy datasets",
            Action::DatasetShare => "decide the sharing of datasets",
            Action::ScenarioRead => "read scenarios",
            Action::ScenarioApply => "apply for scenarios",
            Action::ScenarioDecide => "approve or reject scenarios",
            Action::ScenarioConsent => "consent or object to scenarios",
            Action::BudgetRead => "read budgets",
            Action::JobSubmit => "submit jobs",
            Action::JobRead => "read jobs",
            Action::JobCancel => "cancel jobs",
            Action::ScenarioStatus => "suspend, reinstate or revoke scenarios",
            Action::UsageRead => "read the usage report",
            Action::UsageSettings => "change the usage monitoring settings",
            Action::OutputRead => "read outputs",
            Action::OutputDecide => "decide on outputs",
            Action::ProductRead => "read products",
            Action::ProductWithdraw => "withdraw products",
            Action::ProductGrant => "grant products",
            Action::AuditRead => "read the audit log",
            Action::Stop => "impose or lift emergency stops",
            Action::IncidentManage => "manage incidents",
            Action::OrderIssue => "issue rectification orders",
            Action::OrderAnswer => "answer rectification orders",
            Action::OrderRead => "read rectification orders",
            Action::PrincipalRead => "read principals",
            Action::OrganisationRead => "read the register of organisations",
            Action::OrganisationManage => "register or change organisations",
            Action::PrincipalStatus => "change a principal's status",
            Action::PrincipalAdd => "add principals",
            Action::TokenIssue => "issue tokens",
            Action::TokenRead => "read tokens",
            Action::TokenRevoke => "revoke tokens",
            Action::Query => "ask queries",
            Action::PreferencesSet => "set preferences",
            Action::SettingsSet => "change the domain's settings",
        }
    }

    /// Every action.
    pub const ALL: [Action; 40] = [
        Action::WhoAmI,
        Action::CatalogRead,
        Action::DatasetRegister,
        Action::DatasetRetire,
        Action::DatasetSuspend,
        Action::DatasetDestroy,
        Action::DatasetShare,
        Action::ScenarioRead,
        Action::ScenarioApply,
        Action::ScenarioDecide,
        Action::ScenarioConsent,
        Action::BudgetRead,
        Action::JobSubmit,
        Action::JobRead,
        Action::JobCancel,
        Action::ScenarioStatus,
        Action::UsageRead,
        Action::UsageSettings,
        Action::OutputRead,
        Action::OutputDecide,
        Action::ProductRead,
        Action::ProductWithdraw,
        Action::ProductGrant,
        Action::AuditRead,
        Action::Stop,
        Action::IncidentManage,
        Action::OrderIssue,
        Action::OrderAnswer,
        Action::OrderRead,
        Action::PrincipalRead,
        Action::OrganisationRead,
        Action::OrganisationManage,
        Action::PrincipalStatus,
        Action::PrincipalAdd,
        Action::TokenIssue,
        Action::TokenRead,
        Action::TokenRevoke,
        Action::Query,
        Action::PreferencesSet,
        Action::SettingsSet,
    ];

    /// What the action needs of the scenario it concerns, beyond membership.
    pub fn needs(self) -> Needs {
        use Action::*;
        match self {
            // New work runs only under a usable scenario and no stop.
            JobSubmit | Query => Needs {
                usable: true,
                standing: true,
                no_stop: true,
                active_submitter: true,
            },
            // A decision on an output (and the release it may make) is refused while the
            // scenario is suspended or revoked, a stop covers it, or its job's submitter
            // is suspended or revoked.
            OutputDecide => Needs {
                usable: false,
                standing: true,
                no_stop: true,
                active_submitter: true,
            },
            _ => Needs::default(),
        }
    }
}

/// What an action needs of its scenario (see [`Action::needs`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// Approved and within its validity window.
    pub usable: bool,
    /// Not suspended or revoked.
    pub standing: bool,
    /// No emergency stop in force over the scenario, its developer or the domain.
    pub no_stop: bool,
    /// The work's submitter (or the scenario's developer) active.
    pub active_submitter: bool,
}

/// What a decision concerns, as the store read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    /// The acting principal as stored (`None`: unknown).
    pub actor: Option<Principal>,
    /// Why the actor, a developer, may not work although active: its organisation's
    /// qualification has expired (QQHR Art. 14, 23), as a sentence.
    pub actor_unqualified: Option<String>,
    /// The scenario the action concerns, if any.
    pub scenario: Option<ScenarioFacts>,
}

/// The state of the scenario an action concerns.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioFacts {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Status.
    pub status: ScenarioStatus,
    /// Why it cannot be used today although approved (outside its window), if so.
    pub outside_window: Option<String>,
    /// Whether the actor belongs to it (see the table in ARCHITECTURE.md).
    pub member: bool,
    /// Whose work it is: the job's submitter, or the scenario's developer.
    pub submitter: String,
    /// That principal's status.
    pub submitter_status: Status,
    /// Why that principal's work is suspended although it is active (its organisation's
    /// qualification has expired), as a sentence.
    pub submitter_unqualified: Option<String>,
    /// The emergency stop in force over the scenario, the submitter or the domain, as a
    /// sentence.
    pub stop: Option<String>,
}

/// The one decision: refuses unless `facts` allow `action` (in this order: the actor is
/// known and active, its role may, it is a member, and what [`Action::needs`] holds).
/// Returns the actor.
pub fn decide(action: Action, facts: &Facts, name: &str) -> Result<Principal> {
    let actor = facts
        .actor
        .clone()
        .ok_or_else(|| Error::Forbidden(format!("unknown principal `{name}`")))?;
    if actor.status != Status::Active {
        return Err(Error::Forbidden(format!(
            "principal `{}` is {}",
            actor.name, actor.status
        )));
    }
    if let Some(why) = &facts.actor_unqualified {
        return Err(Error::Forbidden(why.clone()));
    }
    authorize(&actor, action)?;
    let Some(s) = &facts.scenario else {
        return Ok(actor);
    };
    if !s.member {
        return Err(Error::Forbidden(format!(
            "`{}` is not a member of scenario {}",
            actor.name, s.id
        )));
    }
    let needs = action.needs();
    if needs.usable {
        if s.status != ScenarioStatus::Approved {
            return Err(Error::Forbidden(format!(
                "scenario `{}` is {}",
                s.name, s.status
            )));
        }
        if let Some(why) = &s.outside_window {
            return Err(Error::Forbidden(why.clone()));
        }
    }
    if needs.standing
        && matches!(
            s.status,
            ScenarioStatus::Suspended | ScenarioStatus::Revoked
        )
    {
        return Err(Error::Forbidden(format!(
            "scenario `{}` is {}",
            s.name, s.status
        )));
    }
    if needs.active_submitter && s.submitter_status != Status::Active {
        return Err(Error::Forbidden(format!(
            "principal `{}` is {}",
            s.submitter, s.submitter_status
        )));
    }
    if needs.active_submitter
        && let Some(why) = &s.submitter_unqualified
    {
        return Err(Error::Forbidden(why.clone()));
    }
    if needs.no_stop
        && let Some(stop) = &s.stop
    {
        return Err(Error::Stopped(stop.clone()));
    }
    Ok(actor)
}

/// The role × action table. Actions on a scenario also need membership ([`decide`]).
pub fn allows(role: Role, action: Action) -> bool {
    use Action::*;
    use Role::*;
    match action {
        WhoAmI | ProductRead | TokenRead | TokenRevoke | PreferencesSet => true,
        // A data user receives products and nothing else.
        CatalogRead => role != DataUser,
        // An admin administers identities and sees nothing of the scenarios.
        ScenarioRead => !matches!(role, Admin | DataUser),
        DatasetRegister => role == Provider,
        DatasetRetire | DatasetSuspend => matches!(role, Provider | Operator),
        ScenarioApply | JobSubmit => role == Developer,
        ScenarioDecide | ScenarioStatus | UsageSettings | DatasetDestroy => role == Operator,
        ScenarioConsent | DatasetShare => matches!(role, Provider | Supervisor),
        PrincipalStatus | PrincipalAdd | TokenIssue | SettingsSet | OrganisationManage => {
            matches!(role, Operator | Admin)
        }
        PrincipalRead | OrganisationRead => matches!(role, Operator | Supervisor | Admin),
        BudgetRead | JobRead | JobCancel => matches!(role, Operator | Supervisor | Developer),
        OrderIssue => role == Supervisor,
        OrderAnswer => role == Developer,
        OrderRead => matches!(role, Operator | Supervisor | Developer),
        OutputRead | OutputDecide | AuditRead | Stop | UsageRead | ProductWithdraw
        | IncidentManage => {
            matches!(role, Operator | Supervisor)
        }
        ProductGrant => role == Operator,
        Query => role == Developer,
    }
}

/// Refuses `caller` unless its role may do `action`.
pub fn authorize(caller: &Principal, action: Action) -> Result<()> {
    if allows(caller.role, action) {
        Ok(())
    } else {
        let role = caller.role.as_str();
        let article = if role.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        Err(Error::Forbidden(format!(
            "{article} {role} may not {} ({})",
            action.describe(),
            action.as_str()
        )))
    }
}

/// Refuses a developer a job someone else submitted (everyone else who may read jobs
/// reads them all).
pub fn own_job(caller: &Principal, job_id: &str, submitter: &str) -> Result<()> {
    if caller.role == Role::Developer && submitter != caller.name {
        return Err(Error::Forbidden(format!(
            "job {job_id} was submitted by someone else"
        )));
    }
    Ok(())
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
