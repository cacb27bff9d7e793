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
        .map(|c| sandbox_mediator::cluster::executor_state(&store, c.clone(), None).unwrap())
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
    threshold_pums_of(None, None)
}

/// [`threshold_pums`], with `pums` itself of `rows` PUMS-like rows (resampled, up to three
/// rows per person) when given, and each version in files of `file_rows` rows when given.
fn threshold_pums_of(
    rows: Option<usize>,
    file_rows: Option<usize>,
) -> (tempfile::TempDir, Domain, i64) {
    let (dir, domain) = sandbox_tests::empty_domain();
    if let Some(file_rows) = file_rows {
        domain.mediator().set_file_rows(file_rows);
    }
    let resampled = dir.path().join("pums_like.csv");
    if let Some(rows) = rows {
        let source = sandbox_synth::read_pums(
            &std::fs::read_to_string(sandbox_tests::pums_dir().join("PUMS_pid.csv")).unwrap(),
        );
        let mut out = std::io::BufWriter::new(std::fs::File::create(&resampled).unwrap());
        sandbox_synth::write_pums_like(&mut out, &source, rows, 3, 11).unwrap();
    }
    for (file, policy) in [
        ("PUMS_pid.csv", "pums.toml"),
        ("PUMS_dup.csv", "pums_dup.toml"),
        ("PUMS_null.csv", "pums_null.toml"),
    ] {
        let text = std::fs::read_to_string(repo_root().join("examples/policies").join(policy))
            .unwrap()
            .replace("mode = \"dp\"", "mode = \"threshold\"");
        let source = match (rows, file) {
            (Some(_), "PUMS_pid.csv") => resampled.clone(),
            _ => sandbox_tests::pums_dir().join(file),
        };
        sandbox_runtime::catalog::add(&domain, sandbox_tests::PROVIDER, &source, &text).unwrap();
    }
    let scenario = sandbox_tests::pums_scenario(&domain, "pums-exact", "threshold");
    (dir, domain, scenario.id)
}

/// Asks each of `queries` locally and on the cluster of `settings`: the same cells, values
/// and suppressions, or the same refusal. Returns how many were compared and refused.
fn compare(
    domain: &Domain,
    scenario: i64,
    settings: &ClusterSettings,
    queries: &[String],
) -> (usize, usize) {
    compare_answers(queries, |sql| {
        domain.use_engine(Engine::Local).unwrap();
        let local = ask_in(domain, scenario, sql);
        domain
            .use_engine(Engine::Cluster(settings.clone()))
            .unwrap();
        (local, ask_in(domain, scenario, sql))
    })
}

