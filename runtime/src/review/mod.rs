//! Review and release (QQHR Art. 11, 17, 19): no output circulates before the operating
//! institution's review and the supervisor's.
//!
//! **Architecture invariant:** [`release`] is the only writer of `products/`, and it
//! re-reads the approvals from the store: an operator approval and then a supervisor
//! approval, by two different people, neither of them the job's submitter. A flagged
//! output needs a written reason at both tiers. Both [`decide`] and [`release`] authorize
//! through the one path: nothing is approved or released while a stop covers the scenario,
//! its developer or the domain, or while the scenario or the submitter is suspended or
//! revoked (refusals recorded as `output.refused`).

mod manifest;
mod products;
pub mod thread;
pub mod view;

use std::fs;
use std::path::{Path, PathBuf};

use sandbox_core::audit::{EventKind, Subject};
use sandbox_core::authz::Action;
use sandbox_core::job::{OutputKind, StagedOutput};
use sandbox_core::{OutputStatus, ReviewTier, Role, new_id, plain_file_name};
use sandbox_store::authz::{self, On};
use sandbox_store::{Conn, audit, jobs as stored_jobs, keys, outputs, scenarios};
use serde::Serialize;
use serde_json::{Value, json};

pub use manifest::{Manifest, ManifestAudit, ManifestDataset, ManifestFile};
pub use products::{
    CatalogEntry, Entitlement, WITHDRAWAL, WITHDRAWAL_FORMAT, WITHDRAWAL_SIGNATURE, Withdrawn,
    catalog, catalog_entry, download_product_file, entitlement, grant, holders, product, products,
    verify_withdrawal, withdraw,
};
pub use sandbox_core::Decision;
pub use sandbox_policies::Grantee;
pub use sandbox_store::outputs::Approval;
pub use sandbox_store::products::{Grant, Holder, Withdrawal};

use crate::disclosure;
use crate::jobs::{self, OutputRecord};
use crate::{Domain, Error, Result};

/// Manifest file name inside a product folder.
pub const MANIFEST: &str = "manifest.json";
/// Signature file name inside a product folder.
pub const SIGNATURE: &str = "manifest.sig";

fn tier_of(role: Role) -> Result<ReviewTier> {
    match role {
        Role::Operator => Ok(ReviewTier::Operator),
        Role::Supervisor => Ok(ReviewTier::Supervisor),
        other => Err(Error::Forbidden(format!(
            "a {other} does not review outputs; operators and supervisors do"
        ))),
    }
}

/// The output, its job's scenario and submitter, with `actor` authorized to decide on it
/// now. A refusal for the state of the work (a stop, a suspension) is recorded.
fn authorized(
    conn: &mut Conn,
    actor: &str,
    output_id: &str,
) -> Result<(
    sandbox_core::Principal,
    OutputRecord,
    stored_jobs::JobRecord,
)> {
    let who = authz::authorize(conn, actor, Action::OutputDecide, On::Domain)?;
    tier_of(who.role)?;
    let output = outputs::get(conn, output_id)?;
    let job = stored_jobs::get(conn, &output.job_id)?;
    let scenario = scenarios::get(conn, job.scenario_id)?;
    let on = On::Work {
        scenario: &scenario,
        submitter: &job.submitter,
    };
    if let Err(e) = authz::authorize(conn, actor, Action::OutputDecide, on) {
        let e = Error::from(e);
        let tx = conn.write()?;
        audit::append(
            &tx,
            actor,
            EventKind::OutputRefused,
            &Subject::Output(output_id.to_string()),
            json!({"job_id": job.id, "scenario_id": scenario.id, "reason": e.detail()}),
        )?;
        tx.commit()?;
        return Err(e);
    }
    Ok((who, output, job))
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
    let (who, _, job) = authorized(&mut conn, actor, output_id)?;
    let tier = tier_of(who.role)?;
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    let tx = conn.write()?;
    record_decision(&tx, &job, actor, tier, output_id, decision, reason)?;
    tx.commit()?;
    drop(conn);
    released_if_approved(domain, actor, tier, decision, output_id)
}

