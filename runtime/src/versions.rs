//! Objections against a dataset version, its suspension and replacement, and the recall of
//! the products whose numbers came from it (QQHR Art. 20, 23; JZ Art. 16, 21; SYS Art. 28,
//! 40). A provider objects to or suspends a version it registered, an operator any; while
//! a suspension is in force every query of a scenario whose current version it is, is
//! refused (the mediator's `prepare`, which every query and check goes through); a new
//! version registered over it replaces it. The products derived from a version are those
//! whose job's answered queries read it (`query_datasets`); an operator or a supervisor
//! recalls them in one step, each withdrawn with the same reason.

use sandbox_core::Role;
use sandbox_core::audit::{EventKind, Subject};
use sandbox_core::authz::Action;
use sandbox_store::authz::{self, On};
use sandbox_store::versions::{self, Objection, Suspension};
use sandbox_store::{audit, catalog};
use serde::Serialize;
use serde_json::json;

use crate::review;
use crate::{Domain, Error, Result};

/// What stands against a dataset version.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Standing {
    /// Dataset.
    pub dataset: String,
    /// Version.
    pub version: i64,
    /// Whether it is the current version.
    pub current: bool,
    /// The provider who registered it.
    pub registered_by: String,
    /// The suspension in force, if any.
    pub suspended: Option<Suspension>,
    /// Every objection raised against it.
    pub objections: Vec<Objection>,
    /// Every suspension, lifted or not.
    pub suspensions: Vec<Suspension>,
    /// The products whose numbers came from it.
    pub products: Vec<String>,
}

fn standing(conn: &sandbox_store::Conn, name: &str, version: i64) -> Result<Standing> {
    let registered_by = catalog::get_version(conn, name, version)?.registered_by;
    Ok(Standing {
        dataset: name.to_string(),
        version,
        registered_by,
        current: catalog::current_version(conn, name)? == Some(version),
        suspended: versions::in_force(conn, name, version)?,
        objections: versions::objections(conn, name, version)?,
        suspensions: versions::suspensions(conn, name, version)?,
        products: versions::derived_products(conn, name, version)?,
    })
}

/// Authorizes `actor` to act on a version: its provider, or an operator.
fn authorized(conn: &sandbox_store::Conn, actor: &str, name: &str, version: i64) -> Result<()> {
    let who = authz::authorize(conn, actor, Action::DatasetSuspend, On::Domain)?;
    catalog::get_version(conn, name, version)?;
    if who.role == Role::Provider && !catalog::registered_by(conn, name, actor)? {
        return Err(Error::Forbidden(format!(
            "`{name}` was registered by another provider"
        )));
    }
    Ok(())
}

fn reason_of<'a>(reason: &'a str, what: &str) -> Result<&'a str> {
    let r = reason.trim();
    if r.is_empty() {
        return Err(Error::Invalid(format!("{what} needs a reason")));
    }
    Ok(r)
}

/// What stands against a version (anyone who reads the catalog).
pub fn show(domain: &Domain, actor: &str, name: &str, version: i64) -> Result<Standing> {
    let conn = domain.conn()?;
    authz::authorize(&conn, actor, Action::CatalogRead, On::Domain)?;
    standing(&conn, name, version)
}

/// Raises an objection against a version (recorded; a suspension is a separate step).
pub fn object(
    domain: &Domain,
    actor: &str,
    name: &str,
    version: i64,
    reason: &str,
) -> Result<Standing> {
    let reason = reason_of(reason, "an objection")?;
    let mut conn = domain.conn()?;
    let tx = conn.write()?;
    authorized(&tx, actor, name, version)?;
    versions::object(&tx, name, version, actor, reason)?;
    audit::append(
        &tx,
        actor,
        EventKind::DatasetObjected,
        &Subject::Dataset {
            name: name.to_string(),
            version,
        },
        json!({"reason": reason}),
    )?;
    let s = standing(&tx, name, version)?;
    tx.commit()?;
    Ok(s)
}

/// Suspends a version: every query reading it is refused until it is reinstated or a new
/// version replaces it.
pub fn suspend(
    domain: &Domain,
    actor: &str,
    name: &str,
    version: i64,
    reason: &str,
) -> Result<Standing> {
    let reason = reason_of(reason, "a suspension")?;
    let mut conn = domain.conn()?;
    let tx = conn.write()?;
    authorized(&tx, actor, name, version)?;
    if let Some(s) = versions::in_force(&tx, name, version)? {
        return Err(Error::Conflict(format!(
            "dataset `{name}` version {version} is suspended since {} by `{}`",
            s.suspended_at, s.suspended_by
        )));
    }
    versions::suspend(&tx, name, version, actor, reason)?;
    audit::append(
        &tx,
        actor,
        EventKind::DatasetSuspended,
        &Subject::Dataset {
            name: name.to_string(),
            version,
        },
        json!({"reason": reason, "products": versions::derived_products(&tx, name, version)?}),
    )?;
    let s = standing(&tx, name, version)?;
    tx.commit()?;
    Ok(s)
}

