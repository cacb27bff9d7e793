//! The audit log for the people who read it: operators and supervisors (QQHR Art. 22,
//! Tianjin Art. 8). The log itself (append, the Merkle tree, checkpoints, proofs,
//! verification) is the store's ([`sandbox_store::audit`]); these are the domain
//! functions that read, prove, export and set its retention for a principal, each
//! authorized through the one path.

use std::io::Write;

pub use sandbox_core::audit::{EventKind, Subject};
use sandbox_core::authz::Action;
use sandbox_store::audit;
use sandbox_store::authz::{self, On};

pub use sandbox_store::audit::{
    CONSISTENCY_FORMAT, Checkpoint, ConsistencyProof, EXPORT_FORMAT, Event, ExportSummary, GENESIS,
    Hash, INCLUSION_FORMAT, InclusionProof, MIN_RETENTION_YEARS, ProofCheck, Verification, merkle,
    verify_manifest_checkpoint, verify_proof,
};
pub use sandbox_store::keys::PublicKey;

use crate::{Domain, Result};

fn reader(domain: &Domain, actor: &str) -> Result<sandbox_store::Pooled> {
    let conn = domain.conn()?;
    authz::authorize(&conn, actor, Action::AuditRead, On::Domain)?;
    Ok(conn)
}

/// Events `from..`, at most `limit`.
pub fn log(domain: &Domain, actor: &str, from: i64, limit: i64) -> Result<Vec<Event>> {
    Ok(audit::read(&*reader(domain, actor)?, from, limit)?)
}

/// Records a call an edge (the API, the console) refused, or a count of refusals it held
/// back, in a transaction of its own (after the refused request's own work has rolled
/// back). Only the edge refusal kinds are recorded this way.
pub fn record_refusal(
    domain: &Domain,
    actor: &str,
    kind: EventKind,
    subject: &Subject,
    details: serde_json::Value,
) -> Result<()> {
    if !matches!(
        kind,
        EventKind::ApiRefused | EventKind::ApiRefusalsLimited | EventKind::ConsoleRefused
    ) {
        return Err(crate::Error::Internal(format!(
            "`{}` is not a refusal an edge records",
            kind.as_str()
        )));
    }
    let mut conn = domain.conn()?;
    let tx = conn.write()?;
    audit::append(&tx, actor, kind, subject, details)?;
    tx.commit()?;
    Ok(())
}

/// Events `from..`, at most `limit`, and the size of the log.
pub fn page(domain: &Domain, actor: &str, from: i64, limit: i64) -> Result<(Vec<Event>, i64)> {
    let conn = reader(domain, actor)?;
    Ok((audit::read(&conn, from, limit)?, audit::log_size(&conn)?))
}

/// Recomputes the whole log against the domain's key (from its key folder).
pub fn verify(domain: &Domain, actor: &str) -> Result<Verification> {
    let conn = reader(domain, actor)?;
    let key = sandbox_store::keys::public_key(domain.layout())?;
    Ok(audit::verify_with_key(&conn, Some(&key))?)
}

/// Recomputes the whole log against the domain's key, for whoever holds the data
/// directory (its custodian, on the machine itself: `sandbox audit verify` without
/// `--as`). It reads nothing the files do not already hold and changes nothing, so it
/// asks for no principal; every principal's way (the API, the console) is [`verify`].
pub fn verify_custodian(domain: &Domain) -> Result<Verification> {
    let key = sandbox_store::keys::public_key(domain.layout())?;
    Ok(audit::verify_with_key(&*domain.conn()?, Some(&key))?)
}

/// Signs a checkpoint of the log as it is now.
pub fn checkpoint(domain: &Domain, actor: &str) -> Result<Checkpoint> {
    Ok(audit::checkpoint(&*reader(domain, actor)?)?)
}

/// Signs a checkpoint if the log grew since the last one (the server does it every
/// minute and at shutdown). The system's own act: no principal asks for it.
pub fn checkpoint_if_grown(domain: &Domain) -> Result<Option<Checkpoint>> {
    Ok(audit::checkpoint_if_grown(&*domain.conn()?)?)
}

/// Inclusion proof of event `seq` against the checkpoint of `size` events (default: a
/// checkpoint of the log as it is now, signed if the log grew).
pub fn prove_inclusion(
    domain: &Domain,
    actor: &str,
    seq: i64,
    size: Option<i64>,
) -> Result<InclusionProof> {
    let conn = reader(domain, actor)?;
    if size.is_none() {
        audit::checkpoint_if_grown(&conn)?;
    }
    Ok(audit::prove_inclusion(&conn, seq, size)?)
}

/// Consistency proof between the checkpoints of `from` and `to` events (default: a
/// checkpoint of the log as it is now).
pub fn prove_consistency(
    domain: &Domain,
    actor: &str,
    from: i64,
    to: Option<i64>,
) -> Result<ConsistencyProof> {
    let conn = reader(domain, actor)?;
    if to.is_none() {
        audit::checkpoint_if_grown(&conn)?;
    }
    Ok(audit::prove_consistency(&conn, from, to)?)
}

/// Exports events `from..=to` as JSON Lines (recorded as `audit.exported`).
pub fn export(
    domain: &Domain,
    actor: &str,
    from: i64,
    to: Option<i64>,
    out: &mut dyn Write,
) -> Result<ExportSummary> {
    Ok(audit::export(
        &*reader(domain, actor)?,
        actor,
        from,
        to,
        out,
    )?)
}

/// The domain's audit retention in years.
pub fn retention_years(domain: &Domain) -> Result<i64> {
    Ok(audit::retention_years(&*domain.conn()?)?)
}

/// Sets the audit retention (supervisors and operators; at least
/// [`MIN_RETENTION_YEARS`]).
pub fn set_retention_years(domain: &Domain, actor: &str, years: i64) -> Result<i64> {
    Ok(audit::set_retention_years(
        &*reader(domain, actor)?,
        actor,
        years,
    )?)
}
