//! libFuzzer's entry to `sandbox_fuzz::config::run`.

#![no_main]

libfuzzer_sys::fuzz_target!(
    init: sandbox_fuzz::seeds::on_start("config"),
    |data: &[u8]| sandbox_fuzz::config::run(data)
);
