//! Clips: any time range of a camera, joined from its segments without re-encoding.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::id::CameraId;
use crate::model::{validate_relative_path, Event, RecordSettings, Recording};
use crate::mp4::{self, ClipPart, TIMESCALE};
use crate::query::{Order, Query, RecordingFilter, TimeRange};
use crate::store::Store;
use crate::time::Timestamp;

/// What a clip holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClipInfo {
    /// Time of its first frame (the key frame at or before the start asked for).
    pub start: Timestamp,
    /// Time just after its last frame.
    pub end: Timestamp,
    /// Frames.
    pub frames: u32,
    /// Bytes written.
    pub size_bytes: u64,
}

/// Writes to `out` an MP4 of `camera` from `start` to `end`: from the key frame at or before
/// `start` to the last frame starting before `end`, across as many segments as needed.
/// Segments with other stream parameters than the first one (a camera that changed resolution)
/// end the clip there. Fails with `NotFound` when nothing was recorded in the range. The
/// writer is handed back.
pub async fn write_clip<W: Write + Send + 'static>(
    store: &dyn Store,
    data_dir: &Path,
    camera: &CameraId,
    start: Timestamp,
    end: Timestamp,
    mut out: W,
) -> Result<(ClipInfo, W)> {
    if end <= start {
        return Err(Error::invalid(format!(
            "clip end {end} is not after its start {start}"
        )));
    }
    // Segments that overlap the range: they start before its end, and end after its start.
    // A segment is at most a few minutes long, so one starting an hour early cannot reach in.
    let mut q = Query::new(RecordingFilter {
        cameras: vec![camera.clone()],
        time: TimeRange {
            after: Some(Timestamp(start.0 - 3_600_000_000)),
            before: Some(end),
        },
        ..Default::default()
    });
    q.order = Order::Asc;
    q.page.limit = 1000;
    let mut recs: Vec<Recording> = Vec::new();
    loop {
        let page = store.recordings(&q).await?;
        recs.extend(page.items.into_iter().filter(|r| r.end_time > start));
        match page.next_cursor {
            Some(c) => q.page.cursor = Some(c),
            None => break,
        }
    }
    let data_dir = data_dir.to_owned();
    let camera = camera.clone();
    // File reading and copying are blocking work.
    let job = move || -> Result<(ClipInfo, W)> {
        let mut parts = Vec::new();
        let mut params = None;
        let mut first: Option<Timestamp> = None;
        let mut last_end = start;
        let mut frames = 0u32;
        // The finished segments, then the one being written (its complete fragments: the
        // recorder writes one about every second), so a clip asked for just after an event
        // ends has all of it.
        let mut segments: Vec<(Timestamp, std::path::PathBuf, bool)> = Vec::new();
        for r in &recs {
            validate_relative_path(&r.path)?;
            segments.push((r.start_time, data_dir.join(&r.path), false));
        }
        let last_committed = recs.iter().map(|r| r.end_time).max();
        segments.extend(
            open_segments(&data_dir, &camera, end, last_committed)
                .into_iter()
                .map(|(t, p)| (t, p, true)),
        );
        for (seg_start, path, open) in &segments {
            let info = match mp4::read(path) {
                Ok(i) => i,
                // It was finished and moved into place meanwhile: its part is left out.
                Err(e) if *open && e.kind() == crate::error::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            match &params {
                None => params = Some(info.params.clone()),
                Some(p) if *p != info.params => break,
                Some(_) => {}
            }
            let t =
                |dts: u64| Timestamp(seg_start.0 + (dts as i64) * 1_000_000 / i64::from(TIMESCALE));
            let mut samples = Vec::new();
            for s in &info.samples {
                let at = t(s.dts);
                if at >= end {
                    break;
                }
                if first.is_none() {
                    // Before the start, keep only from the latest key frame.
                    if at <= start {
                        if s.is_key {
                            samples.clear();
                        }
                        if !s.is_key && samples.is_empty() {
                            continue;
                        }
                    } else if samples.is_empty() && !s.is_key {
                        // The range starts in a gap before a segment that begins mid-GOP.
                        continue;
                    }
                }
                samples.push(*s);
                last_end = Timestamp(
                    t(s.dts).0 + i64::from(s.duration) * 1_000_000 / i64::from(TIMESCALE),
                );
            }
            if first.is_none() {
                if let Some(s) = samples.first() {
                    first = Some(t(s.dts));
                }
            }
            frames += samples.len() as u32;
            if !samples.is_empty() {
                parts.push(ClipPart {
                    path: path.as_path(),
                    samples,
                });
            }
        }
        let (Some(params), Some(first)) = (params, first) else {
            return Err(Error::not_found(format!(
                "nothing recorded for camera {camera} between {start} and {end}"
            )));
        };
        let size = mp4::write_clip(&mut out, &params, &parts)?;
        let info = ClipInfo {
            start: first,
            end: last_end,
            frames,
            size_bytes: size,
        };
        Ok((info, out))
    };
    tokio::task::spawn_blocking(job)
        .await
        .map_err(|e| Error::internal(format!("clip task: {e}")))?
}

/// `camera`'s segments still being written (in the recorder's open directory) that start
/// before `end` and not before `last_committed`, the end of its last finished segment: their
/// start and path, oldest first. Their complete fragments can be read while the recorder
/// appends; once finished, a segment moves into place and is a [`Recording`].
pub fn open_segments(
    data_dir: &Path,
    camera: &CameraId,
    end: Timestamp,
    last_committed: Option<Timestamp>,
) -> Vec<(Timestamp, std::path::PathBuf)> {
    let Ok(dir) = std::fs::read_dir(super::recorder::open_dir(data_dir)) else {
        return Vec::new();
    };
    let mut out: Vec<(Timestamp, std::path::PathBuf)> = dir
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let (cam, _, seg_start, _) = super::recorder::parse_open_name(name.to_str()?)?;
            let after_finished = last_committed.is_none_or(|t| seg_start >= t);
            (cam == *camera && seg_start < end && after_finished).then(|| (seg_start, e.path()))
        })
        .collect();
    out.sort_by_key(|s| s.0);
    out
}

/// The span of an event's clip: from the camera's pre-capture before the event started to its
/// post-capture after it ended (or after `now`, while it is in progress).
pub fn event_clip_range(
    event: &Event,
    settings: &RecordSettings,
    now: Timestamp,
) -> (Timestamp, Timestamp) {
    let s = |secs: u32| i64::from(secs) * 1_000_000;
    let start = Timestamp(event.start_time.0.saturating_sub(s(settings.pre_capture_s)));
    let end = Timestamp(
        event
            .end_time
            .unwrap_or(now)
            .0
            .saturating_add(s(settings.post_capture_s)),
    );
    (start, Timestamp(end.0.max(start.0 + 1)))
}

/// Writes to `out` the clip of `event` (Frigate's `/api/events/{id}/clip.mp4`): its camera's
/// recordings over [`event_clip_range`], with the camera's pre- and post-capture (the defaults
/// when the camera is gone). Fails with `NotFound` when nothing was recorded then.
pub async fn write_event_clip<W: Write + Send + 'static>(
    store: &dyn Store,
    data_dir: &Path,
    event: &Event,
    now: Timestamp,
    out: W,
) -> Result<(ClipInfo, W)> {
    let settings = store
        .camera(&event.camera)
        .await?
        .map(|c| c.record)
        .unwrap_or_default();
    let (start, end) = event_clip_range(event, &settings, now);
    write_clip(store, data_dir, &event.camera, start, end, out).await
}
