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
//! The helpers here are what those programs share: which camera sources they can build.

use std::sync::Arc;

use vigil_core::camera::{FileCamera, RtspCamera};
use vigil_core::pipeline::CameraFactory;
use vigil_core::{Camera, CameraConfig, Clocks, Result, RtspTransport, Source};

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

/// A camera factory for every kind of source: RTSP through retina, a looped file, or the
/// synthetic scene. The pipeline calls it for each enabled camera.
pub fn camera_factory(clocks: Arc<dyn Clocks>) -> CameraFactory {
    Arc::new(move |cfg: &CameraConfig| -> Result<Arc<dyn Camera>> {
        Ok(match &cfg.record_source {
            Source::Rtsp { .. } => Arc::new(RtspCamera::new(
                cfg.id.clone(),
                &cfg.record_source,
                cfg.detect_source.as_ref(),
                clocks.clone(),
            )?),
            Source::File { path, fps } => {
                Arc::new(FileCamera::new(cfg.id.clone(), path, *fps, clocks.clone()))
            }
            Source::Synthetic { width, height, fps } => {
                Arc::new(vigil_detect::SyntheticCamera::new(
                    cfg.id.clone(),
                    *width,
                    *height,
                    *fps,
                    clocks.clone(),
                )?)
            }
        })
    })
}
