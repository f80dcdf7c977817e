//! Events: the list with the filters of the Frigate and HSI documents, stats, summary, search,
//! CSV export, one event, its review status and retention, its detections.

use hyper::StatusCode;
use serde::{Deserialize, Serialize};
use vigil_core::{
    BBox, DetectionFilter, Event, EventFilter, EventId, EventPatch, Mutation, PageRequest, Query,
    ReviewStatus, SummaryFilter, Timestamp,
};

use super::detections::WireDetection;
use super::fastjson::{key, Num, Obj};
use super::{
    cameras, envelope, flag, limit, list, order, score, sort_by, time, timezone, DELETE, GET,
    PATCH, POST,
};
use crate::error::ApiError;
use crate::reply::{bytes, empty, ok, Reply};
use crate::router::{Ctx, Router};

pub(super) fn routes(r: &mut Router) {
    r.add(
        GET,
        "/api/events",
        "events",
        "List events (filters, cursor pages)",
        list_events,
    );
    r.add(
        GET,
        "/api/events/stats",
        "events",
        "Event counts by camera, label, review status, risk",
        stats,
    );
    r.add(
        GET,
        "/api/events/summary",
        "events",
        "Events per camera, label, zones and day (Frigate)",
        summary,
    );
    r.add(
        GET,
        "/api/events/search",
        "events",
        "Full-text search over labels, sub-labels and notes",
        search,
    );
    r.add(
        GET,
        "/api/events/export",
        "events",
        "Export the filtered events as CSV",
        export,
    );
    r.add(GET, "/api/events/{id}", "events", "One event", get_event);
    r.add(
        PATCH,
        "/api/events/{id}",
        "events",
        "Set review status, notes, sub-label, retention",
        patch_event,
    );
    r.add(
        DELETE,
        "/api/events/{id}",
        "events",
        "Delete an event",
        delete_event,
    );
    r.add(
        POST,
        "/api/events/{id}/retain",
        "events",
        "Keep the event past retention (favourite)",
        retain,
    );
    r.add(
        DELETE,
        "/api/events/{id}/retain",
        "events",
        "Let retention remove the event again",
        unretain,
    );
    r.add(
        GET,
        "/api/events/{id}/detections",
        "events",
        "The detections that fed an event",
        event_detections,
    );
}

/// An event as the canonical API returns it: Frigate's fields (with `data`, which Home
/// Assistant reads) and HSI's (review status, risk, detection count).
///
/// It borrows from the event and writes ids, times and links straight into the output: the
/// events list is the API's hot path, and a page of 50 would otherwise allocate some 500 strings.
#[derive(Serialize)]
pub(crate) struct WireEvent<'a> {
    #[serde(serialize_with = "shown")]
    id: EventId,
    camera: &'a str,
    label: &'a str,
    sub_label: Option<&'a str>,
    score: f32,
    top_score: f32,
    #[serde(serialize_with = "shown")]
    start_time: Timestamp,
    #[serde(serialize_with = "shown_opt")]
    end_time: Option<Timestamp>,
    in_progress: bool,
    duration_seconds: Option<f64>,
    zones: &'a [String],
    tracker_id: Option<u64>,
    #[serde(rename = "box")]
    bbox: [f32; 4],
    has_clip: bool,
    has_snapshot: bool,
    retain_indefinitely: bool,
    reviewed: bool,
    review_status: &'static str,
    notes: Option<&'a str>,
    risk_score: Option<u8>,
    risk_level: Option<&'static str>,
    stationary: bool,
    detection_count: u32,
    thumbnail_url: Link,
    snapshot_url: Option<Link>,
    clip_url: Option<Link>,
    data: EventData,
}

/// Frigate's `data` of an event.
#[derive(Serialize)]
struct EventData {
    #[serde(rename = "box")]
    bbox: [f32; 4],
    score: f32,
    top_score: f32,
    #[serde(rename = "type")]
    kind: &'static str,
}

