//! Mediated queries against raw DataFusion on the same Parquet file, at scale.
//!
//! `cargo run --profile bench -p sandbox-benches --bin compare -- --rows 1000000 --rows 10000000`
//!
//! Data: PUMS-like rows resampled (seeded) from `../shared/data/pums/PUMS_pid.csv` with
//! fresh person ids, in two layouts: one row per person (no bounding needed: the fast
//! path), and persons with 1–3 rows under a policy that keeps one (bounding runs).
//! Each query runs `--reps` times each way, alternating; the table gives medians and the
//! ratio mediated / raw. A separate line measures the fixed cost per query at 1,000 rows.

use std::io::BufWriter;
use std::time::Instant;

use datafusion::prelude::SessionContext;
use sandbox_runtime::{Domain, catalog};

const QUERIES: &[&str] = &[
    "SELECT COUNT(*) FROM pums",
    "SELECT SUM(income) FROM pums",
    "SELECT sex, AVG(income) FROM pums GROUP BY sex",
    "SELECT educ, COUNT(*) FROM pums GROUP BY educ",
];

struct Setup {
    _dir: tempfile::TempDir,
    domain: Domain,
    scenario_id: i64,
    raw: SessionContext,
}

fn setup(
    rt: &tokio::runtime::Runtime,
    source: &[sandbox_synth::PumsRow],
    rows: usize,
    rows_per_person: usize,
) -> anyhow::Result<Setup> {
    let dir = tempfile::tempdir()?;
    let csv = dir.path().join("pums.csv");
    let mut out = BufWriter::new(std::fs::File::create(&csv)?);
    sandbox_synth::write_pums_like(&mut out, source, rows, rows_per_person, 7)?;
    drop(out);
    let domain = sandbox_benches::domain_with_principals(dir.path())?;
    let policy = std::fs::read_to_string(sandbox_benches::examples().join("policies/pums.toml"))?;
    let started = Instant::now();
    let v = catalog::add(&domain, sandbox_benches::PROVIDER, &csv, &policy)?;
    eprintln!(
        "ingested {} rows ({} per person at most) in {:.1} s",
        v.row_count,
        v.max_unit_rows,
        started.elapsed().as_secs_f64()
    );
    std::fs::remove_file(&csv)?;
    let scenario_id = sandbox_benches::approved_scenario(
        &domain,
        "bench",
        "pums",
        sandbox_benches::PUMS_COLUMNS,
        0.001,
    )?;
    let raw = sandbox_benches::raw_session(rt, &domain, "pums", &v)?;
    Ok(Setup {
        _dir: dir,
        domain,
        scenario_id,
        raw,
    })
}

fn measure(
    rt: &tokio::runtime::Runtime,
    s: &Setup,
    sql: &str,
    reps: usize,
) -> anyhow::Result<(f64, f64)> {
    let mut raw = Vec::new();
    let mut mediated = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        rt.block_on(async { s.raw.sql(sql).await?.collect().await })?;
        raw.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        sandbox_benches::ask(&s.domain, s.scenario_id, sql)?;
        mediated.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok((
        sandbox_benches::percentile(&raw, 0.5),
        sandbox_benches::percentile(&mediated, 0.5),
    ))
}

fn main() -> anyhow::Result<()> {
    let args = sandbox_benches::ScaleArgs::parse(7, |_, _| Ok(false))?;
    let (sizes, reps) = (args.sizes.clone(), args.reps);
    let source = args.source()?;
    let rt = tokio::runtime::Runtime::new()?;

    let small = setup(&rt, &source, 1_000, 1)?;
    println!("Fixed cost per query at 1,000 rows (mediated − raw, medians of 31):");
    println!();
    println!("| query | raw ms | mediated ms | difference ms |");
    println!("|---|---:|---:|---:|");
    for sql in QUERIES {
        let (raw, med) = measure(&rt, &small, sql, 31)?;
        println!("| `{sql}` | {raw:.2} | {med:.2} | {:.2} |", med - raw);
    }
    println!();
    println!("| rows | layout | query | raw ms | mediated ms | ratio |");
    println!("|---:|---|---|---:|---:|---:|");
    for &rows in &sizes {
        for (layout, per_person) in [
            ("one row per person", 1usize),
            ("1–3 rows per person, bounded to 1", 3),
        ] {
            let s = setup(&rt, &source, rows, per_person)?;
            for sql in QUERIES {
                let (raw, med) = measure(&rt, &s, sql, reps)?;
                println!(
                    "| {rows} | {layout} | `{sql}` | {raw:.1} | {med:.1} | {:.2} |",
                    med / raw
                );
            }
        }
    }
    Ok(())
}
