//! What the national cryptography suite costs: the same work in a domain of the `standard`
//! suite (SHA-256, HMAC-SHA256, Ed25519, AES-256-GCM) and of the `gm` suite (SM3,
//! HMAC-SM3, SM2, SM4-GCM), measured in one run and compared as ratios gm / standard.
//!
//! `cargo build --profile bench -p sandbox-benches --bin suites && TMPDIR=/dev/shm ./target/release/suites`
//!
//! (on tmpfs, so that the disk's flushes, the same in both suites, do not hide the
//! difference). The pair of domains is made twice, in both orders, and each figure is the
//! mean of the two (the domain made second is faster, whatever its suite); the two
//! domains' queries alternate, rep by rep.
//!
//! Primitives (each the median of five timings), through the domain's own keys: hashing 64
//! MiB (the audit tree's and the content hashes' hash), the MAC of 200,000 identifiers
//! (pseudonyms, value sets), 2,000 signatures and their verifications (checkpoints,
//! manifests), 2,000 key wraps and unwraps under the master key. Then the domain: 20,000
//! audit events appended (hash chain, leaf, tree nodes, each in its own transaction) and
//! the whole log verified (every hash recomputed, every checkpoint's signature checked);
//! and mediated DP queries on 100,000 PUMS-like rows (the answer, the charge and its audit
//! events), `--reps` each.

use std::io::BufWriter;
use std::time::Instant;

use anyhow::bail;
use sandbox_core::Suite;
use sandbox_runtime::audit::{EventKind, Subject};
use sandbox_runtime::{Domain, audit, catalog};

const QUERIES: &[&str] = &[
    "SELECT COUNT(*) FROM pums",
    "SELECT educ, AVG(income) FROM pums GROUP BY educ",
    "SELECT sex, race, COUNT(*) FROM pums GROUP BY sex, race",
];

/// Seconds `f` takes.
fn secs(f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let t = Instant::now();
    f()?;
    Ok(t.elapsed().as_secs_f64())
}

/// The median of five timings of `f`, in seconds.
fn secs5(mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let mut v = Vec::new();
    for _ in 0..5 {
        v.push(secs(&mut f)?);
    }
    Ok(sandbox_benches::median(&v))
}

struct Measured {
    name: String,
    unit: &'static str,
    standard: f64,
    gm: f64,
}

/// A domain of one suite, measured up to its queries.
struct Setup {
    _dir: tempfile::TempDir,
    domain: Domain,
    scenario_id: i64,
    figures: Vec<f64>,
}

