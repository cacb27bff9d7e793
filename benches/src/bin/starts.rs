//! Job start latency of the WASM host: instantiate a cached module (pooling allocator),
//! make its first host call (`params`) and tear the instance down; then starts per second
//! with one thread per core. The module is compiled once (`InstancePre` cache), as for a
//! repeat job.
//!
//! `cargo build --profile bench -p sandbox-benches --bin starts && ./target/release/starts`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use sandbox_core::port::QueryPort;
use sandbox_runtime::wasm::{JobContext, JobLimits};

const MODULE: &str = r#"(module
  (import "sandbox" "params" (func $params (result i32)))
  (memory (export "memory") 1)
  (func (export "run") (result i32)
    (call $params)))"#;

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let domain = sandbox_benches::domain_with_principals(dir.path())?;
    let bytes = wat::parse_str(MODULE)?;
    let host = domain.host();
    let pre = host.prepare("starts-bench", &bytes)?;
    let limits = JobLimits::default();
    let port = domain.mediator().clone() as std::sync::Arc<dyn QueryPort>;
    let ctx = |i: usize| JobContext {
        port: port.clone(),
        domain: domain.layout().root().to_path_buf(),
        scenario_id: 1,
        job_id: format!("job-{i}"),
        actor: sandbox_benches::DEVELOPER.into(),
        params_json: "{}".into(),
    };
    let run = |i: usize| {
        let (outcome, _) = host.run(&pre, ctx(i), &limits);
        outcome.expect("the module runs");
    };
    for i in 0..1_000 {
        run(i);
    }
    let n = 20_000;
    let mut latencies = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        run(i);
        latencies.push(t.elapsed().as_secs_f64() * 1e6);
    }
    println!(
        "pooling allocator: {}",
        if host.pooling() {
            "on"
        } else {
            "off (fallback)"
        }
    );
    println!(
        "start + first host call, one thread, {n} starts: median {:.1} µs, p99 {:.1} µs",
        sandbox_benches::percentile(&latencies, 0.5),
        sandbox_benches::percentile(&latencies, 0.99)
    );
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let per_thread = 20_000;
    let t = Instant::now();
    std::thread::scope(|s| {
        for th in 0..threads {
            s.spawn(move || {
                for i in 0..per_thread {
                    run(th * per_thread + i);
                }
            });
        }
    });
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{threads} threads × {per_thread} starts in {secs:.2} s: {:.0} starts/s",
        (threads * per_thread) as f64 / secs
    );
    Ok(())
}
