//! The detector backends on this machine: the raw YOLOv8 network (n and s, at 320 and 640)
//! on the threads the machine has (`VIGIL_BENCH_THREADS` to change); motion per frame;
//! H.264 decode per 1080p frame (peer: `ffmpeg -threads 1 -i F -f null -`, timed by the
//! bench itself in the same run); a tracker update with 50 objects. The peer is ONNX Runtime
//! on the ONNX export of the same architecture, timed by `benches/yolov8_ort.py` in the same
//! session; `docs/benchmarks.md` has both.
//!
//! `cargo bench -p vigil-benches --bench detect`. With `VIGIL_BENCH_WEIGHTS=DIR`, the weights
//! are read from `DIR/yolov8{n,s}.safetensors` (the files the ONNX models were exported from);
//! otherwise seeded random weights of the same architecture are used, which cost the same.

use std::time::Duration;

use candle_core::{DType, Device, Tensor};
use criterion::{criterion_group, criterion_main, Criterion};
use vigil_detect::YoloV8;

fn threads() -> usize {
    std::env::var("VIGIL_BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn model(size: char) -> YoloV8 {
    let mut model = match std::env::var_os("VIGIL_BENCH_WEIGHTS") {
        Some(dir) => {
            YoloV8::load(&std::path::Path::new(&dir).join(format!("yolov8{size}.safetensors")))
                .expect("weights")
        }
        None => YoloV8::random(size, 80, 1).expect("model"),
    };
    model.set_threads(threads()).expect("threads");
    model
}

fn yolo(c: &mut Criterion) {
    let mut group = c.benchmark_group("yolov8");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(10));
    for size in ['n', 's'] {
        let model = model(size);
        for px in [320usize, 640] {
            let input = Tensor::rand(0f32, 1f32, (1, 3, px, px), &Device::Cpu)
                .and_then(|t| t.to_dtype(DType::F32))
                .expect("input");
            group.bench_function(format!("{size}-{px}-t{}", model.threads()), |b| {
                b.iter(|| model.forward(&input).expect("forward"))
            });
        }
    }
    group.finish();
}

fn motion(c: &mut Criterion) {
    use vigil_core::{Image, PixelFormat, Timestamp};
    use vigil_detect::{MotionDetector, MotionOptions};
    // 640x360 detect frames with a square moving over a textured background.
    let frames: Vec<Image> = (0..16)
        .map(|i| {
            let mut y = vec![0u8; 640 * 360 * 3 / 2];
            for (p, v) in y[..640 * 360].iter_mut().enumerate() {
                let (px, py) = (p % 640, p / 640);
                *v = ((px * 7 + py * 13) % 97 + 60) as u8;
                if (100 + i * 20..160 + i * 20).contains(&px) && (150..210).contains(&py) {
                    *v = 230;
                }
            }
            Image {
                width: 640,
                height: 360,
                format: PixelFormat::I420,
                data: y.into(),
                time: Timestamp(0),
            }
        })
        .collect();
    let mut m = MotionDetector::new(MotionOptions::default()).expect("motion");
    let mut i = 0;
    c.bench_function("motion/640x360", |b| {
        b.iter(|| {
            i = (i + 1) % frames.len();
            m.detect(&frames[i]).expect("motion")
        })
    });
}

fn decode(c: &mut Criterion) {
    use std::sync::Arc;
    use vigil_core::h264::AccessUnits;
    use vigil_core::{Timestamp, VideoFrame};
    use vigil_detect::{DecodeOptions, FrameDecoder};
    let dir = tempfile::tempdir().expect("tempdir");
    let file = vigil_core::testing::make_h264(dir.path(), 1920, 1080, 30, 4, 30);
    let aus = AccessUnits::default()
        .split(&std::fs::read(&file).expect("read"))
        .expect("split");
    let frames: Vec<VideoFrame> = aus
        .into_iter()
        .enumerate()
        .map(|(i, au)| VideoFrame {
            pts_90k: i as i64 * 3000,
            time: Timestamp(i as i64 * 33_333),
            is_key: au.is_key,
            data: Arc::from(au.data),
            new_params: (i == 0).then(|| Arc::new(au.params)),
        })
        .collect();
    let n = frames.len() as f64;
    let mut group = c.benchmark_group("decode");
    group.sample_size(10);
    group.bench_function("1080p-per-frame-all-120", |b| {
        b.iter(|| {
            let mut d = FrameDecoder::new(DecodeOptions {
                fps: None,
                ..Default::default()
            })
            .expect("decoder");
            for f in &frames {
                d.push(f).expect("decode");
            }
        })
    });
    group.finish();
    // The peer, on the same file: ffmpeg's decoder on one thread, per frame.
    let started = std::time::Instant::now();
    let runs = 5;
    for _ in 0..runs {
        let st = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-threads", "1", "-i"])
            .arg(&file)
            .args(["-f", "null", "-"])
            .status()
            .expect("ffmpeg");
        assert!(st.success());
    }
    let per_frame = started.elapsed().as_secs_f64() * 1e3 / (runs as f64 * n);
    println!("peer: ffmpeg -threads 1 decode of the same 1080p file: {per_frame:.2} ms per frame (process start included)");
}

fn tracker(c: &mut Criterion) {
    use vigil_core::{BBox, ObjectDetection, Timestamp, Tracker};
    use vigil_detect::{ObjectTracker, TrackerOptions};
    let dets = |f: i64| -> Vec<ObjectDetection> {
        (0..50)
            .map(|i| {
                let x = 0.02 + (i % 10) as f32 * 0.095 + f as f32 * 0.001;
                let y = 0.05 + (i / 10) as f32 * 0.18;
                ObjectDetection {
                    label: "person".into(),
                    score: 0.8,
                    bbox: BBox {
                        x1: x,
                        y1: y,
                        x2: x + 0.05,
                        y2: y + 0.12,
                    },
                }
            })
            .collect()
    };
    let mut t = ObjectTracker::new(TrackerOptions::default());
    let mut f = 0i64;
    t.update(Timestamp(0), &dets(0));
    c.bench_function("tracker/update-50-objects", |b| {
        b.iter(|| {
            f += 1;
            t.update(Timestamp(f * 200_000), &dets(f % 20))
        })
    });
}

criterion_group!(benches, yolo, motion, decode, tracker);
criterion_main!(benches);
