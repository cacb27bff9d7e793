//! Differential privacy: noise from OpenDP's samplers, and the privacy-budget ledger.
//!
//! No noise is sampled here by hand: every draw goes through an OpenDP measurement
//! (discrete Laplace for integers, OpenDP's float-safe Laplace for reals), and the ε
//! charged is what the measurement's privacy map reports for the sensitivity, not what
//! was asked for.

use opendp::domains::{AtomDomain, VectorDomain};
use std::collections::HashMap;

use opendp::domains::MapDomain;
use opendp::measurements::{
    make_gaussian, make_laplace, make_laplace_threshold, make_private_quantile,
};
use opendp::measures::{Approximate, MaxDivergence, ZeroConcentratedDivergence};
use opendp::metrics::{
    AbsoluteDistance, L0PInfDistance, L1Distance, L2Distance, SymmetricDistance,
};

use sandbox_core::{Error, Result};

/// Noise applied to one statistic (a vector of cells).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NoiseReport {
    /// Mechanism name.
    pub mechanism: &'static str,
    /// Laplace scale b.
    pub scale: f64,
    /// L1 sensitivity of the statistic over its cells.
    pub sensitivity: f64,
    /// ε the privacy map reports for this sensitivity and scale (pure DP; 0 under zCDP).
    pub epsilon: f64,
    /// ρ the privacy map reports (zCDP; 0 under pure DP).
    pub rho: f64,
}

/// What one statistic may spend.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Spend {
    /// Pure DP: ε, Laplace noise.
    Pure(f64),
    /// Zero-concentrated DP: ρ, Gaussian noise.
    Zcdp(f64),
}

impl Spend {
    /// An even share of this spend for each of `n` statistics (basic composition holds
    /// for ε and for ρ alike).
    pub fn share(self, n: usize) -> Spend {
        let n = n.max(1) as f64;
        match self {
            Spend::Pure(e) => Spend::Pure(e / n),
            Spend::Zcdp(r) => Spend::Zcdp(r / n),
        }
    }

    /// Whether the privacy map's report fits within this spend.
    pub fn covers(self, r: &NoiseReport) -> bool {
        match self {
            Spend::Pure(e) => r.epsilon <= e * (1.0 + 1e-9),
            Spend::Zcdp(rho) => r.rho <= rho * (1.0 + 1e-9),
        }
    }
}

/// Noise for integer cells: discrete Laplace (pure) or discrete Gaussian (zCDP).
/// `sensitivity` bounds the change one unit makes to the vector in L1 and in L2.
pub fn noise_counts(
    cells: &[i64],
    sensitivity: i64,
    spend: Spend,
) -> Result<(Vec<i64>, NoiseReport)> {
    match spend {
        Spend::Pure(epsilon) => laplace_counts(cells, sensitivity, epsilon),
        Spend::Zcdp(rho) => {
            let scale = gaussian_scale(sensitivity as f64, rho)?;
            let meas = make_gaussian::<_, _, ZeroConcentratedDivergence>(
                VectorDomain::new(AtomDomain::<i64>::default()),
                L2Distance::<i64>::default(),
                scale,
                None,
            )
            .map_err(dp_err)?;
            let spent = meas.map(&sensitivity).map_err(dp_err)?;
            let noisy = meas.invoke(&cells.to_vec()).map_err(dp_err)?;
            Ok((
                noisy,
                NoiseReport {
                    mechanism: "discrete_gaussian",
                    scale,
                    sensitivity: sensitivity as f64,
                    epsilon: 0.0,
                    rho: spent,
                },
            ))
        }
    }
}

/// Noise for real cells: Laplace (pure) or Gaussian (zCDP), OpenDP's float-safe samplers.
pub fn noise_reals(
    cells: &[f64],
    sensitivity: f64,
    spend: Spend,
) -> Result<(Vec<f64>, NoiseReport)> {
    match spend {
        Spend::Pure(epsilon) => laplace_reals(cells, sensitivity, epsilon),
        Spend::Zcdp(rho) => {
            let scale = gaussian_scale(sensitivity, rho)?;
            if cells.iter().any(|c| !c.is_finite()) {
                return Err(Error::Internal("a cell to be noised is not finite".into()));
            }
            let meas = make_gaussian::<_, _, ZeroConcentratedDivergence>(
                VectorDomain::new(AtomDomain::<f64>::new_non_nan()),
                L2Distance::<f64>::default(),
                scale,
                None,
            )
            .map_err(dp_err)?;
            let spent = meas.map(&sensitivity).map_err(dp_err)?;
            let noisy = meas.invoke(&cells.to_vec()).map_err(dp_err)?;
            Ok((
                noisy,
                NoiseReport {
                    mechanism: "gaussian",
                    scale,
                    sensitivity,
                    epsilon: 0.0,
                    rho: spent,
                },
            ))
        }
    }
}

