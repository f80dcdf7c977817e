//! One camera's analysis, frame by frame: decode the detect stream at the detect rate, find
//! motion, detect objects (or take motion itself as the object), filter, track, and turn
//! tracked objects into events.

use std::path::Path;
use std::sync::Arc;

use vigil_core::pipeline::{AnalysisContext, AnalyzerFactory, FrameAnalyzer, LiveFrame, LiveHub};
use vigil_core::{
    BBox, CameraId, Detector, IdGenerator, Image, Mutation, ObjectDetection, ObjectFilter, Result,
    Timestamp, TrackedObject, Tracker, VideoFrame,
};

use crate::decode::{DecodeOptions, FrameDecoder};
use crate::events::EventManager;
use crate::motion::{MotionDetector, MotionOptions, MotionResult};
use crate::registry::{Backend, DetectorRegistry};
use crate::tracker::{filter_detections, ObjectTracker, TrackerOptions};

/// The label of what a motion-only camera follows: moving areas, not objects (events and
/// detections carry it; MQTT keeps it out of the object counts).
pub const MOTION_LABEL: &str = "motion";

/// What finds the objects.
#[derive(Clone)]
pub enum DetectMode {
    /// Motion alone: each moving area is an object labelled `motion` (no weights needed).
    Motion,
    /// A detector on the whole picture, run when there is motion or an object to follow.
    Full(Arc<dyn Detector>),
    /// A detector on square regions around motion and the objects followed (never smaller
    /// than the detector's input), batched; boxes are mapped back to the picture and the
    /// duplicates where regions overlap merged. Small, distant objects are found at the
    /// detector's full resolution, and still scenes cost nothing.
    Regions(Arc<dyn Detector>),
}

