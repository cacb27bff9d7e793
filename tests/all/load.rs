//! A load test on loopback, bounded in count and time: many clients at once submit jobs
//! whose modules query the same scenario (more queries than its budget pays for), read
//! jobs and budgets, and are refused when they have no right. Afterwards nothing is lost
//! (every accepted job ended and is recorded, every query is answered or refused exactly
//! once), the budget held (never overspent, the ledger adds up to what was spent), and the
//! audit log verifies.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sandbox_runtime::audit;
use sandbox_server as server;
use sandbox_tests::{DEVELOPER, Fixture, LiveServer, OPERATOR, PROVIDER, count, wat};
use serde_json::{Value, json};

const CLIENTS: usize = 16;
const JOBS_PER_CLIENT: usize = 5;
const QUERIES_PER_JOB: usize = 3;
const EPSILON: f64 = 6.0;
const PER_QUERY: f64 = 0.5;
/// The whole test must end within this (it takes a few seconds).
const DEADLINE: Duration = Duration::from_secs(240);

/// Asks three queries (whatever they answer), then emits a note.
fn module() -> Vec<u8> {
    wat(r#"(module
        (import "sandbox" "query" (func $query (param i32 i32) (result i32)))
        (import "sandbox" "emit" (func $emit (param i32 i32 i32 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (data (i32.const 0) "SELECT COUNT(*) FROM residents")
        (data (i32.const 64) "note")
        (data (i32.const 96) "Counted the residents.")
        (func (export "run") (result i32)
          (drop (call $query (i32.const 0) (i32.const 30)))
          (drop (call $query (i32.const 0) (i32.const 30)))
          (drop (call $query (i32.const 0) (i32.const 30)))
          (drop (call $emit (i32.const 2) (i32.const 64) (i32.const 4) (i32.const 96) (i32.const 22)))
          (i32.const 0)))"#)
}

struct Client {
    agent: ureq::Agent,
    base: String,
}

impl Client {
    fn new(base: &str) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Client {
            agent,
            base: base.to_string(),
        }
    }

    fn call(&self, method: &str, path: &str, token: &str, body: Option<&Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let auth = format!("Bearer {token}");
        let response = match (method, body) {
            ("GET", _) => self.agent.get(&url).header("Authorization", &auth).call(),
            (_, Some(b)) => self
                .agent
                .post(&url)
                .header("Authorization", &auth)
                .send_json(b),
            (_, None) => self
                .agent
                .post(&url)
                .header("Authorization", &auth)
                .send_empty(),
        };
        let mut response = response.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .read_json::<Value>()
            .unwrap_or(Value::Null);
        (status, body)
    }
}

#[test]
fn many_clients_at_once_lose_nothing_overspend_nothing_and_the_audit_verifies() {
    let started = Instant::now();
    let f = Fixture::with_budget(EPSILON, PER_QUERY);
    let scenario = f.scenario.id;
    let server = LiveServer::start(
        f,
        server::Config {
            job_slots: 4,
            max_queued_per_developer: 16,
            ..Default::default()
        },
    );
    let module = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, module());
    let accepted = Arc::new(Mutex::new(Vec::<String>::new()));
    let statuses = Arc::new(Mutex::new(Vec::<(String, u16)>::new()));
    let dev = server.token(DEVELOPER).to_string();
    let ops = server.token(OPERATOR).to_string();
    let provider = server.token(PROVIDER).to_string();
    std::thread::scope(|s| {
        for i in 0..CLIENTS {
            let (accepted, statuses) = (accepted.clone(), statuses.clone());
            let (dev, ops, provider, module) = (&dev, &ops, &provider, &module);
            let base = server.url.clone();
            s.spawn(move || {
                let c = Client::new(&base);
                let record = |what: &str, status: u16| {
                    statuses.lock().unwrap().push((what.to_string(), status));
                };
                let mut submitted = 0;
                while submitted < JOBS_PER_CLIENT {
                    assert!(started.elapsed() < DEADLINE, "client {i} ran out of time");
                    let (status, body) = c.call(
                        "POST",
                        "/api/v1/jobs",
                        dev,
                        Some(&json!({"scenario": scenario.to_string(), "module": module})),
                    );
                    record("submit", status);
                    match status {
                        202 | 201 => {
                            accepted
                                .lock()
                                .unwrap()
                                .push(body["id"].as_str().unwrap().to_string());
                            submitted += 1;
                        }
                        // The queue is full for this developer: back off and try again.
                        429 => std::thread::sleep(Duration::from_millis(50)),
                        other => panic!("submit: {other} {body}"),
                    }
                    // Readers at the same time: the budget, the job list, someone refused.
                    let (status, b) = c.call(
                        "GET",
                        &format!("/api/v1/scenarios/{scenario}/budget"),
                        ops,
                        None,
                    );
                    record("budget", status);
                    assert!(
                        b["epsilon_spent"].as_f64().unwrap_or(0.0) <= EPSILON * (1.0 + 1e-9),
                        "{b}"
                    );
                    let (status, _) = c.call("GET", "/api/v1/jobs?limit=5", dev, None);
                    record("list", status);
                    let (status, _) = c.call("GET", "/api/v1/outputs", provider, None);
                    record("refused", status);
                }
            });
        }
    });
    let accepted = accepted.lock().unwrap().clone();
    let refused_calls = statuses
        .lock()
        .unwrap()
        .iter()
        .filter(|(what, _)| what == "refused")
        .count() as i64;
    assert_eq!(accepted.len(), CLIENTS * JOBS_PER_CLIENT);
    // Every answer was one the API promises; no server error.
    for (what, status) in statuses.lock().unwrap().iter() {
        let expected: &[u16] = match what.as_str() {
            "submit" => &[201, 202, 429],
            "refused" => &[403],
            _ => &[200],
        };
        assert!(expected.contains(status), "{what}: {status}");
    }
    // Every accepted job ends.
    let c = Client::new(&server.url);
    wait_for_jobs(&c, &ops, started);
    let conn = sandbox_tests::raw(server.domain());
    // Nothing lost: each accepted job is recorded once and succeeded, its queries all
    // recorded, each answered or refused once.
    all_succeeded(&conn, &accepted, QUERIES_PER_JOB);
    let jobs = accepted.len() as i64;
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM jobs"), jobs);
    assert_eq!(
        count(&conn, "SELECT COUNT(*) FROM queries"),
        jobs * QUERIES_PER_JOB as i64
    );
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM outputs"), jobs);
    // The budget held: exactly what it pays for was answered, the rest refused for budget,
    // and the ledger adds up to what was spent.
    let answered = count(
        &conn,
        "SELECT COUNT(*) FROM queries WHERE status = 'answered'",
    );
    let most = (EPSILON / PER_QUERY).round() as i64;
    assert_eq!(answered, most, "the budget pays for {most} queries");
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM queries WHERE status = 'refused' AND rule = 'budget_exhausted'"
        ),
        jobs * QUERIES_PER_JOB as i64 - answered
    );
    budget_held(&conn, scenario, EPSILON);
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM ledger"), answered);
    // Every step is in the log, which verifies.
    for (action, n) in [
        ("job.queued", jobs),
        ("job.started", jobs),
        ("job.succeeded", jobs),
        ("query.charged", answered),
    ] {
        assert_eq!(
            count(
                &conn,
                &format!("SELECT COUNT(*) FROM audit_events WHERE action = '{action}'")
            ),
            n,
            "{action}"
        );
    }
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM audit_events WHERE action = 'api.refused'"
        ),
        refused_calls
    );
    let verified = audit::verify_custodian(server.domain()).unwrap();
    assert!(verified.events > 3 * jobs);
}

