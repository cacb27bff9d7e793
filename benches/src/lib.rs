//! Shared set-up for Sandbox's benchmark harnesses: a domain with its principals, a
//! registered dataset and approved scenarios with budgets large enough for many queries.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

pub mod audit;

use sandbox_runtime::identity::{self, Role};
use sandbox_runtime::{Domain, scenarios};

/// The operator, provider and developer every harness acts as.
pub const OPERATOR: &str = "ops";
/// The provider.
pub const PROVIDER: &str = "provider";
/// The developer.
pub const DEVELOPER: &str = "dev";
/// The supervisor who consents to the harness's scenarios.
pub const SUPERVISOR: &str = "sup";

/// A new domain in `dir` with an operator, a provider and a developer.
pub fn domain_with_principals(dir: &Path) -> anyhow::Result<Domain> {
    domain_of_suite(dir, sandbox_core::Suite::Standard)
}

/// [`domain_with_principals`], of the cryptographic suite `suite`.
pub fn domain_of_suite(dir: &Path, suite: sandbox_core::Suite) -> anyhow::Result<Domain> {
    let root = dir.join("domain");
    let domain = Domain::init_crypto(
        &root,
        &Default::default(),
        &sandbox_runtime::MasterKey::beside(&root),
        suite,
    )?;
    identity::add(&domain, None, OPERATOR, Role::Operator)?;
    identity::add(&domain, Some(OPERATOR), PROVIDER, Role::Provider)?;
    identity::add(&domain, Some(OPERATOR), DEVELOPER, Role::Developer)?;
    identity::add(&domain, Some(OPERATOR), SUPERVISOR, Role::Supervisor)?;
    Ok(domain)
}

/// Applies for and approves a scenario over one dataset's columns, valid from today, with
/// ε 100 in total and `epsilon_per_query` per query. Returns its id.
pub fn approved_scenario(
    domain: &Domain,
    name: &str,
    dataset: &str,
    columns: &[&str],
    epsilon_per_query: f64,
) -> anyhow::Result<i64> {
    approved_scenario_in(domain, name, dataset, columns, epsilon_per_query, "dp")
}

/// [`approved_scenario`] in `mode` (`dp`, `threshold`).
pub fn approved_scenario_in(
    domain: &Domain,
    name: &str,
    dataset: &str,
    columns: &[&str],
    epsilon_per_query: f64,
    mode: &str,
) -> anyhow::Result<i64> {
    let today = chrono::Utc::now().date_naive();
    let columns: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
    let text = format!(
        "name = \"{name}\"\nmode = \"{mode}\"\npurpose = \"benchmark and accuracy harness of the mediator\"\nvalid_from = \"{today}\"\nvalid_until = \"{}\"\nresponse_plan = \"the operator's duty officer is called; the scenario's jobs are stopped; the developer notifies the data bureau within the hour\"\n[budget]\nepsilon = 100.0\nepsilon_per_query = {epsilon_per_query}\n[[dataset]]\nname = \"{dataset}\"\ncolumns = [{}]\n[agreement]\nrights_and_obligations = \"the developer uses the data for the stated purpose only and keeps the products' scope\"\nsecurity_requirements = \"no attempt to re-identify anyone; credentials kept by the named developer only\"\nlegal_basis = \"the data bureau's authorization of the public data operation\"\nbreach = \"suspension of the scenario, revocation of the authorization and liability under the agreement\"\n",
        today + chrono::Days::new(1),
        columns.join(", ")
    );
    let s = scenarios::apply(domain, DEVELOPER, &text)?;
    let key = s.id.to_string();
    sandbox_runtime::consent::consent(domain, PROVIDER, &key, None, None)?;
    sandbox_runtime::consent::consent(domain, SUPERVISOR, &key, None, None)?;
    Ok(scenarios::decide(domain, OPERATOR, &key, true, None)?.id)
}

/// The seven queries of the cluster and peer harnesses: COUNT, SUM, AVG, grouped counts,
/// grouped averages, two keys, a filter.
pub const SEVEN_QUERIES: &[&str] = &[
    "SELECT COUNT(age) FROM pums",
    "SELECT SUM(income) FROM pums",
    "SELECT AVG(income) FROM pums",
    "SELECT educ, COUNT(*) FROM pums GROUP BY educ",
    "SELECT sex, AVG(income) FROM pums GROUP BY sex",
    "SELECT sex, race, COUNT(*) FROM pums GROUP BY sex, race",
    "SELECT COUNT(*) FROM pums WHERE age > 40",
];

