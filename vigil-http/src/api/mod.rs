//! The handlers, one module per family, and the table that routes to them.

mod analytics;
mod cameras;
mod detections;
mod docs;
mod events;
pub(crate) mod live;
mod logs;
mod media;
mod recordings;
mod snapshots;
pub(crate) mod system;
mod triggers;
mod unsupported;

use std::str::FromStr;

use hyper::Method;
use vigil_core::{CameraId, Timestamp};

use crate::error::ApiError;
use crate::router::Router;

/// `v` as a JSON value, with `f32`s as short as they print (`0.9`, not `0.8999999761581421`,
/// which `serde_json::to_value` makes of them).
pub(crate) fn value_of<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_string(v)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(serde_json::Value::Null)
}

/// Every route of the API.
pub(crate) fn routes() -> Router {
    let mut r = Router::new();
    system::routes(&mut r);
    cameras::routes(&mut r);
    events::routes(&mut r);
    detections::routes(&mut r);
    recordings::routes(&mut r);
    live::routes(&mut r);
    media::routes(&mut r);
    analytics::routes(&mut r);
    snapshots::routes(&mut r);
    logs::routes(&mut r);
    triggers::routes(&mut r);
    unsupported::routes(&mut r);
    docs::routes(&mut r);
    r
}

pub(crate) const GET: Method = Method::GET;
pub(crate) const POST: Method = Method::POST;
pub(crate) const PUT: Method = Method::PUT;
pub(crate) const PATCH: Method = Method::PATCH;
pub(crate) const DELETE: Method = Method::DELETE;

// --- query parameters, parsed with the parameter's name in every error

/// A comma-separated list (`cameras=a,b`), empty items dropped.
pub(crate) fn list(v: &str) -> impl Iterator<Item = String> + '_ {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Camera ids from a comma-separated list.
pub(crate) fn cameras(name: &str, v: &str) -> Result<Vec<CameraId>, ApiError> {
    list(v)
        .map(|c| CameraId::new(c).map_err(|e| ApiError::query(name, e.message())))
        .collect()
}

/// A time: epoch seconds (Frigate's `before`/`after`) or ISO 8601 (HSI's `start_date`), a
/// bare date meaning its midnight UTC.
pub(crate) fn time(name: &str, v: &str) -> Result<Timestamp, ApiError> {
    match v.parse::<f64>() {
        Ok(secs) => Timestamp::from_secs_f64(secs),
        Err(_) => Timestamp::parse(v),
    }
    .map_err(|e| ApiError::query(name, e.message()))
}

/// `0`/`1` (also `true`/`false`).
pub(crate) fn flag(name: &str, v: &str) -> Result<bool, ApiError> {
    match v {
        "1" | "true" | "True" => Ok(true),
        "0" | "false" | "False" => Ok(false),
        _ => Err(ApiError::query(name, format!("must be 0 or 1, got {v:?}"))),
    }
}

/// A number.
pub(crate) fn number<T: FromStr>(name: &str, v: &str) -> Result<T, ApiError> {
    v.trim()
        .parse()
        .map_err(|_| ApiError::query(name, format!("must be a number, got {v:?}")))
}

/// A score in `0..=1`.
pub(crate) fn score(name: &str, v: &str) -> Result<f32, ApiError> {
    let s: f32 = number(name, v)?;
    if !(0.0..=1.0).contains(&s) {
        return Err(ApiError::query(
            name,
            format!("must be within 0..=1, got {s}"),
        ));
    }
    Ok(s)
}

/// Time zone by IANA name (`Europe/Paris`), for day summaries.
pub(crate) fn timezone(name: &str, v: &str) -> Result<jiff::tz::TimeZone, ApiError> {
    jiff::tz::TimeZone::get(v)
        .map_err(|_| ApiError::query(name, format!("{v:?} is not a known time zone")))
}

/// The limit of a list: `1..=max`.
pub(crate) fn limit(name: &str, v: &str, max: u32) -> Result<u32, ApiError> {
    let n: u32 = number(name, v)?;
    if n == 0 || n > max {
        return Err(ApiError::query(
            name,
            format!("must be within 1..={max}, got {n}"),
        ));
    }
    Ok(n)
}

/// Sort order `asc` or `desc`.
pub(crate) fn order(name: &str, v: &str) -> Result<vigil_core::Order, ApiError> {
    match v {
        "asc" => Ok(vigil_core::Order::Asc),
        "desc" => Ok(vigil_core::Order::Desc),
        _ => Err(ApiError::query(
            name,
            format!("must be asc or desc, got {v:?}"),
        )),
    }
}

/// Sort field: time, score or duration, by any of the documents' names.
pub(crate) fn sort_by(name: &str, v: &str) -> Result<vigil_core::SortBy, ApiError> {
    use vigil_core::SortBy;
    match v {
        "timestamp" | "start_time" | "time" | "started_at" => Ok(SortBy::Time),
        "confidence" | "score" | "top_score" => Ok(SortBy::Score),
        "duration" => Ok(SortBy::Duration),
        _ => Err(ApiError::query(
            name,
            format!("must be timestamp, confidence or duration, got {v:?}"),
        )),
    }
}

/// A page's JSON envelope (HSI's): the items under `key`, `count` and `total` (all matches),
/// `limit`, `offset`, `next_cursor`, `has_more`, and the deprecation warning when `offset` was
/// used without a cursor.
pub(crate) fn envelope<T, W: serde::Serialize>(
    key: &str,
    page: &vigil_core::Page<T>,
    req: &vigil_core::PageRequest,
    wire: impl Fn(&T) -> W,
) -> serde_json::Value {
    let items: Vec<W> = page.items.iter().map(wire).collect();
    let mut m = serde_json::Map::new();
    m.insert(key.to_owned(), serde_json::json!(items));
    m.insert("count".into(), serde_json::json!(page.total));
    m.insert("total".into(), serde_json::json!(page.total));
    m.insert("limit".into(), serde_json::json!(req.limit));
    m.insert("offset".into(), serde_json::json!(req.offset));
    m.insert("next_cursor".into(), serde_json::json!(page.next_cursor));
    m.insert("has_more".into(), serde_json::json!(page.has_more));
    let warning = (req.offset > 0 && req.cursor.is_none()).then_some(
        "Offset pagination is deprecated: pass the next_cursor of the previous page as cursor.",
    );
    m.insert("deprecation_warning".into(), serde_json::json!(warning));
    serde_json::Value::Object(m)
}
