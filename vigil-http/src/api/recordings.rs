//! Recordings: SpectraX's list (filters, sort, offset) with cursor pages, one recording, the
//! statistics, and the files themselves with byte ranges.

use serde::Serialize;
use vigil_core::{PageRequest, Query, Recording, RecordingFilter, RecordingId, RecordingKind};

use super::events::xyxy;
use super::{cameras, envelope, flag, limit, list, number, order, score, sort_by, time, GET};
use crate::error::ApiError;
use crate::reply::{content_type_of, file, ok, Reply};
use crate::router::{Ctx, Router};

pub(super) fn routes(r: &mut Router) {
    r.add(
        GET,
        "/api/recordings",
        "recordings",
        "List recordings (filters, sort, pages)",
        list_recordings,
    );
    r.add(
        GET,
        "/api/recordings/stats",
        "recordings",
        "Totals, per camera, per object, tracker ids",
        stats,
    );
    r.add(
        GET,
        "/api/recordings/file/{*path}",
        "recordings",
        "Download a recording (byte ranges)",
        download,
    );
    r.add(
        GET,
        "/recordings/{*path}",
        "recordings",
        "Download a recording (byte ranges)",
        download,
    );
    r.add(
        GET,
        "/api/recordings/{id}",
        "recordings",
        "One recording",
        get_recording,
    );
    r.add(
        GET,
        "/api/recordings/{id}/file",
        "recordings",
        "Download a recording by id (byte ranges)",
        download_by_id,
    );
    r.add(
        GET,
        "/api/recordings/{id}/thumbnail.jpg",
        "recordings",
        "A recording's first-frame thumbnail",
        thumbnail,
    );
}

/// One object seen in a recording, as SpectraX lists them.
#[derive(Serialize)]
struct WireObject {
    class: String,
    label: String,
    confidence: f32,
    /// Pixels of the recording, `[x1, y1, x2, y2]`.
    bbox: [f32; 4],
    /// Normalised, `[x1, y1, x2, y2]`.
    #[serde(rename = "box")]
    norm_box: [f32; 4],
    tracker_id: Option<u64>,
}

/// A recording as the API returns it: SpectraX's fields and Vigil's.
#[derive(Serialize)]
struct WireRecording {
    id: String,
    camera: String,
    stream_id: String,
    stream_name: String,
    kind: &'static str,
    timestamp: String,
    start_time: String,
    end_time: String,
    duration: f64,
    size_bytes: u64,
    codec: String,
    width: u32,
    height: u32,
    frames: u32,
    file_path: Option<String>,
    objects_detected: Vec<WireObject>,
    confidence: f32,
    retained: u8,
    tracker_ids: Option<String>,
    event_ids: Vec<String>,
    file_url: String,
    #[serde(rename = "mediaUrl")]
    media_url: String,
    thumbnail_path: Option<String>,
    thumbnail_url: Option<String>,
    #[serde(rename = "thumbnailMediaUrl")]
    thumbnail_media_url: Option<String>,
    sprite_url: Option<String>,
}

fn wire(r: &Recording, ctx: &Ctx) -> WireRecording {
    let id = r.id.to_string();
    let (w, h) = (r.width as f32, r.height as f32);
    let rel = r.path.strip_prefix("recordings/").unwrap_or(&r.path);
    let trackers = r.tracker_ids();
    let abs = |p: &str| {
        ctx.state
            .data_dir()
            .map(|d| d.join(p).display().to_string())
    };
    let thumb = r
        .thumbnail_path
        .as_ref()
        .map(|_| format!("/api/recordings/{id}/thumbnail.jpg"));
    WireRecording {
        camera: r.camera.to_string(),
        stream_id: r.camera.to_string(),
        stream_name: r.camera.to_string(),
        kind: r.kind.as_str(),
        timestamp: r.start_time.to_string(),
        start_time: r.start_time.to_string(),
        end_time: r.end_time.to_string(),
        duration: r.duration_us() as f64 / 1e6,
        size_bytes: r.size_bytes,
        codec: r.codec.clone(),
        width: r.width,
        height: r.height,
        frames: r.frames,
        file_path: abs(&r.path),
        objects_detected: r
            .objects
            .iter()
            .map(|o| WireObject {
                class: o.label.clone(),
                label: o.label.clone(),
                confidence: o.score,
                bbox: [o.bbox.x1 * w, o.bbox.y1 * h, o.bbox.x2 * w, o.bbox.y2 * h],
                norm_box: xyxy(&o.bbox),
                tracker_id: o.tracker_id,
            })
            .collect(),
        confidence: r.max_score(),
        retained: u8::from(r.retained),
        tracker_ids: (!trackers.is_empty()).then(|| {
            let ids: Vec<String> = trackers.iter().map(u64::to_string).collect();
            format!("[{}]", ids.join(", "))
        }),
        event_ids: r.event_ids.iter().map(ToString::to_string).collect(),
        file_url: format!("/recordings/{rel}"),
        media_url: format!("/api/recordings/file/{rel}"),
        thumbnail_path: r.thumbnail_path.as_deref().and_then(abs),
        thumbnail_media_url: thumb.clone(),
        thumbnail_url: thumb,
        sprite_url: r
            .sprite_path
            .as_ref()
            .map(|_| format!("/sprite?video_path={}", r.path)),
        id,
    }
}

