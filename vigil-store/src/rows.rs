//! What each record kind indexes and counts, and how its filter becomes a [`Plan`].

use vigil_core::*;

use crate::table::{enc_time, hour_of, AggValue, Plan, Row};

fn b(v: bool) -> String {
    if v { "1" } else { "0" }.to_owned()
}

/// Event terms.
pub(crate) mod ev {
    pub const CAMERA: u8 = 0x10;
    pub const LABEL: u8 = 0x11;
    pub const SUB_LABEL: u8 = 0x12;
    pub const ZONE: u8 = 0x13;
    pub const CLIP: u8 = 0x14;
    pub const SNAPSHOT: u8 = 0x15;
    pub const RETAIN: u8 = 0x16;
    pub const REVIEW: u8 = 0x17;
    pub const WORD: u8 = 0x18;
    pub const ENDED: u8 = 0x19;
    pub const CAMERA_LABEL: u8 = 0x20;
    /// Hourly summary buckets: `hour(8) camera 0 label 0 zones` → count, clip, snapshot, reviewed.
    pub const SUMMARY: u8 = 0x80;
}

impl Row for Event {
    const NAME: &'static str = "events";
    const COMPOSITES: &'static [(u8, u8, u8)] = &[(ev::CAMERA_LABEL, ev::CAMERA, ev::LABEL)];
    const SORTS: &'static [SortBy] = &[SortBy::Time, SortBy::Score, SortBy::Duration];

    fn id(&self) -> u64 {
        self.id.0
    }
    fn time_us(&self) -> i64 {
        self.start_time.0
    }
    fn score(&self) -> Option<f32> {
        Some(self.top_score)
    }
    fn duration_us(&self) -> Option<i64> {
        // An event in progress sorts as the longest: it is still going.
        Some(self.end_time.map_or(i64::MAX, |e| e.0 - self.start_time.0))
    }
    fn terms(&self, out: &mut Vec<(u8, String)>) {
        out.push((ev::CAMERA, self.camera.to_string()));
        out.push((ev::LABEL, self.label.clone()));
        if let Some(s) = &self.sub_label {
            out.push((ev::SUB_LABEL, s.clone()));
        }
        for z in &self.zones {
            out.push((ev::ZONE, z.clone()));
        }
        out.push((ev::CLIP, b(self.has_clip)));
        out.push((ev::SNAPSHOT, b(self.has_snapshot)));
        out.push((ev::RETAIN, b(self.retain)));
        out.push((ev::REVIEW, self.review.as_str().to_owned()));
        out.push((ev::ENDED, b(self.end_time.is_some())));
        let text = [
            Some(&self.label),
            self.sub_label.as_ref(),
            self.notes.as_ref(),
        ];
        for t in text.into_iter().flatten() {
            out.extend(words(t).map(|w| (ev::WORD, w)));
        }
    }
    fn aggregates(&self, out: &mut Vec<(Vec<u8>, AggValue)>) {
        let mut zones = self.zones.clone();
        zones.sort();
        zones.dedup();
        let mut k = vec![ev::SUMMARY];
        k.extend_from_slice(&enc_time(hour_of(self.start_time.0)));
        k.extend_from_slice(self.camera.as_str().as_bytes());
        k.push(0);
        k.extend_from_slice(self.label.as_bytes());
        k.push(0);
        k.extend_from_slice(zones.join(",").as_bytes());
        let v = [
            1,
            i64::from(self.has_clip),
            i64::from(self.has_snapshot),
            i64::from(self.review == ReviewStatus::Reviewed),
        ];
        out.push((k, v));
    }
}

fn cams(c: &[CameraId]) -> impl Iterator<Item = String> + '_ {
    c.iter().map(|c| c.to_string())
}

pub(crate) fn event_plan(f: &EventFilter) -> Plan {
    let mut p = Plan {
        time: f.time,
        min_score: f.min_score,
        ..Plan::default()
    };
    p.eq(ev::CAMERA, cams(&f.cameras))
        .eq(ev::LABEL, f.labels.iter().cloned())
        .eq(ev::SUB_LABEL, f.sub_labels.iter().cloned())
        .eq(ev::ZONE, f.zones.iter().cloned())
        .eq_opt(ev::CLIP, f.has_clip.map(b))
        .eq_opt(ev::SNAPSHOT, f.has_snapshot.map(b))
        .eq_opt(ev::RETAIN, f.retain.map(b))
        .eq_opt(ev::REVIEW, f.review.map(|r| r.as_str().to_owned()))
        .eq_opt(ev::ENDED, f.in_progress.map(|p| b(!p)));
    if let Some(t) = &f.text {
        for w in words(t) {
            p.eq(ev::WORD, [w]);
        }
    }
    p
}

/// Detection terms.
pub(crate) mod det {
    pub const CAMERA: u8 = 0x10;
    pub const LABEL: u8 = 0x11;
    pub const EVENT: u8 = 0x12;
    pub const TRACKER: u8 = 0x13;
    pub const CAMERA_LABEL: u8 = 0x20;
    /// Hourly buckets: `hour(8) camera 0 label` → count.
    pub const TRENDS: u8 = 0x81;
}

