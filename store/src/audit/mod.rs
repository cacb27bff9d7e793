//! The audit log: every state change is an event; the events are the leaves of an
//! RFC 6962 Merkle tree whose roots the domain key signs in checkpoints.
//!
//! - An event's bytes are the canonical JSON of `{seq, ts, actor, action, subject, details}`
//!   (struct fields in that order, object keys sorted). Its leaf hash is `H(0x00 ‖ bytes)`
//!   ([`merkle`]; H is the domain suite's hash, SHA-256 or SM3); leaf `seq − 1` of the
//!   tree. Each event also keeps its link to the one before, `hash = H(prev_hash ‖ 0x0a ‖
//!   bytes)` (the first links to [`GENESIS`]), so that a broken event is named even where
//!   no checkpoint covers it.
//! - [`append`] writes the event, its leaf and the perfect subtrees it completes
//!   (`audit_nodes`, O(log n), amortized one node) and the head in `meta`, inside the
//!   caller's transaction: there is no state change without its event, and no event without
//!   its change.
//! - [`checkpoint()`] signs `(number, size, root, time)` with the domain key (the
//!   [`checkpoint`](mod@checkpoint) module gives the signed text). Checkpoints are written
//!   at every release (the product manifest records one), at the end of every CLI command
//!   that added events, and by `sandbox audit checkpoint`.
//! - [`prove_inclusion`] and [`prove_consistency`] give RFC 6962 proofs against signed
//!   checkpoints; [`merkle::verify_inclusion`] and [`merkle::verify_consistency`] check them
//!   from hashes alone.
//! - [`verify`] recomputes everything from the events: chain, leaves, stored nodes, every
//!   checkpoint's root and signature, the head and the last checkpoint recorded in `meta`.
//!
//! The store refuses UPDATE and DELETE on events, nodes and checkpoints (triggers);
//! [`verify`] finds a change made around them (a dropped trigger, an edited file), and
//! names the first broken event or checkpoint. Nothing deletes audit events; the retention
//! setting ([`retention_years`], at least [`MIN_RETENTION_YEARS`]) is the floor for any
//! archiving outside Sandbox.

pub mod checkpoint;
pub mod merkle;
mod proof;
mod tree;

use std::io::Write;

use crate::db::{OptionalExt, args};
use sandbox_core::Suite;
use sandbox_core::audit::{EventKind, Subject};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::keys::PublicKey;
use crate::{Conn, DomainError as Error, Result, in_write_tx};

pub use checkpoint::{Checkpoint, checkpoint, checkpoint_if_grown, verify_manifest_checkpoint};
pub use merkle::Hash;
pub use proof::{
    CONSISTENCY_FORMAT, ConsistencyProof, INCLUSION_FORMAT, InclusionProof, ProofCheck,
    consistency_path, inclusion_path, prove_consistency, prove_inclusion, root_at, verify_proof,
};

/// The hash the first event links to.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The shortest audit retention a domain may set, in years (Tianjin Art. 8).
pub const MIN_RETENTION_YEARS: i64 = 3;

/// One recorded event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Event {
    /// Position in the log, from 1.
    pub seq: i64,
    /// When, RFC 3339 UTC.
    pub ts: String,
    /// Who: a principal's name, or `system`.
    pub actor: String,
    /// What, e.g. `query.answered`.
    pub action: String,
    /// What it concerns, e.g. `job:…`.
    pub subject: String,
    /// Details as JSON.
    pub details: Value,
    /// Hash of the event before.
    pub prev_hash: String,
    /// This event's hash.
    pub hash: String,
}

impl Event {
    /// The event's canonical bytes: the leaf data of the Merkle tree.
    pub fn canonical_bytes(&self) -> Result<Vec<u8>> {
        canonical(&Canonical {
            seq: self.seq,
            ts: &self.ts,
            actor: &self.actor,
            action: &self.action,
            subject: &self.subject,
            details: &self.details,
        })
    }

    /// The event's leaf hash under `suite`.
    pub fn leaf_hash(&self, suite: Suite) -> Result<Hash> {
        Ok(merkle::leaf_hash(suite, &self.canonical_bytes()?))
    }
}

