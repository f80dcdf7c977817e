//! Snapshots drawn on request: the stored clean frame cropped to the object, scaled to a
//! height, with the object's box and label and the capture time drawn on it (the parameters
//! of Frigate's `snapshot.jpg` and `latest.jpg`: `bbox`, `crop`, `timestamp`, `h`, `quality`).

use std::path::Path;

use vigil_core::{validate_relative_path, BBox, Error, Event, Result, Timestamp};

use crate::decode::scale_plane;
use crate::events::encode_jpeg;

/// How a snapshot is drawn.
#[derive(Clone, Debug, PartialEq)]
pub struct SnapshotStyle {
    /// Draw the object's box, label and score.
    pub bbox: bool,
    /// Crop to a square around the object.
    pub crop: bool,
    /// Draw the capture time (UTC) in the top-left corner.
    pub timestamp: bool,
    /// Scale to this height (keeping the aspect ratio); `None` keeps the size.
    pub height: Option<u32>,
    /// JPEG quality, 1-100.
    pub quality: u8,
}

impl Default for SnapshotStyle {
    fn default() -> Self {
        SnapshotStyle {
            bbox: false,
            crop: false,
            timestamp: false,
            height: None,
            quality: 70,
        }
    }
}

impl SnapshotStyle {
    /// The style a camera's snapshot settings ask for when a request says nothing.
    pub fn for_camera(settings: &vigil_core::SnapshotSettings) -> SnapshotStyle {
        SnapshotStyle {
            bbox: settings.bounding_box,
            crop: settings.crop,
            height: (settings.height > 0).then_some(settings.height),
            ..SnapshotStyle::default()
        }
    }
}

/// The object a snapshot shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Annotation {
    /// Its box, normalised to the frame.
    pub bbox: BBox,
    /// Its label.
    pub label: String,
    /// Its score, 0-1.
    pub score: f32,
}

/// A packed RGB picture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rgb {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width × height × 3` bytes.
    pub data: Vec<u8>,
}

/// Decodes a JPEG (a stored snapshot) to RGB.
pub fn decode_jpeg(jpeg: &[u8]) -> Result<Rgb> {
    let options = zune_jpeg::zune_core::options::DecoderOptions::default()
        .jpeg_set_out_colorspace(zune_jpeg::zune_core::colorspace::ColorSpace::RGB);
    let mut d = zune_jpeg::JpegDecoder::new_with_options(
        zune_jpeg::zune_core::bytestream::ZCursor::new(jpeg),
        options,
    );
    let data = d
        .decode()
        .map_err(|e| Error::new(vigil_core::ErrorKind::DataLoss, format!("bad JPEG: {e:?}")))?;
    let (w, h) = d
        .dimensions()
        .ok_or_else(|| Error::new(vigil_core::ErrorKind::DataLoss, "bad JPEG: no size"))?;
    if data.len() != w * h * 3 {
        return Err(Error::new(
            vigil_core::ErrorKind::DataLoss,
            format!("bad JPEG: {} bytes for {w}x{h}", data.len()),
        ));
    }
    Ok(Rgb {
        width: w as u32,
        height: h as u32,
        data,
    })
}

/// The best snapshot of `event` (stored under `data_dir`) drawn as `style` asks, with the
/// event's label and best score: Frigate's `/api/events/{id}/snapshot.jpg`. `NotFound` when
/// the event has no snapshot (or its file is gone).
pub fn render_event_snapshot(
    data_dir: &Path,
    event: &Event,
    style: &SnapshotStyle,
) -> Result<Vec<u8>> {
    let best = event
        .best
        .as_ref()
        .filter(|_| event.has_snapshot)
        .ok_or_else(|| Error::not_found(format!("event {} has no snapshot", event.id)))?;
    let rel = best
        .snapshot_path
        .as_deref()
        .ok_or_else(|| Error::not_found(format!("event {} has no snapshot", event.id)))?;
    validate_relative_path(rel)?;
    let jpeg = match std::fs::read(data_dir.join(rel)) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::not_found(format!(
                "the snapshot of event {} is gone ({rel})",
                event.id
            )))
        }
        Err(e) => return Err(Error::internal(format!("cannot read {rel}: {e}"))),
    };
    let object = Annotation {
        bbox: best.bbox,
        label: event.label.clone(),
        score: best.score,
    };
    render(&decode_jpeg(&jpeg)?, best.time, Some(&object), style)
}

