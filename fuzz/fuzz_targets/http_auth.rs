//! libFuzzer's entry to [`vigil_fuzz::targets::http_auth`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vigil_fuzz::targets::http_auth(data));
