//! Products reach only those entitled (TJ-Sec Art. 9, 11; SYS Art. 33, 41, 50), and can be
//! withdrawn (QQHR Art. 20, 23; JZ Art. 16, 21; SYS Art. 28, 40).
//!
//! **Invariant:** [`entitlement`] is the one answer to "may this principal have this
//! product's files", and [`download_product_file`] the one path every file leaves by (API,
//! console, CLI): it refuses a withdrawn product and anyone not entitled, records each
//! refusal as a `product.download_refused` event and each download as a
//! `product.downloaded` event. Everyone who reads products sees the catalog (what each
//! product is, its scope, providers, dates, and a withdrawal); only those entitled see its
//! manifest and files: operators and supervisors (oversight), the job's developer, and the
//! data users and organisations it is granted to.

use std::fs;

use sandbox_core::audit::{EventKind, Subject};
use sandbox_core::authz::Action;
use sandbox_core::{Principal, Role};
use sandbox_policies::Grantee;
use sandbox_store::authz::{self, On};
use sandbox_store::products::{self, Grant, Holder, Withdrawal};
use sandbox_store::{Conn, audit, jobs as stored_jobs, keys, outputs};
use serde::Serialize;
use serde_json::{Value, json};

use super::{MANIFEST, Product};
use crate::{Domain, Error, Result};

/// The signed withdrawal notice written beside a withdrawn product's manifest.
pub const WITHDRAWAL: &str = "withdrawal.json";
/// Its signature.
pub const WITHDRAWAL_SIGNATURE: &str = "withdrawal.sig";
/// The format of a withdrawal notice.
pub const WITHDRAWAL_FORMAT: &str = "sandbox-product-withdrawal/1";

/// Why a principal may have a product's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Entitlement {
    /// An operator or a supervisor (review and oversight).
    Oversight,
    /// The developer whose job made it.
    Developer,
    /// Granted to the principal or to its organisation.
    Granted,
}

/// Whether `who` may have the files of product `product_id`, made by `submitter`'s job.
pub fn entitlement(
    conn: &Conn,
    who: &Principal,
    product_id: &str,
    submitter: &str,
) -> Result<Option<Entitlement>> {
    Ok(match who.role {
        Role::Operator | Role::Supervisor => Some(Entitlement::Oversight),
        _ if who.role == Role::Developer && who.name == submitter => Some(Entitlement::Developer),
        Role::Admin => None,
        _ => products::granted(conn, product_id, &who.name, who.organisation.as_deref())?
            .then_some(Entitlement::Granted),
    })
}

/// A product as the catalog shows it to everyone who reads products (SYS Art. 41, 50): what
/// it is, whom it is for, where its data came from, when; its files only to those
/// entitled.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CatalogEntry {
    /// Product id.
    pub id: String,
    /// The output it releases.
    pub output_id: String,
    /// The output's name.
    pub name: String,
    /// The scenario it was made under: its name.
    pub scenario: String,
    /// The scenario's purpose.
    pub purpose: String,
    /// The providers of the data it came from.
    pub providers: Vec<String>,
    /// The dataset versions it came from (`name@version`).
    pub datasets: Vec<String>,
    /// Who released it.
    pub released_by: String,
    /// When.
    pub released_at: String,
    /// Whom it is granted to: its scope at release, then later grants.
    pub scope: Vec<Grant>,
    /// Its withdrawal, if it was withdrawn.
    pub withdrawal: Option<Withdrawal>,
    /// Why the caller may have its files, if it may.
    pub entitlement: Option<Entitlement>,
    /// Its files, for a caller entitled to them (empty otherwise).
    pub files: Vec<String>,
}

impl CatalogEntry {
    /// Whether the caller may download its files now.
    pub fn downloadable(&self) -> bool {
        self.entitlement.is_some() && self.withdrawal.is_none()
    }
}

