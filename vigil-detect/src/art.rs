//! Recording art: a thumbnail and a hover-scrub sprite sheet for every finished segment.
//!
//! The sprite sheet is picam's: [`SPRITE_FRAMES`] frames evenly spaced over the recording, each
//! scaled to 160×90, side by side in one 1600×90 JPEG; recordings shorter than two seconds get
//! none. The thumbnail is the first frame, [`THUMB_WIDTH`] pixels wide. Both are written beside
//! the segment ([`vigil_core::pipeline::art_paths`]) and named in its record.
//!
//! [`make_art`] reads and decodes only what it needs: for each of the ten instants, the group
//! of pictures that holds it, from its key frame up to that instant (a camera's key frames
//! come every second or two). [`run_art`] watches the store for finished recordings without
//! art, so a crash or restart only delays it.

use std::collections::HashSet;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use vigil_core::mp4::{self, Sample};
use vigil_core::pipeline::art_paths;
use vigil_core::{
    Clocks, Error, ErrorKind, Mutation, Order, PageRequest, Query, Recording, RecordingFilter,
    RecordingId, Result, SortBy, Store, Timestamp, VideoCodec, VideoFrame,
};

use crate::decode::{DecodeOptions, FrameDecoder};
use crate::events::{encode_jpeg, write_atomically};
use crate::image::to_rgb;

/// Frames in a sprite sheet.
pub const SPRITE_FRAMES: usize = 10;
/// Size of one frame of a sprite sheet.
pub const SPRITE_TILE: (u32, u32) = (160, 90);
/// Width of a recording's thumbnail.
pub const THUMB_WIDTH: u32 = 320;
/// Recordings shorter than this get no sprite sheet.
pub const SPRITE_MIN: Duration = Duration::from_secs(2);
const JPEG_QUALITY: u8 = 80;

/// A recording's art, as JPEG files.
#[derive(Clone, Debug)]
pub struct Art {
    /// The first frame, [`THUMB_WIDTH`] wide.
    pub thumbnail: Vec<u8>,
    /// The sprite sheet; `None` for a recording shorter than [`SPRITE_MIN`].
    pub sprite: Option<Vec<u8>>,
}

/// Makes the art of the segment at `path` (an MP4 Vigil wrote). Blocking: it decodes.
///
/// Fails with [`ErrorKind::FailedPrecondition`] for an H.265 segment (the decoder is H.264
/// only) and [`ErrorKind::InvalidArgument`] for a file with no key frame.
pub fn make_art(path: &Path) -> Result<Art> {
    let info = mp4::read(path)?;
    if info.params.codec != VideoCodec::H264 {
        return Err(Error::new(
            ErrorKind::FailedPrecondition,
            "recording art needs H.264 (this segment is H.265)",
        ));
    }
    let file = std::fs::File::open(path)
        .map_err(|e| Error::internal(format!("cannot open {}: {e}", path.display())))?;
    let source = Segment {
        file,
        path,
        samples: &info.samples,
        params: Arc::new(info.params.clone()),
        timescale: u64::from(info.timescale.max(1)),
    };
    let first_key = info
        .samples
        .iter()
        .position(|s| s.is_key)
        .ok_or_else(|| Error::invalid(format!("{} has no key frame", path.display())))?;

    let (w, h) = (info.params.width.max(2), info.params.height.max(2));
    let thumb_h = even((u64::from(THUMB_WIDTH) * u64::from(h) / u64::from(w)) as u32);
    let mut thumbs = decoder(THUMB_WIDTH, thumb_h)?;
    let picture = source
        .decode(&mut thumbs, first_key, first_key, true)?
        .ok_or_else(|| {
            Error::invalid(format!(
                "{}: the first key frame did not decode",
                path.display()
            ))
        })?;
    let thumbnail = encode_jpeg(&to_rgb(&picture)?, THUMB_WIDTH, thumb_h, JPEG_QUALITY)?;

    let duration = info.duration();
    let long_enough = duration * 1_000_000 / source.timescale >= SPRITE_MIN.as_micros() as u64;
    let sprite = if long_enough {
        Some(source.sprite(first_key, duration)?)
    } else {
        None
    };
    Ok(Art { thumbnail, sprite })
}

