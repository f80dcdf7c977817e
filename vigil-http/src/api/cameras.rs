//! Cameras: CRUD (HSI's `/api/cameras`), zones, SentryShot's monitors with per-detector
//! toggles, SpectraX's `/paths`. A camera is one entity whatever a document calls it.
//!
//! Changes are stored first, then the running system is told (the camera's pipeline starts,
//! restarts or stops), so a camera added through the API comes back after a restart.

use std::collections::BTreeMap;

use hyper::StatusCode;
use serde_json::Value;
use vigil_core::config::{mask_password, CameraSpec};
use vigil_core::pipeline::CameraStatus;
use vigil_core::{CameraConfig, CameraId, Mutation, Zone};

use super::{value_of, DELETE, GET, PATCH, POST, PUT};
use crate::error::{from_value, ApiError};
use crate::reply::{empty, json, ok, Reply};
use crate::router::{Ctx, Router};

pub(super) fn routes(r: &mut Router) {
    r.add(
        GET,
        "/api/cameras",
        "cameras",
        "List cameras with their status",
        list_cameras,
    );
    r.add(
        POST,
        "/api/cameras",
        "cameras",
        "Add a camera ({\"name\", \"url\"} at least)",
        create_camera,
    );
    r.add(
        GET,
        "/api/cameras/{camera}",
        "cameras",
        "One camera",
        get_camera,
    );
    r.add(
        PATCH,
        "/api/cameras/{camera}",
        "cameras",
        "Change some of a camera's settings (merge patch)",
        patch_camera,
    );
    r.add(
        PUT,
        "/api/cameras/{camera}",
        "cameras",
        "Replace a camera's settings",
        put_camera,
    );
    r.add(
        DELETE,
        "/api/cameras/{camera}",
        "cameras",
        "Remove a camera (its recordings stay)",
        delete_camera,
    );
    r.add(
        GET,
        "/api/cameras/{camera}/zones",
        "zones",
        "A camera's zones",
        list_zones,
    );
    r.add(
        POST,
        "/api/cameras/{camera}/zones",
        "zones",
        "Add a zone",
        create_zone,
    );
    r.add(
        GET,
        "/api/cameras/{camera}/zones/{zone}",
        "zones",
        "One zone",
        get_zone,
    );
    r.add(
        PUT,
        "/api/cameras/{camera}/zones/{zone}",
        "zones",
        "Replace a zone",
        put_zone,
    );
    r.add(
        DELETE,
        "/api/cameras/{camera}/zones/{zone}",
        "zones",
        "Remove a zone",
        delete_zone,
    );
    // SentryShot calls cameras monitors.
    r.add(
        GET,
        "/api/monitors",
        "cameras",
        "Every camera's configuration, by id (SentryShot)",
        monitors,
    );
    r.add(
        PUT,
        "/api/monitor",
        "cameras",
        "Create or replace a camera (SentryShot)",
        put_monitor,
    );
    r.add(
        DELETE,
        "/api/monitor",
        "cameras",
        "Remove the camera ?id= (SentryShot)",
        delete_monitor,
    );
    r.add(
        PATCH,
        "/api/monitor/{camera}/{detector}/{action}",
        "cameras",
        "Turn a detector (motion, tflite/object) on or off",
        toggle_detector,
    );
    // SpectraX calls them stream paths.
    r.add(
        GET,
        "/paths",
        "cameras",
        "Every camera's path (SpectraX)",
        paths,
    );
}

/// Puts back the stored password where a client sends the masked form it was shown; a URL
/// still masked but otherwise changed is refused (storing `***` as the password would lose the
/// real one without a word).
fn unmask(new: &mut CameraSpec, old: &CameraSpec) -> Result<(), ApiError> {
    for (field, url, old_url) in [
        ("url", &mut new.url, &old.url),
        ("detect_url", &mut new.detect_url, &old.detect_url),
    ] {
        let Some(url) = url else { continue };
        if !url.contains(":***@") {
            continue;
        }
        match old_url {
            Some(o) if mask_password(o) == *url => url.clone_from(o),
            _ => {
                return Err(ApiError::body(
                    &[field],
                    "the password in this URL is the masked *** it was shown as: \
                     give the real password to change the URL",
                ))
            }
        }
    }
    if new.password.as_deref() == Some("***") {
        new.password.clone_from(&old.password);
    }
    Ok(())
}

