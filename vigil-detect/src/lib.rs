//! Everything in Vigil that looks at pixels: decoding the detect stream ([`FrameDecoder`]),
//! motion ([`MotionDetector`]), YOLOv8 on the CPU ([`YoloV8`], [`YoloDetector`]), tracking
//! ([`ObjectTracker`]), events with snapshots ([`EventManager`]), the chain of all of them for
//! one camera ([`Analyzer`]), and the synthetic demo camera ([`SyntheticCamera`]).
//!
//! # Example
//!
//! Run a YOLOv8 network on a picture (here one with seeded random weights; load real ones with
//! [`YoloV8::load`]) and follow what it finds:
//!
//! ```
//! # fn main() -> vigil_core::Result<()> {
//! use std::sync::Arc;
//! use vigil_core::{Image, PixelFormat, Timestamp, Tracker};
//! use vigil_detect::{ObjectTracker, TrackerOptions, YoloDetector, YoloOptions, YoloV8};
//!
//! let model = Arc::new(YoloV8::random('n', 80, 1)?);
//! let detector = YoloDetector::new(model, YoloOptions { input_size: 64, ..Default::default() })?;
//! let picture = Image {
//!     width: 128,
//!     height: 96,
//!     format: PixelFormat::Rgb8,
//!     data: vec![90u8; 128 * 96 * 3].into(),
//!     time: Timestamp(0),
//! };
//! let found = detector.detect_batch(&[&picture])?.remove(0);
//! let mut tracker = ObjectTracker::new(TrackerOptions::default());
//! let objects = tracker.update(picture.time, &found);
//! assert_eq!(objects.len(), found.len());
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![forbid(clippy::print_stdout, clippy::print_stderr)]

pub mod analyzer;
pub mod art;
pub mod decode;
pub mod encode;
pub mod events;
pub mod image;
pub mod motion;
mod nn;
pub mod registry;
pub mod render;
mod synthetic;
pub mod timelapse;
pub mod tracker;
pub mod yolo;

pub use analyzer::{
    analyzer_factory, Analysis, Analyzer, AnalyzerOptions, DetectMode, MOTION_LABEL,
};
pub use art::{make_art, run_art, Art, ArtOptions};
pub use decode::{DecodeOptions, FrameDecoder};
pub use events::EventManager;
pub use motion::{MotionDetector, MotionOptions, MotionResult};
pub use registry::{
    Backend, DetectorBuilder, DetectorFigures, DetectorRegistry, DetectorSpec, DetectorStats,
    LatencyPoint, Measured,
};
pub use render::{render, render_detections, render_live, Annotation, Overlays, SnapshotStyle};
pub use synthetic::SyntheticCamera;
pub use timelapse::{Timelapse, TimelapseStatus, TimelapseVideo};
pub use tracker::{filter_detections, ObjectTracker, TrackerOptions};
pub use yolo::{ModelSize, YoloDetector, YoloOptions, YoloV8};

/// A camera factory for every source a [`vigil_core::CameraConfig`] can name: RTSP through
/// retina, a looped file, or the [`SyntheticCamera`] scene. What `vigild` runs its cameras
/// with, and what an embedding program passes to `Nvr::start` unless it brings its own.
pub fn camera_factory(
    clocks: std::sync::Arc<dyn vigil_core::Clocks>,
) -> vigil_core::pipeline::CameraFactory {
    use std::sync::Arc;
    use vigil_core::camera::{FileCamera, RtspCamera};
    use vigil_core::{Camera, CameraConfig, Source};
    Arc::new(
        move |cfg: &CameraConfig| -> vigil_core::Result<Arc<dyn Camera>> {
            let id = cfg.id.clone();
            Ok(match &cfg.record_source {
                Source::Rtsp { .. } => Arc::new(RtspCamera::new(
                    id,
                    &cfg.record_source,
                    cfg.detect_source.as_ref(),
                    clocks.clone(),
                )?),
                Source::File { path, fps } => {
                    Arc::new(FileCamera::new(id, path, *fps, clocks.clone()))
                }
                Source::Synthetic { width, height, fps } => Arc::new(SyntheticCamera::new(
                    id,
                    *width,
                    *height,
                    *fps,
                    clocks.clone(),
                )?),
            })
        },
    )
}
