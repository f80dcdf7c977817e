//! Motion detection on a small grey copy of the picture: contrast normalisation, blur, a
//! running-average background, threshold, dilation and connected-component boxes, with
//! masks, and recalibration when the whole scene changes at once (lights, IR switching).
//!
//! Everything works at a fixed height (100 px by default), where a frame costs well under a
//! millisecond: motion runs on every analysed frame and decides where the detector looks.

use vigil_core::{BBox, Error, Image, MotionSettings, PixelFormat, Point, Polygon, Result};

use crate::decode::scale_plane;

/// Tuning of a [`MotionDetector`] beyond the camera's [`MotionSettings`].
#[derive(Clone, Debug, PartialEq)]
pub struct MotionOptions {
    /// Luma difference (0-255, after contrast normalisation) that counts as change.
    pub threshold: u8,
    /// Smallest changed area, in pixels of the motion frame.
    pub contour_area: u32,
    /// Areas where motion is ignored.
    pub masks: Vec<Polygon>,
    /// Height of the motion frame; the width follows the aspect ratio.
    pub frame_height: u32,
    /// Weight of each new frame in the running background (0-1).
    pub frame_alpha: f32,
    /// Fraction of changed pixels above which the change is taken for a global one (lights
    /// switching, the camera's IR mode) and the background is rebuilt instead of reporting
    /// motion.
    pub recalibrate_fraction: f32,
    /// Stretch each frame's contrast between its 4th and 96th luma percentiles, so motion
    /// is found as well at night as by day.
    pub improve_contrast: bool,
}

impl Default for MotionOptions {
    fn default() -> Self {
        MotionOptions::from(&MotionSettings::default())
    }
}

impl From<&MotionSettings> for MotionOptions {
    fn from(s: &MotionSettings) -> Self {
        MotionOptions {
            threshold: s.threshold,
            contour_area: s.contour_area,
            masks: s.masks.clone(),
            frame_height: 100,
            frame_alpha: 0.02,
            recalibrate_fraction: 0.6,
            improve_contrast: true,
        }
    }
}

/// What one frame showed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MotionResult {
    /// Areas that moved, in normalised coordinates, largest first.
    pub boxes: Vec<BBox>,
    /// Fraction of unmasked pixels that changed.
    pub changed: f32,
    /// The background was rebuilt from this frame (first frame, or a global change).
    pub recalibrated: bool,
}

/// Finds moving areas in the successive pictures of one camera.
#[derive(Debug)]
pub struct MotionDetector {
    options: MotionOptions,
    /// Motion frame size, fixed by the first picture.
    size: Option<(usize, usize)>,
    /// 1 where motion counts, 0 under a mask.
    active: Vec<u8>,
    active_count: usize,
    background: Vec<f32>,
    small: Vec<u8>,
    work: Vec<u8>,
    mask: Vec<u8>,
    dilated: Vec<u8>,
    labels: Vec<u32>,
}

impl MotionDetector {
    /// A detector with `options`; checks the masks.
    pub fn new(options: MotionOptions) -> Result<MotionDetector> {
        for m in &options.masks {
            m.validate()?;
        }
        if !(8..=1080).contains(&options.frame_height) {
            return Err(Error::invalid(format!(
                "motion frame height {} is not between 8 and 1080",
                options.frame_height
            )));
        }
        if !(options.frame_alpha > 0.0 && options.frame_alpha <= 1.0) {
            return Err(Error::invalid(format!(
                "frame alpha {} is not in (0, 1]",
                options.frame_alpha
            )));
        }
        Ok(MotionDetector {
            options,
            size: None,
            active: Vec::new(),
            active_count: 0,
            background: Vec::new(),
            small: Vec::new(),
            work: Vec::new(),
            mask: Vec::new(),
            dilated: Vec::new(),
            labels: Vec::new(),
        })
    }

    /// Size of the motion frame once the first picture came.
    pub fn frame_size(&self) -> Option<(usize, usize)> {
        self.size
    }

