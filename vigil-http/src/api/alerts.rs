//! HSI's alert rules (`/api/alerts/rules`), notification settings and test
//! (`/api/notification/...`), notification preferences with per-camera settings and quiet hours
//! (`/api/notification-preferences/...`), and the dead-letter queue (`/api/dlq/...`). The
//! engine that applies them is [`crate::alerts`].

use hyper::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use vigil_core::{
    AlertChannel, AlertRule, AlertRuleId, CameraId, CameraNotification, EventFilter, Mutation,
    Order, PageRequest, Query, QuietHours, QuietHoursId, Schedule, Severity,
};

use super::{DELETE, GET, POST, PUT};
use crate::alerts::{self, QUEUES};
use crate::error::ApiError;
use crate::reply::{json as json_reply, ok, Reply};
use crate::router::{Ctx, Router};

pub(super) fn routes(r: &mut Router) {
    r.add(
        GET,
        "/api/alerts/rules",
        "alerts",
        "Alert rules",
        list_rules,
    );
    r.add(
        POST,
        "/api/alerts/rules",
        "alerts",
        "Add an alert rule",
        create_rule,
    );
    r.add(
        GET,
        "/api/alerts/rules/{rule_id}",
        "alerts",
        "One alert rule",
        get_rule,
    );
    r.add(
        PUT,
        "/api/alerts/rules/{rule_id}",
        "alerts",
        "Change an alert rule",
        put_rule,
    );
    r.add(
        DELETE,
        "/api/alerts/rules/{rule_id}",
        "alerts",
        "Remove an alert rule",
        delete_rule,
    );
    r.add(
        POST,
        "/api/alerts/rules/{rule_id}/test",
        "alerts",
        "Which stored events the rule matches (?limit, newest first; nothing is sent)",
        test_rule,
    );
    r.add(
        GET,
        "/api/notification/config",
        "alerts",
        "Notification channels and retry settings",
        notification_config,
    );
    r.add(
        POST,
        "/api/notification/test",
        "alerts",
        "Send a test notification to a webhook ({\"url\"}) once",
        notification_test,
    );
    r.add(
        GET,
        "/api/notification-preferences",
        "alerts",
        "Global notification preferences",
        get_prefs,
    );
    r.add(
        PUT,
        "/api/notification-preferences",
        "alerts",
        "Change the global notification preferences",
        put_prefs,
    );
    r.add(
        GET,
        "/api/notification-preferences/cameras",
        "alerts",
        "Every camera's notification setting",
        camera_prefs,
    );
    r.add(
        GET,
        "/api/notification-preferences/cameras/{id}",
        "alerts",
        "One camera's notification setting",
        camera_pref,
    );
    r.add(
        PUT,
        "/api/notification-preferences/cameras/{id}",
        "alerts",
        "Change a camera's notification setting",
        put_camera_pref,
    );
    r.add(
        GET,
        "/api/notification-preferences/quiet-hours",
        "alerts",
        "Quiet hours periods",
        list_quiet,
    );
    r.add(
        POST,
        "/api/notification-preferences/quiet-hours",
        "alerts",
        "Add a quiet hours period",
        create_quiet,
    );
    r.add(
        DELETE,
        "/api/notification-preferences/quiet-hours/{id}",
        "alerts",
        "Remove a quiet hours period",
        delete_quiet,
    );
    r.add(
        GET,
        "/api/dlq/stats",
        "dlq",
        "Jobs in each dead-letter queue",
        dlq_stats,
    );
    r.add(
        GET,
        "/api/dlq/jobs/{queue_name}",
        "dlq",
        "The jobs of a dead-letter queue, oldest first",
        dlq_jobs,
    );
    r.add(
        POST,
        "/api/dlq/requeue/{queue_name}",
        "dlq",
        "Deliver the oldest job again",
        |ctx| requeue(ctx, false),
    );
    r.add(
        POST,
        "/api/dlq/requeue-all/{queue_name}",
        "dlq",
        "Deliver every job again",
        |ctx| requeue(ctx, true),
    );
    r.add(
        DELETE,
        "/api/dlq/{queue_name}",
        "dlq",
        "Drop a dead-letter queue's jobs",
        dlq_clear,
    );
}

/// `low`, `medium`, `high`, `critical`.
pub(crate) fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Low => "low",
        Severity::Medium => "medium",
        Severity::High => "high",
        Severity::Critical => "critical",
    }
}

