//! The query path: the only way from a module's SQL to data.
//!
//! A query is
//! planned by DataFusion's SQL planner (DDL, DML and statements off) against views that
//! hold the scenario's columns only; the [`analyze`] pass decides on the unoptimized
//! LogicalPlan with allow-lists; the budget is charged, and the clamped, bounded
//! aggregate runs while the charge commits; only once the charge is durable does OpenDP
//! add noise and the module's post-processing run over the noisy table (a refused charge
//! drops the aggregate unseen).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use datafusion::common::TableReference;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use sandbox_policies::{Mode, Policy};
use serde::Serialize;
use serde_json::json;

use sandbox_core::Secret;
use sandbox_core::authz::Action;
use sandbox_core::job::{Interrupt, StopTarget};
use sandbox_core::refusal::{Refusal, Rule};
use sandbox_store::authz::{self, On};
use sandbox_store::catalog::{self, DatasetVersion};
use sandbox_store::ledger::{self, Balance, Charge};
use sandbox_store::scenarios::{self, ScenarioRecord};
use sandbox_store::{Conn, queries};

use crate::cluster::Placement;
use crate::differencing::{Contributors, GuardKey, Released};
use crate::privacy::{self, NoiseReport};
use crate::{DomainError as Error, Mediator, Result, analyze, execute, views};

type Domain = Mediator;

/// Longest SQL text accepted.
pub const MAX_SQL_BYTES: usize = 64 * 1024;

/// A query to answer.
#[derive(Debug, Clone)]
pub struct QueryRequest<'a> {
    /// The scenario paying and scoping.
    pub scenario_id: i64,
    /// The job asking, if any.
    pub job_id: Option<&'a str>,
    /// Who asks (the job's submitter).
    pub actor: &'a str,
    /// SQL text.
    pub sql: &'a str,
    /// ε to spend; the scenario's per-query ε when absent.
    pub epsilon: Option<f64>,
}

/// An answered query.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    /// Query id.
    pub query_id: String,
    /// The answer: noisy aggregates, with `sandbox.*` schema metadata.
    #[serde(skip)]
    pub batch: RecordBatch,
    /// ε charged.
    pub epsilon: f64,
    /// δ charged.
    pub delta: f64,
    /// Mechanism.
    pub mechanism: String,
    /// Noise per statistic.
    pub noise: Vec<NoiseReport>,
    /// Budget after the charge.
    pub balance: Balance,
}

struct ScopeImpl {
    versions: HashMap<String, DatasetVersion>,
    columns: HashMap<String, Vec<String>>,
    views: HashMap<String, datafusion::logical_expr::LogicalPlan>,
}

impl analyze::Scope for ScopeImpl {
    fn policy(&self, dataset: &str) -> Option<&Policy> {
        self.versions.get(dataset).map(|v| &v.policy)
    }
    fn includes(&self, dataset: &str, column: &str) -> bool {
        self.columns
            .get(dataset)
            .is_some_and(|cols| cols.iter().any(|c| c == column))
    }
    fn within_bounds(&self, dataset: &str, column: &str) -> bool {
        self.versions
            .get(dataset)
            .is_some_and(|v| v.within_bounds.iter().any(|c| c == column))
    }
    fn native_sum(&self, dataset: &str, column: &str) -> bool {
        let Some(v) = self.versions.get(dataset) else {
            return false;
        };
        let integer = v
            .schema
            .iter()
            .any(|(name, t)| name == column && *t == sandbox_policies::ColumnType::Int);
        let Some((lower, upper)) = v.policy.column(column).and_then(|c| c.bounds()) else {
            return false;
        };
        integer
            && self.within_bounds(dataset, column)
            && (v.row_count.max(1) as f64) * lower.abs().max(upper.abs()) < 2f64.powi(53)
    }
    fn view_of(&self, plan: &datafusion::logical_expr::LogicalPlan) -> Option<&str> {
        self.views
            .iter()
            .find(|(_, v)| *v == plan)
            .map(|(name, _)| name.as_str())
    }
}

fn record_refusal(
    domain: &Domain,
    conn: &mut Conn,
    req: &QueryRequest<'_>,
    query_id: &str,
    refusal: &Refusal,
) -> Result<()> {
    let suspended = queries::record_refusal(
        conn,
        &queries::Refused {
            query_id,
            scenario_id: req.scenario_id,
            job_id: req.job_id,
            actor: req.actor,
            sql: req.sql,
            refusal,
        },
    )?;
    if suspended.is_some() {
        domain.interrupt(&StopTarget::Scenario(req.scenario_id), Interrupt::Suspended);
    }
    Ok(())
}

/// How deep parentheses and CASE expressions may nest in module SQL. The parser
/// backtracks at some nested shapes and its work multiplies per level there (`CAST(CASE (`
/// repeated eight times took it 0.3 s unoptimized); real analyses nest far less.
pub const MAX_NESTING: usize = 12;

/// How many parts a dotted name may have (`schema.table.column` has three).
pub const MAX_NAME_PARTS: usize = 4;

/// How many binary operators (arithmetic, comparison, AND, OR) one query may hold. A chain
/// of them is a tree as deep as it is long, which the planner and the analyzer walk
/// recursively: a fuzzed `SUM(income * a / b / c …)` of some two hundred divisions took
/// 4.5 s to plan in a release build and overflowed a 2 MiB thread stack in a debug one.
/// Real analyses use a few dozen at most.
pub const MAX_OPERATORS: usize = 100;

/// Refuses, from the tokens alone (linear in the text), shapes the SQL parser takes time
/// exponential in their size to parse, before it sees them: subscripts and braces (the
/// allowed SQL has none; `a.b[c.d[…` took the parser 4.7 s at ten levels and a fuzzed
/// 221-byte query over a minute), parentheses and CASE expressions nested deeper than
/// [`MAX_NESTING`] (an unclosed `CASE -CASE -CASE …` of thirty did not end in minutes),
/// dotted names of more than [`MAX_NAME_PARTS`] parts, and more than [`MAX_OPERATORS`]
/// binary operators (a tree as deep as the chain: slow to plan, and deep recursion). A text the tokenizer
/// rejects goes on to the parser, which refuses it with its own message.
fn shape_refusal(sql: &str) -> Option<Refusal> {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::keywords::Keyword;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

    let tokens = Tokenizer::new(&GenericDialect {}, sql).tokenize().ok()?;
    let mut depth = 0usize;
    let mut parts = 0usize;
    let mut after_period = false;
    let mut operators = 0usize;
    for token in tokens {
        let operator = match &token {
            Token::Plus
            | Token::Minus
            | Token::Mul
            | Token::Div
            | Token::Mod
            | Token::DuckIntDiv
            | Token::Eq
            | Token::DoubleEq
            | Token::Neq
            | Token::Lt
            | Token::Gt
            | Token::LtEq
            | Token::GtEq
            | Token::StringConcat => true,
            Token::Word(w) => {
                w.quote_style.is_none() && matches!(w.keyword, Keyword::AND | Keyword::OR)
            }
            _ => false,
        };
        if operator {
            operators += 1;
            if operators > MAX_OPERATORS {
                return Some(Refusal::new(
                    Rule::Syntax,
                    format!("more than {MAX_OPERATORS} operators in one query"),
                ));
            }
        }
        match token {
            Token::LBracket | Token::RBracket | Token::LBrace | Token::RBrace => {
                return Some(Refusal::new(
                    Rule::Syntax,
                    "subscripts and braces (`[`, `{`) are not part of the SQL modules may send",
                ));
            }
            Token::LParen => depth += 1,
            Token::Word(ref w) if w.quote_style.is_none() && w.keyword == Keyword::CASE => {
                depth += 1
            }
            Token::RParen => depth = depth.saturating_sub(1),
            Token::Word(ref w) if w.quote_style.is_none() && w.keyword == Keyword::END => {
                depth = depth.saturating_sub(1)
            }
            _ => {}
        }
        if depth > MAX_NESTING {
            return Some(Refusal::new(
                Rule::Syntax,
                format!("parentheses and CASE expressions nested more than {MAX_NESTING} deep"),
            ));
        }
        // Count the parts of a dotted name: a word (or a placeholder), then `.` and any
        // token, and so on. Whatever follows a `.` counts: a chain of placeholders
        // (`x.$a.$a…`) is as slow to parse as one of words (a fuzzed 706-byte one took
        // 35 s).
        match token {
            Token::Period => after_period = true,
            Token::Whitespace(_) => {}
            _ if after_period => {
                parts += 1;
                after_period = false;
                if parts > MAX_NAME_PARTS {
                    return Some(Refusal::new(
                        Rule::Syntax,
                        format!("a dotted name of more than {MAX_NAME_PARTS} parts"),
                    ));
                }
            }
            Token::Word(_) | Token::Placeholder(_) => {
                parts = 1;
                after_period = false;
            }
            _ => {
                parts = 0;
                after_period = false;
            }
        }
    }
    None
}

