//! The arithmetic of the network: convolution as im2col + GEMM with a fused epilogue, and the
//! cheap layers around it (max-pool, nearest upsampling), all on NHWC `f32` activations.
//!
//! Why our own kernels and not `candle_nn::Conv2d`: candle's CPU convolution works on NCHW,
//! materialises the whole im2col matrix, and runs batch-norm, SiLU, concatenation and the
//! residual add as separate passes over memory. YOLOv8 is a stack of small convolutions, so
//! those passes cost more than the arithmetic. Here a convolution is cut into blocks of output
//! pixels; each block builds its patch matrix in a per-thread scratch buffer that stays in cache,
//! multiplies it with the batch-norm-folded weights through `gemm` (the matrix kernel candle
//! itself uses), then adds the bias, applies SiLU and the residual while the block is still hot,
//! and writes into a channel range of the destination, so concatenation costs nothing.

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
        Conv {
            k,
            stride,
            ci,
            co,
            weight,
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
        let rows = dst.pixels();
        let block = block_rows(rows, threads);
        let blocks = rows.div_ceil(block);
        let direct = self.k == 1 && self.stride == 1;
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
                let Scratch { patches, out } = &mut *scratch;
                // SAFETY: views are in bounds by the geometry checks above; this block writes
                // only rows r0..r0+n of dst's channels, which no other block touches.
                unsafe {
                    let (lhs, lhs_rs) = if direct {
                        (src.at(r0) as *const f32, src.stride as isize)
                    } else {
                        if patches.len() < n * kdim {
                            patches.resize(n * kdim, 0.0);
                        }
                        self.im2col(src, r0, n, oh, ow, &mut patches[..n * kdim]);
                        (patches.as_ptr(), kdim as isize)
                    };
                    if narrow::run(
                        n,
                        self.co,
                        kdim,
                        lhs,
                        lhs_rs as usize,
                        &self.weight,
                        dst,
                        r0,
                    ) {
                        simd::epilogue(dst, r0, n, None, &self.bias, self.silu, residual);
                        return;
                    }
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
        if threads <= 1 || blocks == 1 {
            (0..blocks).for_each(work);
        } else {
            (0..blocks).into_par_iter().for_each(work);
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

/// Products for narrow layers (8 to 32 output channels), where the matrix kernel's tiles are
/// mostly empty: a register-blocked kernel of our own, a few pixels by all output channels at
/// a time, written straight into the NHWC destination (AVX2 + FMA, picked at run time).
mod narrow {
    use super::View;

    /// `dst[r0 + i][0..co] = Σ_k lhs[i·lhs_rs + k] · w[k·co..][..co]` for `i < n`. Returns false
    /// (and does nothing) when the CPU or the width is not one this kernel serves.
    ///
    /// # Safety
    /// `lhs` holds `n` rows of `kdim` floats `lhs_rs` apart; `w` is `kdim × co`; the rows are
    /// the caller's in `dst`, which has `co` channels.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn run(
        n: usize,
        co: usize,
        kdim: usize,
        lhs: *const f32,
        lhs_rs: usize,
        w: &[f32],
        dst: View,
        r0: usize,
    ) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            if !std::is_x86_feature_detected!("avx2") || !std::is_x86_feature_detected!("fma") {
                return false;
            }
            debug_assert_eq!(w.len(), kdim * co);
            debug_assert_eq!(dst.c, co);
            let w = w.as_ptr();
            // SAFETY: the CPU has AVX2 and FMA; the rest is the caller's contract.
            unsafe {
                match co {
                    8 => avx2::<1, 8>(n, kdim, lhs, lhs_rs, w, dst, r0),
                    16 => avx2::<2, 6>(n, kdim, lhs, lhs_rs, w, dst, r0),
                    24 => avx2::<3, 4>(n, kdim, lhs, lhs_rs, w, dst, r0),
                    32 => avx2::<4, 2>(n, kdim, lhs, lhs_rs, w, dst, r0),
                    _ => return false,
                }
            }
            true
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (n, co, kdim, lhs, lhs_rs, w, dst, r0);
            false
        }
    }

    /// `V` vectors of 8 output channels, `P` pixels at a time (V·P accumulators, V weight
    /// vectors and a broadcast: at most 16 registers).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2<const V: usize, const P: usize>(
        n: usize,
        kdim: usize,
        lhs: *const f32,
        lhs_rs: usize,
        w: *const f32,
        dst: View,
        r0: usize,
    ) {
        use std::arch::x86_64::*;
        let co = V * 8;
        let mut i = 0;
        // SAFETY (the whole body): reads stay within the caller's `n` rows of `kdim` and the
        // `kdim × co` weights; writes go to the caller's rows of `dst`.
        unsafe {
            while i + P <= n {
                let mut acc = [[_mm256_setzero_ps(); V]; P];
                let rows: [*const f32; P] = std::array::from_fn(|p| lhs.add((i + p) * lhs_rs));
                for k in 0..kdim {
                    let wk = w.add(k * co);
                    let wv: [__m256; V] = std::array::from_fn(|v| _mm256_loadu_ps(wk.add(v * 8)));
                    for p in 0..P {
                        let x = _mm256_broadcast_ss(&*rows[p].add(k));
                        for v in 0..V {
                            acc[p][v] = _mm256_fmadd_ps(x, wv[v], acc[p][v]);
                        }
                    }
                }
                for (p, a) in acc.iter().enumerate() {
                    let out = dst.at(r0 + i + p);
                    for (v, a) in a.iter().enumerate() {
                        _mm256_storeu_ps(out.add(v * 8), *a);
                    }
                }
                i += P;
            }
            while i < n {
                let mut acc = [_mm256_setzero_ps(); V];
                let row = lhs.add(i * lhs_rs);
                for k in 0..kdim {
                    let x = _mm256_broadcast_ss(&*row.add(k));
                    let wk = w.add(k * co);
                    for (v, a) in acc.iter_mut().enumerate() {
                        *a = _mm256_fmadd_ps(x, _mm256_loadu_ps(wk.add(v * 8)), *a);
                    }
                }
                let out = dst.at(r0 + i);
                for (v, a) in acc.iter().enumerate() {
                    _mm256_storeu_ps(out.add(v * 8), *a);
                }
                i += 1;
            }
        }
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
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = const {
        RefCell::new(Scratch {
            patches: Vec::new(),
            out: Vec::new(),
        })
    };
}

