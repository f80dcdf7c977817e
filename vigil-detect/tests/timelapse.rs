//! Timelapse: frames from the live view, a video per camera and day that ffprobe plays, the
//! day's count, the settings in the camera's record, the path checks of delete.

use std::sync::Arc;
use std::time::Duration;

use vigil_core::pipeline::{LiveFrame, LiveHub};
use vigil_core::testing::ffprobe;
use vigil_core::*;
use vigil_detect::Timelapse;
use vigil_store::LmdbStore;

/// 2026-04-01T00:10:00Z.
const T0: i64 = 1_775_002_200_000_000;

/// A 640×360 I420 picture with a bright bar at `x`.
fn picture(x: usize, time: Timestamp) -> LiveFrame {
    let (w, h) = (640usize, 360usize);
    let mut data = vec![60u8; w * h];
    for row in data.chunks_mut(w) {
        for px in &mut row[x..(x + 40).min(w)] {
            *px = 220;
        }
    }
    data.extend(std::iter::repeat_n(128u8, w * h / 2));
    LiveFrame {
        time,
        image: Image {
            width: w as u32,
            height: h as u32,
            format: PixelFormat::I420,
            data: data.into(),
            time,
        },
        objects: vec![],
        motion: vec![],
        regions: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_become_a_video_per_day_that_plays() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_owned();
    let store: Arc<dyn Store> =
        Arc::new(LmdbStore::open(&data.join("db"), Default::default()).unwrap());
    let sim = Arc::new(SimulatedClocks::new(Timestamp(T0)));
    let clocks: Arc<dyn Clocks> = sim.clone();
    let cam = CameraId::new("yard").unwrap();
    let cfg = CameraConfig::new(
        cam.clone(),
        Source::Synthetic {
            width: 640,
            height: 360,
            fps: 5,
        },
        Timestamp(T0),
    );
    store
        .apply(Mutation::PutCamera(Box::new(cfg)).into())
        .await
        .unwrap();
    let live = Arc::new(LiveHub::new());
    let ids = Arc::new(IdGenerator::new(0));
    let t = Timelapse::new(
        store.clone(),
        live.clone(),
        clocks.clone(),
        ids,
        data.clone(),
    );

    // Bad settings are refused; good ones land in the camera's record.
    let bad = TimelapseSettings {
        fps: 0,
        ..TimelapseSettings::default()
    };
    assert!(t.configure(&cam, bad).await.is_err());
    let settings = TimelapseSettings {
        enabled: true,
        interval_minutes: 1,
        fps: 10,
        resolution: Some((320, 240)),
    };
    t.configure(&cam, settings.clone()).await.unwrap();
    assert_eq!(
        store.camera(&cam).await.unwrap().unwrap().timelapse,
        settings
    );

    // No picture yet, then a stale one: nothing is taken.
    t.capture_due().await;
    live.publish(&cam, picture(0, Timestamp(T0 - 60_000_000)));
    t.capture_due().await;
    assert_eq!(t.status(&cam).await.unwrap().today_frame_count, 0);

    // Twelve minutes, a frame each minute (and none between).
    for i in 0..12 {
        live.publish(&cam, picture(i * 40, clocks.realtime()));
        t.capture_due().await;
        sim.advance(Duration::from_secs(30));
        t.capture_due().await;
        sim.advance(Duration::from_secs(30));
    }
    let st = t.status(&cam).await.unwrap();
    assert_eq!(st.today_frame_count, 12, "{st:?}");
    assert_eq!(
        st.last_capture,
        Some(Timestamp(T0 + 11 * 60_000_000)),
        "{st:?}"
    );

    // Stopping finishes the video: 12 frames at 10 fps, 320×240, with its first frame beside.
    t.configure(
        &cam,
        TimelapseSettings {
            enabled: false,
            ..settings.clone()
        },
    )
    .await
    .unwrap();
    let videos = t.videos(None).unwrap();
    assert_eq!(videos.len(), 1, "{videos:?}");
    let v = &videos[0];
    assert_eq!(v.path, "timelapse/yard/timelapse_20260401_001000.mp4");
    assert_eq!(v.date, "2026-04-01");
    assert_eq!(
        v.thumbnail.as_deref(),
        Some("timelapse/yard/timelapse_20260401_001000.jpg")
    );
    let p = ffprobe(&data.join(&v.path));
    assert_eq!((p.codec.as_str(), p.width, p.height), ("h264", 320, 240));
    assert_eq!(p.frames, 12);
    assert!((p.duration - 1.2).abs() < 0.05, "{p:?}");
    assert_eq!(v.size, std::fs::metadata(data.join(&v.path)).unwrap().len());

    // Started again the next day: a new video, and the day's count starts over.
    t.configure(&cam, settings.clone()).await.unwrap();
    sim.advance(Duration::from_secs(24 * 3600));
    live.publish(&cam, picture(100, clocks.realtime()));
    t.capture_due().await;
    let videos = t.videos(Some(&cam)).unwrap();
    assert_eq!(videos.len(), 2);
    assert_eq!(videos[0].date, "2026-04-02", "newest first: {videos:?}");
    assert_eq!(t.status(&cam).await.unwrap().today_frame_count, 1);
    // The one being written plays already up to the frame before the last... and cannot be
    // deleted; the finished one can, with its thumbnail.
    let err = t.delete(&videos[0].path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
    t.delete(&videos[1].path).unwrap();
    assert!(!data.join(&videos[1].path).exists());
    assert!(!data
        .join("timelapse/yard/timelapse_20260401_001000.jpg")
        .exists());
    assert_eq!(
        t.delete(&videos[1].path).unwrap_err().kind(),
        ErrorKind::NotFound
    );

    // Only timelapse videos are paths the routes accept.
    for bad in [
        "../timelapse/yard/timelapse_20260401_001000.mp4",
        "timelapse/yard/other.mp4",
        "timelapse/yard/timelapse_2026_0401.mp4",
        "recordings/yard/x.mp4",
        "timelapse/timelapse_20260401_001000.mp4",
        "/etc/passwd",
    ] {
        assert!(Timelapse::check_video_path(bad).is_err(), "{bad}");
    }
}
