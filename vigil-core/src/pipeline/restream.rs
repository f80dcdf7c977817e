//! The restream tap: each camera's record stream as it arrives, for servers that pass it on
//! without re-encoding (vigil-http's RTSP server, which Home Assistant plays).
//!
//! [`RestreamHub::tap`] wraps a [`Camera`] so that every frame of its record stream is also
//! sent to a broadcast channel. Nothing is kept and nothing waits: with no one watching, a
//! frame costs a reference count; a watcher that falls behind misses frames (and should wait
//! for the next key frame).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::{broadcast, watch};

use crate::error::Result;
use crate::id::CameraId;
use crate::media::{Camera, StreamRole, VideoFrame, VideoParams, VideoStream};

/// Frames a watcher may fall behind by before it misses some: about two seconds at 30 fps.
const BACKLOG: usize = 64;

/// One camera's record stream, as it arrives.
pub struct Feed {
    frames: broadcast::Sender<VideoFrame>,
    params: watch::Sender<Option<Arc<VideoParams>>>,
}

impl Feed {
    fn new() -> Feed {
        Feed {
            frames: broadcast::channel(BACKLOG).0,
            params: watch::channel(None).0,
        }
    }

    /// The stream's parameters, once a connection gave them.
    pub fn params(&self) -> Option<Arc<VideoParams>> {
        self.params.borrow().clone()
    }

    /// The frames from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<VideoFrame> {
        self.frames.subscribe()
    }
}

/// Every camera's [`Feed`].
#[derive(Default)]
pub struct RestreamHub {
    feeds: Mutex<HashMap<CameraId, Arc<Feed>>>,
}

impl RestreamHub {
    /// An empty hub.
    pub fn new() -> RestreamHub {
        RestreamHub::default()
    }

    /// The feed of `camera`, made on first use (a camera not running yet has one that is
    /// silent until it runs).
    pub fn feed(&self, camera: &CameraId) -> Arc<Feed> {
        let mut feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        feeds
            .entry(camera.clone())
            .or_insert_with(|| Arc::new(Feed::new()))
            .clone()
    }

    /// `camera`, with its record stream sent to its feed as well.
    pub fn tap(&self, camera: Arc<dyn Camera>) -> Arc<dyn Camera> {
        let feed = self.feed(camera.id());
        Arc::new(Tapped {
            inner: camera,
            feed,
        })
    }
}

struct Tapped {
    inner: Arc<dyn Camera>,
    feed: Arc<Feed>,
}

#[async_trait]
impl Camera for Tapped {
    fn id(&self) -> &CameraId {
        self.inner.id()
    }

    async fn connect(&self, role: StreamRole) -> Result<Box<dyn VideoStream>> {
        let stream = self.inner.connect(role).await?;
        if role != StreamRole::Record {
            return Ok(stream);
        }
        if let Some(p) = stream.params() {
            self.feed.params.send_replace(Some(p));
        }
        Ok(Box::new(TappedStream {
            inner: stream,
            feed: self.feed.clone(),
        }))
    }
}

struct TappedStream {
    inner: Box<dyn VideoStream>,
    feed: Arc<Feed>,
}

impl Drop for TappedStream {
    fn drop(&mut self) {
        // Disconnected: until the next connection gives them, nothing can be described.
        self.feed.params.send_replace(None);
    }
}

#[async_trait]
impl VideoStream for TappedStream {
    fn params(&self) -> Option<Arc<VideoParams>> {
        self.inner.params()
    }

    async fn next(&mut self) -> Result<Option<VideoFrame>> {
        let f = self.inner.next().await?;
        if let Some(f) = &f {
            if let Some(p) = &f.new_params {
                self.feed.params.send_replace(Some(p.clone()));
            }
            if self.feed.frames.receiver_count() > 0 {
                // Only fails when the last watcher left meanwhile.
                let _ = self.feed.frames.send(f.clone());
            }
        }
        Ok(f)
    }
}
