//! Custody of the domain's keys: moving its secrets to a new master key (TJ-Sec Art. 10;
//! JZ Art. 8). The secrets themselves stay the same (checkpoints, manifests and pseudonyms
//! go on as before), as do the keys of the dataset files; only their wrapping changes, and
//! no data file is rewritten.

use serde_json::json;

use sandbox_core::audit::{EventKind, Subject};
use sandbox_core::authz::Action;
use sandbox_store::authz::{self, On};
use sandbox_store::master::{self, KeyProvider as _, MasterConfig};
use sandbox_store::{audit, datakeys, keys};

use crate::{Domain, Error, MasterKey, Result};

/// What a rotation did: the master key before and after, by id.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rotation {
    /// The key that wrapped the secrets before.
    pub from: String,
    /// The key that wraps them now.
    pub to: String,
    /// Where the new key is.
    pub source: String,
}

/// An operator or an admin moves the domain's secrets to the master key `next`: they are
/// wrapped by it in its own files, the record of where the key is is replaced (the commit
/// point), the rotation is recorded, and the old key's files are removed. A process that
/// had the domain open keeps its secrets (unwrapped when it opened); the next one opens
/// with the new key. Refused if `next` is the key in use.
pub fn rotate_master_key(domain: &Domain, actor: &str, next: &MasterKey) -> Result<Rotation> {
    let layout = domain.layout();
    let mut conn = domain.conn()?;
    authz::authorize(&conn, actor, Action::SettingsSet, On::Domain)?;
    let from = domain.keys().provider().key_id().to_string();
    let mut created = None;
    let done = (|| -> Result<Rotation> {
        let (key, source) = next.resolve(layout, &mut created)?;
        if key.key_id() == from {
            return Err(Error::Conflict(format!(
                "master key {from} is the one in use: rotate to another"
            )));
        }
        keys::rewrap(domain.keys(), &key)?;
        // The dataset files' keys, in rows of the new key's own (committed before the
        // commit point, as the secrets' files are written before it).
        let data_keys = {
            let tx = conn.write()?;
            let n = datakeys::rewrap_all(&tx, &key)?;
            tx.commit()?;
            n
        };
        let tx = conn.write()?;
        audit::append(
            &tx,
            actor,
            EventKind::MasterKeyRotated,
            &Subject::Domain,
            json!({"from": from, "to": key.key_id(), "source": source.to_string(), "data_keys": data_keys}),
        )?;
        let before = master::replace_config(
            layout,
            &MasterConfig {
                source: source.clone(),
                key_id: key.key_id().to_string(),
            },
        )?;
        if let Err(e) = tx.commit() {
            if let Some(before) = before {
                master::restore_config(layout, &before)?;
            }
            return Err(e.into());
        }
        Ok(Rotation {
            from: from.clone(),
            to: key.key_id().to_string(),
            source: source.to_string(),
        })
    })();
    match &done {
        Ok(r) => {
            keys::sweep(layout, &r.to)?;
            datakeys::sweep(&conn, &r.to)?;
        }
        Err(_) => {
            // The new key's files and rows, if any were written, are not read by anyone.
            let _ = keys::sweep(layout, &from);
            let _ = datakeys::sweep(&conn, &from);
            if let Some(path) = created {
                let _ = std::fs::remove_file(path);
            }
        }
    }
    done
}
