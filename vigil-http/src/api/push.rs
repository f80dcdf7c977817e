//! Push: picam's server-sent events at `/events`, made from the store's change feed
//! ([`vigil_core::Store::changes`]): each event as it is stored, and `archive_updated` when a
//! recording, snapshot or timelapse frame is added.
//!
//! A client that does not keep up is disconnected (its queue holds [`QUEUE`] batches; the
//! feed holds [`vigil_core::store::CHANGE_FEED_DEPTH`] batches): nothing it does reaches the
//! store or the pipeline, and it can reconnect.

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
        "picam's server-sent events: `events` (each event as stored), `event_deleted`, `archive_updated` (?token= for browsers)",
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
