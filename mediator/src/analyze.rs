//! The policy pass over a module's LogicalPlan.
//!
//! It runs on the plan exactly as DataFusion's SQL planner produced it, before any
//! analyzer or optimizer rule, and it is an allow-list: plan nodes, expression forms,
//! aggregate functions and scalar functions not named here are refused. The accepted
//! shape is
//!
//! ```text
//! [post-processing: Projection | Sort | Limit | Filter (HAVING) | SubqueryAlias]*
//!   Aggregate (GROUP BY `group` columns or generalizing expressions of them;
//!              COUNT, SUM, AVG, ... of `aggregate` columns or expressions of them)
//!     [Filter (WHERE on `filter`+ columns) | Projection | SubqueryAlias]*   (CTEs, subqueries)
//!       [inner Join on the privacy units of two datasets]
//!         view (one dataset of the scenario)
//! ```
//!
//! Projections below the Aggregate are substituted into what reads them, so the accepted
//! query is expressed over the datasets' own columns: the mediator builds its plan from
//! the datasets, and the privacy unit is always at hand for bounding. Values inside
//! aggregates get bounds derived from their columns' bounds by interval arithmetic.
//!
//! Post-processing sees only the aggregate's (noisy) output, so it may do anything the
//! expression allow-list permits.

use std::collections::BTreeSet;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{Aggregate, Expr, LogicalPlan, lit};
use sandbox_policies::{ColumnPolicy, Policy, Use};

use sandbox_core::refusal::{Refusal, Rule};

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

/// A value a statistic aggregates: a column, or an expression of `aggregate` columns,
/// with bounds derived from the columns' bounds (interval arithmetic, never assumed).
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    /// The expression as the query wrote it, over the datasets' columns.
    pub source: Expr,
    /// What the mediator aggregates: every column read as a float and clamped to its
    /// policy bounds, and the whole clamped to `[lower, upper]`.
    pub clamped: Expr,
    /// Lower bound of the value.
    pub lower: f64,
    /// Upper bound of the value.
    pub upper: f64,
    /// For a bare integer column whose values all lie within bounds and whose sum over
    /// the dataset cannot overflow or lose precision: the column itself, summed natively.
    pub native_sum: Option<Expr>,
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&label(&self.source))
    }
}

/// A quantile's value, if its bounds leave it a range to search: of a constant the
/// mechanism has no candidates (and the constant needs no query).
fn ranged(name: &str, value: Value) -> Result<Value, Refusal> {
    if value.lower < value.upper {
        Ok(value)
    } else {
        Err(Refusal::new(
            Rule::ExpressionNotAllowed,
            format!(
                "{} of `{value}`, which can only be {}: a quantile needs a value that varies",
                name.to_uppercase(),
                value.lower
            ),
        ))
    }
}

/// How an expression over the datasets' columns is shown: a column by its name, anything
/// else as SQL-like text.
pub fn label(e: &Expr) -> String {
    match e {
        Expr::Column(c) => c.name.clone(),
        other => other.human_display().to_string(),
    }
}

/// One statistic the module asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Requested {
    /// `COUNT(*)` or `COUNT(literal)`.
    CountRows,
    /// `COUNT(expression)`: non-null values.
    CountColumn(Expr),
    /// `SUM(value)`.
    Sum(Value),
    /// `AVG(value)`.
    Avg(Value),
    /// `VAR_POP`, `VAR_SAMP`, `VARIANCE` (population variance of the noisy moments).
    Var(Value),
    /// `STDDEV_POP`, `STDDEV_SAMP`, `STDDEV`.
    Stddev(Value),
    /// `COUNT(DISTINCT privacy unit)`: the number of units.
    CountUnits(ColRef),
    /// `MIN`, `MAX`, `MEDIAN`, `APPROX_PERCENTILE_CONT`: OpenDP's private quantile.
    Quantile {
        /// The value.
        value: Value,
        /// Quantile in [0, 1]: 0 for MIN, 0.5 for MEDIAN, 1 for MAX.
        alpha: f64,
    },
}

