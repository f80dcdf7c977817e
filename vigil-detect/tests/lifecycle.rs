//! The whole analysis from encoded frames to stored events: an H.264 file of a grey scene in
//! which a white square crosses the frame and leaves, decoded at the detect rate, with motion
//! as the detector, tracked, and turned into one event with a snapshot, in a real LMDB store.

use std::process::Command;
use std::sync::Arc;

use vigil_core::h264::AccessUnits;
use vigil_core::{Batch, CameraId, EventFilter, IdGenerator, Query, Store, Timestamp, VideoFrame};
use vigil_detect::{
    Analyzer, AnalyzerOptions, DecodeOptions, DetectMode, MotionOptions, TrackerOptions,
    YoloDetector, YoloOptions, YoloV8,
};
use vigil_store::LmdbStore;

/// 12 s at 10 fps: 3 s still, a square crossing left to right in 5 s, 4 s still again.
fn crossing_square(dir: &std::path::Path) -> std::path::PathBuf {
    let out = dir.join("crossing.h264");
    let st = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "color=c=0x505050:s=640x360:r=10:d=12",
        ])
        .args(["-f", "lavfi", "-i", "color=c=white:s=60x90:r=10:d=12"])
        .args([
            "-filter_complex",
            "[0][1]overlay=x='if(between(t,3,8),(t-3)*140-60,-100)':y=150",
            "-c:v",
            "libx264",
            "-bf",
            "0",
            "-g",
            "20",
            "-pix_fmt",
            "yuv420p",
        ])
        .arg(&out)
        .status()
        .expect("ffmpeg is installed (bash .ci/run installs it)");
    assert!(st.success());
    out
}

const START: Timestamp = Timestamp(1_700_000_000_000_000);

fn options(mode: DetectMode) -> AnalyzerOptions {
    AnalyzerOptions {
        decode: DecodeOptions {
            width: Some(320),
            height: Some(180),
            fps: Some(5.0),
        },
        motion: MotionOptions::default(),
        mode,
        labels: Vec::new(),
        filters: Vec::new(),
        tracker: TrackerOptions::default(),
    }
}

/// Feeds the video through an analyser into the store; returns (pictures analysed, pictures
/// with motion).
async fn analyse(
    dir: &std::path::Path,
    store: &LmdbStore,
    options: AnalyzerOptions,
) -> (usize, usize) {
    let video = crossing_square(dir);
    let ids = Arc::new(IdGenerator::new(0));
    let camera = CameraId::new("yard").unwrap();
    let mut analyzer = Analyzer::new(camera, dir, ids, options).unwrap();
    let start = START;
    let aus = AccessUnits::default()
        .split(&std::fs::read(&video).unwrap())
        .unwrap();
    let mut analysed = 0;
    let mut moving_frames = 0;
    for (i, au) in aus.into_iter().enumerate() {
        let frame = VideoFrame {
            pts_90k: i as i64 * 9_000,
            time: Timestamp(start.0 + i as i64 * 100_000),
            is_key: au.is_key,
            data: Arc::from(au.data),
            new_params: (i == 0).then(|| Arc::new(au.params)),
        };
        if let Some(a) = analyzer.push(&frame).await.unwrap() {
            analysed += 1;
            moving_frames += usize::from(!a.motion.boxes.is_empty());
            if !a.mutations.is_empty() {
                store
                    .apply(Batch {
                        mutations: a.mutations,
                    })
                    .await
                    .unwrap();
            }
        }
    }
    let last = Timestamp(start.0 + 12_000_000);
    store
        .apply(Batch {
            mutations: analyzer.finish(last).unwrap(),
        })
        .await
        .unwrap();
    (analysed, moving_frames)
}

