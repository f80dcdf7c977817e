//! HSI's `/api/media/*` routes: the same media as the routes above, named by file.
//!
//! - `/api/media/cameras/<camera>/<file>`: a camera's file: a snapshot (`snapshots/<camera>/`),
//!   a timelapse video, or a recording's segment or art by its id (`<id>.mp4`,
//!   `<id>.thumb.jpg`, `<id>.sprite.jpg`);
//! - `/api/media/thumbnails/<id>.jpg`: a detection's image, or an event's thumbnail;
//! - `/api/media/detections/<id>`: a detection's image;
//! - `/api/media/clips/<file>`: an event's clip, `<event id>.mp4` or `<camera>-<id>.mp4`;
//! - `/api/media/<path>`: a file under the media directory's `recordings/`, `snapshots/` or
//!   `timelapse/` (the legacy form); nothing else, and nothing outside it.

use std::path::Path;

use vigil_core::{CameraId, DetectionId, EventId, RecordingId};

use super::GET;
use crate::error::ApiError;
use crate::reply::{content_type_of, file, Reply};
use crate::router::{Ctx, Router};

pub(super) fn routes(r: &mut Router) {
    r.add(
        GET,
        "/api/media/cameras/{camera}/{file}",
        "media",
        "A camera's snapshot, timelapse video, or recording and its art, by file name (HSI)",
        camera_file,
    );
    r.add(
        GET,
        "/api/media/thumbnails/{file}",
        "media",
        "A detection's image or an event's thumbnail, by `<id>.jpg` (HSI)",
        thumbnail,
    );
    r.add(
        GET,
        "/api/media/detections/{id}",
        "media",
        "A detection's image (HSI)",
        super::media::detection_image,
    );
    r.add(
        GET,
        "/api/media/clips/{file}",
        "media",
        "An event's clip, `<id>.mp4` or `<camera>-<id>.mp4` (HSI)",
        clip,
    );
    r.add(
        GET,
        "/api/media/{*path}",
        "media",
        "A media file by its path under the media directory (HSI's legacy route)",
        legacy,
    );
}

fn not_found(what: &str) -> ApiError {
    ApiError::not_found(format!("no media file {what:?}"))
}

/// `rel` if it is a plain relative path under one of the media roots and the file exists.
fn media_file(dir: &Path, rel: &str) -> Option<std::path::PathBuf> {
    vigil_core::model::validate_relative_path(rel).ok()?;
    let root = rel.split('/').next()?;
    if !["recordings", "snapshots", "timelapse"].contains(&root) {
        return None;
    }
    let real = dir.join(rel).canonicalize().ok()?;
    let base = dir.join(root).canonicalize().ok()?;
    (real.starts_with(&base) && real.is_file()).then_some(real)
}

async fn serve(ctx: &Ctx, path: &Path, name: &str) -> Reply {
    file(path, content_type_of(name), &ctx.headers).await
}

async fn camera_file(ctx: Ctx) -> Reply {
    let dir = ctx.state.need_data_dir()?.to_owned();
    let (camera, name) = (ctx.param("camera").to_owned(), ctx.param("file").to_owned());
    let Ok(cam) = CameraId::new(camera.as_str()) else {
        return Err(not_found(&name));
    };
    for root in ["snapshots", "timelapse"] {
        if let Some(p) = media_file(&dir, &format!("{root}/{cam}/{name}")) {
            return serve(&ctx, &p, &name).await;
        }
    }
    // A recording, or its art, by id.
    let (stem, suffix) = match name.split_once('.') {
        Some((s, x)) => (s, x),
        None => return Err(not_found(&name)),
    };
    let id: u64 = stem.parse().map_err(|_| not_found(&name))?;
    let rec = ctx
        .state
        .store()
        .recording(RecordingId(id))
        .await?
        .filter(|r| r.camera == cam)
        .ok_or_else(|| not_found(&name))?;
    let rel = match suffix {
        "mp4" => Some(rec.path),
        "thumb.jpg" => rec.thumbnail_path,
        "sprite.jpg" => rec.sprite_path,
        _ => None,
    }
    .ok_or_else(|| not_found(&name))?;
    let p = media_file(&dir, &rel).ok_or_else(|| not_found(&name))?;
    serve(&ctx, &p, &name).await
}

async fn thumbnail(ctx: Ctx) -> Reply {
    let name = ctx.param("file").to_owned();
    let id: u64 = name
        .strip_suffix(".jpg")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| not_found(&name))?;
    if ctx
        .state
        .store()
        .detection(DetectionId(id))
        .await?
        .is_some()
    {
        return super::media::detection_image(ctx.with_param("id", id.to_string())).await;
    }
    if ctx.state.store().event(EventId(id)).await?.is_some() {
        return super::media::event_thumbnail(ctx.with_param("id", id.to_string())).await;
    }
    Err(not_found(&name))
}

async fn clip(ctx: Ctx) -> Reply {
    let name = ctx.param("file").to_owned();
    match name.strip_suffix(".mp4").map(str::parse::<u64>) {
        Some(Ok(id)) => super::media::event_clip(ctx.with_param("id", id.to_string())).await,
        _ => super::media::frigate_clip(ctx).await,
    }
}

async fn legacy(ctx: Ctx) -> Reply {
    let dir = ctx.state.need_data_dir()?.to_owned();
    let rel = ctx.param("path").to_owned();
    let p = media_file(&dir, &rel).ok_or_else(|| not_found(&rel))?;
    serve(&ctx, &p, &rel).await
}
