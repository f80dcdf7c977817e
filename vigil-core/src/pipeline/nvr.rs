//! The running system: every enabled camera of the store, each recorded by a [`CameraTask`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::Mutex;

use super::analysis::{AnalysisContext, AnalysisStats, AnalyzerFactory};
use super::camera_task::{CameraTask, CameraTaskOptions};
use super::live::LiveHub;
use super::recorder::RecorderInput;
use super::recorder::{reconcile, RecorderStats};
use super::retention::{DiskBudget, Retention};
use super::supervisor::{StreamStats, SupervisorOptions};
use super::triggers::{TriggerState, Triggers, RENEW};
use crate::error::Result;
use crate::id::{CameraId, EventId, IdGenerator};
use crate::media::Camera;
use crate::model::CameraConfig;
use crate::store::{Mutation, Store};
use crate::time::Clocks;

/// Builds the [`Camera`] for a configuration: the embedding program decides which sources it
/// supports (`vigild` knows RTSP, files and the synthetic camera).
pub type CameraFactory = Arc<dyn Fn(&CameraConfig) -> Result<Arc<dyn Camera>> + Send + Sync>;

/// What the API shows about one camera.
#[derive(Clone, Debug, Serialize)]
pub struct CameraStatus {
    /// The camera.
    pub id: CameraId,
    /// Whether it is configured to run.
    pub enabled: bool,
    /// The record stream, when running.
    pub stream: Option<StreamStats>,
    /// The recorder's counters, when running.
    pub recorder: Option<RecorderStats>,
    /// The detect stream (its own connection) and the analysis figures, when it is analysed.
    pub analysis: Option<(StreamStats, AnalysisStats)>,
    /// Why it is not running, when it should be (e.g. a source that cannot be built).
    pub error: Option<String>,
}

struct Entry {
    enabled: bool,
    task: Option<CameraTask>,
    error: Option<String>,
}

/// How an [`Nvr`] runs.
#[derive(Clone)]
pub struct NvrOptions {
    /// Limits on the space recordings take.
    pub budget: DiskBudget,
    /// How often retention runs.
    pub retention_interval: std::time::Duration,
    /// How often, between retention passes, the filesystem is checked against `max_percent`
    /// (one `statvfs`); a pass runs at once when it is over, so a disk filling fast is caught
    /// within this time.
    pub budget_check_interval: std::time::Duration,
    /// Builds each camera's analyser (motion, detection, events); `None` records only.
    pub analyzers: Option<AnalyzerFactory>,
}

impl std::fmt::Debug for NvrOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NvrOptions")
            .field("budget", &self.budget)
            .field("retention_interval", &self.retention_interval)
            .field("budget_check_interval", &self.budget_check_interval)
            .field("analyzers", &self.analyzers.is_some())
            .finish()
    }
}

impl Default for NvrOptions {
    fn default() -> Self {
        NvrOptions {
            budget: DiskBudget::default(),
            retention_interval: std::time::Duration::from_secs(60),
            budget_check_interval: std::time::Duration::from_secs(2),
            analyzers: None,
        }
    }
}

/// The event a trigger opens on a camera: label `trigger`, the trigger's name as sub-label.
fn trigger_event(
    id: EventId,
    t: &crate::model::Trigger,
    cfg: &CameraConfig,
    now: crate::time::Timestamp,
) -> crate::model::Event {
    let records = cfg.record.enabled && cfg.record.mode != crate::model::RecordMode::Off;
    whole_picture_event(
        id,
        cfg,
        "trigger".to_owned(),
        Some(t.name.clone()),
        1.0,
        now,
        records,
    )
}

/// An event opened at `now` on the whole picture of camera `cfg`, not by detection.
fn whole_picture_event(
    id: EventId,
    cfg: &CameraConfig,
    label: String,
    sub_label: Option<String>,
    score: f32,
    now: crate::time::Timestamp,
    has_clip: bool,
) -> crate::model::Event {
    crate::model::Event {
        id,
        camera: cfg.id.clone(),
        label,
        sub_label,
        score,
        top_score: score,
        start_time: now,
        end_time: None,
        zones: Vec::new(),
        tracker_id: None,
        bbox: crate::model::BBox {
            x1: 0.0,
            y1: 0.0,
            x2: 1.0,
            y2: 1.0,
        },
        has_clip,
        has_snapshot: false,
        retain: false,
        review: crate::model::ReviewStatus::Unreviewed,
        notes: None,
        risk_score: None,
        best: None,
        stationary: false,
        detection_count: 0,
    }
}

