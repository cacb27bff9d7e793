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

use arrow::array::{Array, BinaryArray, Float64Array, Int64Array, StringArray, UInt64Array};
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

/// Cells of up to this many units keep their (unit, contribution) pairs as they are;
/// larger ones keep a [`Sketch`] of them, whose size depends on `min_group_size`, not on
/// the cell's.
pub const EXACT_UNITS: usize = 256;

/// What each unit contributed to one cell, as the guard compares cells: the number of units
/// and either the (unit hash, contribution hash) pairs themselves, sorted by unit, or an
/// invertible sketch of them (an invertible Bloom lookup table; Goodrich and Mitzenmacher
/// 2011, Eppstein et al. 2011). A unit's contribution is the wrapping sum of its rows'
/// hashes, so it does not depend on the order the engine reads them in.
///
/// The sketch is what lets the guard hold on cells of any size: it is a sum, so executors
/// build it beside the rows and merge their parts ([`GuardAggregate::Footprint`]), and
/// only its few kilobytes per cell travel, are kept and are compared. Two cells' sketches
/// subtracted are a sketch of the pairs in one cell and not the other, which peels back
/// into those pairs when they are few; when they do not peel, the guard counts the cells
/// of the difference that are not empty, and a difference of fewer than `min_group_size`
/// units can leave at most `2 · HASHES · (min_group_size - 1)` of them: a difference that
/// could be small is judged too close, so a sketch that does not peel never lets a close
/// pair through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contributors {
    len: u64,
    form: Form,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Form {
    /// Sorted by unit, each unit once.
    Exact(Vec<(u64, u64)>),
    Sketch(Sketch),
}

impl Default for Contributors {
    fn default() -> Contributors {
        Contributors {
            len: 0,
            form: Form::Exact(Vec::new()),
        }
    }
}

/// The first bytes of a stored sketch; a record of pairs is a multiple of 16 bytes long, a
/// sketch's never is (12 bytes of header, then cells of 32 bytes, three rows of a power of
/// two).
const SKETCH_MAGIC: &[u8; 4] = b"SGF1";

impl Contributors {
    /// Builds a cell's contributors from (unit, contribution) pairs, each unit once, for a
    /// guard of `min_group_size`.
    pub fn from_pairs(mut units: Vec<(u64, u64)>, min_group_size: usize) -> Contributors {
        units.sort_unstable();
        units.dedup_by_key(|(u, _)| *u);
        let len = units.len() as u64;
        if units.len() <= EXACT_UNITS {
            return Contributors {
                len,
                form: Form::Exact(units),
            };
        }
        let mut sketch = Sketch::new(Sketch::width_for(min_group_size));
        for (u, c) in units {
            sketch.add(u, c, 1);
        }
        Contributors {
            len,
            form: Form::Sketch(sketch),
        }
    }

    /// Units in the cell.
    pub fn len(&self) -> usize {
        usize::try_from(self.len).unwrap_or(usize::MAX)
    }

    /// Whether the cell has no units.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the pairs are kept as they are (not as a sketch).
    pub fn is_exact(&self) -> bool {
        matches!(self.form, Form::Exact(_))
    }

    /// Adds the units of `other`, a disjoint set (a part of the same cell read elsewhere).
    fn merge(&mut self, other: Contributors, width: u32) {
        self.len += other.len;
        let form = std::mem::replace(&mut self.form, Form::Exact(Vec::new()));
        self.form = match (form, other.form) {
            (Form::Exact(mut a), Form::Exact(b)) if a.len() + b.len() <= EXACT_UNITS => {
                a.extend(b);
                a.sort_unstable();
                Form::Exact(a)
            }
            (a, b) => {
                let width = width.min(a.width()).min(b.width());
                let mut sketch = a.sketch_at(width);
                sketch.add_all(&b.sketch_at(width));
                Form::Sketch(sketch)
            }
        };
    }

