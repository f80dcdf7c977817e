//! libFuzzer's entry to [`vigil_fuzz::targets::camera_url`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vigil_fuzz::targets::camera_url(data));