fn severity_of(field: &str, s: &str) -> Result<Severity, ApiError> {
    Ok(match s {
        "low" => Severity::Low,
        "medium" => Severity::Medium,
        "high" => Severity::High,
        "critical" => Severity::Critical,
        _ => {
            return Err(ApiError::body(
                &[field],
                format!("must be low, medium, high or critical, got {s:?}"),
            ))
        }
    })
}

const DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

fn minute_of(field: &str, hhmm: &str) -> Result<u16, ApiError> {
    let bad = || ApiError::body(&["schedule", field], format!("must be HH:MM, got {hhmm:?}"));
    let (h, m) = hhmm.split_once(':').ok_or_else(bad)?;
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 24 || m > 59 || (h == 24 && m > 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

fn hhmm(min: u16) -> String {
    format!("{:02}:{:02}", min / 60, min % 60)
}

/// A schedule as bodies give it: `{"days": ["monday", ...], "start_time": "22:00",
/// "end_time": "06:00", "timezone": "Europe/Paris"}` (days may also be 0 = Monday .. 6).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleBody {
    #[serde(default)]
    days: Vec<Value>,
    start_time: String,
    end_time: String,
    #[serde(default = "utc")]
    timezone: String,
}

fn utc() -> String {
    "UTC".into()
}

impl ScheduleBody {
    fn into_schedule(self) -> Result<Schedule, ApiError> {
        let mut days = Vec::new();
        for d in &self.days {
            let n = match d {
                Value::Number(n) => n.as_u64().filter(|&n| n < 7).map(|n| n as u8),
                Value::String(s) => DAYS
                    .iter()
                    .position(|x| x.eq_ignore_ascii_case(s) || x[..3].eq_ignore_ascii_case(s))
                    .map(|n| n as u8),
                _ => None,
            };
            days.push(n.ok_or_else(|| {
                ApiError::body(
                    &["schedule", "days"],
                    format!("{d} is not a day (monday..sunday or 0..6)"),
                )
            })?);
        }
        let s = Schedule {
            days,
            start_minute: minute_of("start_time", &self.start_time)?,
            end_minute: minute_of("end_time", &self.end_time)?,
            timezone: self.timezone,
        };
        s.validate()
            .map_err(|e| ApiError::body(&["schedule"], e.message()))?;
        Ok(s)
    }
}

fn schedule_wire(s: &Schedule) -> Value {
    json!({
        "days": s.days.iter().map(|&d| DAYS[usize::from(d).min(6)]).collect::<Vec<_>>(),
        "start_time": hhmm(s.start_minute),
        "end_time": hhmm(s.end_minute),
        "timezone": s.timezone,
    })
}

/// A rule's body; on PUT, fields left out keep their value.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RuleBody {
    name: Option<String>,
    description: Option<String>,
    enabled: Option<bool>,
    severity: Option<String>,
    cameras: Option<Vec<String>>,
    #[serde(alias = "object_types")]
    labels: Option<Vec<String>>,
    zones: Option<Vec<String>>,
    #[serde(alias = "min_confidence")]
    min_score: Option<f32>,
    #[serde(alias = "risk_threshold", default, deserialize_with = "null_or")]
    min_risk: Option<Option<u8>>,
    #[serde(default, deserialize_with = "null_or")]
    schedule: Option<Option<ScheduleBody>>,
    #[serde(alias = "cooldown_s")]
    cooldown_seconds: Option<u32>,
    channels: Option<Vec<ChannelBody>>,
}

/// A field that may be set to `null` (`Some(None)`), set (`Some(Some(_))`) or left out (`None`).
fn null_or<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// `{"type": "webhook", "url": ...}`, `{"type": "mqtt", "topic": ...}` or `{"type": "push"}`.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum ChannelBody {
    Webhook { url: String },
    Mqtt { topic: String },
    Push,
}

