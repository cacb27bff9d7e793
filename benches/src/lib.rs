//! Shared set-up for Sandbox's benchmarks: a domain holding `n` synthetic residents and an
//! approved scenario with a budget large enough for a benchmark's many queries.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use sandbox_runtime::identity::{self, Role};
use sandbox_runtime::{Domain, catalog, scenarios};

/// A domain for benchmarks.
pub struct BenchDomain {
    /// Keeps the directory alive.
    pub dir: tempfile::TempDir,
    /// The domain.
    pub domain: Domain,
    /// The approved scenario's id.
    pub scenario_id: i64,
    /// The stored Parquet file of `residents`.
    pub parquet: PathBuf,
}

/// Builds a domain with `n` residents.
pub fn bench_domain(n: usize) -> anyhow::Result<BenchDomain> {
    let dir = tempfile::tempdir()?;
    let domain = Domain::init(&dir.path().join("domain"))?;
    let mut conn = domain.conn()?;
    identity::add(&mut conn, None, "ops", Role::Operator)?;
    identity::add(&mut conn, Some("ops"), "provider", Role::Provider)?;
    identity::add(&mut conn, Some("ops"), "dev", Role::Developer)?;
    let csv = dir.path().join("residents.csv");
    std::fs::write(&csv, sandbox_synth::residents_csv(n, 1))?;
    let v = catalog::add(
        &domain,
        "provider",
        &csv,
        sandbox_runtime::demo::RESIDENTS_POLICY,
    )?;
    let today = chrono::Utc::now().date_naive();
    let text = format!(
        "name = \"bench\"\npurpose = \"benchmark of the mediator\"\nvalid_from = \"{today}\"\nvalid_until = \"{}\"\n[budget]\nepsilon = 100.0\nepsilon_per_query = 0.0001\n[[dataset]]\nname = \"residents\"\ncolumns = [\"district\", \"age\", \"income\"]\n",
        today + chrono::Days::new(1)
    );
    let s = scenarios::apply(&domain, "dev", &text)?;
    let s = scenarios::decide(&domain, "ops", s.id, true, None)?;
    Ok(BenchDomain {
        parquet: v.data_file(),
        dir,
        domain,
        scenario_id: s.id,
    })
}
