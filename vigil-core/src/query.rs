//! Queries a [`Store`](crate::Store) answers: filters, sort orders, pages and aggregates.
//!
//! Every list filter of the five API documents is a field here; `vigil-http` only translates
//! parameter names. A [`Store`](crate::Store) must answer each filter from an index, not by
//! reading every record (see `vigil-store`'s design notes).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::*;
use crate::model::*;
use crate::time::Timestamp;

/// The largest page a store returns.
pub const MAX_PAGE_LIMIT: u32 = 1000;
/// The page size when none is given.
pub const DEFAULT_PAGE_LIMIT: u32 = 100;

/// What a list is ordered by.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SortBy {
    /// Start time (events, recordings) or time (everything else).
    #[default]
    Time,
    /// Score: events' `top_score`, recordings' highest object score, detections' score.
    Score,
    /// Duration (events, recordings).
    Duration,
}

/// Ascending or descending.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Order {
    /// Smallest (oldest) first.
    Asc,
    /// Largest (newest) first.
    #[default]
    Desc,
}

/// Which page of a list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    /// Items per page, 1..=[`MAX_PAGE_LIMIT`].
    pub limit: u32,
    /// Continue after the page that returned this [`Page::next_cursor`].
    pub cursor: Option<String>,
    /// Items to skip (after the cursor, if any). Deprecated by the HSI document, still served.
    pub offset: u64,
    /// Also count every item that matches (costs a scan of the matching index range).
    pub with_total: bool,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest {
            limit: DEFAULT_PAGE_LIMIT,
            cursor: None,
            offset: 0,
            with_total: false,
        }
    }
}

impl PageRequest {
    /// The first `limit` items.
    pub fn first(limit: u32) -> Self {
        PageRequest {
            limit,
            ..PageRequest::default()
        }
    }

    /// Checks the limit.
    pub fn validate(&self) -> Result<()> {
        if self.limit == 0 || self.limit > MAX_PAGE_LIMIT {
            return Err(Error::invalid(format!(
                "limit {} is outside 1..={MAX_PAGE_LIMIT}",
                self.limit
            )));
        }
        Ok(())
    }
}

/// One page of a list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items, in the requested order.
    pub items: Vec<T>,
    /// Pass back as [`PageRequest::cursor`] for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
    /// Whether more items follow.
    pub has_more: bool,
    /// Every matching item, when [`PageRequest::with_total`] asked for it.
    pub total: Option<u64>,
}

/// A list query: a filter, an order and a page.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Query<F> {
    /// What to include.
    pub filter: F,
    /// Order key.
    pub sort: SortBy,
    /// Direction.
    pub order: Order,
    /// Which page.
    pub page: PageRequest,
}

impl<F> Query<F> {
    /// Newest first, first page of the default size.
    pub fn new(filter: F) -> Self {
        Query {
            filter,
            sort: SortBy::Time,
            order: Order::Desc,
            page: PageRequest::default(),
        }
    }
}

/// A time range, `after` inclusive, `before` exclusive. Both open when `None`.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeRange {
    /// Earliest time included.
    pub after: Option<Timestamp>,
    /// First time excluded.
    pub before: Option<Timestamp>,
}

impl TimeRange {
    /// Whether `t` is inside.
    pub fn contains(&self, t: Timestamp) -> bool {
        self.after.is_none_or(|a| t >= a) && self.before.is_none_or(|b| t < b)
    }
}

/// Which events (Frigate's and HSI's event filters, HA's `favorites`).
///
/// Fields that hold lists match any of their values; fields together must all match.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EventFilter {
    /// Any of these cameras.
    pub cameras: Vec<CameraId>,
    /// Any of these labels.
    pub labels: Vec<String>,
    /// Any of these sub-labels.
    pub sub_labels: Vec<String>,
    /// Entered any of these zones.
    pub zones: Vec<String>,
    /// Start time in this range.
    pub time: TimeRange,
    /// Has (or has not) a clip.
    pub has_clip: Option<bool>,
    /// Has (or has not) a snapshot.
    pub has_snapshot: Option<bool>,
    /// Retained (favourite) or not.
    pub retain: Option<bool>,
    /// Review status.
    pub review: Option<ReviewStatus>,
    /// `top_score` at least this.
    pub min_score: Option<f32>,
    /// Every word appears as a whole word in the label, sub-label or notes (case-insensitive).
    pub text: Option<String>,
    /// In progress (no end time) or ended.
    pub in_progress: Option<bool>,
}

/// Which detections (HSI's `/api/detections`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DetectionFilter {
    /// Any of these cameras.
    pub cameras: Vec<CameraId>,
    /// Any of these labels (object types).
    pub labels: Vec<String>,
    /// Of this event.
    pub event_id: Option<EventId>,
    /// Of any of these tracked objects.
    pub tracker_ids: Vec<u64>,
    /// Time in this range.
    pub time: TimeRange,
    /// Score at least this.
    pub min_score: Option<f32>,
}

/// Which recordings (SpectraX's `/api/recordings`, Frigate's per-camera recordings).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordingFilter {
    /// Any of these cameras.
    pub cameras: Vec<CameraId>,
    /// Saw any of these object types.
    pub labels: Vec<String>,
    /// Saw any of these tracked objects.
    pub tracker_ids: Vec<u64>,
    /// Of these kinds; empty means all.
    pub kinds: Vec<RecordingKind>,
    /// Start time in this range.
    pub time: TimeRange,
    /// Highest object score at least this.
    pub min_score: Option<f32>,
    /// Retained or not.
    pub retained: Option<bool>,
    /// Covers this event.
    pub event_id: Option<EventId>,
}

