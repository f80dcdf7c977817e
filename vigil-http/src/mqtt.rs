//! MQTT: what happens, published to a broker, and the commands that come back.
//!
//! Everything is made from the store's change feed ([`vigil_core::Store::changes`]), like the
//! HTTP push, so a change made through any door (the pipeline, an HTTP request, an MQTT
//! command) is published once, after it is stored. Under the configured prefix `P`:
//!
//! | topic | payload | retained |
//! |---|---|---|
//! | `P/available` | `online`; the last will, and a clean stop, `offline` | yes |
//! | `P/events` | Frigate's `{"type": "new"/"update"/"end", "before", "after"}` | no |
//! | `P/<camera or zone>/<label or all>` | how many such objects are in view | yes |
//! | `P/<camera or zone>/<label or all>/active` | the same, not counting stationary ones | yes |
//! | `P/<camera>/<label>/snapshot` | the JPEG of the newest event's best frame | yes |
//! | `P/<camera>/<switch>/state` | `ON`/`OFF` for `detect`, `recordings`, `motion`, `snapshots`, `enabled`, `improve_contrast`, `review_alerts`, `review_detections` | yes |
//! | `P/<camera>/motion_threshold/state`, `.../motion_contour_area/state` | the motion settings | yes |
//! | `P/<camera>/motion` | `ON` while a motion event is in progress or the analysis saw motion in the last 30 s | yes |
//! | `P/<camera>/review_status` | `ALERT`, `DETECTION` or `NONE` | yes |
//! | `P/stats` | the JSON of Frigate's `/api/stats`, every `stats_interval_s` | no |
//!
//! and SentryShot's `sentryshot/events/tflite` and `sentryshot/events/motion`, one message per
//! stored detection, in that document's shape with the detector's name as the source.
//!
//! Commands: `P/<camera>/<switch>/set` with `ON` or `OFF` (and `motion_threshold/set`,
//! `motion_contour_area/set` with a number) patches the camera through the same handler as
//! `PATCH /api/cameras/{camera}` (audited as `mqtt`), and a message on an MQTT trigger's topic
//! fires or releases it. `review_alerts` and `review_detections` are kept in the store's
//! setting [`REVIEW_KEY`] and decide what `review_status` reports. Motion detection always
//! stretches contrast, so `improve_contrast` stays `ON` (an `OFF` is refused and the state
//! published again).
//!
//! While the broker is away the pipeline runs on and nothing waits for it: messages made
//! meanwhile are dropped and counted, and the retained topics (availability, counts, snapshots,
//! switch states) hold the latest state, published again on every (re)connection with the
//! subscriptions, since the session is clean and a restarted broker may have forgotten them.
//! Incoming messages are handled one at a time, in order. A camera, zone or label name with
//! `/`, `+`, `#` has them replaced by `_` in topics.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::body::Bytes;
use hyper::Method;
use rumqttc::{AsyncClient, Event as MqttEvent, EventLoop, LastWill, MqttOptions, Packet, QoS};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use vigil_core::{CameraConfig, CameraId, Detection, Event, EventId, Mutation, TriggerKind};
use vigil_detect::MOTION_LABEL as MOTION;

use crate::auth::Principal;
use crate::{lock, AppState};

/// How to reach the broker and what to publish (`[mqtt]` in vigild's configuration).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttConfig {
    /// Broker host name or address.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// User name, when the broker wants one.
    pub user: Option<String>,
    /// Password for `user`.
    pub password: Option<String>,
    /// The client id; Home Assistant's integration also reads it from `/api/config`.
    pub client_id: String,
    /// Prefix of every topic but SentryShot's.
    pub topic_prefix: String,
    /// Seconds between two `P/stats` messages.
    pub stats_interval_s: u64,
    /// Publish SentryShot's `sentryshot/events/...` too.
    pub sentryshot: bool,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            host: "127.0.0.1".into(),
            port: 1883,
            user: None,
            password: None,
            client_id: "vigil".into(),
            topic_prefix: "vigil".into(),
            stats_interval_s: 60,
            sentryshot: true,
        }
    }
}

impl MqttConfig {
    /// Checks what the broker would refuse or what would make odd topics: the bad key and
    /// what is wrong with it.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let p = &self.topic_prefix;
        if p.is_empty() || p.starts_with('/') || p.ends_with('/') {
            return Err((
                "topic_prefix",
                format!("must be non-empty without a leading or trailing '/', got {p:?}"),
            ));
        }
        if p.contains(['+', '#', '\0']) {
            return Err((
                "topic_prefix",
                format!("must not hold the wildcards + or #, got {p:?}"),
            ));
        }
        if self.client_id.is_empty() || self.client_id.len() > 128 {
            return Err(("client_id", "must be 1 to 128 characters".into()));
        }
        if self.host.is_empty() {
            return Err(("host", "must not be empty".into()));
        }
        if self.stats_interval_s == 0 {
            return Err(("stats_interval_s", "must be at least 1".into()));
        }
        if self.password.is_some() && self.user.is_none() {
            return Err(("password", "is given without a user".into()));
        }
        Ok(())
    }
}

/// Messages queued for the broker before new ones are dropped.
const QUEUE: usize = 4096;

/// The longest wait between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Ended events remembered, so that a later edit (a review, a note) is not a second `end`.
const ENDED_MEMORY: usize = 4096;

/// An event that ended longer ago than this (10 minutes) is history, not news.
pub(crate) const NEWS_US: i64 = 600_000_000;

