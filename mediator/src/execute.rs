//! Execution of an accepted query: the bounded, clamped aggregate runs exactly inside the
//! domain, OpenDP adds noise, and the module's post-processing runs over the noisy table.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BinaryArray, Float64Array, Int64Array, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::Column;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig};
use datafusion::datasource::{MemTable, provider_as_source};
use datafusion::functions_aggregate::expr_fn::{count, sum};
use datafusion::logical_expr::{
    Expr, ExprFunctionExt, ExprSchemable, LogicalPlan, LogicalPlanBuilder, cast, col, lit,
};
use datafusion::prelude::SessionContext;
use sandbox_policies::Policy;
use serde::Serialize;

use sandbox_store::catalog::DatasetVersion;

use crate::analyze::{Accepted, ColRef, GroupKey, Requested, Value};
use crate::cluster::Placement;
use crate::differencing::{Contributors, Dominance, GuardAggregate, GuardHash, GuardKey, Released};
use crate::privacy::{self, NoiseReport};
use crate::{DomainError as Error, Result};

/// One cell of a grouped answer: its group values as text.
pub type Cell = Vec<Option<String>>;

/// Largest number of cells a grouped answer may have.
pub const MAX_CELLS: usize = 100_000;

/// A statistic computed exactly and then noised.
#[derive(Debug, Clone, PartialEq)]
enum Stat {
    /// Rows (None) or non-null values of an expression (with its label).
    Count(Option<(Expr, String)>),
    /// Sum of a value clamped to its bounds.
    Sum(Value),
    /// Sum of squares of a value clamped to its bounds.
    SumSquares(Value),
    /// Distinct privacy units.
    Units(ColRef),
    /// A quantile of a value clamped to its bounds (OpenDP private quantile).
    Quantile { value: Value, alpha: f64 },
}

/// Rows a sum may add at most: a dataset version has at most as many rows as its source
/// file has bytes (8 GiB), and after a join on the unit and its bounding, at most k
/// (1,000) per row of the smaller side. Bounds the exact accumulation's headroom.
const MAX_SUMMED_ROWS: f64 = 1e13;

/// How an exact sum adds its values: each rounded once to `scale` decimals and added as
/// an integer, in 64 bits when `rows` such values fit in them (the fast path), else in a
/// Decimal128; integers already known not to overflow are added as they are. Either way
/// the total does not depend on the order of the rows or on how they are partitioned, and
/// one unit moves it by exactly what its rounded values add (float accumulation holds
/// neither: Casacuberta et al. 2022).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Accumulator {
    Native,
    Fixed64 { scale: i32 },
    Decimal { scale: i8 },
}

impl Accumulator {
    /// The accumulator for values up to `magnitude`, at most `rows` of them.
    fn for_values(magnitude: f64, rows: f64, native: bool) -> Accumulator {
        if native {
            return Accumulator::Native;
        }
        let total = magnitude.max(1.0) * rows.max(1.0);
        let room64 = (9.0e18 / total).log10().floor();
        if room64 >= 6.0 {
            return Accumulator::Fixed64 { scale: 6 };
        }
        // 10^13 values of up to 10^24 stay below 10^37 (MAX_EXACT_MAGNITUDE).
        let room = 37.0 - MAX_SUMMED_ROWS.log10() - magnitude.max(1.0).log10();
        Accumulator::Decimal {
            scale: room.floor().clamp(0.0, 6.0) as i8,
        }
    }

    /// The SUM expression, and what its result is divided by.
    fn sum(self, e: Expr) -> (Expr, f64) {
        match self {
            Accumulator::Native => (sum(e), 1.0),
            Accumulator::Fixed64 { scale } => {
                let factor = 10f64.powi(scale);
                let scaled = datafusion::functions::expr_fn::round(vec![e * lit(factor)]);
                (sum(cast(scaled, DataType::Int64)), factor)
            }
            Accumulator::Decimal { scale } => (sum(cast(e, DataType::Decimal128(38, scale))), 1.0),
        }
    }

    /// How far one value may move by its rounding.
    fn rounding(self) -> f64 {
        match self {
            Accumulator::Native => 0.0,
            Accumulator::Fixed64 { scale } => 10f64.powi(-scale),
            Accumulator::Decimal { scale } => 10f64.powi(-i32::from(scale)),
        }
    }
}

impl Stat {
    /// The stat's L1 sensitivity over all cells, with at most k rows per unit, when at
    /// most `rows` rows are summed. A sum's covers what its exact accumulation rounds: each
    /// value by up to a unit of its last kept decimal, and the total, turned into a float
    /// and scaled back, by an ulp or two of the largest total (`rows` values at the
    /// bound): at most (`rows` + 2) · 2^-52 of one unit's share.
    fn sensitivity(&self, k: i64, rows: f64) -> f64 {
        let k = k as f64;
        match self {
            Stat::Count(_) | Stat::Units(_) => k,
            Stat::Sum(_) | Stat::SumSquares(_) => {
                let (magnitude, accumulator) =
                    self.accumulator(rows).unwrap_or((0.0, Accumulator::Native));
                k * (magnitude + accumulator.rounding()) * (1.0 + (rows + 2.0) * f64::EPSILON)
            }
            Stat::Quantile { .. } => k,
        }
    }

    /// A sum's largest value and how it is accumulated, for at most `rows` rows.
    fn accumulator(&self, rows: f64) -> Option<(f64, Accumulator)> {
        match self {
            Stat::Sum(v) => {
                let m = v.lower.abs().max(v.upper.abs());
                Some((m, Accumulator::for_values(m, rows, v.native_sum.is_some())))
            }
            Stat::SumSquares(v) => {
                let m = (v.lower * v.lower).max(v.upper * v.upper);
                Some((m, Accumulator::for_values(m, rows, false)))
            }
            _ => None,
        }
    }

    fn is_count(&self) -> bool {
        matches!(self, Stat::Count(_) | Stat::Units(_))
    }
}

/// How a requested aggregate is derived from noisy statistics (post-processing).
#[derive(Debug, Clone, PartialEq)]
enum Derive {
    Count(usize),
    Sum(usize),
    Avg {
        sum: usize,
        count: usize,
        lower: f64,
        upper: f64,
    },
    Var {
        sum: usize,
        squares: usize,
        count: usize,
        lower: f64,
        upper: f64,
        sqrt: bool,
    },
    Quantile {
        quantile: usize,
        count: usize,
    },
}

/// The plan of statistics for an accepted query.
#[derive(Debug, Clone)]
pub struct StatPlan {
    stats: Vec<Stat>,
    /// For each requested aggregate, how it comes from the statistics.
    derive: Vec<Derive>,
    /// Rows per unit (k).
    k: i64,
    /// Groups per unit (the l0 bound of a grouped answer): at most k.
    groups: i64,
    /// The row count that releases group keys by τ-thresholding, when keys are not public.
    key_count: Option<usize>,
    /// Units per cell (threshold mode's small-cell rule).
    unit_count: Option<usize>,
    /// Most rows a sum adds (a power of two: the sensitivity it enters says no more of
    /// the dataset's size).
    summed_rows: f64,
    /// Whether the answer names the unit each noisy column is best rounded to (a policy's
    /// `rounding = "noise"`).
    rounding: bool,
}

