//! Timelapse (picam's): a frame of a camera every few minutes, encoded as it comes into one
//! H.264 video per camera and day.
//!
//! Frames are taken from the camera's live view (the analysed detect stream), scaled to the
//! configured resolution, encoded as key frames and appended to a fragmented MP4,
//! `timelapse/<camera>/timelapse_<YYYYMMDD>_<HHMMSS>.mp4` (the day and the time its first frame
//! was taken), with a JPEG of that first frame beside it. The video plays while it grows (each
//! frame is a fragment once the next arrives); it is finished at the end of the day, when the
//! frame size or rate changes, and when the service stops, and a crash leaves it playable up to
//! the frame before. Each frame is also a [`TimelapseFrame`] record (what picam's archive
//! count and the day's frame count read). The settings are the camera's
//! ([`CameraConfig::timelapse`](vigil_core::CameraConfig)): the configuration file's
//! `timelapse` block, or `POST /timelapse/configure`, which saves them in the camera's record
//! without restarting its pipeline.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use vigil_core::mp4::{SegmentWriter, TIMESCALE};
use vigil_core::pipeline::LiveHub;
use vigil_core::{
    CameraConfig, CameraId, Clocks, Error, IdGenerator, Image, Mutation, PageRequest, PixelFormat,
    Query, Result, Store, TimelapseFilter, TimelapseFrame, TimelapseFrameId, TimelapseSettings,
    Timestamp,
};

use crate::decode::scale_plane;
use crate::encode::{Encoded, H264Encoder};
use crate::events::{encode_jpeg, write_atomically};
use crate::image::to_rgb;

/// A live frame older than this is not taken (the camera is down).
const STALE: Duration = Duration::from_secs(30);
/// Bits per second of a timelapse video, per pixel of a frame (key frames only).
const BITS_PER_PIXEL: u64 = 2;

/// What `GET /timelapse/status` shows of one camera.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimelapseStatus {
    /// The camera.
    pub camera: CameraId,
    /// Its settings.
    #[serde(flatten)]
    pub settings: TimelapseSettings,
    /// Frames taken today (UTC).
    pub today_frame_count: u64,
    /// When the last frame was taken.
    pub last_capture: Option<Timestamp>,
}

/// One timelapse video on disk.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimelapseVideo {
    /// The camera.
    pub camera: CameraId,
    /// The file, relative to the data directory.
    pub path: String,
    /// The day of its first frame, `YYYY-MM-DD` (UTC).
    pub date: String,
    /// File size.
    pub size: u64,
    /// When the file was last written.
    pub mtime: Timestamp,
    /// The JPEG of its first frame, relative to the data directory, when there is one.
    pub thumbnail: Option<String>,
}

/// The video being written for one camera.
struct Open {
    writer: SegmentWriter,
    /// The file, relative to the data directory.
    rel: String,
    encoder: H264Encoder,
    day: String,
    size: (u32, u32),
    fps: u32,
    frames: i64,
}

impl Open {
    /// Time of frame `n` on the video's timeline.
    fn pts(&self, n: i64) -> i64 {
        n * i64::from(TIMESCALE) / i64::from(self.fps.max(1))
    }

    /// Writes the last frame and the durations.
    fn finish(self) -> Result<()> {
        let end = self.pts(self.frames);
        self.writer.finish(Some(end)).map(drop)
    }
}

#[derive(Default)]
struct Camera {
    /// When its last frame was taken (`None` until looked up in the store).
    last: Option<Option<Timestamp>>,
    open: Option<Open>,
}

/// Every camera's timelapse: settings, capture and the videos.
pub struct Timelapse {
    store: Arc<dyn Store>,
    live: Arc<LiveHub>,
    clocks: Arc<dyn Clocks>,
    ids: Arc<IdGenerator>,
    data_dir: PathBuf,
    cameras: Mutex<BTreeMap<CameraId, Camera>>,
}

impl std::fmt::Debug for Timelapse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timelapse")
            .field("data_dir", &self.data_dir)
            .finish()
    }
}

/// Where timelapse videos live, relative to the data directory.
pub const TIMELAPSE_DIR: &str = "timelapse";

