//! The [`Store`] trait: where everything Vigil knows is persisted.
//!
//! Writes go through one method, [`Store::apply`], with a [`Batch`] of [`Mutation`]s that is
//! committed atomically and durably before the call returns: when `apply` returns `Ok`, the
//! batch survives a crash; when the process dies during `apply`, either all of the batch is
//! there after restart or none of it. The pipeline relies on this for "write the file, fsync,
//! then commit the record".
//!
//! Reads are typed, one group of methods per kind of record.

use async_trait::async_trait;

use crate::error::Result;
use crate::id::*;
use crate::model::*;
use crate::query::*;

/// One change to the store. Puts insert or replace by id; deletes of missing ids do nothing.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Mutation {
    /// Insert or replace a camera.
    PutCamera(Box<CameraConfig>),
    /// Remove a camera (its recordings and events stay until retention removes them).
    DeleteCamera(CameraId),
    /// Insert or replace an event.
    PutEvent(Box<Event>),
    /// Insert an event, or replace the pipeline's part of one: what people set on the event as
    /// stored (its review, notes, whether to keep it, a sub label the new one lacks; see
    /// [`Event::keep_what_people_set`]) is kept. The analysis writes its events so, from its
    /// own copies, without a read-modify-write race with the API. The change feed announces it
    /// as the [`Mutation::PutEvent`] of what was written.
    UpdateEvent(Box<Event>),
    /// Change some fields of an event as stored, inside the write (no read-modify-write race);
    /// nothing when the event is gone or the patch changes nothing. The change feed announces
    /// it as the [`Mutation::PutEvent`] of the result, or leaves it out when nothing changed
    /// (and a batch left empty so is not announced).
    PatchEvent(Box<EventPatch>),
    /// Remove an event.
    DeleteEvent(EventId),
    /// Insert or replace a detection.
    PutDetection(Box<Detection>),
    /// Remove a detection.
    DeleteDetection(DetectionId),
    /// Insert or replace a recording.
    PutRecording(Box<Recording>),
    /// Remove a recording.
    DeleteRecording(RecordingId),
    /// Set a recording's thumbnail and sprite sheet, if the recording still exists (its art is
    /// made after it is written, and retention may have removed it meanwhile).
    SetRecordingArt {
        /// The recording.
        id: RecordingId,
        /// Its thumbnail, relative to the data directory.
        thumbnail_path: Option<String>,
        /// Its hover-scrub sprite sheet, relative to the data directory.
        sprite_path: Option<String>,
    },
    /// Insert or replace a snapshot.
    PutSnapshot(Box<Snapshot>),
    /// Remove a snapshot.
    DeleteSnapshot(SnapshotId),
    /// Insert or replace a timelapse frame.
    PutTimelapseFrame(Box<TimelapseFrame>),
    /// Remove a timelapse frame.
    DeleteTimelapseFrame(TimelapseFrameId),
    /// Insert or replace a trigger.
    PutTrigger(Box<Trigger>),
    /// Remove a trigger.
    DeleteTrigger(TriggerId),
    /// Insert or replace an account.
    PutAccount(Box<Account>),
    /// Remove an account.
    DeleteAccount(AccountId),
    /// Insert or replace an API key.
    PutApiKey(Box<ApiKey>),
    /// Remove an API key.
    DeleteApiKey(ApiKeyId),
    /// Insert or replace an alert rule.
    PutAlertRule(Box<AlertRule>),
    /// Remove an alert rule.
    DeleteAlertRule(AlertRuleId),
    /// Insert or replace a quiet hours period.
    PutQuietHours(Box<QuietHours>),
    /// Remove a quiet hours period.
    DeleteQuietHours(QuietHoursId),
    /// Replace the notification preferences.
    PutNotificationPreferences(Box<NotificationPreferences>),
    /// Save a setting changed at run time (arming, the disk budget): `value` is JSON text,
    /// read back with [`Store::setting`].
    PutSetting {
        /// Its name, 1 to 200 bytes (`arming`, `storage.budget`).
        key: String,
        /// JSON text.
        value: String,
    },
    /// Forget a setting.
    DeleteSetting(String),
    /// Append an audit entry.
    PutAudit(Box<AuditEntry>),
    /// Append a log entry.
    PutLog(Box<LogEntry>),
    /// Remove log entries older than this (log retention).
    DeleteLogsBefore(crate::time::Timestamp),
}

