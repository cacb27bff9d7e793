//! What encryption at rest costs: the same rows read as an encrypted dataset file (as the
//! domain stores them) and as the same file in the clear, and written both ways; then the
//! backup and the restore of the whole domain.
//!
//! `cargo build --profile bench -p sandbox-benches --bin atrest && ./target/release/atrest --rows 1000000 --rows 10000000`
//!
//! Data: PUMS-like rows resampled (seeded) from `../shared/data/pums/PUMS_pid.csv`, one row
//! per person, registered through the real ingest (encrypted). The clear copy is the
//! stored file decrypted and written again with the ingest's writer settings and no
//! encryption; both are read by raw DataFusion (the encrypted one through the domain's
//! dataset keys), alternating, `--reps` times per query: medians and the ratio
//! encrypted / clear. The mediated query (encrypted) is shown beside for scale.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::prelude::SessionContext;
use sandbox_runtime::{MasterKey, backup};

const QUERIES: &[&str] = &[
    "SELECT COUNT(*) FROM pums",
    "SELECT SUM(income) FROM pums",
    "SELECT AVG(income) FROM pums",
    "SELECT sex, COUNT(*) FROM pums GROUP BY sex",
    "SELECT educ, AVG(income) FROM pums GROUP BY educ",
    "SELECT sex, race, COUNT(*) FROM pums GROUP BY sex, race",
    "SELECT COUNT(*) FROM pums WHERE age > 40",
];

fn time_ms(f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let t = Instant::now();
    f()?;
    Ok(t.elapsed().as_secs_f64() * 1e3)
}

fn plain_session(rt: &tokio::runtime::Runtime, file: &Path) -> anyhow::Result<SessionContext> {
    let ctx = SessionContext::new();
    let url = ListingTableUrl::parse(file.to_string_lossy())?;
    let options = ListingOptions::new(Arc::new(
        datafusion::datasource::file_format::parquet::ParquetFormat::default(),
    ))
    .with_file_extension(".parquet");
    let schema = rt.block_on(options.infer_schema(&ctx.state(), &url))?;
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(schema);
    ctx.register_table("pums", Arc::new(ListingTable::try_new(config)?))?;
    Ok(ctx)
}

/// Writes `batches` as Parquet the way ingest does (Snappy), encrypted with `props` or in
/// the clear; returns the milliseconds.
fn write(
    batches: &[arrow::array::RecordBatch],
    path: &Path,
    encryption: Option<Arc<parquet::encryption::encrypt::FileEncryptionProperties>>,
) -> anyhow::Result<f64> {
    time_ms(|| {
        let mut props = parquet::file::properties::WriterProperties::builder()
            .set_compression(parquet::basic::Compression::SNAPPY);
        if let Some(e) = encryption {
            props = props.with_file_encryption_properties(e);
        }
        let file = std::fs::File::create(path)?;
        let mut w =
            parquet::arrow::ArrowWriter::try_new(file, batches[0].schema(), Some(props.build()))?;
        for b in batches {
            w.write(b)?;
        }
        w.close()?;
        Ok(())
    })
}

fn main() -> anyhow::Result<()> {
    let args = sandbox_benches::ScaleArgs::parse(7, |_, _| Ok(false))?;
    let (sizes, reps) = (args.sizes.clone(), args.reps);
    let source = args.source()?;
    let rt = tokio::runtime::Runtime::new()?;
    let mut queries = Vec::new();
    let mut writes = Vec::new();
    let mut custody = Vec::new();
    for &rows in &sizes {
        let dir = tempfile::tempdir()?;
        let (domain, v, ingest_s) =
            sandbox_benches::pums_like_domain(dir.path(), &source, rows, 1, false)?;
        let scenario_id = sandbox_benches::approved_scenario(
            &domain,
            "bench",
            "pums",
            sandbox_benches::PUMS_COLUMNS,
            0.001,
        )?;
        // The same rows: decrypted, then written in the clear and encrypted again.
        let mut batches: Vec<arrow::array::RecordBatch> = Vec::new();
        for reader in
            sandbox_mediator::ingest::stored_readers(domain.mediator().dataset_keys(), &v)?
        {
            for batch in reader.build()? {
                batches.push(batch?);
            }
        }
        let clear = dir.path().join("clear.parquet");
        let again = dir.path().join("again.parquet");
        let key = sandbox_mediator::atrest::DataKey::fresh()?;
        let mut plain_w = Vec::new();
        let mut enc_w = Vec::new();
        for _ in 0..3 {
            plain_w.push(write(&batches, &clear, None)?);
            enc_w.push(write(
                &batches,
                &again,
                Some(sandbox_mediator::atrest::encryption("pums", 9, &key, 0)?),
            )?);
        }
        writes.push((
            rows,
            ingest_s,
            sandbox_benches::median(&plain_w),
            sandbox_benches::median(&enc_w),
        ));
        drop(batches);
        let encrypted = sandbox_benches::raw_session(&rt, &domain, "pums", &v)?;
        let plain = plain_session(&rt, &clear)?;
        for sql in QUERIES {
            let (mut p, mut e, mut m) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..reps {
                p.push(time_ms(|| {
                    rt.block_on(async { plain.sql(sql).await?.collect().await })?;
                    Ok(())
                })?);
                e.push(time_ms(|| {
                    rt.block_on(async { encrypted.sql(sql).await?.collect().await })?;
                    Ok(())
                })?);
                m.push(time_ms(|| {
                    sandbox_benches::ask(&domain, scenario_id, sql)?;
                    Ok(())
                })?);
            }
            queries.push((
                rows,
                *sql,
                sandbox_benches::median(&p),
                sandbox_benches::median(&e),
                sandbox_benches::median(&m),
            ));
        }
        // The whole domain backed up, checked and restored.
        let file = dir.path().join("d.sbk");
        let t = Instant::now();
        let report = backup::backup(&domain, sandbox_benches::OPERATOR, &file)?;
        let backup_s = t.elapsed().as_secs_f64();
        let size = std::fs::metadata(&file)?.len();
        let key_file = MasterKey::File(dir.path().join("domain.master-key"));
        let t = Instant::now();
        backup::restore(&file, &dir.path().join("r"), &key_file, None)?;
        let restore_s = t.elapsed().as_secs_f64();
        custody.push((rows, report.bytes, size, backup_s, restore_s));
    }
    println!(
        "| rows | query | clear ms | encrypted ms | encrypted / clear | mediated (encrypted) ms |"
    );
    println!("|---:|---|---:|---:|---:|---:|");
    for (rows, sql, p, e, m) in &queries {
        println!(
            "| {rows} | `{sql}` | {p:.1} | {e:.1} | {:.2} | {m:.1} |",
            e / p
        );
    }
    println!();
    println!(
        "| rows | ingest (encrypted), s | Parquet write in the clear, ms | encrypted, ms | encrypted / clear |"
    );
    println!("|---:|---:|---:|---:|---:|");
    for (rows, ingest, p, e) in &writes {
        println!("| {rows} | {ingest:.1} | {p:.0} | {e:.0} | {:.2} |", e / p);
    }
    println!();
    println!("| rows | domain bytes | backup file bytes | backup s | restore (checked) s |");
    println!("|---:|---:|---:|---:|---:|");
    for (rows, bytes, size, b, r) in &custody {
        println!("| {rows} | {bytes} | {size} | {b:.1} | {r:.1} |");
    }
    Ok(())
}
