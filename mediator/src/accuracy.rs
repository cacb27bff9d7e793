//! What a released number can be trusted to, and the post-processing that follows from it.
//!
//! Everything here is post-processing of noisy statistics (free under DP): it reads the
//! noise each statistic got ([`NoiseReport`]) and the released values, never the data.
//!
//! - A 95 % interval for each statistic: `b · ln 20` for Laplace noise of scale `b`
//!   (P(|X| > t) = e^(−t/b)), `1.96 σ` for Gaussian noise. An average's and a variance's
//!   intervals are those of their sum, sum of squares and count combined by interval
//!   arithmetic (so somewhat wider than 95 %), then clamped to what the bounds allow.
//! - An average, variance, standard deviation or quantile is **withheld** (NULL) in a cell
//!   whose noisy count does not exceed its own interval (the cell may hold no one), or,
//!   for averages and variances, whose interval covers more than half of what the bounds
//!   allow (the number would say less than the policy already does), or, for quantiles,
//!   whose 95 % rank error is more than a quarter of the count (a median could then lie
//!   outside the quartiles).
//! - Counts are non-negative integers; a sum of values that cannot be negative (or
//!   positive) is not shown negative (or positive).
//! - The rounding unit a value supports: one decimal place below the leading digit of its
//!   interval's half-width (a half-width of 37 gives units, of 0.37 hundredths), at least 1
//!   for counts.

use crate::privacy::NoiseReport;
use sandbox_store::queries::ColumnAccuracy;

/// Field metadata: the scale of the noise of a column released as one statistic.
pub const META_NOISE_SCALE: &str = "sandbox.noise_scale";
/// Field metadata: the half-width of a column's 95 % interval (for a derived column, the
/// widest of its cells).
pub const META_CI95: &str = "sandbox.ci95";
/// Field metadata: the unit a column's values are best rounded to.
pub const META_ROUNDING: &str = "sandbox.rounding";
/// Field metadata: how many of a column's cells were withheld (NULL) as too uncertain.
pub const META_WITHHELD: &str = "sandbox.withheld";

/// z for a two-sided 95 % normal interval.
const Z95: f64 = 1.959_963_984_540_054;

/// Half-width of a 95 % interval of one noisy statistic, when its noise has one (the
/// private quantile's exponential mechanism has no additive scale).
pub fn half_width(report: &NoiseReport) -> Option<f64> {
    let h = match report.mechanism {
        "laplace" | "discrete_laplace" | "laplace_threshold" => report.scale * 20f64.ln(),
        "gaussian" | "discrete_gaussian" => report.scale * Z95,
        _ => return None,
    };
    h.is_finite().then_some(h)
}

/// The rank error a private quantile stays within 19 times in 20: OpenDP's report-noisy-
/// max over `m` candidates with noise of scale `s` (in ranks) picks a candidate whose
/// score is more than `t` below the best's with probability at most `m · e^(−t/s)`, so
/// `t = s · ln(20 m)`.
pub fn quantile_rank_error(report: &NoiseReport) -> Option<f64> {
    (report.mechanism == "private_quantile" && report.scale.is_finite())
        .then(|| report.scale * (20.0 * crate::privacy::QUANTILE_CANDIDATES as f64).ln())
}

/// Whether a private quantile of a cell means anything: someone is there (the count rule)
/// and its 95 % rank error is within a quarter of the cell's values (a median then lies
/// between the quartiles).
pub fn quantile_is_meaningful(count: f64, h_count: Option<f64>, rank_error: Option<f64>) -> bool {
    count_is_meaningful(count, h_count) && rank_error.is_none_or(|e| e <= count / 4.0)
}

/// The rounding unit a half-width supports (a power of ten), at least 1 for integers.
pub fn rounding_unit(half_width: f64, integer: bool) -> Option<f64> {
    if !(half_width.is_finite() && half_width > 0.0) {
        return integer.then_some(1.0);
    }
    let unit = 10f64.powi(half_width.log10().floor() as i32 - 1);
    Some(if integer { unit.max(1.0) } else { unit })
}