fn entry(
    domain: &Domain,
    conn: &Conn,
    who: &Principal,
    row: outputs::ProductRow,
) -> Result<CatalogEntry> {
    let output = outputs::get(conn, &row.output_id)?;
    let job = stored_jobs::get(conn, &output.job_id)?;
    let product = Product {
        path: domain.layout().products().join(&row.id),
        id: row.id.clone(),
        output_id: row.output_id.clone(),
        released_by: row.released_by.clone(),
        released_at: row.released_at.clone(),
    };
    let manifest = product.manifest()?;
    let entitlement = entitlement(conn, who, &row.id, &job.submitter)?;
    let strings = |key: &str, field: &dyn Fn(&Value) -> Option<String>| -> Vec<String> {
        let mut out: Vec<String> = manifest[key]
            .as_array()
            .map(|a| a.iter().filter_map(field).collect())
            .unwrap_or_default();
        out.dedup();
        out
    };
    Ok(CatalogEntry {
        name: output.name,
        scenario: manifest["scenario"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        purpose: manifest["scenario"]["purpose"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        providers: strings("datasets", &|d| d["provider"].as_str().map(str::to_string)),
        datasets: strings("datasets", &|d| {
            Some(format!(
                "{}@{}",
                d["name"].as_str()?,
                d["version"].as_i64()?
            ))
        }),
        scope: products::grants(conn, &row.id)?,
        withdrawal: products::withdrawal(conn, &row.id)?,
        files: if entitlement.is_some() {
            product.file_names()?
        } else {
            Vec::new()
        },
        entitlement,
        id: row.id,
        output_id: row.output_id,
        released_by: row.released_by,
        released_at: row.released_at,
    })
}

/// The product catalog (SYS Art. 50): every product, newest last, for anyone who reads
/// products (data users included); files listed only where the caller is entitled.
pub fn catalog(domain: &Domain, actor: &str) -> Result<Vec<CatalogEntry>> {
    let conn = domain.conn()?;
    let who = authz::authorize(&conn, actor, Action::ProductRead, On::Domain)?;
    outputs::products(&conn)?
        .into_iter()
        .map(|row| entry(domain, &conn, &who, row))
        .collect()
}

/// One product of the catalog.
pub fn catalog_entry(domain: &Domain, actor: &str, id: &str) -> Result<CatalogEntry> {
    let conn = domain.conn()?;
    let who = authz::authorize(&conn, actor, Action::ProductRead, On::Domain)?;
    let row = outputs::products(&conn)?
        .into_iter()
        .find(|p| p.id == id)
        .ok_or_else(|| Error::NotFound(format!("product `{id}`")))?;
    entry(domain, &conn, &who, row)
}

/// The products whose files `actor` may have (all of them for operators and supervisors),
/// withdrawn ones included (their manifests and notices stay readable).
pub fn products(domain: &Domain, actor: &str) -> Result<Vec<Product>> {
    Ok(catalog(domain, actor)?
        .into_iter()
        .filter(|e| e.entitlement.is_some())
        .map(|e| Product {
            path: domain.layout().products().join(&e.id),
            id: e.id,
            output_id: e.output_id,
            released_by: e.released_by,
            released_at: e.released_at,
        })
        .collect())
}

/// One product whose files `actor` may have: refused (forbidden) for one it may not.
pub fn product(domain: &Domain, actor: &str, id: &str) -> Result<Product> {
    let e = catalog_entry(domain, actor, id)?;
    if e.entitlement.is_none() {
        return Err(Error::Forbidden(format!(
            "product {id} is not granted to `{actor}`"
        )));
    }
    Ok(Product {
        path: domain.layout().products().join(&e.id),
        id: e.id,
        output_id: e.output_id,
        released_by: e.released_by,
        released_at: e.released_at,
    })
}

/// A product's file as `actor` downloads it, as stored or (a table) converted to `format`:
/// the one path every product download goes through (API, console, CLI). Refused when the
/// product was withdrawn (its withdrawal notice stays readable) or the caller is not
/// entitled; each refusal recorded as `product.download_refused`, each download as
/// `product.downloaded` with the file and the hash of what left. Returns the file's name in
/// that format and its bytes.
pub fn download_product_file(
    domain: &Domain,
    actor: &str,
    id: &str,
    name: &str,
    format: Option<crate::export::Format>,
) -> Result<(String, Vec<u8>)> {
    let e = catalog_entry(domain, actor, id)?;
    let notice = name == WITHDRAWAL || name == WITHDRAWAL_SIGNATURE;
    let refusal = match (&e.entitlement, &e.withdrawal) {
        (None, _) => Some(Error::Forbidden(format!(
            "product {id} is not granted to `{actor}`"
        ))),
        (Some(_), Some(w)) if !notice => Some(Error::Withdrawn(format!(
            "product {id} was withdrawn on {} by `{}`: {}",
            w.withdrawn_at, w.withdrawn_by, w.reason
        ))),
        _ => None,
    };
    if let Some(refused) = refusal {
        let mut conn = domain.conn()?;
        let tx = conn.write()?;
        audit::append(
            &tx,
            actor,
            EventKind::ProductDownloadRefused,
            &Subject::Product(id.to_string()),
            json!({"file": name, "error": refused.code(), "reason": refused.detail()}),
        )?;
        tx.commit()?;
        return Err(refused);
    }
    let p = Product {
        path: domain.layout().products().join(&e.id),
        id: e.id,
        output_id: e.output_id,
        released_by: e.released_by,
        released_at: e.released_at,
    };
    let bytes = if notice {
        p.withdrawal_file(name)?
    } else {
        p.file(name)?
    };
    let (name, bytes) = match format {
        Some(f) if !notice => crate::export::convert(name, bytes, f)?,
        _ => (name.to_string(), bytes),
    };
    let mut conn = domain.conn()?;
    let tx = conn.write()?;
    audit::append(
        &tx,
        actor,
        EventKind::ProductDownloaded,
        &Subject::Product(p.id.clone()),
        json!({"file": name, "bytes": bytes.len(),
               domain.keys().suite().hash_name(): domain.keys().suite().hash_hex(&bytes)}),
    )?;
    tx.commit()?;
    Ok((name, bytes))
}

/// What a withdrawal did: the notice, and the holders to notify.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Withdrawn {
    /// The product as the catalog now shows it.
    pub product: CatalogEntry,
    /// The signed notice (the JSON of [`WITHDRAWAL`]).
    pub notice: Value,
    /// Its signature by the domain key (Ed25519, or SM2 in the `gm` suite), hex.
    pub signature: String,
    /// Everyone who downloaded one of its files, to be notified (QQHR Art. 23).
    pub holders: Vec<Holder>,
}

/// An operator or a supervisor withdraws a released product, with a written reason: from
/// the commit on, [`download_product_file`] refuses its files; a notice signed by the
/// domain key (product, manifest hash, reason, who, when, the holders) is written beside
/// its manifest, where `product verify` reads it; the catalog shows it; the event lists
/// the holders for notification. A withdrawal is final.
pub fn withdraw(domain: &Domain, actor: &str, id: &str, reason: &str) -> Result<Withdrawn> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(Error::Invalid(format!(
            "withdrawing product {id} needs a reason"
        )));
    }
    let mut conn = domain.conn()?;
    authz::authorize(&conn, actor, Action::ProductWithdraw, On::Domain)?;
    let dir = domain.layout().products().join(id);
    let tx = conn.write()?;
    let row = outputs::products(&tx)?
        .into_iter()
        .find(|p| p.id == id)
        .ok_or_else(|| Error::NotFound(format!("product `{id}`")))?;
    if let Some(w) = products::withdrawal(&tx, id)? {
        return Err(Error::Conflict(format!(
            "product {id} was withdrawn on {} by `{}`",
            w.withdrawn_at, w.withdrawn_by
        )));
    }
    let holders = products::holders(&tx, id)?;
    let withdrawn_at = sandbox_store::now();
    let suite = domain.keys().suite();
    let manifest_hash = suite.hash_hex(&fs::read(dir.join(MANIFEST))?);
    let mut notice = json!({
        "format": WITHDRAWAL_FORMAT,
        "product_id": row.id,
        format!("manifest_{}", suite.hash_name()): manifest_hash,
        "reason": reason,
        "withdrawn_by": actor,
        "withdrawn_at": withdrawn_at,
        "holders": holders.iter().map(|h| &h.principal).collect::<Vec<_>>(),
        "domain_public_key": domain.keys().public_key()?.to_hex(),
    });
    if suite != sandbox_core::Suite::Standard {
        notice["suite"] = json!(suite);
    }
    let notice_bytes = serde_json::to_vec_pretty(&notice)?;
    let signature = domain.keys().sign(&notice_bytes)?;
    let withdrawal = Withdrawal {
        reason: reason.to_string(),
        withdrawn_by: actor.to_string(),
        withdrawn_at,
        notice_sha256: suite.hash_hex(&notice_bytes),
    };
    products::withdraw(&tx, id, &withdrawal)?;
    audit::append(
        &tx,
        actor,
        EventKind::ProductWithdrawn,
        &Subject::Product(id.to_string()),
        json!({"reason": reason, format!("notice_{}", suite.hash_name()): withdrawal.notice_sha256, "signature": signature,
               "holders": holders}),
    )?;
    // The notice is written before the commit and removed if the commit fails: a product
    // is withdrawn with its notice, or not at all.
    let tmp = dir.join(format!(".{WITHDRAWAL}.tmp"));
    let tmp_sig = dir.join(format!(".{WITHDRAWAL_SIGNATURE}.tmp"));
    let written = (|| -> Result<()> {
        fs::write(&tmp, &notice_bytes)?;
        fs::write(&tmp_sig, &signature)?;
        fs::rename(&tmp, dir.join(WITHDRAWAL))?;
        fs::rename(&tmp_sig, dir.join(WITHDRAWAL_SIGNATURE))?;
        Ok(())
    })();
    let committed = written.and_then(|()| Ok(tx.commit()?));
    if let Err(e) = committed {
        for f in [
            &tmp,
            &tmp_sig,
            &dir.join(WITHDRAWAL),
            &dir.join(WITHDRAWAL_SIGNATURE),
        ] {
            let _ = fs::remove_file(f);
        }
        return Err(e);
    }
    Ok(Withdrawn {
        product: catalog_entry(domain, actor, id)?,
        notice,
        signature,
        holders,
    })
}

