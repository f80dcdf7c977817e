//! The detector backends on this machine: the raw YOLOv8 network (n and s, at 320 and 640)
//! on the threads the machine has (`VIGIL_BENCH_THREADS` to change). The peer is ONNX Runtime
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

criterion_group!(benches, yolo);
criterion_main!(benches);
