//! The YOLOv8 detection network (every size, n to x, and any class count), built from a
//! safetensors state dict and run with the kernels of [`super::kernels`].
//!
//! The graph is ultralytics' `yolov8.yaml`:
//!
//! ```text
//!  0 Conv s2   1 Conv s2   2 C2f+   3 Conv s2   4 C2f+ (P3)   5 Conv s2   6 C2f+ (P4)
//!  7 Conv s2   8 C2f+      9 SPPF (P5)
//! 10 up(9) ‖ 6 → 12 C2f      13 up(12) ‖ 4 → 15 C2f (out 8)
//! 16 Conv s2(15) ‖ 12 → 18 C2f (out 16)   19 Conv s2(18) ‖ 9 → 21 C2f (out 32)
//! 22 Detect: per level, box branch (3×3, 3×3, 1×1 → 4·16) and class branch (3×3, 3×3, 1×1 → nc)
//! ```
//!
//! `+` marks C2f blocks whose bottlenecks have the residual shortcut (the backbone's only).
//! Widths and depths are not configured: they are read off the weights, so the same code runs
//! n, s, m, l and x, and custom class counts.

use std::collections::HashMap;

use vigil_core::{Error, Result};

use super::kernels::{maxpool5, simd, upsample2, Act, BatchNorm, Conv, View};

/// Batch-norm epsilon of ultralytics' `Conv` blocks (not PyTorch's default 1e-5).
const BN_EPS: f64 = 1e-3;
/// Bins per box side in the distribution focal loss head.
const REG_MAX: usize = 16;
/// The strides of the three output levels.
pub(crate) const STRIDES: [usize; 3] = [8, 16, 32];

/// Tensors by their ultralytics name (`model.0.conv.weight`), as `f32` with their shape.
pub(crate) type StateDict = HashMap<String, (Vec<f32>, Vec<usize>)>;

/// Renames candle's YOLOv8 example names (`net.b1.0.conv.weight`, `fpn.n1...`,
/// `head...`, `bottleneck.<j>`) and full-checkpoint names (`model.model.0...`) to
/// ultralytics' state-dict names (`model.0.conv.weight`, `m.<j>`).
pub(crate) fn ultralytics_name(name: &str) -> String {
    const PREFIXES: [(&str, &str); 17] = [
        ("net.b1.0.", "model.0."),
        ("net.b1.1.", "model.1."),
        ("net.b2.0.", "model.2."),
        ("net.b2.1.", "model.3."),
        ("net.b2.2.", "model.4."),
        ("net.b3.0.", "model.5."),
        ("net.b3.1.", "model.6."),
        ("net.b4.0.", "model.7."),
        ("net.b4.1.", "model.8."),
        ("net.b5.0.", "model.9."),
        ("fpn.n1.", "model.12."),
        ("fpn.n2.", "model.15."),
        ("fpn.n3.", "model.16."),
        ("fpn.n4.", "model.18."),
        ("fpn.n5.", "model.19."),
        ("fpn.n6.", "model.21."),
        ("head.", "model.22."),
    ];
    let name = name
        .strip_prefix("model.model.")
        .map_or_else(|| name.to_owned(), |rest| format!("model.{rest}"));
    for (from, to) in PREFIXES {
        if let Some(rest) = name.strip_prefix(from) {
            return format!("{to}{}", rest.replace("bottleneck.", "m."));
        }
    }
    name
}

/// Reads convolutions out of a state dict, checking every shape.
struct Loader<'a> {
    dict: &'a StateDict,
}

