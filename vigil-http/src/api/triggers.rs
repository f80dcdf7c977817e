//! Triggers and arming: picam's sensor endpoints made general. A trigger (mock, HTTP, or
//! MQTT with issue 6) opens an event on its cameras and keeps them recording while it is
//! triggered and `hold_seconds` after; while the system is disarmed, triggers are suppressed.

use hyper::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use vigil_core::{CameraId, Mutation, Trigger, TriggerId, TriggerKind};

use super::{DELETE, GET, POST, PUT};
use crate::error::ApiError;
use crate::reply::{empty, json as json_reply, ok, Reply};
use crate::router::{Ctx, Router};

pub(super) fn routes(r: &mut Router) {
    r.add(
        GET,
        "/api/triggers",
        "triggers",
        "Triggers with their state",
        list,
    );
    r.add(POST, "/api/triggers", "triggers", "Add a trigger", create);
    r.add(GET, "/api/triggers/{id}", "triggers", "One trigger", get);
    r.add(
        PUT,
        "/api/triggers/{id}",
        "triggers",
        "Replace a trigger",
        replace,
    );
    r.add(
        DELETE,
        "/api/triggers/{id}",
        "triggers",
        "Remove a trigger",
        remove,
    );
    r.add(
        POST,
        "/api/triggers/{id}/trigger",
        "triggers",
        "Fire a trigger (its webhook)",
        fire,
    );
    r.add(
        POST,
        "/api/triggers/{id}/release",
        "triggers",
        "Release a trigger",
        release,
    );
    r.add(
        POST,
        "/api/triggers/{id}/{action}",
        "triggers",
        "enable or disable a trigger",
        toggle,
    );
    r.add(
        GET,
        "/api/arming",
        "triggers",
        "Whether triggers record (armed) or are suppressed",
        arming,
    );
    r.add(
        PUT,
        "/api/arming",
        "triggers",
        "Arm or disarm: {\"armed\": bool}",
        set_arming,
    );
    r.add(POST, "/api/arm", "triggers", "Arm", arm);
    r.add(
        POST,
        "/api/disarm",
        "triggers",
        "Disarm (presence: someone is home)",
        disarm,
    );
    r.add(
        POST,
        "/sensor/configure",
        "triggers",
        "Configure the sensor (picam): a trigger named sensor",
        sensor_configure,
    );
    r.add(
        POST,
        "/sensor/enable",
        "triggers",
        "Enable the sensor (picam)",
        sensor_enable,
    );
    r.add(
        POST,
        "/sensor/disable",
        "triggers",
        "Disable the sensor (picam)",
        sensor_disable,
    );
    r.add(
        GET,
        "/sensor/status",
        "triggers",
        "The sensor's state and config (picam)",
        sensor_status,
    );
    r.add(
        GET,
        "/sensor/types",
        "triggers",
        "The kinds of trigger (picam's sensor types)",
        sensor_types,
    );
    r.add(
        POST,
        "/sensor/mock/trigger",
        "triggers",
        "Fire the mock sensor (picam)",
        mock_trigger,
    );
    r.add(
        POST,
        "/sensor/mock/release",
        "triggers",
        "Release the mock sensor (picam)",
        mock_release,
    );
}

/// What a client sends for a trigger (HSI-style names; picam's `type`, `gpio`,
/// `hold_seconds`, `invert_logic`, `calibration`).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TriggerBody {
    name: Option<String>,
    #[serde(rename = "type")]
    sensor_type: Option<String>,
    kind: Option<String>,
    topic: Option<String>,
    on_payload: Option<String>,
    cameras: Option<Vec<String>>,
    enabled: Option<bool>,
    hold_seconds: Option<u32>,
    invert_logic: Option<bool>,
    calibration: Option<Value>,
    gpio: Option<u32>,
}

fn kind_name(k: &TriggerKind) -> &'static str {
    match k {
        TriggerKind::Mock => "mock",
        TriggerKind::Http => "http",
        TriggerKind::Mqtt { .. } => "mqtt",
    }
}

