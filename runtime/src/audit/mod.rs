//! The audit log: every state change is an event, linked by hash to the one before.
//!
//! An event's hash is `SHA-256(prev_hash ‖ 0x0a ‖ canonical JSON of {seq, ts, actor,
//! action, subject, details})`, hex-encoded; the first event links to 64 zeros. The store
//! refuses UPDATE and DELETE on the table (triggers); [`verify`] recomputes the chain so
//! that a change made around the triggers (a dropped trigger, an edited file) is found.
//!
//! Events are written in the same transaction as the change they record: there is no
//! state change without its event, and no event without its change.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// The hash the first event links to.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One recorded event.
#[derive(Debug, Clone, PartialEq, Serialize)]
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

#[derive(Serialize)]
struct Canonical<'a> {
    seq: i64,
    ts: &'a str,
    actor: &'a str,
    action: &'a str,
    subject: &'a str,
    details: &'a Value,
}

fn event_hash(prev_hash: &str, c: &Canonical<'_>) -> Result<String> {
    // serde_json writes struct fields in declaration order and maps (from `Value`) in
    // key order, so the encoding is canonical.
    let body = serde_json::to_vec(c)?;
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(&body);
    Ok(hex::encode(h.finalize()))
}

/// Appends an event. Call it inside the transaction that makes the change it records.
pub fn append(
    conn: &Connection,
    actor: &str,
    action: &str,
    subject: &str,
    details: Value,
) -> Result<i64> {
    let last: Option<(i64, String)> = conn
        .query_row(
            "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (seq, prev_hash) = match last {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, GENESIS.to_string()),
    };
    let ts = crate::store::now();
    let hash = event_hash(
        &prev_hash,
        &Canonical {
            seq,
            ts: &ts,
            actor,
            action,
            subject,
            details: &details,
        },
    )?;
    conn.execute(
        "INSERT INTO audit_events (seq, ts, actor, action, subject, details, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
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
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('audit_head', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![format!("{seq}:{hash}")],
    )?;
    Ok(seq)
}

/// Reads events `from..` in order, at most `limit`.
pub fn read(conn: &Connection, from: i64, limit: i64) -> Result<Vec<Event>> {
    let mut stmt = conn.prepare(
        "SELECT seq, ts, actor, action, subject, details, prev_hash, hash
         FROM audit_events WHERE seq >= ?1 ORDER BY seq LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![from, limit], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, String>(6)?,
            r.get::<_, String>(7)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, ts, actor, action, subject, details, prev_hash, hash) = row?;
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

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verification {
    /// Events checked.
    pub events: i64,
    /// Hash of the last event (the head of the chain).
    pub head: String,
}

/// Recomputes the whole chain. Fails with the first event that does not match.
pub fn verify(conn: &Connection) -> Result<Verification> {
    let mut prev = GENESIS.to_string();
    let mut expected_seq = 1;
    let mut from = 1;
    loop {
        let batch = read(conn, from, 10_000)?;
        if batch.is_empty() {
            break;
        }
        for e in &batch {
            if e.seq != expected_seq {
                return Err(Error::Verify(format!(
                    "event {expected_seq} is missing (next stored event is {})",
                    e.seq
                )));
            }
            if e.prev_hash != prev {
                return Err(Error::Verify(format!(
                    "event {}: link to the previous event is broken",
                    e.seq
                )));
            }
            let hash = event_hash(
                &prev,
                &Canonical {
                    seq: e.seq,
                    ts: &e.ts,
                    actor: &e.actor,
                    action: &e.action,
                    subject: &e.subject,
                    details: &e.details,
                },
            )?;
            if hash != e.hash {
                return Err(Error::Verify(format!(
                    "event {} ({} by {}): content does not match its hash",
                    e.seq, e.action, e.actor
                )));
            }
            prev = hash;
            expected_seq += 1;
        }
        from = expected_seq;
    }
    // The head is also recorded outside the table so that truncating the tail is seen.
    let recorded: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'audit_head'", [], |r| {
            r.get(0)
        })
        .optional()?;
    let events = expected_seq - 1;
    if let Some(recorded) = recorded {
        let (seq, hash) = recorded.split_once(':').unwrap_or(("0", ""));
        let seq: i64 = seq.parse().unwrap_or(-1);
        if seq > events {
            return Err(Error::Verify(format!(
                "the log ends at event {events}, but event {seq} was recorded"
            )));
        }
        if seq == events && hash != prev {
            return Err(Error::Verify(format!("event {seq}: head does not match")));
        }
    }
    Ok(Verification { events, head: prev })
}
