//! The mediator's plans on a DataFusion Ballista cluster: a scheduler and two executors in
//! this process, on loopback ports, each executor reading the domain's encrypted files
//! through its own dataset keys and rebuilding the desensitization functions with the
//! secret from its own key source.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::common::config::EncryptionFactoryOptions;
use datafusion::execution::parquet_encryption::EncryptionFactory;
use sandbox_mediator::atrest::DatasetKeys;
use sandbox_runtime::{ClusterSettings, Domain, Engine};
use sandbox_tests::{ask_in, repo_root};

/// An executor's dataset keys, counting the files it opened.
#[derive(Debug)]
struct Counted {
    keys: Arc<DatasetKeys>,
    opened: AtomicUsize,
}

#[async_trait::async_trait]
impl EncryptionFactory for Counted {
    async fn get_file_encryption_properties(
        &self,
        config: &EncryptionFactoryOptions,
        schema: &arrow::datatypes::SchemaRef,
        path: &datafusion::object_store::path::Path,
    ) -> datafusion::error::Result<
        Option<Arc<parquet::encryption::encrypt::FileEncryptionProperties>>,
    > {
        self.keys
            .get_file_encryption_properties(config, schema, path)
            .await
    }

    async fn get_file_decryption_properties(
        &self,
        config: &EncryptionFactoryOptions,
        path: &datafusion::object_store::path::Path,
    ) -> datafusion::error::Result<
        Option<Arc<parquet::encryption::decrypt::FileDecryptionProperties>>,
    > {
        self.opened.fetch_add(1, Ordering::SeqCst);
        self.keys.get_file_decryption_properties(config, path).await
    }
}

/// A scheduler and two executors of `domain` in `runtime`; the executors' counters.
fn start_cluster(
    runtime: &tokio::runtime::Runtime,
    domain: &Domain,
) -> (ClusterSettings, Vec<Arc<Counted>>) {
    // Each executor opens the domain's store itself, as a process on another host would.
    let store = sandbox_store::Store::open(domain.layout().clone()).unwrap();
    let counters: Vec<Arc<Counted>> = (0..2)
        .map(|_| {
            Arc::new(Counted {
                keys: sandbox_cluster::dataset_keys(&store),
                opened: AtomicUsize::new(0),
            })
        })
        .collect();
    let states: Vec<_> = counters
        .iter()
        .map(|c| sandbox_mediator::cluster::executor_state(&store, c.clone()).unwrap())
        .collect();
    let addr = runtime
        .block_on(sandbox_cluster::standalone(&states, 2))
        .unwrap();
    let mut settings = ClusterSettings::parse(&format!("df://127.0.0.1:{}", addr.port())).unwrap();
    settings.min_rows = 0;
    (settings, counters)
}

/// The accepted queries of a golden corpus.
fn corpus(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo_root().join("tests/golden").join(file)).unwrap();
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if !line.starts_with("query") {
            continue;
        }
        let mut sql = Vec::new();
        for l in lines.by_ref() {
            if l == "----" {
                break;
            }
            sql.push(l);
        }
        let verdict = lines.next().unwrap_or_default();
        if verdict.starts_with("rows=") || verdict.starts_with("accepted") {
            out.push(sql.join("\n"));
        }
    }
    out
}

/// A domain with the PUMS datasets of [`sandbox_tests::pums_fixture`] released in threshold
/// mode, and a scenario over them.
fn threshold_pums() -> (tempfile::TempDir, Domain, i64) {
    let (dir, domain) = sandbox_tests::empty_domain();
    for (file, policy) in [
        ("PUMS_pid.csv", "pums.toml"),
        ("PUMS_dup.csv", "pums_dup.toml"),
        ("PUMS_null.csv", "pums_null.toml"),
    ] {
        let text = std::fs::read_to_string(repo_root().join("examples/policies").join(policy))
            .unwrap()
            .replace("mode = \"dp\"", "mode = \"threshold\"");
        sandbox_runtime::catalog::add(
            &domain,
            sandbox_tests::PROVIDER,
            &sandbox_tests::pums_dir().join(file),
            &text,
        )
        .unwrap();
    }
    let scenario = sandbox_tests::pums_scenario(&domain, "pums-exact", "threshold");
    (dir, domain, scenario.id)
}

