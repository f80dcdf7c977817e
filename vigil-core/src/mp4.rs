//! MP4 files without re-encoding: the fragmented segments the recorder writes as frames arrive,
//! the reader that lists the samples of any MP4 (fragmented or not), salvage of a segment left
//! open by a crash, and progressive (moov-first) files for clips joined from segments.
//!
//! Layout of a segment: `ftyp`, `moov` (one video track, empty sample tables, `mvex`), then one
//! `moof`+`mdat` pair per fragment (about a second of frames). A crash can only cut the file
//! after some fragment; [`salvage`] keeps every complete fragment, truncates the rest and fills
//! in the durations, which are written as 0 while recording and patched on [`SegmentWriter::finish`].
//!
//! All times are in the 90 kHz timescale of RTP video. B-frames (composition offsets) are not
//! supported: cameras streaming to NVRs do not send them, and the reader ignores `ctts`.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::error::{Error, ErrorKind, Result};
use crate::media::{VideoCodec, VideoParams};

/// Ticks per second of every track Vigil writes.
pub const TIMESCALE: u32 = 90_000;

/// One sample (a video frame) of an MP4 file.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Byte offset of its data in the file.
    pub offset: u64,
    /// Size of its data.
    pub size: u32,
    /// Decode time in the track's timescale, from the start of the track.
    pub dts: u64,
    /// Duration in the track's timescale.
    pub duration: u32,
    /// Whether it is a sync sample (key frame).
    pub is_key: bool,
}

/// What [`read`] learns about a file.
#[derive(Clone, Debug)]
pub struct Mp4Info {
    /// The video track's parameters.
    pub params: VideoParams,
    /// The track's timescale.
    pub timescale: u32,
    /// Every complete sample, in decode order.
    pub samples: Vec<Sample>,
    /// Length of the file's complete prefix: everything after it is a cut-off fragment.
    pub complete_len: u64,
    /// Where the duration fields of `mvhd`, `tkhd`, `mdhd` and `mehd` are: (offset, width).
    duration_fields: Vec<(u64, u8)>,
    /// Whether the file is fragmented.
    pub fragmented: bool,
}

impl Mp4Info {
    /// Total duration of the samples, in the track's timescale.
    pub fn duration(&self) -> u64 {
        self.samples
            .last()
            .map_or(0, |s| s.dts + u64::from(s.duration))
    }
}

fn data_loss(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::DataLoss, msg)
}

fn io_err(what: &str) -> impl FnOnce(io::Error) -> Error + '_ {
    move |e| Error::new(ErrorKind::Internal, format!("{what}: {e}")).with_source(e)
}

// ---------------------------------------------------------------------------------------------
// Writing boxes.

/// Builds boxes in a byte vector, patching each size when the box is closed.
#[derive(Default)]
struct Boxes {
    b: Vec<u8>,
    open: Vec<usize>,
}

impl Boxes {
    fn start(&mut self, typ: &[u8; 4]) {
        self.open.push(self.b.len());
        self.b.extend_from_slice(&[0, 0, 0, 0]);
        self.b.extend_from_slice(typ);
    }
    fn start_full(&mut self, typ: &[u8; 4], version: u8, flags: u32) {
        self.start(typ);
        self.u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
    }
    fn end(&mut self) {
        if let Some(pos) = self.open.pop() {
            let size = (self.b.len() - pos) as u32;
            self.b[pos..pos + 4].copy_from_slice(&size.to_be_bytes());
        }
    }
    fn u16(&mut self, v: u16) {
        self.b.extend_from_slice(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.b.extend_from_slice(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.b.extend_from_slice(&v.to_be_bytes());
    }
    fn zeros(&mut self, n: usize) {
        self.b.resize(self.b.len() + n, 0);
    }
    fn bytes(&mut self, v: &[u8]) {
        self.b.extend_from_slice(v);
    }
    fn matrix(&mut self) {
        for v in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
            self.u32(v);
        }
    }
}

fn ftyp(b: &mut Boxes) {
    b.start(b"ftyp");
    b.bytes(b"isom");
    b.u32(0x200);
    for brand in [b"isom", b"iso6", b"iso2", b"avc1", b"mp41"] {
        b.bytes(brand);
    }
    b.end();
}

/// The sample tables of a progressive file (`None` for a fragmented one).
struct Tables<'a> {
    samples: &'a [Sample],
    /// Offset of each sample's data in the new file.
    offsets: &'a [u64],
}