    /// Finds motion in `image` (I420 or grey: only luma is used) against the frames before.
    pub fn detect(&mut self, image: &Image) -> Result<MotionResult> {
        let (w, h) = (image.width as usize, image.height as usize);
        let luma_len = w * h;
        if !matches!(image.format, PixelFormat::I420 | PixelFormat::Gray8)
            || image.data.len() < luma_len
            || w == 0
            || h == 0
        {
            return Err(Error::invalid(format!(
                "motion needs an I420 or grey picture, got {:?} {w}x{h} with {} bytes",
                image.format,
                image.data.len()
            )));
        }
        let (sw, sh) = match self.size {
            Some(s) => s,
            None => {
                let sh = (self.options.frame_height as usize).min(h);
                let sw = ((w * sh) as f64 / h as f64).round().max(1.0) as usize;
                self.init(sw, sh);
                (sw, sh)
            }
        };
        self.small.resize(sw * sh, 0);
        scale_plane(&image.data[..luma_len], w, h, w, &mut self.small, sw, sh);
        if self.options.improve_contrast {
            stretch_contrast(&mut self.small, &self.active);
        }
        blur3(&self.small, &mut self.work, sw, sh);
        std::mem::swap(&mut self.small, &mut self.work);

        let first = self.background.is_empty();
        if first {
            self.background = self.small.iter().map(|&v| f32::from(v)).collect();
            return Ok(MotionResult {
                recalibrated: true,
                ..Default::default()
            });
        }
        // Threshold against the background.
        let t = f32::from(self.options.threshold);
        self.mask.resize(sw * sh, 0);
        let mut changed = 0usize;
        for i in 0..sw * sh {
            let on =
                self.active[i] != 0 && (f32::from(self.small[i]) - self.background[i]).abs() > t;
            self.mask[i] = u8::from(on);
            changed += usize::from(on);
        }
        let changed = changed as f32 / self.active_count.max(1) as f32;
        // A change over most of the picture is the scene, not something in it.
        if changed > self.options.recalibrate_fraction {
            for (b, &v) in self.background.iter_mut().zip(&self.small) {
                *b = f32::from(v);
            }
            return Ok(MotionResult {
                boxes: Vec::new(),
                changed,
                recalibrated: true,
            });
        }
        let a = self.options.frame_alpha;
        for (b, &v) in self.background.iter_mut().zip(&self.small) {
            *b += (f32::from(v) - *b) * a;
        }
        dilate(&self.mask, &mut self.dilated, sw, sh);
        dilate(&self.dilated, &mut self.mask, sw, sh);
        let mut boxes = components(
            &self.mask,
            &mut self.labels,
            sw,
            sh,
            self.options.contour_area as usize,
        );
        boxes.sort_by(|a, b| b.area().total_cmp(&a.area()));
        Ok(MotionResult {
            boxes,
            changed,
            recalibrated: false,
        })
    }

    fn init(&mut self, sw: usize, sh: usize) {
        self.size = Some((sw, sh));
        self.active = (0..sw * sh)
            .map(|i| {
                let p = Point {
                    x: ((i % sw) as f32 + 0.5) / sw as f32,
                    y: ((i / sw) as f32 + 0.5) / sh as f32,
                };
                u8::from(!self.options.masks.iter().any(|m| m.contains(p)))
            })
            .collect();
        self.active_count = self.active.iter().filter(|&&a| a != 0).count();
    }
}

/// Stretches `px` so its 4th and 96th percentiles (over active pixels) map to 0 and 255.
fn stretch_contrast(px: &mut [u8], active: &[u8]) {
    let mut hist = [0u32; 256];
    let mut n = 0u32;
    for (&v, &a) in px.iter().zip(active) {
        if a != 0 {
            hist[usize::from(v)] += 1;
            n += 1;
        }
    }
    if n == 0 {
        return;
    }
    let percentile = |q: f32| {
        let target = (n as f32 * q) as u32;
        let mut acc = 0;
        for (v, &c) in hist.iter().enumerate() {
            acc += c;
            if acc > target {
                return v as i32;
            }
        }
        255
    };
    let (lo, hi) = (percentile(0.04), percentile(0.96));
    if hi - lo < 8 {
        return; // a flat picture: stretching would only amplify noise
    }
    let mut lut = [0u8; 256];
    for (v, out) in lut.iter_mut().enumerate() {
        *out = (((v as i32 - lo) * 255) / (hi - lo)).clamp(0, 255) as u8;
    }
    for v in px.iter_mut() {
        *v = lut[usize::from(*v)];
    }
}

/// 3×3 box blur with edges clamped (the mean of the neighbours inside the picture), done
/// separably, sums along rows and then along columns, in loops over whole rows that vectorise.
fn blur3(src: &[u8], dst: &mut Vec<u8>, w: usize, h: usize) {
    dst.resize(w * h, 0);
    let mut rows = vec![0u16; w * h];
    for (s, r) in src.chunks_exact(w).zip(rows.chunks_exact_mut(w)) {
        if w == 1 {
            r[0] = s[0].into();
            continue;
        }
        r[0] = u16::from(s[0]) + u16::from(s[1]);
        r[w - 1] = u16::from(s[w - 2]) + u16::from(s[w - 1]);
        for (x, r) in r.iter_mut().enumerate().take(w - 1).skip(1) {
            *r = u16::from(s[x - 1]) + u16::from(s[x]) + u16::from(s[x + 1]);
        }
    }
    // Neighbours along one axis, the pixel included.
    let count = |i: usize, len: usize| -> u32 {
        match (i, len) {
            (_, 1) => 1,
            (0, _) => 2,
            (i, len) if i == len - 1 => 2,
            _ => 3,
        }
    };
    // sum / n as (sum · ⌈2¹⁶/n⌉) >> 16: exact for sums of n bytes, n ≤ 9.
    let recip = |n: u32| 65536u32.div_ceil(n);
    let mut sum = vec![0u32; w];
    for y in 0..h {
        for (s, &v) in sum.iter_mut().zip(&rows[y * w..][..w]) {
            *s = u32::from(v);
        }
        for yy in [y.wrapping_sub(1), y + 1] {
            if yy < h {
                for (s, &v) in sum.iter_mut().zip(&rows[yy * w..][..w]) {
                    *s += u32::from(v);
                }
            }
        }
        let ny = count(y, h);
        let out = &mut dst[y * w..][..w];
        let inner = recip(ny * 3);
        for (o, &s) in out.iter_mut().zip(&sum) {
            *o = ((s * inner) >> 16) as u8;
        }
        for x in [0, w - 1] {
            out[x] = ((sum[x] * recip(ny * count(x, w))) >> 16) as u8;
        }
    }
}