fn wire(ctx: &Ctx, t: &Trigger) -> Value {
    let state = ctx.state.nvr().map(|n| n.triggers().state(t.id));
    let calibration: Value = serde_json::from_str(&t.calibration_json).unwrap_or(json!({}));
    let (topic, on_payload) = match &t.kind {
        TriggerKind::Mqtt { topic, on_payload } => (Some(topic.clone()), Some(on_payload.clone())),
        _ => (None, None),
    };
    json!({
        "id": t.id.to_string(),
        "name": t.name,
        "type": t.sensor_type,
        "kind": kind_name(&t.kind),
        "topic": topic,
        "on_payload": on_payload,
        "cameras": t.cameras,
        "enabled": t.enabled,
        "hold_seconds": t.hold_s,
        "invert_logic": t.invert,
        "calibration": calibration,
        "gpio": calibration.get("gpio"),
        "state": state,
        "webhook": format!("/api/triggers/{}/trigger", t.id),
    })
}

/// Applies `b` over `t` (a new trigger starts from defaults).
fn apply(b: TriggerBody, t: &mut Trigger) -> Result<(), ApiError> {
    if let Some(n) = b.name {
        vigil_core::validate_name("trigger name", &n)
            .map_err(|e| ApiError::body(&["name"], e.message()))?;
        t.name = n;
    }
    if let Some(s) = b.sensor_type {
        if s.is_empty() || s.len() > 64 {
            return Err(ApiError::body(&["type"], "must be 1 to 64 characters"));
        }
        t.sensor_type = s;
    }
    let kind = b.kind.as_deref().unwrap_or(kind_name(&t.kind)).to_owned();
    t.kind = match kind.as_str() {
        "mock" => TriggerKind::Mock,
        "http" => TriggerKind::Http,
        "mqtt" => {
            let (old_topic, old_on) = match &t.kind {
                TriggerKind::Mqtt { topic, on_payload } => {
                    (Some(topic.clone()), Some(on_payload.clone()))
                }
                _ => (None, None),
            };
            let topic = b
                .topic
                .or(old_topic)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| ApiError::body(&["topic"], "an mqtt trigger needs a topic"))?;
            TriggerKind::Mqtt {
                topic,
                on_payload: b.on_payload.or(old_on).unwrap_or_else(|| "ON".into()),
            }
        }
        k => {
            return Err(ApiError::body(
                &["kind"],
                format!("must be mock, http or mqtt, got {k:?}"),
            ))
        }
    };
    if let Some(cams) = b.cameras {
        t.cameras = cams
            .into_iter()
            .map(|c| CameraId::new(c).map_err(|e| ApiError::body(&["cameras"], e.message())))
            .collect::<Result<_, _>>()?;
    }
    if let Some(e) = b.enabled {
        t.enabled = e;
    }
    if let Some(h) = b.hold_seconds {
        if h > 86_400 {
            return Err(ApiError::body(&["hold_seconds"], "at most a day (86400)"));
        }
        t.hold_s = h;
    }
    if let Some(i) = b.invert_logic {
        t.invert = i;
    }
    let mut cal: Value = serde_json::from_str(&t.calibration_json).unwrap_or(json!({}));
    if let Some(c) = b.calibration {
        if !c.is_object() {
            return Err(ApiError::body(&["calibration"], "must be an object"));
        }
        cal = c;
    }
    if let Some(g) = b.gpio {
        if g > 27 {
            return Err(ApiError::body(&["gpio"], "a BCM pin is 0 to 27"));
        }
        cal["gpio"] = json!(g);
    }
    t.calibration_json = cal.to_string();
    Ok(())
}

async fn new_trigger(ctx: &Ctx, name: &str) -> Result<Trigger, ApiError> {
    let now = ctx.state.now();
    Ok(Trigger {
        id: TriggerId(ctx.state.ids().await?.next(now)),
        name: name.to_owned(),
        sensor_type: "mock".into(),
        kind: TriggerKind::Mock,
        cameras: Vec::new(),
        enabled: true,
        hold_s: 10,
        invert: false,
        calibration_json: "{}".into(),
    })
}

