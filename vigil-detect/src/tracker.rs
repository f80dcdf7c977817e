//! Following objects across frames: a constant-velocity Kalman filter per object, assignment
//! of detections on overlap and distance, score smoothing, stationary objects, and zones.

use std::collections::VecDeque;

use vigil_core::{
    BBox, ObjectDetection, ObjectFilter, Point, Timestamp, TrackedObject, Tracker, Zone,
};

/// Settings of an [`ObjectTracker`].
#[derive(Clone, Debug, PartialEq)]
pub struct TrackerOptions {
    /// Frames a moving object may go undetected before it is given up.
    pub max_missed: u32,
    /// Frames a stationary object may go undetected (it is checked less often).
    pub max_missed_stationary: u32,
    /// Frames an object must stay in place to count as stationary.
    pub stationary_frames: u32,
    /// Overlap with its anchor box under which an object counts as having moved.
    pub stationary_iou: f32,
    /// Smallest overlap between a prediction and a detection to pair them...
    pub min_iou: f32,
    /// ...or, failing that, largest centre distance relative to the box's diagonal.
    pub max_distance: f32,
    /// Scores kept for smoothing (their median is the smoothed score).
    pub score_history: usize,
    /// Threshold of labels without a filter.
    pub default_threshold: f32,
    /// Per-label filters (their `threshold` is used here).
    pub filters: Vec<ObjectFilter>,
    /// The camera's zones.
    pub zones: Vec<Zone>,
}

impl Default for TrackerOptions {
    fn default() -> Self {
        TrackerOptions {
            max_missed: 5,
            max_missed_stationary: 50,
            stationary_frames: 10,
            stationary_iou: 0.8,
            min_iou: 0.1,
            max_distance: 0.6,
            score_history: 10,
            default_threshold: 0.7,
            filters: Vec::new(),
            zones: Vec::new(),
        }
    }
}

/// Keeps the detections the camera's filters let through: a tracked label, a score of at
/// least `min_score`, an area and a width/height ratio (in pixels of a `width × height`
/// frame) within bounds, and a bottom centre outside the object masks.
pub fn filter_detections(
    detections: &[ObjectDetection],
    labels: &[String],
    filters: &[ObjectFilter],
    (width, height): (u32, u32),
) -> Vec<ObjectDetection> {
    detections
        .iter()
        .filter(|d| {
            if !labels.is_empty() && !labels.contains(&d.label) {
                return false;
            }
            let Some(f) = filters.iter().find(|f| f.label == d.label) else {
                return true;
            };
            let b = &d.bbox;
            let ratio = ((b.x2 - b.x1) * width as f32) / ((b.y2 - b.y1) * height as f32).max(1e-6);
            let foot = Point {
                x: (b.x1 + b.x2) / 2.0,
                y: b.y2,
            };
            d.score >= f.min_score
                && (f.min_area..=f.max_area).contains(&b.area())
                && (f.min_ratio..=f.max_ratio).contains(&ratio)
                && !f.masks.iter().any(|m| m.contains(foot))
        })
        .cloned()
        .collect()
}

/// Position and velocity of one coordinate.
#[derive(Clone, Debug)]
struct Kalman1 {
    x: [f32; 2],
    p: [[f32; 2]; 2],
}

/// Process noise (acceleration variance, frame units per s²) and measurement noise
/// (variance, frame units²).
const Q: f32 = 0.05;
const R: f32 = 1e-4;

impl Kalman1 {
    fn new(z: f32) -> Self {
        Kalman1 {
            x: [z, 0.0],
            p: [[R, 0.0], [0.0, 0.25]],
        }
    }

    fn predicted(&self, dt: f32) -> f32 {
        self.x[0] + self.x[1] * dt
    }

    fn predict(&mut self, dt: f32) {
        let [[p00, p01], [p10, p11]] = self.p;
        self.x[0] += self.x[1] * dt;
        self.p = [
            [
                p00 + dt * (p10 + p01) + dt * dt * p11 + Q * dt.powi(3) / 3.0,
                p01 + dt * p11 + Q * dt * dt / 2.0,
            ],
            [p10 + dt * p11 + Q * dt * dt / 2.0, p11 + Q * dt],
        ];
    }

    fn update(&mut self, z: f32) {
        let [[p00, p01], [p10, p11]] = self.p;
        let s = p00 + R;
        let (k0, k1) = (p00 / s, p10 / s);
        let y = z - self.x[0];
        self.x[0] += k0 * y;
        self.x[1] += k1 * y;
        self.p = [
            [(1.0 - k0) * p00, (1.0 - k0) * p01],
            [p10 - k1 * p00, p11 - k1 * p01],
        ];
    }
}