fn status_word(s: Option<&CameraStatus>, cfg: &CameraConfig) -> &'static str {
    if !cfg.enabled {
        return "disabled";
    }
    match s {
        Some(s) if s.error.is_some() => "error",
        Some(CameraStatus {
            stream: Some(st), ..
        }) if st.connected => "online",
        Some(_) => "offline",
        None => "unknown",
    }
}

/// A camera as the API shows it: its spec (credentials masked), status and timestamps.
pub(crate) fn wire_camera(cfg: &CameraConfig, status: Option<&CameraStatus>) -> Value {
    let mut spec = CameraSpec::of(cfg);
    spec.url = spec.url.as_deref().map(mask_password);
    spec.detect_url = spec.detect_url.as_deref().map(mask_password);
    if spec.password.is_some() {
        spec.password = Some("***".into());
    }
    let mut v = value_of(&spec);
    if let Value::Object(m) = &mut v {
        m.insert("status".into(), status_word(status, cfg).into());
        m.insert("created_at".into(), cfg.created_at.to_string().into());
        m.insert("updated_at".into(), cfg.updated_at.to_string().into());
        let last_seen = status
            .and_then(|s| s.stream.as_ref())
            .and_then(|s| s.last_frame_time)
            .map(|t| t.to_string());
        m.insert("last_seen_at".into(), last_seen.into());
        if let Some(s) = status {
            m.insert(
                "stream".into(),
                serde_json::to_value(&s.stream).unwrap_or(Value::Null),
            );
            m.insert(
                "recorder".into(),
                serde_json::to_value(&s.recorder).unwrap_or(Value::Null),
            );
            m.insert("error".into(), s.error.clone().into());
        }
        m.insert(
            "snapshot_url".into(),
            format!("/api/cameras/{}/snapshot", cfg.id).into(),
        );
        m.insert("stream_url".into(), format!("/api/{}", cfg.id).into());
    }
    v
}

/// Every running camera's status, by id (none without a running system).
pub(crate) async fn statuses(ctx: &Ctx) -> BTreeMap<CameraId, CameraStatus> {
    match ctx.state.nvr() {
        Some(n) => n
            .status()
            .await
            .into_iter()
            .map(|s| (s.id.clone(), s))
            .collect(),
        None => BTreeMap::new(),
    }
}

/// The camera named by the path, or 404.
pub(crate) async fn camera_of(ctx: &Ctx) -> Result<CameraConfig, ApiError> {
    camera_by_name(ctx, ctx.param("camera")).await
}

/// A body naming a camera, or none (`{}` or no body at all).
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct CameraBody {
    pub(crate) camera: Option<String>,
}

/// The camera named, or the first enabled one (the single-camera documents name none).
pub(crate) async fn camera_or_first(
    ctx: &Ctx,
    name: Option<&str>,
) -> Result<CameraConfig, ApiError> {
    match name {
        Some(n) => camera_by_name(ctx, n).await,
        None => ctx
            .state
            .store()
            .cameras()
            .await?
            .into_iter()
            .find(|c| c.enabled)
            .ok_or_else(|| ApiError::not_found("no camera is configured")),
    }
}

pub(crate) async fn camera_by_name(ctx: &Ctx, name: &str) -> Result<CameraConfig, ApiError> {
    let id = CameraId::new(name)
        .map_err(|_| ApiError::not_found(format!("camera {name:?} not found")))?;
    ctx.state
        .store()
        .camera(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("camera {id} not found")))
}

/// Stores a camera, then (re)starts or stops its pipeline.
async fn save(ctx: &Ctx, cfg: &CameraConfig) -> Result<(), ApiError> {
    ctx.state
        .store()
        .apply(Mutation::PutCamera(Box::new(cfg.clone())).into())
        .await?;
    if let Some(nvr) = ctx.state.nvr() {
        nvr.put_camera(cfg).await;
    }
    Ok(())
}

