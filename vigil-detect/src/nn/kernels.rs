//! The arithmetic of the network: direct convolution with a fused epilogue, and the cheap
//! layers around it (max-pool, nearest upsampling), all on NHWC `f32` activations.
//!
//! Why our own kernels and not `candle_nn::Conv2d`: candle's CPU convolution works on NCHW,
//! materialises the whole im2col matrix, and runs batch-norm, SiLU, concatenation and the
//! residual add as separate passes over memory. YOLOv8 is a stack of small convolutions, so
//! those passes cost more than the arithmetic. Here a convolution is cut into blocks of output
//! pixels shared among the threads. With AVX2 + FMA and output channels in multiples of 8 (every
//! layer of the published models), a block runs through [`direct`]: a register-tiled kernel that
//! reads each pixel's window straight from the input (no patch matrix), multiplies it with
//! batch-norm-folded weights packed once at load, then adds the bias, applies SiLU and the
//! residual on the tile while it is in L1, and writes into a channel range of the destination,
//! so concatenation costs nothing. Elsewhere a block builds its patch matrix in per-thread
//! scratch and multiplies it through `gemm` (the matrix kernel candle itself uses), with the
//! same epilogue as a separate pass over the block.

use std::cell::RefCell;

use rayon::prelude::*;

/// A window onto NHWC activations: `b × h × w` pixels, each `stride` floats apart, of which this
/// view covers the channels `c0..c0 + c`.
///
/// Views are raw pointers so that one buffer can be read through one view while blocks of other
/// threads write a different channel range of it (C2f's chunks, concatenation in place). Every
/// function taking a destination view writes only the channels of that view; callers guarantee
/// no two concurrently used views overlap where one of them is written.
#[derive(Clone, Copy, Debug)]
pub(crate) struct View {
    ptr: *mut f32,
    pub b: usize,
    pub h: usize,
    pub w: usize,
    pub stride: usize,
    pub c0: usize,
    pub c: usize,
}

// SAFETY: a View is a pointer plus geometry; the disjointness of concurrent writes is the
// contract documented on the type and kept by the layer code.
unsafe impl Send for View {}
unsafe impl Sync for View {}

impl View {
    fn pixels(&self) -> usize {
        self.b * self.h * self.w
    }

    /// Pointer to channel `c0` of pixel `p`.
    ///
    /// # Safety
    /// `p` must be below `pixels()`.
    unsafe fn at(&self, p: usize) -> *mut f32 {
        unsafe { self.ptr.add(p * self.stride + self.c0) }
    }
}

/// An owned NHWC activation.
#[derive(Clone, Debug)]
pub(crate) struct Act {
    pub data: Vec<f32>,
    pub b: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
}

impl Act {
    pub fn zeros(b: usize, h: usize, w: usize, c: usize) -> Act {
        Act {
            data: vec![0.0; b * h * w * c],
            b,
            h,
            w,
            c,
        }
    }

    /// An activation for a layer to write whole: its buffer comes from the pool of dropped
    /// activations (no allocation, no zeroing of megabytes per layer and call), so its
    /// values are whatever was there before.
    pub fn scratch(b: usize, h: usize, w: usize, c: usize) -> Act {
        let n = b * h * w * c;
        let mut data = {
            let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
            // The smallest buffer that fits, so big ones stay for big layers.
            let best = pool
                .iter()
                .enumerate()
                .filter(|(_, v)| v.capacity() >= n)
                .min_by_key(|(_, v)| v.capacity())
                .map(|(i, _)| i);
            best.map(|i| pool.swap_remove(i)).unwrap_or_default()
        };
        data.resize(n, 0.0);
        Act { data, b, h, w, c }
    }

    /// The channels `c0..c0 + c` of every pixel.
    pub fn view(&mut self, c0: usize, c: usize) -> View {
        assert!(
            c0 + c <= self.c,
            "channel range {c0}+{c} outside {}",
            self.c
        );
        View {
            ptr: self.data.as_mut_ptr(),
            b: self.b,
            h: self.h,
            w: self.w,
            stride: self.c,
            c0,
            c,
        }
    }

    /// All channels.
    pub fn all(&mut self) -> View {
        let c = self.c;
        self.view(0, c)
    }
}

/// Buffers of dropped activations, for [`Act::scratch`].
static POOL: std::sync::Mutex<Vec<Vec<f32>>> = std::sync::Mutex::new(Vec::new());

/// Buffers kept at most (a forward pass uses about 60 activations).
const POOL_BUFFERS: usize = 96;

impl Drop for Act {
    fn drop(&mut self) {
        let data = std::mem::take(&mut self.data);
        if data.capacity() == 0 {
            return;
        }
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < POOL_BUFFERS {
            pool.push(data);
        }
    }
}

/// A batch norm's parameters, as PyTorch stores them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BatchNorm<'a> {
    pub gamma: &'a [f32],
    pub beta: &'a [f32],
    pub mean: &'a [f32],
    pub var: &'a [f32],
    pub eps: f64,
}

/// A convolution with its batch norm folded in, optionally followed by SiLU.
#[derive(Clone, Debug)]
pub(crate) struct Conv {
    pub k: usize,
    pub stride: usize,
    pub ci: usize,
    pub co: usize,
    /// `[k * k * ci, co]` row-major: row `(ky * k + kx) * ci + c`.
    pub weight: Vec<f32>,
    /// The weights again in panels for the direct kernel (see [`direct`]), when `co` is a
    /// multiple of 8.
    packed: Option<Vec<f32>>,
    /// The weights in the Winograd domain (see [`winograd`]), for 3×3 stride-1 layers whose
    /// channel counts are multiples of 8.
    winograd: Option<winograd::Weights>,
    pub bias: Vec<f32>,
    pub silu: bool,
}

impl Conv {
    /// Builds from PyTorch's `[co, ci, k, k]` weight, an optional conv bias and an optional
    /// batch norm `(gamma, beta, mean, var, eps)`, folding the norm into weight and bias in f64.
    pub fn fold(
        torch_weight: &[f32],
        shape: [usize; 4],
        conv_bias: Option<&[f32]>,
        bn: Option<BatchNorm<'_>>,
        stride: usize,
        silu: bool,
    ) -> Conv {
        let [co, ci, kh, kw] = shape;
        debug_assert_eq!(kh, kw);
        let k = kh;
        let mut scale = vec![1f64; co];
        let mut bias: Vec<f64> = match conv_bias {
            Some(b) => b.iter().map(|&v| f64::from(v)).collect(),
            None => vec![0.0; co],
        };
        if let Some(BatchNorm {
            gamma,
            beta,
            mean,
            var,
            eps,
        }) = bn
        {
            for o in 0..co {
                let s = f64::from(gamma[o]) / (f64::from(var[o]) + eps).sqrt();
                scale[o] = s;
                bias[o] = (bias[o] - f64::from(mean[o])) * s + f64::from(beta[o]);
            }
        }
        let mut weight = vec![0f32; k * k * ci * co];
        for o in 0..co {
            for c in 0..ci {
                for ky in 0..k {
                    for kx in 0..k {
                        let w = torch_weight[((o * ci + c) * k + ky) * k + kx];
                        weight[((ky * k + kx) * ci + c) * co + o] =
                            (f64::from(w) * scale[o]) as f32;
                    }
                }
            }
        }
        let packed = direct::pack(&weight, k * k * ci, co);
        let winograd = (k == 3 && stride == 1)
            .then(|| winograd::Weights::new(&weight, ci, co))
            .flatten();
        Conv {
            k,
            stride,
            ci,
            co,
            weight,
            packed,
            winograd,
            bias: bias.into_iter().map(|v| v as f32).collect(),
            silu,
        }
    }

    /// Output height and width for an input of `h × w`.
    pub fn out_size(&self, h: usize, w: usize) -> (usize, usize) {
        let pad = self.k / 2;
        (
            (h + 2 * pad - self.k) / self.stride + 1,
            (w + 2 * pad - self.k) / self.stride + 1,
        )
    }