impl StatPlan {
    /// Builds the statistics a query needs from the accepted request. With `thresholded`,
    /// a row count per cell is added (or reused) to release the group keys. `k` is the
    /// most rows one unit contributes (after a join, the larger of the two datasets').
    pub fn new(
        accepted: &Accepted,
        k: i64,
        groups: Option<i64>,
        thresholded: bool,
    ) -> Result<StatPlan> {
        let mut stats = Vec::new();
        let mut derive = Vec::new();
        for r in &accepted.requested {
            let d = match r {
                Requested::CountRows => Derive::Count(push(&mut stats, Stat::Count(None))),
                Requested::CountColumn(e) => Derive::Count(push(
                    &mut stats,
                    Stat::Count(Some((e.clone(), super::analyze::label(e)))),
                )),
                Requested::CountUnits(u) => Derive::Count(push(&mut stats, Stat::Units(u.clone()))),
                Requested::Sum(v) => Derive::Sum(push(&mut stats, Stat::Sum(v.clone()))),
                Requested::Avg(v) => Derive::Avg {
                    sum: push(&mut stats, Stat::Sum(v.clone())),
                    count: push(&mut stats, Stat::Count(Some(counted(v)))),
                    lower: v.lower,
                    upper: v.upper,
                },
                Requested::Var(v) | Requested::Stddev(v) => Derive::Var {
                    sum: push(&mut stats, Stat::Sum(v.clone())),
                    squares: push(&mut stats, Stat::SumSquares(v.clone())),
                    count: push(&mut stats, Stat::Count(Some(counted(v)))),
                    lower: v.lower,
                    upper: v.upper,
                    sqrt: matches!(r, Requested::Stddev(_)),
                },
                // The value's count tells whether the cell holds enough values for its
                // quantile to mean anything (`accuracy`).
                Requested::Quantile { value, alpha } => Derive::Quantile {
                    quantile: push(
                        &mut stats,
                        Stat::Quantile {
                            value: value.clone(),
                            alpha: *alpha,
                        },
                    ),
                    count: push(&mut stats, Stat::Count(Some(counted(value)))),
                },
            };
            derive.push(d);
        }
        let key_count = thresholded.then(|| push(&mut stats, Stat::Count(None)));
        let groups = match groups {
            Some(g) if !accepted.group_keys.is_empty() => g.clamp(1, k),
            _ => k,
        };
        Ok(StatPlan {
            stats,
            derive,
            k,
            groups,
            key_count,
            unit_count: None,
            summed_rows: MAX_SUMMED_ROWS,
            rounding: true,
        })
    }

    /// Sets the most rows a sum adds: `rows`, rounded up to a power of two.
    pub fn with_summed_rows(mut self, rows: i64) -> StatPlan {
        let rows = rows.max(1) as f64;
        self.summed_rows = 2f64.powf(rows.log2().ceil()).min(MAX_SUMMED_ROWS);
        self
    }

    /// Sets whether the answer names each noisy column's rounding unit.
    pub fn with_rounding(mut self, rounding: bool) -> StatPlan {
        self.rounding = rounding;
        self
    }

    /// Adds (or reuses) the number of distinct units per cell, or of rows under row
    /// privacy, computed in the same aggregate as the other statistics.
    pub fn count_units(&mut self, unit: Option<&ColRef>) -> usize {
        let stat = match unit {
            Some(u) => Stat::Units(u.clone()),
            None => Stat::Count(None),
        };
        let i = push(&mut self.stats, stat);
        self.unit_count = Some(i);
        i
    }

    /// The statistics' names, for `explain`.
    pub fn describe(&self) -> Vec<String> {
        self.stats
            .iter()
            .map(|s| match s {
                Stat::Count(None) => "count(*)".to_string(),
                Stat::Count(Some((_, label))) => format!("count({label})"),
                Stat::Units(u) => format!("count(distinct {u})"),
                Stat::Sum(v) => format!("sum(clamp({v}, {}, {}))", v.lower, v.upper),
                Stat::SumSquares(v) => format!("sum(clamp({v}, {}, {})^2)", v.lower, v.upper),
                Stat::Quantile { value, alpha } => format!(
                    "quantile(clamp({value}, {}, {}), {alpha})",
                    value.lower, value.upper
                ),
            })
            .collect()
    }

    /// L1 sensitivity of each statistic.
    pub fn sensitivities(&self) -> Vec<f64> {
        self.stats
            .iter()
            .map(|s| s.sensitivity(self.k, self.summed_rows))
            .collect()
    }

    /// Rows per unit.
    pub fn k(&self) -> i64 {
        self.k
    }

    /// Groups per unit.
    pub fn groups(&self) -> i64 {
        self.groups
    }

    /// The mechanisms the query uses.
    pub fn mechanism(&self) -> &'static str {
        let quantile = self
            .stats
            .iter()
            .any(|s| matches!(s, Stat::Quantile { .. }));
        let laplace = self
            .stats
            .iter()
            .any(|s| !matches!(s, Stat::Quantile { .. }));
        match (laplace, quantile) {
            (true, true) => "laplace+private_quantile",
            (false, true) => "private_quantile",
            _ => "laplace",
        }
    }
}

/// What counts a value's non-null rows: a bare column itself (shared with COUNT(column)),
/// an expression in its clamped form (which cannot fail on the data).
fn counted(v: &Value) -> (Expr, String) {
    let e = match &v.source {
        Expr::Column(_) => v.source.clone(),
        _ => v.clamped.clone(),
    };
    (e, v.to_string())
}

fn push(stats: &mut Vec<Stat>, s: Stat) -> usize {
    if let Some(i) = stats.iter().position(|x| *x == s) {
        return i;
    }
    stats.push(s);
    stats.len() - 1
}

/// A table provider over a dataset version's Parquet files that yields only `columns`.
///
/// Every column is nullable here whatever the file says: a file written from data without
/// NULLs may mark a column required, and the optimizer would then fold `x IS NULL` to
/// false, so that whether a query plans (or fails) would tell whether any row is NULL.
pub fn dataset_table(
    version: &DatasetVersion,
    file_schema: &Schema,
    columns: &[String],
) -> Result<Arc<ListingTable>> {
    let fields: Vec<Field> = file_schema
        .fields()
        .iter()
        .filter(|f| columns.iter().any(|c| c == f.name()))
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let urls = crate::atrest::file_urls((&version.name, version.version), &version.data_files())?;
    // The files' decryption comes from the session's dataset keys, by the version's name
    // (and each file's part, by its name).
    let options = ListingOptions::new(Arc::new(crate::atrest::parquet_format(
        &version.name,
        version.version,
    )))
    .with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema);
    Ok(Arc::new(ListingTable::try_new(config)?))
}

/// One dataset as the core reads it: its scan, its view expressions and its alias.
pub struct RelationInput {
    /// The qualifier the query uses.
    pub alias: String,
    /// Scan of the scenario's columns plus the privacy unit.
    pub scan: Arc<ListingTable>,
    /// The view's (desensitizing) expressions over the scan's columns.
    pub view: Vec<Expr>,
    /// A row's identity for the differencing guard: its raw content as text (the same in
    /// every scenario and version), never seen by a module.
    pub identity: Expr,
}

/// What the mediator needs to run the core of a query.
pub struct CoreInput<'a> {
    /// The accepted query.
    pub accepted: &'a Accepted,
    /// Its statistics.
    pub stats: &'a StatPlan,
    /// The datasets read, in the order of `accepted.relations`.
    pub relations: Vec<RelationInput>,
    /// The privacy unit column the rows are bounded by (qualified), if any.
    pub unit: Option<ColRef>,
    /// Most rows any unit has in the data read (after a join, the product).
    pub max_unit_rows: i64,
    /// Whether the (single) dataset's file carries the ingest-time rank column, and the
    /// relation's view passes it through.
    pub ranked: bool,
    /// Rows of the (single) dataset after per-unit bounding, as recorded at ingest.
    pub recorded_rows: Option<i64>,
    /// Salt of the query's groups-per-unit choice: every pass over the rows of one query
    /// keeps the same groups.
    pub salt: u64,
}