/// `/api/events/<id>/<file>`, written as a JSON string without an intermediate `String`.
/// The file name is written with its slash (`"/clip.mp4"`).
struct Link(EventId, &'static str);

impl std::fmt::Display for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "/api/events/{}{}", self.0, self.1)
    }
}

impl Link {
    fn write(&self, o: &mut Obj<'_>, key: &str) {
        o.link(key, "/api/events/", self.0 .0, self.1);
    }
}

impl Serialize for Link {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Serialises a value by its `Display` (ids and times are strings on the wire).
fn shown<T: std::fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

fn shown_opt<T: std::fmt::Display, S: serde::Serializer>(
    v: &Option<T>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}

pub(crate) fn xyxy(b: &BBox) -> [f32; 4] {
    [b.x1, b.y1, b.x2, b.y2]
}

/// HSI's risk levels: low under 30, medium under 60, high under 85, critical from 85.
pub(crate) fn risk_level(score: u8) -> &'static str {
    match score {
        0..=29 => "low",
        30..=59 => "medium",
        60..=84 => "high",
        _ => "critical",
    }
}

impl<'a> From<&'a Event> for WireEvent<'a> {
    fn from(e: &'a Event) -> Self {
        WireEvent {
            id: e.id,
            camera: e.camera.as_str(),
            label: &e.label,
            sub_label: e.sub_label.as_deref(),
            score: e.score,
            top_score: e.top_score,
            start_time: e.start_time,
            end_time: e.end_time,
            in_progress: e.end_time.is_none(),
            duration_seconds: duration_seconds(e),
            zones: &e.zones,
            tracker_id: e.tracker_id,
            bbox: xyxy(&e.bbox),
            has_clip: e.has_clip,
            has_snapshot: e.has_snapshot,
            retain_indefinitely: e.retain,
            reviewed: e.review == ReviewStatus::Reviewed,
            review_status: e.review.as_str(),
            notes: e.notes.as_deref(),
            risk_score: e.risk_score,
            risk_level: e.risk_score.map(risk_level),
            stationary: e.stationary,
            detection_count: e.detection_count,
            thumbnail_url: Link(e.id, "/thumbnail.jpg"),
            snapshot_url: e.has_snapshot.then_some(Link(e.id, "/snapshot.jpg")),
            clip_url: e.has_clip.then_some(Link(e.id, "/clip.mp4")),
            data: EventData {
                bbox: xyxy(&e.bbox),
                score: e.score,
                top_score: e.top_score,
                kind: "object",
            },
        }
    }
}

impl WireEvent<'_> {
    /// Appends the same JSON as `Serialize` writes, faster (see [`super::fastjson`]).
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) {
        // The box and the scores appear twice (here and in `data`): format them once.
        let bbox = self.bbox.map(Num::new);
        let (score, top) = (Num::new(self.score), Num::new(self.top_score));
        let mut o = Obj::open(out);
        o.u64_str(key!("id"), self.id.0);
        o.str(key!("camera"), self.camera);
        o.str(key!("label"), self.label);
        o.opt_str(key!("sub_label"), self.sub_label);
        o.num(key!("score"), &score);
        o.num(key!("top_score"), &top);
        o.time(key!("start_time"), self.start_time);
        o.opt_time(key!("end_time"), self.end_time);
        o.bool(key!("in_progress"), self.in_progress);
        o.opt_f64(key!("duration_seconds"), self.duration_seconds);
        o.strs(key!("zones"), self.zones);
        o.opt_u64(key!("tracker_id"), self.tracker_id);
        o.nums(key!("box"), &bbox);
        o.bool(key!("has_clip"), self.has_clip);
        o.bool(key!("has_snapshot"), self.has_snapshot);
        o.bool(key!("retain_indefinitely"), self.retain_indefinitely);
        o.bool(key!("reviewed"), self.reviewed);
        o.str(key!("review_status"), self.review_status);
        o.opt_str(key!("notes"), self.notes);
        o.opt_u64(key!("risk_score"), self.risk_score.map(u64::from));
        o.opt_str(key!("risk_level"), self.risk_level);
        o.bool(key!("stationary"), self.stationary);
        o.u64(key!("detection_count"), u64::from(self.detection_count));
        self.thumbnail_url.write(&mut o, key!("thumbnail_url"));
        match &self.snapshot_url {
            Some(l) => l.write(&mut o, key!("snapshot_url")),
            None => o.null(key!("snapshot_url")),
        }
        match &self.clip_url {
            Some(l) => l.write(&mut o, key!("clip_url")),
            None => o.null(key!("clip_url")),
        }
        let mut d = o.obj(key!("data"));
        d.nums(key!("box"), &bbox);
        d.num(key!("score"), &score);
        d.num(key!("top_score"), &top);
        d.str(key!("type"), self.data.kind);
        d.close();
        o.close();
    }
}