#[derive(Serialize)]
struct Canonical<'a> {
    seq: i64,
    ts: &'a str,
    actor: &'a str,
    action: &'a str,
    subject: &'a str,
    details: &'a Value,
}

fn canonical(c: &Canonical<'_>) -> Result<Vec<u8>> {
    // serde_json writes struct fields in declaration order and maps (from `Value`) in
    // key order, so the encoding is canonical.
    Ok(serde_json::to_vec(c)?)
}

fn chain_hash(suite: Suite, prev_hash: &str, body: &[u8]) -> String {
    hex::encode(suite.hash(&[prev_hash.as_bytes(), b"\n", body]))
}

/// Appends an event. Call it inside the transaction that makes the change it records
/// (alone, it is a transaction of its own).
pub fn append(
    conn: &Conn,
    actor: &str,
    kind: EventKind,
    subject: &Subject,
    details: Value,
) -> Result<i64> {
    append_text(conn, actor, kind.as_str(), &subject.to_string(), details)
}

/// [`append`] of a kind and subject as the log stores them.
pub(crate) fn append_text(
    conn: &Conn,
    actor: &str,
    action: &str,
    subject: &str,
    details: Value,
) -> Result<i64> {
    in_write_tx(conn, || {
        append_locked(conn, actor, action, subject, details)
    })
}

/// [`append_text`] in the caller's transaction: the log's one writer at a time (on
/// PostgreSQL the audit lock row, held until the transaction ends; SQLite's writers
/// exclude each other already).
fn append_locked(
    conn: &Conn,
    actor: &str,
    action: &str,
    subject: &str,
    details: Value,
) -> Result<i64> {
    conn.lock("SELECT id FROM audit_lock WHERE id = 1 FOR UPDATE", args![])?;
    let last: Option<(i64, String)> = conn
        .query_row(
            "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1",
            args![],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (seq, prev_hash) = match last {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, GENESIS.to_string()),
    };
    let ts = crate::now();
    let body = canonical(&Canonical {
        seq,
        ts: &ts,
        actor,
        action,
        subject,
        details: &details,
    })?;
    let suite = conn.keys().suite();
    let hash = chain_hash(suite, &prev_hash, &body);
    conn.execute(
        "INSERT INTO audit_events (seq, ts, actor, action, subject, details, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        args![
            seq,
            ts,
            actor,
            action,
            subject,
            serde_json::to_string(&details)?,
            prev_hash,
            hash
        ],
    )?;
    tree::append_leaf(conn, (seq - 1) as u64, merkle::leaf_hash(suite, &body))?;
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('audit_head', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        args![format!("{seq}:{hash}")],
    )?;
    Ok(seq)
}

/// Reads events `from..` in order, at most `limit`.
pub fn read(conn: &Conn, from: i64, limit: i64) -> Result<Vec<Event>> {
    let rows = conn.rows(
        "SELECT seq, ts, actor, action, subject, details, prev_hash, hash
         FROM audit_events WHERE seq >= ?1 ORDER BY seq LIMIT ?2",
        args![from, limit],
        |r| {
            Ok((
                r.get::<i64>(0)?,
                r.get::<String>(1)?,
                r.get::<String>(2)?,
                r.get::<String>(3)?,
                r.get::<String>(4)?,
                r.get::<String>(5)?,
                r.get::<String>(6)?,
                r.get::<String>(7)?,
            ))
        },
    )?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, ts, actor, action, subject, details, prev_hash, hash) = row;
        let details: Value = serde_json::from_str(&details)
            .map_err(|e| Error::Verify(format!("event {seq}: details are not JSON: {e}")))?;
        out.push(Event {
            seq,
            ts,
            actor,
            action,
            subject,
            details,
            prev_hash,
            hash,
        });
    }
    Ok(out)
}

/// Events in the log (the tree's size).
pub fn log_size(conn: &Conn) -> Result<i64> {
    conn.query_row(
        "SELECT COALESCE(MAX(seq), 0) FROM audit_events",
        args![],
        |r| r.get(0),
    )
}