/// An operator grants a released product to a data user or an organisation beyond its
/// scope at release (recorded; its manifest keeps the scope at release). Returns the
/// product's grants.
pub fn grant(domain: &Domain, actor: &str, id: &str, grantee: &Grantee) -> Result<Vec<Grant>> {
    let mut conn = domain.conn()?;
    authz::authorize(&conn, actor, Action::ProductGrant, On::Domain)?;
    let tx = conn.write()?;
    if !outputs::products(&tx)?.iter().any(|p| p.id == id) {
        return Err(Error::NotFound(format!("product `{id}`")));
    }
    if products::withdrawal(&tx, id)?.is_some() {
        return Err(Error::Withdrawn(format!(
            "product {id} was withdrawn; it is granted to no one more"
        )));
    }
    match grantee {
        Grantee::Principal(name) => match sandbox_store::principals::lookup(&tx, name)? {
            Some(p) if p.role == Role::DataUser => {}
            Some(p) => {
                return Err(Error::Invalid(format!(
                    "`{name}` is a {}; products are granted to data users and organisations",
                    p.role
                )));
            }
            None => return Err(Error::NotFound(format!("principal `{name}`"))),
        },
        Grantee::Organisation(code) => {
            if sandbox_store::organisations::get(&tx, code)?.is_none() {
                return Err(Error::NotFound(format!("organisation {code}")));
            }
        }
    }
    if !products::grant(&tx, id, grantee, false, actor, &sandbox_store::now())? {
        return Err(Error::Conflict(format!(
            "product {id} is granted to {grantee} already"
        )));
    }
    audit::append(
        &tx,
        actor,
        EventKind::ProductGranted,
        &Subject::Product(id.to_string()),
        json!({"grantee": grantee.to_string(), "kind": grantee.kind()}),
    )?;
    let grants = products::grants(&tx, id)?;
    tx.commit()?;
    Ok(grants)
}