/// Draws `picture` (captured at `time`, showing `object`) as `style` asks, as a JPEG.
pub fn render(
    picture: &Rgb,
    time: Timestamp,
    object: Option<&Annotation>,
    style: &SnapshotStyle,
) -> Result<Vec<u8>> {
    check_picture(picture, style.quality)?;
    if let Some(h) = style.height {
        if !(16..=4320).contains(&h) {
            return Err(Error::invalid(format!(
                "height {h} is not between 16 and 4320 pixels"
            )));
        }
    }
    let (w, h) = (picture.width, picture.height);
    // The part of the frame shown, in frame pixels.
    let (x0, y0, cw, ch) = match object.filter(|_| style.crop) {
        Some(o) => {
            let (x, y, side) = square_around(&o.bbox, w, h, 1.2, 64);
            (x, y, side, side)
        }
        None => (0, 0, w, h),
    };
    let (ow, oh) = match style.height {
        Some(th) => (
            (u64::from(cw) * u64::from(th) / u64::from(ch)).max(1) as u32,
            th,
        ),
        None => (cw, ch),
    };
    let mut out = Rgb {
        width: ow,
        height: oh,
        data: resample(picture, x0, y0, cw, ch, ow, oh),
    };
    let scale = (oh / 240).max(1);
    if let (true, Some(o)) = (style.bbox, object) {
        // The box in output pixels.
        let map = |v: f32, origin: u32, size: u32, frame: u32, to: u32| {
            ((v * frame as f32 - origin as f32) * to as f32 / size as f32).round() as i64
        };
        let bx = (
            map(o.bbox.x1, x0, cw, w, ow),
            map(o.bbox.y1, y0, ch, h, oh),
            map(o.bbox.x2, x0, cw, w, ow),
            map(o.bbox.y2, y0, ch, h, oh),
        );
        let text = format!("{} {:.0}%", o.label, o.score * 100.0);
        labelled_box(&mut out, bx, scale, &text, colour_of(&o.label));
    }
    if style.timestamp {
        text_box(&mut out, 4, 4, &format_utc(time), scale, [0, 0, 0]);
    }
    encode_jpeg(&out.data, out.width, out.height, style.quality)
}

/// What to draw over a live picture: the parameters of Frigate's debug stream and
/// `latest.jpg` (`bbox`, `timestamp`, `zones`, `mask`, `motion`, `regions`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Overlays {
    /// The followed objects' boxes, labels, scores and ids.
    pub bbox: bool,
    /// The capture time (UTC), top left.
    pub timestamp: bool,
    /// The zones' outlines, in their colours.
    pub zones: bool,
    /// The motion masks, darkened.
    pub mask: bool,
    /// Moving areas, in blue.
    pub motion: bool,
    /// Where the detector ran, in green.
    pub regions: bool,
}

