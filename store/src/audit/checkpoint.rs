//! Signed checkpoints: the domain key's signature over the tree's size and root at a time.
//!
//! The signed text of checkpoint number `c` (numbered from 1, in the order written) is
//!
//! ```text
//! sandbox audit checkpoint
//! <domain public key, hex>
//! <c>
//! <size: events covered>
//! <root: 64 hex digits>
//! <ts: RFC 3339 UTC>
//! ```
//!
//! each line ending in `\n`; in a domain of the `gm` suite, a line `suite gm` follows the
//! first (the root is then an SM3 tree's, the signature SM2's; a `standard` checkpoint's
//! text is as it always was). The number is signed so that a checkpoint cannot be copied
//! to another position, dropped from the middle or reordered unnoticed. Table
//! `audit_checkpoints` is append-only (triggers) and the last checkpoint is also recorded
//! in `meta` (`audit_checkpoint`), so that deleting the newest one is found.
//!
//! Before signing, [`checkpoint`] checks what it signs: the previous checkpoint's signature,
//! that the stored tree still has that checkpoint's root, and every event since then
//! (chain link, leaf, the nodes it completes). The new root is computed from the previous
//! checkpoint's compact range and the recomputed leaves, never from stored inner nodes, so
//! a checkpoint never certifies an edited event. Its cost is the events since the last one.

use crate::db::{OptionalExt, args};
use serde::{Deserialize, Serialize};

use sandbox_core::Suite;

use super::merkle::{self, Hash};
use super::{Replay, log_size, tree};
use crate::keys::PublicKey;
use crate::{Conn, DomainError as Error, Result, in_write_tx};

/// First line of a checkpoint's signed text.
pub const CHECKPOINT_HEADER: &str = "sandbox audit checkpoint";

/// A signed statement of the log's size and root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Checkpoint {
    /// Position among checkpoints, from 1.
    pub number: i64,
    /// Events covered (1..=size).
    pub size: i64,
    /// Merkle root of those events, hex.
    pub root: String,
    /// When it was signed, RFC 3339 UTC.
    pub ts: String,
    /// The domain's cryptographic suite: the tree's hash and the signature's scheme
    /// (`standard` where a checkpoint written before the choice does not say).
    #[serde(default)]
    pub suite: Suite,
    /// The signing domain's public key, hex (Ed25519, or SM2 in the `gm` suite).
    pub public_key: String,
    /// The signature of [`Checkpoint::signed_text`], hex.
    pub signature: String,
}

impl Checkpoint {
    /// The text the signature covers.
    pub fn signed_text(&self) -> String {
        let suite = match self.suite {
            Suite::Standard => String::new(),
            other => format!("suite {other}\n"),
        };
        format!(
            "{CHECKPOINT_HEADER}\n{suite}{}\n{}\n{}\n{}\n{}\n",
            self.public_key, self.number, self.size, self.root, self.ts
        )
    }

    /// Checks the signature, and that the key is of the checkpoint's suite; with
    /// `expected`, also that it is that key's. Returns the key.
    pub fn verify_signature(
        &self,
        expected: Option<&PublicKey>,
    ) -> sandbox_core::Result<PublicKey> {
        let key = PublicKey::parse(&self.public_key)
            .map_err(|e| Error::Verify(format!("checkpoint {}: {e}", self.number)))?;
        if key.suite() != self.suite {
            return Err(Error::Verify(format!(
                "checkpoint {} names the {} suite but is signed with an {} key",
                self.number,
                self.suite,
                key.suite().signature_name()
            )));
        }
        if let Some(expected) = expected
            && expected != &key
        {
            return Err(Error::Verify(format!(
                "checkpoint {} is signed by another key than the domain's",
                self.number
            )));
        }
        key.verify(self.signed_text().as_bytes(), &self.signature)
            .map_err(|_| {
                Error::Verify(format!(
                    "checkpoint {}: signature does not match",
                    self.number
                ))
            })?;
        Ok(key)
    }

