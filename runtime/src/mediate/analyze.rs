//! The policy pass over a module's LogicalPlan.
//!
//! It runs on the plan exactly as DataFusion's SQL planner produced it, before any
//! analyzer or optimizer rule, and it is an allow-list: plan nodes, expression forms,
//! aggregate functions and scalar functions not named here are refused. The accepted
//! shape is
//!
//! ```text
//! [post-processing: Projection | Sort | Limit | Filter (HAVING) | SubqueryAlias]*
//!   Aggregate (GROUP BY `group` columns; COUNT, SUM, AVG of `aggregate` columns)
//!     [Filter (WHERE on `filter`+ columns) | SubqueryAlias]*
//!       TableScan (one dataset of the scenario)
//! ```
//!
//! Post-processing sees only the aggregate's (noisy) output, so it may do anything the
//! expression allow-list permits.

use std::collections::BTreeSet;

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{Aggregate, Expr, LogicalPlan};
use sandbox_policies::{ColumnPolicy, Policy, Use};

use super::refusal::{Refusal, Rule};

/// Scalar functions a module may use in filters and post-processing.
pub const SCALAR_ALLOW_LIST: &[&str] = &[
    "abs",
    "ceil",
    "floor",
    "round",
    "trunc",
    "sqrt",
    "power",
    "pow",
    "ln",
    "log",
    "log10",
    "log2",
    "exp",
    "signum",
    "coalesce",
    "nullif",
    "greatest",
    "least",
    "lower",
    "upper",
    "length",
    "char_length",
    "character_length",
    "substr",
    "substring",
    "left",
    "right",
    "trim",
    "btrim",
    "ltrim",
    "rtrim",
    "concat",
    "date_part",
    "date_trunc",
    "starts_with",
    "ends_with",
];

/// A column of a dataset, as a query refers to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ColRef {
    /// The qualifier the query uses for the dataset (its alias, or its name).
    pub alias: String,
    /// The dataset.
    pub dataset: String,
    /// The column.
    pub name: String,
}

impl ColRef {
    /// The column as an expression over the aliased view.
    pub fn expr(&self) -> Expr {
        Expr::Column(datafusion::common::Column::new(
            Some(self.alias.clone()),
            self.name.clone(),
        ))
    }
}

impl std::fmt::Display for ColRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

/// One statistic the module asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Requested {
    /// `COUNT(*)` or `COUNT(literal)`.
    CountRows,
    /// `COUNT(column)`: non-null values.
    CountColumn(ColRef),
    /// `SUM(column)`.
    Sum(ColRef),
    /// `AVG(column)`.
    Avg(ColRef),
    /// `VAR_POP`, `VAR_SAMP`, `VARIANCE` (population variance of the noisy moments).
    Var(ColRef),
    /// `STDDEV_POP`, `STDDEV_SAMP`, `STDDEV`.
    Stddev(ColRef),
    /// `COUNT(DISTINCT privacy unit)`: the number of units.
    CountUnits(ColRef),
    /// `MIN`, `MAX`, `MEDIAN`, `APPROX_PERCENTILE_CONT`: OpenDP's private quantile.
    Quantile {
        /// Column.
        column: ColRef,
        /// Quantile in [0, 1]: 0 for MIN, 0.5 for MEDIAN, 1 for MAX.
        alpha: f64,
    },
}

impl Requested {
    /// The column it reads, if any.
    pub fn column(&self) -> Option<&ColRef> {
        match self {
            Requested::CountRows => None,
            Requested::CountColumn(c)
            | Requested::CountUnits(c)
            | Requested::Sum(c)
            | Requested::Avg(c)
            | Requested::Var(c)
            | Requested::Stddev(c)
            | Requested::Quantile { column: c, .. } => Some(c),
        }
    }

    /// Whether the statistic clamps values to the column's bounds.
    pub fn needs_bounds(&self) -> bool {
        !matches!(
            self,
            Requested::CountRows | Requested::CountColumn(_) | Requested::CountUnits(_)
        )
    }
}

/// A dataset as the query reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// The qualifier the query uses.
    pub alias: String,
    /// The dataset.
    pub dataset: String,
}