    /// Runs the convolution from `src` into `dst` (which must have the output geometry), adding
    /// `residual` (same geometry as `dst`) after the activation when given.
    pub fn run(&self, src: View, dst: View, residual: Option<View>, threads: usize) {
        assert_eq!(src.c, self.ci, "conv input channels");
        assert_eq!(dst.c, self.co, "conv output channels");
        let (oh, ow) = self.out_size(src.h, src.w);
        assert_eq!(
            (dst.b, dst.h, dst.w),
            (src.b, oh, ow),
            "conv output geometry"
        );
        if let Some(r) = residual {
            assert_eq!((r.b, r.h, r.w, r.c), (dst.b, dst.h, dst.w, dst.c));
        }
        if let Some(w) = self.winograd.as_ref().filter(|_| direct::available()) {
            self.run_winograd(w, src, dst, residual, threads);
            return;
        }
        let rows = dst.pixels();
        let block = block_rows(rows, threads);
        let blocks = rows.div_ceil(block);
        let pointwise = self.k == 1 && self.stride == 1;
        let kdim = self.k * self.k * self.ci;
        // The matrix kernel vectorises along the destination's contiguous dimension. With few
        // output channels that dimension is too short to fill its registers, so the block is
        // computed pixel-major into scratch and the epilogue transposes it into place.
        let pixel_major = self.co < PIXEL_MAJOR_BELOW;
        let work = |i: usize| {
            let r0 = i * block;
            let n = block.min(rows - r0);
            SCRATCH.with(|scratch| {
                let mut scratch = scratch.borrow_mut();
                let Scratch {
                    patches,
                    out,
                    rows: row_ptrs,
                    zeros,
                    edges,
                } = &mut *scratch;
                // SAFETY: views are in bounds by the geometry checks above; this block writes
                // only rows r0..r0+n of dst's channels, which no other block touches.
                unsafe {
                    if let Some(packed) = self.packed.as_deref().filter(|_| direct::available()) {
                        // Each output pixel reads its window straight from src: when the
                        // input's channels are dense (a whole activation, not a channel range
                        // of a wider one), as k runs of k·ci floats, one per kernel row;
                        // otherwise as k·k runs of ci floats. Windows cut by the picture's
                        // edge get zeros (or a run assembled in scratch). Only inputs both thin
                        // and sparse would still need patch rows.
                        row_ptrs.clear();
                        let run = self.k * self.ci;
                        let (taps, seg) = if src.stride == self.ci && self.k > 1 {
                            if zeros.len() < run {
                                zeros.resize(run, 0.0);
                            }
                            if edges.len() < n * self.k * run {
                                edges.resize(n * self.k * run, 0.0);
                            }
                            let z = zeros.as_ptr();
                            self.row_pointers(src, r0, n, oh, ow, z, edges, row_ptrs);
                            (self.k, run)
                        } else if self.ci >= DIRECT_MIN_CI || self.k == 1 {
                            if zeros.len() < self.ci {
                                zeros.resize(self.ci, 0.0);
                            }
                            self.tap_pointers(src, r0, n, oh, ow, zeros.as_ptr(), row_ptrs);
                            (self.k * self.k, self.ci)
                        } else {
                            if patches.len() < n * kdim {
                                patches.resize(n * kdim, 0.0);
                            }
                            self.im2col(src, r0, n, oh, ow, &mut patches[..n * kdim]);
                            row_ptrs.extend((0..n).map(|i| patches.as_ptr().add(i * kdim)));
                            (1, kdim)
                        };
                        let finish = direct::Finish {
                            bias: &self.bias,
                            silu: self.silu,
                            residual,
                        };
                        direct::run(n, taps, seg, row_ptrs, packed, finish, dst, r0);
                        return;
                    }
                    let (lhs, lhs_rs) = if pointwise {
                        (src.at(r0) as *const f32, src.stride as isize)
                    } else {
                        if patches.len() < n * kdim {
                            patches.resize(n * kdim, 0.0);
                        }
                        self.im2col(src, r0, n, oh, ow, &mut patches[..n * kdim]);
                        (patches.as_ptr(), kdim as isize)
                    };
                    let (d, d_cs, d_rs) = if pixel_major {
                        if out.len() < n * self.co {
                            out.resize(n * self.co, 0.0);
                        }
                        (out.as_mut_ptr(), n as isize, 1)
                    } else {
                        (dst.at(r0), 1, dst.stride as isize)
                    };
                    gemm::gemm(
                        n,
                        self.co,
                        kdim,
                        d,
                        d_cs,
                        d_rs,
                        false,
                        lhs,
                        1,
                        lhs_rs,
                        self.weight.as_ptr(),
                        1,
                        self.co as isize,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                    let out = pixel_major.then(|| &mut out[..n * self.co]);
                    simd::epilogue(dst, r0, n, out, &self.bias, self.silu, residual);
                }
            });
        };
        for_each_block(blocks, threads, work);
    }

    /// [`Conv::run`] through the Winograd transform: blocks of 2×2 output tiles shared among the
    /// threads.
    fn run_winograd(
        &self,
        w: &winograd::Weights,
        src: View,
        dst: View,
        residual: Option<View>,
        threads: usize,
    ) {
        let (th, tw) = (dst.h.div_ceil(2), dst.w.div_ceil(2));
        let tiles = dst.b * th * tw;
        // Blocks as large as for the direct path (up to 256 tiles): the products run faster on
        // long blocks than the transformed tiles lose by leaving L2.
        let block = block_rows(tiles, threads);
        let blocks = tiles.div_ceil(block);
        let finish = direct::Finish {
            bias: &self.bias,
            silu: self.silu,
            residual,
        };
        let work = |i: usize| {
            let t0 = i * block;
            let n = block.min(tiles - t0);
            SCRATCH.with(|scratch| {
                let mut scratch = scratch.borrow_mut();
                let Scratch {
                    patches,
                    out,
                    rows,
                    zeros,
                    ..
                } = &mut *scratch;
                if zeros.len() < self.ci {
                    zeros.resize(self.ci, 0.0);
                }
                // SAFETY: the CPU has AVX2 and FMA (checked by the caller); the views have the
                // geometry checked in `run`; this block writes only its tiles' pixels of dst.
                unsafe {
                    winograd::run(
                        w,
                        src,
                        dst,
                        (t0, n),
                        finish,
                        winograd::Scratch {
                            v: patches,
                            m: out,
                            rows,
                            zeros,
                        },
                    )
                };
            });
        };
        for_each_block(blocks, threads, work);
    }

    /// Pushes, for each output pixel `r0..r0+n` (the `i`-th) and each kernel row `ky`, the
    /// address of the `k · ci` floats under that row of its window: in `src` when the row is
    /// inside the picture, `zeros` when it is above or below it, and otherwise a copy completed
    /// with zeros at `edges[(i·k + ky)·k·ci..]`.
    ///
    /// # Safety
    /// `src` must be a valid view whose channels are dense (`stride == ci`); `zeros` holds at
    /// least `k · ci` zeros and `edges` at least `n · k · k · ci` floats.
    #[allow(clippy::too_many_arguments)]
    unsafe fn row_pointers(
        &self,
        src: View,
        r0: usize,
        n: usize,
        oh: usize,
        ow: usize,
        zeros: *const f32,
        edges: &mut [f32],
        out: &mut Vec<*const f32>,
    ) {
        let (k, s, ci) = (self.k, self.stride, self.ci);
        let (pad, run) = ((k / 2) as isize, k * ci);
        debug_assert!(src.stride == ci && edges.len() >= n * k * run);
        out.reserve(n * k);
        for (i, (b, oy, ox)) in output_pixels(r0, n, oh, ow).enumerate() {
            let ix0 = (ox * s) as isize - pad;
            let inside = ix0 >= 0 && ix0 + k as isize <= src.w as isize;
            for ky in 0..k {
                let iy = (oy * s) as isize + ky as isize - pad;
                if iy < 0 || iy >= src.h as isize {
                    out.push(zeros);
                    continue;
                }
                let row = (b * src.h + iy as usize) * src.w;
                if inside {
                    // SAFETY: pixels ix0..ix0+k of row iy are in src; dense channels make them
                    // k·ci consecutive floats.
                    out.push(unsafe { src.at(row + ix0 as usize) });
                    continue;
                }
                let e = &mut edges[(i * k + ky) * run..][..run];
                for (kx, e) in e.chunks_exact_mut(ci).enumerate() {
                    let ix = ix0 + kx as isize;
                    if ix < 0 || ix >= src.w as isize {
                        e.fill(0.0);
                    } else {
                        // SAFETY: (iy, ix) is a pixel of src with ci channels.
                        e.copy_from_slice(unsafe {
                            std::slice::from_raw_parts(src.at(row + ix as usize), ci)
                        });
                    }
                }
                out.push(e.as_ptr());
            }
        }
    }

    /// Pushes, for each output pixel `r0..r0+n` and each tap `(ky, kx)`, the address of the
    /// input pixel under it (its `ci` channels), or `zeros` where the tap is in the padding.
    ///
    /// # Safety
    /// `src` must be a valid view and `zeros` hold at least `ci` zeros.
    #[allow(clippy::too_many_arguments)]
    unsafe fn tap_pointers(
        &self,
        src: View,
        r0: usize,
        n: usize,
        oh: usize,
        ow: usize,
        zeros: *const f32,
        out: &mut Vec<*const f32>,
    ) {
        let (k, s) = (self.k, self.stride);
        let pad = k / 2;
        // Where each tap lies relative to the pixel under the window's centre.
        let offsets: Vec<isize> = (0..k * k)
            .map(|t| {
                let (dy, dx) = (
                    (t / k) as isize - pad as isize,
                    (t % k) as isize - pad as isize,
                );
                (dy * src.w as isize + dx) * src.stride as isize
            })
            .collect();
        out.reserve(n * k * k);
        for (b, oy, ox) in output_pixels(r0, n, oh, ow) {
            let (cy, cx) = (oy * s, ox * s);
            let q = (b * src.h + cy) * src.w + cx;
            // SAFETY: (cy, cx) is a pixel of src (output pixels map inside the input).
            let centre = unsafe { src.at(q) } as *const f32;
            if cy >= pad && cx >= pad && cy + pad < src.h && cx + pad < src.w {
                // SAFETY: the whole window is inside the picture, so every tap is a pixel of src.
                out.extend(offsets.iter().map(|&o| unsafe { centre.offset(o) }));
            } else {
                for (t, &o) in offsets.iter().enumerate() {
                    let (iy, ix) = (
                        (cy + t / k) as isize - pad as isize,
                        (cx + t % k) as isize - pad as isize,
                    );
                    if iy < 0 || ix < 0 || iy >= src.h as isize || ix >= src.w as isize {
                        out.push(zeros);
                    } else {
                        // SAFETY: (iy, ix) is a pixel of src.
                        out.push(unsafe { centre.offset(o) });
                    }
                }
            }
        }
    }

    /// Writes the patch rows of output pixels `r0..r0+n` into `out` (`n × k·k·ci`).
    ///
    /// # Safety
    /// `src` must be a valid view.
    unsafe fn im2col(&self, src: View, r0: usize, n: usize, oh: usize, ow: usize, out: &mut [f32]) {
        let (k, ci, s) = (self.k, self.ci, self.stride);
        let pad = (k / 2) as isize;
        let kdim = k * k * ci;
        for (i, row) in out.chunks_exact_mut(kdim).take(n).enumerate() {
            let p = r0 + i;
            let (b, rem) = (p / (oh * ow), p % (oh * ow));
            let (oy, ox) = (rem / ow, rem % ow);
            let ix0 = (ox * s) as isize - pad;
            // With the channels of neighbouring pixels adjacent (a view of all channels), a
            // row of taps inside the picture is one contiguous run of `k · ci` floats.
            let dense = src.stride == ci && ix0 >= 0 && ix0 + k as isize <= src.w as isize;
            for ky in 0..k {
                let iy = (oy * s) as isize + ky as isize - pad;
                if dense && iy >= 0 && iy < src.h as isize {
                    let q = (b * src.h + iy as usize) * src.w + ix0 as usize;
                    // SAFETY: pixels q..q+k are in src's row iy; with stride == ci their
                    // channels are the k·ci floats from src.at(q).
                    let from = unsafe { std::slice::from_raw_parts(src.at(q), k * ci) };
                    row[ky * k * ci..(ky + 1) * k * ci].copy_from_slice(from);
                    continue;
                }
                for kx in 0..k {
                    let ix = (ox * s) as isize + kx as isize - pad;
                    let dst = &mut row[(ky * k + kx) * ci..(ky * k + kx + 1) * ci];
                    if iy < 0 || ix < 0 || iy >= src.h as isize || ix >= src.w as isize {
                        dst.fill(0.0);
                    } else {
                        let q = (b * src.h + iy as usize) * src.w + ix as usize;
                        // SAFETY: q is a pixel of src; the view has ci channels from there.
                        let from = unsafe { std::slice::from_raw_parts(src.at(q), ci) };
                        dst.copy_from_slice(from);
                    }
                }
            }
        }
    }
}

/// The coordinates `(picture, y, x)` of output pixels `r0..r0+n` of an `oh × ow` output, by
/// counting rather than dividing.
fn output_pixels(
    r0: usize,
    n: usize,
    oh: usize,
    ow: usize,
) -> impl Iterator<Item = (usize, usize, usize)> {
    let (b, rem) = (r0 / (oh * ow), r0 % (oh * ow));
    let mut at = (b, rem / ow, rem % ow);
    (0..n).map(move |_| {
        let here = at;
        at.2 += 1;
        if at.2 == ow {
            at.2 = 0;
            at.1 += 1;
            if at.1 == oh {
                at.1 = 0;
                at.0 += 1;
            }
        }
        here
    })
}

/// Input channels from which the direct kernel reads taps straight from the input rather than
/// from patch rows (below, a tap is too short a run for the kernel's inner loop).
const DIRECT_MIN_CI: usize = 8;

/// The direct convolution kernel (AVX2 + FMA, picked at run time), for output channels in
/// multiples of 8: no patch matrix, no matrix-library packing per block.
///
/// The weights are packed once, at load, into panels of 16 output channels (8 for the last
/// one when `co` is an odd multiple of 8): panel `j` holds, for each of the `kdim` rows, its
/// 16 weights side by side, so the kernel streams it linearly. A tile of 6 output pixels ×
/// 16 channels lives in 12 registers; per input value the kernel loads two weight vectors
/// and broadcasts one input float per pixel, read straight from the pixel under each tap.
/// Panels are the outer loop, so a panel's weights (at most `kdim × 64` bytes) stay in the
/// core's cache while every tile of the block runs through them.
mod direct {
    use super::View;

