//! The cluster as processes on 127.0.0.1: `sandbox scheduler`, two `sandbox executor`s on
//! the domain's data directory, and `sandbox serve --engine` sending the mediator's plans
//! to them. A job runs end to end with its aggregates computed by the executors; then one
//! executor is killed with SIGKILL while jobs run: every query is charged once and
//! answered at most once, a query that fails fails with a clear error, and the next job
//! succeeds on the remaining executor.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{
    Node, example_domain, example_module, metadata_db, ok, remote, sandbox, submit_example,
};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An executor of `data`'s domain, its shuffle directory under `tmp`.
fn executor(data: &Path, tmp: &Path, scheduler: u16, name: &str) -> Node {
    executor_with(data, tmp, scheduler, name, &[])
}

/// An executor with more arguments.
fn executor_with(data: &Path, tmp: &Path, scheduler: u16, name: &str, more: &[String]) -> Node {
    let work = tmp.join(name);
    let (port, grpc) = (free_port(), free_port());
    let mut args: Vec<String> = [
        "executor",
        "--scheduler",
        &format!("127.0.0.1:{scheduler}"),
        "--port",
        &port.to_string(),
        "--grpc-port",
        &grpc.to_string(),
        "--work-dir",
        &work.to_string_lossy(),
        "--vcores",
        "2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(more.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Node::start(data, &args)
}

/// A job of the example module through the server, waited for: its id and status.
fn run_job(url: &str, dev: &str) -> (String, String) {
    let out = submit_example(url, dev, &["--wait", "120"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "submit: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (
        v["id"].as_str().unwrap_or_default().to_string(),
        v["status"].as_str().unwrap_or_default().to_string(),
    )
}

/// Directories of the jobs an executor ran stages of (Ballista writes each job's shuffle
/// output under the work directory, by job id).
fn jobs_run(work: &Path) -> usize {
    std::fs::read_dir(work)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().is_dir())
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn a_job_runs_on_the_cluster_and_survives_the_loss_of_an_executor() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, [ops, dev, ..]) = example_domain(tmp.path(), 2000, 7);
    example_module();

    let scheduler_port = free_port();
    let mut scheduler = Node::start(
        &data,
        &[
            "scheduler",
            "--listen",
            &format!("127.0.0.1:{scheduler_port}"),
        ],
    );
    scheduler.wait_for("listening");
    let mut one = executor(&data, tmp.path(), scheduler_port, "e1");
    let mut two = executor(&data, tmp.path(), scheduler_port, "e2");
    let mut server = Node::start(
        &data,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--jobs",
            "1",
            "--engine",
            &format!("df://127.0.0.1:{scheduler_port}"),
            "--engine-min-rows",
            "0",
        ],
    );
    let url = server.url();

    // End to end: the job's queries are answered from the executors' aggregates.
    let (first, status) = run_job(&url, &dev);
    assert_eq!(
        status,
        "succeeded",
        "{first}: {}",
        server.log.lock().unwrap()
    );
    let ran = jobs_run(&tmp.path().join("e1")) + jobs_run(&tmp.path().join("e2"));
    assert!(ran > 0, "no executor ran a stage");

    // One executor killed while jobs run (each job asks several queries, one after the
    // other, each a Ballista job of two stages: a kill lands in one almost surely).
    let started = Instant::now();
    let mut jobs = Vec::new();
    let remaining = tmp.path().join("e2");
    std::thread::scope(|s| {
        let killer = s.spawn(|| {
            std::thread::sleep(Duration::from_millis(900));
            one.kill("-KILL");
            Instant::now()
        });
        while !killer.is_finished() {
            jobs.push(run_job(&url, &dev));
        }
        let killed = killer.join().unwrap();
        while killed.elapsed() < Duration::from_secs(3) {
            jobs.push(run_job(&url, &dev));
        }
    });
    // And afterwards the next job succeeds on the one that remains.
    let before = jobs_run(&remaining);
    let (after, status) = run_job(&url, &dev);
    assert_eq!(
        status,
        "succeeded",
        "{after}: {}",
        server.log.lock().unwrap()
    );
    assert!(
        jobs_run(&remaining) > before,
        "the remaining executor ran nothing"
    );
    // The scheduler met the loss in a query's tasks (a task launched on the dead executor)
    // and ran them again on the other
    // (or, had no task gone its way, found it dead by its missing heartbeats: 10 s)
    let deadline = Instant::now() + Duration::from_secs(30);
    while !scheduler.log.lock().unwrap().contains("Removing executor") {
        let seen = scheduler.log.lock().unwrap().clone();
        assert!(Instant::now() < deadline, "{seen}");
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "{} jobs around the kill ({} succeeded) in {:.1} s",
        jobs.len(),
        jobs.iter().filter(|(_, s)| s == "succeeded").count(),
        started.elapsed().as_secs_f64()
    );
    for (id, status) in &jobs {
        assert!(
            ["succeeded", "failed"].contains(&status.as_str()),
            "{id}: {status}"
        );
        if status == "failed" {
            // The module is told what any failure after planning tells it (whatever the
            // data); the server's log says what happened on the cluster.
            let status = ok(remote(&url, &ops, &["--json", "job", "status", id]));
            assert!(
                status.contains("the query failed inside the host"),
                "{id}: {status}"
            );
            let log = server.log.lock().unwrap().clone();
            let why: Vec<&str> = log
                .lines()
                .filter(|l| l.contains("query failed inside the host"))
                .collect();
            assert!(
                why.iter()
                    .any(|l| l.contains("cluster") || l.contains("executor")),
                "{id}: {why:?}"
            );
        }
    }
    if std::env::var_os("SANDBOX_CLUSTER_DEBUG").is_some() {
        eprintln!("scheduler:\n{}", scheduler.log.lock().unwrap());
        eprintln!("server:\n{}", server.log.lock().unwrap());
    }
    server.kill("-TERM");
    two.kill("-TERM");
    scheduler.kill("-TERM");

    // The budget semantics: every query charged once, every answer charged.
    let db = metadata_db(&data);
    let count = |sql: &str| -> i64 { db.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM (SELECT query_id FROM ledger GROUP BY query_id HAVING COUNT(*) > 1)"
        ),
        0,
        "a query charged twice"
    );
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM queries q WHERE q.status = 'answered'
             AND NOT EXISTS (SELECT 1 FROM ledger l WHERE l.query_id = q.id)"
        ),
        0,
        "an answer without its charge"
    );
    assert!(count("SELECT COUNT(*) FROM queries WHERE status = 'answered'") > 0);
    assert!(ok(sandbox(&data, &["audit", "verify"])).contains("audit log verified"));
}