/// How long the event lasted, in seconds; `None` while it is in progress.
fn duration_seconds(e: &Event) -> Option<f64> {
    e.end_time.map(|end| (end.0 - e.start_time.0) as f64 / 1e6)
}

/// Parses the event list parameters of the Frigate and HSI documents (names of both accepted).
pub(super) fn event_query(pairs: &[(String, String)]) -> Result<Query<EventFilter>, ApiError> {
    let mut q = Query::new(EventFilter::default());
    q.page = PageRequest::default();
    for (k, v) in pairs {
        let f = &mut q.filter;
        let k = k.as_str();
        match k {
            "camera" | "cameras" | "camera_id" => f.cameras.extend(cameras(k, v)?),
            "label" | "labels" | "object_type" => f.labels.extend(list(v)),
            "sub_label" | "sub_labels" => f.sub_labels.extend(list(v)),
            "zone" | "zones" => f.zones.extend(list(v)),
            "after" | "start_date" | "start_time" => f.time.after = Some(time(k, v)?),
            "before" | "end_date" | "end_time" => f.time.before = Some(time(k, v)?),
            "has_clip" => f.has_clip = Some(flag(k, v)?),
            "has_snapshot" => f.has_snapshot = Some(flag(k, v)?),
            "favorites" => f.retain = flag(k, v)?.then_some(true),
            "retained" | "retain" => f.retain = Some(flag(k, v)?),
            "in_progress" => f.in_progress = Some(flag(k, v)?),
            "reviewed" => {
                f.review = Some(if flag(k, v)? {
                    ReviewStatus::Reviewed
                } else {
                    ReviewStatus::Unreviewed
                })
            }
            "review_status" => {
                f.review = Some(match v.as_str() {
                    "reviewed" => ReviewStatus::Reviewed,
                    "unreviewed" => ReviewStatus::Unreviewed,
                    _ => {
                        return Err(ApiError::query(
                            k,
                            format!("must be reviewed or unreviewed, got {v:?}"),
                        ))
                    }
                })
            }
            "min_score" | "min_confidence" => f.min_score = Some(score(k, v)?),
            "q" | "search" => f.text = Some(v.clone()),
            "limit" => q.page.limit = limit(k, v, vigil_core::query::MAX_PAGE_LIMIT)?,
            "offset" => q.page.offset = super::number(k, v)?,
            "cursor" => q.page.cursor = Some(v.clone()),
            "sort_by" | "sort" => q.sort = sort_by(k, v)?,
            "sort_order" | "order" => q.order = order(k, v)?,
            // Unknown parameters are ignored, as the documents' servers do (Home Assistant
            // sends `include_thumbnails`).
            _ => {}
        }
    }
    q.page.with_total = true;
    Ok(q)
}

async fn list_events(ctx: Ctx) -> Reply {
    let q = event_query(&ctx.query_pairs())?;
    let page = ctx.state.store().events(&q).await?;
    envelope("events", &page, &q.page, WireEvent::from)
        .reply_fast(|e, out| WireEvent::from(e).write_json(out))
}