    /// Output channels per panel.
    const PANEL: usize = 16;

    /// The packed weights of a `kdim × co` row-major matrix, or `None` when `co` is not a
    /// multiple of 8.
    pub fn pack(weight: &[f32], kdim: usize, co: usize) -> Option<Vec<f32>> {
        if !co.is_multiple_of(8) || co == 0 {
            return None;
        }
        let mut packed = Vec::with_capacity(kdim * co);
        for j0 in (0..co).step_by(PANEL) {
            let width = PANEL.min(co - j0);
            for row in weight.chunks_exact(co).take(kdim) {
                packed.extend_from_slice(&row[j0..j0 + width]);
            }
        }
        Some(packed)
    }

    /// Whether this CPU runs the kernel.
    pub fn available() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// What happens to a tile's sums before they are stored: the bias, SiLU, the residual.
    #[derive(Clone, Copy)]
    pub struct Finish<'a> {
        pub bias: &'a [f32],
        pub silu: bool,
        /// Added after the activation; same geometry as the destination.
        pub residual: Option<View>,
    }

    /// `dst[r0 + i][..co] = finish(Σ_t Σ_c rows[i·taps + t][c] · w[t·seg + c][..co])` for
    /// `i < n`.
    ///
    /// # Safety
    /// [`available`] must be true; `rows` holds `n × taps` pointers to `seg` readable floats
    /// each; `packed` is [`pack`]'s output for `kdim = taps · seg` and `co = finish.bias.len()`;
    /// the rows are the caller's in `dst` (and `finish.residual`), which have `co` channels.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn run(
        n: usize,
        taps: usize,
        seg: usize,
        rows: &[*const f32],
        packed: &[f32],
        finish: Finish<'_>,
        dst: View,
        r0: usize,
    ) {
        let co = finish.bias.len();
        debug_assert_eq!(rows.len(), n * taps);
        debug_assert_eq!(packed.len(), taps * seg * co);
        debug_assert_eq!(dst.c, co);
        #[cfg(target_arch = "x86_64")]
        for j0 in (0..co).step_by(PANEL) {
            let w = packed[taps * seg * j0..].as_ptr();
            // SAFETY: the caller's contract; the panel is in `packed`.
            unsafe {
                if co - j0 >= PANEL {
                    panel::<2, 6>(n, taps, seg, rows.as_ptr(), w, finish, dst, r0, j0);
                } else {
                    panel::<1, 8>(n, taps, seg, rows.as_ptr(), w, finish, dst, r0, j0);
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (n, taps, seg, rows, packed, finish, dst, r0);
    }

    /// One panel (`V` vectors of 8 channels from channel `j0`) for all `n` pixels: tiles of `P`
    /// pixels, then the remainder. Weights stream from L2 (a panel is `kdim × 64` bytes); on
    /// the wide layers that measured faster than splitting the taps into L1-sized passes.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn panel<const V: usize, const P: usize>(
        n: usize,
        taps: usize,
        seg: usize,
        rows: *const *const f32,
        w: *const f32,
        finish: Finish<'_>,
        dst: View,
        r0: usize,
        j0: usize,
    ) {
        let mut i = 0;
        // SAFETY (the whole body): tiles stay within the caller's n pixels.
        unsafe {
            while i + P <= n {
                tile::<V, P>(taps, seg, rows.add(i * taps), w, finish, dst, r0 + i, j0);
                i += P;
            }
            let t = (taps, seg, rows.add(i * taps), w, finish, dst, r0 + i, j0);
            match n - i {
                0 => {}
                1 => tile::<V, 1>(t.0, t.1, t.2, t.3, t.4, t.5, t.6, t.7),
                2 => tile::<V, 2>(t.0, t.1, t.2, t.3, t.4, t.5, t.6, t.7),
                3 => tile::<V, 3>(t.0, t.1, t.2, t.3, t.4, t.5, t.6, t.7),
                4 => tile::<V, 4>(t.0, t.1, t.2, t.3, t.4, t.5, t.6, t.7),
                5 => tile::<V, 5>(t.0, t.1, t.2, t.3, t.4, t.5, t.6, t.7),
                6 => tile::<V, 6>(t.0, t.1, t.2, t.3, t.4, t.5, t.6, t.7),
                _ => tile::<V, 7>(t.0, t.1, t.2, t.3, t.4, t.5, t.6, t.7),
            }
        }
    }

    /// `P` pixels × `V·8` channels, accumulated in registers over every tap and input channel.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile<const V: usize, const P: usize>(
        taps: usize,
        seg: usize,
        rows: *const *const f32,
        mut w: *const f32,
        finish: Finish<'_>,
        dst: View,
        p0: usize,
        j0: usize,
    ) {
        use std::arch::x86_64::*;
        // SAFETY (the whole body): reads `seg` floats from each of the tile's row pointers and
        // `taps · seg · V · 8` packed weights; writes the tile's pixels of dst's channel range.
        unsafe {
            let out: [*mut f32; P] = std::array::from_fn(|p| dst.at(p0 + p).add(j0));
            let bias: [__m256; V] =
                std::array::from_fn(|v| _mm256_loadu_ps(finish.bias.as_ptr().add(j0 + v * 8)));
            let mut acc = [bias; P];
            for t in 0..taps {
                let x: [*const f32; P] = std::array::from_fn(|p| *rows.add(p * taps + t));
                for c in 0..seg {
                    let wv: [__m256; V] = std::array::from_fn(|v| _mm256_loadu_ps(w.add(v * 8)));
                    for p in 0..P {
                        let b = _mm256_broadcast_ss(&*x[p].add(c));
                        for v in 0..V {
                            acc[p][v] = _mm256_fmadd_ps(b, wv[v], acc[p][v]);
                        }
                    }
                    w = w.add(V * 8);
                }
            }
            for (p, a) in acc.iter().enumerate() {
                for (v, a) in a.iter().enumerate() {
                    _mm256_storeu_ps(out[p].add(v * 8), *a);
                }
            }
            // From the stored sums (still in L1): a loop over registers here would make the
            // compiler keep the accumulators in memory throughout the product above.
            if finish.silu || finish.residual.is_some() {
                finish_tile(P, V * 8, finish, dst, p0, j0);
            }
        }
    }

    /// SiLU and the residual on `p` pixels × `width` channels from `j0`, in place.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn finish_tile(
        p: usize,
        width: usize,
        finish: Finish<'_>,
        dst: View,
        p0: usize,
        j0: usize,
    ) {
        use std::arch::x86_64::*;
        // SAFETY (the whole body): the tile's pixels and channels, in dst and the residual.
        unsafe {
            for i in p0..p0 + p {
                let out = dst.at(i).add(j0);
                let res = finish.residual.map(|r| r.at(i).add(j0));
                for v in (0..width).step_by(8) {
                    let mut a = _mm256_loadu_ps(out.add(v));
                    if finish.silu {
                        a = super::simd::silu_avx2(a);
                    }
                    if let Some(r) = res {
                        a = _mm256_add_ps(a, _mm256_loadu_ps(r.add(v)));
                    }
                    _mm256_storeu_ps(out.add(v), a);
                }
            }
        }
    }
}

