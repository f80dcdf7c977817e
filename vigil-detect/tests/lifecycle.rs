//! The whole analysis from encoded frames to stored events: an H.264 file of a grey scene in
//! which a white square crosses the frame and leaves, decoded at the detect rate, with motion
//! as the detector (or YOLOv8 with the seeded-random fixture weights), tracked, and turned into
//! events with snapshots, in a real LMDB store; then the same file as a camera of a running
//! `Nvr` in event mode, ending in event recordings and the event's clip, checked with ffprobe.

use std::process::Command;
use std::sync::Arc;

use vigil_core::camera::FileCamera;
use vigil_core::h264::AccessUnits;
use vigil_core::pipeline::{write_event_clip, CameraFactory, Nvr, NvrOptions};
use vigil_core::testing::{all_recordings, check_recordings_consistent, ffprobe};
use vigil_core::{
    Batch, Camera, CameraConfig, CameraId, Clocks, Detector, DetectorInfo, Event, EventFilter,
    IdGenerator, Image, Mutation, ObjectDetection, ObjectFilter, Query, RealClocks, RecordMode,
    RecordingKind, SnapshotId, Source, Store, Timestamp, VideoFrame,
};
use vigil_detect::{
    analyzer_factory, Analyzer, AnalyzerOptions, DecodeOptions, DetectMode, DetectorRegistry,
    DetectorSpec, MotionOptions, TrackerOptions, YoloDetector, YoloOptions, YoloV8,
};
use vigil_store::LmdbStore;

/// 12 s at 10 fps: 3 s still, a square crossing left to right in 5 s, 4 s still again.
fn crossing_square(dir: &std::path::Path) -> std::path::PathBuf {
    crossing_square_after(dir, 3)
}

