//! The domain model: what Vigil knows about cameras, what it saw and what it keeps.
//!
//! These types are what the [`Store`](crate::Store) persists and what the pipeline produces.
//! They are not the HTTP wire format: `vigil-http` maps them to the field names each API
//! document expects (Frigate's `start_time` seconds, SpectraX's `objects_detected`, ...).
//!
//! Conventions:
//! - Times are [`Timestamp`]s (µs since the epoch, UTC); durations carry their unit in the name.
//! - Boxes and polygons are in *normalised* coordinates (0.0..=1.0 of the frame's width and
//!   height), so they hold for the record and the detect stream alike; the API converts to pixels.
//! - Scores are probabilities in 0.0..=1.0.
//! - Paths of media files are relative to the data directory; the store never holds absolute
//!   paths, so a data directory can move.
//!
//! Stored types keep serde attributes to a minimum (no skipping, no flattening): the store
//! encodes them positionally, and a change of layout is a schema version bump.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::*;
use crate::time::Timestamp;

/// A point in normalised frame coordinates.
#[derive(Copy, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// 0.0 (left) ..= 1.0 (right).
    pub x: f32,
    /// 0.0 (top) ..= 1.0 (bottom).
    pub y: f32,
}

/// A closed polygon in normalised coordinates: a zone, a motion mask or an object mask.
///
/// In configuration files and JSON it is a list of `[x, y]` corners (a string of
/// comma-separated numbers, Frigate's form, is accepted too); the store keeps its own compact
/// form.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Polygon {
    /// The corners in order; the last connects back to the first.
    pub points: Vec<Point>,
}

impl Serialize for Polygon {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        if s.is_human_readable() {
            let mut seq = s.serialize_seq(Some(self.points.len()))?;
            for p in &self.points {
                seq.serialize_element(&[p.x, p.y])?;
            }
            seq.end()
        } else {
            // The store's form: the corners as (x, y) structs.
            self.points.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Polygon {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        if !d.is_human_readable() {
            return Ok(Polygon {
                points: Vec::<Point>::deserialize(d)?,
            });
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Pairs(Vec<[f32; 2]>),
            Frigate(String),
        }
        let pairs = match Form::deserialize(d).map_err(|_| {
            D::Error::custom(
                "a polygon is a list of [x, y] corners or a string \"x1,y1,x2,y2,...\"",
            )
        })? {
            Form::Pairs(p) => p,
            Form::Frigate(text) => {
                let nums: std::result::Result<Vec<f32>, _> =
                    text.split(',').map(|v| v.trim().parse::<f32>()).collect();
                let nums = nums
                    .map_err(|_| D::Error::custom(format!("{text:?} is not a list of numbers")))?;
                if nums.len() % 2 != 0 {
                    return Err(D::Error::custom(
                        "a polygon string needs an even count of numbers",
                    ));
                }
                nums.chunks(2).map(|c| [c[0], c[1]]).collect()
            }
        };
        Ok(Polygon {
            points: pairs.into_iter().map(|[x, y]| Point { x, y }).collect(),
        })
    }
}

impl Polygon {
    /// Checks that the polygon has at least three corners, all inside the frame.
    pub fn validate(&self) -> Result<()> {
        if self.points.len() < 3 {
            return Err(Error::invalid(format!(
                "a polygon needs at least 3 points, got {}",
                self.points.len()
            )));
        }
        for p in &self.points {
            if !(0.0..=1.0).contains(&p.x) || !(0.0..=1.0).contains(&p.y) {
                return Err(Error::invalid(format!(
                    "polygon point ({}, {}) is outside the frame (0..=1)",
                    p.x, p.y
                )));
            }
        }
        Ok(())
    }

    /// Whether `p` lies inside the polygon (even-odd rule; points on an edge may go either way).
    pub fn contains(&self, p: Point) -> bool {
        let pts = &self.points;
        let mut inside = false;
        let mut j = pts.len().wrapping_sub(1);
        for i in 0..pts.len() {
            let (a, b) = (pts[i], pts[j]);
            if (a.y > p.y) != (b.y > p.y) && p.x < (b.x - a.x) * (p.y - a.y) / (b.y - a.y) + a.x {
                inside = !inside;
            }
            j = i;
        }
        inside
    }
}

/// An axis-aligned box in normalised coordinates.
#[derive(Copy, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BBox {
    /// Left edge.
    pub x1: f32,
    /// Top edge.
    pub y1: f32,
    /// Right edge.
    pub x2: f32,
    /// Bottom edge.
    pub y2: f32,
}

impl BBox {
    /// The box's area as a fraction of the frame.
    pub fn area(&self) -> f32 {
        (self.x2 - self.x1).max(0.0) * (self.y2 - self.y1).max(0.0)
    }

    /// Intersection over union with `other` (0 when both are empty).
    pub fn iou(&self, other: &BBox) -> f32 {
        let iw = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let ih = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        let inter = iw * ih;
        let union = self.area() + other.area() - inter;
        if union <= 0.0 {
            0.0
        } else {
            inter / union
        }
    }