fn recording_query(pairs: &[(String, String)]) -> Result<Query<RecordingFilter>, ApiError> {
    let mut q = Query::new(RecordingFilter::default());
    q.page = PageRequest::default();
    for (k, v) in pairs {
        let k = k.as_str();
        let f = &mut q.filter;
        match k {
            "camera" | "cameras" | "stream_id" | "stream_name" | "camera_id" => {
                f.cameras.extend(cameras(k, v)?)
            }
            "label" | "labels" | "object_type" => f.labels.extend(list(v)),
            "tracker_id" | "tracker_ids" => {
                for t in list(v) {
                    f.tracker_ids.push(number(k, &t)?);
                }
            }
            "kind" | "kinds" => {
                for kind in list(v) {
                    f.kinds.push(match kind.as_str() {
                        "continuous" => RecordingKind::Continuous,
                        "event" => RecordingKind::Event,
                        "clip" => RecordingKind::Clip,
                        _ => {
                            return Err(ApiError::query(
                                k,
                                format!("must be continuous, event or clip, got {kind:?}"),
                            ))
                        }
                    });
                }
            }
            "after" | "start_date" => f.time.after = Some(time(k, v)?),
            "before" | "end_date" => f.time.before = Some(end_of(k, v)?),
            "min_confidence" | "min_score" => f.min_score = Some(score(k, v)?),
            "retained" => f.retained = Some(flag(k, v)?),
            "event_id" => {
                f.event_id = Some(
                    v.parse()
                        .map_err(|_| ApiError::query(k, format!("{v:?} is not an event id")))?,
                )
            }
            "limit" => q.page.limit = limit(k, v, vigil_core::query::MAX_PAGE_LIMIT)?,
            "offset" => q.page.offset = number(k, v)?,
            "cursor" => q.page.cursor = Some(v.clone()),
            "sort_by" => q.sort = sort_by(k, v)?,
            "sort_order" => q.order = order(k, v)?,
            _ => {}
        }
    }
    q.page.with_total = true;
    Ok(q)
}

/// An end date: a bare date (`2025-10-12`, as SpectraX's examples give it) means the whole
/// day, so it ends at the next midnight.
fn end_of(name: &str, v: &str) -> Result<vigil_core::Timestamp, ApiError> {
    let t = time(name, v)?;
    if v.trim().parse::<jiff::civil::Date>().is_ok() {
        return Ok(t.saturating_add(std::time::Duration::from_secs(86_400)));
    }
    Ok(t)
}

async fn list_recordings(ctx: Ctx) -> Reply {
    let q = recording_query(&ctx.query_pairs())?;
    let page = ctx.state.store().recordings(&q).await?;
    envelope("recordings", &page, &q.page, |r| wire(r, &ctx)).reply()
}

async fn stats(ctx: Ctx) -> Reply {
    let s = ctx.state.store().recording_stats(10).await?;
    let secs = |us: i64| us as f64 / 1e6;
    let by_camera: serde_json::Map<String, serde_json::Value> = s
        .by_camera
        .iter()
        .map(|(c, st)| {
            (
                c.to_string(),
                serde_json::json!({
                    "count": st.count,
                    "duration_seconds": secs(st.duration_us),
                    "size_bytes": st.size_bytes,
                }),
            )
        })
        .collect();
    ok(&serde_json::json!({
        "total_recordings": s.total.count,
        "total_duration_seconds": secs(s.total.duration_us),
        "total_size_bytes": s.total.size_bytes,
        "total_size_gb": (s.total.size_bytes as f64 / 1e9 * 100.0).round() / 100.0,
        "oldest_recording": s.oldest.map(|t| t.to_string()),
        "newest_recording": s.newest.map(|t| t.to_string()),
        "objects": s.objects,
        "trackers": {
            "total_unique_ids": s.unique_tracker_ids,
            "most_frequent": s.most_frequent_trackers.iter()
                .map(|(id, n)| serde_json::json!({"tracker_id": id, "appearances": n}))
                .collect::<Vec<_>>(),
        },
        "by_camera": by_camera,
    }))
}

async fn recording_of(ctx: &Ctx) -> Result<Recording, ApiError> {
    let id: RecordingId = ctx.param_as("id")?;
    ctx.state
        .store()
        .recording(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("recording {id} not found")))
}

async fn get_recording(ctx: Ctx) -> Reply {
    let r = recording_of(&ctx).await?;
    ok(&wire(&r, &ctx))
}