/// The domain public key the log recorded at init (event 1, `domain.init`), if readable.
pub(crate) fn recorded_key(conn: &Conn) -> Result<Option<PublicKey>> {
    let details: Option<String> = conn
        .query_row(
            "SELECT details FROM audit_events WHERE seq = 1 AND action = 'domain.init'",
            args![],
            |r| r.get(0),
        )
        .optional()?;
    Ok(details
        .and_then(|d| serde_json::from_str::<Value>(&d).ok())
        .and_then(|d| d["public_key"].as_str().map(str::to_string))
        .and_then(|k| PublicKey::parse(&k).ok()))
}

/// Replays events in order: checks each one's link, hash, leaf and the tree nodes it
/// completes against the store, and keeps the compact range for roots.
pub(crate) struct Replay<'c> {
    conn: &'c Conn,
    frontier: merkle::Frontier,
    prev: String,
    next_seq: i64,
}

impl<'c> Replay<'c> {
    pub(crate) fn new(conn: &'c Conn) -> Replay<'c> {
        Replay {
            conn,
            frontier: merkle::Frontier::new(conn.keys().suite()),
            prev: GENESIS.to_string(),
            next_seq: 1,
        }
    }

    pub(crate) fn resume(conn: &'c Conn, frontier: merkle::Frontier, prev: String) -> Replay<'c> {
        let next_seq = frontier.size() as i64 + 1;
        Replay {
            conn,
            frontier,
            prev,
            next_seq,
        }
    }

    pub(crate) fn next_seq(&self) -> i64 {
        self.next_seq
    }

    pub(crate) fn root(&self) -> Hash {
        self.frontier.root()
    }

    pub(crate) fn event(&mut self, e: &Event) -> Result<()> {
        if e.seq != self.next_seq {
            return Err(Error::Verify(format!(
                "event {} is missing (next stored event is {})",
                self.next_seq, e.seq
            ))
            .into());
        }
        if e.prev_hash != self.prev {
            return Err(Error::Verify(format!(
                "event {}: link to the previous event is broken",
                e.seq
            ))
            .into());
        }
        let body = e.canonical_bytes()?;
        let suite = self.conn.keys().suite();
        let hash = chain_hash(suite, &self.prev, &body);
        if hash != e.hash {
            return Err(Error::Verify(format!(
                "event {} ({} by {}): content does not match its hash",
                e.seq, e.action, e.actor
            ))
            .into());
        }
        let leaf = merkle::leaf_hash(suite, &body);
        match tree::get(self.conn, 0, (e.seq - 1) as u64)? {
            None => {
                return Err(
                    Error::Verify(format!("event {}: no leaf in the audit tree", e.seq)).into(),
                );
            }
            Some(stored) if stored != leaf => {
                return Err(Error::Verify(format!(
                    "event {} ({} by {}): content does not match its leaf in the audit tree",
                    e.seq, e.action, e.actor
                ))
                .into());
            }
            Some(_) => {}
        }
        for (level, index, h) in self.frontier.push(leaf) {
            if tree::get(self.conn, level, index)? != Some(h) {
                return Err(Error::Verify(format!(
                    "event {}: audit tree node ({level}, {index}) does not match the events",
                    e.seq
                ))
                .into());
            }
        }
        self.prev = hash;
        self.next_seq += 1;
        Ok(())
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verification {
    /// Events checked.
    pub events: i64,
    /// Hash of the last event (the head of the chain).
    pub head: String,
    /// Merkle root of all events, hex.
    pub root: String,
    /// Signed checkpoints checked.
    pub checkpoints: i64,
    /// The newest checkpoint.
    pub last_checkpoint: Option<Checkpoint>,
}

/// Runs `f` on one snapshot of the store (a read transaction of its own, unless the caller
/// is in one).
fn in_snapshot<T>(conn: &Conn, f: impl FnOnce() -> Result<T>) -> Result<T> {
    if !conn.idle() {
        return f();
    }
    let _snapshot = crate::Tx::begin(conn, crate::Begin::Read)?;
    f()
}

/// Recomputes the whole log: events, tree and checkpoints. Fails with the first event or
/// checkpoint that does not match. Checkpoint signatures are checked against the key the
/// log recorded at init.
pub fn verify(conn: &Conn) -> Result<Verification> {
    verify_with_key(conn, None)
}

/// [`verify`], also requiring the log's recorded key and every checkpoint's to be `key`
/// (the domain's key from its key folder, or one published elsewhere).
pub fn verify_with_key(conn: &Conn, key: Option<&PublicKey>) -> Result<Verification> {
    in_snapshot(conn, || verify_snapshot(conn, key))
}

struct CheckpointState {
    next_number: i64,
    last_size: i64,
    last: Option<Checkpoint>,
}

fn check_checkpoint(
    c: Checkpoint,
    state: &mut CheckpointState,
    replay: &Replay<'_>,
    key: Option<&PublicKey>,
) -> Result<()> {
    if c.number != state.next_number {
        return Err(Error::Verify(format!(
            "checkpoint {} is missing (next stored checkpoint is {})",
            state.next_number, c.number
        ))
        .into());
    }
    if c.size < state.last_size {
        return Err(Error::Verify(format!(
            "checkpoint {}: covers fewer events ({}) than checkpoint {} ({})",
            c.number,
            c.size,
            c.number - 1,
            state.last_size
        ))
        .into());
    }
    let Some(key) = key else {
        return Err(Error::Verify(format!(
            "checkpoint {}: the log records no domain key to check it against",
            c.number
        ))
        .into());
    };
    c.verify_signature(Some(key))?;
    let size = replay.next_seq() - 1;
    if c.size != size || c.root_hash()? != replay.root() {
        let after = state.last.as_ref().map_or(0, |l| l.size);
        return Err(Error::Verify(format!(
            "checkpoint {} (size {}): root does not match the events; an event in {}..={} \
             differs from what was signed",
            c.number,
            c.size,
            after + 1,
            c.size
        ))
        .into());
    }
    state.next_number += 1;
    state.last_size = c.size;
    state.last = Some(c);
    Ok(())
}

fn verify_snapshot(conn: &Conn, expected: Option<&PublicKey>) -> Result<Verification> {
    let recorded = recorded_key(conn)?;
    if let (Some(e), Some(r)) = (expected, recorded.as_ref())
        && e != r
    {
        return Err(Error::Verify(
            "event 1: the log records another domain key than this domain's".into(),
        )
        .into());
    }
    let key = expected.or(recorded.as_ref());
    let mut replay = Replay::new(conn);
    let mut state = CheckpointState {
        next_number: 1,
        last_size: 0,
        last: None,
    };
    let mut rows = checkpoint::All::new(conn);
    let mut pending = rows.next()?;
    let drain = |pending: &mut Option<Checkpoint>,
                 rows: &mut checkpoint::All<'_>,
                 replay: &Replay<'_>,
                 state: &mut CheckpointState|
     -> Result<()> {
        while let Some(c) = pending.take_if(|c| c.size < replay.next_seq()) {
            check_checkpoint(c, state, replay, key)?;
            *pending = rows.next()?;
        }
        Ok(())
    };
    drain(&mut pending, &mut rows, &replay, &mut state)?;
    let mut from = 1;
    loop {
        let batch = read(conn, from, 10_000)?;
        if batch.is_empty() {
            break;
        }
        for e in &batch {
            replay.event(e)?;
            drain(&mut pending, &mut rows, &replay, &mut state)?;
        }
        from = replay.next_seq();
    }
    let events = replay.next_seq() - 1;
    if let Some(c) = pending {
        return Err(Error::Verify(format!(
            "event {} is missing: checkpoint {} covers {} events, but the log ends at event {events}",
            events + 1,
            c.number,
            c.size
        )).into());
    }
    // The head is also recorded outside the table so that truncating the tail is seen.
    let recorded_head: Option<String> = meta(conn, "audit_head")?;
    match recorded_head {
        None if events > 0 => {
            return Err(
                Error::Verify(format!("event {events}: no head recorded for the log")).into(),
            );
        }
        None => {}
        Some(recorded) => {
            let (seq, hash) = recorded.split_once(':').unwrap_or(("-1", ""));
            let seq: i64 = seq.parse().unwrap_or(-1);
            if seq > events {
                return Err(Error::Verify(format!(
                    "the log ends at event {events}, but event {seq} was recorded"
                ))
                .into());
            }
            if seq < events {
                return Err(Error::Verify(format!(
                    "event {}: added around the store (the recorded head is event {seq})",
                    seq + 1
                ))
                .into());
            }
            if hash != replay.prev {
                return Err(Error::Verify(format!("event {seq}: head does not match")).into());
            }
        }
    }
    let recorded_cp: Option<String> = meta(conn, "audit_checkpoint")?;
    match (&recorded_cp, &state.last) {
        (None, None) => {}
        (Some(r), Some(c)) if *r == checkpoint::meta_value(c) => {}
        (Some(r), last) => {
            let number: i64 = r
                .split(':')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(-1);
            let last_number = last.as_ref().map_or(0, |c| c.number);
            return Err(Error::Verify(if number > last_number {
                format!("checkpoint {number} was recorded but is missing")
            } else {
                format!("checkpoint {last_number}: not the last checkpoint recorded")
            })
            .into());
        }
        (None, Some(c)) => {
            return Err(Error::Verify(format!(
                "checkpoint {}: not recorded as the last checkpoint",
                c.number
            ))
            .into());
        }
    }
    let nodes: i64 = conn.query_row("SELECT COUNT(*) FROM audit_nodes", args![], |r| r.get(0))?;
    let expected_nodes = tree::node_count(events as u64) as i64;
    if nodes != expected_nodes {
        return Err(Error::Verify(format!(
            "the audit tree holds {nodes} nodes, but a log of {events} events has {expected_nodes}"
        ))
        .into());
    }
    Ok(Verification {
        events,
        head: replay.prev.clone(),
        root: merkle::to_hex(&replay.root()),
        checkpoints: state.next_number - 1,
        last_checkpoint: state.last,
    })
}

fn meta(conn: &Conn, key: &str) -> Result<Option<String>> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", args![key], |r| {
        r.get(0)
    })
    .optional()
}

/// The domain's audit retention in years (at least [`MIN_RETENTION_YEARS`]).
pub fn retention_years(conn: &Conn) -> Result<i64> {
    Ok(meta(conn, "audit_retention_years")?
        .and_then(|v| v.parse().ok())
        .unwrap_or(MIN_RETENTION_YEARS)
        .max(MIN_RETENTION_YEARS))
}

/// Sets the audit retention, recorded. Anything under [`MIN_RETENTION_YEARS`] is refused
/// here and by the store (a trigger).
pub fn set_retention_years(conn: &Conn, actor: &str, years: i64) -> Result<i64> {
    if years < MIN_RETENTION_YEARS {
        return Err(Error::Forbidden(format!(
            "audit retention is at least {MIN_RETENTION_YEARS} years; {years} cannot be set"
        ))
        .into());
    }
    if conn.idle() {
        in_write_tx(conn, || set_retention_in_tx(conn, actor, years))
    } else {
        set_retention_in_tx(conn, actor, years)
    }
}

fn set_retention_in_tx(conn: &Conn, actor: &str, years: i64) -> Result<i64> {
    let previous = retention_years(conn)?;
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('audit_retention_years', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        args![years.to_string()],
    )?;
    append(
        conn,
        actor,
        EventKind::AuditRetentionSet,
        &Subject::Audit,
        json!({"years": years, "previous": previous}),
    )?;
    Ok(years)
}

/// Where a job's and an output's history is in the log: the events about the job or the
/// output, and those whose details name the job (its queries), as `(seq, action)`.
pub fn positions(conn: &Conn, job_id: &str, output_id: &str) -> Result<Vec<(i64, String)>> {
    // The details are JSON text in both stores; each reads a field its own way.
    let job_of = if conn.is_postgres() {
        "details::jsonb ->> 'job_id'"
    } else {
        "json_extract(details, '$.job_id')"
    };
    conn.rows(
        &format!(
            "SELECT seq, action FROM audit_events
             WHERE subject = ?1 OR subject = ?2 OR {job_of} = ?3
             ORDER BY seq"
        ),
        args![
            Subject::Job(job_id.to_string()).to_string(),
            Subject::Output(output_id.to_string()).to_string(),
            job_id
        ],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// Format name of the export's first line.
pub const EXPORT_FORMAT: &str = "sandbox-audit-export/1";

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ExportLine<'a> {
    Header {
        format: &'static str,
        from: i64,
        to: i64,
        /// The suite whose hash gives the leaf hashes and whose key signs the checkpoints.
        suite: Suite,
        public_key: Option<String>,
        retention_years: i64,
    },
    Event {
        #[serde(flatten)]
        event: &'a Event,
        leaf_hash: String,
    },
    Checkpoint(&'a Checkpoint),
}

/// What [`export`] wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExportSummary {
    /// First event exported.
    pub from: i64,
    /// Last event exported.
    pub to: i64,
    /// Events written.
    pub events: i64,
    /// Checkpoints written (those whose size lies in `from..=to`).
    pub checkpoints: i64,
}

/// Exports events `from..=to` (default: to the end) as JSON Lines: a header, each event
/// with its leaf hash, then the checkpoints whose size lies in the range. The export itself
/// is recorded first (`audit.exported`).
pub fn export(
    conn: &Conn,
    actor: &str,
    from: i64,
    to: Option<i64>,
    out: &mut dyn Write,
) -> Result<ExportSummary> {
    let from = from.max(1);
    let (to, _) = in_write_tx(conn, || {
        let size = log_size(conn)?;
        let to = to.unwrap_or(size).min(size);
        let seq = append(
            conn,
            actor,
            EventKind::AuditExported,
            &Subject::Audit,
            json!({"from": from, "to": to}),
        )?;
        Ok((to, seq))
    })?;
    in_snapshot(conn, || {
        let header = ExportLine::Header {
            format: EXPORT_FORMAT,
            from,
            to,
            suite: conn.keys().suite(),
            public_key: recorded_key(conn)?.map(|k| k.to_hex()),
            retention_years: retention_years(conn)?,
        };
        serde_json::to_writer(&mut *out, &header)?;
        out.write_all(b"\n")?;
        let mut events = 0;
        let mut next = from;
        while next <= to {
            let batch = read(conn, next, (to - next + 1).min(10_000))?;
            let Some(last) = batch.last() else {
                break;
            };
            next = last.seq + 1;
            for e in &batch {
                let line = ExportLine::Event {
                    event: e,
                    leaf_hash: merkle::to_hex(&e.leaf_hash(conn.keys().suite())?),
                };
                serde_json::to_writer(&mut *out, &line)?;
                out.write_all(b"\n")?;
                events += 1;
            }
        }
        let checkpoints = checkpoint::list(conn, from, to)?;
        for c in &checkpoints {
            serde_json::to_writer(&mut *out, &ExportLine::Checkpoint(c))?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        Ok(ExportSummary {
            from,
            to,
            events,
            checkpoints: checkpoints.len() as i64,
        })
    })
}

/// Builds the tree over a log written before it existed (migration 7).
pub(crate) fn build_tree(conn: &Conn) -> Result<()> {
    tree::build(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_bytes_are_the_documented_json() -> Result<()> {
        let e = Event {
            seq: 7,
            ts: "2026-01-01T00:00:00.000000Z".into(),
            actor: "ops-li".into(),
            action: "scenario.approved".into(),
            subject: "scenario:1".into(),
            details: json!({"z": 1, "a": [true, null]}),
            prev_hash: GENESIS.into(),
            hash: String::new(),
        };
        assert_eq!(
            String::from_utf8_lossy(&e.canonical_bytes()?),
            r#"{"seq":7,"ts":"2026-01-01T00:00:00.000000Z","actor":"ops-li","action":"scenario.approved","subject":"scenario:1","details":{"a":[true,null],"z":1}}"#
        );
        Ok(())
    }
}
