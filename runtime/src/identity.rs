//! Principals: named identities with one role each, and a status (Qiqihar Art. 14, 23): an
//! active principal acts; a suspended or revoked one is refused by every domain function
//! (the one authorization path reads the status) and by the server. Revocation is final.

use sandbox_core::audit::{EventKind, Subject};
use sandbox_core::authz::Action;
use sandbox_core::job::{Interrupt, StopTarget};
use sandbox_store::authz::{self, On};
use sandbox_store::{audit, principals};
use serde_json::json;

pub use sandbox_core::principal::{Principal, Role, Status};

use crate::{Domain, Error, Result};

/// Whether `name` may name a principal: 1-64 letters (of any script: `王伟`, `zhao.li`),
/// digits, `-`, `_`, `.` and the middle dot of transcribed names (`阿依古丽·买买提`), starting
/// with a letter or a digit.
fn valid_name(name: &str) -> bool {
    let count = name.chars().count();
    (1..=64).contains(&count)
        && name.chars().next().is_some_and(char::is_alphanumeric)
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '·'))
}

/// Who `actor` is (refused when unknown, suspended or revoked).
pub fn whoami(domain: &Domain, actor: &str) -> Result<Principal> {
    Ok(authz::authorize(
        &*domain.conn()?,
        actor,
        Action::WhoAmI,
        On::Domain,
    )?)
}

/// Every principal's name, for the CLI on the domain's machine to suggest the one meant
/// when a name is mistyped (whoever runs it there can read the data directory anyway;
/// the API never names principals to an unknown caller).
pub fn names(domain: &Domain) -> Result<Vec<String>> {
    let conn = domain.conn()?;
    Ok(sandbox_store::principals::list(&conn)?
        .into_iter()
        .map(|p| p.name)
        .collect())
}

/// Every principal (operators, supervisors and admins).
pub fn list(domain: &Domain, actor: &str) -> Result<Vec<Principal>> {
    let conn = domain.conn()?;
    authz::authorize(&conn, actor, Action::PrincipalRead, On::Domain)?;
    Ok(principals::list(&conn)?)
}

/// Adds a principal. The first principal of a domain must be an operator or an admin and
/// may be added by anyone with the data directory; after that an operator or an admin adds
/// principals.
pub fn add(domain: &Domain, actor: Option<&str>, name: &str, role: Role) -> Result<Principal> {
    add_to(domain, actor, name, role, None)
}

/// [`add`], placing the principal in a registered organisation (by its unified social
/// credit code) in the same transaction.
pub fn add_to(
    domain: &Domain,
    actor: Option<&str>,
    name: &str,
    role: Role,
    organisation: Option<&str>,
) -> Result<Principal> {
    let organisation = organisation
        .map(|c| c.trim().to_ascii_uppercase())
        .filter(|c| !c.is_empty());
    if !valid_name(name) {
        return Err(Error::Invalid(format!(
            "principal name `{name}`: 1-64 letters (of any script), digits, `-`, `_`, `.` or `·`, starting with a letter or a digit"
        )));
    }
    let mut conn = domain.conn()?;
    let tx = conn.write()?;
    let actor_name = if principals::count(&tx)? == 0 {
        if !role.administers_identities() {
            return Err(Error::Forbidden(
                "the first principal of a domain must be an operator or an admin".into(),
            ));
        }
        "system".to_string()
    } else {
        let actor = actor.ok_or_else(|| {
            Error::Forbidden("adding a principal needs an operator or an admin (--as NAME)".into())
        })?;
        authz::authorize(&tx, actor, Action::PrincipalAdd, On::Domain)?;
        actor.to_string()
    };
    if principals::lookup(&tx, name)?.is_some() {
        return Err(Error::Conflict(format!("principal `{name}` exists")));
    }
    if let Some(code) = &organisation
        && sandbox_store::organisations::get(&tx, code)?.is_none()
    {
        return Err(Error::NotFound(format!("organisation {code}")));
    }
    principals::insert(&tx, name, role)?;
    if let Some(code) = &organisation {
        sandbox_store::organisations::set_member(&tx, name, Some(code))?;
    }
    audit::append(
        &tx,
        &actor_name,
        EventKind::PrincipalAdded,
        &Subject::Principal(name.to_string()),
        json!({"role": role, "organisation": organisation}),
    )?;
    tx.commit()?;
    Ok(Principal {
        name: name.to_string(),
        role,
        status: Status::Active,
        language: None,
        organisation,
    })
}

/// An operator or an admin changes a principal's status (Qiqihar Art. 14, 23), with a
/// written reason: `Active` qualifies a suspended principal again, `Suspended` and
/// `Revoked` refuse it everywhere from now on (revocation is final, held by a trigger) and
/// interrupt the running jobs of a developer in this process once that is recorded.
/// Nobody changes their own status, and the last active operator or admin stays active.
pub fn set_status(
    domain: &Domain,
    actor: &str,
    name: &str,
    status: Status,
    reason: &str,
) -> Result<Principal> {
    let mut conn = domain.conn()?;
    authz::authorize(&conn, actor, Action::PrincipalStatus, On::Domain)?;
    if reason.trim().is_empty() {
        return Err(Error::Invalid(format!(
            "changing the status of `{name}` needs a reason"
        )));
    }
    if actor == name {
        return Err(Error::Forbidden("nobody changes their own status".into()));
    }
    let tx = conn.write()?;
    let p = principals::lookup(&tx, name)?
        .ok_or_else(|| Error::NotFound(format!("principal `{name}`")))?;
    if p.status == status {
        return Err(Error::Conflict(format!(
            "principal `{name}` is already {status}"
        )));
    }
    if p.status == Status::Revoked {
        return Err(Error::Conflict(format!(
            "principal `{name}` is revoked; revocation is final"
        )));
    }
    if p.role.administers_identities()
        && status != Status::Active
        && principals::other_active_administrators(&tx, name)? == 0
    {
        return Err(Error::Conflict(
            "the last active operator or admin cannot be suspended or revoked".into(),
        ));
    }
    principals::set_status(&tx, name, status)?;
    let interrupts = status != Status::Active && p.role == Role::Developer;
    let target = StopTarget::Developer(name.to_string());
    let covered = if interrupts {
        domain.covered(&target)
    } else {
        Vec::new()
    };
    let kind = match status {
        Status::Active => EventKind::PrincipalQualified,
        Status::Suspended => EventKind::PrincipalSuspended,
        Status::Revoked => EventKind::PrincipalRevoked,
    };
    audit::append(
        &tx,
        actor,
        kind,
        &Subject::Principal(name.to_string()),
        json!({"role": p.role, "from": p.status, "to": status, "reason": reason, "interrupted": covered}),
    )?;
    if interrupts {
        domain.commit_interrupting(tx, &target, Interrupt::Suspended)?;
    } else {
        tx.commit()?;
    }
    Ok(Principal { status, ..p })
}
