//! Crash campaign: `sandbox serve` runs jobs while clients submit more and reviewers
//! approve and release their outputs, and is killed with SIGKILL at random moments, then
//! started again, over and over. Afterwards: the audit log verifies, every answer a module
//! received was charged, no product exists without an operator's and then a supervisor's
//! approval, no accepted job is lost or started twice, and every staged output is whole.
//!
//! `SANDBOX_CRASH_KILLS` sets the number of kills (20 in the test suite; the large run in
//! ASSURANCE.md used 200).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    Served, example_domain, example_module, metadata_db, ok, remote, sandbox, submit_example,
};

/// One client until `stop`: submits jobs, and approves at both tiers what is ready.
fn client(
    url: &str,
    [ops, dev, sup, _]: &[String; 4],
    stop: &AtomicBool,
    accepted: &Mutex<BTreeSet<String>>,
) {
    while !stop.load(Ordering::Relaxed) {
        let out = submit_example(url, dev, &[]);
        if !out.status.success() && std::env::var_os("SANDBOX_CRASH_DEBUG").is_some() {
            eprintln!("submit: {}", String::from_utf8_lossy(&out.stderr));
        }
        if out.status.success()
            && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&out.stdout)
            && let Some(id) = v["id"].as_str()
        {
            accepted.lock().unwrap().insert(id.to_string());
        }
        let listed = remote(url, ops, &["--json", "output", "list"]);
        let Ok(outputs) = serde_json::from_slice::<serde_json::Value>(&listed.stdout) else {
            continue;
        };
        for o in outputs.as_array().into_iter().flatten() {
            let id = o["id"].as_str().unwrap_or_default();
            match o["status"].as_str() {
                Some("checked") | Some("flagged") => {
                    remote(url, ops, &["output", "approve", id, "--reason", "reviewed"]);
                }
                Some("operator_approved") => {
                    remote(url, sup, &["output", "approve", id, "--reason", "reviewed"]);
                }
                _ => {}
            }
        }
    }
}

fn kill9(served: Served) {
    std::process::Command::new("kill")
        .args(["-KILL", &served.child.id().to_string()])
        .status()
        .unwrap();
    let mut child = served.child;
    child.wait().unwrap();
}

#[test]
fn sigkill_at_random_moments_loses_nothing_and_overspends_nothing() {
    let kills: u32 = std::env::var("SANDBOX_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let tmp = tempfile::tempdir().unwrap();
    let (data, tokens) = example_domain(tmp.path(), 500, 5);
    example_module();
    let accepted = Arc::new(Mutex::new(BTreeSet::new()));
    // A small deterministic generator for the moments of the kills.
    let mut seed: u64 = 0x5eed;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let started = Instant::now();
    for _ in 0..kills {
        let served = Served::start(&data);
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| client(&served.url, &tokens, &stop, &accepted));
            }
            // Long enough for some submissions (a module is validated and compiled)
            // and some jobs to run; short enough to land anywhere in them.
            std::thread::sleep(Duration::from_millis(1000 + next() % 6000));
            stop.store(true, Ordering::Relaxed);
            // Killed while the clients may still be mid-call.
            std::process::Command::new("kill")
                .args(["-KILL", &served.child.id().to_string()])
                .status()
                .unwrap();
        });
        kill9(served);
    }
    // Started once more: what was queued runs, what was running when a kill came is
    // ended by recovery.
    let served = Served::start(&data);
    let [ops, ..] = &tokens;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let queued = ok(remote(
            &served.url,
            ops,
            &["--json", "job", "list", "--status", "queued"],
        ));
        let running = ok(remote(
            &served.url,
            ops,
            &["--json", "job", "list", "--status", "running"],
        ));
        if queued.trim() == "[]" && running.trim() == "[]" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "jobs did not end: {queued} {running}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, _) = served.stop();
    assert!(status.success());
    let accepted = accepted.lock().unwrap().clone();
    eprintln!(
        "{kills} kills in {:.0} s, {} jobs accepted",
        started.elapsed().as_secs_f64(),
        accepted.len()
    );

    // The audit log verifies.
    assert!(ok(sandbox(&data, &["audit", "verify"])).contains("audit log verified"));
    let db = metadata_db(&data);
    let count = |sql: &str| -> i64 { db.query_row(sql, [], |r| r.get(0)).unwrap() };
    // Every answer a module received was charged first.
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM queries q WHERE q.status = 'answered'
             AND NOT EXISTS (SELECT 1 FROM ledger l WHERE l.query_id = q.id)"
        ),
        0,
        "an answer without its charge"
    );
    // The budget equals the ledger.
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM scenarios s WHERE abs(s.epsilon_spent -
             (SELECT COALESCE(SUM(epsilon), 0) FROM ledger l WHERE l.scenario_id = s.id)) > 1e-9"
        ),
        0
    );
    // No accepted job is lost; each ended; none started twice.
    let jobs: BTreeMap<String, String> = db
        .prepare("SELECT id, status FROM jobs")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for id in &accepted {
        let status = jobs.get(id).unwrap_or_else(|| panic!("job {id} lost"));
        assert!(
            ["succeeded", "failed", "cancelled"].contains(&status.as_str()),
            "{id}: {status}"
        );
    }
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM (SELECT subject FROM audit_events WHERE action = 'job.started'
             GROUP BY subject HAVING COUNT(*) > 1)"
        ),
        0,
        "a job started twice"
    );
    // No product without an operator's and then a supervisor's approval, by two people.
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM products p WHERE NOT EXISTS (
                SELECT 1 FROM reviews a JOIN reviews b ON a.output_id = b.output_id
                WHERE a.output_id = p.output_id AND a.tier = 'operator' AND b.tier = 'supervisor'
                  AND a.decision = 'approve' AND b.decision = 'approve'
                  AND a.reviewer <> b.reviewer AND a.id < b.id)"
        ),
        0,
        "a product without both approvals"
    );
    eprintln!(
        "jobs: {} succeeded, {} failed ({} interrupted by a kill), {} cancelled; {} outputs, {} products; {} queries answered, {} refused",
        count("SELECT COUNT(*) FROM jobs WHERE status = 'succeeded'"),
        count("SELECT COUNT(*) FROM jobs WHERE status = 'failed'"),
        count("SELECT COUNT(*) FROM jobs WHERE error_kind = 'interrupted'"),
        count("SELECT COUNT(*) FROM jobs WHERE status = 'cancelled'"),
        count("SELECT COUNT(*) FROM outputs"),
        count("SELECT COUNT(*) FROM products"),
        count("SELECT COUNT(*) FROM queries WHERE status = 'answered'"),
        count("SELECT COUNT(*) FROM queries WHERE status = 'refused'"),
    );
    // Every staged output is whole: its file is there with the recorded hash.
    let outputs: Vec<(String, String, String)> = db
        .prepare("SELECT job_id, file_name, sha256 FROM outputs")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (job, file, sha) in &outputs {
        let bytes = std::fs::read(data.join("staging").join(job).join(file))
            .unwrap_or_else(|e| panic!("{job}/{file}: {e}"));
        assert_eq!(&sandbox_runtime_sha(&bytes), sha, "{job}/{file}");
    }
    // And nothing half-staged beside them: every staging folder is a recorded job's.
    for dir in std::fs::read_dir(data.join("staging")).unwrap() {
        let name = dir.unwrap().file_name().to_string_lossy().to_string();
        assert!(jobs.contains_key(&name), "a stray staging folder: {name}");
    }
}

fn sandbox_runtime_sha(bytes: &[u8]) -> String {
    sandbox_runtime::sha256_hex(bytes)
}
