//! The recorder end to end: a file camera played at real-time pace, supervised, recorded into
//! segments in a real LMDB store, checked with ffprobe.

use std::sync::Arc;
use std::time::Duration;

use vigil_core::camera::FileCamera;
use vigil_core::pipeline::SupervisorOptions;
use vigil_core::testing::{all_recordings, check_recordings_consistent, make_h264, record};
use vigil_core::*;
use vigil_store::LmdbStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_a_file_camera_into_contiguous_playable_segments() {
    let dir = tempfile::tempdir().unwrap();
    let h264 = make_h264(dir.path(), 320, 240, 30, 3, 15);
    let data = dir.path().join("data");
    let store: Arc<dyn Store> =
        Arc::new(LmdbStore::open(&data.join("db"), Default::default()).unwrap());
    let clocks: Arc<dyn Clocks> = Arc::new(RealClocks::default());
    let id = CameraId::new("yard").unwrap();
    let camera: Arc<dyn Camera> = Arc::new(FileCamera::new(id, &h264, Some(30), clocks));
    let run = record(
        camera,
        &data,
        store.clone(),
        SupervisorOptions::default(),
        Duration::from_secs(2),
    )
    .await;
    tokio::time::sleep(Duration::from_secs_f64(7.2)).await;
    let stats = run.stats();
    run.stop().await;

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
}