/// Winograd's minimal filtering F(2×2, 3×3) for 3×3 stride-1 convolutions: each 2×2 tile of
/// output pixels comes from a 4×4 tile of input, and in the transformed domain the 36
/// multiply-adds per channel pair of a tile become 16. Per block of tiles: the input tiles are
/// transformed (`V = Bᵀ d B`, additions only) into 16 matrices of tiles × ci; each is
/// multiplied with the matching ci × co matrix of transformed weights (`U = G g Gᵀ`, computed
/// in f64 at load) by the direct kernel; the 16 products are transformed back (`Y = Aᵀ M A`)
/// and finished (bias, SiLU, residual) on their way into the destination. The transforms'
/// coefficients are 0, ±1 and ½, so the error stays at float rounding (checked against the
/// direct convolution in the tests and against ultralytics in the parity test).
mod winograd {
    use super::{direct, View};

    /// The transformed weights.
    #[derive(Clone, Debug)]
    pub struct Weights {
        ci: usize,
        co: usize,
        /// For each point ξ of the 4×4 transform, its ci × co matrix packed for the kernel.
        u: Vec<Vec<f32>>,
        /// A zero bias for the products (the real one is added after the inverse transform).
        zeros: Vec<f32>,
    }

    impl Weights {
        /// From `[(ky·3 + kx)·ci + c][o]` row-major weights; `None` unless both channel counts
        /// are multiples of 8.
        pub fn new(weight: &[f32], ci: usize, co: usize) -> Option<Weights> {
            if ci == 0 || !ci.is_multiple_of(8) || !co.is_multiple_of(8) {
                return None;
            }
            const G: [[f64; 3]; 4] = [
                [1.0, 0.0, 0.0],
                [0.5, 0.5, 0.5],
                [0.5, -0.5, 0.5],
                [0.0, 0.0, 1.0],
            ];
            let mut u = vec![vec![0f32; ci * co]; 16];
            for c in 0..ci {
                for o in 0..co {
                    let g =
                        |ky: usize, kx: usize| f64::from(weight[((ky * 3 + kx) * ci + c) * co + o]);
                    for (i, gi) in G.iter().enumerate() {
                        for (j, gj) in G.iter().enumerate() {
                            let mut sum = 0f64;
                            for (ky, a) in gi.iter().enumerate() {
                                for (kx, b) in gj.iter().enumerate() {
                                    sum += a * g(ky, kx) * b;
                                }
                            }
                            u[i * 4 + j][c * co + o] = sum as f32;
                        }
                    }
                }
            }
            let u = u
                .iter()
                .map(|m| direct::pack(m, ci, co))
                .collect::<Option<Vec<_>>>()?;
            Some(Weights {
                ci,
                co,
                u,
                zeros: vec![0.0; co],
            })
        }
    }

