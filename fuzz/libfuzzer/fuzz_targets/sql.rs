//! libFuzzer's entry to `sandbox_fuzz::sql::run`.

#![no_main]

libfuzzer_sys::fuzz_target!(
    init: sandbox_fuzz::seeds::on_start("sql"),
    |data: &[u8]| sandbox_fuzz::sql::run(data)
);
