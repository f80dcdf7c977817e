//! Vigil's HTTP API, on hyper 1.
//!
//! This first cut serves the operational endpoints and the event list over any
//! [`Store`]; the full API of the five documents grows here route by route
//! (see `docs/status.md`).
//!
//! # Layout
//! - [`serve`]: accepts connections until the shutdown future resolves, then drains them.
//! - `route`: [`Route::decode`] turns a method and path into a typed route.
//! - `handlers`: one function per route; errors become `{"detail": ...}` with the status of
//!   their [`ErrorKind`] (see [`status_of`]).
//!
//! # Example
//!
//! ```no_run
//! # async fn f(store: std::sync::Arc<dyn vigil_core::Store>) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:5000").await?;
//! let state = vigil_http::AppState::new(store);
//! vigil_http::serve(listener, state, async { let _ = tokio::signal::ctrl_c().await; }).await;
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![forbid(clippy::print_stdout, clippy::print_stderr)]

mod handlers;
mod route;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use vigil_core::{ErrorKind, Store};

pub use route::Route;

/// The version `/api/version` reports: Frigate-compatible (Home Assistant checks it is at least
/// 0.12) with Vigil's own name after the dash.
pub const API_VERSION: &str = concat!("0.16.0-vigil-", env!("CARGO_PKG_VERSION"));

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    store: Arc<dyn Store>,
    started: Instant,
}

impl AppState {
    /// State over a store.
    pub fn new(store: Arc<dyn Store>) -> Self {
        AppState {
            store,
            started: Instant::now(),
        }
    }
}

/// The HTTP status for an error kind: the one place this mapping lives.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
        ErrorKind::AlreadyExists => StatusCode::CONFLICT,
        ErrorKind::FailedPrecondition => StatusCode::PRECONDITION_FAILED,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The body of every response.
pub type Body = Full<Bytes>;

/// Answers one request. [`serve`] calls it for each request it reads; embedders, tests and the
/// fuzz targets may call it directly.
pub async fn respond<B>(state: &AppState, req: Request<B>) -> Response<Body> {
    let route = Route::decode(req.method(), req.uri().path());
    let query = req.uri().query().unwrap_or("");
    match handlers::dispatch(state, route, query).await {
        Ok(r) => r,
        Err(e) => {
            let status = status_of(e.kind());
            if status.is_server_error() {
                tracing::error!(err = %e, path = %req.uri().path(), "request failed");
            }
            handlers::json(status, &serde_json::json!({ "detail": e.message() }))
        }
    }
}

async fn handle(state: AppState, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    Ok(respond(&state, req).await)
}

/// Serves the API on `listener` until `shutdown` resolves, then waits up to 10 s for open
/// connections to finish.
pub async fn serve(listener: TcpListener, state: AppState, shutdown: impl Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Usually EMFILE: back off instead of spinning.
                        tracing::warn!(err = %e, "accept failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                let state = state.clone();
                let svc = hyper::service::service_fn(move |req| handle(state.clone(), req));
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(%peer, err = %e, "connection ended with an error");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(10)) => {
            tracing::warn!("connections still open after 10 s; closing them");
        }
    }
}
