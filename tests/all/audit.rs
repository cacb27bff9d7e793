//! The audit log: hash chain, RFC 6962 Merkle tree, signed checkpoints and proofs. Any
//! edit is found; proofs agree with an independent recomputation of the tree.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rusqlite::{Connection, params};
use sandbox_runtime::audit as domain_audit;
use sandbox_runtime::audit::{EventKind, Subject};
use sandbox_runtime::wasm::JobLimits;
use sandbox_runtime::{Error, keys, review};
use sandbox_store::audit::{self, Event, GENESIS, Hash, Verification, merkle};
use sandbox_store::{Conn, Layout};
use sandbox_tests::{DEVELOPER, Fixture, OPERATOR, SUPERVISOR};
use serde_json::json;

/// The suite of the RFC 6962 vectors and of the logs built here.
const S: sandbox_core::Suite = sandbox_core::Suite::Standard;

/// Leaf hashes of the standard suite as a source of tree nodes.
fn mem(leaves: &[Hash]) -> merkle::Leaves<'_> {
    merkle::Leaves { suite: S, leaves }
}

// ---------------------------------------------------------------------------------------
// An independent tree: SHA-256 from the runtime's plain `sha256_hex`, the rest by the
// definitions of RFC 6962 §2.1, recursively.

fn sha256(bytes: &[u8]) -> Hash {
    unhex(&sandbox_runtime::sha256_hex(bytes))
}

fn unhex(s: &str) -> Hash {
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

fn tohex(h: &Hash) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

fn leaf(data: &[u8]) -> Hash {
    sha256(&[&[0u8][..], data].concat())
}

fn node(l: &Hash, r: &Hash) -> Hash {
    sha256(&[&[1u8][..], l, r].concat())
}

fn k_of(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// MTH(D[n]).
fn mth(d: &[Hash]) -> Hash {
    match d.len() {
        0 => sha256(&[]),
        1 => d[0],
        n => {
            let k = k_of(n);
            node(&mth(&d[..k]), &mth(&d[k..]))
        }
    }
}

/// PATH(m, D[n]).
fn path(m: usize, d: &[Hash]) -> Vec<Hash> {
    if d.len() <= 1 {
        return vec![];
    }
    let k = k_of(d.len());
    if m < k {
        [path(m, &d[..k]), vec![mth(&d[k..])]].concat()
    } else {
        [path(m - k, &d[k..]), vec![mth(&d[..k])]].concat()
    }
}

/// SUBPROOF(m, D[n], b).
fn subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
    let n = d.len();
    if m == n {
        return if b { vec![] } else { vec![mth(d)] };
    }
    let k = k_of(n);
    if m <= k {
        [subproof(m, &d[..k], b), vec![mth(&d[k..])]].concat()
    } else {
        [subproof(m - k, &d[k..], false), vec![mth(&d[..k])]].concat()
    }
}

/// PROOF(m, D[n]) (empty for m = 0).
fn proof(m: usize, d: &[Hash]) -> Vec<Hash> {
    if m == 0 {
        return vec![];
    }
    subproof(m, d, true)
}

// ---------------------------------------------------------------------------------------
// RFC 6962 test vectors (as published with the Certificate Transparency and
// transparency-dev Merkle tree implementations).

const VECTOR_LEAVES: [&[u8]; 8] = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
];

