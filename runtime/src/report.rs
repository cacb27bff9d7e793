//! Compliance reports for supervisors (B8): for the domain, or one scenario, over a
//! period, the evidence the audit log holds for each requirement of the regulations
//! (`../shared/domain.md`): approvals and consents, budgets spent, refusals by rule,
//! checks and decisions, stops, incidents, orders, withdrawals, downloads, each with the
//! events it rests on (their positions in the log, to be proved with `audit prove`). The
//! report is signed by the domain key together with a signed checkpoint of the log, and
//! verifies offline as a product's manifest does ([`verify`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use sandbox_core::authz::Action;
use sandbox_store::authz::{self, On};
use sandbox_store::{audit, keys, scenarios};
use serde_json::{Value, json};

use crate::{Domain, Error, Result};

/// The format of a report.
pub const FORMAT: &str = "sandbox-compliance-report/1";
/// A report's file name in a folder.
pub const REPORT: &str = "report.json";
/// Its signature's.
pub const REPORT_SIGNATURE: &str = "report.sig";

/// A requirement and the events that are its evidence.
struct Requirement {
    id: &'static str,
    articles: &'static str,
    title: &'static str,
    actions: &'static [&'static str],
}

/// The requirements of the regulations, each with the kinds of event that evidence it.
const REQUIREMENTS: &[Requirement] = &[
    Requirement {
        id: "consent",
        articles: "JZ Art. 11; SYS Art. 43; TJ-Sec Art. 7",
        title: "Demand, consent and approval before use",
        actions: &[
            "scenario.applied",
            "scenario.consented",
            "scenario.objected",
            "scenario.objection_answered",
            "scenario.approved",
            "scenario.rejected",
            "scenario.usable",
            "scenario_type.established",
            "dataset.sharing_decided",
        ],
    },
    Requirement {
        id: "budget",
        articles: "QQHR Art. 4, 9; SYS Art. 35, 54",
        title: "Usable but not visible: answers charged to the privacy budget",
        actions: &["query.charged"],
    },
    Requirement {
        id: "refusals",
        articles: "QQHR Art. 9, 17; SYS Art. 31",
        title: "Refusals of what would expose data or exceed the scope",
        actions: &[
            "query.refused",
            "job.refused",
            "module.refused",
            "api.refused",
            "console.refused",
        ],
    },
    Requirement {
        id: "review",
        articles: "QQHR Art. 11, 17, 19; JZ Art. 15, 20",
        title: "Output review by two people and release",
        actions: &[
            "output.staged",
            "output.checked",
            "output.rechecked",
            "output.operator_approve",
            "output.operator_reject",
            "output.operator_request_changes",
            "output.supervisor_approve",
            "output.supervisor_reject",
            "output.supervisor_request_changes",
            "output.refused",
            "product.released",
        ],
    },
    Requirement {
        id: "distribution",
        articles: "TJ-Sec Art. 9, 11; SYS Art. 33, 41, 50",
        title: "Products reach only those entitled",
        actions: &[
            "product.granted",
            "product.downloaded",
            "product.download_refused",
            "output.downloaded",
        ],
    },
    Requirement {
        id: "withdrawal",
        articles: "QQHR Art. 20, 23; JZ Art. 16, 21; SYS Art. 28, 40",
        title: "Withdrawal and recall",
        actions: &[
            "product.withdrawn",
            "dataset.objected",
            "dataset.suspended",
            "dataset.reinstated",
            "dataset.recalled",
        ],
    },
    Requirement {
        id: "stops",
        articles: "QQHR Art. 20; JZ Art. 21",
        title: "Emergency stops",
        actions: &["stop.imposed", "stop.lifted"],
    },
    Requirement {
        id: "incidents",
        articles: "QQHR Art. 20; JZ Art. 21; SYS Art. 61; TJ-Sec Art. 15",
        title: "Incidents, their handling and reports",
        actions: &["incident.opened", "incident.logged", "incident.closed"],
    },
    Requirement {
        id: "rectification",
        articles: "SYS Art. 31; QQHR Art. 23",
        title: "Usage monitoring, rectification and suspension",
        actions: &[
            "order.issued",
            "order.answered",
            "order.closed",
            "order.enforced",
            "scenario.suspended",
            "scenario.reinstated",
            "scenario.revoked",
            "scenario.idle",
        ],
    },
    Requirement {
        id: "qualification",
        articles: "QQHR Art. 14, 23",
        title: "Qualification of developers and organisations",
        actions: &[
            "principal.added",
            "principal.qualified",
            "principal.suspended",
            "principal.revoked",
            "principal.organisation_set",
            "organisation.registered",
            "organisation.changed",
        ],
    },
    Requirement {
        id: "data",
        articles: "TJ-Sec Art. 6; JZ Art. 14; SYS Art. 11, 12",
        title: "Data registered, classified, retired and destroyed",
        actions: &["dataset.registered", "dataset.retired", "dataset.destroyed"],
    },
    Requirement {
        id: "audit",
        articles: "JZ Art. 7; TJ-Sec Art. 8, 10; QQHR Art. 21",
        title: "The record itself: retention and exports",
        actions: &["audit.retention_set", "audit.exported"],
    },
];

