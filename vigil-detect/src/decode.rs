//! H.264 decoding of the detect stream (OpenH264, in process), scaled to the detect
//! resolution, emitting only the pictures the detect frame rate needs.
//!
//! Every frame is decoded (a P frame needs the one before it), but only the pictures due at the
//! detect rate are copied out and scaled, which is most of the cost saved at 5 fps from a
//! 15–30 fps stream.

use std::sync::Arc;

use openh264::decoder::Decoder;
use openh264::formats::YUVSource;
use vigil_core::h264::{avc_nals, parse_avc_decoder_config};
use vigil_core::{Error, Image, PixelFormat, Result, VideoCodec, VideoFrame};

/// What a [`FrameDecoder`] produces.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecodeOptions {
    /// Width of the pictures out (even); the stream's own when `None`.
    pub width: Option<u32>,
    /// Height of the pictures out (even); the stream's own when `None`.
    pub height: Option<u32>,
    /// Pictures per second out; every frame when `None`.
    pub fps: Option<f64>,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            width: None,
            height: None,
            fps: Some(5.0),
        }
    }
}

/// Decodes one stream's frames into I420 pictures at the detect size and rate.
pub struct FrameDecoder {
    decoder: Decoder,
    options: DecodeOptions,
    /// Waiting for the first key frame (decoding before it gives garbage or errors).
    synced: bool,
    /// The 90 kHz time from which the next picture is due.
    next_due: Option<i64>,
    decoded: u64,
    emitted: u64,
}

impl std::fmt::Debug for FrameDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameDecoder")
            .field("options", &self.options)
            .field("decoded", &self.decoded)
            .field("emitted", &self.emitted)
            .finish()
    }
}

const START_CODE: [u8; 4] = [0, 0, 0, 1];

impl FrameDecoder {
    /// A decoder producing pictures as `options` says.
    pub fn new(options: DecodeOptions) -> Result<FrameDecoder> {
        for (what, v) in [("width", options.width), ("height", options.height)] {
            if let Some(v) = v {
                if !(16..=8192).contains(&v) || !v.is_multiple_of(2) {
                    return Err(Error::invalid(format!(
                        "detect {what} {v} is not even between 16 and 8192"
                    )));
                }
            }
        }
        if let Some(fps) = options.fps {
            if !(fps > 0.0 && fps <= 1000.0) {
                return Err(Error::invalid(format!(
                    "detect fps {fps} is not between 0 and 1000"
                )));
            }
        }
        let decoder = Decoder::new()
            .map_err(|e| Error::internal(format!("cannot start the H.264 decoder: {e}")))?;
        Ok(FrameDecoder {
            decoder,
            options,
            synced: false,
            next_due: None,
            decoded: 0,
            emitted: 0,
        })
    }

    /// Frames decoded so far.
    pub fn decoded(&self) -> u64 {
        self.decoded
    }

    /// Pictures produced so far.
    pub fn emitted(&self) -> u64 {
        self.emitted
    }

    /// Decodes `frame`; returns its picture when it is due at the detect rate.
    ///
    /// A corrupt frame is an error and makes the decoder wait for the next key frame; the
    /// caller goes on feeding frames.
    pub fn push(&mut self, frame: &VideoFrame) -> Result<Option<Image>> {
        self.decode(frame, true)
    }

    /// Decodes `frame` only, to keep the decoder's reference pictures current, without
    /// scaling or copying out a picture (the caller is behind and will not look at it).
    pub fn skip(&mut self, frame: &VideoFrame) -> Result<()> {
        self.decode(frame, false).map(drop)
    }