async fn search(ctx: Ctx) -> Reply {
    let pairs = ctx.query_pairs();
    let q = event_query(&pairs)?;
    let Some(text) = q.filter.text.clone() else {
        return Err(ApiError::field(
            vec!["query".into(), "q".into()],
            "the search words are required",
            "missing",
        ));
    };
    let page = ctx.state.store().events(&q).await?;
    let mut v = super::value_of(&envelope("results", &page, &q.page, WireEvent::from));
    v["query"] = serde_json::json!(text);
    v["total_count"] = serde_json::json!(page.total);
    ok(&v)
}

async fn stats(ctx: Ctx) -> Reply {
    let counts = ctx.state.store().event_counts().await?;
    ok(&serde_json::json!({
        "total_events": counts.total,
        "events_by_camera": counts.by_camera,
        "events_by_label": counts.by_label,
        "events_by_review_status": counts.by_review,
        "unreviewed": counts.by_review.get("unreviewed").copied().unwrap_or(0),
        "reviewed": counts.by_review.get("reviewed").copied().unwrap_or(0),
    }))
}

async fn summary(ctx: Ctx) -> Reply {
    let mut f = SummaryFilter::default();
    let mut tz = jiff::tz::TimeZone::UTC;
    let (mut has_clip, mut has_snapshot) = (None, None);
    for (k, v) in ctx.query_pairs() {
        let k = k.as_str();
        match k {
            "camera" | "cameras" => f.cameras.extend(cameras(k, &v)?),
            "label" | "labels" => f.labels.extend(list(&v)),
            "after" => f.time.after = Some(time(k, &v)?),
            "before" => f.time.before = Some(time(k, &v)?),
            "timezone" | "tz" => tz = timezone(k, &v)?,
            "has_clip" => has_clip = Some(flag(k, &v)?),
            "has_snapshot" => has_snapshot = Some(flag(k, &v)?),
            _ => {}
        }
    }
    let rows = ctx.state.store().events_summary(&f, &tz).await?;
    let out: Vec<serde_json::Value> = rows
        .iter()
        .filter_map(|r| {
            // With has_clip=1 only the events with a clip count (Home Assistant asks so).
            let count = match (has_clip, has_snapshot) {
                (Some(true), _) => r.with_clip,
                (_, Some(true)) => r.with_snapshot,
                (Some(false), _) => r.count - r.with_clip,
                (_, Some(false)) => r.count - r.with_snapshot,
                _ => r.count,
            };
            (count > 0).then(|| {
                serde_json::json!({
                    "camera": r.camera,
                    "label": r.label,
                    "sub_label": null,
                    "zones": r.zones,
                    "day": r.day.to_string(),
                    "count": count,
                    "with_clip": r.with_clip,
                    "with_snapshot": r.with_snapshot,
                    "reviewed": r.reviewed,
                })
            })
        })
        .collect();
    ok(&out)
}

/// One CSV field, quoted when it needs to be; a leading `=`, `+`, `-` or `@` is prefixed with
/// `'` so that a spreadsheet does not run it as a formula.
fn csv_field(out: &mut String, s: &str) {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(&s);
    }
}

async fn export(ctx: Ctx) -> Reply {
    let mut q = event_query(&ctx.query_pairs())?;
    q.page.with_total = false;
    q.page.limit = vigil_core::query::MAX_PAGE_LIMIT;
    let mut out = String::from(
        "id,camera,label,sub_label,start_time,end_time,duration_seconds,top_score,zones,\
         has_clip,has_snapshot,review_status,risk_score,notes\n",
    );
    // Every matching event, page by page (an export is not limited to one page).
    loop {
        let page = ctx.state.store().events(&q).await?;
        for e in &page.items {
            let fields = [
                e.id.to_string(),
                e.camera.to_string(),
                e.label.clone(),
                e.sub_label.clone().unwrap_or_default(),
                e.start_time.to_string(),
                e.end_time.map(|t| t.to_string()).unwrap_or_default(),
                duration_seconds(e)
                    .map(|d| format!("{d:.3}"))
                    .unwrap_or_default(),
                format!("{:.4}", e.top_score),
                e.zones.join(";"),
                e.has_clip.to_string(),
                e.has_snapshot.to_string(),
                e.review.as_str().to_owned(),
                e.risk_score.map(|r| r.to_string()).unwrap_or_default(),
                e.notes.clone().unwrap_or_default(),
            ];
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                csv_field(&mut out, f);
            }
            out.push('\n');
        }
        match page.next_cursor {
            Some(c) if page.has_more => q.page.cursor = Some(c),
            _ => break,
        }
        q.page.offset = 0;
    }
    let mut r = bytes(StatusCode::OK, "text/csv; charset=utf-8", out);
    r.headers_mut().insert(
        hyper::header::CONTENT_DISPOSITION,
        hyper::header::HeaderValue::from_static("attachment; filename=\"events.csv\""),
    );
    Ok(r)
}