/// Writes `moov`: movie header, one video track, and either sample tables (progressive) or,
/// for `None`, empty tables and `mvex` (fragmented).
fn moov(b: &mut Boxes, params: &VideoParams, duration: u64, tables: Option<Tables<'_>>) {
    b.start(b"moov");
    b.start_full(b"mvhd", 1, 0);
    b.u64(0);
    b.u64(0);
    b.u32(TIMESCALE);
    b.u64(duration);
    b.u32(0x0001_0000); // rate 1.0
    b.u16(0x0100); // volume 1.0
    b.zeros(10);
    b.matrix();
    b.zeros(24);
    b.u32(2); // next track id
    b.end();

    b.start(b"trak");
    b.start_full(b"tkhd", 1, 3);
    b.u64(0);
    b.u64(0);
    b.u32(1); // track id
    b.u32(0);
    b.u64(duration);
    b.zeros(8);
    b.u16(0); // layer
    b.u16(0); // alternate group
    b.u16(0); // volume
    b.u16(0);
    b.matrix();
    b.u32(params.width << 16);
    b.u32(params.height << 16);
    b.end();

    b.start(b"mdia");
    b.start_full(b"mdhd", 1, 0);
    b.u64(0);
    b.u64(0);
    b.u32(TIMESCALE);
    b.u64(duration);
    b.u16(0x55c4); // "und"
    b.u16(0);
    b.end();
    b.start_full(b"hdlr", 0, 0);
    b.u32(0);
    b.bytes(b"vide");
    b.zeros(12);
    b.bytes(b"Vigil video\0");
    b.end();
    b.start(b"minf");
    b.start_full(b"vmhd", 0, 1);
    b.zeros(8);
    b.end();
    b.start(b"dinf");
    b.start_full(b"dref", 0, 0);
    b.u32(1);
    b.start_full(b"url ", 0, 1);
    b.end();
    b.end();
    b.end();
    b.start(b"stbl");
    stsd(b, params);
    let fragmented = tables.is_none();
    match tables {
        None => {
            for t in [b"stts", b"stsc", b"stco"] {
                b.start_full(t, 0, 0);
                b.u32(0);
                b.end();
            }
            b.start_full(b"stsz", 0, 0);
            b.u32(0);
            b.u32(0);
            b.end();
        }
        Some(t) => sample_tables(b, t),
    }
    b.end(); // stbl
    b.end(); // minf
    b.end(); // mdia
    b.end(); // trak

    if fragmented {
        b.start(b"mvex");
        b.start_full(b"mehd", 1, 0);
        b.u64(duration);
        b.end();
        b.start_full(b"trex", 0, 0);
        b.u32(1); // track id
        b.u32(1); // sample description index
        b.u32(0);
        b.u32(0);
        b.u32(0);
        b.end();
        b.end();
    }
    b.end(); // moov
}

fn stsd(b: &mut Boxes, params: &VideoParams) {
    b.start_full(b"stsd", 0, 0);
    b.u32(1);
    let (entry, config) = match params.codec {
        VideoCodec::H264 => (b"avc1", b"avcC"),
        VideoCodec::H265 => (b"hvc1", b"hvcC"),
    };
    b.start(entry);
    b.zeros(6);
    b.u16(1); // data reference index
    b.zeros(16);
    b.u16(params.width.min(0xffff) as u16);
    b.u16(params.height.min(0xffff) as u16);
    b.u32(0x0048_0000);
    b.u32(0x0048_0000);
    b.u32(0);
    b.u16(1); // frame count
    b.zeros(32); // compressor name
    b.u16(0x0018);
    b.u16(0xffff);
    b.start(config);
    b.bytes(&params.extra_data);
    b.end();
    b.end();
    b.end();
}

fn sample_tables(b: &mut Boxes, t: Tables<'_>) {
    // stts: runs of equal durations.
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for s in t.samples {
        match runs.last_mut() {
            Some((n, d)) if *d == s.duration => *n += 1,
            _ => runs.push((1, s.duration)),
        }
    }
    b.start_full(b"stts", 0, 0);
    b.u32(runs.len() as u32);
    for (n, d) in runs {
        b.u32(n);
        b.u32(d);
    }
    b.end();
    b.start_full(b"stss", 0, 0);
    let keys: Vec<u32> = (1u32..)
        .zip(t.samples)
        .filter(|(_, s)| s.is_key)
        .map(|(i, _)| i)
        .collect();
    b.u32(keys.len() as u32);
    for k in keys {
        b.u32(k);
    }
    b.end();
    // One chunk per sample keeps the tables simple; co64 allows files over 4 GiB.
    b.start_full(b"stsc", 0, 0);
    b.u32(1);
    b.u32(1);
    b.u32(1);
    b.u32(1);
    b.end();
    b.start_full(b"stsz", 0, 0);
    b.u32(0);
    b.u32(t.samples.len() as u32);
    for s in t.samples {
        b.u32(s.size);
    }
    b.end();
    b.start_full(b"co64", 0, 0);
    b.u32(t.offsets.len() as u32);
    for &o in t.offsets {
        b.u64(o);
    }
    b.end();
}

/// The init segment of a fragmented file: `ftyp` and a `moov` with `mvex`.
fn init_segment(params: &VideoParams) -> Vec<u8> {
    let mut b = Boxes::default();
    ftyp(&mut b);
    moov(&mut b, params, 0, None);
    b.b
}

