//! From tracked objects to events: a tracked object that becomes a true positive opens an
//! event; the event is updated when the object gets a better snapshot or enters a zone, and
//! ends when the tracker gives the object up. The best frame is kept as a JPEG snapshot and a
//! square thumbnail beside the recordings. While it is seen, the object's detections are
//! stored (at most one a second), linked to the event and the tracker id.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use vigil_core::{
    BBox, BestFrame, CameraId, Detection, DetectionId, Error, Event, EventId, IdGenerator, Image,
    Mutation, Result, ReviewStatus, Snapshot, SnapshotId, SnapshotSource, Timestamp, TrackedObject,
};

use crate::image::to_rgb;
use crate::render::{resample, square_around, Rgb};

/// Side of the square thumbnails, in pixels (Frigate's size).
pub const THUMBNAIL_SIZE: u32 = 175;

/// An event being followed, and its best frame so far.
#[derive(Debug)]
struct Open {
    event: Event,
    best: Option<Candidate>,
    /// The best frame changed since its snapshot was last written.
    snapshot_stale: bool,
    /// When a detection of it was last stored.
    last_detection: Option<Timestamp>,
}

/// Detections of one object are stored at most this often (an event counts every frame).
const DETECTION_EVERY_US: i64 = 1_000_000;

#[derive(Debug, Clone)]
struct Candidate {
    image: Image,
    bbox: BBox,
    score: f32,
    time: Timestamp,
}

impl Candidate {
    /// Within 1% of a frame edge: the object is probably cut.
    fn at_edge(&self) -> bool {
        let m = 0.01;
        self.bbox.x1 <= m || self.bbox.y1 <= m || self.bbox.x2 >= 1.0 - m || self.bbox.y2 >= 1.0 - m
    }

    /// Whether `self` makes a better snapshot than `best`: not cut by the edge first, then a
    /// higher score, or a clearly bigger view at nearly the same score.
    fn better_than(&self, best: &Candidate) -> bool {
        match (self.at_edge(), best.at_edge()) {
            (false, true) => return true,
            (true, false) => return false,
            _ => {}
        }
        self.score > best.score
            || (self.score >= best.score * 0.95 && self.bbox.area() > best.bbox.area() * 1.25)
    }
}

/// Turns tracker output into events and their snapshots.
#[derive(Debug)]
pub struct EventManager {
    camera: CameraId,
    data_dir: PathBuf,
    ids: Arc<IdGenerator>,
    open: HashMap<u64, Open>,
    clips: bool,
}

impl EventManager {
    /// Events of `camera`, with snapshots under `data_dir/snapshots/<camera>/`.
    pub fn new(camera: CameraId, data_dir: &Path, ids: Arc<IdGenerator>) -> EventManager {
        EventManager {
            camera,
            data_dir: data_dir.to_owned(),
            ids,
            open: HashMap::new(),
            clips: true,
        }
    }

    /// Whether the camera's recordings cover its events (true by default): what the events'
    /// `has_clip` says.
    pub fn with_clips(mut self, clips: bool) -> EventManager {
        self.clips = clips;
        self
    }

    /// Events in progress.
    pub fn open_events(&self) -> Vec<Event> {
        self.open.values().map(|o| o.event.clone()).collect()
    }

    /// Feeds one analysed frame: the objects tracked in it and the ones given up since the
    /// last frame. Returns the store writes for the events that opened, changed or ended.
    pub fn update(
        &mut self,
        image: &Image,
        objects: &[TrackedObject],
        removed: &[TrackedObject],
    ) -> Result<Vec<Mutation>> {
        let mut out = Vec::new();
        for o in objects {
            if !o.true_positive && !self.open.contains_key(&o.tracker_id) {
                continue;
            }
            let seen_now = o.frames_missed == 0;
            let candidate = seen_now.then(|| Candidate {
                image: image.clone(),
                bbox: o.bbox,
                score: o.score,
                time: image.time,
            });
            let entry = match self.open.entry(o.tracker_id) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    let id = EventId(self.ids.next(o.first_seen));
                    v.insert(Open {
                        event: new_event(id, &self.camera, o, self.clips),
                        best: None,
                        snapshot_stale: false,
                        last_detection: None,
                    })
                }
            };
            let opened = entry.best.is_none() && entry.event.detection_count == 0;
            let mut changed = opened;
            if let Some(c) = candidate {
                entry.event.detection_count += 1;
                if entry.best.as_ref().is_none_or(|b| c.better_than(b)) {
                    entry.best = Some(c);
                    entry.snapshot_stale = true;
                    changed = true;
                }
            }
            let e = &mut entry.event;
            for z in &o.entered_zones {
                if !e.zones.contains(z) {
                    e.zones.push(z.clone());
                    changed = true;
                }
            }
            e.score = o.smoothed_score;
            e.top_score = e.top_score.max(o.top_score);
            e.bbox = o.bbox;
            e.stationary = o.stationary;
            if changed {
                if entry.snapshot_stale {
                    out.extend(write_snapshot(&self.data_dir, entry)?);
                }
                out.push(Mutation::PutEvent(Box::new(entry.event.clone())));
            }
            let due = entry
                .last_detection
                .is_none_or(|t| image.time.0 - t.0 >= DETECTION_EVERY_US);
            if seen_now && due {
                entry.last_detection = Some(image.time);
                out.push(Mutation::PutDetection(Box::new(Detection {
                    id: DetectionId(self.ids.next(image.time)),
                    camera: self.camera.clone(),
                    time: image.time,
                    label: o.label.clone(),
                    score: o.score,
                    bbox: o.bbox,
                    tracker_id: Some(o.tracker_id),
                    event_id: Some(entry.event.id),
                    image_path: None,
                })));
            }
        }
        for o in removed {
            if let Some(mut entry) = self.open.remove(&o.tracker_id) {
                if entry.snapshot_stale {
                    out.extend(write_snapshot(&self.data_dir, &mut entry)?);
                }
                entry.event.end_time = Some(o.last_seen.max(entry.event.start_time));
                out.push(Mutation::PutEvent(Box::new(entry.event)));
            }
        }
        Ok(out)
    }

    /// Ends every open event at `time` (the camera stops or is reconfigured).
    pub fn end_all(&mut self, time: Timestamp) -> Result<Vec<Mutation>> {
        let mut out = Vec::new();
        for (_, mut entry) in self.open.drain() {
            if entry.snapshot_stale {
                out.extend(write_snapshot(&self.data_dir, &mut entry)?);
            }
            entry.event.end_time = Some(time.max(entry.event.start_time));
            out.push(Mutation::PutEvent(Box::new(entry.event)));
        }
        Ok(out)
    }
}

