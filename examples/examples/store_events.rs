//! Embeds the LMDB store: records a few events the way the pipeline would, then asks the
//! questions a dashboard asks (newest events of one camera, a daily summary, counts).
//!
//! `cargo run -p vigil-examples --example store_events`

use std::sync::Arc;
use std::time::Duration;

use vigil_core::*;
use vigil_store::{LmdbStore, StoreOptions};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn Store> = Arc::new(LmdbStore::open(dir.path(), StoreOptions::default())?);
    let clocks = RealClocks::default();
    let ids = IdGenerator::new(store.max_id().await?);

    let mut batch = Batch::new();
    for (i, (camera, label)) in [("front", "person"), ("front", "car"), ("garage", "person")]
        .into_iter()
        .enumerate()
    {
        let start = clocks
            .realtime()
            .saturating_sub(Duration::from_secs(60 * (3 - i as u64)));
        batch.push(Mutation::PutEvent(Box::new(Event {
            id: EventId(ids.next(start)),
            camera: CameraId::new(camera)?,
            label: label.into(),
            sub_label: None,
            score: 0.8,
            top_score: 0.86,
            start_time: start,
            end_time: Some(start.saturating_add(Duration::from_secs(12))),
            zones: vec!["driveway".into()],
            tracker_id: Some(i as u64),
            bbox: BBox {
                x1: 0.2,
                y1: 0.3,
                x2: 0.4,
                y2: 0.9,
            },
            has_clip: true,
            has_snapshot: true,
            retain: false,
            review: ReviewStatus::Unreviewed,
            notes: None,
            risk_score: None,
            best: None,
            stationary: false,
            detection_count: 9,
        })));
    }
    store.apply(batch).await?;

    let mut q = Query::new(EventFilter {
        cameras: vec![CameraId::new("front")?],
        ..Default::default()
    });
    q.page.limit = 10;
    for e in store.events(&q).await?.items {
        println!(
            "{} {} {} score {:.2}",
            e.start_time, e.camera, e.label, e.top_score
        );
    }
    let tz = jiff::tz::TimeZone::system();
    for row in store.events_summary(&SummaryFilter::default(), &tz).await? {
        println!(
            "{} {} {}: {} events",
            row.day, row.camera, row.label, row.count
        );
    }
    println!("{:?}", store.event_counts().await?);
    Ok(())
}
