//! Mediated query vs the same aggregate in raw DataFusion over the same Parquet file.
//!
//! `cargo bench -p sandbox-benches --bench mediated`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use sandbox_runtime::mediate::{self, QueryRequest};

const SQL: &str =
    "SELECT district, COUNT(*) AS n, AVG(income) AS avg_income FROM residents GROUP BY district";

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("group_by_district");
    group.sample_size(20);
    for n in [1_000usize, 100_000] {
        let b = sandbox_benches::bench_domain(n).unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let raw = SessionContext::new();
        rt.block_on(raw.register_parquet(
            "residents",
            b.parquet.to_string_lossy().as_ref(),
            ParquetReadOptions::default(),
        ))
        .unwrap();
        group.bench_with_input(BenchmarkId::new("raw_datafusion", n), &n, |bench, _| {
            bench.iter(|| {
                rt.block_on(async { raw.sql(SQL).await.unwrap().collect().await.unwrap() })
            })
        });
        group.bench_with_input(BenchmarkId::new("mediated", n), &n, |bench, _| {
            bench.iter(|| {
                mediate::answer(
                    &b.domain,
                    &QueryRequest {
                        scenario_id: b.scenario_id,
                        job_id: None,
                        actor: sandbox_benches::DEVELOPER,
                        sql: SQL,
                        epsilon: None,
                    },
                )
                .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