fn new_event(id: EventId, camera: &CameraId, o: &TrackedObject, has_clip: bool) -> Event {
    Event {
        id,
        camera: camera.clone(),
        label: o.label.clone(),
        sub_label: None,
        score: o.smoothed_score,
        top_score: o.top_score,
        start_time: o.first_seen,
        end_time: None,
        zones: Vec::new(),
        tracker_id: Some(o.tracker_id),
        bbox: o.bbox,
        has_clip,
        has_snapshot: false,
        retain: false,
        review: ReviewStatus::Unreviewed,
        notes: None,
        risk_score: None,
        best: None,
        stationary: o.stationary,
        detection_count: 0,
    }
}

/// Writes the best frame as `snapshots/<camera>/<event>.jpg` and its thumbnail
/// `<event>-thumb.jpg` (write to a temporary name, then rename), and records them in the
/// event. The snapshot is also a [`Snapshot`] record (id = the event's), which is what
/// snapshot retention goes by.
fn write_snapshot(data_dir: &Path, entry: &mut Open) -> Result<Option<Mutation>> {
    let Some(best) = &entry.best else {
        return Ok(None);
    };
    let e = &mut entry.event;
    let rel_dir = format!("snapshots/{}", e.camera);
    let dir = data_dir.join(&rel_dir);
    std::fs::create_dir_all(&dir)
        .map_err(|err| Error::internal(format!("cannot create {}: {err}", dir.display())))?;
    let rgb = to_rgb(&best.image)?;
    let (w, h) = (best.image.width, best.image.height);
    let snapshot = format!("{rel_dir}/{}.jpg", e.id);
    let thumbnail = format!("{rel_dir}/{}-thumb.jpg", e.id);
    let size_bytes = write_jpeg_atomically(&data_dir.join(&snapshot), &rgb, w, h, 85)?;
    let (x0, y0, side) = square_around(&best.bbox, w, h, 1.1, 8);
    let picture = Rgb {
        width: w,
        height: h,
        data: rgb,
    };
    let thumb = resample(&picture, x0, y0, side, side, THUMBNAIL_SIZE, THUMBNAIL_SIZE);
    write_jpeg_atomically(
        &data_dir.join(&thumbnail),
        &thumb,
        THUMBNAIL_SIZE,
        THUMBNAIL_SIZE,
        80,
    )?;
    let record = Snapshot {
        id: SnapshotId(e.id.0),
        camera: e.camera.clone(),
        time: best.time,
        path: snapshot.clone(),
        size_bytes,
        source: SnapshotSource::Event,
        event_id: Some(e.id),
    };
    e.best = Some(BestFrame {
        time: best.time,
        bbox: best.bbox,
        score: best.score,
        snapshot_path: Some(snapshot),
        thumbnail_path: Some(thumbnail),
    });
    e.has_snapshot = true;
    entry.snapshot_stale = false;
    Ok(Some(Mutation::PutSnapshot(Box::new(record))))
}

/// Encodes packed RGB as a baseline JPEG.
pub fn encode_jpeg(rgb: &[u8], w: u32, h: u32, quality: u8) -> Result<Vec<u8>> {
    let (w16, h16) = (
        u16::try_from(w).map_err(|_| Error::invalid(format!("{w} px is too wide for JPEG")))?,
        u16::try_from(h).map_err(|_| Error::invalid(format!("{h} px is too tall for JPEG")))?,
    );
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, quality)
        .encode(rgb, w16, h16, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| Error::internal(format!("JPEG encoding failed: {e}")))?;
    Ok(out)
}

/// Returns the size written.
fn write_jpeg_atomically(path: &Path, rgb: &[u8], w: u32, h: u32, quality: u8) -> Result<u64> {
    let bytes = encode_jpeg(rgb, w, h, quality)?;
    write_atomically(path, &bytes)?;
    Ok(bytes.len() as u64)
}

/// Writes `bytes` to a temporary name beside `path`, then renames it: readers see the whole
/// file or none.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            // The disk full, say: no half-written file is left behind.
            let _ = std::fs::remove_file(&tmp);
            Error::internal(format!("cannot write {}: {e}", path.display()))
        })
}
