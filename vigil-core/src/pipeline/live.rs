//! The live view of each camera: the latest analysed picture and what the analysis saw in it
//! (objects, motion, the regions the detector ran on), for `latest.jpg` and the MJPEG streams.
//!
//! One [`tokio::sync::watch`] channel per camera holds only the newest [`LiveFrame`]: the
//! analysis publishes without ever waiting, and a viewer that falls behind skips to the newest
//! frame instead of holding anything up.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::id::CameraId;
use crate::media::Image;
use crate::model::{BBox, TrackedObject};
use crate::time::Timestamp;

/// One analysed picture and what was found in it.
#[derive(Clone, Debug)]
pub struct LiveFrame {
    /// When it was captured.
    pub time: Timestamp,
    /// The picture, at the detect size.
    pub image: Image,
    /// The objects followed after it.
    pub objects: Vec<TrackedObject>,
    /// Moving areas.
    pub motion: Vec<BBox>,
    /// Where the detector ran (empty when it ran on the whole picture or not at all).
    pub regions: Vec<BBox>,
}

/// The newest frame of a camera, if one came yet.
pub type LiveReceiver = watch::Receiver<Option<Arc<LiveFrame>>>;

/// Every camera's live view.
#[derive(Debug, Default)]
pub struct LiveHub {
    cameras: Mutex<BTreeMap<CameraId, watch::Sender<Option<Arc<LiveFrame>>>>>,
}

impl LiveHub {
    /// An empty hub.
    pub fn new() -> LiveHub {
        LiveHub::default()
    }

    fn sender<R>(
        &self,
        camera: &CameraId,
        f: impl FnOnce(&watch::Sender<Option<Arc<LiveFrame>>>) -> R,
    ) -> R {
        let mut map = self.cameras.lock().unwrap_or_else(|p| p.into_inner());
        let tx = map
            .entry(camera.clone())
            .or_insert_with(|| watch::channel(None).0);
        f(tx)
    }

    /// Makes `frame` the newest of `camera` (never waits).
    pub fn publish(&self, camera: &CameraId, frame: LiveFrame) {
        self.sender(camera, |tx| {
            tx.send_replace(Some(Arc::new(frame)));
        });
    }

    /// Follows `camera`'s frames (also before its first frame, or before it exists).
    pub fn subscribe(&self, camera: &CameraId) -> LiveReceiver {
        self.sender(camera, watch::Sender::subscribe)
    }

    /// The newest frame of `camera`.
    pub fn latest(&self, camera: &CameraId) -> Option<Arc<LiveFrame>> {
        self.sender(camera, |tx| tx.borrow().clone())
    }

    /// Forgets `camera`'s frame (it was removed); its viewers see the channel close.
    pub fn remove(&self, camera: &CameraId) {
        let mut map = self.cameras.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(camera);
    }
}
