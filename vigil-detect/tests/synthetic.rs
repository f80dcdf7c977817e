//! The synthetic camera produces real H.264 that records into segments ffprobe accepts.

use std::sync::Arc;
use std::time::Duration;

use vigil_core::pipeline::SupervisorOptions;
use vigil_core::testing::{all_recordings, check_recordings_consistent, record};
use vigil_core::*;
use vigil_detect::SyntheticCamera;
use vigil_store::LmdbStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synthetic_camera_records_playable_h264() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store: Arc<dyn Store> =
        Arc::new(LmdbStore::open(&data.join("db"), Default::default()).unwrap());
    let clocks: Arc<dyn Clocks> = Arc::new(RealClocks::default());
    let cam = SyntheticCamera::new(CameraId::new("demo").unwrap(), 320, 240, 15, clocks).unwrap();
    let run = record(
        Arc::new(cam),
        &data,
        store.clone(),
        SupervisorOptions::default(),
        Duration::from_secs(2),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let stats = run.stats();
    run.stop().await;
    let recs = all_recordings(&*store).await;
    check_recordings_consistent(&data, &recs);
    assert!(recs.len() >= 2, "{recs:?}");
    let frames: u32 = recs.iter().map(|r| r.frames).sum();
    assert!(
        (65..=80).contains(&frames),
        "{frames} frames in 5 s at 15 fps"
    );
    assert!((stats.fps - 15.0).abs() < 2.0, "{stats:?}");
    for r in &recs {
        assert_eq!((r.width, r.height), (320, 240));
        assert!(
            r.codec.starts_with("avc1.42"),
            "baseline expected: {}",
            r.codec
        );
    }
}