    /// A worker's buffers.
    pub struct Scratch<'a> {
        /// The transformed input tiles, `[16][tiles][ci]`.
        pub v: &'a mut Vec<f32>,
        /// The products, `[16][tiles][co]`.
        pub m: &'a mut Vec<f32>,
        /// Row pointers for the kernel.
        pub rows: &'a mut Vec<*const f32>,
        /// At least `ci` zeros, for input outside the picture.
        pub zeros: &'a [f32],
    }

    /// Output tiles `tiles.0..tiles.0 + tiles.1` (2×2 pixels each, row-major over the pictures)
    /// of the convolution of `src` into `dst`.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA; `src` has `w.ci` channels and `dst` (and the residual)
    /// `w.co` and the same height and width; the tiles' pixels of dst are the caller's.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn run(
        w: &Weights,
        src: View,
        dst: View,
        tiles: (usize, usize),
        finish: direct::Finish<'_>,
        scratch: Scratch<'_>,
    ) {
        use std::arch::x86_64::*;
        let (ci, co) = (w.ci, w.co);
        let (t0, n) = tiles;
        let (h, wd) = (dst.h, dst.w);
        let (th, tw) = (h.div_ceil(2), wd.div_ceil(2));
        let Scratch { v, m, rows, zeros } = scratch;
        if v.len() < 16 * n * ci {
            v.resize(16 * n * ci, 0.0);
        }
        if m.len() < 16 * n * co {
            m.resize(16 * n * co, 0.0);
        }
        let (vp, mp) = (v.as_mut_ptr(), m.as_mut_ptr());
        let tile = |t: usize| {
            let (b, rem) = (t / (th * tw), t % (th * tw));
            (b, rem / tw, rem % tw)
        };
        // SAFETY (the whole body): every pointer below is a pixel of src or dst (checked
        // against the picture), the zeros, or inside v and m as sized above.
        unsafe {
            // V = Bᵀ d B, eight channels at a time.
            for i in 0..n {
                let (b, ty, tx) = tile(t0 + i);
                let at: [[*const f32; 4]; 4] = std::array::from_fn(|r| {
                    std::array::from_fn(|q| {
                        let (iy, ix) = ((2 * ty + r) as isize - 1, (2 * tx + q) as isize - 1);
                        if iy < 0 || ix < 0 || iy >= src.h as isize || ix >= src.w as isize {
                            zeros.as_ptr()
                        } else {
                            src.at((b * src.h + iy as usize) * src.w + ix as usize) as *const f32
                        }
                    })
                });
                for c in (0..ci).step_by(8) {
                    let d: [[__m256; 4]; 4] = std::array::from_fn(|r| {
                        std::array::from_fn(|q| _mm256_loadu_ps(at[r][q].add(c)))
                    });
                    let t: [[__m256; 4]; 4] = [
                        std::array::from_fn(|q| _mm256_sub_ps(d[0][q], d[2][q])),
                        std::array::from_fn(|q| _mm256_add_ps(d[1][q], d[2][q])),
                        std::array::from_fn(|q| _mm256_sub_ps(d[2][q], d[1][q])),
                        std::array::from_fn(|q| _mm256_sub_ps(d[1][q], d[3][q])),
                    ];
                    for (r, t) in t.iter().enumerate() {
                        let x = [
                            _mm256_sub_ps(t[0], t[2]),
                            _mm256_add_ps(t[1], t[2]),
                            _mm256_sub_ps(t[2], t[1]),
                            _mm256_sub_ps(t[1], t[3]),
                        ];
                        for (q, x) in x.iter().enumerate() {
                            _mm256_storeu_ps(vp.add(((r * 4 + q) * n + i) * ci + c), *x);
                        }
                    }
                }
            }
            // M = V U for each of the 16 points.
            for xi in 0..16 {
                rows.clear();
                rows.extend((0..n).map(|i| vp.add((xi * n + i) * ci) as *const f32));
                let out = View {
                    ptr: mp.add(xi * n * co),
                    b: 1,
                    h: 1,
                    w: n,
                    stride: co,
                    c0: 0,
                    c: co,
                };
                let plain = direct::Finish {
                    bias: &w.zeros,
                    silu: false,
                    residual: None,
                };
                direct::run(n, 1, ci, rows, &w.u[xi], plain, out, 0);
            }
            // Y = Aᵀ M A, finished into dst.
            for i in 0..n {
                let (b, ty, tx) = tile(t0 + i);
                for o in (0..co).step_by(8) {
                    let mm: [__m256; 16] =
                        std::array::from_fn(|xi| _mm256_loadu_ps(mp.add((xi * n + i) * co + o)));
                    let row = |r: usize, q: usize| mm[r * 4 + q];
                    let t: [[__m256; 4]; 2] = [
                        std::array::from_fn(|q| {
                            _mm256_add_ps(_mm256_add_ps(row(0, q), row(1, q)), row(2, q))
                        }),
                        std::array::from_fn(|q| {
                            _mm256_sub_ps(_mm256_sub_ps(row(1, q), row(2, q)), row(3, q))
                        }),
                    ];
                    let bias = _mm256_loadu_ps(finish.bias.as_ptr().add(o));
                    for (a, t) in t.iter().enumerate() {
                        let y = [
                            _mm256_add_ps(_mm256_add_ps(t[0], t[1]), t[2]),
                            _mm256_sub_ps(_mm256_sub_ps(t[1], t[2]), t[3]),
                        ];
                        let oy = 2 * ty + a;
                        for (bb, y) in y.iter().enumerate() {
                            let ox = 2 * tx + bb;
                            if oy >= h || ox >= wd {
                                continue;
                            }
                            let p = (b * h + oy) * wd + ox;
                            let mut y = _mm256_add_ps(*y, bias);
                            if finish.silu {
                                y = super::simd::silu_avx2(y);
                            }
                            if let Some(r) = finish.residual {
                                y = _mm256_add_ps(y, _mm256_loadu_ps(r.at(p).add(o)));
                            }
                            _mm256_storeu_ps(dst.at(p).add(o), y);
                        }
                    }
                }
            }
        }
    }

    /// Never called: [`Weights::new`] is only used where the direct kernel runs.
    #[cfg(not(target_arch = "x86_64"))]
    pub unsafe fn run(
        _: &Weights,
        _: View,
        _: View,
        _: (usize, usize),
        _: direct::Finish<'_>,
        _: Scratch<'_>,
    ) {
    }
}

/// Output channels below which a block is computed pixel-major (see [`Conv::run`]).
const PIXEL_MAJOR_BELOW: usize = 64;