/// What the policy pass accepted.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The datasets read: one, or two joined on their privacy unit.
    pub relations: Vec<Relation>,
    /// The join keys (left, right) when two datasets are joined.
    pub join: Option<(ColRef, ColRef)>,
    /// WHERE predicates (and join conditions other than the keys), in plan order.
    pub filters: Vec<Expr>,
    /// GROUP BY columns.
    pub group_keys: Vec<ColRef>,
    /// Aggregates, in the order of the Aggregate node's output.
    pub requested: Vec<Requested>,
}

impl Accepted {
    /// The datasets' names joined by `+`.
    pub fn datasets(&self) -> String {
        self.relations
            .iter()
            .map(|r| r.dataset.as_str())
            .collect::<Vec<_>>()
            .join("+")
    }
}

/// The dataset policies and scenario columns a query may see.
pub trait Scope {
    /// The policy of a dataset in scope.
    fn policy(&self, dataset: &str) -> Option<&Policy>;
    /// Whether the scenario includes `dataset.column`.
    fn includes(&self, dataset: &str, column: &str) -> bool;
    /// The dataset whose registered view is exactly `plan` (the planner inlines views).
    fn view_of(&self, plan: &LogicalPlan) -> Option<&str>;
}

/// Runs the policy pass.
pub fn analyze(plan: &LogicalPlan, scope: &dyn Scope) -> Result<Accepted, Refusal> {
    let mut outputs: Vec<String> = Vec::new();
    let aggregate = find_aggregate(plan, &mut outputs, scope)?;
    check_aggregate(aggregate, scope)
}

/// Walks the post-processing part down to the one Aggregate.
fn find_aggregate<'a>(
    plan: &'a LogicalPlan,
    outputs: &mut Vec<String>,
    scope: &dyn Scope,
) -> Result<&'a Aggregate, Refusal> {
    if let Some(dataset) = scope.view_of(plan) {
        return Err(row_level(dataset, outputs));
    }
    match plan {
        LogicalPlan::Projection(p) => {
            if outputs.is_empty() {
                for e in &p.expr {
                    if let Some(c) = raw_column(e) {
                        outputs.push(c);
                    }
                }
            }
            for e in &p.expr {
                check_expr(e, None)?;
            }
            find_aggregate(&p.input, outputs, scope)
        }
        LogicalPlan::Sort(s) => {
            for e in &s.expr {
                check_expr(&e.expr, None)?;
            }
            find_aggregate(&s.input, outputs, scope)
        }
        LogicalPlan::Limit(l) => {
            for e in [&l.skip, &l.fetch].into_iter().flatten() {
                if !matches!(e.as_ref(), Expr::Literal(..)) {
                    return Err(Refusal::new(
                        Rule::ExpressionNotAllowed,
                        "LIMIT and OFFSET take literal numbers only",
                    ));
                }
            }
            find_aggregate(&l.input, outputs, scope)
        }
        LogicalPlan::Filter(f) => {
            check_expr(&f.predicate, None)?;
            find_aggregate(&f.input, outputs, scope)
        }
        LogicalPlan::SubqueryAlias(s) => find_aggregate(&s.input, outputs, scope),
        LogicalPlan::Aggregate(a) => Ok(a),
        LogicalPlan::TableScan(t) => Err(row_level(&t.table_name.to_string(), outputs)),
        LogicalPlan::Distinct(d) if matches!(d.input().as_ref(), LogicalPlan::Union(_)) => {
            Err(Refusal::new(
                Rule::PlanNotAllowed,
                "UNION and other set operations are not allowed",
            ))
        }
        LogicalPlan::Distinct(_) => Err(Refusal::new(
            Rule::RowLevelOutput,
            "SELECT DISTINCT releases values from the data row by row",
        )),
        LogicalPlan::Window(_) => Err(Refusal::new(
            Rule::PlanNotAllowed,
            "window functions over raw rows are not allowed",
        )),
        LogicalPlan::Join(_) => Err(Refusal::new(
            Rule::PlanNotAllowed,
            "joins are not supported by this mediator",
        )),
        LogicalPlan::Union(_) => Err(Refusal::new(
            Rule::PlanNotAllowed,
            "UNION and other set operations are not allowed",
        )),
        LogicalPlan::EmptyRelation(_) | LogicalPlan::Values(_) => {
            Err(Refusal::new(Rule::NoDataset, "the query reads no dataset"))
        }
        LogicalPlan::Explain(_) | LogicalPlan::Analyze(_) => Err(Refusal::new(
            Rule::NotAQuery,
            "EXPLAIN is not available to modules",
        )),
        LogicalPlan::Statement(_)
        | LogicalPlan::Dml(_)
        | LogicalPlan::Ddl(_)
        | LogicalPlan::Copy(_)
        | LogicalPlan::DescribeTable(_) => Err(Refusal::new(
            Rule::NotAQuery,
            "only SELECT queries are allowed",
        )),
        other => Err(Refusal::new(
            Rule::PlanNotAllowed,
            format!("`{}` is not allowed in a query", node_name(other)),
        )),
    }
}