/// A decoder giving every frame at `width × height`.
fn decoder(width: u32, height: u32) -> Result<FrameDecoder> {
    FrameDecoder::new(DecodeOptions {
        width: Some(width),
        height: Some(height),
        fps: None,
    })
}

fn even(v: u32) -> u32 {
    (v.max(2) + 1) & !1
}

/// An open segment and its sample table.
struct Segment<'a> {
    file: std::fs::File,
    path: &'a Path,
    samples: &'a [Sample],
    params: Arc<vigil_core::VideoParams>,
    timescale: u64,
}

impl Segment<'_> {
    fn frame(&self, i: usize, with_params: bool) -> Result<VideoFrame> {
        let s = self.samples[i];
        let mut data = vec![0u8; s.size as usize];
        self.file
            .read_exact_at(&mut data, s.offset)
            .map_err(|e| Error::internal(format!("cannot read {}: {e}", self.path.display())))?;
        let ticks = i64::try_from(s.dts).unwrap_or(i64::MAX);
        Ok(VideoFrame {
            pts_90k: ticks,
            time: Timestamp(0),
            is_key: s.is_key,
            data: data.into(),
            new_params: with_params.then(|| self.params.clone()),
        })
    }

    /// Decodes samples `from..=to`, returning the picture of `to`. `fresh`: `from` is a key
    /// frame to start from (it carries the parameter sets); else decoding goes on from the
    /// sample before `from`.
    fn decode(
        &self,
        dec: &mut FrameDecoder,
        from: usize,
        to: usize,
        fresh: bool,
    ) -> Result<Option<vigil_core::Image>> {
        for i in from..to {
            dec.skip(&self.frame(i, fresh && i == from)?)?;
        }
        dec.push(&self.frame(to, fresh && from == to)?)
    }

    /// The sprite sheet: for each instant, the picture at or just after it.
    fn sprite(&self, first_key: usize, duration: u64) -> Result<Vec<u8>> {
        let (tw, th) = SPRITE_TILE;
        let sheet_w = tw as usize * SPRITE_FRAMES;
        let mut sheet = vec![0u8; sheet_w * th as usize * 3];
        let start = self.samples[first_key].dts;
        let span = (self.samples[0].dts + duration).saturating_sub(start);
        // Where decoding stands: the key frame it started from and the last sample decoded.
        let mut at: Option<(usize, usize)> = None;
        let mut dec = decoder(tw, th)?;
        for k in 0..SPRITE_FRAMES {
            let t = start + span * (2 * k as u64 + 1) / (2 * SPRITE_FRAMES as u64);
            let target = self
                .samples
                .partition_point(|s| s.dts < t)
                .clamp(first_key, self.samples.len() - 1);
            let key = (first_key..=target)
                .rev()
                .find(|&i| self.samples[i].is_key)
                .unwrap_or(first_key);
            let picture = match at {
                // Same group of pictures, further on: go on from where decoding stands.
                Some((k0, last)) if k0 == key && last < target => {
                    self.decode(&mut dec, last + 1, target, false)?
                }
                Some((k0, last)) if k0 == key && last == target => None,
                _ => self.decode(&mut dec, key, target, true)?,
            };
            at = Some((key, target));
            if let Some(p) = picture {
                let rgb = to_rgb(&p)?;
                for y in 0..th as usize {
                    let src = &rgb[y * tw as usize * 3..][..tw as usize * 3];
                    let dst = (y * sheet_w + k * tw as usize) * 3;
                    sheet[dst..dst + src.len()].copy_from_slice(src);
                }
            } else if k > 0 {
                // The same picture as the previous tile (a very short GOP-less stretch).
                for y in 0..th as usize {
                    let row = y * sheet_w * 3;
                    let (a, b) = (row + (k - 1) * tw as usize * 3, row + k * tw as usize * 3);
                    sheet.copy_within(a..a + tw as usize * 3, b);
                }
            }
        }
        encode_jpeg(&sheet, sheet_w as u32, th, JPEG_QUALITY)
    }
}