impl Loader<'_> {
    fn tensor(&self, name: &str) -> Result<(&[f32], &[usize])> {
        self.dict
            .get(name)
            .map(|(v, s)| (v.as_slice(), s.as_slice()))
            .ok_or_else(|| Error::invalid(format!("the weights have no tensor `{name}`")))
    }

    fn vector(&self, name: &str, len: usize) -> Result<&[f32]> {
        let (v, shape) = self.tensor(name)?;
        if shape != [len] {
            return Err(Error::invalid(format!(
                "`{name}` has shape {shape:?}, expected [{len}]"
            )));
        }
        Ok(v)
    }

    fn conv_weight(&self, name: &str, ci: usize) -> Result<(&[f32], [usize; 4])> {
        let (v, shape) = self.tensor(name)?;
        match *shape {
            [co, c, kh, kw] if c == ci && kh == kw && kh % 2 == 1 && co > 0 => {
                Ok((v, [co, c, kh, kw]))
            }
            _ => Err(Error::invalid(format!(
                "`{name}` has shape {shape:?}, expected [out, {ci}, k, k] with an odd k"
            ))),
        }
    }

    /// An ultralytics `Conv`: convolution without bias, batch norm, SiLU.
    fn conv_bn(&self, prefix: &str, ci: usize, stride: usize) -> Result<Conv> {
        let (w, shape) = self.conv_weight(&format!("{prefix}.conv.weight"), ci)?;
        let co = shape[0];
        let bn = |p: &str| self.vector(&format!("{prefix}.bn.{p}"), co);
        Ok(Conv::fold(
            w,
            shape,
            None,
            Some(BatchNorm {
                gamma: bn("weight")?,
                beta: bn("bias")?,
                mean: bn("running_mean")?,
                var: bn("running_var")?,
                eps: BN_EPS,
            }),
            stride,
            true,
        ))
    }

    /// A plain `nn.Conv2d` with bias and no activation (the head's last layers).
    fn conv_plain(&self, prefix: &str, ci: usize) -> Result<Conv> {
        let (w, shape) = self.conv_weight(&format!("{prefix}.weight"), ci)?;
        let b = self.vector(&format!("{prefix}.bias"), shape[0])?;
        Ok(Conv::fold(w, shape, Some(b), None, 1, false))
    }

    fn c2f(&self, prefix: &str, ci: usize, shortcut: bool) -> Result<C2f> {
        let cv1 = self.conv_bn(&format!("{prefix}.cv1"), ci, 1)?;
        if cv1.co % 2 != 0 {
            return Err(Error::invalid(format!(
                "{prefix}.cv1 has an odd width {}",
                cv1.co
            )));
        }
        let c = cv1.co / 2;
        let mut m = Vec::new();
        while self
            .dict
            .contains_key(&format!("{prefix}.m.{}.cv1.conv.weight", m.len()))
        {
            let j = m.len();
            let a = self.conv_bn(&format!("{prefix}.m.{j}.cv1"), c, 1)?;
            let b = self.conv_bn(&format!("{prefix}.m.{j}.cv2"), a.co, 1)?;
            if b.co != c {
                return Err(Error::invalid(format!(
                    "{prefix}.m.{j}.cv2 has width {}, expected {c}",
                    b.co
                )));
            }
            m.push((a, b));
        }
        let cv2 = self.conv_bn(&format!("{prefix}.cv2"), (2 + m.len()) * c, 1)?;
        Ok(C2f {
            cv1,
            m,
            cv2,
            c,
            shortcut,
        })
    }
}

/// CSP bottleneck with two convolutions: `cv1` splits into two halves, each bottleneck
/// extends the last, `cv2` mixes them all.
#[derive(Clone, Debug)]
struct C2f {
    cv1: Conv,
    m: Vec<(Conv, Conv)>,
    cv2: Conv,
    c: usize,
    shortcut: bool,
}

impl C2f {
    /// Runs the block on `x` into `dst` (`cv2.co` channels of the same geometry).
    fn run(&self, x: View, dst: View, threads: usize) {
        let (b, h, w, c) = (x.b, x.h, x.w, self.c);
        let mut y = Act::scratch(b, h, w, (2 + self.m.len()) * c);
        self.cv1.run(x, y.view(0, 2 * c), None, threads);
        let mut t = Act::scratch(b, h, w, c);
        for (j, (cv1, cv2)) in self.m.iter().enumerate() {
            if t.c != cv1.co {
                t = Act::scratch(b, h, w, cv1.co);
            }
            cv1.run(y.view((1 + j) * c, c), t.all(), None, threads);
            let residual = self.shortcut.then(|| y.view((1 + j) * c, c));
            cv2.run(t.all(), y.view((2 + j) * c, c), residual, threads);
        }
        self.cv2.run(y.all(), dst, None, threads);
    }

    /// Runs the block on `x` into a new activation.
    fn output(&self, x: View, threads: usize) -> Act {
        let mut out = Act::scratch(x.b, x.h, x.w, self.cv2.co);
        self.run(x, out.all(), threads);
        out
    }
}

/// Spatial pyramid pooling, fast: three chained 5×5 max-pools concatenated with their input.
#[derive(Clone, Debug)]
struct Sppf {
    cv1: Conv,
    cv2: Conv,
}