/// Rounds `v` to a multiple of `unit`.
pub fn round_to(v: f64, unit: f64) -> f64 {
    if unit <= 0.0 || !unit.is_finite() {
        return v;
    }
    let r = (v / unit).round() * unit;
    // Print-friendly: 0.1 · 3 is 0.30000000000000004 in floats.
    let decimals = (-unit.log10().floor()).clamp(0.0, 15.0) as i32;
    let f = 10f64.powi(decimals);
    (r * f).round() / f
}

/// Whether a noisy count says that the cell holds anyone: above its own interval.
pub fn count_is_meaningful(count: f64, count_half_width: Option<f64>) -> bool {
    count >= 1.0 && count > count_half_width.unwrap_or(0.0)
}

/// An interval, clamped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// Low end.
    pub lo: f64,
    /// High end.
    pub hi: f64,
}

impl Interval {
    fn around(v: f64, h: f64) -> Interval {
        Interval {
            lo: v - h,
            hi: v + h,
        }
    }

    fn clamp(self, lo: f64, hi: f64) -> Interval {
        Interval {
            lo: self.lo.clamp(lo, hi),
            hi: self.hi.clamp(lo, hi),
        }
    }

    /// Half its width.
    pub fn half_width(self) -> f64 {
        (self.hi - self.lo) / 2.0
    }

