//! Misuse of `#[sandbox_sdk::analysis]` gives spanned compile errors; the expected
//! messages are pinned in `tests/ui/*.stderr` (regenerate with `TRYBUILD=overwrite`).

#[test]
fn macro_misuse_is_a_spanned_compile_error() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