    /// The point where Frigate places an object for zone membership: bottom centre.
    pub fn bottom_center(&self) -> Point {
        Point {
            x: (self.x1 + self.x2) / 2.0,
            y: self.y2,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Cameras

/// How a camera's stream is fetched.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Source {
    /// An RTSP URL (`rtsp://user:pass@host:554/path`); credentials may also come separately.
    Rtsp {
        /// The URL.
        url: String,
        /// RTP over the RTSP TCP connection (default) or over UDP.
        transport: RtspTransport,
        /// User name, when not in the URL.
        username: Option<String>,
        /// Password, when not in the URL.
        password: Option<String>,
    },
    /// A local MP4 or Annex B H.264 file, looped at real-time pace.
    File {
        /// Path of the file.
        path: String,
        /// Frame rate of an Annex B file, which carries no timing (default 30); MP4 files
        /// have their own.
        #[serde(default)]
        fps: Option<u32>,
    },
    /// A generated moving scene encoded in process: the built-in demo camera.
    Synthetic {
        /// Frame width in pixels.
        width: u32,
        /// Frame height in pixels.
        height: u32,
        /// Frames per second.
        fps: u32,
    },
}

/// RTP transport for RTSP.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RtspTransport {
    /// Interleaved over the RTSP TCP connection: works through NAT and loses nothing.
    #[default]
    Tcp,
    /// RTP/RTCP over UDP.
    Udp,
}

/// What the camera records.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordMode {
    /// Every segment, 24/7.
    #[default]
    Continuous,
    /// Only around events (and triggers), with pre- and post-capture.
    Events,
    /// Nothing.
    Off,
}

/// Recording settings of one camera.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordSettings {
    /// Whether to record at all.
    pub enabled: bool,
    /// Continuous or event-driven.
    pub mode: RecordMode,
    /// Seconds kept before an event starts (event mode).
    pub pre_capture_s: u32,
    /// Seconds kept after an event ends (event mode).
    pub post_capture_s: u32,
    /// Days to keep continuous segments; 0 keeps them until the disk budget needs the space.
    pub retain_continuous_days: u32,
    /// Days to keep event recordings.
    pub retain_events_days: u32,
}

impl Default for RecordSettings {
    fn default() -> Self {
        RecordSettings {
            enabled: true,
            mode: RecordMode::Continuous,
            pre_capture_s: 5,
            post_capture_s: 5,
            retain_continuous_days: 7,
            retain_events_days: 30,
        }
    }
}

/// Per-label object filters, as Frigate's `objects.filters`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObjectFilter {
    /// The label filtered (`person`, `car`, ...).
    pub label: String,
    /// Detections under this score are ignored.
    pub min_score: f32,
    /// A tracked object becomes a true positive when its smoothed score reaches this.
    pub threshold: f32,
    /// Smallest box area, as a fraction of the frame.
    pub min_area: f32,
    /// Largest box area, as a fraction of the frame.
    pub max_area: f32,
    /// Smallest width/height ratio.
    pub min_ratio: f32,
    /// Largest width/height ratio.
    pub max_ratio: f32,
    /// Detections whose bottom centre falls in one of these are dropped.
    pub masks: Vec<Polygon>,
}

impl Default for ObjectFilter {
    fn default() -> Self {
        ObjectFilter::new("")
    }
}

impl ObjectFilter {
    /// The defaults Frigate users know: min score 0.5, threshold 0.7, any size.
    pub fn new(label: impl Into<String>) -> Self {
        ObjectFilter {
            label: label.into(),
            min_score: 0.5,
            threshold: 0.7,
            min_area: 0.0,
            max_area: 1.0,
            min_ratio: 0.0,
            max_ratio: f32::MAX,
            masks: Vec::new(),
        }
    }
}

/// Object detection settings of one camera.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectSettings {
    /// Run the object detector (SentryShot's per-monitor `tflite` toggle).
    pub enabled: bool,
    /// Width frames are decoded at for detection.
    pub width: u32,
    /// Height frames are decoded at for detection.
    pub height: u32,
    /// Frames per second analysed.
    pub fps: u32,
    /// Labels tracked; empty means `person`.
    pub labels: Vec<String>,
    /// Per-label filters.
    pub filters: Vec<ObjectFilter>,
    /// Seconds a stationary object is still tracked without a detection.
    pub max_disappeared_s: u32,
}

impl Default for DetectSettings {
    fn default() -> Self {
        DetectSettings {
            enabled: true,
            width: 640,
            height: 360,
            fps: 5,
            labels: vec!["person".to_owned()],
            filters: Vec::new(),
            max_disappeared_s: 5,
        }
    }
}

/// Motion detection settings of one camera.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MotionSettings {
    /// Run motion detection (SentryShot's per-monitor `motion` toggle).
    pub enabled: bool,
    /// Luma difference (0-255) a pixel must exceed to count as changed.
    pub threshold: u8,
    /// Smallest changed area, in pixels of the motion frame, to count as motion.
    pub contour_area: u32,
    /// Areas where motion is ignored (timestamps, trees).
    pub masks: Vec<Polygon>,
}

impl Default for MotionSettings {
    fn default() -> Self {
        MotionSettings {
            enabled: true,
            threshold: 30,
            contour_area: 10,
            masks: Vec::new(),
        }
    }
}