    fn decode(&mut self, frame: &VideoFrame, emit: bool) -> Result<Option<Image>> {
        if let Some(p) = &frame.new_params {
            if p.codec != VideoCodec::H264 {
                return Err(Error::new(
                    vigil_core::ErrorKind::FailedPrecondition,
                    "the detect stream is H.265; decoding needs H.264 (set the camera's detect stream to an H.264 sub-stream)",
                ));
            }
        }
        if !self.synced && !frame.is_key {
            return Ok(None);
        }
        let mut annexb = Vec::with_capacity(frame.data.len() + 64);
        if let Some(p) = &frame.new_params {
            let (sps, pps) = parse_avc_decoder_config(&p.extra_data)?;
            for nal in [&sps, &pps] {
                annexb.extend_from_slice(&START_CODE);
                annexb.extend_from_slice(nal);
            }
        }
        for nal in avc_nals(&frame.data)? {
            annexb.extend_from_slice(&START_CODE);
            annexb.extend_from_slice(nal);
        }
        let due = match (self.options.fps, self.next_due) {
            (Some(fps), Some(t)) => {
                // Due, or the clock went back (a new session restarts the stream's times).
                frame.pts_90k >= t || frame.pts_90k < t - 2 * (90_000.0 / fps) as i64
            }
            _ => true,
        };
        let picture = match self.decoder.decode(&annexb) {
            Ok(p) => p,
            Err(e) => {
                self.synced = false;
                return Err(Error::new(
                    vigil_core::ErrorKind::DataLoss,
                    format!("undecodable frame: {e}"),
                ));
            }
        };
        self.synced = true;
        self.decoded += 1;
        let Some(yuv) = picture else { return Ok(None) };
        if !due || !emit {
            return Ok(None);
        }
        if let Some(fps) = self.options.fps {
            // Stay on the grid of due times, unless the stream left it (a gap, a reconnect).
            let interval = (90_000.0 / fps).round() as i64;
            let base = match self.next_due {
                Some(t) if (0..interval).contains(&(frame.pts_90k - t)) => t,
                _ => frame.pts_90k,
            };
            self.next_due = Some(base + interval);
        }
        let (w, h) = yuv.dimensions();
        let (ys, us, _) = yuv.strides();
        let (ow, oh) = (
            self.options.width.map_or(w, |v| v as usize),
            self.options.height.map_or(h, |v| v as usize),
        );
        let mut out = vec![0u8; ow * oh + 2 * (ow.div_ceil(2) * oh.div_ceil(2))];
        let (y_out, rest) = out.split_at_mut(ow * oh);
        let (u_out, v_out) = rest.split_at_mut(ow.div_ceil(2) * oh.div_ceil(2));
        scale_plane(yuv.y(), w, h, ys, y_out, ow, oh);
        scale_plane(
            yuv.u(),
            w.div_ceil(2),
            h.div_ceil(2),
            us,
            u_out,
            ow.div_ceil(2),
            oh.div_ceil(2),
        );
        scale_plane(
            yuv.v(),
            w.div_ceil(2),
            h.div_ceil(2),
            us,
            v_out,
            ow.div_ceil(2),
            oh.div_ceil(2),
        );
        self.emitted += 1;
        Ok(Some(Image {
            width: ow as u32,
            height: oh as u32,
            format: PixelFormat::I420,
            data: Arc::from(out),
            time: frame.time,
        }))
    }
}

/// Scales one 8-bit plane (`w × h`, rows `stride` apart) into `dst` (`dw × dh`, packed): a
/// copy at the same size, an average over each source area when shrinking (no aliasing on
/// the fine texture motion detection looks at), bilinear when growing.
pub fn scale_plane(
    src: &[u8],
    w: usize,
    h: usize,
    stride: usize,
    dst: &mut [u8],
    dw: usize,
    dh: usize,
) {
    if (w, h) == (dw, dh) {
        for (y, row) in dst.chunks_exact_mut(dw).enumerate().take(dh) {
            row.copy_from_slice(&src[y * stride..y * stride + w]);
        }
        return;
    }
    if dw <= w && dh <= h {
        // Area average with fixed-point source spans.
        let xs: Vec<(usize, usize)> = (0..dw)
            .map(|x| (x * w / dw, ((x + 1) * w / dw).max(x * w / dw + 1)))
            .collect();
        for y in 0..dh {
            let (y0, y1) = (y * h / dh, ((y + 1) * h / dh).max(y * h / dh + 1));
            for (x, &(x0, x1)) in xs.iter().enumerate() {
                let mut sum = 0u32;
                for yy in y0..y1 {
                    sum += src[yy * stride + x0..yy * stride + x1]
                        .iter()
                        .map(|&v| u32::from(v))
                        .sum::<u32>();
                }
                let n = ((y1 - y0) * (x1 - x0)) as u32;
                dst[y * dw + x] = ((sum + n / 2) / n) as u8;
            }
        }
        return;
    }
    for y in 0..dh {
        let fy = ((y as f32 + 0.5) * h as f32 / dh as f32 - 0.5).clamp(0.0, (h - 1) as f32);
        let (y0, ty) = (fy as usize, fy.fract());
        let y1 = (y0 + 1).min(h - 1);
        for x in 0..dw {
            let fx = ((x as f32 + 0.5) * w as f32 / dw as f32 - 0.5).clamp(0.0, (w - 1) as f32);
            let (x0, tx) = (fx as usize, fx.fract());
            let x1 = (x0 + 1).min(w - 1);
            let p = |yy: usize, xx: usize| f32::from(src[yy * stride + xx]);
            let top = p(y0, x0) + (p(y0, x1) - p(y0, x0)) * tx;
            let bottom = p(y1, x0) + (p(y1, x1) - p(y1, x0)) * tx;
            dst[y * dw + x] = (top + (bottom - top) * ty).round() as u8;
        }
    }
}
