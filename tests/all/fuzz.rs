//! Arbitrary arguments and bytes to every host function: the host answers with a status
//! or ends the job with a typed error, never panics, and stays healthy afterwards.

use std::sync::OnceLock;

use proptest::collection::vec;
use proptest::prelude::*;
use sandbox_runtime::wasm::JobLimits;
use sandbox_tests::{Fixture, wat};

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| Fixture::with_budget(100.0, 0.01))
}

/// Every import the host offers, in the order `module` knows their signatures.
const IMPORTS: [&str; 7] = [
    "response_len",
    "response_read",
    "query",
    "query_with",
    "params",
    "emit",
    "log",
];

#[test]
fn the_fuzzing_covers_every_import_the_host_allows() {
    let mut ours = IMPORTS.to_vec();
    let mut allowed = sandbox_runtime::wasm::ALLOWED_IMPORTS.to_vec();
    ours.sort_unstable();
    allowed.sort_unstable();
    assert_eq!(
        ours, allowed,
        "a new import needs its signature in `module`"
    );
}

/// A module whose `run` calls one host import with the given arguments, over a memory
/// whose first bytes are `data`.
fn module(func: usize, args: [i32; 5], epsilon_bits: u64, data: &[u8]) -> Vec<u8> {
    let bytes: String = data.iter().map(|b| format!("\\{b:02x}")).collect();
    let [a, b, c, d, e] = args;
    let two = format!("(call $f (i32.const {a}) (i32.const {b}))");
    let (import, call): (&str, String) = match func {
        0 | 4 => ("(func $f (result i32))", "(call $f)".to_string()),
        1 | 2 => ("(func $f (param i32 i32) (result i32))", two),
        3 => (
            "(func $f (param i32 i32 f64) (result i32))",
            format!(
                "(call $f (i32.const {a}) (i32.const {b}) (f64.reinterpret_i64 (i64.const {})))",
                epsilon_bits as i64
            ),
        ),
        5 => (
            "(func $f (param i32 i32 i32 i32 i32) (result i32))",
            format!(
                "(call $f (i32.const {a}) (i32.const {b}) (i32.const {c}) (i32.const {d}) (i32.const {e}))"
            ),
        ),
        _ => (
            "(func $f (param i32 i32 i32) (result i32))",
            format!("(call $f (i32.const {a}) (i32.const {b}) (i32.const {c}))"),
        ),
    };
    let name = IMPORTS[func];
    wat(&format!(
        r#"(module
  (import "sandbox" "{name}" {import})
  (memory (export "memory") 1)
  (data (i32.const 0) "{bytes}")
  (func (export "run") (result i32)
    {call}))"#
    ))
}

/// Small or boundary values, or anything.
fn arg() -> impl Strategy<Value = i32> {
    prop_oneof![
        0..300i32,
        Just(-1),
        Just(i32::MAX),
        Just(i32::MIN),
        Just(65_535),
        Just(65_536),
        any::<i32>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn host_functions_take_any_arguments_without_panicking(
        func in 0..IMPORTS.len(),
        args in proptest::array::uniform5(arg()),
        epsilon_bits in any::<u64>(),
        data in vec(any::<u8>(), 0..200),
    ) {
        let f = fixture();
        let bytes = module(func, args, epsilon_bits, &data);
        let limits = JobLimits { fuel: 10_000_000, deadline_ms: 10_000, ..JobLimits::default() };
        // Either a job report (succeeded, or failed with a typed kind) or a typed refusal.
        match f.submit(&bytes, "{}", limits) {
            Ok(report) => {
                if report.status == "failed" {
                    let kind = report.error_kind.clone().unwrap_or_default();
                    prop_assert!(
                        kind == "guest" || kind.starts_with("limit:"),
                        "{report:?}"
                    );
                }
            }
            Err(e) => prop_assert!(false, "submission failed: {e}"),
        }
    }
}

#[test]
fn the_host_is_healthy_after_the_fuzzing() {
    let f = fixture();
    let a = f.ask("SELECT district, COUNT(*) FROM residents GROUP BY district");
    assert!(a.is_ok(), "{a:?}");
}