/// 3×3 binary dilation, separably: along rows, then along columns.
fn dilate(src: &[u8], dst: &mut Vec<u8>, w: usize, h: usize) {
    dst.resize(w * h, 0);
    let mut rows = vec![0u8; w * h];
    for (s, r) in src.chunks_exact(w).zip(rows.chunks_exact_mut(w)) {
        r[0] = s[0] | s.get(1).copied().unwrap_or(0);
        if w > 1 {
            r[w - 1] = s[w - 1] | s[w - 2];
        }
        for (x, r) in r.iter_mut().enumerate().take(w.saturating_sub(1)).skip(1) {
            *r = s[x - 1] | s[x] | s[x + 1];
        }
    }
    for y in 0..h {
        let (up, down) = (y.saturating_sub(1), (y + 1).min(h - 1));
        let out = &mut dst[y * w..(y + 1) * w];
        for (((o, &a), &b), &c) in out
            .iter_mut()
            .zip(&rows[up * w..][..w])
            .zip(&rows[y * w..][..w])
            .zip(&rows[down * w..][..w])
        {
            *o = a | b | c;
        }
    }
}

/// Boxes (normalised) of the 8-connected components of `mask` with at least `min_area` pixels.
fn components(
    mask: &[u8],
    labels: &mut Vec<u32>,
    w: usize,
    h: usize,
    min_area: usize,
) -> Vec<BBox> {
    labels.clear();
    labels.resize(w * h, 0);
    let mut boxes = Vec::new();
    let mut stack = Vec::new();
    let mut next = 0u32;
    for start in 0..w * h {
        if mask[start] == 0 || labels[start] != 0 {
            continue;
        }
        next += 1;
        labels[start] = next;
        stack.push(start);
        let (mut x0, mut y0, mut x1, mut y1, mut area) = (usize::MAX, usize::MAX, 0, 0, 0);
        while let Some(p) = stack.pop() {
            let (x, y) = (p % w, p / w);
            area += 1;
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x);
            y1 = y1.max(y);
            for yy in y.saturating_sub(1)..(y + 2).min(h) {
                for xx in x.saturating_sub(1)..(x + 2).min(w) {
                    let q = yy * w + xx;
                    if mask[q] != 0 && labels[q] == 0 {
                        labels[q] = next;
                        stack.push(q);
                    }
                }
            }
        }
        if area >= min_area.max(1) {
            boxes.push(BBox {
                x1: x0 as f32 / w as f32,
                y1: y0 as f32 / h as f32,
                x2: (x1 + 1) as f32 / w as f32,
                y2: (y1 + 1) as f32 / h as f32,
            });
        }
    }
    boxes
}

#[cfg(test)]
mod tests {
    /// The 3×3 neighbourhood of every pixel, clamped at the edges, the obvious way.
    fn neighbours(src: &[u8], w: usize, h: usize, x: usize, y: usize) -> Vec<u8> {
        let mut v = Vec::new();
        for yy in y.saturating_sub(1)..(y + 2).min(h) {
            for xx in x.saturating_sub(1)..(x + 2).min(w) {
                v.push(src[yy * w + xx]);
            }
        }
        v
    }

    #[test]
    fn separable_blur_and_dilation_match_their_definitions() {
        let mut state = 12345u32;
        for (w, h) in [(1, 1), (1, 5), (5, 1), (2, 2), (3, 7), (178, 100), (17, 13)] {
            let px: Vec<u8> = (0..w * h)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    (state >> 24) as u8
                })
                .collect();
            let bits: Vec<u8> = px.iter().map(|&v| u8::from(v > 200)).collect();
            let (mut blurred, mut dilated) = (Vec::new(), Vec::new());
            super::blur3(&px, &mut blurred, w, h);
            super::dilate(&bits, &mut dilated, w, h);
            for y in 0..h {
                for x in 0..w {
                    let n = neighbours(&px, w, h, x, y);
                    let mean = n.iter().map(|&v| u32::from(v)).sum::<u32>() / n.len() as u32;
                    assert_eq!(
                        u32::from(blurred[y * w + x]),
                        mean,
                        "blur at {x},{y} of {w}x{h}"
                    );
                    let any = neighbours(&bits, w, h, x, y)
                        .into_iter()
                        .fold(0, |a, b| a | b);
                    assert_eq!(dilated[y * w + x], any, "dilation at {x},{y} of {w}x{h}");
                }
            }
        }
    }
}
