//! libFuzzer's entry to [`vigil_fuzz::targets::mp4_parse`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vigil_fuzz::targets::mp4_parse(data));
