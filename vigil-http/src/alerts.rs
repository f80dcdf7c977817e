//! Alert rules turned into notifications: each stored event is checked against the enabled
//! rules ([`vigil_core::AlertRule::matches`]); a match, past its cooldown, the notification
//! preferences and quiet hours, goes to the rule's channels: a webhook (POSTed, retried with
//! a doubling backoff, then put in the dead-letter queue), an MQTT topic (through the running
//! [`crate::mqtt::Mqtt`] link) and the push clients (`alert` on SSE and `/ws/events`).
//!
//! The dead-letter queue is kept in the store (the setting `dlq.webhook`), so a failed
//! delivery survives a restart until someone requeues or clears it (`/api/dlq/...`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::broadcast;
use vigil_core::{
    AlertChannel, AlertRule, AlertRuleId, CameraId, Event, EventId, Mutation, Result, Store,
    Timestamp,
};

use crate::{lock, AppState};

/// How deliveries are retried.
#[derive(Clone, Debug)]
pub struct NotifyOptions {
    /// Attempts of one delivery before it goes to the dead-letter queue.
    pub attempts: u32,
    /// Wait after the first failure; each next wait doubles.
    pub first_backoff: Duration,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
    /// How long one webhook request may take.
    pub timeout: Duration,
    /// Jobs the dead-letter queue keeps (the oldest go first beyond it).
    pub dlq_capacity: usize,
}

impl Default for NotifyOptions {
    fn default() -> Self {
        NotifyOptions {
            attempts: 4,
            first_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            dlq_capacity: 1000,
        }
    }
}

/// The queue names of the dead-letter queue (HSI's `{queue_name}`).
pub const QUEUES: [&str; 1] = ["webhook"];

/// One delivery: what is sent where, and how it went.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Identifier.
    pub id: String,
    /// The queue (`webhook`).
    pub queue: String,
    /// Where it goes (the webhook's URL).
    pub target: String,
    /// The rule that raised it (`test` for a test notification).
    pub rule_id: String,
    /// The rule's name.
    pub rule_name: String,
    /// The event it is about.
    pub event_id: Option<String>,
    /// The JSON body sent.
    pub payload: Value,
    /// Attempts made.
    pub attempts: u32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it went to the dead-letter queue.
    pub failed_at: Option<Timestamp>,
}

/// Counts since the start.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct NotifyFigures {
    /// Alerts raised (a rule matched an event, past its cooldown).
    pub alerts: u64,
    /// Alerts held back by preferences or quiet hours.
    pub suppressed: u64,
    /// Webhook deliveries that succeeded.
    pub delivered: u64,
    /// Webhook attempts that failed (each retry counts).
    pub failed_attempts: u64,
    /// Deliveries that went to the dead-letter queue.
    pub dead_lettered: u64,
    /// Stored changes the engine fell too far behind to see (their events were not checked).
    pub missed_changes: u64,
}

/// Rule matches remembered, so that an event's later updates do not alert again.
const FIRED_MEMORY: usize = 8192;

/// (event, rule) pairs that alerted: a set, and its order for forgetting the oldest.
type Fired = (
    HashSet<(EventId, AlertRuleId)>,
    VecDeque<(EventId, AlertRuleId)>,
);

/// The alerting state shared by the engine and the endpoints.
pub struct Notifier {
    options: NotifyOptions,
    /// The dead-letter queue, loaded from the store on first use.
    dlq: tokio::sync::Mutex<Option<Vec<Job>>>,
    mqtt: OnceLock<crate::mqtt::MqttPublisher>,
    fired: Mutex<Fired>,
    cooldowns: Mutex<HashMap<(AlertRuleId, CameraId, String), Timestamp>>,
    push: broadcast::Sender<Arc<Value>>,
    system: broadcast::Sender<Arc<Value>>,
    alerts: AtomicU64,
    suppressed: AtomicU64,
    delivered: AtomicU64,
    failed_attempts: AtomicU64,
    dead_lettered: AtomicU64,
    missed: AtomicU64,
    seq: AtomicU64,
    prefs: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("options", &self.options)
            .field("figures", &self.figures())
            .finish()
    }
}

