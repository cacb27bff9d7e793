//! libFuzzer's entry to `sandbox_fuzz::ingest::run`.

#![no_main]

libfuzzer_sys::fuzz_target!(
    init: sandbox_fuzz::seeds::on_start("ingest"),
    |data: &[u8]| sandbox_fuzz::ingest::run(data)
);
