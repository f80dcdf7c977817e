//! The recorder end to end: a file camera played at real-time pace, supervised, recorded into
//! segments in a real LMDB store, checked with ffprobe.

use std::sync::Arc;
use std::time::Duration;

use vigil_core::camera::FileCamera;
use vigil_core::pipeline::SupervisorOptions;
use vigil_core::testing::{all_recordings, check_recordings_consistent, make_h264, record};
use vigil_core::*;
use vigil_store::LmdbStore;

/// A store in `data/` beside `media`, and a file camera named "yard" playing it.
fn store_and_camera(
    media: &std::path::Path,
    fps: Option<u32>,
) -> (std::path::PathBuf, Arc<dyn Store>, Arc<dyn Camera>) {
    let data = media.parent().unwrap().join("data");
    let store: Arc<dyn Store> =
        Arc::new(LmdbStore::open(&data.join("db"), Default::default()).unwrap());
    let clocks: Arc<dyn Clocks> = Arc::new(RealClocks::default());
    let id = CameraId::new("yard").unwrap();
    let camera: Arc<dyn Camera> = Arc::new(FileCamera::new(id, media, fps, clocks));
    (data, store, camera)
}

/// Records `media` from a file camera named "yard" for `secs` seconds, 2 s segments.
async fn record_file(
    media: &std::path::Path,
    fps: Option<u32>,
    secs: f64,
) -> (std::path::PathBuf, Arc<dyn Store>, pipeline::StreamStats) {
    let (data, store, camera) = store_and_camera(media, fps);
    let run = record(
        camera,
        &data,
        store.clone(),
        SupervisorOptions::default(),
        Duration::from_secs(2),
    )
    .await;
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    let stats = run.stats();
    run.stop().await;
    (data, store, stats)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_a_file_camera_into_contiguous_playable_segments() {
    let dir = tempfile::tempdir().unwrap();
    let h264 = make_h264(dir.path(), 320, 240, 30, 3, 15);
    let (data, store, stats) = record_file(&h264, Some(30), 7.2).await;

    let recs = all_recordings(&*store).await;
    assert!(recs.len() >= 3, "{} segments", recs.len());
    check_recordings_consistent(&data, &recs);
    // Segments follow each other without gaps or overlaps (one stream, no reconnect).
    for w in recs.windows(2) {
        let gap = w[1].start_time.0 - w[0].end_time.0;
        assert!(gap.abs() < 1_000, "gap of {gap} µs between segments");
    }
    // About 2 s each, cut at key frames (every 0.5 s here).
    for r in &recs[..recs.len() - 1] {
        let d = r.duration_us();
        assert!((2_000_000..=2_600_000).contains(&d), "segment of {d} µs");
        assert_eq!(r.codec, "avc1.64000d");
        assert_eq!((r.width, r.height), (320, 240));
    }
    let total: u32 = recs.iter().map(|r| r.frames).sum();
    assert!(
        u64::from(total) >= stats.frames,
        "every received frame is recorded"
    );
    assert!(stats.frames > 200, "{stats:?}");
    assert_eq!(stats.connections, 1);
    assert!((stats.fps - 30.0).abs() < 3.0, "{stats:?}");
    // The bitrate is the stream's: the file's bytes per second of video, give or take the
    // unevenness of a few seconds' window (key frames are bigger).
    let file_bps = std::fs::metadata(&h264).unwrap().len() as f64 * 8.0 / 3.0;
    assert!(
        (0.6..1.6).contains(&(stats.bitrate_bps / file_bps)),
        "{} bit/s measured, the file has {file_bps}",
        stats.bitrate_bps
    );
}

/// A clip across three segments starts at the key frame before the start asked for, plays, and
/// holds exactly the frames it reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clips_join_segments_from_the_key_frame_before_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let h264 = make_h264(dir.path(), 320, 240, 30, 3, 15);
    let (data, store, _) = record_file(&h264, Some(30), 7.5).await;
    let recs = all_recordings(&*store).await;
    assert!(recs.len() >= 3);
    let cam = CameraId::new("yard").unwrap();
    let start = Timestamp(recs[0].start_time.0 + 1_300_000);
    let end = Timestamp(recs[2].start_time.0 + 700_000);
    let out = data.join("clip.mp4");
    let f = std::fs::File::create(&out).unwrap();
    let (info, f) = pipeline::write_clip(&*store, &data, &cam, start, end, f)
        .await
        .unwrap();
    drop(f);
    assert!(
        info.start <= start && start.0 - info.start.0 <= 500_000,
        "{info:?}"
    );
    assert!(info.end <= end && end.0 - info.end.0 <= 40_000, "{info:?}");
    let p = testing::ffprobe(&out);
    assert_eq!(p.frames, u64::from(info.frames));
    let secs = (info.end.0 - info.start.0) as f64 / 1e6;
    assert!((p.duration - secs).abs() < 0.05, "{p:?} vs {secs}");
    assert_eq!(std::fs::metadata(&out).unwrap().len(), info.size_bytes);

    let later = Timestamp(recs.last().unwrap().end_time.0 + 60_000_000);
    let e = pipeline::write_clip(
        &*store,
        &data,
        &cam,
        later,
        Timestamp(later.0 + 1),
        Vec::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let e = pipeline::write_clip(&*store, &data, &cam, end, start, Vec::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
}

/// A camera task recording a 30 fps file camera in event mode with `pre` and `post` seconds
/// of capture (and segments of `segment` when given).
fn event_mode_task(
    dir: &std::path::Path,
    pre: u32,
    post: u32,
    segment: Option<Duration>,
) -> (
    std::path::PathBuf,
    Arc<dyn Store>,
    Arc<dyn Clocks>,
    pipeline::CameraTask,
) {
    let h264 = make_h264(dir, 320, 240, 30, 3, 15);
    let (data, store, camera) = store_and_camera(&h264, Some(30));
    let mut opts = pipeline::CameraTaskOptions::new(&data);
    opts.record.mode = RecordMode::Events;
    opts.record.pre_capture_s = pre;
    opts.record.post_capture_s = post;
    if let Some(d) = segment {
        opts.recorder.segment_duration = d;
    }
    let ids = Arc::new(IdGenerator::new(0));
    let clocks: Arc<dyn Clocks> = Arc::new(RealClocks::default());
    let task =
        pipeline::CameraTask::start(camera, opts, store.clone(), ids, clocks.clone()).unwrap();
    (data, store, clocks, task)
}

/// Event mode records nothing until asked, then pre-capture from the ring (from a key frame)
/// through the post-capture time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_mode_keeps_pre_and_post_capture() {
    let dir = tempfile::tempdir().unwrap();
    let (data, store, clocks, task) = event_mode_task(dir.path(), 2, 1, None);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let trigger = clocks.realtime();
    task.recorder_input()
        .send(pipeline::RecorderInput::KeepUntil(trigger))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    task.stop().await;
    let recs = all_recordings(&*store).await;
    check_recordings_consistent(&data, &recs);
    assert_eq!(recs.len(), 1, "{recs:?}");
    let r = &recs[0];
    assert_eq!(r.kind, RecordingKind::Event);
    let pre = trigger.0 - r.start_time.0;
    assert!(
        (1_900_000..=2_700_000).contains(&pre),
        "pre-capture of {pre} µs"
    );
    let post = r.end_time.0 - trigger.0;
    assert!(
        (800_000..=1_300_000).contains(&post),
        "post-capture of {post} µs"
    );
}

/// An event longer than a segment: the segments follow each other at key frames, and the
/// pre-capture ring is replayed only at the start, never again at a segment boundary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_mode_rolls_over_segments_without_repeating_frames() {
    let dir = tempfile::tempdir().unwrap();
    let (data, store, clocks, task) =
        event_mode_task(dir.path(), 1, 1, Some(Duration::from_secs(2)));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let from = clocks.realtime();
    task.recorder_input()
        .send(pipeline::RecorderInput::KeepUntil(Timestamp(
            from.0 + 5_000_000,
        )))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(8)).await;
    task.stop().await;
    let recs = all_recordings(&*store).await;
    check_recordings_consistent(&data, &recs);
    assert!(recs.len() >= 3, "{recs:#?}");
    for w in recs.windows(2) {
        let gap = w[1].start_time.0 - w[0].end_time.0;
        assert!(
            gap.abs() < 1_000,
            "gap of {gap} µs between segments: {recs:#?}"
        );
    }
    let secs = (recs[recs.len() - 1].end_time.0 - recs[0].start_time.0) as f64 / 1e6;
    let frames: u32 = recs.iter().map(|r| r.frames).sum();
    assert!(
        (f64::from(frames) - secs * 30.0).abs() < 3.0,
        "{frames} frames in {secs} s at 30 fps"
    );
    // About 1 s of pre-capture, 5 s of event and 1 s of post-capture.
    assert!((6.5..8.0).contains(&secs), "{secs} s recorded");
}

/// An MP4 file plays in a loop with its own timing and records like a live camera.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looped_mp4_file_records_like_a_camera() {
    let dir = tempfile::tempdir().unwrap();
    let h264 = make_h264(dir.path(), 320, 240, 25, 2, 25);
    let mp4 = testing::make_mp4(&h264, 25);
    let (data, store, stats) = record_file(&mp4, None, 5.5).await;
    let recs = all_recordings(&*store).await;
    check_recordings_consistent(&data, &recs);
    let frames: u32 = recs.iter().map(|r| r.frames).sum();
    assert!(
        (125..=145).contains(&frames),
        "{frames} frames in 5.5 s at 25 fps (two loops)"
    );
    assert!((stats.fps - 25.0).abs() < 3.0, "{stats:?}");
    for w in recs.windows(2) {
        assert!((w[1].start_time.0 - w[0].end_time.0).abs() < 1_000);
    }
}