impl Requested {
    /// What it reads, for messages.
    pub fn label(&self) -> String {
        match self {
            Requested::CountRows => "*".into(),
            Requested::CountColumn(e) => label(e),
            Requested::CountUnits(c) => c.name.clone(),
            Requested::Sum(v)
            | Requested::Avg(v)
            | Requested::Var(v)
            | Requested::Stddev(v)
            | Requested::Quantile { value: v, .. } => v.to_string(),
        }
    }
}

/// A GROUP BY key: a `group` column, or a generalizing expression of `group` columns
/// (bands, date truncation, prefixes, CASE).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupKey {
    /// The key over the datasets' columns.
    pub expr: Expr,
    /// The columns it reads.
    pub columns: Vec<ColRef>,
}

impl GroupKey {
    /// The column, when the key is a bare column.
    pub fn column(&self) -> Option<&ColRef> {
        match (&self.expr, self.columns.as_slice()) {
            (Expr::Column(_), [c]) => Some(c),
            _ => None,
        }
    }

    /// How the key is shown.
    pub fn label(&self) -> String {
        label(&self.expr)
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
    /// WHERE predicates (and join conditions other than the keys), in plan order, over
    /// the datasets' columns (projections of CTEs and subqueries substituted).
    pub filters: Vec<Expr>,
    /// GROUP BY keys.
    pub group_keys: Vec<GroupKey>,
    /// Aggregates, in the order of the Aggregate node's output.
    pub requested: Vec<Requested>,
}

impl Accepted {
    /// Every expression over raw rows in its total form ([`crate::total`]): whether the
    /// query fails can then not depend on the data.
    fn totalized(self) -> Result<Accepted, Refusal> {
        let total = |e: Expr| {
            crate::total::totalize(e).map_err(|e| Refusal::new(Rule::InvalidQuery, e.to_string()))
        };
        let value = |v: Value| -> Result<Value, Refusal> {
            Ok(Value {
                source: total(v.source)?,
                clamped: total(v.clamped)?,
                native_sum: v.native_sum.map(total).transpose()?,
                ..v
            })
        };
        Ok(Accepted {
            relations: self.relations,
            join: self.join,
            filters: self
                .filters
                .into_iter()
                .map(total)
                .collect::<Result<_, _>>()?,
            group_keys: self
                .group_keys
                .into_iter()
                .map(|k| {
                    Ok(GroupKey {
                        expr: total(k.expr)?,
                        columns: k.columns,
                    })
                })
                .collect::<Result<_, Refusal>>()?,
            requested: self
                .requested
                .into_iter()
                .map(|r| {
                    Ok(match r {
                        Requested::CountColumn(e) => Requested::CountColumn(total(e)?),
                        Requested::Sum(v) => Requested::Sum(value(v)?),
                        Requested::Avg(v) => Requested::Avg(value(v)?),
                        Requested::Var(v) => Requested::Var(value(v)?),
                        Requested::Stddev(v) => Requested::Stddev(value(v)?),
                        Requested::Quantile { value: v, alpha } => Requested::Quantile {
                            value: value(v)?,
                            alpha,
                        },
                        other @ (Requested::CountRows | Requested::CountUnits(_)) => other,
                    })
                })
                .collect::<Result<_, Refusal>>()?,
        })
    }

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
    /// Whether ingest found every value of the column within its bounds (so clamping it
    /// changes nothing and may be skipped).
    fn within_bounds(&self, _dataset: &str, _column: &str) -> bool {
        false
    }
    /// Whether a SUM of the column may run on its native integers: every value within
    /// bounds, and rows × max(|bound|) below 2^53 (no overflow, exact in a float).
    fn native_sum(&self, _dataset: &str, _column: &str) -> bool {
        false
    }
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
            // Division and remainder by a positive number cannot fail; by anything else
            // (a column, zero, -1 at the integer minimum) they can.
            Expr::BinaryExpr(b)
                if uses.is_some()
                    && matches!(
                        b.op,
                        datafusion::logical_expr::Operator::Divide
                            | datafusion::logical_expr::Operator::Modulo
                    )
                    && !matches!(b.right.as_ref(), Expr::Literal(v, _) if numeric_literal(v).is_some_and(|d| d > 0.0)) =>
            {
                Err(Refusal::new(
                    Rule::ExpressionNotAllowed,
                    "division over raw rows can fail on the data (divide by a positive number only)",
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

/// Replaces every column of `e` (a column of `input`'s output) by what it stands for
/// over the datasets' columns.
fn substitute(e: &Expr, input: &LogicalPlan, map: &[Expr]) -> Result<Expr, Refusal> {
    let schema = input.schema();
    e.clone()
        .transform_up(|node| match node {
            Expr::Column(c) => {
                let i = schema.index_of_column(&c)?;
                let to = map.get(i).cloned().ok_or_else(|| {
                    datafusion::error::DataFusionError::Internal(format!(
                        "column `{c}` has no source"
                    ))
                })?;
                Ok(Transformed::yes(to))
            }
            other => Ok(Transformed::no(other)),
        })
        .map(|t| t.data)
        .map_err(|e| Refusal::new(Rule::InvalidQuery, e.to_string()))
}

/// The columns an allowed expression reads, each resolved to its dataset and checked for
/// `usage`.
fn columns_for(
    e: &Expr,
    usage: Use,
    relations: &[Relation],
    scope: &dyn Scope,
) -> Result<Vec<ColRef>, Refusal> {
    let mut uses = BTreeSet::new();
    check_expr(e, Some(&mut uses))?;
    let mut out = Vec::new();
    for c in uses {
        let c = resolve(&c, relations)?;
        require(&c, usage, scope)?;
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Ok(out)
}

/// Checks an aggregate: its input (scans, filters, at most one join), group keys and the
/// aggregates it asks for.
fn check_aggregate(a: &Aggregate, scope: &dyn Scope) -> Result<Accepted, Refusal> {
    let mut walk = Walk {
        scope,
        filters: Vec::new(),
        relations: Vec::new(),
        join_pairs: Vec::new(),
    };
    let map = walk.walk(&a.input, None)?;
    let Walk {
        filters,
        relations,
        join_pairs,
        ..
    } = walk;
    for r in &relations {
        policy_of(scope, &r.dataset)?;
    }
    let join = check_join(&relations, &join_pairs, scope)?;

    for f in &filters {
        columns_for(f, Use::Filter, &relations, scope)?;
    }

    let group_keys = check_group_keys(a, &map, &relations, scope)?;
    let requested = a
        .aggr_expr
        .iter()
        .map(|e| check_requested(e, a, &map, &relations, scope))
        .collect::<Result<Vec<_>, _>>()?;
    if requested.is_empty() {
        return Err(Refusal::new(
            Rule::RowLevelOutput,
            "GROUP BY without an aggregate releases the group keys themselves",
        ));
    }
    Accepted {
        relations,
        join,
        filters,
        group_keys,
        requested,
    }
    .totalized()
}

/// The join of an aggregate's input, if it joins: two datasets on one equality of their
/// privacy units, each side usable for joins.
fn check_join(
    relations: &[Relation],
    join_pairs: &[(Expr, Expr)],
    scope: &dyn Scope,
) -> Result<Option<(ColRef, ColRef)>, Refusal> {
    Ok(match (relations, join_pairs) {
        ([_], []) => None,
        ([_, _], [(Expr::Column(l), Expr::Column(r))]) => {
            let (l, r) = (resolve(l, relations)?, resolve(r, relations)?);
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
        ([_, _], [_]) => {
            return Err(Refusal::new(
                Rule::ExpressionNotAllowed,
                "join keys are columns",
            ));
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
    })
}

/// The group keys of an aggregate: expressions over columns usable for grouping, no
/// grouping sets.
fn check_group_keys(
    a: &Aggregate,
    map: &[Expr],
    relations: &[Relation],
    scope: &dyn Scope,
) -> Result<Vec<GroupKey>, Refusal> {
    let mut group_keys = Vec::new();
    for g in &a.group_expr {
        if let Expr::GroupingSet(_) = g {
            return Err(Refusal::new(
                Rule::PlanNotAllowed,
                "GROUP BY takes no GROUPING SETS, CUBE or ROLLUP: the margins would be released without their own noise",
            ));
        }
        let e = substitute(g, &a.input, map)?.unalias_nested().data;
        let columns = columns_for(&e, Use::Group, relations, scope)?;
        if columns.is_empty() {
            return Err(Refusal::new(
                Rule::ExpressionNotAllowed,
                format!("GROUP BY `{}` reads no column", label(&e)),
            ));
        }
        group_keys.push(GroupKey { expr: e, columns });
    }
    Ok(group_keys)
}

/// What one aggregate expression asks for, or why it is refused: an allowed aggregate
/// over a bounded value (COUNT(DISTINCT) of the privacy unit only; percentiles at a
/// literal in [0, 1]).
fn check_requested(
    e: &Expr,
    a: &Aggregate,
    map: &[Expr],
    relations: &[Relation],
    scope: &dyn Scope,
) -> Result<Requested, Refusal> {
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
    let args: Vec<Expr> = p
        .args
        .iter()
        .map(|x| substitute(x, &a.input, map))
        .collect::<Result<_, _>>()?;
    if p.distinct {
        // COUNT(DISTINCT unit) counts people, not rows: its sensitivity is known.
        if let ("count", [Expr::Column(c)]) = (name.as_str(), args.as_slice()) {
            let c = resolve(c, relations)?;
            let unit = policy_of(scope, &c.dataset)?
                .dataset
                .privacy_unit
                .as_deref();
            if unit == Some(c.name.as_str()) && scope.includes(&c.dataset, &c.name) {
                return Ok(Requested::CountUnits(c));
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
        let sorted = match (args.as_slice(), p.order_by.as_slice()) {
            ([_], [sort]) | ([_, _], [sort]) => substitute(&sort.expr, &a.input, map)?,
            ([c, _], []) | ([c, _, _], []) => c.clone(),
            _ => {
                return Err(Refusal::new(
                    Rule::ExpressionNotAllowed,
                    format!("{name}(p) WITHIN GROUP (ORDER BY value) takes one value"),
                ));
            }
        };
        let literal = args.iter().find_map(|a| match a {
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
        let value = ranged(&name, value_of(&sorted, relations, scope)?)?;
        return Ok(Requested::Quantile { value, alpha });
    }
    if p.filter.is_some() || !p.order_by.is_empty() || p.null_treatment.is_some() {
        return Err(Refusal::new(
            Rule::AggregateNotAllowed,
            format!("{name} with FILTER, ORDER BY or null treatment is not supported"),
        ));
    }
    let one_arg = || -> Result<&Expr, Refusal> {
        match args.as_slice() {
            [x] => Ok(x),
            _ => Err(Refusal::new(
                Rule::ExpressionNotAllowed,
                format!("{name} takes one argument"),
            )),
        }
    };
    let value = || -> Result<Value, Refusal> { value_of(one_arg()?, relations, scope) };
    Ok(match name.as_str() {
        "count" => match args.as_slice() {
            [Expr::Literal(v, _)] if !v.is_null() => Requested::CountRows,
            [] => Requested::CountRows,
            [x] => {
                // COUNT releases only whether the expression is null: its columns need
                // what a filter needs.
                let x = x.clone().unalias_nested().data;
                columns_for(&x, Use::Count, relations, scope)?;
                Requested::CountColumn(x)
            }
            _ => {
                return Err(Refusal::new(
                    Rule::ExpressionNotAllowed,
                    "count takes one argument",
                ));
            }
        },
        "sum" => Requested::Sum(value()?),
        "avg" | "mean" => Requested::Avg(value()?),
        "var" | "var_pop" | "var_samp" | "variance" | "var_population" | "var_sample" => {
            Requested::Var(squarable(value()?)?)
        }
        "stddev" | "stddev_pop" | "stddev_samp" => Requested::Stddev(squarable(value()?)?),
        "min" => Requested::Quantile {
            value: ranged(&name, value()?)?,
            alpha: 0.0,
        },
        "max" => Requested::Quantile {
            value: ranged(&name, value()?)?,
            alpha: 1.0,
        },
        "median" => Requested::Quantile {
            value: ranged(&name, value()?)?,
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
    })
}

/// An interval of values; empty when `lower > upper` (an always-null expression).
#[derive(Debug, Clone, Copy)]
struct Interval {
    lower: f64,
    upper: f64,
}

impl Interval {
    const EMPTY: Interval = Interval {
        lower: f64::INFINITY,
        upper: f64::NEG_INFINITY,
    };

    fn point(v: f64) -> Interval {
        Interval { lower: v, upper: v }
    }

    fn is_empty(self) -> bool {
        self.lower > self.upper
    }

    fn union(self, o: Interval) -> Interval {
        Interval {
            lower: self.lower.min(o.lower),
            upper: self.upper.max(o.upper),
        }
    }

    fn combine(self, o: Interval, f: impl Fn(f64, f64) -> f64) -> Interval {
        if self.is_empty() || o.is_empty() {
            return Interval::EMPTY;
        }
        let corners = [
            f(self.lower, o.lower),
            f(self.lower, o.upper),
            f(self.upper, o.lower),
            f(self.upper, o.upper),
        ];
        Interval {
            lower: corners.iter().copied().fold(f64::INFINITY, f64::min),
            upper: corners.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }

    fn map_monotone(self, f: impl Fn(f64) -> f64) -> Interval {
        if self.is_empty() {
            return self;
        }
        Interval {
            lower: f(self.lower),
            upper: f(self.upper),
        }
    }
}

/// `x` clamped to `[lower, upper]` (NaN, greater than everything in Arrow's order, goes
/// to `upper`; null stays null).
pub fn clamp(x: Expr, lower: f64, upper: f64) -> Expr {
    Expr::Case(datafusion::logical_expr::expr::Case::new(
        None,
        vec![
            (Box::new(x.clone().lt(lit(lower))), Box::new(lit(lower))),
            (Box::new(x.clone().gt(lit(upper))), Box::new(lit(upper))),
        ],
        Some(Box::new(x)),
    ))
}

fn numeric_literal(v: &datafusion::common::ScalarValue) -> Option<f64> {
    if v.is_null() || !v.data_type().is_numeric() {
        return None;
    }
    match v.cast_to(&datafusion::arrow::datatypes::DataType::Float64) {
        Ok(datafusion::common::ScalarValue::Float64(Some(x))) if x.is_finite() => Some(x),
        _ => None,
    }
}

/// The value an aggregate reads, with its bounds derived from the columns' policy bounds.
fn value_of(e: &Expr, relations: &[Relation], scope: &dyn Scope) -> Result<Value, Refusal> {
    let source = e.clone().unalias_nested().data;
    let (rewritten, interval) = bound(&source, relations, scope)?;
    if interval.is_empty() {
        return Err(Refusal::new(
            Rule::ExpressionNotAllowed,
            format!("`{}` is always null", label(&source)),
        ));
    }
    if !(interval.lower.is_finite() && interval.upper.is_finite()) {
        return Err(Refusal::new(
            Rule::ExpressionNotAllowed,
            format!("`{}` has no finite bounds", label(&source)),
        ));
    }
    if interval.lower == 0.0 && interval.upper == 0.0 {
        // Its sum is 0 whatever the data: nothing for noise to be calibrated to.
        return Err(Refusal::new(
            Rule::ExpressionNotAllowed,
            format!("`{}` is always 0: aggregate a column", label(&source)),
        ));
    }
    // Beyond 2^53 a float no longer holds every integer, and a sum's (or a sum of squares')
    // sensitivity of k times the bound can overflow to infinity: refused here, at planning,
    // rather than failing once the query is charged.
    if interval.lower.abs().max(interval.upper.abs()) > sandbox_policies::MAX_VALUE_BOUND {
        return Err(Refusal::new(
            Rule::ExpressionNotAllowed,
            format!(
                "`{}` may reach {:e}: a value an aggregate reads must stay within ±2^53",
                label(&source),
                interval.lower.abs().max(interval.upper.abs())
            ),
        ));
    }
    // A bare column is clamped once; an expression is clamped again as a whole, so that
    // float rounding can never take it past the bounds its sensitivity assumes.
    let native_sum = match &source {
        Expr::Column(c) => {
            let c = resolve(c, relations)?;
            scope.native_sum(&c.dataset, &c.name).then(|| c.expr())
        }
        _ => None,
    };
    let clamped = match source {
        Expr::Column(_) => rewritten,
        _ => clamp(rewritten, interval.lower, interval.upper),
    };
    Ok(Value {
        source,
        clamped,
        lower: interval.lower,
        upper: interval.upper,
        native_sum,
    })
}

/// The largest magnitude of a value (or square) an exact sum may add: 10^13 of them stay
/// below 10^37, inside a Decimal128 (`execute::Accumulator`).
pub const MAX_EXACT_MAGNITUDE: f64 = 1e24;

/// A value whose squares are summed (VAR, STDDEV): its bound squared must fit the exact
/// accumulation ([`MAX_EXACT_MAGNITUDE`]).
fn squarable(v: Value) -> Result<Value, Refusal> {
    let m = v.lower.abs().max(v.upper.abs());
    if m * m > MAX_EXACT_MAGNITUDE {
        return Err(Refusal::new(
            Rule::ExpressionNotAllowed,
            format!(
                "`{}` may reach {m:e}: a variance's value must stay within ±10^12 (its squares are summed exactly)",
                label(&v.source)
            ),
        ));
    }
    Ok(v)
}

fn no_bounds(e: &Expr) -> Refusal {
    Refusal::new(
        Rule::ExpressionNotAllowed,
        format!(
            "cannot derive bounds of `{}` inside an aggregate: use columns with bounds, numbers, + - *, division by a positive number, CASE, ABS, LEAST, GREATEST, COALESCE, ROUND, FLOOR, CEIL",
            label(e)
        ),
    )
}

/// A column in a value: usable for aggregates, read as a float, clamped to its policy
/// bounds (unless ingest found every value within them).
fn bound_column(
    c: &datafusion::common::Column,
    relations: &[Relation],
    scope: &dyn Scope,
) -> Result<(Expr, Interval), Refusal> {
    let c = resolve(c, relations)?;
    require(&c, Use::Aggregate, scope)?;
    let Some((lower, upper)) = policy_of(scope, &c.dataset)?
        .column(&c.name)
        .and_then(|p| p.bounds())
    else {
        return Err(Refusal::column(
            Rule::ColumnAccess,
            c.name.clone(),
            "has no bounds: its sensitivity is unbounded",
        ));
    };
    let x = Expr::TryCast(datafusion::logical_expr::TryCast::new(
        Box::new(c.expr()),
        datafusion::arrow::datatypes::DataType::Float64,
    ));
    let clamped = if scope.within_bounds(&c.dataset, &c.name) {
        x
    } else {
        clamp(x, lower, upper)
    };
    Ok((clamped, Interval { lower, upper }))
}

/// The interval of an allowed numeric function's value from its arguments' intervals;
/// `None` for a function without bounds.
fn function_interval(name: &str, intervals: &[Interval]) -> Option<Interval> {
    let fold = |g: fn(f64, f64) -> f64| -> Interval {
        let mut it = intervals.iter().copied();
        let first = it.next().unwrap_or(Interval::EMPTY);
        it.fold(first, |acc, i| {
            if acc.is_empty() {
                i
            } else if i.is_empty() {
                acc
            } else {
                Interval {
                    lower: g(acc.lower, i.lower),
                    upper: g(acc.upper, i.upper),
                }
            }
        })
    };
    Some(match (name, intervals) {
        ("abs", [i]) if i.is_empty() => *i,
        ("abs", [i]) => {
            if i.lower >= 0.0 {
                *i
            } else if i.upper <= 0.0 {
                Interval {
                    lower: -i.upper,
                    upper: -i.lower,
                }
            } else {
                Interval {
                    lower: 0.0,
                    upper: (-i.lower).max(i.upper),
                }
            }
        }
        ("floor", [i]) => i.map_monotone(f64::floor),
        ("ceil", [i]) => i.map_monotone(f64::ceil),
        ("round", [i]) => i.map_monotone(f64::round),
        ("trunc", [i]) => i.map_monotone(f64::trunc),
        ("least", [_, ..]) => fold(f64::min),
        ("greatest", [_, ..]) => fold(f64::max),
        ("coalesce", [_, ..]) => intervals
            .iter()
            .copied()
            .fold(Interval::EMPTY, Interval::union),
        _ => return None,
    })
}

/// Interval arithmetic over an aggregate's argument: returns the expression with every
/// column read as a clamped float, and the interval it lies in. CASE conditions are
/// filters: their columns need `filter` access and are read as they are.
fn bound(e: &Expr, relations: &[Relation], scope: &dyn Scope) -> Result<(Expr, Interval), Refusal> {
    use datafusion::logical_expr::{BinaryExpr, Operator, expr::Case};
    match e {
        Expr::Column(c) => bound_column(c, relations, scope),
        Expr::Literal(v, _) if v.is_null() => Ok((
            Expr::Literal(datafusion::common::ScalarValue::Float64(None), None),
            Interval::EMPTY,
        )),
        Expr::Literal(v, _) => match numeric_literal(v) {
            Some(x) => Ok((lit(x), Interval::point(x))),
            None => Err(no_bounds(e)),
        },
        Expr::Alias(a) => bound(&a.expr, relations, scope),
        Expr::Cast(c) if c.field.data_type().is_numeric() => bound(&c.expr, relations, scope),
        Expr::TryCast(c) if c.field.data_type().is_numeric() => bound(&c.expr, relations, scope),
        Expr::Negative(x) => {
            let (x, i) = bound(x, relations, scope)?;
            Ok((
                Expr::Negative(Box::new(x)),
                Interval {
                    lower: -i.upper,
                    upper: -i.lower,
                },
            ))
        }
        Expr::BinaryExpr(b) => {
            let op = b.op;
            if op == Operator::Divide {
                let divisor = match b.right.as_ref() {
                    Expr::Literal(v, _) => numeric_literal(v).filter(|d| *d > 0.0),
                    _ => None,
                };
                let Some(d) = divisor else {
                    return Err(no_bounds(e));
                };
                let (x, i) = bound(&b.left, relations, scope)?;
                return Ok((
                    Expr::BinaryExpr(BinaryExpr::new(Box::new(x), op, Box::new(lit(d)))),
                    i.map_monotone(|v| v / d),
                ));
            }
            let f: fn(f64, f64) -> f64 = match op {
                Operator::Plus => |a, b| a + b,
                Operator::Minus => |a, b| a - b,
                Operator::Multiply => |a, b| a * b,
                _ => return Err(no_bounds(e)),
            };
            let (l, li) = bound(&b.left, relations, scope)?;
            let (r, ri) = bound(&b.right, relations, scope)?;
            // The extremes of +, − and × over two intervals are at their corners.
            Ok((
                Expr::BinaryExpr(BinaryExpr::new(Box::new(l), op, Box::new(r))),
                li.combine(ri, f),
            ))
        }
        Expr::Case(c) => {
            let mut conditions = Vec::new();
            if let Some(base) = &c.expr {
                conditions.push(base.as_ref());
            }
            for (when, _) in &c.when_then_expr {
                conditions.push(when.as_ref());
            }
            for cond in conditions {
                columns_for(cond, Use::Filter, relations, scope)?;
            }
            let mut interval = Interval::EMPTY;
            let mut branches = Vec::new();
            for (when, then) in &c.when_then_expr {
                let (t, i) = bound(then, relations, scope)?;
                interval = interval.union(i);
                branches.push((when.clone(), Box::new(t)));
            }
            let otherwise = match &c.else_expr {
                Some(x) => {
                    let (x, i) = bound(x, relations, scope)?;
                    interval = interval.union(i);
                    Some(Box::new(x))
                }
                None => None,
            };
            Ok((
                Expr::Case(Case::new(c.expr.clone(), branches, otherwise)),
                interval,
            ))
        }
        Expr::ScalarFunction(f) => {
            let name = f.func.name().to_ascii_lowercase();
            let mut args = Vec::new();
            let mut intervals = Vec::new();
            for a in &f.args {
                let (x, i) = bound(a, relations, scope)?;
                args.push(x);
                intervals.push(i);
            }
            let Some(interval) = function_interval(&name, &intervals) else {
                return Err(no_bounds(e));
            };
            Ok((
                Expr::ScalarFunction(datafusion::logical_expr::expr::ScalarFunction::new_udf(
                    f.func.clone(),
                    args,
                )),
                interval,
            ))
        }
        _ => Err(no_bounds(e)),
    }
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

/// The walk from an Aggregate's input down to the datasets. Each node's output columns
/// are mapped to expressions over the datasets' columns (qualified by the relation's
/// alias), so that projections of CTEs and subqueries are substituted into the filters,
/// keys and aggregates above them: the mediator then builds its own plan over the
/// datasets, where the privacy unit is always at hand for bounding.
struct Walk<'s> {
    scope: &'s dyn Scope,
    filters: Vec<Expr>,
    relations: Vec<Relation>,
    join_pairs: Vec<(Expr, Expr)>,
}

impl Walk<'_> {
    fn relation(&mut self, dataset: &str, alias: Option<&str>, plan: &LogicalPlan) -> Vec<Expr> {
        let wanted = alias.unwrap_or(dataset);
        let mut name = wanted.to_string();
        let mut n = 2;
        while self.relations.iter().any(|r| r.alias == name) {
            name = format!("{wanted}_{n}");
            n += 1;
        }
        self.relations.push(Relation {
            alias: name.clone(),
            dataset: dataset.to_string(),
        });
        plan.schema()
            .fields()
            .iter()
            .map(|f| {
                Expr::Column(datafusion::common::Column::new(
                    Some(name.clone()),
                    f.name().clone(),
                ))
            })
            .collect()
    }

    fn walk(&mut self, plan: &LogicalPlan, alias: Option<&str>) -> Result<Vec<Expr>, Refusal> {
        if let Some(dataset) = self.scope.view_of(plan) {
            return Ok(self.relation(dataset, alias, plan));
        }
        match plan {
            LogicalPlan::Filter(f) => {
                let map = self.walk(&f.input, alias)?;
                let predicate = substitute(&f.predicate, &f.input, &map)?;
                self.filters.push(predicate);
                Ok(map)
            }
            LogicalPlan::SubqueryAlias(s) => {
                let name = s.alias.table().to_string();
                self.walk(&s.input, Some(&name))
            }
            LogicalPlan::Projection(p) => {
                let map = self.walk(&p.input, alias)?;
                p.expr
                    .iter()
                    .map(|e| substitute(e, &p.input, &map).map(|x| x.unalias_nested().data))
                    .collect()
            }
            LogicalPlan::Join(j) => {
                if j.join_type != datafusion::logical_expr::JoinType::Inner {
                    return Err(Refusal::new(
                        Rule::PlanNotAllowed,
                        format!("{} joins are not supported; use an inner join", j.join_type),
                    ));
                }
                let left = self.walk(&j.left, None)?;
                let right = self.walk(&j.right, None)?;
                for (l, r) in &j.on {
                    let pair = (
                        substitute(l, &j.left, &left)?,
                        substitute(r, &j.right, &right)?,
                    );
                    self.join_pairs.push(pair);
                }
                let mut both = left;
                both.extend(right);
                if let Some(filter) = &j.filter {
                    let filter = substitute(filter, plan, &both)?;
                    let mut parts = Vec::new();
                    conjuncts(&filter, &mut parts);
                    for part in parts {
                        match &part {
                            Expr::BinaryExpr(b)
                                if b.op == datafusion::logical_expr::Operator::Eq
                                    && matches!(
                                        (b.left.as_ref(), b.right.as_ref()),
                                        (Expr::Column(_), Expr::Column(_))
                                    ) =>
                            {
                                self.join_pairs
                                    .push((b.left.as_ref().clone(), b.right.as_ref().clone()));
                            }
                            _ => self.filters.push(part),
                        }
                    }
                }
                Ok(both)
            }
            LogicalPlan::TableScan(t) => {
                if !t.filters.is_empty() || t.fetch.is_some() {
                    return Err(Refusal::new(
                        Rule::PlanNotAllowed,
                        "pushed-down scan options are not accepted from modules",
                    ));
                }
                let dataset = t.table_name.table().to_string();
                Ok(self.relation(&dataset, alias, plan))
            }
            LogicalPlan::Aggregate(_) => Err(Refusal::new(
                Rule::PlanNotAllowed,
                "an aggregate inside FROM (a nested aggregate) is not supported: aggregate once, over the datasets' rows",
            )),
            LogicalPlan::Distinct(_) => Err(Refusal::new(
                Rule::PlanNotAllowed,
                "DISTINCT under an aggregate is not supported: count distinct privacy units with COUNT(DISTINCT unit)",
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
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod totality;
