//! The synthetic camera: a scene drawn in I420 (a sky-to-ground gradient, a figure walking
//! back and forth, a box crossing faster) and encoded with OpenH264, a key frame every two
//! seconds, delivered at real-time pace.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::encode::H264Encoder;
use async_trait::async_trait;
use tokio::sync::mpsc;
use vigil_core::{
    Camera, CameraId, Clocks, Error, Result, StreamRole, Timestamp, VideoFrame, VideoParams,
    VideoStream,
};

/// A camera that needs no camera: a generated moving scene, encoded to H.264 in process.
pub struct SyntheticCamera {
    id: CameraId,
    width: u32,
    height: u32,
    fps: u32,
    clocks: Arc<dyn Clocks>,
}

impl SyntheticCamera {
    /// A `width`x`height` scene at `fps`. Sizes must be even, from 64x64 to 3840x2160; fps from
    /// 1 to 60.
    pub fn new(
        id: CameraId,
        width: u32,
        height: u32,
        fps: u32,
        clocks: Arc<dyn Clocks>,
    ) -> Result<Self> {
        if !(64..=3840).contains(&width) || !(64..=2160).contains(&height) {
            return Err(Error::invalid(format!(
                "synthetic camera size {width}x{height}: must be within 64x64 and 3840x2160"
            )));
        }
        if !width.is_multiple_of(2) || !height.is_multiple_of(2) {
            return Err(Error::invalid(format!(
                "synthetic camera size {width}x{height}: width and height must be even"
            )));
        }
        if !(1..=60).contains(&fps) {
            return Err(Error::invalid(format!(
                "synthetic camera fps {fps}: must be 1 to 60"
            )));
        }
        Ok(SyntheticCamera {
            id,
            width,
            height,
            fps,
            clocks,
        })
    }
}

#[async_trait]
impl Camera for SyntheticCamera {
    fn id(&self) -> &CameraId {
        &self.id
    }

    async fn connect(&self, _role: StreamRole) -> Result<Box<dyn VideoStream>> {
        let (tx, rx) = mpsc::channel(4);
        let (w, h, fps) = (self.width, self.height, self.fps);
        let wall = self.clocks.realtime();
        let name = format!("synth-{}", self.id);
        // Encoding is CPU work: it runs on its own thread, paced to real time, and stops when the
        // stream is dropped.
        std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                if let Err(e) = produce(w, h, fps, wall, &tx) {
                    let _ = tx.blocking_send(Err(e));
                }
            })
            .map_err(|e| Error::internal(format!("spawn synthetic camera thread: {e}")))?;
        Ok(Box::new(SyntheticStream { rx, params: None }))
    }
}

struct SyntheticStream {
    rx: mpsc::Receiver<Result<VideoFrame>>,
    params: Option<Arc<VideoParams>>,
}

#[async_trait]
impl VideoStream for SyntheticStream {
    fn params(&self) -> Option<Arc<VideoParams>> {
        self.params.clone()
    }

    async fn next(&mut self) -> Result<Option<VideoFrame>> {
        match self.rx.recv().await {
            Some(Ok(f)) => {
                if let Some(p) = &f.new_params {
                    self.params = Some(p.clone());
                }
                Ok(Some(f))
            }
            Some(Err(e)) => Err(e),
            None => Ok(None),
        }
    }
}