/// `lead` s still, a square crossing left to right in 5 s, 4 s still again, at 10 fps with a
/// key frame every 2 s.
fn crossing_square_after(dir: &std::path::Path, lead: u32) -> std::path::PathBuf {
    let out = dir.join(format!("crossing-{lead}.h264"));
    let d = lead + 9;
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("color=c=0x505050:s=640x360:r=10:d={d}"))
        .args(["-f", "lavfi", "-i"])
        .arg(format!("color=c=white:s=60x90:r=10:d={d}"))
        .arg("-filter_complex")
        .arg(format!(
            "[0][1]overlay=x='if(between(t,{lead},{}),(t-{lead})*140-60,-100)':y=150",
            lead + 5
        ))
        .args([
            "-c:v", "libx264", "-bf", "0", "-g", "20", "-pix_fmt", "yuv420p",
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
        clips: true,
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

/// Starts an `Nvr` with the crossing square (after 6 s) as a file camera recording in event
/// mode (2 s pre- and post-capture), analysed with the registry's detectors (on regions, or
/// on the whole picture); returns it, its store and when it started.
async fn start_nvr(
    dir: &std::path::Path,
    registry: DetectorRegistry,
    filters: Vec<ObjectFilter>,
    regions: bool,
) -> (Nvr, Arc<dyn Store>, Timestamp) {
    let clocks = Arc::new(RealClocks::default());
    start_nvr_on(dir, registry, filters, regions, clocks, RecordMode::Events).await
}

/// [`start_nvr`] on `clocks`, recording in `mode`.
async fn start_nvr_on(
    dir: &std::path::Path,
    registry: DetectorRegistry,
    filters: Vec<ObjectFilter>,
    regions: bool,
    clocks: Arc<dyn Clocks>,
    mode: RecordMode,
) -> (Nvr, Arc<dyn Store>, Timestamp) {
    let video = crossing_square_after(dir, 6);
    let data = dir.join("data");
    let store: Arc<dyn Store> =
        Arc::new(LmdbStore::open(&data.join("db"), Default::default()).unwrap());
    let mut cfg = CameraConfig::new(
        CameraId::new("yard").unwrap(),
        Source::File {
            path: video.display().to_string(),
            fps: Some(10),
        },
        clocks.realtime(),
    );
    cfg.record.mode = mode;
    cfg.record.pre_capture_s = 2;
    cfg.record.post_capture_s = 2;
    cfg.detect.width = 320;
    cfg.detect.height = 180;
    cfg.detect.fps = 5;
    cfg.detect.labels = Vec::new();
    cfg.detect.filters = filters;
    cfg.detect.max_disappeared_s = 2;
    store
        .apply(Mutation::PutCamera(Box::new(cfg)).into())
        .await
        .unwrap();
    let c = clocks.clone();
    let cameras: CameraFactory = Arc::new(move |cfg: &CameraConfig| {
        let Source::File { path, fps } = &cfg.record_source else {
            panic!("a file camera");
        };
        Ok(Arc::new(FileCamera::new(
            cfg.id.clone(),
            std::path::Path::new(path),
            *fps,
            c.clone(),
        )) as Arc<dyn Camera>)
    });
    let options = NvrOptions {
        analyzers: Some(analyzer_factory(Arc::new(registry), regions)),
        ..NvrOptions::default()
    };
    let started = clocks.realtime();
    let nvr = Nvr::start(&data, store.clone(), clocks.clone(), cameras, options)
        .await
        .unwrap();
    (nvr, store, started)
}

/// Runs [`start_nvr`] on regions until the first event has ended and its post-capture is
/// recorded; returns the store, the first event and when the camera started.
async fn nvr_lifecycle(
    dir: &std::path::Path,
    registry: DetectorRegistry,
    filters: Vec<ObjectFilter>,
) -> (Arc<dyn Store>, Event, Timestamp) {
    let (nvr, store, started) = start_nvr(dir, registry, filters, true).await;
    // The square crosses from 6 s to 11 s of each 15 s loop; wait for an event to end, then
    // for its post-capture.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let ended = loop {
        let events = store
            .events(&Query::new(EventFilter::default()))
            .await
            .unwrap()
            .items;
        if events.iter().any(|e| e.end_time.is_some()) {
            break true;
        }
        if std::time::Instant::now() > deadline {
            break false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    nvr.stop().await;
    let mut events = store
        .events(&Query::new(EventFilter::default()))
        .await
        .unwrap()
        .items;
    assert!(ended, "no event ended within 30 s: {events:#?}");
    events.sort_by_key(|e| e.start_time);
    let first = events.remove(0);
    assert!(first.end_time.is_some(), "{first:#?}");
    let secs = (first.start_time.0 - started.0) as f64 / 1e6;
    assert!(
        (5.5..8.0).contains(&secs),
        "the first event starts {secs} s in"
    );
    (store, first, started)
}

/// Checks what event mode recorded and the clip of `event`: recordings only around events,
/// every one playable, and a clip from the key frame before the pre-capture to the end of the
/// post-capture that ffprobe accepts.
async fn check_event_footage(
    dir: &std::path::Path,
    store: &dyn Store,
    event: &Event,
    started: Timestamp,
) {
    let data = dir.join("data");
    let recs = all_recordings(store).await;
    assert!(!recs.is_empty(), "event mode recorded nothing");
    check_recordings_consistent(&data, &recs);
    assert!(
        recs.iter().all(|r| r.kind == RecordingKind::Event),
        "{recs:#?}"
    );
    let end = event.end_time.unwrap();
    let (from, to) = (event.start_time.0 - 2_000_000, end.0 + 2_000_000);
    // The recordings cover the event with its pre- and post-capture.
    let covered: i64 = recs
        .iter()
        .map(|r| (r.end_time.0.min(to) - r.start_time.0.max(from)).max(0))
        .sum();
    assert!(
        covered as f64 >= (to - from) as f64 * 0.9,
        "{covered} µs of {} recorded: {recs:#?}",
        to - from
    );
    // Segments follow each other without overlapping.
    for w in recs.windows(2) {
        assert!(w[1].start_time.0 >= w[0].end_time.0 - 1_000, "{recs:#?}");
    }
    // Not everything: the still seconds before the pre-capture are not recorded (recording
    // starts at the key frame at 4 s, before the event at 6 s).
    let lead = (recs[0].start_time.0 - started.0) as f64 / 1e6;
    assert!(lead > 3.0, "recording started {lead} s in: {recs:#?}");

    let path = dir.join("event-clip.mp4");
    let file = std::fs::File::create(&path).unwrap();
    let (info, _) = write_event_clip(store, &data, event, Timestamp(to), file)
        .await
        .unwrap();
    // The clip starts at the key frame at or before the pre-capture (a key frame every 2 s).
    assert!(
        info.start.0 <= from && info.start.0 > from - 2_100_000,
        "{info:?} from {from}"
    );
    assert!(info.end.0 >= to - 300_000, "{info:?} to {to}");
    let probe = ffprobe(&path);
    assert_eq!(probe.frames, u64::from(info.frames));
    let secs = (info.end.0 - info.start.0) as f64 / 1e6;
    assert!(
        (probe.duration - secs).abs() < 0.15,
        "{probe:?} vs {secs} s"
    );
    assert_eq!((probe.width, probe.height), (640, 360));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_camera_in_event_mode_records_the_motion_event_and_its_clip() {
    let dir = tempfile::tempdir().unwrap();
    let (store, e, started) = nvr_lifecycle(dir.path(), DetectorRegistry::new(), Vec::new()).await;
    assert_eq!(e.label, "motion");
    assert!(e.has_clip && e.has_snapshot, "{e:#?}");
    let snapshot = e
        .best
        .as_ref()
        .and_then(|b| b.snapshot_path.clone())
        .unwrap();
    assert!(dir.path().join("data").join(&snapshot).is_file());
    // The best snapshot is a snapshot record too (what snapshot retention goes by).
    let rec = store.snapshot(SnapshotId(e.id.0)).await.unwrap().unwrap();
    assert_eq!(
        (rec.event_id, rec.path.as_str()),
        (Some(e.id), snapshot.as_str())
    );
    check_event_footage(dir.path(), &*store, &e, started).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_camera_with_yolo_on_regions_records_events_and_clips() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = DetectorRegistry::new();
    let weights = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/yolov8/yolov8n-random.safetensors");
    registry
        .add(
            "cpu",
            &DetectorSpec {
                kind: "yolov8".to_owned(),
                model: Some(weights),
                input_size: Some(160),
                min_score: Some(0.3),
                labels: None,
            },
        )
        .unwrap();
    // Random weights score low: let their weaker detections count as real objects.
    let filters = vigil_detect::yolo::COCO_CLASSES
        .iter()
        .map(|l| ObjectFilter {
            min_score: 0.3,
            threshold: 0.3,
            ..ObjectFilter::new(*l)
        })
        .collect();
    let (store, e, started) = nvr_lifecycle(dir.path(), registry, filters).await;
    assert!(
        vigil_detect::yolo::COCO_CLASSES.contains(&e.label.as_str()),
        "{}",
        e.label
    );
    assert!(e.has_clip && e.has_snapshot, "{e:#?}");
    check_event_footage(dir.path(), &*store, &e, started).await;
}

/// A detector far slower than the detect rate (injected fault: each call sleeps 1.5 s).
struct Slow;

#[async_trait::async_trait]
impl Detector for Slow {
    fn info(&self) -> DetectorInfo {
        DetectorInfo {
            name: "slow".to_owned(),
            labels: vec!["person".to_owned()],
            input_size: 160,
        }
    }

    async fn detect(&self, _image: Arc<Image>) -> vigil_core::Result<Vec<ObjectDetection>> {
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        Ok(Vec::new())
    }
}

/// With a detector slower than the camera, the analysis only decodes the frames it cannot
/// keep up with (and counts them) instead of falling further and further behind: the detect
/// stream keeps its full rate, and the registry's figures show the detector's real speed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_detector_makes_the_analysis_skip_frames_not_lag() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = DetectorRegistry::new();
    registry.insert("slow", Arc::new(Slow)).unwrap();
    let (nvr, _store, _) = start_nvr(dir.path(), registry, Vec::new(), false).await;
    // The square moves from 6 s to 11 s: the detector runs on the moving pictures.
    tokio::time::sleep(std::time::Duration::from_secs(12)).await;
    let status = nvr.status().await;
    nvr.stop().await;
    let (stream, analysis) = status[0].analysis.clone().expect("the camera is analysed");
    assert!(analysis.skipped >= 20, "{analysis:?}");
    assert_eq!(analysis.errors, 0, "{analysis:?}");
    // The stream was read at the camera's pace all along (10 fps for 12 s).
    assert!(analysis.frames >= 90, "{analysis:?}");
    assert!(stream.connected && stream.fps > 8.0, "{stream:?}");
}

/// The wall clock stepped an hour forward, then two hours back, each time while an event is
/// open, the camera recording continuously: the step splits the segment and the events at the
/// next key frame, nothing recorded is lost or spans a step, no event lasts the step, the
/// analysis does not take the stepped clock for lag, and a manual event lasts its duration on
/// the monotonic clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wall_clock_steps_split_segments_and_events_and_lose_nothing() {
    use std::time::{Duration, Instant};
    use vigil_core::pipeline::ManualEvent;
    use vigil_core::testing::SteppedClocks;

    let dir = tempfile::tempdir().unwrap();
    let clocks = Arc::new(SteppedClocks::default());
    let (nvr, store, started) = start_nvr_on(
        dir.path(),
        DetectorRegistry::new(),
        Vec::new(),
        false,
        clocks.clone(),
        RecordMode::Continuous,
    )
    .await;
    let nvr = Arc::new(nvr);
    let t0 = Instant::now();
    let at = |s: f64| tokio::time::sleep_until((t0 + Duration::from_secs_f64(s)).into());
    let manual = |secs| ManualEvent {
        label: "doorbell".into(),
        sub_label: None,
        score: 1.0,
        duration: Some(Duration::from_secs(secs)),
        include_recording: true,
    };
    let yard = CameraId::new("yard").unwrap();
    // The square moves from 6 s to 11 s of each 15 s loop.
    at(7.0).await;
    let first = nvr.create_event(&yard, manual(6)).await.unwrap();
    at(7.5).await;
    clocks.step_forward(Duration::from_secs(3600));
    at(14.0).await;
    let first = store.event(first.id).await.unwrap().unwrap();
    assert_eq!(
        first.end_time.map(|e| e.0 - first.start_time.0),
        Some(6_000_000),
        "a 6 s event across a step forward lasts 6 s: {first:#?}"
    );
    at(22.0).await;
    let second = nvr.create_event(&yard, manual(4)).await.unwrap();
    at(22.5).await;
    clocks.step_back(Duration::from_secs(7200));
    at(27.5).await;
    let second = store.event(second.id).await.unwrap().unwrap();
    let end = second
        .end_time
        .expect("a 4 s event across a step back ends after 4 s");
    assert!(end >= second.start_time, "{second:#?}");
    at(31.0).await;
    let status = nvr.status().await;
    let nvr = Arc::into_inner(nvr).expect("no other owner");
    nvr.stop().await;

    // Where each part of the run is on the wall clock, with the 2 s until the next key frame
    // (which follows the step) and a second of slack.
    let s = |secs: f64| started.0 + (secs * 1e6) as i64;
    let hour = 3_600_000_000;
    let epochs = [
        (s(-1.0), s(7.5 + 3.0)),
        (s(7.5 - 1.0) + hour, s(22.5 + 3.0) + hour),
        (s(22.5 - 1.0) - hour, s(32.0) - hour),
    ];
    let epoch_of = |from: Timestamp, to: Timestamp| {
        epochs
            .iter()
            .position(|&(a, b)| a <= from.0 && from.0 <= to.0 && to.0 <= b)
    };

    let recs = all_recordings(&*store).await;
    check_recordings_consistent(&dir.path().join("data"), &recs);
    let mut by_epoch = [Vec::new(), Vec::new(), Vec::new()];
    for r in &recs {
        let e = epoch_of(r.start_time, r.end_time);
        let e = e.unwrap_or_else(|| panic!("a segment spans a step or is out of place: {r:#?}"));
        by_epoch[e].push(r);
    }
    for (i, recs) in by_epoch.iter().enumerate() {
        assert!(!recs.is_empty(), "nothing recorded in part {i}");
        for w in recs.windows(2) {
            let gap = w[1].start_time.0 - w[0].end_time.0;
            assert!(gap.abs() < 200_000, "a gap of {gap} µs in part {i}: {w:#?}");
        }
    }
    let secs: f64 = recs.iter().map(|r| r.duration_us() as f64 / 1e6).sum();
    assert!(secs > 27.0, "{secs} s recorded of 31 s");

    let events = store
        .events(&Query::new(EventFilter::default()))
        .await
        .unwrap()
        .items;
    let motion: Vec<&Event> = events.iter().filter(|e| e.label == "motion").collect();
    for e in &events {
        let end = e.end_time.unwrap_or_else(|| panic!("left open: {e:#?}"));
        assert!(end >= e.start_time, "ends before it starts: {e:#?}");
        assert!(end.0 - e.start_time.0 < 8_000_000, "lasts a step: {e:#?}");
        // A manual event lasts its duration whatever the wall clock did; a detected one ends
        // where the stream's time jumped.
        if e.label == "motion" {
            assert!(
                epoch_of(e.start_time, end).is_some(),
                "spans a step: {e:#?}"
            );
        }
    }
    // Each crossing is cut in two by its step: both steps came while the square moved.
    for (i, &(a, b)) in epochs.iter().enumerate() {
        let n = motion
            .iter()
            .filter(|e| a <= e.start_time.0 && e.start_time.0 <= b)
            .count();
        assert!(n >= 1, "no motion event in part {i}: {motion:#?}");
    }
    assert!(motion.len() >= 4, "{motion:#?}");
    let (_, analysis) = status[0].analysis.clone().expect("analysed");
    assert!(
        analysis.skipped < 10 && analysis.frames > 250,
        "the analysis took the step for lag: {analysis:?}"
    );
}