/// Asks each of `queries` two ways (`both` gives the two answers): the same cells, values
/// and suppressions, or the same refusal. Returns how many were compared and refused.
fn compare_answers(
    queries: &[String],
    mut both: impl FnMut(
        &str,
    ) -> (
        Result<sandbox_runtime::mediate::Answer, sandbox_runtime::Error>,
        Result<sandbox_runtime::mediate::Answer, sandbox_runtime::Error>,
    ),
) -> (usize, usize) {
    let mut compared = 0;
    let mut refused = 0;
    for sql in queries {
        match both(sql) {
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
                "{sql}: one way {:?}, the other {:?}",
                l.map(|a| a.batch),
                r.map(|a| a.batch)
            ),
        }
    }
    (compared, refused)
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
    let (compared, refused) = compare(&domain, exact, &settings, &corpus("pums.slt"));
    assert!(compared >= 40, "{compared} compared, {refused} refused");
    for (i, c) in counters.iter().enumerate() {
        assert!(
            c.opened.load(Ordering::SeqCst) > 0,
            "executor {i} opened no file"
        );
    }

    // A version of several files, the first of several row groups (the unit a scan is
    // split by: 128 Ki rows each), up to three rows per person bounded to one by the
    // ingest-time rank: the scan spread over both executors gives the same answers.
    let (_big_dir, big, big_exact) = threshold_pums_of(Some(140_000), Some(135_000));
    let pums = sandbox_runtime::catalog::get(&big, sandbox_tests::OPERATOR, "pums").unwrap();
    assert!(pums.data_files >= 2, "{} files", pums.data_files);
    let groups: Vec<usize> =
        sandbox_mediator::ingest::stored_readers(big.mediator().dataset_keys(), &pums)
            .unwrap()
            .iter()
            .map(|r| r.metadata().num_row_groups())
            .collect();
    assert!(groups[0] >= 2, "{groups:?} row groups");
    let (settings, counters) = start_cluster(&runtime, &big);
    let queries: Vec<String> = [
        "SELECT COUNT(*) AS n FROM pums",
        "SELECT sex, COUNT(*) AS n FROM pums GROUP BY sex",
        "SELECT educ, SUM(income) AS s, AVG(age) AS a FROM pums GROUP BY educ",
        "SELECT sex, married, COUNT(*) AS n FROM pums GROUP BY sex, married",
        "SELECT race, AVG(income) AS a FROM pums WHERE age > 40 GROUP BY race",
        "SELECT SUM(income) AS s FROM pums WHERE married = 1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (compared, _) = compare(&big, big_exact, &settings, &queries);
    assert_eq!(compared, queries.len());
    for (i, c) in counters.iter().enumerate() {
        assert!(
            c.opened.load(Ordering::SeqCst) > 0,
            "executor {i} opened no file of the large version"
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

/// A version stored in several files gives the same exact aggregates, suppressions and
/// refusals as the same rows in one file, on every query of the PUMS corpus; its files
/// hold every row once, their content hash is the hash of the files one after the other,
/// and a file put in another's place (or missing) fails the query clearly.
#[test]
fn a_version_in_several_files_answers_as_in_one() {
    let (_one_dir, one, one_scenario) = threshold_pums();
    let (_parts_dir, parts, parts_scenario) = threshold_pums_of(None, Some(300));
    let v = sandbox_runtime::catalog::get(&parts, sandbox_tests::OPERATOR, "pums").unwrap();
    let single = sandbox_runtime::catalog::get(&one, sandbox_tests::OPERATOR, "pums").unwrap();
    assert_eq!(single.data_files, 1);
    assert_eq!(
        v.data_files,
        (v.row_count as u64).div_ceil(300) as u32,
        "{v:?}"
    );
    assert!(v.data_files >= 3);
    let keys = parts.mediator().dataset_keys();
    let mut rows = Vec::new();
    for reader in sandbox_mediator::ingest::stored_readers(keys, &v).unwrap() {
        rows.push(
            reader
                .build()
                .unwrap()
                .map(|b| b.unwrap().num_rows())
                .sum::<usize>(),
        );
    }
    assert_eq!(rows.iter().sum::<usize>() as i64, v.row_count, "{rows:?}");
    assert!(rows[..rows.len() - 1].iter().all(|n| *n == 300), "{rows:?}");
    let files = v.data_files();
    let concatenated: Vec<u8> = files
        .iter()
        .flat_map(|f| std::fs::read(f).unwrap())
        .collect();
    assert_eq!(
        v.content_sha256,
        sandbox_core::Suite::Standard.hash_hex(&concatenated)
    );

    let queries = corpus("pums.slt");
    let (compared, refused) = compare_answers(&queries, |sql| {
        (
            ask_in(&one, one_scenario, sql),
            ask_in(&parts, parts_scenario, sql),
        )
    });
    assert!(compared >= 40, "{compared} compared, {refused} refused");

    // The second file put in the third's place, then missing: the query fails and says
    // which file; put back, it answers again.
    let sql = "SELECT COUNT(*) AS n FROM pums";
    let third = std::fs::read(&files[2]).unwrap();
    std::fs::copy(&files[1], &files[2]).unwrap();
    let e = ask_in(&parts, parts_scenario, sql).unwrap_err().to_string();
    assert!(e.contains("data-2.parquet") || e.contains("decrypt"), "{e}");
    match sandbox_mediator::ingest::stored_reader(keys, &v, 2) {
        Err(sandbox_mediator::Error::Domain(sandbox_runtime::Error::Verify(m))) => {
            assert!(m.contains("data-2.parquet"), "{m}")
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    std::fs::remove_file(&files[2]).unwrap();
    let e = ask_in(&parts, parts_scenario, "SELECT SUM(income) AS s FROM pums")
        .unwrap_err()
        .to_string();
    assert!(e.contains("data-2.parquet") && e.contains("missing"), "{e}");
    std::fs::write(&files[2], third).unwrap();
    let answer = ask_in(&parts, parts_scenario, sql).unwrap();
    let n =
        arrow::compute::cast(answer.batch.column(0), &arrow::datatypes::DataType::Float64).unwrap();
    let n = n
        .as_any()
        .downcast_ref::<arrow::array::Float64Array>()
        .map(|a| a.value(0));
    assert_eq!(n, Some(v.bounded_rows.unwrap_or(v.row_count) as f64));
}

/// Under a memory pool the local plans stay within it: threshold mode's aggregate by cell
/// and privacy unit (one group per person) spills into the data directory's `spill/` and
/// answers as it does without a pool; a pool too small for what cannot spill fails the
/// query with the engine's resources error, and the next query without one answers.
#[test]
fn local_plans_stay_within_the_memory_pool() {
    let (_dir, domain, exact) = threshold_pums_of(Some(60_000), None);
    let queries: Vec<String> = [
        "SELECT educ, COUNT(*) AS n FROM pums GROUP BY educ",
        "SELECT sex, AVG(income) AS a FROM pums GROUP BY sex",
        "SELECT COUNT(*) AS n FROM pums WHERE age > 40",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let spill = domain.layout().root().join(sandbox_mediator::SPILL_DIR);
    let (compared, _) = compare_answers(&queries, |sql| {
        domain.mediator().set_memory_pool(None).unwrap();
        let unbounded = ask_in(&domain, exact, sql);
        domain.mediator().set_memory_pool(Some(8 << 20)).unwrap();
        (unbounded, ask_in(&domain, exact, sql))
    });
    assert_eq!(compared, queries.len());
    // The disk manager makes its folder there for its first spill file, and keeps it
    // while its runtime (the current one) lives.
    let spilled = std::fs::read_dir(&spill)
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with("datafusion-"));
    assert!(spilled, "nothing spilled under {}", spill.display());
    domain.mediator().set_memory_pool(Some(1024)).unwrap();
    let e = ask_in(&domain, exact, &queries[0]).unwrap_err().to_string();
    assert!(e.contains("esources"), "{e}");
    domain.mediator().set_memory_pool(None).unwrap();
    assert!(ask_in(&domain, exact, &queries[0]).is_ok());
}

/// Threshold mode's sequences pinned by their golden file give the same verdicts with the
/// units' contributions (the disclosure rules' sums, the differencing guard's hashes,
/// computed beside the rows) and the aggregates computed on the executors.
#[test]
fn the_threshold_sequences_give_their_golden_verdicts_on_the_cluster() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    crate::threshold::threshold_golden(
        |domain| {
            let (settings, _) = start_cluster(&runtime, domain);
            domain.use_engine(Engine::Cluster(settings)).unwrap();
        },
        |domain| {
            // Its plans went there (the last jobs' fates are remembered).
            let sent = domain.mediator().cluster().unwrap().sent();
            assert!(sent.len() >= 12, "{} jobs", sent.len());
            assert!(
                sent.iter()
                    .all(|j| j.fate == sandbox_mediator::cluster::Fate::Finished),
                "{sent:?}"
            );
        },
    );
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

/// A cluster CA and the certificates it signs (ECDSA P-256), for nodes on 127.0.0.1.
struct Pki {
    ca_pem: String,
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let issuer =
            rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap())
                .unwrap();
        Pki {
            ca_pem: issuer.pem(),
            issuer,
        }
    }

    /// A node's TLS: its certificate for `127.0.0.1` and `localhost` (server and client).
    fn node(&self, name: &str) -> sandbox_runtime::NodeTls {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress(std::net::IpAddr::V4(
                std::net::Ipv4Addr::LOCALHOST,
            )));
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        sandbox_runtime::NodeTls::from_pem(
            self.ca_pem.clone().into_bytes(),
            cert.pem().into_bytes(),
            key.serialize_pem().into_bytes(),
        )
        .unwrap()
    }
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A channel over `endpoint`, or why there is none.
async fn channel(
    endpoint: tonic::transport::Endpoint,
) -> Result<tonic::transport::Channel, String> {
    endpoint
        .connect()
        .await
        .map_err(|e| format!("connect: {e:?}"))
}

/// Whether a gRPC call to the scheduler over `endpoint` succeeds.
fn scheduler_answers(
    runtime: &tokio::runtime::Runtime,
    endpoint: tonic::transport::Endpoint,
) -> Result<(), String> {
    use ballista_core::serde::protobuf::GetJobStatusParams;
    use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
    runtime.block_on(async {
        SchedulerGrpcClient::new(channel(endpoint).await?)
            .get_job_status(GetJobStatusParams {
                job_id: "none".into(),
            })
            .await
            .map(|_| ())
            .map_err(|e| format!("call: {e}"))
    })
}

/// Whether an executor's Flight service over `endpoint` answers a call.
fn flight_answers(
    runtime: &tokio::runtime::Runtime,
    endpoint: tonic::transport::Endpoint,
) -> Result<(), String> {
    use arrow_flight::flight_service_client::FlightServiceClient;
    runtime.block_on(async {
        FlightServiceClient::new(channel(endpoint).await?)
            .list_actions(arrow_flight::Empty {})
            .await
            .map(|_| ())
            .map_err(|e| format!("call: {e}"))
    })
}

#[test]
fn a_tls_cluster_answers_its_domain_node_and_no_one_else() {
    use sandbox_cluster::{ExecutorSettings, SchedulerSettings};
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
    let (dir, domain, exact) = threshold_pums();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let pki = Pki::new("Sandbox test cluster CA");
    let scheduler_port = free_port();
    let bind: std::net::SocketAddr = format!("127.0.0.1:{scheduler_port}").parse().unwrap();
    runtime.spawn(sandbox_cluster::run_scheduler(SchedulerSettings {
        bind,
        tls: Some(pki.node("scheduler")),
    }));
    let mut flight_ports = Vec::new();
    for i in 0..2 {
        let store = sandbox_store::Store::open(domain.layout().clone()).unwrap();
        let settings = ExecutorSettings {
            scheduler_host: "127.0.0.1".into(),
            scheduler_port,
            host: "127.0.0.1".into(),
            port: free_port(),
            grpc_port: free_port(),
            work_dir: dir.path().join(format!("shuffle-{i}")),
            vcores: 2,
            memory_pool: None,
            tls: Some(pki.node(&format!("executor-{i}"))),
        };
        flight_ports.push(settings.port);
        runtime.spawn(async move { sandbox_cluster::run_executor(&store, settings).await });
    }
    let mut settings = ClusterSettings::parse(&format!("df://127.0.0.1:{scheduler_port}")).unwrap();
    settings.min_rows = 0;
    settings.timeout = std::time::Duration::from_secs(60);
    settings.tls = Some(pki.node("domain"));

    // The domain node, with its certificate, gets the exact aggregates local execution
    // gives.
    let queries = [
        "SELECT sex, COUNT(*) AS n FROM pums GROUP BY sex",
        "SELECT educ, SUM(income) AS s, AVG(age) AS a FROM pums GROUP BY educ",
        "SELECT COUNT(*) AS n FROM pums WHERE age > 40",
    ];
    for sql in queries {
        domain.use_engine(Engine::Local).unwrap();
        let local = ask_in(&domain, exact, sql).unwrap();
        domain
            .use_engine(Engine::Cluster(settings.clone()))
            .unwrap();
        let remote = ask_in(&domain, exact, sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_eq!(local.batch.columns(), remote.batch.columns(), "{sql}");
        // It ran on the cluster: the units' contributions (the disclosure rules and the
        // differencing guard) and the aggregate.
        let sent = domain.mediator().cluster().unwrap().sent();
        assert!(
            sent.len() >= 2
                && sent
                    .iter()
                    .all(|j| j.fate == sandbox_mediator::cluster::Fate::Finished),
            "{sql}: {sent:?}"
        );
    }

    // A domain node in the clear, or with a certificate of another CA, is refused.
    let stranger = Pki::new("Another CA");
    for (who, tls) in [
        ("in the clear", None),
        ("another CA's certificate", Some(stranger.node("domain"))),
    ] {
        let mut other = settings.clone();
        other.tls = tls;
        domain.use_engine(Engine::Cluster(other)).unwrap();
        let e = ask_in(&domain, exact, queries[0]).unwrap_err().to_string();
        assert!(e.contains("cluster"), "{who}: {e}");
        eprintln!("{who}: {e}");
    }

    // Nor does any client without a certificate of the cluster CA reach the scheduler or
    // an executor's Flight service (where partitions of clamped rows are read).
    let ca = Certificate::from_pem(&pki.ca_pem);
    let tls_endpoint = |port: u16, identity: Option<Identity>| {
        let mut config = ClientTlsConfig::new().ca_certificate(ca.clone());
        if let Some(identity) = identity {
            config = config.identity(identity);
        }
        Endpoint::from_shared(format!("https://127.0.0.1:{port}"))
            .unwrap()
            .tls_config(config)
            .unwrap()
    };
    let plain = |port: u16| Endpoint::from_shared(format!("http://127.0.0.1:{port}")).unwrap();
    let stranger_key = rcgen::KeyPair::generate().unwrap();
    let mut stranger_params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    stranger_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let stranger_cert = stranger_params
        .signed_by(&stranger_key, &stranger.issuer)
        .unwrap();
    let stranger_identity =
        || Identity::from_pem(stranger_cert.pem(), stranger_key.serialize_pem());
    let member = pki.node("member");
    let member_endpoint = |port: u16| member.endpoint(plain(port)).unwrap();
    for (what, port, answers) in [
        (
            "the scheduler",
            scheduler_port,
            scheduler_answers as fn(&tokio::runtime::Runtime, Endpoint) -> Result<(), String>,
        ),
        (
            "an executor's Flight service",
            flight_ports[0],
            flight_answers,
        ),
        (
            "the other executor's Flight service",
            flight_ports[1],
            flight_answers,
        ),
    ] {
        answers(&runtime, member_endpoint(port))
            .unwrap_or_else(|e| panic!("{what}, a member: {e}"));
        for (who, endpoint) in [
            ("in the clear", plain(port)),
            ("over TLS without a certificate", tls_endpoint(port, None)),
            (
                "with another CA's certificate",
                tls_endpoint(port, Some(stranger_identity())),
            ),
        ] {
            let refused = answers(&runtime, endpoint);
            assert!(refused.is_err(), "{what} answered a client {who}");
        }
    }
    drop(runtime);
}

#[test]
fn cluster_tls_files_that_are_not_what_they_say_are_refused() {
    let pki = Pki::new("Sandbox test cluster CA");
    let node = |name: &str| {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &pki.issuer).unwrap();
        (cert.pem().into_bytes(), key.serialize_pem().into_bytes())
    };
    let ca = pki.ca_pem.clone().into_bytes();
    let (cert, key) = node("a");
    let (_, other_key) = node("b");
    assert!(sandbox_runtime::NodeTls::from_pem(ca.clone(), cert.clone(), key.clone()).is_ok());
    for (what, ca, cert, key, says) in [
        (
            "a CA that is not PEM",
            b"not a certificate".to_vec(),
            cert.clone(),
            key.clone(),
            "CA holds no PEM certificate",
        ),
        (
            "no certificate",
            ca.clone(),
            Vec::new(),
            key.clone(),
            "certificate holds no PEM certificate",
        ),
        (
            "a certificate for a key",
            ca.clone(),
            cert.clone(),
            cert.clone(),
            "holds no private key",
        ),
        (
            "another node's key",
            ca.clone(),
            cert.clone(),
            other_key,
            "does not go with its certificate",
        ),
    ] {
        let e = sandbox_runtime::NodeTls::from_pem(ca, cert, key)
            .unwrap_err()
            .to_string();
        assert!(e.contains(says), "{what}: {e}");
    }
    let missing = std::path::Path::new("/nonexistent/ca.pem");
    let e = sandbox_runtime::NodeTls::from_files(missing, missing, missing)
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/ca.pem"), "{e}");
}