fn fragment(seq: u32, base_dts: u64, samples: &[(u32, u32, bool)]) -> Vec<u8> {
    let mut b = Boxes::default();
    b.start(b"moof");
    b.start_full(b"mfhd", 0, 0);
    b.u32(seq);
    b.end();
    b.start(b"traf");
    b.start_full(b"tfhd", 0, 0x02_0000); // default-base-is-moof
    b.u32(1);
    b.end();
    b.start_full(b"tfdt", 1, 0);
    b.u64(base_dts);
    b.end();
    b.start_full(b"trun", 0, 0x000001 | 0x000100 | 0x000200 | 0x000400);
    b.u32(samples.len() as u32);
    let data_offset_pos = b.b.len();
    b.u32(0);
    for &(duration, size, key) in samples {
        b.u32(duration);
        b.u32(size);
        b.u32(if key { 0x0200_0000 } else { 0x0101_0000 });
    }
    b.end(); // trun
    b.end(); // traf
    b.end(); // moof
    let moof_len = b.b.len() as u32;
    b.b[data_offset_pos..data_offset_pos + 4].copy_from_slice(&(moof_len + 8).to_be_bytes());
    b.b
}

/// Writes a fragmented MP4 segment as frames arrive.
///
/// Frames are held until the next one arrives (its time gives the duration) and written as one
/// fragment about every `fragment_ticks`; [`finish`](Self::finish) writes the rest, fills in the
/// durations and fsyncs the file.
pub struct SegmentWriter {
    file: File,
    params: VideoParams,
    duration_fields: Vec<(u64, u8)>,
    written: u64,
    seq: u32,
    fragment_ticks: u64,
    /// Frames of the fragment being built: (pts, data, key); the last one awaits its duration.
    pending: Vec<(i64, Vec<u8>, bool)>,
    /// pts of the first frame.
    start_pts: Option<i64>,
    /// Decode time (from the start) of the first pending frame.
    next_dts: u64,
    frames: u32,
}

impl SegmentWriter {
    /// Creates `path` and writes the init segment.
    pub fn create(path: &Path, params: VideoParams, fragment_ticks: u64) -> Result<Self> {
        let mut file = File::create(path).map_err(io_err("create segment"))?;
        let init = init_segment(&params);
        if let Err(e) = file.write_all(&init) {
            // Not even the init segment (the disk full): no file is left behind.
            let _ = std::fs::remove_file(path);
            return Err(io_err("write segment")(e));
        }
        let info = read_boxes(&mut io::Cursor::new(&init), init.len() as u64)?;
        Ok(SegmentWriter {
            file,
            params,
            duration_fields: info.duration_fields,
            written: init.len() as u64,
            seq: 0,
            fragment_ticks: fragment_ticks.max(1),
            pending: Vec::new(),
            start_pts: None,
            next_dts: 0,
            frames: 0,
        })
    }

    /// The stream parameters the segment was created with.
    pub fn params(&self) -> &VideoParams {
        &self.params
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.written + self.pending.iter().map(|p| p.1.len() as u64).sum::<u64>()
    }

    /// Whether no frame was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.start_pts.is_none()
    }

    /// Frames pushed so far.
    pub fn frames(&self) -> u32 {
        self.frames
    }

    /// Ticks from the first frame to the last one pushed.
    pub fn span(&self) -> u64 {
        match (self.start_pts, self.pending.last()) {
            (Some(s), Some(l)) => (l.0 - s).max(0) as u64,
            _ => self.next_dts,
        }
    }

    /// Adds a frame (AVC-form access unit) with its presentation time in 90 kHz ticks. Times must
    /// increase; a frame that goes back in time is given a one-tick duration.
    pub fn push(&mut self, pts: i64, data: &[u8], is_key: bool) -> Result<()> {
        if self.start_pts.is_none() {
            self.start_pts = Some(pts);
        }
        // Flush at a key frame or when the fragment is long enough, keeping the last frame back.
        if let Some(first) = self.pending.first() {
            let long = (pts - first.0).max(0) as u64 >= self.fragment_ticks;
            if long || is_key {
                self.write_fragment(pts)?;
            }
        }
        self.pending.push((pts, data.to_vec(), is_key));
        self.frames += 1;
        Ok(())
    }

    /// Writes every pending frame; the last one lasts until `end_pts`.
    fn write_fragment(&mut self, end_pts: i64) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut entries = Vec::with_capacity(self.pending.len());
        for (i, (pts, data, key)) in self.pending.iter().enumerate() {
            let next = self.pending.get(i + 1).map_or(end_pts, |n| n.0);
            let d = u32::try_from((next - pts).max(1)).unwrap_or(u32::MAX);
            entries.push((d, data.len() as u32, *key));
        }
        self.seq += 1;
        let moof = fragment(self.seq, self.next_dts, &entries);
        let data_len: u64 = self.pending.iter().map(|p| p.1.len() as u64).sum();
        let mut out = moof;
        out.extend_from_slice(&((data_len + 8) as u32).to_be_bytes());
        out.extend_from_slice(b"mdat");
        for (_, data, _) in &self.pending {
            out.extend_from_slice(data);
        }
        if let Err(e) = self.file.write_all(&out) {
            // The disk full, say: what was written before stays whole (the file is cut back to
            // it, so the next fragment follows it) and the pending frames are lost.
            let _ = self.file.set_len(self.written);
            let _ = self.file.seek(SeekFrom::Start(self.written));
            self.frames -= self.pending.len() as u32;
            self.pending.clear();
            return Err(io_err("write segment")(e));
        }
        self.written += out.len() as u64;
        self.next_dts += entries.iter().map(|e| u64::from(e.0)).sum::<u64>();
        self.pending.clear();
        Ok(())
    }

    /// Writes the remaining frames (the last lasting until `end_pts`, the time of the frame that
    /// starts the next segment, or `None` to repeat the previous frame's duration), patches the
    /// durations and fsyncs the file. When the remaining frames cannot be written (the disk is
    /// full) the segment is finished without them, as long as it holds a frame.
    pub fn finish(mut self, end_pts: Option<i64>) -> Result<Finished> {
        let end = match (end_pts, self.pending.as_slice()) {
            (Some(e), _) => e,
            (None, [.., a, b]) => b.0 + (b.0 - a.0).max(1),
            (None, [b]) => b.0 + 3000,
            (None, []) => 0,
        };
        if let Err(e) = self.write_fragment(end) {
            if self.frames == 0 {
                return Err(e);
            }
        }
        let duration = self.next_dts;
        patch_durations(&mut self.file, &self.duration_fields, duration)?;
        self.file.sync_all().map_err(io_err("fsync segment"))?;
        Ok(Finished {
            duration_ticks: duration,
            size: self.written,
            frames: self.frames,
        })
    }
}