/// Draws a camera's live picture with `overlays`, scaled to `height` (keeping the aspect
/// ratio), as a JPEG of `quality`.
pub fn render_live(
    frame: &vigil_core::pipeline::LiveFrame,
    zones: &[vigil_core::Zone],
    masks: &[vigil_core::Polygon],
    overlays: &Overlays,
    height: Option<u32>,
    quality: u8,
) -> Result<Vec<u8>> {
    if !(1..=100).contains(&quality) {
        return Err(Error::invalid(format!(
            "quality {quality} is not between 1 and 100"
        )));
    }
    let (w, h) = (frame.image.width, frame.image.height);
    let mut pic = Rgb {
        width: w,
        height: h,
        data: crate::image::to_rgb(&frame.image)?,
    };
    if let Some(th) = height {
        if !(16..=4320).contains(&th) {
            return Err(Error::invalid(format!(
                "height {th} is not between 16 and 4320 pixels"
            )));
        }
        if th != h {
            let tw = ((u64::from(w) * u64::from(th) / u64::from(h)).max(2) / 2 * 2) as u32;
            pic = Rgb {
                width: tw,
                height: th,
                data: resample(&pic, 0, 0, w, h, tw, th),
            };
        }
    }
    let (ow, oh) = (pic.width as f32, pic.height as f32);
    let px = |b: &BBox| {
        (
            (b.x1 * ow).round() as i64,
            (b.y1 * oh).round() as i64,
            (b.x2 * ow).round() as i64,
            (b.y2 * oh).round() as i64,
        )
    };
    let scale = (pic.height / 240).max(1);
    let t = i64::from(scale);
    if overlays.mask {
        for m in masks {
            shade(&mut pic, m);
        }
    }
    if overlays.zones {
        for z in zones.iter().filter(|z| z.enabled) {
            let c = parse_colour(&z.color).unwrap_or([255, 255, 0]);
            outline(&mut pic, &z.polygon, t, c);
        }
    }
    if overlays.motion {
        for b in &frame.motion {
            rectangle(&mut pic, px(b), t, [0, 0, 255]);
        }
    }
    if overlays.regions {
        for b in &frame.regions {
            rectangle(&mut pic, px(b), t, [0, 255, 0]);
        }
    }
    if overlays.bbox {
        for o in &frame.objects {
            let mut text = format!(
                "{} {:.0}% #{}",
                o.label,
                o.smoothed_score * 100.0,
                o.tracker_id
            );
            if o.stationary {
                text.push_str(" still");
            }
            labelled_box(&mut pic, px(&o.bbox), scale, &text, colour_of(&o.label));
        }
    }
    if overlays.timestamp {
        text_box(&mut pic, 4, 4, &format_utc(frame.time), scale, [0, 0, 0]);
    }
    encode_jpeg(&pic.data, pic.width, pic.height, quality)
}

/// Draws `objects` (boxes normalised to the picture) with their labels and scores over
/// `picture`, as a JPEG of `quality`: what `vigil detect` writes.
pub fn render_detections(picture: &Rgb, objects: &[Annotation], quality: u8) -> Result<Vec<u8>> {
    check_picture(picture, quality)?;
    let (w, h) = (picture.width, picture.height);
    let mut pic = picture.clone();
    let scale = (h / 240).max(1);
    let (fw, fh) = (w as f32, h as f32);
    for o in objects {
        let b = (
            (o.bbox.x1 * fw).round() as i64,
            (o.bbox.y1 * fh).round() as i64,
            (o.bbox.x2 * fw).round() as i64,
            (o.bbox.y2 * fh).round() as i64,
        );
        let text = format!("{} {:.0}%", o.label, o.score * 100.0);
        labelled_box(&mut pic, b, scale, &text, colour_of(&o.label));
    }
    encode_jpeg(&pic.data, pic.width, pic.height, quality)
}

/// A JPEG quality within 1..=100 and a picture whose bytes fit its size.
fn check_picture(picture: &Rgb, quality: u8) -> Result<()> {
    if !(1..=100).contains(&quality) {
        return Err(Error::invalid(format!(
            "quality {quality} is not between 1 and 100"
        )));
    }
    let (w, h) = (picture.width, picture.height);
    let want = u64::from(w) * u64::from(h) * 3;
    if w == 0 || h == 0 || picture.data.len() as u64 != want {
        return Err(Error::invalid(format!(
            "a {w}x{h} RGB picture needs {want} bytes, got {}",
            picture.data.len()
        )));
    }
    Ok(())
}

/// A box (output pixels) in `c`, with `text` on a filled strip just above it (inside it when
/// there is no room above).
fn labelled_box(p: &mut Rgb, b: (i64, i64, i64, i64), scale: u32, text: &str, c: [u8; 3]) {
    let t = i64::from(scale);
    rectangle(p, b, t + 1, c);
    let th = text_height(scale) as i64;
    let ty = if b.1 - th - 2 >= 0 {
        b.1 - th - 2
    } else {
        b.1 + t + 2
    };
    text_box(p, b.0.max(0), ty.max(0), text, scale, c);
}