/// Which snapshots.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapshotFilter {
    /// Any of these cameras.
    pub cameras: Vec<CameraId>,
    /// Of this event.
    pub event_id: Option<EventId>,
    /// Time in this range.
    pub time: TimeRange,
}

/// Which timelapse frames.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TimelapseFilter {
    /// Any of these cameras.
    pub cameras: Vec<CameraId>,
    /// Time in this range.
    pub time: TimeRange,
}

/// Which audit entries (HSI's `/api/audit`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditFilter {
    /// Any of these actors.
    pub actors: Vec<String>,
    /// Any of these actions.
    pub actions: Vec<String>,
    /// Any of these resource types.
    pub resource_types: Vec<String>,
    /// This resource.
    pub resource_id: Option<String>,
    /// This outcome.
    pub outcome: Option<Outcome>,
    /// Time in this range.
    pub time: TimeRange,
}

/// Which log entries (SentryShot's `levels`/`sources`/`monitors`, picam's `level`/`search`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LogFilter {
    /// Any of these levels.
    pub levels: Vec<LogLevel>,
    /// Any of these sources.
    pub sources: Vec<String>,
    /// Any of these cameras.
    pub cameras: Vec<CameraId>,
    /// Time in this range.
    pub time: TimeRange,
    /// Every word appears as a whole word in the message (case-insensitive).
    pub text: Option<String>,
}

/// Splits text into the lowercase words that text search matches on.
///
/// A word is a run of letters and digits; everything else separates words. The store indexes
/// the same words, so a query word matches exactly when [`words`] of the field contains it.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && w.len() <= 64)
        .map(str::to_lowercase)
}

/// Which events an aggregate counts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SummaryFilter {
    /// Any of these cameras; empty means all.
    pub cameras: Vec<CameraId>,
    /// Any of these labels; empty means all.
    pub labels: Vec<String>,
    /// Start time in this range. Counts are kept per hour, so the range is widened to whole
    /// hours.
    pub time: TimeRange,
}

/// One row of the events summary (Frigate's `/api/events/summary`): events of one camera, label
/// and zone set on one local day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventSummaryRow {
    /// Camera.
    pub camera: CameraId,
    /// Label.
    pub label: String,
    /// Zones entered, sorted.
    pub zones: Vec<String>,
    /// Local day.
    pub day: jiff::civil::Date,
    /// Events.
    pub count: u64,
    /// Of those, with a clip.
    pub with_clip: u64,
    /// Of those, with a snapshot.
    pub with_snapshot: u64,
    /// Of those, reviewed.
    pub reviewed: u64,
}

/// Detections of one camera and label on one local day (HSI's detection trends and object
/// distribution).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetectionTrendRow {
    /// Local day.
    pub day: jiff::civil::Date,
    /// Camera.
    pub camera: CameraId,
    /// Label.
    pub label: String,
    /// Detections.
    pub count: u64,
}

/// Totals of one camera's recordings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CameraRecordingStats {
    /// Recordings.
    pub count: u64,
    /// Their total length.
    pub duration_us: i64,
    /// Their total size.
    pub size_bytes: u64,
}

/// Recording statistics (SpectraX's `/api/recordings/stats`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordingStats {
    /// All recordings.
    pub total: CameraRecordingStats,
    /// Start of the oldest.
    pub oldest: Option<Timestamp>,
    /// Start of the newest.
    pub newest: Option<Timestamp>,
    /// How many recordings saw each object type.
    pub objects: BTreeMap<String, u64>,
    /// Distinct tracker ids seen.
    pub unique_tracker_ids: u64,
    /// Tracker ids seen in the most recordings, most first, with their recording counts.
    pub most_frequent_trackers: Vec<(u64, u64)>,
    /// Per camera.
    pub by_camera: BTreeMap<CameraId, CameraRecordingStats>,
}

/// Counts of events by one dimension (HSI's `/api/events/stats`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EventCounts {
    /// All events.
    pub total: u64,
    /// Per camera.
    pub by_camera: BTreeMap<CameraId, u64>,
    /// Per label.
    pub by_label: BTreeMap<String, u64>,
    /// Per review status (`reviewed` / `unreviewed`).
    pub by_review: BTreeMap<String, u64>,
}

/// Counts of audit entries (HSI's `/api/audit/stats`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditCounts {
    /// All entries.
    pub total: u64,
    /// Per action.
    pub by_action: BTreeMap<String, u64>,
    /// Per actor.
    pub by_actor: BTreeMap<String, u64>,
    /// Per outcome (`success` / `failure`).
    pub by_outcome: BTreeMap<String, u64>,
}

/// Counts of log entries (HSI's `/api/logs/stats`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LogCounts {
    /// All entries.
    pub total: u64,
    /// Per level.
    pub by_level: BTreeMap<String, u64>,
    /// Per source.
    pub by_source: BTreeMap<String, u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_and_lowercase() {
        let w: Vec<_> = words("Person at the FRONT-door, 2nd time!").collect();
        assert_eq!(w, ["person", "at", "the", "front", "door", "2nd", "time"]);
    }

    #[test]
    fn page_limits() {
        assert!(PageRequest::first(0).validate().is_err());
        assert!(PageRequest::first(1001).validate().is_err());
        PageRequest::first(1000).validate().unwrap();
    }
}
