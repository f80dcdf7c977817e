//! The recorder: one per camera, on its own thread. It writes the record stream into MP4
//! segments as frames arrive and commits each finished segment to the store, and it never drops
//! a frame it was given.
//!
//! # Files and crash safety
//!
//! A segment is written in `recordings/.open/` under a name that says its camera, id, start
//! time and kind. When it is finished it is fsynced, its record is committed to the store, and
//! only then is it renamed to `recordings/<camera>/<YYYY-MM-DD>/<HH>/<id>.mp4` (UTC) and both
//! directories fsynced. Deleting goes the other way through `recordings/.trash/`. So after a
//! crash, [`reconcile`] only has to look at those two small directories: an open segment whose
//! record exists is renamed; one without a record is salvaged to its last complete fragment and
//! committed (or removed when nothing is left); a trashed file has its record deleted and goes.

use std::collections::VecDeque;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};
use crate::id::{CameraId, IdGenerator, RecordingId};
use crate::media::{VideoFrame, VideoParams};
use crate::model::{RecordMode, RecordSettings, Recording, RecordingKind};
use crate::mp4::{self, Finished, SegmentWriter, TIMESCALE};
use crate::store::{Mutation, Store};
use crate::time::Timestamp;

/// Where and how segments are written.
#[derive(Clone, Debug)]
pub struct RecorderOptions {
    /// The data directory; segments go under `recordings/`.
    pub data_dir: PathBuf,
    /// Segments end at the first key frame after this long (10 s by default).
    pub segment_duration: Duration,
    /// Frames are written to disk at least this often (1 s by default): what a crash can lose.
    pub fragment_duration: Duration,
}

impl RecorderOptions {
    /// Defaults for `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        RecorderOptions {
            data_dir: data_dir.into(),
            segment_duration: Duration::from_secs(10),
            fragment_duration: Duration::from_secs(1),
        }
    }
}

/// What a recorder is told.
#[derive(Debug)]
pub enum RecorderInput {
    /// A frame of the record stream.
    Frame(VideoFrame),
    /// The stream ended (disconnect, stall): close the open segment.
    StreamEnded,
    /// Keep recording until this time (events and triggers, in event mode). Post-capture is
    /// added by the recorder.
    KeepUntil(Timestamp),
    /// New recording settings for the camera.
    Settings(RecordSettings),
}

fn ticks(d: Duration) -> u64 {
    (d.as_micros() as u64).saturating_mul(9) / 100
}

fn ticks_to_us(t: u64) -> i64 {
    i64::try_from(t.saturating_mul(100) / 9).unwrap_or(i64::MAX)
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::new(ErrorKind::Internal, format!("{what}: {e}")).with_source(e)
}

/// fsyncs a directory, so that entries created or renamed in it survive a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("fsync {}", dir.display())))
}

/// Creates `dir` and its missing parents, fsyncing each parent that gained an entry.
fn create_dirs(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dirs(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(io(format!("create {}", dir.display()))(e)),
    }
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// The path of a finished segment, relative to the data directory.
pub fn segment_path(camera: &CameraId, start: Timestamp, id: RecordingId) -> String {
    let (day, hour) = match jiff::Timestamp::from_microsecond(start.0) {
        Ok(t) => {
            let dt = t.to_zoned(jiff::tz::TimeZone::UTC).datetime();
            (dt.date().to_string(), dt.hour())
        }
        Err(_) => ("0000-00-00".to_owned(), 0),
    };
    format!("recordings/{camera}/{day}/{hour:02}/{}.mp4", id.0)
}

/// Where a segment's thumbnail and hover-scrub sprite sheet go: beside it, as
/// `<id>.thumb.jpg` and `<id>.sprite.jpg` (picam's sidecar files).
pub fn art_paths(segment: &str) -> (String, String) {
    let stem = segment.strip_suffix(".mp4").unwrap_or(segment);
    (format!("{stem}.thumb.jpg"), format!("{stem}.sprite.jpg"))
}

/// Removes a segment's art files, if any (they can be made again; a failure is only logged).
fn remove_art(data_dir: &Path, segment: &str) {
    let (thumb, sprite) = art_paths(segment);
    for p in [thumb, sprite] {
        if let Err(e) = remove(&data_dir.join(&p)) {
            tracing::warn!(path = %p, error = %e, "cannot remove a recording's art");
        }
    }
}

/// Where segments are written before they are committed and moved into place.
pub fn open_dir(data: &Path) -> PathBuf {
    data.join("recordings").join(".open")
}

/// Where a deleted segment waits until its record is gone.
pub fn trash_dir(data: &Path) -> PathBuf {
    data.join("recordings").join(".trash")
}

fn kind_code(k: RecordingKind) -> &'static str {
    match k {
        RecordingKind::Continuous => "c",
        RecordingKind::Event => "e",
        RecordingKind::Clip => "k",
    }
}

