//! Vigil's HTTP API, on hyper 1.
//!
//! One coherent API over everything the five API documents describe (Frigate, Home Security
//! Intelligence, picam, SpectraX, SentryShot): `docs/api/mapping.md` lists every endpoint of
//! every document and the route here that serves it.
//!
//! # Layout
//! - [`serve`]: accepts connections until the shutdown future resolves, then drains them.
//!   Headers must arrive within 30 s, bodies are limited to [`MAX_BODY_BYTES`], a handler gets
//!   [`HANDLER_TIMEOUT`]; each request is one `tracing` span.
//! - [`respond`]: answers one request (what `serve` calls, and what tests and the fuzz targets
//!   call directly).
//! - `router`: the route table (paths matched by `matchit`, one handler per method).
//! - `api/`: the handlers, one module per family, and the JSON wire format.
//! - `reply`: JSON, files with byte ranges, streamed bodies; `error`: `{"detail": ...}`.
//! - [`auth`]: accounts, API keys, tokens, CSRF tokens, the failed-login limit; [`access`]
//!   says what each endpoint needs. Every request is authenticated unless the state was made
//!   with [`AppState::without_auth`], which [`serve`] accepts on a loopback address only.
//!
//! # Example
//!
//! ```no_run
//! # async fn f(store: std::sync::Arc<dyn vigil_core::Store>) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:5000").await?;
//! // Accounts, keys and tokens live in the store; make the first admin if there is none.
//! let auth = vigil_http::auth::Auth::load(store.clone()).await.expect("accounts");
//! if let Some(password) = auth.ensure_admin(None).await.expect("admin") {
//!     eprintln!("admin password: {password}");
//! }
//! let state = vigil_http::AppState::new(store).with_auth(auth);
//! vigil_http::serve(listener, state, std::future::pending()).await?;
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![forbid(clippy::print_stdout, clippy::print_stderr)]

pub mod alerts;
mod api;
pub mod auth;
mod error;
pub mod limits;
pub mod mqtt;
mod reply;
mod router;
pub mod rtsp;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use vigil_core::pipeline::Nvr;
use vigil_core::{ErrorKind, Store};

pub use error::{ApiError, FieldError};
pub use reply::{Body, Reply};
pub use router::{Ctx, Endpoint, Router, FRIGATE_PREFIX};

/// The version `/api/version` reports: Frigate-compatible (Home Assistant checks it is at least
/// 0.12) with Vigil's own name after the dash.
pub const API_VERSION: &str = concat!("0.16.0-vigil-", env!("CARGO_PKG_VERSION"));

/// The largest request body read; a larger one is answered with 413.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// How long a request's body may take to arrive, once its head has (`408` after that); the
/// head itself must arrive within [`HEADER_TIMEOUT`].
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a request's head may take to arrive (a client that sends it a byte at a time, or
/// a connection left open and silent, is closed then).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a handler may take to produce its response (a stream's body may then run on).
pub const HANDLER_TIMEOUT: Duration = Duration::from_secs(30);

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    store: Arc<dyn Store>,
    nvr: Option<Arc<Nvr>>,
    data_dir: Option<PathBuf>,
    started: Instant,
    mjpeg: Arc<api::live::MjpegHub>,
    detectors: Option<Arc<vigil_detect::DetectorRegistry>>,
    timelapse: Option<Arc<vigil_detect::Timelapse>>,
    sampler: Arc<api::system::Sampler>,
    /// Ids for records the server makes when no running system gives them.
    ids: Arc<tokio::sync::OnceCell<Arc<vigil_core::IdGenerator>>>,
    /// Set when the server shuts down: live streams end.
    closing: tokio::sync::watch::Sender<bool>,
    auth: AuthMode,
    /// The MQTT link's settings, when one runs ([`mqtt::Mqtt`]).
    mqtt: Option<Arc<mqtt::MqttConfig>>,
    /// The RTSP restream's port, when it runs ([`rtsp::serve`]).
    rtsp_port: Option<u16>,
    /// Alerting: deliveries and the dead-letter queue ([`alerts`]).
    notifier: Arc<alerts::Notifier>,
    /// Requests per client and tier.
    limiter: Arc<limits::Limiter>,
    /// Which origins browsers may call from.
    cors: Arc<limits::Cors>,
    /// How many connections may be open at once.
    connections: limits::ConnectionLimits,
}