async fn one(ctx: &Ctx, cfg: &CameraConfig) -> Value {
    let st = statuses(ctx).await;
    with_picture(ctx, cfg, wire_camera(cfg, st.get(&cfg.id)))
}

/// Adds `has_picture`: whether `latest.jpg` has a picture to give (a page asks for it only
/// then, rather than meeting a 503 while a camera's first picture is on its way).
fn with_picture(ctx: &Ctx, cfg: &CameraConfig, mut v: Value) -> Value {
    let has = ctx
        .state
        .nvr()
        .is_some_and(|n| n.live().latest(&cfg.id).is_some());
    if let Value::Object(m) = &mut v {
        m.insert("has_picture".into(), has.into());
    }
    v
}

async fn list_cameras(ctx: Ctx) -> Reply {
    let cams = ctx.state.store().cameras().await?;
    let st = statuses(&ctx).await;
    let items: Vec<Value> = cams
        .iter()
        .map(|c| with_picture(&ctx, c, wire_camera(c, st.get(&c.id))))
        .collect();
    ok(&serde_json::json!({"cameras": items, "count": items.len()}))
}

/// A spec from the body; errors of the spec's own checks are 422 on the body.
fn spec_of(ctx: &Ctx) -> Result<CameraSpec, ApiError> {
    ctx.json()
}

fn invalid(e: vigil_core::Error) -> ApiError {
    let path: Vec<&str> = vigil_core::config::field_of(&e)
        .map(|f| f.split('.').collect())
        .unwrap_or_default();
    ApiError::body(&path, e.message())
}

async fn create_camera(ctx: Ctx) -> Reply {
    let spec = spec_of(&ctx)?;
    if spec.url.is_none() {
        return Err(ApiError::missing("body", "url"));
    }
    let id = spec
        .id()
        .map_err(|e| ApiError::body(&["name"], e.message()))?;
    if ctx.state.store().camera(&id).await?.is_some() {
        return Err(ApiError::Status(
            StatusCode::CONFLICT,
            format!("camera {id} already exists"),
        ));
    }
    let cfg = spec.to_config(id, ctx.state.now()).map_err(invalid)?;
    save(&ctx, &cfg).await?;
    Ok(json(StatusCode::CREATED, &one(&ctx, &cfg).await))
}

async fn get_camera(ctx: Ctx) -> Reply {
    let cfg = camera_of(&ctx).await?;
    ok(&one(&ctx, &cfg).await)
}

/// RFC 7396 JSON merge patch: objects merge key by key, `null` removes, anything else replaces.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// Read-only fields a client may send back as it got them.
const SHOWN_ONLY: [&str; 9] = [
    "status",
    "created_at",
    "updated_at",
    "last_seen_at",
    "stream",
    "recorder",
    "error",
    "snapshot_url",
    "stream_url",
];

fn without_shown_only(v: &mut Value) {
    if let Value::Object(m) = v {
        for k in SHOWN_ONLY {
            m.remove(k);
        }
    }
}

async fn patch_camera(ctx: Ctx) -> Reply {
    let mut cfg = camera_of(&ctx).await?;
    let mut patch: Value = ctx.json()?;
    if !patch.is_object() {
        return Err(ApiError::field(
            vec!["body".into()],
            "expected a JSON object",
            "type_error",
        ));
    }
    without_shown_only(&mut patch);
    if patch
        .get("id")
        .is_some_and(|v| v.as_str() != Some(cfg.id.as_str()))
    {
        return Err(ApiError::body(&["id"], "a camera's id cannot change"));
    }
    let old = CameraSpec::of(&cfg);
    let mut merged = value_of(&old);
    merge_patch(&mut merged, &patch);
    let mut spec: CameraSpec = from_value(merged)?;
    unmask(&mut spec, &old)?;
    spec.apply_to(&mut cfg, ctx.state.now()).map_err(invalid)?;
    save(&ctx, &cfg).await?;
    ok(&one(&ctx, &cfg).await)
}

