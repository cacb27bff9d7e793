//! Incidents and rectification orders (QQHR Art. 20, 23; JZ Art. 21; SYS Art. 31, 61;
//! TJ-Sec Art. 15).
//!
//! An incident has a grade, a description and a timeline: the actions taken, the stops,
//! suspensions and withdrawals made under it (each checked to exist), and the reports and
//! notices made, to whom and when. Operators and supervisors keep it; it is closed with a
//! summary. A rectification order goes from a supervisor to a developer, an organisation
//! or a scenario with a deadline: its target answers, the supervisor closes it; if the
//! deadline passes unanswered, the one authorization path refuses the target's work from
//! that moment, and [`enforce_due`] records the suspension (the developer, the
//! organisation's developers, or the scenario), which operators lift as any other.

use sandbox_core::audit::{EventKind, Subject};
use sandbox_core::authz::Action;
use sandbox_core::{Role, ScenarioStatus};
use sandbox_store::authz::{self, On};
use sandbox_store::incidents::{self, IncidentEntry};
use sandbox_store::{audit, principals, scenarios};
use serde_json::json;

pub use sandbox_store::incidents::{Incident, Order};

use crate::{Domain, Error, Result};

/// The grades of an incident (一般, 较大, 重大, 特别重大).
pub const GRADES: [&str; 4] = ["general", "relatively_major", "major", "especially_major"];

/// The kinds of a timeline's entries.
pub const ENTRY_KINDS: [&str; 6] = [
    "action",
    "stop",
    "suspension",
    "withdrawal",
    "report",
    "notice",
];

fn text<'a>(v: &'a str, what: &str) -> Result<&'a str> {
    let t = v.trim();
    if t.is_empty() {
        return Err(Error::Invalid(format!("{what} must not be empty")));
    }
    Ok(t)
}

fn incident_of(conn: &sandbox_store::Conn, id: i64) -> Result<Incident> {
    incidents::get(conn, id)?.ok_or_else(|| Error::NotFound(format!("incident {id}")))
}

/// Opens an incident (operators and supervisors).
pub fn open(
    domain: &Domain,
    actor: &str,
    grade: &str,
    title: &str,
    description: &str,
) -> Result<Incident> {
    if !GRADES.contains(&grade) {
        return Err(Error::Invalid(format!(
            "grade `{grade}`: {}",
            GRADES.join(", ")
        )));
    }
    let (title, description) = (text(title, "a title")?, text(description, "a description")?);
    let mut conn = domain.conn()?;
    let tx = conn.write()?;
    authz::authorize(&tx, actor, Action::IncidentManage, On::Domain)?;
    let id = incidents::open(&tx, grade, title, description, actor)?;
    audit::append(
        &tx,
        actor,
        EventKind::IncidentOpened,
        &Subject::Incident(id),
        json!({"grade": grade, "title": title, "description": description}),
    )?;
    let i = incident_of(&tx, id)?;
    tx.commit()?;
    Ok(i)
}

