//! Review and release (QQHR Art. 11, 17, 19): no output circulates before the operating
//! institution's review and the supervisor's.
//!
//! **Architecture invariant:** [`release`] is the only writer of `products/`, and it
//! re-reads the approvals from the store: an operator approval and then a supervisor
//! approval, by two different people, neither of them the job's submitter. A flagged
//! output needs a written reason at both tiers.

pub mod checks;

use std::fs;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::identity::{self, Role};
use crate::jobs::{self, OutputRecord};
use crate::{Domain, Error, Result, audit, catalog, keys, scenarios, sha256_hex, store};

/// Manifest file name inside a product folder.
pub const MANIFEST: &str = "manifest.json";
/// Signature file name inside a product folder.
pub const SIGNATURE: &str = "manifest.sig";

/// A review decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Approve.
    Approve,
    /// Reject.
    Reject,
    /// Send back to the developer: the output is not released, and a new job may follow.
    RequestChanges,
}

fn submitter_of(conn: &Connection, job_id: &str) -> Result<String> {
    Ok(conn.query_row(
        "SELECT submitter FROM jobs WHERE id = ?1",
        params![job_id],
        |r| r.get(0),
    )?)
}

/// Records a review decision. An operator reviews first, then a supervisor; on the
/// supervisor's approval the output is released.
pub fn decide(
    domain: &Domain,
    actor: &str,
    output_id: &str,
    decision: Decision,
    reason: Option<&str>,
) -> Result<OutputRecord> {
    let mut conn = domain.conn()?;
    let principal = identity::find(&conn, actor)?
        .ok_or_else(|| Error::Forbidden(format!("unknown principal `{actor}`")))?;
    let tier = match principal.role {
        Role::Operator => "operator",
        Role::Supervisor => "supervisor",
        other => {
            return Err(Error::Forbidden(format!(
                "a {other} does not review outputs; operators and supervisors do"
            )));
        }
    };
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let output = jobs::output(&tx, output_id)?;
    let submitter = submitter_of(&tx, &output.job_id)?;
    if submitter == actor {
        return Err(Error::Forbidden(
            "nobody reviews their own job's output".into(),
        ));
    }
    let expected = match tier {
        "operator" => ["checked", "flagged"].contains(&output.status.as_str()),
        _ => output.status == "operator_approved",
    };
    if !expected {
        return Err(Error::Review(format!(
            "output `{output_id}` is {}; a {tier} cannot decide on it now",
            output.status
        )));
    }
    let flagged = output_flagged(&output);
    let needs_note = output_needs_note(&output);
    if tier == "supervisor" {
        let operator: Option<String> = tx
            .query_row(
                "SELECT reviewer FROM reviews WHERE output_id = ?1 AND tier = 'operator' AND decision = 'approve'
                 ORDER BY id DESC LIMIT 1",
                params![output_id],
                |r| r.get(0),
            )
            .optional()?;
        if operator.as_deref() == Some(actor) {
            return Err(Error::Forbidden(
                "the two approvals must come from different people".into(),
            ));
        }
    }
    if decision == Decision::Approve && flagged && reason.is_none() {
        return Err(Error::Review(format!(
            "output `{output_id}` failed an automated check; approving it needs a written override reason"
        )));
    }
    if decision == Decision::Approve && tier == "operator" && needs_note && reason.is_none() {
        return Err(Error::Review(format!(
            "output `{output_id}` has a check result marked for review; approving it needs a written note on why it is fine"
        )));
    }
    if decision == Decision::Reject && reason.is_none() {
        return Err(Error::Review("a rejection needs a reason".into()));
    }
    if decision == Decision::RequestChanges && reason.is_none() {
        return Err(Error::Review(
            "a request for changes needs a comment saying what to change".into(),
        ));
    }
    let decision_text = match decision {
        Decision::Approve => "approve",
        Decision::Reject => "reject",
        Decision::RequestChanges => "request_changes",
    };
    tx.execute(
        "INSERT INTO reviews (output_id, reviewer, tier, decision, reason, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![output_id, actor, tier, decision_text, reason, store::now()],
    )?;
    let status = match (decision, tier) {
        (Decision::Reject, _) => "rejected",
        (Decision::RequestChanges, _) => "changes_requested",
        (Decision::Approve, "operator") => "operator_approved",
        (Decision::Approve, _) => "operator_approved",
    };
    tx.execute(
        "UPDATE outputs SET status = ?2 WHERE id = ?1",
        params![output_id, status],
    )?;
    audit::append(
        &tx,
        actor,
        &format!("output.{tier}_{decision_text}"),
        &format!("output:{output_id}"),
        json!({"from": output.status, "to": status, "reason": reason, "override": flagged && decision == Decision::Approve}),
    )?;
    tx.commit()?;
    if decision == Decision::Approve && tier == "supervisor" {
        release(domain, actor, output_id)?;
    }
    jobs::output(&domain.conn()?, output_id)
}