/// A finished segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Finished {
    /// Its duration, in ticks of its timescale.
    pub duration_ticks: u64,
    /// Its size in bytes.
    pub size: u64,
    /// The frames it holds.
    pub frames: u32,
}

fn patch_durations(f: &mut File, fields: &[(u64, u8)], duration: u64) -> Result<()> {
    for &(off, width) in fields {
        f.seek(SeekFrom::Start(off)).map_err(io_err("seek"))?;
        if width == 8 {
            f.write_all(&duration.to_be_bytes())
        } else {
            f.write_all(&(duration.min(u64::from(u32::MAX)) as u32).to_be_bytes())
        }
        .map_err(io_err("patch duration"))?;
    }
    f.seek(SeekFrom::End(0)).map_err(io_err("seek"))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Reading.

/// Opens `path`: `NotFound` when it is not there.
fn open(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| {
        Error::new(
            if e.kind() == io::ErrorKind::NotFound {
                ErrorKind::NotFound
            } else {
                ErrorKind::Internal
            },
            format!("open {}: {e}", path.display()),
        )
    })
}

/// Lists the samples of the MP4 file at `path`.
pub fn read(path: &Path) -> Result<Mp4Info> {
    let mut f = open(path)?;
    let len = f.metadata().map_err(io_err("stat"))?.len();
    read_boxes(&mut f, len)
        .map_err(|e| Error::new(e.kind(), format!("{}: {}", path.display(), e.message())))
}

/// Lists the samples of an MP4 file held in memory (what [`read`] does for a path).
pub fn parse(bytes: &[u8]) -> Result<Mp4Info> {
    read_boxes(&mut io::Cursor::new(bytes), bytes.len() as u64)
}

/// Where the parts of the fragmented file at `path` lie: the end of its init segment (`ftyp`,
/// `moov`; the offset of its first `moof`) and the end of its last complete fragment (its
/// length, once the file is finished; less while the recorder still appends to it). HLS plays
/// a recorded segment as these two parts, the init segment (`EXT-X-MAP`) and the fragments.
/// `None` when the file has no complete fragment (a progressive MP4, or a segment just begun).
pub fn fragments(path: &Path) -> Result<Option<(u64, u64)>> {
    let mut f = open(path)?;
    let len = f.metadata().map_err(io_err("stat"))?.len();
    let (mut at, mut first_moof, mut complete) = (0u64, None, None);
    while at + 8 <= len {
        f.seek(SeekFrom::Start(at)).map_err(io_err("seek"))?;
        let mut head = [0u8; 16];
        let n = if at + 16 <= len { 16 } else { 8 };
        f.read_exact(&mut head[..n]).map_err(io_err("read"))?;
        let [a, b, c, d, t0, t1, t2, t3, ..] = head;
        let size = match u32::from_be_bytes([a, b, c, d]) {
            // The size is in the next 8 bytes, not all written yet.
            1 if n < 16 => break,
            // The size is in the next 8 bytes.
            1 => u64::from_be_bytes([
                head[8], head[9], head[10], head[11], head[12], head[13], head[14], head[15],
            ]),
            // To the end of the file.
            0 => len - at,
            s => u64::from(s),
        };
        if size < 8 {
            return Err(Error::new(
                ErrorKind::DataLoss,
                format!("{}: a box of {size} bytes at {at}", path.display()),
            ));
        }
        let end = at.saturating_add(size);
        if end > len {
            // Still being written.
            break;
        }
        match &[t0, t1, t2, t3] {
            b"moof" if first_moof.is_none() => first_moof = Some(at),
            b"mdat" if first_moof.is_some() => complete = Some(end),
            _ => {}
        }
        at = end;
    }
    Ok(first_moof.zip(complete))
}

/// Keeps what a crash left of a segment: truncates it after its last complete fragment and
/// writes the real durations. Returns `None` (and leaves the file alone) when it holds no
/// complete frame or is not an MP4 at all.
pub fn salvage(path: &Path) -> Result<Option<Mp4Info>> {
    let info = match read(path) {
        Ok(i) => i,
        Err(e) if e.kind() == ErrorKind::DataLoss => return Ok(None),
        Err(e) => return Err(e),
    };
    if info.samples.is_empty() {
        return Ok(None);
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_err("open segment for salvage"))?;
    f.set_len(info.complete_len).map_err(io_err("truncate"))?;
    patch_durations(&mut f, &info.duration_fields, info.duration())?;
    f.sync_all().map_err(io_err("fsync"))?;
    Ok(Some(info))
}