    /// The root as a hash.
    pub fn root_hash(&self) -> sandbox_core::Result<Hash> {
        merkle::from_hex(&self.root)
            .map_err(|e| Error::Verify(format!("checkpoint {}: {e}", self.number)))
    }
}

const COLUMNS: &str = "number, size, root, ts, public_key, signature";

fn from_row(r: &crate::db::Row<'_>) -> crate::Result<Checkpoint> {
    let public_key: String = r.get(4)?;
    Ok(Checkpoint {
        number: r.get(0)?,
        size: r.get(1)?,
        root: r.get(2)?,
        ts: r.get(3)?,
        // The key's form names its suite (a key of neither form fails verification).
        suite: PublicKey::suite_of_hex(&public_key),
        public_key,
        signature: r.get(5)?,
    })
}

/// The newest checkpoint.
pub fn last(conn: &Conn) -> Result<Option<Checkpoint>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM audit_checkpoints ORDER BY number DESC LIMIT 1"),
        args![],
        from_row,
    )
    .optional()
}

/// The newest checkpoint of `size` events.
pub fn at_size(conn: &Conn, size: i64) -> Result<Option<Checkpoint>> {
    conn.query_row(
        &format!(
            "SELECT {COLUMNS} FROM audit_checkpoints WHERE size = ?1
                 ORDER BY number DESC LIMIT 1"
        ),
        args![size],
        from_row,
    )
    .optional()
}

/// Checkpoints whose size lies in `from..=to`, in order.
pub fn list(conn: &Conn, from: i64, to: i64) -> Result<Vec<Checkpoint>> {
    conn.rows(
        &format!(
            "SELECT {COLUMNS} FROM audit_checkpoints WHERE size BETWEEN ?1 AND ?2 ORDER BY number"
        ),
        args![from, to],
        from_row,
    )
}

/// Every checkpoint in order, a page at a time, for [`super::verify`].
pub(crate) struct All<'c> {
    conn: &'c Conn,
    page: std::collections::VecDeque<Checkpoint>,
    after: i64,
    done: bool,
}

/// Checkpoints read per page by [`All`].
const PAGE: i64 = 1000;