/// Lifts a version's suspension, with a reason.
pub fn reinstate(
    domain: &Domain,
    actor: &str,
    name: &str,
    version: i64,
    reason: &str,
) -> Result<Standing> {
    let reason = reason_of(reason, "reinstating a dataset version")?;
    let mut conn = domain.conn()?;
    let tx = conn.write()?;
    authorized(&tx, actor, name, version)?;
    if !versions::lift(&tx, name, version, actor, reason)? {
        return Err(Error::Conflict(format!(
            "dataset `{name}` version {version} is not suspended"
        )));
    }
    audit::append(
        &tx,
        actor,
        EventKind::DatasetReinstated,
        &Subject::Dataset {
            name: name.to_string(),
            version,
        },
        json!({"reason": reason}),
    )?;
    let s = standing(&tx, name, version)?;
    tx.commit()?;
    Ok(s)
}

/// Recalls, in one step, every product whose numbers came from a version: each one not
/// yet withdrawn is withdrawn with the reason (operators and supervisors). Returns the
/// withdrawals made.
pub fn recall(
    domain: &Domain,
    actor: &str,
    name: &str,
    version: i64,
    reason: &str,
) -> Result<Vec<review::Withdrawn>> {
    let reason = reason_of(reason, "a recall")?;
    let ids = {
        let conn = domain.conn()?;
        authz::authorize(&conn, actor, Action::ProductWithdraw, On::Domain)?;
        catalog::get_version(&conn, name, version)?;
        versions::derived_products(&conn, name, version)?
    };
    let because = format!("recall of dataset `{name}` version {version}: {reason}");
    let mut out = Vec::new();
    for id in ids {
        if sandbox_store::products::withdrawal(&*domain.conn()?, &id)?.is_some() {
            continue;
        }
        out.push(review::withdraw(domain, actor, &id, &because)?);
    }
    let mut conn = domain.conn()?;
    let tx = conn.write()?;
    audit::append(
        &tx,
        actor,
        EventKind::DatasetRecalled,
        &Subject::Dataset {
            name: name.to_string(),
            version,
        },
        json!({"reason": reason, "withdrawn": out.iter().map(|w| &w.product.id).collect::<Vec<_>>()}),
    )?;
    tx.commit()?;
    Ok(out)
}

pub use sandbox_store::versions::Destruction;

/// An operator destroys a dataset at the end of its authorization, with a reason: every
/// version's files are removed from the domain store; the record (each version's files
/// with their sizes and SHA-256, who, when, why) is kept in the catalog for good, and the
/// dataset is retired. Refused while a scenario over it is pending, or approved or
/// suspended within its validity window: their authorization has not ended.
pub fn destroy(domain: &Domain, actor: &str, name: &str, reason: &str) -> Result<Destruction> {
    let reason = reason_of(reason, "destroying a dataset")?;
    let mut conn = domain.conn()?;
    authz::authorize(&conn, actor, Action::DatasetDestroy, On::Domain)?;
    let current = catalog::get(&conn, name)?;
    if let Some(d) = versions::destruction(&conn, name)? {
        return Err(Error::Conflict(format!(
            "dataset `{name}` was destroyed on {} by `{}`",
            d.destroyed_at, d.destroyed_by
        )));
    }
    let today = chrono::Utc::now().date_naive();
    for s in sandbox_store::scenarios::list(&conn)? {
        let uses = s.spec.datasets.iter().any(|d| d.name == name);
        let live = match s.status {
            sandbox_core::ScenarioStatus::Pending => true,
            sandbox_core::ScenarioStatus::Approved | sandbox_core::ScenarioStatus::Suspended => {
                s.spec.valid_until >= today
            }
            _ => false,
        };
        if uses && live {
            return Err(Error::Conflict(format!(
                "scenario `{}` ({}, valid until {}) uses dataset `{name}`: its authorization has not ended",
                s.spec.name, s.status, s.spec.valid_until
            )));
        }
    }
    // What is destroyed: every file of every version, with its size and hash.
    let folder = domain.layout().domain().join(name);
    let mut record = Vec::new();
    for version in 1..=current.version {
        let dir = domain.layout().dataset_version(name, version);
        let mut files = Vec::new();
        if dir.is_dir() {
            for entry in walkdir(&dir)? {
                let bytes = std::fs::read(&entry)?;
                files.push(json!({
                    "path": entry.strip_prefix(&folder).unwrap_or(&entry).display().to_string(),
                    "bytes": bytes.len(),
                    domain.keys().suite().hash_name(): domain.keys().suite().hash_hex(&bytes),
                }));
            }
        }
        let v = catalog::get_version(&conn, name, version)?;
        record.push(
            json!({"version": version, "content_sha256": v.content_sha256,
                           "rows": v.row_count, "files": files}),
        );
    }
    let destruction = Destruction {
        dataset: name.to_string(),
        destroyed_by: actor.to_string(),
        reason: reason.to_string(),
        destroyed_at: sandbox_store::now(),
        record: json!({"versions": record}),
    };
    let tx = conn.write()?;
    versions::record_destruction(&tx, &destruction)?;
    catalog::retire(&tx, name, actor, reason)?;
    // Its files' keys go with them: a copy kept anywhere (a backup, a disk image) can no
    // longer be decrypted.
    for version in 1..=current.version {
        sandbox_store::datakeys::forget(&tx, name, version)?;
        domain.mediator().dataset_keys().forget(name, version);
    }
    audit::append(
        &tx,
        actor,
        EventKind::DatasetDestroyed,
        &Subject::Dataset {
            name: name.to_string(),
            version: current.version,
        },
        json!({"reason": reason, "record": destruction.record}),
    )?;
    // The files are moved aside before the commit (and back if it fails), and removed
    // after it: the record and the files' absence go together.
    let aside = domain
        .layout()
        .domain()
        .join(format!(".destroyed-{name}-{}", sandbox_core::new_id("d")));
    if folder.exists() {
        std::fs::rename(&folder, &aside)?;
    }
    if let Err(e) = tx.commit() {
        if aside.exists() {
            let _ = std::fs::rename(&aside, &folder);
        }
        return Err(e.into());
    }
    if aside.exists() {
        std::fs::remove_dir_all(&aside).map_err(|e| {
            Error::Internal(format!(
                "dataset `{name}` is recorded destroyed, but {} could not be removed ({e}); the next server start removes it",
                aside.display()
            ))
        })?;
    }
    Ok(destruction)
}

