//! A camera that plays a file (MP4 or Annex B H.264) in a loop at real-time pace.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::error::{Error, ErrorKind, Result};
use crate::h264::AccessUnits;
use crate::id::CameraId;
use crate::media::{Camera, StreamRole, VideoFrame, VideoParams, VideoStream};
use crate::mp4;
use crate::time::{Clocks, Timestamp};

/// Plays `path` over and over, each frame at the time its timestamps say, as a live camera
/// would send it. Both stream roles play the same file.
pub struct FileCamera {
    id: CameraId,
    path: PathBuf,
    fps: u32,
    clocks: Arc<dyn Clocks>,
}

impl FileCamera {
    /// A camera for `path`. `fps` is used for Annex B files, which carry no timing (30 when
    /// `None`); an MP4 file's own timestamps are used.
    pub fn new(
        id: CameraId,
        path: impl Into<PathBuf>,
        fps: Option<u32>,
        clocks: Arc<dyn Clocks>,
    ) -> Self {
        FileCamera {
            id,
            path: path.into(),
            fps: fps.unwrap_or(30).clamp(1, 240),
            clocks,
        }
    }
}

/// One frame of the file: (pts from the start of the file in 90 kHz ticks, data, key).
type Frame = (i64, Arc<[u8]>, bool);

struct Loaded {
    params: Arc<VideoParams>,
    frames: Vec<Frame>,
    /// Length of one pass through the file, in ticks.
    period: i64,
}

fn load(path: &std::path::Path, fps: u32) -> Result<Loaded> {
    let bytes = std::fs::read(path).map_err(|e| {
        let kind = if e.kind() == std::io::ErrorKind::NotFound {
            ErrorKind::NotFound
        } else {
            ErrorKind::Unavailable
        };
        Error::new(kind, format!("cannot read {}: {e}", path.display()))
    })?;
    let is_mp4 = bytes.get(4..8).is_some_and(|t| t == b"ftyp");
    if is_mp4 {
        let info = mp4::read(path)?;
        let scale = i64::from(info.timescale.max(1));
        let to90k = |t: u64| (t as i64).saturating_mul(90_000) / scale;
        let mut frames = Vec::with_capacity(info.samples.len());
        for s in &info.samples {
            let range = s.offset as usize..(s.offset as usize).saturating_add(s.size as usize);
            let data = bytes
                .get(range)
                .ok_or_else(|| Error::new(ErrorKind::DataLoss, "sample outside the file"))?;
            frames.push((to90k(s.dts), Arc::from(data), s.is_key));
        }
        let period = to90k(info.duration());
        finish(Arc::new(info.params), frames, period, path)
    } else {
        let aus = AccessUnits::default().split(&bytes)?;
        let tick = 90_000 / i64::from(fps);
        let params = aus
            .first()
            .map(|a| Arc::new(a.params.clone()))
            .ok_or_else(|| Error::invalid(format!("{}: no H.264 pictures", path.display())))?;
        let frames: Vec<Frame> = aus
            .into_iter()
            .enumerate()
            .map(|(i, a)| (i as i64 * tick, Arc::from(a.data), a.is_key))
            .collect();
        let period = frames.len() as i64 * tick;
        finish(params, frames, period, path)
    }
}

fn finish(
    params: Arc<VideoParams>,
    mut frames: Vec<Frame>,
    period: i64,
    path: &std::path::Path,
) -> Result<Loaded> {
    // Start at the first key frame so every pass decodes from its first frame.
    let first_key = frames
        .iter()
        .position(|f| f.2)
        .ok_or_else(|| Error::invalid(format!("{}: no key frame", path.display())))?;
    frames.drain(..first_key);
    if frames.is_empty() || period <= 0 {
        return Err(Error::invalid(format!("{}: no frames", path.display())));
    }
    Ok(Loaded {
        params,
        frames,
        period,
    })
}

#[async_trait]
impl Camera for FileCamera {
    fn id(&self) -> &CameraId {
        &self.id
    }

    async fn connect(&self, _role: StreamRole) -> Result<Box<dyn VideoStream>> {
        let path = self.path.clone();
        let fps = self.fps;
        let loaded = tokio::task::spawn_blocking(move || load(&path, fps))
            .await
            .map_err(|e| Error::internal(format!("file loader: {e}")))??;
        Ok(Box::new(FileStream {
            loaded,
            next: 0,
            pass: 0,
            started: Instant::now(),
            started_wall: self.clocks.realtime(),
        }))
    }
}

struct FileStream {
    loaded: Loaded,
    next: usize,
    pass: i64,
    started: Instant,
    started_wall: Timestamp,
}

#[async_trait]
impl VideoStream for FileStream {
    fn params(&self) -> Option<Arc<VideoParams>> {
        Some(self.loaded.params.clone())
    }

    async fn next(&mut self) -> Result<Option<VideoFrame>> {
        if self.next == self.loaded.frames.len() {
            self.next = 0;
            self.pass += 1;
        }
        let first_pts = self.loaded.frames[0].0;
        let (pts, data, key) = self.loaded.frames[self.next].clone();
        let pts = pts - first_pts + self.pass * self.loaded.period;
        let offset_us = pts.saturating_mul(100) / 9;
        let due = self.started + std::time::Duration::from_micros(offset_us.max(0) as u64);
        tokio::time::sleep_until(due).await;
        let new_params = (self.next == 0 && self.pass == 0).then(|| self.loaded.params.clone());
        self.next += 1;
        Ok(Some(VideoFrame {
            pts_90k: pts,
            time: Timestamp(self.started_wall.0 + offset_us),
            is_key: key,
            data,
            new_params,
        }))
    }
}