/// Adds to an incident's timeline: an action, a stop (its id), a suspension (a principal
/// or a scenario), a withdrawal (a product), or a report or a notice (to whom).
pub fn log(
    domain: &Domain,
    actor: &str,
    id: i64,
    kind: &str,
    reference: Option<&str>,
    recipient: Option<&str>,
    what: &str,
) -> Result<Incident> {
    if !ENTRY_KINDS.contains(&kind) {
        return Err(Error::Invalid(format!(
            "kind `{kind}`: {}",
            ENTRY_KINDS.join(", ")
        )));
    }
    let what = text(what, "what was done")?;
    let recipient = recipient.map(str::trim).filter(|r| !r.is_empty());
    if matches!(kind, "report" | "notice") && recipient.is_none() {
        return Err(Error::Invalid(format!("a {kind} names to whom it went")));
    }
    let mut conn = domain.conn()?;
    let tx = conn.write()?;
    authz::authorize(&tx, actor, Action::IncidentManage, On::Domain)?;
    let incident = incident_of(&tx, id)?;
    if incident.closed_at.is_some() {
        return Err(Error::Conflict(format!("incident {id} is closed")));
    }
    // What an entry refers to exists.
    let reference = reference.map(str::trim).filter(|r| !r.is_empty());
    let exists = match (kind, reference) {
        ("stop", Some(r)) => {
            let n = r.parse::<i64>().ok();
            sandbox_store::stops::list(&tx, true)?
                .iter()
                .any(|s| Some(s.id) == n)
        }
        ("suspension", Some(r)) => {
            principals::lookup(&tx, r)?.is_some() || scenarios::resolve(&tx, r).is_ok()
        }
        ("withdrawal", Some(r)) => sandbox_store::products::withdrawal(&tx, r)?.is_some(),
        ("stop" | "suspension" | "withdrawal", None) => false,
        _ => true,
    };
    if !exists {
        return Err(Error::Invalid(format!(
            "a {kind} entry names what was done under the incident (a stop's id, a suspended principal or scenario, a withdrawn product); `{}` is not one",
            reference.unwrap_or("")
        )));
    }
    let entry = IncidentEntry {
        kind: kind.to_string(),
        reference: reference.map(str::to_string),
        recipient: recipient.map(str::to_string),
        text: what.to_string(),
        by: actor.to_string(),
        at: sandbox_store::now(),
    };
    incidents::add_entry(&tx, id, &entry)?;
    audit::append(
        &tx,
        actor,
        EventKind::IncidentLogged,
        &Subject::Incident(id),
        json!({"kind": kind, "reference": entry.reference, "recipient": entry.recipient, "text": what}),
    )?;
    let i = incident_of(&tx, id)?;
    tx.commit()?;
    Ok(i)
}

/// Closes an incident with a summary of how it ended.
pub fn close(domain: &Domain, actor: &str, id: i64, summary: &str) -> Result<Incident> {
    let summary = text(summary, "a summary")?;
    let mut conn = domain.conn()?;
    let tx = conn.write()?;
    authz::authorize(&tx, actor, Action::IncidentManage, On::Domain)?;
    incident_of(&tx, id)?;
    if !incidents::close(&tx, id, actor, summary)? {
        return Err(Error::Conflict(format!("incident {id} is closed already")));
    }
    audit::append(
        &tx,
        actor,
        EventKind::IncidentClosed,
        &Subject::Incident(id),
        json!({"summary": summary}),
    )?;
    let i = incident_of(&tx, id)?;
    tx.commit()?;
    Ok(i)
}

/// One incident with its timeline (operators and supervisors).
pub fn get(domain: &Domain, actor: &str, id: i64) -> Result<Incident> {
    let conn = domain.conn()?;
    authz::authorize(&conn, actor, Action::IncidentManage, On::Domain)?;
    incident_of(&conn, id)
}

/// Every incident, newest first.
pub fn list(domain: &Domain, actor: &str) -> Result<Vec<Incident>> {
    let conn = domain.conn()?;
    authz::authorize(&conn, actor, Action::IncidentManage, On::Domain)?;
    incidents::ids(&conn)?
        .into_iter()
        .map(|id| incident_of(&conn, id))
        .collect()
}

fn order_of(conn: &sandbox_store::Conn, id: i64) -> Result<Order> {
    incidents::order(conn, id)?.ok_or_else(|| Error::NotFound(format!("rectification order {id}")))
}

