//! libFuzzer's entry to `sandbox_fuzz::sqlgen::run_plan`.

#![no_main]

libfuzzer_sys::fuzz_target!(
    init: sandbox_fuzz::seeds::on_start("sql_structured_plan"),
    |data: &[u8]| sandbox_fuzz::sqlgen::run_plan(data)
);
