//! The log: HSI's `/api/logs` (list, stats, one entry, entries from a front end), SentryShot's
//! `/api/log/query`, picam's `/logs/api` and `/logs/mediamtx`. One store of entries;
//! `vigild` writes its own there (see `vigil_cli::logs`).

use serde::Deserialize;
use serde_json::{json, Value};
use vigil_core::{
    CameraId, LogEntry, LogFilter, LogId, LogLevel, Mutation, Order, Query, Timestamp,
};

use super::{cameras, envelope, limit, list, number, time, GET, POST};
use crate::error::ApiError;
use crate::reply::{json as json_reply, ok, Reply};
use crate::router::{Ctx, Router};

pub(super) fn routes(r: &mut Router) {
    r.add(
        GET,
        "/api/logs",
        "logs",
        "Log entries (level, source, camera, time, search; cursor pages); with a WebSocket upgrade, SentryShot's live log",
        list_logs,
    );
    r.add(
        GET,
        "/api/logs/stats",
        "logs",
        "Log counts by level and source",
        stats,
    );
    r.add(
        POST,
        "/api/logs/frontend",
        "logs",
        "Store an entry sent by a front end",
        frontend,
    );
    r.add(GET, "/api/logs/{id}", "logs", "One log entry", one);
    r.add(
        GET,
        "/api/log/query",
        "logs",
        "SentryShot's log query (levels, sources, monitors, time in µs, limit)",
        sentryshot_query,
    );
    r.add(
        GET,
        "/logs/api",
        "logs",
        "picam's log (limit, level, search), newest first",
        picam_logs,
    );
    r.add(
        GET,
        "/logs/mediamtx",
        "logs",
        "picam's stream-server log: the camera connections",
        picam_stream_logs,
    );
    r.add(
        GET,
        "/logs/install",
        "logs",
        "picam's script logs (Vigil runs none: empty)",
        picam_script_logs,
    );
}

/// A level by any of the documents' names.
fn level(name: &str, v: &str) -> Result<LogLevel, ApiError> {
    match v.to_ascii_lowercase().as_str() {
        "debug" | "dbg" => Ok(LogLevel::Debug),
        "info" | "inf" => Ok(LogLevel::Info),
        "warning" | "warn" | "war" => Ok(LogLevel::Warning),
        "error" | "err" | "critical" => Ok(LogLevel::Error),
        _ => Err(ApiError::query(
            name,
            format!("must be debug, info, warning or error, got {v:?}"),
        )),
    }
}

fn wire(e: &LogEntry) -> Value {
    json!({
        "id": e.id.to_string(),
        "timestamp": e.time.to_string(),
        "level": e.level.as_str().to_ascii_uppercase(),
        "component": e.source,
        "source": e.source,
        "camera_id": e.camera,
        "message": e.message,
    })
}

fn log_query(ctx: &Ctx) -> Result<Query<LogFilter>, ApiError> {
    let mut q = Query::new(LogFilter::default());
    q.page.with_total = true;
    for (k, v) in ctx.query_pairs() {
        let k = k.as_str();
        let f = &mut q.filter;
        match k {
            "level" | "levels" => {
                for l in list(&v) {
                    f.levels.push(level(k, &l)?);
                }
            }
            "component" | "source" | "sources" => f.sources.extend(list(&v)),
            "camera" | "camera_id" | "monitors" => f.cameras.extend(cameras(k, &v)?),
            "start_date" | "after" => f.time.after = Some(time(k, &v)?),
            "end_date" | "before" => f.time.before = Some(time(k, &v)?),
            "search" | "q" => f.text = Some(v),
            "limit" => q.page.limit = limit(k, &v, vigil_core::query::MAX_PAGE_LIMIT)?,
            "offset" => q.page.offset = number(k, &v)?,
            "cursor" => q.page.cursor = Some(v),
            _ => {}
        }
    }
    Ok(q)
}

async fn list_logs(ctx: Ctx) -> Reply {
    if super::push::is_websocket(&ctx) {
        return super::push::log_socket(ctx);
    }
    let q = log_query(&ctx)?;
    let page = ctx.state.store().log_entries(&q).await?;
    envelope("logs", &page, &q.page, wire).reply()
}

async fn stats(ctx: Ctx) -> Reply {
    let c = ctx.state.store().log_counts().await?;
    ok(&json!({
        "total": c.total,
        "by_level": c.by_level,
        "by_component": c.by_source,
        "errors": c.by_level.get("error").copied().unwrap_or(0),
        "warnings": c.by_level.get("warning").copied().unwrap_or(0),
    }))
}

async fn one(ctx: Ctx) -> Reply {
    let id: LogId = ctx.param_as("id")?;
    let e = ctx
        .state
        .store()
        .log_entry(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("log entry {id} not found")))?;
    ok(&wire(&e))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontendEntry {
    level: String,
    message: String,
    component: Option<String>,
    camera_id: Option<String>,
    #[serde(default)]
    extra: Option<Value>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    user_agent: Option<String>,
}