/// `#rrggbb` as a colour.
fn parse_colour(s: &str) -> Option<[u8; 3]> {
    let hex = s.strip_prefix('#')?;
    if hex.len() != 6 {
        return None;
    }
    let v = u32::from_str_radix(hex, 16).ok()?;
    Some([(v >> 16) as u8, (v >> 8) as u8, v as u8])
}

/// The polygon's edges, `t` pixels thick.
fn outline(p: &mut Rgb, poly: &vigil_core::Polygon, t: i64, c: [u8; 3]) {
    let (w, h) = (p.width as f32, p.height as f32);
    let n = poly.points.len();
    for i in 0..n {
        let (a, b) = (poly.points[i], poly.points[(i + 1) % n]);
        let (x0, y0) = ((a.x * w) as i64, (a.y * h) as i64);
        let (x1, y1) = ((b.x * w) as i64, (b.y * h) as i64);
        let steps = (x1 - x0).abs().max((y1 - y0).abs()).max(1);
        for s in 0..=steps {
            let x = x0 + (x1 - x0) * s / steps;
            let y = y0 + (y1 - y0) * s / steps;
            fill(p, x - t / 2, y - t / 2, x - t / 2 + t, y - t / 2 + t, c);
        }
    }
}

/// Darkens the inside of the polygon to a third.
fn shade(p: &mut Rgb, poly: &vigil_core::Polygon) {
    let (w, h) = (p.width, p.height);
    let xs = poly.points.iter().map(|q| q.x);
    let ys = poly.points.iter().map(|q| q.y);
    let (x0, x1) = (xs.clone().fold(1.0f32, f32::min), xs.fold(0.0f32, f32::max));
    let (y0, y1) = (ys.clone().fold(1.0f32, f32::min), ys.fold(0.0f32, f32::max));
    let span = |lo: f32, hi: f32, n: u32| {
        let a = ((lo * n as f32).floor().max(0.0) as u32).min(n);
        let b = ((hi * n as f32).ceil().max(0.0) as u32).min(n);
        a..b
    };
    for y in span(y0, y1, h) {
        for x in span(x0, x1, w) {
            let q = vigil_core::Point {
                x: (x as f32 + 0.5) / w as f32,
                y: (y as f32 + 0.5) / h as f32,
            };
            if poly.contains(q) {
                let i = (y as usize * w as usize + x as usize) * 3;
                for v in &mut p.data[i..i + 3] {
                    *v /= 3;
                }
            }
        }
    }
}

/// A square (`x0`, `y0`, side) around `bbox`: its longer side times `margin`, at least
/// `min_side`, moved inside the `w × h` frame (and no bigger than its shorter side).
pub fn square_around(bbox: &BBox, w: u32, h: u32, margin: f32, min_side: u32) -> (u32, u32, u32) {
    let (wf, hf) = (w as f32, h as f32);
    let side = ((bbox.x2 - bbox.x1) * wf).max((bbox.y2 - bbox.y1) * hf) * margin;
    let side = (side.ceil() as u32).max(min_side).min(w.min(h)).max(1);
    let cx = (bbox.x1 + bbox.x2) / 2.0 * wf;
    let cy = (bbox.y1 + bbox.y2) / 2.0 * hf;
    let x0 = (cx - side as f32 / 2.0).clamp(0.0, (w - side) as f32) as u32;
    let y0 = (cy - side as f32 / 2.0).clamp(0.0, (h - side) as f32) as u32;
    (x0, y0, side)
}

