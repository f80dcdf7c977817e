//! The per-camera pipeline: supervision of the camera's streams and the recorder.

pub mod recorder;
pub mod supervisor;

pub use recorder::{reconcile, Recorder, RecorderInput, RecorderOptions, RecorderStats};
pub use supervisor::{
    supervise, Backoff, SharedCounters, StreamCounters, StreamEvent, StreamStats, SupervisorOptions,
};
