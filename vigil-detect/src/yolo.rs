//! YOLOv8 object detection: loading weights, letterboxing, the network, and non-maximum
//! suppression, packaged as a [`Detector`].

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use candle_core::{DType, Device, Tensor};
use vigil_core::{
    BBox, Detector, DetectorInfo, Error, Image, ObjectDetection, PixelFormat, Result,
};

use crate::image::to_rgb;
use crate::nn::kernels::Act;
use crate::nn::yolov8::{self, ultralytics_name, StateDict};

/// The 80 COCO class names, in the order of the published YOLOv8 models' outputs.
pub const COCO_CLASSES: [&str; 80] = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
];

/// The published model sizes, told apart by the width of their first layer.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ModelSize {
    /// Nano (3.2 M parameters).
    N,
    /// Small (11.2 M).
    S,
    /// Medium (25.9 M).
    M,
    /// Large (43.7 M).
    L,
    /// Extra large (68.2 M).
    X,
    /// A width no published model has (a custom architecture scale).
    Custom(usize),
}

impl ModelSize {
    fn from_width(width: usize) -> ModelSize {
        match width {
            16 => ModelSize::N,
            32 => ModelSize::S,
            48 => ModelSize::M,
            64 => ModelSize::L,
            80 => ModelSize::X,
            w => ModelSize::Custom(w),
        }
    }

    /// `n`, `s`, `m`, `l`, `x`, or `w<width>`.
    pub fn name(self) -> String {
        match self {
            ModelSize::N => "n".into(),
            ModelSize::S => "s".into(),
            ModelSize::M => "m".into(),
            ModelSize::L => "l".into(),
            ModelSize::X => "x".into(),
            ModelSize::Custom(w) => format!("w{w}"),
        }
    }
}

/// A loaded YOLOv8 network with the threads it runs on.
///
/// ```no_run
/// # fn f() -> vigil_core::Result<()> {
/// use vigil_detect::YoloV8;
///
/// let model = YoloV8::load("yolov8n.safetensors".as_ref())?;
/// let input = candle_core::Tensor::zeros((1, 3, 320, 320), candle_core::DType::F32, &candle_core::Device::Cpu)
///     .map_err(|e| vigil_core::Error::internal(e.to_string()))?;
/// let raw = model.forward(&input)?; // [1, 84, 2100]
/// # Ok(())
/// # }
/// ```
pub struct YoloV8 {
    net: yolov8::YoloV8,
    pool: rayon::ThreadPool,
    threads: usize,
}

impl std::fmt::Debug for YoloV8 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YoloV8")
            .field("size", &self.size())
            .field("classes", &self.classes())
            .field("threads", &self.threads)
            .finish()
    }
}

fn candle_err(context: &str) -> impl Fn(candle_core::Error) -> Error + '_ {
    move |e| Error::invalid(format!("{context}: {e}"))
}

impl YoloV8 {
    /// Loads weights from a safetensors file, in ultralytics' names (`model.0.conv.weight`) or
    /// candle's (`net.b1.0.conv.weight`), in f32, f16, bf16 or f64; the size (n to x) and the
    /// class count come from the tensors' shapes. Runs on as many threads as the machine has.
    pub fn load(path: &Path) -> Result<YoloV8> {
        let tensors = candle_core::safetensors::load(path, &Device::Cpu)
            .map_err(candle_err(&format!("cannot read {}", path.display())))?;
        YoloV8::from_tensors(&tensors)
    }

    /// A model with the architecture of a published size (`'n'`, `'s'`, `'m'`, `'l'`, `'x'`)
    /// and seeded random weights: for tests and benchmarks of speed and shapes, where real
    /// weights cannot be downloaded. Its detections mean nothing.
    pub fn random(size: char, classes: usize, seed: u64) -> Result<YoloV8> {
        let scale = yolov8::scale(size).ok_or_else(|| {
            Error::invalid(format!("unknown model size `{size}` (n, s, m, l or x)"))
        })?;
        YoloV8::from_state_dict(&yolov8::random_state_dict(scale, classes, seed))
    }

    /// Builds the model from tensors already in memory (see [`YoloV8::load`] for the names).
    pub fn from_tensors(tensors: &HashMap<String, Tensor>) -> Result<YoloV8> {
        let mut dict = StateDict::new();
        for (name, t) in tensors {
            if !t.dtype().is_float() {
                continue; // batch norm's num_batches_tracked
            }
            let values = t
                .to_dtype(DType::F32)
                .and_then(|t| t.flatten_all())
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(candle_err(name))?;
            dict.insert(ultralytics_name(name), (values, t.dims().to_vec()));
        }
        YoloV8::from_state_dict(&dict)
    }

