//! The seven queries of the cluster bench three ways in one run: mediated (the whole path:
//! plan, policy pass, charge, noise, at ε = 1 per query), raw DataFusion on the same
//! stored file (no policy, no bounds, no noise), and SmartNoise SQL (from PyPI, in a venv
//! this harness makes under `target/peers-venv`) on the same rows at the same total ε.
//!
//! `cargo run --profile bench -p sandbox-benches --bin peers -- --rows 1000000 --rows 10000000`
//! (`--reps N`: runs of each query each way, 5 by default; `--peer-reps N`: SmartNoise's, 3
//! by default, 0 to leave SmartNoise out; `--python PATH`: the interpreter the venv is
//! made with; `--query SQL`, repeated: only these of the seven).
//!
//! Data: PUMS-like rows resampled (seeded) from `../shared/data/pums/PUMS_pid.csv`, one row
//! per person (SmartNoise's bounds: age 0–100, income 0–500,000).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};

const QUERIES: &[&str] = sandbox_benches::SEVEN_QUERIES;

/// The venv's interpreter, the venv made (and SmartNoise SQL installed) when missing.
fn venv(python: &str) -> anyhow::Result<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/peers-venv");
    let bin = dir.join("bin/python");
    let ready = bin.exists()
        && Command::new(&bin)
            .args(["-c", "import snsql"])
            .status()
            .is_ok_and(|s| s.success());
    if !ready {
        eprintln!("making {} with smartnoise-sql", dir.display());
        let ok = Command::new(python)
            .args(["-m", "venv"])
            .arg(&dir)
            .status()?
            .success()
            && Command::new(&bin)
                .args(["-m", "pip", "install", "--quiet", "smartnoise-sql"])
                .status()?
                .success();
        if !ok {
            bail!("could not make the venv at {}", dir.display());
        }
    }
    Ok(bin)
}

/// SmartNoise's median milliseconds per query on `csv`, by query.
fn smartnoise(
    python: &Path,
    csv: &Path,
    reps: usize,
    queries: &[&str],
) -> anyhow::Result<HashMap<String, f64>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/smartnoise_speed.py");
    let out = Command::new(python)
        .arg(script)
        .arg("--csv")
        .arg(csv)
        .args(["--reps", &reps.to_string()])
        .args(queries)
        .output()?;
    if !out.status.success() {
        bail!(
            "SmartNoise SQL failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut times = HashMap::new();
    for line in String::from_utf8(out.stdout)?.lines() {
        let (ms, sql) = line.split_once('\t').context("a line of the peer")?;
        times.insert(sql.to_string(), ms.parse()?);
    }
    Ok(times)
}

fn main() -> anyhow::Result<()> {
    let mut peer_reps = 3usize;
    let mut python = "python3".to_string();
    let mut only: Vec<String> = Vec::new();
    let args = sandbox_benches::ScaleArgs::parse(5, |flag, rest| {
        match flag {
            "--peer-reps" => peer_reps = rest.next().context("--peer-reps N")?.parse()?,
            "--python" => python = rest.next().context("--python PATH")?,
            "--query" => only.push(rest.next().context("--query SQL")?),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    let (sizes, reps) = (args.sizes.clone(), args.reps);
    let queries: Vec<&str> = QUERIES
        .iter()
        .copied()
        .filter(|q| only.is_empty() || only.iter().any(|o| o == q))
        .collect();
    if queries.is_empty() {
        bail!("--query names none of the seven queries");
    }
    let python = match peer_reps {
        0 => None,
        _ => Some(venv(&python)?),
    };
    let source = args.source()?;
    let rt = tokio::runtime::Runtime::new()?;
    println!(
        "| rows | query | raw DataFusion ms | mediated ms | SmartNoise SQL ms | mediated / raw | SmartNoise / mediated |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|");
    for &rows in &sizes {
        let dir = tempfile::tempdir()?;
        let csv = dir.path().join("pums.csv");
        let (domain, v, seconds) =
            sandbox_benches::pums_like_domain(dir.path(), &source, rows, 1, true)?;
        eprintln!("ingested {} rows in {seconds:.1} s", v.row_count);
        let scenario = sandbox_benches::approved_scenario(
            &domain,
            "bench",
            "pums",
            sandbox_benches::PUMS_COLUMNS,
            1.0,
        )?;
        let raw = sandbox_benches::raw_session(&rt, &domain, "pums", &v)?;
        let started = Instant::now();
        let peer = match &python {
            Some(python) => smartnoise(python, &csv, peer_reps, &queries)?,
            None => HashMap::new(),
        };
        eprintln!(
            "SmartNoise SQL: {:.1} s for {} queries × {peer_reps}",
            started.elapsed().as_secs_f64(),
            queries.len()
        );
        for sql in &queries {
            let (mut r, mut m) = (Vec::new(), Vec::new());
            // A first round unmeasured: files opened, keys unwrapped, plans cached.
            for round in 0..=reps {
                let t = Instant::now();
                rt.block_on(async { raw.sql(sql).await?.collect().await })?;
                let raw_ms = t.elapsed().as_secs_f64() * 1e3;
                let t = Instant::now();
                sandbox_benches::ask(&domain, scenario, sql)?;
                let mediated_ms = t.elapsed().as_secs_f64() * 1e3;
                if round > 0 {
                    r.push(raw_ms);
                    m.push(mediated_ms);
                }
            }
            let (r, m) = (sandbox_benches::median(&r), sandbox_benches::median(&m));
            let s = peer.get(*sql).copied().unwrap_or(f64::NAN);
            println!(
                "| {rows} | `{sql}` | {r:.1} | {m:.1} | {s:.0} | {:.2} | {:.0} |",
                m / r,
                s / m
            );
        }
    }
    Ok(())
}
