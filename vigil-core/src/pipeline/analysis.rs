//! The analysis branch of a camera: its detect stream supervised like the record stream and fed
//! to a [`FrameAnalyzer`] (decode, motion, detection, tracking, events: `vigil-detect`'s
//! `Analyzer`), whose event writes go to the store.
//!
//! It never holds up recording: it has its own connection, supervisor and queue, and a slow
//! analyser slows only its own stream. While an event is in progress it tells the recorder to
//! keep recording ([`RecorderInput::KeepUntil`]), which is what event-mode recording records.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::Serialize;
use tokio::sync::mpsc;

use super::recorder::RecorderInput;
use super::supervisor::StreamEvent;
use crate::error::Result;
use crate::id::{EventId, IdGenerator};
use crate::media::VideoFrame;
use crate::model::CameraConfig;
use crate::store::{Batch, Mutation, Store};
use crate::time::{Clocks, Timestamp};

/// Turns a camera's detect-stream frames into store writes (events, detections).
#[async_trait]
pub trait FrameAnalyzer: Send {
    /// Analyses one frame (or only decodes it, when it is not due at the detect rate).
    async fn analyze(&mut self, frame: &VideoFrame) -> Result<Vec<Mutation>>;
    /// Keeps up with a frame without analysing it, because the analysis is behind: a decoder
    /// must still see every frame, but motion and detection skip it.
    fn skip(&mut self, frame: &VideoFrame) -> Result<()>;
    /// The stream stopped for good: ends what is open at `time`.
    fn finish(&mut self, time: Timestamp) -> Result<Vec<Mutation>>;
}

/// What an [`AnalyzerFactory`] gets besides the camera's configuration.
#[derive(Clone, Debug)]
pub struct AnalysisContext {
    /// Where snapshots go.
    pub data_dir: PathBuf,
    /// Ids for events and detections.
    pub ids: Arc<IdGenerator>,
    /// Where the analysed pictures are published for live views.
    pub live: Arc<super::live::LiveHub>,
}

/// Builds the analyser of a camera, or `None` when the camera analyses nothing.
pub type AnalyzerFactory = Arc<
    dyn Fn(&CameraConfig, &AnalysisContext) -> Result<Option<Box<dyn FrameAnalyzer>>> + Send + Sync,
>;

/// Figures of one camera's analysis.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AnalysisStats {
    /// Frames handed to the analyser.
    pub frames: u64,
    /// Frames it failed on (a corrupt frame, a detector error).
    pub errors: u64,
    /// Frames only decoded, not analysed, because the analysis had fallen more than
    /// [`MAX_LAG`] behind the camera (a detector slower than the detect rate).
    pub skipped: u64,
    /// Store writes made.
    pub writes: u64,
    /// The last error, if any.
    pub last_error: Option<String>,
}

/// How far behind the camera the analysis may fall before frames are only decoded. Event-mode
/// recording hears of an event this late at most, well within any pre-capture of 2 s or more.
pub const MAX_LAG: std::time::Duration = std::time::Duration::from_secs(1);

/// Input of the analysis task.
#[derive(Debug)]
pub enum AnalysisInput {
    /// A frame of the detect stream.
    Frame(VideoFrame),
    /// The connection ended (a reconnect follows).
    StreamEnded,
}

impl From<StreamEvent> for AnalysisInput {
    fn from(e: StreamEvent) -> Self {
        match e {
            StreamEvent::Frame(f) => AnalysisInput::Frame(f),
            StreamEvent::Ended => AnalysisInput::StreamEnded,
        }
    }
}

/// Where the analysis task's results go.
pub(crate) struct Sinks {
    /// Event and detection writes.
    pub store: Arc<dyn Store>,
    /// The camera's recorder, told to keep recording while events are in progress.
    pub recorder: mpsc::Sender<RecorderInput>,
}

/// Runs `analyzer` on what arrives on `rx` until the channel closes, then finishes it.
pub(crate) async fn run(
    mut analyzer: Box<dyn FrameAnalyzer>,
    mut rx: mpsc::Receiver<AnalysisInput>,
    sinks: Sinks,
    clocks: Arc<dyn Clocks>,
    stats: Arc<Mutex<AnalysisStats>>,
    camera: String,
) {
    let record = |stats: &Mutex<AnalysisStats>, r: &Result<usize>| {
        if let Ok(mut s) = stats.lock() {
            match r {
                Ok(n) => s.writes += *n as u64,
                Err(e) => {
                    s.errors += 1;
                    s.last_error = Some(e.to_string());
                }
            }
        }
    };
    let mut in_progress = InProgress::default();
    while let Some(input) = rx.recv().await {
        let AnalysisInput::Frame(frame) = input else {
            continue;
        };
        let behind = clocks.realtime().0.saturating_sub(frame.time.0) > MAX_LAG.as_micros() as i64;
        if let Ok(mut s) = stats.lock() {
            s.frames += 1;
            s.skipped += u64::from(behind);
        }
        let r = if behind {
            analyzer.skip(&frame).map(|()| 0)
        } else {
            match analyzer.analyze(&frame).await {
                Ok(m) => {
                    in_progress.note(&m);
                    apply(&*sinks.store, m).await
                }
                Err(e) => Err(e),
            }
        };
        if let Err(e) = &r {
            tracing::warn!(%camera, err = %e, "analysis failed on a frame");
        }
        record(&stats, &r);
        if in_progress.any() {
            // Best effort: a recorder this far behind gets the next frame's word instead.
            let _ = sinks
                .recorder
                .try_send(RecorderInput::KeepUntil(frame.time));
        }
    }
    let r = match analyzer.finish(clocks.realtime()) {
        Ok(m) => apply(&*sinks.store, m).await,
        Err(e) => Err(e),
    };
    record(&stats, &r);
}

/// The events in progress, as told by the analyser's writes.
#[derive(Default)]
struct InProgress(std::collections::HashSet<EventId>);

impl InProgress {
    fn note(&mut self, mutations: &[Mutation]) {
        for m in mutations {
            if let Mutation::PutEvent(e) = m {
                if e.end_time.is_none() {
                    self.0.insert(e.id);
                } else {
                    self.0.remove(&e.id);
                }
            }
        }
    }

    fn any(&self) -> bool {
        !self.0.is_empty()
    }
}

async fn apply(store: &dyn Store, mutations: Vec<Mutation>) -> Result<usize> {
    let n = mutations.len();
    if n > 0 {
        store.apply(Batch { mutations }).await?;
    }
    Ok(n)
}