/// Snapshot settings of one camera.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnapshotSettings {
    /// Save a best snapshot per event.
    pub enabled: bool,
    /// Draw the bounding box on saved snapshots.
    pub bounding_box: bool,
    /// Crop saved snapshots to the object.
    pub crop: bool,
    /// Height saved snapshots are scaled to; 0 keeps the full size.
    pub height: u32,
    /// Days to keep snapshots.
    pub retain_days: u32,
}

impl Default for SnapshotSettings {
    fn default() -> Self {
        SnapshotSettings {
            enabled: true,
            bounding_box: true,
            crop: false,
            height: 0,
            retain_days: 30,
        }
    }
}

/// Timelapse settings of one camera (picam's `/timelapse/configure`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimelapseSettings {
    /// Capture frames.
    pub enabled: bool,
    /// Minutes between captured frames (1-60).
    pub interval_minutes: u32,
    /// Playback frame rate of the stitched video.
    pub fps: u32,
    /// Frame size; `None` keeps the camera's.
    pub resolution: Option<(u32, u32)>,
}

impl Default for TimelapseSettings {
    fn default() -> Self {
        TimelapseSettings {
            enabled: false,
            interval_minutes: 5,
            fps: 24,
            resolution: Some((640, 480)),
        }
    }
}

/// A named region of a camera's view (HSI's zones, Frigate's `zones`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Zone {
    /// The zone's name, unique within its camera; it is what events list in `zones`.
    pub name: String,
    /// The area.
    pub polygon: Polygon,
    /// What kind of place this is (`entry_point`, `driveway`, `yard`, free text).
    #[serde(default)]
    pub kind: String,
    /// Whether objects are checked against it.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Colour for overlays, `#rrggbb`.
    #[serde(default)]
    pub color: String,
    /// Labels that count in this zone; empty means all.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Consecutive frames inside before an object counts as entered.
    #[serde(default = "default_inertia")]
    pub inertia: u32,
    /// Seconds inside before an object counts as loitering; 0 disables.
    #[serde(default)]
    pub loitering_time_s: u32,
}

fn yes() -> bool {
    true
}

/// Frigate's default: an object counts as in a zone after 3 frames inside.
fn default_inertia() -> u32 {
    3
}

impl Zone {
    /// Checks the name and the polygon.
    pub fn validate(&self) -> Result<()> {
        validate_name("zone name", &self.name)?;
        self.polygon
            .validate()
            .map_err(|e| Error::invalid(format!("zone {:?}: {}", self.name, e.message())))
    }
}

/// A camera's configuration: one entity, whatever a document calls it (camera, monitor, stream path).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CameraConfig {
    /// Identifier used in URLs, topics and paths.
    pub id: CameraId,
    /// Human-readable name.
    pub name: String,
    /// Whether the camera runs at all.
    pub enabled: bool,
    /// The main (record) stream.
    pub record_source: Source,
    /// The sub (detect) stream; `None` decodes the record stream.
    pub detect_source: Option<Source>,
    /// Recording settings.
    pub record: RecordSettings,
    /// Object detection settings.
    pub detect: DetectSettings,
    /// Motion detection settings.
    pub motion: MotionSettings,
    /// Snapshot settings.
    pub snapshots: SnapshotSettings,
    /// Timelapse settings.
    pub timelapse: TimelapseSettings,
    /// Zones.
    pub zones: Vec<Zone>,
    /// When the camera was added.
    pub created_at: Timestamp,
    /// When its configuration last changed.
    pub updated_at: Timestamp,
}

impl CameraConfig {
    /// A camera with default settings.
    pub fn new(id: CameraId, source: Source, now: Timestamp) -> Self {
        CameraConfig {
            name: id.as_str().to_owned(),
            id,
            enabled: true,
            record_source: source,
            detect_source: None,
            record: RecordSettings::default(),
            detect: DetectSettings::default(),
            motion: MotionSettings::default(),
            snapshots: SnapshotSettings::default(),
            timelapse: TimelapseSettings::default(),
            zones: Vec::new(),
            created_at: now,
            updated_at: now,
        }
    }

