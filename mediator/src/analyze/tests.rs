//! The policy pass against a fake scope: two datasets held in memory (no files, no
//! store), planned by DataFusion the way the mediator plans, and judged by [`analyze`].

#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::view::ViewTable;
use datafusion::datasource::{MemTable, provider_as_source};
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::prelude::SessionContext;
use sandbox_core::refusal::{Refusal, Rule};
use sandbox_policies::Policy;

use super::{Accepted, Requested, Scope, analyze};

const RESIDENTS: &str = r#"
[dataset]
name = "residents"
summary = "Residents"
provider = "PSB"
privacy_unit = "citizen_id"

[[column]]
name = "citizen_id"
level = 4
access = "join_key"
desensitize = "keyed_hash"

[[column]]
name = "phone"
level = 4
access = "none"

[[column]]
name = "district"
level = 2
access = "group"
categories = ["heping", "hexi"]

[[column]]
name = "age"
level = 3
access = "filter"
bounds = [0, 120]

[[column]]
name = "income"
level = 3
access = "aggregate"
bounds = [0, 500000]

[[column]]
name = "tax"
level = 3
access = "aggregate"
bounds = [0, 100000]
"#;

const VISITS: &str = r#"
[dataset]
name = "visits"
summary = "Clinic visits"
provider = "Health Commission"
privacy_unit = "citizen_id"
max_rows_per_unit = 5

[[column]]
name = "citizen_id"
level = 4
access = "join_key"
desensitize = "keyed_hash"

[[column]]
name = "clinic"
level = 2
access = "group"

[[column]]
name = "cost"
level = 3
access = "aggregate"
bounds = [0, 20000]
"#;

/// A scope of in-memory datasets: the views the planner inlines, the policies, and the
/// columns the scenario includes.
struct FakeScope {
    ctx: SessionContext,
    policies: HashMap<String, Policy>,
    views: HashMap<String, LogicalPlan>,
    included: HashSet<(String, String)>,
}

impl Scope for FakeScope {
    fn policy(&self, dataset: &str) -> Option<&Policy> {
        self.policies.get(dataset)
    }
    fn includes(&self, dataset: &str, column: &str) -> bool {
        self.included
            .contains(&(dataset.to_string(), column.to_string()))
    }
    fn view_of(&self, plan: &LogicalPlan) -> Option<&str> {
        self.views
            .iter()
            .find(|(_, v)| *v == plan)
            .map(|(name, _)| name.as_str())
    }
}

impl FakeScope {
    /// Both datasets, with every column but `excluded` in the scenario.
    fn new(excluded: &[(&str, &str)]) -> FakeScope {
        let mut scope = FakeScope {
            ctx: SessionContext::new(),
            policies: HashMap::new(),
            views: HashMap::new(),
            included: HashSet::new(),
        };
        let text = DataType::Utf8;
        let int = DataType::Int64;
        scope.add(
            RESIDENTS,
            &[
                ("citizen_id", &text),
                ("phone", &text),
                ("district", &text),
                ("age", &int),
                ("income", &int),
                ("tax", &int),
            ],
            excluded,
        );
        scope.add(
            VISITS,
            &[("citizen_id", &text), ("clinic", &text), ("cost", &int)],
            excluded,
        );
        scope
    }

    /// Registers a dataset as the mediator does: a view over the scenario's columns.
    fn add(&mut self, policy: &str, columns: &[(&str, &DataType)], excluded: &[(&str, &str)]) {
        let policy = Policy::from_toml_str(policy).unwrap();
        let name = policy.dataset.name.clone();
        let visible: Vec<&(&str, &DataType)> = columns
            .iter()
            .filter(|(c, _)| !excluded.contains(&(name.as_str(), c)))
            .filter(|(c, _)| {
                policy
                    .column(c)
                    .is_some_and(|p| p.access != sandbox_policies::Access::None)
            })
            .collect();
        let schema = Arc::new(Schema::new(
            visible
                .iter()
                .map(|(c, t)| Field::new(*c, (*t).clone(), true))
                .collect::<Vec<_>>(),
        ));
        let table = MemTable::try_new(schema.clone(), vec![vec![]]).unwrap();
        let exprs = visible
            .iter()
            .map(|(c, t)| {
                crate::views::view_expr(
                    &policy,
                    policy.column(c).unwrap(),
                    t,
                    &sandbox_core::Secret::new(sandbox_core::Suite::Standard, [7; 32]),
                )
            })
            .collect::<Vec<_>>();
        let view =
            LogicalPlanBuilder::scan(name.as_str(), provider_as_source(Arc::new(table)), None)
                .unwrap()
                .project(exprs)
                .unwrap()
                .build()
                .unwrap();
        self.ctx
            .register_table(name.as_str(), Arc::new(ViewTable::new(view.clone(), None)))
            .unwrap();
        for (c, _) in &visible {
            self.included.insert((name.clone(), c.to_string()));
        }
        self.views.insert(name.clone(), view);
        self.policies.insert(name, policy);
    }