/// `<camera>.<id>.<start µs>.<kind>.mp4`
fn open_name(camera: &CameraId, id: RecordingId, start: Timestamp, kind: RecordingKind) -> String {
    format!("{camera}.{}.{}.{}.mp4", id.0, start.0, kind_code(kind))
}

/// The camera, id, start and kind of a segment in [`open_dir`], from its file name.
pub fn parse_open_name(name: &str) -> Option<(CameraId, RecordingId, Timestamp, RecordingKind)> {
    let stem = name.strip_suffix(".mp4")?;
    let mut parts = stem.rsplitn(4, '.');
    let kind = match parts.next()? {
        "c" => RecordingKind::Continuous,
        "e" => RecordingKind::Event,
        "k" => RecordingKind::Clip,
        _ => return None,
    };
    let start = Timestamp(parts.next()?.parse().ok()?);
    let id = RecordingId(parts.next()?.parse().ok()?);
    let camera = CameraId::new(parts.next()?).ok()?;
    Some((camera, id, start, kind))
}

/// A recording's record built from what was written.
fn record_of(
    camera: &CameraId,
    id: RecordingId,
    kind: RecordingKind,
    start: Timestamp,
    w: Finished,
    params: &VideoParams,
) -> Recording {
    let Finished {
        duration_ticks,
        size,
        frames,
    } = w;
    Recording {
        id,
        camera: camera.clone(),
        kind,
        start_time: start,
        end_time: Timestamp(start.0.saturating_add(ticks_to_us(duration_ticks))),
        size_bytes: size,
        path: segment_path(camera, start, id),
        codec: params.rfc6381_codec.clone(),
        width: params.width,
        height: params.height,
        frames,
        objects: Vec::new(),
        retained: false,
        event_ids: Vec::new(),
        thumbnail_path: None,
        sprite_path: None,
    }
}

/// Moves a committed segment from `.open/` to its place, fsyncing both directories.
fn place(data: &Path, open: &Path, rel: &str) -> Result<()> {
    let dest = data.join(rel);
    let dir = dest
        .parent()
        .ok_or_else(|| Error::internal(format!("segment path without a directory: {rel}")))?;
    create_dirs(dir)?;
    fs::rename(open, &dest).map_err(io(format!("rename {} to {rel}", open.display())))?;
    sync_dir(dir)?;
    if let Some(p) = open.parent() {
        sync_dir(p)?;
    }
    Ok(())
}

struct Open {
    writer: SegmentWriter,
    id: RecordingId,
    kind: RecordingKind,
    start: Timestamp,
    start_pts: i64,
    path: PathBuf,
}

/// Counters a recorder keeps; read them through [`Recorder::stats`].
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RecorderStats {
    /// Segments finished and committed.
    pub segments: u64,
    /// Bytes in those segments.
    pub bytes: u64,
    /// Frames written.
    pub frames: u64,
    /// Frames not recorded because the settings say so (event mode with nothing happening,
    /// recording disabled) or because no key frame had come yet.
    pub frames_not_recorded: u64,
    /// Failures to write or commit a segment.
    pub errors: u64,
    /// The last such failure.
    pub last_error: Option<String>,
}

/// Records one camera's stream. Feed it with [`Recorder::handle`]; it runs until every sender
/// is dropped, then closes its segment.
pub struct Recorder {
    camera: CameraId,
    opts: RecorderOptions,
    settings: RecordSettings,
    store: Arc<dyn Store>,
    ids: Arc<IdGenerator>,
    rt: tokio::runtime::Handle,
    params: Option<Arc<VideoParams>>,
    open: Option<Open>,
    /// Recent frames for pre-capture (event mode), starting at a key frame.
    ring: VecDeque<VideoFrame>,
    ring_bytes: usize,
    keep_until: Option<Timestamp>,
    /// The last frame's time.
    last_time: Option<Timestamp>,
    stats: Arc<std::sync::Mutex<RecorderStats>>,
}

/// Most bytes of pre-capture held in memory per camera.
const RING_MAX_BYTES: usize = 64 << 20;