    /// Whether releasing this cell beside `other` would describe more than zero and fewer
    /// than `min_group_size` units: units in one cell and not the other, or in both with
    /// different contributions. Exact between two cells of pairs; between sketches, exact
    /// when the difference peels, and "too close" when it does not and could be small.
    pub fn too_close(&self, other: &Contributors, min_group_size: usize) -> bool {
        // At least this many units differ.
        if self.len.abs_diff(other.len) >= min_group_size as u64 {
            return false;
        }
        match (&self.form, &other.form) {
            (Form::Exact(a), Form::Exact(b)) => {
                let d = exact_distance(a, b, min_group_size);
                d > 0 && d < min_group_size
            }
            (a, b) => {
                let width = a.width().min(b.width());
                let mut diff = a.sketch_at(width);
                diff.subtract(&b.sketch_at(width));
                diff.too_close(min_group_size)
            }
        }
    }

    /// As the store keeps it: little-endian (unit, contribution) pairs, 16 bytes each, or
    /// a sketch (`SGF1`, the number of units, then its cells).
    pub fn to_bytes(&self) -> Vec<u8> {
        match &self.form {
            Form::Exact(units) => {
                let mut out = Vec::with_capacity(units.len() * 16);
                for (u, c) in units {
                    out.extend_from_slice(&u.to_le_bytes());
                    out.extend_from_slice(&c.to_le_bytes());
                }
                out
            }
            Form::Sketch(sketch) => {
                let mut out = Vec::with_capacity(12 + sketch.cells.len() * 32);
                out.extend_from_slice(SKETCH_MAGIC);
                out.extend_from_slice(&self.len.to_le_bytes());
                for cell in &sketch.cells {
                    out.extend_from_slice(&cell.count.to_le_bytes());
                    out.extend_from_slice(&cell.unit.to_le_bytes());
                    out.extend_from_slice(&cell.contribution.to_le_bytes());
                    out.extend_from_slice(&cell.check.to_le_bytes());
                }
                out
            }
        }
    }

    /// Reads what [`Contributors::to_bytes`] wrote.
    pub fn from_bytes(bytes: &[u8]) -> Result<Contributors> {
        let torn = || Error::Internal("a released cell's record is torn".into());
        if bytes.len().is_multiple_of(16) {
            let units: Vec<(u64, u64)> = bytes
                .chunks_exact(16)
                .map(|c| (le_u64(&c[..8]), le_u64(&c[8..])))
                .collect();
            return Ok(Contributors {
                len: units.len() as u64,
                form: Form::Exact(units),
            });
        }
        let body = bytes
            .strip_prefix(SKETCH_MAGIC.as_slice())
            .filter(|b| b.len() >= 8)
            .ok_or_else(torn)?;
        let (len, cells) = body.split_at(8);
        if !cells.len().is_multiple_of(32 * HASHES) {
            return Err(torn().into());
        }
        let width = u32::try_from(cells.len() / (32 * HASHES)).map_err(|_| torn())?;
        if !width.is_power_of_two() {
            return Err(torn().into());
        }
        let cells = cells
            .chunks_exact(32)
            .map(|c| SketchCell {
                count: le_u64(&c[..8]) as i64,
                unit: le_u64(&c[8..16]),
                contribution: le_u64(&c[16..24]),
                check: le_u64(&c[24..]),
            })
            .collect();
        Ok(Contributors {
            len: le_u64(len),
            form: Form::Sketch(Sketch { width, cells }),
        })
    }
}

fn le_u64(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(b)
}

