//! Consent before use (JZ Art. 11; SYS Art. 43; TJ-Sec Art. 7) and scenario types (QQHR
//! Art. 15).
//!
//! A scenario becomes usable only when the operator has approved it **and** the provider
//! of every dataset it uses and a supervisor (the data bureau) have recorded no objection.
//! An objection carries its reasons; the applicant answers it, and the scenario stays
//! pending until the objecting party records no objection. The words may come in any
//! order; [`promote`], called by each of them in its transaction, makes the scenario
//! approved when the last one is in, after checking the providers' conditions again.
//! A scenario of an established type, over the same datasets and columns in the same mode,
//! needs no consents of its own ("one type of scenario, one review").
//!
//! The providers' conditions (`[conditions]` of each dataset's policy: scenario types,
//! modes, the most ε per scenario, the most ε all scenarios over the dataset take together)
//! are checked at application, at approval and when the scenario becomes usable
//! ([`conditions_hold`]).

use std::collections::{BTreeMap, BTreeSet};

use sandbox_core::ScenarioStatus as Status;
use sandbox_core::audit::{EventKind, Subject};
use sandbox_core::authz::Action;
use sandbox_policies::{PolicyError, Scenario};
use sandbox_store::authz::{self, On};
pub use sandbox_store::consents::ScenarioType;
use sandbox_store::consents::{self, ConsentRow};
use sandbox_store::scenarios::{self, ScenarioRecord};
use sandbox_store::{Conn, audit, catalog};
use serde::Serialize;
use serde_json::json;

use crate::{Domain, Error, Result};

/// Who must consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    /// The provider of a dataset the scenario uses.
    Provider,
    /// A supervisor (the data bureau).
    Supervisor,
}

impl Party {
    fn as_str(self) -> &'static str {
        match self {
            Party::Provider => "provider",
            Party::Supervisor => "supervisor",
        }
    }
}

/// Where one party's word stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsentState {
    /// Nothing recorded yet.
    Awaited,
    /// No objection.
    NoObjection,
    /// An objection, answered or not: the scenario stays pending.
    Objection,
}

/// One party's word on a scenario.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ConsentItem {
    /// Whose word.
    pub party: Party,
    /// The dataset a provider speaks for.
    pub dataset: Option<String>,
    /// Where it stands.
    pub state: ConsentState,
    /// Who recorded it, and when.
    pub by: Option<String>,
    /// When.
    pub at: Option<String>,
    /// An objection's reasons.
    pub reasons: Option<String>,
    /// The applicant's answer to the objection, if any.
    pub answer: Option<String>,
    /// When it was answered.
    pub answered_at: Option<String>,
}

/// What a scenario needs before it is usable, and where each part stands (shown to the
/// applicant).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Consents {
    /// The scenario.
    pub scenario_id: i64,
    /// Its status.
    pub status: Status,
    /// The operator who approved it, if one has.
    pub approved_by: Option<String>,
    /// The established type whose review covers it, if any: no consents are needed.
    pub covered_by_type: Option<String>,
    /// Each party's word.
    pub items: Vec<ConsentItem>,
    /// Whether every consent it needs is in.
    pub complete: bool,
    /// Every word recorded, in order.
    pub history: Vec<ConsentRow>,
}

