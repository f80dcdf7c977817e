//! YOLOv8 against the reference implementation: ultralytics' own model with seeded random
//! weights, run once offline by `tests/fixtures/yolov8/generate.py` (which never runs in CI).
//! The raw network output, the non-maximum suppression and the letterbox must agree.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use vigil_detect::yolo::{letterbox_rgb, nms, Letterbox};
use vigil_detect::{ModelSize, YoloV8};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/yolov8")
        .join(name)
}

fn load(name: &str) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixture(name), &Device::Cpu).unwrap()
}

fn f32s(t: &Tensor) -> Vec<f32> {
    t.to_dtype(DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// Largest absolute difference between `got` and `want` over rows `rows` of `[b, 84, n]`.
fn max_diff(got: &[f32], want: &[f32], n: usize, rows: std::ops::Range<usize>) -> f32 {
    let mut worst = 0f32;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if rows.contains(&((i / n) % 84)) {
            worst = worst.max((g - w).abs());
        }
    }
    worst
}

#[test]
fn raw_output_matches_ultralytics() {
    let model = YoloV8::load(&fixture("yolov8n-random.safetensors")).unwrap();
    assert_eq!(model.size(), ModelSize::N);
    assert_eq!(model.classes(), 80);
    let parity = load("parity.safetensors");
    let input = (parity["images"].to_dtype(DType::F32).unwrap() / 255.0).unwrap();
    let out = model.forward(&input).unwrap();
    assert_eq!(out.dims(), &[2, 84, 2100]);
    let got = f32s(&out);
    for reference in ["output", "output_f64"] {
        let want = f32s(&parity[reference]);
        let scores = max_diff(&got, &want, 2100, 4..84);
        let boxes = max_diff(&got, &want, 2100, 0..4);
        eprintln!("against {reference}: scores within {scores:e}, boxes within {boxes:e} px");
        assert!(scores < 5e-4, "scores differ from {reference} by {scores}");
        assert!(boxes < 0.1, "boxes differ from {reference} by {boxes} px");
    }

    // The second image run alone gives the same numbers as in the batch (up to the order of
    // additions, which the blocking of the matrix products changes).
    let single = model.forward(&input.narrow(0, 1, 1).unwrap()).unwrap();
    let single = f32s(&single);
    let second = &got[84 * 2100..];
    let (scores, boxes) = (
        max_diff(&single, second, 2100, 4..84),
        max_diff(&single, second, 2100, 0..4),
    );
    assert!(
        scores < 5e-5 && boxes < 0.02,
        "alone vs in a batch: {scores}, {boxes} px"
    );

    // Non-maximum suppression keeps the boxes ultralytics keeps.
    let conf = f32s(&parity["nms_conf"])[0];
    let iou = f32s(&parity["nms_iou"])[0];
    for image in 0..2 {
        let want = parity[&format!("nms{image}")].to_vec2::<f32>().unwrap();
        let kept = nms(
            &got[image * 84 * 2100..(image + 1) * 84 * 2100],
            80,
            conf,
            iou,
            300,
        );
        assert_eq!(kept.len(), want.len(), "image {image}: box count");
        for (k, w) in kept.iter().zip(&want) {
            assert_eq!(k.class as f32, w[5], "image {image}: class order");
            assert!((k.score - w[4]).abs() < 5e-4);
            for (a, b) in k.xyxy.iter().zip(&w[..4]) {
                assert!((a - b).abs() < 0.1, "image {image}: {:?} vs {w:?}", k.xyxy);
            }
        }
    }
}

#[test]
fn candle_names_load_the_same_model() {
    let weights = load("yolov8n-random.safetensors");
    let candle_name = |n: &str| {
        let map = [
            ("model.0.", "net.b1.0."),
            ("model.1.", "net.b1.1."),
            ("model.2.", "net.b2.0."),
            ("model.3.", "net.b2.1."),
            ("model.4.", "net.b2.2."),
            ("model.5.", "net.b3.0."),
            ("model.6.", "net.b3.1."),
            ("model.7.", "net.b4.0."),
            ("model.8.", "net.b4.1."),
            ("model.9.", "net.b5.0."),
            ("model.12.", "fpn.n1."),
            ("model.15.", "fpn.n2."),
            ("model.16.", "fpn.n3."),
            ("model.18.", "fpn.n4."),
            ("model.19.", "fpn.n5."),
            ("model.21.", "fpn.n6."),
            ("model.22.", "head."),
        ];
        let (from, to) = map.iter().find(|(f, _)| n.starts_with(f)).unwrap();
        format!("{to}{}", n[from.len()..].replace("m.", "bottleneck."))
    };
    let renamed: HashMap<String, Tensor> = weights
        .iter()
        .map(|(k, v)| (candle_name(k), v.to_dtype(DType::F32).unwrap()))
        .collect();
    assert!(renamed.contains_key("net.b2.0.bottleneck.0.cv1.conv.weight"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("candle-names.safetensors");
    candle_core::safetensors::save(&renamed, &path).unwrap();
    let a = YoloV8::load(&fixture("yolov8n-random.safetensors")).unwrap();
    let b = YoloV8::load(&path).unwrap();
    let input = Tensor::rand(0f32, 1f32, (1, 3, 64, 96), &Device::Cpu).unwrap();
    assert_eq!(
        f32s(&a.forward(&input).unwrap()),
        f32s(&b.forward(&input).unwrap())
    );
}

#[test]
fn letterbox_matches_ultralytics() {
    let lb = load("letterbox.safetensors");
    for (source, want) in [
        ("source", "letterboxed"),
        ("source_tall", "letterboxed_tall"),
    ] {
        let (h, w, _) = lb[source].dims3().unwrap();
        let src: Vec<u8> = lb[source].flatten_all().unwrap().to_vec1().unwrap();
        let want: Vec<u8> = lb[want].flatten_all().unwrap().to_vec1().unwrap();
        // Channel order does not matter to a per-channel resize: BGR in, BGR out.
        let (got, geometry) = letterbox_rgb(&src, w as u32, h as u32, 320);
        let fit = Letterbox::fit(w as u32, h as u32, 320);
        assert_eq!(geometry, fit);
        let mut worst = 0;
        let mut total = 0u64;
        for (i, (g, t)) in got.iter().zip(&want).enumerate() {
            let (y, x) = ((i / 3) / 320, (i / 3) % 320);
            let inside = x >= fit.left as usize
                && x < (fit.left + fit.width) as usize
                && y >= fit.top as usize
                && y < (fit.top + fit.height) as usize;
            if !inside {
                assert_eq!((*g, *t), (114, 114), "{source}: padding at {x},{y}");
            }
            let d = g.abs_diff(*t);
            worst = worst.max(d);
            total += u64::from(d);
        }
        let mean = total as f64 / got.len() as f64;
        eprintln!("{source}: letterbox within {worst} levels, mean {mean:.3}");
        // OpenCV's bilinear resize is fixed point; ours is float: a level or two apart.
        assert!(
            worst <= 2 && mean < 0.5,
            "{source}: worst {worst}, mean {mean}"
        );
    }
}

#[test]
fn every_published_size_is_recognised_from_its_weights() {
    for (c, size) in [
        ('n', ModelSize::N),
        ('s', ModelSize::S),
        ('m', ModelSize::M),
        ('l', ModelSize::L),
        ('x', ModelSize::X),
    ] {
        let model = YoloV8::random(c, 3, 7).unwrap();
        assert_eq!(model.size(), size);
        assert_eq!(model.classes(), 3);
        let input = Tensor::zeros((1, 3, 64, 64), DType::F32, &Device::Cpu).unwrap();
        assert_eq!(model.forward(&input).unwrap().dims(), &[1, 7, 84]);
    }
}

#[test]
fn bad_inputs_and_weights_are_errors() {
    let model = YoloV8::random('n', 80, 1).unwrap();
    let odd = Tensor::zeros((1, 3, 50, 64), DType::F32, &Device::Cpu).unwrap();
    assert!(model
        .forward(&odd)
        .unwrap_err()
        .to_string()
        .contains("multiples of 32"));
    let gray = Tensor::zeros((1, 1, 64, 64), DType::F32, &Device::Cpu).unwrap();
    assert!(model.forward(&gray).is_err());

    let mut weights = load("yolov8n-random.safetensors");
    weights.remove("model.15.m.0.cv2.bn.running_var");
    let err = YoloV8::from_tensors(&weights).unwrap_err();
    assert!(
        err.to_string().contains("model.15.m.0.cv2.bn.running_var"),
        "{err}"
    );
    let mut weights = load("yolov8n-random.safetensors");
    weights.insert(
        "model.3.conv.weight".into(),
        Tensor::zeros((64, 31, 3, 3), DType::F32, &Device::Cpu).unwrap(),
    );
    let err = YoloV8::from_tensors(&weights).unwrap_err();
    assert!(err.to_string().contains("model.3.conv.weight"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, b"not a safetensors file").unwrap();
    assert!(YoloV8::load(&junk).is_err());
    assert!(YoloV8::load(&dir.path().join("missing.safetensors")).is_err());
}

/// Activations reuse the buffers of earlier passes (whatever values they hold): every layer
/// must write all of its output, so a pass gives the same result however the buffers were
/// used before, at other sizes and batch sizes too.
#[test]
fn repeated_passes_of_any_size_agree() {
    let model = YoloV8::random('n', 80, 3).unwrap();
    let input = |b: usize, s: usize, seed: f64| {
        let v: Vec<f32> = (0..b * 3 * s * s)
            .map(|i| ((i as f64 * 0.618 + seed).fract()) as f32)
            .collect();
        Tensor::from_vec(v, (b, 3, s, s), &Device::Cpu).unwrap()
    };
    let a = input(1, 96, 0.1);
    let first = f32s(&model.forward(&a).unwrap());
    for (b, s) in [(2, 128), (1, 64), (3, 96), (1, 160)] {
        model.forward(&input(b, s, 0.7)).unwrap();
        assert_eq!(
            f32s(&model.forward(&a).unwrap()),
            first,
            "after a {b}x{s} pass"
        );
    }
}