    /// Checks everything a request can get wrong: zones, masks, sizes, rates.
    pub fn validate(&self) -> Result<()> {
        let mut names = std::collections::HashSet::new();
        for z in &self.zones {
            z.validate()?;
            if !names.insert(z.name.as_str()) {
                return Err(Error::invalid(format!(
                    "camera {}: zone {:?} appears twice",
                    self.id, z.name
                )));
            }
        }
        for m in &self.motion.masks {
            m.validate()?;
        }
        if self.detect.fps == 0 || self.detect.fps > 60 {
            return Err(Error::invalid(format!(
                "camera {}: detect fps {} is outside 1..=60",
                self.id, self.detect.fps
            )));
        }
        if self.timelapse.interval_minutes == 0 || self.timelapse.interval_minutes > 60 {
            return Err(Error::invalid(format!(
                "camera {}: timelapse interval {} min is outside 1..=60",
                self.id, self.timelapse.interval_minutes
            )));
        }
        if !(1..=60).contains(&self.timelapse.fps) {
            return Err(Error::invalid(format!(
                "camera {}: timelapse fps {} is outside 1..=60",
                self.id, self.timelapse.fps
            )));
        }
        if let Some((w, h)) = self.timelapse.resolution {
            if !(16..=3840).contains(&w)
                || !(16..=2160).contains(&h)
                || !w.is_multiple_of(2)
                || !h.is_multiple_of(2)
            {
                return Err(Error::invalid(format!(
                    "camera {}: timelapse resolution {w}x{h} must be even, 16x16 to 3840x2160",
                    self.id
                )));
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// What the pipeline sees

/// One object found in one frame by a [`Detector`](crate::Detector), before tracking.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObjectDetection {
    /// Class name (`person`, `car`, ...).
    pub label: String,
    /// Class probability.
    pub score: f32,
    /// Where, in normalised coordinates.
    pub bbox: BBox,
}

/// A persisted detection: one object in one analysed frame (HSI's `/api/detections`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// Identifier.
    pub id: DetectionId,
    /// Camera it was seen on.
    pub camera: CameraId,
    /// When the frame was captured.
    pub time: Timestamp,
    /// Class name.
    pub label: String,
    /// Class probability.
    pub score: f32,
    /// Where.
    pub bbox: BBox,
    /// The tracked object it belongs to.
    pub tracker_id: Option<u64>,
    /// The event it belongs to.
    pub event_id: Option<EventId>,
    /// A crop of the object, relative to the data directory.
    pub image_path: Option<String>,
}

/// An object followed across frames by a [`Tracker`](crate::Tracker).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrackedObject {
    /// Stable id for as long as the object is followed.
    pub tracker_id: u64,
    /// Class name (the most frequent over the track).
    pub label: String,
    /// Latest detection score.
    pub score: f32,
    /// Smoothed score (median of recent scores).
    pub smoothed_score: f32,
    /// Best smoothed score so far.
    pub top_score: f32,
    /// Current box.
    pub bbox: BBox,
    /// Velocity of the box centre, normalised units per second.
    pub velocity: (f32, f32),
    /// Whether the object has not moved for a while.
    pub stationary: bool,
    /// Zones it is in now.
    pub current_zones: Vec<String>,
    /// Zones it has entered since it appeared.
    pub entered_zones: Vec<String>,
    /// First frame it was seen in.
    pub first_seen: Timestamp,
    /// Last frame it was detected in.
    pub last_seen: Timestamp,
    /// Frames since the last detection (0 when detected in the latest frame).
    pub frames_missed: u32,
    /// Whether the smoothed score has reached the label's threshold: a true positive, worth
    /// an event (until then it may be a false detection).
    pub true_positive: bool,
    /// Zones it has stayed in longer than their loitering time.
    pub loitering_zones: Vec<String>,
}

/// Whether a person has looked at an event.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReviewStatus {
    /// Not looked at yet.
    #[default]
    Unreviewed,
    /// Looked at.
    Reviewed,
}

impl ReviewStatus {
    /// `unreviewed` / `reviewed`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewStatus::Unreviewed => "unreviewed",
            ReviewStatus::Reviewed => "reviewed",
        }
    }
}

/// The frame chosen to represent an event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BestFrame {
    /// When the frame was captured.
    pub time: Timestamp,
    /// The object's box in it.
    pub bbox: BBox,
    /// The object's score in it.
    pub score: f32,
    /// Snapshot file, relative to the data directory.
    pub snapshot_path: Option<String>,
    /// Thumbnail file, relative to the data directory.
    pub thumbnail_path: Option<String>,
}

/// An event: one tracked object's life on one camera, from first to last sighting
/// (Frigate's and HSI's events; SentryShot's MQTT events are its updates).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Identifier.
    pub id: EventId,
    /// Camera.
    pub camera: CameraId,
    /// Class name.
    pub label: String,
    /// A finer name (a face, a plate, a manual label).
    pub sub_label: Option<String>,
    /// Current (latest smoothed) score.
    pub score: f32,
    /// Best score over the event's life.
    pub top_score: f32,
    /// First sighting.
    pub start_time: Timestamp,
    /// Last sighting; `None` while in progress.
    pub end_time: Option<Timestamp>,
    /// Zones entered over the event's life, in order of entry.
    pub zones: Vec<String>,
    /// The tracker's id for the object.
    pub tracker_id: Option<u64>,
    /// The latest box.
    pub bbox: BBox,
    /// Whether a clip can be made (recordings cover it).
    pub has_clip: bool,
    /// Whether a snapshot was saved.
    pub has_snapshot: bool,
    /// Kept past retention (Frigate's `retain_indefinitely`, HA's favourite).
    pub retain: bool,
    /// Review status.
    pub review: ReviewStatus,
    /// Free-text notes by a person.
    pub notes: Option<String>,
    /// Risk score 0-100 given by the alerting logic, if any.
    pub risk_score: Option<u8>,
    /// The best frame.
    pub best: Option<BestFrame>,
    /// Whether the object stayed still.
    pub stationary: bool,
    /// How many detections fed it.
    pub detection_count: u32,
}

impl Event {
    /// Takes from `stored` (this event as the store has it) what people set through the API,
    /// which the pipeline's own copy does not know: the review, notes, whether to keep it,
    /// a sub label it has none of, and an end (a person ending the event): an event ended
    /// stays ended, at the earlier of the two ends.
    pub fn keep_what_people_set(&mut self, stored: &Event) {
        self.review = stored.review;
        self.notes.clone_from(&stored.notes);
        self.retain = stored.retain;
        if self.sub_label.is_none() {
            self.sub_label.clone_from(&stored.sub_label);
        }
        if let Some(end) = stored.end_time {
            self.end_time = Some(self.end_time.map_or(end, |e| e.min(end)));
        }
    }

