//! The audit tree in the store: table `audit_nodes` holds every perfect subtree's hash,
//! keyed by `(level, idx)` (level 0: the events' leaf hashes, leaf `seq − 1`). A log of n
//! events has 2n − popcount(n) nodes. Appending a leaf adds it and the nodes it completes
//! (one on average, log₂ n at most); any root or proof reads O(log n) of them.

use crate::db::{OptionalExt, args};

use super::merkle::{self, Frontier, Hash, Nodes};
use crate::{Conn, DomainError as Error, Result};

/// The stored node `(level, index)`, if any.
pub(crate) fn get(conn: &Conn, level: u32, index: u64) -> Result<Option<Hash>> {
    let bytes: Option<Vec<u8>> = conn
        .query_row(
            "SELECT hash FROM audit_nodes WHERE level = ?1 AND idx = ?2",
            args![level, index as i64],
            |r| r.get(0),
        )
        .optional()?;
    Ok(bytes
        .map(|b| {
            b.try_into().map_err(|_| {
                Error::Verify(format!(
                    "audit tree node ({level}, {index}) is not a 32-byte hash"
                ))
            })
        })
        .transpose()?)
}

fn put(conn: &Conn, level: u32, index: u64, hash: &Hash) -> Result<()> {
    conn.execute(
        "INSERT INTO audit_nodes (level, idx, hash) VALUES (?1, ?2, ?3)",
        args![level, index as i64, hash.as_slice()],
    )?;
    Ok(())
}

/// The stored tree as a [`Nodes`] source; a missing node is a verification failure.
pub(crate) struct StoreNodes<'c>(pub(crate) &'c Conn);

impl Nodes for StoreNodes<'_> {
    fn suite(&self) -> sandbox_core::Suite {
        self.0.keys().suite()
    }

    fn node(&mut self, level: u32, index: u64) -> sandbox_core::Result<Hash> {
        get(self.0, level, index)?.ok_or_else(|| {
            Error::Verify(format!(
                "audit tree node ({level}, {index}) is missing (leaves {}..{})",
                (index << level) + 1,
                (index + 1) << level
            ))
        })
    }
}

/// Adds leaf `index` and the perfect subtrees it completes. Call it in the transaction
/// that appends the event.
pub(crate) fn append_leaf(conn: &Conn, index: u64, leaf: Hash) -> Result<()> {
    put(conn, 0, index, &leaf)?;
    let (mut h, mut i, mut level) = (leaf, index, 0u32);
    let mut nodes = StoreNodes(conn);
    while i & 1 == 1 {
        let left = nodes.node(level, i - 1)?;
        h = merkle::node_hash(conn.keys().suite(), &left, &h);
        i >>= 1;
        level += 1;
        put(conn, level, i, &h)?;
    }
    Ok(())
}

/// The compact range of the first `size` leaves, read from the store.
pub(crate) fn frontier(conn: &Conn, size: u64) -> Result<Frontier> {
    let mut nodes = StoreNodes(conn);
    let hashes = Frontier::positions(size)
        .into_iter()
        .map(|(level, index)| nodes.node(level, index))
        .collect::<sandbox_core::Result<Vec<_>>>()?;
    Ok(Frontier::from_nodes(conn.keys().suite(), size, hashes)?)
}

/// How many nodes the tree of a log of `size` events holds.
pub(crate) fn node_count(size: u64) -> u64 {
    (2 * size).saturating_sub(u64::from(size.count_ones()))
}

/// Builds the tree over the events already stored (migration 7: logs written before the
/// tree existed). Runs in the migration's transaction.
pub(crate) fn build(conn: &Conn) -> Result<()> {
    let present: i64 = conn.query_row("SELECT COUNT(*) FROM audit_nodes", args![], |r| r.get(0))?;
    if present != 0 {
        return Ok(());
    }
    let suite = conn.keys().suite();
    let mut frontier = Frontier::new(suite);
    let mut from = 1;
    loop {
        let batch = super::read(conn, from, 10_000)?;
        let Some(last) = batch.last() else {
            break;
        };
        from = last.seq + 1;
        for e in &batch {
            let leaf = e.leaf_hash(suite)?;
            // Stored at its own position; a gap in the log stays a gap in the tree, for
            // `verify` to name.
            let index = (e.seq - 1) as u64;
            if index != frontier.size() {
                return Ok(());
            }
            put(conn, 0, index, &leaf)?;
            for (level, i, h) in frontier.push(leaf) {
                put(conn, level, i, &h)?;
            }
        }
    }
    Ok(())
}