/// An event made by a person or a program rather than by detection (Frigate's
/// `POST /api/events/<camera>/<label>/create`, Home Assistant's `frigate.create_event`).
#[derive(Clone, Debug)]
pub struct ManualEvent {
    /// What it is (`doorbell`, `person`...).
    pub label: String,
    /// A finer name, shown next to the label.
    pub sub_label: Option<String>,
    /// Its score (`1.0` when not given).
    pub score: f32,
    /// How long it lasts; `None` keeps it open until [`Nvr::end_event`].
    pub duration: Option<std::time::Duration>,
    /// Whether the camera records while it lasts (and the event has a clip).
    pub include_recording: bool,
}

/// Every camera at work, and retention. Start it once per data directory.
pub struct Nvr {
    retention: Arc<Retention>,
    retention_task: tokio::task::JoinHandle<()>,
    data_dir: PathBuf,
    store: Arc<dyn Store>,
    ids: Arc<IdGenerator>,
    clocks: Arc<dyn Clocks>,
    factory: CameraFactory,
    supervisor: SupervisorOptions,
    cameras: Mutex<BTreeMap<CameraId, Entry>>,
    analyzers: Option<AnalyzerFactory>,
    live: Arc<LiveHub>,
    restream: Arc<super::restream::RestreamHub>,
    triggers: Arc<Triggers>,
}