impl Timelapse {
    /// The service for the cameras of `store`.
    pub fn new(
        store: Arc<dyn Store>,
        live: Arc<LiveHub>,
        clocks: Arc<dyn Clocks>,
        ids: Arc<IdGenerator>,
        data_dir: PathBuf,
    ) -> Arc<Timelapse> {
        Arc::new(Timelapse {
            store,
            live,
            clocks,
            ids,
            data_dir,
            cameras: Mutex::new(BTreeMap::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<CameraId, Camera>> {
        self.cameras.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn camera(&self, camera: &CameraId) -> Result<CameraConfig> {
        self.store
            .camera(camera)
            .await?
            .ok_or_else(|| Error::not_found(format!("camera {camera} not found")))
    }

    /// Validates a camera's new settings and saves them in its record (its pipeline keeps
    /// running). A new frame rate or size, or stopping, finishes the video being written.
    pub async fn configure(&self, camera: &CameraId, settings: TimelapseSettings) -> Result<()> {
        let mut cfg = self.camera(camera).await?;
        cfg.timelapse = settings;
        cfg.validate()?;
        self.store
            .apply(Mutation::PutCamera(Box::new(cfg.clone())).into())
            .await?;
        let finished = {
            let mut cams = self.lock();
            let cam = cams.entry(camera.clone()).or_default();
            let t = &cfg.timelapse;
            let keep = cam.open.as_ref().is_some_and(|o| {
                t.enabled && o.fps == t.fps && t.resolution.is_none_or(|r| r == o.size)
            });
            if keep {
                None
            } else {
                cam.open.take()
            }
        };
        if let Some(o) = finished {
            finish(o).await;
        }
        Ok(())
    }

    /// A camera's state for `GET /timelapse/status`.
    pub async fn status(&self, camera: &CameraId) -> Result<TimelapseStatus> {
        let settings = self.camera(camera).await?.timelapse;
        let last = last_frame(&*self.store, camera).await?.map(|f| f.time);
        let now = self.clocks.realtime();
        let midnight = Timestamp(now.0 - now.0.rem_euclid(86_400_000_000));
        let mut q = Query::new(TimelapseFilter {
            cameras: vec![camera.clone()],
            ..TimelapseFilter::default()
        });
        q.filter.time.after = Some(midnight);
        q.page = PageRequest {
            limit: 1,
            with_total: true,
            ..PageRequest::default()
        };
        let today = self.store.timelapse_frames(&q).await?.total.unwrap_or(0);
        Ok(TimelapseStatus {
            camera: camera.clone(),
            settings,
            today_frame_count: today,
            last_capture: last,
        })
    }

    /// The videos on disk (of one camera, or all), newest first.
    pub fn videos(&self, camera: Option<&CameraId>) -> Result<Vec<TimelapseVideo>> {
        let root = self.data_dir.join(TIMELAPSE_DIR);
        let mut out = Vec::new();
        let dirs = match std::fs::read_dir(&root) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::internal(format!("listing {}: {e}", root.display()))),
        };
        for d in dirs.flatten() {
            let Some(cam) = d.file_name().to_str().and_then(|n| CameraId::new(n).ok()) else {
                continue;
            };
            if camera.is_some_and(|c| *c != cam) {
                continue;
            }
            let Ok(files) = std::fs::read_dir(d.path()) else {
                continue;
            };
            for f in files.flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                let Some(date) = video_date(&name) else {
                    continue;
                };
                let Ok(meta) = f.metadata() else {
                    continue;
                };
                let mtime = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(Timestamp(0), |d| Timestamp(d.as_micros() as i64));
                let rel = format!("{TIMELAPSE_DIR}/{cam}/{name}");
                let thumb = rel.replace(".mp4", ".jpg");
                let thumbnail = self.data_dir.join(&thumb).is_file().then_some(thumb);
                out.push(TimelapseVideo {
                    camera: cam.clone(),
                    path: rel,
                    date,
                    size: meta.len(),
                    mtime,
                    thumbnail,
                });
            }
        }
        out.sort_by(|a, b| b.path.rsplit('/').next().cmp(&a.path.rsplit('/').next()));
        Ok(out)
    }

    /// Checks that `rel` names a timelapse video (`timelapse/<camera>/timelapse_*.mp4`):
    /// nothing else may be streamed or deleted through the timelapse routes.
    pub fn check_video_path(rel: &str) -> Result<()> {
        vigil_core::model::validate_relative_path(rel)?;
        let parts: Vec<&str> = rel.split('/').collect();
        let ok = matches!(parts.as_slice(), [TIMELAPSE_DIR, cam, name]
            if CameraId::new(*cam).is_ok() && video_date(name).is_some());
        if ok {
            Ok(())
        } else {
            Err(Error::invalid(format!(
                "{rel:?} is not a timelapse video (timelapse/<camera>/timelapse_*.mp4)"
            )))
        }
    }

    /// Deletes a video and its thumbnail; the one being written cannot be deleted.
    pub fn delete(&self, rel: &str) -> Result<()> {
        Self::check_video_path(rel)?;
        let writing = self
            .lock()
            .values()
            .any(|c| c.open.as_ref().is_some_and(|o| o.rel == rel));
        if writing {
            return Err(Error::new(
                vigil_core::ErrorKind::FailedPrecondition,
                format!("{rel} is being written; stop the timelapse first"),
            ));
        }
        let path = self.data_dir.join(rel);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::not_found(format!("no timelapse video {rel}")));
            }
            Err(e) => return Err(Error::internal(format!("deleting {rel}: {e}"))),
        }
        let _ = std::fs::remove_file(path.with_extension("jpg"));
        Ok(())
    }

    /// Takes the frames that are due until `stop` turns true, then finishes the open videos.
    pub async fn run(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                break;
            }
            self.capture_due().await;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.changed() => {}
            }
        }
        let open: Vec<Open> = self
            .lock()
            .values_mut()
            .filter_map(|c| c.open.take())
            .collect();
        for o in open {
            finish(o).await;
        }
    }

    /// Takes a frame of every camera whose interval has passed.
    pub async fn capture_due(&self) {
        let now = self.clocks.realtime();
        let cameras = match self.store.cameras().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "timelapse: cannot list the cameras");
                return;
            }
        };
        let mut due = Vec::new();
        for cfg in cameras {
            let t = &cfg.timelapse;
            if !(cfg.enabled && t.enabled) {
                continue;
            }
            let known = self.lock().get(&cfg.id).and_then(|c| c.last);
            let last = match known {
                Some(l) => l,
                None => {
                    let l = last_frame(&*self.store, &cfg.id)
                        .await
                        .ok()
                        .flatten()
                        .map(|f| f.time);
                    self.lock().entry(cfg.id.clone()).or_default().last = Some(l);
                    l
                }
            };
            let interval = i64::from(t.interval_minutes) * 60_000_000;
            if last.is_none_or(|l| now.0 - l.0 >= interval) {
                let open = self.lock().get_mut(&cfg.id).and_then(|c| c.open.take());
                due.push((cfg.id.clone(), cfg.timelapse.clone(), open));
            }
        }
        for (camera, settings, open) in due {
            let frame = self
                .live
                .latest(&camera)
                .filter(|f| now.0 - f.time.0 <= STALE.as_micros() as i64);
            let Some(frame) = frame else {
                self.put_back(&camera, open, None);
                continue;
            };
            let dir = self.data_dir.clone();
            let (cam, image) = (camera.clone(), frame.image.clone());
            let result = tokio::task::spawn_blocking(move || {
                capture(&dir, &cam, &settings, open, &image, now)
            })
            .await
            .map_err(|e| Error::internal(format!("timelapse task: {e}")))
            .and_then(|r| r);
            match result {
                Ok((open, path, size)) => {
                    self.put_back(&camera, Some(open), Some(now));
                    let rec = TimelapseFrame {
                        id: TimelapseFrameId(self.ids.next(now)),
                        camera: camera.clone(),
                        time: now,
                        path,
                        size_bytes: size,
                    };
                    if let Err(e) = self
                        .store
                        .apply(Mutation::PutTimelapseFrame(Box::new(rec)).into())
                        .await
                    {
                        tracing::warn!(camera = %camera, error = %e, "cannot record a timelapse frame");
                    }
                }
                Err(e) => {
                    // Try again at the next interval, with a new video.
                    self.put_back(&camera, None, Some(now));
                    tracing::warn!(camera = %camera, error = %e, "timelapse frame failed");
                }
            }
        }
    }

    fn put_back(&self, camera: &CameraId, open: Option<Open>, last: Option<Timestamp>) {
        let mut cams = self.lock();
        let c = cams.entry(camera.clone()).or_default();
        if c.open.is_none() {
            c.open = open;
        }
        if last.is_some() {
            c.last = Some(last);
        }
    }
}

