//! The mediator's queries run locally and on a DataFusion Ballista cluster of one and of
//! two executors, and of two executors under mutual TLS (scheduler and executors started
//! in this process as `sandbox scheduler` and `sandbox executor` start them, on
//! loopback), at scale.
//!
//! `cargo run --profile bench -p sandbox-benches --bin cluster -- --rows 1000000 --rows 10000000`
//! (`--vcores N`: tasks per executor, 1 by default; `--reps N`: 5 by default).
//!
//! Data: PUMS-like rows resampled (seeded) from `../shared/data/pums/PUMS_pid.csv`, one
//! row per person. The seven queries of the comparison (COUNT, SUM, AVG, grouped counts,
//! grouped averages, two keys, a filter) are asked through the whole mediated path (plan,
//! policy pass, charge, noise), each `--reps` times each way in turn; the table gives
//! medians and the ratios local / one executor and one executor / two.

use std::time::Instant;

use anyhow::Context;
use sandbox_runtime::{Domain, Engine};

const QUERIES: &[&str] = sandbox_benches::SEVEN_QUERIES;

fn setup(
    source: &[sandbox_synth::PumsRow],
    rows: usize,
) -> anyhow::Result<(tempfile::TempDir, Domain, i64)> {
    let dir = tempfile::tempdir()?;
    let (domain, v, seconds) =
        sandbox_benches::pums_like_domain(dir.path(), source, rows, 1, false)?;
    eprintln!("ingested {} rows in {seconds:.1} s", v.row_count);
    let scenario_id = sandbox_benches::approved_scenario(
        &domain,
        "bench",
        "pums",
        sandbox_benches::PUMS_COLUMNS,
        0.0001,
    )?;
    Ok((dir, domain, scenario_id))
}

/// A cluster CA's node certificate for 127.0.0.1, as every node of the TLS cluster holds
/// one (the same for all: the bench measures the TLS, not the PKI).
fn node_tls() -> anyhow::Result<sandbox_runtime::NodeTls> {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
    let issuer = rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate()?)?;
    let mut node = rcgen::CertificateParams::new(vec!["localhost".to_string()])?;
    node.subject_alt_names.push(rcgen::SanType::IpAddress(
        std::net::Ipv4Addr::LOCALHOST.into(),
    ));
    node.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = rcgen::KeyPair::generate()?;
    let cert = node.signed_by(&key, &issuer)?;
    Ok(sandbox_runtime::NodeTls::from_pem(
        issuer.pem().into_bytes(),
        cert.pem().into_bytes(),
        key.serialize_pem().into_bytes(),
    )?)
}

fn main() -> anyhow::Result<()> {
    let mut vcores = 1usize;
    let args = sandbox_benches::ScaleArgs::parse(5, |flag, rest| {
        if flag != "--vcores" {
            return Ok(false);
        }
        vcores = rest.next().context("--vcores N")?.parse()?;
        Ok(true)
    })?;
    let (sizes, reps) = (args.sizes.clone(), args.reps);
    let source = args.source()?;
    let rt = tokio::runtime::Runtime::new()?;
    println!(
        "| rows | query | local ms | 1 executor ms | 2 executors ms | 2, TLS ms | local / 1 | 1 / 2 | TLS / plain |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    let tls = node_tls()?;
    for &rows in &sizes {
        let (dir, domain, scenario) = setup(&source, rows)?;
        let one =
            sandbox_benches::start_cluster(&rt, &domain, (1, vcores, None), None, dir.path())?;
        let two =
            sandbox_benches::start_cluster(&rt, &domain, (2, vcores, None), None, dir.path())?;
        let two_tls = sandbox_benches::start_cluster(
            &rt,
            &domain,
            (2, vcores, None),
            Some(tls.clone()),
            dir.path(),
        )?;
        let engines = [
            Engine::Local,
            Engine::Cluster(one),
            Engine::Cluster(two),
            Engine::Cluster(two_tls),
        ];
        for sql in QUERIES {
            let mut times = vec![Vec::new(); engines.len()];
            // A first round unmeasured: files opened, keys unwrapped, plans cached.
            for round in 0..=reps {
                for (i, engine) in engines.iter().enumerate() {
                    domain.use_engine(engine.clone())?;
                    let t = Instant::now();
                    sandbox_benches::ask(&domain, scenario, sql)?;
                    if round > 0 {
                        times[i].push(t.elapsed().as_secs_f64() * 1e3);
                    }
                }
            }
            let m: Vec<f64> = times.iter().map(|t| sandbox_benches::median(t)).collect();
            println!(
                "| {rows} | `{sql}` | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} | {:.2} |",
                m[0],
                m[1],
                m[2],
                m[3],
                m[0] / m[1],
                m[1] / m[2],
                m[3] / m[2]
            );
        }
    }
    Ok(())
}