    /// How long the event lasted, or lasted so far at `now`.
    pub fn duration_us(&self, now: Timestamp) -> i64 {
        self.end_time
            .unwrap_or(now)
            .0
            .saturating_sub(self.start_time.0)
    }

    /// Checks the names and scores a request could get wrong.
    pub fn validate(&self) -> Result<()> {
        validate_name("label", &self.label)?;
        if let Some(s) = &self.sub_label {
            validate_name("sub_label", s)?;
        }
        for z in &self.zones {
            validate_name("zone", z)?;
        }
        validate_score("score", self.score)?;
        validate_score("top_score", self.top_score)?;
        if let Some(end) = self.end_time {
            if end < self.start_time {
                return Err(Error::invalid(format!(
                    "event {}: end_time {end} is before start_time {}",
                    self.id, self.start_time
                )));
            }
        }
        if let Some(n) = &self.notes {
            validate_notes(n)?;
        }
        Ok(())
    }
}

/// A change to some of an event's fields, made by [`Mutation::PatchEvent`] inside the store's
/// write against the event as stored, so that two writers changing different fields of one
/// event (a person reviewing it while the pipeline ends it) both keep their change. A field
/// left `None` is not touched.
///
/// [`Mutation::PatchEvent`]: crate::store::Mutation::PatchEvent
#[derive(Clone, Debug, PartialEq)]
pub struct EventPatch {
    /// The event.
    pub id: EventId,
    /// Sets the review status.
    pub review: Option<ReviewStatus>,
    /// Sets or (with `Some(None)`) clears the notes.
    pub notes: Option<Option<String>>,
    /// Sets or (with `Some(None)`) clears the sub label.
    pub sub_label: Option<Option<String>>,
    /// Sets whether it is kept past retention.
    pub retain: Option<bool>,
    /// Ends it at this time, or at its start if this is earlier, when it is still in progress;
    /// an event already ended keeps its end.
    pub end: Option<Timestamp>,
    /// Forgets its best snapshot when the snapshot is this file (retention removed it).
    pub forget_snapshot: Option<String>,
}

impl EventPatch {
    /// A patch of `id` that changes nothing yet.
    pub fn new(id: EventId) -> Self {
        EventPatch {
            id,
            review: None,
            notes: None,
            sub_label: None,
            retain: None,
            end: None,
            forget_snapshot: None,
        }
    }

    /// Makes the change on `e`, the event `id` as stored.
    pub fn apply_to(&self, e: &mut Event) {
        if let Some(r) = self.review {
            e.review = r;
        }
        if let Some(n) = &self.notes {
            e.notes.clone_from(n);
        }
        if let Some(s) = &self.sub_label {
            e.sub_label.clone_from(s);
        }
        if let Some(r) = self.retain {
            e.retain = r;
        }
        if let (Some(end), None) = (self.end, e.end_time) {
            e.end_time = Some(end.max(e.start_time));
        }
        if let Some(path) = &self.forget_snapshot {
            if let Some(b) = e
                .best
                .as_mut()
                .filter(|b| b.snapshot_path.as_ref() == Some(path))
            {
                b.snapshot_path = None;
                e.has_snapshot = false;
            }
        }
    }

    /// Checks what a request could get wrong (the same limits as [`Event::validate`]).
    pub fn validate(&self) -> Result<()> {
        if let Some(Some(s)) = &self.sub_label {
            validate_name("sub_label", s)?;
        }
        if let Some(Some(n)) = &self.notes {
            validate_notes(n)?;
        }
        Ok(())
    }
}

/// Checks an event's notes: at most 10,000 bytes.
fn validate_notes(n: &str) -> Result<()> {
    if n.len() > 10_000 {
        return Err(Error::invalid("notes are longer than 10000 bytes"));
    }
    Ok(())
}

/// Checks a probability.
pub fn validate_score(what: &str, s: f32) -> Result<()> {
    if !(0.0..=1.0).contains(&s) {
        return Err(Error::invalid(format!("{what} {s} is outside 0..=1")));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// What is kept on disk

/// Why a recording exists.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RecordingKind {
    /// A 24/7 segment.
    #[default]
    Continuous,
    /// A segment kept because of an event or trigger.
    Event,
    /// A clip made on request by joining segments.
    Clip,
}

impl RecordingKind {
    /// `continuous` / `event` / `clip`.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordingKind::Continuous => "continuous",
            RecordingKind::Event => "event",
            RecordingKind::Clip => "clip",
        }
    }
}

/// An object seen during a recording (SpectraX's `objects_detected`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordedObject {
    /// Class name.
    pub label: String,
    /// Best score in the recording.
    pub score: f32,
    /// Box at the best score.
    pub bbox: BBox,
    /// Tracker id, when tracking ran.
    pub tracker_id: Option<u64>,
}

