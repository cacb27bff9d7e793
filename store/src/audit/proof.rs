//! Inclusion and consistency proofs from the stored tree, against signed checkpoints, and
//! their check (which needs no store: [`verify_proof`]).
//!
//! An inclusion proof (JSON, format [`INCLUSION_FORMAT`]) carries the event, its leaf hash
//! and index (`seq − 1`), the tree size, the path (sibling hashes from the leaf up, hex)
//! and the signed checkpoint of that size. A consistency proof ([`CONSISTENCY_FORMAT`])
//! carries two signed checkpoints and the path between their trees.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::checkpoint::{self, Checkpoint};
use super::merkle::{self, Hash};
use super::tree::StoreNodes;
use super::{Event, log_size, read};
use crate::keys::PublicKey;
use crate::{Conn, DomainError as Error, Result};

/// Format name of an inclusion proof.
pub const INCLUSION_FORMAT: &str = "sandbox-audit-inclusion/1";
/// Format name of a consistency proof.
pub const CONSISTENCY_FORMAT: &str = "sandbox-audit-consistency/1";

/// Event `seq` is leaf `seq − 1` of the checkpoint's tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InclusionProof {
    /// [`INCLUSION_FORMAT`].
    pub format: String,
    /// The event's position in the log.
    pub seq: i64,
    /// Its leaf index: `seq − 1`.
    pub leaf_index: u64,
    /// Its leaf hash, hex.
    pub leaf_hash: String,
    /// Leaves of the tree the proof is in.
    pub tree_size: u64,
    /// Sibling hashes from the leaf up (RFC 6962 `PATH`), hex.
    pub path: Vec<String>,
    /// The signed checkpoint of `tree_size` events.
    pub checkpoint: Checkpoint,
    /// The event itself (its canonical bytes give the leaf hash).
    pub event: Event,
}

/// The tree of the first checkpoint is a prefix of the second's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    /// [`CONSISTENCY_FORMAT`].
    pub format: String,
    /// The earlier checkpoint.
    pub first: Checkpoint,
    /// The later checkpoint.
    pub second: Checkpoint,
    /// RFC 6962 `PROOF(first.size, D[second.size])`, hex.
    pub path: Vec<String>,
}

fn hexes(path: &[Hash]) -> Vec<String> {
    path.iter().map(merkle::to_hex).collect()
}

fn unhex(path: &[String]) -> Result<Vec<Hash>> {
    path.iter().map(|h| Ok(merkle::from_hex(h)?)).collect()
}

fn check_size(conn: &Conn, size: i64) -> Result<u64> {
    let events = log_size(conn)?;
    if size < 0 || size > events {
        return Err(Error::NotFound(format!("the log has {events} events, not {size}")).into());
    }
    Ok(size as u64)
}

/// The root of the first `size` events, from the stored tree.
pub fn root_at(conn: &Conn, size: i64) -> Result<Hash> {
    let size = check_size(conn, size)?;
    Ok(merkle::root_at(&mut StoreNodes(conn), size)?)
}

/// The inclusion path of event `seq` in the tree of the first `size` events.
pub fn inclusion_path(conn: &Conn, seq: i64, size: i64) -> Result<Vec<Hash>> {
    let size = check_size(conn, size)?;
    if seq < 1 {
        return Err(Error::NotFound(format!("no event {seq}")).into());
    }
    Ok(merkle::inclusion_path(
        &mut StoreNodes(conn),
        (seq - 1) as u64,
        size,
    )?)
}

/// The consistency path between the trees of the first `first` and `second` events.
pub fn consistency_path(conn: &Conn, first: i64, second: i64) -> Result<Vec<Hash>> {
    let second = check_size(conn, second)?;
    if first < 0 {
        return Err(Error::NotFound(format!("no tree of {first} events")).into());
    }
    Ok(merkle::consistency_path(
        &mut StoreNodes(conn),
        first as u64,
        second,
    )?)
}