impl Recorder {
    /// A recorder for `camera`. Call from within a tokio runtime (it keeps a handle to it for
    /// store calls).
    pub fn new(
        camera: CameraId,
        settings: RecordSettings,
        opts: RecorderOptions,
        store: Arc<dyn Store>,
        ids: Arc<IdGenerator>,
    ) -> Result<Self> {
        let rt = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::internal("Recorder::new needs a tokio runtime"))?;
        create_dirs(&open_dir(&opts.data_dir))?;
        Ok(Recorder {
            camera,
            opts,
            settings,
            store,
            ids,
            rt,
            params: None,
            open: None,
            ring: VecDeque::new(),
            ring_bytes: 0,
            keep_until: None,
            last_time: None,
            stats: Default::default(),
        })
    }

    /// A shared view of the counters.
    pub fn stats(&self) -> Arc<std::sync::Mutex<RecorderStats>> {
        self.stats.clone()
    }

    /// Starts the recorder on its own thread; returns the sender that feeds it (bounded, so a
    /// disk that cannot keep up slows the camera down instead of growing memory) and the
    /// thread's handle, which ends after the senders are dropped and the segment is closed.
    pub fn spawn(
        self,
        capacity: usize,
    ) -> Result<(
        tokio::sync::mpsc::Sender<RecorderInput>,
        std::thread::JoinHandle<()>,
    )> {
        let (tx, rx) = tokio::sync::mpsc::channel(capacity.max(1));
        let name = format!("rec-{}", self.camera);
        let h = std::thread::Builder::new()
            .name(name)
            .spawn(move || self.run(rx))
            .map_err(|e| Error::internal(format!("spawn recorder thread: {e}")))?;
        Ok((tx, h))
    }

    /// Runs until the channel closes.
    pub fn run(mut self, mut rx: tokio::sync::mpsc::Receiver<RecorderInput>) {
        while let Some(m) = rx.blocking_recv() {
            self.handle(m);
        }
        self.close(None);
    }

    /// Handles one input. Errors are counted and logged: the recorder keeps going.
    pub fn handle(&mut self, m: RecorderInput) {
        match m {
            RecorderInput::Frame(f) => {
                if let Err(e) = self.frame(f) {
                    self.failed(e);
                    // A segment that could not take a frame (the disk full) is finished with
                    // what it holds; the next key frame starts a new one, once there is room.
                    self.close(None);
                }
            }
            RecorderInput::StreamEnded => {
                self.close(None);
                self.ring.clear();
                self.ring_bytes = 0;
            }
            RecorderInput::KeepUntil(t) => {
                let t = Timestamp(t.0 + i64::from(self.settings.post_capture_s) * 1_000_000);
                self.keep_until = Some(self.keep_until.map_or(t, |k| k.max(t)));
            }
            RecorderInput::Settings(s) => {
                if s.mode != self.settings.mode || !s.enabled {
                    self.close(None);
                }
                self.settings = s;
            }
        }
    }

    fn failed(&mut self, e: Error) {
        tracing::error!(camera = %self.camera, err = %e, "recording failed");
        if let Ok(mut s) = self.stats.lock() {
            s.errors += 1;
            s.last_error = Some(e.to_string());
        }
    }

    fn count(&self, f: impl FnOnce(&mut RecorderStats)) {
        if let Ok(mut s) = self.stats.lock() {
            f(&mut s);
        }
    }

    fn frame(&mut self, f: VideoFrame) -> Result<()> {
        if let Some(last) = self.last_time.replace(f.time) {
            let back = last.0.saturating_sub(f.time.0);
            if back > super::supervisor::CLOCK_STEP.as_micros() as i64 {
                // The stream's time ran back (the wall clock stepped back): what was to be kept
                // until a time on the old timeline is kept as long on the new one.
                self.keep_until = self.keep_until.map(|k| Timestamp(k.0.saturating_sub(back)));
            }
        }
        if let Some(p) = &f.new_params {
            if self.params.as_deref() != Some(p.as_ref()) {
                // New parameters need a new sample entry: a new segment.
                self.close(Some(f.pts_90k));
                self.ring.clear();
                self.ring_bytes = 0;
                self.params = Some(p.clone());
            }
        }
        if self.params.is_none() || !self.settings.enabled {
            self.count(|s| s.frames_not_recorded += 1);
            return Ok(());
        }
        let wanted = match self.settings.mode {
            RecordMode::Off => false,
            RecordMode::Continuous => true,
            RecordMode::Events => {
                self.remember(&f);
                self.keep_until.is_some_and(|u| f.time <= u)
            }
        };
        let seg_ticks = ticks(self.opts.segment_duration);
        if let Some(o) = &self.open {
            let span = (f.pts_90k - o.start_pts).max(0) as u64;
            if !wanted || (f.is_key && span >= seg_ticks) {
                let kind = o.kind;
                self.close(Some(f.pts_90k));
                if wanted {
                    // A full segment: the next one goes on from this key frame (in event
                    // mode too: the ring's pre-capture is already recorded).
                    self.start(&f, kind)?;
                    return self.push(&f);
                }
            }
        }
        if !wanted {
            self.count(|s| s.frames_not_recorded += 1);
            return Ok(());
        }
        if self.open.is_none() {
            match self.settings.mode {
                RecordMode::Off => return Ok(()),
                RecordMode::Continuous => {
                    if !f.is_key {
                        self.count(|s| s.frames_not_recorded += 1);
                        return Ok(());
                    }
                    self.start(&f, RecordingKind::Continuous)?;
                }
                RecordMode::Events => {
                    // Start from the ring: pre-capture up to and including this frame.
                    let ring: Vec<VideoFrame> = self.ring.iter().cloned().collect();
                    let Some(first) = ring.first().filter(|r| r.is_key) else {
                        self.count(|s| s.frames_not_recorded += 1);
                        return Ok(());
                    };
                    self.start(first, RecordingKind::Event)?;
                    for r in &ring {
                        self.push(r)?;
                    }
                    return Ok(());
                }
            }
        }
        self.push(&f)
    }

    /// Keeps recent frames for pre-capture: from the last key frame at or before
    /// `pre_capture_s` ago.
    fn remember(&mut self, f: &VideoFrame) {
        if self.ring.is_empty() && !f.is_key {
            return;
        }
        self.ring_bytes += f.data.len();
        self.ring.push_back(f.clone());
        let horizon = f.time.0 - i64::from(self.settings.pre_capture_s) * 1_000_000;
        loop {
            let next_key = self
                .ring
                .iter()
                .skip(1)
                .position(|r| r.is_key)
                .map(|i| i + 1);
            match next_key {
                Some(k) if self.ring[k].time.0 <= horizon || self.ring_bytes > RING_MAX_BYTES => {
                    for r in self.ring.drain(..k) {
                        self.ring_bytes -= r.data.len();
                    }
                }
                _ => break,
            }
        }
    }

    fn start(&mut self, f: &VideoFrame, kind: RecordingKind) -> Result<()> {
        let Some(params) = self.params.clone() else {
            return Ok(());
        };
        let id = RecordingId(self.ids.next(f.time));
        let path = open_dir(&self.opts.data_dir).join(open_name(&self.camera, id, f.time, kind));
        let writer =
            SegmentWriter::create(&path, (*params).clone(), ticks(self.opts.fragment_duration))?;
        self.open = Some(Open {
            writer,
            id,
            kind,
            start: f.time,
            start_pts: f.pts_90k,
            path,
        });
        Ok(())
    }

    fn push(&mut self, f: &VideoFrame) -> Result<()> {
        if let Some(o) = &mut self.open {
            o.writer.push(f.pts_90k, &f.data, f.is_key)?;
            self.count(|s| s.frames += 1);
        }
        Ok(())
    }

    /// Finishes the open segment (the last frame lasting until `end_pts`), commits its record
    /// and moves it into place.
    fn close(&mut self, end_pts: Option<i64>) {
        let Some(o) = self.open.take() else {
            return;
        };
        if let Err(e) = self.finish(o, end_pts) {
            self.failed(e);
        }
    }

    fn finish(&mut self, o: Open, end_pts: Option<i64>) -> Result<()> {
        let params = o.writer.params().clone();
        let done = o.writer.finish(end_pts)?;
        let rec = record_of(&self.camera, o.id, o.kind, o.start, done, &params);
        let rel = rec.path.clone();
        // The file is synced; its name in `.open/` must be too before the record says it
        // exists, or a power cut could leave a record without a file.
        sync_dir(&open_dir(&self.opts.data_dir))?;
        self.rt.block_on(
            self.store
                .apply(Mutation::PutRecording(Box::new(rec)).into()),
        )?;
        place(&self.opts.data_dir, &o.path, &rel)?;
        self.count(|s| {
            s.segments += 1;
            s.bytes += done.size;
        });
        tracing::debug!(camera = %self.camera, path = %rel, frames = done.frames, "segment recorded");
        Ok(())
    }
}