/// Whether and how requests are authenticated.
#[derive(Clone)]
enum AuthMode {
    /// Accounts loaded from the store on first use (or given with [`AppState::with_auth`]).
    Required(Arc<tokio::sync::OnceCell<Arc<auth::Auth>>>),
    /// No authentication: every request acts as an admin. Loopback only.
    Open,
}

impl Inner {
    fn new(store: Arc<dyn Store>, nvr: Option<Arc<Nvr>>, data_dir: Option<PathBuf>) -> Inner {
        Inner {
            store,
            nvr,
            data_dir,
            started: Instant::now(),
            mjpeg: Arc::default(),
            detectors: None,
            timelapse: None,
            sampler: Arc::default(),
            ids: Arc::default(),
            closing: tokio::sync::watch::channel(false).0,
            auth: AuthMode::Required(Arc::default()),
            mqtt: None,
            rtsp_port: None,
            notifier: Arc::new(alerts::Notifier::new(alerts::NotifyOptions::default())),
            limiter: Arc::new(limits::Limiter::new(limits::RateLimits::default())),
            cors: Arc::default(),
            connections: limits::ConnectionLimits::default(),
        }
    }
}

impl AppState {
    /// State over a store alone: the records are served, cameras added through the API are
    /// stored but nothing runs them, and media files are not served. Requests must
    /// authenticate with the accounts kept in the store (see [`auth`]).
    pub fn new(store: Arc<dyn Store>) -> Self {
        AppState {
            inner: Arc::new(Inner::new(store, None, None)),
        }
    }

    /// State over a running [`Nvr`]: cameras changed through the API are started, restarted
    /// and stopped, and the media under its data directory are served.
    pub fn with_nvr(store: Arc<dyn Store>, nvr: Arc<Nvr>) -> Self {
        let data_dir = Some(nvr.data_dir().to_owned());
        AppState {
            inner: Arc::new(Inner::new(store, Some(nvr), data_dir)),
        }
    }

    /// The same state, authenticating with `auth` (already loaded, say to make the first
    /// admin before serving).
    pub fn with_auth(self, auth: Arc<auth::Auth>) -> Self {
        let mut inner = Inner::clone(&self.inner);
        inner.auth = AuthMode::Required(Arc::new(tokio::sync::OnceCell::new_with(Some(auth))));
        AppState {
            inner: Arc::new(inner),
        }
    }

    /// The same state, without authentication: every request acts as an admin. [`serve`]
    /// refuses it on an address that is not loopback.
    pub fn without_auth(self) -> Self {
        let mut inner = Inner::clone(&self.inner);
        inner.auth = AuthMode::Open;
        AppState {
            inner: Arc::new(inner),
        }
    }

    /// Whether requests are authenticated.
    pub fn auth_required(&self) -> bool {
        matches!(self.inner.auth, AuthMode::Required(_))
    }

    /// The accounts, once loaded (`None` without authentication).
    pub fn auth(&self) -> Option<&Arc<auth::Auth>> {
        match &self.inner.auth {
            AuthMode::Required(cell) => cell.get(),
            AuthMode::Open => None,
        }
    }