/// The event named by the path, or 404.
pub(crate) async fn event_of(ctx: &Ctx) -> Result<Event, ApiError> {
    let id: EventId = ctx.param_as("id")?;
    ctx.state
        .store()
        .event(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("event {id} not found")))
}

async fn get_event(ctx: Ctx) -> Reply {
    ok(&WireEvent::from(&event_of(&ctx).await?))
}

/// What PATCH may change.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    reviewed: Option<bool>,
    review_status: Option<String>,
    notes: Option<Option<String>>,
    sub_label: Option<Option<String>>,
    retain_indefinitely: Option<bool>,
    retain: Option<bool>,
}

async fn patch_event(ctx: Ctx) -> Reply {
    let e = event_of(&ctx).await?;
    let p: PatchBody = ctx.json()?;
    let mut patch = EventPatch::new(e.id);
    patch.review = p.reviewed.map(|r| {
        if r {
            ReviewStatus::Reviewed
        } else {
            ReviewStatus::Unreviewed
        }
    });
    if let Some(s) = &p.review_status {
        patch.review = Some(match s.as_str() {
            "reviewed" => ReviewStatus::Reviewed,
            "unreviewed" => ReviewStatus::Unreviewed,
            _ => {
                return Err(ApiError::body(
                    &["review_status"],
                    format!("must be reviewed or unreviewed, got {s:?}"),
                ))
            }
        });
    }
    patch.notes = p.notes;
    patch.sub_label = p.sub_label.map(|s| s.filter(|s| !s.is_empty()));
    patch.retain = p.retain_indefinitely.or(p.retain);
    patch
        .validate()
        .map_err(|err| ApiError::body(&[], err.message()))?;
    ok(&WireEvent::from(&patched(&ctx, patch).await?))
}

/// Applies `patch` inside the store's write (the pipeline may be updating the same event), and
/// reads back the event it left.
async fn patched(ctx: &Ctx, patch: EventPatch) -> Result<Event, ApiError> {
    let id = patch.id;
    let store = ctx.state.store();
    store
        .apply(Mutation::PatchEvent(Box::new(patch)).into())
        .await?;
    store
        .event(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("event {id} not found")))
}

