//! Health, readiness and version.

use hyper::StatusCode;

use super::GET;
use crate::reply::{ok, text, Reply};
use crate::router::{Ctx, Router};
use crate::API_VERSION;

pub(super) fn routes(r: &mut Router) {
    r.add(
        GET,
        "/health",
        "system",
        "Liveness: the process answers",
        health,
    );
    r.add(
        GET,
        "/ready",
        "system",
        "Readiness: the store answers",
        ready,
    );
    r.add(
        GET,
        "/api/system/health/ready",
        "system",
        "Readiness: the store answers",
        ready,
    );
    r.add(
        GET,
        "/api/version",
        "system",
        "Version, as plain text (Frigate's form)",
        version,
    );
}

async fn health(ctx: Ctx) -> Reply {
    ok(&serde_json::json!({
        "status": "ok",
        "uptime_seconds": ctx.state.uptime().as_secs(),
    }))
}

async fn ready(ctx: Ctx) -> Reply {
    ctx.state.store().max_id().await?;
    ok(&serde_json::json!({"status": "ready"}))
}

async fn version(_: Ctx) -> Reply {
    Ok(text(StatusCode::OK, API_VERSION))
}
