//! Memory at scale: mediated grouped aggregates without a memory pool and under one
//! (2 GiB by default), in this process and on one executor, with the spill files' peak.
//!
//! `cargo run --profile bench -p sandbox-benches --bin spill -- --rows 10000000 --rows 100000000`
//! (`--pool-mib N`: the pool, 2048 by default; `--reps N`: 2 by default; `--mode dp` or
//! `--mode threshold`: only that mode; `--pool-only`: only under the pool).
//!
//! Data: PUMS-like rows resampled (seeded) from `../shared/data/pums/PUMS_pid.csv`, one
//! row per person, registered twice: released in DP mode and in threshold mode. A DP
//! grouped aggregate keeps one accumulator per group (a few groups: nothing to spill); a
//! threshold one also needs each privacy unit's contribution to each cell (the disclosure
//! rules' dominance and top-contributor checks), an aggregate grouped by cell and unit:
//! one group per person, the state that outgrows a pool. Each query is asked `--reps`
//! times each way (no unmeasured round: at these sizes the first ask's set-up is noise),
//! through the whole mediated path; spill files (`datafusion-*` under the data
//! directory's `spill/` and the executor's work directory) are sampled every 20 ms.

use std::time::Instant;

use anyhow::Context;
use sandbox_runtime::{Domain, Engine};

const QUERIES: &[(&str, &str)] = &[
    ("dp", "SELECT educ, COUNT(*) FROM pums GROUP BY educ"),
    (
        "dp",
        "SELECT sex, race, COUNT(*) FROM pums GROUP BY sex, race",
    ),
    ("threshold", "SELECT educ, COUNT(*) FROM pums GROUP BY educ"),
];

struct Setup {
    _dir: tempfile::TempDir,
    domain: Domain,
    scenario: i64,
}

fn setup(
    source: &[sandbox_synth::PumsRow],
    rows: usize,
    mode: &str,
    tmp: &std::path::Path,
) -> anyhow::Result<Setup> {
    let dir = tempfile::tempdir_in(tmp)?;
    let (domain, v, seconds) =
        sandbox_benches::pums_like_domain_in(dir.path(), source, rows, 1, false, mode)?;
    eprintln!(
        "{mode}: ingested {} rows in {seconds:.1} s ({} files)",
        v.row_count, v.data_files
    );
    let scenario = sandbox_benches::approved_scenario_in(
        &domain,
        "bench",
        "pums",
        sandbox_benches::PUMS_COLUMNS,
        0.0001,
        mode,
    )?;
    Ok(Setup {
        _dir: dir,
        domain,
        scenario,
    })
}

fn main() -> anyhow::Result<()> {
    let mut pool_mib = 2048u64;
    let mut modes = vec!["dp", "threshold"];
    let mut pool_only = false;
    let args = sandbox_benches::ScaleArgs::parse(2, |flag, rest| {
        match flag {
            "--pool-mib" => pool_mib = rest.next().context("--pool-mib N")?.parse()?,
            "--pool-only" => pool_only = true,
            "--mode" => {
                let mode = rest.next().context("--mode dp|threshold")?;
                modes.retain(|m| *m == mode);
                anyhow::ensure!(!modes.is_empty(), "--mode dp|threshold");
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    let pool = pool_mib * 1024 * 1024;
    let source = args.source()?;
    let rt = tokio::runtime::Runtime::new()?;
    let tmp = std::env::temp_dir();
    println!(
        "| rows | mode | query | local, no pool ms | local, pool ms | local spill MiB | 1 executor, pool ms | executor spill MiB | ns/row local, pool |"
    );
    println!("|---:|---|---|---:|---:|---:|---:|---:|---:|");
    for &rows in &args.sizes {
        for &mode in &modes {
            let s = setup(&source, rows, mode, &tmp)?;
            let work = s.domain.layout().root().join("executor");
            let executor =
                sandbox_benches::start_cluster(&rt, &s.domain, (1, 1, Some(pool)), None, &work)?;
            let local_spill = s.domain.layout().root().join(sandbox_mediator::SPILL_DIR);
            for (_, sql) in QUERIES.iter().filter(|(m, _)| *m == mode) {
                // Unbounded first, then under the pool (which the next query's session
                // is made in).
                let mut ms = [Vec::new(), Vec::new(), Vec::new()];
                let mut peaks = [0u64; 3];
                for (way, engine, bytes) in [
                    (0, Engine::Local, None),
                    (1, Engine::Local, Some(pool as usize)),
                    (2, Engine::Cluster(executor.clone()), None),
                ] {
                    if pool_only && way == 0 {
                        ms[way].push(f64::NAN);
                        continue;
                    }
                    s.domain.mediator().set_memory_pool(bytes)?;
                    s.domain.use_engine(engine)?;
                    for _ in 0..args.reps {
                        let sampler = sandbox_benches::SpillPeak::start(vec![
                            local_spill.clone(),
                            work.clone(),
                        ]);
                        let t = Instant::now();
                        sandbox_benches::ask(&s.domain, s.scenario, sql)
                            .with_context(|| format!("{mode} {sql} way {way}"))?;
                        ms[way].push(t.elapsed().as_secs_f64() * 1e3);
                        peaks[way] = peaks[way].max(sampler.stop());
                    }
                }
                let m: Vec<f64> = ms.iter().map(|t| sandbox_benches::median(t)).collect();
                let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
                println!(
                    "| {rows} | {mode} | `{sql}` | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} |",
                    m[0],
                    m[1],
                    mib(peaks[1]),
                    m[2],
                    mib(peaks[2]),
                    m[1] * 1e6 / rows as f64
                );
            }
        }
    }
    Ok(())
}