impl CoreInput<'_> {
    /// Whether the groups-per-unit bound has work to do: a grouped query, a bound below
    /// the rows a unit may keep, and units in the data with more rows than the bound.
    pub fn bounds_groups(&self) -> bool {
        self.unit.is_some()
            && !self.accepted.group_keys.is_empty()
            && self.stats.groups < self.stats.k
            && self.max_unit_rows > self.stats.groups
    }
}

/// Whether a stored file carries the ingest-time rank of each row within its unit.
pub fn has_rank(file_schema: &Schema) -> bool {
    file_schema
        .field_with_name(crate::ingest::RANK_COLUMN)
        .is_ok()
}

/// Exact values per cell, before noise. Keys are group values as text.
pub struct Exact {
    /// Aggregate statistics per cell (one slot per statistic; quantile slots unused).
    cells: HashMap<Vec<Option<String>>, Vec<f64>>,
    /// Clamped values per cell, for each quantile statistic.
    values: HashMap<usize, HashMap<Vec<Option<String>>, Vec<f64>>>,
}

/// The views (joined on the privacy unit when two), the module's filters and the per-unit
/// bounding: the rows a query may use.
fn bounded_rows(input: &CoreInput<'_>) -> Result<LogicalPlanBuilder> {
    bounded_rows_with(input, false)
}

/// Column of a row's identity in the `i`th dataset, in [`bounded_rows_with`]'s rows.
fn row_identity_column(i: usize) -> String {
    format!("__sandbox_row{i}")
}

/// [`bounded_rows`], with each dataset's row identity beside the view's columns when
/// `identity` is set.
fn bounded_rows_with(input: &CoreInput<'_>, identity: bool) -> Result<LogicalPlanBuilder> {
    let joined = input.accepted.join.is_some();
    // Contribution bounding without the ingest-time rank (after a join): k rows of each
    // unit chosen by a keyed hash of their content, so it needs the rows' identities.
    let sampled =
        input.unit.is_some() && input.max_unit_rows > input.stats.k && (joined || !input.ranked);
    let mut sides = Vec::new();
    for (i, r) in input.relations.iter().enumerate() {
        let mut view = r.view.clone();
        if identity || sampled {
            view.push(r.identity.clone().alias(row_identity_column(i)));
        }
        sides.push(
            LogicalPlanBuilder::scan(r.alias.clone(), provider_as_source(r.scan.clone()), None)?
                .project(view)?
                .alias(r.alias.clone())?
                .build()?,
        );
    }
    let mut sides = sides.into_iter();
    let first = sides
        .next()
        .ok_or_else(|| Error::Internal("a query without a dataset".into()))?;
    let mut b = LogicalPlanBuilder::from(first);
    if let (Some(right), Some((l, r))) = (sides.next(), &input.accepted.join) {
        b = b.join_on(
            right,
            datafusion::logical_expr::JoinType::Inner,
            vec![l.expr().eq(r.expr())],
        )?;
    }
    for f in &input.accepted.filters {
        b = b.filter(f.clone())?;
    }
    if input.unit.is_some() && input.max_unit_rows > input.stats.k && !joined && input.ranked {
        // Contribution bounding on one dataset: ingest ranked each unit's rows, so keeping
        // k of them is a filter, not a sort.
        let alias = &input.relations[0].alias;
        b = b.filter(
            col(Column::new(Some(alias.clone()), crate::ingest::RANK_COLUMN))
                .lt_eq(lit(input.stats.k)),
        )?;
    } else if let Some(unit) = &input.unit
        && sampled
    {
        // Contribution bounding after a join: keep at most k rows of each unit, chosen by
        // a hash of the query's salt and the rows' content. A fresh choice each query (as
        // random as the salt), and the same in every pass over the rows of one query (the
        // units' contributions and the aggregate of threshold mode) and wherever it runs
        // (locally or on a cluster's partitions). Rows tied are identical rows.
        let mut parts = vec![lit(format!("{:016x}", input.salt))];
        parts.extend((0..input.relations.len()).map(|i| col(row_identity_column(i))));
        let order = datafusion::functions::expr_fn::md5(datafusion::functions::expr_fn::concat_ws(
            lit("\u{1e}"),
            parts,
        ));
        let rn = datafusion::functions_window::expr_fn::row_number()
            .partition_by(vec![unit.expr()])
            .order_by(vec![order.sort(true, false)])
            .build()?
            .alias("__sandbox_rn");
        b = b
            .window(vec![rn])?
            .filter(col("__sandbox_rn").lt_eq(lit(input.stats.k)))?;
    }
    if let Some(unit) = &input.unit
        && input.bounds_groups()
    {
        // Groups per unit: each unit keeps the rows of at most g of its groups, chosen by
        // a hash of the key under a fresh salt (the same choice for all of a group's rows,
        // a different one each query).
        let salt = format!("{:016x}", input.salt);
        let mut parts = vec![lit(salt)];
        parts.extend(
            input
                .accepted
                .group_keys
                .iter()
                .map(|g| cast(g.expr.clone(), DataType::Utf8)),
        );
        let order =
            datafusion::functions::expr_fn::md5(datafusion::functions::expr_fn::concat(parts));
        let rank = datafusion::functions_window::expr_fn::dense_rank()
            .partition_by(vec![unit.expr()])
            .order_by(vec![order.sort(true, false)])
            .build()?
            .alias("__sandbox_group_rank");
        b = b
            .window(vec![rank])?
            .filter(col("__sandbox_group_rank").lt_eq(lit(input.stats.groups)))?;
    }
    Ok(b)
}

fn group_exprs(accepted: &Accepted) -> Vec<Expr> {
    accepted
        .group_keys
        .iter()
        .enumerate()
        .map(|(i, g)| g.expr.clone().alias(format!("__g{i}")))
        .collect()
}

/// The group keys of a result batch as text (the aggregate groups on native types; keys
/// become text only here, on the few grouped rows).
fn keys_of(batch: &RecordBatch, n_groups: usize) -> Result<Vec<StringArray>> {
    (0..n_groups)
        .map(|i| {
            let text = arrow::compute::cast(batch.column(i), &DataType::Utf8)?;
            text.as_any()
                .downcast_ref::<StringArray>()
                .cloned()
                .ok_or_else(|| Error::Internal("group key is not text".into()).into())
        })
        .collect()
}

fn key_at(keys: &[StringArray], r: usize) -> Vec<Option<String>> {
    keys.iter()
        .map(|k| (!k.is_null(r)).then(|| k.value(r).to_string()))
        .collect()
}