/// What [`reconcile`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Open segments whose record was committed, moved into place.
    pub placed: u32,
    /// Open segments salvaged after a crash and committed.
    pub salvaged: u32,
    /// Open segments with nothing to salvage, removed.
    pub removed: u32,
    /// Trashed segments whose deletion was finished.
    pub trashed: u32,
}

/// Makes files and store agree after a crash (see the module documentation). Run it before
/// any recorder of `data_dir` starts.
pub async fn reconcile(data_dir: &Path, store: &dyn Store) -> Result<ReconcileReport> {
    let mut report = ReconcileReport::default();
    let open = open_dir(data_dir);
    for path in list(&open)? {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some((camera, id, start, kind)) = parse_open_name(name) else {
            tracing::warn!(path = %path.display(), "removing an unknown file from recordings/.open");
            remove(&path)?;
            continue;
        };
        let rel = segment_path(&camera, start, id);
        if store.recording_by_path(&rel).await?.is_some() {
            place(data_dir, &path, &rel)?;
            report.placed += 1;
            continue;
        }
        let p = path.clone();
        let salvaged = tokio::task::spawn_blocking(move || mp4::salvage(&p))
            .await
            .map_err(|e| Error::internal(format!("salvage task: {e}")))??;
        match salvaged {
            Some(info) => {
                let params = info.params.clone();
                if info.timescale != TIMESCALE {
                    // Our segments are always 90 kHz; anything else is not ours.
                    tracing::warn!(path = %path.display(), "unexpected timescale; removing");
                    remove(&path)?;
                    report.removed += 1;
                    continue;
                }
                let rec = record_of(
                    &camera,
                    id,
                    kind,
                    start,
                    Finished {
                        duration_ticks: info.duration(),
                        size: info.complete_len,
                        frames: info.samples.len() as u32,
                    },
                    &params,
                );
                store
                    .apply(Mutation::PutRecording(Box::new(rec)).into())
                    .await?;
                place(data_dir, &path, &rel)?;
                tracing::info!(path = %rel, frames = info.samples.len(), "salvaged a segment after a crash");
                report.salvaged += 1;
            }
            None => {
                remove(&path)?;
                report.removed += 1;
            }
        }
    }
    if !open.as_os_str().is_empty() && open.is_dir() {
        sync_dir(&open)?;
    }
    let trash = trash_dir(data_dir);
    for path in list(&trash)? {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let rel = name.replace('~', "/");
        if let Some(r) = store.recording_by_path(&rel).await? {
            store.apply(Mutation::DeleteRecording(r.id).into()).await?;
        }
        remove(&path)?;
        remove_art(data_dir, &rel);
        report.trashed += 1;
    }
    Ok(report)
}

