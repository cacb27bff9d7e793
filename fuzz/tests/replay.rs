//! The fuzz targets in the test suite: every seed, every regression kept from a crash
//! (`fuzz/regressions/TARGET`), and `SANDBOX_FUZZ_CASES` (default 300) mutations of them
//! per target, from a fixed seed. A failing input is written to
//! `target/fuzz-failures/TARGET-N` before the test fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn cases() -> usize {
    std::env::var("SANDBOX_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

/// The seeds and the kept regressions of `target`.
fn inputs(target: &str) -> Vec<Vec<u8>> {
    let mut out = sandbox_fuzz::seeds::seeds(target);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("regressions")
        .join(target);
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut files: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        out.extend(files.iter().map(|f| std::fs::read(f).unwrap()));
    }
    out
}

/// One of libFuzzer's kinds of mutation, roughly: flip, overwrite with an edge byte,
/// insert, delete, duplicate a span, splice in part of another input, truncate.
fn mutate(rng: &mut ChaCha8Rng, base: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let at = if v.is_empty() {
            0
        } else {
            rng.random_range(0..v.len())
        };
        match rng.random_range(0..7) {
            0 if !v.is_empty() => v[at] ^= 1 << rng.random_range(0..8),
            1 if !v.is_empty() => {
                v[at] = [0, 0xFF, 0x7F, 0x80, b'\'', b'(', b'0'][rng.random_range(0..7)]
            }
            2 => v.insert(at, rng.random()),
            3 if !v.is_empty() => {
                let end = (at + rng.random_range(1..16)).min(v.len());
                v.drain(at..end);
            }
            4 if !v.is_empty() => {
                let end = (at + rng.random_range(1..32)).min(v.len());
                let span = v[at..end].to_vec();
                v.splice(at..at, span);
            }
            5 if !other.is_empty() => {
                let from = rng.random_range(0..other.len());
                let end = (from + rng.random_range(1..64)).min(other.len());
                v.splice(at..at, other[from..end].iter().copied());
            }
            _ => v.truncate(at),
        }
    }
    v
}

fn replay(target: &str) {
    let (_, run) = sandbox_fuzz::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .unwrap();
    let corpus = inputs(target);
    assert!(!corpus.is_empty(), "{target} has no seeds");
    let mut rng = ChaCha8Rng::seed_from_u64(target.bytes().map(u64::from).sum());
    let generated = (0..cases()).map(|_| {
        let base = &corpus[rng.random_range(0..corpus.len())];
        let other = &corpus[rng.random_range(0..corpus.len())];
        mutate(&mut rng, base, other)
    });
    let all: Vec<Vec<u8>> = corpus.iter().cloned().chain(generated).collect();
    for (n, input) in all.iter().enumerate() {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| run(input))) {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-failures");
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(dir.join(format!("{target}-{n}")), input);
            eprintln!("{target}: input {n} failed; kept in {}", dir.display());
            resume_unwind(panic);
        }
    }
}

#[test]
fn sql() {
    replay("sql");
}

#[test]
fn sql_structured() {
    replay("sql_structured");
    // The generator reaches answers in both modes, so the oracle is at work.
    let judged = sandbox_fuzz::sql::JUDGED
        .each_ref()
        .map(|n| n.load(std::sync::atomic::Ordering::Relaxed));
    eprintln!("answers judged (dp, threshold): {judged:?}");
    assert!(
        judged.iter().all(|&n| n > 0),
        "answers judged (dp, threshold): {judged:?}"
    );
}

#[test]
fn sql_structured_plan() {
    replay("sql_structured_plan");
}

#[test]
fn config() {
    replay("config");
}

#[test]
fn ingest() {
    replay("ingest");
}

#[test]
fn ingest_inspect() {
    replay("ingest_inspect");
}

#[test]
fn abi() {
    replay("abi");
}

#[test]
fn api() {
    replay("api");
}

#[test]
fn every_target_has_a_libfuzzer_entry() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("libfuzzer/fuzz_targets");
    for (target, _) in sandbox_fuzz::TARGETS {
        assert!(
            dir.join(format!("{target}.rs")).is_file(),
            "{target} has no fuzz_targets/{target}.rs"
        );
    }
}

/// What the generator's statements come to, by mode and refusal rule (to tune the
/// generator: `cargo test -p sandbox-fuzz --test replay generator_profile -- --ignored
/// --nocapture`).
#[test]
#[ignore]
fn generator_profile() {
    use std::collections::BTreeMap;
    let w = sandbox_fuzz::world::world();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..2000 {
        let bytes: Vec<u8> = (0..rng.random_range(16..512))
            .map(|_| rng.random())
            .collect();
        let mut u = arbitrary::Unstructured::new(&bytes);
        let Ok(sql) = sandbox_fuzz::sqlgen::statement(&mut u) else {
            *tally.entry("no statement".into()).or_default() += 1;
            continue;
        };
        for (mode, scenario) in [("dp", w.dp), ("threshold", w.threshold)] {
            let verdict = match sandbox_runtime::mediate::check(
                &w.domain,
                sandbox_fuzz::world::DEVELOPER,
                &scenario.to_string(),
                &sql,
            ) {
                Ok(_) => "accepted".to_string(),
                Err(sandbox_runtime::Error::Refused(r)) => r.rule.as_str().to_string(),
                Err(e) => format!("error {e}"),
            };
            if std::env::var("SHOW").is_ok_and(|v| verdict.starts_with(&v)) {
                println!("{verdict}: {sql}");
            }
            *tally.entry(format!("{mode} {verdict}")).or_default() += 1;
        }
    }
    for (k, v) in tally {
        println!("{v:6} {k}");
    }
}
