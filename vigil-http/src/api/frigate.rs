//! What Frigate serves and the canonical API does not, for Home Assistant's Frigate integration
//! (`../../docs/home-assistant.md` says how a user connects it):
//!
//! - under the `/frigate` prefix (the base URL the user gives Home Assistant), the events as
//!   Frigate's bare array with epoch-second times, and one event in that shape; every other
//!   path under `/frigate` is the root's (see [`crate::router::FRIGATE_PREFIX`]);
//! - at the root, because nothing there conflicts: the JWT login (`POST /api/login`), manual
//!   events (`create`, `end`), a camera's recordings and their summary by day and hour, and the
//!   HLS playlists of the media browser (`/vod/...`).
//!
//! HLS: each recorded segment (fragmented MP4) is played as its two parts, the init segment
//! (`init-<recording>.mp4`, named by `EXT-X-MAP`) and its fragments (`<recording>.m4s`), both
//! in the playlist's own directory, with a discontinuity between segments (each starts its
//! own timeline). The playlist's query string is appended to every URI in it: Home Assistant
//! signs the playlist's URL (`authSig`) and accepts a segment request only with that signature
//! and under the playlist's directory.

use std::fmt::Write as _;

use hyper::header::{HeaderValue, SET_COOKIE};
use hyper::StatusCode;
use serde::{Deserialize, Deserializer, Serialize};
use vigil_core::{
    CameraId, Event, EventFilter, EventId, Query, Recording, RecordingFilter, RecordingId,
    RecordingKind, TimeRange, Timestamp,
};

use super::events::event_query;
use super::{number, time, timezone, GET, POST, PUT};
use crate::error::ApiError;
use crate::reply::{bytes, json, ok, Reply};
use crate::router::{Ctx, Router};

pub(super) fn routes(r: &mut Router) {
    r.add(
        GET,
        "/frigate/api/events",
        "frigate",
        "Events as Frigate's array (Home Assistant's base URL is /frigate)",
        list_events,
    );
    r.add(
        GET,
        "/frigate/api/events/{id}",
        "frigate",
        "One event in Frigate's shape",
        get_event,
    );
    r.add(
        POST,
        "/api/login",
        "frigate",
        "Log in for Frigate clients: the frigate_token cookie holds a JWT",
        login,
    );
    r.add(
        POST,
        "/api/events/{id}/{label}/create",
        "frigate",
        "Open a manual event on the camera named in place of the id",
        create_event,
    );
    r.add(
        PUT,
        "/api/events/{id}/end",
        "frigate",
        "End a manual event",
        end_event,
    );
    r.add(
        GET,
        "/api/{camera}/recordings",
        "frigate",
        "A camera's recorded segments (Frigate's shape; the last hour by default)",
        camera_recordings,
    );
    r.add(
        GET,
        "/api/{camera}/recordings/summary",
        "frigate",
        "A camera's recordings by day and hour",
        recordings_summary,
    );
    r.add(
        GET,
        "/vod/{*path}",
        "frigate",
        "HLS of a time range, an event or an hour of recordings",
        vod,
    );
}

// --- events

/// An event as Frigate gives it: times in epoch seconds, the box in `data` as x, y, width,
/// height (fractions of the picture).
#[derive(Serialize)]
struct FrigateEvent<'a> {
    id: String,
    camera: &'a str,
    label: &'a str,
    sub_label: Option<&'a str>,
    start_time: f64,
    end_time: Option<f64>,
    false_positive: Option<bool>,
    zones: &'a [String],
    thumbnail: Option<String>,
    has_clip: bool,
    has_snapshot: bool,
    retain_indefinitely: bool,
    plus_id: Option<String>,
    top_score: f32,
    score: f32,
    data: FrigateData,
}

#[derive(Serialize)]
struct FrigateData {
    #[serde(rename = "box")]
    bbox: [f32; 4],
    region: [f32; 4],
    score: f32,
    top_score: f32,
    attributes: [(); 0],
    #[serde(rename = "type")]
    kind: &'static str,
}

