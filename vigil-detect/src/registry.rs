//! Detector backends by name, and the figures each reports.
//!
//! A [`DetectorRegistry`] knows kinds of backend (the built-ins `yolov8` and `motion`, and any
//! a program registers with [`DetectorRegistry::register_kind`]) and holds the named detectors
//! built from them, like Frigate's `detectors:` section. Every detector it holds is measured:
//! inference time and detections per second, what Frigate's `/api/stats` shows per detector.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use vigil_core::{Detector, DetectorInfo, Error, Image, ObjectDetection, Result};

use crate::analyzer::DetectMode;
use crate::yolo::{YoloDetector, YoloOptions, YoloV8};

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
    /// The first run: when (monotonic and wall), the origin of the history's minutes.
    anchor: Option<(Instant, vigil_core::Timestamp)>,
    /// Per minute since the anchor, for the last [`HISTORY_MINUTES`]: (minute, runs, total
    /// ms, longest ms).
    history: VecDeque<(u64, u64, f64, f64)>,
}

/// Minutes of inference-time history kept.
pub const HISTORY_MINUTES: u64 = 60;

/// One minute of a detector's inference times.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LatencyPoint {
    /// Start of the minute.
    pub time: vigil_core::Timestamp,
    /// Runs in it.
    pub runs: u64,
    /// Mean time of a run, in milliseconds.
    pub mean_ms: f64,
    /// Longest run, in milliseconds.
    pub max_ms: f64,
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
        let (origin, _) = *s.anchor.get_or_insert_with(|| {
            (
                now,
                vigil_core::Clocks::realtime(&vigil_core::RealClocks::default()),
            )
        });
        let minute = now.duration_since(origin).as_secs() / 60;
        match s.history.back_mut() {
            Some(b) if b.0 == minute => {
                b.1 += 1;
                b.2 += ms;
                b.3 = b.3.max(ms);
            }
            _ => s.history.push_back((minute, 1, ms, ms)),
        }
        while s
            .history
            .front()
            .is_some_and(|b| b.0 + HISTORY_MINUTES <= minute)
        {
            s.history.pop_front();
        }
        while s
            .recent
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > WINDOW)
        {
            s.recent.pop_front();
        }
    }

    /// Inference times per minute over the last hour, oldest first (minutes without runs are
    /// left out).
    pub fn history(&self) -> Vec<LatencyPoint> {
        let s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Some((_, wall)) = s.anchor else {
            return Vec::new();
        };
        let round = |x: f64| (x * 100.0).round() / 100.0;
        s.history
            .iter()
            .map(|&(minute, runs, total, max)| LatencyPoint {
                time: vigil_core::Timestamp(wall.0 + minute as i64 * 60_000_000),
                runs,
                mean_ms: round(total / runs.max(1) as f64),
                max_ms: round(max),
            })
            .collect()
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

/// What a detector is built from: its kind and settings (one entry of a `detectors` section).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorSpec {
    /// `yolov8`, `motion`, or a kind a program registered.
    pub kind: String,
    /// Weights file (safetensors for `yolov8`).
    pub model: Option<PathBuf>,
    /// Square input size in pixels (`yolov8`: a multiple of 32, 320 by default).
    pub input_size: Option<u32>,
    /// Lowest score reported.
    pub min_score: Option<f32>,
    /// Class names of a custom model (COCO's 80 by default).
    pub labels: Option<Vec<String>>,
}

/// Builds a detector of one kind from its spec.
pub type DetectorBuilder = Arc<dyn Fn(&DetectorSpec) -> Result<Arc<dyn Detector>> + Send + Sync>;

/// One detector the registry holds.
#[derive(Clone)]
pub enum Backend {
    /// Motion alone: needs no weights; moving areas are the objects.
    Motion,
    /// A model, measured.
    Model(Arc<Measured>),
}

impl Backend {
    /// How an analyser finds objects with this backend: on regions around motion and the
    /// objects followed, or (`regions` false) on the whole picture.
    pub fn mode(&self, regions: bool) -> DetectMode {
        match self {
            Backend::Motion => DetectMode::Motion,
            Backend::Model(m) if regions => DetectMode::Regions(m.clone()),
            Backend::Model(m) => DetectMode::Full(m.clone()),
        }
    }
}

/// Kinds of detector backend, and the detectors built from them by name.
pub struct DetectorRegistry {
    kinds: BTreeMap<String, DetectorBuilder>,
    detectors: BTreeMap<String, Backend>,
}