/// Units in one sorted list and not the other, or in both with different contributions;
/// counting stops at `limit`.
fn exact_distance(a: &[(u64, u64)], b: &[(u64, u64)], limit: usize) -> usize {
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

impl Form {
    /// The sketch's row width; pairs fit any.
    fn width(&self) -> u32 {
        match self {
            Form::Exact(_) => MAX_WIDTH,
            Form::Sketch(s) => s.width,
        }
    }

    fn sketch_at(&self, width: u32) -> Sketch {
        match self {
            Form::Exact(units) => {
                let mut s = Sketch::new(width);
                for (u, c) in units {
                    s.add(*u, *c, 1);
                }
                s
            }
            Form::Sketch(s) => s.folded(width),
        }
    }
}

/// Cells each pair is added to, one in each of as many rows.
const HASHES: usize = 3;
/// The narrowest and widest rows a sketch has.
const MIN_WIDTH: u32 = 64;
const MAX_WIDTH: u32 = 1 << 16;

/// An invertible Bloom lookup table of (unit, contribution) pairs: `HASHES` rows of
/// `width` cells (a power of two), each pair added to one cell of each row. A cell holds
/// how many pairs were added less how many were taken away, and the XOR of their units,
/// of their contributions and of a check hash of each pair.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sketch {
    width: u32,
    cells: Vec<SketchCell>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct SketchCell {
    count: i64,
    unit: u64,
    contribution: u64,
    check: u64,
}

/// A 64-bit finalizer (SplitMix64's). The pairs are keyed hashes already, which nobody
/// outside the domain can choose; this only spreads them over the cells.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn pair_hash(unit: u64, contribution: u64) -> u64 {
    mix(unit ^ mix(contribution ^ 0x5851_f42d_4c95_7f2d))
}

fn pair_check(unit: u64, contribution: u64) -> u64 {
    mix(unit.rotate_left(29) ^ mix(contribution ^ 0x2545_f491_4f6c_dd1d) ^ 0x9e37_79b9)
}

impl Sketch {
    /// The row width for a guard of `min_group_size`: four times the most pairs a close
    /// difference can hold, at least 64.
    fn width_for(min_group_size: usize) -> u32 {
        let pairs = u32::try_from(min_group_size.saturating_mul(4)).unwrap_or(MAX_WIDTH);
        pairs.next_power_of_two().clamp(MIN_WIDTH, MAX_WIDTH)
    }

    fn new(width: u32) -> Sketch {
        Sketch {
            width,
            cells: vec![SketchCell::default(); HASHES * width as usize],
        }
    }

    /// The pair's cell in each row. A cell's index in a row is the pair's hash modulo the
    /// width, so a sketch folds onto a narrower one by adding cells whose indices agree
    /// modulo the narrower width.
    fn cells_of(&self, unit: u64, contribution: u64) -> [usize; HASHES] {
        let h = pair_hash(unit, contribution);
        let mask = u64::from(self.width) - 1;
        let mut at = [0usize; HASHES];
        for (row, slot) in at.iter_mut().enumerate() {
            let i = mix(h ^ (row as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)) & mask;
            *slot = row * self.width as usize + i as usize;
        }
        at
    }

    fn add(&mut self, unit: u64, contribution: u64, sign: i64) {
        let check = pair_check(unit, contribution);
        for i in self.cells_of(unit, contribution) {
            let cell = &mut self.cells[i];
            cell.count = cell.count.wrapping_add(sign);
            cell.unit ^= unit;
            cell.contribution ^= contribution;
            cell.check ^= check;
        }
    }

    fn combine(&mut self, other: &Sketch, sign: i64) {
        for (a, b) in self.cells.iter_mut().zip(&other.cells) {
            a.count = a.count.wrapping_add(b.count.wrapping_mul(sign));
            a.unit ^= b.unit;
            a.contribution ^= b.contribution;
            a.check ^= b.check;
        }
    }

    fn add_all(&mut self, other: &Sketch) {
        self.combine(other, 1);
    }

    fn subtract(&mut self, other: &Sketch) {
        self.combine(other, -1);
    }

    /// This sketch on rows of `width` (at most its own).
    fn folded(&self, width: u32) -> Sketch {
        if width >= self.width {
            return self.clone();
        }
        let mut out = Sketch::new(width);
        for row in 0..HASHES {
            for i in 0..self.width as usize {
                let from = self.cells[row * self.width as usize + i];
                let to = &mut out.cells[row * width as usize + (i & (width as usize - 1))];
                to.count = to.count.wrapping_add(from.count);
                to.unit ^= from.unit;
                to.contribution ^= from.contribution;
                to.check ^= from.check;
            }
        }
        out
    }