/// The refusal of a statement that is not one query, by the parsed statement's kind.
fn statement_refusal(statement: &DFStatement) -> Option<Refusal> {
    let kind = match statement {
        DFStatement::Statement(s) if matches!(**s, SqlStatement::Query(_)) => {
            return empty_select(s);
        }
        DFStatement::Statement(s) => format!("{s}").split_whitespace().next().map_or_else(
            || "a statement".to_string(),
            |w| format!("a {} statement", w.to_ascii_uppercase()),
        ),
        DFStatement::CreateExternalTable(_) => "CREATE EXTERNAL TABLE".into(),
        DFStatement::CopyTo(_) => "COPY".into(),
        DFStatement::Explain(_) => "EXPLAIN".into(),
        DFStatement::Reset(_) => "RESET".into(),
    };
    Some(Refusal::new(
        Rule::NotAQuery,
        format!("{kind} is not a query: modules may only ask SELECT queries"),
    ))
}

/// A SELECT without a single expression, anywhere in the statement: DataFusion's planner
/// panics on one used as a scalar subquery, so it never reaches the planner.
fn empty_select(statement: &SqlStatement) -> Option<Refusal> {
    use std::ops::ControlFlow;

    use datafusion::sql::sqlparser::ast::{Query, SetExpr, Visit, Visitor};

    struct Empty;
    fn empty(set: &SetExpr) -> bool {
        match set {
            SetExpr::Select(s) => s.projection.is_empty(),
            SetExpr::SetOperation { left, right, .. } => empty(left) || empty(right),
            _ => false,
        }
    }
    impl Visitor for Empty {
        type Break = ();
        fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
            if empty(&query.body) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }
    }
    statement.visit(&mut Empty).is_break().then(|| {
        Refusal::new(
            Rule::Syntax,
            "a SELECT needs at least one expression to return",
        )
    })
}

/// The refusal of a table the query reads that the scenario does not hold.
fn unknown_table(reference: &TableReference, scope: &ScopeImpl) -> Refusal {
    let mut names: Vec<&str> = scope.versions.keys().map(String::as_str).collect();
    names.sort_unstable();
    Refusal::new(
        Rule::UnknownTable,
        format!(
            "table `{reference}` is not in this scenario (the scenario has: {})",
            names.join(", ")
        ),
    )
}

/// Maps an error of planning an accepted query statement to a refusal, by its variant.
/// Planning errors say nothing about the data: they depend on the SQL and the scenario's
/// schema only.
/// An engine's error in words a developer reads: the parser's message without its type's
/// name (`ParserError("...")`), the planner's without `Error during planning:` and
/// without the engine's own catalog and schema in names (`datafusion.public.`).
fn engine_words(e: &DataFusionError) -> String {
    use datafusion::sql::sqlparser::parser::ParserError;
    let text = match e.find_root() {
        DataFusionError::SQL(p, _) => match p.as_ref() {
            ParserError::ParserError(m) | ParserError::TokenizerError(m) => m.clone(),
            ParserError::RecursionLimitExceeded => "the query is nested too deeply".to_string(),
        },
        DataFusionError::Plan(m) | DataFusionError::NotImplemented(m) => m.clone(),
        other => other.to_string(),
    };
    text.replace("datafusion.public.", "")
        .replace("Error during planning: ", "")
}

fn planning_refusal(e: &DataFusionError) -> Refusal {
    let root = e.find_root();
    if let DataFusionError::SchemaError(err, _) = root
        && let datafusion::common::SchemaError::FieldNotFound { field, .. } = err.as_ref()
    {
        return Refusal::column(
            Rule::UnknownColumn,
            field.name.clone(),
            "no such column in this scenario",
        );
    }
    let text = engine_words(e);
    match root {
        DataFusionError::SQL(..) => Refusal::new(Rule::Syntax, text),
        // A form of SQL the engine does not plan.
        DataFusionError::NotImplemented(_) => Refusal::new(Rule::NotAQuery, text),
        _ => Refusal::new(Rule::InvalidQuery, text),
    }
}

/// Everything prepared for planning a scenario's query: the scenario as it is now, and
/// the planning state of its datasets (shared between queries while nothing changes).
struct Prepared {
    record: ScenarioRecord,
    shared: Arc<Shared>,
}

/// The planning state of a scenario's datasets: their current versions, views and a
/// session holding only those views.
pub(crate) struct Shared {
    scope: ScopeImpl,
    ctx: SessionContext,
    schemas: HashMap<String, Arc<arrow::datatypes::Schema>>,
    secret: Secret,
    /// The mediator's own scans of each dataset (scenario columns, unit, and the rank when
    /// read alone), with their view expressions: built once per prepared scenario.
    scans: std::sync::Mutex<ScanCache>,
}

type ScanCache = HashMap<
    (String, bool),
    (
        Arc<datafusion::datasource::listing::ListingTable>,
        Vec<datafusion::logical_expr::Expr>,
        datafusion::logical_expr::Expr,
    ),
>;

impl std::ops::Deref for Prepared {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.shared
    }
}

/// Prepared scenarios of a domain, reused while the scenario's datasets keep their
/// versions (a new dataset version, or another column set, prepares afresh).
#[derive(Default)]
pub struct Cache {
    entries: std::sync::Mutex<HashMap<i64, (String, Arc<Shared>)>>,
}

impl Cache {
    /// Forgets every prepared scenario: the next query of each prepares it again (in a
    /// session made then).
    pub(crate) fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("mediate::Cache")
    }
}

