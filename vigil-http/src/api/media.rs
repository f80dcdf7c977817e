//! Event and detection media: thumbnails (and Frigate's 2:1 android form), snapshots drawn on
//! request, clips cut from the recordings, `/clips/<camera>-<id>.mp4|.jpg`, `best.jpg` per
//! label, and clips of any time range.

use std::path::Path;

use hyper::StatusCode;
use vigil_core::pipeline::{write_clip, write_event_clip};
use vigil_core::{CameraId, Event, EventFilter, EventId, Query, Timestamp};
use vigil_detect::render::{decode_jpeg, render_event_snapshot, Rgb};
use vigil_detect::SnapshotStyle;

use super::cameras::camera_of;
use super::detections::detection_of;
use super::events::event_of;
use super::{flag, number, GET};
use crate::error::ApiError;
use crate::reply::{bytes, file, open_file, Reply};
use crate::router::{Ctx, Router};

pub(super) fn routes(r: &mut Router) {
    r.add(
        GET,
        "/api/events/{id}/thumbnail.jpg",
        "media",
        "An event's thumbnail (?format=android: 2:1)",
        event_thumbnail,
    );
    r.add(
        GET,
        "/api/events/{id}/thumbnail.webp",
        "media",
        "An event's thumbnail (JPEG; Frigate's webp name)",
        event_thumbnail,
    );
    r.add(
        GET,
        "/api/events/{id}/snapshot.jpg",
        "media",
        "An event's best snapshot (bbox, crop, timestamp, h, quality)",
        event_snapshot,
    );
    r.add(
        GET,
        "/api/events/{id}/clip.mp4",
        "media",
        "An event's clip with pre- and post-capture (byte ranges)",
        event_clip,
    );
    r.add(
        GET,
        "/clips/{file}",
        "media",
        "Frigate's /clips/<camera>-<id>.mp4 and .jpg",
        frigate_clip,
    );
    r.add(
        GET,
        "/api/{camera}/{label}/best.jpg",
        "media",
        "The best snapshot of the newest event of a label (h, crop)",
        best,
    );
    r.add(
        GET,
        "/api/{camera}/start/{start}/end/{end}/clip.mp4",
        "media",
        "A clip of any time range (epoch seconds)",
        range_clip,
    );
    r.add(
        GET,
        "/api/detections/{id}/image",
        "media",
        "The picture of a detection (its event's snapshot, cropped to it)",
        detection_image,
    );
    r.add(
        GET,
        "/api/detections/{id}/video",
        "media",
        "The recording around a detection (byte ranges)",
        detection_video,
    );
    r.add(
        GET,
        "/api/detections/{id}/video/thumbnail",
        "media",
        "A thumbnail of a detection's video",
        detection_image,
    );
}

fn jpeg(data: Vec<u8>) -> Reply {
    Ok(bytes(StatusCode::OK, "image/jpeg", data))
}

/// `bbox`, `crop`, `timestamp`, `h`, `quality` over a camera's snapshot defaults.
fn snapshot_style(ctx: &Ctx, base: SnapshotStyle) -> Result<SnapshotStyle, ApiError> {
    let mut s = base;
    for (k, v) in ctx.query_pairs() {
        let k = k.as_str();
        match k {
            "bbox" => s.bbox = flag(k, &v)?,
            "crop" => s.crop = flag(k, &v)?,
            "timestamp" => s.timestamp = flag(k, &v)?,
            "h" | "height" => {
                let h: u32 = number(k, &v)?;
                if !(16..=4320).contains(&h) {
                    return Err(ApiError::query(
                        k,
                        format!("must be within 16..=4320, got {h}"),
                    ));
                }
                s.height = Some(h);
            }
            "quality" => {
                let q: u8 = number(k, &v)?;
                if !(1..=100).contains(&q) {
                    return Err(ApiError::query(
                        k,
                        format!("must be within 1..=100, got {q}"),
                    ));
                }
                s.quality = q;
            }
            _ => {}
        }
    }
    Ok(s)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> vigil_core::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Core(vigil_core::Error::internal(e.to_string())))?
        .map_err(ApiError::from)
}

