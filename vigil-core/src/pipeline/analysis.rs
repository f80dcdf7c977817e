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
    /// The stream's time jumped by more than [`MAX_JUMP`] (the wall clock stepped): ends what
    /// is open at `time`, the last time before the jump, and starts afresh, as nothing tracked can be followed across it.
    /// By default, [`FrameAnalyzer::finish`].
    fn restart(&mut self, time: Timestamp) -> Result<Vec<Mutation>> {
        self.finish(time)
    }
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
    /// Where analysed frames' time went over the last [`LATENCY_WINDOW`].
    pub latency: PipelineLatency,
}

/// Span of the latency figures.
pub const LATENCY_WINDOW: std::time::Duration = std::time::Duration::from_secs(300);
/// Most frames the latency figures keep (5 minutes at 10 fps).
const LATENCY_SAMPLES: usize = 3000;

/// One stage's times over the window, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Frames measured.
    pub samples: u64,
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Longest.
    pub max_ms: f64,
}

/// Where an analysed frame's time goes, from its capture to its events being stored.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PipelineLatency {
    /// Capture to the start of its analysis: the network, the camera connection, the queue.
    pub wait: LatencySummary,
    /// Its analysis: decoding, motion, detection, tracking, events.
    pub analyze: LatencySummary,
    /// Storing what the analysis wrote (events, detections).
    pub write: LatencySummary,
    /// Capture to stored: what a push notification waits at least.
    pub total: LatencySummary,
}

/// The recent frames' stage times.
#[derive(Debug, Default)]
pub(crate) struct LatencyWindow {
    /// (monotonic µs when measured, [wait, analyze, write] in ms).
    samples: std::collections::VecDeque<(i64, [f32; 3])>,
}

impl LatencyWindow {
    fn push(&mut self, now_us: i64, stages: [f32; 3]) {
        self.samples.push_back((now_us, stages));
        if self.samples.len() > LATENCY_SAMPLES {
            self.samples.pop_front();
        }
    }

    /// The figures of the frames measured within [`LATENCY_WINDOW`] of `now_us`.
    pub(crate) fn summary(&self, now_us: i64) -> PipelineLatency {
        let since = now_us - LATENCY_WINDOW.as_micros() as i64;
        let recent: Vec<[f32; 3]> = self
            .samples
            .iter()
            .filter(|(t, _)| *t >= since)
            .map(|(_, s)| *s)
            .collect();
        let stage = |f: &dyn Fn(&[f32; 3]) -> f32| {
            let mut v: Vec<f64> = recent.iter().map(|s| f64::from(f(s))).collect();
            summarize(&mut v)
        };
        PipelineLatency {
            wait: stage(&|s| s[0]),
            analyze: stage(&|s| s[1]),
            write: stage(&|s| s[2]),
            total: stage(&|s| s[0] + s[1] + s[2]),
        }
    }
}

fn summarize(v: &mut [f64]) -> LatencySummary {
    if v.is_empty() {
        return LatencySummary::default();
    }
    v.sort_by(f64::total_cmp);
    let pct = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    let round = |x: f64| (x * 100.0).round() / 100.0;
    LatencySummary {
        samples: v.len() as u64,
        mean_ms: round(v.iter().sum::<f64>() / v.len() as f64),
        p50_ms: round(pct(0.5)),
        p95_ms: round(pct(0.95)),
        p99_ms: round(pct(0.99)),
        max_ms: round(v[v.len() - 1]),
    }
}

/// How far behind the camera the analysis may fall before frames are only decoded. Event-mode
/// recording hears of an event this late at most, well within any pre-capture of 2 s or more.
pub const MAX_LAG: std::time::Duration = std::time::Duration::from_secs(1);

