//! Detector backends by name, and the figures each reports.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Inference figures of one detector, the ones Frigate's `/api/stats` shows.
#[derive(Debug, Default)]
pub struct DetectorStats {
    inner: Mutex<StatsInner>,
}

#[derive(Debug, Default)]
struct StatsInner {
    runs: u64,
    images: u64,
    detections: u64,
    /// Exponential moving average of one run's time, in milliseconds.
    inference_ms: f64,
    /// Runs of the last [`WINDOW`]: when, and how many detections.
    recent: VecDeque<(Instant, usize)>,
}

/// Span of the per-second rates.
const WINDOW: Duration = Duration::from_secs(10);

/// A snapshot of [`DetectorStats`].
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct DetectorFigures {
    /// Runs so far.
    pub runs: u64,
    /// Images analysed so far.
    pub images: u64,
    /// Objects found so far.
    pub detections: u64,
    /// Time of one run, smoothed, in milliseconds.
    pub inference_ms: f64,
    /// Runs per second over the last ten seconds.
    pub runs_per_second: f64,
    /// Detections per second over the last ten seconds.
    pub detections_per_second: f64,
}

impl DetectorStats {
    /// Counts one run over `images` pictures that took `took` and found `found` objects.
    pub fn record(&self, took: Duration, images: usize, found: usize) {
        let now = Instant::now();
        let mut s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let ms = took.as_secs_f64() * 1e3;
        s.inference_ms = if s.runs == 0 {
            ms
        } else {
            s.inference_ms * 0.9 + ms * 0.1
        };
        s.runs += 1;
        s.images += images as u64;
        s.detections += found as u64;
        s.recent.push_back((now, found));
        while s
            .recent
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > WINDOW)
        {
            s.recent.pop_front();
        }
    }

    /// The figures now.
    pub fn figures(&self) -> DetectorFigures {
        let now = Instant::now();
        let s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let recent: Vec<_> = s
            .recent
            .iter()
            .filter(|(t, _)| now.duration_since(*t) <= WINDOW)
            .collect();
        let secs = WINDOW.as_secs_f64();
        DetectorFigures {
            runs: s.runs,
            images: s.images,
            detections: s.detections,
            inference_ms: s.inference_ms,
            runs_per_second: recent.len() as f64 / secs,
            detections_per_second: recent.iter().map(|(_, n)| *n as f64).sum::<f64>() / secs,
        }
    }
}