/// Records `decision` on an output in the caller's transaction, after the one check
/// every decision goes through ([`check_decision`]): the review row, the status, the
/// audit event.
pub(crate) fn record_decision(
    tx: &Conn,
    job: &stored_jobs::JobRecord,
    actor: &str,
    tier: ReviewTier,
    output_id: &str,
    decision: Decision,
    reason: Option<&str>,
) -> Result<()> {
    let output = outputs::get(tx, output_id)?;
    check_decision(tx, &output, job, actor, tier, decision, reason)?;
    let flagged = output_flagged(&output);
    outputs::insert_review(tx, output_id, actor, tier, decision, reason)?;
    let status = match decision {
        Decision::Reject => OutputStatus::Rejected,
        Decision::RequestChanges => OutputStatus::ChangesRequested,
        Decision::Approve => OutputStatus::OperatorApproved,
    };
    outputs::set_status(tx, output_id, status)?;
    audit::append(
        tx,
        actor,
        decision_kind(tier, decision),
        &Subject::Output(output_id.to_string()),
        json!({"from": output.status, "to": status, "reason": reason, "override": flagged && decision == Decision::Approve}),
    )?;
    Ok(())
}

/// After a decision is committed: a supervisor's approval releases the output (a release
/// that fails leaves it approved by the operator, for the supervisor to approve again).
pub(crate) fn released_if_approved(
    domain: &Domain,
    actor: &str,
    tier: ReviewTier,
    decision: Decision,
    output_id: &str,
) -> Result<OutputRecord> {
    if decision == Decision::Approve && tier == ReviewTier::Supervisor {
        release(domain, actor, output_id)?;
    }
    Ok(outputs::get(&*domain.conn()?, output_id)?)
}

