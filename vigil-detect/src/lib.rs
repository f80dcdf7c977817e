//! Everything in Vigil that touches pixels. Today: the synthetic camera, which draws a moving
//! scene and encodes it to H.264 in process (OpenH264), so that `vigild` has a working camera on
//! a machine with none. Decoding, motion, YOLOv8 and tracking follow.
//!
//! # Example
//!
//! ```no_run
//! # async fn f() -> vigil_core::Result<()> {
//! use std::sync::Arc;
//! use vigil_core::{Camera, CameraId, RealClocks, StreamRole};
//! use vigil_detect::SyntheticCamera;
//!
//! let cam = SyntheticCamera::new(CameraId::new("demo")?, 640, 360, 15, Arc::new(RealClocks::default()))?;
//! let mut stream = cam.connect(StreamRole::Record).await?;
//! let first = stream.next().await?.expect("a frame");
//! assert!(first.is_key);
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![forbid(clippy::print_stdout, clippy::print_stderr)]

pub mod analyzer;
pub mod decode;
pub mod events;
pub mod image;
pub mod motion;
mod nn;
pub mod registry;
mod synthetic;
pub mod tracker;
pub mod yolo;

pub use analyzer::{Analysis, Analyzer, AnalyzerOptions, DetectMode};
pub use decode::{DecodeOptions, FrameDecoder};
pub use events::EventManager;
pub use motion::{MotionDetector, MotionOptions, MotionResult};
pub use registry::{DetectorFigures, DetectorStats};
pub use synthetic::SyntheticCamera;
pub use tracker::{filter_detections, ObjectTracker, TrackerOptions};
pub use yolo::{ModelSize, YoloDetector, YoloOptions, YoloV8};