    fn from_state_dict(dict: &StateDict) -> Result<YoloV8> {
        let net = yolov8::YoloV8::from_state_dict(dict)?;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut model = YoloV8 {
            net,
            pool: build_pool(1)?,
            threads: 1,
        };
        model.set_threads(threads)?;
        Ok(model)
    }

    /// Runs inference on `threads` threads from now on.
    pub fn set_threads(&mut self, threads: usize) -> Result<()> {
        let threads = threads.max(1);
        self.pool = build_pool(threads)?;
        self.threads = threads;
        Ok(())
    }

    /// Threads inference runs on.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The model's size.
    pub fn size(&self) -> ModelSize {
        ModelSize::from_width(self.net.base_width)
    }

    /// Number of classes it scores.
    pub fn classes(&self) -> usize {
        self.net.classes
    }

    /// Runs the raw network: `input` is `[b, 3, h, w]` f32 RGB in 0..1 with `h` and `w`
    /// multiples of 32; the result is `[b, 4 + classes, anchors]`: box centre x, y, width and
    /// height in input pixels, then class probabilities, before non-maximum suppression
    /// (the output of ultralytics' model in eval mode).
    pub fn forward(&self, input: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = input.dims4().map_err(candle_err("input"))?;
        if c != 3 || h == 0 || w == 0 || !h.is_multiple_of(32) || !w.is_multiple_of(32) {
            return Err(Error::invalid(format!(
                "input has shape [{b}, {c}, {h}, {w}]; expected [batch, 3, h, w] with h and w multiples of 32"
            )));
        }
        let input = input
            .to_dtype(DType::F32)
            .and_then(|t| t.contiguous())
            .map_err(candle_err("input"))?;
        let mut act = Act::scratch(b, h, w, 3);
        {
            let (storage, layout) = input.storage_and_layout();
            let nchw = match (&*storage, layout.contiguous_offsets()) {
                (candle_core::Storage::Cpu(cpu), Some((start, end))) => {
                    &cpu.as_slice::<f32>().map_err(candle_err("input"))?[start..end]
                }
                _ => return Err(Error::invalid("the input tensor is not on the CPU")),
            };
            // NCHW to NHWC, one picture and one row at a time.
            let hw = h * w;
            for (pic, out) in nchw
                .chunks_exact(3 * hw)
                .zip(act.data.chunks_exact_mut(3 * hw))
            {
                let (r, rest) = pic.split_at(hw);
                let (g, bl) = rest.split_at(hw);
                for (((px, &r), &g), &bl) in out.chunks_exact_mut(3).zip(r).zip(g).zip(bl) {
                    px.copy_from_slice(&[r, g, bl]);
                }
            }
        }
        let out = self.forward_nhwc(&mut act);
        let n = yolov8::YoloV8::anchors(h, w);
        Tensor::from_vec(out, (b, 4 + self.classes(), n), &Device::Cpu)
            .map_err(candle_err("output"))
    }

    fn forward_nhwc(&self, act: &mut Act) -> Vec<f32> {
        let threads = self.threads;
        self.pool.install(|| self.net.forward(act, threads))
    }
}

fn build_pool(threads: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("vigil-yolo-{i}"))
        .build()
        .map_err(|e| Error::internal(format!("cannot start the inference threads: {e}")))
}

/// Reads `input` (`[1, 3, H, W]` f32) from the safetensors file `input_path`, runs the raw
/// network of `model_path` on it and writes the head output under `output` to `output_path`:
/// what `vigil model run` does, so anyone can compare a model with another implementation.
pub fn run_safetensors(model_path: &Path, input_path: &Path, output_path: &Path) -> Result<YoloV8> {
    let model = YoloV8::load(model_path)?;
    let inputs = candle_core::safetensors::load(input_path, &Device::Cpu)
        .map_err(candle_err(&format!("cannot read {}", input_path.display())))?;
    let input = inputs.get("input").ok_or_else(|| {
        Error::invalid(format!(
            "{} has no tensor named `input`",
            input_path.display()
        ))
    })?;
    let output = model.forward(input)?;
    let out = HashMap::from([("output".to_owned(), output)]);
    candle_core::safetensors::save(&out, output_path)
        .map_err(|e| Error::internal(format!("cannot write {}: {e}", output_path.display())))?;
    Ok(model)
}