fn outcomes(o: &OutputRecord) -> Vec<String> {
    o.checks
        .as_ref()
        .and_then(|c| c.get("results"))
        .and_then(Value::as_array)
        .map(|rs| {
            rs.iter()
                .map(|r| {
                    r.get("outcome")
                        .and_then(Value::as_str)
                        .unwrap_or("fail")
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a check failed (or the record is unreadable): an override at both tiers.
fn output_flagged(o: &OutputRecord) -> bool {
    o.status == "flagged" || outcomes(o).iter().any(|x| x != "pass" && x != "review")
}

/// Whether a check asks for review: the operator's approval needs a written note.
fn output_needs_note(o: &OutputRecord) -> bool {
    outcomes(o).iter().any(|x| x == "review")
}

/// An approval as read back from the store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Approval {
    /// `operator` or `supervisor`.
    pub tier: String,
    /// Who.
    pub reviewer: String,
    /// Why (the override reason for a flagged output).
    pub reason: Option<String>,
    /// When.
    pub at: String,
}

/// Releases an approved output as a product: files, `manifest.json`, `manifest.sig`.
/// Refused unless the store holds an operator approval and a later supervisor approval by
/// two different people, neither the submitter, and (for a flagged output) both with a
/// reason.
pub fn release(domain: &Domain, actor: &str, output_id: &str) -> Result<Product> {
    let mut conn = domain.conn()?;
    let releaser = identity::find(&conn, actor)?
        .ok_or_else(|| Error::Forbidden(format!("unknown principal `{actor}`")))?;
    if !matches!(releaser.role, Role::Operator | Role::Supervisor) {
        return Err(Error::Forbidden(format!(
            "a {} does not release products; operators and supervisors do",
            releaser.role
        )));
    }
    let output = jobs::output(&conn, output_id)?;
    let (scenario_id, submitter, module_sha, params_json, job_created): (i64, String, String, String, String) =
        conn.query_row(
            "SELECT scenario_id, submitter, module_sha256, params_json, created_at FROM jobs WHERE id = ?1",
            params![output.job_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?;
    if output.status != "operator_approved" {
        return Err(Error::Review(format!(
            "output `{output_id}` is {}; only an operator-approved output can be released",
            output.status
        )));
    }
    let approvals: Vec<Approval> = conn
        .prepare(
            "SELECT tier, reviewer, reason, created_at FROM reviews
             WHERE output_id = ?1 AND decision = 'approve' ORDER BY id",
        )?
        .query_map(params![output_id], |r| {
            Ok(Approval {
                tier: r.get(0)?,
                reviewer: r.get(1)?,
                reason: r.get(2)?,
                at: r.get(3)?,
            })
        })?
        .collect::<std::result::Result<_, _>>()?;
    // The latest of each: a re-check at release may have sent the output back to review.
    let operator = approvals.iter().rev().find(|a| a.tier == "operator");
    let supervisor = approvals.iter().rev().find(|a| a.tier == "supervisor");
    let (Some(operator), Some(supervisor)) = (operator, supervisor) else {
        return Err(Error::Review(
            "release needs an operator approval and a supervisor approval".into(),
        ));
    };
    if operator.reviewer == supervisor.reviewer {
        return Err(Error::Forbidden(
            "the two approvals must come from different people".into(),
        ));
    }
    if operator.reviewer == submitter || supervisor.reviewer == submitter {
        return Err(Error::Forbidden(
            "the submitter cannot approve their own output".into(),
        ));
    }
    if output_flagged(&output) && (operator.reason.is_none() || supervisor.reason.is_none()) {
        return Err(Error::Review(
            "a flagged output needs a written override reason at both tiers".into(),
        ));
    }
    recheck(domain, &mut conn, scenario_id, &output)?;
    let record = scenarios::get(&conn, scenario_id)?;
    let mut datasets = Vec::new();
    for d in &record.spec.datasets {
        let v = catalog::get(&conn, domain, &d.name)?;
        let policy_toml: String = conn.query_row(
            "SELECT policy_toml FROM dataset_versions WHERE dataset = ?1 AND version = ?2",
            params![v.name, v.version],
            |r| r.get(0),
        )?;
        datasets.push(json!({
            "policy_sha256": sha256_hex(policy_toml.as_bytes()),
            "name": v.name,
            "version": v.version,
            "provider": v.policy.dataset.provider,
            "provider_code": v.policy.dataset.provider_code,
            "obtained_at": v.obtained_at,
            "content_sha256": v.content_sha256,
            "columns": d.columns,
        }));
    }
    let queries: Vec<Value> = conn
        .prepare(
            "SELECT id, sql, status, rule, epsilon, delta, mechanism, created_at FROM queries
             WHERE job_id = ?1 ORDER BY created_at",
        )?
        .query_map(params![output.job_id], |r| {
            Ok(json!({
                "id": r.get::<_, String>(0)?,
                "sql": r.get::<_, String>(1)?,
                "status": r.get::<_, String>(2)?,
                "rule": r.get::<_, Option<String>>(3)?,
                "epsilon": r.get::<_, f64>(4)?,
                "delta": r.get::<_, f64>(5)?,
                "mechanism": r.get::<_, Option<String>>(6)?,
                "at": r.get::<_, String>(7)?,
            }))
        })?
        .collect::<std::result::Result<_, _>>()?;
    let epsilon_job: f64 = queries.iter().filter_map(|q| q["epsilon"].as_f64()).sum();
    // Where the output's history is in the audit log: the job, its queries, the output's
    // staging and reviews (each position can be proved against the manifest's checkpoint).
    let positions: Vec<Value> = conn
        .prepare(
            "SELECT seq, action FROM audit_events
             WHERE subject = ?1 OR subject = ?2 OR json_extract(details, '$.job_id') = ?3
             ORDER BY seq",
        )?
        .query_map(
            params![
                format!("job:{}", output.job_id),
                format!("output:{output_id}"),
                output.job_id
            ],
            |r| Ok(json!({"seq": r.get::<_, i64>(0)?, "action": r.get::<_, String>(1)?})),
        )?
        .collect::<std::result::Result<_, _>>()?;
    let product_id = crate::new_id("prod");
    let released_at = store::now();
    // A signed checkpoint of the log so far, after checking the events since the last one.
    let checkpoint = audit::checkpoint(&conn, domain.layout())?;
    let manifest = json!({
        "format": "sandbox-product-manifest/1",
        "product_id": product_id,
        "released_at": released_at,
        "released_by": actor,
        "files": [{
            "name": output.file_name,
            "kind": output.kind,
            "sha256": output.sha256,
            "bytes": output.bytes,
        }],
        "output": {"id": output.id, "name": output.name},
        "job": {
            "id": output.job_id,
            "submitter": submitter,
            "module_sha256": module_sha,
            "params": serde_json::from_str::<Value>(&params_json).unwrap_or(Value::Null),
            "submitted_at": job_created,
        },
        "scenario": {
            "id": record.id,
            "name": record.spec.name,
            "purpose": record.spec.purpose,
            "valid_from": record.spec.valid_from,
            "valid_until": record.spec.valid_until,
            "mode": record.spec.mode,
            "approved_by": record.decided_by,
        },
        "datasets": datasets,
        "queries": queries,
        "privacy": {
            "epsilon_job": epsilon_job,
            "epsilon_scenario_spent": record.epsilon_spent,
            "epsilon_scenario_total": record.spec.budget.epsilon,
        },
        "checks": output.checks,
        "approvals": approvals,
        "audit": {
            "events": positions,
            "checkpoint": checkpoint.number,
            "size": checkpoint.size,
            "root": checkpoint.root,
            "ts": checkpoint.ts,
            "signature": checkpoint.signature,
        },
        "domain_public_key": hex::encode(keys::verifying_key(domain.layout())?.to_bytes()),
    });
    let manifest_bytes = serde_json::to_vec_pretty(&manifest)?;
    let signature = keys::sign(domain.layout(), &manifest_bytes)?;
    let final_dir = domain.layout().products().join(&product_id);
    let tmp = domain
        .layout()
        .products()
        .join(format!(".{product_id}.tmp"));
    fs::create_dir_all(&tmp)?;
    let result = (|| {
        fs::copy(
            domain
                .layout()
                .staging()
                .join(&output.job_id)
                .join(&output.file_name),
            tmp.join(&output.file_name),
        )?;
        if sha256_hex(&fs::read(tmp.join(&output.file_name))?) != output.sha256 {
            return Err(Error::Verify(format!(
                "staged file of output `{output_id}` changed since it was checked"
            )));
        }
        fs::write(tmp.join(MANIFEST), &manifest_bytes)?;
        fs::write(tmp.join(SIGNATURE), &signature)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let status: String = tx.query_row(
            "SELECT status FROM outputs WHERE id = ?1",
            params![output_id],
            |r| r.get(0),
        )?;
        if status != "operator_approved" {
            return Err(Error::Conflict(format!("output `{output_id}` is {status}")));
        }
        tx.execute(
            "UPDATE outputs SET status = 'released' WHERE id = ?1",
            params![output_id],
        )?;
        tx.execute(
            "INSERT INTO products (id, output_id, manifest_sha256, released_by, released_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                product_id,
                output_id,
                sha256_hex(&manifest_bytes),
                actor,
                released_at
            ],
        )?;
        audit::append(
            &tx,
            actor,
            "product.released",
            &format!("product:{product_id}"),
            json!({"output_id": output_id, "manifest_sha256": sha256_hex(&manifest_bytes), "signature": signature}),
        )?;
        // The release event is in a checkpoint that commits with it.
        audit::checkpoint(&tx, domain.layout())?;
        fs::rename(&tmp, &final_dir)?;
        if let Err(e) = tx.commit() {
            let _ = fs::remove_dir_all(&final_dir);
            return Err(e.into());
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    Ok(Product {
        id: product_id,
        output_id: output_id.to_string(),
        path: final_dir,
    })
}

/// Runs the checks again at release: products released since the output was staged may
/// now form a differencing pair with it. An output that passed before and fails now is
/// sent back to review as flagged (recorded), so its release needs the written override.
fn recheck(
    domain: &Domain,
    conn: &mut Connection,
    scenario_id: i64,
    output: &OutputRecord,
) -> Result<()> {
    if output_flagged(output) {
        // Already released only with an override at both tiers.
        return Ok(());
    }
    let kind = match output.kind.as_str() {
        "table" => crate::wasm::OutputKind::Table,
        "text" => crate::wasm::OutputKind::Text,
        _ if output.file_name.ends_with(".png") => crate::wasm::OutputKind::Png,
        _ => crate::wasm::OutputKind::Chart,
    };
    let path = domain
        .layout()
        .staging()
        .join(&output.job_id)
        .join(&output.file_name);
    let staged = crate::wasm::StagedOutput {
        name: output.name.clone(),
        kind,
        bytes: fs::read(&path)?,
    };
    if sha256_hex(&staged.bytes) != output.sha256 {
        return Err(Error::Verify(format!(
            "staged file of output `{}` changed since it was checked",
            output.id
        )));
    }
    let ctx = jobs::check_context(domain, conn, scenario_id, &output.job_id)?;
    let report = checks::run(&ctx, &staged)?;
    if !report.failed() {
        return Ok(());
    }
    let failed: Vec<String> = report
        .results
        .iter()
        .filter(|r| r.outcome == checks::Outcome::Fail)
        .map(|r| format!("{}: {}", r.check, r.reason))
        .collect();
    let checks_json = serde_json::to_value(&report)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "UPDATE outputs SET status = 'flagged', checks_json = ?2 WHERE id = ?1",
        params![output.id, checks_json.to_string()],
    )?;
    audit::append(
        &tx,
        "system",
        "output.rechecked",
        &format!("output:{}", output.id),
        json!({"from": output.status, "to": "flagged", "checks": checks_json}),
    )?;
    tx.commit()?;
    Err(Error::Review(format!(
        "a check run again at release failed ({}); the output is flagged and needs a written override at both tiers",
        failed.join("; ")
    )))
}

/// A released product.
#[derive(Debug, Clone, Serialize)]
pub struct Product {
    /// Product id.
    pub id: String,
    /// The output it releases.
    pub output_id: String,
    /// Its folder.
    pub path: PathBuf,
}

/// Every product (the registry, SYS Art. 50).
pub fn products(domain: &Domain) -> Result<Vec<Product>> {
    let conn = domain.conn()?;
    let rows: Vec<(String, String)> = conn
        .prepare("SELECT id, output_id FROM products ORDER BY released_at")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<std::result::Result<_, _>>()?;
    Ok(rows
        .into_iter()
        .map(|(id, output_id)| Product {
            path: domain.layout().products().join(&id),
            id,
            output_id,
        })
        .collect())
}

/// One product of the registry.
pub fn product(domain: &Domain, id: &str) -> Result<Product> {
    products(domain)?
        .into_iter()
        .find(|p| p.id == id)
        .ok_or_else(|| Error::NotFound(format!("product `{id}`")))
}

impl Product {
    /// Its manifest.
    pub fn manifest(&self) -> Result<Value> {
        Ok(serde_json::from_slice(&fs::read(
            self.path.join(MANIFEST),
        )?)?)
    }

    /// Its manifest's signature (hex).
    pub fn signature(&self) -> Result<String> {
        Ok(fs::read_to_string(self.path.join(SIGNATURE))?
            .trim()
            .to_string())
    }

    /// The files it consists of: those its manifest lists, the manifest and its signature.
    pub fn file_names(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self.manifest()?["files"]
            .as_array()
            .map(|files| {
                files
                    .iter()
                    .filter_map(|f| f["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        names.push(MANIFEST.to_string());
        names.push(SIGNATURE.to_string());
        Ok(names)
    }

    /// One of its files by name; nothing outside [`Product::file_names`] is read.
    pub fn file(&self, name: &str) -> Result<Vec<u8>> {
        if !crate::plain_file_name(name) || !self.file_names()?.iter().any(|n| n == name) {
            return Err(Error::NotFound(format!(
                "file `{name}` of product {}",
                self.id
            )));
        }
        Ok(fs::read(self.path.join(name))?)
    }
}

/// Verifies a product folder: the manifest's signature against the public key it names
/// (and, when given, the domain's key), and every file's hash.
pub fn verify_product(
    dir: &Path,
    expected_key: Option<&ed25519_dalek::VerifyingKey>,
) -> Result<Value> {
    let manifest_bytes = fs::read(dir.join(MANIFEST))
        .map_err(|e| Error::Verify(format!("{}: {e}", dir.join(MANIFEST).display())))?;
    let signature = fs::read_to_string(dir.join(SIGNATURE))
        .map_err(|e| Error::Verify(format!("{}: {e}", dir.join(SIGNATURE).display())))?;
    let manifest: Value = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| Error::Verify(format!("manifest is not JSON: {e}")))?;
    let key_hex = manifest["domain_public_key"]
        .as_str()
        .ok_or_else(|| Error::Verify("manifest names no public key".into()))?;
    let key_bytes: [u8; 32] = hex::decode(key_hex)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| Error::Verify("manifest public key is not 32 hex bytes".into()))?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&key_bytes)
        .map_err(|e| Error::Verify(format!("manifest public key: {e}")))?;
    if let Some(expected) = expected_key
        && expected != &key
    {
        return Err(Error::Verify(
            "manifest is signed by another domain's key".into(),
        ));
    }
    keys::verify(&key, &manifest_bytes, &signature)?;
    audit::verify_manifest_checkpoint(&manifest, &key)?;
    let files = manifest["files"]
        .as_array()
        .ok_or_else(|| Error::Verify("manifest lists no files".into()))?;
    for f in files {
        let name = f["name"]
            .as_str()
            .ok_or_else(|| Error::Verify("file without a name".into()))?;
        if name.contains('/') || name.contains("..") {
            return Err(Error::Verify(format!(
                "file name `{name}` is not a plain name"
            )));
        }
        let bytes = fs::read(dir.join(name)).map_err(|e| Error::Verify(format!("{name}: {e}")))?;
        if Some(sha256_hex(&bytes).as_str()) != f["sha256"].as_str() {
            return Err(Error::Verify(format!(
                "{name}: content does not match the manifest"
            )));
        }
    }
    Ok(manifest)
}