/// How far the stream's time may run apart from the monotonic clock across a reconnection (or
/// run back) before what is tracked is given up: the supervisor follows steps of the wall clock
/// (see [`CLOCK_STEP`](super::supervisor::CLOCK_STEP)), so the stream's time jumps by the step.
pub const MAX_JUMP: std::time::Duration = std::time::Duration::from_secs(5);

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
    latency: Arc<Mutex<LatencyWindow>>,
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
    let mut lag = Lag::default();
    // The last frame's time and when (monotonic) it was taken; whether the stream ended since.
    let mut last: Option<(Timestamp, i64)> = None;
    let mut ended = false;
    while let Some(input) = rx.recv().await {
        let frame = match input {
            AnalysisInput::Frame(f) => f,
            AnalysisInput::StreamEnded => {
                ended = true;
                lag = Lag::default();
                continue;
            }
        };
        let mono = clocks.monotonic_us();
        if let Some((t, m)) = last {
            // Across a reconnection the stream's time runs on as the monotonic clock did; when
            // it does not (the wall clock stepped), or when it runs back, what is open ends
            // where its time ended.
            let step = MAX_JUMP.as_micros() as i64;
            let ran = frame.time.0.saturating_sub(t.0);
            if ran < -step || (ended && ran.saturating_sub(mono - m).abs() > step) {
                tracing::info!(%camera, "the stream's time jumped: its events end before the jump");
                let r = match analyzer.restart(t) {
                    Ok(m) => {
                        in_progress.note(&m);
                        apply(&*sinks.store, m).await
                    }
                    Err(e) => Err(e),
                };
                record(&stats, &r);
            }
        }
        ended = false;
        last = Some((frame.time, mono));
        let behind = lag.of(frame.time, mono, rx.is_empty()) > MAX_LAG.as_micros() as i64;
        if let Ok(mut s) = stats.lock() {
            s.frames += 1;
            s.skipped += u64::from(behind);
        }
        let r = if behind {
            analyzer.skip(&frame).map(|()| 0)
        } else {
            let ms = |us: i64| (us.max(0) as f64 / 1e3) as f32;
            let wait = ms(clocks.realtime().0.saturating_sub(frame.time.0));
            let t0 = clocks.monotonic_us();
            match analyzer.analyze(&frame).await {
                Ok(m) => {
                    in_progress.note(&m);
                    let t1 = clocks.monotonic_us();
                    let r = apply(&*sinks.store, m).await;
                    let t2 = clocks.monotonic_us();
                    if let Ok(mut l) = latency.lock() {
                        l.push(t2, [wait, ms(t1 - t0), ms(t2 - t1)]);
                    }
                    r
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
    // Open events end at the last frame's time: the wall clock may have stepped since.
    let end = last.map_or_else(|| clocks.realtime(), |(t, _)| t);
    let r = match analyzer.finish(end) {
        Ok(m) => apply(&*sinks.store, m).await,
        Err(e) => Err(e),
    };
    record(&stats, &r);
}

/// How long frames wait for the analysis: the monotonic time since a reference frame less the
/// stream's time since it. The reference is the frame that waited least, taken again when the
/// queue is empty and it is over a minute old, so a camera's clock drifting from the monotonic
/// clock does not add up; the wall clock, which may step, has no part in it.
#[derive(Debug, Default)]
struct Lag {
    /// The reference frame's time and when (monotonic µs) it was taken.
    reference: Option<(i64, i64)>,
}

impl Lag {
    /// The wait of a frame of `time` taken at `mono`; `caught_up` when no frame waits behind it.
    fn of(&mut self, time: Timestamp, mono: i64, caught_up: bool) -> i64 {
        if let Some((t, m)) = self.reference {
            let lag = (mono - m).saturating_sub(time.0.saturating_sub(t));
            let stale = caught_up && mono - m > 60_000_000;
            if lag >= 0 && !stale {
                return lag;
            }
        }
        self.reference = Some((time.0, mono));
        0
    }
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

/// Writes the analyser's changes. Its events are its own copies: what people set on an event
/// in progress since (a review, notes, keeping it, a sub label) must be kept, or the next
/// update of the event would undo it. So each event goes in as an [`Mutation::UpdateEvent`],
/// which the store resolves against the stored event inside its write.
async fn apply(store: &dyn Store, mutations: Vec<Mutation>) -> Result<usize> {
    let n = mutations.len();
    if n > 0 {
        let mutations = mutations
            .into_iter()
            .map(|m| match m {
                Mutation::PutEvent(e) => Mutation::UpdateEvent(e),
                m => m,
            })
            .collect();
        store.apply(Batch { mutations }).await?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_percentiles_over_the_window() {
        let mut w = LatencyWindow::default();
        // 100 frames: wait 1..=100 ms, analysis 10 ms, write 1 ms, one a second.
        for i in 0..100i64 {
            w.push(i * 1_000_000, [(i + 1) as f32, 10.0, 1.0]);
        }
        let s = w.summary(99 * 1_000_000);
        assert_eq!(s.wait.samples, 100);
        assert_eq!(
            (s.wait.p50_ms, s.wait.p95_ms, s.wait.max_ms),
            (51.0, 95.0, 100.0)
        );
        assert_eq!(s.wait.mean_ms, 50.5);
        assert_eq!((s.analyze.p99_ms, s.write.mean_ms), (10.0, 1.0));
        assert_eq!(s.total.max_ms, 111.0);
        // Five minutes later only the frames since count; later still, none.
        let s = w.summary(99 * 1_000_000 + LATENCY_WINDOW.as_micros() as i64 - 9_000_000);
        assert_eq!(s.wait.samples, 10);
        assert_eq!(s.wait.p50_ms, 96.0); // frames 91..=100: the upper median
        assert_eq!(w.summary(1 << 50), PipelineLatency::default());
        // The window keeps at most LATENCY_SAMPLES frames.
        for i in 0..(LATENCY_SAMPLES as i64 + 10) {
            w.push(200_000_000 + i, [1.0, 1.0, 1.0]);
        }
        assert_eq!(w.samples.len(), LATENCY_SAMPLES);
    }
}
