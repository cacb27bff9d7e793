//! libFuzzer's entry to `sandbox_fuzz::abi::run`.

#![no_main]

libfuzzer_sys::fuzz_target!(
    init: sandbox_fuzz::seeds::on_start("abi"),
    |data: &[u8]| sandbox_fuzz::abi::run(data)
);
