//! Retention: what old footage goes, and when.
//!
//! - By age, per camera and class: continuous segments after `retain_continuous_days`, event
//!   recordings after `retain_events_days`, snapshots (events' best frames and the
//!   others) after the snapshot `retain_days` (0 keeps them; the disk budget counts
//!   recordings only). A continuous segment that an event still
//!   needs (one that overlaps an event whose own retention has not passed, or one marked
//!   `retain`) stays.
//! - By disk budget: recordings may use at most `max_bytes`, and the filesystem at most
//!   `max_percent` full; with no `max_percent`, at least [`default_reserve`] stays free.
//!   Oldest first across all cameras, so every camera keeps footage back to about the same
//!   time; footage events need goes only when the budget cannot be met without
//!   it. Recordings marked retained are never deleted automatically. The [`crate::pipeline::Nvr`]
//!   runs a whole pass every `retention_interval` and, between passes, checks the budget every
//!   `budget_check_interval` how full the filesystem is ([`Retention::over_percent`]), so a disk
//!   filling fast (another program's files count too) is caught within seconds.
//!
//! Deletion goes through [`delete_recording`], which is crash safe.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::recorder::delete_recording;
use crate::error::{Error, ErrorKind, Result};
use crate::id::CameraId;
use crate::model::{
    validate_relative_path, CameraConfig, Event, EventPatch, Recording, RecordingKind,
};
use crate::query::{
    CameraRecordingStats, EventFilter, Order, Query, RecordingFilter, SnapshotFilter, TimeRange,
};
use crate::store::{Batch, Mutation, Store};
use crate::time::{Clocks, Timestamp};

const DAY_US: i64 = 86_400_000_000;

/// Limits on the space recordings take.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct DiskBudget {
    /// Most bytes all recordings together may use.
    pub max_bytes: Option<u64>,
    /// Most the filesystem holding the data directory may be full, in percent. Without it,
    /// [`default_reserve`] is kept free.
    pub max_percent: Option<f64>,
}

/// The space kept free on a filesystem of `total` bytes when the budget sets no
/// `max_percent`: 1% of it, at least 64 MiB and at most 4 GiB (half of a filesystem smaller
/// than 128 MiB). With no budget at all, a disk filling up (with footage or other programs'
/// files) costs the oldest footage, not the new: recording never stops for want of space.
pub fn default_reserve(total: u64) -> u64 {
    (total / 100).clamp(64 << 20, 4 << 30).min(total / 2)
}

/// What a retention pass deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    /// Recordings deleted because of their age.
    pub expired: u32,
    /// Recordings deleted to meet the disk budget.
    pub over_budget: u32,
    /// Recordings deleted by a manual cleanup.
    pub cleaned: u32,
    /// Snapshots deleted because of their age.
    pub snapshots: u32,
    /// Bytes freed.
    pub freed_bytes: u64,
}

/// Space used, per camera and in total.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StorageStats {
    /// Size of the filesystem holding the data directory.
    pub filesystem_bytes: u64,
    /// Space left on it for unprivileged users.
    pub available_bytes: u64,
    /// How full it is, in percent.
    pub used_percent: f64,
    /// Recordings in total.
    pub recordings: CameraRecordingStats,
    /// Recordings per camera.
    pub by_camera: BTreeMap<CameraId, CameraRecordingStats>,
    /// Start of the oldest recording.
    pub oldest: Option<Timestamp>,
    /// Start of the newest recording.
    pub newest: Option<Timestamp>,
    /// The budget in force.
    pub budget: DiskBudget,
}

/// Applies retention to one data directory and its store.
pub struct Retention {
    data_dir: PathBuf,
    store: Arc<dyn Store>,
    clocks: Arc<dyn Clocks>,
    budget: std::sync::Mutex<DiskBudget>,
    /// When "disk budget not met" was last logged: a disk held full by another program would
    /// otherwise log it at every check (2 s).
    unmet_logged: std::sync::Mutex<Option<std::time::Instant>>,
}

