//! Push, made from the store's change feed ([`vigil_core::Store::changes`]): picam's
//! server-sent events at `/events` (each event as it is stored, `archive_updated` when a
//! recording, snapshot or timelapse frame is added, `alert` when an alert rule matches,
//! `system_alert` when a camera is lost or back or the disk nearly full), HSI's WebSockets
//! `/ws/events` (events and alerts) and `/ws/system` (status and system alerts), and
//! SentryShot's live log WebSocket at `/api/logs`.
//!
//! A client that does not keep up is disconnected (an SSE client's queue holds [`QUEUE`]
//! batches; a WebSocket client gets [`WS_SEND_TIMEOUT`] per message; the feed holds
//! [`vigil_core::store::CHANGE_FEED_DEPTH`] batches): nothing it does reaches the store or the
//! pipeline, and it can reconnect.

use std::time::Duration;

use hyper::body::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::Response;
use serde_json::json;
use tokio::sync::{broadcast, mpsc};
use vigil_core::{Batch, Mutation};

use super::events::WireEvent;
use super::GET;
use crate::reply::{ChannelBody, Reply};
use crate::router::{Ctx, Router};

/// Batches' messages queued for one client before it counts as too slow.
pub(crate) const QUEUE: usize = 64;

/// How often an idle stream sends a comment, so proxies and clients see it is alive.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub(super) fn routes(r: &mut Router) {
    r.add(
        GET,
        "/events",
        "push",
        "picam's server-sent events: `events` (each event as stored), `event_deleted`, `archive_updated`, `alert`, `system_alert` (?token= for browsers)",
        sse,
    );
}

/// The server-sent events of one committed batch, in order, as one chunk (so that a client's
/// queue counts batches: a big batch does not make a quick client look slow).
fn messages(batch: &Batch) -> String {
    let mut out = String::new();
    for m in &batch.mutations {
        let (name, data) = match m {
            Mutation::PutEvent(e) => match serde_json::to_string(&WireEvent::from(&**e)) {
                Ok(d) => ("events", d),
                Err(_) => continue,
            },
            Mutation::DeleteEvent(id) => {
                ("event_deleted", json!({"id": id.to_string()}).to_string())
            }
            Mutation::PutRecording(r) => (
                "archive_updated",
                json!({"kind": "recording", "id": r.id.to_string(), "camera": r.camera})
                    .to_string(),
            ),
            Mutation::PutSnapshot(s) => (
                "archive_updated",
                json!({"kind": "snapshot", "id": s.id.to_string(), "camera": s.camera}).to_string(),
            ),
            Mutation::PutTimelapseFrame(f) => (
                "archive_updated",
                json!({"kind": "timelapse", "id": f.id.to_string(), "camera": f.camera})
                    .to_string(),
            ),
            _ => continue,
        };
        out.push_str("event: ");
        out.push_str(name);
        out.push_str("\ndata: ");
        out.push_str(&data);
        out.push_str("\n\n");
    }
    out
}

