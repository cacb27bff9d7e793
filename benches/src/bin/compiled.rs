//! A module compiled once is reused across processes (wasmtime's cache of compiled
//! modules, in the data directory). Measures, each in a new process:
//! - the host's preparation of the example module `income_by_district` (validate, compile
//!   or load, link): first with an empty cache, then again, then with the cache off;
//! - a whole local `sandbox job submit` of it, the same three ways.
//!
//! `cargo build --profile bench -p sandbox-benches --bin compiled -p sandbox-cli --bin sandbox
//! && bash scripts/build-guests.sh && ./target/release/compiled`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const MODULE: &str = "income_by_district";

fn module_path() -> PathBuf {
    sandbox_benches::examples()
        .join("modules/target/wasm32-unknown-unknown/release")
        .join(format!("{MODULE}.wasm"))
}

/// In a child process: opens the domain and times the module's preparation, in ms.
fn child(dir: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(module_path())?;
    let domain = sandbox_runtime::Domain::open(dir)?;
    let sha = sandbox_core::sha256_hex(&bytes);
    let t = Instant::now();
    domain.host().prepare(&sha, &bytes)?;
    println!("{:.1}", t.elapsed().as_secs_f64() * 1e3);
    Ok(())
}

fn prepare_in_new_process(dir: &Path, cache: Option<&Path>) -> anyhow::Result<f64> {
    let mut c = Command::new(std::env::current_exe()?);
    c.arg("child").arg(dir);
    match cache {
        Some(cache) => c.env("SANDBOX_COMPILED_CACHE", cache),
        None => c.env("SANDBOX_COMPILED_CACHE", "off"),
    };
    let out = c.output()?;
    anyhow::ensure!(
        out.status.success(),
        "child: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?.trim().parse()?)
}

fn submit_in_new_process(sandbox: &Path, dir: &Path, cache: Option<&Path>) -> anyhow::Result<f64> {
    let mut c = Command::new(sandbox);
    c.arg("--data-dir")
        .arg(dir)
        .args(["--as", "dev-zhao", "--json", "job", "submit"])
        .args(["--scenario", "income-by-district", "--module"])
        .arg(module_path());
    match cache {
        Some(cache) => c.env("SANDBOX_COMPILED_CACHE", cache),
        None => c.env("SANDBOX_COMPILED_CACHE", "off"),
    };
    let t = Instant::now();
    let out = c.output()?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    // The demo spent the scenario's budget: the job runs (its module loaded or compiled)
    // and ends refused at its first query, which is what is timed here.
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| anyhow::anyhow!("submit: {e}: {}", String::from_utf8_lossy(&out.stderr)))?;
    anyhow::ensure!(report["id"].is_string(), "submit: no job: {report}");
    Ok(ms)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        return child(Path::new(&args[2]));
    }
    let sandbox = std::env::current_exe()?
        .parent()
        .expect("a folder")
        .join("sandbox");
    anyhow::ensure!(
        sandbox.exists(),
        "build the CLI too: cargo build --profile bench -p sandbox-cli --bin sandbox"
    );
    let tmp = tempfile::tempdir()?;
    // The demo's domain: principals, the residents, the income scenario (approved).
    let dir = tmp.path().join("domain");
    let status = Command::new(&sandbox)
        .args(["demo", "--keep"])
        .arg(&dir)
        .arg("--module")
        .arg(module_path())
        .output()?;
    anyhow::ensure!(
        status.status.success(),
        "demo: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    // A cache of its own, empty to begin with (the demo compiled the module into the
    // user's).
    let compiled = tmp.path().join("compiled");

    println!(
        "module: {} ({} bytes)",
        MODULE,
        std::fs::metadata(module_path())?.len()
    );
    let on = Some(compiled.as_path());
    let first = prepare_in_new_process(&dir, on)?;
    let second = prepare_in_new_process(&dir, on)?;
    let third = prepare_in_new_process(&dir, on)?;
    let off = prepare_in_new_process(&dir, None)?;
    println!("prepare, new process, empty cache:   {first:8.1} ms");
    println!("prepare, new process, cached:        {second:8.1} ms, then {third:.1} ms");
    println!("prepare, new process, cache off:     {off:8.1} ms");
    let _ = std::fs::remove_dir_all(&compiled);
    let first = submit_in_new_process(&sandbox, &dir, on)?;
    let second = submit_in_new_process(&sandbox, &dir, on)?;
    let off = submit_in_new_process(&sandbox, &dir, None)?;
    println!("job submit, new process, empty cache: {first:8.1} ms");
    println!("job submit, new process, cached:      {second:8.1} ms");
    println!("job submit, new process, cache off:   {off:8.1} ms");
    Ok(())
}