fn row_level(table: &str, outputs: &[String]) -> Refusal {
    let message = format!(
        "the query returns rows of `{table}`; only aggregates (COUNT, SUM, AVG, ...) leave the domain"
    );
    match outputs.first() {
        Some(c) => Refusal::column(Rule::RowLevelOutput, c.clone(), message),
        None => Refusal::new(Rule::RowLevelOutput, message),
    }
}

fn node_name(plan: &LogicalPlan) -> String {
    let text = format!("{}", plan.display());
    text.split(':').next().unwrap_or("plan node").to_string()
}

/// The column name if `e` is a (possibly aliased) column.
fn raw_column(e: &Expr) -> Option<String> {
    match e {
        Expr::Column(c) => Some(c.name.clone()),
        Expr::Alias(a) => raw_column(&a.expr),
        _ => None,
    }
}

/// Checks an expression against the allow-list. With `uses`, every column it reads is
/// collected (for the access check); without, columns are post-processing outputs.
fn check_expr(
    e: &Expr,
    mut uses: Option<&mut BTreeSet<datafusion::common::Column>>,
) -> Result<(), Refusal> {
    let mut refusal = None;
    e.apply(|node| {
        let verdict = match node {
            Expr::Column(c) => {
                if let Some(uses) = uses.as_deref_mut() {
                    uses.insert(c.clone());
                }
                Ok(())
            }
            // Over raw rows, an expression that can fail (a cast of text, a division by
            // zero) would make the query's success depend on the data: a side channel.
            Expr::Cast(_) if uses.is_some() => Err(Refusal::new(
                Rule::ExpressionNotAllowed,
                "CAST over raw rows can fail on the data; use TRY_CAST",
            )),
            Expr::BinaryExpr(b)
                if uses.is_some()
                    && matches!(
                        b.op,
                        datafusion::logical_expr::Operator::Divide
                            | datafusion::logical_expr::Operator::Modulo
                    ) =>
            {
                Err(Refusal::new(
                    Rule::ExpressionNotAllowed,
                    "division over raw rows can fail on the data",
                ))
            }
            Expr::Alias(_)
            | Expr::Literal(..)
            | Expr::BinaryExpr(_)
            | Expr::Like(_)
            | Expr::Not(_)
            | Expr::IsNotNull(_)
            | Expr::IsNull(_)
            | Expr::IsTrue(_)
            | Expr::IsFalse(_)
            | Expr::IsUnknown(_)
            | Expr::IsNotTrue(_)
            | Expr::IsNotFalse(_)
            | Expr::IsNotUnknown(_)
            | Expr::Negative(_)
            | Expr::Between(_)
            | Expr::Case(_)
            | Expr::Cast(_)
            | Expr::TryCast(_)
            | Expr::InList(_) => Ok(()),
            Expr::ScalarFunction(f) => {
                let name = f.func.name().to_ascii_lowercase();
                if SCALAR_ALLOW_LIST.contains(&name.as_str()) {
                    Ok(())
                } else {
                    Err(Refusal::new(
                        Rule::FunctionNotAllowed,
                        format!("function `{name}` is not on the allow-list"),
                    ))
                }
            }
            Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_) => Err(Refusal::new(
                Rule::ExpressionNotAllowed,
                "subqueries are not allowed",
            )),
            Expr::WindowFunction(_) => Err(Refusal::new(
                Rule::PlanNotAllowed,
                "window functions over raw rows are not allowed",
            )),
            Expr::AggregateFunction(_) => Err(Refusal::new(
                Rule::ExpressionNotAllowed,
                "aggregates are allowed only in the SELECT list of the grouped query",
            )),
            other => Err(Refusal::new(
                Rule::ExpressionNotAllowed,
                format!("expression `{other}` is not allowed"),
            )),
        };
        match verdict {
            Ok(()) => Ok(TreeNodeRecursion::Continue),
            Err(r) => {
                refusal = Some(r);
                Ok(TreeNodeRecursion::Stop)
            }
        }
    })
    .map_err(|e| Refusal::new(Rule::ExpressionNotAllowed, e.to_string()))?;
    match refusal {
        Some(r) => Err(r),
        None => Ok(()),
    }
}