/// Everyone who downloaded a file of a product (operators and supervisors), from the
/// audit log's download events: whom to notify of a withdrawal.
pub fn holders(domain: &Domain, actor: &str, id: &str) -> Result<Vec<Holder>> {
    let conn = domain.conn()?;
    authz::authorize(&conn, actor, Action::ProductWithdraw, On::Domain)?;
    if !outputs::products(&conn)?.iter().any(|p| p.id == id) {
        return Err(Error::NotFound(format!("product `{id}`")));
    }
    Ok(products::holders(&conn, id)?)
}

impl Product {
    /// Its signed withdrawal notice, if it was withdrawn: the notice and its signature.
    pub fn withdrawal(&self) -> Result<Option<(Value, String)>> {
        let path = self.path.join(WITHDRAWAL);
        if !path.is_file() {
            return Ok(None);
        }
        Ok(Some((
            serde_json::from_slice(&fs::read(path)?)?,
            fs::read_to_string(self.path.join(WITHDRAWAL_SIGNATURE))?
                .trim()
                .to_string(),
        )))
    }

    /// One of the withdrawal notice's two files.
    fn withdrawal_file(&self, name: &str) -> Result<Vec<u8>> {
        let path = self.path.join(name);
        if !path.is_file() {
            return Err(Error::NotFound(format!(
                "file `{name}` of product {}",
                self.id
            )));
        }
        Ok(fs::read(path)?)
    }
}

