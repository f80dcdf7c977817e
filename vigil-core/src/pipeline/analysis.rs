//! The analysis branch of a camera: its detect stream supervised like the record stream and fed
//! to a [`FrameAnalyzer`] (decode, motion, detection, tracking, events: `vigil-detect`'s
//! `Analyzer`), whose event writes go to the store.
//!
//! It never holds up recording: it has its own connection, supervisor and queue, and a slow
//! analyser slows only its own stream.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::Serialize;
use tokio::sync::mpsc;

use super::supervisor::StreamEvent;
use crate::error::Result;
use crate::id::IdGenerator;
use crate::media::VideoFrame;
use crate::model::CameraConfig;
use crate::store::{Batch, Mutation, Store};
use crate::time::{Clocks, Timestamp};

/// Turns a camera's detect-stream frames into store writes (events, detections).
#[async_trait]
pub trait FrameAnalyzer: Send {
    /// Analyses one frame (or only decodes it, when it is not due at the detect rate).
    async fn analyze(&mut self, frame: &VideoFrame) -> Result<Vec<Mutation>>;
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
    /// Store writes made.
    pub writes: u64,
    /// The last error, if any.
    pub last_error: Option<String>,
}

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

/// Runs `analyzer` on what arrives on `rx` until the channel closes, then finishes it.
pub(crate) async fn run(
    mut analyzer: Box<dyn FrameAnalyzer>,
    mut rx: mpsc::Receiver<AnalysisInput>,
    store: Arc<dyn Store>,
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
    while let Some(input) = rx.recv().await {
        let AnalysisInput::Frame(frame) = input else {
            continue;
        };
        if let Ok(mut s) = stats.lock() {
            s.frames += 1;
        }
        let r = match analyzer.analyze(&frame).await {
            Ok(m) => apply(&*store, m).await,
            Err(e) => Err(e),
        };
        if let Err(e) = &r {
            tracing::warn!(%camera, err = %e, "analysis failed on a frame");
        }
        record(&stats, &r);
    }
    let r = match analyzer.finish(clocks.realtime()) {
        Ok(m) => apply(&*store, m).await,
        Err(e) => Err(e),
    };
    record(&stats, &r);
}

async fn apply(store: &dyn Store, mutations: Vec<Mutation>) -> Result<usize> {
    let n = mutations.len();
    if n > 0 {
        store.apply(Batch { mutations }).await?;
    }
    Ok(n)
}
