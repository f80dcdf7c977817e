//! Detections: the list with HSI's filters, one detection.

use serde::Serialize;
use vigil_core::{Detection, DetectionFilter, DetectionId, PageRequest, Query};

use super::events::xyxy;
use super::{cameras, envelope, limit, list, number, order, score, time, GET};
use crate::error::ApiError;
use crate::reply::{ok, Reply};
use crate::router::{Ctx, Router};

pub(super) fn routes(r: &mut Router) {
    r.add(
        GET,
        "/api/detections",
        "detections",
        "List detections (filters, cursor pages)",
        list_detections,
    );
    r.add(
        GET,
        "/api/detections/{id}",
        "detections",
        "One detection",
        get_detection,
    );
}

/// A detection as the API returns it (HSI's fields; `class`/`confidence` as SpectraX names
/// them too).
#[derive(Serialize)]
pub(crate) struct WireDetection {
    id: String,
    camera: String,
    camera_id: String,
    detected_at: String,
    label: String,
    object_type: String,
    score: f32,
    confidence: f32,
    #[serde(rename = "box")]
    bbox: [f32; 4],
    tracker_id: Option<u64>,
    event_id: Option<String>,
    image_url: String,
    thumbnail_url: String,
}

impl From<&Detection> for WireDetection {
    fn from(d: &Detection) -> Self {
        let id = d.id.to_string();
        WireDetection {
            camera: d.camera.to_string(),
            camera_id: d.camera.to_string(),
            detected_at: d.time.to_string(),
            label: d.label.clone(),
            object_type: d.label.clone(),
            score: d.score,
            confidence: d.score,
            bbox: xyxy(&d.bbox),
            tracker_id: d.tracker_id,
            event_id: d.event_id.map(|e| e.to_string()),
            image_url: format!("/api/detections/{id}/image"),
            thumbnail_url: format!("/api/detections/{id}/image"),
            id,
        }
    }
}

fn detection_query(pairs: &[(String, String)]) -> Result<Query<DetectionFilter>, ApiError> {
    let mut q = Query::new(DetectionFilter::default());
    q.page = PageRequest::default();
    for (k, v) in pairs {
        let k = k.as_str();
        let f = &mut q.filter;
        match k {
            "camera" | "cameras" | "camera_id" => f.cameras.extend(cameras(k, v)?),
            "label" | "labels" | "object_type" => f.labels.extend(list(v)),
            "event_id" => {
                f.event_id = Some(
                    v.parse()
                        .map_err(|_| ApiError::query(k, format!("{v:?} is not an event id")))?,
                )
            }
            "tracker_id" | "tracker_ids" => {
                for t in list(v) {
                    f.tracker_ids.push(number(k, &t)?);
                }
            }
            "after" | "start_date" => f.time.after = Some(time(k, v)?),
            "before" | "end_date" => f.time.before = Some(time(k, v)?),
            "min_score" | "min_confidence" => f.min_score = Some(score(k, v)?),
            "limit" => q.page.limit = limit(k, v, vigil_core::query::MAX_PAGE_LIMIT)?,
            "offset" => q.page.offset = number(k, v)?,
            "cursor" => q.page.cursor = Some(v.clone()),
            "sort_order" | "order" => q.order = order(k, v)?,
            _ => {}
        }
    }
    q.page.with_total = true;
    Ok(q)
}

async fn list_detections(ctx: Ctx) -> Reply {
    let q = detection_query(&ctx.query_pairs())?;
    let page = ctx.state.store().detections(&q).await?;
    envelope("detections", &page, &q.page, WireDetection::from).reply()
}

/// The detection named by the path, or 404.
pub(crate) async fn detection_of(ctx: &Ctx) -> Result<Detection, ApiError> {
    let id: DetectionId = ctx.param_as("id")?;
    ctx.state
        .store()
        .detection(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("detection {id} not found")))
}

async fn get_detection(ctx: Ctx) -> Reply {
    ok(&WireDetection::from(&detection_of(&ctx).await?))
}
