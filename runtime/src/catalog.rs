//! The catalog (SYS Art. 12): datasets providers registered into the domain store, with
//! their policies. Ingest itself is the mediator's ([`sandbox_mediator::ingest`]): the
//! only code that writes or reads a dataset's files.

use std::path::Path;

use sandbox_core::authz::Action;
use sandbox_store::authz::{self, On};
use sandbox_store::catalog;

pub use sandbox_mediator::ingest::{MAX_SOURCE_BYTES, RANK_COLUMN, ReadCounter, column_type};
pub use sandbox_store::catalog::{DATA_FILE, DatasetVersion};

use crate::{Domain, Error, Result};

/// A provider registers a dataset (a new one, or a new version of an existing one) from
/// `source` with the policy text. A bad file or a bad policy leaves the data directory as
/// it was.
pub fn add(
    domain: &Domain,
    actor: &str,
    source: &Path,
    policy_text: &str,
) -> Result<DatasetVersion> {
    add_counted(domain, actor, source, policy_text, None)
}

/// [`add`], counting the bytes of a CSV source read as it goes into `read` (for a
/// progress display).
pub fn add_counted(
    domain: &Domain,
    actor: &str,
    source: &Path,
    policy_text: &str,
    read: Option<ReadCounter>,
) -> Result<DatasetVersion> {
    authz::authorize(&*domain.conn()?, actor, Action::DatasetRegister, On::Domain)?;
    Ok(sandbox_mediator::ingest::add_counted(
        domain.mediator(),
        actor,
        source,
        policy_text,
        read,
    )?)
}

/// [`add`] from CSV text sent over the network, recorded under `file_name` (a plain
/// name ending in `.csv`). The text is read from memory: no copy of it is written to the
/// disk in the clear.
pub fn add_csv(
    domain: &Domain,
    actor: &str,
    file_name: &str,
    csv: &[u8],
    policy_text: &str,
) -> Result<DatasetVersion> {
    let plain = !file_name.is_empty()
        && file_name.len() <= 128
        && file_name.ends_with(".csv")
        && !file_name.starts_with('.')
        && file_name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'));
    if !plain {
        return Err(Error::Invalid(
            "file_name: up to 128 letters, digits, `-`, `_`, `.`, ending in `.csv`".into(),
        ));
    }
    authz::authorize(&*domain.conn()?, actor, Action::DatasetRegister, On::Domain)?;
    // Read from memory: the upload is never written to the disk in the clear.
    Ok(sandbox_mediator::ingest::add_source(
        domain.mediator(),
        actor,
        &sandbox_mediator::ingest::Source::memory(file_name, csv.to_vec()),
        policy_text,
        None,
    )?)
}

/// The current version of a dataset.
pub fn get(domain: &Domain, actor: &str, name: &str) -> Result<DatasetVersion> {
    let conn = domain.conn()?;
    authz::authorize(&conn, actor, Action::CatalogRead, On::Domain)?;
    let mut v = catalog::get(&conn, name)?;
    authorized_scenarios(&conn, std::slice::from_mut(&mut v))?;
    Ok(v)
}

/// The current version of every dataset.
pub fn list(domain: &Domain, actor: &str) -> Result<Vec<DatasetVersion>> {
    let conn = domain.conn()?;
    authz::authorize(&conn, actor, Action::CatalogRead, On::Domain)?;
    let mut all = catalog::list(&conn)?;
    authorized_scenarios(&conn, &mut all)?;
    Ok(all)
}

/// Fills each entry's authorized-operation status (SYS Art. 12): the approved scenarios
/// that use it.
fn authorized_scenarios(conn: &sandbox_store::Conn, entries: &mut [DatasetVersion]) -> Result<()> {
    let scenarios = sandbox_store::scenarios::list(conn)?;
    for e in entries {
        e.authorized_scenarios = scenarios
            .iter()
            .filter(|s| s.status == sandbox_core::ScenarioStatus::Approved)
            .filter(|s| s.spec.datasets.iter().any(|d| d.name == e.name))
            .map(|s| s.spec.name.clone())
            .collect();
    }
    Ok(())
}

/// Retires a dataset registered by mistake (its provider or an operator, with a reason):
/// it is kept and recorded, and refused for new scenarios; scenarios already approved go
/// on (suspend or revoke them for that).
pub fn retire(domain: &Domain, actor: &str, name: &str, reason: &str) -> Result<DatasetVersion> {
    use sandbox_core::Role;
    use sandbox_core::audit::{EventKind, Subject};
    let mut conn = domain.conn()?;
    let who = authz::authorize(&conn, actor, Action::DatasetRetire, On::Domain)?;
    let version = catalog::get(&conn, name)?;
    // A provider retires what it registered; an operator any dataset.
    if who.role == Role::Provider && !catalog::registered_by(&conn, name, actor)? {
        return Err(Error::Forbidden(format!(
            "`{name}` was registered by another provider"
        )));
    }
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(Error::Invalid("retiring a dataset needs a reason".into()));
    }
    let tx = conn.write()?;
    if !catalog::retire(&tx, name, actor, reason)? {
        return Err(Error::Conflict(format!(
            "dataset `{name}` is retired already"
        )));
    }
    sandbox_store::audit::append(
        &tx,
        actor,
        EventKind::DatasetRetired,
        &Subject::Dataset {
            name: name.to_string(),
            version: version.version,
        },
        serde_json::json!({"reason": reason}),
    )?;
    tx.commit()?;
    Ok(catalog::get(&*domain.conn()?, name)?)
}
