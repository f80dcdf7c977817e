//! picam's timelapse: status, configure, start and stop, the list of videos, one video (with
//! byte ranges), delete. Each takes the camera as `?camera=` or `"camera"` in the body; without
//! it, the first enabled camera (picam has one).

use std::path::Path;

use hyper::header::{self, HeaderValue};
use serde::Deserialize;
use serde_json::{json, Value};
use vigil_core::TimelapseSettings;
use vigil_detect::{Timelapse, TimelapseStatus, TimelapseVideo};

use super::cameras::{camera_by_name, camera_or_first, CameraBody};
use super::{GET, POST};
use crate::error::ApiError;
use crate::reply::{file, ok, Reply};
use crate::router::{Ctx, Router};

pub(super) fn routes(r: &mut Router) {
    r.add(
        GET,
        "/timelapse/status",
        "timelapse",
        "Timelapse state: settings, today's frames, last capture (picam)",
        status,
    );
    r.add(
        POST,
        "/timelapse/configure",
        "timelapse",
        "Set enabled, interval_minutes, fps, resolution (picam)",
        configure,
    );
    r.add(
        POST,
        "/timelapse/start",
        "timelapse",
        "Start capturing (picam)",
        start,
    );
    r.add(
        POST,
        "/timelapse/stop",
        "timelapse",
        "Stop capturing; the day's video is finished (picam)",
        stop,
    );
    r.add(
        GET,
        "/timelapse",
        "timelapse",
        "Timelapse videos, newest first (picam)",
        list,
    );
    r.add(
        GET,
        "/timelapse/video",
        "timelapse",
        "One timelapse video by ?path= (byte ranges)",
        video,
    );
    r.add(
        POST,
        "/timelapse/delete",
        "timelapse",
        "Delete a timelapse video (timelapse_*.mp4 only)",
        delete,
    );
}

fn service(ctx: &Ctx) -> Result<&std::sync::Arc<Timelapse>, ApiError> {
    ctx.state.timelapse().ok_or_else(|| {
        ApiError::Status(
            hyper::StatusCode::SERVICE_UNAVAILABLE,
            "timelapse needs the running system; this server serves a store only".into(),
        )
    })
}

/// picam's resolution text: `"original"`, `"640:480"`, `"320:240"` (also `WxH`).
fn resolution_text(r: Option<(u32, u32)>) -> String {
    match r {
        None => "original".into(),
        Some((w, h)) => format!("{w}:{h}"),
    }
}

fn parse_resolution(s: &str) -> Option<Option<(u32, u32)>> {
    if s == "original" {
        return Some(None);
    }
    let (w, h) = s.split_once([':', 'x'])?;
    Some(Some((w.trim().parse().ok()?, h.trim().parse().ok()?)))
}

fn status_json(s: &TimelapseStatus) -> Value {
    json!({
        "camera": s.camera,
        "enabled": s.settings.enabled,
        "interval_minutes": s.settings.interval_minutes,
        "fps": s.settings.fps,
        "resolution": resolution_text(s.settings.resolution),
        "today_frame_count": s.today_frame_count,
        "last_capture": s.last_capture.map(|t| t.to_string()),
    })
}