struct Fs {
    total: u64,
    available: u64,
}

fn filesystem(dir: &Path) -> Result<Fs> {
    let s = rustix::fs::statvfs(dir).map_err(|e| {
        Error::new(
            ErrorKind::Unavailable,
            format!("statvfs {}: {e}", dir.display()),
        )
    })?;
    Ok(Fs {
        total: s.f_blocks.saturating_mul(s.f_frsize),
        available: s.f_bavail.saturating_mul(s.f_frsize),
    })
}

impl Retention {
    /// Retention over `data_dir` and `store`, with `budget`.
    pub fn new(
        data_dir: impl Into<PathBuf>,
        store: Arc<dyn Store>,
        clocks: Arc<dyn Clocks>,
        budget: DiskBudget,
    ) -> Self {
        Retention {
            data_dir: data_dir.into(),
            store,
            clocks,
            budget: std::sync::Mutex::new(budget),
            unmet_logged: std::sync::Mutex::new(None),
        }
    }

    /// The budget in force.
    pub fn budget(&self) -> DiskBudget {
        self.budget
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Changes the budget (picam's `/storage/configure`); the next pass applies it.
    pub fn set_budget(&self, budget: DiskBudget) {
        *self.budget.lock().unwrap_or_else(|p| p.into_inner()) = budget;
    }

    /// One pass: expired footage first, then whatever the budget still demands.
    pub async fn run(&self) -> Result<RetentionReport> {
        let mut report = RetentionReport::default();
        let configs: BTreeMap<CameraId, CameraConfig> = self
            .store
            .cameras()
            .await?
            .into_iter()
            .map(|c| (c.id.clone(), c))
            .collect();
        self.expire(&configs, &mut report).await?;
        self.enforce_budget(&configs, &mut report).await?;
        if report != RetentionReport::default() {
            tracing::info!(?report, "retention pass");
        }
        Ok(report)
    }

    /// Deletes the unretained recordings of `camera` (all cameras when `None`) that start
    /// before `before`: the manual cleanup of the storage endpoints.
    pub async fn cleanup(
        &self,
        camera: Option<&CameraId>,
        before: Timestamp,
    ) -> Result<RetentionReport> {
        let filter = RecordingFilter {
            cameras: camera.into_iter().cloned().collect(),
            time: TimeRange {
                after: None,
                before: Some(before),
            },
            retained: Some(false),
            ..Default::default()
        };
        let (cleaned, freed_bytes) = self.delete_oldest(filter, Spare::Nothing, None).await?;
        Ok(RetentionReport {
            cleaned,
            freed_bytes,
            ..Default::default()
        })
    }

    /// Space used now.
    pub async fn storage(&self) -> Result<StorageStats> {
        let fs = filesystem(&self.data_dir)?;
        let stats = self.store.recording_stats(0).await?;
        let used = fs.total.saturating_sub(fs.available);
        Ok(StorageStats {
            filesystem_bytes: fs.total,
            available_bytes: fs.available,
            used_percent: if fs.total == 0 {
                0.0
            } else {
                used as f64 * 100.0 / fs.total as f64
            },
            recordings: stats.total,
            by_camera: stats.by_camera,
            oldest: stats.oldest,
            newest: stats.newest,
            budget: self.budget(),
        })
    }

    async fn expire(
        &self,
        configs: &BTreeMap<CameraId, CameraConfig>,
        report: &mut RetentionReport,
    ) -> Result<()> {
        let now = self.clocks.realtime();
        let cameras: Vec<CameraId> = self
            .store
            .recording_stats(0)
            .await?
            .by_camera
            .into_keys()
            .collect();
        for cam in cameras {
            let rec = configs
                .get(&cam)
                .map(|c| c.record.clone())
                .unwrap_or_default();
            for (kind, days) in [
                (RecordingKind::Continuous, rec.retain_continuous_days),
                (RecordingKind::Event, rec.retain_events_days),
            ] {
                if days == 0 {
                    continue;
                }
                let filter = RecordingFilter {
                    cameras: vec![cam.clone()],
                    kinds: vec![kind],
                    time: TimeRange {
                        after: None,
                        before: Some(Timestamp(now.0 - i64::from(days) * DAY_US)),
                    },
                    retained: Some(false),
                    ..Default::default()
                };
                let spare = Spare::EventFootage {
                    now,
                    configs,
                    event_recordings: false,
                };
                let (n, bytes) = self.delete_oldest(filter, spare, None).await?;
                report.expired += n;
                report.freed_bytes += bytes;
            }
        }
        self.expire_snapshots(configs, now, report).await
    }

    async fn expire_snapshots(
        &self,
        configs: &BTreeMap<CameraId, CameraConfig>,
        now: Timestamp,
        report: &mut RetentionReport,
    ) -> Result<()> {
        for (cam, cfg) in configs {
            let days = cfg.snapshots.retain_days;
            if days == 0 {
                continue;
            }
            let mut q = Query::new(SnapshotFilter {
                cameras: vec![cam.clone()],
                event_id: None,
                time: TimeRange {
                    after: None,
                    before: Some(Timestamp(now.0 - i64::from(days) * DAY_US)),
                },
            });
            q.order = Order::Asc;
            q.page.limit = 500;
            loop {
                let page = self.store.snapshots(&q).await?;
                for s in &page.items {
                    let event = match s.event_id {
                        Some(id) => self.store.event(id).await?,
                        None => None,
                    };
                    // An event kept indefinitely keeps its snapshot.
                    if event.as_ref().is_some_and(|e| e.retain) {
                        continue;
                    }
                    if validate_relative_path(&s.path).is_ok() {
                        match std::fs::remove_file(self.data_dir.join(&s.path)) {
                            Ok(()) => {}
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                            Err(e) => {
                                return Err(Error::internal(format!("remove {}: {e}", s.path)))
                            }
                        }
                    }
                    let mut batch = Batch::from(Mutation::DeleteSnapshot(s.id));
                    // An event's best snapshot: the event stays (with its thumbnail and clip)
                    // but no longer has a snapshot. The patch forgets it only if it is that
                    // event's best, and otherwise writes nothing.
                    if let Some(id) = s.event_id {
                        batch
                            .mutations
                            .push(Mutation::PatchEvent(Box::new(EventPatch {
                                forget_snapshot: Some(s.path.clone()),
                                ..EventPatch::new(id)
                            })));
                    }
                    self.store.apply(batch).await?;
                    report.snapshots += 1;
                    report.freed_bytes += s.size_bytes;
                }
                match page.next_cursor {
                    Some(c) => q.page.cursor = Some(c),
                    None => break,
                }
            }
        }
        Ok(())
    }

    /// Whether an event still kept (by its camera's event retention, or marked retain)
    /// overlaps the recording.
    async fn needed_by_event(&self, r: &Recording, now: Timestamp, days: u32) -> Result<bool> {
        let mut q = Query::new(EventFilter {
            cameras: vec![r.camera.clone()],
            time: TimeRange {
                // Events rarely last a day; one that started earlier is not looked for.
                after: Some(Timestamp(r.start_time.0 - DAY_US)),
                before: Some(r.end_time),
            },
            ..Default::default()
        });
        q.page.limit = 1000;
        let events = self.store.events(&q).await?.items;
        let kept =
            |e: &Event| e.retain || days == 0 || e.start_time.0 >= now.0 - i64::from(days) * DAY_US;
        Ok(events.iter().any(|e| {
            let ends = e.end_time.map_or(i64::MAX, |t| t.0);
            ends > r.start_time.0 && e.start_time < r.end_time && kept(e)
        }))
    }

    /// Bytes to free to meet the budget now (0 when it is met).
    async fn over_budget(&self) -> Result<u64> {
        let mut excess = self.over_percent()?;
        if let Some(max) = self.budget().max_bytes {
            let used = self.store.recording_stats(0).await?.total.size_bytes;
            excess = excess.max(used.saturating_sub(max));
        }
        Ok(excess)
    }

    /// Bytes to free to bring the filesystem under `max_percent`, or, with no `max_percent`,
    /// to keep [`default_reserve`] free (0 when it is): one `statvfs`, cheap enough to ask
    /// every few seconds. The disk can fill fast (other programs' files count); recordings
    /// alone, which `max_bytes` limits, grow only as fast as the cameras record.
    pub fn over_percent(&self) -> Result<u64> {
        let Some(pct) = self.budget().max_percent else {
            // The reserve is a default: a filesystem that cannot be asked keeps none.
            return Ok(filesystem(&self.data_dir).map_or(0, |fs| {
                default_reserve(fs.total).saturating_sub(fs.available)
            }));
        };
        let fs = filesystem(&self.data_dir)?;
        let used = fs.total.saturating_sub(fs.available);
        let limit = (fs.total as f64 * pct.clamp(0.0, 100.0) / 100.0) as u64;
        Ok(used.saturating_sub(limit))
    }

    async fn enforce_budget(
        &self,
        configs: &BTreeMap<CameraId, CameraConfig>,
        report: &mut RetentionReport,
    ) -> Result<()> {
        let mut excess = self.over_budget().await?;
        if excess == 0 {
            return Ok(());
        }
        let now = self.clocks.realtime();
        // First what no event needs, then, only if that is not enough, the rest.
        let passes = [
            Spare::EventFootage {
                now,
                configs,
                event_recordings: true,
            },
            Spare::Nothing,
        ];
        for spare in passes {
            let filter = RecordingFilter {
                retained: Some(false),
                ..Default::default()
            };
            let (n, bytes) = self.delete_oldest(filter, spare, Some(excess)).await?;
            report.over_budget += n;
            report.freed_bytes += bytes;
            excess = excess.saturating_sub(bytes);
            if excess == 0 {
                return Ok(());
            }
        }
        let mut logged = self.unmet_logged.lock().unwrap_or_else(|e| e.into_inner());
        if logged.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(60)) {
            tracing::warn!(
                excess,
                "disk budget not met: what is left is retained or still being written"
            );
            *logged = Some(std::time::Instant::now());
        }
        Ok(())
    }

    /// Deletes the recordings of `filter`, oldest first, except what `spare` keeps, until
    /// `bytes` are freed (all of them for `None`). Returns the count and bytes deleted.
    async fn delete_oldest(
        &self,
        filter: RecordingFilter,
        spare: Spare<'_>,
        bytes: Option<u64>,
    ) -> Result<(u32, u64)> {
        let (mut n, mut freed) = (0u32, 0u64);
        let mut q = Query::new(filter);
        q.order = Order::Asc;
        q.page.limit = 200;
        loop {
            let page = self.store.recordings(&q).await?;
            for r in &page.items {
                if let Spare::EventFootage {
                    now,
                    configs,
                    event_recordings,
                } = spare
                {
                    if event_recordings && r.kind == RecordingKind::Event {
                        continue;
                    }
                    let days = configs.get(&r.camera).map_or(
                        crate::model::RecordSettings::default().retain_events_days,
                        |c| c.record.retain_events_days,
                    );
                    if self.needed_by_event(r, now, days).await? {
                        continue;
                    }
                }
                delete_recording(&self.data_dir, &*self.store, r).await?;
                n += 1;
                freed += r.size_bytes;
                if bytes.is_some_and(|b| freed >= b) {
                    return Ok((n, freed));
                }
            }
            match page.next_cursor {
                Some(c) => q.page.cursor = Some(c),
                None => return Ok((n, freed)),
            }
        }
    }
}

/// What a deletion pass leaves alone.
#[derive(Clone, Copy)]
enum Spare<'a> {
    /// Nothing (retained recordings are never in the filter).
    Nothing,
    /// Footage a kept event needs; and with `event_recordings`, every event recording.
    EventFootage {
        now: Timestamp,
        configs: &'a BTreeMap<CameraId, CameraConfig>,
        event_recordings: bool,
    },
}