/// Serves `rel` (relative to the data directory) when the store knows it as a recording's
/// file: nothing else under the data directory can be reached this way.
async fn serve_known(ctx: &Ctx, rel: &str) -> Reply {
    let dir = ctx.state.need_data_dir()?;
    file(&dir.join(rel), content_type_of(rel), &ctx.headers).await
}

async fn download(ctx: Ctx) -> Reply {
    let p = ctx.param("path");
    let rel = format!("recordings/{p}");
    match ctx.state.store().recording_by_path(&rel).await? {
        Some(r) => serve_known(&ctx, &r.path).await,
        None => Err(ApiError::not_found(format!("no recording {p:?}"))),
    }
}

async fn download_by_id(ctx: Ctx) -> Reply {
    let r = recording_of(&ctx).await?;
    serve_known(&ctx, &r.path).await
}

async fn thumbnail(ctx: Ctx) -> Reply {
    let r = recording_of(&ctx).await?;
    match &r.thumbnail_path {
        Some(p) => serve_known(&ctx, p).await,
        None => Err(ApiError::not_found(format!(
            "recording {} has no thumbnail",
            r.id
        ))),
    }
}

/// picam's routes that name a recording by its file path (absolute, or relative to the media
/// directory): its thumbnail and its hover-scrub sprite sheet.
pub(super) fn picam_routes(r: &mut Router) {
    r.add(
        GET,
        "/thumbnail",
        "recordings",
        "A recording's thumbnail, by ?video_path= (picam)",
        picam_thumbnail,
    );
    r.add(
        GET,
        "/sprite",
        "recordings",
        "A recording's sprite sheet, by ?video_path= (picam)",
        picam_sprite,
    );
    r.add(
        GET,
        "/archive/new_count",
        "recordings",
        "Recordings and snapshots made after ?since= (picam)",
        new_count,
    );
}

async fn by_video_path(ctx: &Ctx) -> Result<Recording, ApiError> {
    let given = ctx.required_query("video_path")?;
    let rel = match (ctx.state.data_dir(), std::path::Path::new(&given)) {
        (Some(d), p) if p.is_absolute() => p
            .strip_prefix(d)
            .ok()
            .and_then(|r| r.to_str())
            .map(str::to_owned),
        (_, p) => p.to_str().map(str::to_owned),
    };
    let found = match rel {
        Some(rel) => ctx.state.store().recording_by_path(&rel).await?,
        None => None,
    };
    found.ok_or_else(|| ApiError::not_found(format!("no recording {given:?}")))
}

async fn cached(ctx: &Ctx, rel: &str) -> Reply {
    let mut r = serve_known(ctx, rel).await?;
    r.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("max-age=86400"),
    );
    Ok(r)
}

async fn picam_thumbnail(ctx: Ctx) -> Reply {
    let r = by_video_path(&ctx).await?;
    match &r.thumbnail_path {
        Some(p) => cached(&ctx, p).await,
        None => Err(ApiError::not_found(format!(
            "recording {} has no thumbnail",
            r.id
        ))),
    }
}

async fn picam_sprite(ctx: Ctx) -> Reply {
    let r = by_video_path(&ctx).await?;
    match &r.sprite_path {
        Some(p) => cached(&ctx, p).await,
        None => Err(ApiError::not_found(format!(
            "recording {} has no sprite sheet",
            r.id
        ))),
    }
}

/// picam: 0 when `since` is missing or not a time (not an error).
async fn new_count(ctx: Ctx) -> Reply {
    let Some(since) = ctx
        .query_value("since")
        .and_then(|s| vigil_core::Timestamp::parse(&s).ok())
    else {
        return ok(&serde_json::json!({"count": 0}));
    };
    let after = vigil_core::Timestamp(since.0.saturating_add(1));
    let mut q = Query::new(RecordingFilter::default());
    q.filter.time.after = Some(after);
    q.page = PageRequest {
        limit: 1,
        with_total: true,
        ..PageRequest::default()
    };
    let recordings = ctx.state.store().recordings(&q).await?.total.unwrap_or(0);
    let mut sq = Query::new(vigil_core::SnapshotFilter::default());
    sq.filter.time.after = Some(after);
    sq.page = q.page.clone();
    let snapshots = ctx.state.store().snapshots(&sq).await?.total.unwrap_or(0);
    let mut tq = Query::new(vigil_core::TimelapseFilter::default());
    tq.filter.time.after = Some(after);
    tq.page = q.page.clone();
    let timelapse = ctx
        .state
        .store()
        .timelapse_frames(&tq)
        .await?
        .total
        .unwrap_or(0);
    ok(&serde_json::json!({
        "count": recordings + snapshots + timelapse,
        "recordings": recordings,
        "snapshots": snapshots,
        "timelapse": timelapse,
    }))
}