/// The Gaussian scale σ that spends ρ at L2 sensitivity Δ: ρ = Δ² / (2σ²).
pub fn gaussian_scale(sensitivity: f64, rho: f64) -> Result<f64> {
    if !(sensitivity.is_finite() && sensitivity > 0.0 && rho.is_finite() && rho > 0.0) {
        return Err(Error::Internal(format!(
            "bad noise parameters: sensitivity {sensitivity}, rho {rho}"
        )));
    }
    Ok(sensitivity / (2.0 * rho).sqrt())
}

fn dp_err(e: opendp::error::Error) -> Error {
    Error::Internal(format!("OpenDP: {e}"))
}

/// The Laplace scale that spends `epsilon` at L1 sensitivity `sensitivity`.
pub fn laplace_scale(sensitivity: f64, epsilon: f64) -> Result<f64> {
    if !(sensitivity.is_finite() && sensitivity > 0.0 && epsilon.is_finite() && epsilon > 0.0) {
        return Err(Error::Internal(format!(
            "bad noise parameters: sensitivity {sensitivity}, epsilon {epsilon}"
        )));
    }
    Ok(sensitivity / epsilon)
}

/// Adds discrete Laplace noise to integer cells (counts). `sensitivity` is the L1 bound
/// of the change one privacy unit can make to the whole vector.
pub fn laplace_counts(
    cells: &[i64],
    sensitivity: i64,
    epsilon: f64,
) -> Result<(Vec<i64>, NoiseReport)> {
    let scale = laplace_scale(sensitivity as f64, epsilon)?;
    let meas = make_laplace::<_, _, MaxDivergence>(
        VectorDomain::new(AtomDomain::<i64>::default()),
        L1Distance::<i64>::default(),
        scale,
        None,
    )
    .map_err(dp_err)?;
    let spent = meas.map(&sensitivity).map_err(dp_err)?;
    let noisy = meas.invoke(&cells.to_vec()).map_err(dp_err)?;
    Ok((
        noisy,
        NoiseReport {
            mechanism: "discrete_laplace",
            scale,
            sensitivity: sensitivity as f64,
            epsilon: spent,
            rho: 0.0,
        },
    ))
}

/// Adds Laplace noise to real cells (sums), with OpenDP's float-safe sampler.
pub fn laplace_reals(
    cells: &[f64],
    sensitivity: f64,
    epsilon: f64,
) -> Result<(Vec<f64>, NoiseReport)> {
    let scale = laplace_scale(sensitivity, epsilon)?;
    if cells.iter().any(|c| !c.is_finite()) {
        return Err(Error::Internal("a cell to be noised is not finite".into()));
    }
    let meas = make_laplace::<_, _, MaxDivergence>(
        VectorDomain::new(AtomDomain::<f64>::new_non_nan()),
        L1Distance::<f64>::default(),
        scale,
        None,
    )
    .map_err(dp_err)?;
    let spent = meas.map(&sensitivity).map_err(dp_err)?;
    let noisy = meas.invoke(&cells.to_vec()).map_err(dp_err)?;
    Ok((
        noisy,
        NoiseReport {
            mechanism: "laplace",
            scale,
            sensitivity,
            epsilon: spent,
            rho: 0.0,
        },
    ))
}

/// What [`laplace_threshold`] released.
#[derive(Debug, Clone)]
pub struct ThresholdRelease {
    /// Keys whose noisy count reached the threshold, with that noisy count.
    pub counts: HashMap<String, i64>,
    /// The threshold τ.
    pub threshold: i64,
    /// δ the privacy map reports.
    pub delta: f64,
    /// The noise.
    pub report: NoiseReport,
}