#[test]
fn the_cluster_computes_the_exact_aggregates_local_execution_does() {
    // Threshold mode releases the exact aggregate (with the same suppression both ways):
    // the answers compare the very numbers the noise would be added to.
    let (_dir, domain, exact) = threshold_pums();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (settings, counters) = start_cluster(&runtime, &domain);
    let mut compared = 0;
    let mut refused = 0;
    for sql in corpus("pums.slt") {
        domain.use_engine(Engine::Local).unwrap();
        let local = ask_in(&domain, exact, &sql);
        domain
            .use_engine(Engine::Cluster(settings.clone()))
            .unwrap();
        let remote = ask_in(&domain, exact, &sql);
        match (local, remote) {
            (Ok(l), Ok(r)) => {
                // The same cells, values and suppressions (the query ids differ).
                assert_eq!(l.batch.columns(), r.batch.columns(), "{sql}");
                assert_eq!(
                    l.batch.schema().fields(),
                    r.batch.schema().fields(),
                    "{sql}"
                );
                let suppressed = |a: &sandbox_runtime::mediate::Answer| {
                    a.batch
                        .schema()
                        .metadata()
                        .get("sandbox.suppressed")
                        .map(|s| serde_json::from_str::<serde_json::Value>(s).unwrap())
                };
                assert_eq!(suppressed(&l), suppressed(&r), "{sql}");
                compared += 1;
            }
            (Err(l), Err(r)) => {
                assert_eq!(l.to_string(), r.to_string(), "{sql}");
                refused += 1;
            }
            (l, r) => panic!(
                "{sql}: locally {:?}, on the cluster {:?}",
                l.map(|a| a.batch),
                r.map(|a| a.batch)
            ),
        }
    }
    assert!(compared >= 40, "{compared} compared, {refused} refused");
    for (i, c) in counters.iter().enumerate() {
        assert!(
            c.opened.load(Ordering::SeqCst) > 0,
            "executor {i} opened no file"
        );
    }

    // In DP mode the noisy answer comes from the cluster's exact aggregate, charged once.
    let f = sandbox_tests::pums_fixture();
    let (settings, _) = start_cluster(&runtime, &f.domain);
    f.domain
        .use_engine(Engine::Cluster(settings.clone()))
        .unwrap();
    let before = sandbox_tests::count(
        &sandbox_tests::raw(&f.domain),
        &format!(
            "SELECT COUNT(*) FROM ledger WHERE scenario_id = {}",
            f.scenario.id
        ),
    );
    let answer = f
        .ask("SELECT sex, COUNT(*) AS n FROM pums GROUP BY sex")
        .unwrap();
    assert_eq!(answer.batch.num_rows(), 2);
    let after = sandbox_tests::count(
        &sandbox_tests::raw(&f.domain),
        &format!(
            "SELECT COUNT(*) FROM ledger WHERE scenario_id = {}",
            f.scenario.id
        ),
    );
    assert_eq!(after, before + 1);

    // Below the cluster's row count a dataset stays local: with the cluster gone, a
    // small dataset still answers, a large one fails clearly.
    drop(runtime);
    let mut small = settings.clone();
    small.min_rows = 1_000_000;
    f.domain.use_engine(Engine::Cluster(small)).unwrap();
    f.ask("SELECT COUNT(age) FROM pums").unwrap();
    f.domain.use_engine(Engine::Cluster(settings)).unwrap();
    let e = f
        .ask("SELECT COUNT(age) FROM pums")
        .unwrap_err()
        .to_string();
    assert!(e.contains("cluster"), "{e}");
}

/// The scheduler's word on a job.
fn job_state(
    runtime: &tokio::runtime::Runtime,
    settings: &ClusterSettings,
    job_id: &str,
) -> Option<ballista_core::serde::protobuf::job_status::Status> {
    use ballista_core::serde::protobuf::GetJobStatusParams;
    use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
    let url = settings.url.replace("df://", "http://");
    runtime.block_on(async {
        let mut client = SchedulerGrpcClient::connect(url).await.unwrap();
        client
            .get_job_status(GetJobStatusParams {
                job_id: job_id.to_string(),
            })
            .await
            .unwrap()
            .into_inner()
            .status
            .and_then(|s| s.status)
    })
}

#[test]
fn a_query_no_longer_wanted_cancels_its_job_on_the_cluster() {
    use ballista_core::serde::protobuf::job_status::Status;
    use sandbox_mediator::cluster::{Cluster, Fate};
    let (_dir, domain) = sandbox_tests::empty_domain();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (settings, _) = start_cluster(&runtime, &domain);
    let cluster = Cluster::new(
        settings.clone(),
        domain.keys().pseudonym_secret().unwrap().clone(),
    );
    // A plan that runs for a long while on the executors.
    let ctx = datafusion::prelude::SessionContext::new();
    let state = ctx.state();
    let plan = runtime.block_on(async {
        let logical = ctx
            .sql("SELECT SUM(value % 7) FROM generate_series(1, 400000000)")
            .await
            .unwrap()
            .into_optimized_plan()
            .unwrap();
        cluster.plan(&state, &logical).await.unwrap()
    });
    let ended = |job_id: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            match job_state(&runtime, &settings, job_id) {
                Some(Status::Failed(f)) => return f.error,
                Some(Status::Successful(_)) => panic!("job {job_id} ran to its end"),
                _ => {}
            }
            assert!(
                std::time::Instant::now() < deadline,
                "job {job_id} not ended"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };

    // The query's future dropped while its job runs (what a refused charge does).
    let dropped = runtime.block_on(async {
        tokio::time::timeout(
            std::time::Duration::from_millis(1500),
            cluster.collect(&state, plan.clone(), &|| Ok(())),
        )
        .await
    });
    assert!(dropped.is_err(), "the plan ended in 1.5 s");
    let sent = cluster.sent();
    let job = sent.last().unwrap();
    assert!(
        matches!(&job.fate, Fate::Cancelled(why) if why.contains("dropped")),
        "{job:?}"
    );
    eprintln!("cancelled at the scheduler: {}", ended(&job.job_id));

    // The job of the query stopped while it runs (its watch objects).
    let asked = std::sync::atomic::AtomicUsize::new(0);
    let watch = || {
        if asked.fetch_add(1, Ordering::SeqCst) < 2 {
            Ok(())
        } else {
            Err(sandbox_runtime::Error::Stopped(
                "the scenario was stopped".into(),
            ))
        }
    };
    let e = runtime
        .block_on(cluster.collect(&state, plan, &watch))
        .unwrap_err();
    assert!(e.to_string().contains("stopped"), "{e}");
    let sent = cluster.sent();
    let job = sent.last().unwrap();
    assert!(
        matches!(&job.fate, Fate::Cancelled(why) if why.contains("stopped")),
        "{job:?}"
    );
    ended(&job.job_id);
}