impl Prepared {
    /// The dataset versions an accepted query reads, each once (recorded with its charge).
    fn versions_read(&self, accepted: &analyze::Accepted) -> Vec<(String, i64)> {
        let mut read: Vec<(String, i64)> = accepted
            .relations
            .iter()
            .filter_map(|r| {
                let v = self.scope.versions.get(&r.dataset)?;
                Some((v.name.clone(), v.version))
            })
            .collect();
        read.sort();
        read.dedup();
        read
    }

    /// Rows of the largest dataset an accepted query reads (which decides whether its
    /// plans go to a cluster).
    fn rows_read(&self, accepted: &analyze::Accepted) -> u64 {
        accepted
            .relations
            .iter()
            .filter_map(|r| self.scope.versions.get(&r.dataset))
            .map(|v| u64::try_from(v.row_count).unwrap_or(0))
            .max()
            .unwrap_or(0)
    }

    /// The type of a column as the scenario's view shows it.
    fn type_of(&self, c: &analyze::ColRef) -> Option<arrow::datatypes::DataType> {
        self.scope
            .views
            .get(&c.dataset)?
            .schema()
            .field_with_unqualified_name(&c.name)
            .ok()
            .map(|f| f.data_type().clone())
    }
}

fn prepare(domain: &Domain, conn: &Conn, scenario_id: i64) -> Result<Prepared> {
    let record = scenarios::get(conn, scenario_id)?;
    // What the planning state depends on: the scenario's datasets and columns, and each
    // dataset's current version.
    let mut key = serde_json::to_string(&record.spec.datasets)?;
    for d in &record.spec.datasets {
        let version = catalog::current_version(conn, &d.name)?;
        // A suspended version answers nothing until it is reinstated or replaced (QQHR
        // Art. 20; SYS Art. 28): every query and check comes through here.
        if let Some(v) = version
            && let Some(s) = sandbox_store::versions::in_force(conn, &d.name, v)?
        {
            return Err(Error::Refused(Refusal::new(
                Rule::Scenario,
                format!(
                    "dataset `{}` version {v} is suspended since {} by `{}`: {}",
                    d.name, s.suspended_at, s.suspended_by, s.reason
                ),
            ))
            .into());
        }
        if let Some(gone) = sandbox_store::versions::destruction(conn, &d.name)? {
            return Err(Error::Refused(Refusal::new(
                Rule::Scenario,
                format!(
                    "dataset `{}` was destroyed on {} by `{}`: {}",
                    d.name, gone.destroyed_at, gone.destroyed_by, gone.reason
                ),
            ))
            .into());
        }
        key.push_str(&format!("|{}@{}", d.name, version.unwrap_or(0)));
    }
    let cache = domain.mediate_cache();
    if let Some((k, shared)) = cache
        .entries
        .lock()
        .map_err(|_| Error::Internal("query cache poisoned".into()))?
        .get(&scenario_id)
        && *k == key
    {
        return Ok(Prepared {
            record,
            shared: shared.clone(),
        });
    }
    let shared = Arc::new(prepare_shared(domain, conn, &record)?);
    cache
        .entries
        .lock()
        .map_err(|_| Error::Internal("query cache poisoned".into()))?
        .insert(scenario_id, (key, shared.clone()));
    Ok(Prepared { record, shared })
}

fn prepare_shared(domain: &Domain, conn: &Conn, record: &ScenarioRecord) -> Result<Shared> {
    let config = SessionConfig::new()
        .with_information_schema(false)
        .with_target_partitions(2);
    let ctx = domain.session(config);
    let mut versions = HashMap::new();
    let mut columns = HashMap::new();
    let mut schemas = HashMap::new();
    let mut views = HashMap::new();
    let secret = domain.keys().pseudonym_secret()?.clone();
    for d in &record.spec.datasets {
        let version = catalog::get(conn, &d.name)?;
        let visible: Vec<String> = d
            .columns
            .iter()
            .filter(|c| {
                version
                    .policy
                    .column(c)
                    .is_some_and(|p| p.access != sandbox_policies::Access::None)
            })
            .cloned()
            .collect();
        let schema = crate::ingest::arrow_schema(domain.dataset_keys(), &version)?;
        let table = execute::dataset_table(&version, &schema, &visible)?;
        let exprs = view_exprs(&version, &schema, &visible, &secret)?;
        let view = datafusion::logical_expr::LogicalPlanBuilder::scan(
            d.name.as_str(),
            datafusion::datasource::provider_as_source(table),
            None,
        )?
        .project(exprs)?
        .build()?;
        ctx.register_table(
            d.name.as_str(),
            Arc::new(datafusion::catalog::view::ViewTable::new(
                view.clone(),
                None,
            )),
        )?;
        views.insert(d.name.clone(), view);
        schemas.insert(d.name.clone(), schema);
        columns.insert(d.name.clone(), visible);
        versions.insert(d.name.clone(), version);
    }
    Ok(Shared {
        scans: std::sync::Mutex::new(HashMap::new()),
        scope: ScopeImpl {
            versions,
            columns,
            views,
        },
        ctx,
        schemas,
        secret,
    })
}

/// The view's expressions for `columns` of a dataset version: each desensitized as its
/// policy says.
fn view_exprs(
    version: &DatasetVersion,
    schema: &arrow::datatypes::Schema,
    columns: &[String],
    secret: &Secret,
) -> Result<Vec<datafusion::logical_expr::Expr>> {
    columns
        .iter()
        .map(|c| {
            let policy = version
                .policy
                .column(c)
                .ok_or_else(|| Error::Internal(format!("column `{c}` has no policy")))?;
            let field = schema.field_with_name(c)?;
            Ok(views::view_expr(
                &version.policy,
                policy,
                field.data_type(),
                secret,
            ))
        })
        .collect()
}

/// Where an accepted query's plans run: on the mediator's cluster when it has one and the
/// largest dataset read is large enough, locally otherwise; watched by [`still_wanted`].
fn placement<'a>(
    domain: &'a Domain,
    req: &'a QueryRequest<'a>,
    prepared: &'a Prepared,
    accepted: &analyze::Accepted,
) -> Placement<'a> {
    Placement {
        ctx: &prepared.ctx,
        cluster: domain.cluster_for(prepared.rows_read(accepted)),
        watch: Box::new(move || still_wanted(domain, req, &prepared.record)),
    }
}

/// Whether a query that is running is still wanted: the asker may still query the
/// scenario (no stop, suspension or revocation since it was admitted) and its job was not
/// cancelled. Asked while a plan runs on a cluster, whose job is cancelled when it is not.
fn still_wanted(
    domain: &Domain,
    req: &QueryRequest<'_>,
    scenario: &ScenarioRecord,
) -> sandbox_core::Result<()> {
    let conn = domain.conn()?;
    authz::authorize(
        &conn,
        req.actor,
        Action::Query,
        On::Work {
            scenario,
            submitter: req.actor,
        },
    )?;
    if let Some(job_id) = req.job_id
        && let Some(Some(by)) = sandbox_store::jobs::cancel_requested_by(&conn, job_id)?
    {
        return Err(Error::Refused(Refusal::new(
            Rule::Scenario,
            format!("job {job_id} was cancelled by `{by}`"),
        )));
    }
    Ok(())
}

/// Why a query went no further: a refusal (recorded, then returned to the asker) or a
/// failure.
enum Halt {
    Refused(Refusal),
    Failed(crate::Error),
}

impl<E: Into<crate::Error>> From<E> for Halt {
    fn from(e: E) -> Halt {
        Halt::Failed(e.into())
    }
}