fn frigate_event(e: &Event, thumbnail: Option<String>) -> FrigateEvent<'_> {
    let b = &e.bbox;
    let xywh = [b.x1, b.y1, b.x2 - b.x1, b.y2 - b.y1];
    FrigateEvent {
        id: e.id.to_string(),
        camera: e.camera.as_str(),
        label: &e.label,
        sub_label: e.sub_label.as_deref(),
        start_time: e.start_time.as_secs_f64(),
        end_time: e.end_time.map(Timestamp::as_secs_f64),
        false_positive: None,
        zones: &e.zones,
        thumbnail,
        has_clip: e.has_clip,
        has_snapshot: e.has_snapshot,
        retain_indefinitely: e.retain,
        plus_id: None,
        top_score: e.top_score,
        score: e.score,
        data: FrigateData {
            bbox: xywh,
            region: xywh,
            score: e.score,
            top_score: e.top_score,
            attributes: [],
            kind: "object",
        },
    }
}

/// The event's thumbnail as base64 JPEG (Frigate's `include_thumbnails=1`); `None` when it has
/// none or it is gone.
async fn thumbnail_b64(ctx: &Ctx, e: &Event) -> Option<String> {
    use base64::Engine;
    let rel = e.best.as_ref()?.thumbnail_path.as_ref()?;
    vigil_core::model::validate_relative_path(rel).ok()?;
    let data = tokio::fs::read(ctx.state.data_dir()?.join(rel))
        .await
        .ok()?;
    Some(base64::engine::general_purpose::STANDARD.encode(data))
}

async fn list_events(ctx: Ctx) -> Reply {
    let pairs = ctx.query_pairs();
    let mut q = event_query(&pairs)?;
    q.page.with_total = false;
    if !pairs.iter().any(|(k, _)| k == "limit") {
        // Frigate's default page.
        q.page.limit = 100;
    }
    let thumbnails = match pairs.iter().find(|(k, _)| k == "include_thumbnails") {
        Some((k, v)) => super::flag(k, v)?,
        None => false,
    };
    let page = ctx.state.store().events(&q).await?;
    let mut thumbs = Vec::with_capacity(page.items.len());
    for e in &page.items {
        thumbs.push(if thumbnails {
            thumbnail_b64(&ctx, e).await
        } else {
            None
        });
    }
    let out: Vec<FrigateEvent<'_>> = page
        .items
        .iter()
        .zip(thumbs)
        .map(|(e, t)| frigate_event(e, t))
        .collect();
    crate::reply::ok_sized(&out, 256 + out.len() * 512)
}

async fn get_event(ctx: Ctx) -> Reply {
    let e = super::events::event_of(&ctx).await?;
    let thumb = thumbnail_b64(&ctx, &e).await;
    ok(&frigate_event(&e, thumb))
}

/// Deserialises a field that is there (even as `null`) into `Some`: with `default`, a missing
/// field is `None`, a `null` one `Some(None)`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Frigate's body of a manual event; every field may be left out.
#[derive(Deserialize, Default)]
#[serde(default)]
struct CreateBody {
    sub_label: Option<String>,
    score: Option<f32>,
    /// Seconds; `null` keeps it open until it is ended; 30 when left out.
    #[serde(deserialize_with = "present")]
    duration: Option<Option<f64>>,
    include_recording: Option<bool>,
    /// Frigate draws the box on its snapshot; a manual event here has no snapshot.
    #[allow(dead_code)]
    draw: Option<serde_json::Value>,
}