async fn save(ctx: &Ctx, t: &Trigger) -> Result<(), ApiError> {
    ctx.state
        .store()
        .apply(Mutation::PutTrigger(Box::new(t.clone())).into())
        .await?;
    Ok(())
}

async fn list(ctx: Ctx) -> Reply {
    let ts = ctx.state.store().triggers().await?;
    let items: Vec<Value> = ts.iter().map(|t| wire(&ctx, t)).collect();
    ok(&json!({"triggers": items, "count": items.len(), "armed": armed_now(&ctx)}))
}

async fn by_name(ctx: &Ctx, name: &str) -> Result<Option<Trigger>, ApiError> {
    Ok(ctx
        .state
        .store()
        .triggers()
        .await?
        .into_iter()
        .find(|t| t.name == name))
}

async fn create(ctx: Ctx) -> Reply {
    let b: TriggerBody = ctx.json()?;
    let name = b
        .name
        .clone()
        .ok_or_else(|| ApiError::missing("body", "name"))?;
    if by_name(&ctx, &name).await?.is_some() {
        return Err(ApiError::Status(
            StatusCode::CONFLICT,
            format!("trigger {name:?} exists"),
        ));
    }
    let mut t = new_trigger(&ctx, &name).await?;
    apply(b, &mut t)?;
    save(&ctx, &t).await?;
    Ok(json_reply(StatusCode::CREATED, &wire(&ctx, &t)))
}

async fn trigger_of(ctx: &Ctx) -> Result<Trigger, ApiError> {
    let id: TriggerId = ctx.param_as("id")?;
    ctx.state
        .store()
        .trigger(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("trigger {id} not found")))
}

async fn get(ctx: Ctx) -> Reply {
    let t = trigger_of(&ctx).await?;
    ok(&wire(&ctx, &t))
}

async fn replace(ctx: Ctx) -> Reply {
    let mut t = trigger_of(&ctx).await?;
    let b: TriggerBody = ctx.json()?;
    apply(b, &mut t)?;
    save(&ctx, &t).await?;
    ok(&wire(&ctx, &t))
}