/// Answers a query, or refuses it. Refusals and answers are both recorded.
pub fn answer(domain: &Domain, req: &QueryRequest<'_>) -> Result<Answer> {
    let mut conn = domain.conn()?;
    let query_id = sandbox_core::new_id("q");
    match respond(domain, &mut conn, req, &query_id) {
        Ok(answer) => Ok(answer),
        Err(Halt::Refused(refusal)) => {
            record_refusal(domain, &mut conn, req, &query_id, &refusal)?;
            Err(Error::Refused(refusal).into())
        }
        Err(Halt::Failed(e)) => Err(e),
    }
}

/// The query's way from its text to its answer: admitted, planned, analyzed, then
/// answered in the scenario's mode.
fn respond(
    domain: &Domain,
    conn: &mut Conn,
    req: &QueryRequest<'_>,
    query_id: &str,
) -> Result<Answer, Halt> {
    let (prepared, epsilon) = admit(domain, conn, req)?;
    let plan = plan_sql(domain, &prepared, req.sql).map_err(Halt::Refused)?;
    let accepted = analyze::analyze(&plan, &prepared.scope).map_err(Halt::Refused)?;
    let policies: HashMap<String, Policy> = prepared
        .scope
        .versions
        .iter()
        .map(|(name, v)| (name.clone(), v.policy.clone()))
        .collect();
    let first = accepted
        .relations
        .first()
        .ok_or_else(|| Error::Internal("accepted query without a dataset".into()))?;
    let first_policy = policies
        .get(&first.dataset)
        .ok_or_else(|| Error::Internal("accepted dataset vanished".into()))?;
    let max_output_rows = accepted
        .relations
        .iter()
        .filter_map(|r| policies.get(&r.dataset))
        .map(|p| p.disclosure.max_output_rows)
        .min()
        .unwrap_or(first_policy.disclosure.max_output_rows) as usize;
    if prepared.record.spec.mode == Mode::Threshold {
        return Ok(answer_threshold(
            domain,
            conn,
            req,
            query_id.to_string(),
            &prepared,
            &plan,
            &accepted,
            &policies,
            max_output_rows,
        )?);
    }
    let release = dp_release(
        domain,
        &prepared,
        &accepted,
        &policies,
        epsilon,
        max_output_rows,
    )?;
    Ok(answer_dp(
        domain, conn, req, query_id, &prepared, &plan, &accepted, release,
    )?)
}

/// What every query passes before it is planned: a bounded text, the one authorization
/// path, a job not cancelled, and (with noise) an ε within the scenario's cap per query.
/// Returns the prepared scenario and the ε to spend.
fn admit(domain: &Domain, conn: &Conn, req: &QueryRequest<'_>) -> Result<(Prepared, f64), Halt> {
    if req.sql.len() > MAX_SQL_BYTES {
        return Err(Halt::Refused(Refusal::new(
            Rule::Syntax,
            format!("SQL longer than {MAX_SQL_BYTES} bytes"),
        )));
    }
    let prepared = prepare(domain, conn, req.scenario_id)?;
    // The one authorization path, on every query: the asker is an active developer of
    // the scenario, which is usable, and no stop covers it, its developer or the domain (a
    // job running in this process or another gets no further answers once that changes).
    if let Err(e) = authz::authorize(
        conn,
        req.actor,
        Action::Query,
        On::Work {
            scenario: &prepared.record,
            submitter: req.actor,
        },
    ) {
        return Err(match sandbox_core::Error::from(e) {
            e @ (Error::Forbidden(_) | Error::Stopped(_)) => {
                Halt::Refused(Refusal::new(Rule::Scenario, e.detail()))
            }
            other => Halt::from(other),
        });
    }
    // A job cancelled while it runs (in this process or another) gets no further answers.
    if let Some(job_id) = req.job_id {
        let cancelled_by = sandbox_store::jobs::cancel_requested_by(conn, job_id)?;
        if let Some(Some(by)) = cancelled_by {
            return Err(Halt::Refused(Refusal::new(
                Rule::Scenario,
                format!("job {job_id} was cancelled by `{by}`"),
            )));
        }
    }
    let budget = &prepared.record.spec.budget;
    let epsilon = req.epsilon.unwrap_or(budget.epsilon_per_query);
    let epsilon_ok =
        epsilon.is_finite() && epsilon > 0.0 && epsilon <= budget.epsilon_per_query * (1.0 + 1e-9);
    if prepared.record.spec.mode != Mode::Threshold && !epsilon_ok {
        return Err(Halt::Refused(Refusal::new(
            Rule::Scenario,
            format!(
                "ε {epsilon} is outside (0, {}], the scenario's cap per query",
                budget.epsilon_per_query
            ),
        )));
    }
    Ok((prepared, epsilon))
}

/// How an accepted query's noisy answer is released: its ε, δ and ρ, the cells of a
/// public grouping (or none, when τ-thresholding releases keys from the data), the
/// statistics and the mechanism.
struct DpRelease {
    epsilon: f64,
    delta: f64,
    rho: f64,
    spend: privacy::Spend,
    zcdp: bool,
    /// The public cells of the grouping, one key tuple each.
    grid: Option<Vec<Vec<Option<String>>>>,
    stat_plan: execute::StatPlan,
    core: CoreShape,
    mechanism: String,
    max_output_rows: usize,
}

/// Decides how an accepted query is released with noise, or refuses it: group keys from
/// the data need δ (and pure accounting), a public grouping must fit the policy's rows.
fn dp_release(
    domain: &Domain,
    prepared: &Prepared,
    accepted: &analyze::Accepted,
    policies: &HashMap<String, Policy>,
    epsilon: f64,
    max_output_rows: usize,
) -> Result<DpRelease, Halt> {
    let budget = &prepared.record.spec.budget;
    let policy_of = |d: &str| policies.get(d).cloned();
    let private_keys: Vec<&analyze::GroupKey> = accepted
        .group_keys
        .iter()
        .filter(|g| !execute::is_public(g, &policy_of))
        .collect();
    let delta = if private_keys.is_empty() {
        0.0
    } else if budget.delta_per_query > 0.0 {
        budget.delta_per_query
    } else {
        return Err(Halt::Refused(Refusal::column(
            Rule::GroupKeysNotPublic,
            private_keys[0]
                .columns
                .iter()
                .find(|c| execute::categories(c, &policy_of).is_none())
                .map(|c| c.name.clone())
                .unwrap_or_else(|| private_keys[0].label()),
            "group keys would be released from the data: the policy must declare this column's `categories`, or the scenario must allow δ (`delta_per_query`) for τ-thresholding",
        )));
    };
    let grid = if delta > 0.0 {
        None
    } else {
        let type_of = |c: &analyze::ColRef| prepared.type_of(c);
        match domain.runtime().block_on(execute::public_cells(
            &prepared.ctx,
            accepted,
            &policy_of,
            &type_of,
        )) {
            Ok(g) if g.len() <= max_output_rows => Some(g),
            _ => {
                return Err(Halt::Refused(Refusal::new(
                    Rule::PlanNotAllowed,
                    format!(
                        "the grouping has more cells than the policy's max_output_rows ({max_output_rows})"
                    ),
                )));
            }
        }
    };
    let zcdp = budget.accounting == sandbox_policies::Accounting::Zcdp;
    if zcdp && delta > 0.0 {
        return Err(Halt::Refused(Refusal::new(
            Rule::Scenario,
            "group keys from the data are released by a Laplace threshold: declare the keys' categories in zCDP scenarios",
        )));
    }
    let spend = if zcdp {
        privacy::Spend::Zcdp(sandbox_policies::BudgetSpec::rho_of(epsilon))
    } else {
        privacy::Spend::Pure(epsilon)
    };
    let rho = match spend {
        privacy::Spend::Zcdp(rho) => rho,
        privacy::Spend::Pure(_) => 0.0,
    };
    let core = core_shape(accepted, prepared)?;
    let rounding = accepted
        .relations
        .iter()
        .filter_map(|r| policies.get(&r.dataset))
        .any(|p| p.disclosure.rounding == sandbox_policies::Rounding::Noise);
    let stat_plan = execute::StatPlan::new(accepted, core.k, core.groups, delta > 0.0)?
        .with_summed_rows(core.summed_rows)
        .with_rounding(rounding);
    let mechanism = if zcdp {
        stat_plan.mechanism().replace("laplace", "gaussian")
    } else {
        stat_plan.mechanism().to_string()
    };
    Ok(DpRelease {
        epsilon,
        delta,
        rho,
        spend,
        zcdp,
        grid,
        stat_plan,
        core,
        mechanism,
        max_output_rows,
    })
}

