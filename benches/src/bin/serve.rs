//! The server on loopback: what a call costs over HTTP, and how many jobs the queue runs.
//!
//! - token check: Argon2 verification of an API token, against a token already verified
//!   (the server's cache);
//! - `GET /api/v1/whoami` latency from one client, and requests per second from many;
//! - jobs: the same trivial module and a one-query module submitted `--jobs` at a time
//!   through `POST /jobs` and through `jobs::submit` directly (no HTTP, no queue), as
//!   jobs per second: the ratio is what HTTP and the durable queue cost.
//!
//! `cargo build --profile bench -p sandbox-benches --bin serve && ./target/release/serve`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use sandbox_benches::{DEVELOPER, OPERATOR, percentile};
use sandbox_core::job::LimitRequest;
use sandbox_runtime::jobs::{self, Submission};
use sandbox_runtime::tokens;
use sandbox_server as server;
use serde_json::{Value, json};

const TEXT: &str = r#"(module
  (import "sandbox" "emit" (func $emit (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "note")
  (data (i32.const 16) "A note.")
  (func (export "run") (result i32)
    (call $emit (i32.const 2) (i32.const 0) (i32.const 4) (i32.const 16) (i32.const 7))))"#;

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

fn get(a: &ureq::Agent, url: &str, token: &str) -> u16 {
    let mut r = a
        .get(url)
        .header("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap();
    let _ = r.body_mut().read_to_vec();
    r.status().as_u16()
}

fn post(a: &ureq::Agent, url: &str, token: &str, body: &Value) -> (u16, Value) {
    let mut r = a
        .post(url)
        .header("Authorization", &format!("Bearer {token}"))
        .send_json(body)
        .unwrap();
    let status = r.status().as_u16();
    (status, r.body_mut().read_json().unwrap_or(Value::Null))
}

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let domain = sandbox_benches::domain_with_principals(dir.path())?;
    let csv = dir.path().join("residents.csv");
    std::fs::write(&csv, sandbox_synth::residents_csv(10_000, 1))?;
    sandbox_runtime::catalog::add(
        &domain,
        sandbox_benches::PROVIDER,
        &csv,
        sandbox_cli::demo::RESIDENTS_POLICY,
    )?;
    let scenario = sandbox_benches::approved_scenario(
        &domain,
        "serve-bench",
        "residents",
        &["citizen_id", "district", "income"],
        0.0001,
    )?;
    let slots = 2;
    let dev = tokens::issue(&domain, OPERATOR, DEVELOPER)?.token;

    token_check(&domain, &dev)?;

    // The server on a loopback port, on a thread of its own.
    let mut server = server::Background::start(
        &domain,
        std::net::TcpListener::bind("127.0.0.1:0")?,
        server::Config {
            job_slots: slots,
            max_queued_per_developer: 100_000,
            ..Default::default()
        },
    )?;
    let base = server.url().to_string();
    whoami(&base, &dev);

    // Jobs through the server's queue, against jobs::submit directly with as many threads
    // as the server has slots.
    for (label, module) in [
        ("trivial module", wat::parse_str(TEXT)?),
        ("one-query module", sandbox_benches::asker(1)),
    ] {
        let bench = JobBench {
            domain: &domain,
            base: &base,
            dev: &dev,
            scenario,
            slots,
        };
        bench.run(label, &module)?;
    }
    server.stop()?;
    Ok(())
}

/// The token check itself: Argon2 against an already verified token.
fn token_check(domain: &sandbox_runtime::Domain, dev: &str) -> anyhow::Result<()> {
    // The token check itself.
    let n = 20;
    let mut argon = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        tokens::authenticate(domain, dev)?;
        argon.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let cache = tokens::VerifiedCache::default();
    tokens::authenticate_with(domain, dev, Some(&cache))?;
    let mut cached = Vec::new();
    for _ in 0..2_000 {
        let t = Instant::now();
        tokens::authenticate_with(domain, dev, Some(&cache))?;
        cached.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "token check: Argon2 median {:.2} ms; already verified median {:.3} ms",
        percentile(&argon, 0.5),
        percentile(&cached, 0.5)
    );
    Ok(())
}

/// `GET /api/v1/whoami`: latency from one client, throughput from 16.
fn whoami(base: &str, dev: &str) {
    let a = agent();
    let whoami = format!("{base}/api/v1/whoami");
    for _ in 0..200 {
        assert_eq!(get(&a, &whoami, dev), 200);
    }
    let mut lat = Vec::new();
    for _ in 0..2_000 {
        let t = Instant::now();
        get(&a, &whoami, dev);
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "GET /api/v1/whoami, one client: median {:.3} ms, p99 {:.3} ms",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99)
    );
    let clients = 16;
    let per = 500;
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..clients {
            let (whoami, dev) = (&whoami, dev);
            s.spawn(move || {
                let a = agent();
                for _ in 0..per {
                    assert_eq!(get(&a, whoami, dev), 200);
                }
            });
        }
    });
    let secs = t.elapsed().as_secs_f64();
    println!(
        "GET /api/v1/whoami, {clients} clients × {per}: {:.0} requests/s",
        (clients * per) as f64 / secs
    );
}

