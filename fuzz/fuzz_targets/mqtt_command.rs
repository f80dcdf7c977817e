//! libFuzzer's entry to [`vigil_fuzz::targets::mqtt_command`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vigil_fuzz::targets::mqtt_command(data));