/// Charges the budget, runs the aggregate, adds the noise and finishes the answer.
#[allow(clippy::too_many_arguments)]
fn answer_dp(
    domain: &Domain,
    conn: &mut Conn,
    req: &QueryRequest<'_>,
    query_id: &str,
    prepared: &Prepared,
    plan: &datafusion::logical_expr::LogicalPlan,
    accepted: &analyze::Accepted,
    release: DpRelease,
) -> Result<Answer> {
    let DpRelease {
        epsilon,
        delta,
        rho,
        spend,
        zcdp,
        grid,
        stat_plan,
        core,
        mechanism,
        max_output_rows,
    } = release;
    // Budget before answer: nothing computed from the data leaves the mediator until the
    // charge is durable. The aggregate runs while the charge's transaction commits (its
    // `fsync` is most of a small query's cost); if the charge is refused, the running
    // aggregate is dropped at once, so a refusal's timing does not depend on the data.
    let versions = prepared.versions_read(accepted);
    let charge = Charge {
        scenario_id: req.scenario_id,
        job_id: req.job_id,
        query_id,
        sql: req.sql,
        actor: req.actor,
        epsilon,
        delta,
        rho,
        mechanism: &mechanism,
        datasets: &versions,
    };
    let on = placement(domain, req, prepared, accepted);
    let (balance, exact) = charge_then_run(
        domain,
        conn,
        &charge,
        execute::run_core(&on, core.input(accepted, &stat_plan)),
    )?;
    let n_groups = accepted.group_keys.len();
    let noisy = match &grid {
        Some(grid) => execute::add_noise(&exact, grid, &stat_plan, spend, n_groups)?,
        None => {
            let (_, noisy, spent_delta) = execute::add_noise_thresholded(
                &exact,
                &stat_plan,
                epsilon,
                delta,
                n_groups,
                max_output_rows,
            )?;
            if spent_delta > delta {
                return Err(Error::Internal(format!(
                    "privacy map reports δ {spent_delta} above the charge {delta}"
                ))
                .into());
            }
            noisy
        }
    };
    drop(exact);
    if noisy.epsilon > epsilon * (1.0 + 1e-9) || noisy.rho > rho * (1.0 + 1e-9) {
        return Err(Error::Internal(format!(
            "privacy maps report ε {} / ρ {} above the charge ε {epsilon} / ρ {rho}",
            noisy.epsilon, noisy.rho
        ))
        .into());
    }
    let table = noisy
        .batch
        .clone()
        .ok_or_else(|| Error::Internal("noisy answer without a table".into()))?;
    let mut metadata = HashMap::new();
    metadata.insert("sandbox.epsilon".to_string(), format!("{epsilon}"));
    metadata.insert("sandbox.delta".to_string(), format!("{delta}"));
    if zcdp {
        metadata.insert("sandbox.rho".to_string(), format!("{rho}"));
    }
    metadata.insert("sandbox.mechanism".to_string(), mechanism.clone());
    metadata.insert("sandbox.query_id".to_string(), query_id.to_string());
    // Per statistic: what was computed, its mechanism, sensitivity, scale and ε.
    let noise: Vec<serde_json::Value> = stat_plan
        .describe()
        .into_iter()
        .zip(&noisy.noise)
        .map(|(statistic, n)| {
            json!({"statistic": statistic, "mechanism": n.mechanism, "sensitivity": n.sensitivity, "scale": n.scale, "epsilon": n.epsilon, "rho": n.rho})
        })
        .collect();
    metadata.insert("sandbox.noise".to_string(), serde_json::to_string(&noise)?);
    let batch = finish_answer(
        domain, conn, prepared, plan, table, n_groups, query_id, metadata,
    )?;
    Ok(Answer {
        query_id: query_id.to_string(),
        batch,
        epsilon,
        delta,
        mechanism,
        noise: noisy.noise,
        balance,
    })
}

/// Charges the budget on a thread of its own while `work` runs, and returns the work's
/// result only once the charge is committed. A refused or failed charge drops `work`
/// where it stands and is returned instead; a failed `work` after a committed charge
/// leaves the charge spent (the query was asked).
fn charge_then_run<T>(
    domain: &Domain,
    conn: &mut Conn,
    charge: &Charge<'_>,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<(Balance, T)> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::scope(|scope| {
        let conn = &mut *conn;
        scope.spawn(move || {
            // The receiver is gone only if the caller panicked; nothing to report to.
            let _ = tx.send(ledger::charge(conn, charge));
        });
        domain.runtime().block_on(async move {
            tokio::pin!(work);
            let mut rx = rx;
            let mut done: Option<Result<T>> = None;
            let charged = loop {
                tokio::select! {
                    biased;
                    charged = &mut rx => break charged,
                    result = &mut work, if done.is_none() => done = Some(result),
                }
            };
            let balance = charged.map_err(|_| {
                Error::Internal("the budget charge ended without an answer".into())
            })??;
            let result = match done {
                Some(result) => result?,
                None => work.await?,
            };
            Ok((balance, result))
        })
    })
}

