//! Table `data_keys`: the key of each dataset version's file (Parquet modular encryption,
//! AES-256-GCM, the footer encrypted), wrapped by the domain's master key. A file's key is
//! made fresh when its version is written and never leaves the domain node in the clear;
//! the file's additional authenticated data begins with [`aad_prefix`], which names the
//! dataset, the version and the file, so that a file moved to another version's folder (or
//! another domain) does not decrypt. The wrapping's context names them too: a wrapped key
//! copied to another row does not unwrap.
//!
//! Each master key generation has its own rows: a rotation adds the next key's rows
//! ([`rewrap_all`]) before its commit point (`keys/master.toml`) and removes the others
//! after it ([`sweep`]), so that a crash on either side leaves every file readable.

use crate::db::{OptionalExt, args};
use zeroize::Zeroizing;

use crate::master::{self, KeyProvider, random_bytes};
use crate::{Conn, DomainError, Result};

/// A dataset file's key and the id of the file it encrypts.
#[derive(Clone)]
pub struct DataKey {
    file_id: String,
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey")
            .field("file_id", &self.file_id)
            .finish_non_exhaustive()
    }
}

impl DataKey {
    /// A new key from the operating system's random source, for a new file.
    pub fn fresh() -> Result<DataKey> {
        let id: [u8; 16] = random_bytes()?;
        Ok(DataKey {
            file_id: hex::encode(id),
            key: Zeroizing::new(random_bytes()?),
        })
    }

    /// The id of the file the key encrypts (part of its additional authenticated data).
    pub fn file_id(&self) -> &str {
        &self.file_id
    }

    /// The AES-256 key.
    pub fn key(&self) -> &[u8; 32] {
        &self.key
    }
}

/// The additional authenticated data every module of a dataset version's data file
/// number `part` is bound to (before Parquet's own per-module suffix): the dataset, the
/// version, the key's file id and, after the first, the part. Not stored in the file: a
/// reader must know which version, and which of its files, it opens; one part put in
/// another's place does not decrypt.
pub fn aad_prefix(dataset: &str, version: i64, file_id: &str, part: u32) -> Vec<u8> {
    let mut aad = format!("sandbox dataset file\0{dataset}\0{version}\0{file_id}");
    // The first file's is what every version had before versions had several files.
    if part > 0 {
        aad.push_str(&format!("\0part {part}"));
    }
    aad.into_bytes()
}

fn context(dataset: &str, version: i64, file_id: &str) -> String {
    format!("sandbox dataset data key\0{dataset}\0{version}\0{file_id}")
}

/// Records the key of a version's file, wrapped by the master key in use, in the
/// caller's transaction (the one that records the version). Refused when the master key
/// was rotated since this process opened the domain: a key wrapped by the retired one
/// would be unreadable by every process opened after.
pub fn record(conn: &Conn, dataset: &str, version: i64, key: &DataKey) -> Result<()> {
    let provider = conn.keys().provider();
    if let Some(config) = master::config(conn.layout())?
        && config.key_id != provider.key_id()
    {
        return Err(DomainError::Conflict(format!(
            "the master key was rotated to {} since this process opened the domain (it holds {}): restart it",
            config.key_id,
            provider.key_id()
        ))
        .into());
    }
    insert(conn, provider.as_ref(), dataset, version, key)
}

fn insert(
    conn: &Conn,
    provider: &dyn KeyProvider,
    dataset: &str,
    version: i64,
    key: &DataKey,
) -> Result<()> {
    let wrapped = provider.wrap(&context(dataset, version, &key.file_id), &key.key[..])?;
    conn.execute(
        "INSERT INTO data_keys (dataset, version, file_id, master_key, wrapped, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        args![
            dataset,
            version,
            key.file_id,
            provider.key_id(),
            wrapped,
            crate::now()
        ],
    )?;
    Ok(())
}

/// The key of a version's file, unwrapped by the master key this process holds; `None`
/// for a version stored in the clear (registered before encryption at rest).
pub fn get(conn: &Conn, dataset: &str, version: i64) -> Result<Option<DataKey>> {
    let provider = conn.keys().provider();
    let row: Option<(String, Vec<u8>)> = conn
        .query_row(
            "SELECT file_id, wrapped FROM data_keys
             WHERE dataset = ?1 AND version = ?2 AND master_key = ?3",
            args![dataset, version, provider.key_id()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((file_id, wrapped)) = row else {
        let other: Option<String> = conn
            .query_row(
                "SELECT master_key FROM data_keys WHERE dataset = ?1 AND version = ?2 LIMIT 1",
                args![dataset, version],
                |r| r.get(0),
            )
            .optional()?;
        return match other {
            None => Ok(None),
            Some(other) => Err(DomainError::Verify(format!(
                "the data key of `{dataset}` version {version} is wrapped by master key {other}, not by {}",
                provider.key_id()
            ))
            .into()),
        };
    };
    let plain = provider.unwrap(&context(dataset, version, &file_id), &wrapped)?;
    let key: [u8; 32] = plain.as_slice().try_into().map_err(|_| {
        DomainError::Verify(format!(
            "the data key of `{dataset}` version {version} is not 32 bytes"
        ))
    })?;
    Ok(Some(DataKey {
        file_id,
        key: Zeroizing::new(key),
    }))
}

/// Wraps every data key by `next` as well, in rows of its own (a rotation's step before
/// its commit point; nobody reads them until `keys/master.toml` names `next`). Rows `next`
/// already has (from an interrupted rotation) are replaced. Returns how many keys.
pub fn rewrap_all(conn: &Conn, next: &dyn KeyProvider) -> Result<usize> {
    let current = conn.keys().provider().key_id().to_string();
    conn.execute(
        "DELETE FROM data_keys WHERE master_key = ?1",
        args![next.key_id()],
    )?;
    let versions: Vec<(String, i64)> = conn.rows(
        "SELECT dataset, version FROM data_keys WHERE master_key = ?1",
        args![current],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    for (dataset, version) in &versions {
        let key = get(conn, dataset, *version)?.ok_or_else(|| {
            DomainError::Internal(format!(
                "data key of `{dataset}` version {version} vanished"
            ))
        })?;
        insert(conn, next, dataset, *version, &key)?;
    }
    Ok(versions.len())
}

/// Removes the wrapped data keys of every master key but `current` (left by a rotation).
pub fn sweep(conn: &Conn, current: &str) -> Result<()> {
    conn.execute(
        "DELETE FROM data_keys WHERE master_key <> ?1",
        args![current],
    )?;
    Ok(())
}

/// Removes every wrapped key of a version (its destruction): whatever copy of its file
/// remains, on this disk or in a backup, cannot be decrypted again.
pub fn forget(conn: &Conn, dataset: &str, version: i64) -> Result<()> {
    conn.execute(
        "DELETE FROM data_keys WHERE dataset = ?1 AND version = ?2",
        args![dataset, version],
    )?;
    Ok(())
}
