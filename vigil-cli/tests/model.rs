//! `vigil model run`: the raw network from the command line, checked against the reference
//! outputs the YOLOv8 parity fixtures hold.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use candle_core::{DType, Device, Tensor};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../vigil-detect/tests/fixtures/yolov8")
        .join(name)
}

#[test]
fn model_run_writes_the_raw_head_output() {
    let dir = tempfile::tempdir().unwrap();
    let parity =
        candle_core::safetensors::load(fixture("parity.safetensors"), &Device::Cpu).unwrap();
    let input = (parity["images"]
        .narrow(0, 0, 1)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
        / 255.0)
        .unwrap();
    let input_path = dir.path().join("in.safetensors");
    candle_core::safetensors::save(&HashMap::from([("input".to_owned(), input)]), &input_path)
        .unwrap();
    let output_path = dir.path().join("out.safetensors");
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["model", "run", "--model"])
        .arg(fixture("yolov8n-random.safetensors"))
        .arg("--input")
        .arg(&input_path)
        .arg("--output")
        .arg(&output_path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("yolov8n with 80 classes"), "{stderr}");
    let got = candle_core::safetensors::load(&output_path, &Device::Cpu).unwrap();
    let got: &Tensor = &got["output"];
    assert_eq!(got.dims(), &[1, 84, 2100]);
    let want = parity["output"].narrow(0, 0, 1).unwrap();
    let diff = (got - want).unwrap().abs().unwrap();
    let boxes = diff
        .narrow(1, 0, 4)
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    let scores = diff
        .narrow(1, 4, 80)
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(
        boxes < 0.1 && scores < 5e-4,
        "boxes {boxes} px, scores {scores}"
    );
}

#[test]
fn model_run_names_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let input_path = dir.path().join("in.safetensors");
    let t = Tensor::zeros((1, 3, 64, 64), DType::F32, &Device::Cpu).unwrap();
    candle_core::safetensors::save(&HashMap::from([("pixels".to_owned(), t)]), &input_path)
        .unwrap();
    let run = |model: &Path| {
        Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(["model", "run", "--model"])
            .arg(model)
            .arg("--input")
            .arg(&input_path)
            .arg("--output")
            .arg(dir.path().join("out.safetensors"))
            .output()
            .unwrap()
    };
    let out = run(&fixture("yolov8n-random.safetensors"));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no tensor named `input`"), "{stderr}");
    let out = run(&dir.path().join("missing.safetensors"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.safetensors"));
}
