//! What the national cryptography suite costs: the same work in a domain of the `standard`
//! suite (SHA-256, HMAC-SHA256, Ed25519, AES-256-GCM) and of the `gm` suite (SM3,
//! HMAC-SM3, SM2, SM4-GCM), measured in one run and compared as ratios gm / standard.
//!
//! `cargo build --profile bench -p sandbox-benches --bin suites && ./target/release/suites`
//!
//! Primitives, through the domain's own keys: hashing 64 MiB (the audit tree's and the
//! content hashes' hash), the MAC of 200,000 identifiers (pseudonyms, value sets), 2,000
//! signatures and their verifications (checkpoints, manifests), 2,000 key wraps and
//! unwraps under the master key. Then the domain: 20,000 audit events appended (hash chain,
//! leaf, tree nodes, each in its own transaction) and the whole log verified (every hash
//! recomputed, every checkpoint's signature checked); and mediated DP queries on 100,000
//! PUMS-like rows (the answer, the charge and its audit events), `--reps` each.

use std::io::BufWriter;
use std::time::Instant;

use anyhow::bail;
use sandbox_core::Suite;
use sandbox_runtime::audit::{EventKind, Subject};
use sandbox_runtime::mediate::{self, QueryRequest};
use sandbox_runtime::{Domain, audit, catalog};

const QUERIES: &[&str] = &[
    "SELECT COUNT(*) FROM pums",
    "SELECT educ, AVG(income) FROM pums GROUP BY educ",
    "SELECT sex, race, COUNT(*) FROM pums GROUP BY sex, race",
];

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Seconds `f` takes.
fn secs(f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let t = Instant::now();
    f()?;
    Ok(t.elapsed().as_secs_f64())
}

struct Measured {
    name: String,
    unit: &'static str,
    standard: f64,
    gm: f64,
}