impl Notifier {
    /// A notifier retrying as `options` say.
    pub fn new(options: NotifyOptions) -> Notifier {
        Notifier {
            options,
            dlq: tokio::sync::Mutex::new(None),
            mqtt: OnceLock::new(),
            fired: Mutex::default(),
            cooldowns: Mutex::default(),
            push: broadcast::channel(256).0,
            system: broadcast::channel(64).0,
            alerts: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            failed_attempts: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            missed: AtomicU64::new(0),
            seq: AtomicU64::new(0),
            prefs: tokio::sync::Mutex::new(()),
        }
    }

    /// Serialises the read-modify-write changes of the notification preferences (one record
    /// holds every camera's setting).
    pub(crate) async fn preferences_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.prefs.lock().await
    }

    /// The retry settings.
    pub fn options(&self) -> &NotifyOptions {
        &self.options
    }

    /// Sends the rules' MQTT channels through `publisher` (from [`crate::mqtt::Mqtt`]).
    pub fn set_mqtt(&self, publisher: crate::mqtt::MqttPublisher) {
        let _ = self.mqtt.set(publisher);
    }

    /// Whether MQTT channels have a link to go through.
    pub fn has_mqtt(&self) -> bool {
        self.mqtt.get().is_some()
    }

    /// Alerts for push clients, as they are raised.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Value>> {
        self.push.subscribe()
    }

    /// System alerts (a camera lost or back, the disk nearly full), as [`watch_system`]
    /// raises them: picam's `system_alert`.
    pub fn subscribe_system(&self) -> broadcast::Receiver<Arc<Value>> {
        self.system.subscribe()
    }

    /// Counts since the start.
    pub fn figures(&self) -> NotifyFigures {
        NotifyFigures {
            alerts: self.alerts.load(Ordering::Relaxed),
            suppressed: self.suppressed.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
            failed_attempts: self.failed_attempts.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            missed_changes: self.missed.load(Ordering::Relaxed),
        }
    }

    fn job_id(&self, now: Timestamp) -> String {
        format!("{}-{}", now.0, self.seq.fetch_add(1, Ordering::Relaxed))
    }

    /// The dead-letter queue's jobs of `queue`, oldest first.
    pub async fn dead_letters(&self, store: &dyn Store, queue: &str) -> Result<Vec<Job>> {
        let mut dlq = self.dlq.lock().await;
        let jobs = loaded(&mut dlq, store).await?;
        Ok(jobs.iter().filter(|j| j.queue == queue).cloned().collect())
    }

    /// Takes the oldest job of `queue` (all of them with `all`) out of the dead-letter queue
    /// and delivers it again, with its attempts reset. Returns the jobs requeued.
    pub async fn requeue(&self, state: &AppState, queue: &str, all: bool) -> Result<Vec<Job>> {
        let taken = {
            let mut dlq = self.dlq.lock().await;
            let jobs = loaded(&mut dlq, &**state.store()).await?;
            let (mut taken, mut kept) = (Vec::new(), Vec::new());
            for j in jobs.iter() {
                if j.queue == queue && (all || taken.is_empty()) {
                    taken.push(j.clone());
                } else {
                    kept.push(j.clone());
                }
            }
            // Saved first: if the store refuses, the jobs stay where they were.
            if !taken.is_empty() {
                save(&**state.store(), &kept).await?;
                *jobs = kept;
            }
            taken
        };
        for j in &taken {
            let mut j = j.clone();
            j.attempts = 0;
            j.last_error = None;
            j.failed_at = None;
            let state = state.clone();
            tokio::spawn(async move { deliver(&state, j).await });
        }
        Ok(taken)
    }

    /// Empties `queue`; returns how many jobs it held.
    pub async fn clear(&self, store: &dyn Store, queue: &str) -> Result<usize> {
        let mut dlq = self.dlq.lock().await;
        let jobs = loaded(&mut dlq, store).await?;
        let kept: Vec<Job> = jobs.iter().filter(|j| j.queue != queue).cloned().collect();
        let n = jobs.len() - kept.len();
        if n > 0 {
            save(store, &kept).await?;
            *jobs = kept;
        }
        Ok(n)
    }

    async fn dead_letter(&self, store: &dyn Store, job: Job) -> Result<()> {
        let mut dlq = self.dlq.lock().await;
        let jobs = loaded(&mut dlq, store).await?;
        let mut next = jobs.clone();
        next.push(job);
        let over = next.len().saturating_sub(self.options.dlq_capacity);
        next.drain(..over);
        save(store, &next).await?;
        *jobs = next;
        self.dead_lettered.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Whether (event, rule) alerted before; remembers it if not.
    fn first_time(&self, e: EventId, r: AlertRuleId) -> bool {
        let mut g = lock(&self.fired);
        let (set, order) = &mut *g;
        if !set.insert((e, r)) {
            return false;
        }
        order.push_back((e, r));
        while order.len() > FIRED_MEMORY {
            if let Some(old) = order.pop_front() {
                set.remove(&old);
            }
        }
        true
    }

    /// Whether the rule's cooldown for this camera and label has passed; starts it if so.
    fn past_cooldown(&self, rule: &AlertRule, e: &Event, now: Timestamp) -> bool {
        let key = (rule.id, e.camera.clone(), e.label.clone());
        let mut c = lock(&self.cooldowns);
        if let Some(last) = c.get(&key) {
            let until = last.saturating_add(Duration::from_secs(u64::from(rule.cooldown_s)));
            if now < until {
                return false;
            }
        }
        c.insert(key, now);
        true
    }
}

