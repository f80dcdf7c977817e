//! Route handlers and the JSON wire format of what they return.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{header, Response, StatusCode};
use serde::Serialize;
use vigil_core::{
    CameraId, Error, Event, EventFilter, Order, PageRequest, Query, Result, ReviewStatus, SortBy,
    Timestamp,
};

use crate::{AppState, Body, Route, API_VERSION};

pub(crate) fn json(status: StatusCode, v: &impl Serialize) -> Response<Body> {
    let body =
        serde_json::to_vec(v).unwrap_or_else(|_| b"{\"detail\":\"encoding failed\"}".to_vec());
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}

fn text(status: StatusCode, s: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(s.to_owned())))
        .unwrap_or_default()
}

pub(crate) async fn dispatch(
    state: &AppState,
    route: Route,
    query: &str,
) -> Result<Response<Body>> {
    match route {
        Route::Health => Ok(json(
            StatusCode::OK,
            &serde_json::json!({"status": "ok", "uptime_seconds": state.started.elapsed().as_secs()}),
        )),
        Route::Ready => {
            state.store.max_id().await?;
            Ok(json(
                StatusCode::OK,
                &serde_json::json!({"status": "ready"}),
            ))
        }
        Route::Version => Ok(text(StatusCode::OK, API_VERSION)),
        Route::Events => events(state, query).await,
        Route::Event(id) => match state.store.event(id).await? {
            Some(e) => Ok(json(StatusCode::OK, &WireEvent::from(&e))),
            None => Err(Error::not_found(format!("event {id} not found"))),
        },
        Route::MethodNotAllowed => Ok(json(
            StatusCode::METHOD_NOT_ALLOWED,
            &serde_json::json!({"detail": "method not allowed"}),
        )),
        Route::NotFound => Err(Error::not_found("no such endpoint")),
    }
}

/// An event as the canonical API returns it.
#[derive(Serialize)]
struct WireEvent {
    id: String,
    camera: String,
    label: String,
    sub_label: Option<String>,
    score: f32,
    top_score: f32,
    start_time: String,
    end_time: Option<String>,
    zones: Vec<String>,
    has_clip: bool,
    has_snapshot: bool,
    retain_indefinitely: bool,
    reviewed: bool,
    notes: Option<String>,
}

impl From<&Event> for WireEvent {
    fn from(e: &Event) -> Self {
        WireEvent {
            id: e.id.to_string(),
            camera: e.camera.to_string(),
            label: e.label.clone(),
            sub_label: e.sub_label.clone(),
            score: e.score,
            top_score: e.top_score,
            start_time: e.start_time.to_string(),
            end_time: e.end_time.map(|t| t.to_string()),
            zones: e.zones.clone(),
            has_clip: e.has_clip,
            has_snapshot: e.has_snapshot,
            retain_indefinitely: e.retain,
            reviewed: e.review == ReviewStatus::Reviewed,
            notes: e.notes.clone(),
        }
    }
}

fn list(v: &str) -> impl Iterator<Item = String> + '_ {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn time(name: &str, v: &str) -> Result<Timestamp> {
    match v.parse::<f64>() {
        Ok(secs) => Timestamp::from_secs_f64(secs),
        Err(_) => Timestamp::parse(v),
    }
    .map_err(|e| Error::invalid(format!("{name}: {}", e.message())))
}

fn flag(name: &str, v: &str) -> Result<bool> {
    match v {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(Error::invalid(format!("{name} must be 0 or 1, got {v:?}"))),
    }
}

fn number<T: std::str::FromStr>(name: &str, v: &str) -> Result<T> {
    v.parse()
        .map_err(|_| Error::invalid(format!("{name} must be a number, got {v:?}")))
}

/// Parses the event list parameters of the Frigate and HSI documents.
fn event_query(query: &str) -> Result<Query<EventFilter>> {
    let mut q = Query::new(EventFilter::default());
    q.page = PageRequest::default();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        let f = &mut q.filter;
        match k.as_ref() {
            "camera" | "cameras" | "camera_id" => {
                for c in list(&v) {
                    f.cameras.push(CameraId::new(c)?);
                }
            }
            "label" | "labels" | "object_type" => f.labels.extend(list(&v)),
            "sub_label" | "sub_labels" => f.sub_labels.extend(list(&v)),
            "zone" | "zones" => f.zones.extend(list(&v)),
            "after" | "start_date" => f.time.after = Some(time(&k, &v)?),
            "before" | "end_date" => f.time.before = Some(time(&k, &v)?),
            "has_clip" => f.has_clip = Some(flag(&k, &v)?),
            "has_snapshot" => f.has_snapshot = Some(flag(&k, &v)?),
            "favorites" => f.retain = flag(&k, &v)?.then_some(true),
            "reviewed" => {
                f.review = Some(if flag(&k, &v)? {
                    ReviewStatus::Reviewed
                } else {
                    ReviewStatus::Unreviewed
                })
            }
            "min_score" | "min_confidence" => f.min_score = Some(number(&k, &v)?),
            "q" | "search" => f.text = Some(v.into_owned()),
            "limit" => q.page.limit = number(&k, &v)?,
            "offset" => q.page.offset = number(&k, &v)?,
            "cursor" => q.page.cursor = Some(v.into_owned()),
            "sort_by" => {
                q.sort = match v.as_ref() {
                    "timestamp" | "start_time" | "time" => SortBy::Time,
                    "confidence" | "score" => SortBy::Score,
                    "duration" => SortBy::Duration,
                    _ => {
                        return Err(Error::invalid(format!(
                            "sort_by {v:?} is not timestamp, confidence or duration"
                        )))
                    }
                }
            }
            "sort_order" => {
                q.order = match v.as_ref() {
                    "asc" => Order::Asc,
                    "desc" => Order::Desc,
                    _ => {
                        return Err(Error::invalid(format!(
                            "sort_order {v:?} is not asc or desc"
                        )))
                    }
                }
            }
            _ => {} // Unknown parameters are ignored, as the documents' servers do.
        }
    }
    q.page.with_total = true;
    Ok(q)
}

async fn events(state: &AppState, query: &str) -> Result<Response<Body>> {
    let q = event_query(query)?;
    let page = state.store.events(&q).await?;
    let items: Vec<WireEvent> = page.items.iter().map(WireEvent::from).collect();
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "events": items,
            "count": page.total,
            "limit": q.page.limit,
            "offset": q.page.offset,
            "next_cursor": page.next_cursor,
            "has_more": page.has_more,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_query_aliases_and_errors() {
        let q = event_query("cameras=front,back&label=person&after=1700000000&has_clip=1&limit=5")
            .unwrap();
        assert_eq!(q.filter.cameras.len(), 2);
        assert_eq!(q.filter.labels, ["person"]);
        assert_eq!(
            q.filter.time.after,
            Some(Timestamp::from_secs(1_700_000_000))
        );
        assert_eq!(q.filter.has_clip, Some(true));
        assert_eq!(q.page.limit, 5);
        let q = event_query("start_date=2025-12-23T00:00:00Z&sort_by=confidence&sort_order=asc")
            .unwrap();
        assert_eq!(q.sort, SortBy::Score);
        assert_eq!(q.order, Order::Asc);
        for bad in [
            "has_clip=2",
            "limit=x",
            "camera=a/b",
            "after=soon",
            "sort_by=size",
        ] {
            assert!(event_query(bad).is_err(), "{bad}");
        }
    }
}