impl Sppf {
    /// Runs the block on `x` into `dst` (`cv2.co` channels of the same geometry).
    fn run(&self, x: View, dst: View, threads: usize) {
        let c = self.cv1.co;
        let mut y = Act::scratch(x.b, x.h, x.w, 4 * c);
        self.cv1.run(x, y.view(0, c), None, threads);
        for i in 1..4 {
            maxpool5(y.view((i - 1) * c, c), y.view(i * c, c));
        }
        self.cv2.run(y.all(), dst, None, threads);
    }
}

/// One output level of the detection head.
#[derive(Clone, Debug)]
struct HeadLevel {
    reg: [Conv; 3],
    cls: [Conv; 3],
}

/// The YOLOv8 network.
#[derive(Clone, Debug)]
pub(crate) struct YoloV8 {
    stem: [Conv; 2],
    c2f2: C2f,
    down3: Conv,
    c2f4: C2f,
    down5: Conv,
    c2f6: C2f,
    down7: Conv,
    c2f8: C2f,
    sppf: Sppf,
    c2f12: C2f,
    c2f15: C2f,
    down16: Conv,
    c2f18: C2f,
    down19: Conv,
    c2f21: C2f,
    head: [HeadLevel; 3],
    /// The DFL's projection (fixed at 0..16 in every published model).
    dfl: Vec<f32>,
    /// Number of classes.
    pub classes: usize,
    /// Width of the first layer: 16, 32, 48, 64, 80 for n, s, m, l, x.
    pub base_width: usize,
}

impl YoloV8 {
    /// Builds the network from an ultralytics-named state dict.
    pub fn from_state_dict(dict: &StateDict) -> Result<YoloV8> {
        let l = Loader { dict };
        let c0 = l.conv_bn("model.0", 3, 2)?;
        let c1 = l.conv_bn("model.1", c0.co, 2)?;
        let c2f2 = l.c2f("model.2", c1.co, true)?;
        let down3 = l.conv_bn("model.3", c2f2.cv2.co, 2)?;
        let c2f4 = l.c2f("model.4", down3.co, true)?;
        let down5 = l.conv_bn("model.5", c2f4.cv2.co, 2)?;
        let c2f6 = l.c2f("model.6", down5.co, true)?;
        let down7 = l.conv_bn("model.7", c2f6.cv2.co, 2)?;
        let c2f8 = l.c2f("model.8", down7.co, true)?;
        let sppf_cv1 = l.conv_bn("model.9.cv1", c2f8.cv2.co, 1)?;
        let sppf_cv2 = l.conv_bn("model.9.cv2", 4 * sppf_cv1.co, 1)?;
        let (p3, p4, p5) = (c2f4.cv2.co, c2f6.cv2.co, sppf_cv2.co);
        let c2f12 = l.c2f("model.12", p5 + p4, false)?;
        let c2f15 = l.c2f("model.15", c2f12.cv2.co + p3, false)?;
        let down16 = l.conv_bn("model.16", c2f15.cv2.co, 2)?;
        let c2f18 = l.c2f("model.18", down16.co + c2f12.cv2.co, false)?;
        let down19 = l.conv_bn("model.19", c2f18.cv2.co, 2)?;
        let c2f21 = l.c2f("model.21", down19.co + p5, false)?;
        let inputs = [c2f15.cv2.co, c2f18.cv2.co, c2f21.cv2.co];
        let mut head = Vec::new();
        let mut classes = None;
        for (i, &ci) in inputs.iter().enumerate() {
            let branch = |name: &str| -> Result<[Conv; 3]> {
                let a = l.conv_bn(&format!("model.22.{name}.{i}.0"), ci, 1)?;
                let b = l.conv_bn(&format!("model.22.{name}.{i}.1"), a.co, 1)?;
                let c = l.conv_plain(&format!("model.22.{name}.{i}.2"), b.co)?;
                Ok([a, b, c])
            };
            let reg = branch("cv2")?;
            let cls = branch("cv3")?;
            if reg[2].co != 4 * REG_MAX {
                return Err(Error::invalid(format!(
                    "model.22.cv2.{i}.2 gives {} channels, expected {}",
                    reg[2].co,
                    4 * REG_MAX
                )));
            }
            if *classes.get_or_insert(cls[2].co) != cls[2].co {
                return Err(Error::invalid(
                    "the head's levels disagree on the class count",
                ));
            }
            head.push(HeadLevel { reg, cls });
        }
        let (dfl, shape) = l.tensor("model.22.dfl.conv.weight")?;
        if shape.iter().product::<usize>() != REG_MAX {
            return Err(Error::invalid(format!(
                "model.22.dfl.conv.weight has shape {shape:?}"
            )));
        }
        let head: [HeadLevel; 3] = head
            .try_into()
            .map_err(|_| Error::internal("three head levels"))?;
        Ok(YoloV8 {
            base_width: c0.co,
            stem: [c0, c1],
            c2f2,
            down3,
            c2f4,
            down5,
            c2f6,
            down7,
            c2f8,
            sppf: Sppf {
                cv1: sppf_cv1,
                cv2: sppf_cv2,
            },
            c2f12,
            c2f15,
            down16,
            c2f18,
            down19,
            c2f21,
            head,
            dfl: dfl.to_vec(),
            classes: classes.unwrap_or(0),
        })
    }