/// The datasets and columns of a scenario, and its mode: what a type fixes.
fn shape(spec: &Scenario) -> serde_json::Value {
    let datasets: BTreeMap<&str, BTreeSet<&str>> = spec
        .datasets
        .iter()
        .map(|d| {
            (
                d.name.as_str(),
                d.columns.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    json!({"mode": spec.mode, "datasets": datasets})
}

/// The type that covers a scenario: the one it names, established, of the same shape.
fn covering_type(conn: &Conn, spec: &Scenario) -> Result<Option<ScenarioType>> {
    let Some(name) = &spec.scenario_type else {
        return Ok(None);
    };
    Ok(consents::get_type(conn, name)?.filter(|t| t.shape == shape(spec)))
}

/// Where a scenario's consents stand, as stored now.
pub(crate) fn state(conn: &Conn, record: &ScenarioRecord) -> Result<Consents> {
    let history = consents::of_scenario(conn, record.id)?;
    let covered_by_type = covering_type(conn, &record.spec)?.map(|t| t.name);
    let mut items = Vec::new();
    if covered_by_type.is_none() {
        let parties = record
            .spec
            .datasets
            .iter()
            .map(|d| (Party::Provider, Some(d.name.clone())))
            .chain([(Party::Supervisor, None)]);
        for (party, dataset) in parties {
            let mut item = ConsentItem {
                party,
                dataset: dataset.clone(),
                state: ConsentState::Awaited,
                by: None,
                at: None,
                reasons: None,
                answer: None,
                answered_at: None,
            };
            for row in history
                .iter()
                .filter(|r| r.party == party.as_str() && r.dataset == dataset)
            {
                match row.decision.as_str() {
                    "answer" => {
                        item.answer = row.text.clone();
                        item.answered_at = Some(row.created_at.clone());
                    }
                    decision => {
                        item.state = if decision == "objection" {
                            ConsentState::Objection
                        } else {
                            ConsentState::NoObjection
                        };
                        item.by = Some(row.actor.clone());
                        item.at = Some(row.created_at.clone());
                        item.reasons = row.text.clone();
                        item.answer = None;
                        item.answered_at = None;
                    }
                }
            }
            items.push(item);
        }
    }
    let complete = items.iter().all(|i| i.state == ConsentState::NoObjection);
    Ok(Consents {
        scenario_id: record.id,
        status: record.status,
        approved_by: record.decided_by.clone(),
        covered_by_type,
        items,
        complete,
        history,
    })
}

/// Refuses a scenario the providers' conditions do not allow: a `not_shared` dataset
/// without a recorded sharing decision, its type, mode and ε per dataset, and the ε all
/// scenarios over each dataset are granted together (a revoked one counts what it spent;
/// `this` is left out of the others).
pub(crate) fn conditions_hold(conn: &Conn, spec: &Scenario, this: Option<i64>) -> Result<()> {
    let others = scenarios::list(conn)?;
    for d in &spec.datasets {
        let Ok(version) = catalog::get(conn, &d.name) else {
            continue;
        };
        // A dataset not shared goes in only on a recorded decision (SYS Art. 24).
        if version.policy.dataset.share_type == sandbox_policies::ShareType::NotShared
            && sandbox_store::versions::sharing(conn, &d.name, &spec.name)?.is_none()
        {
            return Err(Error::Forbidden(format!(
                "dataset `{}` is not shared (SYS Art. 24): its provider or a supervisor must record a decision to put it in scenario `{}`",
                d.name, spec.name
            )));
        }
        let conditions = &version.policy.conditions;
        conditions.allow(
            &d.name,
            spec.scenario_type.as_deref(),
            spec.mode,
            spec.budget.epsilon,
        )?;
        if let Some(cap) = conditions.max_epsilon_total {
            let taken: f64 = others
                .iter()
                .filter(|o| Some(o.id) != this)
                .filter(|o| o.spec.datasets.iter().any(|od| od.name == d.name))
                .map(|o| match o.status {
                    Status::Approved | Status::Suspended => o.spec.budget.epsilon,
                    Status::Revoked => o.epsilon_spent,
                    _ => 0.0,
                })
                .sum();
            if taken + spec.budget.epsilon > cap * (1.0 + 1e-9) {
                return Err(Error::Policy(PolicyError::Invalid {
                    field: format!("dataset `{}`: conditions.max_epsilon_total", d.name),
                    message: format!(
                        "its provider allows ε {cap} across all scenarios over it; {taken} is granted to others, this one asks {}",
                        spec.budget.epsilon
                    ),
                }));
            }
        }
    }
    Ok(())
}

/// Makes a pending scenario the operator approved usable once every consent it needs is
/// in (and the conditions still hold), recorded as `scenario.usable`; otherwise leaves it
/// pending. Called in the transaction of each word and of the approval.
pub(crate) fn promote(tx: &Conn, id: i64, actor: &str) -> Result<ScenarioRecord> {
    let record = scenarios::get(tx, id)?;
    if record.status != Status::Pending || record.decided_by.is_none() {
        return Ok(record);
    }
    let consents = state(tx, &record)?;
    if !consents.complete {
        return Ok(record);
    }
    conditions_hold(tx, &record.spec, Some(id))?;
    scenarios::set_usable(tx, id)?;
    audit::append(
        tx,
        actor,
        EventKind::ScenarioUsable,
        &Subject::Scenario(id),
        json!({"approved_by": record.decided_by, "covered_by_type": consents.covered_by_type,
               "consents": consents.items.iter().map(|i| json!({"party": i.party, "dataset": i.dataset, "by": i.by})).collect::<Vec<_>>()}),
    )?;
    Ok(scenarios::get(tx, id)?)
}

/// Where a scenario's consents stand, for a member of it (the applicant among them).
pub fn consents(domain: &Domain, actor: &str, key: &str) -> Result<Consents> {
    let conn = domain.conn()?;
    let record = scenarios::resolve(&conn, key)?;
    authz::authorize(&conn, actor, Action::ScenarioRead, On::Scenario(&record))?;
    state(&conn, &record)
}

/// A provider of a dataset the scenario uses (for each such dataset it registered, or the
/// one named), or a supervisor, records no objection, or an objection with its reasons.
pub fn consent(
    domain: &Domain,
    actor: &str,
    key: &str,
    dataset: Option<&str>,
    objection: Option<&str>,
) -> Result<Consents> {
    let objection = objection.map(str::trim);
    if objection.is_some_and(str::is_empty) {
        return Err(Error::Invalid("an objection needs its reasons".into()));
    }
    let mut conn = domain.conn()?;
    let tx = conn.write()?;
    let record = scenarios::resolve(&tx, key)?;
    let who = authz::authorize(&tx, actor, Action::ScenarioConsent, On::Scenario(&record))?;
    if record.status != Status::Pending {
        return Err(Error::Conflict(format!(
            "scenario `{}` is {}; consents are recorded while it is pending",
            record.spec.name, record.status
        )));
    }
    let current = state(&tx, &record)?;
    if let Some(t) = &current.covered_by_type {
        return Err(Error::Conflict(format!(
            "scenario `{}` is of the established type `{t}`: its review covers it",
            record.spec.name
        )));
    }
    let (party, datasets): (Party, Vec<Option<String>>) = match who.role {
        sandbox_core::Role::Supervisor => {
            if dataset.is_some() {
                return Err(Error::Invalid(
                    "a supervisor consents for the scenario as a whole, not a dataset".into(),
                ));
            }
            (Party::Supervisor, vec![None])
        }
        _ => {
            let mut mine = Vec::new();
            for d in &record.spec.datasets {
                if dataset.is_none_or(|n| n == d.name)
                    && catalog::registered_by(&tx, &d.name, actor)?
                {
                    mine.push(Some(d.name.clone()));
                }
            }
            if mine.is_empty() {
                return Err(Error::Forbidden(match dataset {
                    Some(n) => format!(
                        "`{actor}` is not the provider of dataset `{n}` of scenario `{}`",
                        record.spec.name
                    ),
                    None => format!(
                        "`{actor}` provides none of the datasets of scenario `{}`",
                        record.spec.name
                    ),
                }));
            }
            (Party::Provider, mine)
        }
    };
    let decision = if objection.is_some() {
        "objection"
    } else {
        "no_objection"
    };
    for d in &datasets {
        consents::record(
            &tx,
            record.id,
            party.as_str(),
            d.as_deref(),
            actor,
            decision,
            objection,
        )?;
        audit::append(
            &tx,
            actor,
            if objection.is_some() {
                EventKind::ScenarioObjected
            } else {
                EventKind::ScenarioConsented
            },
            &Subject::Scenario(record.id),
            json!({"party": party, "dataset": d, "reasons": objection}),
        )?;
    }
    let record = promote(&tx, record.id, actor)?;
    let out = state(&tx, &record)?;
    tx.commit()?;
    Ok(out)
}

/// The applicant answers an objection (of a provider for `dataset`, or of the supervisor);
/// the objecting party may then record no objection.
pub fn answer(
    domain: &Domain,
    actor: &str,
    key: &str,
    party: Party,
    dataset: Option<&str>,
    text: &str,
) -> Result<Consents> {
    let text = text.trim();
    if text.is_empty() {
        return Err(Error::Invalid("an answer needs its text".into()));
    }
    let mut conn = domain.conn()?;
    let tx = conn.write()?;
    let record = scenarios::resolve(&tx, key)?;
    authz::authorize(&tx, actor, Action::ScenarioApply, On::Scenario(&record))?;
    if record.developer != actor {
        return Err(Error::Forbidden(format!(
            "only the applicant answers objections to scenario `{}`",
            record.spec.name
        )));
    }
    let current = state(&tx, &record)?;
    let dataset = if party == Party::Supervisor {
        None
    } else {
        dataset.map(str::to_string)
    };
    let objected = current
        .items
        .iter()
        .any(|i| i.party == party && i.dataset == dataset && i.state == ConsentState::Objection);
    if !objected {
        return Err(Error::Conflict(format!(
            "no objection of the {} stands on scenario `{}`",
            match &dataset {
                Some(d) => format!("provider of `{d}`"),
                None => party.as_str().to_string(),
            },
            record.spec.name
        )));
    }
    consents::record(
        &tx,
        record.id,
        party.as_str(),
        dataset.as_deref(),
        actor,
        "answer",
        Some(text),
    )?;
    audit::append(
        &tx,
        actor,
        EventKind::ScenarioObjectionAnswered,
        &Subject::Scenario(record.id),
        json!({"party": party, "dataset": dataset, "answer": text}),
    )?;
    let out = state(&tx, &record)?;
    tx.commit()?;
    Ok(out)
}

/// An operator establishes a scenario type from a scenario that went through the whole
/// review (approved, with its consents): later scenarios naming it, over the same datasets
/// and columns in the same mode, need only the operator's approval.
pub fn establish_type(
    domain: &Domain,
    actor: &str,
    name: &str,
    from: &str,
    description: &str,
) -> Result<ScenarioType> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '-'));
    if !ok {
        return Err(Error::Invalid(format!(
            "type `{name}`: 1-64 characters of lowercase letters, digits, `_` and `-`"
        )));
    }
    if description.trim().is_empty() {
        return Err(Error::Invalid("a scenario type needs a description".into()));
    }
    let mut conn = domain.conn()?;
    let tx = conn.write()?;
    authz::authorize(&tx, actor, Action::ScenarioDecide, On::Domain)?;
    let record = scenarios::resolve(&tx, from)?;
    let current = state(&tx, &record)?;
    if record.status != Status::Approved || current.covered_by_type.is_some() {
        return Err(Error::Conflict(format!(
            "scenario `{}` is {}{}: a type is established from a scenario approved through the whole review",
            record.spec.name,
            record.status,
            current
                .covered_by_type
                .map(|t| format!(" through the type `{t}`"))
                .unwrap_or_default()
        )));
    }
    if consents::get_type(&tx, name)?.is_some() {
        return Err(Error::Conflict(format!("scenario type `{name}` exists")));
    }
    let t = ScenarioType {
        name: name.to_string(),
        description: description.trim().to_string(),
        scenario_id: record.id,
        shape: shape(&record.spec),
        created_by: actor.to_string(),
        created_at: sandbox_store::now(),
    };
    consents::insert_type(&tx, &t)?;
    audit::append(
        &tx,
        actor,
        EventKind::ScenarioTypeEstablished,
        &Subject::Scenario(record.id),
        json!({"type": t.name, "description": t.description, "shape": t.shape}),
    )?;
    tx.commit()?;
    Ok(t)
}

/// The established scenario types.
pub fn types(domain: &Domain, actor: &str) -> Result<Vec<ScenarioType>> {
    let conn = domain.conn()?;
    authz::authorize(&conn, actor, Action::ScenarioRead, On::Domain)?;
    Ok(consents::types(&conn)?)
}