    /// The accounts, loaded from the store on first use.
    pub(crate) async fn load_auth(&self) -> Result<Option<Arc<auth::Auth>>, ApiError> {
        match &self.inner.auth {
            AuthMode::Required(cell) => {
                let store = self.inner.store.clone();
                let a = cell
                    .get_or_try_init(|| async move { auth::Auth::load(store).await })
                    .await?;
                Ok(Some(a.clone()))
            }
            AuthMode::Open => Ok(None),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The running system, when there is one.
    pub fn nvr(&self) -> Option<&Arc<Nvr>> {
        self.inner.nvr.as_ref()
    }

    /// The same state, reporting the figures of `detectors` (inference time, rates) in the
    /// stats and the model zoo.
    pub fn with_detectors(self, detectors: Arc<vigil_detect::DetectorRegistry>) -> Self {
        let mut inner = Inner::clone(&self.inner);
        inner.detectors = Some(detectors);
        AppState {
            inner: Arc::new(inner),
        }
    }

    /// The same state, serving `timelapse`'s settings and videos (picam's `/timelapse`).
    pub fn with_timelapse(self, timelapse: Arc<vigil_detect::Timelapse>) -> Self {
        let mut inner = Inner::clone(&self.inner);
        inner.timelapse = Some(timelapse);
        AppState {
            inner: Arc::new(inner),
        }
    }

    /// Says that the RTSP restream ([`rtsp::serve`]) listens on `port`: `/api/config` names
    /// each camera's stream there (`go2rtc.streams`, `live.streams`), which Home Assistant's
    /// Frigate integration plays at `rtsp://<host>:<port>/<camera>`.
    pub fn with_rtsp(self, port: u16) -> Self {
        let mut inner = Inner::clone(&self.inner);
        inner.rtsp_port = Some(port);
        AppState {
            inner: Arc::new(inner),
        }
    }

    /// The RTSP restream's port, when it runs.
    pub fn rtsp_port(&self) -> Option<u16> {
        self.inner.rtsp_port
    }

    /// Says that an MQTT link with `config` runs beside this server (start it with
    /// [`mqtt::Mqtt::start`]): `/api/config` shows its prefix and client id.
    pub fn with_mqtt(self, config: mqtt::MqttConfig) -> Self {
        let mut inner = Inner::clone(&self.inner);
        inner.mqtt = Some(Arc::new(config));
        AppState {
            inner: Arc::new(inner),
        }
    }

    /// The same state, limiting requests per client as `limits` say ([`limits`]; on by
    /// default, loopback exempt).
    /// A tier set to 0 a minute is taken as 1.
    pub fn with_rate_limits(self, limits: limits::RateLimits) -> Self {
        let mut inner = Inner::clone(&self.inner);
        inner.limiter = Arc::new(limits::Limiter::new(limits));
        AppState {
            inner: Arc::new(inner),
        }
    }

    /// The rate limits in force.
    pub fn rate_limits(&self) -> &limits::RateLimits {
        self.inner.limiter.limits()
    }

    /// The same state, letting in as many connections at once as `limits` say
    /// ([`limits::ConnectionLimits`]; 1024 in all and 128 per address by default).
    pub fn with_connection_limits(self, limits: limits::ConnectionLimits) -> Self {
        let mut inner = Inner::clone(&self.inner);
        inner.connections = limits;
        AppState {
            inner: Arc::new(inner),
        }
    }

    /// The same state, answering browsers' cross-origin requests as `cors` says (any origin
    /// by default).
    pub fn with_cors(self, cors: limits::Cors) -> Self {
        let mut inner = Inner::clone(&self.inner);
        inner.cors = Arc::new(cors);
        AppState {
            inner: Arc::new(inner),
        }
    }

    /// The same state, retrying notifications as `options` say.
    pub fn with_notify_options(self, options: alerts::NotifyOptions) -> Self {
        let mut inner = Inner::clone(&self.inner);
        inner.notifier = Arc::new(alerts::Notifier::new(options));
        AppState {
            inner: Arc::new(inner),
        }
    }

    /// Alerting's deliveries and dead-letter queue; [`alerts::run`] applies the rules.
    pub fn notifier(&self) -> &Arc<alerts::Notifier> {
        &self.inner.notifier
    }

    /// The MQTT link's settings, when one runs.
    pub fn mqtt(&self) -> Option<&mqtt::MqttConfig> {
        self.inner.mqtt.as_deref()
    }

    /// The timelapse service, when there is one.
    pub fn timelapse(&self) -> Option<&Arc<vigil_detect::Timelapse>> {
        self.inner.timelapse.as_ref()
    }

    /// The detectors, when known.
    pub fn detectors(&self) -> Option<&Arc<vigil_detect::DetectorRegistry>> {
        self.inner.detectors.as_ref()
    }

    /// The id generator for records made here: the running system's, else one seeded from
    /// the store.
    pub(crate) async fn ids(&self) -> Result<Arc<vigil_core::IdGenerator>, ApiError> {
        if let Some(n) = self.nvr() {
            return Ok(n.ids().clone());
        }
        let ids = self
            .inner
            .ids
            .get_or_try_init(|| async {
                let max = self.inner.store.max_id().await?;
                Ok::<_, vigil_core::Error>(Arc::new(vigil_core::IdGenerator::new(max)))
            })
            .await?;
        Ok(ids.clone())
    }

    /// Stores the audit entry `make` builds from its id and time; a failure to store it is
    /// logged, never the request's failure.
    pub(crate) async fn record_audit(
        &self,
        make: impl FnOnce(vigil_core::AuditId, vigil_core::Timestamp) -> vigil_core::AuditEntry,
    ) {
        let Ok(ids) = self.ids().await else {
            return;
        };
        let now = self.now();
        let entry = make(vigil_core::AuditId(ids.next(now)), now);
        if let Err(e) = self
            .store()
            .apply(vigil_core::Mutation::PutAudit(Box::new(entry)).into())
            .await
        {
            tracing::warn!(err = %e, "audit entry not stored");
        }
    }

    pub(crate) fn sampler(&self) -> &api::system::Sampler {
        &self.inner.sampler
    }

    /// The running system, or 503 naming what needs it.
    pub(crate) fn need_nvr(&self, what: &str) -> Result<&Arc<Nvr>, ApiError> {
        self.nvr().ok_or_else(|| {
            ApiError::Status(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{what} needs the running system; this server serves a store only"),
            )
        })
    }

    /// The same state, serving the media files under `dir` (what [`AppState::with_nvr`] does
    /// with the system's data directory).
    pub fn with_data_dir(self, dir: impl Into<PathBuf>) -> Self {
        let mut inner = Inner::clone(&self.inner);
        inner.data_dir = Some(dir.into());
        AppState {
            inner: Arc::new(inner),
        }
    }

    /// The time now: the running system's clock, the wall clock without one.
    pub fn now(&self) -> vigil_core::Timestamp {
        match self.nvr() {
            Some(n) => n.clocks().realtime(),
            None => vigil_core::Clocks::realtime(&vigil_core::RealClocks::default()),
        }
    }

    /// Where media files live, or 503 when this server serves none.
    pub(crate) fn need_data_dir(&self) -> Result<&std::path::Path, ApiError> {
        self.data_dir().ok_or_else(|| {
            ApiError::Status(
                StatusCode::SERVICE_UNAVAILABLE,
                "this server has no media directory".into(),
            )
        })
    }

    /// Where media files live, when known.
    pub fn data_dir(&self) -> Option<&std::path::Path> {
        self.inner.data_dir.as_deref()
    }

    pub(crate) fn mjpeg(&self) -> &Arc<api::live::MjpegHub> {
        &self.inner.mjpeg
    }

    /// Changes to true when the server shuts down.
    pub(crate) fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.inner.closing.subscribe()
    }

    /// Seconds since the state was made.
    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
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

/// The route table of the API.
pub fn router() -> &'static Router {
    static ROUTER: OnceLock<Router> = OnceLock::new();
    ROUTER.get_or_init(api::routes)
}

/// Answers one request. [`serve`] calls it for each request it reads; embedders, tests and the
/// fuzz targets may call it directly.
pub async fn respond<B>(state: &AppState, req: Request<B>) -> Response<Body>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // The browser's password dialog is for a person opening a URL (a navigation, or a client
    // that says nothing). Not for a script that handles a 401 itself (the web interface says
    // so the usual way, with `X-Requested-With`), nor for a page's pictures and videos.
    let scripted = req.headers().contains_key("x-requested-with")
        || req
            .headers()
            .get("sec-fetch-mode")
            .is_some_and(|m| m.as_bytes() != b"navigate");
    let read = (req.method() == Method::GET || req.method() == Method::HEAD) && !scripted;
    // Only a list of origins needs the request's.
    let origin = match *state.inner.cors {
        limits::Cors::Only(_) => req
            .headers()
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        _ => None,
    };
    let mut resp = match respond_inner(state, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    if read && resp.status() == StatusCode::UNAUTHORIZED {
        // Browsers ask for a user and password (a camera's MJPEG opened in a tab, say). Not on
        // a failed login or change: a page's script handles those itself.
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"Vigil\", charset=\"UTF-8\""),
        );
    }
    // By default any origin may read the API (both the HSI and SpectraX documents say so);
    // what a caller may do is decided by authentication, not by the browser.
    if let Some(allow) = state.inner.cors.allow(origin.as_deref()) {
        let h = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&allow) {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        }
    }
    if matches!(*state.inner.cors, limits::Cors::Only(_)) {
        resp.headers_mut()
            .append(header::VARY, HeaderValue::from_static("origin"));
    }
    resp
}

