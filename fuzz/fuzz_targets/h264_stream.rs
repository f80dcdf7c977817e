//! H.264 from cameras and files: splitting a stream into pictures, parsing parameter sets and
//! converting between Annex B and AVC must never panic on any bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_core::h264;

fuzz_target!(|data: &[u8]| {
    if let Ok(aus) = h264::AccessUnits::default().split(data) {
        for au in aus {
            let nals = h264::avc_nals(&au.data).expect("our own AVC output parses");
            assert!(!nals.is_empty());
            let _ = h264::avc_to_annexb(&au.data);
        }
    }
    let _ = h264::Sps::parse(data);
    let _ = h264::parse_avc_decoder_config(data);
    let _ = h264::avc_nals(data);
});