/// A worker's buffers, reused across blocks and calls.
struct Scratch {
    /// The block's patch matrix.
    patches: Vec<f32>,
    /// The block's output when computed pixel-major.
    out: Vec<f32>,
    /// The direct kernel's row pointers.
    rows: Vec<*const f32>,
    /// A run of zeros for taps in the padding.
    zeros: Vec<f32>,
    /// Window rows cut by the picture's edge, completed with zeros.
    edges: Vec<f32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = const {
        RefCell::new(Scratch {
            patches: Vec::new(),
            out: Vec::new(),
            rows: Vec::new(),
            zeros: Vec::new(),
            edges: Vec::new(),
        })
    };
}

/// Runs `work` on every block index, on the calling thread or shared among the pool's.
fn for_each_block(blocks: usize, threads: usize, work: impl Fn(usize) + Send + Sync) {
    if threads <= 1 || blocks == 1 {
        (0..blocks).for_each(work);
    } else {
        (0..blocks).into_par_iter().for_each(work);
    }
}

/// Rows of output pixels per block: the same number of blocks for every thread (a layer of
/// 400 pixels cut into 7 blocks keeps one of two threads busy for 4 while the other has 3),
/// each at most [`MAX_BLOCK`] rows so that a block's inputs and outputs stay in cache.
fn block_rows(rows: usize, threads: usize) -> usize {
    let threads = threads.max(1);
    let per_thread = rows.div_ceil(threads).div_ceil(MAX_BLOCK).max(1);
    rows.div_ceil(threads * per_thread).max(1)
}

/// The most output pixels in one block.
const MAX_BLOCK: usize = 256;

/// 5×5 max-pool with stride 1 and 2 pixels of `-inf` padding (SPPF's), separable: along
/// rows into `tmp`, then along columns into `dst`.
pub(crate) fn maxpool5(src: View, dst: View) {
    assert_eq!((src.b, src.h, src.w, src.c), (dst.b, dst.h, dst.w, dst.c));
    let (h, w, c) = (src.h, src.w, src.c);
    let mut tmp = vec![0f32; src.b * h * w * c];
    for b in 0..src.b {
        for y in 0..h {
            for x in 0..w {
                let out = &mut tmp[((b * h + y) * w + x) * c..][..c];
                out.fill(f32::NEG_INFINITY);
                for xx in x.saturating_sub(2)..(x + 3).min(w) {
                    // SAFETY: (b, y, xx) is a pixel of src.
                    let inp =
                        unsafe { std::slice::from_raw_parts(src.at((b * h + y) * w + xx), c) };
                    for (o, &v) in out.iter_mut().zip(inp) {
                        *o = o.max(v);
                    }
                }
            }
        }
    }
    for b in 0..src.b {
        for y in 0..h {
            for x in 0..w {
                // SAFETY: (b, y, x) is a pixel of dst.
                let out = unsafe { std::slice::from_raw_parts_mut(dst.at((b * h + y) * w + x), c) };
                out.fill(f32::NEG_INFINITY);
                for yy in y.saturating_sub(2)..(y + 3).min(h) {
                    let inp = &tmp[((b * h + yy) * w + x) * c..][..c];
                    for (o, &v) in out.iter_mut().zip(inp) {
                        *o = o.max(v);
                    }
                }
            }
        }
    }
}

/// Nearest-neighbour 2× upsampling of `src` into `dst` (twice its height and width), output
/// rows shared among `threads`.
pub(crate) fn upsample2(src: View, dst: View, threads: usize) {
    assert_eq!(
        (dst.b, dst.h, dst.w, dst.c),
        (src.b, src.h * 2, src.w * 2, src.c)
    );
    let row = |r: usize| {
        let (b, y) = (r / dst.h, r % dst.h);
        for x in 0..dst.w {
            // SAFETY: both pixels are in their views; src and dst do not overlap, and each
            // output row is written by one call only.
            unsafe {
                let from = src.at((b * src.h + y / 2) * src.w + x / 2);
                let to = dst.at((b * dst.h + y) * dst.w + x);
                std::ptr::copy_nonoverlapping(from, to, src.c);
            }
        }
    };
    if threads > 1 {
        (0..dst.b * dst.h).into_par_iter().for_each(row);
    } else {
        (0..dst.b * dst.h).for_each(row);
    }
}

/// Element-wise maths, compiled twice on x86-64 (baseline SSE2, and AVX2 + FMA picked at run
/// time) so the exponential in SiLU and sigmoid is vectorised eight wide where the CPU can.
pub(crate) mod simd {
    use super::View;

    /// Finishes rows `r0..r0+n` of `dst`: adds the bias, applies SiLU, adds the residual. The
    /// matrix product is already in `dst`, or, when `pixel_major` is given, there as
    /// `[channel][pixel]`, to be transposed into `dst`.
    ///
    /// # Safety
    /// The rows must be in `dst` (and `residual`) and owned by the caller.
    pub unsafe fn epilogue(
        dst: View,
        r0: usize,
        n: usize,
        pixel_major: Option<&mut [f32]>,
        bias: &[f32],
        silu: bool,
        residual: Option<View>,
    ) {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has the features the function is compiled for; the rest is the
            // caller's contract.
            unsafe { epilogue_avx2(dst, r0, n, pixel_major, bias, silu, residual) };
            return;
        }
        // SAFETY: the caller's contract.
        unsafe { epilogue_generic(dst, r0, n, pixel_major, bias, silu, residual) }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn epilogue_avx2(
        dst: View,
        r0: usize,
        n: usize,
        pixel_major: Option<&mut [f32]>,
        bias: &[f32],
        silu: bool,
        residual: Option<View>,
    ) {
        // SAFETY: the caller's contract.
        unsafe { epilogue_generic(dst, r0, n, pixel_major, bias, silu, residual) }
    }

    #[inline(always)]
    unsafe fn epilogue_generic(
        dst: View,
        r0: usize,
        n: usize,
        pixel_major: Option<&mut [f32]>,
        bias: &[f32],
        silu: bool,
        residual: Option<View>,
    ) {
        let c = dst.c;
        match pixel_major {
            None => {
                for p in r0..r0 + n {
                    // SAFETY: p is one of the caller's rows; the row has c channels.
                    let row = unsafe { std::slice::from_raw_parts_mut(dst.at(p), c) };
                    let res = residual
                        .map(|r| unsafe { std::slice::from_raw_parts(r.at(p), c) as &[f32] });
                    bias_act(row, bias, silu, res);
                }
            }
            Some(t) => {
                // Activation along pixels (contiguous, eight at a time), then the transpose.
                for (o, plane) in t.chunks_exact_mut(n).enumerate().take(c) {
                    let b = bias[o];
                    if silu {
                        plane.iter_mut().for_each(|v| *v = silu_f(*v + b));
                    } else {
                        plane.iter_mut().for_each(|v| *v += b);
                    }
                }
                for i in 0..n {
                    // SAFETY: as above.
                    let row = unsafe { std::slice::from_raw_parts_mut(dst.at(r0 + i), c) };
                    for (o, v) in row.iter_mut().enumerate() {
                        *v = t[o * n + i];
                    }
                    if let Some(r) = residual {
                        // SAFETY: as above.
                        let res = unsafe { std::slice::from_raw_parts(r.at(r0 + i), c) };
                        row.iter_mut().zip(res).for_each(|(v, r)| *v += r);
                    }
                }
            }
        }
    }

    /// `row[i] = act(row[i] + bias[i]) (+ res[i])`.
    #[inline(always)]
    fn bias_act(row: &mut [f32], bias: &[f32], silu: bool, res: Option<&[f32]>) {
        let bias = &bias[..row.len()];
        match (silu, res) {
            (true, None) => {
                for (v, &b) in row.iter_mut().zip(bias) {
                    *v = silu_f(*v + b);
                }
            }
            (true, Some(res)) => {
                let res = &res[..row.len()];
                for ((v, &b), &r) in row.iter_mut().zip(bias).zip(res) {
                    *v = silu_f(*v + b) + r;
                }
            }
            (false, None) => {
                for (v, &b) in row.iter_mut().zip(bias) {
                    *v += b;
                }
            }
            (false, Some(res)) => {
                let res = &res[..row.len()];
                for ((v, &b), &r) in row.iter_mut().zip(bias).zip(res) {
                    *v += b + r;
                }
            }
        }
    }

