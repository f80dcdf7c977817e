//! Embeds the whole pipeline: one camera recorded, analysed (motion, and objects when YOLOv8
//! weights are given), tracked and turned into events, with the camera, the detector and the
//! store this program picks. Events are printed as the store commits them, from its change
//! feed; at the end, the events and the recordings it made.
//!
//! `cargo run -p vigil-examples --example embed_pipeline -- [rtsp://... | FILE | synthetic] [SECONDS] [WEIGHTS.safetensors]`

use std::sync::Arc;
use std::time::Duration;

use vigil_core::pipeline::{Nvr, NvrOptions};
use vigil_core::*;
use vigil_detect::{analyzer_factory, DetectorRegistry, DetectorSpec};
use vigil_store::{LmdbStore, StoreOptions};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    // The camera: RTSP, a file or the synthetic scene (see `vigil_detect::camera_factory`).
    let source = vigil_examples::source_of(args.next().as_deref());
    let secs = vigil_examples::seconds_of(args.next().as_deref(), 20)?;
    let weights = args.next();

    // The store: LMDB in a scratch directory (any `Store` would do).
    let dir = tempfile::tempdir()?;
    let data = dir.path();
    let store: Arc<dyn Store> =
        Arc::new(LmdbStore::open(&data.join("db"), StoreOptions::default())?);
    let clocks: Arc<dyn Clocks> = Arc::new(RealClocks::default());
    let mut camera = CameraConfig::new(CameraId::new("yard")?, source, clocks.realtime());
    camera.detect.fps = 5;
    store
        .apply(Mutation::PutCamera(Box::new(camera.clone())).into())
        .await?;

    // The detector: YOLOv8 from the weights given, else motion alone. A program's own
    // `Detector` goes in with `registry.insert(name, Arc::new(mine))`.
    let mut registry = DetectorRegistry::new();
    if let Some(w) = &weights {
        registry.add(
            "cpu",
            &DetectorSpec {
                kind: "yolov8".into(),
                model: Some(w.into()),
                ..Default::default()
            },
        )?;
    }
    let opts = NvrOptions {
        analyzers: Some(analyzer_factory(Arc::new(registry), true)),
        ..NvrOptions::default()
    };

    // Events as they are stored: a task reading the store's change feed.
    let mut feed = store.changes();
    let printer = tokio::spawn(async move {
        while let Ok(batch) = feed.recv().await {
            for m in &batch.mutations {
                if let Mutation::PutEvent(e) = m {
                    let state = if e.end_time.is_some() {
                        "ended"
                    } else {
                        "seen"
                    };
                    println!(
                        "event {} {state}: {} on {} (score {:.2})",
                        e.id, e.label, e.camera, e.top_score
                    );
                }
            }
        }
    });

    let factory = vigil_detect::camera_factory(clocks.clone());
    let nvr = Nvr::start(data, store.clone(), clocks.clone(), factory, opts).await?;
    println!("watching for {secs} s (data in {})", data.display());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    nvr.stop().await;
    printer.abort();

    let events = store.events(&Query::new(EventFilter::default())).await?;
    let recs = store
        .recordings(&Query::new(RecordingFilter::default()))
        .await?;
    println!(
        "{} events, {} recordings ({} bytes)",
        events.items.len(),
        recs.items.len(),
        recs.items.iter().map(|r| r.size_bytes).sum::<u64>()
    );
    for e in &events.items {
        println!(
            "  {} {} from {} to {}",
            e.id,
            e.label,
            e.start_time,
            e.end_time.map_or_else(|| "-".to_owned(), |t| t.to_string())
        );
    }
    Ok(())
}