/// Releases the keys of `counts` whose noisy count reaches a threshold τ, with their noisy
/// counts (OpenDP's Laplace threshold: stability-based histogram). One unit adds at most
/// `k` rows in at most `groups` keys (l0 ≤ groups ≤ k, l1 and l∞ ≤ k). τ is set in closed
/// form so that δ ≤ `delta`, then checked against the privacy map.
pub fn laplace_threshold(
    counts: HashMap<String, i64>,
    k: i64,
    groups: i64,
    epsilon: f64,
    delta: f64,
) -> Result<ThresholdRelease> {
    if !(delta > 0.0 && delta < 1.0) {
        return Err(Error::Internal(format!("bad δ {delta} for a threshold")));
    }
    let scale = laplace_scale(k as f64, epsilon)?;
    let l0 = u32::try_from(groups.clamp(1, k.max(1)))
        .map_err(|_| Error::Internal("groups out of range".into()))?;
    let d_in = (l0, k, k);
    // A key held by one unit has a count of at most k; it passes τ with probability about
    // exp(-(τ - k) / scale), and one unit holds at most l0 such keys.
    let mut threshold = k + (scale * (f64::from(l0) / delta).ln()).ceil() as i64 + 1;
    for _ in 0..16 {
        let meas = make_laplace_threshold::<_, _, Approximate<MaxDivergence>>(
            MapDomain::new(
                AtomDomain::<String>::default(),
                AtomDomain::<i64>::default(),
            ),
            L0PInfDistance(AbsoluteDistance::<i64>::default()),
            scale,
            threshold,
            None,
        )
        .map_err(dp_err)?;
        let (spent, spent_delta) = meas.map(&d_in).map_err(dp_err)?;
        if spent_delta <= delta {
            let released = meas.invoke(&counts).map_err(dp_err)?;
            return Ok(ThresholdRelease {
                counts: released,
                threshold,
                delta: spent_delta,
                report: NoiseReport {
                    mechanism: "laplace_threshold",
                    scale,
                    sensitivity: k as f64,
                    epsilon: spent,
                    rho: 0.0,
                },
            });
        }
        threshold += scale.ceil() as i64 + 1;
    }
    Err(Error::Internal(format!(
        "no threshold reaches δ {delta} at scale {scale}"
    )))
}

/// Candidates of the private quantile: evenly spaced over the column's bounds.
pub const QUANTILE_CANDIDATES: usize = 1024;

/// A quantile of each cell's clamped values with OpenDP's private quantile (exponential
/// mechanism over candidates spread evenly over the bounds). `k` is the most rows one unit
/// contributes in all cells together; the privacy map is linear in that distance, so the ε
/// reported for distance k bounds the whole vector of cells.
pub fn private_quantiles(
    cells: &[&[f64]],
    lower: f64,
    upper: f64,
    alpha: f64,
    k: i64,
    spend: Spend,
) -> Result<(Vec<f64>, NoiseReport)> {
    let epsilon = match spend {
        Spend::Pure(e) => e,
        Spend::Zcdp(rho) => return private_quantiles_zcdp(cells, lower, upper, alpha, k, rho),
    };
    if !(lower.is_finite() && upper.is_finite() && lower < upper && (0.0..=1.0).contains(&alpha)) {
        return Err(Error::Internal(format!(
            "bad quantile parameters [{lower}, {upper}] alpha {alpha}"
        )));
    }
    let _ = laplace_scale(k as f64, epsilon)?;
    let step = (upper - lower) / (QUANTILE_CANDIDATES - 1) as f64;
    let candidates: Vec<f64> = (0..QUANTILE_CANDIDATES)
        .map(|i| lower + step * i as f64)
        .collect();
    let d_in = u32::try_from(k).map_err(|_| Error::Internal("k out of range".into()))?;
    let build = |scale: f64| {
        make_private_quantile(
            VectorDomain::new(AtomDomain::<f64>::new_non_nan()),
            SymmetricDistance,
            MaxDivergence,
            candidates.clone(),
            alpha,
            scale,
        )
        .map_err(dp_err)
    };
    // ε is inversely proportional to the scale: one probe gives the scale in closed form.
    let at_one = build(1.0)?.map(&d_in).map_err(dp_err)?;
    let mut scale = at_one / epsilon;
    let mut meas = build(scale)?;
    let mut spent = meas.map(&d_in).map_err(dp_err)?;
    if spent > epsilon {
        scale *= spent / epsilon * (1.0 + 1e-12);
        meas = build(scale)?;
        spent = meas.map(&d_in).map_err(dp_err)?;
    }
    let mut out = Vec::with_capacity(cells.len());
    for cell in cells {
        let values: Vec<f64> = cell.iter().map(|v| v.clamp(lower, upper)).collect();
        out.push(meas.invoke(&values).map_err(dp_err)?);
    }
    Ok((
        out,
        NoiseReport {
            mechanism: "private_quantile",
            scale,
            sensitivity: k as f64,
            epsilon: spent,
            rho: 0.0,
        },
    ))
}