struct Header {
    typ: [u8; 4],
    start: u64,
    header: u64,
    end: u64,
}

fn read_header<R: Read + Seek>(r: &mut R, at: u64, limit: u64) -> Result<Option<Header>> {
    if at + 8 > limit {
        return Ok(None);
    }
    r.seek(SeekFrom::Start(at)).map_err(io_err("seek"))?;
    let mut h = [0u8; 8];
    r.read_exact(&mut h).map_err(io_err("read box"))?;
    let size = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    let typ = [h[4], h[5], h[6], h[7]];
    let (header, size) = match size {
        0 => (8, limit - at),
        1 => {
            if at + 16 > limit {
                return Ok(None);
            }
            let mut l = [0u8; 8];
            r.read_exact(&mut l).map_err(io_err("read box"))?;
            (16, u64::from_be_bytes(l))
        }
        n => (8, u64::from(n)),
    };
    if size < header {
        return Err(data_loss(format!(
            "box {} at {at} has size {size}",
            String::from_utf8_lossy(&typ)
        )));
    }
    Ok(Some(Header {
        typ,
        start: at,
        header,
        end: at.saturating_add(size),
    }))
}

/// A child box: its type, its body, and the offset of the body within the parent's body.
type Child<'a> = ([u8; 4], &'a [u8], usize);

/// A cursor over the body of one box held in memory.
struct Body<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Body<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.b.len());
        let Some(end) = end else {
            return Err(data_loss("box ends early"));
        };
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u16(&mut self) -> Result<u16> {
        let s = self.take(2)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }
    fn u32(&mut self) -> Result<u32> {
        let s = self.take(4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u64(&mut self) -> Result<u64> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_be_bytes(a))
    }
    fn full(&mut self) -> Result<(u8, u32)> {
        let v = self.u32()?;
        Ok(((v >> 24) as u8, v & 0x00ff_ffff))
    }
    /// Child boxes: (type, body, offset of the body within `self.b`).
    fn children(&self, from: usize) -> Result<Vec<Child<'a>>> {
        let mut out = Vec::new();
        let mut p = from;
        while p + 8 <= self.b.len() {
            let size = u32::from_be_bytes([self.b[p], self.b[p + 1], self.b[p + 2], self.b[p + 3]])
                as usize;
            let typ = [self.b[p + 4], self.b[p + 5], self.b[p + 6], self.b[p + 7]];
            if size < 8 || p + size > self.b.len() {
                return Err(data_loss(format!(
                    "box {} overruns its parent",
                    String::from_utf8_lossy(&typ)
                )));
            }
            out.push((typ, &self.b[p + 8..p + size], p + 8));
            p += size;
        }
        Ok(out)
    }
}

fn child<'a>(kids: &[Child<'a>], typ: &[u8; 4]) -> Option<(&'a [u8], usize)> {
    kids.iter().find(|k| &k.0 == typ).map(|k| (k.1, k.2))
}

#[derive(Default)]
struct Track {
    timescale: u32,
    params: Option<VideoParams>,
    samples: Vec<Sample>,
    trex_duration: u32,
    trex_size: u32,
    trex_flags: u32,
}

fn read_boxes<R: Read + Seek>(r: &mut R, len: u64) -> Result<Mp4Info> {
    let mut track: Option<Track> = None;
    let mut fields = Vec::new();
    let mut fragmented = false;
    let mut complete = 0u64;
    let mut pending: Vec<Sample> = Vec::new();
    let mut next_dts = 0u64;
    let mut at = 0u64;
    let mut saw_ftyp_or_moov = false;
    while let Some(h) = read_header(r, at, len)? {
        if h.end > len {
            break; // cut off
        }
        match &h.typ {
            b"moov" | b"moof" => {
                let n = usize::try_from(h.end - h.start - h.header)
                    .map_err(|_| data_loss("box too large"))?;
                if n > 64 << 20 {
                    return Err(data_loss("metadata box over 64 MiB"));
                }
                let mut buf = vec![0u8; n];
                r.read_exact(&mut buf).map_err(io_err("read box"))?;
                let base = h.start + h.header;
                if &h.typ == b"moov" {
                    saw_ftyp_or_moov = true;
                    let (t, f, frag) = parse_moov(&buf, base)?;
                    fields = f;
                    fragmented = frag;
                    track = Some(t);
                    complete = h.end;
                } else {
                    let t = track
                        .as_ref()
                        .ok_or_else(|| data_loss("moof before moov"))?;
                    parse_moof(&buf, h.start, t, &mut next_dts, &mut pending)?;
                }
            }
            b"mdat" => {
                if let Some(t) = track.as_mut() {
                    if fragmented {
                        // A fragment's samples lie in the mdat that follows its moof. One
                        // whose samples point elsewhere is damaged, and what follows it
                        // cannot be trusted: the file is complete up to the fragment before.
                        let body = h.start + h.header;
                        if pending
                            .iter()
                            .any(|s| s.offset < body || s.offset + u64::from(s.size) > h.end)
                        {
                            pending.clear();
                            break;
                        }
                        t.samples.append(&mut pending);
                        complete = h.end;
                    }
                }
                if !fragmented {
                    complete = complete.max(h.end);
                }
            }
            b"ftyp" => {
                saw_ftyp_or_moov = true;
                if track.is_none() {
                    complete = h.end;
                }
            }
            _ => {
                if !saw_ftyp_or_moov && at == 0 {
                    return Err(data_loss("not an MP4 file"));
                }
            }
        }
        if h.end == at {
            break;
        }
        at = h.end;
    }
    let t = track.ok_or_else(|| data_loss("no moov box"))?;
    let params = t
        .params
        .ok_or_else(|| data_loss("no H.264/H.265 video track"))?;
    let mut samples = t.samples;
    if !fragmented {
        // A progressive file is complete only if every sample's data is inside the file.
        samples.retain(|s| s.offset + u64::from(s.size) <= len);
        complete = len;
    }
    Ok(Mp4Info {
        params,
        timescale: t.timescale,
        samples,
        complete_len: complete,
        duration_fields: fields,
        fragmented,
    })
}

