//! Entities (tracked objects and their appearances), enrichment (what is known about a
//! detection beyond its box), and HSI's analytics (detection trends, object distribution,
//! camera uptime, risk history).
//!
//! An entity is one tracked object on one camera over its life: the tracker follows it and
//! the event records it, so an entity's id is its event's id and its history is the
//! detections that fed it. Vigil does not re-identify objects across cameras.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};
use vigil_core::{
    DetectionFilter, Event, EventFilter, Order, Query, RecordingFilter, SummaryFilter, TimeRange,
    Timestamp,
};

use super::detections::detection_of;
use super::events::{event_of, risk_level, xyxy};
use super::{cameras, envelope, limit, list, number, time, timezone, GET};
use crate::error::ApiError;
use crate::reply::{ok, Reply};
use crate::router::{Ctx, Router};

pub(super) fn routes(r: &mut Router) {
    r.add(
        GET,
        "/api/entities",
        "entities",
        "Tracked objects (one per tracked life), newest first",
        entities,
    );
    r.add(
        GET,
        "/api/entities/{id}",
        "entities",
        "One tracked object",
        entity,
    );
    r.add(
        GET,
        "/api/entities/{id}/history",
        "entities",
        "A tracked object's appearances, oldest first",
        entity_history,
    );
    r.add(
        GET,
        "/api/detections/{id}/enrichment",
        "enrichment",
        "What is known about a detection beyond its box",
        enrichment,
    );
    r.add(
        GET,
        "/api/events/{id}/enrichments",
        "enrichment",
        "The enrichment of every detection of an event",
        event_enrichments,
    );
    r.add(
        GET,
        "/api/analytics/detection-trends",
        "analytics",
        "Detections per day (and per camera and label)",
        detection_trends,
    );
    r.add(
        GET,
        "/api/analytics/object-distribution",
        "analytics",
        "Detections per object type",
        object_distribution,
    );
    r.add(
        GET,
        "/api/analytics/camera-uptime",
        "analytics",
        "Share of each day each camera's recordings cover",
        camera_uptime,
    );
    r.add(
        GET,
        "/api/analytics/risk-history",
        "analytics",
        "Events per day and risk level",
        risk_history,
    );
}

fn entity_json(e: &Event) -> Value {
    let id = e.id.to_string();
    json!({
        "id": id,
        "entity_type": e.label,
        "label": e.label,
        "sub_label": e.sub_label,
        "camera_id": e.camera,
        "tracker_id": e.tracker_id,
        "first_seen": e.start_time.to_string(),
        "last_seen": e.end_time.map(|t| t.to_string()),
        "in_progress": e.end_time.is_none(),
        "appearance_count": e.detection_count,
        "zones": e.zones,
        "stationary": e.stationary,
        "top_score": e.top_score,
        "event_id": id,
        "thumbnail_url": format!("/api/events/{id}/thumbnail.jpg"),
    })
}

async fn entities(ctx: Ctx) -> Reply {
    let mut q = Query::new(EventFilter::default());
    q.page.with_total = true;
    for (k, v) in ctx.query_pairs() {
        let k = k.as_str();
        match k {
            "camera" | "cameras" | "camera_id" => q.filter.cameras.extend(cameras(k, &v)?),
            "entity_type" | "label" | "labels" => q.filter.labels.extend(list(&v)),
            "after" | "since" | "start_date" => q.filter.time.after = Some(time(k, &v)?),
            "before" | "until" | "end_date" => q.filter.time.before = Some(time(k, &v)?),
            "limit" => q.page.limit = limit(k, &v, vigil_core::query::MAX_PAGE_LIMIT)?,
            "offset" => q.page.offset = number(k, &v)?,
            "cursor" => q.page.cursor = Some(v),
            _ => {}
        }
    }
    let page = ctx.state.store().events(&q).await?;
    envelope("entities", &page, &q.page, entity_json).reply()
}

async fn entity(ctx: Ctx) -> Reply {
    let e = event_of(&ctx).await?;
    ok(&entity_json(&e))
}

/// Every detection of an event, oldest first.
async fn detections_of(ctx: &Ctx, e: &Event) -> Result<Vec<vigil_core::Detection>, ApiError> {
    let mut q = Query::new(DetectionFilter {
        event_id: Some(e.id),
        ..Default::default()
    });
    q.order = Order::Asc;
    q.page.limit = vigil_core::query::MAX_PAGE_LIMIT;
    let mut out = Vec::new();
    loop {
        let page = ctx.state.store().detections(&q).await?;
        out.extend(page.items);
        match page.next_cursor {
            Some(c) if page.has_more && out.len() < 100_000 => q.page.cursor = Some(c),
            _ => break,
        }
    }
    Ok(out)
}