async fn remove(ctx: Ctx) -> Reply {
    let t = trigger_of(&ctx).await?;
    if let Some(n) = ctx.state.nvr() {
        n.release_trigger(&t).await?;
        n.triggers().remove(t.id);
    }
    ctx.state
        .store()
        .apply(Mutation::DeleteTrigger(t.id).into())
        .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn do_fire(ctx: &Ctx, t: &Trigger, on: bool) -> Reply {
    let nvr = ctx.state.need_nvr("firing a trigger")?;
    // An inverted trigger swaps trigger and release (picam's invert_logic).
    let state = if on != t.invert {
        nvr.fire_trigger(t).await?
    } else {
        nvr.release_trigger(t).await?
    };
    ok(
        &json!({"id": t.id.to_string(), "name": t.name, "state": state, "armed": nvr.triggers().armed()}),
    )
}

async fn fire(ctx: Ctx) -> Reply {
    let t = trigger_of(&ctx).await?;
    do_fire(&ctx, &t, true).await
}

async fn release(ctx: Ctx) -> Reply {
    let t = trigger_of(&ctx).await?;
    do_fire(&ctx, &t, false).await
}

async fn set_enabled(ctx: &Ctx, mut t: Trigger, on: bool) -> Reply {
    if !on {
        if let Some(n) = ctx.state.nvr() {
            n.release_trigger(&t).await?;
        }
    }
    t.enabled = on;
    save(ctx, &t).await?;
    ok(&wire(ctx, &t))
}

async fn toggle(ctx: Ctx) -> Reply {
    let t = trigger_of(&ctx).await?;
    match ctx.param("action") {
        "enable" => set_enabled(&ctx, t, true).await,
        "disable" => set_enabled(&ctx, t, false).await,
        a => Err(ApiError::path(
            "action",
            format!("must be trigger, release, enable or disable, got {a:?}"),
        )),
    }
}

fn armed_now(ctx: &Ctx) -> bool {
    ctx.state.nvr().is_none_or(|n| n.triggers().armed())
}

async fn arming(ctx: Ctx) -> Reply {
    ok(&json!({"armed": armed_now(&ctx)}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ArmingBody {
    armed: bool,
}

async fn set_arming(ctx: Ctx) -> Reply {
    let b: ArmingBody = ctx.json()?;
    ctx.state.need_nvr("arming")?.set_armed(b.armed).await?;
    ok(&json!({"armed": b.armed}))
}

async fn arm(ctx: Ctx) -> Reply {
    ctx.state.need_nvr("arming")?.set_armed(true).await?;
    ok(&json!({"armed": true}))
}

async fn disarm(ctx: Ctx) -> Reply {
    ctx.state.need_nvr("arming")?.set_armed(false).await?;
    ok(&json!({"armed": false}))
}

// --- picam's single sensor: the trigger named `sensor`.

const SENSOR: &str = "sensor";

async fn sensor(ctx: &Ctx) -> Result<Trigger, ApiError> {
    by_name(ctx, SENSOR)
        .await?
        .ok_or_else(|| ApiError::not_found("no sensor is configured: POST /sensor/configure"))
}

async fn sensor_configure(ctx: Ctx) -> Reply {
    let mut b: TriggerBody = ctx.json()?;
    let Some(ty) = b.sensor_type.clone() else {
        return Err(ApiError::missing("body", "type"));
    };
    // A GPIO sensor type is fired through its webhook by whatever reads the pin; `mock`
    // through /sensor/mock/*.
    if b.kind.is_none() {
        b.kind = Some(if ty == "mock" { "mock" } else { "http" }.to_owned());
    }
    b.name = Some(SENSOR.into());
    let mut t = match by_name(&ctx, SENSOR).await? {
        Some(t) => t,
        None => new_trigger(&ctx, SENSOR).await?,
    };
    apply(b, &mut t)?;
    save(&ctx, &t).await?;
    ok(&wire(&ctx, &t))
}

async fn sensor_enable(ctx: Ctx) -> Reply {
    let t = sensor(&ctx).await?;
    set_enabled(&ctx, t, true).await
}

async fn sensor_disable(ctx: Ctx) -> Reply {
    let t = sensor(&ctx).await?;
    set_enabled(&ctx, t, false).await
}

async fn sensor_status(ctx: Ctx) -> Reply {
    let t = by_name(&ctx, SENSOR).await?;
    let state = match (&t, ctx.state.nvr()) {
        (Some(t), Some(n)) => n.triggers().state(t.id),
        _ => Default::default(),
    };
    ok(&json!({
        "enabled": t.as_ref().is_some_and(|t| t.enabled),
        "armed": armed_now(&ctx),
        "triggered": state.triggered,
        "suppressed": state.suppressed,
        "recording_from_sensor": state.recording || state.triggered && !state.suppressed,
        "config": t.as_ref().map(|t| wire(&ctx, t)),
    }))
}

async fn sensor_types(_: Ctx) -> Reply {
    ok(&json!([
        {"type": "mock", "kind": "mock", "description": "fired by POST /sensor/mock/trigger and released by /sensor/mock/release", "calibration": {}},
        {"type": "http", "kind": "http", "description": "fired by POST /api/triggers/<id>/trigger (a webhook), released by .../release; GPIO sensor types (reed_switch, pir, vibration, hall_digital) are this kind, fired by whatever reads the pin", "calibration": {"gpio": "BCM pin, kept as a label"}},
        {"type": "mqtt", "kind": "mqtt", "description": "fired by a message on its topic equal to on_payload (with MQTT, issue 6)", "calibration": {}},
    ]))
}

async fn mock(ctx: &Ctx, on: bool) -> Reply {
    let t = sensor(ctx).await?;
    if t.kind != TriggerKind::Mock {
        return Err(ApiError::Status(
            StatusCode::CONFLICT,
            format!(
                "the sensor is a {} trigger, not the mock",
                kind_name(&t.kind)
            ),
        ));
    }
    do_fire(ctx, &t, on).await
}

async fn mock_trigger(ctx: Ctx) -> Reply {
    mock(&ctx, true).await
}

async fn mock_release(ctx: Ctx) -> Reply {
    mock(&ctx, false).await
}