async fn last_frame(store: &dyn Store, camera: &CameraId) -> Result<Option<TimelapseFrame>> {
    let mut q = Query::new(TimelapseFilter {
        cameras: vec![camera.clone()],
        ..TimelapseFilter::default()
    });
    q.page.limit = 1;
    Ok(store.timelapse_frames(&q).await?.items.pop())
}

/// `YYYY-MM-DD` from `timelapse_YYYYMMDD_HHMMSS.mp4`.
fn video_date(name: &str) -> Option<String> {
    let stem = name.strip_prefix("timelapse_")?.strip_suffix(".mp4")?;
    let (day, time) = stem.split_once('_')?;
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    (digits(day, 8) && digits(time, 6))
        .then(|| format!("{}-{}-{}", &day[..4], &day[4..6], &day[6..]))
}

async fn finish(o: Open) {
    match tokio::task::spawn_blocking(move || o.finish()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot finish a timelapse video"),
        Err(e) => tracing::warn!(error = %e, "timelapse task failed"),
    }
}

/// Scales `image`, encodes it and appends it to the camera's video of the day (opening a new
/// one when needed). Returns the open video, its path and the frame's size.
fn capture(
    data_dir: &Path,
    camera: &CameraId,
    settings: &TimelapseSettings,
    open: Option<Open>,
    image: &Image,
    now: Timestamp,
) -> Result<(Open, String, u64)> {
    if image.format != PixelFormat::I420 {
        return Err(Error::invalid("timelapse frames come from I420 pictures"));
    }
    let size = settings
        .resolution
        .unwrap_or((image.width & !1, image.height & !1));
    let iso = now.iso();
    let day: String = iso.get(..10).unwrap_or("").replace('-', "");
    let (y, u, v) = scaled_planes(image, size);
    let (mut open, first) = match open {
        Some(o) if o.day == day && o.size == size && o.fps == settings.fps => (o, None),
        old => {
            if let Some(o) = old {
                o.finish()?;
            }
            let (o, first) =
                start_video(data_dir, camera, settings, size, &day, &iso, (&y, &u, &v))?;
            (o, Some(first))
        }
    };
    let encoded = match first {
        Some(e) => e,
        None => encode(&mut open.encoder, &y, &u, &v)?,
    };
    let pts = open.pts(open.frames);
    open.writer.push(pts, &encoded.data, encoded.is_key)?;
    open.frames += 1;
    let path = open.rel.clone();
    Ok((open, path, encoded.data.len() as u64))
}