/// Jobs of one module through the server's queue and through `jobs::submit` directly.
struct JobBench<'a> {
    domain: &'a sandbox_runtime::Domain,
    base: &'a str,
    dev: &'a str,
    scenario: i64,
    slots: usize,
}

impl JobBench<'_> {
    fn run(&self, label: &str, module: &[u8]) -> anyhow::Result<()> {
        let (domain, base, dev, scenario, slots) =
            (self.domain, self.base, self.dev, self.scenario, self.slots);
        let count = 200;
        let a = agent();
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, module);
        // Warm: the module compiled and cached in both paths.
        jobs::submit(
            domain,
            DEVELOPER,
            &Submission {
                scenario: "serve-bench",
                module,
                params_json: "{}",
                limits: LimitRequest::default(),
                resubmits: None,
            },
        )?;
        let t = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..slots {
                let (domain, module) = (domain, module);
                s.spawn(move || {
                    for _ in 0..count / slots {
                        let r = jobs::submit(
                            domain,
                            DEVELOPER,
                            &Submission {
                                scenario: "serve-bench",
                                module,
                                params_json: "{}",
                                limits: LimitRequest::default(),
                                resubmits: None,
                            },
                        )
                        .unwrap();
                        assert_eq!(r.status, "succeeded");
                    }
                });
            }
        });
        let direct = count as f64 / t.elapsed().as_secs_f64();
        let jobs_url = format!("{base}/api/v1/jobs");
        let t = Instant::now();
        let mut ids = Vec::new();
        for _ in 0..count {
            let (status, j) = post(
                &a,
                &jobs_url,
                dev,
                &json!({"scenario": scenario.to_string(), "module": b64}),
            );
            assert_eq!(status, 202, "{j}");
            ids.push(j["id"].as_str().unwrap().to_string());
        }
        let submitted = t.elapsed().as_secs_f64();
        let q = format!("{base}/api/v1/jobs?status=queued&limit=1");
        let r = format!("{base}/api/v1/jobs?status=running&limit=1");
        loop {
            let busy = |url: &str| {
                let mut resp = a
                    .get(url)
                    .header("Authorization", &format!("Bearer {dev}"))
                    .call()
                    .unwrap();
                let v: Value = resp.body_mut().read_json().unwrap();
                v.as_array().is_some_and(|l| !l.is_empty())
            };
            if !busy(&q) && !busy(&r) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let served_rate = count as f64 / t.elapsed().as_secs_f64();
        let mut ok = 0;
        for id in &ids {
            if jobs::job(domain, DEVELOPER, id)?.status == "succeeded" {
                ok += 1;
            }
        }
        assert_eq!(ok, count);
        println!(
            "{label}, {count} jobs, {slots} at a time: direct {direct:.0} jobs/s; through POST /jobs and the queue {served_rate:.0} jobs/s (ratio {:.2}); {count} submissions answered in {:.0} ms",
            direct / served_rate,
            submitted * 1e3
        );
        Ok(())
    }
}