/// The bounded, clamped aggregate, run exactly: where `on` says (a cluster's executors
/// compute the aggregate; the clamped values of a quantile are read locally).
pub async fn run_core(on: &Placement<'_>, input: CoreInput<'_>) -> Result<Exact> {
    let ctx = on.ctx;
    let accepted = input.accepted;
    let stats = input.stats;
    let n_groups = accepted.group_keys.len();
    let mut aggs = Vec::new();
    let mut agg_slots = Vec::new();
    let mut divisors = Vec::new();
    let mut quantiles = Vec::new();
    // Distinct units counted, by their place in `aggs`.
    let mut units = Vec::new();
    for (i, s) in stats.stats.iter().enumerate() {
        let accumulator = s.accumulator(stats.summed_rows).map(|(_, a)| a);
        if let Stat::Units(u) = s {
            units.push((aggs.len(), i, u.expr()));
        }
        let (e, divisor) = match (s, accumulator) {
            (Stat::Count(None), _) => (count(lit(1i64)), 1.0),
            (Stat::Count(Some((e, _))), _) => (count(e.clone()), 1.0),
            (Stat::Units(u), _) => (
                datafusion::functions_aggregate::expr_fn::count_distinct(u.expr()),
                1.0,
            ),
            (Stat::Sum(v), Some(a)) => {
                a.sum(v.native_sum.clone().unwrap_or_else(|| v.clamped.clone()))
            }
            (Stat::SumSquares(v), Some(a)) => a.sum(v.clamped.clone() * v.clamped.clone()),
            (Stat::Quantile { value, .. }, _) => {
                quantiles.push((i, value.clamped.clone()));
                continue;
            }
            _ => return Err(Error::Internal("a sum without its accumulator".into()).into()),
        };
        aggs.push(e.alias(format!("__s{i}")));
        agg_slots.push(i);
        divisors.push(divisor);
    }
    let mut cells: HashMap<Vec<Option<String>>, Vec<f64>> = HashMap::new();
    let rows_only = accepted.filters.is_empty()
        && accepted.group_keys.is_empty()
        && accepted.relations.len() == 1
        && stats.stats.iter().all(|s| *s == Stat::Count(None));
    if let (true, Some(n)) = (rows_only, input.recorded_rows) {
        // COUNT(*) of a whole dataset: the bounded row count ingest recorded.
        cells.insert(Vec::new(), vec![n as f64; stats.stats.len()]);
    } else if !aggs.is_empty() {
        let rows = bounded_rows(&input)?;
        // A distinct count keeps its values as one array per cell, whose text cannot pass
        // 2 GiB with 32-bit offsets (a hundred million pseudonyms do): text units are
        // counted as large text, which has 64-bit ones.
        for (j, i, unit) in units {
            let wide = matches!(
                unit.get_type(rows.schema())?,
                DataType::Utf8 | DataType::Utf8View
            );
            if wide {
                aggs[j] = datafusion::functions_aggregate::expr_fn::count_distinct(cast(
                    unit,
                    DataType::LargeUtf8,
                ))
                .alias(format!("__s{i}"));
            }
        }
        let plan = rows.aggregate(group_exprs(accepted), aggs)?.build()?;
        let batches = on.collect(plan).await?;
        for batch in &batches {
            let keys = keys_of(batch, n_groups)?;
            let values: Vec<ArrayRef> = (0..agg_slots.len())
                .map(|j| arrow::compute::cast(batch.column(n_groups + j), &DataType::Float64))
                .collect::<std::result::Result<_, _>>()?;
            for r in 0..batch.num_rows() {
                let mut row = vec![0.0; stats.stats.len()];
                for (j, v) in values.iter().enumerate() {
                    if let Some(v) = v.as_any().downcast_ref::<Float64Array>()
                        && !v.is_null(r)
                    {
                        row[agg_slots[j]] = v.value(r) / divisors[j];
                    }
                }
                cells.insert(key_at(&keys, r), row);
            }
        }
    }
    let mut values = HashMap::new();
    for (i, clamped) in quantiles {
        // The clamped values themselves, per cell: they never leave this function's caller.
        let mut exprs = group_exprs(accepted);
        exprs.push(clamped.alias("__v"));
        let plan = bounded_rows(&input)?.project(exprs)?.build()?;
        let batches = ctx.execute_logical_plan(plan).await?.collect().await?;
        let mut per_cell: HashMap<Vec<Option<String>>, Vec<f64>> = HashMap::new();
        for batch in &batches {
            let keys = keys_of(batch, n_groups)?;
            let v = batch
                .column(n_groups)
                .as_any()
                .downcast_ref::<Float64Array>()
                .ok_or_else(|| Error::Internal("clamped values are not f64".into()))?;
            for r in 0..batch.num_rows() {
                if !v.is_null(r) && v.value(r).is_finite() {
                    per_cell
                        .entry(key_at(&keys, r))
                        .or_default()
                        .push(v.value(r));
                }
            }
        }
        values.insert(i, per_cell);
    }
    Ok(Exact { cells, values })
}

/// The declared categories of a column, if any.
pub fn categories(c: &ColRef, policy_of: &dyn Fn(&str) -> Option<Policy>) -> Option<Vec<String>> {
    policy_of(&c.dataset).and_then(|p| p.column(&c.name).and_then(|c| c.categories.clone()))
}

/// Whether a key's values are public: every column it reads declares its categories.
pub fn is_public(key: &GroupKey, policy_of: &dyn Fn(&str) -> Option<Policy>) -> bool {
    key.columns
        .iter()
        .all(|c| categories(c, policy_of).is_some())
}

/// The values a key can take, computed from the declared categories only (never from the
/// data): a column's categories as declared; an expression evaluated over every
/// combination of its columns' categories, distinct values in order of first appearance.
async fn key_values(
    ctx: &SessionContext,
    key: &GroupKey,
    policy_of: &dyn Fn(&str) -> Option<Policy>,
    type_of: &dyn Fn(&ColRef) -> Option<DataType>,
) -> Result<Vec<String>> {
    if let Some(c) = key.column() {
        return categories(c, policy_of)
            .ok_or_else(|| Error::Internal(format!("group key `{c}` has no categories")).into());
    }
    let mut rows: Vec<Vec<String>> = vec![Vec::new()];
    let mut fields = Vec::new();
    let mut rename = HashMap::new();
    for (i, c) in key.columns.iter().enumerate() {
        let cats = categories(c, policy_of)
            .ok_or_else(|| Error::Internal(format!("group key column `{c}` has no categories")))?;
        let data_type = type_of(c)
            .ok_or_else(|| Error::Internal(format!("group key column `{c}` has no type")))?;
        let mut next = Vec::with_capacity(rows.len() * cats.len());
        for prefix in &rows {
            for v in &cats {
                let mut row = prefix.clone();
                row.push(v.clone());
                next.push(row);
            }
        }
        if next.len() > MAX_CELLS {
            return Err(Error::Internal(format!("more than {MAX_CELLS} cells")).into());
        }
        rows = next;
        fields.push(Field::new(format!("__k{i}"), data_type, true));
        rename.insert(c.expr(), col(format!("__k{i}")));
    }
    let arrays: Vec<ArrayRef> = fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let text: ArrayRef = Arc::new(StringArray::from(
                rows.iter().map(|r| r[i].clone()).collect::<Vec<_>>(),
            ));
            arrow::compute::cast(&text, f.data_type())
        })
        .collect::<std::result::Result<_, _>>()?;
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?;
    let mem = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
    let expr = key
        .expr
        .clone()
        .transform_up(|e| match rename.get(&e) {
            Some(to) => Ok(Transformed::yes(to.clone())),
            None => Ok(Transformed::no(e)),
        })?
        .data;
    let plan = LogicalPlanBuilder::scan(
        "__sandbox_categories",
        provider_as_source(Arc::new(mem)),
        None,
    )?
    .project(vec![expr.alias("__key")])?
    .build()?;
    let mut out: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for batch in ctx.execute_logical_plan(plan).await?.collect().await? {
        let keys = keys_of(&batch, 1)?;
        for r in 0..batch.num_rows() {
            if let [Some(v)] = key_at(&keys, r).as_slice()
                && seen.insert(v.clone())
            {
                out.push(v.clone());
            }
        }
    }
    Ok(out)
}

