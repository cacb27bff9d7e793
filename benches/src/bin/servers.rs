//! Several servers of one domain: jobs per second and charges per second through
//! `sandbox serve` processes on loopback, one and two of them, on SQLite's file and on one
//! PostgreSQL store (a throwaway cluster of `scripts/postgres.sh`, on a Unix socket).
//!
//! Every client has a scenario of its own (no shared budget) and submits jobs through the
//! servers in turn, each waited for (`?wait=`): a one-query module (jobs per second), and a
//! module asking twenty queries (each one charge: charges per second). Two servers on
//! SQLite share its file (one writer at a time); on PostgreSQL they share the store.
//!
//! `cargo build --profile bench -p sandbox-benches --bin servers -p sandbox-cli --bin sandbox
//!  && ./target/release/servers [--clients 8] [--jobs 160] [--slots 1]`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sandbox_benches::{DEVELOPER, OPERATOR, PROVIDER, SUPERVISOR};
use sandbox_runtime::identity::{self, Role};
use sandbox_runtime::store::metadata::Create;
use sandbox_runtime::{Domain, tokens};
use sandbox_store::testing::Throwaway;
use serde_json::{Value, json};

struct Args {
    clients: usize,
    jobs: usize,
    slots: usize,
}

fn args() -> Args {
    let mut a = Args {
        clients: 8,
        jobs: 160,
        slots: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value: usize = it.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        match flag.as_str() {
            "--clients" => a.clients = value.max(1),
            "--jobs" => a.jobs = value.max(1),
            "--slots" => a.slots = value.max(1),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// A domain at `dir` (its metadata where `metadata` says) with the residents dataset and a
/// scenario per client; the developer's token and the scenarios' ids.
fn domain(dir: &Path, metadata: &Create, clients: usize) -> anyhow::Result<(String, Vec<i64>)> {
    let root = dir.join("domain");
    let domain = Domain::init_on(
        &root,
        &Default::default(),
        &sandbox_runtime::MasterKey::beside(&root),
        sandbox_runtime::Suite::Standard,
        metadata,
    )?;
    identity::add(&domain, None, OPERATOR, Role::Operator)?;
    identity::add(&domain, Some(OPERATOR), PROVIDER, Role::Provider)?;
    identity::add(&domain, Some(OPERATOR), DEVELOPER, Role::Developer)?;
    identity::add(&domain, Some(OPERATOR), SUPERVISOR, Role::Supervisor)?;
    let csv = dir.join("residents.csv");
    std::fs::write(&csv, sandbox_synth::residents_csv(10_000, 1))?;
    sandbox_runtime::catalog::add(&domain, PROVIDER, &csv, sandbox_cli::demo::RESIDENTS_POLICY)?;
    let scenarios = (0..clients)
        .map(|c| {
            sandbox_benches::approved_scenario(
                &domain,
                &format!("bench-{c}"),
                "residents",
                &["citizen_id", "district", "income"],
                0.0001,
            )
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let dev = tokens::issue(&domain, OPERATOR, DEVELOPER)?.token;
    Ok((dev, scenarios))
}

/// A `sandbox serve` process on a loopback port.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(data: &Path, slots: usize) -> Server {
        let sandbox = std::env::current_exe().unwrap().with_file_name("sandbox");
        let port = sandbox_benches::free_port().unwrap();
        let child = Command::new(sandbox)
            .arg("--data-dir")
            .arg(data)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--jobs",
                &slots.to_string(),
                "--max-queued",
                "100000",
            ])
            .env("SANDBOX_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let agent = agent();
        let deadline = Instant::now() + Duration::from_secs(60);
        while agent
            .get(format!("{url}/healthz"))
            .call()
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
            != 200
        {
            assert!(Instant::now() < deadline, "the server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Server { child, url }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(300)))
        .build()
        .into()
}

/// `jobs` jobs of `module` from `scenarios.len()` clients over `urls` in turn, each waited
/// for; the wall time, and how many succeeded.
fn load(urls: &[String], dev: &str, scenarios: &[i64], module: &[u8], jobs: usize) -> (f64, usize) {
    let module = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, module);
    let started = Instant::now();
    let succeeded: usize = std::thread::scope(|s| {
        let clients: Vec<_> = scenarios
            .iter()
            .enumerate()
            .map(|(c, scenario)| {
                let module = &module;
                s.spawn(move || {
                    let agent = agent();
                    let mut ok = 0;
                    for j in (c..jobs).step_by(scenarios.len()) {
                        let url = &urls[j % urls.len()];
                        let mut r = agent
                            .post(format!("{url}/api/v1/jobs?wait=300"))
                            .header("Authorization", &format!("Bearer {dev}"))
                            .send_json(json!({"scenario": scenario.to_string(), "module": module}))
                            .unwrap();
                        let v: Value = r.body_mut().read_json().unwrap_or(Value::Null);
                        if v["status"] == "succeeded" {
                            ok += 1;
                        }
                    }
                    ok
                })
            })
            .collect();
        clients.into_iter().map(|c| c.join().unwrap()).sum()
    });
    (started.elapsed().as_secs_f64(), succeeded)
}

fn main() -> anyhow::Result<()> {
    let a = args();
    let tmp = tempfile::tempdir_in(std::env::var_os("TMPDIR").unwrap_or_else(|| "/tmp".into()))?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "{} clients (a scenario each), {} jobs per run, {} job slot(s) per server, {cores} cores",
        a.clients, a.jobs, a.slots
    );
    println!("| store | servers | one-query jobs/s | charges/s (20-query jobs) |");
    println!("|---|---|---|---|");
    let one_query = sandbox_benches::asker(1);
    let twenty = sandbox_benches::asker(20);
    for backend in ["SQLite", "PostgreSQL"] {
        for servers in [1, 2] {
            let dir = tmp.path().join(format!("{backend}-{servers}"));
            std::fs::create_dir_all(&dir)?;
            let pg = (backend == "PostgreSQL")
                .then(|| Throwaway::start(&dir.join("pg")))
                .transpose()?;
            let metadata = match &pg {
                Some(pg) => Create::Postgres {
                    owner: pg.owner.clone(),
                    serving: pg.app.clone(),
                },
                None => Create::Sqlite,
            };
            let (dev, scenarios) = domain(&dir, &metadata, a.clients)?;
            let data = dir.join("domain");
            let running: Vec<Server> = (0..servers)
                .map(|_| Server::start(&data, a.slots))
                .collect();
            let urls: Vec<String> = running.iter().map(|s| s.url.clone()).collect();
            // Warm: each server compiles the modules once.
            load(&urls, &dev, &scenarios, &one_query, urls.len() * 2);
            load(&urls, &dev, &scenarios, &twenty, urls.len() * 2);
            let (secs, ok) = load(&urls, &dev, &scenarios, &one_query, a.jobs);
            assert_eq!(ok, a.jobs, "{backend}: one-query jobs failed");
            let jobs_per_s = a.jobs as f64 / secs;
            let charge_jobs = (a.jobs / 4).max(a.clients);
            let (secs, ok) = load(&urls, &dev, &scenarios, &twenty, charge_jobs);
            assert_eq!(ok, charge_jobs, "{backend}: twenty-query jobs failed");
            let charges_per_s = (charge_jobs * 20) as f64 / secs;
            println!("| {backend} | {servers} | {jobs_per_s:.1} | {charges_per_s:.0} |");
            drop(running);
            drop(pg);
        }
    }
    Ok(())
}