    /// `sql` planned unoptimized, as the mediator plans it.
    fn plan(&self, sql: &str) -> datafusion::error::Result<LogicalPlan> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(self.ctx.state().create_logical_plan(sql))
    }

    /// The verdict on `sql`.
    fn judge(&self, sql: &str) -> Result<Accepted, Refusal> {
        let plan = self.plan(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        analyze(&plan, self)
    }
}

fn refused(scope: &FakeScope, sql: &str) -> Refusal {
    match scope.judge(sql) {
        Ok(a) => panic!("{sql}: accepted as {:?}", a.requested),
        Err(r) => r,
    }
}

#[test]
fn a_grouped_mean_over_an_aggregate_column_is_accepted() {
    let scope = FakeScope::new(&[]);
    let a = scope
        .judge(
            "SELECT district, AVG(income) AS mean FROM residents WHERE age >= 18 GROUP BY district",
        )
        .unwrap();
    assert_eq!(a.relations.len(), 1);
    assert_eq!(a.relations[0].dataset, "residents");
    assert_eq!(a.group_keys.len(), 1);
    assert_eq!(a.group_keys[0].column().unwrap().name, "district");
    assert_eq!(a.filters.len(), 1);
    match a.requested.as_slice() {
        [Requested::Avg(v)] => assert_eq!((v.lower, v.upper), (0.0, 500000.0)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_bounds_of_an_expression_follow_from_its_columns_bounds() {
    let scope = FakeScope::new(&[]);
    let a = scope
        .judge("SELECT SUM(income - tax) FROM residents")
        .unwrap();
    match a.requested.as_slice() {
        [Requested::Sum(v)] => assert_eq!((v.lower, v.upper), (-100000.0, 500000.0)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn rows_of_a_dataset_are_refused_however_they_are_asked_for() {
    let scope = FakeScope::new(&[]);
    for sql in [
        "SELECT income FROM residents",
        "SELECT * FROM residents WHERE age > 30",
        "SELECT district FROM residents GROUP BY district",
    ] {
        assert_eq!(refused(&scope, sql).rule, Rule::RowLevelOutput, "{sql}");
    }
}

#[test]
fn each_column_is_used_only_as_its_access_rule_permits() {
    let scope = FakeScope::new(&[]);
    for (sql, column) in [
        // Filter-only: neither aggregated nor grouped by.
        ("SELECT SUM(age) FROM residents", "age"),
        ("SELECT age, COUNT(*) FROM residents GROUP BY age", "age"),
        // Aggregate (and filter), never a group key: its values would be the keys.
        (
            "SELECT income, COUNT(*) FROM residents GROUP BY income",
            "income",
        ),
        // The privacy unit joins; it is not a filter, a sum or a group key.
        (
            "SELECT COUNT(*) FROM residents WHERE citizen_id = 'x'",
            "citizen_id",
        ),
        (
            "SELECT AVG(LENGTH(citizen_id)) FROM residents",
            "citizen_id",
        ),
        (
            "SELECT citizen_id, COUNT(*) FROM residents GROUP BY citizen_id",
            "citizen_id",
        ),
    ] {
        let r = refused(&scope, sql);
        assert_eq!(r.rule, Rule::ColumnAccess, "{sql}: {r:?}");
        assert_eq!(r.column.as_deref(), Some(column), "{sql}");
    }
}

#[test]
fn a_column_outside_the_scenario_does_not_plan_or_is_refused() {
    // Left out of the scenario's view, `tax` is not even a column the planner knows.
    let scope = FakeScope::new(&[("residents", "tax")]);
    let plan = scope.plan("SELECT SUM(tax) FROM residents");
    assert!(plan.is_err_and(|e| e.to_string().contains("tax")));
    // A scope whose view shows a column its scenario does not include still refuses it.
    let mut scope = FakeScope::new(&[]);
    scope
        .included
        .remove(&("residents".to_string(), "tax".to_string()));
    let r = refused(&scope, "SELECT SUM(tax) FROM residents");
    assert_eq!(r.rule, Rule::UnknownColumn, "{r:?}");
    assert_eq!(r.column.as_deref(), Some("tax"));
}

#[test]
fn aggregates_off_the_allow_list_are_refused() {
    let scope = FakeScope::new(&[]);
    for sql in [
        "SELECT array_agg(income) FROM residents",
        "SELECT COUNT(DISTINCT district) FROM residents",
        "SELECT SUM(DISTINCT income) FROM residents",
        "SELECT SUM(income) FILTER (WHERE district = 'hexi') FROM residents",
    ] {
        assert_eq!(
            refused(&scope, sql).rule,
            Rule::AggregateNotAllowed,
            "{sql}"
        );
    }
    let a = scope
        .judge("SELECT COUNT(DISTINCT citizen_id) FROM residents")
        .unwrap();
    assert!(matches!(a.requested.as_slice(), [Requested::CountUnits(_)]));
}

#[test]
fn percentiles_take_a_literal_in_the_unit_interval() {
    let scope = FakeScope::new(&[]);
    let a = scope
        .judge("SELECT approx_percentile_cont(0.9) WITHIN GROUP (ORDER BY income) FROM residents")
        .unwrap();
    match a.requested.as_slice() {
        [Requested::Quantile { alpha, .. }] => assert_eq!(*alpha, 0.9),
        other => panic!("{other:?}"),
    }
    let r = refused(
        &scope,
        "SELECT approx_percentile_cont(1.5) WITHIN GROUP (ORDER BY income) FROM residents",
    );
    assert!(
        matches!(r.rule, Rule::ExpressionNotAllowed | Rule::InvalidQuery),
        "{r:?}"
    );
}

#[test]
fn margins_and_joins_off_the_privacy_unit_are_refused() {
    let scope = FakeScope::new(&[]);
    let r = refused(
        &scope,
        "SELECT district, COUNT(*) FROM residents GROUP BY ROLLUP(district)",
    );
    assert_eq!(r.rule, Rule::PlanNotAllowed, "{r:?}");
    let a = scope
        .judge(
            "SELECT r.district, SUM(v.cost) FROM residents r JOIN visits v ON r.citizen_id = v.citizen_id GROUP BY r.district",
        )
        .unwrap();
    let (l, r) = a.join.unwrap();
    assert_eq!(
        (l.name.as_str(), r.name.as_str()),
        ("citizen_id", "citizen_id")
    );
    // Joined on anything but the privacy units, or not on an equality at all.
    for sql in [
        "SELECT COUNT(*) FROM residents r JOIN visits v ON r.district = v.clinic",
        "SELECT COUNT(*) FROM residents r CROSS JOIN visits v",
        "SELECT COUNT(*) FROM residents r JOIN residents s ON r.citizen_id = s.citizen_id JOIN visits v ON r.citizen_id = v.citizen_id",
    ] {
        let r = refused(&scope, sql);
        assert!(
            matches!(r.rule, Rule::PlanNotAllowed | Rule::ColumnAccess),
            "{sql}: {r:?}"
        );
    }
}

#[test]
fn a_hidden_column_is_not_in_the_view() {
    // `phone` has access `none`: the view leaves it out, so no query can name it.
    let scope = FakeScope::new(&[]);
    let plan = scope.plan("SELECT COUNT(phone) FROM residents");
    assert!(plan.is_err_and(|e| e.to_string().contains("phone")));
}