/// The `cw × ch` area at (`x0`, `y0`) of `p`, scaled to `ow × oh` (area average when
/// shrinking), packed RGB.
pub(crate) fn resample(p: &Rgb, x0: u32, y0: u32, cw: u32, ch: u32, ow: u32, oh: u32) -> Vec<u8> {
    let (w, cw, ch, ow, oh) = (
        p.width as usize,
        cw as usize,
        ch as usize,
        ow as usize,
        oh as usize,
    );
    let mut out = vec![0u8; ow * oh * 3];
    let mut plane = vec![0u8; cw * ch];
    let mut scaled = vec![0u8; ow * oh];
    for c in 0..3 {
        for y in 0..ch {
            let row = ((y0 as usize + y) * w + x0 as usize) * 3;
            for x in 0..cw {
                plane[y * cw + x] = p.data[row + x * 3 + c];
            }
        }
        scale_plane(&plane, cw, ch, cw, &mut scaled, ow, oh);
        for (i, v) in scaled.iter().enumerate() {
            out[i * 3 + c] = *v;
        }
    }
    out
}

/// A colour per label, stable across runs, bright enough to read on.
fn colour_of(label: &str) -> [u8; 3] {
    const PALETTE: [[u8; 3]; 8] = [
        [255, 56, 56],
        [255, 157, 151],
        [255, 178, 29],
        [207, 210, 49],
        [72, 249, 10],
        [26, 147, 52],
        [0, 194, 255],
        [255, 55, 199],
    ];
    let h = label.bytes().fold(2166136261u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(16777619)
    });
    PALETTE[h as usize % PALETTE.len()]
}

fn put(p: &mut Rgb, x: i64, y: i64, c: [u8; 3]) {
    if x >= 0 && y >= 0 && (x as u32) < p.width && (y as u32) < p.height {
        let i = ((y as usize) * p.width as usize + x as usize) * 3;
        p.data[i..i + 3].copy_from_slice(&c);
    }
}

fn fill(p: &mut Rgb, x0: i64, y0: i64, x1: i64, y1: i64, c: [u8; 3]) {
    let (x0, x1) = (x0.max(0), x1.min(i64::from(p.width)));
    let (y0, y1) = (y0.max(0), y1.min(i64::from(p.height)));
    for y in y0..y1 {
        for x in x0..x1 {
            put(p, x, y, c);
        }
    }
}

/// The outline of (`x1`, `y1`, `x2`, `y2`), `t` pixels thick, inside the box.
fn rectangle(p: &mut Rgb, (x1, y1, x2, y2): (i64, i64, i64, i64), t: i64, c: [u8; 3]) {
    fill(p, x1, y1, x2, y1 + t, c);
    fill(p, x1, y2 - t, x2, y2, c);
    fill(p, x1, y1, x1 + t, y2, c);
    fill(p, x2 - t, y1, x2, y2, c);
}

const GLYPH_W: u32 = 5;
const GLYPH_H: u32 = 7;

fn text_height(scale: u32) -> u32 {
    (GLYPH_H + 2) * scale
}