async fn sse(ctx: Ctx) -> Reply {
    let mut feed = ctx.state.store().changes();
    let mut alerts = ctx.state.notifier().subscribe();
    let mut system = ctx.state.notifier().subscribe_system();
    let (tx, body) = ChannelBody::channel(QUEUE);
    let mut closing = ctx.state.closing();
    tokio::spawn(async move {
        // Tells the client to wait 3 s before reconnecting; the first bytes also flush the
        // response head, so the client knows it is connected.
        if tx.try_send(Bytes::from_static(b"retry: 3000\n\n")).is_err() {
            return;
        }
        let mut tick = tokio::time::interval(KEEP_ALIVE);
        tick.tick().await;
        loop {
            let batch = tokio::select! {
                b = feed.recv() => b,
                _ = tick.tick() => {
                    if !queue(&tx, Bytes::from_static(b": keep-alive\n\n")) {
                        break;
                    }
                    continue;
                }
                a = alerts.recv() => match a {
                    Ok(a) => {
                        let m = format!("event: alert\ndata: {a}\n\n");
                        if !queue(&tx, Bytes::from(m)) {
                            break;
                        }
                        continue;
                    }
                    // Too slow, or the server is going away.
                    Err(_) => break,
                },
                a = system.recv() => match a {
                    Ok(a) => {
                        let m = format!("event: system_alert\ndata: {a}\n\n");
                        if !queue(&tx, Bytes::from(m)) {
                            break;
                        }
                        continue;
                    }
                    Err(_) => break,
                },
                _ = closing.changed() => break,
                _ = tx.closed() => break,
            };
            let batch = match batch {
                Ok(b) => b,
                // Behind by more than the feed holds: too slow; it reconnects and reads the
                // lists for what it missed.
                Err(broadcast::error::RecvError::Lagged(_)) => break,
                Err(broadcast::error::RecvError::Closed) => break,
            };
            let m = messages(&batch);
            if !m.is_empty() && !queue(&tx, Bytes::from(m)) {
                break;
            }
        }
    });
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// Queues one message; false when the client left or is too slow (its queue is full), which
/// ends the stream.
fn queue(tx: &mpsc::Sender<Bytes>, m: Bytes) -> bool {
    tx.try_send(m).is_ok()
}

/// What a WebSocket carries.
#[derive(Clone, Copy)]
enum Feed {
    /// HSI's `/ws/events`: events as stored.
    Events,
    /// HSI's `/ws/system`: the system's status every few seconds.
    System,
    /// SentryShot's `/api/logs`: log entries as stored.
    Logs,
}

/// How long a WebSocket client may take to take one message before it is disconnected.
const WS_SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// How often `/ws/system` sends the status.
const SYSTEM_EVERY: Duration = Duration::from_secs(5);

pub(super) fn ws_routes(r: &mut Router) {
    r.add(
        GET,
        "/ws/events",
        "push",
        "HSI's WebSocket of events: {\"type\": \"event\", \"data\": <event>} as each is stored",
        |ctx| async move { websocket(ctx, Feed::Events) },
    );
    r.add(
        GET,
        "/ws/system",
        "push",
        "HSI's WebSocket of system status: {\"type\": \"system_status\", \"data\": ...} every 5 s",
        |ctx| async move { websocket(ctx, Feed::System) },
    );
}

/// SentryShot's live log: a WebSocket on the same path as HSI's log list (a GET without
/// the upgrade is the list).
pub(crate) fn is_websocket(ctx: &Ctx) -> bool {
    ctx.headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// SentryShot's `/api/logs` WebSocket.
pub(crate) fn log_socket(ctx: Ctx) -> Reply {
    websocket(ctx, Feed::Logs)
}

/// The JSON texts a batch makes for `feed`.
fn ws_messages(batch: &Batch, feed: Feed) -> Vec<String> {
    let mut out = Vec::new();
    for m in &batch.mutations {
        match (feed, m) {
            (Feed::Events, Mutation::PutEvent(e)) => {
                let v = json!({"type": "event", "data": super::value_of(&WireEvent::from(&**e))});
                out.push(v.to_string());
            }
            (Feed::Events, Mutation::DeleteEvent(id)) => {
                out.push(
                    json!({"type": "event_deleted", "data": {"id": id.to_string()}}).to_string(),
                );
            }
            (Feed::Logs, Mutation::PutLog(e)) => {
                out.push(super::logs::sentryshot_wire(e).to_string());
            }
            _ => {}
        }
    }
    out
}

/// Accepts the WebSocket upgrade and serves `feed` on it.
fn websocket(mut ctx: Ctx, feed: Feed) -> Reply {
    use crate::error::ApiError;
    if !is_websocket(&ctx) {
        return Err(ApiError::Status(
            hyper::StatusCode::UPGRADE_REQUIRED,
            "this is a WebSocket endpoint: connect with a WebSocket client (Upgrade: websocket)"
                .into(),
        ));
    }
    let key = ctx
        .headers
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|k| tungstenite::handshake::derive_accept_key(k.as_bytes()))
        .ok_or_else(|| ApiError::bad_request("a WebSocket upgrade needs Sec-WebSocket-Key"))?;
    let on = ctx
        .upgrade
        .take()
        .ok_or_else(|| ApiError::bad_request("this connection cannot be upgraded"))?;
    let changes = ctx.state.store().changes();
    let alerts = match feed {
        Feed::System => ctx.state.notifier().subscribe_system(),
        _ => ctx.state.notifier().subscribe(),
    };
    let state = ctx.state.clone();
    tokio::spawn(async move {
        let Ok(io) = on.await else { return };
        let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            hyper_util::rt::TokioIo::new(io),
            tungstenite::protocol::Role::Server,
            None,
        )
        .await;
        serve_socket(ws, changes, alerts, state, feed).await;
    });
    let mut r = Response::new(crate::reply::full(Bytes::new()));
    *r.status_mut() = hyper::StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&key) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    Ok(r)
}