impl Row for Detection {
    const NAME: &'static str = "detections";
    const COMPOSITES: &'static [(u8, u8, u8)] = &[(det::CAMERA_LABEL, det::CAMERA, det::LABEL)];
    const SORTS: &'static [SortBy] = &[SortBy::Time, SortBy::Score];

    fn id(&self) -> u64 {
        self.id.0
    }
    fn time_us(&self) -> i64 {
        self.time.0
    }
    fn score(&self) -> Option<f32> {
        Some(self.score)
    }
    fn terms(&self, out: &mut Vec<(u8, String)>) {
        out.push((det::CAMERA, self.camera.to_string()));
        out.push((det::LABEL, self.label.clone()));
        if let Some(e) = self.event_id {
            out.push((det::EVENT, e.to_string()));
        }
        if let Some(t) = self.tracker_id {
            out.push((det::TRACKER, t.to_string()));
        }
    }
    fn aggregates(&self, out: &mut Vec<(Vec<u8>, AggValue)>) {
        let mut k = vec![det::TRENDS];
        k.extend_from_slice(&enc_time(hour_of(self.time.0)));
        k.extend_from_slice(self.camera.as_str().as_bytes());
        k.push(0);
        k.extend_from_slice(self.label.as_bytes());
        out.push((k, [1, 0, 0, 0]));
    }
}

pub(crate) fn detection_plan(f: &DetectionFilter) -> Plan {
    let mut p = Plan {
        time: f.time,
        min_score: f.min_score,
        ..Plan::default()
    };
    p.eq(det::CAMERA, cams(&f.cameras))
        .eq(det::LABEL, f.labels.iter().cloned())
        .eq_opt(det::EVENT, f.event_id.map(|e| e.to_string()))
        .eq(det::TRACKER, f.tracker_ids.iter().map(u64::to_string));
    p
}

/// Recording terms.
pub(crate) mod rec {
    pub const CAMERA: u8 = 0x10;
    pub const LABEL: u8 = 0x11;
    pub const TRACKER: u8 = 0x12;
    pub const KIND: u8 = 0x13;
    pub const RETAINED: u8 = 0x14;
    pub const EVENT: u8 = 0x15;
    pub const PATH: u8 = 0x16;
    pub const CAMERA_LABEL: u8 = 0x20;
    /// Per camera: `camera` → count, duration µs, size bytes.
    pub const BY_CAMERA: u8 = 0x82;
    /// Per tracker id: `id(8)` → recordings it appears in.
    pub const TRACKERS: u8 = 0x83;
}

impl Row for Recording {
    const NAME: &'static str = "recordings";
    const COMPOSITES: &'static [(u8, u8, u8)] = &[(rec::CAMERA_LABEL, rec::CAMERA, rec::LABEL)];
    const UNCOUNTED: &'static [u8] = &[rec::PATH];
    const SORTS: &'static [SortBy] = &[SortBy::Time, SortBy::Score, SortBy::Duration];

    fn id(&self) -> u64 {
        self.id.0
    }
    fn time_us(&self) -> i64 {
        self.start_time.0
    }
    fn score(&self) -> Option<f32> {
        Some(self.max_score())
    }
    fn duration_us(&self) -> Option<i64> {
        Some(Recording::duration_us(self))
    }
    fn terms(&self, out: &mut Vec<(u8, String)>) {
        out.push((rec::CAMERA, self.camera.to_string()));
        for o in &self.objects {
            out.push((rec::LABEL, o.label.clone()));
        }
        for t in self.tracker_ids() {
            out.push((rec::TRACKER, t.to_string()));
        }
        out.push((rec::KIND, self.kind.as_str().to_owned()));
        out.push((rec::RETAINED, b(self.retained)));
        for e in &self.event_ids {
            out.push((rec::EVENT, e.to_string()));
        }
        out.push((rec::PATH, self.path.clone()));
    }
    fn aggregates(&self, out: &mut Vec<(Vec<u8>, AggValue)>) {
        let mut k = vec![rec::BY_CAMERA];
        k.extend_from_slice(self.camera.as_str().as_bytes());
        let size = i64::try_from(self.size_bytes).unwrap_or(i64::MAX);
        out.push((k, [1, Recording::duration_us(self), size, 0]));
        for t in self.tracker_ids() {
            let mut k = vec![rec::TRACKERS];
            k.extend_from_slice(&t.to_be_bytes());
            out.push((k, [1, 0, 0, 0]));
        }
    }
}

pub(crate) fn recording_plan(f: &RecordingFilter) -> Plan {
    let mut p = Plan {
        time: f.time,
        min_score: f.min_score,
        ..Plan::default()
    };
    p.eq(rec::CAMERA, cams(&f.cameras))
        .eq(rec::LABEL, f.labels.iter().cloned())
        .eq(rec::TRACKER, f.tracker_ids.iter().map(u64::to_string))
        .eq(rec::KIND, f.kinds.iter().map(|k| k.as_str().to_owned()))
        .eq_opt(rec::RETAINED, f.retained.map(b))
        .eq_opt(rec::EVENT, f.event_id.map(|e| e.to_string()));
    p
}