/// What a report covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The whole domain.
    Domain,
    /// One scenario, by id or name.
    Scenario(String),
}

/// Builds the report over events whose time lies in `[from, to]` (dates, inclusive), signs
/// it with a fresh signed checkpoint of the log, and returns it with its signature (hex).
/// Supervisors and operators.
pub fn compliance(
    domain: &Domain,
    actor: &str,
    scope: &Scope,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> Result<(Value, String)> {
    if to < from {
        return Err(Error::Invalid(format!(
            "the period ends ({to}) before it starts ({from})"
        )));
    }
    let conn = domain.conn()?;
    authz::authorize(&conn, actor, Action::AuditRead, On::Domain)?;
    let scenario = match scope {
        Scope::Domain => None,
        Scope::Scenario(key) => Some(scenarios::resolve(&conn, key)?),
    };
    let start = format!("{from}T00:00:00");
    let end = format!("{}T00:00:00", to + chrono::Days::new(1));
    // The events of the period, and (for a scenario) those about it, its jobs, their
    // outputs and the products released from them.
    let mut related: BTreeSet<String> = BTreeSet::new();
    if let Some(s) = &scenario {
        related.insert(format!("scenario:{}", s.id));
    }
    let mut by_action: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut epsilon = 0.0f64;
    let mut refusals_by_rule: BTreeMap<String, i64> = BTreeMap::new();
    let mut next = 1;
    loop {
        let page = audit::read(&conn, next, 1000)?;
        let Some(last) = page.last() else { break };
        next = last.seq + 1;
        for e in page {
            let about = match &scenario {
                None => true,
                Some(s) => {
                    let mine = related.contains(&e.subject)
                        || e.details["scenario_id"].as_i64() == Some(s.id)
                        || e.details["job_id"]
                            .as_str()
                            .is_some_and(|j| related.contains(&format!("job:{j}")))
                        || e.details["output_id"]
                            .as_str()
                            .is_some_and(|o| related.contains(&format!("output:{o}")));
                    if mine {
                        related.insert(e.subject.clone());
                    }
                    mine
                }
            };
            if !about || e.ts.as_str() < start.as_str() || e.ts.as_str() >= end.as_str() {
                continue;
            }
            if e.action == "query.charged" {
                epsilon += e.details["epsilon"].as_f64().unwrap_or(0.0);
            }
            if e.action == "query.refused" {
                *refusals_by_rule
                    .entry(e.details["rule"].as_str().unwrap_or("unknown").to_string())
                    .or_default() += 1;
            }
            by_action.entry(e.action.clone()).or_default().push(json!({
                "seq": e.seq, "ts": e.ts, "actor": e.actor, "subject": e.subject,
                "link": format!("/console/audit?from={}", e.seq),
            }));
        }
    }
    let sections: Vec<Value> = REQUIREMENTS
        .iter()
        .map(|r| {
            let counts: BTreeMap<&str, usize> = r
                .actions
                .iter()
                .map(|a| (*a, by_action.get(*a).map_or(0, Vec::len)))
                .collect();
            let mut events: Vec<Value> = r
                .actions
                .iter()
                .flat_map(|a| {
                    by_action.get(*a).into_iter().flatten().map(move |e| {
                        let mut e = e.clone();
                        e["action"] = json!(a);
                        e
                    })
                })
                .collect();
            events.sort_by_key(|e| e["seq"].as_i64());
            let mut section = json!({
                "id": r.id, "articles": r.articles, "title": r.title,
                "counts": counts, "evidence": events.len(), "events": events,
            });
            if r.id == "budget" {
                section["epsilon_spent"] = json!(epsilon);
            }
            if r.id == "refusals" {
                section["queries_refused_by_rule"] = json!(refusals_by_rule);
            }
            if r.id == "audit" {
                section["retention_years"] = json!(audit::retention_years(&conn).unwrap_or(0));
            }
            section
        })
        .collect();
    drop(conn);
    // A signed checkpoint the report is checked against, after checking the log since the
    // last one.
    let mut conn = domain.conn()?;
    let tx = conn.write()?;
    let checkpoint = audit::checkpoint(&tx)?;
    tx.commit()?;
    let report = json!({
        "format": FORMAT,
        "scope": match &scenario {
            None => json!({"domain": true}),
            Some(s) => json!({"scenario": {"id": s.id, "name": s.spec.name, "purpose": s.spec.purpose,
                                           "developer": s.developer, "status": s.status}}),
        },
        "period": {"from": from.to_string(), "to": to.to_string()},
        "generated_at": sandbox_store::now(),
        "generated_by": actor,
        "sections": sections,
        "audit": {"checkpoint": checkpoint.number, "size": checkpoint.size, "root": checkpoint.root,
                  "ts": checkpoint.ts, "signature": checkpoint.signature},
        "suite": checkpoint.suite,
        "domain_public_key": checkpoint.public_key,
    });
    let bytes = serde_json::to_vec_pretty(&report)?;
    let signature = domain.keys().sign(&bytes)?;
    let tx = conn.write()?;
    audit::append(
        &tx,
        actor,
        sandbox_core::audit::EventKind::ReportGenerated,
        &sandbox_core::audit::Subject::Audit,
        json!({"scope": report["scope"], "period": report["period"],
               domain.keys().suite().hash_name(): domain.keys().suite().hash_hex(&bytes)}),
    )?;
    tx.commit()?;
    Ok((report, signature))
}

/// Writes a report and its signature into a new folder: into a temporary folder beside
/// it first, renamed into place once both files are there.
pub fn write(dir: &Path, report: &Value, signature: &str) -> Result<()> {
    if dir.exists() {
        return Err(Error::Conflict(format!("{} exists", dir.display())));
    }
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".report-")
        .tempdir_in(parent)?;
    std::fs::write(tmp.path().join(REPORT), serde_json::to_vec_pretty(report)?)?;
    std::fs::write(tmp.path().join(REPORT_SIGNATURE), signature)?;
    std::fs::rename(tmp.keep(), dir)?;
    Ok(())
}

