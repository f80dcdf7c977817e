//! The running system: [`Nvr`] holds a [`CameraTask`] per enabled camera, which supervises the
//! camera's record stream ([`supervise`]) and feeds its [`Recorder`].

pub mod analysis;
pub mod camera_task;
pub mod clip;
pub mod live;
pub mod nvr;
pub mod recorder;
pub mod restream;
pub mod retention;
pub mod supervisor;
pub mod triggers;

pub use analysis::{
    AnalysisContext, AnalysisInput, AnalysisStats, AnalyzerFactory, FrameAnalyzer, LatencySummary,
    PipelineLatency, LATENCY_WINDOW, MAX_LAG,
};
pub use camera_task::{CameraTask, CameraTaskOptions};
pub use clip::{event_clip_range, open_segments, write_clip, write_event_clip, ClipInfo};
pub use live::{LiveFrame, LiveHub, LiveReceiver};
pub use nvr::{CameraFactory, CameraStatus, ManualEvent, Nvr, NvrOptions};
pub use recorder::{
    art_paths, reconcile, segment_path, Recorder, RecorderInput, RecorderOptions, RecorderStats,
};
pub use restream::{Feed, RestreamHub};
pub use retention::{default_reserve, DiskBudget, Retention, RetentionReport, StorageStats};
pub use supervisor::{
    supervise, Backoff, SharedCounters, StreamCounters, StreamEvent, StreamStats, SupervisorOptions,
};
pub use triggers::{TriggerState, Triggers};