    /// Number of anchors (output columns) for an `h × w` input.
    pub fn anchors(h: usize, w: usize) -> usize {
        STRIDES.iter().map(|s| (h / s) * (w / s)).sum()
    }

    /// Runs the network on `x` (NHWC, RGB in 0..1, height and width multiples of 32) and returns
    /// the raw head output `[b, 4 + classes, anchors]`: box centre, width and height in input
    /// pixels, then class probabilities.
    pub fn forward(&self, x: &mut Act, threads: usize) -> Vec<f32> {
        let conv = |c: &Conv, x: View| {
            let (h, w) = c.out_size(x.h, x.w);
            let mut out = Act::scratch(x.b, h, w, c.co);
            c.run(x, out.all(), None, threads);
            out
        };
        // Each block writes its output where the graph concatenates it, and later layers read
        // it there, so no concatenation copies anything: p3 sits beside up(n12) in cat15, p4
        // beside up(p5) in cat12, n12 beside down16's output in cat18, p5 beside down19's in
        // cat21.
        let (b, h8, w8) = (x.b, x.h / 8, x.w / 8);
        let (h16, w16, h32, w32) = (h8 / 2, w8 / 2, h8 / 4, w8 / 4);
        let (c3, c4, c5, c12) = (
            self.c2f4.cv2.co,
            self.c2f6.cv2.co,
            self.sppf.cv2.co,
            self.c2f12.cv2.co,
        );
        let mut cat15 = Act::scratch(b, h8, w8, c12 + c3);
        let mut cat12 = Act::scratch(b, h16, w16, c5 + c4);
        let mut cat18 = Act::scratch(b, h16, w16, self.down16.co + c12);
        let mut cat21 = Act::scratch(b, h32, w32, self.down19.co + c5);
        let p3 = cat15.view(c12, c3);
        let p4 = cat12.view(c5, c4);
        let n12 = cat18.view(self.down16.co, c12);
        let p5 = cat21.view(self.down19.co, c5);

        let mut t = conv(&self.stem[0], x.all());
        let mut t = conv(&self.stem[1], t.all());
        let mut t = self.c2f2.output(t.all(), threads);
        let mut t = conv(&self.down3, t.all());
        self.c2f4.run(t.all(), p3, threads);
        let mut t = conv(&self.down5, p3);
        self.c2f6.run(t.all(), p4, threads);
        let mut t = conv(&self.down7, p4);
        let mut t = self.c2f8.output(t.all(), threads);
        self.sppf.run(t.all(), p5, threads);

        upsample2(p5, cat12.view(0, c5), threads);
        self.c2f12.run(cat12.all(), n12, threads);
        upsample2(n12, cat15.view(0, c12), threads);
        let mut out8 = self.c2f15.output(cat15.all(), threads);
        self.down16
            .run(out8.all(), cat18.view(0, self.down16.co), None, threads);
        let mut out16 = self.c2f18.output(cat18.all(), threads);
        self.down19
            .run(out16.all(), cat21.view(0, self.down19.co), None, threads);
        let mut out32 = self.c2f21.output(cat21.all(), threads);

        let (b, nc) = (x.b, self.classes);
        let n: usize = [&out8, &out16, &out32].iter().map(|a| a.h * a.w).sum();
        let rows = 4 + nc;
        let mut out = vec![0f32; b * rows * n];
        let mut first = 0;
        for (level, (feat, stride)) in [&mut out8, &mut out16, &mut out32]
            .into_iter()
            .zip(STRIDES)
            .enumerate()
        {
            let head = &self.head[level];
            let (h, w) = (feat.h, feat.w);
            let mut raw = Act::scratch(b, h, w, 4 * REG_MAX + nc);
            for (branch, c0) in [(&head.reg, 0), (&head.cls, 4 * REG_MAX)] {
                let mut a = conv(&branch[0], feat.all());
                let mut bb = conv(&branch[1], a.all());
                branch[2].run(bb.all(), raw.view(c0, branch[2].co), None, threads);
            }
            self.decode(&mut raw, stride, &mut out, first, n);
            first += h * w;
        }
        out
    }