fn column_policy<'p>(
    policy: &'p Policy,
    dataset: &str,
    column: &str,
    scope: &dyn Scope,
) -> Result<&'p ColumnPolicy, Refusal> {
    match policy.column(column) {
        Some(c) if scope.includes(dataset, column) => Ok(c),
        _ => Err(Refusal::column(
            Rule::UnknownColumn,
            column,
            format!("`{dataset}` has no column `{column}` in this scenario"),
        )),
    }
}

fn require_use(
    policy: &Policy,
    dataset: &str,
    column: &str,
    usage: Use,
    scope: &dyn Scope,
) -> Result<(), Refusal> {
    let c = column_policy(policy, dataset, column, scope)?;
    if c.access.permits(usage) {
        return Ok(());
    }
    let unit_note = if policy.dataset.privacy_unit.as_deref() == Some(column) {
        " (it identifies the privacy unit)"
    } else {
        ""
    };
    Err(Refusal::column(
        Rule::ColumnAccess,
        column,
        format!(
            "access `{}` (level {}) does not permit use as {}{unit_note}",
            c.access, c.level, usage
        ),
    ))
}

/// Resolves a column of the plan to its dataset through the relations' qualifiers.
fn resolve(c: &datafusion::common::Column, relations: &[Relation]) -> Result<ColRef, Refusal> {
    let relation = match &c.relation {
        Some(q) => relations.iter().find(|r| r.alias == q.table()),
        None if relations.len() == 1 => relations.first(),
        None => None,
    };
    match relation {
        Some(r) => Ok(ColRef {
            alias: r.alias.clone(),
            dataset: r.dataset.clone(),
            name: c.name.clone(),
        }),
        None => Err(Refusal::column(
            Rule::UnknownColumn,
            c.name.clone(),
            "qualify the column with one of the joined datasets",
        )),
    }
}

fn policy_of<'s>(scope: &'s dyn Scope, dataset: &str) -> Result<&'s Policy, Refusal> {
    scope.policy(dataset).ok_or_else(|| {
        Refusal::new(
            Rule::UnknownTable,
            format!("dataset `{dataset}` is not in this scenario"),
        )
    })
}

fn require(c: &ColRef, usage: Use, scope: &dyn Scope) -> Result<(), Refusal> {
    require_use(
        policy_of(scope, &c.dataset)?,
        &c.dataset,
        &c.name,
        usage,
        scope,
    )
}