fn start_video(
    data_dir: &Path,
    camera: &CameraId,
    settings: &TimelapseSettings,
    size: (u32, u32),
    day: &str,
    iso: &str,
    (y, u, v): (&[u8], &[u8], &[u8]),
) -> Result<(Open, Encoded)> {
    let time: String = iso.get(11..19).unwrap_or("000000").replace(':', "");
    let dir = data_dir.join(TIMELAPSE_DIR).join(camera.as_str());
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::internal(format!("creating {}: {e}", dir.display())))?;
    let path = dir.join(format!("timelapse_{day}_{time}.mp4"));
    let bitrate =
        (u64::from(size.0) * u64::from(size.1) * BITS_PER_PIXEL).clamp(100_000, 8_000_000) as u32;
    // Every frame a key frame: minutes apart, they share little, and each plays on its own.
    let mut encoder = H264Encoder::new(size.0, size.1, settings.fps, bitrate, 1)?;
    // The first picture gives the parameter sets the file's header needs.
    let first = encode(&mut encoder, y, u, v)?;
    let writer = SegmentWriter::create(&path, (*first.params).clone(), 1)?;
    // A still of the first frame beside the video (picam's list shows it).
    let rgb = to_rgb(&Image {
        width: size.0,
        height: size.1,
        format: PixelFormat::I420,
        data: [y, u, v].concat().into(),
        time: Timestamp(0),
    })?;
    write_atomically(
        &path.with_extension("jpg"),
        &encode_jpeg(&rgb, size.0, size.1, 85)?,
    )?;
    let rel = format!(
        "{TIMELAPSE_DIR}/{camera}/{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("")
    );
    let open = Open {
        writer,
        rel,
        encoder,
        day: day.to_owned(),
        size,
        fps: settings.fps,
        frames: 0,
    };
    Ok((open, first))
}

/// Encodes a picture; the encoder holds nothing back, so a skipped picture is tried again
/// (a few times: rate control may skip one).
fn encode(encoder: &mut H264Encoder, y: &[u8], u: &[u8], v: &[u8]) -> Result<Encoded> {
    for _ in 0..4 {
        if let Some(e) = encoder.encode(y, u, v)? {
            return Ok(e);
        }
    }
    Err(Error::internal(
        "the encoder skipped a timelapse frame four times",
    ))
}

/// The picture's I420 planes at `size`.
fn scaled_planes(image: &Image, (w, h): (u32, u32)) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let (sw, sh) = (image.width as usize, image.height as usize);
    let (cw, ch) = (sw.div_ceil(2), sh.div_ceil(2));
    let (w, h) = (w as usize, h as usize);
    let d = &image.data;
    let (yp, rest) = d.split_at((sw * sh).min(d.len()));
    let (up, vp) = rest.split_at((cw * ch).min(rest.len()));
    let mut y = vec![0u8; w * h];
    let mut u = vec![128u8; w * h / 4];
    let mut v = vec![128u8; w * h / 4];
    scale_plane(yp, sw, sh, sw, &mut y, w, h);
    if up.len() >= cw * ch && vp.len() >= cw * ch {
        scale_plane(up, cw, ch, cw, &mut u, w / 2, h / 2);
        scale_plane(vp, cw, ch, cw, &mut v, w / 2, h / 2);
    }
    (y, u, v)
}
