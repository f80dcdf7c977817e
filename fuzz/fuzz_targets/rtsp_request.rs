//! libFuzzer's entry to [`vigil_fuzz::targets::rtsp_request`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vigil_fuzz::targets::rtsp_request(data));