/// A media file: a pass-through MP4 segment of one camera, or a clip.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recording {
    /// Identifier.
    pub id: RecordingId,
    /// Camera.
    pub camera: CameraId,
    /// Continuous, event or clip.
    pub kind: RecordingKind,
    /// Time of the first frame.
    pub start_time: Timestamp,
    /// Time just after the last frame.
    pub end_time: Timestamp,
    /// File size.
    pub size_bytes: u64,
    /// The MP4, relative to the data directory.
    pub path: String,
    /// RFC 6381 codec string (`avc1.64001f`).
    pub codec: String,
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Number of video frames.
    pub frames: u32,
    /// Objects seen while it was recorded.
    pub objects: Vec<RecordedObject>,
    /// Kept past retention (SpectraX's `retained`).
    pub retained: bool,
    /// Events it covers.
    pub event_ids: Vec<EventId>,
    /// Thumbnail at the start, relative to the data directory.
    pub thumbnail_path: Option<String>,
    /// Hover-scrub sprite sheet, relative to the data directory.
    pub sprite_path: Option<String>,
}

impl Recording {
    /// Length in microseconds.
    pub fn duration_us(&self) -> i64 {
        self.end_time.0.saturating_sub(self.start_time.0)
    }

    /// Highest object score, 0 when nothing was seen (SpectraX's `confidence`).
    pub fn max_score(&self) -> f32 {
        self.objects.iter().map(|o| o.score).fold(0.0, f32::max)
    }

    /// Distinct tracker ids, in order of first appearance.
    pub fn tracker_ids(&self) -> Vec<u64> {
        let mut out = Vec::new();
        for id in self.objects.iter().filter_map(|o| o.tracker_id) {
            if !out.contains(&id) {
                out.push(id);
            }
        }
        out
    }

    /// Checks what a caller could get wrong.
    pub fn validate(&self) -> Result<()> {
        if self.end_time < self.start_time {
            return Err(Error::invalid(format!(
                "recording {}: end_time is before start_time",
                self.id
            )));
        }
        validate_relative_path(&self.path)?;
        for o in &self.objects {
            validate_name("object label", &o.label)?;
            validate_score("object score", o.score)?;
        }
        Ok(())
    }
}

/// Checks that a stored media path stays inside the data directory.
pub fn validate_relative_path(p: &str) -> Result<()> {
    let bad = p.is_empty()
        || p.starts_with('/')
        || p.contains('\\')
        || p.contains('\0')
        || p.split('/').any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        return Err(Error::invalid(format!(
            "path {p:?} must be relative to the data directory, without '.', '..' or empty parts"
        )));
    }
    Ok(())
}

/// Why a snapshot was taken.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnapshotSource {
    /// Asked for through the API (picam's `POST /snapshot`).
    #[default]
    Manual,
    /// An event's best frame.
    Event,
    /// A trigger fired.
    Trigger,
}

/// A still JPEG kept on disk.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Identifier.
    pub id: SnapshotId,
    /// Camera.
    pub camera: CameraId,
    /// When the frame was captured.
    pub time: Timestamp,
    /// The JPEG, relative to the data directory.
    pub path: String,
    /// File size.
    pub size_bytes: u64,
    /// Why it was taken.
    pub source: SnapshotSource,
    /// The event it shows, if any.
    pub event_id: Option<EventId>,
}

/// One frame captured for a timelapse.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimelapseFrame {
    /// Identifier.
    pub id: TimelapseFrameId,
    /// Camera.
    pub camera: CameraId,
    /// When it was captured.
    pub time: Timestamp,
    /// The timelapse video it went into, relative to the data directory.
    pub path: String,
    /// Size of the encoded frame.
    pub size_bytes: u64,
}

// ---------------------------------------------------------------------------------------------
// Triggers, accounts, alerts

/// Where a trigger's signal comes from. GPIO sensors of the picam document map here: the signal
/// arrives over HTTP or MQTT instead of a pin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum TriggerKind {
    /// Fired through the API (`/sensor/mock/trigger` and friends).
    Mock,
    /// Fired by a request to its webhook.
    Http,
    /// Fired by an MQTT message on a topic; a payload equal to `on_payload` triggers.
    Mqtt {
        /// Topic subscribed to.
        topic: String,
        /// Payload meaning "triggered"; anything else releases.
        on_payload: String,
    },
}

/// An external signal that starts and stops recording (picam's sensors).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    /// Identifier.
    pub id: TriggerId,
    /// Name (`front door reed switch`).
    pub name: String,
    /// Sensor type for display (`reed_switch`, `pir`, `vibration`).
    pub sensor_type: String,
    /// Signal source.
    pub kind: TriggerKind,
    /// Cameras that record while it is triggered.
    pub cameras: Vec<CameraId>,
    /// Whether it is active.
    pub enabled: bool,
    /// Seconds recording continues after release.
    pub hold_s: u32,
    /// Swap triggered and released.
    pub invert: bool,
    /// Sensor-specific parameters, as JSON text (`{"pulse_count": 3}`).
    pub calibration_json: String,
}

/// An account's role.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// May do everything.
    Admin,
    /// May look, not change.
    #[default]
    Viewer,
}

impl Role {
    /// `admin` / `viewer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }
}

/// A person who can log in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// Identifier.
    pub id: AccountId,
    /// Login name, unique.
    pub username: String,
    /// Role.
    pub role: Role,
    /// PHC-format password hash (never the password).
    pub password_hash: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// Last successful login.
    pub last_login: Option<Timestamp>,
}

