//! Embeds the recorder: records one camera (an RTSP URL, an MP4/H.264 file, or the synthetic
//! scene for `synthetic` or no argument) into a data directory for a while, then lists the segments
//! and writes a clip of the last few seconds, all without re-encoding.
//!
//! `cargo run -p vigil-examples --example record_camera -- [rtsp://user:pass@host/path | FILE | synthetic] [SECONDS]`

use std::sync::Arc;
use std::time::Duration;

use vigil_core::pipeline::{write_clip, Nvr, NvrOptions};
use vigil_core::*;
use vigil_store::{LmdbStore, StoreOptions};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let source = vigil_examples::source_of(args.next().as_deref());
    let secs = vigil_examples::seconds_of(args.next().as_deref(), 25)?;

    let dir = tempfile::tempdir()?;
    let data = dir.path();
    let store: Arc<dyn Store> =
        Arc::new(LmdbStore::open(&data.join("db"), StoreOptions::default())?);
    let clocks: Arc<dyn Clocks> = Arc::new(RealClocks::default());
    let camera = CameraConfig::new(CameraId::new("example")?, source, clocks.realtime());
    store
        .apply(Mutation::PutCamera(Box::new(camera.clone())).into())
        .await?;

    // The program decides which sources it can build.
    let factory = vigil_detect::camera_factory(clocks.clone());
    let nvr = Nvr::start(
        data,
        store.clone(),
        clocks.clone(),
        factory,
        NvrOptions::default(),
    )
    .await?;
    println!("recording for {secs} s into {}", data.display());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    for st in nvr.status().await {
        println!("{}: {:?}", st.id, st.stream);
    }
    nvr.stop().await;

    let mut q = Query::new(RecordingFilter::default());
    q.order = Order::Asc;
    let recs = store.recordings(&q).await?.items;
    for r in &recs {
        println!(
            "{}  {:>5.1} s  {:>4} frames  {:>8} bytes  {}",
            r.start_time,
            r.duration_us() as f64 / 1e6,
            r.frames,
            r.size_bytes,
            r.path
        );
    }
    if let Some(last) = recs.last() {
        let end = last.end_time;
        let start = Timestamp(end.0 - 5_000_000);
        let out = std::fs::File::create(data.join("clip.mp4"))?;
        let (clip, _) = write_clip(&*store, data, &camera.id, start, end, out).await?;
        println!(
            "clip of the last 5 s: {} frames from {} ({} bytes)",
            clip.frames, clip.start, clip.size_bytes
        );
    }
    Ok(())
}