/// Deletes a recording: its file goes to `.trash/` first, then its record, then the file, so a
/// crash in between is finished by [`reconcile`].
pub async fn delete_recording(data_dir: &Path, store: &dyn Store, rec: &Recording) -> Result<()> {
    crate::model::validate_relative_path(&rec.path)?;
    let trash = trash_dir(data_dir);
    create_dirs(&trash)?;
    let src = data_dir.join(&rec.path);
    let dst = trash.join(rec.path.replace('/', "~"));
    let moved = match fs::rename(&src, &dst) {
        Ok(()) => {
            sync_dir(&trash)?;
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(io(format!("trash {}", rec.path))(e)),
    };
    store
        .apply(Mutation::DeleteRecording(rec.id).into())
        .await?;
    if moved {
        remove(&dst)?;
    }
    remove_art(data_dir, &rec.path);
    Ok(())
}

fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    match fs::read_dir(dir) {
        Ok(rd) => {
            let mut v: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
            v.sort();
            Ok(v)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io(format!("list {}", dir.display()))(e)),
    }
}

fn remove(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(format!("remove {}", path.display()))(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_names_round_trip() {
        let cam = CameraId::new("front-door").unwrap();
        let n = open_name(
            &cam,
            RecordingId(42),
            Timestamp(1_766_491_200_000_000),
            RecordingKind::Event,
        );
        assert_eq!(
            parse_open_name(&n),
            Some((
                cam.clone(),
                RecordingId(42),
                Timestamp(1_766_491_200_000_000),
                RecordingKind::Event
            ))
        );
        assert_eq!(parse_open_name("junk.mp4"), None);
        assert_eq!(
            segment_path(&cam, Timestamp(1_766_491_200_000_000), RecordingId(42)),
            "recordings/front-door/2025-12-23/12/42.mp4"
        );
    }
}