/// Draws, encodes and sends frames until the receiver goes away.
fn produce(
    w: u32,
    h: u32,
    fps: u32,
    wall: Timestamp,
    tx: &mpsc::Sender<Result<VideoFrame>>,
) -> Result<()> {
    let bitrate = (u64::from(w) * u64::from(h) * u64::from(fps) / 8).clamp(200_000, 8_000_000);
    let mut enc = H264Encoder::new(w, h, fps, bitrate as u32, 2 * fps)?;
    let mut scene = Scene::new(w as usize, h as usize);
    let tick = 90_000 / i64::from(fps);
    let started = Instant::now();
    for n in 0i64.. {
        let due = started + Duration::from_micros((n * tick * 100 / 9) as u64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        scene.draw(n as f64 / f64::from(fps));
        let Some(e) = enc.encode(&scene.y, &scene.u, &scene.v)? else {
            continue;
        };
        let pts = n * tick;
        let frame = VideoFrame {
            pts_90k: pts,
            time: Timestamp(wall.0 + pts * 100 / 9),
            is_key: e.is_key,
            data: Arc::from(e.data),
            new_params: e.new_params.then_some(e.params),
        };
        if tx.blocking_send(Ok(frame)).is_err() {
            break;
        }
    }
    Ok(())
}

/// The picture being drawn, in I420 planes.
struct Scene {
    w: usize,
    h: usize,
    y: Vec<u8>,
    u: Vec<u8>,
    v: Vec<u8>,
    background: Vec<u8>,
}

impl Scene {
    fn new(w: usize, h: usize) -> Self {
        let mut background = vec![0u8; w * h];
        for (row, line) in background.chunks_mut(w).enumerate() {
            // Sky fading into ground, with a horizon at 60%.
            let t = row as f64 / h as f64;
            let level = if t < 0.6 {
                200.0 - 80.0 * t
            } else {
                90.0 - 40.0 * (t - 0.6)
            };
            for (col, px) in line.iter_mut().enumerate() {
                // A little fixed texture so the encoder has something to do.
                let grain = ((col * 7 + row * 13) % 17) as f64;
                *px = (level + grain).clamp(16.0, 235.0) as u8;
            }
        }
        Scene {
            w,
            h,
            y: vec![0; w * h],
            u: vec![128; w * h / 4],
            v: vec![128; w * h / 4],
            background,
        }
    }

    /// Fills the rectangle `[x0, x1) x [y0, y1)` (fractions of the picture) with a colour.
    fn rect(&mut self, [x0, y0, x1, y1]: [f64; 4], [luma, cb, cr]: [u8; 3]) {
        let (w, h) = (self.w as f64, self.h as f64);
        let xa = (x0 * w).clamp(0.0, w) as usize;
        let xb = (x1 * w).clamp(0.0, w) as usize;
        let ya = (y0 * h).clamp(0.0, h) as usize;
        let yb = (y1 * h).clamp(0.0, h) as usize;
        for row in ya..yb {
            self.y[row * self.w + xa..row * self.w + xb].fill(luma);
        }
        let cw = self.w / 2;
        for row in ya / 2..yb / 2 {
            self.u[row * cw + xa / 2..row * cw + xb / 2].fill(cb);
            self.v[row * cw + xa / 2..row * cw + xb / 2].fill(cr);
        }
    }

    /// The scene at `t` seconds.
    fn draw(&mut self, t: f64) {
        self.y.copy_from_slice(&self.background);
        self.u.fill(128);
        self.v.fill(128);
        // A figure walking across and back every 20 s.
        let phase = (t / 10.0) % 2.0;
        let x = if phase < 1.0 { phase } else { 2.0 - phase };
        let x = 0.1 + 0.75 * x;
        self.rect([x, 0.35, x + 0.05, 0.42], [180, 110, 150]); // head
        self.rect([x - 0.01, 0.42, x + 0.06, 0.62], [60, 150, 110]); // body
        self.rect([x, 0.62, x + 0.05, 0.8], [40, 128, 128]); // legs
                                                             // A box crossing quickly every 6 s.
        let bx = ((t / 6.0) % 1.0) * 1.3 - 0.2;
        self.rect([bx, 0.7, bx + 0.2, 0.85], [120, 90, 200]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bad_sizes() {
        let c: Arc<dyn Clocks> = Arc::new(vigil_core::RealClocks::default());
        let id = || CameraId::new("s").unwrap();
        assert!(SyntheticCamera::new(id(), 641, 360, 15, c.clone()).is_err());
        assert!(SyntheticCamera::new(id(), 32, 32, 15, c.clone()).is_err());
        assert!(SyntheticCamera::new(id(), 640, 360, 0, c.clone()).is_err());
        assert!(SyntheticCamera::new(id(), 640, 360, 15, c).is_ok());
    }
}