const DLQ_KEY: &str = "dlq.webhook";

async fn loaded<'a>(slot: &'a mut Option<Vec<Job>>, store: &dyn Store) -> Result<&'a mut Vec<Job>> {
    if slot.is_none() {
        let jobs = match store.setting(DLQ_KEY).await? {
            Some(text) => serde_json::from_str(&text).unwrap_or_else(|e| {
                tracing::error!(err = %e, "the stored dead-letter queue is unreadable; starting empty");
                Vec::new()
            }),
            None => Vec::new(),
        };
        *slot = Some(jobs);
    }
    Ok(slot.get_or_insert_with(Vec::new))
}

async fn save(store: &dyn Store, jobs: &[Job]) -> Result<()> {
    let value = serde_json::to_string(jobs)
        .map_err(|e| vigil_core::Error::internal(format!("encoding the dead-letter queue: {e}")))?;
    store
        .apply(
            Mutation::PutSetting {
                key: DLQ_KEY.into(),
                value,
            }
            .into(),
        )
        .await
}

/// Checks every stored event against the alert rules, until the store's feed ends.
pub async fn run(state: AppState) {
    let mut changes = state.store().changes();
    loop {
        let batch = match changes.recv().await {
            Ok(b) => b,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(
                    missed = n,
                    "alerting fell behind the store's changes: events missed"
                );
                state.notifier().missed.fetch_add(n, Ordering::Relaxed);
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        for m in &batch.mutations {
            if let Mutation::PutEvent(e) = m {
                if let Err(err) = consider(&state, e).await {
                    tracing::warn!(event = %e.id, %err, "alert rules not evaluated");
                }
            }
        }
    }
}

/// Why an alert was not sent, or `None` when it may be.
async fn held_back(
    state: &AppState,
    rule: &AlertRule,
    e: &Event,
    now: Timestamp,
) -> Result<Option<&'static str>> {
    let prefs = state.store().notification_preferences().await?;
    if !prefs.enabled {
        return Ok(Some("notifications are off"));
    }
    if !prefs.severities.contains(&rule.severity) {
        return Ok(Some("this severity is not notified"));
    }
    if let Some(c) = prefs.cameras.iter().find(|c| c.camera == e.camera) {
        if !c.enabled {
            return Ok(Some("notifications for this camera are off"));
        }
        if c.risk_threshold > 0 && e.risk_score.unwrap_or(0) < c.risk_threshold {
            return Ok(Some("below this camera's risk threshold"));
        }
    }
    let quiet = state.store().quiet_hours().await?;
    if quiet.iter().any(|q| q.enabled && q.schedule.contains(now)) {
        return Ok(Some("quiet hours"));
    }
    Ok(None)
}

