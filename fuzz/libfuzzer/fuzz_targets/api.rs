//! libFuzzer's entry to `sandbox_fuzz::api::run`.

#![no_main]

libfuzzer_sys::fuzz_target!(
    init: sandbox_fuzz::seeds::on_start("api"),
    |data: &[u8]| sandbox_fuzz::api::run(data)
);