#[derive(Clone, Debug)]
struct Track {
    object: TrackedObject,
    /// Centre x, centre y, width, height.
    filters: [Kalman1; 4],
    /// When the filters were last advanced.
    at: Timestamp,
    scores: VecDeque<f32>,
    /// Where it was when it last moved.
    anchor: BBox,
    still_frames: u32,
    /// Per zone: consecutive frames inside, and when it counted as entered.
    zone_state: Vec<(u32, Option<Timestamp>)>,
}

fn centre(b: &BBox) -> [f32; 4] {
    [
        (b.x1 + b.x2) / 2.0,
        (b.y1 + b.y2) / 2.0,
        b.x2 - b.x1,
        b.y2 - b.y1,
    ]
}

fn from_centre([cx, cy, w, h]: [f32; 4]) -> BBox {
    let (w, h) = (w.max(1e-4), h.max(1e-4));
    BBox {
        x1: cx - w / 2.0,
        y1: cy - h / 2.0,
        x2: cx + w / 2.0,
        y2: cy + h / 2.0,
    }
}

impl Track {
    fn predicted_box(&self, time: Timestamp) -> BBox {
        let dt = ((time.0 - self.at.0) as f32 / 1e6).max(0.0);
        from_centre([0, 1, 2, 3].map(|i| self.filters[i].predicted(dt)))
    }
}

/// The built-in [`Tracker`]: Kalman prediction, greedy assignment on a cost of overlap and
/// distance (same label only), median-smoothed scores, stationary detection and zones.
#[derive(Debug)]
pub struct ObjectTracker {
    options: TrackerOptions,
    tracks: Vec<Track>,
    removed: Vec<TrackedObject>,
    next_id: u64,
}

impl ObjectTracker {
    /// A tracker with `options`; ids start at 1.
    pub fn new(options: TrackerOptions) -> ObjectTracker {
        ObjectTracker {
            options,
            tracks: Vec::new(),
            removed: Vec::new(),
            next_id: 1,
        }
    }

    /// Gives up every object without reporting it removed (the stream's time jumped, so none
    /// can be followed across); new ones get new ids.
    pub fn forget(&mut self) {
        self.tracks.clear();
        self.removed.clear();
    }

    /// Replaces the zones (kept objects keep their entered zones).
    pub fn set_zones(&mut self, zones: Vec<Zone>) {
        for t in &mut self.tracks {
            t.zone_state = vec![(0, None); zones.len()];
            t.object.current_zones.clear();
            t.object.loitering_zones.clear();
        }
        self.options.zones = zones;
    }

    /// The objects followed now.
    pub fn objects(&self) -> Vec<TrackedObject> {
        self.tracks.iter().map(|t| t.object.clone()).collect()
    }

    fn threshold(&self, label: &str) -> f32 {
        self.options
            .filters
            .iter()
            .find(|f| f.label == label)
            .map_or(self.options.default_threshold, |f| f.threshold)
    }

    fn new_track(&mut self, time: Timestamp, d: &ObjectDetection) {
        let c = centre(&d.bbox);
        let id = self.next_id;
        self.next_id += 1;
        let mut track = Track {
            object: TrackedObject {
                tracker_id: id,
                label: d.label.clone(),
                score: d.score,
                smoothed_score: d.score,
                top_score: d.score,
                bbox: d.bbox,
                velocity: (0.0, 0.0),
                stationary: false,
                current_zones: Vec::new(),
                entered_zones: Vec::new(),
                first_seen: time,
                last_seen: time,
                frames_missed: 0,
                true_positive: false,
                loitering_zones: Vec::new(),
            },
            filters: c.map(Kalman1::new),
            at: time,
            scores: VecDeque::from([d.score]),
            anchor: d.bbox,
            still_frames: 0,
            zone_state: vec![(0, None); self.options.zones.len()],
        };
        let threshold = self.threshold(&d.label);
        track.object.true_positive = d.score >= threshold && self.options.score_history <= 1;
        self.tracks.push(track);
    }

