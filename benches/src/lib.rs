//! Shared set-up for Sandbox's benchmarks and harnesses: a domain with its principals, a
//! registered dataset and approved scenarios with budgets large enough for many queries.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use sandbox_runtime::identity::{self, Role};
use sandbox_runtime::{Domain, catalog, scenarios};

/// The operator, provider and developer every harness acts as.
pub const OPERATOR: &str = "ops";
/// The provider.
pub const PROVIDER: &str = "provider";
/// The developer.
pub const DEVELOPER: &str = "dev";

/// A new domain in `dir` with an operator, a provider and a developer.
pub fn domain_with_principals(dir: &Path) -> anyhow::Result<Domain> {
    let domain = Domain::init(&dir.join("domain"))?;
    let mut conn = domain.conn()?;
    identity::add(&mut conn, None, OPERATOR, Role::Operator)?;
    identity::add(&mut conn, Some(OPERATOR), PROVIDER, Role::Provider)?;
    identity::add(&mut conn, Some(OPERATOR), DEVELOPER, Role::Developer)?;
    Ok(domain)
}

/// Applies for and approves a scenario over one dataset's columns, valid from today, with
/// ε 100 in total and `epsilon_per_query` per query. Returns its id.
pub fn approved_scenario(
    domain: &Domain,
    name: &str,
    dataset: &str,
    columns: &[&str],
    epsilon_per_query: f64,
) -> anyhow::Result<i64> {
    let today = chrono::Utc::now().date_naive();
    let columns: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
    let text = format!(
        "name = \"{name}\"\npurpose = \"benchmark and accuracy harness of the mediator\"\nvalid_from = \"{today}\"\nvalid_until = \"{}\"\n[budget]\nepsilon = 100.0\nepsilon_per_query = {epsilon_per_query}\n[[dataset]]\nname = \"{dataset}\"\ncolumns = [{}]\n",
        today + chrono::Days::new(1),
        columns.join(", ")
    );
    let s = scenarios::apply(domain, DEVELOPER, &text)?;
    Ok(scenarios::decide(domain, OPERATOR, s.id, true, None)?.id)
}

/// The PUMS columns, privacy unit first.
pub const PUMS_COLUMNS: &[&str] = &["pid", "age", "sex", "educ", "race", "income", "married"];

/// The repository's examples folder.
pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// A domain for the criterion bench.
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

/// Builds a domain with `n` synthetic residents.
pub fn bench_domain(n: usize) -> anyhow::Result<BenchDomain> {
    let dir = tempfile::tempdir()?;
    let domain = domain_with_principals(dir.path())?;
    let csv = dir.path().join("residents.csv");
    std::fs::write(&csv, sandbox_synth::residents_csv(n, 1))?;
    let v = catalog::add(
        &domain,
        PROVIDER,
        &csv,
        sandbox_runtime::demo::RESIDENTS_POLICY,
    )?;
    let scenario_id = approved_scenario(
        &domain,
        "bench",
        "residents",
        &["district", "age", "income"],
        0.0001,
    )?;
    Ok(BenchDomain {
        parquet: v.data_file(),
        dir,
        domain,
        scenario_id,
    })
}