impl std::fmt::Debug for DetectorRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DetectorRegistry")
            .field("kinds", &self.kinds.keys().collect::<Vec<_>>())
            .field("detectors", &self.detectors.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Default for DetectorRegistry {
    fn default() -> Self {
        DetectorRegistry::new()
    }
}

impl DetectorRegistry {
    /// A registry with the built-in kinds, `yolov8` (weights from `model`) and `motion`, and
    /// no detectors yet.
    pub fn new() -> DetectorRegistry {
        let mut kinds: BTreeMap<String, DetectorBuilder> = BTreeMap::new();
        kinds.insert("yolov8".to_owned(), Arc::new(build_yolov8));
        DetectorRegistry {
            kinds,
            detectors: BTreeMap::new(),
        }
    }

    /// Makes `kind` available to [`add`](Self::add); replaces a kind of the same name.
    pub fn register_kind(&mut self, kind: &str, builder: DetectorBuilder) {
        self.kinds.insert(kind.to_owned(), builder);
    }

    /// The kinds known, `motion` included.
    pub fn kinds(&self) -> Vec<String> {
        let mut k: Vec<String> = self.kinds.keys().cloned().collect();
        k.push("motion".to_owned());
        k.sort();
        k
    }

    /// Builds the detector `name` from `spec`. Fails on an unknown kind, a bad name or what
    /// the builder rejects (a missing weights file, a bad input size).
    pub fn add(&mut self, name: &str, spec: &DetectorSpec) -> Result<()> {
        validate_name(name)?;
        let backend = if spec.kind == "motion" {
            Backend::Motion
        } else {
            let build = self.kinds.get(&spec.kind).ok_or_else(|| {
                Error::invalid(format!(
                    "detector {name:?}: unknown kind {:?} (known: {})",
                    spec.kind,
                    self.kinds().join(", ")
                ))
            })?;
            let d = build(spec).map_err(|e| {
                Error::new(e.kind(), format!("detector {name:?}: {}", e.message())).with_source(e)
            })?;
            Backend::Model(Arc::new(Measured::new(d)))
        };
        self.detectors.insert(name.to_owned(), backend);
        Ok(())
    }

    /// Holds a detector a program built itself under `name` (measured like the others).
    pub fn insert(&mut self, name: &str, detector: Arc<dyn Detector>) -> Result<()> {
        validate_name(name)?;
        self.detectors.insert(
            name.to_owned(),
            Backend::Model(Arc::new(Measured::new(detector))),
        );
        Ok(())
    }

    /// The detector `name`.
    pub fn get(&self, name: &str) -> Option<&Backend> {
        self.detectors.get(name)
    }

    /// The detector cameras use when they name none: the first model, in name order, else
    /// motion.
    pub fn default_backend(&self) -> Backend {
        self.detectors
            .values()
            .find(|b| matches!(b, Backend::Model(_)))
            .cloned()
            .unwrap_or(Backend::Motion)
    }

    /// The name of [`DetectorRegistry::default_backend`], or `None` when that is motion
    /// alone.
    pub fn default_name(&self) -> Option<String> {
        self.detectors
            .iter()
            .find(|(_, b)| matches!(b, Backend::Model(_)))
            .map(|(n, _)| n.clone())
    }

    /// Names of the detectors held.
    pub fn names(&self) -> Vec<String> {
        self.detectors.keys().cloned().collect()
    }

    /// Each model detector's inference times per minute over the last hour.
    pub fn history(&self) -> BTreeMap<String, Vec<LatencyPoint>> {
        self.detectors
            .iter()
            .filter_map(|(name, b)| match b {
                Backend::Model(m) => Some((name.clone(), m.stats().history())),
                Backend::Motion => None,
            })
            .collect()
    }

    /// What each model detector is and its figures, by name.
    pub fn figures(&self) -> BTreeMap<String, (DetectorInfo, DetectorFigures)> {
        self.detectors
            .iter()
            .filter_map(|(name, b)| match b {
                Backend::Model(m) => Some((name.clone(), (m.info(), m.stats().figures()))),
                Backend::Motion => None,
            })
            .collect()
    }
}

fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "detector name {name:?} must be 1-64 letters, digits, '_' or '-'"
        )))
    }
}

fn build_yolov8(spec: &DetectorSpec) -> Result<Arc<dyn Detector>> {
    let path = spec
        .model
        .as_ref()
        .ok_or_else(|| Error::invalid("a yolov8 detector needs a model (a .safetensors file)"))?;
    let model = YoloV8::load(path)?;
    let defaults = YoloOptions::default();
    let options = YoloOptions {
        input_size: spec.input_size.unwrap_or(defaults.input_size),
        min_score: spec.min_score.unwrap_or(defaults.min_score),
        labels: spec.labels.clone(),
        ..defaults
    };
    Ok(Arc::new(YoloDetector::new(Arc::new(model), options)?))
}

/// A detector whose every run is timed and counted.
pub struct Measured {
    inner: Arc<dyn Detector>,
    stats: Arc<DetectorStats>,
}

impl Measured {
    /// Measures `inner`.
    pub fn new(inner: Arc<dyn Detector>) -> Measured {
        Measured {
            inner,
            stats: Arc::default(),
        }
    }

    /// Its figures so far.
    pub fn stats(&self) -> &Arc<DetectorStats> {
        &self.stats
    }
}

#[async_trait]
impl Detector for Measured {
    fn info(&self) -> DetectorInfo {
        self.inner.info()
    }

    async fn detect(&self, image: Arc<Image>) -> Result<Vec<ObjectDetection>> {
        let started = Instant::now();
        let found = self.inner.detect(image).await?;
        self.stats.record(started.elapsed(), 1, found.len());
        Ok(found)
    }

    async fn detect_many(&self, images: Vec<Arc<Image>>) -> Result<Vec<Vec<ObjectDetection>>> {
        let started = Instant::now();
        let n = images.len();
        let found = self.inner.detect_many(images).await?;
        self.stats
            .record(started.elapsed(), n, found.iter().map(Vec::len).sum());
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_buckets_runs_by_minute() {
        let stats = DetectorStats::default();
        assert!(stats.history().is_empty());
        for ms in [10, 20, 30] {
            stats.record(Duration::from_millis(ms), 1, 0);
        }
        let h = stats.history();
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!((h[0].runs, h[0].mean_ms, h[0].max_ms), (3, 20.0, 30.0));
    }
}