/// The cells released: every combination of the keys' public values, in order.
pub async fn public_cells(
    ctx: &SessionContext,
    accepted: &Accepted,
    policy_of: &dyn Fn(&str) -> Option<Policy>,
    type_of: &dyn Fn(&ColRef) -> Option<DataType>,
) -> Result<Vec<Cell>> {
    let mut grid: Vec<Cell> = vec![Vec::new()];
    for g in &accepted.group_keys {
        let values = key_values(ctx, g, policy_of, type_of).await?;
        let mut next = Vec::with_capacity(grid.len() * values.len());
        for prefix in &grid {
            for v in &values {
                let mut cell = prefix.clone();
                cell.push(Some(v.clone()));
                next.push(cell);
            }
        }
        if next.len() > MAX_CELLS {
            return Err(Error::Internal(format!("more than {MAX_CELLS} cells")).into());
        }
        grid = next;
    }
    Ok(grid)
}

/// The noise applied to a whole answer.
#[derive(Debug, Clone, Serialize)]
pub struct NoisyAnswer {
    /// One entry per statistic.
    pub noise: Vec<NoiseReport>,
    /// ε the privacy maps report, summed (basic composition).
    pub epsilon: f64,
    /// ρ the privacy maps report, summed (zCDP composition).
    pub rho: f64,
    /// The noisy aggregate table (group keys `__g*` as text, outputs `__c*`).
    #[serde(skip)]
    pub batch: Option<RecordBatch>,
}

/// Adds noise to every statistic over the public cells, and derives the requested
/// aggregates (post-processing: AVG = noisy SUM / noisy COUNT, VAR from the noisy
/// moments, each clamped to what the bounds allow).
pub fn add_noise(
    exact: &Exact,
    grid: &[Vec<Option<String>>],
    plan: &StatPlan,
    spend: privacy::Spend,
    n_groups: usize,
) -> Result<NoisyAnswer> {
    add_noise_with(exact, grid, plan, spend, n_groups, None)
}

/// Key separator inside a thresholded histogram (group values are text).
const KEY_SEP: char = '\u{1f}';

/// Releases group keys from the data by τ-thresholding their noisy row counts (δ > 0),
/// then noises the other statistics over the released cells. Returns the cells, the
/// answer and the δ the privacy map reports.
pub fn add_noise_thresholded(
    exact: &Exact,
    plan: &StatPlan,
    epsilon: f64,
    delta: f64,
    n_groups: usize,
    max_cells: usize,
) -> Result<(Vec<Cell>, NoisyAnswer, f64)> {
    let j = plan
        .key_count
        .ok_or_else(|| Error::Internal("thresholding without a key count".into()))?;
    let eps_each = epsilon / plan.stats.len() as f64;
    let counts: HashMap<String, i64> = exact
        .cells
        .iter()
        .filter_map(|(key, row)| {
            let parts: Option<Vec<&str>> = key.iter().map(|k| k.as_deref()).collect();
            parts.map(|p| (p.join(&KEY_SEP.to_string()), row[j] as i64))
        })
        .collect();
    let release = privacy::laplace_threshold(counts, plan.k, plan.groups, eps_each, delta)?;
    let mut keys: Vec<(String, i64)> = release.counts.into_iter().collect();
    keys.sort();
    keys.truncate(max_cells);
    let grid: Vec<Vec<Option<String>>> = keys
        .iter()
        .map(|(k, _)| k.split(KEY_SEP).map(|p| Some(p.to_string())).collect())
        .collect();
    let counts: Vec<f64> = keys.iter().map(|(_, c)| *c as f64).collect();
    let answer = add_noise_with(
        exact,
        &grid,
        plan,
        privacy::Spend::Pure(epsilon),
        n_groups,
        Some((j, counts, release.report)),
    )?;
    Ok((grid, answer, release.delta))
}

fn add_noise_with(
    exact: &Exact,
    grid: &[Vec<Option<String>>],
    plan: &StatPlan,
    spend: privacy::Spend,
    n_groups: usize,
    mut released: Option<(usize, Vec<f64>, NoiseReport)>,
) -> Result<NoisyAnswer> {
    let each = spend.share(plan.stats.len());
    let zero = vec![0.0; plan.stats.len()];
    let empty = HashMap::new();
    let mut noisy: Vec<Vec<f64>> = Vec::with_capacity(plan.stats.len());
    let mut reports = Vec::with_capacity(plan.stats.len());
    for (j, stat) in plan.stats.iter().enumerate() {
        if let Some((rj, values, report)) = released.take_if(|r| r.0 == j) {
            debug_assert_eq!(rj, j);
            noisy.push(values);
            reports.push(report);
            continue;
        }
        let column: Vec<f64> = grid
            .iter()
            .map(|cell| exact.cells.get(cell).unwrap_or(&zero)[j])
            .collect();
        match stat {
            s if s.is_count() => {
                let ints: Vec<i64> = column.iter().map(|v| *v as i64).collect();
                let (out, report) = privacy::noise_counts(&ints, plan.k, each)?;
                noisy.push(out.into_iter().map(|v| v as f64).collect());
                reports.push(report);
            }
            Stat::Quantile { value, alpha } => {
                let (lower, upper) = (&value.lower, &value.upper);
                let per_cell = exact.values.get(&j).unwrap_or(&empty);
                let cells: Vec<&[f64]> = grid
                    .iter()
                    .map(|cell| per_cell.get(cell).map_or(&[][..], Vec::as_slice))
                    .collect();
                let (out, report) =
                    privacy::private_quantiles(&cells, *lower, *upper, *alpha, plan.k, each)?;
                noisy.push(out);
                reports.push(report);
            }
            s => {
                let (out, report) =
                    privacy::noise_reals(&column, s.sensitivity(plan.k, plan.summed_rows), each)?;
                noisy.push(out);
                reports.push(report);
            }
        }
    }
    let batch = build_answer(grid, plan, &noisy, Some(&reports), n_groups)?;
    Ok(NoisyAnswer {
        epsilon: reports.iter().map(|r| r.epsilon).sum(),
        rho: reports.iter().map(|r| r.rho).sum(),
        noise: reports,
        batch: Some(batch),
    })
}