/// A domain in `dir` with `rows` PUMS-like rows (resampled from `source` with seed 7, up
/// to `per_person` rows per person) registered as `pums` under the example policy. The
/// CSV stays at `dir/pums.csv` when `keep_csv`. Returns the domain, the version and the
/// seconds ingest took.
pub fn pums_like_domain(
    dir: &Path,
    source: &[sandbox_synth::PumsRow],
    rows: usize,
    per_person: usize,
    keep_csv: bool,
) -> anyhow::Result<(Domain, sandbox_runtime::catalog::DatasetVersion, f64)> {
    pums_like_domain_in(dir, source, rows, per_person, keep_csv, "dp")
}

/// [`pums_like_domain`], the dataset released in `mode` (`dp`, `threshold`).
pub fn pums_like_domain_in(
    dir: &Path,
    source: &[sandbox_synth::PumsRow],
    rows: usize,
    per_person: usize,
    keep_csv: bool,
    mode: &str,
) -> anyhow::Result<(Domain, sandbox_runtime::catalog::DatasetVersion, f64)> {
    let csv = dir.join("pums.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&csv)?);
    sandbox_synth::write_pums_like(&mut out, source, rows, per_person, 7)?;
    drop(out);
    let domain = domain_with_principals(dir)?;
    let policy = std::fs::read_to_string(examples().join("policies/pums.toml"))?
        .replace("mode = \"dp\"", &format!("mode = \"{mode}\""));
    let started = std::time::Instant::now();
    let v = sandbox_runtime::catalog::add(&domain, PROVIDER, &csv, &policy)?;
    let seconds = started.elapsed().as_secs_f64();
    if !keep_csv {
        std::fs::remove_file(&csv)?;
    }
    Ok((domain, v, seconds))
}

/// The arguments of the harnesses at scale: `--rows N` (repeatable; 10^6 when none),
/// `--reps N`, `--pums FILE` (the PUMS sample rows are resampled from), and the harness's
/// own flags, which `extra` is asked about first (with the rest of the arguments, to take
/// a value from): it says whether the flag was its own.
pub struct ScaleArgs {
    /// The row counts to run at.
    pub sizes: Vec<usize>,
    /// Runs of each measurement.
    pub reps: usize,
    /// The PUMS sample.
    pub pums: PathBuf,
}

impl ScaleArgs {
    /// Parses the process's arguments, `reps` by default.
    pub fn parse(
        reps: usize,
        mut extra: impl FnMut(&str, &mut dyn Iterator<Item = String>) -> anyhow::Result<bool>,
    ) -> anyhow::Result<ScaleArgs> {
        use anyhow::Context;
        let mut out = ScaleArgs {
            sizes: Vec::new(),
            reps,
            pums: pums_pid_csv(),
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            if extra(&a, &mut args)? {
                continue;
            }
            match a.as_str() {
                "--rows" => out.sizes.push(args.next().context("--rows N")?.parse()?),
                "--reps" => out.reps = args.next().context("--reps N")?.parse()?,
                "--pums" => out.pums = PathBuf::from(args.next().context("--pums FILE")?),
                "--bench" => {}
                other => anyhow::bail!("unknown argument {other}"),
            }
        }
        if out.sizes.is_empty() {
            out.sizes = vec![1_000_000];
        }
        Ok(out)
    }

    /// The rows of the PUMS sample.
    pub fn source(&self) -> anyhow::Result<Vec<sandbox_synth::PumsRow>> {
        Ok(sandbox_synth::read_pums(&std::fs::read_to_string(
            &self.pums,
        )?))
    }
}

/// The PUMS columns, privacy unit first.
pub const PUMS_COLUMNS: &[&str] = &["pid", "age", "sex", "educ", "race", "income", "married"];

/// The repository's examples folder.
pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// `PUMS_pid.csv` in the shared test data beside the repository.
pub fn pums_pid_csv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/pums/PUMS_pid.csv")
}

/// The median of the values (the upper one of an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

/// The mediated answer to `sql` in scenario `scenario_id`, asked by the developer at the
/// scenario's ε per query.
pub fn ask(
    domain: &Domain,
    scenario_id: i64,
    sql: &str,
) -> sandbox_runtime::Result<sandbox_runtime::mediate::Answer> {
    sandbox_runtime::mediate::answer(
        domain,
        &sandbox_runtime::mediate::QueryRequest {
            scenario_id,
            job_id: None,
            actor: DEVELOPER,
            sql,
            epsilon: None,
        },
    )
}

/// The `p` quantile (nearest rank) of the values; NaN when there are none.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n => sorted[((n - 1) as f64 * p).round() as usize],
    }
}