async fn put_camera(ctx: Ctx) -> Reply {
    let name = ctx.param("camera").to_owned();
    let id = CameraId::new(name.clone()).map_err(|e| ApiError::path("camera", e.message()))?;
    let mut body: Value = ctx.json()?;
    without_shown_only(&mut body);
    let mut spec: CameraSpec = from_value(body)?;
    if spec.id.as_deref().is_some_and(|i| i != id.as_str()) {
        return Err(ApiError::body(
            &["id"],
            "the body's id differs from the path's",
        ));
    }
    let existing = ctx.state.store().camera(&id).await?;
    if let Some(old) = &existing {
        unmask(&mut spec, &CameraSpec::of(old))?;
    }
    let t = ctx.state.now();
    let mut cfg = spec.to_config(id, t).map_err(invalid)?;
    let created = existing.is_none();
    if let Some(old) = existing {
        cfg.created_at = old.created_at;
    }
    save(&ctx, &cfg).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json(status, &one(&ctx, &cfg).await))
}

async fn remove(ctx: &Ctx, cfg: &CameraConfig) -> Result<(), ApiError> {
    ctx.state
        .store()
        .apply(Mutation::DeleteCamera(cfg.id.clone()).into())
        .await?;
    if let Some(nvr) = ctx.state.nvr() {
        nvr.remove_camera(&cfg.id).await;
    }
    Ok(())
}