    /// `self / by` where `by` is positive throughout.
    fn over(self, by: Interval) -> Interval {
        let c = [
            self.lo / by.lo,
            self.lo / by.hi,
            self.hi / by.lo,
            self.hi / by.hi,
        ];
        Interval {
            lo: c.iter().copied().fold(f64::INFINITY, f64::min),
            hi: c.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }

    fn squared(self) -> Interval {
        let (a, b) = (self.lo * self.lo, self.hi * self.hi);
        if self.lo <= 0.0 && self.hi >= 0.0 {
            Interval {
                lo: 0.0,
                hi: a.max(b),
            }
        } else {
            Interval {
                lo: a.min(b),
                hi: a.max(b),
            }
        }
    }
}

/// An average's value and interval from its noisy sum and count, or `None` when it is
/// withheld. `h_sum`, `h_count`: their half-widths (none in threshold mode: exact).
pub fn average(
    sum: f64,
    count: f64,
    h_sum: Option<f64>,
    h_count: Option<f64>,
    lower: f64,
    upper: f64,
) -> Option<(f64, Option<Interval>)> {
    if !count_is_meaningful(count, h_count) {
        return None;
    }
    let value = (sum / count).clamp(lower, upper);
    let (Some(hs), Some(hn)) = (h_sum, h_count) else {
        return Some((value, None));
    };
    // Judged before clamping: an interval that falls outside the bounds is no narrower
    // for being cut to them.
    let raw = Interval::around(sum, hs).over(Interval::around(count, hn));
    if upper > lower && raw.hi - raw.lo > (upper - lower) / 2.0 {
        return None;
    }
    Some((value, Some(raw.clamp(lower, upper))))
}

/// A variance's value and interval from noisy sum, sum of squares and count (`None`:
/// withheld). With `sqrt`, a standard deviation's.
#[allow(clippy::too_many_arguments)]
pub fn variance(
    sum: f64,
    squares: f64,
    count: f64,
    h: Option<(f64, f64, f64)>,
    lower: f64,
    upper: f64,
    sqrt: bool,
) -> Option<(f64, Option<Interval>)> {
    let h_count = h.map(|h| h.2);
    if !count_is_meaningful(count, h_count) {
        return None;
    }
    let max_var = ((upper - lower) / 2.0).powi(2);
    let mean = (sum / count).clamp(lower, upper);
    let var = (squares / count - mean * mean).clamp(0.0, max_var);
    let finish = |v: f64| if sqrt { v.sqrt() } else { v };
    let Some((hs, hq, hn)) = h else {
        return Some((finish(var), None));
    };
    let n = Interval::around(count, hn);
    let mean_i = Interval::around(sum, hs).over(n).clamp(lower, upper);
    let second = Interval::around(squares, hq).over(n);
    let m2 = mean_i.squared();
    let raw = Interval {
        lo: second.lo - m2.hi,
        hi: second.hi - m2.lo,
    };
    // Judged before clamping, as an average's is.
    if max_var > 0.0 && raw.hi - raw.lo > max_var / 2.0 {
        return None;
    }
    let var_i = raw.clamp(0.0, max_var);
    let out = if sqrt {
        Interval {
            lo: var_i.lo.sqrt(),
            hi: var_i.hi.sqrt(),
        }
    } else {
        var_i
    };
    Some((finish(var), Some(out)))
}

/// A sum's value as the bounds allow its sign: a sum of non-negative values is not
/// negative, one of non-positive values not positive.
pub fn signed_sum(v: f64, lower: f64, upper: f64) -> f64 {
    if lower >= 0.0 {
        v.max(0.0)
    } else if upper <= 0.0 {
        v.min(0.0)
    } else {
        v
    }
}

/// A number for field metadata: four significant digits.
pub fn meta_number(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let digits = (3 - v.abs().log10().floor() as i32).clamp(0, 17) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// What each column of a final answer (after the module's post-processing) can be
/// trusted to, read from its field metadata, and the answer with every column rounded to
/// its unit when any has one (what the SDK gives a module by default).
pub fn of_answer(
    batch: &arrow::array::RecordBatch,
) -> crate::Result<(Vec<ColumnAccuracy>, Option<arrow::array::RecordBatch>)> {
    use arrow::array::{ArrayRef, Float64Array, Int64Array};
    use arrow::datatypes::DataType;
    let schema = batch.schema();
    let mut out = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    let mut any_rounded = false;
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        let meta = field.metadata();
        let number = |key: &str| meta.get(key).and_then(|v| v.trim().parse::<f64>().ok());
        let entry = ColumnAccuracy {
            column: field.name().clone(),
            noise_scale: number(META_NOISE_SCALE),
            ci95: number(META_CI95),
            rounding: number(META_ROUNDING),
            withheld: meta.get(META_WITHHELD).and_then(|v| v.trim().parse().ok()),
        };
        let mut rounded = column.clone();
        if let Some(unit) = entry.rounding {
            match field.data_type() {
                DataType::Float64 => {
                    if let Some(a) = column.as_any().downcast_ref::<Float64Array>() {
                        let r: Float64Array =
                            a.iter().map(|v| v.map(|v| round_to(v, unit))).collect();
                        rounded = std::sync::Arc::new(r);
                        any_rounded = true;
                    }
                }
                DataType::Int64 if unit > 1.0 => {
                    if let Some(a) = column.as_any().downcast_ref::<Int64Array>() {
                        let r: Int64Array = a
                            .iter()
                            .map(|v| v.map(|v| round_to(v as f64, unit) as i64))
                            .collect();
                        rounded = std::sync::Arc::new(r);
                        any_rounded = true;
                    }
                }
                _ => {}
            }
        }
        columns.push(rounded);
        if entry.noise_scale.is_some()
            || entry.ci95.is_some()
            || entry.rounding.is_some()
            || entry.withheld.is_some()
        {
            out.push(entry);
        }
    }
    let rounded = if any_rounded {
        Some(arrow::array::RecordBatch::try_new(schema, columns)?)
    } else {
        None
    };
    Ok((out, rounded))
}

/// The rounding units of the numbers a job received: each number of an answer column
/// that names a unit (the policy rounds it), as drawn and as rounded, with that unit.
/// What a module stages is held to them ([`round_staged`]), whether it asked for rounded
/// answers or not.
#[derive(Debug, Default, Clone)]
pub struct ReceivedUnits(Vec<(f64, f64)>);

impl ReceivedUnits {
    /// Adds an answer as recorded: its JSON rows and its columns' accuracy.
    pub fn add_answer(&mut self, answer_json: &str, accuracy: &[ColumnAccuracy]) {
        let units: std::collections::HashMap<&str, f64> = accuracy
            .iter()
            .filter_map(|c| Some((c.column.as_str(), c.rounding?)))
            .filter(|(_, u)| u.is_finite() && *u > 0.0)
            .collect();
        if units.is_empty() {
            return;
        }
        let Ok(serde_json::Value::Array(rows)) = serde_json::from_str(answer_json) else {
            return;
        };
        for row in rows {
            let serde_json::Value::Object(map) = row else {
                continue;
            };
            for (column, v) in map {
                if let (Some(unit), Some(x)) = (units.get(column.as_str()), v.as_f64())
                    && x.is_finite()
                {
                    self.0.push((x, *unit));
                }
            }
        }
    }

