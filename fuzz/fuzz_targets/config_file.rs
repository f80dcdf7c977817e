//! libFuzzer's entry to [`vigil_fuzz::targets::config_file`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vigil_fuzz::targets::config_file(data));