async fn status(ctx: Ctx) -> Reply {
    let t = service(&ctx)?;
    let cfg = camera_or_first(&ctx, ctx.query_value("camera").as_deref()).await?;
    ok(&status_json(&t.status(&cfg.id).await?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ConfigureBody {
    camera: Option<String>,
    enabled: Option<bool>,
    interval_minutes: Option<u32>,
    fps: Option<u32>,
    resolution: Option<String>,
}

async fn apply(ctx: &Ctx, body: ConfigureBody) -> Reply {
    let t = service(ctx)?;
    let name = body.camera.clone().or_else(|| ctx.query_value("camera"));
    let cfg = camera_or_first(ctx, name.as_deref()).await?;
    let mut s: TimelapseSettings = cfg.timelapse.clone();
    if let Some(e) = body.enabled {
        s.enabled = e;
    }
    if let Some(i) = body.interval_minutes {
        if !(1..=60).contains(&i) {
            return Err(ApiError::body(
                &["interval_minutes"],
                format!("{i} is not between 1 and 60"),
            ));
        }
        s.interval_minutes = i;
    }
    if let Some(f) = body.fps {
        if !(1..=60).contains(&f) {
            return Err(ApiError::body(
                &["fps"],
                format!("{f} is not between 1 and 60"),
            ));
        }
        s.fps = f;
    }
    if let Some(r) = &body.resolution {
        s.resolution = parse_resolution(r).ok_or_else(|| {
            ApiError::body(
                &["resolution"],
                format!("{r:?} is not \"original\", \"640:480\" or \"320:240\""),
            )
        })?;
    }
    t.configure(&cfg.id, s).await?;
    ok(&status_json(&t.status(&cfg.id).await?))
}

async fn configure(ctx: Ctx) -> Reply {
    let body: ConfigureBody = ctx.json_or_default()?;
    apply(&ctx, body).await
}

async fn start(ctx: Ctx) -> Reply {
    set_enabled(&ctx, true).await
}

async fn stop(ctx: Ctx) -> Reply {
    set_enabled(&ctx, false).await
}

async fn set_enabled(ctx: &Ctx, enabled: bool) -> Reply {
    let b: CameraBody = ctx.json_or_default()?;
    let body = ConfigureBody {
        camera: b.camera,
        enabled: Some(enabled),
        ..ConfigureBody::default()
    };
    apply(ctx, body).await
}

fn video_json(dir: &Path, v: &TimelapseVideo) -> Value {
    let mut out = json!({
        "camera": v.camera,
        "path": dir.join(&v.path).display().to_string(),
        "date": v.date,
        "size": v.size,
        "mtime": v.mtime.to_string(),
        "url": format!("/timelapse/video?path={}", v.path),
    });
    if let Some(t) = &v.thumbnail {
        out["thumbnail"] = json!(dir.join(t).display().to_string());
    }
    out
}

async fn list(ctx: Ctx) -> Reply {
    let t = service(&ctx)?;
    let dir = ctx.state.need_data_dir()?.to_owned();
    let cam = match ctx.query_value("camera") {
        Some(n) => Some(camera_by_name(&ctx, &n).await?.id),
        None => None,
    };
    let videos = t.videos(cam.as_ref())?;
    ok(&videos
        .iter()
        .map(|v| video_json(&dir, v))
        .collect::<Vec<_>>())
}

/// The video's path relative to the data directory, from an absolute or relative `given`;
/// 400 for anything that is not a timelapse video's path.
fn video_path(dir: &Path, given: &str) -> Result<String, ApiError> {
    let p = Path::new(given);
    let rel = if p.is_absolute() {
        p.strip_prefix(dir).ok().and_then(|r| r.to_str())
    } else {
        Some(given)
    };
    let rel = rel.ok_or_else(|| {
        ApiError::bad_request(format!("{given:?} is not under the media directory"))
    })?;
    Timelapse::check_video_path(rel).map_err(|e| ApiError::bad_request(e.message().to_owned()))?;
    Ok(rel.to_owned())
}

async fn video(ctx: Ctx) -> Reply {
    let dir = ctx.state.need_data_dir()?.to_owned();
    let given = ctx.required_query("path")?;
    let rel = video_path(&dir, &given)?;
    let mut r = file(&dir.join(&rel), "video/mp4", &ctx.headers).await?;
    r.headers_mut()
        .insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    Ok(r)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteBody {
    path: String,
}

async fn delete(ctx: Ctx) -> Reply {
    let t = service(&ctx)?;
    let dir = ctx.state.need_data_dir()?.to_owned();
    let b: DeleteBody = ctx.json()?;
    let rel = video_path(&dir, &b.path)?;
    t.delete(&rel)?;
    ok(&json!({"message": "Timelapse deleted", "path": dir.join(&rel).display().to_string()}))
}