/// `text` on a box of `bg` (white letters on dark colours, black on light ones), with a
/// glyph pixel of margin.
fn text_box(p: &mut Rgb, x: i64, y: i64, text: &str, scale: u32, bg: [u8; 3]) {
    let s = i64::from(scale);
    let advance = i64::from(GLYPH_W + 1) * s;
    let width = advance * text.chars().count() as i64 + s;
    fill(p, x, y, x + width, y + i64::from(text_height(scale)), bg);
    let fg = if u32::from(bg[0]) + u32::from(bg[1]) + u32::from(bg[2]) > 384 {
        [0, 0, 0]
    } else {
        [255, 255, 255]
    };
    for (i, ch) in text.chars().enumerate() {
        let rows = glyph(ch);
        let gx = x + s + i as i64 * advance;
        for (r, bits) in rows.iter().enumerate() {
            for col in 0..GLYPH_W {
                if bits & (1 << (GLYPH_W - 1 - col)) != 0 {
                    let px = gx + i64::from(col) * s;
                    let py = y + s + r as i64 * s;
                    fill(p, px, py, px + s, py + s, fg);
                }
            }
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS` in UTC.
fn format_utc(t: Timestamp) -> String {
    let iso = t.iso();
    match iso.get(..19) {
        Some(s) => s.replacen('T', " ", 1),
        None => iso.to_string(),
    }
}

/// A 5×7 glyph, one row per byte (bit 4 is the leftmost column). Letters are drawn lower
/// case; anything without a glyph is a hollow box.
fn glyph(c: char) -> [u8; 7] {
    match c.to_ascii_lowercase() {
        '0' => [0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e],
        '1' => [0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e],
        '2' => [0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f],
        '3' => [0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e],
        '4' => [0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02],
        '5' => [0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e],
        '6' => [0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e],
        '7' => [0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e],
        '9' => [0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c],
        ' ' => [0; 7],
        ':' => [0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x0c, 0x00],
        '-' => [0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x0c],
        '_' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1f],
        '/' => [0x01, 0x02, 0x02, 0x04, 0x08, 0x08, 0x10],
        '%' => [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03],
        'a' => [0x00, 0x00, 0x0e, 0x01, 0x0f, 0x11, 0x0f],
        'b' => [0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1e],
        'c' => [0x00, 0x00, 0x0e, 0x10, 0x10, 0x11, 0x0e],
        'd' => [0x01, 0x01, 0x0d, 0x13, 0x11, 0x11, 0x0f],
        'e' => [0x00, 0x00, 0x0e, 0x11, 0x1f, 0x10, 0x0e],
        'f' => [0x06, 0x09, 0x08, 0x1c, 0x08, 0x08, 0x08],
        'g' => [0x00, 0x0f, 0x11, 0x11, 0x0f, 0x01, 0x0e],
        'h' => [0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11],
        'i' => [0x04, 0x00, 0x0c, 0x04, 0x04, 0x04, 0x0e],
        'j' => [0x02, 0x00, 0x06, 0x02, 0x02, 0x12, 0x0c],
        'k' => [0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12],
        'l' => [0x0c, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e],
        'm' => [0x00, 0x00, 0x1a, 0x15, 0x15, 0x11, 0x11],
        'n' => [0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11],
        'o' => [0x00, 0x00, 0x0e, 0x11, 0x11, 0x11, 0x0e],
        'p' => [0x00, 0x00, 0x1e, 0x11, 0x1e, 0x10, 0x10],
        'q' => [0x00, 0x00, 0x0d, 0x13, 0x0f, 0x01, 0x01],
        'r' => [0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10],
        's' => [0x00, 0x00, 0x0e, 0x10, 0x0e, 0x01, 0x1e],
        't' => [0x08, 0x08, 0x1c, 0x08, 0x08, 0x09, 0x06],
        'u' => [0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0d],
        'v' => [0x00, 0x00, 0x11, 0x11, 0x11, 0x0a, 0x04],
        'w' => [0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0a],
        'x' => [0x00, 0x00, 0x11, 0x0a, 0x04, 0x0a, 0x11],
        'y' => [0x00, 0x00, 0x11, 0x11, 0x0f, 0x01, 0x0e],
        'z' => [0x00, 0x00, 0x1f, 0x02, 0x04, 0x08, 0x1f],
        _ => [0x1f, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1f],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(Timestamp(0)), "1970-01-01 00:00:00");
        assert_eq!(
            format_utc(Timestamp(1_766_491_200_000_000 + 3_723_000_000)),
            "2025-12-23 13:02:03"
        );
        assert_eq!(
            format_utc(Timestamp(951_782_400_000_000)),
            "2000-02-29 00:00:00"
        );
    }

    #[test]
    fn squares_stay_inside_the_frame() {
        let b = BBox {
            x1: 0.9,
            y1: 0.9,
            x2: 1.0,
            y2: 1.0,
        };
        assert_eq!(square_around(&b, 640, 360, 1.2, 64), (563, 283, 77));
        let big = BBox {
            x1: 0.0,
            y1: 0.0,
            x2: 1.0,
            y2: 1.0,
        };
        assert_eq!(square_around(&big, 640, 360, 1.2, 64), (140, 0, 360));
    }
}