/// The switches of a camera's settings that `P/<camera>/<switch>/set` changes.
const SWITCHES: [&str; 5] = ["detect", "recordings", "motion", "snapshots", "enabled"];

/// The store's setting of the review switches of Home Assistant's Frigate integration: JSON,
/// per camera, `{"review_alerts": bool, "review_detections": bool}` (both on when left out).
pub const REVIEW_KEY: &str = "mqtt.review";

/// A camera's review switches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
struct Review {
    review_alerts: bool,
    review_detections: bool,
}

impl Default for Review {
    fn default() -> Self {
        Review {
            review_alerts: true,
            review_detections: true,
        }
    }
}

/// The review switches of every camera, from the store (none set when unreadable).
async fn review_switches(state: &AppState) -> BTreeMap<String, Review> {
    match state.store().setting(REVIEW_KEY).await {
        Ok(Some(v)) => serde_json::from_str(&v).unwrap_or_default(),
        _ => BTreeMap::new(),
    }
}

/// Figures of the link, for stats and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MqttFigures {
    /// Whether the broker is connected now.
    pub connected: bool,
    /// Messages handed to the client.
    pub published: u64,
    /// Messages dropped because the queue was full (the broker away too long).
    pub dropped: u64,
    /// Connections made (1 + reconnections).
    pub connections: u64,
}

struct Shared {
    prefix: String,
    sentryshot: bool,
    client: AsyncClient,
    /// Retained topics and their payloads, published again on each connection.
    retained: Mutex<BTreeMap<String, Bytes>>,
    /// Topic filters of MQTT triggers, subscribed to.
    trigger_topics: Mutex<BTreeSet<String>>,
    connected: AtomicBool,
    published: AtomicU64,
    dropped: AtomicU64,
    connections: AtomicU64,
    /// What the motion sensor of each camera is made of.
    motion: Mutex<MotionInputs>,
}

/// The two sources of `P/<camera>/motion`: cameras with a motion event in progress, and
/// cameras whose analysis saw motion in the last [`MOTION_OFF_DELAY`] (cameras running a
/// model make no motion events).
#[derive(Default)]
struct MotionInputs {
    events: HashSet<String>,
    live: HashSet<String>,
}

/// How long the motion sensor stays on after the last frame with motion (Frigate's
/// `mqtt_off_delay`).
const MOTION_OFF_DELAY: Duration = Duration::from_secs(30);

impl Shared {
    /// Publishes camera `cam`'s motion sensor after `change` updated its inputs (under their
    /// lock, so that the two sources cannot publish out of order).
    fn motion(&self, cam: &str, change: impl FnOnce(&mut MotionInputs)) {
        let mut m = lock(&self.motion);
        change(&mut m);
        let on = m.events.contains(cam) || m.live.contains(cam);
        self.retain(self.topic(&format!("{}/motion", level(cam))), on_off(on));
    }

    fn topic(&self, rest: &str) -> String {
        format!("{}/{rest}", self.prefix)
    }

    /// Queues a message. While the broker is away nothing is queued: a retained topic is
    /// published again on the next connection, any other message is dropped and counted.
    fn send(&self, topic: String, qos: QoS, retain: bool, payload: Bytes) {
        if !self.connected.load(Ordering::Relaxed) {
            if !retain {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        self.push(topic, qos, retain, payload);
    }

    fn push(&self, topic: String, qos: QoS, retain: bool, payload: Bytes) {
        match self
            .client
            .try_publish(topic, qos, retain, payload.to_vec())
        {
            Ok(()) => {
                self.published.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                if self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::warn!(err = %e, "MQTT message dropped (more are counted, not logged)");
                }
            }
        }
    }

    /// Publishes a retained topic and remembers it for the next connection. The lock is held
    /// while queueing, so that a reconnection's [`Shared::republish`] cannot send an older
    /// value after a newer one.
    fn retain(&self, topic: String, payload: Bytes) {
        let mut r = lock(&self.retained);
        if r.get(&topic) == Some(&payload) {
            return;
        }
        r.insert(topic.clone(), payload.clone());
        self.send(topic, QoS::AtLeastOnce, true, payload);
    }

    /// Everything retained, and the subscriptions, again: after a (re)connection (the
    /// session is clean, so the broker forgot the subscriptions).
    fn republish(&self) {
        let filters: Vec<String> = std::iter::once(self.topic("+/+/set"))
            .chain(lock(&self.trigger_topics).iter().cloned())
            .collect();
        for f in filters {
            if let Err(e) = self.client.try_subscribe(f.clone(), QoS::AtLeastOnce) {
                tracing::warn!(filter = %f, err = %e, "MQTT subscription not sent");
            }
        }
        let r = lock(&self.retained);
        for (t, p) in r.iter() {
            self.push(t.clone(), QoS::AtLeastOnce, true, p.clone());
        }
    }
}

/// One level of a topic made from a name (a camera, a zone, a label): `/`, `+`, `#` and NUL
/// would change the topic's shape or make it invalid, so they become `_`.
fn level(name: &str) -> std::borrow::Cow<'_, str> {
    if name.contains(['/', '+', '#', '\0']) {
        name.replace(['/', '+', '#', '\0'], "_").into()
    } else {
        name.into()
    }
}

/// Publishes on any topic through a running link (alert rules' MQTT channels).
#[derive(Clone)]
pub struct MqttPublisher(Arc<Shared>);

impl std::fmt::Debug for MqttPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttPublisher")
            .field("prefix", &self.0.prefix)
            .finish()
    }
}

