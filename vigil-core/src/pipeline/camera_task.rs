//! One camera at work: its record stream supervised and fed to its recorder.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

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
        })
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
        drop(self.input);
        let rec = self.rec;
        let _ = tokio::task::spawn_blocking(move || rec.join()).await;
    }
}