impl Nvr {
    /// Makes files and store agree after any crash ([`reconcile`]), then starts every enabled
    /// camera of the store.
    pub async fn start(
        data_dir: &Path,
        store: Arc<dyn Store>,
        clocks: Arc<dyn Clocks>,
        factory: CameraFactory,
        opts: NvrOptions,
    ) -> Result<Nvr> {
        let report = reconcile(data_dir, &*store).await?;
        if report != Default::default() {
            tracing::info!(?report, "recordings reconciled after an unclean stop");
        }
        let ids = Arc::new(IdGenerator::new(store.max_id().await?));
        // What was set through the API outlives a restart and wins over the options.
        let mut budget = opts.budget;
        if let Some(saved) = saved::<DiskBudget>(&*store, BUDGET_SETTING).await? {
            if saved != budget {
                tracing::info!(?saved, configured = ?budget, "using the disk budget set through the API");
            }
            budget = saved;
        }
        let triggers = Arc::new(Triggers::default());
        if let Some(armed) = saved::<bool>(&*store, ARMING_SETTING).await? {
            triggers.set_armed(armed);
        }
        let retention = Arc::new(Retention::new(
            data_dir,
            store.clone(),
            clocks.clone(),
            budget,
        ));
        let r = retention.clone();
        let (every, check_every) = (opts.retention_interval, opts.budget_check_interval);
        let retention_task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut check = tokio::time::interval(check_every);
            check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = check.tick() => match r.over_percent() {
                        Ok(0) => continue,
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(err = %e, "cannot check the disk budget");
                            continue;
                        }
                    },
                }
                if let Err(e) = r.run().await {
                    tracing::error!(err = %e, "retention pass failed");
                }
            }
        });
        let nvr = Nvr {
            retention,
            retention_task,
            data_dir: data_dir.to_owned(),
            store: store.clone(),
            ids,
            clocks,
            factory,
            supervisor: SupervisorOptions::default(),
            cameras: Mutex::new(BTreeMap::new()),
            analyzers: opts.analyzers,
            live: Arc::new(LiveHub::new()),
            restream: Arc::new(super::restream::RestreamHub::new()),
            triggers,
        };
        for cfg in store.cameras().await? {
            nvr.put_camera(&cfg).await;
        }
        Ok(nvr)
    }

    /// Starts, restarts (after a configuration change) or stops a camera per `cfg`.
    pub async fn put_camera(&self, cfg: &CameraConfig) {
        let mut cams = self.cameras.lock().await;
        if let Some(old) = cams.remove(&cfg.id) {
            if let Some(t) = old.task {
                t.stop().await;
            }
        }
        let mut entry = Entry {
            enabled: cfg.enabled,
            task: None,
            error: None,
        };
        if cfg.enabled {
            let started = (self.factory)(cfg).and_then(|camera| {
                let camera = self.restream.tap(camera);
                let mut opts = CameraTaskOptions::new(&self.data_dir);
                opts.record = cfg.record.clone();
                opts.supervisor = self.supervisor.clone();
                let mut task = CameraTask::start(
                    camera.clone(),
                    opts,
                    self.store.clone(),
                    self.ids.clone(),
                    self.clocks.clone(),
                )?;
                let context = AnalysisContext {
                    data_dir: self.data_dir.clone(),
                    ids: self.ids.clone(),
                    live: self.live.clone(),
                };
                if let Some(factory) = &self.analyzers {
                    match factory(cfg, &context) {
                        Ok(Some(analyzer)) => task.start_analysis(
                            camera,
                            analyzer,
                            self.store.clone(),
                            self.supervisor.clone(),
                        ),
                        Ok(None) => {}
                        Err(e) => {
                            tracing::error!(camera = %cfg.id, err = %e, "analysis not started")
                        }
                    }
                }
                Ok(task)
            });
            match started {
                Ok(t) => entry.task = Some(t),
                Err(e) => {
                    tracing::error!(camera = %cfg.id, err = %e, "camera not started");
                    entry.error = Some(e.to_string());
                }
            }
        }
        cams.insert(cfg.id.clone(), entry);
    }

    /// Stops and forgets a camera (its recordings stay).
    pub async fn remove_camera(&self, id: &CameraId) {
        self.live.remove(id);
        let old = self.cameras.lock().await.remove(id);
        if let Some(t) = old.and_then(|e| e.task) {
            t.stop().await;
        }
    }

    /// The state of every camera.
    pub async fn status(&self) -> Vec<CameraStatus> {
        let cams = self.cameras.lock().await;
        cams.iter()
            .map(|(id, e)| CameraStatus {
                id: id.clone(),
                enabled: e.enabled,
                stream: e.task.as_ref().map(CameraTask::stats),
                recorder: e.task.as_ref().map(CameraTask::recorder_stats),
                analysis: e.task.as_ref().and_then(CameraTask::analysis_stats),
                error: e.error.clone(),
            })
            .collect()
    }

    /// Retention: storage statistics and manual cleanup.
    pub fn retention(&self) -> &Retention {
        &self.retention
    }

    /// Every camera's live view: the newest analysed picture and what was found in it.
    pub fn live(&self) -> &Arc<LiveHub> {
        &self.live
    }

    /// Every camera's record stream as it arrives, for restreaming.
    pub fn restream(&self) -> &Arc<super::restream::RestreamHub> {
        &self.restream
    }

    /// Tells a camera's recorder to keep recording until `until` (plus its post-capture):
    /// what events do in event mode. False when the camera is not running.
    pub async fn keep_recording(&self, id: &CameraId, until: crate::time::Timestamp) -> bool {
        let cams = self.cameras.lock().await;
        match cams.get(id).and_then(|e| e.task.as_ref()) {
            Some(t) => t
                .recorder_input()
                .try_send(RecorderInput::KeepUntil(until))
                .is_ok(),
            None => false,
        }
    }

    /// Trigger states and arming.
    pub fn triggers(&self) -> &Arc<Triggers> {
        &self.triggers
    }

    /// Arms or disarms the triggers and saves the choice, which holds across restarts.
    pub async fn set_armed(&self, armed: bool) -> Result<()> {
        save(&*self.store, ARMING_SETTING, &armed).await?;
        self.triggers.set_armed(armed);
        Ok(())
    }

    /// Sets the recordings' disk budget and saves it: at the next start it wins over
    /// [`NvrOptions::budget`] (the configuration file's).
    pub async fn set_budget(&self, budget: DiskBudget) -> Result<()> {
        save(&*self.store, BUDGET_SETTING, &budget).await?;
        self.retention.set_budget(budget);
        Ok(())
    }

    /// `trigger` fires: while armed, an event opens on each of its cameras (all cameras when
    /// it names none) and they record until it is released; while disarmed it is only
    /// counted as suppressed. Firing a triggered trigger again changes nothing.
    pub async fn fire_trigger(
        self: &Arc<Self>,
        trigger: &crate::model::Trigger,
    ) -> Result<TriggerState> {
        if !trigger.enabled {
            return Err(crate::error::Error::new(
                crate::error::ErrorKind::FailedPrecondition,
                format!("trigger {:?} is disabled", trigger.name),
            ));
        }
        let now = self.clocks.realtime();
        let armed = self.triggers.armed();
        let already = self.triggers.update(trigger.id, |s| {
            if s.triggered {
                return true;
            }
            s.triggered = true;
            s.suppressed = !armed;
            s.last_triggered = Some(now);
            s.count += 1;
            false
        });
        if already || !armed {
            return Ok(self.triggers.state(trigger.id));
        }
        let cameras = self.trigger_cameras(trigger).await?;
        let mut batch = crate::store::Batch::new();
        let mut events = Vec::new();
        for cfg in &cameras {
            let id = EventId(self.ids.next(now));
            events.push(id);
            batch.push(crate::store::Mutation::PutEvent(Box::new(trigger_event(
                id, trigger, cfg, now,
            ))));
        }
        self.store.apply(batch).await?;
        self.triggers.update(trigger.id, |s| s.events = events);
        // Keep the cameras recording, renewed while the trigger holds.
        let ids: Vec<CameraId> = cameras.iter().map(|c| c.id.clone()).collect();
        let me = self.clone();
        let renew = tokio::spawn(async move {
            loop {
                let until = me.clocks.realtime().saturating_add(RENEW * 3);
                for id in &ids {
                    me.keep_recording(id, until).await;
                }
                tokio::time::sleep(RENEW).await;
            }
        });
        self.triggers.set_keepalive(trigger.id, Some(renew));
        Ok(self.triggers.state(trigger.id))
    }

    /// `trigger` is released: its cameras record `hold_s` more, its events end now.
    pub async fn release_trigger(&self, trigger: &crate::model::Trigger) -> Result<TriggerState> {
        let now = self.clocks.realtime();
        let hold = now.saturating_add(std::time::Duration::from_secs(u64::from(trigger.hold_s)));
        let (was, events) = self.triggers.update(trigger.id, |s| {
            let was = s.triggered && !s.suppressed;
            s.triggered = false;
            s.last_released = Some(now);
            if was {
                s.hold_until = Some(hold);
            }
            (was, std::mem::take(&mut s.events))
        });
        self.triggers.set_keepalive(trigger.id, None);
        if was {
            for cfg in self.trigger_cameras(trigger).await? {
                self.keep_recording(&cfg.id, hold).await;
            }
            let mut batch = crate::store::Batch::new();
            for id in events {
                batch.push(Mutation::PatchEvent(Box::new(crate::model::EventPatch {
                    end: Some(now),
                    ..crate::model::EventPatch::new(id)
                })));
            }
            if !batch.is_empty() {
                self.store.apply(batch).await?;
            }
        }
        Ok(self.triggers.state(trigger.id))
    }

    /// Opens a [`ManualEvent`] on `camera` now. With a duration it ends by itself that long
    /// after; without one it stays open until [`Nvr::end_event`]. While it is open and records,
    /// the camera keeps recording (renewed every second, as a trigger does). An event left
    /// open when vigild stops stays open until it is ended.
    pub async fn create_event(
        self: &Arc<Self>,
        camera: &CameraId,
        m: ManualEvent,
    ) -> Result<crate::model::Event> {
        let Some(cfg) = self.store.camera(camera).await? else {
            return Err(crate::error::Error::new(
                crate::error::ErrorKind::NotFound,
                format!("no camera {camera}"),
            ));
        };
        let now = self.clocks.realtime();
        let records = cfg.record.enabled && cfg.record.mode != crate::model::RecordMode::Off;
        let e = whole_picture_event(
            EventId(self.ids.next(now)),
            &cfg,
            m.label,
            m.sub_label,
            m.score,
            now,
            m.include_recording && records,
        );
        let mut batch = crate::store::Batch::new();
        batch.push(Mutation::PutEvent(Box::new(e.clone())));
        self.store.apply(batch).await?;
        let deadline = m.duration.map(|d| now.saturating_add(d));
        if !e.has_clip && deadline.is_none() {
            return Ok(e);
        }
        // The duration is measured on the monotonic clock: a step of the wall clock meanwhile
        // neither ends the event early nor keeps it open for as long as the step.
        let due = m.duration.map(|d| {
            let us = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
            self.clocks.monotonic_us().saturating_add(us)
        });
        let me = self.clone();
        let (id, camera, record) = (e.id, cfg.id, e.has_clip);
        tokio::spawn(async move {
            loop {
                let now = me.clocks.realtime();
                if due.is_some_and(|d| me.clocks.monotonic_us() >= d) {
                    if let Err(err) = me.end_event(id, deadline).await {
                        tracing::warn!(event = %id, err = %err, "a manual event did not end");
                    }
                    return;
                }
                // Ended through the API meanwhile, or deleted.
                match me.store.event(id).await {
                    Ok(Some(e)) if e.end_time.is_none() => {}
                    _ => return,
                }
                if record {
                    me.keep_recording(&camera, now.saturating_add(RENEW * 3))
                        .await;
                }
                tokio::time::sleep(RENEW).await;
            }
        });
        Ok(e)
    }

    /// Ends the open event `id` at `at` (now when `None`), no earlier than its start and no
    /// later than now; the camera records its post-capture after it. An event already ended is left as it is.
    pub async fn end_event(
        &self,
        id: EventId,
        at: Option<crate::time::Timestamp>,
    ) -> Result<crate::model::Event> {
        let gone = || {
            crate::error::Error::new(crate::error::ErrorKind::NotFound, format!("no event {id}"))
        };
        let Some(e) = self.store.event(id).await? else {
            return Err(gone());
        };
        if e.end_time.is_some() {
            return Ok(e);
        }
        // Never later than now: the camera records the post-capture after the end. The end is
        // written as a patch, so that a review or notes set meanwhile stay, and an end made
        // meanwhile (the event's own duration running out) is kept.
        let now = self.clocks.realtime();
        let at = at.map_or(now, |t| t.min(now));
        let patch = crate::model::EventPatch {
            end: Some(at),
            ..crate::model::EventPatch::new(id)
        };
        self.store
            .apply(Mutation::PatchEvent(Box::new(patch)).into())
            .await?;
        let e = self.store.event(id).await?.ok_or_else(gone)?;
        let end = e.end_time.unwrap_or(at);
        if e.has_clip {
            let post = self
                .store
                .camera(&e.camera)
                .await?
                .map_or(5, |c| c.record.post_capture_s);
            let until = end.saturating_add(std::time::Duration::from_secs(u64::from(post)));
            self.keep_recording(&e.camera, until).await;
        }
        Ok(e)
    }

    async fn trigger_cameras(&self, t: &crate::model::Trigger) -> Result<Vec<CameraConfig>> {
        Ok(self
            .store
            .cameras()
            .await?
            .into_iter()
            .filter(|c| c.enabled && (t.cameras.is_empty() || t.cameras.contains(&c.id)))
            .collect())
    }

    /// The data directory (recordings, snapshots, clips).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The id generator every record of this system takes its id from.
    pub fn ids(&self) -> &Arc<IdGenerator> {
        &self.ids
    }

    /// The clocks.
    pub fn clocks(&self) -> &Arc<dyn Clocks> {
        &self.clocks
    }

    /// Stops every camera, closing their open segments. The `Nvr` runs nothing afterwards.
    pub async fn stop(&self) {
        self.retention_task.abort();
        let cams = std::mem::take(&mut *self.cameras.lock().await);
        for (_, e) in cams {
            if let Some(t) = e.task {
                t.stop().await;
            }
        }
    }
}

/// The store's setting of arming (JSON `true`/`false`).
const ARMING_SETTING: &str = "arming";
/// The store's setting of the disk budget (a [`DiskBudget`] as JSON).
const BUDGET_SETTING: &str = "storage.budget";

async fn save(store: &dyn Store, key: &str, v: &impl serde::Serialize) -> Result<()> {
    let value = serde_json::to_string(v)
        .map_err(|e| crate::Error::internal(format!("encoding setting {key}: {e}")))?;
    store
        .apply(
            Mutation::PutSetting {
                key: key.to_owned(),
                value,
            }
            .into(),
        )
        .await
}

/// A saved setting; one that no longer parses is logged and ignored (the default applies).
async fn saved<T: serde::de::DeserializeOwned>(store: &dyn Store, key: &str) -> Result<Option<T>> {
    let Some(text) = store.setting(key).await? else {
        return Ok(None);
    };
    match serde_json::from_str(&text) {
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            tracing::warn!(key, error = %e, "ignoring a saved setting that does not parse");
            Ok(None)
        }
    }
}