impl MqttPublisher {
    /// Queues `payload` on `topic` (QoS 1, not retained); dropped and counted when the queue
    /// is full.
    pub fn publish(&self, topic: &str, payload: Vec<u8>) {
        self.0.send(
            topic.to_owned(),
            QoS::AtLeastOnce,
            false,
            Bytes::from(payload),
        );
    }
}

/// A running MQTT link. [`Mqtt::stop`] says `offline` and disconnects.
pub struct Mqtt {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
    connection: JoinHandle<()>,
}

impl std::fmt::Debug for Mqtt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mqtt")
            .field("prefix", &self.shared.prefix)
            .field("figures", &self.figures())
            .finish()
    }
}

impl Mqtt {
    /// Connects to the broker of `config` (in the background: an absent broker is retried)
    /// and publishes what `state`'s store records. Must be called within a Tokio runtime.
    pub fn start(state: AppState, config: &MqttConfig) -> Result<Mqtt, String> {
        config.validate().map_err(|(k, m)| format!("{k}: {m}"))?;
        let mut opts = MqttOptions::new(&config.client_id, &config.host, config.port);
        opts.set_keep_alive(Duration::from_secs(15));
        opts.set_max_packet_size(16 << 20, 16 << 20);
        let available = format!("{}/available", config.topic_prefix);
        opts.set_last_will(LastWill::new(&available, "offline", QoS::AtLeastOnce, true));
        if let Some(user) = &config.user {
            opts.set_credentials(user, config.password.clone().unwrap_or_default());
        }
        let (client, eventloop) = AsyncClient::new(opts, QUEUE);
        let shared = Arc::new(Shared {
            prefix: config.topic_prefix.clone(),
            sentryshot: config.sentryshot,
            client,
            retained: Mutex::default(),
            trigger_topics: Mutex::default(),
            connected: AtomicBool::new(false),
            published: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            motion: Mutex::default(),
        });
        shared.retain(available, Bytes::from_static(b"online"));
        // Subscribed before the feed starts, so that no change is missed between the first
        // states and the feed.
        let changes = state.store().changes();
        let feed = tokio::spawn(feed(shared.clone(), state.clone(), changes));
        let stats = tokio::spawn(stats(
            shared.clone(),
            state.clone(),
            Duration::from_secs(config.stats_interval_s),
        ));
        let motion = tokio::spawn(motion_sensor(shared.clone(), state.clone()));
        let connection = tokio::spawn(connection(shared.clone(), state, eventloop));
        Ok(Mqtt {
            shared,
            tasks: vec![feed, stats, motion],
            connection,
        })
    }

    /// A handle that publishes through this link.
    pub fn publisher(&self) -> MqttPublisher {
        MqttPublisher(self.shared.clone())
    }

    /// The prefix of the topics.
    pub fn topic_prefix(&self) -> &str {
        &self.shared.prefix
    }

    /// Figures of the link.
    pub fn figures(&self) -> MqttFigures {
        let s = &self.shared;
        MqttFigures {
            connected: s.connected.load(Ordering::Relaxed),
            published: s.published.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            connections: s.connections.load(Ordering::Relaxed),
        }
    }

    /// Publishes `offline`, disconnects (waiting at most 2 s for the broker) and stops.
    pub async fn stop(self) {
        for t in &self.tasks {
            t.abort();
        }
        let s = &self.shared;
        let available = s.topic("available");
        lock(&s.retained).insert(available.clone(), Bytes::from_static(b"offline"));
        if s.connected.load(Ordering::Relaxed) {
            let _ = s
                .client
                .try_publish(available, QoS::AtLeastOnce, true, "offline");
            let _ = s.client.try_disconnect();
            let mut c = self.connection;
            if tokio::time::timeout(Duration::from_secs(2), &mut c)
                .await
                .is_err()
            {
                c.abort();
            }
        } else {
            self.connection.abort();
        }
    }
}