type Fields = Vec<(u64, u8)>;

fn parse_moov(buf: &[u8], base: u64) -> Result<(Track, Fields, bool)> {
    let body = Body { b: buf, pos: 0 };
    let kids = body.children(0)?;
    let mut fields = Vec::new();
    // A duration field at `pos` of a box's body `b` whose body starts at `at` in the file; one
    // that a box too short does not hold is left alone (salvage would write over the next
    // box's header).
    let mut field = |b: &[u8], at: usize, pos: usize, w: u8| {
        if pos + usize::from(w) <= b.len() {
            fields.push((base + (at + pos) as u64, w));
        }
    };
    if let Some((mvhd, off)) = child(&kids, b"mvhd") {
        let v = mvhd.first().copied().unwrap_or(0);
        // version 1: flags(4) creation(8) modification(8) timescale(4) duration(8)
        let (pos, w) = if v == 1 { (24, 8) } else { (16, 4) };
        field(mvhd, off, pos, w);
    }
    let mut fragmented = false;
    let mut trex = (0, 0, 0);
    if let Some((mvex, off)) = child(&kids, b"mvex") {
        fragmented = true;
        let mb = Body { b: mvex, pos: 0 };
        for (typ, b, o) in mb.children(0)? {
            if &typ == b"mehd" {
                let w = if b.first() == Some(&1) { 8 } else { 4 };
                field(b, off + o, 4, w);
            }
            if &typ == b"trex" {
                let mut t = Body { b, pos: 0 };
                t.full()?;
                t.u32()?; // track id
                t.u32()?; // description index
                trex = (t.u32()?, t.u32()?, t.u32()?);
            }
        }
    }
    // The first video track.
    for (typ, trak, trak_off) in &kids {
        if typ != b"trak" {
            continue;
        }
        let tb = Body { b: trak, pos: 0 };
        let tk = tb.children(0)?;
        let Some((mdia, mdia_off)) = child(&tk, b"mdia") else {
            continue;
        };
        let mk = Body { b: mdia, pos: 0 }.children(0)?;
        let is_video = child(&mk, b"hdlr").is_some_and(|(h, _)| h.get(8..12) == Some(b"vide"));
        if !is_video {
            continue;
        }
        let mut t = Track {
            trex_duration: trex.0,
            trex_size: trex.1,
            trex_flags: trex.2,
            ..Track::default()
        };
        if let Some((tkhd, off)) = child(&tk, b"tkhd") {
            let v = tkhd.first().copied().unwrap_or(0);
            // v1: flags(4) creation(8) modification(8) track(4) reserved(4) duration(8)
            let (pos, w) = if v == 1 { (28, 8) } else { (20, 4) };
            field(tkhd, trak_off + off, pos, w);
        }
        if let Some((mdhd, off)) = child(&mk, b"mdhd") {
            let mut m = Body { b: mdhd, pos: 0 };
            let (v, _) = m.full()?;
            if v == 1 {
                m.take(16)?;
                t.timescale = m.u32()?;
                field(mdhd, trak_off + mdia_off + off, 24, 8);
            } else {
                m.take(8)?;
                t.timescale = m.u32()?;
                field(mdhd, trak_off + mdia_off + off, 16, 4);
            }
        }
        if t.timescale == 0 {
            return Err(data_loss("video track with timescale 0"));
        }
        let stbl = child(&mk, b"minf")
            .map(|(minf, _)| Body { b: minf, pos: 0 }.children(0))
            .transpose()?
            .and_then(|k| child(&k, b"stbl").map(|s| s.0));
        if let Some(stbl) = stbl {
            let sk = Body { b: stbl, pos: 0 }.children(0)?;
            if let Some((stsd, _)) = child(&sk, b"stsd") {
                t.params = parse_stsd(stsd)?;
            }
            if !fragmented {
                t.samples = progressive_samples(&sk)?;
            }
        }
        return Ok((t, fields, fragmented));
    }
    Err(data_loss("no video track"))
}