async fn entity_history(ctx: Ctx) -> Reply {
    let e = event_of(&ctx).await?;
    let dets = detections_of(&ctx, &e).await?;
    let appearances: Vec<Value> = dets
        .iter()
        .map(|d| {
            json!({
                "detection_id": d.id.to_string(),
                "timestamp": d.time.to_string(),
                "camera_id": d.camera,
                "score": d.score,
                "box": xyxy(&d.bbox),
            })
        })
        .collect();
    ok(&json!({
        "entity_id": e.id.to_string(),
        "entity_type": e.label,
        "appearances": appearances,
        "count": appearances.len(),
    }))
}

fn enrichment_json(d: &vigil_core::Detection, e: Option<&Event>) -> Value {
    let (w, h) = (d.bbox.x2 - d.bbox.x1, d.bbox.y2 - d.bbox.y1);
    json!({
        "detection_id": d.id.to_string(),
        "event_id": d.event_id.map(|i| i.to_string()),
        "tracker_id": d.tracker_id,
        "label": d.label,
        "score": d.score,
        "geometry": {
            "box": xyxy(&d.bbox),
            "area": d.bbox.area(),
            "aspect_ratio": if h > 0.0 { w / h } else { 0.0 },
            "bottom_center": [(d.bbox.x1 + d.bbox.x2) / 2.0, d.bbox.y2],
        },
        "track": e.map(|e| json!({
            "first_seen": e.start_time.to_string(),
            "last_seen": e.end_time.map(|t| t.to_string()),
            "zones": e.zones,
            "stationary": e.stationary,
            "sub_label": e.sub_label,
            "top_score": e.top_score,
            "risk_score": e.risk_score,
            "risk_level": e.risk_score.map(risk_level),
        })),
    })
}

async fn enrichment(ctx: Ctx) -> Reply {
    let d = detection_of(&ctx).await?;
    let e = match d.event_id {
        Some(id) => ctx.state.store().event(id).await?,
        None => None,
    };
    ok(&enrichment_json(&d, e.as_ref()))
}

async fn event_enrichments(ctx: Ctx) -> Reply {
    let e = event_of(&ctx).await?;
    let dets = detections_of(&ctx, &e).await?;
    let items: Vec<Value> = dets.iter().map(|d| enrichment_json(d, Some(&e))).collect();
    ok(&json!({"event_id": e.id.to_string(), "enrichments": items, "count": items.len()}))
}

/// The range and filters of an analytics request: `days` back from now (7 by default, at
/// most 366) unless `start_date`/`end_date` say otherwise.
fn range_of(ctx: &Ctx) -> Result<(SummaryFilter, jiff::tz::TimeZone), ApiError> {
    let mut f = SummaryFilter::default();
    let mut tz = jiff::tz::TimeZone::UTC;
    let now = ctx.state.now();
    let mut days = 7u64;
    for (k, v) in ctx.query_pairs() {
        let k = k.as_str();
        match k {
            "camera" | "cameras" | "camera_id" => f.cameras.extend(cameras(k, &v)?),
            "label" | "labels" | "object_type" => f.labels.extend(list(&v)),
            "start_date" | "after" => f.time.after = Some(time(k, &v)?),
            "end_date" | "before" => f.time.before = Some(time(k, &v)?),
            "days" => {
                days = number(k, &v)?;
                if !(1..=366).contains(&days) {
                    return Err(ApiError::query(
                        k,
                        format!("must be within 1..=366, got {days}"),
                    ));
                }
            }
            "timezone" | "tz" => tz = timezone(k, &v)?,
            _ => {}
        }
    }
    if f.time.after.is_none() {
        f.time.after = Some(now.saturating_sub(Duration::from_secs(days * 86_400)));
    }
    Ok((f, tz))
}

async fn detection_trends(ctx: Ctx) -> Reply {
    let (f, tz) = range_of(&ctx)?;
    let rows = ctx.state.store().detection_trends(&f, &tz).await?;
    let mut by_day = BTreeMap::<String, u64>::new();
    for r in &rows {
        *by_day.entry(r.day.to_string()).or_default() += r.count;
    }
    let points: Vec<Value> = by_day
        .iter()
        .map(|(d, n)| json!({"date": d, "count": n}))
        .collect();
    let detail: Vec<Value> = rows
        .iter()
        .map(|r| json!({"date": r.day.to_string(), "camera_id": r.camera, "object_type": r.label, "count": r.count}))
        .collect();
    ok(&json!({
        "data_points": points,
        "by_camera_and_label": detail,
        "total_detections": rows.iter().map(|r| r.count).sum::<u64>(),
        "start_date": f.time.after.map(|t| t.to_string()),
        "end_date": f.time.before.map(|t| t.to_string()),
    }))
}