async fn respond_inner<B>(state: &AppState, req: Request<B>) -> Reply
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (mut parts, body) = req.into_parts();
    let raw_path = parts.uri.path();
    let path = match raw_path.trim_end_matches('/') {
        "" => "/",
        p => p,
    };
    if parts.method == Method::OPTIONS {
        return Ok(preflight());
    }
    let (ep, params) = match router().find(&parts.method, path) {
        router::Found::Endpoint(ep, params) => (ep, params),
        router::Found::WrongMethod(allowed) => {
            let allow = allowed
                .iter()
                .map(Method::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            let mut r = ApiError::Status(
                StatusCode::METHOD_NOT_ALLOWED,
                format!(
                    "{} {path} is not an endpoint; this path takes {allow}",
                    parts.method
                ),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&allow) {
                r.headers_mut().insert(header::ALLOW, v);
            }
            return Ok(r);
        }
        router::Found::Nothing => {
            return Err(ApiError::not_found(format!("no endpoint at {path}")));
        }
    };
    let peer = parts.extensions.get::<Peer>().map(|p| p.0);
    let tier = ep.tier;
    if let Err(wait) = state.inner.limiter.take(peer.map(|p| p.ip()), tier) {
        let per_minute = state.rate_limits().per_minute(tier);
        let mut r = ApiError::Status(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "too many requests: the {} tier allows {per_minute} a minute from one address",
                tier.as_str()
            ),
        )
        .into_response();
        let secs = wait.as_secs().max(1);
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return Ok(r);
    }
    let upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
    let need = access(&ep.method, ep.pattern);
    let query = parts.uri.query().unwrap_or("");
    let mutation = !matches!(ep.method, Method::GET | Method::HEAD);
    let principal = match authorize(state, &parts.headers, query, mutation, need, peer).await {
        Ok(p) => p,
        Err((e, who)) => {
            if mutation {
                if let Some(p) = who {
                    audit(state, Some(&p), ep, &params, path, peer, e.status()).await;
                }
            }
            return Err(e);
        }
    };
    // A client that sends its body slowly holds nothing for long.
    let read = tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, MAX_BODY_BYTES).collect());
    let Ok(read) = read.await else {
        return Err(ApiError::Status(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the body did not arrive within {} s",
                BODY_TIMEOUT.as_secs()
            ),
        ));
    };
    let body = match read {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return Err(if e.is::<http_body_util::LengthLimitError>() {
                ApiError::Status(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the body is over the limit of {MAX_BODY_BYTES} bytes"),
                )
            } else {
                ApiError::bad_request(format!("reading the body: {e}"))
            });
        }
    };
    let method = if parts.method == Method::HEAD {
        Method::GET
    } else {
        parts.method.clone()
    };
    let call = Call {
        ep,
        params,
        method,
        path,
        query,
        headers: parts.headers,
        body,
        principal,
        peer,
        upgrade,
    };
    dispatch(state, call, mutation && need != Access::Public).await
}