fn quantile_candidates(lower: f64, upper: f64) -> Vec<f64> {
    let step = (upper - lower) / (QUANTILE_CANDIDATES - 1) as f64;
    (0..QUANTILE_CANDIDATES)
        .map(|i| lower + step * i as f64)
        .collect()
}

/// The private quantile under zCDP: ρ falls with the square of the scale, so one probe
/// gives the scale in closed form.
fn private_quantiles_zcdp(
    cells: &[&[f64]],
    lower: f64,
    upper: f64,
    alpha: f64,
    k: i64,
    rho: f64,
) -> Result<(Vec<f64>, NoiseReport)> {
    if !(lower.is_finite() && upper.is_finite() && lower < upper && (0.0..=1.0).contains(&alpha)) {
        return Err(Error::Internal(format!(
            "bad quantile parameters [{lower}, {upper}] alpha {alpha}"
        )));
    }
    let _ = gaussian_scale(k as f64, rho)?;
    let candidates = quantile_candidates(lower, upper);
    let d_in = u32::try_from(k).map_err(|_| Error::Internal("k out of range".into()))?;
    let build = |scale: f64| {
        make_private_quantile(
            VectorDomain::new(AtomDomain::<f64>::new_non_nan()),
            SymmetricDistance,
            ZeroConcentratedDivergence,
            candidates.clone(),
            alpha,
            scale,
        )
        .map_err(dp_err)
    };
    let at_one = build(1.0)?.map(&d_in).map_err(dp_err)?;
    let mut scale = (at_one / rho).sqrt();
    let mut meas = build(scale)?;
    let mut spent = meas.map(&d_in).map_err(dp_err)?;
    if spent > rho {
        scale *= (spent / rho).sqrt() * (1.0 + 1e-12);
        meas = build(scale)?;
        spent = meas.map(&d_in).map_err(dp_err)?;
    }
    let mut out = Vec::with_capacity(cells.len());
    for cell in cells {
        let values: Vec<f64> = cell.iter().map(|v| v.clamp(lower, upper)).collect();
        out.push(meas.invoke(&values).map_err(dp_err)?);
    }
    Ok((
        out,
        NoiseReport {
            mechanism: "private_quantile",
            scale,
            sensitivity: k as f64,
            epsilon: 0.0,
            rho: spent,
        },
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn privacy_map_matches_request() {
        let (_, r) = laplace_counts(&[10, 20], 1, 0.5).unwrap();
        assert!((r.epsilon - 0.5).abs() < 1e-9, "{r:?}");
        assert_eq!(r.scale, 2.0);
        let (_, r) = laplace_reals(&[10.0], 500_000.0, 1.0).unwrap();
        assert!(r.epsilon <= 1.0 + 1e-9 && r.epsilon > 0.99, "{r:?}");
    }

    #[test]
    fn count_noise_has_laplace_spread() {
        // Discrete Laplace with scale b has variance ≈ 2b² for large b.
        let n = 20_000;
        let (noisy, r) = laplace_counts(&vec![0; n], 1, 0.1).unwrap();
        let mean = noisy.iter().sum::<i64>() as f64 / n as f64;
        let var = noisy
            .iter()
            .map(|&x| (x as f64 - mean).powi(2))
            .sum::<f64>()
            / n as f64;
        let expected = 2.0 * r.scale * r.scale;
        // Standard error of the mean is sqrt(var / n) ≈ 0.1; allow 5 of them.
        assert!(mean.abs() < 0.5, "mean {mean}");
        assert!(
            (var / expected - 1.0).abs() < 0.1,
            "var {var} vs {expected}"
        );
    }

    #[test]
    fn real_noise_has_laplace_spread() {
        // Laplace(b) has variance 2b². With n = 20,000 draws the sample variance has a
        // relative standard error of sqrt(5/n) ≈ 1.6%: 10% is more than six of them.
        let n = 20_000;
        let (noisy, r) = laplace_reals(&vec![100.0; n], 10.0, 1.0).unwrap();
        assert_eq!(r.scale, 10.0);
        let mean = noisy.iter().sum::<f64>() / n as f64;
        let var = noisy.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!((mean - 100.0).abs() < 0.6, "mean {mean}");
        assert!((var / 200.0 - 1.0).abs() < 0.1, "var {var}");
    }

    #[test]
    fn private_median_is_near_the_true_median() {
        let values: Vec<f64> = (0..2001).map(|i| i as f64 / 20.0).collect();
        let (out, r) = private_quantiles(&[&values], 0.0, 100.0, 0.5, 1, Spend::Pure(1.0)).unwrap();
        assert!(
            (r.epsilon - 1.0).abs() < 1e-6 && r.epsilon <= 1.0 + 1e-9,
            "{r:?}"
        );
        assert!((out[0] - 50.0).abs() < 5.0, "{out:?}");
    }

    #[test]
    fn threshold_releases_large_keys_and_hides_rare_ones() {
        let counts = HashMap::from([("common".to_string(), 500), ("rare".to_string(), 1)]);
        let r = laplace_threshold(counts, 1, 1, 1.0, 1e-6).unwrap();
        assert!(r.delta <= 1e-6, "{r:?}");
        assert!(r.threshold > 10, "{r:?}");
        assert!(r.counts.contains_key("common"));
        assert!(!r.counts.contains_key("rare"));
        assert!((r.report.epsilon - 1.0).abs() < 1e-9, "{r:?}");
    }

    #[test]
    fn fewer_groups_per_unit_lower_the_threshold() {
        let counts = HashMap::from([("a".to_string(), 500)]);
        let wide = laplace_threshold(counts.clone(), 8, 8, 1.0, 1e-6).unwrap();
        let narrow = laplace_threshold(counts, 8, 1, 1.0, 1e-6).unwrap();
        assert!(narrow.delta <= 1e-6 && wide.delta <= 1e-6);
        assert!(narrow.threshold < wide.threshold, "{narrow:?} {wide:?}");
    }

    #[test]
    fn gaussian_noise_spends_its_rho_with_the_right_spread() {
        let n = 20_000;
        let (noisy, r) = noise_reals(&vec![0.0; n], 2.0, Spend::Zcdp(0.5)).unwrap();
        // σ = Δ / sqrt(2ρ) = 2.
        assert!((r.scale - 2.0).abs() < 1e-12, "{r:?}");
        assert!((r.rho - 0.5).abs() < 1e-9 && r.rho <= 0.5 + 1e-12, "{r:?}");
        let var = noisy.iter().map(|x| x * x).sum::<f64>() / n as f64;
        // Relative standard error of the variance of a normal: sqrt(2/n) = 1%.
        assert!((var / 4.0 - 1.0).abs() < 0.06, "var {var}");
        let (_, r) = noise_counts(&[1, 2, 3], 1, Spend::Zcdp(0.125)).unwrap();
        assert!((r.rho - 0.125).abs() < 1e-9, "{r:?}");
        let values: Vec<f64> = (0..1001).map(|i| i as f64 / 10.0).collect();
        let (out, r) = private_quantiles(&[&values], 0.0, 100.0, 0.5, 1, Spend::Zcdp(0.5)).unwrap();
        assert!(r.rho <= 0.5 + 1e-9 && r.rho > 0.49, "{r:?}");
        assert!((out[0] - 50.0).abs() < 10.0, "{out:?}");
    }

    #[test]
    fn bad_parameters_are_refused() {
        assert!(laplace_counts(&[1], 0, 1.0).is_err());
        assert!(laplace_reals(&[1.0], 1.0, 0.0).is_err());
        assert!(laplace_reals(&[f64::NAN], 1.0, 1.0).is_err());
    }
}