/// A square thumbnail centred on a black 2:1 canvas (Frigate's `format=android`, which
/// notification layouts crop from).
fn android(jpeg_in: &[u8]) -> vigil_core::Result<Vec<u8>> {
    let t = decode_jpeg(jpeg_in)?;
    let (w, h) = (t.height * 2, t.height);
    let mut out = Rgb {
        width: w,
        height: h,
        data: vec![0u8; (w * h * 3) as usize],
    };
    let x0 = (w.saturating_sub(t.width)) / 2;
    let cw = t.width.min(w);
    for y in 0..h as usize {
        let src = &t.data[y * t.width as usize * 3..][..cw as usize * 3];
        let dst = (y * w as usize + x0 as usize) * 3;
        out.data[dst..dst + cw as usize * 3].copy_from_slice(src);
    }
    vigil_detect::events::encode_jpeg(&out.data, out.width, out.height, 80)
}

async fn thumbnail_of(ctx: &Ctx, e: &Event) -> Reply {
    let dir = ctx.state.need_data_dir()?;
    let Some(p) = e.best.as_ref().and_then(|b| b.thumbnail_path.clone()) else {
        return Err(ApiError::not_found(format!(
            "event {} has no thumbnail yet",
            e.id
        )));
    };
    let path = dir.join(&p);
    if ctx.query_value("format").as_deref() == Some("android") {
        let data = tokio::fs::read(&path)
            .await
            .map_err(|_| ApiError::not_found(format!("event {}'s thumbnail is gone", e.id)))?;
        return jpeg(blocking(move || android(&data)).await?);
    }
    file(&path, "image/jpeg", &ctx.headers).await
}

pub(super) async fn event_thumbnail(ctx: Ctx) -> Reply {
    let e = event_of(&ctx).await?;
    thumbnail_of(&ctx, &e).await
}

async fn snapshot_of(ctx: &Ctx, e: Event, base: SnapshotStyle) -> Reply {
    let dir = ctx.state.need_data_dir()?.to_owned();
    let style = snapshot_style(ctx, base)?;
    jpeg(blocking(move || render_event_snapshot(&dir, &e, &style)).await?)
}

async fn event_snapshot(ctx: Ctx) -> Reply {
    let e = event_of(&ctx).await?;
    // Frigate draws the box unless asked not to (the stored snapshot is clean).
    let base = SnapshotStyle {
        bbox: true,
        ..SnapshotStyle::default()
    };
    snapshot_of(&ctx, e, base).await
}

/// A file for one request's clip: created in the media directory's `clips/.tmp`, unlinked at
/// once (the open handle keeps it readable; nothing is left behind whatever happens next).
fn scratch(dir: &Path) -> Result<(std::fs::File, std::fs::File), ApiError> {
    let tmp = dir.join("clips").join(".tmp");
    std::fs::create_dir_all(&tmp).map_err(|e| ApiError::io("creating clips/.tmp", e))?;
    let f = tempfile::tempfile_in(&tmp).map_err(|e| ApiError::io("creating a clip file", e))?;
    let reader = f
        .try_clone()
        .map_err(|e| ApiError::io("opening a clip file", e))?;
    Ok((f, reader))
}

/// Serves the clip written through `written` (flushed first) from `reader`.
async fn serve_clip(
    ctx: &Ctx,
    written: std::io::BufWriter<std::fs::File>,
    reader: std::fs::File,
) -> Reply {
    written
        .into_inner()
        .map_err(|e| ApiError::io("writing a clip", e.into_error()))?;
    open_file(tokio::fs::File::from_std(reader), "video/mp4", &ctx.headers).await
}

async fn clip_of(ctx: &Ctx, e: &Event) -> Reply {
    let dir = ctx.state.need_data_dir()?.to_owned();
    let (w, reader) = scratch(&dir)?;
    let (_, w) = write_event_clip(
        &**ctx.state.store(),
        &dir,
        e,
        ctx.state.now(),
        std::io::BufWriter::new(w),
    )
    .await?;
    serve_clip(ctx, w, reader).await
}

pub(super) async fn event_clip(ctx: Ctx) -> Reply {
    let e = event_of(&ctx).await?;
    clip_of(&ctx, &e).await
}