fn checkpoint_of(conn: &Conn, size: Option<i64>) -> Result<Checkpoint> {
    match size {
        Some(s) => checkpoint::at_size(conn, s)?.ok_or_else(|| {
            Error::NotFound(format!(
                "no signed checkpoint of {s} events (`sandbox audit checkpoint` writes one of the log as it is)"
            ))
            .into()
        }),
        None => checkpoint::last(conn)?.ok_or_else(|| {
            Error::NotFound(
                "no signed checkpoint yet (`sandbox audit checkpoint` writes one)".into(),
            )
            .into()
        }),
    }
}

/// The inclusion proof of event `seq` against the checkpoint of `size` events (default:
/// the newest checkpoint). The proof is checked before it is returned.
pub fn prove_inclusion(conn: &Conn, seq: i64, size: Option<i64>) -> Result<InclusionProof> {
    let c = checkpoint_of(conn, size)?;
    if seq < 1 || seq > c.size {
        return Err(Error::NotFound(format!(
            "event {seq} is not in checkpoint {} ({} events)",
            c.number, c.size
        ))
        .into());
    }
    let event = read(conn, seq, 1)?
        .into_iter()
        .next()
        .filter(|e| e.seq == seq)
        .ok_or_else(|| Error::NotFound(format!("no event {seq}")))?;
    let leaf = event.leaf_hash(conn.keys().suite())?;
    let path = inclusion_path(conn, seq, c.size)?;
    let proof = InclusionProof {
        format: INCLUSION_FORMAT.into(),
        seq,
        leaf_index: (seq - 1) as u64,
        leaf_hash: merkle::to_hex(&leaf),
        tree_size: c.size as u64,
        path: hexes(&path),
        checkpoint: c,
        event,
    };
    proof.verify(None).map_err(|e| {
        Error::Verify(format!(
            "the stored audit tree gives no valid proof of event {seq}: {e}"
        ))
    })?;
    Ok(proof)
}

/// The consistency proof from the checkpoint of `from` events to the checkpoint of `to`
/// events (default: the newest). Checked before it is returned.
pub fn prove_consistency(conn: &Conn, from: i64, to: Option<i64>) -> Result<ConsistencyProof> {
    let first = checkpoint_of(conn, Some(from))?;
    let second = checkpoint_of(conn, to)?;
    if first.size > second.size {
        return Err(Error::Conflict(format!(
            "checkpoint {} ({} events) is not earlier than checkpoint {} ({} events)",
            first.number, first.size, second.number, second.size
        ))
        .into());
    }
    let path = consistency_path(conn, first.size, second.size)?;
    let proof = ConsistencyProof {
        format: CONSISTENCY_FORMAT.into(),
        first,
        second,
        path: hexes(&path),
    };
    proof.verify(None).map_err(|e| {
        Error::Verify(format!(
            "the stored audit tree gives no valid consistency proof: {e}"
        ))
    })?;
    Ok(proof)
}

impl InclusionProof {
    /// Checks the event against the leaf hash, the path against the checkpoint's root, and
    /// the checkpoint's signature (by `key`, when given).
    pub fn verify(&self, key: Option<&PublicKey>) -> sandbox_core::Result<()> {
        if self.format != INCLUSION_FORMAT {
            return Err(Error::Verify(format!("not an {INCLUSION_FORMAT} proof")));
        }
        self.checkpoint.verify_signature(key)?;
        let leaf = merkle::from_hex(&self.leaf_hash)?;
        if self.event.seq != self.seq || self.leaf_index != (self.seq - 1) as u64 {
            return Err(Error::Verify(format!(
                "event {}: position does not match the proof's",
                self.event.seq
            )));
        }
        if self.event.leaf_hash(self.checkpoint.suite)? != leaf {
            return Err(Error::Verify(format!(
                "event {}: content does not match the leaf hash",
                self.seq
            )));
        }
        if self.checkpoint.size < 0 || self.tree_size != self.checkpoint.size as u64 {
            return Err(Error::Verify(
                "the proof's tree size is not the checkpoint's".into(),
            ));
        }
        merkle::verify_inclusion(
            self.checkpoint.suite,
            &leaf,
            self.leaf_index,
            self.tree_size,
            &unhex(&self.path)?,
            &self.checkpoint.root_hash()?,
        )
        .map_err(|e| Error::Verify(format!("event {}: {e}", self.seq)))
    }
}