/// Builds the aggregate table from per-statistic values over the cells: group keys as
/// text, then each requested aggregate derived from its statistics, post-processed as
/// `accuracy` says (averages, variances and quantiles of too uncertain cells withheld,
/// sums kept to their sign). `reports` gives each statistic's noise (absent in threshold
/// mode): each noisy column carries its noise scale where it is one statistic released as
/// is, the half-width of its 95 % interval, its rounding unit and how many cells were
/// withheld, as field metadata.
fn build_answer(
    grid: &[Cell],
    plan: &StatPlan,
    values: &[Vec<f64>],
    reports: Option<&[NoiseReport]>,
    n_groups: usize,
) -> Result<RecordBatch> {
    use crate::accuracy::{self, META_CI95, META_ROUNDING, META_WITHHELD};
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for i in 0..n_groups {
        fields.push(Field::new(format!("__g{i}"), DataType::Utf8, true));
        arrays.push(Arc::new(StringArray::from(
            grid.iter().map(|c| c[i].clone()).collect::<Vec<_>>(),
        )));
    }
    let half = |j: usize| {
        reports
            .and_then(|r| r.get(j))
            .and_then(accuracy::half_width)
    };
    for (i, d) in plan.derive.iter().enumerate() {
        let name = format!("__c{i}");
        let mut meta = HashMap::new();
        // A statistic released as is carries its noise scale (post-processing keeps it
        // where a column passes through unchanged).
        let direct = match d {
            Derive::Count(j) | Derive::Sum(j) => Some(*j),
            Derive::Quantile { quantile, .. } => Some(*quantile),
            _ => None,
        };
        if let Some(r) = direct.and_then(|j| reports.and_then(|r| r.get(j))) {
            meta.insert(
                accuracy::META_NOISE_SCALE.to_string(),
                format!("{}", r.scale),
            );
        }
        let mut widest: Option<f64> = None;
        let mut withheld = 0usize;
        let mut keep = |v: Option<(f64, Option<accuracy::Interval>)>| match v {
            Some((v, i)) => {
                if let Some(i) = i {
                    widest = Some(widest.map_or(i.half_width(), |w| w.max(i.half_width())));
                }
                Some(v)
            }
            None => {
                withheld += 1;
                None
            }
        };
        let (derived, integer): (Vec<Option<f64>>, bool) = match d {
            Derive::Count(j) => {
                let out: Vec<Option<f64>> = values[*j]
                    .iter()
                    .map(|v| Some(v.max(0.0).round()))
                    .collect();
                widest = half(*j);
                (out, true)
            }
            Derive::Sum(j) => {
                let (lower, upper) = match &plan.stats[*j] {
                    Stat::Sum(v) => (v.lower, v.upper),
                    _ => (f64::NEG_INFINITY, f64::INFINITY),
                };
                widest = half(*j);
                (
                    values[*j]
                        .iter()
                        .map(|v| Some(accuracy::signed_sum(*v, lower, upper)))
                        .collect(),
                    false,
                )
            }
            Derive::Quantile { quantile, count } => {
                let h_count = half(*count);
                let rank_error = reports
                    .and_then(|r| r.get(*quantile))
                    .and_then(accuracy::quantile_rank_error);
                let out = values[*quantile]
                    .iter()
                    .zip(&values[*count])
                    .map(|(q, n)| {
                        keep(
                            accuracy::quantile_is_meaningful(*n, h_count, rank_error)
                                .then_some((*q, None)),
                        )
                    })
                    .collect();
                (out, false)
            }
            Derive::Avg {
                sum,
                count,
                lower,
                upper,
            } => {
                let (hs, hn) = (half(*sum), half(*count));
                let out = values[*sum]
                    .iter()
                    .zip(&values[*count])
                    .map(|(s, n)| keep(accuracy::average(*s, *n, hs, hn, *lower, *upper)))
                    .collect();
                (out, false)
            }
            Derive::Var {
                sum,
                squares,
                count,
                lower,
                upper,
                sqrt,
            } => {
                let h = match (half(*sum), half(*squares), half(*count)) {
                    (Some(a), Some(b), Some(c)) => Some((a, b, c)),
                    _ => None,
                };
                let out = values[*sum]
                    .iter()
                    .zip(&values[*squares])
                    .zip(&values[*count])
                    .map(|((s, s2), n)| {
                        keep(accuracy::variance(*s, *s2, *n, h, *lower, *upper, *sqrt))
                    })
                    .collect();
                (out, false)
            }
        };
        if reports.is_some() {
            if let Some(w) = widest {
                meta.insert(META_CI95.to_string(), accuracy::meta_number(w));
                if plan.rounding
                    && let Some(unit) = accuracy::rounding_unit(w, integer)
                {
                    meta.insert(META_ROUNDING.to_string(), format!("{unit}"));
                }
            }
            if withheld > 0 {
                meta.insert(META_WITHHELD.to_string(), withheld.to_string());
            }
        }
        if integer {
            fields.push(Field::new(name, DataType::Int64, false).with_metadata(meta));
            arrays.push(Arc::new(Int64Array::from(
                derived
                    .iter()
                    .map(|v| v.unwrap_or(0.0) as i64)
                    .collect::<Vec<_>>(),
            )));
        } else {
            fields.push(Field::new(name, DataType::Float64, true).with_metadata(meta));
            arrays.push(Arc::new(Float64Array::from(derived)));
        }
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?)
}

/// Threshold mode's rules, from the policies of the datasets read.
#[derive(Debug, Clone)]
pub struct ThresholdRules {
    /// Smallest number of units a released cell may describe.
    pub min_group_size: i64,
    /// nk-dominance: n largest contributors.
    pub dominance_n: usize,
    /// nk-dominance: their largest allowed share.
    pub dominance_k: f64,
    /// p% rule.
    pub p_ratio: f64,
}

/// Why a cell was suppressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Suppression {
    /// Fewer units than `min_group_size`.
    SmallCell,
    /// The n largest contributors dominate a sum.
    Dominance,
    /// The p% rule on a sum.
    PPercent,
    /// Its units differ from an earlier released cell's by fewer than `min_group_size`.
    Differencing,
    /// Secondary: would let a margin reveal a suppressed cell.
    Secondary,
}

/// What threshold mode released.
#[derive(Debug, Clone, Serialize)]
pub struct ThresholdAnswer {
    /// Suppressed cells, counted by reason.
    pub suppressed: HashMap<String, usize>,
    /// The exact aggregate table of the released cells.
    #[serde(skip)]
    pub batch: Option<RecordBatch>,
    /// Keys of the suppressed cells (for the output checks; never shown to the module).
    #[serde(skip)]
    pub withheld: Vec<Cell>,
    /// Each statistic's exact total over every cell, suppressed ones included (for the
    /// output checks; never shown to the module).
    #[serde(skip)]
    pub totals: Vec<f64>,
    /// The released cells' contributors, for the differencing guard's record.
    #[serde(skip)]
    pub released: Vec<Contributors>,
}

/// Exact values per cell and, for the rules, units and per-unit contributions to sums.
pub struct ExactThreshold {
    exact: Exact,
    units: HashMap<Cell, i64>,
    /// For each SUM statistic, the total and the largest of the units' contributions in
    /// each cell.
    contributions: HashMap<usize, HashMap<Cell, Dominance>>,
    /// The differencing guard's view of each cell: what each unit contributed.
    contributors: HashMap<Cell, Contributors>,
}

/// Runs the exact aggregate and what the disclosure rules need: units per cell, each
/// unit's contribution to every sum, and the differencing guard's contributors.
pub async fn run_threshold_core(
    on: &Placement<'_>,
    input: CoreInput<'_>,
    key: &GuardKey,
    rules: &ThresholdRules,
) -> Result<ExactThreshold> {
    let stats = input.stats;
    let unit_count = stats
        .unit_count
        .ok_or_else(|| Error::Internal("threshold mode without a unit count".into()))?;
    let (contributions, contributors) = cell_contributions(on, &input, key, rules).await?;
    // The distinct units of a cell are its contributors, counted by the aggregate above
    // (64-bit keyed hashes: two units of 10^8 collide with probability 3·10^-4): a distinct
    // count of the units themselves would hold every unit of a cell in one hash set,
    // which no pool can spill. The exact aggregate counts rows in their place.
    let mut plan = stats.clone();
    let mut counted = Vec::new();
    for (i, s) in plan.stats.iter_mut().enumerate() {
        if let (Stat::Units(u), Some(unit)) = (&*s, &input.unit)
            && u == unit
        {
            *s = Stat::Count(None);
            counted.push(i);
        }
    }
    let mut exact = run_core(
        on,
        CoreInput {
            stats: &plan,
            ..input
        },
    )
    .await?;
    for (cell, row) in exact.cells.iter_mut() {
        let n = contributors.get(cell).map_or(0, Contributors::len);
        for i in &counted {
            row[*i] = n as f64;
        }
    }
    let units = exact
        .cells
        .iter()
        .map(|(cell, row)| (cell.clone(), row[unit_count] as i64))
        .collect();
    Ok(ExactThreshold {
        exact,
        units,
        contributions,
        contributors,
    })
}