/// A key for programs (HSI's `X-API-Key`, picam's bearer token).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    /// Identifier.
    pub id: ApiKeyId,
    /// What it is for.
    pub name: String,
    /// The first characters of the key, shown to tell keys apart.
    pub prefix: String,
    /// Hash of the whole key (never the key).
    pub key_hash: String,
    /// Role it acts with.
    pub role: Role,
    /// Account that made it.
    pub owner: Option<AccountId>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it stops working.
    pub expires_at: Option<Timestamp>,
    /// Last time it was used.
    pub last_used: Option<Timestamp>,
}

/// How urgent an alert is.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum Severity {
    /// Worth a look.
    Low,
    /// Worth a notification.
    #[default]
    Medium,
    /// Wake someone up.
    High,
    /// Act now.
    Critical,
}

/// Where an alert goes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AlertChannel {
    /// POST a JSON body to a URL, retried, then dead-lettered.
    Webhook {
        /// Target URL.
        url: String,
    },
    /// Publish on an MQTT topic.
    Mqtt {
        /// Topic.
        topic: String,
    },
    /// Push to connected WebSocket/SSE clients.
    Push,
}

/// A weekly window, e.g. weekdays 22:00-06:00.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// Days it applies to, 0 = Monday .. 6 = Sunday.
    pub days: Vec<u8>,
    /// Start, minutes after local midnight.
    pub start_minute: u16,
    /// End, minutes after local midnight; before `start_minute` means it wraps past midnight.
    pub end_minute: u16,
    /// IANA time zone name the minutes are in.
    pub timezone: String,
}

/// A rule that turns matching events into alerts (HSI's `/api/alerts/rules`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertRule {
    /// Identifier.
    pub id: AlertRuleId,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Whether it is evaluated.
    pub enabled: bool,
    /// Severity of alerts it raises.
    pub severity: Severity,
    /// Cameras it watches; empty means all.
    pub cameras: Vec<CameraId>,
    /// Labels it matches; empty means all.
    pub labels: Vec<String>,
    /// Zones it matches; empty means anywhere.
    pub zones: Vec<String>,
    /// Lowest score that matches.
    pub min_score: f32,
    /// Lowest risk score that matches.
    pub min_risk: Option<u8>,
    /// When it is active; `None` means always.
    pub schedule: Option<Schedule>,
    /// Seconds before the same rule fires again for the same camera and label.
    pub cooldown_s: u32,
    /// Where alerts go.
    pub channels: Vec<AlertChannel>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

impl Schedule {
    /// Checks the days, the minutes and the time zone's name.
    pub fn validate(&self) -> Result<()> {
        if self.days.iter().any(|&d| d > 6) {
            return Err(Error::invalid(
                "schedule.days: days are 0 (Monday) to 6 (Sunday)",
            ));
        }
        if self.start_minute >= 1440 || self.end_minute > 1440 {
            return Err(Error::invalid(
                "schedule: minutes after midnight are 0 to 1439",
            ));
        }
        jiff::tz::TimeZone::get(&self.timezone).map_err(|_| {
            Error::invalid(format!(
                "schedule.timezone: {:?} is not an IANA time zone",
                self.timezone
            ))
        })?;
        Ok(())
    }

    /// Whether `t` falls in the window. A window whose end is before its start runs past
    /// midnight: its morning part belongs to the day before (Monday 22:00-06:00 holds
    /// Tuesday 03:00). No days means every day; an unknown time zone is UTC.
    pub fn contains(&self, t: Timestamp) -> bool {
        let tz = jiff::tz::TimeZone::get(&self.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
        let Ok(ts) = jiff::Timestamp::from_microsecond(t.0) else {
            return false;
        };
        let local = ts.to_zoned(tz);
        let minute = u16::from(local.hour() as u8) * 60 + u16::from(local.minute() as u8);
        let day = local.weekday().to_monday_zero_offset() as u8;
        let on = |d: u8| self.days.is_empty() || self.days.contains(&d);
        let (start, end) = (self.start_minute, self.end_minute);
        if start <= end {
            on(day) && (start..end).contains(&minute)
        } else {
            (minute >= start && on(day)) || (minute < end && on((day + 6) % 7))
        }
    }
}

impl AlertRule {
    /// Whether `e` meets the rule's conditions: camera, label, zone, score, risk, and the
    /// schedule at the event's start. (Whether the rule is enabled, and its cooldown, are the
    /// notifier's to check.)
    pub fn matches(&self, e: &Event) -> bool {
        (self.cameras.is_empty() || self.cameras.contains(&e.camera))
            && (self.labels.is_empty() || self.labels.contains(&e.label))
            && (self.zones.is_empty() || self.zones.iter().any(|z| e.zones.contains(z)))
            && e.top_score.max(e.score) >= self.min_score
            && self
                .min_risk
                .is_none_or(|r| e.risk_score.is_some_and(|s| s >= r))
            && self
                .schedule
                .as_ref()
                .is_none_or(|s| s.contains(e.start_time))
    }
}

/// A period when notifications are held back (HSI's quiet hours).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuietHours {
    /// Identifier.
    pub id: QuietHoursId,
    /// Label shown to people (`Night`).
    pub label: String,
    /// When.
    pub schedule: Schedule,
    /// Whether it is in force.
    pub enabled: bool,
}