fn apply(b: RuleBody, r: &mut AlertRule) -> Result<(), ApiError> {
    if let Some(n) = b.name {
        if n.trim().is_empty() || n.len() > 200 {
            return Err(ApiError::body(&["name"], "must be 1 to 200 characters"));
        }
        r.name = n;
    }
    if let Some(d) = b.description {
        r.description = d;
    }
    if let Some(e) = b.enabled {
        r.enabled = e;
    }
    if let Some(s) = b.severity {
        r.severity = severity_of("severity", &s)?;
    }
    if let Some(cams) = b.cameras {
        r.cameras = cams
            .into_iter()
            .map(|c| CameraId::new(c).map_err(|e| ApiError::body(&["cameras"], e.message())))
            .collect::<Result<_, _>>()?;
    }
    if let Some(l) = b.labels {
        r.labels = l;
    }
    if let Some(z) = b.zones {
        r.zones = z;
    }
    if let Some(s) = b.min_score {
        if !(0.0..=1.0).contains(&s) {
            return Err(ApiError::body(
                &["min_score"],
                format!("must be within 0..=1, got {s}"),
            ));
        }
        r.min_score = s;
    }
    if let Some(m) = b.min_risk {
        if m.is_some_and(|m| m > 100) {
            return Err(ApiError::body(&["min_risk"], "must be 0 to 100"));
        }
        r.min_risk = m;
    }
    if let Some(s) = b.schedule {
        r.schedule = s.map(ScheduleBody::into_schedule).transpose()?;
    }
    if let Some(c) = b.cooldown_seconds {
        if c > 7 * 86_400 {
            return Err(ApiError::body(
                &["cooldown_seconds"],
                "at most a week (604800)",
            ));
        }
        r.cooldown_s = c;
    }
    if let Some(chs) = b.channels {
        let mut out = Vec::new();
        for c in chs {
            out.push(match c {
                ChannelBody::Webhook { url } => {
                    alerts::check_url(&url).map_err(|m| ApiError::body(&["channels", "url"], m))?;
                    AlertChannel::Webhook { url }
                }
                ChannelBody::Mqtt { topic } => {
                    if topic.is_empty() || topic.contains(['+', '#', '\0']) {
                        return Err(ApiError::body(
                            &["channels", "topic"],
                            format!(
                                "an MQTT topic to publish on, without wildcards, got {topic:?}"
                            ),
                        ));
                    }
                    AlertChannel::Mqtt { topic }
                }
                ChannelBody::Push => AlertChannel::Push,
            });
        }
        r.channels = out;
    }
    Ok(())
}

fn rule_wire(r: &AlertRule) -> Value {
    let channels: Vec<Value> = r
        .channels
        .iter()
        .map(|c| match c {
            AlertChannel::Webhook { url } => json!({"type": "webhook", "url": url}),
            AlertChannel::Mqtt { topic } => json!({"type": "mqtt", "topic": topic}),
            AlertChannel::Push => json!({"type": "push"}),
        })
        .collect();
    json!({
        "id": r.id.to_string(),
        "name": r.name,
        "description": r.description,
        "enabled": r.enabled,
        "severity": severity_name(r.severity),
        "cameras": r.cameras.iter().map(CameraId::as_str).collect::<Vec<_>>(),
        "labels": r.labels,
        "zones": r.zones,
        "min_score": r.min_score,
        "min_risk": r.min_risk,
        "schedule": r.schedule.as_ref().map(schedule_wire),
        "cooldown_seconds": r.cooldown_s,
        "channels": channels,
        "created_at": r.created_at.to_string(),
        "updated_at": r.updated_at.to_string(),
    })
}

async fn rule_of(ctx: &Ctx) -> Result<AlertRule, ApiError> {
    let raw = ctx.param("rule_id");
    let id: AlertRuleId = raw
        .parse()
        .map_err(|_| ApiError::path("rule_id", format!("not a rule id: {raw:?}")))?;
    ctx.state
        .store()
        .alert_rule(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("alert rule {id} not found")))
}

async fn save_rule(ctx: &Ctx, r: &AlertRule) -> Result<(), ApiError> {
    ctx.state
        .store()
        .apply(Mutation::PutAlertRule(Box::new(r.clone())).into())
        .await?;
    Ok(())
}

async fn list_rules(ctx: Ctx) -> Reply {
    let rules = ctx.state.store().alert_rules().await?;
    let items: Vec<Value> = rules.iter().map(rule_wire).collect();
    ok(&json!({"rules": items, "count": items.len()}))
}

async fn create_rule(ctx: Ctx) -> Reply {
    let b: RuleBody = ctx.json()?;
    if b.name.is_none() {
        return Err(ApiError::missing("body", "name"));
    }
    let now = ctx.state.now();
    let mut r = AlertRule {
        id: AlertRuleId(ctx.state.ids().await?.next(now)),
        name: String::new(),
        description: String::new(),
        enabled: true,
        severity: Severity::Medium,
        cameras: Vec::new(),
        labels: Vec::new(),
        zones: Vec::new(),
        min_score: 0.0,
        min_risk: None,
        schedule: None,
        cooldown_s: 300,
        channels: vec![AlertChannel::Push],
        created_at: now,
        updated_at: now,
    };
    apply(b, &mut r)?;
    save_rule(&ctx, &r).await?;
    Ok(json_reply(StatusCode::CREATED, &rule_wire(&r)))
}

