//! The query path as the domain's callers see it: [`answer`] (what a job's query gets, or
//! a direct query for tools and tests), [`check`] and [`explain`] (what a developer sees
//! from `sandbox query check` and `explain`, without running or charging anything).

use sandbox_core::authz::Action;
use sandbox_store::authz::{self, On};

pub use sandbox_mediator::analyze::Accepted;
pub use sandbox_mediator::query::{ExplainedStat, MAX_SQL_BYTES};
pub use sandbox_mediator::{Answer, Explanation, QueryRequest, Refusal, Rule, batch_to_json};

use crate::{Domain, Result};

/// Answers a query, or refuses it; both are recorded. The mediator authorizes every query
/// itself (an active developer of a usable scenario under no stop).
pub fn answer(domain: &Domain, req: &QueryRequest<'_>) -> Result<Answer> {
    Ok(sandbox_mediator::query::answer(domain.mediator(), req)?)
}

/// Checks a query of a scenario (by id or name) against the policy without charging or
/// running it.
pub fn check(domain: &Domain, actor: &str, scenario: &str, sql: &str) -> Result<Accepted> {
    let scenario_id = read_scenario(domain, actor, scenario)?;
    Ok(sandbox_mediator::query::check(
        domain.mediator(),
        scenario_id,
        sql,
    )?)
}

/// Explains how a query would be answered: the clamp, the bounding, the noise with its ε.
pub fn explain(
    domain: &Domain,
    actor: &str,
    scenario: &str,
    sql: &str,
    epsilon: Option<f64>,
) -> Result<Explanation> {
    let scenario_id = read_scenario(domain, actor, scenario)?;
    Ok(sandbox_mediator::query::explain(
        domain.mediator(),
        scenario_id,
        sql,
        epsilon,
    )?)
}

/// The scenario's id, for a member who may read it.
fn read_scenario(domain: &Domain, actor: &str, key: &str) -> Result<i64> {
    let conn = domain.conn()?;
    let record = sandbox_store::scenarios::resolve(&conn, key)?;
    authz::authorize(&conn, actor, Action::ScenarioRead, On::Scenario(&record))?;
    Ok(record.id)
}