/// Answers a query in threshold mode: exact aggregates of the cells that pass the
/// disclosure rules (small cells, nk-dominance, p%, secondary suppression). No ε is spent;
/// the query is recorded and audited like any other.
#[allow(clippy::too_many_arguments)]
fn answer_threshold(
    domain: &Domain,
    conn: &mut Conn,
    req: &QueryRequest<'_>,
    query_id: String,
    prepared: &Prepared,
    plan: &datafusion::logical_expr::LogicalPlan,
    accepted: &analyze::Accepted,
    policies: &HashMap<String, Policy>,
    max_output_rows: usize,
) -> Result<Answer> {
    if let Some(q) = accepted
        .requested
        .iter()
        .find(|r| matches!(r, analyze::Requested::Quantile { .. }))
    {
        let refusal = Refusal::column(
            Rule::AggregateNotAllowed,
            q.label(),
            "MIN, MAX, MEDIAN and percentiles are single values of the data: not released in threshold mode",
        );
        record_refusal(domain, conn, req, &query_id, &refusal)?;
        return Err(Error::Refused(refusal).into());
    }
    let read: Vec<&Policy> = accepted
        .relations
        .iter()
        .filter_map(|r| policies.get(&r.dataset))
        .collect();
    let rules = execute::ThresholdRules {
        min_group_size: read
            .iter()
            .map(|p| i64::from(p.disclosure.min_group_size))
            .max()
            .unwrap_or(10),
        dominance_n: read
            .iter()
            .map(|p| p.disclosure.dominance.n as usize)
            .max()
            .unwrap_or(2),
        dominance_k: read
            .iter()
            .map(|p| p.disclosure.dominance.k)
            .fold(1.0, f64::min),
        p_ratio: read
            .iter()
            .map(|p| p.disclosure.p_ratio)
            .fold(0.0, f64::max),
    };
    let core = core_shape(accepted, prepared)?;
    let mut stat_plan = execute::StatPlan::new(accepted, core.k, core.groups, false)?
        .with_summed_rows(core.summed_rows);
    // Units per cell come out of the same aggregate as the statistics.
    stat_plan.count_units(core.unit.as_ref());
    let input = core.input(accepted, &stat_plan);
    ledger::charge(
        conn,
        &Charge {
            scenario_id: req.scenario_id,
            job_id: req.job_id,
            query_id: &query_id,
            sql: req.sql,
            actor: req.actor,
            epsilon: 0.0,
            delta: 0.0,
            rho: 0.0,
            mechanism: "threshold",
            datasets: &prepared.versions_read(accepted),
        },
    )?;
    let balance = ledger::balance(conn, req.scenario_id)?;
    let key = GuardKey::derive(&prepared.secret);
    let on = placement(domain, req, prepared, accepted);
    let exact = domain
        .runtime()
        .block_on(execute::run_threshold_core(&on, input, &key, &rules))?;
    let n_groups = accepted.group_keys.len();
    // The differencing guard's look-ups and the record of the cells released are one write
    // transaction, committed before anything is released.
    let datasets: Vec<String> = accepted
        .relations
        .iter()
        .map(|r| r.dataset.clone())
        .collect();
    let cells = queries::released_cells(conn, &datasets)?;
    let released = execute::apply_threshold(
        &exact,
        &stat_plan,
        &rules,
        n_groups,
        max_output_rows,
        &mut StoredCells(&cells),
    )?;
    drop(exact);
    for c in &released.released {
        cells.record(&query_id, c.len(), &c.to_bytes())?;
    }
    cells.commit()?;
    let table = released
        .batch
        .clone()
        .ok_or_else(|| Error::Internal("threshold answer without a table".into()))?;
    let mut metadata = HashMap::new();
    metadata.insert("sandbox.epsilon".to_string(), "0".to_string());
    metadata.insert("sandbox.delta".to_string(), "0".to_string());
    metadata.insert("sandbox.mechanism".to_string(), "threshold".to_string());
    metadata.insert("sandbox.query_id".to_string(), query_id.clone());
    metadata.insert(
        "sandbox.suppressed".to_string(),
        serde_json::to_string(&released.suppressed)?,
    );
    let batch = finish_answer(
        domain, conn, prepared, plan, table, n_groups, &query_id, metadata,
    )?;
    // What was withheld, for the output checks (totals that include suppressed cells, and
    // modules that fill suppressed cells in); kept in the store, never sent to the module.
    let withheld = queries::Withheld {
        cells: released
            .withheld
            .iter()
            .map(|c| c.iter().map(|v| v.clone().unwrap_or_default()).collect())
            .collect(),
        totals: released.totals.clone(),
    };
    // Like the answer record, durable with the next charge rather than with an fsync of
    // its own.
    queries::record_withheld(conn, &query_id, &withheld)?;
    Ok(Answer {
        query_id,
        batch,
        epsilon: 0.0,
        delta: 0.0,
        mechanism: "threshold".into(),
        noise: Vec::new(),
        balance,
    })
}

/// The cells threshold answers released earlier over a query's datasets, as the
/// differencing guard asks about them.
struct StoredCells<'a, 'c>(&'a queries::ReleasedCells<'c>);