async fn get_rule(ctx: Ctx) -> Reply {
    ok(&rule_wire(&rule_of(&ctx).await?))
}

async fn put_rule(ctx: Ctx) -> Reply {
    let mut r = rule_of(&ctx).await?;
    apply(ctx.json()?, &mut r)?;
    r.updated_at = ctx.state.now();
    save_rule(&ctx, &r).await?;
    ok(&rule_wire(&r))
}

async fn delete_rule(ctx: Ctx) -> Reply {
    let r = rule_of(&ctx).await?;
    ctx.state
        .store()
        .apply(Mutation::DeleteAlertRule(r.id).into())
        .await?;
    ok(&json!({"deleted": true, "id": r.id.to_string()}))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TestBody {
    limit: Option<u32>,
}

/// The rule against the newest stored events (100 by default, at most 1000): which match.
async fn test_rule(ctx: Ctx) -> Reply {
    let r = rule_of(&ctx).await?;
    let b: TestBody = if ctx.body.is_empty() {
        TestBody::default()
    } else {
        ctx.json()?
    };
    let limit: u32 = match ctx.query_value("limit") {
        Some(v) => super::number("limit", &v)?,
        None => b.limit.unwrap_or(100),
    };
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::body(&["limit"], "must be 1 to 1000"));
    }
    let mut q = Query::new(EventFilter::default());
    q.order = Order::Desc;
    q.page = PageRequest::first(limit);
    let page = ctx.state.store().events(&q).await?;
    let matches: Vec<Value> = page
        .items
        .iter()
        .filter(|e| r.matches(e))
        .map(|e| {
            json!({"event_id": e.id.to_string(), "camera": e.camera.as_str(), "label": e.label,
                   "score": e.top_score.max(e.score), "zones": e.zones,
                   "start_time": e.start_time.to_string()})
        })
        .collect();
    ok(&json!({
        "rule_id": r.id.to_string(),
        "rule_name": r.name,
        "enabled": r.enabled,
        "events_tested": page.items.len(),
        "events_matched": matches.len(),
        "match_rate": if page.items.is_empty() { 0.0 } else { matches.len() as f64 / page.items.len() as f64 },
        "matches": matches,
    }))
}