/// How an image was fitted into the square network input.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Letterbox {
    /// Scale from image pixels to input pixels.
    pub scale: f32,
    /// Padding on the left, in input pixels.
    pub left: u32,
    /// Padding on the top.
    pub top: u32,
    /// Size of the scaled image inside the input.
    pub width: u32,
    /// Height of the scaled image inside the input.
    pub height: u32,
}

impl Letterbox {
    /// The geometry ultralytics' `LetterBox(auto=False)` uses for an `w × h` image in a
    /// `size × size` input: scale to fit, centre, pad with grey.
    pub fn fit(w: u32, h: u32, size: u32) -> Letterbox {
        let r = (f64::from(size) / f64::from(h)).min(f64::from(size) / f64::from(w));
        let nw = (f64::from(w) * r).round_ties_even() as u32;
        let nh = (f64::from(h) * r).round_ties_even() as u32;
        let dw = f64::from(size - nw.min(size)) / 2.0;
        let dh = f64::from(size - nh.min(size)) / 2.0;
        Letterbox {
            scale: r as f32,
            left: (dw - 0.1).round_ties_even() as u32,
            top: (dh - 0.1).round_ties_even() as u32,
            width: nw,
            height: nh,
        }
    }

    /// Maps a box in input pixels back to normalised image coordinates, clipped to the image.
    pub fn unmap(&self, (x1, y1, x2, y2): (f32, f32, f32, f32), w: u32, h: u32) -> BBox {
        let fx = |x: f32| ((x - self.left as f32) / self.scale / w as f32).clamp(0.0, 1.0);
        let fy = |y: f32| ((y - self.top as f32) / self.scale / h as f32).clamp(0.0, 1.0);
        BBox {
            x1: fx(x1),
            y1: fy(y1),
            x2: fx(x2),
            y2: fy(y2),
        }
    }
}