impl Released for StoredCells<'_, '_> {
    fn too_close(&mut self, cell: &Contributors, min_group_size: usize) -> crate::Result<bool> {
        // Cells whose sizes differ by `min_group_size` or more cannot be too close.
        let within = min_group_size.saturating_sub(1);
        let lo = cell.len().saturating_sub(within);
        let hi = cell.len().saturating_add(within);
        for (_, bytes) in self.0.sized(lo, hi)? {
            if cell.too_close(&Contributors::from_bytes(&bytes)?, min_group_size) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// A row's identity for the differencing guard: each column the version stores, as every
/// query sees it ([`views::view_expr`]), as text (NULL apart from every value), joined by a
/// separator no value holds in practice. Read through the view, it is the same whether a
/// column is stored raw or desensitized, and columns no query can see (which later
/// versions do not store) are not part of it; two rows it cannot tell apart, no query can
/// either. The ingest-time rank is left out: it is not the row's content.
fn row_identity(
    version: &DatasetVersion,
    schema: &arrow::datatypes::Schema,
    secret: &Secret,
) -> datafusion::logical_expr::Expr {
    use datafusion::logical_expr::{lit, try_cast};
    let parts = version
        .policy
        .columns
        .iter()
        .filter(|c| version.policy.stored(&c.name) != sandbox_policies::Stored::Not)
        .filter_map(|c| {
            let field = schema.field_with_name(&c.name).ok()?;
            Some(datafusion::functions::expr_fn::coalesce(vec![
                try_cast(
                    views::view_expr(&version.policy, c, field.data_type(), secret).unalias(),
                    arrow::datatypes::DataType::Utf8,
                ),
                lit("\u{0}"),
            ]))
        })
        .collect();
    datafusion::functions::expr_fn::concat_ws(lit("\u{1f}"), parts)
}

/// Runs the module's post-processing over the released aggregate table, attaches the
/// answer's metadata and records the answer with its query (for provenance).
#[allow(clippy::too_many_arguments)]
fn finish_answer(
    domain: &Domain,
    conn: &Conn,
    prepared: &Prepared,
    plan: &datafusion::logical_expr::LogicalPlan,
    table: RecordBatch,
    n_groups: usize,
    query_id: &str,
    metadata: HashMap<String, String>,
) -> Result<RecordBatch> {
    let batches =
        domain
            .runtime()
            .block_on(execute::post_process(&prepared.ctx, plan, table, n_groups))?;
    let out_schema = match batches.first() {
        Some(b) => b.schema(),
        None => Arc::new(plan.schema().as_arrow().clone()),
    };
    let merged = arrow::compute::concat_batches(&out_schema, &batches)?;
    let schema = Arc::new(merged.schema().as_ref().clone().with_metadata(metadata));
    let batch = merged.with_schema(schema)?;
    // The answer is recorded for provenance without an fsync of its own: in WAL mode it
    // becomes durable with the next synchronous commit (the next charge). The charge itself,
    // committed before any of this was released, was synchronous.
    let (accuracy, rounded) = crate::accuracy::of_answer(&batch)?;
    let mut json = batch_to_json(&batch)?;
    if let Some(rounded) = rounded {
        // The numbers as the SDK rounds them are numbers the module was given too.
        let more = batch_to_json(&rounded)?;
        if json.len() > 2 && more.len() > 2 {
            json = format!("{},{}", &json[..json.len() - 1], &more[1..]);
        }
    }
    queries::record_answer(conn, query_id, &json, &accuracy)?;
    Ok(batch)
}

/// How the core reads the accepted query's datasets.
struct CoreShape {
    relations: Vec<execute::RelationInput>,
    unit: Option<analyze::ColRef>,
    max_unit_rows: i64,
    k: i64,
    /// Groups per unit, when a policy bounds them (the smallest declared).
    groups: Option<i64>,
    ranked: bool,
    /// Rows of a single dataset after bounding, as recorded at ingest.
    recorded_rows: Option<i64>,
    /// Most rows a sum over the core adds, on this dataset or a neighbour with one more
    /// unit: a dataset's rows, or after a join and its bounding k per row of the smaller
    /// side; plus k.
    summed_rows: i64,
}

impl CoreShape {
    /// What the core reads for one query, with a fresh salt for its group choice.
    fn input<'a>(
        self,
        accepted: &'a analyze::Accepted,
        stats: &'a execute::StatPlan,
    ) -> execute::CoreInput<'a> {
        execute::CoreInput {
            accepted,
            stats,
            relations: self.relations,
            unit: self.unit,
            max_unit_rows: self.max_unit_rows,
            ranked: self.ranked,
            recorded_rows: self.recorded_rows,
            salt: rand::random(),
        }
    }
}

fn core_shape(accepted: &analyze::Accepted, prepared: &Prepared) -> Result<CoreShape> {
    let mut relations = Vec::new();
    let mut max_unit_rows = 1i64;
    let mut k = 1i64;
    let mut groups: Option<i64> = None;
    let mut unit = None;
    let single = accepted.relations.len() == 1;
    let mut ranked = false;
    for r in &accepted.relations {
        let version = prepared
            .scope
            .versions
            .get(&r.dataset)
            .ok_or_else(|| Error::Internal("accepted dataset vanished".into()))?;
        let policy = &version.policy;
        if let Some(u) = &policy.dataset.privacy_unit
            && unit.is_none()
        {
            unit = Some(analyze::ColRef {
                alias: r.alias.clone(),
                dataset: r.dataset.clone(),
                name: u.clone(),
            });
        }
        let schema = prepared
            .schemas
            .get(&r.dataset)
            .ok_or_else(|| Error::Internal("schema vanished".into()))?;
        // The scan below may be cached; the files it lists are checked for each query.
        crate::atrest::files_present((&version.name, version.version), &version.data_files())?;
        let with_rank =
            single && policy.dataset.privacy_unit.is_some() && execute::has_rank(schema);
        ranked |= with_rank;
        let key = (r.dataset.clone(), with_rank);
        let cached = prepared
            .scans
            .lock()
            .map_err(|_| Error::Internal("scan cache poisoned".into()))?
            .get(&key)
            .cloned();
        let (scan, view, identity) = match cached {
            Some(found) => found,
            None => {
                let mut scan_columns = prepared
                    .scope
                    .columns
                    .get(&r.dataset)
                    .cloned()
                    .unwrap_or_default();
                if let Some(u) = &policy.dataset.privacy_unit
                    && !scan_columns.contains(u)
                {
                    scan_columns.push(u.clone());
                }
                let mut view = view_exprs(version, schema, &scan_columns, &prepared.secret)?;
                if with_rank {
                    // The rank passes through the view for the bounding filter; the
                    // module's SQL never sees it (it is not a scenario column).
                    view.push(datafusion::logical_expr::col(
                        datafusion::common::Column::new_unqualified(crate::ingest::RANK_COLUMN),
                    ));
                }
                // Threshold mode's differencing guard knows a row by its whole content
                // (every stored column, as the views show it): the scan covers every
                // column of the file, the view still shows only the scenario's, and
                // plans read only what they use.
                let identity = row_identity(version, schema, &prepared.secret);
                let scan_columns: Vec<String> =
                    schema.fields().iter().map(|f| f.name().clone()).collect();
                let built = (
                    execute::dataset_table(version, schema, &scan_columns)?,
                    view,
                    identity,
                );
                prepared
                    .scans
                    .lock()
                    .map_err(|_| Error::Internal("scan cache poisoned".into()))?
                    .insert(key, built.clone());
                built
            }
        };
        relations.push(execute::RelationInput {
            alias: r.alias.clone(),
            scan,
            view,
            identity,
        });
        // After a join on the unit, a unit has at most the product of its rows in each
        // dataset; the bound kept is the larger of the two policies' bounds.
        max_unit_rows = max_unit_rows.saturating_mul(version.max_unit_rows.max(1));
        k = k.max(i64::from(policy.dataset.max_rows_per_unit));
        if let Some(g) = policy.dataset.max_groups_per_unit {
            let g = i64::from(g);
            groups = Some(groups.map_or(g, |h| h.min(g)));
        }
    }
    let recorded_rows = match accepted.relations.as_slice() {
        [r] => prepared.scope.versions.get(&r.dataset).and_then(|v| {
            if v.max_unit_rows <= k {
                Some(v.row_count)
            } else {
                v.bounded_rows
            }
        }),
        _ => None,
    };
    let rows = accepted
        .relations
        .iter()
        .filter_map(|r| prepared.scope.versions.get(&r.dataset))
        .map(|v| v.row_count)
        .min()
        .unwrap_or(0);
    let summed_rows = match accepted.relations.len() {
        1 => rows,
        _ => rows.saturating_mul(k),
    }
    .saturating_add(k);
    Ok(CoreShape {
        relations,
        unit,
        max_unit_rows,
        k,
        groups,
        ranked,
        recorded_rows,
        summed_rows,
    })
}

/// The rows of a batch as a JSON array of objects.
pub fn batch_to_json(batch: &RecordBatch) -> Result<String> {
    let mut writer = arrow::json::ArrayWriter::new(Vec::new());
    writer.write(batch)?;
    writer.finish()?;
    let bytes = writer.into_inner();
    if bytes.is_empty() {
        return Ok("[]".into());
    }
    String::from_utf8(bytes).map_err(|e| Error::Internal(format!("json: {e}")).into())
}

/// Checks a query against the policy without charging or running it: what a developer
/// sees from `sandbox query check`.
pub fn check(domain: &Domain, scenario_id: i64, sql: &str) -> Result<analyze::Accepted> {
    let conn = domain.conn()?;
    let prepared = prepare(domain, &conn, scenario_id)?;
    plan_and_analyze(domain, &prepared, sql)
}

fn plan_and_analyze(domain: &Domain, prepared: &Prepared, sql: &str) -> Result<analyze::Accepted> {
    let plan =
        plan_sql(domain, prepared, sql).map_err(|r| crate::Error::from(Error::Refused(r)))?;
    analyze::analyze(&plan, &prepared.scope).map_err(|r| Error::Refused(r).into())
}

/// Plans module SQL, nothing run: parsed (one statement, else [`Rule::Syntax`]), a query
/// (else [`Rule::NotAQuery`], by the statement's kind), over tables the scenario holds
/// (else [`Rule::UnknownTable`]), then planned against the scenario's views; a planning
/// error is classified by its variant ([`planning_refusal`]).
fn plan_sql(
    domain: &Domain,
    prepared: &Prepared,
    sql: &str,
) -> std::result::Result<datafusion::logical_expr::LogicalPlan, Refusal> {
    if let Some(refusal) = shape_refusal(sql) {
        return Err(refusal);
    }
    let state = prepared.ctx.state();
    let dialect = state.config().options().sql_parser.dialect;
    let statement = state
        .sql_to_statement(sql, &dialect)
        .map_err(|e| match e.find_root() {
            // The only one at parsing: more than one statement.
            DataFusionError::NotImplemented(_) => {
                Refusal::new(Rule::Syntax, "send one SQL statement per query")
            }
            _ => Refusal::new(Rule::Syntax, engine_words(&e)),
        })?;
    if let Some(refusal) = statement_refusal(&statement) {
        return Err(refusal);
    }
    let references = state
        .resolve_table_references(&statement)
        .map_err(|e| Refusal::new(Rule::Syntax, engine_words(&e)))?;
    for reference in &references {
        let table_function = matches!(reference, TableReference::Bare { .. })
            && state.table_functions().contains_key(reference.table());
        if !table_function && !matches!(prepared.ctx.table_exist(reference.clone()), Ok(true)) {
            return Err(unknown_table(reference, &prepared.scope));
        }
    }
    let plan = domain
        .runtime()
        .block_on(state.statement_to_plan(statement))
        .map_err(|e| planning_refusal(&e))?;
    // A query statement plans to no DDL, DML or statement node; checked all the same.
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(&plan)
        .map_err(|e| Refusal::new(Rule::NotAQuery, e.to_string()))?;
    // Types are checked here, before anything is charged: a call whose arguments no
    // coercion fits would otherwise fail only once the query ran (for every dataset alike,
    // but after its charge).
    state
        .analyzer()
        .execute_and_check(plan.clone(), state.config_options(), |_, _| {})
        .map_err(|e| planning_refusal(&e))?;
    Ok(plan)
}

/// What `explain` shows: how a query would be answered, without running or charging it.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// The dataset read.
    pub dataset: String,
    /// WHERE predicates as planned.
    pub filters: Vec<String>,
    /// GROUP BY keys.
    pub group_keys: Vec<String>,
    /// Released cells (every combination of the declared categories); 0 when the keys come
    /// from the data by τ-thresholding.
    pub cells: usize,
    /// Whether group keys are released by τ-thresholding (charging δ).
    pub thresholded: bool,
    /// Rows per unit kept (k), and whether the bounding step runs.
    pub rows_per_unit: i64,
    /// Whether per-unit bounding runs (the data has units with more than k rows).
    pub bounding: bool,
    /// Groups per unit kept, when a policy bounds them and the query is grouped.
    pub groups_per_unit: Option<i64>,
    /// Noised statistics with their L1 sensitivity, ε and noise scale.
    pub statistics: Vec<ExplainedStat>,
    /// ε the query would charge.
    pub epsilon: f64,
}

