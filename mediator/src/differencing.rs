//! Threshold mode's differencing guard. A threshold answer is exact, so two released cells
//! whose rows come from almost the same units would, subtracted, describe the few units
//! between them. The guard keeps, for every released cell, each unit's keyed hash and the
//! keyed hash of what the unit contributed to the cell (the raw content of its rows there,
//! whatever statistics the query read), and suppresses a new cell whose units differ from
//! any earlier released cell's, over the same datasets, by more than zero and fewer than
//! `min_group_size` units. A unit counts as differing when it is in one cell and not the
//! other, or in both with different rows (a filter that drops one of a unit's rows is a
//! difference too).
//!
//! What it does not cover: combinations of three or more cells (a released cell minus two
//! others) are the hard case of query auditing, and an exact guard over them is
//! intractable; DP mode is the answer for analyses that need arbitrary combinations.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, StringArray, UInt64Array};
use arrow::datatypes::DataType;
use datafusion::common::DataFusionError;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use siphasher::sip::SipHasher13;

use crate::{DomainError as Error, Result};

/// The key of the guard's hashes, derived from the domain's secret: the same in every
/// process and after restarts, so cells released before compare with cells released now.
#[derive(Clone, Copy)]
pub struct GuardKey([u8; 16]);

impl GuardKey {
    /// Derives the guard's key from the domain's secret.
    pub fn derive(secret: &sandbox_core::Secret) -> GuardKey {
        GuardKey(secret.derive_16("sandbox differencing guard v1"))
    }

    fn hasher(&self, domain: u8) -> SipHasher13 {
        let mut h = SipHasher13::new_with_key(&self.0);
        h.write_u8(domain);
        h
    }

    /// The hash of a unit's identity (the privacy unit's value as text, or a row's content
    /// under row privacy).
    pub fn unit(&self, identity: &str) -> u64 {
        let mut h = self.hasher(0);
        h.write(identity.as_bytes());
        h.finish()
    }

    /// The hash of one row in a unit's contribution, from the hash of its content (a
    /// second keyed hash, so that a unit's contribution is not the sum of its rows' own
    /// identities under row privacy).
    pub fn row(&self, content: u64) -> u64 {
        let mut h = self.hasher(1);
        h.write_u64(content);
        h.finish()
    }
}

impl GuardKey {
    /// The key itself (tests look for it where it must not be).
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> [u8; 16] {
        self.0
    }

    /// Which key this is (a hash of it, never the key): two guard functions are one only
    /// under the same key.
    fn fingerprint(&self) -> u64 {
        self.hasher(2).finish()
    }
}

/// The guard's hashes as functions of a plan, so that they are computed where the rows
/// are (a cluster's executors) and only per-unit hashes travel: [`GuardHash::Unit`] is
/// [`GuardKey::unit`] of text, [`GuardHash::Row`] is [`GuardKey::row`] of a row's hash. An
/// executor rebuilds them with the key derived from its own secret; the scheduler, without
/// one, cannot evaluate them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardHash {
    /// The hash of a unit's (or a row's) identity, text to `UInt64`.
    Unit,
    /// The hash of one row in a unit's contribution, `UInt64` to `UInt64`.
    Row,
}

impl GuardHash {
    /// The function under `key` (without one it fails when evaluated).
    pub fn udf(self, key: Option<GuardKey>) -> ScalarUDF {
        let input = match self {
            GuardHash::Unit => DataType::Utf8,
            GuardHash::Row => DataType::UInt64,
        };
        ScalarUDF::new_from_impl(GuardHashUdf {
            hash: self,
            key,
            signature: Signature::exact(vec![input], Volatility::Immutable),
        })
    }

    fn name(self) -> &'static str {
        match self {
            GuardHash::Unit => "sandbox_guard_unit",
            GuardHash::Row => "sandbox_guard_row",
        }
    }
}

/// A [`GuardHash`] as DataFusion calls it.
pub struct GuardHashUdf {
    hash: GuardHash,
    key: Option<GuardKey>,
    signature: Signature,
}

impl GuardHashUdf {
    /// Which hash it computes.
    pub fn hash(&self) -> GuardHash {
        self.hash
    }
}

impl std::fmt::Debug for GuardHashUdf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("GuardHashUdf")
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

impl PartialEq for GuardHashUdf {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash
            && self.key.map(|k| k.fingerprint()) == other.key.map(|k| k.fingerprint())
    }
}

impl Eq for GuardHashUdf {}

impl std::hash::Hash for GuardHashUdf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.hash.hash(state);
        self.key.map(|k| k.fingerprint()).hash(state);
    }
}

impl ScalarUDFImpl for GuardHashUdf {
    fn name(&self) -> &str {
        self.hash.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::UInt64)
    }

    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        let key = self.key.ok_or_else(|| {
            DataFusionError::Execution(
                "the differencing guard's hashes are computed only where the domain's secret is"
                    .into(),
            )
        })?;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let input = arrays
            .first()
            .ok_or_else(|| DataFusionError::Internal("a guard hash of nothing".into()))?;
        let out: UInt64Array = match self.hash {
            GuardHash::Unit => input
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| DataFusionError::Internal("a unit's identity is not text".into()))?
                .iter()
                .map(|v| v.map(|v| key.unit(v)))
                .collect(),
            GuardHash::Row => input
                .as_any()
                .downcast_ref::<UInt64Array>()
                .ok_or_else(|| DataFusionError::Internal("a row's hash is not UInt64".into()))?
                .iter()
                .map(|v| v.map(|v| key.row(v)))
                .collect(),
        };
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// What each unit contributed to one cell: (unit hash, contribution hash) pairs sorted by
/// unit. A unit's contribution is the wrapping sum of its rows' hashes, so it does not
/// depend on the order the engine reads them in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contributors {
    units: Vec<(u64, u64)>,
}