/// A request that found its endpoint and passed authorization.
struct Call<'a> {
    ep: &'a router::Endpoint,
    params: Vec<(String, String)>,
    method: Method,
    path: &'a str,
    query: &'a str,
    headers: hyper::HeaderMap,
    body: Bytes,
    principal: Option<auth::Principal>,
    peer: Option<SocketAddr>,
    upgrade: Option<hyper::upgrade::OnUpgrade>,
}

/// Runs an authorized request's handler (within [`HANDLER_TIMEOUT`]) and, when `audited`,
/// writes its audit entry.
async fn dispatch(state: &AppState, c: Call<'_>, audited: bool) -> Reply {
    let (who, audit_params) = if audited {
        (c.principal.clone(), c.params.clone())
    } else {
        (None, Vec::new())
    };
    let checked = body_is_an_object(&c.method, &c.body);
    let ctx = Ctx::new(
        state.clone(),
        c.method,
        c.path.to_owned(),
        c.params,
        c.query.to_owned(),
        c.headers,
        c.body,
    )
    .with_caller(c.principal, c.peer, c.upgrade);
    let reply = match checked {
        Err(e) => Err(e),
        Ok(()) => match tokio::time::timeout(HANDLER_TIMEOUT, (c.ep.handler)(ctx)).await {
            Ok(r) => r,
            Err(_) => Err(ApiError::Status(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the request took over {} s", HANDLER_TIMEOUT.as_secs()),
            )),
        },
    };
    if audited {
        let status = match &reply {
            Ok(r) => r.status(),
            Err(e) => e.status(),
        };
        audit(
            state,
            who.as_ref(),
            c.ep,
            &audit_params,
            c.path,
            c.peer,
            status,
        )
        .await;
    }
    reply
}

