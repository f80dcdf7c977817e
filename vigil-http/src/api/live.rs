//! Live pictures: `latest.jpg` and the MJPEG streams (Frigate's `/api/<camera>`, SpectraX's
//! `/video/stream`), with Frigate's overlays.
//!
//! Viewers of one camera at one size and one set of overlays share one encoder: a task that
//! draws and encodes each new analysed picture once and keeps only the newest JPEG in a watch
//! channel. Each viewer takes from it at its own rate; a viewer whose connection is slow gets
//! the frames it can take and misses the others. Nothing a viewer does reaches the camera,
//! the analysis or the recorder. The encoder stops when its last viewer goes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::body::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use tokio::sync::{mpsc, watch};
use vigil_core::pipeline::{LiveFrame, LiveHub};
use vigil_core::{CameraConfig, CameraId};
use vigil_detect::{render_live, Overlays};

use super::cameras::{camera_of, camera_or_first};
use super::{flag, number, GET};
use crate::error::ApiError;
use crate::reply::{bytes, ChannelBody, Reply};
use crate::router::{Ctx, Router};

pub(super) fn routes(r: &mut Router) {
    r.add(
        GET,
        "/api/{camera}",
        "live",
        "MJPEG stream with overlays (fps, h, bbox, timestamp, zones, mask, motion, regions)",
        mjpeg,
    );
    r.add(
        GET,
        "/api/{camera}/latest.jpg",
        "live",
        "The newest analysed picture, with overlays",
        latest,
    );
    r.add(
        GET,
        "/api/{camera}/latest.webp",
        "live",
        "The newest analysed picture (JPEG; Frigate's webp name)",
        latest,
    );
    r.add(
        GET,
        "/api/cameras/{camera}/snapshot",
        "live",
        "The newest picture of a camera (HSI)",
        latest,
    );
    r.add(
        GET,
        "/video/stream",
        "live",
        "MJPEG stream with detection overlays of ?path= (SpectraX)",
        video_stream,
    );
}

/// Which stream: a camera at a height with overlays and a quality.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct StreamKey {
    camera: CameraId,
    height: Option<u32>,
    overlays: Overlays,
    quality: u8,
}

/// The encoders at work, by what they make.
#[derive(Default)]
pub(crate) struct MjpegHub {
    encoders: Mutex<HashMap<StreamKey, watch::Sender<Option<Bytes>>>>,
}

impl MjpegHub {
    /// Follows the JPEGs of `key`, starting its encoder when it has none.
    fn subscribe(
        self: &Arc<Self>,
        key: StreamKey,
        cfg: &CameraConfig,
        live: &LiveHub,
    ) -> watch::Receiver<Option<Bytes>> {
        let mut map = self.encoders.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = map.get(&key) {
            // An encoder whose viewers all left is on its way out: start a new one.
            if tx.receiver_count() > 0 {
                return tx.subscribe();
            }
        }
        let (tx, rx) = watch::channel(None);
        map.insert(key.clone(), tx.clone());
        let frames = live.subscribe(&key.camera);
        let hub = self.clone();
        let zones = cfg.zones.clone();
        let masks = cfg.motion.masks.clone();
        tokio::spawn(async move {
            encode(&key, frames, &tx, zones, masks).await;
            let mut map = hub.encoders.lock().unwrap_or_else(|p| p.into_inner());
            if map.get(&key).is_some_and(|t| t.same_channel(&tx)) {
                map.remove(&key);
            }
        });
        rx
    }
}

async fn encode(
    key: &StreamKey,
    mut frames: watch::Receiver<Option<Arc<LiveFrame>>>,
    tx: &watch::Sender<Option<Bytes>>,
    zones: Vec<vigil_core::Zone>,
    masks: Vec<vigil_core::Polygon>,
) {
    frames.mark_changed();
    loop {
        tokio::select! {
            _ = tx.closed() => return,
            changed = frames.changed() => if changed.is_err() { return },
        }
        let Some(frame) = frames.borrow_and_update().clone() else {
            continue;
        };
        let (k, z, m) = (key.clone(), zones.clone(), masks.clone());
        let jpeg = tokio::task::spawn_blocking(move || {
            render_live(&frame, &z, &m, &k.overlays, k.height, k.quality)
        })
        .await;
        match jpeg {
            Ok(Ok(j)) => {
                tx.send_replace(Some(Bytes::from(j)));
            }
            Ok(Err(e)) => {
                tracing::warn!(camera = %key.camera, err = %e, "live picture not drawn");
                return;
            }
            Err(_) => return,
        }
    }
}

