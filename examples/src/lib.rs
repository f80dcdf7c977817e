//! Programs that embed Vigil's crates. Each is in `examples/examples/`; run one with
//! `cargo run -p vigil-examples --example NAME`:
//!
//! - `record_camera`: the recorder alone (segments, a clip).
//! - `embed_pipeline`: the whole pipeline (record, detect, track, events) with the camera,
//!   detector and store a program picks, printing events as they happen.
//! - `custom_detector`: a daemon with everything `vigild` has plus a detector kind of its own.
//! - `store_events`: the LMDB store alone, asked what a dashboard asks.
//! - `scripts/events_report.py`: the HTTP API driven from a Python script (standard library
//!   only), the way a cron job or a home-automation hook would.
//!
//! The helpers here are what those programs share: reading their arguments. The cameras
//! they run come from `vigil_detect::camera_factory`.

use vigil_core::{RtspTransport, Source};

/// The source a command-line argument names: an `rtsp://` URL, a file (MP4 or Annex B
/// H.264, looped), or the synthetic scene for `synthetic` or nothing.
pub fn source_of(arg: Option<&str>) -> Source {
    match arg {
        Some(s) if s.starts_with("rtsp://") => Source::Rtsp {
            url: s.to_owned(),
            transport: RtspTransport::Tcp,
            username: None,
            password: None,
        },
        Some(path) if path != "synthetic" => Source::File {
            path: path.to_owned(),
            fps: None,
        },
        _ => Source::Synthetic {
            width: 640,
            height: 360,
            fps: 15,
        },
    }
}

/// A number of seconds from a command-line argument, `default` when there is none.
pub fn seconds_of(arg: Option<&str>, default: u64) -> anyhow::Result<u64> {
    match arg {
        Some(s) => s
            .parse()
            .map_err(|_| anyhow::anyhow!("{s:?} is not a number of seconds")),
        None => Ok(default),
    }
}