/// A change's body, when it has one, is a JSON object, as the OpenAPI document says: also for
/// the endpoints that read nothing from it, so that a client sending something else (an array,
/// a string, bytes that are not JSON) hears so instead of being taken as having asked nothing.
fn body_is_an_object(method: &Method, body: &[u8]) -> Result<(), ApiError> {
    if !matches!(*method, Method::POST | Method::PUT | Method::PATCH)
        || body.iter().all(u8::is_ascii_whitespace)
    {
        return Ok(());
    }
    match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
        Err(e) => Err(ApiError::field(
            vec!["body".into()],
            e.to_string(),
            "json_invalid",
        )),
        Ok(_) if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') => {
            Err(ApiError::field(
                vec!["body".into()],
                "the body must be a JSON object",
                "dict_type",
            ))
        }
        Ok(_) => Ok(()),
    }
}

/// Calls an endpoint in-process as `principal`, with a JSON `body`: what MQTT commands do, so
/// that they run the same handler as the HTTP request and leave the same audit entry. The
/// principal's role is checked as a request's would be.
pub(crate) async fn call_as(
    state: &AppState,
    principal: auth::Principal,
    method: Method,
    path: &str,
    body: Bytes,
) -> Reply {
    let router::Found::Endpoint(ep, params) = router().find(&method, path) else {
        return Err(ApiError::not_found(format!("no endpoint {method} {path}")));
    };
    let need = access(&ep.method, ep.pattern);
    let allowed = match need {
        Access::Public | Access::Account | Access::Viewer => true,
        Access::Admin => principal.role == vigil_core::Role::Admin,
    };
    let mutation = !matches!(method, Method::GET | Method::HEAD);
    let audited = mutation && need != Access::Public;
    if !allowed {
        let e = ApiError::Status(StatusCode::FORBIDDEN, "an admin may do this".into());
        if audited {
            audit(state, Some(&principal), ep, &params, path, None, e.status()).await;
        }
        return Err(e);
    }
    let mut headers = hyper::HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let call = Call {
        ep,
        params,
        method,
        path,
        query: "",
        headers,
        body,
        principal: Some(principal),
        peer: None,
        upgrade: None,
    };
    dispatch(state, call, audited).await
}

/// Locks a mutex of plain data: a panic while it was held leaves the data behind as it was,
/// so carry on with it rather than fail every later request.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The client's address, which [`serve`] puts in each request's extensions (audit entries and
/// the failed-login limit use it). Embedders calling [`respond`] may insert it too.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

/// What an endpoint needs of the request's principal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Nothing: health, readiness, login and auth status.
    Public,
    /// Any account, viewers too: its own password, tokens and CSRF token.
    Account,
    /// Reading: viewers and admins.
    Viewer,
    /// Admins only: every change, and the accounts, keys, tokens and audit log.
    Admin,
}