impl Mutation {
    /// Checks what a caller could get wrong, before anything is written.
    pub fn validate(&self) -> Result<()> {
        match self {
            Mutation::PutCamera(c) => c.validate(),
            Mutation::PutEvent(e) | Mutation::UpdateEvent(e) => e.validate(),
            Mutation::PatchEvent(p) => p.validate(),
            Mutation::PutRecording(r) => r.validate(),
            Mutation::SetRecordingArt {
                thumbnail_path,
                sprite_path,
                ..
            } => {
                for p in [thumbnail_path, sprite_path].into_iter().flatten() {
                    validate_relative_path(p)?;
                }
                Ok(())
            }
            Mutation::PutDetection(d) => {
                validate_name("label", &d.label)?;
                validate_score("score", d.score)?;
                if let Some(p) = &d.image_path {
                    validate_relative_path(p)?;
                }
                Ok(())
            }
            Mutation::PutSnapshot(s) => validate_relative_path(&s.path),
            Mutation::PutTimelapseFrame(f) => validate_relative_path(&f.path),
            Mutation::PutAccount(a) => validate_name("username", &a.username),
            Mutation::PutAudit(a) => {
                validate_name("actor", &a.actor)?;
                validate_name("action", &a.action)?;
                validate_name("resource type", &a.resource_type)
            }
            Mutation::PutLog(l) => validate_name("log source", &l.source),
            Mutation::PutSetting { key, .. } | Mutation::DeleteSetting(key) => {
                if key.is_empty() || key.len() > 200 {
                    return Err(crate::Error::invalid(format!(
                        "setting name {key:?} must be 1 to 200 bytes"
                    )));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// How many committed batches [`Store::changes`] holds for a receiver that is behind.
pub const CHANGE_FEED_DEPTH: usize = 1024;

/// Mutations committed together, atomically.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    /// The changes, applied in order.
    pub mutations: Vec<Mutation>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Batch::default()
    }

    /// Adds a mutation.
    pub fn push(&mut self, m: Mutation) -> &mut Self {
        self.mutations.push(m);
        self
    }

    /// Number of mutations.
    pub fn len(&self) -> usize {
        self.mutations.len()
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.mutations.is_empty()
    }
}

impl From<Mutation> for Batch {
    fn from(m: Mutation) -> Self {
        Batch { mutations: vec![m] }
    }
}

impl FromIterator<Mutation> for Batch {
    fn from_iter<I: IntoIterator<Item = Mutation>>(iter: I) -> Self {
        Batch {
            mutations: iter.into_iter().collect(),
        }
    }
}

/// Persistent storage of Vigil's records.
///
/// Held as `Arc<dyn Store>`; every method may be called from many tasks at once. List methods
/// return pages ordered as asked; a cursor from one page continues the same query, also when
/// rows around it were deleted meanwhile. A cursor given to a different query, or one that was
/// never issued, is an [`ErrorKind::InvalidArgument`](crate::ErrorKind::InvalidArgument) error.
///
/// `vigil-store` implements it on LMDB and ships a conformance suite that every implementation
/// must pass.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Commits a batch atomically and durably (see the module documentation).
    async fn apply(&self, batch: Batch) -> Result<()>;

    /// The batches committed from now on, in commit order, each once it is durable (push to
    /// WebSocket, SSE and MQTT clients is made from it). A batch comes as written: an
    /// [`UpdateEvent`](Mutation::UpdateEvent) or [`PatchEvent`](Mutation::PatchEvent) as the
    /// [`PutEvent`](Mutation::PutEvent) of the event it left. A receiver more than
    /// [`CHANGE_FEED_DEPTH`] batches behind loses the oldest (`RecvError::Lagged`): commits
    /// never wait for receivers.
    fn changes(&self) -> tokio::sync::broadcast::Receiver<std::sync::Arc<Batch>>;

    /// The highest record id in the store, to seed an [`IdGenerator`].
    async fn max_id(&self) -> Result<u64>;

    // --- configuration
    /// One camera.
    async fn camera(&self, id: &CameraId) -> Result<Option<CameraConfig>>;
    /// All cameras, by id.
    async fn cameras(&self) -> Result<Vec<CameraConfig>>;
    /// One trigger.
    async fn trigger(&self, id: TriggerId) -> Result<Option<Trigger>>;
    /// All triggers, by id.
    async fn triggers(&self) -> Result<Vec<Trigger>>;
    /// One account.
    async fn account(&self, id: AccountId) -> Result<Option<Account>>;
    /// The account with this user name.
    async fn account_by_username(&self, username: &str) -> Result<Option<Account>>;
    /// All accounts, by id.
    async fn accounts(&self) -> Result<Vec<Account>>;
    /// One API key.
    async fn api_key(&self, id: ApiKeyId) -> Result<Option<ApiKey>>;
    /// All API keys, by id.
    async fn api_keys(&self) -> Result<Vec<ApiKey>>;
    /// One alert rule.
    async fn alert_rule(&self, id: AlertRuleId) -> Result<Option<AlertRule>>;
    /// All alert rules, by id.
    async fn alert_rules(&self) -> Result<Vec<AlertRule>>;
    /// All quiet hours periods, by id.
    async fn quiet_hours(&self) -> Result<Vec<QuietHours>>;
    /// The notification preferences (defaults when never set).
    async fn notification_preferences(&self) -> Result<NotificationPreferences>;
    /// A setting saved with [`Mutation::PutSetting`] (JSON text); `None` when never set.
    async fn setting(&self, key: &str) -> Result<Option<String>>;

    // --- events
    /// One event.
    async fn event(&self, id: EventId) -> Result<Option<Event>>;
    /// A page of events.
    async fn events(&self, q: &Query<EventFilter>) -> Result<Page<Event>>;
    /// Events per camera, label and zone set per local day in `tz`.
    async fn events_summary(
        &self,
        f: &SummaryFilter,
        tz: &jiff::tz::TimeZone,
    ) -> Result<Vec<EventSummaryRow>>;
    /// Event counts by camera, label and review status.
    async fn event_counts(&self) -> Result<EventCounts>;

    // --- detections
    /// One detection.
    async fn detection(&self, id: DetectionId) -> Result<Option<Detection>>;
    /// A page of detections.
    async fn detections(&self, q: &Query<DetectionFilter>) -> Result<Page<Detection>>;
    /// Detections per camera and label per local day in `tz`.
    async fn detection_trends(
        &self,
        f: &SummaryFilter,
        tz: &jiff::tz::TimeZone,
    ) -> Result<Vec<DetectionTrendRow>>;

    // --- recordings
    /// One recording.
    async fn recording(&self, id: RecordingId) -> Result<Option<Recording>>;
    /// The recording stored at this path.
    async fn recording_by_path(&self, path: &str) -> Result<Option<Recording>>;
    /// A page of recordings.
    async fn recordings(&self, q: &Query<RecordingFilter>) -> Result<Page<Recording>>;
    /// Totals, per camera and per object, and the most frequent tracker ids (`top` of them).
    async fn recording_stats(&self, top: usize) -> Result<RecordingStats>;

    // --- snapshots and timelapse
    /// One snapshot.
    async fn snapshot(&self, id: SnapshotId) -> Result<Option<Snapshot>>;
    /// A page of snapshots.
    async fn snapshots(&self, q: &Query<SnapshotFilter>) -> Result<Page<Snapshot>>;
    /// One timelapse frame.
    async fn timelapse_frame(&self, id: TimelapseFrameId) -> Result<Option<TimelapseFrame>>;
    /// A page of timelapse frames.
    async fn timelapse_frames(&self, q: &Query<TimelapseFilter>) -> Result<Page<TimelapseFrame>>;

    // --- operations
    /// One audit entry.
    async fn audit_entry(&self, id: AuditId) -> Result<Option<AuditEntry>>;
    /// A page of audit entries.
    async fn audit_entries(&self, q: &Query<AuditFilter>) -> Result<Page<AuditEntry>>;
    /// Audit counts by action, actor and outcome.
    async fn audit_counts(&self) -> Result<AuditCounts>;
    /// One log entry.
    async fn log_entry(&self, id: LogId) -> Result<Option<LogEntry>>;
    /// A page of log entries.
    async fn log_entries(&self, q: &Query<LogFilter>) -> Result<Page<LogEntry>>;
    /// Log counts by level and source.
    async fn log_counts(&self) -> Result<LogCounts>;
}