    /// Turns one level's raw output (`4·16` box logits, then class logits, per pixel) into
    /// output columns `first..` of `[b, 4 + nc, n]`. Tiles of pixels are gathered into the
    /// output rows and the activations run over the contiguous rows, so that the exponentials
    /// are vectorised and the level's buffer is read once.
    fn decode(&self, raw: &mut Act, stride: usize, out: &mut [f32], first: usize, n: usize) {
        const TILE: usize = 64;
        let (hw, w, c, nc) = (raw.h * raw.w, raw.w, raw.c, self.classes);
        let rows = 4 + nc;
        let s = stride as f32;
        let mut dist = [[0f32; 4]; TILE];
        for b in 0..raw.b {
            let base = b * rows * n + first;
            for t0 in (0..hw).step_by(TILE) {
                let t1 = (t0 + TILE).min(hw);
                let tile = &raw.data[(b * hw + t0) * c..(b * hw + t1) * c];
                for k in 0..nc {
                    let row = &mut out[base + (4 + k) * n + t0..base + (4 + k) * n + t1];
                    for (v, px) in row.iter_mut().zip(tile.chunks_exact(c)) {
                        *v = px[4 * REG_MAX + k];
                    }
                    simd::sigmoid(row);
                }
                let dist = &mut dist[..t1 - t0];
                simd::dfl(tile, c, &self.dfl, dist);
                for (i, d) in dist.iter().enumerate() {
                    let p = t0 + i;
                    let (ax, ay) = ((p % w) as f32 + 0.5, (p / w) as f32 + 0.5);
                    let (x1, y1, x2, y2) = (ax - d[0], ay - d[1], ax + d[2], ay + d[3]);
                    out[base + p] = (x1 + x2) / 2.0 * s;
                    out[base + n + p] = (y1 + y2) / 2.0 * s;
                    out[base + 2 * n + p] = (x2 - x1) * s;
                    out[base + 3 * n + p] = (y2 - y1) * s;
                }
            }
        }
    }
}

/// Depth, width and maximum channels of the published scales (ultralytics' `yolov8.yaml`).
pub(crate) fn scale(size: char) -> Option<(f64, f64, usize)> {
    Some(match size {
        'n' => (0.33, 0.25, 1024),
        's' => (0.33, 0.50, 1024),
        'm' => (0.67, 0.75, 768),
        'l' => (1.00, 1.00, 512),
        'x' => (1.00, 1.25, 512),
        _ => return None,
    })
}

