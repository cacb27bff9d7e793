//! libFuzzer's entry to `sandbox_fuzz::ingest::run_inspect`.

#![no_main]

libfuzzer_sys::fuzz_target!(
    init: sandbox_fuzz::seeds::on_start("ingest_inspect"),
    |data: &[u8]| sandbox_fuzz::ingest::run_inspect(data)
);