/// Per cell, what the rules read of its units: for every SUM statistic the total and the
/// largest of the units' absolute sums (the dominance and p% rules), and for the
/// differencing guard the cell's [`Contributors`]: each unit's hash with the order-free
/// hash of its rows' raw content (whatever statistics a query reads, a unit whose rows in
/// two cells are the same rows contributed the same). Two aggregates over the bounded
/// rows, by cell and unit then by cell, run where the placement says: the keyed hashes
/// are computed beside the rows ([`GuardHash`]) and the per-cell results by the guard's
/// aggregates ([`GuardAggregate`]), so a few kilobytes per cell come back whatever the
/// number of units (hashes, sketches and clamped sums, never a row's content).
#[allow(clippy::type_complexity)]
async fn cell_contributions(
    on: &Placement<'_>,
    input: &CoreInput<'_>,
    key: &GuardKey,
    rules: &ThresholdRules,
) -> Result<(
    HashMap<usize, HashMap<Cell, Dominance>>,
    HashMap<Cell, Contributors>,
)> {
    let accepted = input.accepted;
    let n_groups = accepted.group_keys.len();
    let by_unit = input.unit.is_some();
    let unit_hash = Arc::new(GuardHash::Unit.udf(Some(*key)));
    let row_hash = Arc::new(GuardHash::Row.udf(Some(*key)));
    let mut exprs = group_exprs(accepted);
    // The row's identity: its content in every dataset read (after a join, both sides).
    let parts: Vec<Expr> = (0..input.relations.len())
        .map(|i| col(row_identity_column(i)))
        .collect();
    let row = unit_hash.call(vec![cast(
        datafusion::functions::expr_fn::concat_ws(lit("\u{1e}"), parts),
        DataType::Utf8,
    )]);
    // Under row privacy a row is its own unit; identical rows are one contributor here,
    // whose contribution counts its copies.
    exprs.push(
        match &input.unit {
            Some(u) => unit_hash.call(vec![cast(u.expr(), DataType::Utf8)]),
            None => row.clone(),
        }
        .alias("__who"),
    );
    exprs.push(row_hash.call(vec![row]).alias("__h"));
    let sums: Vec<usize> = input
        .stats
        .stats
        .iter()
        .enumerate()
        .filter_map(|(i, s)| matches!(s, Stat::Sum(_)).then_some(i))
        .collect();
    for i in &sums {
        if let Stat::Sum(v) = &input.stats.stats[*i] {
            exprs.push(cast(v.clamped.clone(), DataType::Float64).alias(format!("__v{i}")));
        }
    }
    let mut per_unit = vec![sum(col("__h")).alias("__h"), count(lit(1i64)).alias("__n")];
    for i in &sums {
        per_unit.push(match by_unit {
            true => sum(col(format!("__v{i}"))).alias(format!("__s{i}")),
            // Identical rows have identical values: each copy's is the group's minimum.
            false => datafusion::functions_aggregate::expr_fn::min(col(format!("__v{i}")))
                .alias(format!("__s{i}")),
        });
    }
    let min_group_size = usize::try_from(rules.min_group_size).unwrap_or(0);
    let footprint = Arc::new(GuardAggregate::Footprint { min_group_size }.udaf());
    let dominance = Arc::new(
        GuardAggregate::Dominance {
            n: rules.dominance_n.max(2),
        }
        .udaf(),
    );
    let mut per_cell = vec![footprint.call(vec![col("__who"), col("__h")]).alias("__f")];
    for i in &sums {
        // A unit's sum once; under row privacy each copy of a row is a contributor.
        let copies = match by_unit {
            true => lit(1i64),
            false => col("__n"),
        };
        per_cell.push(
            dominance
                .call(vec![
                    cast(col(format!("__s{i}")), DataType::Float64),
                    copies,
                ])
                .alias(format!("__d{i}")),
        );
    }
    let cells: Vec<Expr> = (0..n_groups).map(|i| col(format!("__g{i}"))).collect();
    let mut units = cells.clone();
    units.push(col("__who"));
    let plan = bounded_rows_with(input, true)?
        .project(exprs)?
        // A unit without an identity is no one's (its rows are not counted).
        .filter(col("__who").is_not_null())?
        .aggregate(units, per_unit)?
        .aggregate(cells, per_cell)?
        .build()?;
    let bytes = |batch: &RecordBatch, name: &str| -> Result<BinaryArray> {
        batch
            .column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<BinaryArray>())
            .cloned()
            .ok_or_else(|| Error::Internal(format!("no `{name}` in the contributions")).into())
    };
    let mut contributions: HashMap<usize, HashMap<Cell, Dominance>> = HashMap::new();
    let mut contributors = HashMap::new();
    for batch in on.collect(plan).await? {
        let keys = keys_of(&batch, n_groups)?;
        let footprints = bytes(&batch, "__f")?;
        let dominances: Vec<BinaryArray> = sums
            .iter()
            .map(|i| bytes(&batch, &format!("__d{i}")))
            .collect::<Result<_>>()?;
        for r in 0..batch.num_rows() {
            let cell = key_at(&keys, r);
            for (stat, d) in sums.iter().zip(&dominances) {
                contributions
                    .entry(*stat)
                    .or_default()
                    .insert(cell.clone(), Dominance::from_bytes(d.value(r))?);
            }
            contributors.insert(cell, Contributors::from_bytes(footprints.value(r))?);
        }
    }
    Ok((contributions, contributors))
}