async fn serve_socket<S>(
    ws: tokio_tungstenite::WebSocketStream<S>,
    mut changes: broadcast::Receiver<std::sync::Arc<Batch>>,
    mut alerts: broadcast::Receiver<std::sync::Arc<serde_json::Value>>,
    state: crate::AppState,
    feed: Feed,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures_util::{SinkExt, StreamExt};
    use tungstenite::Message;
    let (mut sink, mut incoming) = ws.split();
    let mut closing = state.closing();
    let mut tick = tokio::time::interval(SYSTEM_EVERY);
    loop {
        let texts = tokio::select! {
            b = changes.recv() => match b {
                Ok(b) => ws_messages(&b, feed),
                // Too far behind: disconnected, as a slow client is.
                Err(_) => break,
            },
            _ = tick.tick(), if matches!(feed, Feed::System) => vec![system_status(&state).await.to_string()],
            a = alerts.recv(), if !matches!(feed, Feed::Logs) => match a {
                Ok(a) if matches!(feed, Feed::System) => vec![json!({"type": "system_alert", "data": *a}).to_string()],
                Ok(a) => vec![json!({"type": "alert", "data": *a}).to_string()],
                Err(_) => break,
            },
            m = incoming.next() => match m {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                // Pings are answered by the protocol layer with the next write.
                Some(Ok(_)) => Vec::new(),
            },
            _ = closing.changed() => break,
        };
        for t in texts {
            match tokio::time::timeout(WS_SEND_TIMEOUT, sink.send(Message::text(t))).await {
                Ok(Ok(())) => {}
                // Gone, or too slow to take a message: disconnected.
                _ => return,
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
}

/// HSI's system status: uptime, and each camera's state.
async fn system_status(state: &crate::AppState) -> serde_json::Value {
    let cameras: Vec<vigil_core::CameraConfig> = state.store().cameras().await.unwrap_or_default();
    let mut statuses = match state.nvr() {
        Some(n) => n.status().await,
        None => Vec::new(),
    };
    let mut cams = serde_json::Map::new();
    for c in cameras {
        let s = statuses
            .iter()
            .position(|s| s.id == c.id)
            .map(|i| statuses.swap_remove(i));
        let status = match (c.enabled, s) {
            (false, _) => "disabled",
            (true, Some(s)) if s.stream.as_ref().is_some_and(|st| st.connected) => "online",
            (true, Some(_)) => "offline",
            (true, None) => "unknown",
        };
        cams.insert(c.id.to_string(), json!({"status": status}));
    }
    json!({
        "type": "system_status",
        "data": {
            "uptime_seconds": state.uptime().as_secs(),
            "cameras": cams,
            "timestamp": state.now().to_string(),
        },
    })
}