/// The overlay, size and quality parameters of Frigate's debug stream and `latest.jpg`.
fn view_params(
    ctx: &Ctx,
    cfg: &CameraConfig,
    overlays_default: bool,
) -> Result<(Overlays, Option<u32>, u8, Option<u32>), ApiError> {
    let d = overlays_default;
    let mut o = Overlays {
        bbox: d,
        timestamp: d,
        zones: false,
        mask: false,
        motion: false,
        regions: false,
    };
    let mut height = None;
    let mut quality = 70u8;
    let mut fps = None;
    for (k, v) in ctx.query_pairs() {
        let k = k.as_str();
        match k {
            "bbox" => o.bbox = flag(k, &v)?,
            "timestamp" => o.timestamp = flag(k, &v)?,
            "zones" => o.zones = flag(k, &v)?,
            "mask" => o.mask = flag(k, &v)?,
            "motion" => o.motion = flag(k, &v)?,
            "regions" => o.regions = flag(k, &v)?,
            "h" | "height" => {
                let h: u32 = number(k, &v)?;
                if !(16..=2160).contains(&h) {
                    return Err(ApiError::query(
                        k,
                        format!("must be within 16..=2160, got {h}"),
                    ));
                }
                // Even heights only: the encoder works on 2x2 blocks of chroma.
                height = Some(h / 2 * 2);
            }
            "quality" => {
                let q: u8 = number(k, &v)?;
                if !(1..=100).contains(&q) {
                    return Err(ApiError::query(
                        k,
                        format!("must be within 1..=100, got {q}"),
                    ));
                }
                quality = q;
            }
            "fps" => {
                let f: u32 = number(k, &v)?;
                if !(1..=30).contains(&f) {
                    return Err(ApiError::query(
                        k,
                        format!("must be within 1..=30, got {f}"),
                    ));
                }
                fps = Some(f);
            }
            _ => {}
        }
    }
    if height == Some(cfg.detect.height) {
        height = None;
    }
    Ok((o, height, quality, fps))
}

fn live_hub(ctx: &Ctx) -> Result<&Arc<LiveHub>, ApiError> {
    ctx.state.nvr().map(|n| n.live()).ok_or_else(|| {
        ApiError::Status(
            StatusCode::SERVICE_UNAVAILABLE,
            "no cameras run in this server".into(),
        )
    })
}

fn no_picture(cfg: &CameraConfig) -> ApiError {
    let why = if !cfg.enabled {
        "it is disabled"
    } else if !cfg.detect.enabled && !cfg.motion.enabled {
        "its pictures are decoded only while motion or object detection is on"
    } else {
        "none was analysed yet"
    };
    ApiError::Status(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("no picture from camera {}: {why}", cfg.id),
    )
}

async fn latest_picture(ctx: &Ctx, cfg: CameraConfig) -> Reply {
    let (overlays, height, quality, _) = view_params(ctx, &cfg, false)?;
    let frame = live_hub(ctx)?
        .latest(&cfg.id)
        .ok_or_else(|| no_picture(&cfg))?;
    let jpeg = tokio::task::spawn_blocking(move || {
        render_live(
            &frame,
            &cfg.zones,
            &cfg.motion.masks,
            &overlays,
            height,
            quality,
        )
    })
    .await
    .map_err(|e| ApiError::Core(vigil_core::Error::internal(e.to_string())))??;
    let mut r = bytes(StatusCode::OK, "image/jpeg", jpeg);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

async fn latest(ctx: Ctx) -> Reply {
    let cfg = camera_of(&ctx).await?;
    latest_picture(&ctx, cfg).await
}

const BOUNDARY: &str = "frame";

/// Streams `cfg`'s pictures as multipart JPEG parts.
async fn stream(ctx: &Ctx, cfg: CameraConfig, overlays_default: bool) -> Reply {
    let (overlays, height, quality, fps) = view_params(ctx, &cfg, overlays_default)?;
    let hub = live_hub(ctx)?.clone();
    let key = StreamKey {
        camera: cfg.id.clone(),
        height,
        overlays,
        quality,
    };
    let mut jpegs = ctx.state.mjpeg().subscribe(key, &cfg, &hub);
    let fps = fps.unwrap_or(cfg.detect.fps.max(1));
    let every = Duration::from_secs_f64(1.0 / f64::from(fps));
    let (tx, body) = ChannelBody::channel(1);
    let mut closing = ctx.state.closing();
    tokio::spawn(async move {
        jpegs.mark_changed();
        let mut due = Instant::now();
        loop {
            tokio::select! {
                changed = jpegs.changed() => if changed.is_err() { break },
                _ = closing.changed() => break,
                _ = tx.closed() => break,
            }
            let now = Instant::now();
            if now < due {
                continue;
            }
            due = (due + every).max(now);
            let Some(jpeg) = jpegs.borrow_and_update().clone() else {
                continue;
            };
            if !send_part(&tx, &jpeg) {
                break;
            }
        }
    });
    let mut r = Response::new(body);
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("multipart/x-mixed-replace; boundary={BOUNDARY}"))
    {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// Queues one part; a full queue (the viewer is slow) drops it. False when the viewer left.
fn send_part(tx: &mpsc::Sender<Bytes>, jpeg: &Bytes) -> bool {
    let head = format!(
        "--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
        jpeg.len()
    );
    let mut part = Vec::with_capacity(head.len() + jpeg.len() + 2);
    part.extend_from_slice(head.as_bytes());
    part.extend_from_slice(jpeg);
    part.extend_from_slice(b"\r\n");
    match tx.try_send(Bytes::from(part)) {
        Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => true,
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

async fn mjpeg(ctx: Ctx) -> Reply {
    let cfg = camera_of(&ctx).await?;
    stream(&ctx, cfg, false).await
}

/// SpectraX's stream: `?path=` names the camera (`video/<id>` or `<id>`), the first camera
/// when absent; its overlays are on unless asked off.
async fn video_stream(ctx: Ctx) -> Reply {
    let path = ctx.query_value("path");
    let id = path.as_deref().map(|p| {
        let id = p.trim_start_matches('/');
        id.strip_prefix("video/").unwrap_or(id)
    });
    let cfg = camera_or_first(&ctx, id).await?;
    stream(&ctx, cfg, true).await
}