async fn notification_config(ctx: Ctx) -> Reply {
    let n = ctx.state.notifier();
    let o = n.options();
    let prefs = ctx.state.store().notification_preferences().await?;
    let rules = ctx.state.store().alert_rules().await?;
    let webhooks = rules
        .iter()
        .flat_map(|r| &r.channels)
        .filter(|c| matches!(c, AlertChannel::Webhook { .. }))
        .count();
    ok(&json!({
        "enabled": prefs.enabled,
        "channels": {
            "webhook": {"available": true, "configured": webhooks},
            "mqtt": {"available": n.has_mqtt()},
            "push": {"available": true},
        },
        "retry": {
            "attempts": o.attempts,
            "first_backoff_seconds": o.first_backoff.as_secs_f64(),
            "max_backoff_seconds": o.max_backoff.as_secs_f64(),
            "timeout_seconds": o.timeout.as_secs_f64(),
        },
        "dead_letter_queue": {"capacity": o.dlq_capacity},
        "figures": n.figures(),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NotifyTestBody {
    url: String,
    #[serde(default)]
    message: Option<String>,
}

/// One POST to the URL, no retry: says whether it worked.
async fn notification_test(ctx: Ctx) -> Reply {
    let b: NotifyTestBody = ctx.json()?;
    alerts::check_url(&b.url).map_err(|m| ApiError::body(&["url"], m))?;
    let body = json!({
        "type": "test",
        "message": b.message.unwrap_or_else(|| "a test notification from Vigil".into()),
        "time": ctx.state.now().to_string(),
    });
    let timeout = ctx.state.notifier().options().timeout;
    let result = alerts::post(&b.url, &body, timeout).await;
    ok(&json!({
        "success": result.is_ok(),
        "url": b.url,
        "error": result.err(),
    }))
}

fn prefs_wire(p: &vigil_core::NotificationPreferences) -> Value {
    json!({
        "enabled": p.enabled,
        "sound": p.sound,
        "risk_filters": p.severities.iter().map(|&s| severity_name(s)).collect::<Vec<_>>(),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrefsBody {
    enabled: Option<bool>,
    sound: Option<String>,
    #[serde(alias = "severities")]
    risk_filters: Option<Vec<String>>,
}

async fn save_prefs(ctx: &Ctx, p: vigil_core::NotificationPreferences) -> Result<(), ApiError> {
    ctx.state
        .store()
        .apply(Mutation::PutNotificationPreferences(Box::new(p)).into())
        .await?;
    Ok(())
}

async fn get_prefs(ctx: Ctx) -> Reply {
    ok(&prefs_wire(
        &ctx.state.store().notification_preferences().await?,
    ))
}

async fn put_prefs(ctx: Ctx) -> Reply {
    let b: PrefsBody = ctx.json()?;
    let _serial = ctx.state.notifier().preferences_lock().await;
    let mut p = ctx.state.store().notification_preferences().await?;
    if let Some(e) = b.enabled {
        p.enabled = e;
    }
    if let Some(s) = b.sound {
        if s.len() > 64 {
            return Err(ApiError::body(&["sound"], "at most 64 characters"));
        }
        p.sound = s;
    }
    if let Some(f) = b.risk_filters {
        p.severities = f
            .iter()
            .map(|s| severity_of("risk_filters", s))
            .collect::<Result<_, _>>()?;
    }
    save_prefs(&ctx, p.clone()).await?;
    ok(&prefs_wire(&p))
}

fn camera_pref_wire(c: &CameraNotification) -> Value {
    json!({"camera_id": c.camera.as_str(), "enabled": c.enabled, "risk_threshold": c.risk_threshold})
}

/// Every camera's setting: the stored one, or the default (on, no threshold).
async fn camera_prefs(ctx: Ctx) -> Reply {
    let p = ctx.state.store().notification_preferences().await?;
    let cams = ctx.state.store().cameras().await?;
    let items: Vec<Value> = cams
        .iter()
        .map(|c| {
            let s = p
                .cameras
                .iter()
                .find(|s| s.camera == c.id)
                .cloned()
                .unwrap_or(CameraNotification {
                    camera: c.id.clone(),
                    enabled: true,
                    risk_threshold: 0,
                });
            camera_pref_wire(&s)
        })
        .collect();
    ok(&json!({"items": items, "count": items.len()}))
}

async fn camera_id(ctx: &Ctx) -> Result<CameraId, ApiError> {
    let id = super::cameras::camera_by_name(ctx, ctx.param("id"))
        .await?
        .id;
    Ok(id)
}

async fn camera_pref(ctx: Ctx) -> Reply {
    let id = camera_id(&ctx).await?;
    let p = ctx.state.store().notification_preferences().await?;
    let s = p
        .cameras
        .into_iter()
        .find(|s| s.camera == id)
        .unwrap_or(CameraNotification {
            camera: id,
            enabled: true,
            risk_threshold: 0,
        });
    ok(&camera_pref_wire(&s))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CameraPrefBody {
    enabled: Option<bool>,
    risk_threshold: Option<u8>,
}

async fn put_camera_pref(ctx: Ctx) -> Reply {
    let id = camera_id(&ctx).await?;
    let b: CameraPrefBody = ctx.json()?;
    if b.risk_threshold.is_some_and(|t| t > 100) {
        return Err(ApiError::body(&["risk_threshold"], "must be 0 to 100"));
    }
    let _serial = ctx.state.notifier().preferences_lock().await;
    let mut p = ctx.state.store().notification_preferences().await?;
    let i = match p.cameras.iter().position(|s| s.camera == id) {
        Some(i) => i,
        None => {
            p.cameras.push(CameraNotification {
                camera: id,
                enabled: true,
                risk_threshold: 0,
            });
            p.cameras.len() - 1
        }
    };
    let s = &mut p.cameras[i];
    if let Some(e) = b.enabled {
        s.enabled = e;
    }
    if let Some(t) = b.risk_threshold {
        s.risk_threshold = t;
    }
    let wire = camera_pref_wire(s);
    save_prefs(&ctx, p).await?;
    ok(&wire)
}

fn quiet_wire(q: &QuietHours) -> Value {
    let mut v = schedule_wire(&q.schedule);
    if let Value::Object(m) = &mut v {
        m.insert("id".into(), q.id.to_string().into());
        m.insert("label".into(), q.label.clone().into());
        m.insert("enabled".into(), q.enabled.into());
    }
    v
}

async fn list_quiet(ctx: Ctx) -> Reply {
    let qs = ctx.state.store().quiet_hours().await?;
    let now = ctx.state.now();
    let items: Vec<Value> = qs.iter().map(quiet_wire).collect();
    let active = qs.iter().any(|q| q.enabled && q.schedule.contains(now));
    ok(&json!({"items": items, "count": items.len(), "active_now": active}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuietBody {
    label: String,
    start_time: String,
    end_time: String,
    #[serde(default)]
    days: Vec<Value>,
    #[serde(default = "utc")]
    timezone: String,
    #[serde(default = "yes")]
    enabled: bool,
}

fn yes() -> bool {
    true
}

async fn create_quiet(ctx: Ctx) -> Reply {
    let b: QuietBody = ctx.json()?;
    if b.label.trim().is_empty() || b.label.len() > 100 {
        return Err(ApiError::body(&["label"], "must be 1 to 100 characters"));
    }
    let schedule = ScheduleBody {
        days: b.days,
        start_time: b.start_time,
        end_time: b.end_time,
        timezone: b.timezone,
    }
    .into_schedule()?;
    let now = ctx.state.now();
    let q = QuietHours {
        id: QuietHoursId(ctx.state.ids().await?.next(now)),
        label: b.label,
        schedule,
        enabled: b.enabled,
    };
    ctx.state
        .store()
        .apply(Mutation::PutQuietHours(Box::new(q.clone())).into())
        .await?;
    Ok(json_reply(StatusCode::CREATED, &quiet_wire(&q)))
}

async fn delete_quiet(ctx: Ctx) -> Reply {
    let raw = ctx.param("id");
    let id: QuietHoursId = raw
        .parse()
        .map_err(|_| ApiError::path("id", format!("not a quiet hours id: {raw:?}")))?;
    let qs = ctx.state.store().quiet_hours().await?;
    if !qs.iter().any(|q| q.id == id) {
        return Err(ApiError::not_found(format!("quiet hours {id} not found")));
    }
    ctx.state
        .store()
        .apply(Mutation::DeleteQuietHours(id).into())
        .await?;
    ok(&json!({"deleted": true, "id": id.to_string()}))
}

fn queue_of(ctx: &Ctx) -> Result<&'static str, ApiError> {
    let q = ctx.param("queue_name");
    QUEUES.iter().copied().find(|&n| n == q).ok_or_else(|| {
        ApiError::not_found(format!(
            "no dead-letter queue {q:?}; the queues are {QUEUES:?}"
        ))
    })
}

fn job_wire(j: &alerts::Job) -> Value {
    super::value_of(j)
}

async fn dlq_stats(ctx: Ctx) -> Reply {
    let n = ctx.state.notifier();
    let mut queues = serde_json::Map::new();
    let mut total = 0;
    for q in QUEUES {
        let jobs = n.dead_letters(&**ctx.state.store(), q).await?;
        total += jobs.len();
        queues.insert(
            q.into(),
            json!({"count": jobs.len(), "oldest": jobs.first().map(|j| j.failed_at.unwrap_or(j.created_at).to_string())}),
        );
    }
    ok(&json!({"queues": queues, "total_count": total, "figures": n.figures()}))
}

async fn dlq_jobs(ctx: Ctx) -> Reply {
    let q = queue_of(&ctx)?;
    let jobs = ctx
        .state
        .notifier()
        .dead_letters(&**ctx.state.store(), q)
        .await?;
    let items: Vec<Value> = jobs.iter().map(job_wire).collect();
    ok(&json!({"queue_name": q, "jobs": items, "count": items.len()}))
}

async fn requeue(ctx: Ctx, all: bool) -> Reply {
    let q = queue_of(&ctx)?;
    let jobs = ctx.state.notifier().requeue(&ctx.state, q, all).await?;
    if jobs.is_empty() && !all {
        return Err(ApiError::not_found(format!(
            "the dead-letter queue {q:?} is empty"
        )));
    }
    let items: Vec<Value> = jobs.iter().map(job_wire).collect();
    ok(&json!({"queue_name": q, "requeued": items.len(), "jobs": items}))
}

async fn dlq_clear(ctx: Ctx) -> Reply {
    let q = queue_of(&ctx)?;
    let n = ctx.state.notifier().clear(&**ctx.state.store(), q).await?;
    ok(&json!({"queue_name": q, "cleared": n}))
}