/// Drives the connection: reconnects with a backoff, and answers each connection by
/// subscribing and publishing the retained topics again.
async fn connection(shared: Arc<Shared>, state: AppState, mut eventloop: EventLoop) {
    let mut backoff = Duration::from_millis(250);
    // Incoming messages are handled one at a time, in order (an ON then an OFF must end OFF);
    // beyond 256 waiting they are dropped.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(String, Bytes)>(256);
    {
        let (shared, state) = (shared.clone(), state.clone());
        tokio::spawn(async move {
            while let Some((topic, payload)) = rx.recv().await {
                message(&shared, &state, &topic, &payload).await;
            }
        });
    }
    loop {
        match eventloop.poll().await {
            Ok(MqttEvent::Incoming(Packet::ConnAck(_))) => {
                shared.connected.store(true, Ordering::Relaxed);
                let n = shared.connections.fetch_add(1, Ordering::Relaxed);
                tracing::info!(reconnection = n > 0, "MQTT broker connected");
                backoff = Duration::from_millis(250);
                shared.republish();
            }
            Ok(MqttEvent::Incoming(Packet::Publish(p))) => {
                if tx.try_send((p.topic.clone(), p.payload.clone())).is_err() {
                    tracing::warn!(topic = %p.topic, "MQTT command dropped: too many waiting");
                }
            }
            Ok(MqttEvent::Outgoing(rumqttc::Outgoing::Disconnect)) => {
                shared.connected.store(false, Ordering::Relaxed);
                return;
            }
            Ok(_) => {}
            Err(e) => {
                if shared.connected.swap(false, Ordering::Relaxed) {
                    tracing::warn!(err = %e, "MQTT broker connection lost; retrying");
                } else {
                    tracing::debug!(err = %e, "MQTT broker not reachable; retrying");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// What an incoming message asks for, read from its topic and payload alone (acting on it
/// needs the store and the cameras).
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// `P/<camera>/<switch>/set` of a setting: the camera patched with `patch`, as
    /// `PATCH /api/cameras/{camera}` with that body would.
    Patch {
        /// The camera, as the topic names it (not yet checked to exist).
        camera: String,
        /// The topic's switch.
        switch: String,
        /// The body of the patch.
        patch: Value,
    },
    /// `review_alerts` or `review_detections` set.
    Review {
        /// The camera, as the topic names it.
        camera: String,
        /// `true` for `review_alerts`, `false` for `review_detections`.
        alerts: bool,
        /// On or off.
        on: bool,
    },
    /// `improve_contrast` set: it stays on (motion detection always stretches contrast), so
    /// its state is published again; `on` is what was asked.
    ImproveContrast {
        /// The camera, as the topic names it.
        camera: String,
        /// What was asked.
        on: bool,
    },
    /// A message outside the command topics: a signal for the MQTT triggers listening there.
    Signal {
        /// The topic.
        topic: String,
        /// The payload as text, trimmed.
        payload: String,
    },
    /// A command topic with something wrong: why it is ignored.
    Invalid {
        /// The camera, as the topic names it.
        camera: String,
        /// The topic's switch.
        switch: String,
        /// What is wrong.
        reason: String,
    },
}

impl Command {
    /// Reads a message on `topic` under the prefix `prefix`.
    pub fn parse(prefix: &str, topic: &str, payload: &[u8]) -> Command {
        let text = String::from_utf8_lossy(payload);
        let text = text.trim();
        let command = topic
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('/'))
            .and_then(|rest| match rest.split('/').collect::<Vec<_>>()[..] {
                [camera, switch, "set"] => Some((camera, switch)),
                _ => None,
            });
        let Some((camera, switch)) = command else {
            return Command::Signal {
                topic: topic.to_owned(),
                payload: text.to_owned(),
            };
        };
        let invalid = |reason: String| Command::Invalid {
            camera: camera.to_owned(),
            switch: switch.to_owned(),
            reason,
        };
        if let Some(setting) = switch.strip_prefix("motion_") {
            let limit = match setting {
                "threshold" => 255,
                "contour_area" => 1_000_000,
                _ => return invalid("no such setting".into()),
            };
            return match text.parse::<u32>() {
                Ok(n) if (1..=limit).contains(&n) => Command::Patch {
                    camera: camera.to_owned(),
                    switch: switch.to_owned(),
                    patch: json!({"motion": {setting: n}}),
                },
                _ => invalid(format!(
                    "the payload {text:?} is not a number within 1..={limit}"
                )),
            };
        }
        let on = match text.to_ascii_uppercase().as_str() {
            "ON" => true,
            "OFF" => false,
            _ => return invalid(format!("the payload {text:?} is not ON or OFF")),
        };
        let patch = match switch {
            "detect" => json!({"detect": {"enabled": on}}),
            "recordings" => json!({"record": {"enabled": on}}),
            "motion" => json!({"motion": {"enabled": on}}),
            "snapshots" => json!({"snapshots": {"enabled": on}}),
            "enabled" => json!({"enabled": on}),
            "review_alerts" | "review_detections" => {
                return Command::Review {
                    camera: camera.to_owned(),
                    alerts: switch == "review_alerts",
                    on,
                }
            }
            "improve_contrast" => {
                return Command::ImproveContrast {
                    camera: camera.to_owned(),
                    on,
                }
            }
            _ => {
                return invalid(
                    "no such switch (detect, recordings, motion, snapshots, enabled, \
                     improve_contrast, review_alerts, review_detections)"
                        .into(),
                )
            }
        };
        Command::Patch {
            camera: camera.to_owned(),
            switch: switch.to_owned(),
            patch,
        }
    }
}

/// An incoming message: a camera switch command, or an MQTT trigger's signal.
async fn message(shared: &Shared, state: &AppState, topic: &str, payload: &[u8]) {
    match Command::parse(&shared.prefix, topic, payload) {
        Command::Patch {
            camera,
            switch,
            patch,
        } => patch_camera(state, &camera, &switch, patch).await,
        Command::Review { camera, alerts, on } => {
            let switch = if alerts {
                "review_alerts"
            } else {
                "review_detections"
            };
            set_review(state, &camera, switch, on).await;
        }
        Command::ImproveContrast { camera, on } => {
            if !on {
                tracing::warn!(
                    camera,
                    "MQTT command refused: motion detection always stretches contrast"
                );
            }
            // The state is ON either way; say so again, so the switch shows it.
            let topic = shared.topic(&format!("{}/improve_contrast/state", level(&camera)));
            shared.send(topic, QoS::AtLeastOnce, true, on_off(true));
        }
        Command::Signal { topic, payload } => trigger_signal(state, &topic, &payload).await,
        Command::Invalid {
            camera,
            switch,
            reason,
        } => tracing::warn!(camera, switch, "MQTT command ignored: {reason}"),
    }
}

/// `PATCH /api/cameras/{camera}` with `patch`, as the service `mqtt`.
async fn patch_camera(state: &AppState, camera: &str, switch: &str, patch: Value) {
    let path = format!(
        "/api/cameras/{}",
        percent_encoding::utf8_percent_encode(camera, percent_encoding::NON_ALPHANUMERIC)
    );
    let body = Bytes::from(patch.to_string());
    if let Err(e) = crate::call_as(
        state,
        Principal::service("mqtt"),
        Method::PATCH,
        &path,
        body,
    )
    .await
    {
        tracing::warn!(camera, switch, err = %e.message(), "MQTT command refused");
    }
}

/// Sets a review switch of `camera` in the store's setting [`REVIEW_KEY`] (the feed publishes
/// the change), with an audit entry as `mqtt`.
async fn set_review(state: &AppState, camera: &str, switch: &str, on: bool) {
    let id = match CameraId::new(camera) {
        Ok(id) => id,
        Err(e) => {
            tracing::warn!(camera, err = %e, "MQTT command ignored");
            return;
        }
    };
    let known = matches!(state.store().camera(&id).await, Ok(Some(_)));
    let outcome = if known {
        let mut all = review_switches(state).await;
        let r = all.entry(camera.to_owned()).or_default();
        if switch == "review_alerts" {
            r.review_alerts = on;
        } else {
            r.review_detections = on;
        }
        let value = serde_json::to_string(&all).unwrap_or_default();
        let put = Mutation::PutSetting {
            key: REVIEW_KEY.into(),
            value,
        };
        match state.store().apply(put.into()).await {
            Ok(()) => vigil_core::Outcome::Success,
            Err(e) => {
                tracing::warn!(camera, switch, err = %e, "MQTT command not saved");
                vigil_core::Outcome::Failure
            }
        }
    } else {
        tracing::warn!(camera, switch, "MQTT command ignored: no such camera");
        vigil_core::Outcome::Failure
    };
    state
        .record_audit(|aid, time| vigil_core::AuditEntry {
            id: aid,
            time,
            actor: "mqtt".into(),
            action: format!("MQTT {camera}/{switch}/set"),
            resource_type: "cameras".into(),
            resource_id: Some(camera.to_owned()),
            ip: None,
            outcome,
            details_json: json!({ switch: on }).to_string(),
        })
        .await;
}

/// A message on a topic some MQTT triggers listen to: each fires on its `on_payload` and
/// releases on anything else (swapped when inverted).
async fn trigger_signal(state: &AppState, topic: &str, payload: &str) {
    let Some(nvr) = state.nvr() else { return };
    let Ok(triggers) = state.store().triggers().await else {
        return;
    };
    for t in triggers {
        let TriggerKind::Mqtt {
            topic: filter,
            on_payload,
        } = &t.kind
        else {
            continue;
        };
        if !t.enabled || !topic_matches(filter, topic) {
            continue;
        }
        let fire = (payload == on_payload.as_str()) != t.invert;
        let done = if fire {
            nvr.fire_trigger(&t).await
        } else {
            nvr.release_trigger(&t).await
        };
        if let Err(e) = done {
            tracing::warn!(trigger = %t.name, err = %e, "MQTT trigger signal not applied");
        }
    }
}

/// Whether `topic` matches the subscription `filter` (`+` one level, `#` the rest).
pub(crate) fn topic_matches(filter: &str, topic: &str) -> bool {
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Publishes `P/stats` every `every` while connected.
async fn stats(shared: Arc<Shared>, state: AppState, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        if !shared.connected.load(Ordering::Relaxed) {
            continue;
        }
        let Ok(resp) = crate::call_as(
            &state,
            Principal::service("mqtt"),
            Method::GET,
            "/api/stats",
            Bytes::new(),
        )
        .await
        else {
            continue;
        };
        use http_body_util::BodyExt;
        if let Ok(body) = resp.into_body().collect().await {
            shared.send(
                shared.topic("stats"),
                QoS::AtMostOnce,
                false,
                body.to_bytes(),
            );
        }
    }
}

/// What the feed remembers between batches.
#[derive(Default)]
struct Live {
    /// Events in progress, with what was last published of them.
    active: HashMap<EventId, (Event, Value)>,
    /// Events whose end was published, oldest first.
    ended: VecDeque<EventId>,
    ended_set: HashSet<EventId>,
    /// The snapshot file last published per event.
    snapshots: HashMap<EventId, String>,
    /// Count topics published so far.
    counts: BTreeSet<String>,
    /// Cameras by id (detect size, name, labels).
    cameras: HashMap<CameraId, CameraConfig>,
    /// The review switches of the cameras that have them set.
    review: BTreeMap<String, Review>,
}

/// Turns the store's changes into messages.
async fn feed(
    shared: Arc<Shared>,
    state: AppState,
    mut changes: broadcast::Receiver<Arc<vigil_core::Batch>>,
) {
    let mut live = Live::default();
    let source = detector_name(&state);
    resync(&shared, &state, &mut live).await;
    loop {
        let batch = match changes.recv().await {
            Ok(b) => b,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(
                    missed = n,
                    "MQTT fell behind the store's changes; reading the state again"
                );
                resync(&shared, &state, &mut live).await;
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let mut recount = false;
        for m in &batch.mutations {
            match m {
                Mutation::PutEvent(e) => {
                    event(&shared, &state, &mut live, e).await;
                    recount = true;
                }
                Mutation::DeleteEvent(id) => {
                    live.snapshots.remove(id);
                    recount |= live.active.remove(id).is_some();
                }
                Mutation::PutDetection(d) if shared.sentryshot => {
                    sentryshot(&shared, &live, d, &source);
                }
                Mutation::PutCamera(c) => {
                    switch_states(&shared, c, &live.review);
                    zero_counts(&shared, &mut live, c);
                    live.cameras.insert(c.id.clone(), (**c).clone());
                    recount = true;
                }
                Mutation::PutSetting { key, value } if key == REVIEW_KEY => {
                    live.review = serde_json::from_str(value).unwrap_or_default();
                    for c in live.cameras.values() {
                        switch_states(&shared, c, &live.review);
                    }
                    recount = true;
                }
                Mutation::DeleteCamera(id) => {
                    live.cameras.remove(id);
                }
                Mutation::PutTrigger(_) | Mutation::DeleteTrigger(_) => {
                    if let Ok(ts) = state.store().triggers().await {
                        set_trigger_topics(&shared, ts.iter());
                    }
                }
                _ => {}
            }
        }
        if recount {
            counts(&shared, &mut live);
        }
    }
}

/// At the start, and after missing changes: the cameras, the triggers' topics and the events
/// in progress read from the store, and the switch states and counts published from them
/// (every tracked label of a camera from 0, so that sensors have a state before the first
/// object).
async fn resync(shared: &Shared, state: &AppState, live: &mut Live) {
    live.review = review_switches(state).await;
    if let Ok(cams) = state.store().cameras().await {
        for c in &cams {
            switch_states(shared, c, &live.review);
            zero_counts(shared, live, c);
        }
        live.cameras = cams.into_iter().map(|c| (c.id.clone(), c)).collect();
    }
    if let Ok(ts) = state.store().triggers().await {
        set_trigger_topics(shared, ts.iter());
    }
    let mut q = vigil_core::Query::new(vigil_core::EventFilter {
        in_progress: Some(true),
        ..Default::default()
    });
    q.page = vigil_core::PageRequest::first(vigil_core::query::MAX_PAGE_LIMIT);
    if let Ok(page) = state.store().events(&q).await {
        let size = |e: &Event| {
            live.cameras
                .get(&e.camera)
                .map_or((0, 0), |c| (c.detect.width, c.detect.height))
        };
        let active = page
            .items
            .into_iter()
            .map(|e| {
                let wire = frigate_event(&e, size(&e));
                (e.id, (e, wire))
            })
            .collect();
        live.active = active;
        counts(shared, live);
    }
}

/// The name SentryShot's messages give as their source: the detector cameras use (`vigil`
/// when the server was given no detectors).
fn detector_name(state: &AppState) -> String {
    state
        .detectors()
        .and_then(|r| r.default_name())
        .unwrap_or_else(|| "vigil".into())
}

fn on_off(b: bool) -> Bytes {
    Bytes::from_static(if b { b"ON" } else { b"OFF" })
}

/// Makes the count topics of every tracked label of camera `c` and of each of its zones (and
/// `all`) known, so that they are published from 0 before the first object.
fn zero_counts(shared: &Shared, live: &mut Live, c: &CameraConfig) {
    let labels: Vec<&str> = c
        .detect
        .labels
        .iter()
        .map(String::as_str)
        .filter(|l| *l != MOTION)
        .chain(["all"])
        .collect();
    let zones = c.zones.iter().filter(|z| z.enabled);
    let scopes = std::iter::once((c.id.as_str(), labels.clone())).chain(zones.map(|z| {
        let only: Vec<&str> = if z.labels.is_empty() {
            labels.clone()
        } else {
            z.labels.iter().map(String::as_str).chain(["all"]).collect()
        };
        (z.name.as_str(), only)
    }));
    for (scope, labels) in scopes {
        for label in labels {
            live.counts
                .insert(shared.topic(&format!("{}/{}", level(scope), level(label))));
        }
    }
}

/// `P/<camera>/<switch>/state` for each switch, and the motion settings' states.
fn switch_states(shared: &Shared, c: &CameraConfig, review: &BTreeMap<String, Review>) {
    let r = review.get(c.id.as_str()).copied().unwrap_or_default();
    let cam = level(c.id.as_str());
    let switches =
        SWITCHES
            .into_iter()
            .chain(["improve_contrast", "review_alerts", "review_detections"]);
    for (switch, on) in switches.zip([
        c.detect.enabled,
        c.record.enabled,
        c.motion.enabled,
        c.snapshots.enabled,
        c.enabled,
        true,
        r.review_alerts,
        r.review_detections,
    ]) {
        shared.retain(shared.topic(&format!("{cam}/{switch}/state")), on_off(on));
    }
    for (name, v) in [
        ("motion_threshold", u32::from(c.motion.threshold)),
        ("motion_contour_area", c.motion.contour_area),
    ] {
        shared.retain(
            shared.topic(&format!("{cam}/{name}/state")),
            Bytes::from(v.to_string()),
        );
    }
}

/// Subscribes to the topics of the MQTT triggers (and forgets those no trigger has).
fn set_trigger_topics<'a>(
    shared: &Shared,
    triggers: impl Iterator<Item = &'a vigil_core::Trigger>,
) {
    let want: BTreeSet<String> = triggers
        .filter_map(|t| match &t.kind {
            TriggerKind::Mqtt { topic, .. } => Some(topic.clone()),
            _ => None,
        })
        .collect();
    let mut have = lock(&shared.trigger_topics);
    for gone in have.difference(&want) {
        let _ = shared.client.try_unsubscribe(gone.clone());
    }
    for new in want.difference(&have) {
        let _ = shared.client.try_subscribe(new.clone(), QoS::AtLeastOnce);
    }
    *have = want;
}

/// One stored event: its `P/events` message and, when its best frame changed, its snapshot.
async fn event(shared: &Shared, state: &AppState, live: &mut Live, e: &Event) {
    if !live.cameras.contains_key(&e.camera) {
        if let Ok(Some(c)) = state.store().camera(&e.camera).await {
            live.cameras.insert(c.id.clone(), c);
        }
    }
    let size = live
        .cameras
        .get(&e.camera)
        .map_or((0, 0), |c| (c.detect.width, c.detect.height));
    let after = frigate_event(e, size);
    let (kind, before) = if e.end_time.is_none() {
        match live.active.insert(e.id, (e.clone(), after.clone())) {
            Some((_, before)) => ("update", before),
            None => ("new", after.clone()),
        }
    } else if let Some((_, before)) = live.active.remove(&e.id) {
        remember_end(live, e.id);
        ("end", before)
    } else if live.ended_set.contains(&e.id)
        || e.end_time
            .is_some_and(|t| state.now().0.saturating_sub(t.0) > NEWS_US)
    {
        // A later edit of an ended event (a review, a note, also one from before a restart):
        // not news.
        return;
    } else {
        remember_end(live, e.id);
        ("end", after.clone())
    };
    let msg = json!({"type": kind, "before": before, "after": after});
    shared.send(
        shared.topic("events"),
        QoS::AtLeastOnce,
        false,
        Bytes::from(msg.to_string()),
    );
    let path = e
        .best
        .as_ref()
        .and_then(|b| b.snapshot_path.as_deref())
        .filter(|_| e.has_snapshot);
    if let (Some(path), Some(dir)) = (path, state.data_dir()) {
        if live.snapshots.get(&e.id).map(String::as_str) != Some(path) {
            // Stored paths are relative and checked when stored; the join cannot leave `dir`.
            match tokio::fs::read(dir.join(path)).await {
                Ok(jpeg) => {
                    live.snapshots.insert(e.id, path.to_owned());
                    shared.retain(
                        shared.topic(&format!(
                            "{}/{}/snapshot",
                            level(e.camera.as_str()),
                            level(&e.label)
                        )),
                        Bytes::from(jpeg),
                    );
                }
                Err(err) => tracing::debug!(event = %e.id, %err, "snapshot not published"),
            }
        }
    }
    if e.end_time.is_some() {
        live.snapshots.remove(&e.id);
    }
}

fn remember_end(live: &mut Live, id: EventId) {
    if live.ended_set.insert(id) {
        live.ended.push_back(id);
    }
    while live.ended.len() > ENDED_MEMORY {
        if let Some(old) = live.ended.pop_front() {
            live.ended_set.remove(&old);
        }
    }
}

/// Labels whose events are alerts in Frigate's review (the rest are detections).
const ALERT_LABELS: [&str; 2] = ["person", "car"];

/// Publishes what changed of the live state: per camera the events' half of `motion` (a
/// motion event in progress) and `review_status` (ALERT, DETECTION or NONE, from the objects in
/// progress); per camera and zone, the counts per label and `all`. Motion is not an object:
/// it is in no count (`P/<camera>/motion` is the motion sensor, not a count).
fn counts(shared: &Shared, live: &mut Live) {
    for id in live.cameras.keys() {
        let here = || {
            live.active
                .values()
                .map(|(e, _)| e)
                .filter(|e| e.camera == *id)
        };
        let moving = here().any(|e| e.label == MOTION);
        let r = live.review.get(id.as_str()).copied().unwrap_or_default();
        let review = if r.review_alerts && here().any(|e| ALERT_LABELS.contains(&e.label.as_str()))
        {
            "ALERT"
        } else if r.review_detections && here().any(|e| e.label != MOTION) {
            "DETECTION"
        } else {
            "NONE"
        };
        let cam = level(id.as_str());
        shared.motion(id.as_str(), |m| {
            if moving {
                m.events.insert(id.to_string());
            } else {
                m.events.remove(id.as_str());
            }
        });
        shared.retain(
            shared.topic(&format!("{cam}/review_status")),
            Bytes::from_static(review.as_bytes()),
        );
    }
    let mut now: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    for (e, _) in live.active.values().filter(|(e, _)| e.label != MOTION) {
        let scopes = std::iter::once(e.camera.as_str()).chain(e.zones.iter().map(String::as_str));
        for scope in scopes {
            for label in [e.label.as_str(), "all"] {
                let c = now
                    .entry(shared.topic(&format!("{}/{}", level(scope), level(label))))
                    .or_default();
                c.0 += 1;
                if !e.stationary {
                    c.1 += 1;
                }
            }
        }
    }
    // Topics counted before and not now go back to 0; `retain` skips unchanged payloads.
    for topic in &live.counts {
        now.entry(topic.clone()).or_default();
    }
    for (topic, (n, active)) in now {
        shared.retain(format!("{topic}/active"), Bytes::from(active.to_string()));
        shared.retain(topic.clone(), Bytes::from(n.to_string()));
        live.counts.insert(topic);
    }
}

/// The live half of the motion sensors: each camera's newest analysed frame, read twice a
/// second; a new one with moving areas turns the sensor on, [`MOTION_OFF_DELAY`] without one
/// turns it off. Nothing to read without a running system.
async fn motion_sensor(shared: Arc<Shared>, state: AppState) {
    let Some(nvr) = state.nvr().cloned() else {
        return;
    };
    let mut last: HashMap<CameraId, (vigil_core::Timestamp, std::time::Instant)> = HashMap::new();
    let mut cameras: Vec<CameraId> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    for n in 0u64.. {
        tick.tick().await;
        if n % 10 == 0 {
            if let Ok(cs) = state.store().cameras().await {
                cameras = cs.into_iter().map(|c| c.id).collect();
            }
        }
        let now = std::time::Instant::now();
        for id in &cameras {
            if let Some(f) = nvr.live().latest(id) {
                let seen = last.get(id).map(|l| l.0);
                if seen != Some(f.time) && !f.motion.is_empty() {
                    last.insert(id.clone(), (f.time, now));
                }
            }
            let on = last
                .get(id)
                .is_some_and(|(_, at)| now.duration_since(*at) < MOTION_OFF_DELAY);
            shared.motion(id.as_str(), |m| {
                if on {
                    m.live.insert(id.to_string());
                } else {
                    m.live.remove(id.as_str());
                }
            });
        }
    }
}

/// SentryShot's message of one detection.
fn sentryshot(shared: &Shared, live: &Live, d: &Detection, source: &str) {
    let motion = d.label == "motion";
    // SentryShot's motion detector names the zone that moved; ours names it on the event.
    let label = if motion {
        d.event_id
            .and_then(|id| live.active.get(&id))
            .and_then(|(e, _)| e.zones.first().cloned())
            .unwrap_or_else(|| d.label.clone())
    } else {
        d.label.clone()
    };
    let name = live
        .cameras
        .get(&d.camera)
        .map_or_else(|| d.camera.to_string(), |c| c.name.clone());
    let msg = json!({
        "monitorID": d.camera.as_str(),
        "monitorName": name,
        "label": label,
        "score": f64::from(d.score) * 100.0,
        "time": d.time.to_string(),
        "source": if motion { "motion" } else { source },
    });
    let topic = if motion {
        "sentryshot/events/motion"
    } else {
        "sentryshot/events/tflite"
    };
    shared.send(
        topic.to_owned(),
        QoS::AtLeastOnce,
        false,
        Bytes::from(msg.to_string()),
    );
}

/// An event as Frigate's MQTT messages carry it: times in Unix seconds, boxes in pixels of
/// the detect stream (`size`).
pub(crate) fn frigate_event(e: &Event, size: (u32, u32)) -> Value {
    let (w, h) = (size.0 as f32, size.1 as f32);
    let px = |b: &vigil_core::BBox| {
        [
            (b.x1 * w).round() as i64,
            (b.y1 * h).round() as i64,
            (b.x2 * w).round() as i64,
            (b.y2 * h).round() as i64,
        ]
    };
    let bbox = px(&e.bbox);
    let (bw, bh) = ((bbox[2] - bbox[0]).max(0), (bbox[3] - bbox[1]).max(0));
    let frame_time = e
        .best
        .as_ref()
        .map_or(e.end_time.unwrap_or(e.start_time), |b| b.time);
    let snapshot = e.best.as_ref().map(|b| {
        json!({
            "frame_time": b.time.as_secs_f64(),
            "box": px(&b.bbox),
            "score": b.score,
        })
    });
    let current_zones: &[String] = if e.end_time.is_none() { &e.zones } else { &[] };
    json!({
        "id": e.id.to_string(),
        "camera": e.camera.as_str(),
        "frame_time": frame_time.as_secs_f64(),
        "snapshot": snapshot,
        "label": e.label,
        "sub_label": e.sub_label,
        "top_score": e.top_score,
        "false_positive": false,
        "start_time": e.start_time.as_secs_f64(),
        "end_time": e.end_time.map(|t| t.as_secs_f64()),
        "score": e.score,
        "box": bbox,
        "area": bw * bh,
        "ratio": if bh > 0 { bw as f64 / bh as f64 } else { 0.0 },
        "region": bbox,
        "stationary": e.stationary,
        "motionless_count": 0,
        "position_changes": 0,
        "current_zones": current_zones,
        "entered_zones": e.zones,
        "has_clip": e.has_clip,
        "has_snapshot": e.has_snapshot,
        "retain_indefinitely": e.retain,
        "attributes": {},
        "current_attributes": [],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_filters_match_like_a_broker() {
        assert!(topic_matches("a/b", "a/b"));
        assert!(!topic_matches("a/b", "a/b/c"));
        assert!(topic_matches("a/+/c", "a/x/c"));
        assert!(!topic_matches("a/+/c", "a/x/d"));
        assert!(topic_matches("a/#", "a/b/c"));
        assert!(topic_matches("#", "anything/at/all"));
        assert!(!topic_matches("a/+", "a"));
    }

    #[test]
    fn names_cannot_change_a_topics_shape() {
        assert_eq!(level("porch"), "porch");
        assert_eq!(level("front/yard+#"), "front_yard__");
    }

    #[test]
    fn configs_are_checked() {
        assert!(MqttConfig::default().validate().is_ok());
        for bad in ["", "/x", "x/", "a/+", "a/#"] {
            let c = MqttConfig {
                topic_prefix: bad.into(),
                ..MqttConfig::default()
            };
            assert_eq!(c.validate().unwrap_err().0, "topic_prefix", "{bad}");
        }
        let c = MqttConfig {
            stats_interval_s: 0,
            ..MqttConfig::default()
        };
        assert!(c.validate().is_err());
    }
}