/// Each of `jobs` succeeded, having asked `queries` queries.
fn all_succeeded(conn: &sandbox_tests::Raw, jobs: &[String], queries: usize) {
    for id in jobs {
        let (status, asked): (String, i64) = conn
            .query_row(
                "SELECT status, queries FROM jobs WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(
            (status.as_str(), asked),
            ("succeeded", queries as i64),
            "{id}"
        );
    }
}

/// Waits until no job is queued or running.
fn wait_for_jobs(c: &Client, token: &str, started: Instant) {
    loop {
        assert!(started.elapsed() < DEADLINE, "jobs did not end in time");
        let (_, queued) = c.call("GET", "/api/v1/jobs?status=queued", token, None);
        let (_, running) = c.call("GET", "/api/v1/jobs?status=running", token, None);
        if queued.as_array().is_some_and(Vec::is_empty)
            && running.as_array().is_some_and(Vec::is_empty)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The scenario's budget held: never spent past `epsilon`, and what it spent is what its
/// ledger adds up to.
fn budget_held(conn: &sandbox_tests::Raw, scenario: i64, epsilon: f64) {
    let (spent, ledger): (f64, f64) = conn
        .query_row(
            "SELECT s.epsilon_spent, (SELECT SUM(epsilon) FROM ledger WHERE scenario_id = s.id) FROM scenarios s WHERE s.id = ?1",
            [scenario],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(spent <= epsilon * (1.0 + 1e-9), "spent {spent}");
    assert!(
        (spent - ledger).abs() < 1e-9,
        "spent {spent}, ledger {ledger}"
    );
}

/// Asks `n` queries (whatever they answer), each at the scenario's ε per query.
fn asker(n: usize) -> Vec<u8> {
    let calls = "(drop (call $query (i32.const 0) (i32.const 30)))\n".repeat(n);
    wat(&format!(
        r#"(module
        (import "sandbox" "query" (func $query (param i32 i32) (result i32)))
        (memory (export "memory") 1)
        (data (i32.const 0) "SELECT COUNT(*) FROM residents")
        (func (export "run") (result i32)
          {calls}
          (i32.const 0)))"#
    ))
}

/// The budget race: more than 1,000 queries at once, from jobs run by the server and from
/// clients of the mediator beside it, against a budget with five queries left. Exactly
/// five are answered, every other is refused for budget (no other failure), the total
/// charged stays within the budget and equals the ledger, and the audit log verifies.
#[test]
fn a_thousand_queries_race_for_the_last_of_a_budget() {
    const JOBS: usize = 40;
    const PER_JOB: usize = 10;
    const CLIENT_THREADS: usize = 16;
    const PER_CLIENT: usize = 40;
    let started = Instant::now();
    let f = Fixture::with_budget(1.0, 0.01);
    let scenario = f.scenario.id;
    // Nearly spent: 95 of the 100 queries the budget pays for.
    for _ in 0..95 {
        f.ask("SELECT COUNT(*) FROM residents").unwrap();
    }
    let domain = f.domain.clone();
    let server = LiveServer::start(
        f,
        server::Config {
            job_slots: 4,
            max_queued_per_developer: JOBS as i64,
            ..Default::default()
        },
    );
    let module = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, asker(PER_JOB));
    let dev = server.token(DEVELOPER).to_string();
    let c = Client::new(&server.url);
    let mut jobs = Vec::new();
    for _ in 0..JOBS {
        let (status, body) = c.call(
            "POST",
            "/api/v1/jobs",
            &dev,
            Some(&json!({"scenario": scenario.to_string(), "module": module})),
        );
        assert!(matches!(status, 201 | 202), "{status} {body}");
        jobs.push(body["id"].as_str().unwrap().to_string());
    }
    // Clients of the mediator at the same time as the jobs run.
    let outcomes: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..CLIENT_THREADS)
            .map(|_| {
                let domain = domain.clone();
                s.spawn(move || {
                    (0..PER_CLIENT)
                        .map(|_| {
                            match sandbox_runtime::mediate::answer(
                                &domain,
                                &sandbox_runtime::mediate::QueryRequest {
                                    scenario_id: scenario,
                                    job_id: None,
                                    actor: DEVELOPER,
                                    sql: "SELECT COUNT(*) FROM residents",
                                    epsilon: None,
                                },
                            ) {
                                Ok(_) => "answered".to_string(),
                                Err(sandbox_runtime::Error::Refused(r)) => r.rule.to_string(),
                                Err(e) => format!("failed: {e}"),
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    for o in &outcomes {
        assert!(o == "answered" || o == "budget_exhausted", "{o}");
    }
    wait_for_jobs(&c, &dev, started);
    let conn = sandbox_tests::raw(server.domain());
    let raced = (JOBS * PER_JOB + CLIENT_THREADS * PER_CLIENT) as i64;
    assert!(raced > 1000);
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM queries"), 95 + raced);
    all_succeeded(&conn, &jobs, PER_JOB);
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM queries WHERE status = 'answered'"
        ),
        100,
        "the budget pays for 100 queries"
    );
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM queries WHERE status = 'refused' AND rule = 'budget_exhausted'"
        ),
        raced - 5,
        "every other query is refused for budget"
    );
    budget_held(&conn, scenario, 1.0);
    audit::verify_custodian(server.domain()).unwrap();
}