async fn create_event(ctx: Ctx) -> Reply {
    let nvr = ctx.state.need_nvr("making events")?.clone();
    // The route shares its first segment with /api/events/{id}: here it names the camera.
    let camera = CameraId::new(ctx.param("id"))
        .map_err(|e| ApiError::path("camera", e.message().to_owned()))?;
    let label = ctx.param("label").trim().to_owned();
    if label.is_empty() || label.len() > 64 || label.chars().any(char::is_control) {
        return Err(ApiError::path(
            "label",
            "must be 1 to 64 characters, none of them control characters",
        ));
    }
    let b: CreateBody = ctx.json_or_default()?;
    let duration = match b.duration {
        None => Some(30.0),
        Some(d) => d,
    };
    let duration = match duration {
        Some(d) if !(d > 0.0 && d <= 86_400.0) => {
            return Err(ApiError::body(
                &["duration"],
                format!("must be within 0..=86400 seconds (or null), got {d}"),
            ))
        }
        d => d.map(std::time::Duration::from_secs_f64),
    };
    let score = b.score.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&score) {
        return Err(ApiError::body(
            &["score"],
            format!("must be within 0..=1, got {score}"),
        ));
    }
    if let Some(s) = &b.sub_label {
        if s.len() > 100 {
            return Err(ApiError::body(
                &["sub_label"],
                "must be at most 100 characters",
            ));
        }
    }
    let e = nvr
        .create_event(
            &camera,
            vigil_core::pipeline::ManualEvent {
                label,
                sub_label: b.sub_label.filter(|s| !s.is_empty()),
                score,
                duration,
                include_recording: b.include_recording.unwrap_or(true),
            },
        )
        .await?;
    ok(&serde_json::json!({
        "success": true,
        "message": "Successfully created event.",
        "event_id": e.id.to_string(),
    }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct EndBody {
    /// Epoch seconds; now when left out.
    end_time: Option<f64>,
}

async fn end_event(ctx: Ctx) -> Reply {
    let nvr = ctx.state.need_nvr("ending events")?.clone();
    let id: EventId = ctx.param_as("id")?;
    let b: EndBody = ctx.json_or_default()?;
    let at = b
        .end_time
        .map(Timestamp::from_secs_f64)
        .transpose()
        .map_err(|e| ApiError::body(&["end_time"], e.message().to_owned()))?;
    nvr.end_event(id, at).await?;
    ok(&serde_json::json!({"success": true, "message": "Event successfully ended."}))
}

// --- login

#[derive(Deserialize)]
struct Login {
    #[serde(alias = "username")]
    user: String,
    password: String,
}

/// Frigate's login: the token comes back as a JWT in the `frigate_token` cookie (the first and
/// only `Set-Cookie`), which Home Assistant then sends as a bearer token until its `exp`.
async fn login(ctx: Ctx) -> Reply {
    let Some(auth) = ctx.state.auth().cloned() else {
        return Err(ApiError::bad_request(
            "this server runs without authentication: no login is needed",
        ));
    };
    let b: Login = ctx.json()?;
    let issued = match auth.login(&b.user, &b.password, ctx.peer_ip()).await {
        Ok(i) => i,
        Err(e) => {
            super::accounts::audit_login(&ctx, &b.user, false).await;
            return Err(e);
        }
    };
    super::accounts::audit_login(&ctx, &b.user, true).await;
    let jwt = auth.jwt(&issued);
    let max_age = issued.view.expires_at.map_or(0, |e| {
        (e.as_secs() - issued.view.created_at.as_secs()).max(0)
    });
    let mut resp = json(
        StatusCode::OK,
        &serde_json::json!({
            "message": "Logged in",
            "username": issued.account.username,
            "role": issued.account.role,
            "expires_at": issued.view.expires_at.map(|t| t.to_string()),
        }),
    );
    let cookie = format!("frigate_token={jwt}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(SET_COOKIE, v);
    }
    Ok(resp)
}

// --- recordings

/// Most segments a list or playlist holds (a day of ten-second segments is 8,640).
const MAX_SEGMENTS: usize = 50_000;

/// The recorded segments of `camera` that overlap `start..end`, oldest first (the clips made on
/// request are left out: they repeat what the segments hold), at most [`MAX_SEGMENTS`].
async fn segments(
    ctx: &Ctx,
    camera: &CameraId,
    start: Timestamp,
    end: Timestamp,
) -> Result<Vec<Recording>, ApiError> {
    let mut out = Vec::new();
    each_segment(ctx, camera, start, end, |r| {
        out.push(r);
        out.len() < MAX_SEGMENTS
    })
    .await?;
    Ok(out)
}

/// Calls `f` with each segment [`segments`] would list, page by page, until it says stop.
async fn each_segment(
    ctx: &Ctx,
    camera: &CameraId,
    start: Timestamp,
    end: Timestamp,
    mut f: impl FnMut(Recording) -> bool,
) -> Result<(), ApiError> {
    // A segment is at most a few minutes long: one starting an hour early cannot reach in.
    let mut q = Query::new(RecordingFilter {
        cameras: vec![camera.clone()],
        kinds: vec![RecordingKind::Continuous, RecordingKind::Event],
        time: TimeRange {
            after: Some(Timestamp(start.0.saturating_sub(3_600_000_000))),
            before: Some(end),
        },
        ..Default::default()
    });
    q.order = vigil_core::Order::Asc;
    q.page.limit = vigil_core::query::MAX_PAGE_LIMIT;
    loop {
        let page = ctx.state.store().recordings(&q).await?;
        for r in page.items {
            if r.end_time > start && r.start_time < end && !f(r) {
                return Ok(());
            }
        }
        match page.next_cursor {
            Some(c) => q.page.cursor = Some(c),
            None => return Ok(()),
        }
    }
}

/// The camera of the path, which must exist.
async fn camera(ctx: &Ctx) -> Result<CameraId, ApiError> {
    Ok(super::cameras::camera_of(ctx).await?.id)
}

async fn camera_recordings(ctx: Ctx) -> Reply {
    let camera = camera(&ctx).await?;
    let now = ctx.state.now();
    let (mut after, mut before) = (
        now.saturating_sub(std::time::Duration::from_secs(3600)),
        now,
    );
    for (k, v) in ctx.query_pairs() {
        match k.as_str() {
            "after" => after = time(&k, &v)?,
            "before" => before = time(&k, &v)?,
            _ => {}
        }
    }
    let recs = segments(&ctx, &camera, after, before).await?;
    let out: Vec<serde_json::Value> = recs
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id.to_string(),
                "start_time": r.start_time.as_secs_f64(),
                "end_time": r.end_time.as_secs_f64(),
                "duration": r.duration_us() as f64 / 1e6,
                "motion": 0,
                "objects": r.objects.len(),
                "segment_size": r.size_bytes as f64 / 1e6,
            })
        })
        .collect();
    ok(&out)
}

