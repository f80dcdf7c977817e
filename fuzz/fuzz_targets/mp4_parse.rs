//! The MP4 reader runs on files cut by crashes (salvage) and on files users play from: any bytes
//! must give samples or an error, never a panic, and the samples it lists lie inside the file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = vigil_core::mp4::parse(data) {
        assert!(info.complete_len <= data.len() as u64);
        if info.fragmented {
            for s in &info.samples {
                assert!(s.offset + u64::from(s.size) <= data.len() as u64, "{s:?}");
            }
        }
    }
});
