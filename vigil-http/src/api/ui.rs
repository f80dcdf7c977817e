//! The web interface: one page and its script and style, built into the binary (nothing is
//! fetched from anywhere else, so it works offline). The page itself is open, like a login
//! form; everything it shows comes from the API with the login cookie.

use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_SECURITY_POLICY};
use hyper::StatusCode;

use super::GET;
use crate::error::ApiError;
use crate::reply::{bytes, Reply};
use crate::router::{Ctx, Router};

const INDEX: &str = include_str!("../ui/index.html");
const SCRIPT: &str = include_str!("../ui/app.js");
const STYLE: &str = include_str!("../ui/app.css");

/// What the page may load: only this server (its API, its WebSockets, its media).
const POLICY: &str = "default-src 'self'; img-src 'self' data:; media-src 'self'; \
                      connect-src 'self'; style-src 'self'; script-src 'self'; \
                      frame-ancestors 'self'; base-uri 'none'; form-action 'self'";

pub(super) fn routes(r: &mut Router) {
    r.add(
        GET,
        "/",
        "ui",
        "The web interface (log in, live view, events, recordings, system)",
        index,
    );
    r.add(
        GET,
        "/ui/{file}",
        "ui",
        "The web interface's script and style",
        asset,
    );
}

async fn index(_: Ctx) -> Reply {
    let mut r = bytes(StatusCode::OK, "text/html; charset=utf-8", INDEX);
    let h = r.headers_mut();
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(r)
}

async fn asset(ctx: Ctx) -> Reply {
    let (body, kind) = match ctx.param("file") {
        "app.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "app.css" => (STYLE, "text/css; charset=utf-8"),
        other => {
            return Err(ApiError::not_found(format!(
                "no file {other:?} in the web interface"
            )))
        }
    };
    let mut r = bytes(StatusCode::OK, kind, body);
    // Revalidated each load: the binary's version is the assets' version.
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(r)
}