fn check_aggregate(a: &Aggregate, scope: &dyn Scope) -> Result<Accepted, Refusal> {
    let mut filters = Vec::new();
    let mut relations = Vec::new();
    let mut join_pairs = Vec::new();
    walk_input(
        &a.input,
        &mut filters,
        &mut relations,
        &mut join_pairs,
        None,
        scope,
    )?;
    for r in &relations {
        policy_of(scope, &r.dataset)?;
    }
    let join = match (relations.as_slice(), join_pairs.as_slice()) {
        ([_], []) => None,
        ([_, _], [(l, r)]) => {
            let (l, r) = (resolve(l, &relations)?, resolve(r, &relations)?);
            if l.alias == r.alias {
                return Err(Refusal::new(
                    Rule::PlanNotAllowed,
                    "a join condition must compare the two joined datasets",
                ));
            }
            for side in [&l, &r] {
                require(side, Use::Join, scope)?;
                let unit = policy_of(scope, &side.dataset)?
                    .dataset
                    .privacy_unit
                    .as_deref();
                if unit != Some(side.name.as_str()) {
                    return Err(Refusal::column(
                        Rule::PlanNotAllowed,
                        side.name.clone(),
                        "datasets are joined on their privacy unit only, so that one unit's rows stay bounded",
                    ));
                }
            }
            Some((l, r))
        }
        ([_, _], []) => {
            return Err(Refusal::new(
                Rule::PlanNotAllowed,
                "a join needs an equality on the two datasets' privacy units",
            ));
        }
        ([_, _], _) => {
            return Err(Refusal::new(
                Rule::PlanNotAllowed,
                "join on one equality of the privacy units",
            ));
        }
        _ => {
            return Err(Refusal::new(
                Rule::PlanNotAllowed,
                "at most two datasets may be joined",
            ));
        }
    };

    for f in &filters {
        let mut uses = BTreeSet::new();
        check_expr(f, Some(&mut uses))?;
        for column in uses {
            require(&resolve(&column, &relations)?, Use::Filter, scope)?;
        }
    }

    let mut group_keys = Vec::new();
    for g in &a.group_expr {
        match g {
            Expr::Column(c) => {
                let c = resolve(c, &relations)?;
                require(&c, Use::Group, scope)?;
                group_keys.push(c);
            }
            Expr::GroupingSet(_) => {
                return Err(Refusal::new(
                    Rule::PlanNotAllowed,
                    "GROUPING SETS, CUBE and ROLLUP are not supported",
                ));
            }
            other => {
                return Err(Refusal::new(
                    Rule::ExpressionNotAllowed,
                    format!("GROUP BY takes columns only, not `{other}`"),
                ));
            }
        }
    }

    let mut requested = Vec::new();
    for e in &a.aggr_expr {
        let inner = match e {
            Expr::Alias(alias) => alias.expr.as_ref(),
            other => other,
        };
        let Expr::AggregateFunction(f) = inner else {
            return Err(Refusal::new(
                Rule::ExpressionNotAllowed,
                format!("`{inner}` is not an aggregate"),
            ));
        };
        let name = f.func.name().to_ascii_lowercase();
        let p = &f.params;
        if p.distinct {
            // COUNT(DISTINCT unit) counts people, not rows: its sensitivity is known.
            if let ("count", [Expr::Column(c)]) = (name.as_str(), p.args.as_slice()) {
                let c = resolve(c, &relations)?;
                let unit = policy_of(scope, &c.dataset)?
                    .dataset
                    .privacy_unit
                    .as_deref();
                if unit == Some(c.name.as_str()) && scope.includes(&c.dataset, &c.name) {
                    requested.push(Requested::CountUnits(c));
                    continue;
                }
            }
            return Err(Refusal::new(
                Rule::AggregateNotAllowed,
                format!(
                    "{}(DISTINCT ...) is allowed only as COUNT(DISTINCT <privacy unit>)",
                    name.to_uppercase()
                ),
            ));
        }
        if name == "approx_percentile_cont" {
            let column = match (p.args.as_slice(), p.order_by.as_slice()) {
                ([_], [sort]) | ([_, _], [sort]) => match &sort.expr {
                    Expr::Column(c) => resolve(c, &relations)?,
                    other => {
                        return Err(Refusal::new(
                            Rule::ExpressionNotAllowed,
                            format!("{name} orders by a column, not `{other}`"),
                        ));
                    }
                },
                ([Expr::Column(c), _], []) | ([Expr::Column(c), _, _], []) => {
                    resolve(c, &relations)?
                }
                _ => {
                    return Err(Refusal::new(
                        Rule::ExpressionNotAllowed,
                        format!("{name}(p) WITHIN GROUP (ORDER BY column) takes one column"),
                    ));
                }
            };
            let literal = p.args.iter().find_map(|a| match a {
                Expr::Literal(v, _) => v.to_string().parse::<f64>().ok(),
                _ => None,
            });
            let Some(alpha) = literal.filter(|a| (0.0..=1.0).contains(a)) else {
                return Err(Refusal::new(
                    Rule::ExpressionNotAllowed,
                    format!("{name} takes a literal percentile in [0, 1]"),
                ));
            };
            if p.filter.is_some() {
                return Err(Refusal::new(
                    Rule::AggregateNotAllowed,
                    format!("{name} with FILTER is not supported"),
                ));
            }
            require(&column, Use::Aggregate, scope)?;
            requested.push(Requested::Quantile { column, alpha });
            continue;
        }
        if p.filter.is_some() || !p.order_by.is_empty() || p.null_treatment.is_some() {
            return Err(Refusal::new(
                Rule::AggregateNotAllowed,
                format!("{name} with FILTER, ORDER BY or null treatment is not supported"),
            ));
        }
        let column_arg = |usage: Use| -> Result<ColRef, Refusal> {
            match p.args.as_slice() {
                [Expr::Column(c)] => {
                    let c = resolve(c, &relations)?;
                    require(&c, usage, scope)?;
                    Ok(c)
                }
                [other] => Err(Refusal::new(
                    Rule::ExpressionNotAllowed,
                    format!("{name} takes a column, not `{other}`"),
                )),
                _ => Err(Refusal::new(
                    Rule::ExpressionNotAllowed,
                    format!("{name} takes one argument"),
                )),
            }
        };
        let r = match name.as_str() {
            "count" => match p.args.as_slice() {
                [Expr::Literal(v, _)] if !v.is_null() => Requested::CountRows,
                [] => Requested::CountRows,
                _ => Requested::CountColumn(column_arg(Use::Count)?),
            },
            "sum" => Requested::Sum(column_arg(Use::Aggregate)?),
            "avg" | "mean" => Requested::Avg(column_arg(Use::Aggregate)?),
            "var" | "var_pop" | "var_samp" | "variance" | "var_population" | "var_sample" => {
                Requested::Var(column_arg(Use::Aggregate)?)
            }
            "stddev" | "stddev_pop" | "stddev_samp" => {
                Requested::Stddev(column_arg(Use::Aggregate)?)
            }
            "min" => Requested::Quantile {
                column: column_arg(Use::Aggregate)?,
                alpha: 0.0,
            },
            "max" => Requested::Quantile {
                column: column_arg(Use::Aggregate)?,
                alpha: 1.0,
            },
            "median" => Requested::Quantile {
                column: column_arg(Use::Aggregate)?,
                alpha: 0.5,
            },
            other => {
                return Err(Refusal::new(
                    Rule::AggregateNotAllowed,
                    format!(
                        "aggregate `{other}` is not on the allow-list (COUNT, SUM, AVG, VAR, STDDEV, MIN, MAX, MEDIAN, APPROX_PERCENTILE_CONT)"
                    ),
                ));
            }
        };
        if let Some(column) = r.column()
            && r.needs_bounds()
            && policy_of(scope, &column.dataset)?
                .column(&column.name)
                .and_then(|c| c.bounds())
                .is_none()
        {
            return Err(Refusal::column(
                Rule::ColumnAccess,
                column.name.clone(),
                "has no bounds: its sensitivity is unbounded",
            ));
        }
        requested.push(r);
    }
    if requested.is_empty() {
        return Err(Refusal::new(
            Rule::RowLevelOutput,
            "GROUP BY without an aggregate releases the group keys themselves",
        ));
    }
    Ok(Accepted {
        relations,
        join,
        filters,
        group_keys,
        requested,
    })
}