/// Rows of output pixels per block: enough blocks to share among the threads, each big enough
/// for the matrix kernel to run at speed and small enough for its patch matrix to stay in cache.
fn block_rows(rows: usize, threads: usize) -> usize {
    let threads = threads.max(1);
    let even = rows.div_ceil(threads);
    if even <= 64 {
        return even.max(1);
    }
    rows.div_ceil(threads * 4).clamp(64, 256)
}

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

/// Nearest-neighbour 2× upsampling of `src` into `dst` (twice its height and width).
pub(crate) fn upsample2(src: View, dst: View) {
    assert_eq!(
        (dst.b, dst.h, dst.w, dst.c),
        (src.b, src.h * 2, src.w * 2, src.c)
    );
    for b in 0..dst.b {
        for y in 0..dst.h {
            for x in 0..dst.w {
                // SAFETY: both pixels are in their views; src and dst do not overlap.
                unsafe {
                    let from = src.at((b * src.h + y / 2) * src.w + x / 2);
                    let to = dst.at((b * dst.h + y) * dst.w + x);
                    std::ptr::copy_nonoverlapping(from, to, src.c);
                }
            }
        }
    }
}

/// Copies `src` into `dst` (same geometry and channel count).
pub(crate) fn copy(src: View, dst: View) {
    assert_eq!((src.b, src.h, src.w, src.c), (dst.b, dst.h, dst.w, dst.c));
    for p in 0..src.pixels() {
        // SAFETY: p is a pixel of both; the channel ranges do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(src.at(p), dst.at(p), src.c) };
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
        dfl_generic(logits, stride, bins, out)
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
            (9, 7, 3, 5, 3, 2),
            (8, 8, 4, 6, 3, 1),
            (6, 5, 7, 3, 1, 1),
            (17, 13, 16, 32, 3, 2),
            (20, 20, 8, 8, 3, 1),
            // The narrow kernel's widths, with row counts that leave remainders.
            (23, 19, 3, 16, 3, 2),
            (11, 9, 16, 16, 3, 1),
            (13, 7, 48, 32, 1, 1),
            (9, 9, 5, 24, 3, 1),
        ] {
            let x = pseudo_random(h * w * ci, 1);
            let wt = pseudo_random(co * ci * k * k, 2);
            let conv = Conv::fold(&wt, [co, ci, k, k], None, None, s, false);
            let mut input = Act {
                data: x.clone(),
                b: 1,
                h,
                w,
                c: ci,
            };
            let (oh, ow) = conv.out_size(h, w);
            // Write into the middle of a wider buffer to check strided destinations.
            let mut out = Act::zeros(1, oh, ow, co + 3);
            for threads in [1, 2] {
                conv.run(input.all(), out.view(2, co), None, threads);
                let want = conv_reference(&x, (h, w, ci), &wt, co, k, s);
                for p in 0..oh * ow {
                    for o in 0..co {
                        let got = out.data[p * (co + 3) + 2 + o];
                        let want = want[p * co + o];
                        assert!(
                            (got - want).abs() < 1e-4,
                            "{h}x{w}x{ci}->{co} k{k} s{s}: {got} vs {want}"
                        );
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