    fn observe(&mut self, i: usize, time: Timestamp, d: &ObjectDetection) {
        let threshold = self.threshold(&self.tracks[i].object.label);
        let (history, stationary_frames, stationary_iou) = (
            self.options.score_history,
            self.options.stationary_frames,
            self.options.stationary_iou,
        );
        let t = &mut self.tracks[i];
        let dt = ((time.0 - t.at.0) as f32 / 1e6).max(0.0);
        let z = centre(&d.bbox);
        for (f, z) in t.filters.iter_mut().zip(z) {
            f.predict(dt);
            f.update(z);
        }
        t.at = time;
        t.scores.push_back(d.score);
        while t.scores.len() > history.max(1) {
            t.scores.pop_front();
        }
        let mut sorted: Vec<f32> = t.scores.iter().copied().collect();
        sorted.sort_by(f32::total_cmp);
        // The median, with a short history padded by zeros as Frigate does, so a single
        // confident frame does not make an object real.
        let padded = history.clamp(1, 3);
        let median = if sorted.len() < padded {
            let mut s = sorted.clone();
            s.extend(std::iter::repeat_n(0.0, padded - sorted.len()));
            s.sort_by(f32::total_cmp);
            s[s.len() / 2]
        } else {
            sorted[sorted.len() / 2]
        };
        let o = &mut t.object;
        o.score = d.score;
        o.smoothed_score = median;
        o.top_score = o.top_score.max(median);
        o.bbox = d.bbox;
        o.last_seen = time;
        o.frames_missed = 0;
        o.velocity = (t.filters[0].x[1], t.filters[1].x[1]);
        if median >= threshold {
            o.true_positive = true;
        }
        if t.anchor.iou(&d.bbox) >= stationary_iou {
            t.still_frames += 1;
        } else {
            t.anchor = d.bbox;
            t.still_frames = 0;
        }
        o.stationary = t.still_frames >= stationary_frames;
    }

    fn update_zones(&mut self, time: Timestamp) {
        let zones = &self.options.zones;
        for t in &mut self.tracks {
            let o = &mut t.object;
            if o.frames_missed > 0 {
                continue; // zones move on what was seen, not on predictions
            }
            let foot = Point {
                x: (o.bbox.x1 + o.bbox.x2) / 2.0,
                y: o.bbox.y2,
            };
            o.current_zones.clear();
            o.loitering_zones.clear();
            for (z, state) in zones.iter().zip(t.zone_state.iter_mut()) {
                let counts = z.enabled && (z.labels.is_empty() || z.labels.contains(&o.label));
                if counts && z.polygon.contains(foot) {
                    state.0 += 1;
                    if state.0 >= z.inertia.max(1) {
                        let since = *state.1.get_or_insert(time);
                        o.current_zones.push(z.name.clone());
                        if !o.entered_zones.contains(&z.name) {
                            o.entered_zones.push(z.name.clone());
                        }
                        if z.loitering_time_s > 0
                            && time.0 - since.0 >= i64::from(z.loitering_time_s) * 1_000_000
                        {
                            o.loitering_zones.push(z.name.clone());
                        }
                    }
                } else {
                    *state = (0, None);
                }
            }
        }
    }
}

impl Tracker for ObjectTracker {
    fn update(&mut self, time: Timestamp, detections: &[ObjectDetection]) -> Vec<TrackedObject> {
        // Pair predictions and detections, cheapest first.
        let mut pairs = Vec::new();
        for (ti, t) in self.tracks.iter().enumerate() {
            let predicted = t.predicted_box(time);
            let pc = centre(&predicted);
            for (di, d) in detections.iter().enumerate() {
                if d.label != t.object.label {
                    continue;
                }
                let overlap = predicted.iou(&d.bbox);
                let dc = centre(&d.bbox);
                let diag = (pc[2].hypot(pc[3])).max(dc[2].hypot(dc[3])).max(1e-4);
                let distance = (pc[0] - dc[0]).hypot(pc[1] - dc[1]) / diag;
                if overlap >= self.options.min_iou || distance <= self.options.max_distance {
                    pairs.push((1.0 - overlap + distance, ti, di));
                }
            }
        }
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut track_used = vec![false; self.tracks.len()];
        let mut det_used = vec![false; detections.len()];
        for (_, ti, di) in pairs {
            if track_used[ti] || det_used[di] {
                continue;
            }
            track_used[ti] = true;
            det_used[di] = true;
            self.observe(ti, time, &detections[di]);
        }
        // Missed tracks age; the ones gone too long are given up.
        let (max_missed, max_stationary) =
            (self.options.max_missed, self.options.max_missed_stationary);
        let mut kept = Vec::with_capacity(self.tracks.len());
        for (t, used) in std::mem::take(&mut self.tracks).into_iter().zip(track_used) {
            let mut t = t;
            if !used {
                t.object.frames_missed += 1;
                let limit = if t.object.stationary {
                    max_stationary
                } else {
                    max_missed
                };
                if t.object.frames_missed > limit {
                    self.removed.push(t.object);
                    continue;
                }
                // Coast on the prediction so the next match looks in the right place.
                if !t.object.stationary {
                    t.object.bbox = t.predicted_box(time);
                }
            }
            kept.push(t);
        }
        self.tracks = kept;
        for (di, d) in detections.iter().enumerate() {
            if !det_used[di] {
                self.new_track(time, d);
            }
        }
        self.update_zones(time);
        self.objects()
    }

    fn take_removed(&mut self) -> Vec<TrackedObject> {
        std::mem::take(&mut self.removed)
    }
}
