//! The handlers, one module per family, and the table that routes to them.

mod accounts;
pub(crate) mod alerts;
mod analytics;
mod cameras;
mod detections;
mod docs;
mod events;
mod fastjson;
mod frigate;
pub(crate) mod live;
pub(crate) mod logs;
mod media;
mod media_aliases;
pub(crate) mod push;
mod recordings;
mod snapshots;
pub(crate) mod system;
mod timelapse;
mod triggers;
mod ui;
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

pub(crate) use alerts::severity_name;

/// An event as the API shows it, as a JSON value.
pub(crate) fn event_value(e: &vigil_core::Event) -> serde_json::Value {
    value_of(&events::WireEvent::from(e))
}

/// Every route of the API.
pub(crate) fn routes() -> Router {
    let mut r = Router::new();
    system::routes(&mut r);
    accounts::routes(&mut r);
    alerts::routes(&mut r);
    cameras::routes(&mut r);
    events::routes(&mut r);
    frigate::routes(&mut r);
    detections::routes(&mut r);
    recordings::routes(&mut r);
    recordings::picam_routes(&mut r);
    live::routes(&mut r);
    media::routes(&mut r);
    media_aliases::routes(&mut r);
    analytics::routes(&mut r);
    snapshots::routes(&mut r);
    timelapse::routes(&mut r);
    logs::routes(&mut r);
    push::routes(&mut r);
    push::ws_routes(&mut r);
    triggers::routes(&mut r);
    unsupported::routes(&mut r);
    docs::routes(&mut r);
    ui::routes(&mut r);
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
/// used without a cursor. Serialised straight from the items (no intermediate JSON tree: the
/// list endpoints are the hot path).
pub(crate) struct Envelope<'a, T, F> {
    key: &'a str,
    page: &'a vigil_core::Page<T>,
    req: &'a vigil_core::PageRequest,
    wire: F,
}

impl<'a, T, W: serde::Serialize, F: Fn(&'a T) -> W> serde::Serialize for Envelope<'a, T, F> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        struct Items<'a, 'f, T, F>(&'a [T], &'f F);
        impl<'a, T, W: serde::Serialize, F: Fn(&'a T) -> W> serde::Serialize for Items<'a, '_, T, F> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut seq = s.serialize_seq(Some(self.0.len()))?;
                for item in self.0 {
                    seq.serialize_element(&(self.1)(item))?;
                }
                seq.end()
            }
        }
        let (page, req) = (self.page, self.req);
        let warning = deprecation_warning(req);
        let mut m = s.serialize_map(Some(8))?;
        m.serialize_entry(self.key, &Items(&page.items, &self.wire))?;
        m.serialize_entry("count", &page.total)?;
        m.serialize_entry("total", &page.total)?;
        m.serialize_entry("limit", &req.limit)?;
        m.serialize_entry("offset", &req.offset)?;
        m.serialize_entry("next_cursor", &page.next_cursor)?;
        m.serialize_entry("has_more", &page.has_more)?;
        m.serialize_entry("deprecation_warning", &warning)?;
        m.end()
    }
}

impl<'a, T, W: serde::Serialize, F: Fn(&'a T) -> W> Envelope<'a, T, F> {
    /// `200 OK` with the envelope, written into a buffer sized for the page up front (a page
    /// of 50 events is some 35 KB; growing from empty would copy it nine times).
    pub(crate) fn reply(&self) -> crate::reply::Reply {
        crate::reply::ok_sized(self, 256 + self.page.items.len() * 1024)
    }

    /// The same document as [`Envelope::reply`], with each item written by `item` (a
    /// [`fastjson`] writer) instead of through serde.
    pub(crate) fn reply_fast(&self, item: impl Fn(&'a T, &mut Vec<u8>)) -> crate::reply::Reply {
        let mut out = Vec::with_capacity(256 + self.page.items.len() * 1024);
        self.write_fast(&mut out, item);
        Ok(crate::reply::bytes(
            hyper::StatusCode::OK,
            "application/json",
            out,
        ))
    }

    pub(super) fn write_fast(&self, out: &mut Vec<u8>, item: impl Fn(&'a T, &mut Vec<u8>)) {
        let (page, req) = (self.page, self.req);
        use fastjson::key;
        let mut o = fastjson::Obj::open(out);
        let items = o.raw(self.key);
        items.push(b'[');
        for (i, t) in page.items.iter().enumerate() {
            if i > 0 {
                items.push(b',');
            }
            item(t, items);
        }
        items.push(b']');
        o.opt_u64(key!("count"), page.total);
        o.opt_u64(key!("total"), page.total);
        o.u64(key!("limit"), u64::from(req.limit));
        o.u64(key!("offset"), req.offset);
        o.opt_str(key!("next_cursor"), page.next_cursor.as_deref());
        o.bool(key!("has_more"), page.has_more);
        o.opt_str(key!("deprecation_warning"), deprecation_warning(req));
        o.close();
    }
}

/// HSI's warning on a page asked for by offset without a cursor.
fn deprecation_warning(req: &vigil_core::PageRequest) -> Option<&'static str> {
    (req.offset > 0 && req.cursor.is_none()).then_some(
        "Offset pagination is deprecated: pass the next_cursor of the previous page as cursor.",
    )
}

/// The envelope of `page` (see [`Envelope`]).
pub(crate) fn envelope<'a, T, W: serde::Serialize, F: Fn(&'a T) -> W>(
    key: &'a str,
    page: &'a vigil_core::Page<T>,
    req: &'a vigil_core::PageRequest,
    wire: F,
) -> Envelope<'a, T, F> {
    Envelope {
        key,
        page,
        req,
        wire,
    }
}