async fn recordings_summary(ctx: Ctx) -> Reply {
    let camera = camera(&ctx).await?;
    let mut tz = jiff::tz::TimeZone::UTC;
    for (k, v) in ctx.query_pairs() {
        if k == "timezone" {
            tz = timezone(&k, &v)?;
        }
    }
    let mut q = Query::new(EventFilter {
        cameras: vec![camera.clone()],
        ..Default::default()
    });
    q.page.limit = vigil_core::query::MAX_PAGE_LIMIT;
    q.page.with_total = false;
    let mut events = Vec::new();
    loop {
        let page = ctx.state.store().events(&q).await?;
        events.extend(page.items.iter().map(|e| e.start_time));
        match page.next_cursor {
            Some(c) => q.page.cursor = Some(c),
            None => break,
        }
    }
    #[derive(Default)]
    struct Hour {
        duration: f64,
        objects: usize,
        events: usize,
    }
    let hour_of = |t: Timestamp| {
        t.to_jiff().map(|t| {
            let z = t.to_zoned(tz.clone());
            (z.date(), z.hour())
        })
    };
    let mut days: std::collections::BTreeMap<
        jiff::civil::Date,
        std::collections::BTreeMap<i8, Hour>,
    > = Default::default();
    // Every segment the camera has, summed as it is read.
    each_segment(&ctx, &camera, Timestamp(0), Timestamp(i64::MAX), |r| {
        if let Some((d, h)) = hour_of(r.start_time) {
            let e = days.entry(d).or_default().entry(h).or_default();
            e.duration += r.duration_us() as f64 / 1e6;
            e.objects += r.objects.len();
        }
        true
    })
    .await?;
    for t in events {
        if let Some((d, h)) = hour_of(t) {
            // Only hours that have recordings: the summary is of recordings.
            if let Some(e) = days.get_mut(&d).and_then(|hours| hours.get_mut(&h)) {
                e.events += 1;
            }
        }
    }
    let out: Vec<serde_json::Value> = days
        .iter()
        .rev()
        .map(|(day, hours)| {
            let hs: Vec<serde_json::Value> = hours
                .iter()
                .rev()
                .map(|(h, v)| {
                    serde_json::json!({
                        "hour": format!("{h:02}"),
                        "duration": v.duration.round(),
                        "events": v.events,
                        "motion": 0,
                        "objects": v.objects,
                    })
                })
                .collect();
            serde_json::json!({
                "day": day.to_string(),
                "events": hours.values().map(|h| h.events).sum::<usize>(),
                "hours": hs,
            })
        })
        .collect();
    ok(&out)
}