impl<'c> All<'c> {
    pub(crate) fn new(conn: &'c Conn) -> All<'c> {
        All {
            conn,
            page: std::collections::VecDeque::new(),
            after: 0,
            done: false,
        }
    }

    /// The next checkpoint by number, if any.
    pub(crate) fn next(&mut self) -> Result<Option<Checkpoint>> {
        if self.page.is_empty() && !self.done {
            let page = self.conn.rows(
                &format!(
                    "SELECT {COLUMNS} FROM audit_checkpoints WHERE number > ?1
                     ORDER BY number LIMIT ?2"
                ),
                args![self.after, PAGE],
                from_row,
            )?;
            self.done = (page.len() as i64) < PAGE;
            if let Some(last) = page.last() {
                self.after = last.number;
            }
            self.page.extend(page);
        }
        Ok(self.page.pop_front())
    }
}

/// Checks the log since the last checkpoint and signs a checkpoint of it as it is now.
/// Runs in the caller's transaction if there is one (so a release's checkpoint commits
/// with the release), else in its own.
pub fn checkpoint(conn: &Conn) -> Result<Checkpoint> {
    in_write_tx(conn, || write(conn))
}

/// Like [`checkpoint`], but only if events were added since the last checkpoint.
pub fn checkpoint_if_grown(conn: &Conn) -> Result<Option<Checkpoint>> {
    in_write_tx(conn, || {
        let size = log_size(conn)?;
        match last(conn)? {
            Some(c) if c.size >= size => Ok(None),
            _ => write(conn).map(Some),
        }
    })
}

fn write(conn: &Conn) -> Result<Checkpoint> {
    let key = conn.keys().public_key()?;
    if let Some(recorded) = super::recorded_key(conn)?
        && recorded != key
    {
        return Err(
            Error::Verify("the domain key is not the one the log recorded at init".into()).into(),
        );
    }
    let previous = last(conn)?;
    let size = log_size(conn)?;
    let root = extend_verified(conn, &key, previous.as_ref(), size)?;
    let mut c = Checkpoint {
        number: previous.as_ref().map_or(1, |p| p.number + 1),
        size,
        root: merkle::to_hex(&root),
        ts: crate::now(),
        suite: conn.keys().suite(),
        public_key: key.to_hex(),
        signature: String::new(),
    };
    c.signature = conn.keys().sign(c.signed_text().as_bytes())?;
    conn.execute(
        &format!("INSERT INTO audit_checkpoints ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
        args![c.number, c.size, c.root, c.ts, c.public_key, c.signature],
    )?;
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('audit_checkpoint', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        args![meta_value(&c)],
    )?;
    Ok(c)
}

/// What `meta` records of the last checkpoint.
pub(crate) fn meta_value(c: &Checkpoint) -> String {
    format!("{}:{}:{}", c.number, c.size, c.root)
}

/// The root of the first `size` events, from the previous checkpoint's compact range
/// (checked against its signed root) and the recomputed leaves of the events after it.
fn extend_verified(
    conn: &Conn,
    key: &PublicKey,
    previous: Option<&Checkpoint>,
    size: i64,
) -> Result<Hash> {
    let mut replay = match previous {
        None => Replay::new(conn),
        Some(p) => {
            p.verify_signature(Some(key))?;
            if p.size > size {
                return Err(Error::Verify(format!(
                    "event {} is missing: checkpoint {} covers {} events, but the log ends at event {size}",
                    size + 1,
                    p.number,
                    p.size
                )).into());
            }
            let frontier = tree::frontier(conn, p.size as u64)?;
            if frontier.root() != p.root_hash()? {
                return Err(Error::Verify(format!(
                    "checkpoint {}: the stored tree no longer has its root",
                    p.number
                ))
                .into());
            }
            let prev_hash = if p.size == 0 {
                super::GENESIS.to_string()
            } else {
                conn.query_row(
                    "SELECT hash FROM audit_events WHERE seq = ?1",
                    args![p.size],
                    |r| r.get(0),
                )
                .optional()?
                .ok_or_else(|| Error::Verify(format!("event {} is missing", p.size)))?
            };
            Replay::resume(conn, frontier, prev_hash)
        }
    };
    let mut from = replay.next_seq();
    while from <= size {
        let batch = super::read(conn, from, (size - from + 1).min(10_000))?;
        if batch.is_empty() {
            break;
        }
        for e in &batch {
            replay.event(e)?;
        }
        from = replay.next_seq();
    }
    if replay.next_seq() != size + 1 {
        return Err(Error::Verify(format!("event {} is missing", replay.next_seq())).into());
    }
    Ok(replay.root())
}

/// The checkpoint a product manifest records (`"audit": {checkpoint, size, root, ts,
/// signature}`), checked against the domain key that signed the manifest. `None` for a
/// manifest without one.
pub fn verify_manifest_checkpoint(
    manifest: &serde_json::Value,
    key: &PublicKey,
) -> Result<Option<Checkpoint>> {
    let a = &manifest["audit"];
    let Some(signature) = a["signature"].as_str() else {
        return Ok(None);
    };
    let field = |name: &str| Error::Verify(format!("manifest: audit checkpoint has no `{name}`"));
    let c = Checkpoint {
        number: a["checkpoint"]
            .as_i64()
            .ok_or_else(|| field("checkpoint"))?,
        size: a["size"].as_i64().ok_or_else(|| field("size"))?,
        root: a["root"].as_str().ok_or_else(|| field("root"))?.to_string(),
        ts: a["ts"].as_str().ok_or_else(|| field("ts"))?.to_string(),
        suite: key.suite(),
        public_key: key.to_hex(),
        signature: signature.to_string(),
    };
    c.verify_signature(Some(key))?;
    Ok(Some(c))
}