/// Whether `actor`, at `tier`, may record `decision` on `output` of `job` now (the one
/// check [`decide`] and a whole request's decision go through): not on their own job's,
/// at the output's turn, two different approvers, and the written reasons each decision
/// needs.
fn check_decision(
    conn: &Conn,
    output: &OutputRecord,
    job: &stored_jobs::JobRecord,
    actor: &str,
    tier: ReviewTier,
    decision: Decision,
    reason: Option<&str>,
) -> Result<()> {
    let output_id = output.id.as_str();
    if job.submitter == actor {
        return Err(Error::Forbidden(
            "nobody reviews their own job's output".into(),
        ));
    }
    let expected = match tier {
        ReviewTier::Operator => {
            matches!(output.status, OutputStatus::Checked | OutputStatus::Flagged)
        }
        ReviewTier::Supervisor => output.status == OutputStatus::OperatorApproved,
    };
    if !expected {
        return Err(Error::Review(format!(
            "output `{output_id}` is {}; a {tier} cannot decide on it now",
            output.status
        )));
    }
    let flagged = output_flagged(output);
    let needs_note = output_needs_note(output);
    if tier == ReviewTier::Supervisor {
        let operator = outputs::approvals(conn, output_id)?
            .into_iter()
            .rev()
            .find(|a| a.tier == ReviewTier::Operator);
        if operator.is_some_and(|a| a.reviewer == actor) {
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
    if decision == Decision::Approve
        && tier == ReviewTier::Operator
        && needs_note
        && reason.is_none()
    {
        return Err(Error::Review(format!(
            "output `{output_id}` has a check result marked for review; approving it needs a written note on why it is fine"
        )));
    }
    if decision == Decision::Reject && reason.is_none() {
        return Err(Error::Invalid("a rejection needs a reason".into()));
    }
    if decision == Decision::RequestChanges && reason.is_none() {
        return Err(Error::Invalid(
            "a request for changes needs a comment saying what to change".into(),
        ));
    }
    Ok(())
}

fn decision_kind(tier: ReviewTier, decision: Decision) -> EventKind {
    match (tier, decision) {
        (ReviewTier::Operator, Decision::Approve) => EventKind::OutputOperatorApprove,
        (ReviewTier::Operator, Decision::Reject) => EventKind::OutputOperatorReject,
        (ReviewTier::Operator, Decision::RequestChanges) => EventKind::OutputOperatorRequestChanges,
        (ReviewTier::Supervisor, Decision::Approve) => EventKind::OutputSupervisorApprove,
        (ReviewTier::Supervisor, Decision::Reject) => EventKind::OutputSupervisorReject,
        (ReviewTier::Supervisor, Decision::RequestChanges) => {
            EventKind::OutputSupervisorRequestChanges
        }
    }
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
    o.status == OutputStatus::Flagged || outcomes(o).iter().any(|x| x != "pass" && x != "review")
}

/// Whether a check asks for review: the operator's approval needs a written note.
fn output_needs_note(o: &OutputRecord) -> bool {
    outcomes(o).iter().any(|x| x == "review")
}

/// The approvals a release stands on: the latest of each tier (a re-check at release may
/// have sent the output back to review), by two people, neither the submitter, with both
/// reasons for a flagged output.
fn approvals_for_release(
    conn: &Conn,
    output: &OutputRecord,
    submitter: &str,
) -> Result<Vec<Approval>> {
    let approvals = outputs::approvals(conn, &output.id)?;
    let latest = |tier| approvals.iter().rev().find(|a| a.tier == tier);
    let (Some(operator), Some(supervisor)) =
        (latest(ReviewTier::Operator), latest(ReviewTier::Supervisor))
    else {
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
    if output_flagged(output) && (operator.reason.is_none() || supervisor.reason.is_none()) {
        return Err(Error::Review(
            "a flagged output needs a written override reason at both tiers".into(),
        ));
    }
    Ok(approvals)
}

/// Releases an approved output as a product: files, `manifest.json`, `manifest.sig`.
/// Refused unless the store holds an operator approval and a later supervisor approval by
/// two different people, neither the submitter, and (for a flagged output) both with a
/// reason; and, like every decision, while a stop or a suspension covers the work.
pub fn release(domain: &Domain, actor: &str, output_id: &str) -> Result<Product> {
    let mut conn = domain.conn()?;
    let (_, output, job) = authorized(&mut conn, actor, output_id)?;
    if output.status != OutputStatus::OperatorApproved {
        return Err(Error::Review(format!(
            "output `{output_id}` is {}; only an operator-approved output can be released",
            output.status
        )));
    }
    let approvals = approvals_for_release(&conn, &output, &job.submitter)?;
    recheck(domain, &mut conn, job.scenario_id, &output)?;
    let product_id = new_id("prod");
    let released_at = sandbox_store::now();
    // A signed checkpoint of the log so far, after checking the events since the last one.
    let checkpoint = audit::checkpoint(&conn)?;
    let manifest = manifest::build(
        &conn,
        &manifest::Release {
            product_id: &product_id,
            released_at: &released_at,
            released_by: actor,
            output: &output,
            job: &job,
            approvals,
            checkpoint: &checkpoint,
            domain_key: &domain.keys().public_key()?,
        },
    )?;
    let manifest_bytes = serde_json::to_vec_pretty(&manifest)?;
    let signature = domain.keys().sign(&manifest_bytes)?;
    let suite = domain.keys().suite();
    let manifest_hash = suite.hash_hex(&manifest_bytes);
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
        if suite.hash_hex(&fs::read(tmp.join(&output.file_name))?) != output.sha256 {
            return Err(Error::Verify(format!(
                "staged file of output `{output_id}` changed since it was checked"
            )));
        }
        fs::write(tmp.join(MANIFEST), &manifest_bytes)?;
        fs::write(tmp.join(SIGNATURE), &signature)?;
        let tx = conn.write()?;
        let status = outputs::get(&tx, output_id)?.status;
        if status != OutputStatus::OperatorApproved {
            return Err(Error::Conflict(format!("output `{output_id}` is {status}")));
        }
        outputs::set_status(&tx, output_id, OutputStatus::Released)?;
        outputs::insert_product(
            &tx,
            &product_id,
            output_id,
            &manifest_hash,
            actor,
            &released_at,
        )?;
        // Its scope, as the manifest writes it (TJ-Sec Art. 9, 11).
        for grantee in &manifest.scope {
            sandbox_store::products::grant(&tx, &product_id, grantee, true, actor, &released_at)?;
        }
        audit::append(
            &tx,
            actor,
            EventKind::ProductReleased,
            &Subject::Product(product_id.clone()),
            json!({"output_id": output_id,
                   format!("manifest_{}", suite.hash_name()): manifest_hash,
                   "signature": signature}),
        )?;
        // The release event is in a checkpoint that commits with it.
        audit::checkpoint(&tx)?;
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
        released_by: actor.to_string(),
        released_at,
        path: final_dir,
    })
}

/// Runs the checks again at release: products released since the output was staged may
/// now form a differencing pair with it. An output that passed before and fails now is
/// sent back to review as flagged (recorded), so its release needs the written override.
fn recheck(
    domain: &Domain,
    conn: &mut Conn,
    scenario_id: i64,
    output: &OutputRecord,
) -> Result<()> {
    if output_flagged(output) {
        // Already released only with an override at both tiers.
        return Ok(());
    }
    let kind = match output.kind.as_str() {
        "table" => OutputKind::Table,
        "text" => OutputKind::Text,
        _ if output.file_name.ends_with(".png") => OutputKind::Png,
        _ => OutputKind::Chart,
    };
    let staged = StagedOutput {
        name: output.name.clone(),
        kind,
        bytes: jobs::staged_file(domain, output)?,
    };
    if domain.keys().suite().hash_hex(&staged.bytes) != output.sha256 {
        return Err(Error::Verify(format!(
            "staged file of output `{}` changed since it was checked",
            output.id
        )));
    }
    let ctx = jobs::check_context(domain, conn, scenario_id, &output.job_id)?;
    let report = disclosure::run(&ctx, &staged)?;
    if !report.failed() {
        return Ok(());
    }
    let failed: Vec<String> = report
        .results
        .iter()
        .filter(|r| r.outcome == disclosure::Outcome::Fail)
        .map(|r| format!("{}: {}", r.check, r.reason))
        .collect();
    let checks_json = serde_json::to_value(&report)?;
    let tx = conn.write()?;
    outputs::flag(&tx, &output.id, &checks_json)?;
    audit::append(
        &tx,
        "system",
        EventKind::OutputRechecked,
        &Subject::Output(output.id.clone()),
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
    /// Who released it.
    pub released_by: String,
    /// When.
    pub released_at: String,
    /// Its folder.
    pub path: PathBuf,
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
        if !plain_file_name(name) || !self.file_names()?.iter().any(|n| n == name) {
            return Err(Error::NotFound(format!(
                "file `{name}` of product {}",
                self.id
            )));
        }
        Ok(fs::read(self.path.join(name))?)
    }
}

/// The suite a signed document (a manifest, a withdrawal notice, a report) names:
/// `standard` where it names none (written before the choice).
pub(crate) fn named_suite(manifest: &Value) -> Result<sandbox_core::Suite> {
    match manifest.get("suite") {
        None => Ok(sandbox_core::Suite::Standard),
        Some(v) => v
            .as_str()
            .ok_or_else(|| Error::Verify("the manifest's `suite` is not text".into()))?
            .parse()
            .map_err(|e: Error| Error::Verify(format!("the manifest's suite: {e}"))),
    }
}

/// Verifies a product folder: the manifest's signature against the public key it names
/// (and, when given, the domain's key), and every file's hash.
pub fn verify_product(dir: &Path, expected_key: Option<&keys::PublicKey>) -> Result<Value> {
    let manifest_bytes = fs::read(dir.join(MANIFEST))
        .map_err(|e| Error::Verify(format!("{}: {e}", dir.join(MANIFEST).display())))?;
    let signature = fs::read_to_string(dir.join(SIGNATURE))
        .map_err(|e| Error::Verify(format!("{}: {e}", dir.join(SIGNATURE).display())))?;
    let manifest: Value = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| Error::Verify(format!("manifest is not JSON: {e}")))?;
    let key_hex = manifest["domain_public_key"]
        .as_str()
        .ok_or_else(|| Error::Verify("manifest names no public key".into()))?;
    let key = keys::PublicKey::parse(key_hex)
        .map_err(|e| Error::Verify(format!("manifest public key: {e}")))?;
    let suite = named_suite(&manifest)?;
    if key.suite() != suite {
        return Err(Error::Verify(format!(
            "the manifest names the {suite} suite but its key is an {} key (of the {} suite)",
            key.suite().signature_name(),
            key.suite()
        )));
    }
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
        if Some(suite.hash_hex(&bytes).as_str()) != f[suite.hash_name()].as_str() {
            return Err(Error::Verify(format!(
                "{name}: content does not match the manifest"
            )));
        }
    }
    Ok(manifest)
}