/// What `method pattern` needs (the one place the access rules live; `docs/security.md`
/// lists them).
pub fn access(method: &Method, pattern: &str) -> Access {
    const PUBLIC: &[(&str, &str)] = &[
        ("GET", "/health"),
        ("GET", "/ready"),
        ("GET", "/api/system/health"),
        ("GET", "/api/system/health/ready"),
        ("GET", "/auth/status"),
        ("POST", "/auth/validate"),
        ("POST", "/api/auth/login"),
        ("POST", "/api/login"),
        // The web interface's page and assets (its data comes from the API, logged in).
        ("GET", "/"),
        ("GET", "/ui/{file}"),
    ];
    const ACCOUNT: &[(&str, &str)] = &[
        ("POST", "/auth/regenerate"),
        ("POST", "/auth/set-password"),
        ("POST", "/api/auth/logout"),
        ("GET", "/api/auth/me"),
        ("GET", "/api/account/my-token"),
    ];
    // Webhook URLs may hold secrets: the places that show them are admin reads.
    const ADMIN_READS: &[&str] = &[
        "/api/accounts",
        "/api/keys",
        "/api/tokens",
        "/api/audit",
        "/api/dlq",
        "/api/notification/config",
        "/api/alerts/rules",
    ];
    let m = method.as_str();
    if PUBLIC.iter().any(|&(pm, pp)| pm == m && pp == pattern) {
        return Access::Public;
    }
    if ACCOUNT.iter().any(|&(pm, pp)| pm == m && pp == pattern) {
        return Access::Account;
    }
    let read = *method == Method::GET || *method == Method::HEAD;
    if read && !ADMIN_READS.iter().any(|p| pattern.starts_with(p)) {
        return Access::Viewer;
    }
    Access::Admin
}

/// The request's principal when it may call an endpoint needing `need`; otherwise the error
/// (401 unauthenticated, 403 not allowed or no CSRF token, 429 too many failed logins) and
/// who was refused, if known.
async fn authorize(
    state: &AppState,
    headers: &hyper::HeaderMap,
    query: &str,
    mutation: bool,
    need: Access,
    peer: Option<SocketAddr>,
) -> Result<Option<auth::Principal>, (ApiError, Option<auth::Principal>)> {
    let Some(auth) = state.load_auth().await.map_err(|e| (e, None))? else {
        return Ok(Some(auth::Principal::open()));
    };
    let creds = auth::Credentials::from_request(headers, query);
    let found = auth.authenticate(&creds, peer.map(|p| p.ip())).await;
    if need == Access::Public {
        // A public endpoint answers whatever came with it; a wrong token is simply no one.
        return Ok(found.ok().flatten());
    }
    let p =
        match found.map_err(|e| (e, None))? {
            Some(p) => p,
            None => return Err((
                ApiError::Status(
                    StatusCode::UNAUTHORIZED,
                    "authentication required: basic auth, a bearer token (or ?token=), or an API \
                     key (X-API-Key or ?api_key=); POST /api/auth/login gives a token"
                        .into(),
                ),
                None,
            )),
        };
    if need == Access::Admin && p.role != vigil_core::Role::Admin {
        let msg = if mutation {
            "this account is a viewer: it cannot change anything"
        } else {
            "this account is a viewer: only admins can read this"
        };
        return Err((ApiError::Status(StatusCode::FORBIDDEN, msg.into()), Some(p)));
    }
    if mutation && p.via.needs_csrf() {
        let sent = headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
        if !auth.check_csrf(&p.account_id, sent) {
            return Err((
                ApiError::Status(
                    StatusCode::FORBIDDEN,
                    "a change made with basic auth or the login cookie needs the X-CSRF-TOKEN \
                     header: GET /api/account/my-token gives it"
                        .into(),
                ),
                Some(p),
            ));
        }
    }
    Ok(Some(p))
}

/// Writes the audit entry of a change (or of a refused one): who, what, when, from where.
async fn audit(
    state: &AppState,
    who: Option<&auth::Principal>,
    ep: &Endpoint,
    params: &[(String, String)],
    path: &str,
    peer: Option<SocketAddr>,
    status: StatusCode,
) {
    state
        .record_audit(|id, time| vigil_core::AuditEntry {
            id,
            time,
            actor: who.map_or_else(|| "anonymous".to_owned(), auth::Principal::actor),
            action: format!("{} {}", ep.method, ep.pattern),
            resource_type: ep.tag.to_owned(),
            resource_id: params.first().map(|(_, v)| v.clone()),
            ip: peer.map(|p| p.ip().to_string()),
            outcome: if status.is_success() || status.is_redirection() {
                vigil_core::Outcome::Success
            } else {
                vigil_core::Outcome::Failure
            },
            details_json: serde_json::json!({"path": path, "status": status.as_u16()}).to_string(),
        })
        .await;
}