fn parse_stsd(stsd: &[u8]) -> Result<Option<VideoParams>> {
    let b = Body { b: stsd, pos: 0 };
    // full box header (4) + entry count (4), then sample entries.
    for (typ, entry, _) in b.children(8)? {
        let codec = match &typ {
            b"avc1" | b"avc3" => VideoCodec::H264,
            b"hvc1" | b"hev1" => VideoCodec::H265,
            _ => continue,
        };
        let mut e = Body { b: entry, pos: 0 };
        e.take(24)?;
        let width = u32::from(e.u16()?);
        let height = u32::from(e.u16()?);
        // 78 bytes of visual sample entry, then child boxes.
        let kids = e.children(78)?;
        let cfg = match codec {
            VideoCodec::H264 => child(&kids, b"avcC"),
            VideoCodec::H265 => child(&kids, b"hvcC"),
        };
        let Some((cfg, _)) = cfg else {
            return Err(data_loss(
                "video sample entry without decoder configuration",
            ));
        };
        let rfc6381_codec = match codec {
            VideoCodec::H264 if cfg.len() >= 4 => {
                format!("avc1.{:02x}{:02x}{:02x}", cfg[1], cfg[2], cfg[3])
            }
            VideoCodec::H264 => return Err(data_loss("short avcC")),
            VideoCodec::H265 => "hvc1".to_owned(),
        };
        return Ok(Some(VideoParams {
            codec,
            rfc6381_codec,
            width,
            height,
            extra_data: cfg.to_vec(),
        }));
    }
    Ok(None)
}

fn table<'a>(kids: &[Child<'a>], typ: &[u8; 4]) -> Result<Option<Body<'a>>> {
    match child(kids, typ) {
        Some((b, _)) => {
            let mut body = Body { b, pos: 0 };
            body.full()?;
            Ok(Some(body))
        }
        None => Ok(None),
    }
}

