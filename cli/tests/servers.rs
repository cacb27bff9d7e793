//! Two `sandbox serve` processes on one PostgreSQL metadata store (a throwaway cluster,
//! `scripts/postgres.sh`), sharing one data directory: jobs from many clients spread over
//! both against a budget that runs out; one server killed with SIGKILL while it runs jobs.
//! Every accepted job ends, none runs twice, the killed server's running jobs are failed
//! by the other once their lease lapses, the ledger adds up within the budget, and the
//! audit log verifies.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Node, example_domain_with, example_module, ok, remote, sandbox, submit_module};
use sandbox_store::testing::{RawPg, RawValue, Throwaway};

/// A `sandbox serve` process on a loopback port, its log kept.
struct Server {
    node: Node,
    url: String,
}

impl Server {
    fn start(data: &Path) -> Server {
        let mut node = Node::start(
            data,
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--jobs",
                "2",
                "--max-queued",
                "100",
                "--job-lease",
                "2",
            ],
        );
        let url = node.url();
        Server { node, url }
    }

    /// `host:pid`, as the jobs it claims record their runner.
    fn runner(&self) -> String {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        format!("{}:{}", host.trim(), self.node.child.id())
    }
}

/// A module that asks nothing and loops until its fuel or a cancel ends it.
fn looping_module(dir: &Path) -> PathBuf {
    let path = dir.join("looping.wasm");
    let bytes = wat::parse_str(
        r#"(module
             (memory (export "memory") 1)
             (func (export "run") (result i32)
               (loop $forever (br $forever))
               (i32.const 0)))"#,
    )
    .unwrap();
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Submits a job through `url`: its id, or `None` when the server refused it or was gone.
fn submit(url: &str, token: &str, module: &Path) -> Option<String> {
    let out = submit_module(url, token, module, &[]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v["id"].as_str().map(str::to_string)
}

fn text(v: &RawValue) -> String {
    match v {
        RawValue::Text(t) => t.clone(),
        RawValue::Null => String::new(),
        other => panic!("not text: {other:?}"),
    }
}

fn real(v: &RawValue) -> f64 {
    match v {
        RawValue::Real(r) => *r,
        RawValue::Int(i) => *i as f64,
        other => panic!("not a number: {other:?}"),
    }
}

#[test]
fn two_servers_share_one_ledger_queue_and_log_and_take_over_the_jobs_of_a_killed_one() {
    const JOBS: usize = 40;
    const CLIENTS: usize = 8;
    // Ten queries' worth of budget for forty jobs of one query each.
    const EPSILON: f64 = 0.1;
    let tmp = tempfile::tempdir().unwrap();
    let pg = Throwaway::start(&tmp.path().join("pg")).unwrap();
    let init = [
        "--metadata",
        pg.app.as_str(),
        "--metadata-owner",
        pg.owner.as_str(),
    ];
    let (data, [ops, dev, ..]) =
        example_domain_with(tmp.path(), 2000, 7, &init, Some((EPSILON, 0.01)));
    assert!(data.join("metadata.toml").exists() && !data.join("sandbox.db").exists());
    let db = RawPg::connect(&pg.owner).unwrap();
    let example = example_module();
    let looping = looping_module(tmp.path());

    let mut one = Server::start(&data);
    let two = Server::start(&data);
    let urls = [one.url.clone(), two.url.clone()];

    let runners = |db: &RawPg| -> Vec<String> {
        db.rows("SELECT runner FROM jobs WHERE status = 'running'", &[])
            .unwrap()
            .iter()
            .map(|r| text(&r[0]))
            .collect()
    };
    // Long jobs (they ask nothing, so no refusal of a query stops them), until the first
    // server runs one.
    let mut accepted: Vec<String> = Vec::new();
    let running_on_one = |accepted: &mut Vec<String>| {
        for _ in 0..4 {
            accepted.push(submit(&urls[0], &dev, &looping).unwrap());
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if runners(&db).contains(&one.runner()) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("the first server runs no job");
    };
    running_on_one(&mut accepted);

    // A stop recorded through the second server reaches the job the first one runs at
    // once (announced to it), well before any lease would matter.
    let stopped_at = Instant::now();
    let stop: serde_json::Value = serde_json::from_str(&ok(remote(
        &urls[1],
        &ops,
        &["--json", "stop", "developer", "dev", "--reason", "drill"],
    )))
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<String> = db
            .rows("SELECT id FROM jobs WHERE status = 'running'", &[])
            .unwrap()
            .iter()
            .map(|r| text(&r[0]))
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still running after the stop: {left:?}\n{}",
            one.node.log.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        stopped_at.elapsed() < Duration::from_secs(5),
        "{:?}",
        stopped_at.elapsed()
    );
    for id in &accepted {
        let row = &db
            .rows(
                "SELECT error_kind FROM jobs WHERE id = ?1",
                &[RawValue::Text(id.clone())],
            )
            .unwrap()[0];
        assert_eq!(text(&row[0]), "stopped", "{id}");
    }
    ok(remote(
        &urls[1],
        &ops,
        &[
            "stop",
            "lift",
            &stop["id"].as_i64().unwrap().to_string(),
            "--reason",
            "drill over",
        ],
    ));

    // Long jobs again, so that the server killed below runs some.
    let first = accepted.len();
    running_on_one(&mut accepted);
    let long = accepted[first..].to_vec();

    // Many clients at once over both servers; the first server killed midway.
    let killed_runner = one.runner();
    let (load, killed) = std::thread::scope(|s| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (urls, dev, example) = (&urls, &dev, &example);
                s.spawn(move || {
                    let mut ids = Vec::new();
                    for j in 0..JOBS / CLIENTS {
                        // As a load balancer would: the other server when one is gone.
                        let first = (c + j) % 2;
                        if let Some(id) = submit(&urls[first], dev, example)
                            .or_else(|| submit(&urls[1 - first], dev, example))
                        {
                            ids.push(id);
                        }
                    }
                    ids
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(500));
        one.node.kill("-KILL");
        // What it was running when it died (its leases run a second or two more).
        let killed: Vec<String> = db
            .rows(
                "SELECT id FROM jobs WHERE status = 'running' AND runner = ?1",
                &[RawValue::Text(killed_runner.clone())],
            )
            .unwrap()
            .iter()
            .map(|r| text(&r[0]))
            .collect();
        (
            clients
                .into_iter()
                .flat_map(|c| c.join().unwrap())
                .collect::<Vec<_>>(),
            killed,
        )
    });
    assert_eq!(
        load.len(),
        JOBS,
        "every job is accepted by one server or the other"
    );
    accepted.extend(load);
    assert!(!killed.is_empty(), "the killed server ran no job");

    // The surviving server fails the killed one's jobs once their lease lapses (2 s), and
    // runs every job still queued.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let open: Vec<(String, String)> = db
            .rows(
                "SELECT id, status FROM jobs WHERE status IN ('queued', 'running')",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| (text(&r[0]), text(&r[1])))
            .collect();
        // The surviving server's long jobs are cancelled once the rest is done.
        let others_done = open.iter().all(|(id, _)| long.contains(id));
        if others_done {
            for (id, _) in &open {
                let _ = remote(
                    &urls[1],
                    &ops,
                    &["job", "cancel", id, "--reason", "test over"],
                );
            }
        }
        if open.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "jobs never ended: {open:?}\n{}",
            two.node.log.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for id in &killed {
        let row = &db
            .rows(
                "SELECT status, error_kind, error FROM jobs WHERE id = ?1",
                &[RawValue::Text(id.clone())],
            )
            .unwrap()[0];
        assert_eq!(
            (text(&row[0]), text(&row[1])),
            ("failed".to_string(), "interrupted".to_string()),
            "{id}: {}",
            text(&row[2])
        );
    }
    // Every accepted job is there, ended, and started at most once.
    for id in &accepted {
        let started = db
            .rows(
                "SELECT COUNT(*) FROM audit_events WHERE action = 'job.started' AND subject = ?1",
                &[RawValue::Text(format!("job:{id}"))],
            )
            .unwrap();
        let n = match started[0][0] {
            RawValue::Int(n) => n,
            ref other => panic!("{other:?}"),
        };
        assert!(n <= 1, "job {id} started {n} times");
    }
    // The ledger adds up to what the scenario spent, within its budget.
    let row = &db
        .rows(
            "SELECT s.epsilon_spent, s.epsilon_total,
                    (SELECT COALESCE(SUM(l.epsilon), 0) FROM ledger l WHERE l.scenario_id = s.id),
                    (SELECT COUNT(*) FROM ledger l WHERE l.scenario_id = s.id)
             FROM scenarios s WHERE s.name = 'income-by-district'",
            &[],
        )
        .unwrap()[0];
    let (spent, total, summed) = (real(&row[0]), real(&row[1]), real(&row[2]));
    assert!(
        (spent - summed).abs() < 1e-9,
        "spent {spent}, ledger {summed}"
    );
    assert!(spent <= total * (1.0 + 1e-9), "spent {spent} of {total}");
    // The budget ran out under the load: all of it spent, queries beyond it refused (the
    // module then fails its job).
    let kinds = db
        .rows(
            "SELECT status, COALESCE(error_kind, ''), COUNT(*) FROM jobs GROUP BY status, error_kind ORDER BY 1, 2",
            &[],
        )
        .unwrap();
    let count_of = |status: &str, kind: &str| {
        kinds
            .iter()
            .find(|r| text(&r[0]) == status && text(&r[1]) == kind)
            .map_or(0, |r| match r[2] {
                RawValue::Int(n) => n,
                _ => 0,
            })
    };
    eprintln!(
        "{} jobs accepted; {} killed with their server; ended: {:?}; ε {spent} of {total}",
        accepted.len(),
        killed.len(),
        kinds
            .iter()
            .map(|r| format!("{} {} {:?}", text(&r[0]), text(&r[1]), r[2]))
            .collect::<Vec<_>>()
    );
    let refused = match db
        .rows(
            "SELECT COUNT(*) FROM queries WHERE status = 'refused' AND rule = 'budget_exhausted'",
            &[],
        )
        .unwrap()[0][0]
    {
        RawValue::Int(n) => n,
        ref other => panic!("{other:?}"),
    };
    assert!(refused > 0, "no query was refused for budget");
    assert!(count_of("succeeded", "") > 0, "no job succeeded");
    assert!((spent - total).abs() < 1e-9, "spent {spent} of {total}");
    // Both servers appended to one chain: it verifies.
    ok(sandbox(&data, &["--as", "ops", "audit", "verify"]));
    drop(two);
}