async fn delete_camera(ctx: Ctx) -> Reply {
    let cfg = camera_of(&ctx).await?;
    remove(&ctx, &cfg).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

// --- zones

fn wire_zone(camera: &CameraId, z: &Zone) -> Value {
    let mut v = value_of(z);
    if let Value::Object(m) = &mut v {
        m.insert("id".into(), z.name.clone().into());
        m.insert("camera_id".into(), camera.to_string().into());
        // HSI's name for the polygon.
        m.insert(
            "coordinates".into(),
            m.get("polygon").cloned().unwrap_or(Value::Null),
        );
    }
    v
}

/// A zone body: the model's zone, with HSI's `coordinates` accepted for `polygon`.
fn zone_of(ctx: &Ctx) -> Result<Zone, ApiError> {
    let mut v: Value = ctx.json()?;
    if let Value::Object(m) = &mut v {
        for k in ["id", "camera_id"] {
            m.remove(k);
        }
        if let Some(c) = m.remove("coordinates") {
            m.entry("polygon").or_insert(c);
        }
    }
    let z: Zone = from_value(v)?;
    z.validate()
        .map_err(|e| ApiError::body(&["polygon"], e.message()))?;
    Ok(z)
}

async fn list_zones(ctx: Ctx) -> Reply {
    let cfg = camera_of(&ctx).await?;
    let zones: Vec<Value> = cfg.zones.iter().map(|z| wire_zone(&cfg.id, z)).collect();
    ok(&serde_json::json!({"zones": zones, "count": zones.len()}))
}

async fn create_zone(ctx: Ctx) -> Reply {
    let mut cfg = camera_of(&ctx).await?;
    let z = zone_of(&ctx)?;
    if cfg.zones.iter().any(|o| o.name == z.name) {
        return Err(ApiError::Status(
            StatusCode::CONFLICT,
            format!("camera {} already has a zone {:?}", cfg.id, z.name),
        ));
    }
    cfg.zones.push(z.clone());
    cfg.updated_at = ctx.state.now();
    cfg.validate().map_err(invalid)?;
    save(&ctx, &cfg).await?;
    Ok(json(StatusCode::CREATED, &wire_zone(&cfg.id, &z)))
}

fn zone_index(cfg: &CameraConfig, name: &str) -> Result<usize, ApiError> {
    cfg.zones
        .iter()
        .position(|z| z.name == name)
        .ok_or_else(|| ApiError::not_found(format!("camera {} has no zone {name:?}", cfg.id)))
}

async fn get_zone(ctx: Ctx) -> Reply {
    let cfg = camera_of(&ctx).await?;
    let i = zone_index(&cfg, ctx.param("zone"))?;
    ok(&wire_zone(&cfg.id, &cfg.zones[i]))
}

async fn put_zone(ctx: Ctx) -> Reply {
    let mut cfg = camera_of(&ctx).await?;
    let i = zone_index(&cfg, ctx.param("zone"))?;
    let z = zone_of(&ctx)?;
    cfg.zones[i] = z.clone();
    cfg.updated_at = ctx.state.now();
    cfg.validate().map_err(invalid)?;
    save(&ctx, &cfg).await?;
    ok(&wire_zone(&cfg.id, &z))
}

async fn delete_zone(ctx: Ctx) -> Reply {
    let mut cfg = camera_of(&ctx).await?;
    let i = zone_index(&cfg, ctx.param("zone"))?;
    cfg.zones.remove(i);
    cfg.updated_at = ctx.state.now();
    save(&ctx, &cfg).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

// --- SentryShot's monitors and SpectraX's paths

async fn monitors(ctx: Ctx) -> Reply {
    let cams = ctx.state.store().cameras().await?;
    let st = statuses(&ctx).await;
    let m: serde_json::Map<String, Value> = cams
        .iter()
        .map(|c| {
            let mut v = wire_camera(c, st.get(&c.id));
            if let Value::Object(o) = &mut v {
                o.insert("motion_enabled".into(), c.motion.enabled.into());
                o.insert("object_detection_enabled".into(), c.detect.enabled.into());
            }
            (c.id.to_string(), v)
        })
        .collect();
    ok(&m)
}

/// SentryShot's monitor body: its `id` names the camera; the rest is a camera spec.
async fn put_monitor(ctx: Ctx) -> Reply {
    let mut body: Value = ctx.json()?;
    without_shown_only(&mut body);
    if let Value::Object(m) = &mut body {
        m.remove("motion_enabled");
        m.remove("object_detection_enabled");
    }
    let spec: CameraSpec = from_value(body)?;
    let id = spec
        .id()
        .map_err(|e| ApiError::body(&["id"], e.message()))?;
    let existing = ctx.state.store().camera(&id).await?;
    let t = ctx.state.now();
    let cfg = match existing {
        Some(mut old) => {
            let mut spec = spec;
            unmask(&mut spec, &CameraSpec::of(&old))?;
            spec.apply_to(&mut old, t).map_err(invalid)?;
            old
        }
        None => spec.to_config(id, t).map_err(invalid)?,
    };
    save(&ctx, &cfg).await?;
    ok(&one(&ctx, &cfg).await)
}

async fn delete_monitor(ctx: Ctx) -> Reply {
    let id = ctx.required_query("id")?;
    let cfg = camera_by_name(&ctx, &id).await?;
    remove(&ctx, &cfg).await?;
    ok(&serde_json::json!({"deleted": cfg.id}))
}

async fn toggle_detector(ctx: Ctx) -> Reply {
    let mut cfg = camera_of(&ctx).await?;
    let on = match ctx.param("action") {
        "enable" => true,
        "disable" => false,
        a => {
            return Err(ApiError::path(
                "action",
                format!("must be enable or disable, got {a:?}"),
            ))
        }
    };
    match ctx.param("detector") {
        "motion" => cfg.motion.enabled = on,
        "tflite" | "object" | "objects" | "detect" | "yolov8" => cfg.detect.enabled = on,
        d => {
            return Err(ApiError::path(
                "detector",
                format!("must be motion or tflite (object detection), got {d:?}"),
            ))
        }
    }
    cfg.updated_at = ctx.state.now();
    save(&ctx, &cfg).await?;
    ok(&one(&ctx, &cfg).await)
}

async fn paths(ctx: Ctx) -> Reply {
    let cams = ctx.state.store().cameras().await?;
    let paths: Vec<String> = cams.iter().map(|c| c.id.to_string()).collect();
    ok(&serde_json::json!({"paths": paths}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_merges() {
        let mut t = serde_json::json!({"a": 1, "b": {"c": 2, "d": 3}});
        merge_patch(
            &mut t,
            &serde_json::json!({"b": {"c": null, "e": 4}, "f": [1]}),
        );
        assert_eq!(
            t,
            serde_json::json!({"a": 1, "b": {"d": 3, "e": 4}, "f": [1]})
        );
    }
}