/// `<camera>-<id>.mp4` or `.jpg`: the camera may itself hold dashes, the id cannot.
pub(super) async fn frigate_clip(ctx: Ctx) -> Reply {
    let name = ctx.param("file").to_owned();
    let (stem, ext) = name
        .rsplit_once('.')
        .ok_or_else(|| ApiError::not_found(format!("no clip {name:?}")))?;
    let (camera, id) = stem
        .rsplit_once('-')
        .ok_or_else(|| ApiError::not_found(format!("no clip {name:?}")))?;
    let id: EventId = id
        .parse()
        .map_err(|_| ApiError::not_found(format!("no clip {name:?}")))?;
    let e = ctx
        .state
        .store()
        .event(id)
        .await?
        .filter(|e| e.camera.as_str() == camera)
        .ok_or_else(|| ApiError::not_found(format!("no event {id} on camera {camera:?}")))?;
    match ext {
        "mp4" => clip_of(&ctx, &e).await,
        "jpg" | "jpeg" => snapshot_of(&ctx, e, SnapshotStyle::default()).await,
        _ => Err(ApiError::not_found(format!("no clip {name:?}"))),
    }
}

async fn best(ctx: Ctx) -> Reply {
    let cfg = camera_of(&ctx).await?;
    let label = ctx.param("label").to_owned();
    let mut q = Query::new(EventFilter {
        cameras: vec![cfg.id.clone()],
        labels: vec![label.clone()],
        has_snapshot: Some(true),
        ..Default::default()
    });
    q.page.limit = 1;
    let e = ctx
        .state
        .store()
        .events(&q)
        .await?
        .items
        .into_iter()
        .next()
        .ok_or_else(|| {
            ApiError::not_found(format!("camera {} has no snapshot of a {label}", cfg.id))
        })?;
    snapshot_of(&ctx, e, SnapshotStyle::default()).await
}

fn epoch(name: &str, v: &str) -> Result<Timestamp, ApiError> {
    let s: f64 = number(name, v)?;
    Timestamp::from_secs_f64(s).map_err(|e| ApiError::path(name, e.message()))
}

async fn range_clip(ctx: Ctx) -> Reply {
    let cfg = camera_of(&ctx).await?;
    let start = epoch("start", ctx.param("start"))?;
    let end = epoch("end", ctx.param("end"))?;
    if end <= start {
        return Err(ApiError::path("end", "must be after start"));
    }
    if end.0 - start.0 > 24 * 3_600_000_000 {
        return Err(ApiError::path("end", "a clip is at most 24 hours long"));
    }
    let dir = ctx.state.need_data_dir()?.to_owned();
    let (w, reader) = scratch(&dir)?;
    let (_, w) = write_clip(
        &**ctx.state.store(),
        &dir,
        &cfg.id,
        start,
        end,
        std::io::BufWriter::new(w),
    )
    .await?;
    serve_clip(&ctx, w, reader).await
}

/// The event a detection belongs to, or 404.
async fn detection_event(ctx: &Ctx) -> Result<(vigil_core::Detection, Event), ApiError> {
    let d = detection_of(ctx).await?;
    let id = d
        .event_id
        .ok_or_else(|| ApiError::not_found(format!("detection {} belongs to no event", d.id)))?;
    let e = ctx
        .state
        .store()
        .event(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("detection {}'s event is gone", d.id)))?;
    Ok((d, e))
}

pub(super) async fn detection_image(ctx: Ctx) -> Reply {
    let d = detection_of(&ctx).await?;
    if let Some(p) = &d.image_path {
        return file(
            &ctx.state.need_data_dir()?.join(p),
            "image/jpeg",
            &ctx.headers,
        )
        .await;
    }
    let (_, e) = detection_event(&ctx).await?;
    let base = SnapshotStyle {
        crop: true,
        ..SnapshotStyle::default()
    };
    snapshot_of(&ctx, e, base).await
}

async fn detection_video(ctx: Ctx) -> Reply {
    let (d, _) = detection_event(&ctx).await?;
    let camera: CameraId = d.camera.clone();
    let settings = ctx
        .state
        .store()
        .camera(&camera)
        .await?
        .map(|c| c.record)
        .unwrap_or_default();
    let pre = i64::from(settings.pre_capture_s.max(1)) * 1_000_000;
    let post = i64::from(settings.post_capture_s.max(1)) * 1_000_000;
    let dir = ctx.state.need_data_dir()?.to_owned();
    let (w, reader) = scratch(&dir)?;
    let (_, w) = write_clip(
        &**ctx.state.store(),
        &dir,
        &camera,
        Timestamp(d.time.0 - pre),
        Timestamp(d.time.0 + post),
        std::io::BufWriter::new(w),
    )
    .await?;
    serve_clip(&ctx, w, reader).await
}
