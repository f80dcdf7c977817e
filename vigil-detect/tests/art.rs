//! Recording art: the synthetic camera records real segments; their thumbnails and sprite
//! sheets are made by the background task, named in the records, and removed with them.

use std::sync::Arc;
use std::time::Duration;

use vigil_core::pipeline::recorder::delete_recording;
use vigil_core::pipeline::SupervisorOptions;
use vigil_core::testing::{all_recordings, check_recordings_consistent, record};
use vigil_core::*;
use vigil_detect::render::decode_jpeg;
use vigil_detect::{make_art, run_art, ArtOptions, SyntheticCamera};
use vigil_store::LmdbStore;

/// Mean absolute difference between two tiles of a sprite sheet.
fn tile_difference(sheet: &vigil_detect::render::Rgb, a: usize, b: usize) -> f64 {
    let (tw, th) = (160usize, 90usize);
    let mut sum = 0u64;
    for y in 0..th {
        for x in 0..tw * 3 {
            let row = y * sheet.width as usize * 3;
            let pa = sheet.data[row + a * tw * 3 + x];
            let pb = sheet.data[row + b * tw * 3 + x];
            sum += u64::from(pa.abs_diff(pb));
        }
    }
    sum as f64 / (tw * th * 3) as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_segments_get_a_thumbnail_and_a_sprite_sheet() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store: Arc<dyn Store> =
        Arc::new(LmdbStore::open(&data.join("db"), Default::default()).unwrap());
    let clocks: Arc<dyn Clocks> = Arc::new(RealClocks::default());
    let cam =
        SyntheticCamera::new(CameraId::new("yard").unwrap(), 640, 360, 15, clocks.clone()).unwrap();
    let run = record(
        Arc::new(cam),
        &data,
        store.clone(),
        SupervisorOptions::default(),
        Duration::from_secs(3),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(7500)).await;
    run.stop().await;
    let recs = all_recordings(&*store).await;
    assert!(recs.len() >= 2, "{recs:?}");

    // One segment's art, made directly.
    let long = recs
        .iter()
        .find(|r| r.duration_us() >= 2_000_000)
        .expect("a segment of 2 s or more");
    let art = make_art(&data.join(&long.path)).unwrap();
    let thumb = decode_jpeg(&art.thumbnail).unwrap();
    assert_eq!((thumb.width, thumb.height), (320, 180));
    let sheet = decode_jpeg(art.sprite.as_ref().expect("a sprite sheet")).unwrap();
    assert_eq!((sheet.width, sheet.height), (1600, 90));
    // The scene moves: the first and last tiles differ, and no tile is blank.
    assert!(
        tile_difference(&sheet, 0, 9) > 1.0,
        "the sprite's tiles should show different moments"
    );
    for k in 0..10 {
        let mut lit = 0u64;
        for y in 0..90 {
            for x in 0..160 * 3 {
                lit += u64::from(sheet.data[y * 1600 * 3 + k * 160 * 3 + x]);
            }
        }
        assert!(lit / (160 * 90 * 3) > 10, "tile {k} is black");
    }

    // The task makes everyone's art and names it in the records.
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(run_art(
        store.clone(),
        clocks.clone(),
        data.clone(),
        ArtOptions {
            interval: Duration::from_millis(100),
            ..ArtOptions::default()
        },
        stop,
    ));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let recs = loop {
        let recs = all_recordings(&*store).await;
        if recs.iter().all(|r| r.thumbnail_path.is_some()) {
            break recs;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "art not made: {recs:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    stop_tx.send(true).unwrap();
    task.await.unwrap();
    for r in &recs {
        let (thumb, sprite) = vigil_core::pipeline::art_paths(&r.path);
        assert_eq!(r.thumbnail_path.as_deref(), Some(thumb.as_str()));
        let thumb = decode_jpeg(&std::fs::read(data.join(&thumb)).unwrap()).unwrap();
        assert_eq!(thumb.width, 320);
        if r.duration_us() >= 2_000_000 {
            assert_eq!(r.sprite_path.as_deref(), Some(sprite.as_str()), "{r:?}");
            let sheet = decode_jpeg(&std::fs::read(data.join(&sprite)).unwrap()).unwrap();
            assert_eq!((sheet.width, sheet.height), (1600, 90));
        } else {
            assert_eq!(r.sprite_path, None, "{r:?}");
        }
    }
    // Files and records agree, art included; deleting a recording takes its art along.
    check_recordings_consistent(&data, &recs);
    delete_recording(&data, &*store, &recs[0]).await.unwrap();
    let left = all_recordings(&*store).await;
    assert_eq!(left.len(), recs.len() - 1);
    check_recordings_consistent(&data, &left);
}