/// Verifies a product folder's withdrawal notice, if it holds one: its signature by the
/// key the manifest names, and the manifest's hash it cites. Returns the notice.
pub fn verify_withdrawal(dir: &std::path::Path, manifest: &Value) -> Result<Option<Value>> {
    let path = dir.join(WITHDRAWAL);
    if !path.exists() {
        return Ok(None);
    }
    let bytes = fs::read(&path).map_err(|e| Error::Verify(format!("{WITHDRAWAL}: {e}")))?;
    let signature = fs::read_to_string(dir.join(WITHDRAWAL_SIGNATURE))
        .map_err(|e| Error::Verify(format!("{WITHDRAWAL_SIGNATURE}: {e}")))?;
    let notice: Value = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Verify(format!("{WITHDRAWAL} is not JSON: {e}")))?;
    let key_hex = manifest["domain_public_key"].as_str().unwrap_or_default();
    if notice["domain_public_key"].as_str() != Some(key_hex) {
        return Err(Error::Verify(
            "the withdrawal notice is signed by another key than the manifest".into(),
        ));
    }
    let key = keys::PublicKey::parse(key_hex)
        .map_err(|e| Error::Verify(format!("manifest public key: {e}")))?;
    let suite = super::named_suite(manifest)?;
    if super::named_suite(&notice)? != suite {
        return Err(Error::Verify(
            "the withdrawal notice names another suite than the manifest".into(),
        ));
    }
    keys::verify(&key, &bytes, &signature)
        .map_err(|_| Error::Verify(format!("{WITHDRAWAL}: signature does not verify")))?;
    let manifest_bytes =
        fs::read(dir.join(MANIFEST)).map_err(|e| Error::Verify(format!("{MANIFEST}: {e}")))?;
    let cited = notice[format!("manifest_{}", suite.hash_name())].as_str();
    if cited != Some(suite.hash_hex(&manifest_bytes).as_str()) {
        return Err(Error::Verify(
            "the withdrawal notice names another manifest".into(),
        ));
    }
    Ok(Some(notice))
}