/// Snapshot terms.
pub(crate) mod snap {
    pub const CAMERA: u8 = 0x10;
    pub const EVENT: u8 = 0x11;
}

impl Row for Snapshot {
    const NAME: &'static str = "snapshots";
    fn id(&self) -> u64 {
        self.id.0
    }
    fn time_us(&self) -> i64 {
        self.time.0
    }
    fn terms(&self, out: &mut Vec<(u8, String)>) {
        out.push((snap::CAMERA, self.camera.to_string()));
        if let Some(e) = self.event_id {
            out.push((snap::EVENT, e.to_string()));
        }
    }
}

pub(crate) fn snapshot_plan(f: &SnapshotFilter) -> Plan {
    let mut p = Plan {
        time: f.time,
        ..Plan::default()
    };
    p.eq(snap::CAMERA, cams(&f.cameras))
        .eq_opt(snap::EVENT, f.event_id.map(|e| e.to_string()));
    p
}

/// Timelapse frame terms.
pub(crate) mod tl {
    pub const CAMERA: u8 = 0x10;
}

impl Row for TimelapseFrame {
    const NAME: &'static str = "timelapse";
    fn id(&self) -> u64 {
        self.id.0
    }
    fn time_us(&self) -> i64 {
        self.time.0
    }
    fn terms(&self, out: &mut Vec<(u8, String)>) {
        out.push((tl::CAMERA, self.camera.to_string()));
    }
}

pub(crate) fn timelapse_plan(f: &TimelapseFilter) -> Plan {
    let mut p = Plan {
        time: f.time,
        ..Plan::default()
    };
    p.eq(tl::CAMERA, cams(&f.cameras));
    p
}

/// Audit terms.
pub(crate) mod audit {
    pub const ACTOR: u8 = 0x10;
    pub const ACTION: u8 = 0x11;
    pub const RESOURCE_TYPE: u8 = 0x12;
    pub const RESOURCE_ID: u8 = 0x13;
    pub const OUTCOME: u8 = 0x14;
}

fn outcome_str(o: Outcome) -> String {
    match o {
        Outcome::Success => "success",
        Outcome::Failure => "failure",
    }
    .to_owned()
}

impl Row for AuditEntry {
    const NAME: &'static str = "audit";
    const UNCOUNTED: &'static [u8] = &[audit::RESOURCE_ID];
    fn id(&self) -> u64 {
        self.id.0
    }
    fn time_us(&self) -> i64 {
        self.time.0
    }
    fn terms(&self, out: &mut Vec<(u8, String)>) {
        out.push((audit::ACTOR, self.actor.clone()));
        out.push((audit::ACTION, self.action.clone()));
        out.push((audit::RESOURCE_TYPE, self.resource_type.clone()));
        if let Some(r) = &self.resource_id {
            out.push((audit::RESOURCE_ID, r.clone()));
        }
        out.push((audit::OUTCOME, outcome_str(self.outcome)));
    }
}

pub(crate) fn audit_plan(f: &AuditFilter) -> Plan {
    let mut p = Plan {
        time: f.time,
        ..Plan::default()
    };
    p.eq(audit::ACTOR, f.actors.iter().cloned())
        .eq(audit::ACTION, f.actions.iter().cloned())
        .eq(audit::RESOURCE_TYPE, f.resource_types.iter().cloned())
        .eq_opt(audit::RESOURCE_ID, f.resource_id.clone())
        .eq_opt(audit::OUTCOME, f.outcome.map(outcome_str));
    p
}

/// Log terms.
pub(crate) mod log {
    pub const LEVEL: u8 = 0x10;
    pub const SOURCE: u8 = 0x11;
    pub const CAMERA: u8 = 0x12;
    pub const WORD: u8 = 0x13;
}

impl Row for LogEntry {
    const NAME: &'static str = "logs";
    fn id(&self) -> u64 {
        self.id.0
    }
    fn time_us(&self) -> i64 {
        self.time.0
    }
    fn terms(&self, out: &mut Vec<(u8, String)>) {
        out.push((log::LEVEL, self.level.as_str().to_owned()));
        out.push((log::SOURCE, self.source.clone()));
        if let Some(c) = &self.camera {
            out.push((log::CAMERA, c.to_string()));
        }
        out.extend(words(&self.message).map(|w| (log::WORD, w)));
    }
}

pub(crate) fn log_plan(f: &LogFilter) -> Plan {
    let mut p = Plan {
        time: f.time,
        ..Plan::default()
    };
    p.eq(log::LEVEL, f.levels.iter().map(|l| l.as_str().to_owned()))
        .eq(log::SOURCE, f.sources.iter().cloned())
        .eq(log::CAMERA, cams(&f.cameras));
    if let Some(t) = &f.text {
        for w in words(t) {
            p.eq(log::WORD, [w]);
        }
    }
    p
}