/// One suite's figures, in the order of [`names`].
fn measure(suite: Suite, reps: usize) -> anyhow::Result<Vec<f64>> {
    let dir = tempfile::tempdir()?;
    let domain = sandbox_benches::domain_of_suite(dir.path(), suite)?;
    if domain.keys().suite() != suite {
        bail!("the domain is not of the {suite} suite");
    }
    let mut out = Vec::new();

    // Hash: MiB/s over 64 MiB in 1 MiB pieces.
    let block = vec![0x5au8; 1 << 20];
    let s = secs(|| {
        let mut acc = 0u8;
        for _ in 0..64 {
            acc ^= suite.hash(&[&block])[0];
        }
        std::hint::black_box(acc);
        Ok(())
    })?;
    out.push(64.0 / s);

    // MAC of identifiers under the pseudonym secret: thousands per second.
    let secret = domain.keys().pseudonym_secret()?.clone();
    let ids: Vec<String> = (0..200_000).map(|i| format!("1101051990{i:08}")).collect();
    let s = secs(|| {
        for id in &ids {
            std::hint::black_box(secret.mac(id.as_bytes()));
        }
        Ok(())
    })?;
    out.push(ids.len() as f64 / s / 1e3);

    // Signatures and verifications: per second.
    let message = vec![0x42u8; 2048];
    let mut signatures = Vec::new();
    let s = secs(|| {
        for i in 0..2000u32 {
            let mut m = message.clone();
            m[..4].copy_from_slice(&i.to_le_bytes());
            signatures.push((m.clone(), domain.keys().sign(&m)?));
        }
        Ok(())
    })?;
    out.push(2000.0 / s);
    let key = sandbox_runtime::keys::public_key(domain.layout())?;
    let s = secs(|| {
        for (m, sig) in &signatures {
            key.verify(m, sig)?;
        }
        Ok(())
    })?;
    out.push(2000.0 / s);

    // Key wrapping under the master key: wraps and unwraps per second.
    let provider = domain.keys().provider().clone();
    let mut wrapped = Vec::new();
    let s = secs(|| {
        for i in 0..2000u32 {
            let mut k = [7u8; 32];
            k[..4].copy_from_slice(&i.to_le_bytes());
            wrapped.push(provider.wrap("sandbox benchmark key", &k)?);
        }
        Ok(())
    })?;
    out.push(2000.0 / s);
    let s = secs(|| {
        for w in &wrapped {
            std::hint::black_box(provider.unwrap("sandbox benchmark key", w)?);
        }
        Ok(())
    })?;
    out.push(2000.0 / s);

    // The audit log: appends per second, then the whole log verified (seconds).
    let s = secs(|| {
        for i in 0..20_000 {
            audit::record_refusal(
                &domain,
                sandbox_benches::OPERATOR,
                EventKind::ApiRefused,
                &Subject::Domain,
                serde_json::json!({"n": i, "path": "/bench"}),
            )?;
            if i % 1000 == 999 {
                audit::checkpoint(&domain, sandbox_benches::OPERATOR)?;
            }
        }
        Ok(())
    })?;
    out.push(20_000.0 / s);
    out.push(secs(|| {
        audit::verify(&domain, sandbox_benches::OPERATOR)?;
        Ok(())
    })?);

    // Mediated DP queries on 100,000 rows: milliseconds per answer (median).
    let pums = sandbox_benches::pums_pid_csv();
    let source = sandbox_synth::read_pums(&std::fs::read_to_string(&pums)?);
    let csv = dir.path().join("pums.csv");
    let mut w = BufWriter::new(std::fs::File::create(&csv)?);
    sandbox_synth::write_pums_like(&mut w, &source, 100_000, 1, 7)?;
    drop(w);
    let policy = std::fs::read_to_string(sandbox_benches::examples().join("policies/pums.toml"))?;
    out.push(secs(|| {
        catalog::add(&domain, sandbox_benches::PROVIDER, &csv, &policy)?;
        Ok(())
    })?);
    let scenario_id = sandbox_benches::approved_scenario(
        &domain,
        "bench",
        "pums",
        sandbox_benches::PUMS_COLUMNS,
        0.001,
    )?;
    for sql in QUERIES {
        let mut ms = Vec::new();
        for _ in 0..reps {
            ms.push(
                secs(|| {
                    mediate::answer(
                        &domain,
                        &QueryRequest {
                            scenario_id,
                            job_id: None,
                            actor: sandbox_benches::DEVELOPER,
                            sql,
                            epsilon: None,
                        },
                    )?;
                    Ok(())
                })? * 1e3,
            );
        }
        out.push(median(ms));
    }
    drop::<Domain>(domain);
    Ok(out)
}

fn names() -> Vec<(String, &'static str)> {
    let mut v: Vec<(String, &'static str)> = vec![
        ("hash (SHA-256 / SM3)".into(), "MiB/s"),
        ("MAC of an identifier (HMAC)".into(), "thousand/s"),
        ("sign (Ed25519 / SM2)".into(), "per s"),
        ("verify (Ed25519 / SM2)".into(), "per s"),
        ("wrap a key (AES-256-GCM / SM4-GCM)".into(), "per s"),
        ("unwrap a key".into(), "per s"),
        ("append an audit event (own transaction)".into(), "per s"),
        ("verify the whole log (20,000+ events)".into(), "s"),
        ("register 100,000 rows".into(), "s"),
    ];
    for q in QUERIES {
        v.push((format!("`{q}`"), "ms"));
    }
    v
}

fn main() -> anyhow::Result<()> {
    let mut reps = 21;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--reps" => reps = args.next().unwrap_or_default().parse()?,
            other => bail!("unknown argument {other} (--reps N)"),
        }
    }
    let standard = measure(Suite::Standard, reps)?;
    let gm = measure(Suite::Gm, reps)?;
    let rows: Vec<Measured> = names()
        .into_iter()
        .zip(standard.into_iter().zip(gm))
        .map(|((name, unit), (standard, gm))| Measured {
            name,
            unit,
            standard,
            gm,
        })
        .collect();
    println!("| work | unit | standard | gm | gm / standard |");
    println!("|---|---|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {:.2} | {:.2} | {:.2} |",
            r.name,
            r.unit,
            r.standard,
            r.gm,
            r.gm / r.standard
        );
    }
    Ok(())
}