/// The alert message of `rule` for `e`.
fn payload(rule: &AlertRule, e: &Event, now: Timestamp) -> Value {
    json!({
        "type": "alert",
        "rule_id": rule.id.to_string(),
        "rule_name": rule.name,
        "severity": crate::api::severity_name(rule.severity),
        "camera": e.camera.as_str(),
        "label": e.label,
        "score": e.top_score.max(e.score),
        "zones": e.zones,
        "event_id": e.id.to_string(),
        "event": crate::api::event_value(e),
        "time": now.to_string(),
    })
}

async fn consider(state: &AppState, e: &Event) -> Result<()> {
    // An event that ended long ago (edited after a restart, say) is history: no alert.
    if e.end_time
        .is_some_and(|t| state.now().0.saturating_sub(t.0) > crate::mqtt::NEWS_US)
    {
        return Ok(());
    }
    let rules = state.store().alert_rules().await?;
    let n = state.notifier();
    for rule in rules.iter().filter(|r| r.enabled && r.matches(e)) {
        if !n.first_time(e.id, rule.id) {
            continue;
        }
        let now = state.now();
        if !n.past_cooldown(rule, e, now) {
            continue;
        }
        n.alerts.fetch_add(1, Ordering::Relaxed);
        let body = payload(rule, e, now);
        let _ = n.push.send(Arc::new(body.clone()));
        if let Some(why) = held_back(state, rule, e, now).await? {
            n.suppressed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(rule = %rule.name, event = %e.id, why, "alert held back");
            continue;
        }
        for ch in &rule.channels {
            match ch {
                AlertChannel::Webhook { url } => {
                    let job = Job {
                        id: n.job_id(now),
                        queue: "webhook".into(),
                        target: url.clone(),
                        rule_id: rule.id.to_string(),
                        rule_name: rule.name.clone(),
                        event_id: Some(e.id.to_string()),
                        payload: body.clone(),
                        attempts: 0,
                        last_error: None,
                        created_at: now,
                        failed_at: None,
                    };
                    let state = state.clone();
                    tokio::spawn(async move { deliver(&state, job).await });
                }
                AlertChannel::Mqtt { topic } => match n.mqtt.get() {
                    Some(p) => p.publish(topic, body.to_string().into_bytes()),
                    None => {
                        tracing::warn!(rule = %rule.name, "an MQTT alert channel, but no [mqtt] link")
                    }
                },
                // The push clients had it above, quiet hours or not: they are the interface.
                AlertChannel::Push => {}
            }
        }
    }
    Ok(())
}

/// Delivers a webhook job, retrying with a doubling backoff; a job that keeps failing goes to
/// the dead-letter queue.
pub(crate) async fn deliver(state: &AppState, mut job: Job) {
    let n = state.notifier();
    let opts = n.options.clone();
    let mut wait = opts.first_backoff;
    loop {
        job.attempts += 1;
        match post(&job.target, &job.payload, opts.timeout).await {
            Ok(()) => {
                n.delivered.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(e) => {
                n.failed_attempts.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(job = %job.id, attempt = job.attempts, err = %e, "webhook delivery failed");
                job.last_error = Some(e);
            }
        }
        if job.attempts >= opts.attempts {
            break;
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(opts.max_backoff);
    }
    tracing::warn!(job = %job.id, url = %job.target, attempts = job.attempts, "webhook delivery failed; moved to the dead-letter queue");
    job.failed_at = Some(state.now());
    if let Err(e) = n.dead_letter(&**state.store(), job).await {
        tracing::error!(err = %e, "the dead-letter queue could not be saved");
    }
}

/// One POST of `body` to `url`: Ok on a 2xx answer.
pub(crate) async fn post(
    url: &str,
    body: &Value,
    timeout: Duration,
) -> std::result::Result<(), String> {
    let url = url.to_owned();
    let body = body.to_string();
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let resp = agent
            .post(&url)
            .header("content-type", "application/json")
            .send(body.as_bytes())
            .map_err(|e| e.to_string())?;
        let st = resp.status();
        if st.is_success() {
            Ok(())
        } else {
            Err(format!("the webhook answered {st}"))
        }
    })
    .await
    .map_err(|e| format!("the delivery task failed: {e}"))?
}