// --- HLS

/// What a `/vod` path names: a camera's time range, and the file asked for in its directory.
struct Vod {
    camera: CameraId,
    start: Timestamp,
    end: Timestamp,
    file: String,
}

fn vod_epoch(name: &str, v: &str) -> Result<Timestamp, ApiError> {
    let s: f64 = number(name, v).map_err(|_| ApiError::path(name, "must be epoch seconds"))?;
    Timestamp::from_secs_f64(s).map_err(|e| ApiError::path(name, e.message().to_owned()))
}

fn vod_camera(v: &str) -> Result<CameraId, ApiError> {
    CameraId::new(v).map_err(|e| ApiError::path("camera", e.message().to_owned()))
}

/// The hour `YYYY-MM/DD/HH` in `tz` (`utc`, or an IANA name with `,` for `/`), as a range.
fn vod_hour(ym: &str, day: &str, hour: &str, tz: &str) -> Result<(Timestamp, Timestamp), ApiError> {
    let bad = || {
        ApiError::path(
            "path",
            format!("{ym}/{day}/{hour} is not a YYYY-MM/DD/HH hour"),
        )
    };
    let (y, m) = ym.split_once('-').ok_or_else(bad)?;
    let y: i16 = y.parse().map_err(|_| bad())?;
    let m: i8 = m.parse().map_err(|_| bad())?;
    let d: i8 = day.parse().map_err(|_| bad())?;
    let h: i8 = hour.parse().map_err(|_| bad())?;
    let zone = if tz.eq_ignore_ascii_case("utc") {
        jiff::tz::TimeZone::UTC
    } else {
        timezone("timezone", &tz.replace(',', "/"))?
    };
    let start = jiff::civil::Date::new(y, m, d)
        .and_then(|date| Ok(date.to_datetime(jiff::civil::Time::new(h, 0, 0, 0)?)))
        .and_then(|at| at.to_zoned(zone))
        .map_err(|_| bad())?
        .timestamp();
    let start = Timestamp(start.as_microsecond());
    Ok((start, Timestamp(start.0 + 3_600_000_000)))
}