/// How [`run_art`] looks for work.
#[derive(Clone, Debug)]
pub struct ArtOptions {
    /// Time between looks at the store.
    pub interval: Duration,
    /// How far back the first look goes (later looks go back [`ArtOptions::window`]).
    pub catch_up: Duration,
    /// How far back each later look goes: a segment's record is written when it ends, so a
    /// long segment that started this long ago is still found.
    pub window: Duration,
}

impl Default for ArtOptions {
    fn default() -> Self {
        ArtOptions {
            interval: Duration::from_secs(5),
            catch_up: Duration::from_secs(24 * 3600),
            window: Duration::from_secs(2 * 3600),
        }
    }
}

/// Makes the art of recordings that have none, until `stop` turns true: looks at the store
/// every [`ArtOptions::interval`], decodes on the blocking pool, writes the files beside each
/// segment and names them in its record. A recording whose art cannot be made (an H.265
/// segment, a damaged file) is skipped and logged once.
pub async fn run_art(
    store: Arc<dyn Store>,
    clocks: Arc<dyn Clocks>,
    data_dir: PathBuf,
    options: ArtOptions,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tried: HashSet<RecordingId> = HashSet::new();
    let mut back = options.catch_up;
    loop {
        if *stop.borrow() {
            return;
        }
        let since = clocks.realtime().saturating_sub(back);
        back = options.window;
        match pending(store.as_ref(), since, &tried).await {
            Ok((todo, seen)) => {
                // Forget what fell out of the window (the set stays small).
                tried.retain(|id| seen.contains(id));
                for rec in todo {
                    if *stop.borrow() {
                        return;
                    }
                    tried.insert(rec.id);
                    if let Err(e) = art_for(store.as_ref(), &data_dir, &rec).await {
                        tracing::info!(path = %rec.path, error = %e, "no art for this recording");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list recordings for their art"),
        }
        tokio::select! {
            _ = tokio::time::sleep(options.interval) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Recordings since `since` without art and not tried yet, and every id seen.
async fn pending(
    store: &dyn Store,
    since: Timestamp,
    tried: &HashSet<RecordingId>,
) -> Result<(Vec<Recording>, HashSet<RecordingId>)> {
    let mut q = Query::new(RecordingFilter::default());
    q.filter.time.after = Some(since);
    q.sort = SortBy::Time;
    q.order = Order::Desc;
    q.page = PageRequest {
        limit: vigil_core::query::MAX_PAGE_LIMIT,
        ..PageRequest::default()
    };
    let (mut todo, mut seen) = (Vec::new(), HashSet::new());
    loop {
        let page = store.recordings(&q).await?;
        for r in page.items {
            seen.insert(r.id);
            if r.thumbnail_path.is_none() && !tried.contains(&r.id) {
                todo.push(r);
            }
        }
        match page.next_cursor {
            Some(c) if page.has_more => q.page.cursor = Some(c),
            _ => break,
        }
    }
    Ok((todo, seen))
}

/// Makes, writes and records one recording's art.
async fn art_for(store: &dyn Store, data_dir: &Path, rec: &Recording) -> Result<()> {
    vigil_core::model::validate_relative_path(&rec.path)?;
    let (thumb, sprite) = art_paths(&rec.path);
    let dir = data_dir.to_owned();
    let (segment, t, s) = (rec.path.clone(), thumb.clone(), sprite.clone());
    let made = tokio::task::spawn_blocking(move || -> Result<bool> {
        let art = make_art(&dir.join(&segment))?;
        write_atomically(&dir.join(&t), &art.thumbnail)?;
        if let Some(sheet) = &art.sprite {
            write_atomically(&dir.join(&s), sheet)?;
        }
        Ok(art.sprite.is_some())
    })
    .await
    .map_err(|e| Error::internal(format!("art task: {e}")))??;
    store
        .apply(
            Mutation::SetRecordingArt {
                id: rec.id,
                thumbnail_path: Some(thumb.clone()),
                sprite_path: made.then(|| sprite.clone()),
            }
            .into(),
        )
        .await?;
    // Retention may have removed the recording meanwhile: then the files go too.
    if store.recording(rec.id).await?.is_none() {
        for p in [&thumb, &sprite] {
            let _ = std::fs::remove_file(data_dir.join(p));
        }
    }
    Ok(())
}