async fn delete_event(ctx: Ctx) -> Reply {
    let e = event_of(&ctx).await?;
    ctx.state
        .store()
        .apply(Mutation::DeleteEvent(e.id).into())
        .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn set_retain(ctx: Ctx, retain: bool) -> Reply {
    let e = event_of(&ctx).await?;
    let e = patched(
        &ctx,
        EventPatch {
            retain: Some(retain),
            ..EventPatch::new(e.id)
        },
    )
    .await?;
    let msg = if retain {
        "Event retained"
    } else {
        "Event no longer retained"
    };
    ok(&serde_json::json!({"success": true, "message": msg, "id": e.id.to_string()}))
}

async fn retain(ctx: Ctx) -> Reply {
    set_retain(ctx, true).await
}

async fn unretain(ctx: Ctx) -> Reply {
    set_retain(ctx, false).await
}

async fn event_detections(ctx: Ctx) -> Reply {
    let e = event_of(&ctx).await?;
    let mut q = Query::new(DetectionFilter {
        event_id: Some(e.id),
        ..Default::default()
    });
    q.order = vigil_core::Order::Asc;
    q.page.with_total = true;
    for (k, v) in ctx.query_pairs() {
        match k.as_str() {
            "limit" => q.page.limit = limit(&k, &v, vigil_core::query::MAX_PAGE_LIMIT)?,
            "cursor" => q.page.cursor = Some(v),
            "offset" => q.page.offset = super::number(&k, &v)?,
            _ => {}
        }
    }
    let page = ctx.state.store().detections(&q).await?;
    envelope("detections", &page, &q.page, WireDetection::from).reply()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The events list's fast writer and `Serialize` give the same JSON, for sample events and
    /// for one with every optional field set, strings to escape and a non-finite score.
    #[test]
    fn fast_writer_matches_serde() {
        let mut events = vigil_store::conformance::sample_events(200, 3);
        let mut odd = events[0].clone();
        odd.sub_label = Some("Bob \"the\" \\ \u{7}".into());
        odd.notes = Some("line\nbreak".into());
        odd.zones = vec!["yard".into(), "q\"z".into()];
        odd.risk_score = Some(91);
        odd.score = f32::NAN;
        odd.end_time = None;
        odd.tracker_id = None;
        events.push(odd);
        for e in &events {
            let mut out = Vec::new();
            WireEvent::from(e).write_json(&mut out);
            let serde = serde_json::to_vec(&WireEvent::from(e)).unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                String::from_utf8(serde).unwrap(),
                "event {}",
                e.id
            );
        }
        for offset in [0, 5] {
            let page = vigil_core::Page {
                items: events.clone(),
                next_cursor: Some("c\"1".into()),
                has_more: true,
                total: Some(4000),
            };
            let req = PageRequest {
                offset,
                ..PageRequest::default()
            };
            let env = envelope("events", &page, &req, WireEvent::from);
            let mut fast = Vec::new();
            env.write_fast(&mut fast, |e, out| WireEvent::from(e).write_json(out));
            assert_eq!(
                String::from_utf8(fast).unwrap(),
                String::from_utf8(serde_json::to_vec(&env).unwrap()).unwrap()
            );
        }
    }
    use vigil_core::Timestamp;

    fn pairs(q: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    #[test]
    fn event_query_aliases_and_errors() {
        let q = event_query(&pairs(
            "cameras=front,back&label=person&after=1700000000&has_clip=1&limit=5",
        ))
        .unwrap();
        assert_eq!(q.filter.cameras.len(), 2);
        assert_eq!(q.filter.labels, ["person"]);
        assert_eq!(
            q.filter.time.after,
            Some(Timestamp::from_secs(1_700_000_000))
        );
        assert_eq!(q.filter.has_clip, Some(true));
        assert_eq!(q.page.limit, 5);
        let q = event_query(&pairs(
            "start_date=2025-12-23T00:00:00Z&sort_by=confidence&sort_order=asc",
        ))
        .unwrap();
        assert_eq!(q.sort, vigil_core::SortBy::Score);
        assert_eq!(q.order, vigil_core::Order::Asc);
        for (bad, field) in [
            ("has_clip=2", "has_clip"),
            ("limit=x", "limit"),
            ("limit=0", "limit"),
            ("camera=a/b", "camera"),
            ("after=soon", "after"),
            ("sort_by=size", "sort_by"),
            ("min_score=2", "min_score"),
        ] {
            match event_query(&pairs(bad)) {
                Err(ApiError::Validation(f)) => {
                    assert_eq!(
                        f[0].loc,
                        vec![serde_json::json!("query"), field.into()],
                        "{bad}"
                    )
                }
                other => panic!("{bad}: {:?}", other.map(|_| ())),
            }
        }
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let mut s = String::new();
        csv_field(&mut s, "a,b");
        s.push('|');
        csv_field(&mut s, "say \"hi\"");
        s.push('|');
        csv_field(&mut s, "=cmd()");
        assert_eq!(s, "\"a,b\"|\"say \"\"hi\"\"\"|'=cmd()");
    }
}