/// Splits a predicate into its AND-ed parts.
fn conjuncts(e: &Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::BinaryExpr(b) if b.op == datafusion::logical_expr::Operator::And => {
            conjuncts(&b.left, out);
            conjuncts(&b.right, out);
        }
        other => out.push(other.clone()),
    }
}

/// Walks from the Aggregate's input to the datasets, collecting WHERE predicates, the
/// relations with the qualifiers the query uses, and equality join conditions.
fn walk_input(
    plan: &LogicalPlan,
    filters: &mut Vec<Expr>,
    relations: &mut Vec<Relation>,
    join_pairs: &mut Vec<(datafusion::common::Column, datafusion::common::Column)>,
    alias: Option<&str>,
    scope: &dyn Scope,
) -> Result<(), Refusal> {
    if let Some(dataset) = scope.view_of(plan) {
        relations.push(Relation {
            alias: alias.unwrap_or(dataset).to_string(),
            dataset: dataset.to_string(),
        });
        return Ok(());
    }
    match plan {
        LogicalPlan::Filter(f) => {
            filters.push(f.predicate.clone());
            walk_input(&f.input, filters, relations, join_pairs, alias, scope)
        }
        LogicalPlan::SubqueryAlias(s) => {
            let name = s.alias.table().to_string();
            walk_input(
                &s.input,
                filters,
                relations,
                join_pairs,
                Some(alias.unwrap_or(&name)),
                scope,
            )
        }
        LogicalPlan::Projection(p) if p.expr.iter().all(|e| matches!(e, Expr::Column(_))) => {
            walk_input(&p.input, filters, relations, join_pairs, alias, scope)
        }
        LogicalPlan::Join(j) => {
            if j.join_type != datafusion::logical_expr::JoinType::Inner {
                return Err(Refusal::new(
                    Rule::PlanNotAllowed,
                    format!("{} joins are not supported; use an inner join", j.join_type),
                ));
            }
            if alias.is_some() {
                return Err(Refusal::new(
                    Rule::PlanNotAllowed,
                    "nested queries in FROM are not supported",
                ));
            }
            for (l, r) in &j.on {
                match (l, r) {
                    (Expr::Column(l), Expr::Column(r)) => join_pairs.push((l.clone(), r.clone())),
                    _ => {
                        return Err(Refusal::new(
                            Rule::ExpressionNotAllowed,
                            "join keys are columns",
                        ));
                    }
                }
            }
            if let Some(filter) = &j.filter {
                let mut parts = Vec::new();
                conjuncts(filter, &mut parts);
                for part in parts {
                    match &part {
                        Expr::BinaryExpr(b)
                            if b.op == datafusion::logical_expr::Operator::Eq
                                && matches!(
                                    (b.left.as_ref(), b.right.as_ref()),
                                    (Expr::Column(_), Expr::Column(_))
                                ) =>
                        {
                            if let (Expr::Column(l), Expr::Column(r)) =
                                (b.left.as_ref(), b.right.as_ref())
                            {
                                join_pairs.push((l.clone(), r.clone()));
                            }
                        }
                        _ => filters.push(part),
                    }
                }
            }
            walk_input(&j.left, filters, relations, join_pairs, None, scope)?;
            walk_input(&j.right, filters, relations, join_pairs, None, scope)
        }
        LogicalPlan::TableScan(t) => {
            if !t.filters.is_empty() || t.fetch.is_some() {
                return Err(Refusal::new(
                    Rule::PlanNotAllowed,
                    "pushed-down scan options are not accepted from modules",
                ));
            }
            let dataset = t.table_name.table().to_string();
            relations.push(Relation {
                alias: alias.unwrap_or(&dataset).to_string(),
                dataset,
            });
            Ok(())
        }
        LogicalPlan::Projection(_) | LogicalPlan::Aggregate(_) => Err(Refusal::new(
            Rule::PlanNotAllowed,
            "nested queries in FROM are not supported",
        )),
        LogicalPlan::Window(_) => Err(Refusal::new(
            Rule::PlanNotAllowed,
            "window functions over raw rows are not allowed",
        )),
        LogicalPlan::EmptyRelation(_) | LogicalPlan::Values(_) => {
            Err(Refusal::new(Rule::NoDataset, "the query reads no dataset"))
        }
        other => Err(Refusal::new(
            Rule::PlanNotAllowed,
            format!("`{}` is not allowed under an aggregate", node_name(other)),
        )),
    }
}
