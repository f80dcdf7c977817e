//! libFuzzer's entry to [`vigil_fuzz::targets::event_cursor`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vigil_fuzz::targets::event_cursor(data));