    /// Sorts what was added; call once after the last [`Self::add_answer`].
    pub fn seal(&mut self) {
        self.0
            .sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    }

    /// The unit of a number received exactly so; the coarsest when it came with several.
    fn unit_of(&self, x: f64) -> Option<f64> {
        let i = self.0.partition_point(|(v, _)| v.total_cmp(&x).is_lt());
        self.0[i..]
            .iter()
            .take_while(|(v, _)| v.total_cmp(&x).is_eq())
            .map(|(_, u)| *u)
            .reduce(f64::max)
    }

    /// Whether no answer of the job named a unit (its policies round nothing).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A staged table as the policies' rounding rule leaves it, whatever the module asked
/// for: a numeric column that names its unit (`sandbox.rounding`, as the SDK keeps it) is
/// rounded to it, and a numeric column every value of which is a number the job received
/// with a unit (an answer passed through as drawn, from `query_unrounded`) is rounded
/// cell by cell to those units. Numbers the module computed are left as they are (the
/// provenance check shows the reviewer which numbers trace to no answer). `None` when
/// nothing changes.
pub fn round_staged(
    batch: &arrow::array::RecordBatch,
    received: &ReceivedUnits,
) -> crate::Result<Option<arrow::array::RecordBatch>> {
    use arrow::array::{Array, ArrayRef, Float64Array, Int64Array};
    use arrow::datatypes::DataType;
    let schema = batch.schema();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    let mut changed = false;
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        let named = field
            .metadata()
            .get(META_ROUNDING)
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|u| u.is_finite() && *u > 0.0);
        let values: Vec<Option<f64>> = match field.data_type() {
            DataType::Float64 => column
                .as_any()
                .downcast_ref::<Float64Array>()
                .map(|a| a.iter().collect())
                .unwrap_or_default(),
            DataType::Int64 => column
                .as_any()
                .downcast_ref::<Int64Array>()
                .map(|a| a.iter().map(|v| v.map(|v| v as f64)).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let units: Option<Vec<Option<f64>>> = match named {
            Some(unit) => Some(values.iter().map(|v| v.map(|_| unit)).collect()),
            None if !received.is_empty() && values.iter().any(Option::is_some) => values
                .iter()
                .map(|v| match v {
                    None => Some(None),
                    Some(x) => received.unit_of(*x).map(Some),
                })
                .collect(),
            None => None,
        };
        let rounded = units.and_then(|units| {
            let cells = values.iter().zip(&units).map(|(v, u)| match (v, u) {
                (Some(v), Some(u)) => Some(round_to(*v, *u)),
                (v, _) => *v,
            });
            let out: ArrayRef = match field.data_type() {
                DataType::Float64 => std::sync::Arc::new(cells.collect::<Float64Array>()),
                _ => std::sync::Arc::new(
                    cells
                        .map(|v| v.map(|v| v.round() as i64))
                        .collect::<Int64Array>(),
                ),
            };
            (out.to_data() != column.to_data()).then_some(out)
        });
        match rounded {
            Some(r) => {
                columns.push(r);
                changed = true;
            }
            None => columns.push(column.clone()),
        }
    }
    if !changed {
        return Ok(None);
    }
    Ok(Some(arrow::array::RecordBatch::try_new(schema, columns)?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn laplace(scale: f64) -> NoiseReport {
        NoiseReport {
            mechanism: "laplace",
            scale,
            sensitivity: 1.0,
            epsilon: 1.0,
            rho: 0.0,
        }
    }

    #[test]
    fn laplace_interval_holds_95_percent() {
        let h = half_width(&laplace(2.0)).unwrap();
        // P(|X| > h) = e^(−h/b) = 1/20.
        assert!(((-h / 2.0f64).exp() - 0.05).abs() < 1e-12);
        let g = NoiseReport {
            mechanism: "gaussian",
            ..laplace(1.0)
        };
        assert!((half_width(&g).unwrap() - 1.96).abs() < 1e-3);
        let q = NoiseReport {
            mechanism: "private_quantile",
            ..laplace(1.0)
        };
        assert_eq!(half_width(&q), None);
    }

    #[test]
    fn rounding_follows_the_interval() {
        assert_eq!(rounding_unit(37.0, false), Some(1.0));
        assert_eq!(rounding_unit(0.37, false), Some(0.01));
        assert_eq!(rounding_unit(3700.0, false), Some(100.0));
        assert_eq!(rounding_unit(6.0, true), Some(1.0));
        assert_eq!(rounding_unit(600.0, true), Some(10.0));
        assert_eq!(round_to(1234.5678, 0.1), 1234.6);
        assert_eq!(round_to(1234.5678, 10.0), 1230.0);
        assert_eq!(round_to(0.1 * 3.0, 0.1), 0.3);
    }

    #[test]
    fn an_average_of_nobody_is_withheld_not_shown_as_a_bound() {
        // An hour with no trips: noisy count 2 of scale 2 (interval ±6), noisy sum 300.
        let h = half_width(&laplace(2.0));
        assert_eq!(average(300.0, 2.0, Some(400.0), h, 0.0, 180.0), None);
        assert_eq!(average(300.0, 0.0, None, None, 0.0, 180.0), None);
        assert_eq!(average(-5.0, -3.0, Some(1.0), h, 0.0, 180.0), None);
        // A thousand trips averaging 30 minutes: shown, with a narrow interval.
        let (v, i) = average(30_000.0, 1000.0, Some(1100.0), h, 0.0, 180.0).unwrap();
        assert_eq!(v, 30.0);
        let i = i.unwrap();
        assert!(i.lo < 30.0 && i.hi > 30.0 && i.half_width() < 2.0, "{i:?}");
        // Fifty trips with a sum noise of ±1,000: the interval covers most of [0, 180].
        assert_eq!(average(1500.0, 50.0, Some(4000.0), h, 0.0, 180.0), None);
        // Exact (threshold mode): shown whenever someone is there.
        assert_eq!(
            average(90.0, 3.0, None, None, 0.0, 180.0),
            Some((30.0, None))
        );
    }

    #[test]
    fn variance_is_withheld_when_its_interval_is_wide() {
        let h = half_width(&laplace(1.0)).unwrap();
        // 10,000 values of mean 50, variance 100 in [0, 100].
        let (n, s, q) = (10_000.0, 500_000.0, 10_000.0 * (100.0 + 2500.0));
        let (v, i) = variance(
            s,
            q,
            n,
            Some((h * 100.0, h * 10_000.0, h)),
            0.0,
            100.0,
            false,
        )
        .unwrap();
        assert!((v - 100.0).abs() < 1e-6, "{v}");
        assert!(i.unwrap().lo <= 100.0 && i.unwrap().hi >= 100.0);
        let (sd, _) = variance(
            s,
            q,
            n,
            Some((h * 100.0, h * 10_000.0, h)),
            0.0,
            100.0,
            true,
        )
        .unwrap();
        assert!((sd - 10.0).abs() < 1e-6);
        // Twenty values with the same noise: withheld.
        assert_eq!(
            variance(
                1000.0,
                52_000.0,
                20.0,
                Some((h * 100.0, h * 10_000.0, h)),
                0.0,
                100.0,
                false
            ),
            None
        );
    }

    #[test]
    fn an_interval_outside_the_bounds_is_not_narrow_for_being_cut_to_them() {
        let h = half_width(&laplace(7.0)).unwrap();
        // An empty cell whose noisy count passed its interval and whose noisy sum of
        // squares is far below zero: clamped, the variance's interval would be [0, 0].
        assert_eq!(
            variance(
                50.0,
                -90_000.0,
                25.0,
                Some((h * 100.0, h * 10_000.0, h)),
                0.0,
                100.0,
                true
            ),
            None
        );
    }

    #[test]
    fn sums_keep_the_sign_their_bounds_give() {
        assert_eq!(signed_sum(-3.0, 0.0, 10.0), 0.0);
        assert_eq!(signed_sum(3.0, -10.0, 0.0), 0.0);
        assert_eq!(signed_sum(-3.0, -1.0, 10.0), -3.0);
    }

    #[test]
    fn metadata_numbers_are_short() {
        assert_eq!(meta_number(5.991464547107979), "5.991");
        assert_eq!(meta_number(1234.5678), "1235");
        assert_eq!(meta_number(0.000123456), "0.0001235");
    }

    fn staged(values: Vec<Option<f64>>, counts: Vec<Option<i64>>) -> arrow::array::RecordBatch {
        use arrow::array::{Float64Array, Int64Array};
        use arrow::datatypes::{DataType, Field, Schema};
        let schema = Schema::new(vec![
            Field::new("mean_income", DataType::Float64, true),
            Field::new("n", DataType::Int64, true),
        ]);
        arrow::array::RecordBatch::try_new(
            std::sync::Arc::new(schema),
            vec![
                std::sync::Arc::new(Float64Array::from(values)),
                std::sync::Arc::new(Int64Array::from(counts)),
            ],
        )
        .unwrap()
    }

    fn accuracy(column: &str, rounding: Option<f64>) -> ColumnAccuracy {
        ColumnAccuracy {
            column: column.into(),
            noise_scale: None,
            ci95: None,
            rounding,
            withheld: None,
        }
    }

    #[test]
    fn answers_passed_through_unrounded_are_staged_rounded() {
        let mut received = ReceivedUnits::default();
        received.add_answer(
            r#"[{"avg_income": 51234.5678, "n": 1234}, {"avg_income": 48765.4321, "n": 987}]"#,
            &[
                accuracy("avg_income", Some(100.0)),
                accuracy("n", Some(10.0)),
            ],
        );
        received.seal();
        // The module renamed the columns and kept the values as drawn.
        let out = round_staged(
            &staged(vec![Some(51234.5678), None], vec![Some(1234), Some(987)]),
            &received,
        )
        .unwrap()
        .unwrap();
        let means = out
            .column(0)
            .as_any()
            .downcast_ref::<arrow::array::Float64Array>()
            .unwrap();
        assert_eq!(means.value(0), 51200.0);
        assert!(arrow::array::Array::is_null(means, 1));
        let counts = out
            .column(1)
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .unwrap();
        assert_eq!((counts.value(0), counts.value(1)), (1230, 990));
    }

    #[test]
    fn computed_numbers_and_unrounded_policies_are_left_alone() {
        let mut received = ReceivedUnits::default();
        received.add_answer(
            r#"[{"avg_income": 51234.5678, "n": 1234}]"#,
            &[accuracy("avg_income", Some(100.0)), accuracy("n", None)],
        );
        received.seal();
        // A column with a number no answer gave is the module's own (a year, a ratio).
        assert!(
            round_staged(
                &staged(
                    vec![Some(51234.5678), Some(0.25)],
                    vec![Some(2024), Some(1234)]
                ),
                &received
            )
            .unwrap()
            .is_none()
        );
        // A policy with `rounding = "none"` names no unit: nothing is rounded.
        let mut none = ReceivedUnits::default();
        none.add_answer(
            r#"[{"avg_income": 51234.5678}]"#,
            &[accuracy("avg_income", None)],
        );
        none.seal();
        assert!(
            round_staged(&staged(vec![Some(51234.5678)], vec![None]), &none)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_column_naming_its_unit_is_rounded_to_it() {
        use arrow::datatypes::{DataType, Field, Schema};
        let field = Field::new("x", DataType::Float64, true).with_metadata(
            [(META_ROUNDING.to_string(), "0.1".to_string())]
                .into_iter()
                .collect(),
        );
        let batch = arrow::array::RecordBatch::try_new(
            std::sync::Arc::new(Schema::new(vec![field])),
            vec![std::sync::Arc::new(arrow::array::Float64Array::from(vec![
                1.2345,
            ]))],
        )
        .unwrap();
        let out = round_staged(&batch, &ReceivedUnits::default())
            .unwrap()
            .unwrap();
        let x = out
            .column(0)
            .as_any()
            .downcast_ref::<arrow::array::Float64Array>()
            .unwrap();
        assert_eq!(x.value(0), 1.2);
    }
}
