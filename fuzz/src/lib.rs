//! Fuzz targets for Sandbox. Each target is a function of bytes that panics on a finding:
//! libFuzzer drives them from `fuzz/libfuzzer` (`cargo fuzz run --fuzz-dir fuzz/libfuzzer
//! TARGET`), and the test suite replays their seed corpora, every crash kept as a
//! regression, and a few thousand generated inputs (`tests/replay.rs`). ASSURANCE.md has
//! the commands and the figures of the large runs.

#![allow(clippy::expect_used, clippy::unwrap_used)]

pub mod abi;
pub mod api;
pub mod config;
pub mod ingest;
pub mod seeds;
pub mod sql;
pub mod sqlgen;
pub mod world;

/// A target: a name (its file under `fuzz/libfuzzer/fuzz_targets`, its corpus folder) and
/// its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target.
pub const TARGETS: &[Target] = &[
    ("sql", sql::run),
    ("sql_structured", sqlgen::run),
    ("sql_structured_plan", sqlgen::run_plan),
    ("config", config::run),
    ("ingest", ingest::run),
    ("ingest_inspect", ingest::run_inspect),
    ("abi", abi::run),
    ("api", api::run),
];