/// Reads a `/vod` path: `<camera>/start/<s>/end/<e>/<file>`, `event/<id>/<file>` (the event's
/// clip span, with the camera's pre- and post-capture) or `YYYY-MM/DD/HH/<camera>/<tz>/<file>`.
async fn vod_of(ctx: &Ctx) -> Result<Vod, ApiError> {
    let path = ctx.param("path");
    let parts: Vec<&str> = path.split('/').collect();
    let (camera, start, end, file) = match parts.as_slice() {
        ["event", id, file] => {
            let id: EventId = id
                .parse()
                .map_err(|_| ApiError::path("id", format!("{id:?} is not an event id")))?;
            let e = ctx
                .state
                .store()
                .event(id)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("event {id} not found")))?;
            let settings = ctx
                .state
                .store()
                .camera(&e.camera)
                .await?
                .map(|c| c.record)
                .unwrap_or_default();
            let (s, end) = vigil_core::pipeline::event_clip_range(&e, &settings, ctx.state.now());
            (e.camera, s, end, *file)
        }
        [camera, "start", s, "end", e, file] => (
            vod_camera(camera)?,
            vod_epoch("start", s)?,
            vod_epoch("end", e)?,
            *file,
        ),
        [ym, day, hour, camera, tz, file] => {
            let (s, e) = vod_hour(ym, day, hour, tz)?;
            (vod_camera(camera)?, s, e, *file)
        }
        _ => {
            return Err(ApiError::not_found(format!(
                "no playlist at /vod/{path}: it is <camera>/start/<s>/end/<e>/index.m3u8, \
                 event/<id>/index.m3u8 or YYYY-MM/DD/HH/<camera>/utc/index.m3u8"
            )))
        }
    };
    if end <= start {
        return Err(ApiError::path("end", "must be after start"));
    }
    if end
        .0
        .checked_sub(start.0)
        .is_none_or(|d| d > 24 * 3_600_000_000)
    {
        return Err(ApiError::path("end", "a playlist is at most 24 hours long"));
    }
    Ok(Vod {
        camera,
        start,
        end,
        file: file.to_owned(),
    })
}

async fn vod(ctx: Ctx) -> Reply {
    let v = vod_of(&ctx).await?;
    if v.file == "index.m3u8" || v.file == "master.m3u8" {
        return playlist(&ctx, &v).await;
    }
    let Some(part) = Part::parse(&v.file) else {
        return Err(ApiError::not_found(format!("no file {:?} here", v.file)));
    };
    let dir = ctx.state.need_data_dir()?.to_owned();
    let path = match part.segment {
        Segment::Recording(id) => {
            let rec = ctx
                .state
                .store()
                .recording(id)
                .await?
                .filter(|r| r.camera == v.camera)
                .ok_or_else(|| {
                    ApiError::not_found(format!("no recording {id} of camera {}", v.camera))
                })?;
            vigil_core::model::validate_relative_path(&rec.path)?;
            dir.join(&rec.path)
        }
        Segment::Open(start) => open_or_finished(&ctx, &dir, &v.camera, start).await?,
    };
    let p = path.clone();
    let (moof, complete) = tokio::task::spawn_blocking(move || vigil_core::mp4::fragments(&p))
        .await
        .map_err(|e| ApiError::Core(vigil_core::Error::internal(e.to_string())))??
        .ok_or_else(|| ApiError::not_found(format!("{:?} has no fragment yet", v.file)))?;
    let (from, to, ct) = match part.media_end {
        None => (0, moof, "video/mp4"),
        // The fragments the playlist counted (all of a finished recording's): a segment
        // still being written has more now, and once finished the same bytes there.
        Some(end) => (moof, end.min(complete), "video/iso.segment"),
    };
    crate::reply::file_part(&path, from, to, ct, &ctx.headers).await
}

/// A segment a playlist names: a finished recording, or one the recorder is still writing
/// (by its start time, in microseconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Segment {
    Recording(RecordingId),
    Open(Timestamp),
}

/// A file a playlist names: a segment's init segment (`init-<recording>.mp4`,
/// `init-open-<start>.mp4`), or its fragments (`<recording>.m4s`, and
/// `open-<start>-<end>.m4s` up to byte `end`, the fragments complete when the playlist was
/// made).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Part {
    segment: Segment,
    /// `None` for the init segment; the byte the fragments end at otherwise.
    media_end: Option<u64>,
}