/// A supervisor orders a developer (`principal`), an organisation (its credit code) or a
/// scenario (id or name) to rectify, by `deadline` (RFC 3339, or a date meaning its end).
pub fn issue(
    domain: &Domain,
    actor: &str,
    kind: &str,
    target: &str,
    requirement: &str,
    deadline: &str,
) -> Result<Order> {
    let requirement = text(requirement, "a requirement")?;
    let deadline = parse_deadline(deadline)?;
    if deadline <= sandbox_store::now() {
        return Err(Error::Invalid(format!("deadline {deadline} has passed")));
    }
    let mut conn = domain.conn()?;
    let tx = conn.write()?;
    authz::authorize(&tx, actor, Action::OrderIssue, On::Domain)?;
    let target = match kind {
        "principal" => match principals::lookup(&tx, target)? {
            Some(p) if p.role == Role::Developer => p.name,
            Some(p) => {
                return Err(Error::Invalid(format!(
                    "`{target}` is a {}; orders go to developers, organisations and scenarios",
                    p.role
                )));
            }
            None => return Err(Error::NotFound(format!("principal `{target}`"))),
        },
        "organisation" => {
            let code = target.trim().to_ascii_uppercase();
            sandbox_store::organisations::get(&tx, &code)?
                .ok_or_else(|| Error::NotFound(format!("organisation {code}")))?
                .credit_code
        }
        "scenario" => scenarios::resolve(&tx, target)?.id.to_string(),
        other => {
            return Err(Error::Invalid(format!(
                "target `{other}`: principal, organisation or scenario"
            )));
        }
    };
    let id = incidents::issue_order(&tx, kind, &target, requirement, &deadline, actor)?;
    audit::append(
        &tx,
        actor,
        EventKind::OrderIssued,
        &Subject::Order(id),
        json!({"target_kind": kind, "target": target, "requirement": requirement, "deadline": deadline}),
    )?;
    let o = order_of(&tx, id)?;
    tx.commit()?;
    Ok(o)
}