#[tokio::test]
async fn a_square_crossing_the_frame_becomes_one_event_with_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let store = LmdbStore::open(&dir.path().join("db"), Default::default()).unwrap();
    let (analysed, moving_frames) = analyse(dir.path(), &store, options(DetectMode::Motion)).await;
    let camera = CameraId::new("yard").unwrap();
    let start = START;
    assert_eq!(analysed, 60, "5 fps of a 10 fps stream for 12 s");
    assert!(
        (15..=35).contains(&moving_frames),
        "{moving_frames} frames with motion"
    );

    let events = store
        .events(&Query::new(EventFilter::default()))
        .await
        .unwrap()
        .items;
    assert_eq!(events.len(), 1, "{events:#?}");
    let e = &events[0];
    assert_eq!(e.camera, camera);
    assert_eq!(e.label, "motion");
    // The square moves from 3 s to 8 s; the event starts and ends within that (plus the
    // frames the tracker waits before giving an object up).
    let secs = |t: Timestamp| (t.0 - start.0) as f64 / 1e6;
    let end = e.end_time.expect("ended when the square left");
    assert!(
        (2.9..4.5).contains(&secs(e.start_time)),
        "start {}",
        secs(e.start_time)
    );
    assert!((6.5..10.0).contains(&secs(end)), "end {}", secs(end));
    assert!(e.has_snapshot && e.detection_count >= 5, "{e:#?}");
    let best = e.best.as_ref().unwrap();
    for path in [
        best.snapshot_path.as_ref().unwrap(),
        best.thumbnail_path.as_ref().unwrap(),
    ] {
        let jpeg = std::fs::read(dir.path().join(path)).unwrap();
        assert_eq!(&jpeg[..2], &[0xff, 0xd8], "{path} is a JPEG");
    }
    // The best box is not cut by the frame edge and is about the square's size (60x90 of 640x360).
    let b = best.bbox;
    assert!(b.x1 > 0.01 && b.x2 < 0.99, "{b:?}");
    assert!((0.2..0.5).contains(&(b.y2 - b.y1)), "{b:?}");
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=width,height",
            "-of",
            "csv=p=0",
        ])
        .arg(dir.path().join(best.thumbnail_path.as_ref().unwrap()))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&probe.stdout).trim(), "175,175");
}

/// The same scene through YOLOv8 on regions around the motion, with the seeded-random
/// reference weights: their detections mean nothing, but they must flow through regions,
/// batching, mapping, tracking and events like real ones, and the model must only run while
/// something moves or is followed.
#[tokio::test]
async fn yolo_on_motion_regions_runs_only_when_needed_and_stores_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = LmdbStore::open(&dir.path().join("db"), Default::default()).unwrap();
    let weights = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/yolov8/yolov8n-random.safetensors");
    let model = Arc::new(YoloV8::load(&weights).unwrap());
    let detector = YoloDetector::new(
        model,
        YoloOptions {
            input_size: 160,
            min_score: 0.3,
            ..Default::default()
        },
    )
    .unwrap();
    let stats = detector.stats().clone();
    // Random weights score low: let their weaker detections count as real objects.
    let mut options = options(DetectMode::Regions(Arc::new(detector)));
    options.tracker.default_threshold = 0.3;
    let (analysed, moving_frames) = analyse(dir.path(), &store, options).await;
    assert_eq!(analysed, 60);
    let figures = stats.figures();
    assert!(figures.runs > 0, "the detector never ran");
    // Before the square appears nothing moves and nothing is followed: the first 3 s (15
    // pictures) cost no inference at all.
    assert!(
        figures.runs as usize <= analysed - 14,
        "{figures:?} for {moving_frames} moving pictures"
    );
    assert!(figures.inference_ms > 0.0);
    let events = store
        .events(&Query::new(EventFilter::default()))
        .await
        .unwrap()
        .items;
    for e in &events {
        assert!(
            vigil_detect::yolo::COCO_CLASSES.contains(&e.label.as_str()),
            "{}",
            e.label
        );
        assert!(e.end_time.is_some() && e.has_snapshot, "{e:#?}");
        let snapshot = e
            .best
            .as_ref()
            .and_then(|b| b.snapshot_path.clone())
            .unwrap();
        assert!(dir.path().join(snapshot).exists());
    }
    eprintln!(
        "{} events from {} detector runs",
        events.len(),
        figures.runs
    );
}