impl Part {
    fn parse(file: &str) -> Option<Part> {
        let open = |s: &str| {
            s.parse::<i64>()
                .ok()
                .filter(|t| (0..i64::MAX / 2).contains(t))
                .map(Timestamp)
        };
        if let Some(stem) = file
            .strip_prefix("init-")
            .and_then(|f| f.strip_suffix(".mp4"))
        {
            let segment = match stem.strip_prefix("open-") {
                Some(t) => Segment::Open(open(t)?),
                None => Segment::Recording(stem.parse().ok()?),
            };
            return Some(Part {
                segment,
                media_end: None,
            });
        }
        let stem = file.strip_suffix(".m4s")?;
        Some(match stem.strip_prefix("open-") {
            Some(rest) => {
                let (t, end) = rest.split_once('-')?;
                Part {
                    segment: Segment::Open(open(t)?),
                    media_end: Some(end.parse().ok()?),
                }
            }
            None => Part {
                segment: Segment::Recording(stem.parse().ok()?),
                media_end: Some(u64::MAX),
            },
        })
    }
}

/// The file of `camera`'s segment that began at `start`: still open, or, once finished, its
/// recording.
async fn open_or_finished(
    ctx: &Ctx,
    dir: &std::path::Path,
    camera: &CameraId,
    start: Timestamp,
) -> Result<std::path::PathBuf, ApiError> {
    let (d, c) = (dir.to_owned(), camera.clone());
    let open = tokio::task::spawn_blocking(move || {
        vigil_core::pipeline::open_segments(&d, &c, Timestamp(start.0 + 1), Some(start))
    })
    .await
    .map_err(|e| ApiError::Core(vigil_core::Error::internal(e.to_string())))?;
    if let Some((_, p)) = open.into_iter().find(|(t, _)| *t == start) {
        return Ok(p);
    }
    let finished = segments(ctx, camera, start, Timestamp(start.0 + 1))
        .await?
        .into_iter()
        .find(|r| r.start_time == start)
        .ok_or_else(|| ApiError::not_found(format!("no segment of {camera} began at {start}")))?;
    vigil_core::model::validate_relative_path(&finished.path)?;
    Ok(dir.join(&finished.path))
}

/// The query string as it may go into a playlist's URIs (it came in a URL, so it is already
/// percent-encoded; only a quote would end the `URI="..."` attribute early).
fn carried(query: &str) -> String {
    if query.is_empty() {
        return String::new();
    }
    let mut q = String::with_capacity(query.len() + 1);
    q.push('?');
    for c in query.chars() {
        match c {
            '"' => q.push_str("%22"),
            c if c.is_control() => {}
            c => q.push(c),
        }
    }
    q
}

/// One entry of a playlist.
struct Entry {
    start: Timestamp,
    secs: f64,
    /// `init-<name>.mp4` and the fragments' file name.
    init: String,
    media: String,
}