/// A cluster CA under `dir` and, per name, a node certificate for 127.0.0.1 with its key:
/// `ca.pem`, `NAME.pem`, `NAME.key`.
fn cluster_pki(dir: &Path, names: &[&str]) {
    std::fs::create_dir_all(dir).unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "cluster CA");
    ca.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
    let issuer =
        rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate().unwrap()).unwrap();
    std::fs::write(dir.join("ca.pem"), issuer.pem()).unwrap();
    for name in names {
        let mut node = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        node.subject_alt_names.push(rcgen::SanType::IpAddress(
            std::net::Ipv4Addr::LOCALHOST.into(),
        ));
        node.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = node.signed_by(&key, &issuer).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    }
}

/// `--tls-ca … --tls-cert … --tls-key …` (with `prefix`, e.g. `engine-`) of node `name`.
fn tls_args(dir: &Path, prefix: &str, name: &str) -> Vec<String> {
    let path = |f: String| dir.join(f).to_string_lossy().into_owned();
    vec![
        format!("--{prefix}tls-ca"),
        path("ca.pem".into()),
        format!("--{prefix}tls-cert"),
        path(format!("{name}.pem")),
        format!("--{prefix}tls-key"),
        path(format!("{name}.key")),
    ]
}

#[test]
fn a_job_runs_on_a_cluster_under_mutual_tls() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, [_, dev, ..]) = example_domain(tmp.path(), 2000, 11);
    example_module();
    let pki = tmp.path().join("pki");
    cluster_pki(&pki, &["scheduler", "executor", "domain"]);

    // A node's key that is not its certificate's is refused before anything starts.
    let mismatched = tmp.path().join("mismatched");
    cluster_pki(&mismatched, &["a", "b"]);
    std::fs::copy(mismatched.join("b.key"), mismatched.join("a.key")).unwrap();
    let out = sandbox(
        &data,
        &[
            &["scheduler", "--listen", "127.0.0.1:0"][..],
            &tls_args(&mismatched, "", "a")
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        ]
        .concat(),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not go with its certificate"), "{err}");

    let scheduler_port = free_port();
    let listen = format!("127.0.0.1:{scheduler_port}");
    let mut args = vec!["scheduler".to_string(), "--listen".into(), listen];
    args.extend(tls_args(&pki, "", "scheduler"));
    let mut scheduler = Node::start(&data, &args.iter().map(String::as_str).collect::<Vec<_>>());
    scheduler.wait_for("mutual TLS");
    let _executor = executor_with(
        &data,
        tmp.path(),
        scheduler_port,
        "e1",
        &tls_args(&pki, "", "executor"),
    );
    let mut args: Vec<String> = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--jobs",
        "1",
        "--engine",
        &format!("df://127.0.0.1:{scheduler_port}"),
        "--engine-min-rows",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(tls_args(&pki, "engine-", "domain"));
    let mut server = Node::start(&data, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let url = server.url();
    let (id, status) = run_job(&url, &dev);
    assert_eq!(status, "succeeded", "{id}: {}", server.log.lock().unwrap());
    assert!(
        jobs_run(&tmp.path().join("e1")) > 0,
        "the executor ran no stage"
    );
}