    /// On the difference of two cells' sketches: whether the cells are too close.
    fn too_close(self, min_group_size: usize) -> bool {
        let occupied = self
            .cells
            .iter()
            .filter(|c| **c != SketchCell::default())
            .count();
        if occupied == 0 {
            return false;
        }
        match self.peel() {
            Some(d) => d > 0 && d < min_group_size,
            // Fewer than `min_group_size` units differing are at most twice as many pairs,
            // each in `HASHES` cells.
            None => occupied <= 2 * HASHES * min_group_size.saturating_sub(1),
        }
    }

    /// Peels the difference into its pairs: the number of units among them, or `None`
    /// when it does not peel to empty.
    fn peel(mut self) -> Option<usize> {
        let mut units = Vec::new();
        let budget = self.cells.len() * 2;
        loop {
            let pure = self.cells.iter().position(|c| {
                (c.count == 1 || c.count == -1) && c.check == pair_check(c.unit, c.contribution)
            });
            let Some(i) = pure else { break };
            let cell = self.cells[i];
            units.push(cell.unit);
            if units.len() > budget {
                return None;
            }
            self.add(cell.unit, cell.contribution, -cell.count);
        }
        if self.cells.iter().any(|c| *c != SketchCell::default()) {
            return None;
        }
        units.sort_unstable();
        units.dedup();
        Some(units.len())
    }
}

/// The guard's aggregates, computed where the rows are (a cluster's executors) so that
/// only a few values per cell reach the domain node, whatever the number of units. Neither
/// needs a key: they read the keyed hashes and clamped sums the plan computed before them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(tag = "aggregate", rename_all = "snake_case")]
pub enum GuardAggregate {
    /// A cell's [`Contributors`] from its (unit, contribution) rows, one per unit, as
    /// [`Contributors::to_bytes`] writes them (`UInt64, UInt64` to `Binary`); `min_group_size`
    /// sizes the sketch.
    Footprint {
        /// The guard's threshold.
        min_group_size: usize,
    },
    /// The disclosure rules' view of a sum: the total of the absolute contributions and the
    /// `n` largest of them, as [`Dominance::to_bytes`] writes them (`Float64, Int64` to
    /// `Binary`: a contribution and how many contributors gave it).
    Dominance {
        /// How many of the largest contributions to keep.
        n: usize,
    },
}

impl GuardAggregate {
    /// The aggregate function.
    pub fn udaf(self) -> datafusion::logical_expr::AggregateUDF {
        let inputs = match self {
            GuardAggregate::Footprint { .. } => vec![DataType::UInt64, DataType::UInt64],
            GuardAggregate::Dominance { .. } => vec![DataType::Float64, DataType::Int64],
        };
        datafusion::logical_expr::AggregateUDF::new_from_impl(GuardAggregateUdf {
            aggregate: self,
            signature: Signature::exact(inputs, Volatility::Immutable),
        })
    }

    fn name(self) -> &'static str {
        match self {
            GuardAggregate::Footprint { .. } => "sandbox_guard_footprint",
            GuardAggregate::Dominance { .. } => "sandbox_dominance",
        }
    }
}

/// A [`GuardAggregate`] as DataFusion calls it.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct GuardAggregateUdf {
    aggregate: GuardAggregate,
    signature: Signature,
}

impl GuardAggregateUdf {
    /// Which aggregate it computes.
    pub fn aggregate(&self) -> GuardAggregate {
        self.aggregate
    }
}

impl datafusion::logical_expr::AggregateUDFImpl for GuardAggregateUdf {
    fn name(&self) -> &str {
        self.aggregate.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Binary)
    }

    fn accumulator(
        &self,
        _args: datafusion::logical_expr::function::AccumulatorArgs,
    ) -> datafusion::error::Result<Box<dyn datafusion::logical_expr::Accumulator>> {
        Ok(match self.aggregate {
            GuardAggregate::Footprint { min_group_size } => Box::new(FootprintAccumulator {
                width: Sketch::width_for(min_group_size),
                min_group_size,
                cell: Contributors::default(),
            }),
            GuardAggregate::Dominance { n } => Box::new(DominanceAccumulator {
                dominance: Dominance {
                    total: 0.0,
                    top: Vec::new(),
                },
                n,
            }),
        })
    }
}

