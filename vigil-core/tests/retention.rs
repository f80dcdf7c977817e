//! Retention over real segment files and a real LMDB store: by age per class, by disk budget
//! (oldest first across cameras, event footage last), manual cleanup, storage statistics, and a
//! deletion interrupted by a crash.

use std::sync::Arc;

use vigil_core::h264::{AccessUnit, AccessUnits};
use vigil_core::mp4::{SegmentWriter, TIMESCALE};
use vigil_core::pipeline::recorder::{reconcile, segment_path};
use vigil_core::pipeline::{DiskBudget, Retention};
use vigil_core::testing::{all_recordings, check_files_match, make_h264};
use vigil_core::*;
use vigil_store::LmdbStore;

const DAY: i64 = 86_400_000_000;
const HOUR: i64 = 3_600_000_000;
const NOW: i64 = 1_766_491_200_000_000;

struct World {
    _dir: tempfile::TempDir,
    data: std::path::PathBuf,
    store: Arc<dyn Store>,
    aus: Vec<AccessUnit>,
    next_id: u64,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let h264 = make_h264(dir.path(), 160, 120, 30, 1, 30);
        let aus = AccessUnits::default()
            .split(&std::fs::read(h264).unwrap())
            .unwrap();
        let data = dir.path().join("data");
        let store: Arc<dyn Store> =
            Arc::new(LmdbStore::open(&data.join("db"), Default::default()).unwrap());
        World {
            _dir: dir,
            data,
            store,
            aus,
            next_id: 1,
        }
    }

    /// A real one-second segment starting at `start`, committed.
    async fn segment(
        &mut self,
        cam: &str,
        kind: RecordingKind,
        start: i64,
        retained: bool,
    ) -> Recording {
        let camera = CameraId::new(cam).unwrap();
        let id = RecordingId(self.next_id);
        self.next_id += 1;
        let rel = segment_path(&camera, Timestamp(start), id);
        let path = self.data.join(&rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let params = self.aus[0].params.clone();
        let mut w = SegmentWriter::create(&path, params.clone(), TIMESCALE.into()).unwrap();
        let tick = i64::from(TIMESCALE / 30);
        for (i, au) in self.aus.iter().enumerate() {
            w.push(i as i64 * tick, &au.data, au.is_key).unwrap();
        }
        let done = w.finish(Some(self.aus.len() as i64 * tick)).unwrap();
        let (ticks, size) = (done.duration_ticks, done.size);
        let r = Recording {
            id,
            camera,
            kind,
            start_time: Timestamp(start),
            end_time: Timestamp(start + ticks as i64 * 100 / 9),
            size_bytes: size,
            path: rel,
            codec: params.rfc6381_codec.clone(),
            width: params.width,
            height: params.height,
            frames: self.aus.len() as u32,
            objects: Vec::new(),
            retained,
            event_ids: Vec::new(),
            thumbnail_path: None,
            sprite_path: None,
        };
        self.store
            .apply(Mutation::PutRecording(Box::new(r.clone())).into())
            .await
            .unwrap();
        r
    }

    async fn event(&mut self, cam: &str, start: i64, retain: bool) {
        let mut e = vigil_store::conformance::sample_events(1, self.next_id).remove(0);
        e.id = EventId(1_000_000 + self.next_id);
        self.next_id += 1;
        e.camera = CameraId::new(cam).unwrap();
        e.start_time = Timestamp(start);
        e.end_time = Some(Timestamp(start + 500_000));
        e.retain = retain;
        self.store
            .apply(Mutation::PutEvent(Box::new(e)).into())
            .await
            .unwrap();
    }

    fn retention(&self, budget: DiskBudget) -> Retention {
        let clocks: Arc<dyn Clocks> = Arc::new(SimulatedClocks::new(Timestamp(NOW)));
        Retention::new(&self.data, self.store.clone(), clocks, budget)
    }

    async fn remaining(&self) -> Vec<Recording> {
        let recs = all_recordings(&*self.store).await;
        check_files_match(&self.data, &recs);
        recs
    }
}