fn preflight() -> Response<Body> {
    let mut r = reply::empty(StatusCode::NO_CONTENT);
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type, x-api-key, x-csrf-token, range"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    r
}

async fn handle(
    state: AppState,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        %peer,
    );
    let started = Instant::now();
    let mut req = req;
    req.extensions_mut().insert(Peer(peer));
    let resp = tracing::Instrument::instrument(respond(&state, req), span.clone()).await;
    let status = resp.status();
    let _g = span.enter();
    let ms = started.elapsed().as_secs_f64() * 1e3;
    if status.is_server_error() {
        tracing::warn!(status = status.as_u16(), ms, "request failed");
    } else {
        tracing::debug!(status = status.as_u16(), ms, "request");
    }
    Ok(resp)
}

/// Connections turned away over the [`limits::ConnectionLimits`], and when that was last
/// logged: a flood is logged once every 10 s, not once a connection.
#[derive(Default)]
struct Refusals {
    since_logged: u64,
    logged: Option<Instant>,
}

impl Refusals {
    /// Answers `503` and closes, without waiting: the answer is written only if the socket
    /// takes it at once (a new connection's send buffer does), and nothing is read.
    fn refuse(&mut self, stream: tokio::net::TcpStream, peer: SocketAddr, why: limits::Refused) {
        let detail = match why {
            limits::Refused::Total(n) => format!("too many connections: {n} are open"),
            limits::Refused::PerAddress(n) => {
                format!("too many connections from {}: {n} are open", peer.ip())
            }
        };
        let body = serde_json::json!({ "detail": detail }).to_string();
        let answer = format!(
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Type: \
             application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.try_write(answer.as_bytes());
        // What of the request is already here is read, so that closing sends the answer and
        // a FIN rather than a reset that could discard it.
        let mut sink = [0u8; 4096];
        for _ in 0..4 {
            if !matches!(stream.try_read(&mut sink), Ok(n) if n > 0) {
                break;
            }
        }
        drop(stream);
        self.since_logged += 1;
        if self
            .logged
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(10))
        {
            tracing::warn!(
                %peer,
                refused = self.since_logged,
                "{detail}; refusing new connections"
            );
            self.logged = Some(Instant::now());
            self.since_logged = 0;
        }
    }
}

/// Serves the API on `listener` until `shutdown` resolves, then waits up to 10 s for open
/// connections to finish (live streams are closed then). A connection over the state's
/// [`limits::ConnectionLimits`] is answered `503` and closed at once.
///
/// # Errors
///
/// A state made [`AppState::without_auth`] on a listener that is not on a loopback address:
/// nothing is served.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    if !state.auth_required() && !addr.ip().is_loopback() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "refusing to serve without authentication on {addr}: that is only allowed on \
                 a loopback address (127.0.0.1 or ::1)"
            ),
        ));
    }
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let gate = limits::Gate::new(&state.inner.connections);
    tracing::debug!(total = gate.total(), "connection limit");
    let mut refusals = Refusals::default();
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
                let admitted = match gate.admit(peer.ip()) {
                    Ok(a) => a,
                    Err(why) => {
                        refusals.refuse(stream, peer, why);
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                let builder = builder.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    // hyper times a head from its first byte: a connection that never sends one
                    // would stay open for ever (and a few thousand would use up the process's
                    // files).
                    let mut first = [0u8; 1];
                    match tokio::time::timeout(HEADER_TIMEOUT, stream.peek(&mut first)).await {
                        Ok(Ok(n)) if n > 0 => {}
                        _ => return,
                    }
                    let svc =
                        hyper::service::service_fn(move |req| handle(state.clone(), peer, req));
                    let io = TokioIo::new(limits::Counted::new(stream, admitted));
                    let conn = builder.serve_connection_with_upgrades(io, svc);
                    if let Err(e) = watcher.watch(conn.into_owned()).await {
                        tracing::debug!(%peer, err = %e, "connection ended with an error");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    // Live streams never end by themselves: end them, so that their connections drain.
    state.inner.closing.send_replace(true);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(10)) => {
            tracing::warn!("connections still open after 10 s; closing them");
        }
    }
    Ok(())
}