/// A state dict with the architecture of a published scale and seeded random values: weights
/// with variance 1/fan-in, batch norms near identity. For tests and benchmarks, where the
/// real weights cannot be downloaded and only shapes and cost matter.
pub(crate) fn random_state_dict(
    (depth, width, max_c): (f64, f64, usize),
    classes: usize,
    seed: u64,
) -> StateDict {
    struct Gen {
        dict: StateDict,
        rng: u64,
    }
    impl Gen {
        fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            lo + (hi - lo) * ((self.rng >> 40) as f32 / (1u64 << 24) as f32)
        }
        fn conv(&mut self, p: &str, ci: usize, co: usize, k: usize, bn: bool) {
            let a = (3.0 / (ci * k * k) as f32).sqrt();
            let w = (0..co * ci * k * k).map(|_| self.uniform(-a, a)).collect();
            let shape = vec![co, ci, k, k];
            if bn {
                self.dict.insert(format!("{p}.conv.weight"), (w, shape));
                for (name, lo, hi) in [
                    ("weight", 0.5, 1.5),
                    ("bias", -0.1, 0.1),
                    ("running_mean", -0.1, 0.1),
                    ("running_var", 0.5, 1.5),
                ] {
                    let v = (0..co).map(|_| self.uniform(lo, hi)).collect();
                    self.dict.insert(format!("{p}.bn.{name}"), (v, vec![co]));
                }
            } else {
                self.dict.insert(format!("{p}.weight"), (w, shape));
                let b = (0..co).map(|_| self.uniform(-0.1, 0.1)).collect();
                self.dict.insert(format!("{p}.bias"), (b, vec![co]));
            }
        }
        fn c2f(&mut self, p: &str, ci: usize, co: usize, n: usize) {
            let c = co / 2;
            self.conv(&format!("{p}.cv1"), ci, 2 * c, 1, true);
            for j in 0..n {
                self.conv(&format!("{p}.m.{j}.cv1"), c, c, 3, true);
                self.conv(&format!("{p}.m.{j}.cv2"), c, c, 3, true);
            }
            self.conv(&format!("{p}.cv2"), (2 + n) * c, co, 1, true);
        }
    }
    let ch = |c: usize| ((c.min(max_c) as f64 * width / 8.0).ceil() as usize) * 8;
    let reps = |n: f64| ((n * depth).round() as usize).max(1);
    let mut g = Gen {
        dict: StateDict::new(),
        rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
    };
    let (c64, c128, c256, c512, c1024) = (ch(64), ch(128), ch(256), ch(512), ch(1024));
    g.conv("model.0", 3, c64, 3, true);
    g.conv("model.1", c64, c128, 3, true);
    g.c2f("model.2", c128, c128, reps(3.0));
    g.conv("model.3", c128, c256, 3, true);
    g.c2f("model.4", c256, c256, reps(6.0));
    g.conv("model.5", c256, c512, 3, true);
    g.c2f("model.6", c512, c512, reps(6.0));
    g.conv("model.7", c512, c1024, 3, true);
    g.c2f("model.8", c1024, c1024, reps(3.0));
    g.conv("model.9.cv1", c1024, c1024 / 2, 1, true);
    g.conv("model.9.cv2", c1024 / 2 * 4, c1024, 1, true);
    g.c2f("model.12", c1024 + c512, c512, reps(3.0));
    g.c2f("model.15", c512 + c256, c256, reps(3.0));
    g.conv("model.16", c256, c256, 3, true);
    g.c2f("model.18", c256 + c512, c512, reps(3.0));
    g.conv("model.19", c512, c512, 3, true);
    g.c2f("model.21", c512 + c1024, c1024, reps(3.0));
    let c2 = (c256 / 4).max(4 * REG_MAX);
    let c3 = c256.max(classes.min(100));
    for (i, ci) in [c256, c512, c1024].into_iter().enumerate() {
        g.conv(&format!("model.22.cv2.{i}.0"), ci, c2, 3, true);
        g.conv(&format!("model.22.cv2.{i}.1"), c2, c2, 3, true);
        g.conv(&format!("model.22.cv2.{i}.2"), c2, 4 * REG_MAX, 1, false);
        g.conv(&format!("model.22.cv3.{i}.0"), ci, c3, 3, true);
        g.conv(&format!("model.22.cv3.{i}.1"), c3, c3, 3, true);
        g.conv(&format!("model.22.cv3.{i}.2"), c3, classes, 1, false);
    }
    let dfl = (0..REG_MAX).map(|i| i as f32).collect();
    g.dict.insert(
        "model.22.dfl.conv.weight".into(),
        (dfl, vec![1, REG_MAX, 1, 1]),
    );
    g.dict
}

#[cfg(test)]
mod tests {
    use super::ultralytics_name;

    #[test]
    fn candle_names_map_to_ultralytics_names() {
        for (candle, ours) in [
            ("net.b1.0.conv.weight", "model.0.conv.weight"),
            (
                "net.b2.0.bottleneck.1.cv2.bn.running_var",
                "model.2.m.1.cv2.bn.running_var",
            ),
            ("net.b5.0.cv1.conv.weight", "model.9.cv1.conv.weight"),
            ("fpn.n4.cv2.bn.bias", "model.18.cv2.bn.bias"),
            ("head.cv3.2.2.bias", "model.22.cv3.2.2.bias"),
            ("head.dfl.conv.weight", "model.22.dfl.conv.weight"),
            ("model.model.7.conv.weight", "model.7.conv.weight"),
            ("model.7.conv.weight", "model.7.conv.weight"),
        ] {
            assert_eq!(ultralytics_name(candle), ours);
        }
    }
}