/// One suite's figures up to the queries, in the order of [`names`].
fn measure(suite: Suite) -> anyhow::Result<Setup> {
    let dir = tempfile::tempdir()?;
    let domain = sandbox_benches::domain_of_suite(dir.path(), suite)?;
    if domain.keys().suite() != suite {
        bail!("the domain is not of the {suite} suite");
    }
    let mut out = Vec::new();

    // Hash: MiB/s over 64 MiB in 1 MiB pieces.
    let block = vec![0x5au8; 1 << 20];
    let s = secs5(|| {
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
    let s = secs5(|| {
        for id in &ids {
            std::hint::black_box(secret.mac(id.as_bytes()));
        }
        Ok(())
    })?;
    out.push(ids.len() as f64 / s / 1e3);

    // Signatures and verifications: per second.
    let message = vec![0x42u8; 2048];
    let mut signatures = Vec::new();
    let s = secs5(|| {
        signatures.clear();
        for i in 0..2000u32 {
            let mut m = message.clone();
            m[..4].copy_from_slice(&i.to_le_bytes());
            signatures.push((m.clone(), domain.keys().sign(&m)?));
        }
        Ok(())
    })?;
    out.push(2000.0 / s);
    let key = sandbox_runtime::keys::public_key(domain.layout())?;
    let s = secs5(|| {
        for (m, sig) in &signatures {
            key.verify(m, sig)?;
        }
        Ok(())
    })?;
    out.push(2000.0 / s);

    // Key wrapping under the master key: wraps and unwraps per second.
    let provider = domain.keys().provider().clone();
    let mut wrapped = Vec::new();
    let s = secs5(|| {
        wrapped.clear();
        for i in 0..2000u32 {
            let mut k = [7u8; 32];
            k[..4].copy_from_slice(&i.to_le_bytes());
            wrapped.push(provider.wrap("sandbox benchmark key", &k)?);
        }
        Ok(())
    })?;
    out.push(2000.0 / s);
    let s = secs5(|| {
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
    let mut verify = Vec::new();
    for _ in 0..5 {
        verify.push(secs(|| {
            audit::verify(&domain, sandbox_benches::OPERATOR)?;
            Ok(())
        })?);
    }
    out.push(sandbox_benches::median(&verify));

    // Mediated DP queries on 100,000 rows: milliseconds per answer (median).
    let pums = sandbox_benches::pums_pid_csv();
    let source = sandbox_synth::read_pums(&std::fs::read_to_string(&pums)?);
    let csv = dir.path().join("pums.csv");
    let mut w = BufWriter::new(std::fs::File::create(&csv)?);
    sandbox_synth::write_pums_like(&mut w, &source, 100_000, 1, 7)?;
    drop(w);
    let policy = std::fs::read_to_string(sandbox_benches::examples().join("policies/pums.toml"))?;
    let mut register = Vec::new();
    for _ in 0..3 {
        register.push(secs(|| {
            catalog::add(&domain, sandbox_benches::PROVIDER, &csv, &policy)?;
            Ok(())
        })?);
    }
    out.push(sandbox_benches::median(&register));
    let scenario_id = sandbox_benches::approved_scenario(
        &domain,
        "bench",
        "pums",
        sandbox_benches::PUMS_COLUMNS,
        0.001,
    )?;
    Ok(Setup {
        _dir: dir,
        domain,
        scenario_id,
        figures: out,
    })
}

/// Milliseconds to answer `sql` in `s`'s domain.
fn query_ms(s: &Setup, sql: &str) -> anyhow::Result<f64> {
    Ok(secs(|| {
        sandbox_benches::ask(&s.domain, s.scenario_id, sql)?;
        Ok(())
    })? * 1e3)
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
        (
            "verify the whole log (20,000+ events; median of 5)".into(),
            "s",
        ),
        ("register 100,000 rows (median of 3)".into(), "s"),
    ];
    for q in QUERIES {
        v.push((format!("mediated `{q}` (median)"), "ms"));
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
    // A domain of each suite made and measured once first and dropped: the process's
    // first domain pays for warming up (the allocator, the page cache, the engine), and
    // neither suite should.
    drop(measure(Suite::Standard)?);
    drop(measure(Suite::Gm)?);
    // The domain made second answers faster, whatever its suite (the process's state,
    // not the suite): both orders are measured and each suite's figures averaged over them.
    let mut figures: Vec<Vec<Vec<f64>>> = vec![Vec::new(), Vec::new()];
    for order in [[Suite::Standard, Suite::Gm], [Suite::Gm, Suite::Standard]] {
        let first = measure(order[0])?;
        let second = measure(order[1])?;
        let (mut a, mut b) = (first.figures.clone(), second.figures.clone());
        for sql in QUERIES {
            let (mut x, mut y) = (Vec::new(), Vec::new());
            for rep in 0..reps {
                // Each goes first in every other rep.
                if rep % 2 == 0 {
                    x.push(query_ms(&first, sql)?);
                    y.push(query_ms(&second, sql)?);
                } else {
                    y.push(query_ms(&second, sql)?);
                    x.push(query_ms(&first, sql)?);
                }
            }
            a.push(sandbox_benches::median(&x));
            b.push(sandbox_benches::median(&y));
        }
        for (suite, f) in [(order[0], a), (order[1], b)] {
            figures[usize::from(suite == Suite::Gm)].push(f);
        }
    }
    let mean = |runs: &[Vec<f64>]| -> Vec<f64> {
        (0..runs[0].len())
            .map(|i| runs.iter().map(|r| r[i]).sum::<f64>() / runs.len() as f64)
            .collect()
    };
    let (standard_figures, gm_figures) = (mean(&figures[0]), mean(&figures[1]));
    let rows: Vec<Measured> = names()
        .into_iter()
        .zip(standard_figures.into_iter().zip(gm_figures))
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