/// One camera's notification setting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CameraNotification {
    /// Camera.
    pub camera: CameraId,
    /// Notify about this camera.
    pub enabled: bool,
    /// Lowest risk score notified about.
    pub risk_threshold: u8,
}

/// Global notification preferences (HSI's `/api/notification-preferences`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NotificationPreferences {
    /// Notifications on at all.
    pub enabled: bool,
    /// Play a sound in the web interface.
    pub sound: String,
    /// Severities notified about.
    pub severities: Vec<Severity>,
    /// Per-camera settings; cameras not listed use the global ones.
    pub cameras: Vec<CameraNotification>,
}

impl Default for NotificationPreferences {
    fn default() -> Self {
        NotificationPreferences {
            enabled: true,
            sound: "default".to_owned(),
            severities: vec![Severity::Medium, Severity::High, Severity::Critical],
            cameras: Vec::new(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Operations

/// Whether an audited action succeeded.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Outcome {
    /// It did.
    #[default]
    Success,
    /// It did not.
    Failure,
}

/// A record of who changed what (HSI's `/api/audit`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Identifier.
    pub id: AuditId,
    /// When.
    pub time: Timestamp,
    /// Who: a user name, `apikey:<name>` or `system`.
    pub actor: String,
    /// What (`camera.create`, `event.review`, `login`).
    pub action: String,
    /// Kind of thing acted on (`camera`, `event`, `account`).
    pub resource_type: String,
    /// Which one.
    pub resource_id: Option<String>,
    /// Client address.
    pub ip: Option<String>,
    /// Result.
    pub outcome: Outcome,
    /// Extra detail as JSON text.
    pub details_json: String,
}

/// Log severity.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum LogLevel {
    /// Fine detail.
    Debug,
    /// Normal operation.
    #[default]
    Info,
    /// Something to look at.
    Warning,
    /// Something failed.
    Error,
}

impl LogLevel {
    /// `debug` / `info` / `warning` / `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warning => "warning",
            LogLevel::Error => "error",
        }
    }
}

/// A stored log line (SentryShot's log query, picam's `/logs`, HSI's `/api/logs`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Identifier.
    pub id: LogId,
    /// When.
    pub time: Timestamp,
    /// Severity.
    pub level: LogLevel,
    /// Where it came from (`app`, `camera`, `recorder`, `detector`, `http`, `frontend`).
    pub source: String,
    /// Camera concerned.
    pub camera: Option<CameraId>,
    /// The message.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(x: f32, y: f32) -> Point {
        Point { x, y }
    }

    #[test]
    fn schedules_wrap_past_midnight_in_their_time_zone() {
        let at = |s: &str| Timestamp::parse(s).unwrap();
        // Mondays 22:00-06:00 in Paris (UTC+1 in December).
        let night = Schedule {
            days: vec![0],
            start_minute: 22 * 60,
            end_minute: 6 * 60,
            timezone: "Europe/Paris".into(),
        };
        assert!(night.validate().is_ok());
        // 2026-11-30 is a Monday.
        assert!(night.contains(at("2026-11-30T21:30:00Z"))); // Mon 22:30 local
        assert!(night.contains(at("2026-12-01T02:00:00Z"))); // Tue 03:00 local
        assert!(!night.contains(at("2026-12-01T05:30:00Z"))); // Tue 06:30 local
        assert!(!night.contains(at("2026-11-30T20:30:00Z"))); // Mon 21:30 local
        assert!(!night.contains(at("2026-12-01T21:30:00Z"))); // Tue 22:30 local
        let day = Schedule {
            days: Vec::new(),
            start_minute: 9 * 60,
            end_minute: 17 * 60,
            timezone: "UTC".into(),
        };
        assert!(day.contains(at("2026-12-05T09:00:00Z")));
        assert!(!day.contains(at("2026-12-05T17:00:00Z")));
        let bad = Schedule {
            timezone: "Mars/Olympus".into(),
            ..day.clone()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn polygon_contains() {
        let square = Polygon {
            points: vec![p(0.2, 0.2), p(0.8, 0.2), p(0.8, 0.8), p(0.2, 0.8)],
        };
        square.validate().unwrap();
        assert!(square.contains(p(0.5, 0.5)));
        assert!(!square.contains(p(0.1, 0.5)));
        assert!(!square.contains(p(0.5, 0.9)));
        assert!(Polygon {
            points: vec![p(0.0, 0.0), p(1.0, 1.0)]
        }
        .validate()
        .is_err());
        assert!(Polygon {
            points: vec![p(0.0, 0.0), p(1.5, 1.0), p(0.0, 1.0)]
        }
        .validate()
        .is_err());
    }

    #[test]
    fn relative_paths() {
        for ok in ["recordings/front/2025-01-01/12/1.mp4", "a.jpg"] {
            validate_relative_path(ok).unwrap();
        }
        for bad in ["", "/etc/passwd", "../x", "a/../b", "a//b", "./a", "a\\b"] {
            assert!(validate_relative_path(bad).is_err(), "{bad}");
        }
    }
}