fn state_bytes(states: &[arrow::array::ArrayRef]) -> datafusion::error::Result<&BinaryArray> {
    states
        .first()
        .and_then(|s| s.as_any().downcast_ref::<BinaryArray>())
        .ok_or_else(|| DataFusionError::Internal("a guard aggregate's state is not binary".into()))
}

fn input<T: 'static>(values: &[arrow::array::ArrayRef], i: usize) -> datafusion::error::Result<&T> {
    values
        .get(i)
        .and_then(|v| v.as_any().downcast_ref::<T>())
        .ok_or_else(|| {
            DataFusionError::Internal("a guard aggregate's input of another type".into())
        })
}

#[derive(Debug)]
struct FootprintAccumulator {
    width: u32,
    min_group_size: usize,
    cell: Contributors,
}

impl datafusion::logical_expr::Accumulator for FootprintAccumulator {
    fn update_batch(&mut self, values: &[arrow::array::ArrayRef]) -> datafusion::error::Result<()> {
        let units = input::<UInt64Array>(values, 0)?;
        let contributions = input::<UInt64Array>(values, 1)?;
        let pairs: Vec<(u64, u64)> = units
            .iter()
            .zip(contributions.iter())
            .filter_map(|(u, c)| Some((u?, c.unwrap_or(0))))
            .collect();
        let part = Contributors::from_pairs(pairs, self.min_group_size);
        self.cell.merge(part, self.width);
        Ok(())
    }

    fn evaluate(&mut self) -> datafusion::error::Result<datafusion::scalar::ScalarValue> {
        Ok(datafusion::scalar::ScalarValue::Binary(Some(
            self.cell.to_bytes(),
        )))
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>()
            + match &self.cell.form {
                Form::Exact(units) => units.capacity() * 16,
                Form::Sketch(s) => s.cells.capacity() * 32,
            }
    }

    fn state(&mut self) -> datafusion::error::Result<Vec<datafusion::scalar::ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn merge_batch(&mut self, states: &[arrow::array::ArrayRef]) -> datafusion::error::Result<()> {
        for bytes in state_bytes(states)?.iter().flatten() {
            let part = Contributors::from_bytes(bytes)
                .map_err(|e| DataFusionError::Internal(e.to_string()))?;
            self.cell.merge(part, self.width);
        }
        Ok(())
    }
}

/// The disclosure rules' view of one cell's sum: the total of the absolute contributions
/// and the largest of them, largest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Dominance {
    /// The sum of every contribution's absolute value.
    pub total: f64,
    /// The largest absolute contributions, largest first.
    pub top: Vec<f64>,
}

impl Dominance {
    /// The total, then the largest contributions, as little-endian `f64`s.
    pub fn to_bytes(&self) -> Vec<u8> {
        std::iter::once(self.total)
            .chain(self.top.iter().copied())
            .flat_map(f64::to_le_bytes)
            .collect()
    }

    /// Reads what [`Dominance::to_bytes`] wrote.
    pub fn from_bytes(bytes: &[u8]) -> Result<Dominance> {
        if bytes.is_empty() || !bytes.len().is_multiple_of(8) {
            return Err(Error::Internal("a sum's contributions are torn".into()).into());
        }
        let mut values = bytes.chunks_exact(8).map(|c| f64::from_bits(le_u64(c)));
        let total = values.next().unwrap_or(0.0);
        Ok(Dominance {
            total,
            top: values.collect(),
        })
    }

    /// Adds `copies` contributions of `value` (absolute), keeping the `n` largest.
    fn add(&mut self, value: f64, copies: i64, n: usize) {
        let v = value.abs();
        let copies = usize::try_from(copies).unwrap_or(0);
        self.total += v * copies as f64;
        if self.top.len() >= n && self.top.last().is_some_and(|least| *least >= v) {
            return;
        }
        self.top.extend(std::iter::repeat_n(v, copies.min(n)));
        self.keep(n);
    }