async fn frontend(ctx: Ctx) -> Reply {
    let b: FrontendEntry = ctx.json()?;
    let lvl = level("level", &b.level).map_err(|_| {
        ApiError::body(
            &["level"],
            format!("must be debug, info, warning or error, got {:?}", b.level),
        )
    })?;
    if b.message.len() > 10_000 {
        return Err(ApiError::body(&["message"], "longer than 10000 bytes"));
    }
    let camera = match &b.camera_id {
        Some(c) => Some(
            CameraId::new(c.clone()).map_err(|e| ApiError::body(&["camera_id"], e.message()))?,
        ),
        None => None,
    };
    let mut message = b.message.clone();
    for (k, v) in [("url", &b.url), ("user_agent", &b.user_agent)] {
        if let Some(v) = v {
            message.push_str(&format!(" {k}={v}"));
        }
    }
    if let Some(x) = &b.extra {
        message.push_str(&format!(" extra={x}"));
    }
    let now = ctx.state.now();
    let id = LogId(ctx.state.ids().await?.next(now));
    let source = match b.component.as_deref() {
        Some(c) if !c.is_empty() => format!("frontend-{c}"),
        _ => "frontend".to_owned(),
    };
    let e = LogEntry {
        id,
        time: now,
        level: lvl,
        source,
        camera,
        message,
    };
    let m = Mutation::PutLog(Box::new(e.clone()));
    m.validate()
        .map_err(|err| ApiError::body(&["component"], err.message()))?;
    ctx.state.store().apply(m.into()).await?;
    Ok(json_reply(hyper::StatusCode::CREATED, &wire(&e)))
}

/// SentryShot's form: `time` (µs) is the newest entry wanted, entries come newest first.
async fn sentryshot_query(ctx: Ctx) -> Reply {
    let mut q = Query::new(LogFilter::default());
    q.page.limit = 100;
    for (k, v) in ctx.query_pairs() {
        let k = k.as_str();
        match k {
            "levels" => {
                for l in list(&v) {
                    q.filter.levels.push(level(k, &l)?);
                }
            }
            "sources" => q.filter.sources.extend(list(&v)),
            "monitors" => q.filter.cameras.extend(cameras(k, &v)?),
            "time" => {
                let us: i64 = number(k, &v)?;
                if us > 0 {
                    q.filter.time.before = Some(Timestamp(us.saturating_add(1)));
                }
            }
            "limit" => q.page.limit = limit(k, &v, vigil_core::query::MAX_PAGE_LIMIT)?,
            _ => {}
        }
    }
    let page = ctx.state.store().log_entries(&q).await?;
    let out: Vec<Value> = page.items.iter().map(sentryshot_wire).collect();
    ok(&out)
}

/// A log entry in SentryShot's form (its query and its live log WebSocket).
pub(crate) fn sentryshot_wire(e: &LogEntry) -> Value {
    json!({
        "level": e.level.as_str(),
        "time": e.time.as_micros(),
        "msg": e.message,
        "src": e.source,
        "monitorID": e.camera.as_ref().map(|c| c.to_string()).unwrap_or_default(),
    })
}

/// picam's form: `limit` (500, at most 2000), `level`, `search`; newest first.
async fn picam(ctx: &Ctx, sources: &[&str]) -> Reply {
    let mut q = Query::new(LogFilter {
        sources: sources.iter().map(|s| (*s).to_owned()).collect(),
        ..Default::default()
    });
    q.order = Order::Desc;
    let mut want = 500usize;
    for (k, v) in ctx.query_pairs() {
        let k = k.as_str();
        match k {
            "limit" => want = limit(k, &v, 2000)? as usize,
            "level" => q.filter.levels.push(level(k, &v)?),
            "search" => q.filter.text = Some(v),
            _ => {}
        }
    }
    let mut out = Vec::new();
    q.page.limit = want.min(vigil_core::query::MAX_PAGE_LIMIT as usize) as u32;
    loop {
        let page = ctx.state.store().log_entries(&q).await?;
        out.extend(page.items.iter().map(|e| {
            json!({
                "ts": e.time.to_string(),
                "level": e.level.as_str().to_ascii_uppercase(),
                "source": e.source,
                "message": e.message,
            })
        }));
        match page.next_cursor {
            Some(c) if page.has_more && out.len() < want => q.page.cursor = Some(c),
            _ => break,
        }
    }
    out.truncate(want);
    ok(&out)
}

async fn picam_logs(ctx: Ctx) -> Reply {
    picam(&ctx, &[]).await
}

async fn picam_stream_logs(ctx: Ctx) -> Reply {
    // What MediaMTX's log tells picam users: the camera connections.
    picam(&ctx, &["supervisor", "rtsp", "camera_task"]).await
}

async fn picam_script_logs(_: Ctx) -> Reply {
    ok(&Vec::<Value>::new())
}