fn starts(recs: &[Recording]) -> Vec<i64> {
    recs.iter().map(|r| (NOW - r.start_time.0) / HOUR).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expires_by_age_per_class_and_keeps_what_events_need() {
    let mut w = World::new();
    use RecordingKind::{Continuous as C, Event as E};
    // Default settings: continuous 7 days, events 30 days.
    for (kind, days, retained) in [
        (C, 10, false),
        (C, 8, false),
        (C, 6, false),
        (C, 1, false),
        (E, 20, false),
        (E, 40, false),
        (C, 100, true),
        (C, 9, false),
        (C, 12, false),
    ] {
        w.segment("yard", kind, NOW - days * DAY, retained).await;
    }
    // An event 9 days ago (still kept: events last 30 days) needs the 9-day-old segment; one
    // marked retain 12 days ago needs that one.
    w.event("yard", NOW - 9 * DAY + 200_000, false).await;
    w.event("yard", NOW - 12 * DAY + 200_000, true).await;
    let report = w.retention(DiskBudget::default()).run().await.unwrap();
    assert_eq!(report.expired, 3, "{report:?}");
    let left = w.remaining().await;
    let mut days: Vec<i64> = starts(&left).iter().map(|h| h / 24).collect();
    days.sort();
    assert_eq!(days, vec![1, 6, 9, 12, 20, 100]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_budget_deletes_oldest_first_across_cameras_and_event_footage_last() {
    let mut w = World::new();
    // Two cameras, a segment an hour; camera b started five hours later.
    for h in 0..10 {
        w.segment("a", RecordingKind::Continuous, NOW - (20 - h) * HOUR, false)
            .await;
        w.segment("b", RecordingKind::Continuous, NOW - (15 - h) * HOUR, false)
            .await;
    }
    // An event needs a's oldest segment.
    w.event("a", NOW - 20 * HOUR + 100_000, false).await;
    let all = w.remaining().await;
    let total: u64 = all.iter().map(|r| r.size_bytes).sum();
    let seg = all[0].size_bytes;
    let budget = DiskBudget {
        max_bytes: Some(total - 6 * seg),
        max_percent: None,
    };
    let ret = w.retention(budget.clone());
    let report = ret.run().await.unwrap();
    assert_eq!(report.over_budget, 6, "{report:?}");
    let left = w.remaining().await;
    // Deleted: the six oldest no event needs: a's from 19 to 15 h ago and b's 15 h ago.
    let mut hours = starts(&left);
    hours.sort();
    hours.reverse();
    assert_eq!(&hours[..4], &[20, 14, 14, 13], "{hours:?}");
    let st = ret.storage().await.unwrap();
    assert!(st.recordings.size_bytes <= total - 6 * seg);
    assert_eq!(st.by_camera.len(), 2);
    // Each camera's figures are the sums over what is left of it.
    for (cam, stats) in &st.by_camera {
        let mine: Vec<&Recording> = left.iter().filter(|r| &r.camera == cam).collect();
        assert_eq!(stats.count, mine.len() as u64, "{cam}");
        assert_eq!(
            stats.size_bytes,
            mine.iter().map(|r| r.size_bytes).sum::<u64>(),
            "{cam}"
        );
        let duration: i64 = mine.iter().map(|r| r.end_time.0 - r.start_time.0).sum();
        assert_eq!(stats.duration_us, duration, "{cam}");
    }
    assert_eq!(st.by_camera[&CameraId::new("a").unwrap()].count, 5);
    assert_eq!(st.by_camera[&CameraId::new("b").unwrap()].count, 9);
    assert_eq!(st.recordings.count, 14);
    assert_eq!(
        st.recordings.size_bytes,
        left.iter().map(|r| r.size_bytes).sum::<u64>()
    );
    assert_eq!(st.oldest, Some(Timestamp(NOW - 20 * HOUR)));
    assert!(st.filesystem_bytes > 0 && st.used_percent > 0.0);

    // A budget of one segment: everything else goes, the event's footage stays.
    let one = DiskBudget {
        max_bytes: Some(seg),
        max_percent: None,
    };
    w.retention(one).run().await.unwrap();
    assert_eq!(starts(&w.remaining().await), vec![20]);
    // A budget only met by deleting event footage deletes it too.
    let tight = DiskBudget {
        max_bytes: Some(seg / 2),
        max_percent: None,
    };
    let report = w.retention(tight).run().await.unwrap();
    assert_eq!(report.over_budget, 1);
    assert!(w.remaining().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_cleanup_and_an_interrupted_delete() {
    let mut w = World::new();
    for h in 0..4 {
        w.segment("a", RecordingKind::Continuous, NOW - (10 - h) * HOUR, false)
            .await;
        w.segment("b", RecordingKind::Continuous, NOW - (10 - h) * HOUR, false)
            .await;
    }
    let ret = w.retention(DiskBudget::default());
    let a = CameraId::new("a").unwrap();
    let rep = ret
        .cleanup(Some(&a), Timestamp(NOW - 8 * HOUR))
        .await
        .unwrap();
    assert_eq!(rep.cleaned, 2);
    let left = w.remaining().await;
    assert_eq!(left.len(), 6);

    // A crash after a file was moved to the trash but before its record was deleted.
    let victim = left[0].clone();
    let trash = w.data.join("recordings/.trash");
    std::fs::create_dir_all(&trash).unwrap();
    std::fs::rename(
        w.data.join(&victim.path),
        trash.join(victim.path.replace('/', "~")),
    )
    .unwrap();
    let rep = reconcile(&w.data, &*w.store).await.unwrap();
    assert_eq!(rep.trashed, 1);
    let left = w.remaining().await;
    assert_eq!(left.len(), 5);
    assert!(!left.contains(&victim));
}

/// A filesystem budget this disk cannot meet deletes every recording not marked retained.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_percent_budget_uses_the_filesystem() {
    let mut w = World::new();
    for h in 0..3 {
        w.segment("a", RecordingKind::Continuous, NOW - (5 - h) * HOUR, false)
            .await;
    }
    let kept = w
        .segment("a", RecordingKind::Event, NOW - 6 * HOUR, true)
        .await;
    let ret = w.retention(DiskBudget {
        max_bytes: None,
        max_percent: Some(0.0001),
    });
    let before = ret.storage().await.unwrap();
    assert!(before.used_percent > 0.0001, "{before:?}");
    let report = ret.run().await.unwrap();
    assert_eq!(report.over_budget, 3, "{report:?}");
    assert_eq!(w.remaining().await, vec![kept]);
}

/// Snapshots expire after the camera's snapshot `retain_days`: plain ones and events' best
/// frames alike (the event stays, without its snapshot), except an event kept indefinitely.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_expire_by_age_and_events_forget_them() {
    let w = World::new();
    let camera = CameraId::new("yard").unwrap();
    let mut cfg = CameraConfig::new(
        camera.clone(),
        Source::Synthetic {
            width: 320,
            height: 240,
            fps: 5,
        },
        Timestamp(NOW - 100 * DAY),
    );
    cfg.snapshots.retain_days = 10;
    let mut batch = Batch::from(Mutation::PutCamera(Box::new(cfg)));
    // (id, age in days, event: None, Some(retained))
    let cases = [
        (1, 20, None),
        (2, 15, Some(false)),
        (3, 15, Some(true)),
        (4, 2, Some(false)),
    ];
    for (id, days, event) in cases {
        let time = Timestamp(NOW - days * DAY);
        let path = format!("snapshots/yard/{id}.jpg");
        let file = w.data.join(&path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, b"\xff\xd8 not really a picture").unwrap();
        let event_id = event.map(|retain| {
            let mut e = vigil_store::conformance::sample_events(1, id).remove(0);
            e.id = EventId(id);
            e.camera = camera.clone();
            e.start_time = time;
            e.end_time = Some(Timestamp(time.0 + 1_000_000));
            e.retain = retain;
            e.has_snapshot = true;
            e.best = Some(BestFrame {
                time,
                bbox: e.bbox,
                score: 0.9,
                snapshot_path: Some(path.clone()),
                thumbnail_path: Some(format!("snapshots/yard/{id}-thumb.jpg")),
            });
            batch.mutations.push(Mutation::PutEvent(Box::new(e)));
            EventId(id)
        });
        batch
            .mutations
            .push(Mutation::PutSnapshot(Box::new(Snapshot {
                id: SnapshotId(id),
                camera: camera.clone(),
                time,
                path,
                size_bytes: 27,
                source: if event.is_some() {
                    SnapshotSource::Event
                } else {
                    SnapshotSource::Manual
                },
                event_id,
            })));
    }
    w.store.apply(batch).await.unwrap();

    let report = w.retention(DiskBudget::default()).run().await.unwrap();
    assert_eq!(report.snapshots, 2, "{report:?}");
    assert_eq!(report.freed_bytes, 54, "{report:?}");
    for (id, gone) in [(1, true), (2, true), (3, false), (4, false)] {
        let kept = w.store.snapshot(SnapshotId(id)).await.unwrap().is_some();
        assert_eq!(kept, !gone, "snapshot {id}");
        let file = w.data.join(format!("snapshots/yard/{id}.jpg"));
        assert_eq!(file.exists(), !gone, "file of snapshot {id}");
    }
    let expired = w.store.event(EventId(2)).await.unwrap().unwrap();
    assert!(!expired.has_snapshot, "{expired:#?}");
    let best = expired.best.unwrap();
    assert_eq!(best.snapshot_path, None);
    assert!(best.thumbnail_path.is_some(), "the thumbnail stays");
    for id in [3, 4] {
        let e = w.store.event(EventId(id)).await.unwrap().unwrap();
        assert!(e.has_snapshot && e.best.unwrap().snapshot_path.is_some());
    }
    // A second pass finds nothing more to do.
    let again = w.retention(DiskBudget::default()).run().await.unwrap();
    assert_eq!(again.snapshots, 0, "{again:?}");
}