    fn keep(&mut self, n: usize) {
        self.top.sort_by(|a, b| b.total_cmp(a));
        self.top.truncate(n);
    }
}

#[derive(Debug)]
struct DominanceAccumulator {
    dominance: Dominance,
    n: usize,
}

impl datafusion::logical_expr::Accumulator for DominanceAccumulator {
    fn update_batch(&mut self, values: &[arrow::array::ArrayRef]) -> datafusion::error::Result<()> {
        let v = input::<Float64Array>(values, 0)?;
        let copies = input::<Int64Array>(values, 1)?;
        for (v, c) in v.iter().zip(copies.iter()) {
            self.dominance.add(v.unwrap_or(0.0), c.unwrap_or(0), self.n);
        }
        Ok(())
    }

    fn evaluate(&mut self) -> datafusion::error::Result<datafusion::scalar::ScalarValue> {
        Ok(datafusion::scalar::ScalarValue::Binary(Some(
            self.dominance.to_bytes(),
        )))
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>() + self.dominance.top.capacity() * 8
    }

    fn state(&mut self) -> datafusion::error::Result<Vec<datafusion::scalar::ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn merge_batch(&mut self, states: &[arrow::array::ArrayRef]) -> datafusion::error::Result<()> {
        for bytes in state_bytes(states)?.iter().flatten() {
            let part = Dominance::from_bytes(bytes)
                .map_err(|e| DataFusionError::Internal(e.to_string()))?;
            self.dominance.total += part.total;
            self.dominance.top.extend(part.top);
            self.dominance.keep(self.n);
        }
        Ok(())
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
    use rand::{Rng, SeedableRng};

    fn cell(units: &[(u64, u64)]) -> Contributors {
        Contributors::from_pairs(units.to_vec(), 10)
    }

    /// The guard's definition, on the pairs themselves.
    fn distance(a: &[(u64, u64)], b: &[(u64, u64)]) -> usize {
        let a: HashMap<u64, u64> = a.iter().copied().collect();
        let b: HashMap<u64, u64> = b.iter().copied().collect();
        a.iter().filter(|(u, c)| b.get(u) != Some(c)).count()
            + b.keys().filter(|u| !a.contains_key(u)).count()
    }

    use std::collections::HashMap;

    #[test]
    fn too_close_counts_units_missing_and_changed() {
        let a = cell(&[(1, 10), (2, 20), (3, 30), (4, 40)]);
        assert!(!a.too_close(&a, 10));
        assert!(a.too_close(&cell(&[(1, 10), (2, 20), (3, 30)]), 10));
        assert!(a.too_close(&cell(&[(1, 10), (2, 21), (3, 30), (4, 40)]), 10));
        assert!(a.too_close(&cell(&[(5, 1), (6, 1)]), 10));
        assert!(!a.too_close(&cell(&[(5, 1), (6, 1)]), 6));
        assert!(a.too_close(&Contributors::default(), 10));
        assert!(!a.too_close(&Contributors::default(), 4));
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
        let big = Contributors::from_pairs((0..1000).map(|u| (u, u * 3)).collect(), 10);
        assert!(!big.is_exact());
        let bytes = big.to_bytes();
        assert_ne!(bytes.len() % 16, 0);
        assert_eq!(Contributors::from_bytes(&bytes).ok(), Some(big.clone()));
        assert!(Contributors::from_bytes(&bytes[..bytes.len() - 32]).is_err());
        let mut other = bytes.clone();
        other[0] = b'X';
        assert!(Contributors::from_bytes(&other).is_err());
    }

    /// Random cells of every size around [`EXACT_UNITS`], each against a neighbour that
    /// differs by a random number of units (missing, added or changed): whenever the
    /// definition says too close, the guard says so; whenever it says not, the guard agrees
    /// but for a rare conservative refusal (a sketch that did not peel).
    #[test]
    fn sketches_judge_as_the_pairs_do() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(17);
        let (mut agreed, mut conservative) = (0, 0);
        for round in 0..600 {
            let k = [2usize, 5, 10, 25][round % 4];
            let n = rng.random_range(1..3 * EXACT_UNITS);
            let a: Vec<(u64, u64)> = (0..n).map(|_| (rng.random(), rng.random())).collect();
            let mut b = a.clone();
            let changes = if rng.random_bool(0.5) {
                rng.random_range(0..k + 1)
            } else {
                rng.random_range(0..4 * k + 1)
            };
            for _ in 0..changes {
                match rng.random_range(0..3) {
                    0 if !b.is_empty() => {
                        let i = rng.random_range(0..b.len());
                        b.swap_remove(i);
                    }
                    1 if !b.is_empty() => {
                        let i = rng.random_range(0..b.len());
                        b[i].1 = rng.random();
                    }
                    _ => b.push((rng.random(), rng.random())),
                }
            }
            let d = distance(&a, &b);
            let truth = d > 0 && d < k;
            let (ca, cb) = (
                Contributors::from_pairs(a.clone(), k),
                Contributors::from_pairs(b.clone(), k),
            );
            // Also against a sketch built for another threshold (folded to the narrower).
            let cc = Contributors::from_pairs(b, 4 * k);
            for verdict in [
                ca.too_close(&cb, k),
                cb.too_close(&ca, k),
                ca.too_close(&cc, k),
            ] {
                if truth {
                    assert!(verdict, "round {round}: {d} units differ, k = {k}");
                } else if verdict {
                    conservative += 1;
                } else {
                    agreed += 1;
                }
            }
        }
        assert!(
            conservative * 100 < agreed,
            "{conservative} conservative of {agreed}"
        );
    }

