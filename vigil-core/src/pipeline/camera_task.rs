//! One camera at work: its record stream supervised and fed to its recorder, and optionally
//! its detect stream fed to an analyser.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::analysis::{self, AnalysisInput, AnalysisStats, FrameAnalyzer};
use super::recorder::{Recorder, RecorderInput, RecorderOptions, RecorderStats};
use super::supervisor::{
    supervise, SharedCounters, StreamCounters, StreamStats, SupervisorOptions,
};
use crate::error::Result;
use crate::id::IdGenerator;
use crate::media::{Camera, StreamRole};
use crate::model::RecordSettings;
use crate::store::Store;
use crate::time::Clocks;

/// A camera being recorded: a supervisor task on the runtime and a recorder thread.
pub struct CameraTask {
    counters: SharedCounters,
    recorder: Arc<Mutex<RecorderStats>>,
    clocks: Arc<dyn Clocks>,
    input: mpsc::Sender<RecorderInput>,
    stop: watch::Sender<bool>,
    sup: tokio::task::JoinHandle<()>,
    rec: std::thread::JoinHandle<()>,
    analysis: Option<Analysis>,
}

/// The analysis branch: its supervisor, its task and their figures.
struct Analysis {
    counters: SharedCounters,
    stats: Arc<Mutex<AnalysisStats>>,
    latency: Arc<Mutex<analysis::LatencyWindow>>,
    sup: tokio::task::JoinHandle<()>,
    task: tokio::task::JoinHandle<()>,
}

/// How a [`CameraTask`] runs.
#[derive(Clone, Debug)]
pub struct CameraTaskOptions {
    /// Recording settings of the camera.
    pub record: RecordSettings,
    /// Where and how segments are written.
    pub recorder: RecorderOptions,
    /// Reconnection and stall detection.
    pub supervisor: SupervisorOptions,
}

impl CameraTaskOptions {
    /// Defaults, recording into `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        CameraTaskOptions {
            record: RecordSettings::default(),
            recorder: RecorderOptions::new(data_dir),
            supervisor: SupervisorOptions::default(),
        }
    }
}

impl CameraTask {
    /// Starts recording `camera`. Call within a tokio runtime.
    pub fn start(
        camera: Arc<dyn Camera>,
        opts: CameraTaskOptions,
        store: Arc<dyn Store>,
        ids: Arc<IdGenerator>,
        clocks: Arc<dyn Clocks>,
    ) -> Result<CameraTask> {
        let rec = Recorder::new(camera.id().clone(), opts.record, opts.recorder, store, ids)?;
        let recorder = rec.stats();
        // About 10 s of frames: a slow disk slows the camera down rather than growing memory.
        let (input, rec) = rec.spawn(300)?;
        let counters = Arc::new(Mutex::new(StreamCounters::default()));
        let (stop, stop_rx) = watch::channel(false);
        let sup = tokio::spawn(supervise::<RecorderInput>(
            camera,
            StreamRole::Record,
            opts.supervisor,
            clocks.clone(),
            counters.clone(),
            input.clone(),
            stop_rx,
        ));
        Ok(CameraTask {
            counters,
            recorder,
            clocks,
            input,
            stop,
            sup,
            rec,
            analysis: None,
        })
    }

    /// Starts analysing the camera's detect stream (its record stream when it has no
    /// separate one) with `analyzer`, writing what it finds to `store`; while an event is in
    /// progress the recorder is told to keep recording (event mode). The branch has its own
    /// connection and a short queue: a slow analyser delays only its own stream.
    pub fn start_analysis(
        &mut self,
        camera: Arc<dyn Camera>,
        analyzer: Box<dyn FrameAnalyzer>,
        store: Arc<dyn Store>,
        supervisor: SupervisorOptions,
    ) {
        let counters = Arc::new(Mutex::new(StreamCounters::default()));
        let stats = Arc::new(Mutex::new(AnalysisStats::default()));
        let latency = Arc::new(Mutex::new(analysis::LatencyWindow::default()));
        let (tx, rx) = mpsc::channel(32);
        let camera_name = camera.id().to_string();
        let sup = tokio::spawn(supervise::<AnalysisInput>(
            camera,
            StreamRole::Detect,
            supervisor,
            self.clocks.clone(),
            counters.clone(),
            tx,
            self.stop.subscribe(),
        ));
        let task = tokio::spawn(analysis::run(
            analyzer,
            rx,
            analysis::Sinks {
                store,
                recorder: self.input.clone(),
            },
            self.clocks.clone(),
            stats.clone(),
            latency.clone(),
            camera_name,
        ));
        self.analysis = Some(Analysis {
            counters,
            stats,
            latency,
            sup,
            task,
        });
    }

    /// The detect stream's state and the analysis figures, when analysis runs.
    pub fn analysis_stats(&self) -> Option<(StreamStats, AnalysisStats)> {
        let a = self.analysis.as_ref()?;
        let now = self.clocks.monotonic_us();
        let stream = a
            .counters
            .lock()
            .map(|mut c| c.snapshot(now))
            .unwrap_or_default();
        let mut stats = a.stats.lock().map(|s| s.clone()).unwrap_or_default();
        if let Ok(l) = a.latency.lock() {
            stats.latency = l.summary(now);
        }
        Some((stream, stats))
    }

    /// The record stream's state now.
    pub fn stats(&self) -> StreamStats {
        let now = self.clocks.monotonic_us();
        match self.counters.lock() {
            Ok(mut c) => c.snapshot(now),
            Err(_) => StreamStats::default(),
        }
    }

    /// The recorder's counters now.
    pub fn recorder_stats(&self) -> RecorderStats {
        self.recorder.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// A sender to the recorder, for keep-recording requests and new settings.
    pub fn recorder_input(&self) -> mpsc::Sender<RecorderInput> {
        self.input.clone()
    }

    /// Waits up to `limit` for `cond` on the stream state; returns whether it came true.
    pub async fn wait_for(&self, limit: Duration, cond: impl Fn(&StreamStats) -> bool) -> bool {
        let end = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < end {
            if cond(&self.stats()) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        cond(&self.stats())
    }

    /// Stops the camera and closes its open segment.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.sup.await;
        if let Some(a) = self.analysis {
            let _ = a.sup.await;
            let _ = a.task.await;
        }
        drop(self.input);
        let rec = self.rec;
        let _ = tokio::task::spawn_blocking(move || rec.join()).await;
    }
}
