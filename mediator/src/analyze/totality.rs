//! Every allowed scalar function is total over values at the edges of its types, in the
//! form the policy pass hands on ([`crate::total`]).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use datafusion::arrow::array::{Date32Array, Float64Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::logical_expr::{Expr, col, lit};
use datafusion::prelude::SessionContext;

use crate::analyze::SCALAR_ALLOW_LIST;
use crate::total::{session, totalize};

/// Values at the edges of their types, one row each; row 0 is ordinary.
fn extreme_rows() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("i", DataType::Int64, true),
        Field::new("f", DataType::Float64, true),
        Field::new("s", DataType::Utf8, true),
        Field::new("d", DataType::Date32, true),
    ]));
    let long = "x".repeat(10_000);
    // Dates at the ends of what a date can be (chrono's range; ingest parses into it).
    let epoch = chrono::NaiveDate::default();
    let day = |d: chrono::NaiveDate| i32::try_from((d - epoch).num_days()).unwrap();
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![
                Some(3),
                Some(i64::MIN),
                Some(i64::MAX),
                Some(-1),
                Some(0),
                None,
                Some(-5),
            ])),
            Arc::new(Float64Array::from(vec![
                Some(2.5),
                Some(-f64::MAX),
                Some(f64::MAX),
                Some(-1.0),
                Some(0.0),
                None,
                Some(f64::NAN),
            ])),
            Arc::new(StringArray::from(vec![
                Some("abc"),
                Some(""),
                Some("王伟 é"),
                Some("  x  "),
                Some(long.as_str()),
                None,
                Some("-1"),
            ])),
            Arc::new(Date32Array::from(vec![
                Some(20_000),
                Some(day(chrono::NaiveDate::MIN)),
                Some(day(chrono::NaiveDate::MAX)),
                Some(0),
                Some(-1),
                None,
                Some(1),
            ])),
        ],
    )
    .unwrap()
}

/// Arguments to try: every column, and literals at the edges of their types.
fn arguments() -> Vec<Expr> {
    vec![
        col("i"),
        col("f"),
        col("s"),
        col("d"),
        lit(0i64),
        lit(-1i64),
        lit(2i64),
        lit(i64::MAX),
        lit(i64::MIN),
        lit(0.5f64),
        lit("year"),
        lit("month"),
        lit(""),
    ]
}

/// Every call of `name` with 1 to 3 arguments that plans, with at least one column.
fn calls(ctx: &SessionContext, name: &str) -> Vec<Expr> {
    let Some(udf) = ctx.state().scalar_functions().get(name).cloned() else {
        return Vec::new();
    };
    let args = arguments();
    let mut out = Vec::new();
    for a in &args {
        out.push(vec![a.clone()]);
        for b in &args {
            out.push(vec![a.clone(), b.clone()]);
            for c in &args[..4] {
                out.push(vec![a.clone(), b.clone(), c.clone()]);
            }
        }
    }
    out.into_iter()
        .filter(|a| a.iter().any(|e| matches!(e, Expr::Column(_))))
        .map(|a| udf.call(a))
        .collect()
}

async fn outcome(ctx: &SessionContext, e: Expr) -> Option<Result<(), String>> {
    let df = ctx.table("t").await.ok()?;
    // A call that does not plan (wrong types) is refused before any data is read.
    let df = df.select(vec![e.alias("v")]).ok()?;
    let plan = df.create_physical_plan().await.ok()?;
    let task = ctx.task_ctx();
    Some(
        datafusion::physical_plan::collect(plan, task)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
    )
}

/// Every allowed function, over values at the edges of every type, answers in its
/// total form; without it, some fail on some rows only (the side channel it closes).
#[tokio::test]
async fn every_allowed_function_is_total_over_extreme_values() {
    let raw_ctx = SessionContext::new();
    raw_ctx.register_batch("t", extreme_rows()).unwrap();
    let ctx = session(Default::default());
    ctx.register_batch("t", extreme_rows()).unwrap();
    let (mut planned, mut raw_failures, mut total_failures) = (0, Vec::new(), Vec::new());
    for name in SCALAR_ALLOW_LIST {
        for call in calls(&ctx, name) {
            let Some(raw) = outcome(&raw_ctx, call.clone()).await else {
                continue;
            };
            planned += 1;
            if let Err(e) = raw {
                raw_failures.push(format!("{call}: {e}"));
            }
            let total = totalize(call.clone()).unwrap();
            match outcome(&ctx, total).await {
                Some(Ok(())) => {}
                Some(Err(e)) => total_failures.push(format!("{call}: {e}")),
                None => total_failures.push(format!("{call}: planned raw, not total")),
            }
        }
    }
    assert!(planned > 500, "only {planned} calls planned");
    assert!(
        !raw_failures.is_empty(),
        "no allowed function failed on extreme values: the test would not notice"
    );
    assert!(
        total_failures.is_empty(),
        "{} of {planned} calls fail in total form:\n{}",
        total_failures.len(),
        total_failures.join("\n")
    );
}

/// The total forms of the operators compute what the operators do wherever those succeed:
/// on the ordinary row, every rewritten expression equals the original, mixed types
/// included.
#[tokio::test]
async fn total_operators_agree_with_the_operators_where_they_succeed() {
    use datafusion::logical_expr::Operator;
    let ordinary = extreme_rows().slice(0, 1);
    let raw_ctx = SessionContext::new();
    raw_ctx.register_batch("t", ordinary.clone()).unwrap();
    let ctx = session(Default::default());
    ctx.register_batch("t", ordinary).unwrap();
    let bin = |l: Expr, op: Operator, r: Expr| {
        Expr::BinaryExpr(datafusion::logical_expr::BinaryExpr::new(
            Box::new(l),
            op,
            Box::new(r),
        ))
    };
    let day = lit(datafusion::common::ScalarValue::new_interval_mdn(0, 1, 0));
    let month = lit(datafusion::common::ScalarValue::new_interval_mdn(1, 0, 0));
    let exprs = vec![
        bin(col("i"), Operator::Plus, col("f")),
        bin(col("i"), Operator::Multiply, lit(2.5)),
        bin(col("i"), Operator::Divide, lit(2i64)),
        bin(col("i"), Operator::Modulo, lit(3i64)),
        bin(col("f"), Operator::Minus, col("i")),
        bin(col("f"), Operator::Divide, lit(4i64)),
        Expr::Negative(Box::new(col("i"))),
        Expr::Negative(Box::new(col("f"))),
        bin(col("d"), Operator::Plus, day),
        bin(col("d"), Operator::Minus, month),
        bin(
            bin(col("i"), Operator::Plus, lit(1i64)),
            Operator::Multiply,
            bin(col("f"), Operator::Minus, lit(2i64)),
        ),
    ];
    for e in exprs {
        let value = |ctx: SessionContext, e: Expr| async move {
            let df = ctx
                .table("t")
                .await
                .unwrap()
                .select(vec![e.alias("v")])
                .unwrap();
            let batches = df.collect().await.unwrap();
            datafusion::arrow::util::pretty::pretty_format_batches(&batches)
                .unwrap()
                .to_string()
        };
        let raw = value(raw_ctx.clone(), e.clone()).await;
        let total = value(ctx.clone(), totalize(e.clone()).unwrap()).await;
        assert_eq!(raw, total, "{e}");
    }
}