    #[test]
    fn a_difference_that_does_not_peel_is_too_close_when_it_could_be_small() {
        // Two pairs in the same three cells never peel.
        let mut s = Sketch::new(64);
        let mut t = Sketch::new(64);
        s.add(1, 1, 1);
        t.add(2, 2, 1);
        let mut diff = s.clone();
        diff.subtract(&t);
        assert_eq!(diff.clone().peel(), Some(2));
        let mut stuck = Sketch::new(64);
        let cells = stuck.cells_of(1, 1);
        for i in cells {
            stuck.cells[i].count = 2;
            stuck.cells[i].unit = 5;
        }
        assert_eq!(stuck.clone().peel(), None);
        assert!(stuck.clone().too_close(10));
        // A wide difference that does not peel is far.
        let mut wide = Sketch::new(64);
        for u in 0..2000 {
            wide.add(u, u, 1);
        }
        assert_eq!(wide.clone().peel(), None);
        assert!(!wide.too_close(10));
    }

    #[test]
    fn parts_merged_are_the_whole() {
        let pairs: Vec<(u64, u64)> = (0..3000u64).map(|u| (u * 7919, u)).collect();
        let whole = Contributors::from_pairs(pairs.clone(), 10);
        let mut merged = Contributors::default();
        let width = Sketch::width_for(10);
        for part in pairs.chunks(100) {
            merged.merge(Contributors::from_pairs(part.to_vec(), 10), width);
        }
        assert_eq!(merged, whole);
        let small: Vec<(u64, u64)> = pairs[..200].to_vec();
        let mut merged = Contributors::default();
        for part in small.chunks(50) {
            merged.merge(Contributors::from_pairs(part.to_vec(), 10), width);
        }
        assert!(merged.is_exact());
        assert_eq!(merged, Contributors::from_pairs(small, 10));
    }

    #[test]
    fn dominance_keeps_the_total_and_the_largest() {
        let mut d = Dominance {
            total: 0.0,
            top: Vec::new(),
        };
        for (v, c) in [(-5.0, 1), (2.0, 3), (7.0, 1), (1.0, 1)] {
            d.add(v, c, 2);
        }
        assert_eq!(d.total, 19.0);
        assert_eq!(d.top, vec![7.0, 5.0]);
        assert_eq!(Dominance::from_bytes(&d.to_bytes()).ok(), Some(d));
        assert!(Dominance::from_bytes(&[0; 7]).is_err());
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