/// Applies the disclosure rules and releases the exact aggregates of the cells that pass:
/// primary suppression (small cells, nk-dominance, p%, then the differencing guard against
/// `earlier` cells and the query's own), then secondary suppression so that no line of the
/// table has exactly one suppressed cell (a margin minus the released cells would reveal
/// it).
pub fn apply_threshold(
    t: &ExactThreshold,
    plan: &StatPlan,
    rules: &ThresholdRules,
    n_groups: usize,
    max_cells: usize,
    earlier: &mut dyn Released,
) -> Result<ThresholdAnswer> {
    let mut cells: Vec<Cell> = t
        .units
        .keys()
        .filter(|c| c.iter().all(Option::is_some))
        .cloned()
        .collect();
    cells.sort();
    let mut reason: HashMap<Cell, Suppression> = HashMap::new();
    for c in &cells {
        let units = t.units.get(c).copied().unwrap_or(0);
        if units < rules.min_group_size {
            reason.insert(c.clone(), Suppression::SmallCell);
            continue;
        }
        for per_cell in t.contributions.values() {
            let Some(Dominance { total, top }) = per_cell.get(c) else {
                continue;
            };
            let total = *total;
            if total <= 0.0 {
                continue;
            }
            let top_n: f64 = top.iter().take(rules.dominance_n).sum();
            if top_n > rules.dominance_k * total {
                reason.insert(c.clone(), Suppression::Dominance);
                break;
            }
            let x1 = top.first().copied().unwrap_or(0.0);
            let x2 = top.get(1).copied().unwrap_or(0.0);
            if total - x1 - x2 < rules.p_ratio * x1 {
                reason.insert(c.clone(), Suppression::PPercent);
                break;
            }
        }
    }
    // The differencing guard, on the cells the rules above let through: against every cell
    // released earlier over the datasets, and against this query's cells before it (a unit
    // may have rows in several cells).
    let m = usize::try_from(rules.min_group_size).unwrap_or(0);
    let mut passed: Vec<&Contributors> = Vec::new();
    for c in &cells {
        if reason.contains_key(c) {
            continue;
        }
        let close = match t.contributors.get(c) {
            Some(units) => {
                let close =
                    passed.iter().any(|p| units.too_close(p, m)) || earlier.too_close(units, m)?;
                if !close {
                    passed.push(units);
                }
                close
            }
            // A cell the guard's pass did not see cannot be vouched for.
            None => true,
        };
        if close {
            reason.insert(c.clone(), Suppression::Differencing);
        }
    }
    // Secondary suppression along every dimension: within each line (cells equal on all
    // other keys), one suppressed cell among released ones takes the smallest released
    // cell with it. Repeat until no line has exactly one.
    if n_groups > 0 {
        loop {
            let mut changed = false;
            for dim in 0..n_groups {
                let mut lines: HashMap<Cell, Vec<&Cell>> = HashMap::new();
                for c in &cells {
                    let mut key = c.clone();
                    key.remove(dim);
                    lines.entry(key).or_default().push(c);
                }
                for line in lines.values() {
                    let suppressed = line.iter().filter(|c| reason.contains_key(**c)).count();
                    if suppressed != 1 {
                        continue;
                    }
                    let next = line
                        .iter()
                        .filter(|c| !reason.contains_key(**c))
                        .min_by_key(|c| t.units.get(**c).copied().unwrap_or(0));
                    if let Some(next) = next {
                        reason.insert((*next).clone(), Suppression::Secondary);
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
    }
    let released: Vec<Cell> = cells
        .iter()
        .filter(|c| !reason.contains_key(*c))
        .take(max_cells)
        .cloned()
        .collect();
    let zero = vec![0.0; plan.stats.len()];
    let values: Vec<Vec<f64>> = (0..plan.stats.len())
        .map(|j| {
            released
                .iter()
                .map(|c| t.exact.cells.get(c).unwrap_or(&zero)[j])
                .collect()
        })
        .collect();
    let batch = build_answer(&released, plan, &values, None, n_groups)?;
    let mut suppressed = HashMap::new();
    for r in reason.values() {
        let name = serde_json::to_value(r)?
            .as_str()
            .unwrap_or("suppressed")
            .to_string();
        *suppressed.entry(name).or_insert(0) += 1;
    }
    let mut totals = vec![0.0; plan.stats.len()];
    for c in &cells {
        for (j, v) in t.exact.cells.get(c).unwrap_or(&zero).iter().enumerate() {
            if let Some(total) = totals.get_mut(j) {
                *total += v;
            }
        }
    }
    let released = released
        .iter()
        .filter_map(|c| t.contributors.get(c).cloned())
        .collect();
    Ok(ThresholdAnswer {
        suppressed,
        batch: Some(batch),
        withheld: reason.keys().cloned().collect(),
        totals,
        released,
    })
}

/// Runs the module's post-processing (projection, HAVING, ORDER BY, LIMIT) over the
/// noisy table, in place of the original Aggregate.
pub async fn post_process(
    ctx: &SessionContext,
    original: &LogicalPlan,
    noisy: RecordBatch,
    n_groups: usize,
) -> Result<Vec<RecordBatch>> {
    let aggregate_schema = find_aggregate_schema(original)?;
    if let Some(batch) = select_columns(original, &aggregate_schema, &noisy)? {
        return Ok(vec![batch]);
    }
    let noisy_schema = noisy.schema();
    let mem = MemTable::try_new(noisy.schema(), vec![vec![noisy]])?;
    let scan =
        LogicalPlanBuilder::scan("__sandbox_answer", provider_as_source(Arc::new(mem)), None)?;
    let exprs: Vec<Expr> = aggregate_schema
        .iter()
        .enumerate()
        .map(|(i, (qualifier, field))| {
            let src = if i < n_groups {
                format!("__g{i}")
            } else {
                format!("__c{}", i - n_groups)
            };
            let source = col(Column::new_unqualified(src.clone()));
            let same_type = noisy_schema
                .field_with_name(&src)
                .is_ok_and(|f| f.data_type() == field.data_type());
            let e = if same_type {
                source
            } else {
                cast(source, field.data_type().clone())
            };
            e.alias_qualified(qualifier.cloned(), field.name())
        })
        .collect();
    let replacement = scan.project(exprs)?.build()?;
    let post = original
        .clone()
        .transform_up(|node| {
            if matches!(node, LogicalPlan::Aggregate(_)) {
                Ok(Transformed::yes(replacement.clone()))
            } else {
                Ok(Transformed::yes(node.recompute_schema()?))
            }
        })?
        .data;
    Ok(ctx.execute_logical_plan(post).await?.collect().await?)
}

/// When the module's SQL only selects and renames the aggregate's columns (the common
/// case), the answer is those columns of the noisy table: no second DataFusion run.
fn select_columns(
    original: &LogicalPlan,
    aggregate_schema: &datafusion::common::DFSchema,
    noisy: &RecordBatch,
) -> Result<Option<RecordBatch>> {
    let LogicalPlan::Projection(p) = original else {
        return Ok(None);
    };
    if !matches!(p.input.as_ref(), LogicalPlan::Aggregate(_)) {
        return Ok(None);
    }
    let out_schema = original.schema();
    let mut fields = Vec::with_capacity(p.expr.len());
    let mut arrays = Vec::with_capacity(p.expr.len());
    for (j, e) in p.expr.iter().enumerate() {
        let c = match e {
            Expr::Column(c) => c,
            Expr::Alias(a) => match a.expr.as_ref() {
                Expr::Column(c) => c,
                _ => return Ok(None),
            },
            _ => return Ok(None),
        };
        let Some(i) = aggregate_schema.maybe_index_of_column(c) else {
            return Ok(None);
        };
        let out = out_schema.field(j);
        let source = noisy.column(i);
        let noisy_field = noisy.schema().field(i).clone();
        let array = if source.data_type() == out.data_type() {
            source.clone()
        } else {
            arrow::compute::cast(source, out.data_type())?
        };
        let metadata = if source.data_type() == out.data_type() {
            noisy_field.metadata().clone()
        } else {
            HashMap::new()
        };
        fields.push(
            Field::new(out.name(), out.data_type().clone(), out.is_nullable())
                .with_metadata(metadata),
        );
        arrays.push(array);
    }
    Ok(Some(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        arrays,
    )?))
}

fn find_aggregate_schema(plan: &LogicalPlan) -> Result<datafusion::common::DFSchemaRef> {
    let mut found = None;
    plan.apply(|node| {
        if let LogicalPlan::Aggregate(a) = node {
            found = Some(a.schema.clone());
            return Ok(datafusion::common::tree_node::TreeNodeRecursion::Stop);
        }
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    })?;
    found.ok_or_else(|| Error::Internal("accepted plan has no aggregate".into()).into())
}