fn parse_deadline(d: &str) -> Result<String> {
    let d = d.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(d) {
        return Ok(t
            .with_timezone(&chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
    }
    if let Ok(day) = chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d") {
        let end = day
            .and_hms_micro_opt(23, 59, 59, 999_999)
            .ok_or_else(|| Error::Invalid(format!("deadline `{d}`")))?;
        return Ok(end
            .and_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
    }
    Err(Error::Invalid(format!(
        "deadline `{d}`: a date (YYYY-MM-DD) or a time (RFC 3339)"
    )))
}

/// The target answers an order before its deadline: the developer, a developer of the
/// organisation, or the scenario's developer.
pub fn answer(domain: &Domain, actor: &str, id: i64, what: &str) -> Result<Order> {
    let what = text(what, "an answer")?;
    let mut conn = domain.conn()?;
    let tx = conn.write()?;
    let who = authz::authorize(&tx, actor, Action::OrderAnswer, On::Domain)?;
    let o = order_of(&tx, id)?;
    let concerned = match o.target_kind.as_str() {
        "principal" => o.target == who.name,
        "organisation" => who.organisation.as_deref() == Some(o.target.as_str()),
        _ => o
            .target
            .parse::<i64>()
            .ok()
            .map(|s| scenarios::get(&tx, s).map(|r| r.developer == who.name))
            .transpose()?
            .unwrap_or(false),
    };
    if !concerned {
        return Err(Error::Forbidden(format!(
            "rectification order {id} is not addressed to `{actor}`"
        )));
    }
    if o.status != "open" {
        return Err(Error::Conflict(format!(
            "rectification order {id} is {}",
            o.status
        )));
    }
    if o.deadline <= sandbox_store::now() {
        return Err(Error::Conflict(format!(
            "rectification order {id} passed its deadline {}",
            o.deadline
        )));
    }
    incidents::answer_order(&tx, id, what, actor)?;
    audit::append(
        &tx,
        actor,
        EventKind::OrderAnswered,
        &Subject::Order(id),
        json!({"answer": what}),
    )?;
    let o = order_of(&tx, id)?;
    tx.commit()?;
    Ok(o)
}

/// A supervisor accepts an answered order and closes it.
pub fn close_order(domain: &Domain, actor: &str, id: i64) -> Result<Order> {
    let mut conn = domain.conn()?;
    let tx = conn.write()?;
    authz::authorize(&tx, actor, Action::OrderIssue, On::Domain)?;
    let o = order_of(&tx, id)?;
    if o.status != "answered" {
        return Err(Error::Conflict(format!(
            "rectification order {id} is {}; an answered order is closed",
            o.status
        )));
    }
    incidents::close_order(&tx, id, actor)?;
    audit::append(
        &tx,
        actor,
        EventKind::OrderClosed,
        &Subject::Order(id),
        json!({}),
    )?;
    let o = order_of(&tx, id)?;
    tx.commit()?;
    Ok(o)
}

/// Every order, newest first (supervisors and operators; a developer reads those
/// addressed to it). Orders past their deadline are enforced first.
pub fn orders(domain: &Domain, actor: &str) -> Result<Vec<Order>> {
    authz::authorize(&*domain.conn()?, actor, Action::OrderRead, On::Domain)?;
    enforce_due(domain)?;
    let conn = domain.conn()?;
    let who = authz::authorize(&conn, actor, Action::OrderRead, On::Domain)?;
    let all = incidents::orders(&conn)?;
    if matches!(who.role, Role::Operator | Role::Supervisor) {
        return Ok(all);
    }
    let mine = |o: &Order| -> Result<bool> {
        Ok(match o.target_kind.as_str() {
            "principal" => o.target == who.name,
            "organisation" => who.organisation.as_deref() == Some(o.target.as_str()),
            _ => o
                .target
                .parse::<i64>()
                .ok()
                .map(|s| scenarios::get(&conn, s).map(|r| r.developer == who.name))
                .transpose()?
                .unwrap_or(false),
        })
    };
    let mut out = Vec::new();
    for o in all {
        if mine(&o)? {
            out.push(o);
        }
    }
    Ok(out)
}

/// Records the suspension of every target whose order passed its deadline unanswered:
/// the developer, each developer of the organisation, or the scenario; once that commits,
/// their running jobs in this process are interrupted. Returns the orders enforced. Run by the server every minute
/// and before orders are listed; the authorization path refuses the work from the
/// deadline on, whether or not this has run.
pub fn enforce_due(domain: &Domain) -> Result<Vec<i64>> {
    let due = incidents::overdue(&*domain.conn()?, &sandbox_store::now())?;
    let mut done = Vec::new();
    for o in due {
        let reason = format!(
            "rectification order {} passed its deadline {} unanswered",
            o.id, o.deadline
        );
        let mut conn = domain.conn()?;
        let tx = conn.write()?;
        // Another process may have enforced it meanwhile.
        if incidents::order(&tx, o.id)?.is_none_or(|now| now.status != "open") {
            continue;
        }
        let mut suspended: Vec<String> = Vec::new();
        let mut targets: Vec<sandbox_core::job::StopTarget> = Vec::new();
        match o.target_kind.as_str() {
            "scenario" => {
                if let Ok(id) = o.target.parse::<i64>() {
                    let r = scenarios::get(&tx, id)?;
                    if r.status == ScenarioStatus::Approved {
                        scenarios::set_status(&tx, id, ScenarioStatus::Suspended, &reason)?;
                        audit::append(
                            &tx,
                            "system",
                            EventKind::ScenarioSuspended,
                            &Subject::Scenario(id),
                            json!({"reason": reason, "order": o.id}),
                        )?;
                        suspended.push(format!("scenario:{id}"));
                        targets.push(sandbox_core::job::StopTarget::Scenario(id));
                    }
                }
            }
            kind => {
                let names: Vec<String> = if kind == "principal" {
                    vec![o.target.clone()]
                } else {
                    principals::list(&tx)?
                        .into_iter()
                        .filter(|p| {
                            p.role == Role::Developer
                                && p.organisation.as_deref() == Some(o.target.as_str())
                        })
                        .map(|p| p.name)
                        .collect()
                };
                for name in names {
                    if let Some(p) = principals::lookup(&tx, &name)?
                        && p.status == sandbox_core::principal::Status::Active
                    {
                        principals::set_status(
                            &tx,
                            &name,
                            sandbox_core::principal::Status::Suspended,
                        )?;
                        audit::append(
                            &tx,
                            "system",
                            EventKind::PrincipalSuspended,
                            &Subject::Principal(name.clone()),
                            json!({"role": p.role, "from": p.status, "to": "suspended", "reason": reason, "order": o.id}),
                        )?;
                        suspended.push(format!("principal:{name}"));
                        targets.push(sandbox_core::job::StopTarget::Developer(name.clone()));
                    }
                }
            }
        }
        incidents::enforce_order(&tx, o.id)?;
        audit::append(
            &tx,
            "system",
            EventKind::OrderEnforced,
            &Subject::Order(o.id),
            json!({"suspended": suspended}),
        )?;
        // Running jobs of what was suspended stop, once that is recorded.
        domain.commit_interrupting_all(tx, &targets, sandbox_core::job::Interrupt::Suspended)?;
        done.push(o.id);
    }
    Ok(done)
}