async fn object_distribution(ctx: Ctx) -> Reply {
    let (f, tz) = range_of(&ctx)?;
    let rows = ctx.state.store().detection_trends(&f, &tz).await?;
    let mut by_label = BTreeMap::<String, u64>::new();
    for r in &rows {
        *by_label.entry(r.label.clone()).or_default() += r.count;
    }
    let total: u64 = by_label.values().sum();
    let mut types: Vec<(String, u64)> = by_label.into_iter().collect();
    types.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let items: Vec<Value> = types
        .iter()
        .map(|(l, n)| {
            let pct = if total > 0 {
                *n as f64 * 100.0 / total as f64
            } else {
                0.0
            };
            json!({"object_type": l, "count": n, "percentage": (pct * 10.0).round() / 10.0})
        })
        .collect();
    ok(&json!({"object_types": items, "total_detections": total}))
}

async fn camera_uptime(ctx: Ctx) -> Reply {
    let (f, tz) = range_of(&ctx)?;
    let now = ctx.state.now();
    let start = f.time.after.unwrap_or(now);
    let end = f.time.before.unwrap_or(now).min(now);
    let span = end.0.saturating_sub(start.0).max(1);
    let cams = ctx.state.store().cameras().await?;
    let mut out = Vec::new();
    for c in cams
        .iter()
        .filter(|c| f.cameras.is_empty() || f.cameras.contains(&c.id))
    {
        let mut q = Query::new(RecordingFilter {
            cameras: vec![c.id.clone()],
            time: TimeRange {
                after: Some(Timestamp(start.0 - 3_600_000_000)),
                before: Some(end),
            },
            ..Default::default()
        });
        q.order = Order::Asc;
        q.page.limit = vigil_core::query::MAX_PAGE_LIMIT;
        let mut covered = 0i64;
        let mut per_day = BTreeMap::<String, i64>::new();
        loop {
            let page = ctx.state.store().recordings(&q).await?;
            for r in &page.items {
                let (a, b) = (r.start_time.0.max(start.0), r.end_time.0.min(end.0));
                if b > a {
                    covered += b - a;
                    if let Some(d) = Timestamp(a).date_in(&tz) {
                        *per_day.entry(d.to_string()).or_default() += b - a;
                    }
                }
            }
            match page.next_cursor {
                Some(cur) if page.has_more => q.page.cursor = Some(cur),
                _ => break,
            }
        }
        let pct = |us: i64, of: i64| ((us as f64 * 1000.0 / of as f64).round() / 10.0).min(100.0);
        let days: Vec<Value> = per_day
            .iter()
            .map(|(d, us)| json!({"date": d, "uptime_percentage": pct(*us, 86_400_000_000)}))
            .collect();
        out.push(json!({
            "camera_id": c.id,
            "camera_name": c.name,
            "uptime_percentage": pct(covered, span),
            "recorded_seconds": covered as f64 / 1e6,
            "by_day": days,
        }));
    }
    ok(&json!({"cameras": out, "start_date": start.to_string(), "end_date": end.to_string()}))
}

async fn risk_history(ctx: Ctx) -> Reply {
    let (f, tz) = range_of(&ctx)?;
    let mut q = Query::new(EventFilter {
        cameras: f.cameras.clone(),
        labels: f.labels.clone(),
        time: f.time,
        ..Default::default()
    });
    q.page.limit = vigil_core::query::MAX_PAGE_LIMIT;
    let mut days = BTreeMap::<String, BTreeMap<&'static str, u64>>::new();
    let mut scanned = 0usize;
    loop {
        let page = ctx.state.store().events(&q).await?;
        scanned += page.items.len();
        for e in &page.items {
            let Some(d) = e.start_time.date_in(&tz) else {
                continue;
            };
            let level = e.risk_score.map(risk_level).unwrap_or("unscored");
            *days
                .entry(d.to_string())
                .or_default()
                .entry(level)
                .or_default() += 1;
        }
        match page.next_cursor {
            Some(c) if page.has_more && scanned < 1_000_000 => q.page.cursor = Some(c),
            _ => break,
        }
    }
    let points: Vec<Value> = days
        .iter()
        .map(|(d, m)| {
            json!({
                "date": d,
                "low": m.get("low").copied().unwrap_or(0),
                "medium": m.get("medium").copied().unwrap_or(0),
                "high": m.get("high").copied().unwrap_or(0),
                "critical": m.get("critical").copied().unwrap_or(0),
                "unscored": m.get("unscored").copied().unwrap_or(0),
            })
        })
        .collect();
    ok(&json!({"data_points": points}))
}
