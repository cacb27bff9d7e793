//! Shared set-up for Sandbox's benchmark harnesses: a domain with its principals, a
//! registered dataset and approved scenarios with budgets large enough for many queries.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

pub mod audit;

use sandbox_runtime::identity::{self, Role};
use sandbox_runtime::{Domain, scenarios};

/// The operator, provider and developer every harness acts as.
pub const OPERATOR: &str = "ops";
/// The provider.
pub const PROVIDER: &str = "provider";
/// The developer.
pub const DEVELOPER: &str = "dev";
/// The supervisor who consents to the harness's scenarios.
pub const SUPERVISOR: &str = "sup";

/// A new domain in `dir` with an operator, a provider and a developer.
pub fn domain_with_principals(dir: &Path) -> anyhow::Result<Domain> {
    domain_of_suite(dir, sandbox_core::Suite::Standard)
}

/// [`domain_with_principals`], of the cryptographic suite `suite`.
pub fn domain_of_suite(dir: &Path, suite: sandbox_core::Suite) -> anyhow::Result<Domain> {
    let root = dir.join("domain");
    let domain = Domain::init_crypto(
        &root,
        &Default::default(),
        &sandbox_runtime::MasterKey::beside(&root),
        suite,
    )?;
    identity::add(&domain, None, OPERATOR, Role::Operator)?;
    identity::add(&domain, Some(OPERATOR), PROVIDER, Role::Provider)?;
    identity::add(&domain, Some(OPERATOR), DEVELOPER, Role::Developer)?;
    identity::add(&domain, Some(OPERATOR), SUPERVISOR, Role::Supervisor)?;
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
        "name = \"{name}\"\npurpose = \"benchmark and accuracy harness of the mediator\"\nvalid_from = \"{today}\"\nvalid_until = \"{}\"\nresponse_plan = \"the operator's duty officer is called; the scenario's jobs are stopped; the developer notifies the data bureau within the hour\"\n[budget]\nepsilon = 100.0\nepsilon_per_query = {epsilon_per_query}\n[[dataset]]\nname = \"{dataset}\"\ncolumns = [{}]\n[agreement]\nrights_and_obligations = \"the developer uses the data for the stated purpose only and keeps the products' scope\"\nsecurity_requirements = \"no attempt to re-identify anyone; credentials kept by the named developer only\"\nlegal_basis = \"the data bureau's authorization of the public data operation\"\nbreach = \"suspension of the scenario, revocation of the authorization and liability under the agreement\"\n",
        today + chrono::Days::new(1),
        columns.join(", ")
    );
    let s = scenarios::apply(domain, DEVELOPER, &text)?;
    let key = s.id.to_string();
    sandbox_runtime::consent::consent(domain, PROVIDER, &key, None, None)?;
    sandbox_runtime::consent::consent(domain, SUPERVISOR, &key, None, None)?;
    Ok(scenarios::decide(domain, OPERATOR, &key, true, None)?.id)
}

/// The PUMS columns, privacy unit first.
pub const PUMS_COLUMNS: &[&str] = &["pid", "age", "sex", "educ", "race", "income", "married"];

/// The repository's examples folder.
pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// `PUMS_pid.csv` in the shared test data beside the repository.
pub fn pums_pid_csv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/pums/PUMS_pid.csv")
}

/// The median of the values (the upper one of an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

/// The mediated answer to `sql` in scenario `scenario_id`, asked by the developer at the
/// scenario's ε per query.
pub fn ask(
    domain: &Domain,
    scenario_id: i64,
    sql: &str,
) -> sandbox_runtime::Result<sandbox_runtime::mediate::Answer> {
    sandbox_runtime::mediate::answer(
        domain,
        &sandbox_runtime::mediate::QueryRequest {
            scenario_id,
            job_id: None,
            actor: DEVELOPER,
            sql,
            epsilon: None,
        },
    )
}

/// The `p` quantile (nearest rank) of the values; NaN when there are none.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n => sorted[((n - 1) as f64 * p).round() as usize],
    }
}

/// Raw DataFusion over a dataset version's stored file, as `table`: the baseline the
/// mediated path is compared with. The file is encrypted at rest, so the session reads it
/// through the domain's dataset keys as every reader must (and no more: no policy, no
/// bounds, no noise).
pub fn raw_session(
    rt: &tokio::runtime::Runtime,
    domain: &Domain,
    table: &str,
    v: &sandbox_runtime::catalog::DatasetVersion,
) -> anyhow::Result<datafusion::prelude::SessionContext> {
    let ctx = datafusion::prelude::SessionContext::new();
    ctx.runtime_env().register_parquet_encryption_factory(
        sandbox_mediator::atrest::FACTORY_ID,
        domain.mediator().dataset_keys().clone(),
    );
    let listing = rt.block_on(sandbox_mediator::atrest::file_table(
        &ctx.state(),
        (&v.name, v.version),
        &v.data_file(),
    ))?;
    ctx.register_table(table, std::sync::Arc::new(listing))?;
    Ok(ctx)
}
