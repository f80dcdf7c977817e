//! One camera's analysis, frame by frame: decode the detect stream at the detect rate, find
//! motion, detect objects (or take motion itself as the object), filter, track, and turn
//! tracked objects into events.

use std::path::Path;
use std::sync::Arc;

use vigil_core::{
    CameraId, Detector, IdGenerator, Image, Mutation, ObjectDetection, ObjectFilter, Result,
    Timestamp, TrackedObject, Tracker, VideoFrame,
};

use crate::decode::{DecodeOptions, FrameDecoder};
use crate::events::EventManager;
use crate::motion::{MotionDetector, MotionOptions, MotionResult};
use crate::tracker::{filter_detections, ObjectTracker, TrackerOptions};

/// What finds the objects.
#[derive(Clone)]
pub enum DetectMode {
    /// Motion alone: each moving area is an object labelled `motion` (no weights needed).
    Motion,
    /// A detector on the whole picture, run when there is motion or an object to follow.
    Full(Arc<dyn Detector>),
}

impl std::fmt::Debug for DetectMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DetectMode::Motion => f.write_str("Motion"),
            DetectMode::Full(d) => write!(f, "Full({})", d.info().name),
        }
    }
}

/// Settings of an [`Analyzer`].
#[derive(Clone, Debug)]
pub struct AnalyzerOptions {
    /// Detect size and rate.
    pub decode: DecodeOptions,
    /// Motion detection.
    pub motion: MotionOptions,
    /// What finds objects.
    pub mode: DetectMode,
    /// Labels followed; empty follows all.
    pub labels: Vec<String>,
    /// Per-label filters.
    pub filters: Vec<ObjectFilter>,
    /// Tracking and zones.
    pub tracker: TrackerOptions,
}

/// What one analysed picture gave.
#[derive(Clone, Debug, Default)]
pub struct Analysis {
    /// The picture's time.
    pub time: Timestamp,
    /// Motion in it.
    pub motion: MotionResult,
    /// Detections kept by the filters.
    pub detections: Vec<ObjectDetection>,
    /// Objects followed after it.
    pub objects: Vec<TrackedObject>,
    /// Store writes for the events that opened, changed or ended.
    pub mutations: Vec<Mutation>,
}

/// The analysis pipeline of one camera.
#[derive(Debug)]
pub struct Analyzer {
    decoder: FrameDecoder,
    motion: MotionDetector,
    tracker: ObjectTracker,
    events: EventManager,
    options: AnalyzerOptions,
    last: Option<Image>,
}

impl Analyzer {
    /// An analyser for `camera`, writing snapshots under `data_dir`.
    pub fn new(
        camera: CameraId,
        data_dir: &Path,
        ids: Arc<IdGenerator>,
        options: AnalyzerOptions,
    ) -> Result<Analyzer> {
        Ok(Analyzer {
            decoder: FrameDecoder::new(options.decode)?,
            motion: MotionDetector::new(options.motion.clone())?,
            tracker: ObjectTracker::new(options.tracker.clone()),
            events: EventManager::new(camera, data_dir, ids),
            options,
            last: None,
        })
    }

    /// The latest analysed picture.
    pub fn latest(&self) -> Option<&Image> {
        self.last.as_ref()
    }

    /// Feeds one frame of the detect stream; returns the analysis when the frame was due.
    pub async fn push(&mut self, frame: &VideoFrame) -> Result<Option<Analysis>> {
        let Some(image) = self.decoder.push(frame)? else {
            return Ok(None);
        };
        let motion = self.motion.detect(&image)?;
        let raw = match &self.options.mode {
            DetectMode::Motion => motion
                .boxes
                .iter()
                .map(|b| ObjectDetection {
                    label: "motion".to_owned(),
                    score: 1.0,
                    bbox: *b,
                })
                .collect(),
            DetectMode::Full(d) => {
                let following = !self.tracker.objects().is_empty();
                if motion.boxes.is_empty() && !following {
                    Vec::new()
                } else {
                    d.detect(Arc::new(image.clone())).await?
                }
            }
        };
        let detections = filter_detections(
            &raw,
            &self.options.labels,
            &self.options.filters,
            (image.width, image.height),
        );
        let objects = self.tracker.update(image.time, &detections);
        let removed = self.tracker.take_removed();
        let mutations = self.events.update(&image, &objects, &removed)?;
        let time = image.time;
        self.last = Some(image);
        Ok(Some(Analysis {
            time,
            motion,
            detections,
            objects,
            mutations,
        }))
    }

    /// Ends the open events at `time` (the stream ended or the camera stops).
    pub fn finish(&mut self, time: Timestamp) -> Result<Vec<Mutation>> {
        self.events.end_all(time)
    }
}
