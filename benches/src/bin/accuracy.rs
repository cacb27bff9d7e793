//! Accuracy harness: the median relative error of mediated answers at ε = 1 per query,
//! against exact answers from raw DataFusion over the same data.
//!
//! `cargo run -p sandbox-benches --bin accuracy -- [--runs 25] [--pums ../shared/data/pums/PUMS_pid.csv]`
//!
//! Each query runs `runs` times through the mediator (each run a fresh noise draw, ε 1).
//! For every run and every released cell, the relative error is
//! `|noisy - exact| / max(|exact|, 1)`; the table shows the median over runs and cells,
//! and the 90th percentile.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use sandbox_runtime::catalog;
use sandbox_runtime::mediate::{self, QueryRequest};

/// The queries: grouped ones have the group key first.
const QUERIES: &[&str] = &[
    "SELECT COUNT(*) FROM pums",
    "SELECT SUM(income) FROM pums",
    "SELECT AVG(income) FROM pums",
    "SELECT AVG(age) FROM pums",
    "SELECT STDDEV(age) FROM pums",
    "SELECT VAR_POP(age) FROM pums",
    "SELECT MEDIAN(income) FROM pums",
    "SELECT MEDIAN(age) FROM pums",
    "SELECT COUNT(*) FROM pums WHERE age > 40",
    "SELECT AVG(income) FROM pums WHERE age BETWEEN 25 AND 65",
    "SELECT sex, COUNT(*) FROM pums GROUP BY sex",
    "SELECT sex, AVG(income) FROM pums GROUP BY sex",
    "SELECT married, AVG(age) FROM pums GROUP BY married",
    "SELECT race, COUNT(*) FROM pums GROUP BY race",
    "SELECT educ, COUNT(*) FROM pums GROUP BY educ",
    "SELECT educ, AVG(income) FROM pums GROUP BY educ",
    "SELECT sex, married, COUNT(*) FROM pums GROUP BY sex, married",
];

fn cells(batches: &[RecordBatch], keys: usize) -> anyhow::Result<HashMap<String, f64>> {
    let mut out = HashMap::new();
    for b in batches {
        let key_cols: Vec<_> = (0..keys)
            .map(|i| cast(b.column(i), &DataType::Utf8))
            .collect::<Result<_, _>>()?;
        let value = cast(b.column(keys), &DataType::Float64)?;
        let value = value
            .as_any()
            .downcast_ref::<datafusion::arrow::array::Float64Array>()
            .context("value column")?;
        for r in 0..b.num_rows() {
            let key: Vec<String> = key_cols
                .iter()
                .map(|k| {
                    k.as_any()
                        .downcast_ref::<datafusion::arrow::array::StringArray>()
                        .map(|s| s.value(r).to_string())
                        .unwrap_or_default()
                })
                .collect();
            if !value.is_null(r) {
                out.insert(key.join("|"), value.value(r));
            }
        }
    }
    Ok(out)
}

fn main() -> anyhow::Result<()> {
    let mut runs = 25usize;
    let mut pums = sandbox_benches::pums_pid_csv();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().context("--runs N")?.parse()?,
            "--pums" => pums = PathBuf::from(args.next().context("--pums FILE")?),
            other => bail!("unknown argument {other}"),
        }
    }
    let dir = tempfile::tempdir()?;
    let domain = sandbox_benches::domain_with_principals(dir.path())?;
    let policy = std::fs::read_to_string(sandbox_benches::examples().join("policies/pums.toml"))?;
    let v = catalog::add(&domain, sandbox_benches::PROVIDER, &pums, &policy)?;
    let rt = tokio::runtime::Runtime::new()?;
    let raw = sandbox_benches::raw_session(&rt, &domain, "pums", &v)?;
    println!(
        "Accuracy at ε = 1 per query, {runs} runs, {} rows of {}",
        v.row_count,
        pums.display()
    );
    println!();
    println!("| query | cells | exact (first cell) | median rel. error | p90 rel. error |");
    println!("|---|---:|---:|---:|---:|");
    let mut all = Vec::new();
    for (qi, sql) in QUERIES.iter().enumerate() {
        // Each query has one aggregate, listed after its group keys.
        let keys = sql.split(" FROM").next().unwrap_or("").matches(',').count();
        let exact = cells(
            &rt.block_on(async { raw.sql(sql).await?.collect().await })?,
            keys,
        )?;
        let scenario_id = sandbox_benches::approved_scenario(
            &domain,
            &format!("accuracy-{qi}"),
            "pums",
            sandbox_benches::PUMS_COLUMNS,
            1.0,
        )?;
        let mut errors = Vec::new();
        for _ in 0..runs {
            let a = mediate::answer(
                &domain,
                &QueryRequest {
                    scenario_id,
                    job_id: None,
                    actor: sandbox_benches::DEVELOPER,
                    sql,
                    epsilon: Some(1.0),
                },
            )?;
            let noisy = cells(std::slice::from_ref(&a.batch), keys)?;
            for (k, e) in &exact {
                let n = noisy.get(k).copied().unwrap_or(0.0);
                errors.push((n - e).abs() / e.abs().max(1.0));
            }
        }
        let first = exact
            .iter()
            .min_by(|a, b| a.0.cmp(b.0))
            .map(|(_, v)| *v)
            .unwrap_or(f64::NAN);
        println!(
            "| `{sql}` | {} | {first:.1} | {:.4} | {:.4} |",
            exact.len(),
            sandbox_benches::percentile(&errors, 0.5),
            sandbox_benches::percentile(&errors, 0.9)
        );
        all.push(sandbox_benches::percentile(&errors, 0.5));
    }
    println!();
    println!(
        "Median over queries of the median relative error: {:.4}",
        sandbox_benches::percentile(&all, 0.5)
    );
    Ok(())
}