/// Letterboxes a packed RGB image into `size × size` RGB bytes, scaling bilinearly with
/// half-pixel centres (OpenCV's `INTER_LINEAR` geometry) and padding with 114.
pub fn letterbox_rgb(rgb: &[u8], w: u32, h: u32, size: u32) -> (Vec<u8>, Letterbox) {
    let lb = Letterbox::fit(w, h, size);
    let s = size as usize;
    let mut out = vec![114u8; s * s * 3];
    let (w, h) = (w as usize, h as usize);
    let (nw, nh) = (lb.width as usize, lb.height as usize);
    let sx = w as f64 / nw as f64;
    let sy = h as f64 / nh as f64;
    // Source columns and weights, computed once per output column.
    let cols: Vec<(usize, usize, f32)> = (0..nw)
        .map(|x| {
            let f = ((x as f64 + 0.5) * sx - 0.5).max(0.0);
            let x0 = (f.floor() as usize).min(w - 1);
            let x1 = (x0 + 1).min(w - 1);
            (x0, x1, (f - x0 as f64).min(1.0) as f32)
        })
        .collect();
    for y in 0..nh {
        let f = ((y as f64 + 0.5) * sy - 0.5).max(0.0);
        let y0 = (f.floor() as usize).min(h - 1);
        let y1 = (y0 + 1).min(h - 1);
        let fy = (f - y0 as f64).min(1.0) as f32;
        let row = (y + lb.top as usize) * s + lb.left as usize;
        for (x, &(x0, x1, fx)) in cols.iter().enumerate() {
            for c in 0..3 {
                let p = |yy: usize, xx: usize| f32::from(rgb[(yy * w + xx) * 3 + c]);
                let top = p(y0, x0) + (p(y0, x1) - p(y0, x0)) * fx;
                let bottom = p(y1, x0) + (p(y1, x1) - p(y1, x0)) * fx;
                out[(row + x) * 3 + c] =
                    (top + (bottom - top) * fy).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    (out, lb)
}

/// One detection in input pixels, before it is mapped back to the image.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct RawDetection {
    /// Left, top, right, bottom in input pixels.
    pub xyxy: [f32; 4],
    /// Class probability.
    pub score: f32,
    /// Class index.
    pub class: usize,
}

/// Non-maximum suppression over one image's raw output (`[4 + nc, n]` row-major, as
/// [`YoloV8::forward`] gives): each anchor keeps its best class, anchors scoring above
/// `conf` are taken best first, and a box is dropped when it overlaps a kept box of the same
/// class by more than `iou`. At most `max_det` boxes are returned. (ultralytics'
/// `non_max_suppression` with its defaults, class by class.)
pub fn nms(raw: &[f32], classes: usize, conf: f32, iou: f32, max_det: usize) -> Vec<RawDetection> {
    let rows = 4 + classes;
    let n = raw.len() / rows.max(1);
    let mut cands: Vec<RawDetection> = (0..n)
        .filter_map(|i| {
            let (class, score) = (0..classes).map(|k| (k, raw[(4 + k) * n + i])).fold(
                (0, f32::NEG_INFINITY),
                |best, c| if c.1 > best.1 { c } else { best },
            );
            (score > conf).then(|| {
                let (cx, cy, w, h) = (raw[i], raw[n + i], raw[2 * n + i], raw[3 * n + i]);
                RawDetection {
                    xyxy: [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0],
                    score,
                    class,
                }
            })
        })
        .collect();
    cands.sort_by(|a, b| b.score.total_cmp(&a.score));
    cands.truncate(30_000);
    let mut kept: Vec<RawDetection> = Vec::new();
    for c in cands {
        if kept.len() >= max_det {
            break;
        }
        if kept
            .iter()
            .all(|k| k.class != c.class || box_iou(&k.xyxy, &c.xyxy) <= iou)
        {
            kept.push(c);
        }
    }
    kept
}

/// Intersection over union of two `[x1, y1, x2, y2]` boxes.
pub fn box_iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area = |r: &[f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

/// Settings of a [`YoloDetector`].
#[derive(Clone, Debug)]
pub struct YoloOptions {
    /// Square input size (a multiple of 32): 320 is fast, 640 finds smaller objects.
    pub input_size: u32,
    /// Minimum class probability to report.
    pub min_score: f32,
    /// Overlap above which a weaker box of the same class is suppressed.
    pub iou: f32,
    /// Class names; COCO's 80 when `None` and the model has 80 classes.
    pub labels: Option<Vec<String>>,
}

impl Default for YoloOptions {
    fn default() -> Self {
        YoloOptions {
            input_size: 320,
            min_score: 0.25,
            iou: 0.7,
            labels: None,
        }
    }
}

/// YOLOv8 as a [`Detector`]: letterboxes each picture, runs the network and suppresses
/// overlapping boxes.
#[derive(Debug, Clone)]
pub struct YoloDetector {
    model: Arc<YoloV8>,
    options: YoloOptions,
    labels: Vec<String>,
    stats: Arc<crate::registry::DetectorStats>,
}

impl YoloDetector {
    /// Wraps a loaded model.
    pub fn new(model: Arc<YoloV8>, options: YoloOptions) -> Result<YoloDetector> {
        if options.input_size == 0
            || !options.input_size.is_multiple_of(32)
            || options.input_size > 4096
        {
            return Err(Error::invalid(format!(
                "input size {} is not a multiple of 32 between 32 and 4096",
                options.input_size
            )));
        }
        let labels = match &options.labels {
            Some(l) if l.len() == model.classes() => l.clone(),
            Some(l) => {
                return Err(Error::invalid(format!(
                    "{} labels given for a model with {} classes",
                    l.len(),
                    model.classes()
                )))
            }
            None if model.classes() == COCO_CLASSES.len() => {
                COCO_CLASSES.iter().map(|s| (*s).to_owned()).collect()
            }
            None => (0..model.classes()).map(|i| format!("class{i}")).collect(),
        };
        Ok(YoloDetector {
            model,
            options,
            labels,
            stats: Arc::default(),
        })
    }

    /// The model it runs.
    pub fn model(&self) -> &Arc<YoloV8> {
        &self.model
    }

    /// Inference time and throughput so far.
    pub fn stats(&self) -> &Arc<crate::registry::DetectorStats> {
        &self.stats
    }

    /// Detects on several pictures in one batch (all letterboxed to the same input size).
    pub fn detect_batch(&self, images: &[&Image]) -> Result<Vec<Vec<ObjectDetection>>> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let started = Instant::now();
        let size = self.options.input_size;
        let s = size as usize;
        let mut act = Act::zeros(images.len(), s, s, 3);
        let mut boxes = Vec::with_capacity(images.len());
        for (i, image) in images.iter().enumerate() {
            let rgb;
            let pixels: &[u8] = match image.format {
                PixelFormat::Rgb8 => &image.data,
                _ => {
                    rgb = to_rgb(image)?;
                    &rgb
                }
            };
            let (bytes, lb) = letterbox_rgb(pixels, image.width, image.height, size);
            for (d, &v) in act.data[i * s * s * 3..(i + 1) * s * s * 3]
                .iter_mut()
                .zip(&bytes)
            {
                *d = f32::from(v) / 255.0;
            }
            boxes.push(lb);
        }
        let out = self.model.forward_nhwc(&mut act);
        let nc = self.model.classes();
        let per = out.len() / images.len();
        let mut result = Vec::with_capacity(images.len());
        let mut found = 0;
        for (i, image) in images.iter().enumerate() {
            let dets = nms(
                &out[i * per..(i + 1) * per],
                nc,
                self.options.min_score,
                self.options.iou,
                300,
            );
            found += dets.len();
            result.push(
                dets.into_iter()
                    .map(|d| ObjectDetection {
                        label: self.labels[d.class].clone(),
                        score: d.score,
                        bbox: boxes[i].unmap(
                            (d.xyxy[0], d.xyxy[1], d.xyxy[2], d.xyxy[3]),
                            image.width,
                            image.height,
                        ),
                    })
                    .collect(),
            );
        }
        self.stats.record(started.elapsed(), images.len(), found);
        Ok(result)
    }
}

#[async_trait]
impl Detector for YoloDetector {
    fn info(&self) -> DetectorInfo {
        DetectorInfo {
            name: format!(
                "yolov8{} (vigil kernels on candle tensors, cpu)",
                self.model.size().name()
            ),
            labels: self.labels.clone(),
            input_size: self.options.input_size,
        }
    }

    async fn detect(&self, image: Arc<Image>) -> Result<Vec<ObjectDetection>> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.detect_batch(&[&image]))
            .await
            .map_err(|e| Error::internal(format!("detector task failed: {e}")))?
            .map(|mut v| v.pop().unwrap_or_default())
    }

    async fn detect_many(&self, images: Vec<Arc<Image>>) -> Result<Vec<Vec<ObjectDetection>>> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&Image> = images.iter().map(|i| i.as_ref()).collect();
            this.detect_batch(&refs)
        })
        .await
        .map_err(|e| Error::internal(format!("detector task failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letterbox_geometry_follows_ultralytics() {
        // 640x480 into 320: r = 0.5, 320x240, 40 px top and bottom.
        let lb = Letterbox::fit(640, 480, 320);
        assert_eq!((lb.width, lb.height, lb.left, lb.top), (320, 240, 0, 40));
        // An odd remainder: the extra pixel goes to the bottom.
        let lb = Letterbox::fit(270, 203, 320);
        assert_eq!((lb.width, lb.height), (320, 241));
        assert_eq!(lb.top, 39);
        let b = lb.unmap((0.0, 39.0, 320.0, 280.0), 270, 203);
        assert!((b.x2 - 1.0).abs() < 1e-6 && b.y1.abs() < 1e-6 && (b.y2 - 1.0).abs() < 1e-2);
    }

    #[test]
    fn nms_keeps_the_best_box_per_class() {
        // Three anchors, two classes: anchors 0 and 1 overlap (class 0), anchor 2 is class 1.
        let n = 3;
        let mut raw = vec![0f32; 6 * n];
        let boxes = [
            (10.0, 10.0, 10.0, 10.0),
            (11.0, 10.0, 10.0, 10.0),
            (10.0, 10.0, 10.0, 10.0),
        ];
        for (i, b) in boxes.iter().enumerate() {
            raw[i] = b.0;
            raw[n + i] = b.1;
            raw[2 * n + i] = b.2;
            raw[3 * n + i] = b.3;
        }
        raw[4 * n] = 0.9;
        raw[4 * n + 1] = 0.8;
        raw[5 * n + 2] = 0.7;
        let kept = nms(&raw, 2, 0.25, 0.7, 300);
        assert_eq!(kept.len(), 2);
        assert_eq!((kept[0].class, kept[0].score), (0, 0.9));
        assert_eq!((kept[1].class, kept[1].score), (1, 0.7));
        assert_eq!(nms(&raw, 2, 0.95, 0.7, 300), vec![]);
    }
}
