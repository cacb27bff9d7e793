//! Typed refusals: every refused query names the rule it broke and, where there is one,
//! the column.

use std::fmt;

use serde::Serialize;

/// The rule a refused query broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Not valid SQL, or more than one statement.
    Syntax,
    /// Valid SQL that does not plan: types that do not fit, wrong arguments.
    InvalidQuery,
    /// DDL, DML, COPY, SET, EXPLAIN and other statements that are not a query.
    NotAQuery,
    /// The query would return rows of a dataset rather than aggregates.
    RowLevelOutput,
    /// A column is used in a way its access rule does not permit.
    ColumnAccess,
    /// A column the scenario does not include, or that does not exist.
    UnknownColumn,
    /// A table the scenario does not include, or that does not exist.
    UnknownTable,
    /// An aggregate function not on the allow-list (e.g. `array_agg`, `min`).
    AggregateNotAllowed,
    /// A scalar function not on the allow-list.
    FunctionNotAllowed,
    /// An expression form not on the allow-list (subquery, window, placeholder, ...).
    ExpressionNotAllowed,
    /// A plan shape not supported (join, union, window, set operations, nested queries).
    PlanNotAllowed,
    /// Group keys would be released from the data but are not declared public.
    GroupKeysNotPublic,
    /// The query reads no dataset.
    NoDataset,
    /// The scenario forbids the query (window, status, per-query cap).
    Scenario,
    /// The scenario's privacy budget left cannot pay for the query (refused by the
    /// ledger, before anything is computed from the data).
    BudgetExhausted,
}

impl Rule {
    /// Every rule.
    pub const ALL: [Rule; 15] = [
        Rule::Syntax,
        Rule::InvalidQuery,
        Rule::NotAQuery,
        Rule::RowLevelOutput,
        Rule::ColumnAccess,
        Rule::UnknownColumn,
        Rule::UnknownTable,
        Rule::AggregateNotAllowed,
        Rule::FunctionNotAllowed,
        Rule::ExpressionNotAllowed,
        Rule::PlanNotAllowed,
        Rule::GroupKeysNotPublic,
        Rule::NoDataset,
        Rule::Scenario,
        Rule::BudgetExhausted,
    ];

    /// snake_case name, as in golden files and audit events.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Syntax => "syntax",
            Rule::InvalidQuery => "invalid_query",
            Rule::NotAQuery => "not_a_query",
            Rule::RowLevelOutput => "row_level_output",
            Rule::ColumnAccess => "column_access",
            Rule::UnknownColumn => "unknown_column",
            Rule::UnknownTable => "unknown_table",
            Rule::AggregateNotAllowed => "aggregate_not_allowed",
            Rule::FunctionNotAllowed => "function_not_allowed",
            Rule::ExpressionNotAllowed => "expression_not_allowed",
            Rule::PlanNotAllowed => "plan_not_allowed",
            Rule::GroupKeysNotPublic => "group_keys_not_public",
            Rule::NoDataset => "no_dataset",
            Rule::Scenario => "scenario",
            Rule::BudgetExhausted => "budget_exhausted",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the mediator refused a query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// The rule broken.
    pub rule: Rule,
    /// The column concerned, if any.
    pub column: Option<String>,
    /// Human explanation.
    pub message: String,
}

impl Refusal {
    /// A refusal without a column.
    pub fn new(rule: Rule, message: impl Into<String>) -> Refusal {
        Refusal {
            rule,
            column: None,
            message: message.into(),
        }
    }

    /// A refusal naming a column.
    pub fn column(rule: Rule, column: impl Into<String>, message: impl Into<String>) -> Refusal {
        Refusal {
            rule,
            column: Some(column.into()),
            message: message.into(),
        }
    }
}

impl Refusal {
    /// The refusal a [`fmt::Display`] text shows (`[rule] column `c`: message` or
    /// `[rule] message`): its inverse, for a client that reads refusals from an answer.
    pub fn parse(text: &str) -> Option<Refusal> {
        let rest = text.strip_prefix('[')?;
        let (name, rest) = rest.split_once("] ")?;
        let rule = Rule::ALL.into_iter().find(|r| r.as_str() == name)?;
        if let Some(after) = rest.strip_prefix("column `")
            && let Some((column, message)) = after.split_once("`: ")
        {
            return Some(Refusal::column(rule, column, message));
        }
        Some(Refusal::new(rule, rest))
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some(c) => write!(f, "[{}] column `{c}`: {}", self.rule, self.message),
            None => write!(f, "[{}] {}", self.rule, self.message),
        }
    }
}

impl std::error::Error for Refusal {}