impl ConsistencyProof {
    /// Checks both checkpoints' signatures (by `key`, when given; by one key in any case)
    /// and the path between their roots.
    pub fn verify(&self, key: Option<&PublicKey>) -> sandbox_core::Result<()> {
        if self.format != CONSISTENCY_FORMAT {
            return Err(Error::Verify(format!("not a {CONSISTENCY_FORMAT} proof")));
        }
        let k = self.first.verify_signature(key)?;
        self.second.verify_signature(Some(&k))?;
        let suite = k.suite();
        if self.first.size < 0 || self.second.size < 0 {
            return Err(Error::Verify("negative tree size".into()));
        }
        merkle::verify_consistency(
            suite,
            self.first.size as u64,
            self.second.size as u64,
            &self.first.root_hash()?,
            &self.second.root_hash()?,
            &unhex(&self.path)?,
        )
        .map_err(|e| {
            Error::Verify(format!(
                "checkpoints {} and {}: {e}",
                self.first.number, self.second.number
            ))
        })
    }
}

/// What [`verify_proof`] checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProofCheck {
    /// `inclusion` or `consistency`.
    pub kind: &'static str,
    /// The suite of the checkpoint(s): their tree's hash and their signature's scheme.
    pub suite: sandbox_core::Suite,
    /// The key that signed the checkpoint(s), hex.
    pub public_key: String,
    /// What was proved, in words.
    pub statement: String,
}

/// Checks a proof written by `sandbox audit prove` (either kind), from its JSON alone.
/// With `key`, the checkpoints must be signed by it; without, the result names the key
/// that signed them, to be compared with the domain's published key.
pub fn verify_proof(json: &str, key: Option<&PublicKey>) -> Result<ProofCheck> {
    let value: Value =
        serde_json::from_str(json).map_err(|e| Error::Verify(format!("proof is not JSON: {e}")))?;
    match value["format"].as_str() {
        Some(INCLUSION_FORMAT) => {
            let p: InclusionProof = serde_json::from_value(value)
                .map_err(|e| Error::Verify(format!("inclusion proof: {e}")))?;
            p.verify(key)?;
            Ok(ProofCheck {
                kind: "inclusion",
                suite: p.checkpoint.suite,
                public_key: p.checkpoint.public_key.clone(),
                statement: format!(
                    "event {} ({} by {}) is in checkpoint {} ({} events, root {})",
                    p.seq,
                    p.event.action,
                    p.event.actor,
                    p.checkpoint.number,
                    p.checkpoint.size,
                    p.checkpoint.root
                ),
            })
        }
        Some(CONSISTENCY_FORMAT) => {
            let p: ConsistencyProof = serde_json::from_value(value)
                .map_err(|e| Error::Verify(format!("consistency proof: {e}")))?;
            p.verify(key)?;
            Ok(ProofCheck {
                kind: "consistency",
                suite: p.first.suite,
                public_key: p.first.public_key.clone(),
                statement: format!(
                    "checkpoint {} ({} events, root {}) is a prefix of checkpoint {} ({} events, root {})",
                    p.first.number,
                    p.first.size,
                    p.first.root,
                    p.second.number,
                    p.second.size,
                    p.second.root
                ),
            })
        }
        other => Err(Error::Verify(format!(
            "unknown proof format {other:?} (expected {INCLUSION_FORMAT} or {CONSISTENCY_FORMAT})"
        ))
        .into()),
    }
}