/// Checks a webhook URL: http or https, with a host.
pub(crate) fn check_url(url: &str) -> std::result::Result<(), String> {
    let u = url::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none_or(str::is_empty) {
        return Err(format!("{url:?} must be an http:// or https:// URL"));
    }
    Ok(())
}

/// How often [`watch_system`] looks.
const SYSTEM_EVERY: Duration = Duration::from_secs(2);

/// Disk use (percent of the filesystem) from which `storage_low` is raised, and under which it
/// is cleared again.
const STORAGE_HIGH: f64 = 95.0;
const STORAGE_CLEAR: f64 = 90.0;

/// Watches the running system and raises system alerts on changes: `camera_offline` when a
/// camera that streamed loses its stream, `camera_online` when it is back, `storage_low`
/// when the disk is nearly full and `storage_ok` when it is not any more. Without a running
/// [`vigil_core::pipeline::Nvr`] there is nothing to watch and it returns.
pub async fn watch_system(state: AppState) {
    let Some(nvr) = state.nvr().cloned() else {
        return;
    };
    let mut online: HashMap<CameraId, bool> = HashMap::new();
    let mut storage_low = false;
    let mut tick = tokio::time::interval(SYSTEM_EVERY);
    loop {
        tick.tick().await;
        let send = |v: Value| {
            tracing::info!(alert = %v["type"], "system alert");
            let _ = state.notifier().system.send(Arc::new(v));
        };
        for c in nvr.status().await {
            let Some(stream) = c.stream.as_ref().filter(|_| c.enabled) else {
                online.remove(&c.id);
                continue;
            };
            let now_on = stream.connected;
            let was = online.insert(c.id.clone(), now_on);
            match (was, now_on) {
                (Some(true), false) => send(json!({
                    "type": "camera_offline",
                    "severity": "high",
                    "camera": c.id.as_str(),
                    "message": format!("camera {} lost its stream: {}", c.id,
                        stream.last_error.as_deref().unwrap_or("no reason given")),
                    "time": state.now().to_string(),
                })),
                (Some(false), true) => send(json!({
                    "type": "camera_online",
                    "severity": "low",
                    "camera": c.id.as_str(),
                    "message": format!("camera {} streams again", c.id),
                    "time": state.now().to_string(),
                })),
                _ => {}
            }
        }
        if let Ok(st) = nvr.retention().storage().await {
            let high = st.used_percent >= STORAGE_HIGH;
            let clear = st.used_percent < STORAGE_CLEAR;
            if high && !storage_low {
                storage_low = true;
                send(json!({
                    "type": "storage_low",
                    "severity": "critical",
                    "used_percent": st.used_percent,
                    "available_bytes": st.available_bytes,
                    "message": format!("the disk is {:.0}% full", st.used_percent),
                    "time": state.now().to_string(),
                }));
            } else if clear && storage_low {
                storage_low = false;
                send(json!({
                    "type": "storage_ok",
                    "severity": "low",
                    "used_percent": st.used_percent,
                    "message": format!("the disk is {:.0}% full again", st.used_percent),
                    "time": state.now().to_string(),
                }));
            }
        }
    }
}