/// Removes what a destruction moved aside and could not remove (a crash between its
/// commit and the removal): every `.destroyed-*` folder of the domain store whose dataset
/// is recorded destroyed. Run at server start with the jobs' recovery. Returns the
/// folders removed.
pub fn sweep_destroyed(domain: &Domain) -> Result<Vec<std::path::PathBuf>> {
    let conn = domain.conn()?;
    let store = domain.layout().domain();
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(&store) else {
        return Ok(removed);
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = file_name.strip_prefix(".destroyed-") else {
            continue;
        };
        // `.destroyed-NAME-d-ID`: dataset names have no hyphen.
        let Some((name, _)) = rest.rsplit_once("-d-") else {
            continue;
        };
        if versions::destruction(&conn, name)?.is_some() {
            std::fs::remove_dir_all(entry.path())?;
            removed.push(entry.path());
        }
    }
    Ok(removed)
}

/// A dataset's destruction record, if it was destroyed (anyone who reads the catalog).
pub fn destruction(domain: &Domain, actor: &str, name: &str) -> Result<Option<Destruction>> {
    let conn = domain.conn()?;
    authz::authorize(&conn, actor, Action::CatalogRead, On::Domain)?;
    catalog::get(&conn, name)?;
    Ok(versions::destruction(&conn, name)?)
}

/// Every file under `dir`, sorted.
fn walkdir(dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

pub use sandbox_store::versions::SharingDecision;

/// The dataset's provider or a supervisor decides that a dataset its policy marks
/// `not_shared` may go into the scenario named `scenario` (SYS Art. 24), with a reason:
/// without it the scenario is refused at application and at approval.
pub fn decide_sharing(
    domain: &Domain,
    actor: &str,
    name: &str,
    scenario: &str,
    reason: &str,
) -> Result<SharingDecision> {
    let reason = reason_of(reason, "a sharing decision")?;
    let mut conn = domain.conn()?;
    let tx = conn.write()?;
    let who = authz::authorize(&tx, actor, Action::DatasetShare, On::Domain)?;
    let v = catalog::get(&tx, name)?;
    if who.role == Role::Provider && !catalog::registered_by(&tx, name, actor)? {
        return Err(Error::Forbidden(format!(
            "`{name}` was registered by another provider"
        )));
    }
    if v.policy.dataset.share_type != sandbox_policies::ShareType::NotShared {
        return Err(Error::Conflict(format!(
            "dataset `{name}` is shared ({:?}); no decision is needed",
            v.policy.dataset.share_type
        )));
    }
    let d = SharingDecision {
        dataset: name.to_string(),
        scenario: scenario.to_string(),
        decided_by: actor.to_string(),
        reason: reason.to_string(),
        decided_at: sandbox_store::now(),
    };
    if !versions::record_sharing(&tx, &d)? {
        return Err(Error::Conflict(format!(
            "the sharing of `{name}` in scenario `{scenario}` is decided already"
        )));
    }
    audit::append(
        &tx,
        actor,
        EventKind::DatasetSharingDecided,
        &Subject::Dataset {
            name: name.to_string(),
            version: v.version,
        },
        json!({"scenario": scenario, "reason": reason}),
    )?;
    tx.commit()?;
    Ok(d)
}