/// Raw DataFusion over a dataset version's stored file, as `table`: the baseline the
/// mediated path is compared with. The file is encrypted at rest, so the session reads it
/// through the domain's dataset keys as every reader must (and no more: no policy, no
/// bounds, no noise).
pub fn raw_session(
    rt: &tokio::runtime::Runtime,
    domain: &Domain,
    table: &str,
    v: &sandbox_runtime::catalog::DatasetVersion,
) -> anyhow::Result<datafusion::prelude::SessionContext> {
    let ctx = datafusion::prelude::SessionContext::new();
    ctx.runtime_env().register_parquet_encryption_factory(
        sandbox_mediator::atrest::FACTORY_ID,
        domain.mediator().dataset_keys().clone(),
    );
    let listing = rt.block_on(sandbox_mediator::atrest::file_table(
        &ctx.state(),
        (&v.name, v.version),
        &v.data_files(),
    ))?;
    ctx.register_table(table, std::sync::Arc::new(listing))?;
    Ok(ctx)
}

/// A port nothing listens on now.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A scheduler and executors of `domain` in `rt`, started as `sandbox scheduler` and
/// `sandbox executor` start them, on loopback: `(executors, vcores, memory_pool)`, each
/// running `vcores` tasks in a memory pool of `memory_pool` bytes (unbounded when `None`),
/// over `tls` when given; their work directories (shuffle and spill files) under `work`,
/// as `<scheduler port>-<i>`. Returns the mediator's settings for it (every dataset sent
/// there, two partitions per task slot).
pub fn start_cluster(
    rt: &tokio::runtime::Runtime,
    domain: &Domain,
    (executors, vcores, memory_pool): (usize, usize, Option<u64>),
    tls: Option<sandbox_runtime::NodeTls>,
    work: &Path,
) -> anyhow::Result<sandbox_runtime::ClusterSettings> {
    let scheduler_port = free_port()?;
    rt.spawn(sandbox_cluster::run_scheduler(
        sandbox_cluster::SchedulerSettings {
            bind: format!("127.0.0.1:{scheduler_port}").parse()?,
            tls: tls.clone(),
        },
    ));
    std::thread::sleep(std::time::Duration::from_millis(500));
    for i in 0..executors {
        let store = sandbox_store::Store::open(domain.layout().clone())?;
        let settings = sandbox_cluster::ExecutorSettings {
            scheduler_host: "127.0.0.1".into(),
            scheduler_port,
            host: "127.0.0.1".into(),
            port: free_port()?,
            grpc_port: free_port()?,
            work_dir: work.join(format!("{scheduler_port}-{i}")),
            vcores,
            memory_pool,
            tls: tls.clone(),
        };
        rt.spawn(async move { sandbox_cluster::run_executor(&store, settings).await });
    }
    // Registered before the first job.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let mut settings =
        sandbox_runtime::ClusterSettings::parse(&format!("df://127.0.0.1:{scheduler_port}"))?;
    settings.min_rows = 0;
    settings.partitions = (executors * vcores * 2).max(2);
    settings.tls = tls;
    Ok(settings)
}

/// The most bytes of spill files seen at once under some folders (in `datafusion-*`
/// folders at any depth, where DataFusion's disk manager writes them), sampled every 20 ms
/// from a thread until [`SpillPeak::stop`].
pub struct SpillPeak {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl SpillPeak {
    /// Starts sampling `roots`.
    pub fn start(roots: Vec<PathBuf>) -> SpillPeak {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            loop {
                let done = flag.load(std::sync::atomic::Ordering::SeqCst);
                peak = peak.max(roots.iter().map(|r| spill_bytes(r)).sum());
                if done {
                    return peak;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        });
        SpillPeak { stop, thread }
    }

    /// Stops sampling; returns the peak in bytes.
    pub fn stop(self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.thread.join().unwrap_or(0)
    }
}

/// Bytes of the files in the `datafusion-*` folders under `root` (at any depth) now.
fn spill_bytes(root: &Path) -> u64 {
    fn under(dir: &Path) -> u64 {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        entries
            .flatten()
            .map(|e| match e.file_type() {
                Ok(t) if t.is_dir() => under(&e.path()),
                Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
                Err(_) => 0,
            })
            .sum()
    }
    let Ok(entries) = std::fs::read_dir(root) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| {
            if e.file_name().to_string_lossy().starts_with("datafusion-") {
                under(&e.path())
            } else {
                spill_bytes(&e.path())
            }
        })
        .sum()
}

/// A module that asks `n` counts of the residents, one after the other, then emits a note.
pub fn asker(n: usize) -> Vec<u8> {
    let calls = "(drop (call $query (i32.const 0) (i32.const 30)))\n".repeat(n);
    wat::parse_str(format!(
        r#"(module
  (import "sandbox" "query" (func $query (param i32 i32) (result i32)))
  (import "sandbox" "emit" (func $emit (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "SELECT COUNT(*) FROM residents")
  (data (i32.const 64) "note")
  (data (i32.const 80) "Counted.")
  (func (export "run") (result i32)
    {calls}
    (call $emit (i32.const 2) (i32.const 64) (i32.const 4) (i32.const 80) (i32.const 8))))"#
    ))
    .unwrap_or_else(|e| panic!("the asker module: {e}"))
}