async fn playlist(ctx: &Ctx, v: &Vod) -> Reply {
    let recs = segments(ctx, &v.camera, v.start, v.end).await?;
    let mut entries: Vec<Entry> = recs
        .iter()
        .map(|r| Entry {
            start: r.start_time,
            secs: r.duration_us().max(0) as f64 / 1e6,
            init: format!("init-{}.mp4", r.id),
            media: format!("{}.m4s", r.id),
        })
        .collect();
    // The segment being written, up to its last complete fragment: an event that just ended
    // plays at once, not when its segment is finished.
    if let Some(dir) = ctx.state.data_dir() {
        let (d, c, end) = (dir.to_owned(), v.camera.clone(), v.end);
        let after = recs.last().map(|r| r.end_time);
        let open = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            for (start, path) in vigil_core::pipeline::open_segments(&d, &c, end, after) {
                // One read for both the duration and where the complete fragments end (the
                // recorder appends meanwhile).
                let Ok(info) = vigil_core::mp4::read(&path) else {
                    continue;
                };
                let complete = info.complete_len;
                let secs = info.duration() as f64 / f64::from(vigil_core::mp4::TIMESCALE);
                if secs > 0.0 {
                    out.push(Entry {
                        start,
                        secs,
                        init: format!("init-open-{}.mp4", start.0),
                        media: format!("open-{}-{complete}.m4s", start.0),
                    });
                }
            }
            out
        })
        .await
        .unwrap_or_default();
        entries.extend(open);
    }
    let Some(first) = entries.first() else {
        return Err(ApiError::not_found(format!(
            "camera {} has no recordings from {} to {}",
            v.camera, v.start, v.end
        )));
    };
    let q = carried(&ctx.query);
    let target = entries
        .iter()
        .map(|e| e.secs)
        .fold(1.0_f64, f64::max)
        .ceil() as u64;
    let mut m = String::with_capacity(256 + entries.len() * 160);
    m.push_str("#EXTM3U\n#EXT-X-VERSION:7\n");
    let _ = writeln!(m, "#EXT-X-TARGETDURATION:{target}");
    m.push_str("#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n");
    let offset = (v.start.0 - first.start.0) as f64 / 1e6;
    if offset > 0.0 {
        // The first segment starts before the range: begin playing where it was asked.
        let _ = writeln!(m, "#EXT-X-START:TIME-OFFSET={offset:.3},PRECISE=YES");
    }
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            m.push_str("#EXT-X-DISCONTINUITY\n");
        }
        let _ = writeln!(m, "#EXT-X-MAP:URI=\"{}{q}\"", e.init);
        let _ = writeln!(m, "#EXTINF:{:.3},", e.secs);
        let _ = writeln!(m, "{}{q}", e.media);
    }
    m.push_str("#EXT-X-ENDLIST\n");
    Ok(bytes(StatusCode::OK, "application/vnd.apple.mpegurl", m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_string_goes_into_uris_whole_but_for_quotes() {
        assert_eq!(carried(""), "");
        assert_eq!(carried("authSig=a.b-c"), "?authSig=a.b-c");
        assert_eq!(carried("a=\"x\"&b=1"), "?a=%22x%22&b=1");
    }

    #[test]
    fn segment_file_names_are_read_back() {
        let rec = |n: u64| Segment::Recording(RecordingId(n));
        let part = |segment, media_end| Some(Part { segment, media_end });
        assert_eq!(Part::parse("init-17.mp4"), part(rec(17), None));
        assert_eq!(Part::parse("17.m4s"), part(rec(17), Some(u64::MAX)));
        let open = Segment::Open(Timestamp(1_700_000_000_000_000));
        assert_eq!(
            Part::parse("init-open-1700000000000000.mp4"),
            part(open, None)
        );
        assert_eq!(
            Part::parse("open-1700000000000000-5120.m4s"),
            part(open, Some(5120))
        );
        for bad in [
            "17.mp4",
            "init-x.mp4",
            "open-17.m4s",
            "open--1-5.m4s",
            "../17.m4s",
            "init-open-.mp4",
        ] {
            assert_eq!(Part::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn hours_are_read_in_their_zone() {
        let (s, e) = vod_hour("2024-01", "05", "13", "utc").unwrap();
        assert_eq!(s.to_string(), "2024-01-05T13:00:00.000000Z");
        assert_eq!(e.0 - s.0, 3_600_000_000);
        let (p, _) = vod_hour("2024-07", "05", "13", "Europe,Paris").unwrap();
        assert_eq!(p.to_string(), "2024-07-05T11:00:00.000000Z");
        assert!(vod_hour("2024", "05", "13", "utc").is_err());
        assert!(vod_hour("2024-02", "30", "13", "utc").is_err());
        assert!(vod_hour("2024-02", "01", "25", "utc").is_err());
    }
}