const VECTOR_ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// (leaf index, tree size, path).
const VECTOR_INCLUSION: [(u64, u64, &[&str]); 4] = [
    (
        0,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        1,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

/// (first size, second size, path).
const VECTOR_CONSISTENCY: [(u64, u64, &[&str]); 4] = [
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

#[test]
fn the_tree_matches_the_rfc_6962_test_vectors() {
    let leaves: Vec<Hash> = VECTOR_LEAVES
        .iter()
        .map(|l| merkle::leaf_hash(S, l))
        .collect();
    for (n, want) in VECTOR_ROOTS.iter().enumerate() {
        assert_eq!(tohex(&merkle::root(S, &leaves[..n])), *want, "size {n}");
        assert_eq!(tohex(&mth(&leaves[..n])), *want, "size {n} (reference)");
        let mut f = merkle::Frontier::new(S);
        for l in &leaves[..n] {
            f.push(*l);
        }
        assert_eq!(tohex(&f.root()), *want, "size {n} (compact range)");
    }
    for (index, size, want) in VECTOR_INCLUSION {
        let got = merkle::inclusion_path(&mut mem(&leaves[..size as usize]), index, size).unwrap();
        let want: Vec<Hash> = want.iter().map(|h| unhex(h)).collect();
        assert_eq!(got, want, "inclusion of {index} in {size}");
        let root = unhex(VECTOR_ROOTS[size as usize]);
        merkle::verify_inclusion(S, &leaves[index as usize], index, size, &want, &root).unwrap();
    }
    for (first, second, want) in VECTOR_CONSISTENCY {
        let got =
            merkle::consistency_path(&mut mem(&leaves[..second as usize]), first, second).unwrap();
        let want: Vec<Hash> = want.iter().map(|h| unhex(h)).collect();
        assert_eq!(got, want, "consistency of {first} and {second}");
        let (r1, r2) = (
            unhex(VECTOR_ROOTS[first as usize]),
            unhex(VECTOR_ROOTS[second as usize]),
        );
        merkle::verify_consistency(S, first, second, &r1, &r2, &want).unwrap();
        assert!(merkle::verify_consistency(S, first, second, &r2, &r1, &want).is_err());
        assert!(merkle::verify_consistency(S, first, second, &r1, &r2, &[]).is_err());
        assert!(merkle::verify_consistency(S, first, second, &r1, &r2, &want[1..]).is_err());
    }
    // Trivial cases.
    let r = unhex(VECTOR_ROOTS[3]);
    merkle::verify_consistency(S, 0, 3, &r, &r, &[]).unwrap();
    merkle::verify_consistency(S, 3, 3, &r, &r, &[]).unwrap();
    assert!(merkle::verify_consistency(S, 3, 3, &r, &unhex(VECTOR_ROOTS[2]), &[]).is_err());
    assert!(merkle::verify_consistency(S, 3, 2, &r, &r, &[]).is_err());
    assert!(merkle::verify_inclusion(S, &leaves[0], 1, 1, &[], &leaves[0]).is_err());
}

// ---------------------------------------------------------------------------------------
// Logs built straight on a store (no query engine): event 1 records the domain key, as
// `Domain::init` does; checkpoints where the plan says.

struct Log {
    _dir: tempfile::TempDir,
    layout: Layout,
    /// The store's connection, for the functions under test.
    conn: Conn,
    /// The attacker's: the same file, with plain SQL.
    db: Connection,
}

// The store's functions, failing with the domain error the tests match on.

fn verify(conn: &Conn) -> Result<Verification, Error> {
    Ok(audit::verify(conn)?)
}

fn checkpoint(conn: &Conn) -> Result<audit::Checkpoint, Error> {
    Ok(audit::checkpoint(conn)?)
}

fn checkpoint_if_grown(conn: &Conn) -> Result<Option<audit::Checkpoint>, Error> {
    Ok(audit::checkpoint_if_grown(conn)?)
}

fn prove_inclusion(
    conn: &Conn,
    seq: i64,
    size: Option<i64>,
) -> Result<audit::InclusionProof, Error> {
    Ok(audit::prove_inclusion(conn, seq, size)?)
}

/// A log of `events` events after `domain.init`, with a checkpoint after each size in
/// `checkpoints` (sizes counted with the init event).
fn build_log(events: usize, checkpoints: &[usize]) -> Log {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::new(dir.path().join("d"));
    std::fs::create_dir_all(layout.root()).unwrap();
    let master =
        sandbox_store::master::LocalKey::from_bytes(sandbox_core::Suite::Standard, &[3u8; 32])
            .unwrap();
    keys::create(&layout, &master).unwrap();
    let mut conn = sandbox_store::create(&layout, std::sync::Arc::new(master)).unwrap();
    let tx = conn.write().unwrap();
    let public = keys::public_key(&layout).unwrap().to_hex();
    audit::append(
        &tx,
        "system",
        EventKind::DomainInit,
        &Subject::Domain,
        json!({"public_key": public}),
    )
    .unwrap();
    let actors = ["ops-li", "sup-chen", "dev-zhao", "psb-wang"];
    let actions = [
        EventKind::QueryCharged,
        EventKind::JobStarted,
        EventKind::OutputOperatorApprove,
        EventKind::ScenarioApproved,
    ];
    for i in 0..=events {
        if checkpoints.contains(&(i + 1)) {
            audit::checkpoint(&tx).unwrap();
        }
        if i < events {
            audit::append(
                &tx,
                actors[i % actors.len()],
                actions[(i / 2) % actions.len()],
                &Subject::Job((i / 3).to_string()),
                json!({"i": i, "epsilon": 0.1 * i as f64, "sql": "SELECT COUNT(*) FROM t"}),
            )
            .unwrap();
        }
    }
    tx.commit().unwrap();
    let db = sandbox_tests::raw_keyed(&layout.db(), conn.keys());
    Log {
        _dir: dir,
        layout,
        conn,
        db,
    }
}

fn drop_triggers(conn: &Connection) {
    conn.execute_batch(
        "DROP TRIGGER audit_events_no_update;
         DROP TRIGGER audit_events_no_delete;
         DROP TRIGGER audit_nodes_no_update;
         DROP TRIGGER audit_nodes_no_delete;
         DROP TRIGGER audit_checkpoints_no_update;
         DROP TRIGGER audit_checkpoints_no_delete;",
    )
    .unwrap();
}

/// The events' editable columns, in order.
type Row = (String, String, String, String, String);

fn rows(conn: &Connection) -> Vec<Row> {
    conn.prepare("SELECT ts, actor, action, subject, details FROM audit_events ORDER BY seq")
        .unwrap()
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// What an attacker with the file and the code (but not the key) can do after editing
/// events: renumber them and recompute the chain, every tree node and the recorded head.
fn rewrite_consistently(conn: &Connection, rows: &[Row]) {
    conn.execute_batch("DELETE FROM audit_events; DELETE FROM audit_nodes;")
        .unwrap();
    let mut prev = GENESIS.to_string();
    let mut leaves = Vec::new();
    for (i, (ts, actor, action, subject, details)) in rows.iter().enumerate() {
        let mut e = Event {
            seq: i as i64 + 1,
            ts: ts.clone(),
            actor: actor.clone(),
            action: action.clone(),
            subject: subject.clone(),
            details: serde_json::from_str(details).unwrap(),
            prev_hash: prev.clone(),
            hash: String::new(),
        };
        let body = e.canonical_bytes().unwrap();
        e.hash = sandbox_runtime::sha256_hex(&[prev.as_bytes(), b"\n", &body].concat());
        conn.execute(
            "INSERT INTO audit_events (seq, ts, actor, action, subject, details, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                e.seq,
                e.ts,
                e.actor,
                e.action,
                e.subject,
                details,
                e.prev_hash,
                e.hash
            ],
        )
        .unwrap();
        leaves.push(leaf(&body));
        prev = e.hash;
    }
    let n = leaves.len();
    let mut level = 0;
    while (1usize << level) <= n {
        let w = 1usize << level;
        for idx in 0..n / w {
            conn.execute(
                "INSERT INTO audit_nodes (level, idx, hash) VALUES (?1, ?2, ?3)",
                params![
                    level,
                    idx as i64,
                    mth(&leaves[idx * w..(idx + 1) * w]).to_vec()
                ],
            )
            .unwrap();
        }
        level += 1;
    }
    conn.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'audit_head'",
        [format!("{n}:{prev}")],
    )
    .unwrap();
}

/// The events' leaf hashes, recomputed by the test.
fn leaves_of(conn: &Conn) -> Vec<Hash> {
    audit::read(conn, 1, i64::MAX)
        .unwrap()
        .iter()
        .map(|e| leaf(&e.canonical_bytes().unwrap()))
        .collect()
}

/// Whether an error message names `what` number `n` (`event 3`, not `event 31`).
fn names(message: &str, what: &str, n: usize) -> bool {
    let needle = format!("{what} {n}");
    message.match_indices(&needle).any(|(i, _)| {
        !message[i + needle.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

#[derive(Debug, Clone)]
enum EventEdit {
    /// Change column `field` of event `seq`.
    Change {
        seq: usize,
        field: usize,
    },
    Delete {
        seq: usize,
    },
    /// A new event at position `at`; the later ones move up by one.
    Insert {
        at: usize,
    },
    /// Exchange the contents of two events.
    Swap {
        a: usize,
        b: usize,
    },
}

impl EventEdit {
    /// The first event it changes.
    fn first(&self) -> usize {
        match *self {
            EventEdit::Change { seq, .. } | EventEdit::Delete { seq } => seq,
            EventEdit::Insert { at } => at,
            EventEdit::Swap { a, b } => a.min(b),
        }
    }

    fn apply(&self, rows: &mut Vec<Row>) {
        match *self {
            EventEdit::Change { seq, field } => {
                let r = &mut rows[seq - 1];
                match field {
                    0 => r.0.push('9'),
                    1 => r.1.push('x'),
                    2 => r.2 = "principal.added".into(),
                    3 => r.3.push('0'),
                    _ => r.4 = r#"{"role":"supervisor"}"#.into(),
                }
            }
            EventEdit::Delete { seq } => {
                rows.remove(seq - 1);
            }
            EventEdit::Insert { at } => rows.insert(
                at - 1,
                (
                    "2026-01-01T00:00:00.000000Z".into(),
                    "ops-li".into(),
                    "product.released".into(),
                    "product:forged".into(),
                    "{}".into(),
                ),
            ),
            EventEdit::Swap { a, b } => rows.swap(a - 1, b - 1),
        }
    }
}

/// Edits the rows in place, as an attacker who does not recompute anything would.
fn edit_naively(conn: &Connection, edit: &EventEdit, rows: &[Row]) {
    match *edit {
        EventEdit::Change { seq, .. } => {
            let (ts, actor, action, subject, details) = &rows[seq - 1];
            conn.execute(
                "UPDATE audit_events SET ts = ?2, actor = ?3, action = ?4, subject = ?5,
                 details = ?6 WHERE seq = ?1",
                params![seq as i64, ts, actor, action, subject, details],
            )
            .unwrap();
        }
        EventEdit::Delete { seq } => {
            conn.execute("DELETE FROM audit_events WHERE seq = ?1", [seq as i64])
                .unwrap();
        }
        EventEdit::Insert { at } => {
            conn.execute_batch(&format!(
                "UPDATE audit_events SET seq = -(seq + 1) WHERE seq >= {at};
                 UPDATE audit_events SET seq = -seq WHERE seq < 0;"
            ))
            .unwrap();
            let (ts, actor, action, subject, details) = &rows[at - 1];
            conn.execute(
                "INSERT INTO audit_events (seq, ts, actor, action, subject, details, prev_hash, hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
                params![at as i64, ts, actor, action, subject, details, GENESIS],
            )
            .unwrap();
        }
        EventEdit::Swap { a, b } => {
            conn.execute_batch(&format!(
                "UPDATE audit_events SET seq = -1 WHERE seq = {a};
                 UPDATE audit_events SET seq = {a} WHERE seq = {b};
                 UPDATE audit_events SET seq = {b} WHERE seq = -1;"
            ))
            .unwrap();
        }
    }
}

fn event_edit(n: usize) -> impl Strategy<Value = EventEdit> {
    prop_oneof![
        (1..=n, 0..5usize).prop_map(|(seq, field)| EventEdit::Change { seq, field }),
        (1..=n).prop_map(|seq| EventEdit::Delete { seq }),
        (1..=n).prop_map(|at| EventEdit::Insert { at }),
        (1..=n, 1..=n)
            .prop_filter("two events", |(a, b)| a != b)
            .prop_map(|(a, b)| EventEdit::Swap { a, b }),
    ]
}

/// A log plan: events after init, checkpoint sizes (at least one), and an edit of events
/// the last checkpoint covers.
fn event_case() -> impl Strategy<Value = (usize, Vec<usize>, EventEdit)> {
    (2..24usize).prop_flat_map(|events| {
        let n = events + 1;
        (
            Just(events),
            proptest::collection::vec(1..=n, 1..4),
            // Edits within the checkpointed prefix, whatever its size: chosen over all n
            // and clamped below.
            event_edit(n),
        )
    })
}

fn clamp_edit(edit: EventEdit, covered: usize) -> EventEdit {
    let c = |x: usize| (x - 1) % covered + 1;
    match edit {
        EventEdit::Change { seq, field } => EventEdit::Change { seq: c(seq), field },
        EventEdit::Delete { seq } => EventEdit::Delete { seq: c(seq) },
        EventEdit::Insert { at } => EventEdit::Insert { at: c(at) },
        EventEdit::Swap { a, b } => {
            let (a, b) = (c(a), c(b));
            if a == b {
                EventEdit::Change { seq: a, field: 4 }
            } else {
                EventEdit::Swap { a, b }
            }
        }
    }
}

#[test]
fn any_change_deletion_insertion_or_reordering_of_events_is_found() {
    let mut runner = TestRunner::new(Config {
        cases: 48,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&event_case(), |(events, checkpoints, edit)| {
            let n = events + 1;
            let covered = *checkpoints.iter().max().unwrap_or(&n);
            let edit = clamp_edit(edit, covered);

            // An attacker who edits rows only: verify names the first event changed.
            let log = build_log(events, &checkpoints);
            let v = verify(&log.conn).unwrap();
            prop_assert_eq!(v.events, n as i64);
            prop_assert_eq!(v.root.clone(), tohex(&mth(&leaves_of(&log.conn))));
            drop_triggers(&log.db);
            let mut edited = rows(&log.db);
            edit.apply(&mut edited);
            edit_naively(&log.db, &edit, &edited);
            match verify(&log.conn) {
                Err(Error::Verify(m)) => {
                    prop_assert!(names(&m, "event", edit.first()), "{edit:?}: {m}")
                }
                other => prop_assert!(false, "{edit:?} not found: {other:?}"),
            }

            // An attacker who also recomputes the chain, the tree and the head: the
            // signed checkpoints find it.
            let log = build_log(events, &checkpoints);
            drop_triggers(&log.db);
            let mut edited = rows(&log.db);
            edit.apply(&mut edited);
            rewrite_consistently(&log.db, &edited);
            match verify(&log.conn) {
                Err(Error::Verify(m)) => prop_assert!(m.contains("checkpoint"), "{edit:?}: {m}"),
                other => prop_assert!(false, "{edit:?} not found: {other:?}"),
            }
            Ok(())
        })
        .unwrap();
}

#[derive(Debug, Clone)]
enum CheckpointEdit {
    Root(usize),
    Size(usize),
    Ts(usize),
    Signature(usize),
    Delete(usize),
    /// A copy of a checkpoint appended as the newest (with `meta` updated to it).
    Replay(usize),
    Swap(usize, usize),
    /// Truncate the events after the last checkpoint's start, recomputing the head.
    TruncateBelow(usize),
}

fn checkpoint_case() -> impl Strategy<Value = (usize, Vec<usize>, CheckpointEdit)> {
    (
        2..20usize,
        proptest::collection::vec(1..=21usize, 2..5),
        prop_oneof![
            (0..8usize).prop_map(CheckpointEdit::Root),
            (0..8usize).prop_map(CheckpointEdit::Size),
            (0..8usize).prop_map(CheckpointEdit::Ts),
            (0..8usize).prop_map(CheckpointEdit::Signature),
            (0..8usize).prop_map(CheckpointEdit::Delete),
            (0..8usize).prop_map(CheckpointEdit::Replay),
            (0..8usize, 0..8usize).prop_map(|(a, b)| CheckpointEdit::Swap(a, b)),
            (0..8usize).prop_map(CheckpointEdit::TruncateBelow),
        ],
    )
}

#[test]
fn any_change_deletion_insertion_or_reordering_of_checkpoints_is_found() {
    let mut runner = TestRunner::new(Config {
        cases: 48,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&checkpoint_case(), |(events, sizes, edit)| {
            let n = events + 1;
            let sizes: Vec<usize> = sizes.iter().map(|s| (s - 1) % n + 1).collect();
            let log = build_log(events, &sizes);
            let v = verify(&log.conn).unwrap();
            let count = v.checkpoints as usize;
            prop_assert!(count >= 1);
            drop_triggers(&log.db);
            let nth = |i: usize| (i % count + 1) as i64;
            let conn = &log.db;
            match edit {
                CheckpointEdit::Root(i) => conn.execute(
                    "UPDATE audit_checkpoints SET root = ?2 WHERE number = ?1",
                    params![nth(i), tohex(&sha256(b"another root"))],
                ),
                CheckpointEdit::Size(i) => conn.execute(
                    "UPDATE audit_checkpoints SET size = size - 1 WHERE number = ?1",
                    params![nth(i)],
                ),
                CheckpointEdit::Ts(i) => conn.execute(
                    "UPDATE audit_checkpoints SET ts = '2020-01-01T00:00:00.000000Z' WHERE number = ?1",
                    params![nth(i)],
                ),
                CheckpointEdit::Signature(i) => conn.execute(
                    "UPDATE audit_checkpoints
                     SET signature = (CASE substr(signature, 1, 1) WHEN 'a' THEN 'b' ELSE 'a' END) || substr(signature, 2)
                     WHERE number = ?1",
                    params![nth(i)],
                ),
                CheckpointEdit::Delete(i) => {
                    conn.execute("DELETE FROM audit_checkpoints WHERE number = ?1", params![nth(i)])
                }
                CheckpointEdit::Replay(i) => {
                    conn.execute(
                        "INSERT INTO audit_checkpoints (number, size, root, ts, public_key, signature)
                         SELECT ?2, size, root, ts, public_key, signature FROM audit_checkpoints
                         WHERE number = ?1",
                        params![nth(i), count as i64 + 1],
                    )
                    .unwrap();
                    conn.execute(
                        "UPDATE meta SET value = (SELECT number || ':' || size || ':' || root
                         FROM audit_checkpoints WHERE number = ?1) WHERE key = 'audit_checkpoint'",
                        params![count as i64 + 1],
                    )
                }
                CheckpointEdit::Swap(a, b) => {
                    let (a, b) = (nth(a), nth(b));
                    let b = if a == b { a % count as i64 + 1 } else { b };
                    if a == b {
                        // One checkpoint only: move it instead.
                        conn.execute("UPDATE audit_checkpoints SET number = 2 WHERE number = 1", [])
                    } else {
                        conn.execute_batch(&format!(
                            "UPDATE audit_checkpoints SET number = 1000000 WHERE number = {a};
                             UPDATE audit_checkpoints SET number = {a} WHERE number = {b};
                             UPDATE audit_checkpoints SET number = {b} WHERE number = 1000000;"
                        ))
                        .map(|()| 0)
                    }
                }
                CheckpointEdit::TruncateBelow(i) => {
                    // Drop the tail the checkpoint covers, recomputing what can be.
                    let size: i64 = conn
                        .query_row(
                            "SELECT size FROM audit_checkpoints WHERE number = ?1",
                            params![nth(i)],
                            |r| r.get(0),
                        )
                        .unwrap();
                    let mut kept = rows(conn);
                    kept.truncate(size as usize - 1);
                    rewrite_consistently(conn, &kept);
                    Ok(0)
                }
            }
            .unwrap();
            match verify(&log.conn) {
                Err(Error::Verify(m)) => prop_assert!(m.contains("checkpoint"), "{edit:?}: {m}"),
                other => prop_assert!(false, "{edit:?} not found: {other:?}"),
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn proofs_from_the_store_match_an_independent_recomputation() {
    // One log of 70 events holds every tree of 1..=70 leaves.
    let log = build_log(69, &[70]);
    let leaves = leaves_of(&log.conn);
    assert_eq!(leaves.len(), 70);
    let mut runner = TestRunner::new(Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    });
    let case = (1..=70usize)
        .prop_flat_map(|n| (0..=n, 0..n, Just(n), any::<prop::sample::Index>()))
        .prop_map(|(m, i, n, flip)| (m, i, n, flip));
    runner
        .run(&case, |(m, i, n, flip)| {
            let d = &leaves[..n];
            let root = mth(d);
            prop_assert_eq!(audit::root_at(&log.conn, n as i64).unwrap(), root);

            let got = audit::inclusion_path(&log.conn, i as i64 + 1, n as i64).unwrap();
            prop_assert_eq!(&got, &path(i, d));
            merkle::verify_inclusion(S, &d[i], i as u64, n as u64, &got, &root).unwrap();
            if !got.is_empty() {
                let mut bad = got.clone();
                bad[flip.index(got.len())][flip.index(32)] ^= 0x20;
                prop_assert!(
                    merkle::verify_inclusion(S, &d[i], i as u64, n as u64, &bad, &root).is_err()
                );
            }
            prop_assert!(
                merkle::verify_inclusion(S, &sha256(b"x"), i as u64, n as u64, &got, &root)
                    .is_err()
            );

            let got = audit::consistency_path(&log.conn, m as i64, n as i64).unwrap();
            prop_assert_eq!(&got, &proof(m, d));
            let first = mth(&d[..m]);
            merkle::verify_consistency(S, m as u64, n as u64, &first, &root, &got).unwrap();
            if !got.is_empty() {
                let mut bad = got.clone();
                bad[flip.index(got.len())][flip.index(32)] ^= 0x01;
                prop_assert!(
                    merkle::verify_consistency(S, m as u64, n as u64, &first, &root, &bad).is_err()
                );
            }
            if 0 < m && m < n {
                prop_assert!(
                    merkle::verify_consistency(S, m as u64, n as u64, &sha256(b"x"), &root, &got)
                        .is_err()
                );
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn proofs_against_signed_checkpoints_verify_from_their_json_alone() {
    let log = build_log(30, &[5, 13, 31]);
    let key = keys::public_key(&log.layout).unwrap();
    let inclusion = prove_inclusion(&log.conn, 9, Some(13)).unwrap();
    assert_eq!(inclusion.checkpoint.size, 13);
    assert_eq!(inclusion.event.seq, 9);
    let text = serde_json::to_string(&inclusion).unwrap();
    let check = audit::verify_proof(&text, Some(&key)).unwrap();
    assert_eq!(check.kind, "inclusion");
    // Newest checkpoint by default; an event after the checkpoint is not in it.
    assert_eq!(prove_inclusion(&log.conn, 31, None).unwrap().tree_size, 31);
    assert!(matches!(
        prove_inclusion(&log.conn, 14, Some(13)),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        prove_inclusion(&log.conn, 3, Some(7)),
        Err(Error::NotFound(_))
    ));

    let consistency = audit::prove_consistency(&log.conn, 5, Some(31)).unwrap();
    let text = serde_json::to_string(&consistency).unwrap();
    assert_eq!(
        audit::verify_proof(&text, Some(&key)).unwrap().kind,
        "consistency"
    );

    // Another domain's key, an edited event, an edited path, an edited checkpoint: refused.
    let other = {
        let dir = tempfile::tempdir().unwrap();
        let l = Layout::new(dir.path());
        let master =
            sandbox_store::master::LocalKey::from_bytes(sandbox_core::Suite::Standard, &[4u8; 32])
                .unwrap();
        keys::create(&l, &master).unwrap();
        keys::public_key(&l).unwrap()
    };
    let text = serde_json::to_string(&inclusion).unwrap();
    assert!(audit::verify_proof(&text, Some(&other)).is_err());
    let mut p = inclusion.clone();
    p.event.actor = "nobody".into();
    assert!(p.verify(Some(&key)).is_err());
    let mut p = inclusion.clone();
    p.path[0] = tohex(&sha256(b"x"));
    assert!(p.verify(Some(&key)).is_err());
    let mut p = inclusion.clone();
    p.checkpoint.size += 1;
    p.tree_size += 1;
    assert!(p.verify(Some(&key)).is_err());
    let mut p = consistency.clone();
    p.first.root = p.second.root.clone();
    assert!(p.verify(Some(&key)).is_err());
    assert!(audit::verify_proof("{\"format\": \"other\"}", None).is_err());
}

#[test]
fn checkpoints_refuse_to_sign_an_edited_log() {
    let log = build_log(10, &[6]);
    let original = mth(&leaves_of(&log.conn));
    drop_triggers(&log.db);
    // An event before the last checkpoint, changed around the triggers, is left to
    // `verify` (the incremental check starts at the last checkpoint), but the new
    // checkpoint's root comes from the signed range, not from the edited event.
    log.db
        .execute("UPDATE audit_events SET actor = 'nobody' WHERE seq = 3", [])
        .unwrap();
    let c = checkpoint(&log.conn).unwrap();
    assert_eq!(c.size, 11);
    assert_eq!(c.root, tohex(&original));
    assert_ne!(c.root, tohex(&mth(&leaves_of(&log.conn))));
    assert!(matches!(verify(&log.conn), Err(Error::Verify(m)) if names(&m, "event", 3)));
    // An event after the last checkpoint, changed: no checkpoint is signed over it.
    audit::append(
        &log.conn,
        "system",
        EventKind::UsageSettings,
        &Subject::Domain,
        json!({}),
    )
    .unwrap();
    audit::append(
        &log.conn,
        "system",
        EventKind::UsageSettings,
        &Subject::Domain,
        json!({}),
    )
    .unwrap();
    log.db
        .execute(
            "UPDATE audit_events SET actor = 'nobody' WHERE seq = 12",
            [],
        )
        .unwrap();
    assert!(matches!(
        checkpoint(&log.conn),
        Err(Error::Verify(m)) if names(&m, "event", 12)
    ));
    assert!(matches!(
        checkpoint_if_grown(&log.conn),
        Err(Error::Verify(_))
    ));
}

#[test]
fn retention_is_at_least_three_years_and_events_are_never_deleted() {
    let (_dir, domain) = sandbox_tests::empty_domain();
    domain_audit::checkpoint_if_grown(&domain).unwrap();
    assert_eq!(domain_audit::retention_years(&domain).unwrap(), 3);
    for years in [0, 2, -5] {
        assert!(matches!(
            domain_audit::set_retention_years(&domain, OPERATOR, years),
            Err(Error::Forbidden(_))
        ));
    }
    assert!(matches!(
        domain_audit::set_retention_years(&domain, DEVELOPER, 5),
        Err(Error::Forbidden(_))
    ));
    assert_eq!(
        domain_audit::set_retention_years(&domain, SUPERVISOR, 5).unwrap(),
        5
    );
    assert_eq!(domain_audit::retention_years(&domain).unwrap(), 5);
    // Around the library too: the store refuses it.
    let conn = sandbox_tests::raw(&domain);
    assert!(
        conn.execute(
            "UPDATE meta SET value = '1' WHERE key = 'audit_retention_years'",
            []
        )
        .is_err()
    );
    let n = sandbox_tests::count(
        &conn,
        "SELECT COUNT(*) FROM audit_events WHERE action = 'audit.retention_set'",
    );
    assert_eq!(n, 1);
    for sql in [
        "DELETE FROM audit_events",
        "DELETE FROM audit_nodes",
        "DELETE FROM audit_checkpoints",
    ] {
        assert!(conn.execute(sql, []).is_err(), "{sql}");
    }
}

#[test]
fn export_writes_every_event_with_its_leaf_then_the_checkpoints() {
    let (_dir, domain) = sandbox_tests::empty_domain();
    domain_audit::checkpoint_if_grown(&domain).unwrap();
    let mut out = Vec::new();
    assert!(matches!(
        domain_audit::export(&domain, DEVELOPER, 1, None, &mut out),
        Err(Error::Forbidden(_))
    ));
    let summary = domain_audit::export(&domain, SUPERVISOR, 1, None, &mut out).unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["type"], "header");
    assert_eq!(lines[0]["suite"], "standard");
    let events: Vec<&serde_json::Value> = lines.iter().filter(|l| l["type"] == "event").collect();
    assert_eq!(events.len() as i64, summary.events);
    assert_eq!(summary.to, summary.events);
    // Each leaf hash is the leaf of the event's canonical JSON; the checkpoint's root is
    // the tree over them.
    let mut leaves = Vec::new();
    for e in &events {
        let mut fields = (*e).clone();
        fields.as_object_mut().unwrap().remove("type");
        let hash = fields.as_object_mut().unwrap().remove("leaf_hash").unwrap();
        let event: Event = serde_json::from_value(fields).unwrap();
        let l = leaf(&event.canonical_bytes().unwrap());
        assert_eq!(hash, tohex(&l));
        leaves.push(l);
    }
    let checkpoint = lines.iter().find(|l| l["type"] == "checkpoint").unwrap();
    assert_eq!(checkpoint["root"], tohex(&mth(&leaves)));
    // The export is itself recorded.
    assert!(
        domain_audit::log(&domain, SUPERVISOR, 1, 1000)
            .unwrap()
            .iter()
            .any(|e| e.action == "audit.exported" && e.actor == SUPERVISOR)
    );
}

fn released_product(f: &Fixture) -> std::path::PathBuf {
    let module = sandbox_tests::wat(
        r#"(module
        (import "sandbox" "emit" (func $emit (param i32 i32 i32 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (data (i32.const 0) "note")
        (data (i32.const 16) "Incomes rose.")
        (func (export "run") (result i32)
          (call $emit (i32.const 2) (i32.const 0) (i32.const 4) (i32.const 16) (i32.const 13))))"#,
    );
    let report = f.submit(&module, "{}", JobLimits::default()).unwrap();
    let out = report.outputs[0].id.clone();
    review::decide(&f.domain, OPERATOR, &out, review::Decision::Approve, None).unwrap();
    review::decide(&f.domain, SUPERVISOR, &out, review::Decision::Approve, None).unwrap();
    review::products(&f.domain, sandbox_tests::OPERATOR).unwrap()[0]
        .path
        .clone()
}

#[test]
fn a_release_records_a_signed_checkpoint_the_log_stays_consistent_with() {
    let f = Fixture::new();
    let dir = released_product(&f);
    let key = keys::public_key(f.domain.layout()).unwrap();
    let manifest = review::verify_product(&dir, Some(&key)).unwrap();
    let c = audit::verify_manifest_checkpoint(&manifest, &key)
        .unwrap()
        .unwrap();
    let conn = f.domain.conn().unwrap();
    // The release event itself is in the checkpoint written with it.
    let v = audit::verify_with_key(&conn, Some(&key)).unwrap();
    let last = v.last_checkpoint.unwrap();
    assert_eq!(last.size, v.events);
    assert!(last.number > c.number);
    // Anyone holding the manifest can be shown the log only grew since.
    let p = audit::prove_consistency(&conn, c.size, None).unwrap();
    assert_eq!(p.first.root, c.root);
    audit::verify_proof(&serde_json::to_string(&p).unwrap(), Some(&key)).unwrap();
    // A manifest whose checkpoint was edited no longer verifies (nor does its signature).
    let mut edited = manifest.clone();
    edited["audit"]["size"] = json!(c.size + 1);
    assert!(audit::verify_manifest_checkpoint(&edited, &key).is_err());
}

// ---------------------------------------------------------------------------------------
// The original chain tests, on a full domain.

#[test]
fn editing_one_audit_row_makes_verify_fail() {
    let f = Fixture::new();
    let conn = sandbox_tests::raw(&f.domain);
    let v = domain_audit::verify_custodian(&f.domain).unwrap();
    assert!(v.events >= 8, "{v:?}");
    // The store refuses ordinary edits...
    assert!(
        conn.execute("UPDATE audit_events SET actor = 'nobody' WHERE seq = 3", [])
            .is_err()
    );
    assert!(
        conn.execute("DELETE FROM audit_events WHERE seq = 3", [])
            .is_err()
    );
    // ...so an attacker with the file drops the trigger first. Verify still finds it.
    conn.drop_trigger("audit_events_no_update", "audit_events");
    conn.execute_batch("UPDATE audit_events SET actor = 'nobody' WHERE seq = 3;")
        .unwrap();
    match domain_audit::verify_custodian(&f.domain) {
        Err(Error::Verify(m)) => assert!(m.contains("event 3"), "{m}"),
        other => panic!("tampering not detected: {other:?}"),
    }
}

#[test]
fn deleting_or_truncating_events_is_found() {
    let f = Fixture::new();
    let conn = sandbox_tests::raw(&f.domain);
    conn.drop_trigger("audit_events_no_delete", "audit_events");
    conn.execute_batch("DELETE FROM audit_events WHERE seq = 2;")
        .unwrap();
    assert!(
        matches!(domain_audit::verify_custodian(&f.domain), Err(Error::Verify(m)) if m.contains("event 2"))
    );

    let f = Fixture::new();
    let conn = sandbox_tests::raw(&f.domain);
    let n = domain_audit::verify_custodian(&f.domain).unwrap().events;
    conn.drop_trigger("audit_events_no_delete", "audit_events");
    conn.execute("DELETE FROM audit_events WHERE seq = ?1", [n])
        .unwrap();
    assert!(matches!(
        domain_audit::verify_custodian(&f.domain),
        Err(Error::Verify(_))
    ));
}

#[test]
fn details_are_covered_by_the_hash() {
    let f = Fixture::new();
    let conn = sandbox_tests::raw(&f.domain);
    conn.drop_trigger("audit_events_no_update", "audit_events");
    conn.execute_batch(
        "UPDATE audit_events SET details = '{\"role\":\"supervisor\"}' WHERE action = 'principal.added' AND seq = (SELECT MIN(seq) FROM audit_events WHERE action = 'principal.added');",
    )
    .unwrap();
    assert!(matches!(
        domain_audit::verify_custodian(&f.domain),
        Err(Error::Verify(_))
    ));
}