/// One statistic in an [`Explanation`].
#[derive(Debug, Clone, Serialize)]
pub struct ExplainedStat {
    /// What is computed inside the domain.
    pub statistic: String,
    /// L1 sensitivity.
    pub sensitivity: f64,
    /// ε share.
    pub epsilon: f64,
    /// Laplace scale (for quantiles: the exponential mechanism's scale before calibration).
    pub scale: f64,
}

impl std::fmt::Display for Explanation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "Noise (ε = {} total, basic composition)", self.epsilon)?;
        for s in &self.statistics {
            writeln!(
                f,
                "  {}  sensitivity {}  ε {:.4}  scale {:.4}",
                s.statistic, s.sensitivity, s.epsilon, s.scale
            )?;
        }
        if self.thresholded {
            writeln!(
                f,
                "Aggregate grouped by [{}]; keys released by τ-thresholding of noisy row counts (charges δ)",
                self.group_keys.join(", ")
            )?;
        } else {
            writeln!(
                f,
                "Aggregate over {} public cell(s), grouped by [{}]",
                self.cells,
                self.group_keys.join(", ")
            )?;
        }
        if self.bounding {
            writeln!(
                f,
                "  Bound: at most {} row(s) per privacy unit (random choice)",
                self.rows_per_unit
            )?;
        } else {
            writeln!(
                f,
                "  Bound: at most {} row(s) per privacy unit (no unit has more: no-op)",
                self.rows_per_unit
            )?;
        }
        if let Some(g) = self.groups_per_unit {
            writeln!(
                f,
                "  Bound: at most {g} group(s) per privacy unit (salted hash of the key)"
            )?;
        }
        for p in &self.filters {
            writeln!(f, "  Filter: {p}")?;
        }
        write!(f, "  Scan: {} (scenario columns only)", self.dataset)
    }
}

/// Explains how a query would be answered: the clamp, the bounding, the noise with its ε.
/// Nothing runs and nothing is charged; a refusal is returned as [`Error::Refused`].
pub fn explain(
    domain: &Domain,
    scenario_id: i64,
    sql: &str,
    epsilon: Option<f64>,
) -> Result<Explanation> {
    let conn = domain.conn()?;
    let prepared = prepare(domain, &conn, scenario_id)?;
    let accepted = plan_and_analyze(domain, &prepared, sql)?;
    let record = &prepared.record;
    let policy_of = |d: &str| prepared.scope.versions.get(d).map(|v| v.policy.clone());
    let public = accepted
        .group_keys
        .iter()
        .all(|g| execute::is_public(g, &policy_of));
    if !public && record.spec.budget.delta_per_query <= 0.0 {
        return Err(Error::Refused(Refusal::new(
            Rule::GroupKeysNotPublic,
            "group keys would be released from the data: declare `categories` or allow `delta_per_query`",
        )).into());
    }
    let cells = if public {
        let type_of = |c: &analyze::ColRef| prepared.type_of(c);
        domain
            .runtime()
            .block_on(execute::public_cells(
                &prepared.ctx,
                &accepted,
                &policy_of,
                &type_of,
            ))?
            .len()
    } else {
        0
    };
    let core = core_shape(&accepted, &prepared)?;
    let plan = execute::StatPlan::new(&accepted, core.k, core.groups, !public)?
        .with_summed_rows(core.summed_rows);
    let epsilon = epsilon.unwrap_or(record.spec.budget.epsilon_per_query);
    let each = epsilon / plan.describe().len() as f64;
    let statistics = plan
        .describe()
        .into_iter()
        .zip(plan.sensitivities())
        .map(|(statistic, sensitivity)| ExplainedStat {
            statistic,
            sensitivity,
            epsilon: each,
            scale: sensitivity / each,
        })
        .collect();
    Ok(Explanation {
        dataset: accepted.datasets(),
        filters: accepted.filters.iter().map(|f| f.to_string()).collect(),
        group_keys: accepted.group_keys.iter().map(|g| g.label()).collect(),
        cells,
        thresholded: !public,
        rows_per_unit: plan.k(),
        bounding: core.unit.is_some() && core.max_unit_rows > plan.k(),
        groups_per_unit: (!accepted.group_keys.is_empty() && plan.groups() < plan.k())
            .then_some(plan.groups()),
        statistics,
        epsilon,
    })
}