    /// The distribution focal loss decoding of YOLOv8's box branch, for each pixel of
    /// `logits` (rows `stride` apart, each starting with 4 sides × `bins.len()` logits):
    /// per side, the expectation of `bins` under the softmax of its logits.
    pub fn dfl(logits: &[f32], stride: usize, bins: &[f32], out: &mut [[f32; 4]]) {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has the features the function is compiled for.
            unsafe { dfl_avx2(logits, stride, bins, out) };
            return;
        }
        dfl_generic(logits, stride, bins, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn dfl_avx2(logits: &[f32], stride: usize, bins: &[f32], out: &mut [[f32; 4]]) {
        use std::arch::x86_64::*;
        // Sixteen bins (every published model) are two vectors per side; the reductions
        // (maximum, sums) go across lanes, which the compiler does not vectorise for floats
        // on its own.
        if bins.len() != 16 || stride < 64 {
            return dfl_generic(logits, stride, bins, out);
        }
        #[inline(always)]
        fn hsum(v: __m256) -> f32 {
            // SAFETY: only called from this AVX2 function.
            unsafe {
                let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
                let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
                _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps::<1>(s, s)))
            }
        }
        // SAFETY: the CPU has AVX2 and FMA; loads stay within each pixel's first 64 floats.
        unsafe {
            let (b0, b1) = (
                _mm256_loadu_ps(bins.as_ptr()),
                _mm256_loadu_ps(bins.as_ptr().add(8)),
            );
            for (px, d) in logits.chunks(stride).zip(out.iter_mut()) {
                if px.len() < 64 {
                    break;
                }
                for (side, d) in d.iter_mut().enumerate() {
                    let l = px.as_ptr().add(side * 16);
                    let (v0, v1) = (_mm256_loadu_ps(l), _mm256_loadu_ps(l.add(8)));
                    let m = _mm256_max_ps(v0, v1);
                    let m = _mm256_max_ps(m, _mm256_permute2f128_ps::<1>(m, m));
                    let m = _mm256_max_ps(m, _mm256_shuffle_ps::<0b01_00_11_10>(m, m));
                    let m = _mm256_max_ps(m, _mm256_shuffle_ps::<0b10_11_00_01>(m, m));
                    let e0 = exp_avx2(_mm256_sub_ps(v0, m));
                    let e1 = exp_avx2(_mm256_sub_ps(v1, m));
                    let sum = hsum(_mm256_add_ps(e0, e1));
                    let acc = hsum(_mm256_fmadd_ps(e1, b1, _mm256_mul_ps(e0, b0)));
                    *d = acc / sum;
                }
            }
        }
    }

    #[inline(always)]
    fn dfl_generic(logits: &[f32], stride: usize, bins: &[f32], out: &mut [[f32; 4]]) {
        let r = bins.len();
        for (px, d) in logits.chunks(stride).zip(out.iter_mut()) {
            for (side, d) in d.iter_mut().enumerate() {
                let l = &px[side * r..(side + 1) * r];
                let max = l.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let (mut sum, mut acc) = (0f32, 0f32);
                for (&v, &b) in l.iter().zip(bins) {
                    let e = exp(v - max);
                    sum += e;
                    acc += e * b;
                }
                *d = acc / sum;
            }
        }
    }

    /// `1 / (1 + e^-x)` in place.
    pub fn sigmoid(xs: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has the features the function is compiled for.
            unsafe { sigmoid_avx2(xs) };
            return;
        }
        sigmoid_generic(xs)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn sigmoid_avx2(xs: &mut [f32]) {
        sigmoid_generic(xs)
    }

    #[inline(always)]
    fn sigmoid_generic(xs: &mut [f32]) {
        for v in xs {
            *v = 1.0 / (1.0 + exp(-*v));
        }
    }

    #[inline(always)]
    fn silu_f(x: f32) -> f32 {
        x / (1.0 + exp(-x))
    }

    /// `e^x` to within 2 ulp over the range where `f32` has it, written without branches or
    /// calls so that it vectorises: `x = n·ln2 + r` with `|r| ≤ ln2/2`, a degree-6 polynomial
    /// for `e^r`, and `2^n` built in the exponent bits.
    #[inline(always)]
    pub fn exp(x: f32) -> f32 {
        const LOG2E: f32 = std::f32::consts::LOG2_E;
        const LN2_HI: f32 = 0.693_359_4;
        const LN2_LO: f32 = -2.121_944_4e-4;
        // Adding and subtracting 1.5·2^23 rounds to the nearest integer in any rounding mode
        // the FPU is in, without a call to roundf.
        const ROUND: f32 = 12_582_912.0;
        // max/min rather than clamp: clamp's NaN handling does not vectorise as well.
        #[allow(clippy::manual_clamp)]
        let x = x.max(-87.0).min(88.0);
        let t = x * LOG2E + ROUND;
        let n = t - ROUND;
        let r = x - n * LN2_HI - n * LN2_LO;
        let p = 1.987_569_1e-4_f32;
        let p = p * r + 1.398_199_9e-3;
        let p = p * r + 8.333_452e-3;
        let p = p * r + 4.166_579_6e-2;
        let p = p * r + 1.666_666_5e-1;
        let p = p * r + 0.5;
        let e = p * r * r + r + 1.0;
        // The integer n sits in the low mantissa bits of t (t = 1.5·2^23 + n), so 2^n's
        // exponent field is (t's bits - bits of 1.5·2^23 + 127) << 23, all integer arithmetic
        // (a float-to-int cast would saturate, which does not vectorise).
        let bits = t.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127) << 23;
        e * f32::from_bits(bits)
    }

    /// SiLU on eight lanes: `a / (1 + e^-a)`, the division as a reciprocal estimate refined by
    /// one Newton step (relative error about 1e-7; a divide is several times slower and this
    /// runs on every output of the network).
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub unsafe fn silu_avx2(a: std::arch::x86_64::__m256) -> std::arch::x86_64::__m256 {
        use std::arch::x86_64::*;
        let e = exp_avx2(_mm256_sub_ps(_mm256_setzero_ps(), a));
        let d = _mm256_add_ps(_mm256_set1_ps(1.0), e);
        let r = _mm256_rcp_ps(d);
        let r = _mm256_mul_ps(r, _mm256_fnmadd_ps(d, r, _mm256_set1_ps(2.0)));
        _mm256_mul_ps(a, r)
    }

    /// [`exp`] on eight lanes, the same steps in AVX2 + FMA intrinsics (for kernels that keep
    /// their values in registers).
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub unsafe fn exp_avx2(x: std::arch::x86_64::__m256) -> std::arch::x86_64::__m256 {
        use std::arch::x86_64::*;
        const ROUND: f32 = 12_582_912.0;
        let x = _mm256_min_ps(
            _mm256_max_ps(x, _mm256_set1_ps(-87.0)),
            _mm256_set1_ps(88.0),
        );
        let t = _mm256_fmadd_ps(
            x,
            _mm256_set1_ps(std::f32::consts::LOG2_E),
            _mm256_set1_ps(ROUND),
        );
        let n = _mm256_sub_ps(t, _mm256_set1_ps(ROUND));
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_359_4), x);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.121_944_4e-4), r);
        let mut p = _mm256_set1_ps(1.987_569_1e-4);
        for c in [
            1.398_199_9e-3,
            8.333_452e-3,
            4.166_579_6e-2,
            1.666_666_5e-1,
            0.5,
        ] {
            p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
        }
        let e = _mm256_fmadd_ps(
            _mm256_mul_ps(p, r),
            r,
            _mm256_add_ps(r, _mm256_set1_ps(1.0)),
        );
        let bits = _mm256_slli_epi32::<23>(_mm256_add_epi32(
            _mm256_sub_epi32(
                _mm256_castps_si256(t),
                _mm256_set1_epi32(ROUND.to_bits() as i32),
            ),
            _mm256_set1_epi32(127),
        ));
        _mm256_mul_ps(e, _mm256_castsi256_ps(bits))
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn exp_is_accurate() {
            let mut worst = 0f64;
            let mut x = -87.0f32;
            while x < 88.0 {
                let want = f64::from(x).exp();
                let got = f64::from(super::exp(x));
                worst = worst.max(((got - want) / want).abs());
                x += 0.0137;
            }
            assert!(worst < 3e-7, "relative error {worst}");
        }

        #[test]
        fn dfl_matches_its_definition() {
            let bins: Vec<f32> = (0..16).map(|i| i as f32).collect();
            let stride = 70;
            let logits: Vec<f32> = (0..stride * 13)
                .map(|i| ((i * 7919 % 1013) as f32 / 1013.0 - 0.5) * 24.0)
                .collect();
            let mut fast = vec![[0f32; 4]; 13];
            let mut plain = vec![[0f32; 4]; 13];
            super::dfl(&logits, stride, &bins, &mut fast);
            super::dfl_generic(&logits, stride, &bins, &mut plain);
            for (px, (f, p)) in logits.chunks(stride).zip(fast.iter().zip(&plain)) {
                for side in 0..4 {
                    let l = &px[side * 16..side * 16 + 16];
                    let m = l
                        .iter()
                        .copied()
                        .fold(f64::NEG_INFINITY, |a, b| a.max(f64::from(b)));
                    let e: Vec<f64> = l.iter().map(|&v| (f64::from(v) - m).exp()).collect();
                    let want = e
                        .iter()
                        .zip(0..)
                        .map(|(e, i)| e * f64::from(i))
                        .sum::<f64>()
                        / e.iter().sum::<f64>();
                    for got in [f[side], p[side]] {
                        assert!((f64::from(got) - want).abs() < 1e-4, "{got} vs {want}");
                    }
                }
            }
        }

        #[test]
        fn activations_match_the_definitions() {
            let mut row = vec![-30.0, -2.0, -0.5, 0.0, 0.25, 3.0, 40.0];
            let input = row.clone();
            let bias = vec![0.5; row.len()];
            super::bias_act(&mut row, &bias, true, None);
            for (got, x) in row.iter().zip(&input) {
                let x = f64::from(*x) + 0.5;
                let want = x / (1.0 + (-x).exp());
                assert!(
                    (f64::from(*got) - want).abs() < 1e-5 * want.abs().max(1.0),
                    "{got} vs {want}"
                );
            }
            let mut s = input.clone();
            super::sigmoid(&mut s);
            for (got, x) in s.iter().zip(&input) {
                let want = 1.0 / (1.0 + (-f64::from(*x)).exp());
                assert!((f64::from(*got) - want).abs() < 1e-6, "{got} vs {want}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A direct, obviously correct NCHW convolution to check the fast one against.
    fn conv_reference(
        x: &[f32],
        (h, w, ci): (usize, usize, usize),
        wt: &[f32],
        co: usize,
        k: usize,
        s: usize,
    ) -> Vec<f32> {
        let pad = (k / 2) as isize;
        let oh = (h + 2 * (k / 2) - k) / s + 1;
        let ow = (w + 2 * (k / 2) - k) / s + 1;
        let mut out = vec![0f32; oh * ow * co];
        for oy in 0..oh {
            for ox in 0..ow {
                for o in 0..co {
                    let mut acc = 0f64;
                    for c in 0..ci {
                        for ky in 0..k {
                            for kx in 0..k {
                                let iy = (oy * s) as isize + ky as isize - pad;
                                let ix = (ox * s) as isize + kx as isize - pad;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                    continue;
                                }
                                let v = x[(iy as usize * w + ix as usize) * ci + c];
                                acc +=
                                    f64::from(v) * f64::from(wt[((o * ci + c) * k + ky) * k + kx]);
                            }
                        }
                    }
                    out[(oy * ow + ox) * co + o] = acc as f32;
                }
            }
        }
        out
    }

    fn pseudo_random(n: usize, seed: u32) -> Vec<f32> {
        let mut state = seed.wrapping_mul(2_654_435_761).max(1);
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn convolutions_match_a_direct_implementation() {
        for &(h, w, ci, co, k, s) in &[
            // Widths the direct kernel does not take (the matrix-library path).
            (9, 7, 3, 5, 3, 2),
            (8, 8, 4, 6, 3, 1),
            (6, 5, 7, 3, 1, 1),
            // The direct kernel (stride 2, 1×1, channel counts off multiples of 8) and the
            // Winograd path (3×3 stride 1 with multiples of 8: odd sizes cut 2×2 tiles at the
            // edge): thin and wide inputs, 8-channel panels, pixel counts that leave partial
            // tiles.
            (17, 13, 16, 32, 3, 2),
            (20, 20, 8, 8, 3, 1),
            (23, 19, 3, 16, 3, 2),
            (11, 9, 16, 16, 3, 1),
            (13, 7, 48, 32, 1, 1),
            (9, 9, 5, 24, 3, 1),
            (7, 10, 64, 80, 3, 1),
            (5, 6, 24, 40, 3, 2),
            (6, 6, 40, 64, 1, 1),
        ] {
            let x = pseudo_random(h * w * ci, 1);
            let wt = pseudo_random(co * ci * k * k, 2);
            let bias = pseudo_random(co, 3);
            let res = pseudo_random(h * w * co, 4);
            let want = conv_reference(&x, (h, w, ci), &wt, co, k, s);
            for silu in [false, true] {
                let conv = Conv::fold(&wt, [co, ci, k, k], Some(&bias), None, s, silu);
                let (oh, ow) = conv.out_size(h, w);
                // The input both dense and as a channel range of a wider buffer (C2f's
                // chunks), the output into the middle of a wider buffer, with a residual.
                let mut dense = Act {
                    data: x.clone(),
                    b: 1,
                    h,
                    w,
                    c: ci,
                };
                let mut wide = Act::zeros(1, h, w, ci + 5);
                for (p, px) in x.chunks_exact(ci).enumerate() {
                    wide.data[p * (ci + 5) + 1..][..ci].copy_from_slice(px);
                }
                let mut residual = Act {
                    data: res[..oh * ow * co].to_vec(),
                    b: 1,
                    h: oh,
                    w: ow,
                    c: co,
                };
                let mut out = Act::zeros(1, oh, ow, co + 3);
                for (input, threads) in [(dense.all(), 1), (dense.all(), 2), (wide.view(1, ci), 2)]
                {
                    let r = silu.then(|| residual.all());
                    conv.run(input, out.view(2, co), r, threads);
                    for p in 0..oh * ow {
                        for o in 0..co {
                            let got = out.data[p * (co + 3) + 2 + o];
                            let mut want = want[p * co + o] + bias[o];
                            if silu {
                                want = want / (1.0 + (-want).exp()) + res[p * co + o];
                            }
                            assert!(
                                (got - want).abs() < 1e-4,
                                "{h}x{w}x{ci}->{co} k{k} s{s} silu {silu} stride {}: {got} vs {want}",
                                input.stride
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn maxpool_pads_with_negative_infinity() {
        let mut src = Act {
            data: vec![-5.0, -4.0, -3.0, -2.0, -1.0, -6.0],
            b: 1,
            h: 2,
            w: 3,
            c: 1,
        };
        let mut dst = Act::zeros(1, 2, 3, 1);
        maxpool5(src.all(), dst.all());
        assert_eq!(dst.data, vec![-1.0; 6]);
    }
}