/// A report and its signature in one JSON document, as the API answers and the console
/// downloads it: `{"report": ..., "signature": "..."}`, the report being the signed bytes
/// once written pretty-printed.
pub fn signed_document(report: &Value, signature: &str) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec_pretty(
        &serde_json::json!({"report": report, "signature": signature}),
    )?)
}

/// Verifies a report offline, as a folder ([`write`]) or one signed document
/// ([`signed_document`]): the signature by the key the report names (and, when given, the
/// domain's), and the signed checkpoint it cites. Returns the report.
pub fn verify(path: &Path, expected_key: Option<&keys::PublicKey>) -> Result<Value> {
    if path.is_dir() {
        let bytes = std::fs::read(path.join(REPORT))
            .map_err(|e| Error::Verify(format!("{REPORT}: {e}")))?;
        let signature = std::fs::read_to_string(path.join(REPORT_SIGNATURE))
            .map_err(|e| Error::Verify(format!("{REPORT_SIGNATURE}: {e}")))?;
        return verify_bytes(&bytes, &signature, expected_key);
    }
    let text =
        std::fs::read(path).map_err(|e| Error::Verify(format!("{}: {e}", path.display())))?;
    let document: Value = serde_json::from_slice(&text)
        .map_err(|e| Error::Verify(format!("{} is not JSON: {e}", path.display())))?;
    let (Some(report), Some(signature)) = (
        document.get("report"),
        document.get("signature").and_then(Value::as_str),
    ) else {
        return Err(Error::Verify(format!(
            "{} holds no report and signature",
            path.display()
        )));
    };
    verify_bytes(&serde_json::to_vec_pretty(report)?, signature, expected_key)
}

fn verify_bytes(
    bytes: &[u8],
    signature: &str,
    expected_key: Option<&keys::PublicKey>,
) -> Result<Value> {
    let report: Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::Verify(format!("{REPORT} is not JSON: {e}")))?;
    if report["format"] != FORMAT {
        return Err(Error::Verify(format!("{REPORT} is not a {FORMAT}")));
    }
    let key = keys::PublicKey::parse(report["domain_public_key"].as_str().unwrap_or(""))
        .map_err(|e| Error::Verify(format!("the report's key: {e}")))?;
    if crate::review::named_suite(&report)? != key.suite() {
        return Err(Error::Verify(
            "the report names another suite than its key's".into(),
        ));
    }
    if let Some(expected) = expected_key
        && expected != &key
    {
        return Err(Error::Verify(
            "the report is signed by another domain's key".into(),
        ));
    }
    keys::verify(&key, bytes, signature.trim())?;
    audit::verify_manifest_checkpoint(&report, &key)?
        .ok_or_else(|| Error::Verify("the report cites no signed checkpoint".into()))?;
    Ok(report)
}

/// The requirements a report covers, with the articles behind each (for the console).
pub fn requirements() -> Vec<(&'static str, &'static str, &'static str)> {
    REQUIREMENTS
        .iter()
        .map(|r| (r.id, r.articles, r.title))
        .collect()
}