impl std::fmt::Debug for DetectMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DetectMode::Motion => f.write_str("Motion"),
            DetectMode::Full(d) => write!(f, "Full({})", d.info().name),
            DetectMode::Regions(d) => write!(f, "Regions({})", d.info().name),
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
    /// Whether the camera's recordings cover its events, so that they have clips.
    pub clips: bool,
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
    /// Pictures analysed.
    frames: u64,
    /// Where each analysed picture is published for live views.
    live: Option<(CameraId, Arc<LiveHub>)>,
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
            events: EventManager::new(camera, data_dir, ids).with_clips(options.clips),
            options,
            last: None,
            frames: 0,
            live: None,
        })
    }

    /// Publishes every analysed picture, with what was found in it, to `hub` as `camera`'s.
    pub fn with_live(mut self, camera: CameraId, hub: Arc<LiveHub>) -> Analyzer {
        self.live = Some((camera, hub));
        self
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
        let mut searched: Vec<BBox> = Vec::new();
        let raw = match &self.options.mode {
            DetectMode::Motion => motion
                .boxes
                .iter()
                .map(|b| ObjectDetection {
                    label: MOTION_LABEL.to_owned(),
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
            DetectMode::Regions(d) => {
                let objects = self.tracker.objects();
                let min_side = d.info().input_size;
                let regions = regions(
                    &motion.boxes,
                    &objects,
                    image.width,
                    image.height,
                    min_side,
                    self.frames,
                );
                let (w, h) = (image.width as f32, image.height as f32);
                searched = regions
                    .iter()
                    .map(|&(x, y, side)| BBox {
                        x1: x as f32 / w,
                        y1: y as f32 / h,
                        x2: (x + side) as f32 / w,
                        y2: (y + side) as f32 / h,
                    })
                    .collect();
                detect_regions(d.as_ref(), &image, &regions).await?
            }
        };
        self.frames += 1;
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
        if let Some((camera, hub)) = &self.live {
            hub.publish(
                camera,
                LiveFrame {
                    time,
                    image: image.clone(),
                    objects: objects.clone(),
                    motion: motion.boxes.clone(),
                    regions: searched,
                },
            );
        }
        self.last = Some(image);
        Ok(Some(Analysis {
            time,
            motion,
            detections,
            objects,
            mutations,
        }))
    }

    /// Decodes a frame without analysing it (the analysis is behind the camera).
    pub fn skip(&mut self, frame: &VideoFrame) -> Result<()> {
        self.decoder.skip(frame)
    }

    /// Ends the open events at `time` (the stream ended or the camera stops).
    pub fn finish(&mut self, time: Timestamp) -> Result<Vec<Mutation>> {
        self.events.end_all(time)
    }

    /// The stream's time jumped: ends the open events at `time`, the last time before the
    /// jump, and forgets the tracked objects (the decoder and the motion background go on).
    pub fn restart(&mut self, time: Timestamp) -> Result<Vec<Mutation>> {
        self.tracker.forget();
        self.events.end_all(time)
    }
}

#[async_trait::async_trait]
impl FrameAnalyzer for Analyzer {
    async fn analyze(&mut self, frame: &VideoFrame) -> Result<Vec<Mutation>> {
        Ok(self
            .push(frame)
            .await?
            .map(|a| a.mutations)
            .unwrap_or_default())
    }

    fn skip(&mut self, frame: &VideoFrame) -> Result<()> {
        Analyzer::skip(self, frame)
    }

    fn finish(&mut self, time: Timestamp) -> Result<Vec<Mutation>> {
        Analyzer::finish(self, time)
    }

    fn restart(&mut self, time: Timestamp) -> Result<Vec<Mutation>> {
        Analyzer::restart(self, time)
    }
}

impl AnalyzerOptions {
    /// The options a camera's configuration asks for, finding objects with `mode`.
    pub fn for_camera(cfg: &vigil_core::CameraConfig, mode: DetectMode) -> AnalyzerOptions {
        let even = |v: u32| (v.max(16) / 2) * 2;
        let motion_only = matches!(mode, DetectMode::Motion);
        AnalyzerOptions {
            decode: DecodeOptions {
                width: Some(even(cfg.detect.width)),
                height: Some(even(cfg.detect.height)),
                fps: Some(f64::from(cfg.detect.fps.max(1))),
            },
            motion: MotionOptions::from(&cfg.motion),
            mode,
            // Motion's objects are labelled `motion`, which no label list names.
            labels: if motion_only {
                Vec::new()
            } else {
                cfg.detect.labels.clone()
            },
            filters: cfg.detect.filters.clone(),
            tracker: TrackerOptions {
                filters: cfg.detect.filters.clone(),
                zones: cfg.zones.clone(),
                max_missed: (cfg.detect.fps.max(1) * cfg.detect.max_disappeared_s.max(1)).max(3),
                ..TrackerOptions::default()
            },
            clips: cfg.record.enabled && cfg.record.mode != vigil_core::RecordMode::Off,
        }
    }
}

/// Builds each camera's analyser for an [`Nvr`](vigil_core::pipeline::Nvr): the registry's
/// default detector (on regions around motion and followed objects, or with `regions` false
/// on the whole picture) for cameras whose object detection is on, motion alone when the
/// registry has no model or the camera only has motion detection on, nothing when both are off.
pub fn analyzer_factory(registry: Arc<DetectorRegistry>, regions: bool) -> AnalyzerFactory {
    Arc::new(
        move |cfg: &vigil_core::CameraConfig, ctx: &AnalysisContext| {
            let backend = registry.default_backend();
            let mode = match backend {
                Backend::Model(_) if cfg.detect.enabled => backend.mode(regions),
                _ if cfg.motion.enabled => DetectMode::Motion,
                _ => return Ok(None),
            };
            let options = AnalyzerOptions::for_camera(cfg, mode);
            let analyzer = Analyzer::new(cfg.id.clone(), &ctx.data_dir, ctx.ids.clone(), options)?
                .with_live(cfg.id.clone(), ctx.live.clone());
            Ok(Some(Box::new(analyzer) as Box<dyn FrameAnalyzer>))
        },
    )
}

/// Frames between checks of a stationary object.
const STATIONARY_EVERY: u64 = 5;

/// Squares (`x0`, `y0`, side, in pixels) to run the detector on: one around each motion box
/// and each followed object (stationary ones every few frames), at least `min_side` (the
/// detector's input, so nothing is scaled up), at most the picture's shorter side, kept inside
/// the picture; a square mostly inside one already chosen is dropped.
pub fn regions(
    motion: &[BBox],
    objects: &[TrackedObject],
    width: u32,
    height: u32,
    min_side: u32,
    frame: u64,
) -> Vec<(u32, u32, u32)> {
    let (w, h) = (width as f32, height as f32);
    let max_side = width.min(height);
    let mut wanted: Vec<BBox> = motion.to_vec();
    wanted.extend(
        objects
            .iter()
            .filter(|o| !o.stationary || frame.is_multiple_of(STATIONARY_EVERY))
            .map(|o| o.bbox),
    );
    let mut squares: Vec<(u32, u32, u32)> = wanted
        .iter()
        .map(|b| {
            let (bw, bh) = ((b.x2 - b.x1) * w, (b.y2 - b.y1) * h);
            let side = ((bw.max(bh) * 1.2).ceil() as u32).clamp(min_side.min(max_side), max_side);
            let (cx, cy) = ((b.x1 + b.x2) / 2.0 * w, (b.y1 + b.y2) / 2.0 * h);
            let x0 = (cx - side as f32 / 2.0).clamp(0.0, (width - side) as f32) as u32;
            let y0 = (cy - side as f32 / 2.0).clamp(0.0, (height - side) as f32) as u32;
            (x0, y0, side)
        })
        .collect();
    squares.sort_by_key(|s| std::cmp::Reverse(s.2));
    let mut chosen: Vec<(u32, u32, u32)> = Vec::new();
    for s in squares {
        let covered = chosen.iter().any(|c| {
            let ix = (s.0 + s.2).min(c.0 + c.2).saturating_sub(s.0.max(c.0));
            let iy = (s.1 + s.2).min(c.1 + c.2).saturating_sub(s.1.max(c.1));
            u64::from(ix) * u64::from(iy) * 10 >= u64::from(s.2) * u64::from(s.2) * 8
        });
        if !covered {
            chosen.push(s);
        }
    }
    chosen
}

/// Runs `detector` on the `regions` of `image` in one batch and returns the detections in
/// picture coordinates, duplicates (same label, overlapping more than half) merged.
async fn detect_regions(
    detector: &dyn Detector,
    image: &Image,
    regions: &[(u32, u32, u32)],
) -> Result<Vec<ObjectDetection>> {
    if regions.is_empty() {
        return Ok(Vec::new());
    }
    let rgb = Image {
        width: image.width,
        height: image.height,
        format: vigil_core::PixelFormat::Rgb8,
        data: crate::image::to_rgb(image)?.into(),
        time: image.time,
    };
    let crops = regions
        .iter()
        .map(|&(x0, y0, side)| crate::image::crop_rgb(&rgb, x0, y0, side).map(Arc::new))
        .collect::<Result<Vec<_>>>()?;
    let found = detector.detect_many(crops).await?;
    let (w, h) = (image.width as f32, image.height as f32);
    let mut all: Vec<ObjectDetection> = Vec::new();
    for (&(x0, y0, side), dets) in regions.iter().zip(found) {
        let s = side as f32;
        for d in dets {
            all.push(ObjectDetection {
                bbox: vigil_core::BBox {
                    x1: (x0 as f32 + d.bbox.x1 * s) / w,
                    y1: (y0 as f32 + d.bbox.y1 * s) / h,
                    x2: (x0 as f32 + d.bbox.x2 * s) / w,
                    y2: (y0 as f32 + d.bbox.y2 * s) / h,
                },
                ..d
            });
        }
    }
    all.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<ObjectDetection> = Vec::new();
    for d in all {
        if !kept
            .iter()
            .any(|k| k.label == d.label && k.bbox.iou(&d.bbox) > 0.5)
        {
            kept.push(d);
        }
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x1: f32, y1: f32, x2: f32, y2: f32) -> BBox {
        BBox { x1, y1, x2, y2 }
    }

    #[test]
    fn regions_are_model_sized_squares_inside_the_picture() {
        // A small box near the right edge of 1280x720: a 320 square pushed inside.
        let r = regions(&[b(0.95, 0.5, 0.99, 0.55)], &[], 1280, 720, 320, 0);
        assert_eq!(r, vec![(960, 217, 320)]);
        // A big box: its side plus a margin, capped at the picture's height.
        let r = regions(&[b(0.1, 0.0, 0.6, 1.0)], &[], 1280, 720, 320, 0);
        assert_eq!(r[0].2, 720);
        // A box inside another's region adds nothing; a far one adds a region.
        let r = regions(
            &[
                b(0.4, 0.4, 0.5, 0.5),
                b(0.42, 0.42, 0.45, 0.45),
                b(0.0, 0.0, 0.05, 0.05),
            ],
            &[],
            1280,
            720,
            320,
            0,
        );
        assert_eq!(r.len(), 2, "{r:?}");
        // Nothing moving, nothing followed: nothing to look at.
        assert!(regions(&[], &[], 1280, 720, 320, 0).is_empty());
    }
}
