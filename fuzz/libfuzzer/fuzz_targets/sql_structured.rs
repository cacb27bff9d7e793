//! libFuzzer's entry to `sandbox_fuzz::sqlgen::run`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sandbox_fuzz::sqlgen::run(data));