fn progressive_samples(sk: &[Child<'_>]) -> Result<Vec<Sample>> {
    const MAX: u32 = 50_000_000;
    let too_many = || data_loss("sample table too large");
    let mut sizes = Vec::new();
    if let Some(mut b) = table(sk, b"stsz")? {
        let fixed = b.u32()?;
        let n = b.u32()?;
        if n > MAX {
            return Err(too_many());
        }
        for _ in 0..n {
            sizes.push(if fixed != 0 { fixed } else { b.u32()? });
        }
    }
    let n = sizes.len();
    let mut durations = Vec::with_capacity(n);
    if let Some(mut b) = table(sk, b"stts")? {
        for _ in 0..b.u32()? {
            let (count, delta) = (b.u32()?, b.u32()?);
            if durations.len() + count as usize > n {
                return Err(data_loss("stts describes more samples than stsz"));
            }
            durations.extend(std::iter::repeat_n(delta, count as usize));
        }
    }
    durations.resize(n, 0);
    let mut keys = vec![true; n];
    if let Some(mut b) = table(sk, b"stss")? {
        keys.iter_mut().for_each(|k| *k = false);
        for _ in 0..b.u32()? {
            let i = b.u32()? as usize;
            if let Some(k) = i.checked_sub(1).and_then(|i| keys.get_mut(i)) {
                *k = true;
            }
        }
    }
    let mut chunks = Vec::new();
    if let Some(mut b) = table(sk, b"stco")? {
        for _ in 0..b.u32()?.min(MAX) {
            chunks.push(u64::from(b.u32()?));
        }
    } else if let Some(mut b) = table(sk, b"co64")? {
        for _ in 0..b.u32()?.min(MAX) {
            chunks.push(b.u64()?);
        }
    }
    let mut stsc = Vec::new();
    if let Some(mut b) = table(sk, b"stsc")? {
        for _ in 0..b.u32()?.min(MAX) {
            let (first, per, _) = (b.u32()?, b.u32()?, b.u32()?);
            stsc.push((first, per));
        }
    }
    let mut out = Vec::with_capacity(n);
    let mut i = 0usize;
    let mut dts = 0u64;
    for (c, &chunk_off) in chunks.iter().enumerate() {
        let chunk_no = c as u32 + 1;
        let per = stsc
            .iter()
            .rev()
            .find(|(first, _)| *first <= chunk_no)
            .map_or(0, |e| e.1);
        let mut off = chunk_off;
        for _ in 0..per {
            if i >= n {
                break;
            }
            out.push(Sample {
                offset: off,
                size: sizes[i],
                dts,
                duration: durations[i],
                is_key: keys[i],
            });
            off += u64::from(sizes[i]);
            dts += u64::from(durations[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn parse_moof(
    buf: &[u8],
    moof_start: u64,
    t: &Track,
    next_dts: &mut u64,
    out: &mut Vec<Sample>,
) -> Result<()> {
    let kids = Body { b: buf, pos: 0 }.children(0)?;
    for (typ, traf, _) in &kids {
        if typ != b"traf" {
            continue;
        }
        let tk = Body { b: traf, pos: 0 }.children(0)?;
        let (mut def_dur, mut def_size, mut def_flags) =
            (t.trex_duration, t.trex_size, t.trex_flags);
        let mut base = moof_start;
        if let Some((tfhd, _)) = child(&tk, b"tfhd") {
            let mut b = Body { b: tfhd, pos: 0 };
            let (_, flags) = b.full()?;
            b.u32()?; // track id
            if flags & 0x1 != 0 {
                base = b.u64()?;
            }
            if flags & 0x2 != 0 {
                b.u32()?;
            }
            if flags & 0x8 != 0 {
                def_dur = b.u32()?;
            }
            if flags & 0x10 != 0 {
                def_size = b.u32()?;
            }
            if flags & 0x20 != 0 {
                def_flags = b.u32()?;
            }
        }
        if let Some((tfdt, _)) = child(&tk, b"tfdt") {
            let mut b = Body { b: tfdt, pos: 0 };
            let (v, _) = b.full()?;
            *next_dts = if v == 1 {
                b.u64()?
            } else {
                u64::from(b.u32()?)
            };
        }
        for (typ, trun, _) in &tk {
            if typ != b"trun" {
                continue;
            }
            let mut b = Body { b: trun, pos: 0 };
            let (v, flags) = b.full()?;
            let count = b.u32()?;
            let mut off = base;
            if flags & 0x1 != 0 {
                let d = b.u32()? as i32;
                off = base
                    .checked_add_signed(i64::from(d))
                    .ok_or_else(|| data_loss("trun data offset out of range"))?;
            }
            let first_flags = if flags & 0x4 != 0 {
                Some(b.u32()?)
            } else {
                None
            };
            if count as usize > buf.len() {
                return Err(data_loss("trun sample count larger than its box"));
            }
            for i in 0..count {
                let duration = if flags & 0x100 != 0 {
                    b.u32()?
                } else {
                    def_dur
                };
                let size = if flags & 0x200 != 0 {
                    b.u32()?
                } else {
                    def_size
                };
                let mut sflags = if flags & 0x400 != 0 {
                    b.u32()?
                } else {
                    def_flags
                };
                if i == 0 {
                    if let Some(f) = first_flags {
                        sflags = f;
                    }
                }
                if flags & 0x800 != 0 {
                    let _ = v;
                    b.u32()?;
                }
                out.push(Sample {
                    offset: off,
                    size,
                    dts: *next_dts,
                    duration,
                    is_key: sflags & 0x0001_0000 == 0,
                });
                off += u64::from(size);
                *next_dts += u64::from(duration);
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Clips.

/// One piece of a clip: samples of a source file.
pub struct ClipPart<'a> {
    /// The source file.
    pub path: &'a Path,
    /// The samples to take from it, in order.
    pub samples: Vec<Sample>,
}

/// Writes a progressive (moov first, so browsers start playing at once) MP4 made of the given
/// samples of one or more files with the same parameters, copying their data without
/// re-encoding. Durations must be in [`TIMESCALE`]. Returns the bytes written.
pub fn write_clip(
    out: &mut impl Write,
    params: &VideoParams,
    parts: &[ClipPart<'_>],
) -> Result<u64> {
    let mut samples: Vec<Sample> = Vec::new();
    for p in parts {
        samples.extend_from_slice(&p.samples);
    }
    if samples.is_empty() {
        return Err(Error::not_found("no frames in the requested range"));
    }
    let duration: u64 = samples.iter().map(|s| u64::from(s.duration)).sum();
    // The moov size does not depend on the offsets' values, so build it once with zeros to
    // learn where the data will start.
    let zeros = vec![0u64; samples.len()];
    let mut probe = Boxes::default();
    ftyp(&mut probe);
    moov(
        &mut probe,
        params,
        duration,
        Some(Tables {
            samples: &samples,
            offsets: &zeros,
        }),
    );
    let data_len: u64 = samples.iter().map(|s| u64::from(s.size)).sum();
    let large = data_len + 16 > u64::from(u32::MAX);
    let mdat_header = if large { 16 } else { 8 };
    let mut off = probe.b.len() as u64 + mdat_header;
    let offsets: Vec<u64> = samples
        .iter()
        .map(|s| {
            let o = off;
            off += u64::from(s.size);
            o
        })
        .collect();
    let mut head = Boxes::default();
    ftyp(&mut head);
    moov(
        &mut head,
        params,
        duration,
        Some(Tables {
            samples: &samples,
            offsets: &offsets,
        }),
    );
    if large {
        head.u32(1);
        head.bytes(b"mdat");
        head.u64(data_len + 16);
    } else {
        head.u32((data_len + 8) as u32);
        head.bytes(b"mdat");
    }
    out.write_all(&head.b).map_err(io_err("write clip"))?;
    let mut buf = Vec::new();
    for p in parts {
        let mut f = File::open(p.path).map_err(io_err("open segment"))?;
        for s in &p.samples {
            buf.resize(s.size as usize, 0);
            f.seek(SeekFrom::Start(s.offset)).map_err(io_err("seek"))?;
            f.read_exact(&mut buf)
                .map_err(|e| data_loss(format!("{}: frame data missing: {e}", p.path.display())))?;
            out.write_all(&buf).map_err(io_err("write clip"))?;
        }
    }
    Ok(head.b.len() as u64 + data_len)
}