impl Contributors {
    /// Builds a cell's contributors from (unit, contribution) pairs, each unit once.
    pub fn from_pairs(mut units: Vec<(u64, u64)>) -> Contributors {
        units.sort_unstable();
        units.dedup_by_key(|(u, _)| *u);
        Contributors { units }
    }

    /// Units in the cell.
    pub fn len(&self) -> usize {
        self.units.len()
    }

    /// Whether the cell has no units.
    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    /// Units in one cell and not the other, or in both with different contributions;
    /// counting stops at `limit` (the guard only asks whether it is below a threshold).
    pub fn distance(&self, other: &Contributors, limit: usize) -> usize {
        let (a, b) = (&self.units, &other.units);
        let (mut i, mut j, mut n) = (0, 0, 0);
        while i < a.len() && j < b.len() && n < limit {
            match a[i].0.cmp(&b[j].0) {
                std::cmp::Ordering::Equal => {
                    n += usize::from(a[i].1 != b[j].1);
                    i += 1;
                    j += 1;
                }
                std::cmp::Ordering::Less => {
                    n += 1;
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    n += 1;
                    j += 1;
                }
            }
        }
        (n + (a.len() - i) + (b.len() - j)).min(limit)
    }

    /// Whether releasing this cell beside `other` would describe more than zero and fewer
    /// than `min_group_size` units.
    pub fn too_close(&self, other: &Contributors, min_group_size: usize) -> bool {
        let d = self.distance(other, min_group_size);
        d > 0 && d < min_group_size
    }

    /// Little-endian (unit, contribution) pairs, 16 bytes each, as the store keeps them.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.units.len() * 16);
        for (u, c) in &self.units {
            out.extend_from_slice(&u.to_le_bytes());
            out.extend_from_slice(&c.to_le_bytes());
        }
        out
    }

    /// Reads what [`Contributors::to_bytes`] wrote.
    pub fn from_bytes(bytes: &[u8]) -> Result<Contributors> {
        if !bytes.len().is_multiple_of(16) {
            return Err(
                Error::Internal("a released cell's record is not whole pairs".into()).into(),
            );
        }
        let units = bytes
            .chunks_exact(16)
            .map(|c| {
                let mut u = [0u8; 8];
                let mut v = [0u8; 8];
                u.copy_from_slice(&c[..8]);
                v.copy_from_slice(&c[8..]);
                (u64::from_le_bytes(u), u64::from_le_bytes(v))
            })
            .collect();
        Ok(Contributors { units })
    }
}

/// The cells released earlier, as the guard asks about them.
pub trait Released {
    /// Whether `cell` is too close (see [`Contributors::too_close`]) to any cell released
    /// earlier.
    fn too_close(&mut self, cell: &Contributors, min_group_size: usize) -> Result<bool>;
}

/// No earlier cells (a query's own cells are still compared with each other).
pub struct NothingReleased;

impl Released for NothingReleased {
    fn too_close(&mut self, _: &Contributors, _: usize) -> Result<bool> {
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(units: &[(u64, u64)]) -> Contributors {
        Contributors::from_pairs(units.to_vec())
    }

    #[test]
    fn distance_counts_units_missing_and_changed() {
        let a = cell(&[(1, 10), (2, 20), (3, 30), (4, 40)]);
        assert_eq!(a.distance(&a, 100), 0);
        assert_eq!(a.distance(&cell(&[(1, 10), (2, 20), (3, 30)]), 100), 1);
        assert_eq!(
            a.distance(&cell(&[(1, 10), (2, 21), (3, 30), (4, 40)]), 100),
            1
        );
        assert_eq!(a.distance(&cell(&[(5, 1), (6, 1)]), 100), 6);
        assert_eq!(a.distance(&cell(&[(5, 1), (6, 1)]), 3), 3);
        assert_eq!(a.distance(&Contributors::default(), 100), 4);
    }

    #[test]
    fn too_close_is_strictly_between_zero_and_the_threshold() {
        let a = cell(&(0..20).map(|u| (u, 0)).collect::<Vec<_>>());
        let same = a.clone();
        let b = cell(&(0..18).map(|u| (u, 0)).collect::<Vec<_>>());
        let c = cell(&(0..10).map(|u| (u, 0)).collect::<Vec<_>>());
        assert!(!a.too_close(&same, 10));
        assert!(a.too_close(&b, 10));
        assert!(!a.too_close(&c, 10));
    }

    #[test]
    fn bytes_round_trip_and_refuse_a_torn_record() {
        let a = cell(&[(u64::MAX, 0), (7, 9)]);
        assert_eq!(
            Contributors::from_bytes(&a.to_bytes()).ok(),
            Some(a.clone())
        );
        assert!(Contributors::from_bytes(&a.to_bytes()[..15]).is_err());
    }

    #[test]
    fn keys_differ_by_secret_and_the_two_hashes_differ() {
        use sandbox_core::{Secret, Suite};
        let k = GuardKey::derive(&Secret::new(Suite::Standard, [7; 32]));
        assert_ne!(
            k.unit("a"),
            GuardKey::derive(&Secret::new(Suite::Standard, [8; 32])).unit("a")
        );
        assert_ne!(k.row(k.unit("a")), k.unit("a"));
    }
}
