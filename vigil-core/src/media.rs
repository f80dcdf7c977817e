//! The media seams: [`Camera`] (encoded video in), [`Detector`] (objects in a picture) and
//! [`Tracker`] (objects across pictures).

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::id::CameraId;
use crate::model::{ObjectDetection, TrackedObject};
use crate::time::Timestamp;

/// Which of a camera's streams.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StreamRole {
    /// The main stream, recorded as it arrives.
    Record,
    /// The sub stream, decoded for motion and detection.
    Detect,
}

/// Video codec of a stream.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VideoCodec {
    /// H.264 / AVC.
    H264,
    /// H.265 / HEVC.
    H265,
}

/// What a decoder and an MP4 writer need to know about a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VideoParams {
    /// Codec.
    pub codec: VideoCodec,
    /// RFC 6381 codec string (`avc1.64001f`).
    pub rfc6381_codec: String,
    /// Coded width.
    pub width: u32,
    /// Coded height.
    pub height: u32,
    /// The decoder configuration record (`avcC` / `hvcC` box body).
    pub extra_data: Vec<u8>,
}

/// One encoded video frame (an access unit).
#[derive(Clone, Debug)]
pub struct VideoFrame {
    /// Presentation time on the stream's 90 kHz timeline.
    pub pts_90k: i64,
    /// Wall-clock time the frame was captured, mapped once per session from the RTP clock.
    pub time: Timestamp,
    /// Whether it is a key frame (IDR) where decoding and segments can start.
    pub is_key: bool,
    /// The access unit in AVC format (4-byte length-prefixed NAL units).
    pub data: Arc<[u8]>,
    /// Set on the first frame and whenever the parameters change.
    pub new_params: Option<Arc<VideoParams>>,
}

/// A connected stream of encoded frames.
#[async_trait]
pub trait VideoStream: Send {
    /// The stream's current parameters, once known (an RTSP camera may only send them in
    /// band, with its first key frame).
    fn params(&self) -> Option<Arc<VideoParams>>;
    /// The next frame; `Ok(None)` when the source ended (the server closed the stream).
    async fn next(&mut self) -> Result<Option<VideoFrame>>;
}

/// A source of encoded video: an RTSP camera, a file, a synthetic scene.
///
/// A camera only connects; supervision (reconnects, the stall watchdog, statistics) is the
/// pipeline's job, so every implementation gets it for free.
#[async_trait]
pub trait Camera: Send + Sync {
    /// The camera this source belongs to.
    fn id(&self) -> &CameraId;
    /// Opens one of the camera's streams.
    async fn connect(&self, role: StreamRole) -> Result<Box<dyn VideoStream>>;
}

/// Pixel layout of an [`Image`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PixelFormat {
    /// 8-bit luma only.
    Gray8,
    /// Packed 8-bit RGB.
    Rgb8,
    /// Planar YUV 4:2:0 (Y plane, then U, then V), as decoders produce.
    I420,
}

/// A decoded picture.
#[derive(Clone, Debug)]
pub struct Image {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Layout of `data`.
    pub format: PixelFormat,
    /// Tightly packed pixels.
    pub data: Arc<[u8]>,
    /// When it was captured.
    pub time: Timestamp,
}

/// What a detector is and what it can find.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetectorInfo {
    /// Backend and model (`yolov8n (candle, cpu)`).
    pub name: String,
    /// Labels it can report.
    pub labels: Vec<String>,
    /// Square input size in pixels it works best at.
    pub input_size: u32,
}

/// Finds objects in pictures: YOLOv8 on candle, or any backend a user plugs in.
#[async_trait]
pub trait Detector: Send + Sync {
    /// What it is.
    fn info(&self) -> DetectorInfo;
    /// Objects in `image`, with boxes normalised to the image.
    async fn detect(&self, image: Arc<Image>) -> Result<Vec<ObjectDetection>>;

    /// Objects in each of `images` (the regions of one frame). Backends that batch override
    /// this; the default runs them one by one.
    async fn detect_many(&self, images: Vec<Arc<Image>>) -> Result<Vec<Vec<ObjectDetection>>> {
        let mut out = Vec::with_capacity(images.len());
        for image in images {
            out.push(self.detect(image).await?);
        }
        Ok(out)
    }
}

/// Follows objects across the frames of one camera and gives them stable ids.
///
/// Unlike the other seams this one is synchronous: tracking is pure computation on a few dozen
/// boxes per frame, owned by one camera's pipeline, with nothing to wait for.
pub trait Tracker: Send {
    /// Feeds the detections of the frame captured at `time`; returns every object tracked after
    /// it (including ones not detected in this frame but not yet given up).
    fn update(&mut self, time: Timestamp, detections: &[ObjectDetection]) -> Vec<TrackedObject>;
    /// Objects given up since the last call (gone for too long).
    fn take_removed(&mut self) -> Vec<TrackedObject>;
}
