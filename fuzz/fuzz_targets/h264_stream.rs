//! libFuzzer's entry to [`vigil_fuzz::targets::h264_stream`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vigil_fuzz::targets::h264_stream(data));
