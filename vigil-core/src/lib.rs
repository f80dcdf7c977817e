//! The core of Vigil, a network video recorder engine: the domain model, the seams between the
//! parts ([`Camera`], [`Detector`], [`Tracker`], [`Store`]) and the types every other crate
//! shares (errors, time, ids, queries).
//!
//! `vigil-core` depends on no storage engine, HTTP stack or neural-network library: the LMDB
//! store lives in `vigil-store`, the HTTP API in `vigil-http`, YOLOv8 in `vigil-detect`. A
//! program that embeds Vigil picks implementations of the traits and hands them to the pipeline.
//!
//! # Layout
//! - [`error`]: [`ErrorKind`], the one classification of failures, and the core [`Error`].
//! - [`time`]: [`Timestamp`] (µs since the epoch) and the [`Clocks`] seam.
//! - [`id`]: time-ordered record ids and validated [`CameraId`]s.
//! - [`model`]: cameras, zones, events, detections, recordings, snapshots, triggers, accounts,
//!   alert rules, audit and log entries.
//! - [`query`]: filters, sort orders, pages and aggregates the [`Store`] answers.
//! - [`store`]: the [`Store`] trait and its write [`Batch`]es.
//! - [`media`]: the [`Camera`], [`Detector`] and [`Tracker`] traits and the frames they pass.
//! - [`camera`]: built-in cameras (RTSP, file).
//! - [`h264`]: NAL units, parameter sets and the `avcC` record.
//! - [`pipeline`]: per-camera supervision (reconnects, stall watchdog, counters) and the
//!   crash-safe recorder.
//! - [`mp4`]: fragmented segments written as frames arrive, reading, crash salvage, clips.
//!
//! # Example
//!
//! Describing a camera and the event it produced, ready to commit to any [`Store`]:
//!
//! ```
//! use vigil_core::{
//!     Batch, BBox, CameraConfig, CameraId, Event, EventId, IdGenerator, Mutation, ReviewStatus,
//!     Source, Timestamp,
//! };
//!
//! let now = Timestamp::parse("2025-12-23T12:00:00Z")?;
//! let cam = CameraConfig::new(
//!     CameraId::new("front-door")?,
//!     Source::Synthetic { width: 1280, height: 720, fps: 15 },
//!     now,
//! );
//! let ids = IdGenerator::new(0);
//! let event = Event {
//!     id: EventId(ids.next(now)),
//!     camera: cam.id.clone(),
//!     label: "person".into(),
//!     sub_label: None,
//!     score: 0.81,
//!     top_score: 0.9,
//!     start_time: now,
//!     end_time: None,
//!     zones: vec!["porch".into()],
//!     tracker_id: Some(7),
//!     bbox: BBox { x1: 0.4, y1: 0.2, x2: 0.6, y2: 0.9 },
//!     has_clip: true,
//!     has_snapshot: true,
//!     retain: false,
//!     review: ReviewStatus::Unreviewed,
//!     notes: None,
//!     risk_score: None,
//!     best: None,
//!     stationary: false,
//!     detection_count: 12,
//! };
//! let batch: Batch = [Mutation::PutCamera(Box::new(cam)), Mutation::PutEvent(Box::new(event))]
//!     .into_iter()
//!     .collect();
//! for m in &batch.mutations {
//!     m.validate()?;
//! }
//! assert_eq!(batch.len(), 2);
//! # Ok::<(), vigil_core::Error>(())
//! ```
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![forbid(clippy::print_stdout, clippy::print_stderr)]

pub mod camera;
pub mod config;
pub mod error;
pub mod h264;
pub mod id;
pub mod media;
pub mod model;
pub mod mp4;
pub mod pipeline;
pub mod query;
pub mod store;
#[cfg(feature = "test-util")]
pub mod testing;
pub mod time;

pub use error::{Error, ErrorKind, Result};
pub use id::*;
pub use media::*;
pub use model::*;
pub use query::*;
pub use store::{Batch, Mutation, Store};
pub use time::{Clocks, Iso, RealClocks, SimulatedClocks, Timestamp};
