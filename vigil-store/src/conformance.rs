//! The conformance suite of the [`Store`] trait.
//!
//! Any implementation of `Store` must pass it. It writes deterministic data, then compares every
//! list query (every filter, every sort order, paged through with small pages) and every
//! aggregate against a plain in-memory evaluation of the same query written here, independently
//! of any store's internals. It also checks pagination edges, cursors that outlive deleted rows,
//! concurrent readers with a writer, reopening, and rejection of bad input.
//!
//! Call [`run_all`] with a function that opens your store in a given directory (the suite drops
//! every handle before opening the same directory again):
//!
//! ```no_run
//! # async fn f() {
//! use std::sync::Arc;
//! vigil_store::conformance::run_all(|dir| {
//!     let s = vigil_store::LmdbStore::open(dir, Default::default())?;
//!     Ok(Arc::new(s) as Arc<dyn vigil_core::Store>)
//! })
//! .await;
//! # }
//! ```
//!
//! Ordering contract checked here: lists sort by the requested key, ties broken by the record's
//! time, then by id, all in the requested direction.

#![allow(clippy::unwrap_used)] // A test suite: a failed unwrap is a failed check.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use vigil_core::*;

/// Opens a store in a directory.
pub trait Opener: Fn(&Path) -> Result<Arc<dyn Store>, Box<dyn std::error::Error>> + Sync {}
impl<F: Fn(&Path) -> Result<Arc<dyn Store>, Box<dyn std::error::Error>> + Sync> Opener for F {}

const T0: i64 = 1_766_491_200_000_000; // 2025-12-23T12:00:00Z
/// Time between sample events: 500 of them span four days, so day-partitioned indexes and
/// per-day summaries see several days.
const EVENT_STEP_US: i64 = 700_000_000;
const CAMS: [&str; 3] = ["front", "back", "garage"];
const LABELS: [&str; 4] = ["person", "car", "dog", "cat"];
const ZONES: [&str; 3] = ["porch", "driveway", "yard"];

/// Runs every check, each in a fresh temporary directory.
pub async fn run_all(open: impl Opener) {
    events_filters_and_sorts(&open).await;
    event_updates_keep_indexes_exact(&open).await;
    event_patches_and_updates_keep_each_writers_fields(&open).await;
    recordings_filters_sorts_and_stats(&open).await;
    detections_audit_logs_snapshots(&open).await;
    pagination_edges(&open).await;
    bad_input(&open).await;
    reopen_after_close(&open).await;
    concurrent_readers_with_writer(&open).await;
    config_records(&open).await;
    change_feed(&open).await;
}

/// Every committed batch reaches every subscriber, whole and in commit order, by the time
/// `apply` returns; a refused batch reaches none; concurrent writers' batches all arrive.
pub async fn change_feed(open: &impl Opener) {
    let dir = tmp();
    let store = open(dir.path()).unwrap();
    let mut a = store.changes();
    let mut b = store.changes();
    let events = sample_events(30, 5);
    for chunk in events.chunks(10) {
        let batch: Batch = chunk
            .iter()
            .map(|e| Mutation::PutEvent(Box::new(e.clone())))
            .collect();
        store.apply(batch.clone()).await.unwrap();
        for rx in [&mut a, &mut b] {
            let got = rx
                .try_recv()
                .expect("the batch is queued once apply returns");
            assert_eq!(*got, batch);
        }
    }
    // A refused batch (an invalid event) is not announced.
    let mut bad = events[0].clone();
    bad.score = 7.0;
    assert!(store
        .apply(Mutation::PutEvent(Box::new(bad)).into())
        .await
        .is_err());
    assert!(a.try_recv().is_err(), "a refused batch was announced");
    // Many writers at once: every batch arrives once.
    let mut tasks = Vec::new();
    for e in events.iter().cloned() {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.apply(Mutation::PutEvent(Box::new(e)).into())
                .await
                .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut ids: Vec<EventId> = Vec::new();
    while let Ok(batch) = a.try_recv() {
        for m in &batch.mutations {
            if let Mutation::PutEvent(e) = m {
                ids.push(e.id);
            }
        }
    }
    ids.sort();
    let mut want: Vec<EventId> = events.iter().map(|e| e.id).collect();
    want.sort();
    assert_eq!(ids, want);
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// A tiny deterministic generator (xorshift), so every run sees the same data.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn cam(s: &str) -> CameraId {
    CameraId::new(s).unwrap()
}

/// The `i`th event of the standard data set.
/// `n` sample events (ids `1000..1000 + n`) from a deterministic generator seeded with `seed`
/// (non-zero): the same call gives the same events in every run.
pub fn sample_events(n: u64, seed: u64) -> Vec<Event> {
    let mut r = Rng(seed.max(1));
    let mut rng = |m: u64| r.below(m);
    (0..n).map(|i| sample_event(i, &mut rng)).collect()
}

/// Sample event number `i`, drawing its fields from `rng` (`rng(m)` is below `m`).
pub fn sample_event(i: u64, rng: &mut impl FnMut(u64) -> u64) -> Event {
    let start = T0 + (i as i64) * EVENT_STEP_US + rng(1_000_000) as i64;
    let nz = rng(3) as usize;
    let mut zones: Vec<String> = Vec::new();
    for _ in 0..nz {
        let z = ZONES[rng(3) as usize].to_owned();
        if !zones.contains(&z) {
            zones.push(z);
        }
    }
    let top = (rng(1000) as f32) / 1000.0;
    let ended = rng(10) != 0;
    Event {
        id: EventId(1000 + i),
        camera: cam(CAMS[rng(3) as usize]),
        label: LABELS[rng(4) as usize].to_owned(),
        sub_label: if rng(5) == 0 {
            Some("Alice".to_owned())
        } else {
            None
        },
        score: top / 2.0,
        top_score: top,
        start_time: Timestamp(start),
        end_time: ended.then(|| Timestamp(start + 1_000_000 + rng(60_000_000) as i64)),
        zones,
        tracker_id: Some(rng(50)),
        bbox: BBox {
            x1: 0.1,
            y1: 0.1,
            x2: 0.3,
            y2: 0.5,
        },
        has_clip: rng(2) == 0,
        has_snapshot: rng(3) != 0,
        retain: rng(7) == 0,
        review: if rng(2) == 0 {
            ReviewStatus::Reviewed
        } else {
            ReviewStatus::Unreviewed
        },
        notes: if rng(4) == 0 {
            Some("Delivery van at the gate".to_owned())
        } else {
            None
        },
        risk_score: Some(rng(100) as u8),
        best: None,
        stationary: false,
        detection_count: 1 + rng(20) as u32,
    }
}

fn event_matches(f: &EventFilter, e: &Event) -> bool {
    let any = |list: &[String], v: &str| list.is_empty() || list.iter().any(|x| x == v);
    (f.cameras.is_empty() || f.cameras.contains(&e.camera))
        && any(&f.labels, &e.label)
        && (f.sub_labels.is_empty()
            || e.sub_label
                .as_ref()
                .is_some_and(|s| f.sub_labels.contains(s)))
        && (f.zones.is_empty() || e.zones.iter().any(|z| f.zones.contains(z)))
        && f.time.contains(e.start_time)
        && f.has_clip.is_none_or(|v| v == e.has_clip)
        && f.has_snapshot.is_none_or(|v| v == e.has_snapshot)
        && f.retain.is_none_or(|v| v == e.retain)
        && f.review.is_none_or(|v| v == e.review)
        && f.min_score.is_none_or(|m| e.top_score >= m)
        && f.in_progress.is_none_or(|p| p == e.end_time.is_none())
        && f.text.as_ref().is_none_or(|t| {
            let mut have: Vec<String> = words(&e.label).collect();
            have.extend(
                e.sub_label
                    .iter()
                    .flat_map(|s| words(s).collect::<Vec<_>>()),
            );
            have.extend(e.notes.iter().flat_map(|s| words(s).collect::<Vec<_>>()));
            words(t).all(|w| have.contains(&w))
        })
}

/// Sort key of the ordering contract: (key, time, id).
fn event_key(e: &Event, sort: SortBy) -> (i128, i64, u64) {
    let k = match sort {
        SortBy::Time => 0,
        SortBy::Score => i128::from(e.top_score.to_bits()),
        SortBy::Duration => i128::from(e.end_time.map_or(i64::MAX, |x| x.0 - e.start_time.0)),
    };
    (k, e.start_time.0, e.id.0)
}

fn recording_key(r: &Recording, sort: SortBy) -> (i128, i64, u64) {
    let k = match sort {
        SortBy::Time => 0,
        SortBy::Score => i128::from(r.max_score().to_bits()),
        SortBy::Duration => i128::from(r.duration_us()),
    };
    (k, r.start_time.0, r.id.0)
}

/// Pages through a whole list with `limit`-sized pages; checks page invariants on the way.
pub async fn collect_pages<T, F, Fut>(limit: u32, mut fetch: F) -> Vec<T>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = vigil_core::Result<Page<T>>>,
{
    let mut out = Vec::new();
    let mut cursor = None;
    for _ in 0..100_000 {
        let page = fetch(PageRequest {
            limit,
            cursor: cursor.clone(),
            offset: 0,
            with_total: false,
        })
        .await
        .unwrap();
        assert!(
            page.items.len() <= limit as usize,
            "page larger than its limit"
        );
        assert_eq!(
            page.has_more,
            page.next_cursor.is_some(),
            "has_more and next_cursor disagree"
        );
        if page.has_more {
            assert_eq!(
                page.items.len(),
                limit as usize,
                "a page before the last must be full"
            );
        }
        out.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return out,
        }
    }
    panic!("pagination did not end");
}

fn ordered<T: Clone, K: Ord>(items: &[T], key: impl Fn(&T) -> K, order: Order) -> Vec<T> {
    let mut v = items.to_vec();
    v.sort_by_key(|x| key(x));
    if order == Order::Desc {
        v.reverse();
    }
    v
}

async fn seed_events(store: &Arc<dyn Store>, n: u64) -> Vec<Event> {
    let mut events = sample_events(n, 0x9e37_79b9_7f4a_7c15);
    // Ids usually grow with time (they come from the clock), but nothing may depend on it: in
    // the second half, ids are swapped around within groups of four (ids start at 1000, so
    // the groups start at multiples of four).
    for e in events.iter_mut().skip((n as usize / 2).next_multiple_of(4)) {
        e.id = EventId(e.id.0 ^ 3);
    }
    put_events(store, &events, 100).await;
    events
}

/// Stores `events` in batches of `batch` (the benchmarks load [`sample_events`] with it).
///
/// # Panics
///
/// If the store refuses a batch: this is test and benchmark set-up.
pub async fn put_events(store: &Arc<dyn Store>, events: &[Event], batch: usize) {
    for chunk in events.chunks(batch.max(1)) {
        let b: Batch = chunk
            .iter()
            .map(|e| Mutation::PutEvent(Box::new(e.clone())))
            .collect();
        store.apply(b).await.expect("store the sample events");
    }
}

fn event_filters() -> Vec<(&'static str, EventFilter)> {
    // `t(7)` is one event step after T0.
    let t = |s: i64| Some(Timestamp(T0 + s * EVENT_STEP_US / 7));
    let f = EventFilter::default;
    vec![
        ("all", f()),
        (
            "camera",
            EventFilter {
                cameras: vec![cam("front")],
                ..f()
            },
        ),
        (
            "two cameras",
            EventFilter {
                cameras: vec![cam("front"), cam("garage")],
                ..f()
            },
        ),
        (
            "label",
            EventFilter {
                labels: vec!["car".into()],
                ..f()
            },
        ),
        (
            "camera+label",
            EventFilter {
                cameras: vec![cam("back")],
                labels: vec!["person".into()],
                ..f()
            },
        ),
        (
            "cameras x labels",
            EventFilter {
                cameras: vec![cam("back"), cam("front")],
                labels: vec!["person".into(), "dog".into()],
                ..f()
            },
        ),
        (
            "camera+label+time",
            EventFilter {
                cameras: vec![cam("front")],
                labels: vec!["person".into()],
                time: TimeRange {
                    after: t(600),
                    before: t(2400),
                },
                ..f()
            },
        ),
        (
            "sub_label",
            EventFilter {
                sub_labels: vec!["Alice".into()],
                ..f()
            },
        ),
        (
            "zone",
            EventFilter {
                zones: vec!["porch".into()],
                ..f()
            },
        ),
        (
            "zones",
            EventFilter {
                zones: vec!["porch".into(), "yard".into()],
                ..f()
            },
        ),
        (
            "after",
            EventFilter {
                time: TimeRange {
                    after: t(1000),
                    before: None,
                },
                ..f()
            },
        ),
        (
            "before",
            EventFilter {
                time: TimeRange {
                    after: None,
                    before: t(1000),
                },
                ..f()
            },
        ),
        (
            "empty range",
            EventFilter {
                time: TimeRange {
                    after: t(100),
                    before: t(100),
                },
                ..f()
            },
        ),
        (
            "has_clip",
            EventFilter {
                has_clip: Some(true),
                ..f()
            },
        ),
        (
            "no clip",
            EventFilter {
                has_clip: Some(false),
                ..f()
            },
        ),
        (
            "has_snapshot",
            EventFilter {
                has_snapshot: Some(true),
                ..f()
            },
        ),
        (
            "retained",
            EventFilter {
                retain: Some(true),
                ..f()
            },
        ),
        (
            "reviewed",
            EventFilter {
                review: Some(ReviewStatus::Reviewed),
                ..f()
            },
        ),
        (
            "unreviewed",
            EventFilter {
                review: Some(ReviewStatus::Unreviewed),
                ..f()
            },
        ),
        (
            "min score",
            EventFilter {
                min_score: Some(0.75),
                ..f()
            },
        ),
        (
            "in progress",
            EventFilter {
                in_progress: Some(true),
                ..f()
            },
        ),
        (
            "text label",
            EventFilter {
                text: Some("PERSON".into()),
                ..f()
            },
        ),
        (
            "text sub_label",
            EventFilter {
                text: Some("alice".into()),
                ..f()
            },
        ),
        (
            "text notes words",
            EventFilter {
                text: Some("van gate".into()),
                ..f()
            },
        ),
        (
            "text no match",
            EventFilter {
                text: Some("zebra".into()),
                ..f()
            },
        ),
        (
            "unknown camera",
            EventFilter {
                cameras: vec![cam("nowhere")],
                ..f()
            },
        ),
        (
            "everything",
            EventFilter {
                cameras: vec![cam("front"), cam("back")],
                labels: vec!["person".into(), "car".into()],
                zones: vec!["driveway".into()],
                time: TimeRange {
                    after: t(100),
                    before: t(3500),
                },
                has_snapshot: Some(true),
                min_score: Some(0.2),
                ..f()
            },
        ),
    ]
}

/// Every event filter, with every sort order, paged, against the in-memory evaluation.
pub async fn events_filters_and_sorts(open: &impl Opener) {
    let dir = tmp();
    let store = open(dir.path()).unwrap();
    let events = seed_events(&store, 500).await;
    for (name, filter) in event_filters() {
        let expected: Vec<Event> = events
            .iter()
            .filter(|e| event_matches(&filter, e))
            .cloned()
            .collect();
        for sort in [SortBy::Time, SortBy::Score, SortBy::Duration] {
            for order in [Order::Asc, Order::Desc] {
                let want = ordered(&expected, |e| event_key(e, sort), order);
                let got = collect_pages(7, |page| {
                    let q = Query {
                        filter: filter.clone(),
                        sort,
                        order,
                        page,
                    };
                    let s = store.clone();
                    async move { s.events(&q).await }
                })
                .await;
                let ids = |v: &[Event]| v.iter().map(|e| e.id).collect::<Vec<_>>();
                assert_eq!(ids(&got), ids(&want), "filter {name}, {sort:?} {order:?}");
            }
        }
        // Totals and offsets.
        let mut q = Query::new(filter.clone());
        q.page = PageRequest {
            limit: 5,
            cursor: None,
            offset: 3,
            with_total: true,
        };
        let page = store.events(&q).await.unwrap();
        assert_eq!(page.total, Some(expected.len() as u64), "total of {name}");
        let want = ordered(&expected, |e| event_key(e, SortBy::Time), Order::Desc);
        let want: Vec<EventId> = want.iter().skip(3).take(5).map(|e| e.id).collect();
        assert_eq!(
            page.items.iter().map(|e| e.id).collect::<Vec<_>>(),
            want,
            "offset of {name}"
        );
    }
    // Aggregates.
    let counts = store.event_counts().await.unwrap();
    assert_eq!(counts.total, events.len() as u64);
    for c in CAMS {
        let n = events.iter().filter(|e| e.camera.as_str() == c).count() as u64;
        assert_eq!(counts.by_camera.get(&cam(c)).copied().unwrap_or(0), n);
    }
    for l in LABELS {
        let n = events.iter().filter(|e| e.label == l).count() as u64;
        assert_eq!(counts.by_label.get(l).copied().unwrap_or(0), n);
    }
    for tz_name in ["UTC", "America/New_York", "Asia/Tokyo"] {
        let tz = jiff::tz::TimeZone::get(tz_name).unwrap();
        let sf = SummaryFilter {
            cameras: vec![cam("front"), cam("back")],
            ..Default::default()
        };
        let rows = store.events_summary(&sf, &tz).await.unwrap();
        let mut want: BTreeMap<(String, String, Vec<String>, jiff::civil::Date), [u64; 4]> =
            BTreeMap::new();
        for e in events.iter().filter(|e| sf.cameras.contains(&e.camera)) {
            let mut z = e.zones.clone();
            z.sort();
            let day = e.start_time.date_in(&tz).unwrap();
            let w = want
                .entry((e.camera.to_string(), e.label.clone(), z, day))
                .or_default();
            w[0] += 1;
            w[1] += u64::from(e.has_clip);
            w[2] += u64::from(e.has_snapshot);
            w[3] += u64::from(e.review == ReviewStatus::Reviewed);
        }
        let got: BTreeMap<_, _> = rows
            .into_iter()
            .map(|r| {
                (
                    (r.camera.to_string(), r.label, r.zones, r.day),
                    [r.count, r.with_clip, r.with_snapshot, r.reviewed],
                )
            })
            .collect();
        assert_eq!(got, want, "events summary in {tz_name}");
    }
}

/// [`Mutation::PatchEvent`] and [`Mutation::UpdateEvent`] change an event against the stored
/// one, so a person's review and the pipeline's end both stay whichever is written first; the
/// change feed announces each as the [`Mutation::PutEvent`] of the result.
pub async fn event_patches_and_updates_keep_each_writers_fields(open: &impl Opener) {
    let dir = tmp();
    let store = open(dir.path()).unwrap();
    let mut events = sample_events(40, 11);
    for e in &mut events {
        e.end_time = None;
        e.review = ReviewStatus::Unreviewed;
        e.notes = None;
        e.retain = false;
    }
    put_events(&store, &events, 40).await;
    let mut feed = store.changes();
    let patch = |e: &Event| EventPatch {
        review: Some(ReviewStatus::Reviewed),
        notes: Some(Some(format!("seen {}", e.id))),
        retain: Some(true),
        ..EventPatch::new(e.id)
    };
    // The pipeline's copy knows nothing of the review; it ends the event.
    let ended = |e: &Event| {
        let mut e = e.clone();
        e.end_time = Some(
            e.start_time
                .saturating_add(std::time::Duration::from_secs(5)),
        );
        e.top_score = 0.97;
        e
    };
    let check = |e: &Event, original: &Event| {
        assert_eq!(e.review, ReviewStatus::Reviewed, "{}", e.id);
        assert_eq!(e.notes, Some(format!("seen {}", e.id)));
        assert!(e.retain);
        assert_eq!(e.end_time, ended(original).end_time);
        assert_eq!(e.top_score, 0.97);
    };

    // In both orders.
    let (a, b) = (&events[0], &events[1]);
    store
        .apply(Mutation::PatchEvent(Box::new(patch(a))).into())
        .await
        .unwrap();
    store
        .apply(Mutation::UpdateEvent(Box::new(ended(a))).into())
        .await
        .unwrap();
    store
        .apply(Mutation::UpdateEvent(Box::new(ended(b))).into())
        .await
        .unwrap();
    store
        .apply(Mutation::PatchEvent(Box::new(patch(b))).into())
        .await
        .unwrap();
    for e in [a, b] {
        check(&store.event(e.id).await.unwrap().unwrap(), e);
    }
    // Each was announced as the event it left.
    let mut announced = Vec::new();
    for want in [a, a, b, b] {
        let got = feed.try_recv().expect("announced");
        let [Mutation::PutEvent(e)] = &got.mutations[..] else {
            panic!("announced as {got:?}");
        };
        assert_eq!(e.id, want.id);
        announced.push(Event::clone(e));
    }
    assert_eq!(announced[0].review, ReviewStatus::Reviewed);
    assert_eq!(announced[0].end_time, None);
    assert_eq!(announced[2].review, ReviewStatus::Unreviewed);
    assert_eq!(announced[2].end_time, ended(b).end_time);
    for (i, e) in [(1, a), (3, b)] {
        assert_eq!(announced[i], store.event(e.id).await.unwrap().unwrap());
    }

    // Many writers at once, on the rest: whatever the order, both changes stay.
    let mut tasks = Vec::new();
    for e in &events[2..] {
        for update in [false, true] {
            let (s, e) = (store.clone(), e.clone());
            let m = if update {
                Mutation::UpdateEvent(Box::new(ended(&e)))
            } else {
                Mutation::PatchEvent(Box::new(patch(&e)))
            };
            tasks.push(tokio::spawn(
                async move { s.apply(m.into()).await.unwrap() },
            ));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    for e in &events[2..] {
        check(&store.event(e.id).await.unwrap().unwrap(), e);
    }

    // An end patch keeps an earlier end, and never ends before the start; a patch of an event
    // that is gone writes nothing and is not announced.
    let c = &events[0];
    let mut late = EventPatch::new(c.id);
    late.end = Some(Timestamp(i64::MAX / 2));
    let mut open_one = events[1].clone();
    open_one.id = EventId(999_999);
    open_one.end_time = None;
    put_events(&store, std::slice::from_ref(&open_one), 1).await;
    let mut early = EventPatch::new(open_one.id);
    early.end = Some(Timestamp(open_one.start_time.0 - 1_000_000));
    let mut feed = store.changes();
    let gone = EventPatch {
        review: Some(ReviewStatus::Reviewed),
        ..EventPatch::new(EventId(1))
    };
    let batch: Batch = [late, early, gone]
        .into_iter()
        .map(|p| Mutation::PatchEvent(Box::new(p)))
        .collect();
    store.apply(batch).await.unwrap();
    assert_eq!(
        store.event(c.id).await.unwrap().unwrap().end_time,
        ended(c).end_time
    );
    let stored = store.event(open_one.id).await.unwrap().unwrap();
    assert_eq!(stored.end_time, Some(stored.start_time));
    assert!(store.event(EventId(1)).await.unwrap().is_none());
    // Only the patch that changed something is announced.
    let got = feed.try_recv().expect("announced");
    let [Mutation::PutEvent(e)] = &got.mutations[..] else {
        panic!("announced as {got:?}");
    };
    assert_eq!(**e, stored);
    // A lone patch of an event that is gone is no change at all: nothing is announced.
    store
        .apply(Mutation::PatchEvent(Box::new(EventPatch::new(EventId(2)))).into())
        .await
        .unwrap();
    assert!(feed.try_recv().is_err(), "an empty change was announced");
    // An event a person ended stays ended when the pipeline's copy, still in progress,
    // comes after.
    let mut still_open = open_one.clone();
    still_open.top_score = 0.5;
    store
        .apply(Mutation::UpdateEvent(Box::new(still_open)).into())
        .await
        .unwrap();
    let after = store.event(open_one.id).await.unwrap().unwrap();
    assert_eq!(after.end_time, Some(after.start_time));
    assert_eq!(after.top_score, 0.5);
    // A patch that a request got wrong is refused before anything is written.
    let bad = EventPatch {
        notes: Some(Some("x".repeat(10_001))),
        ..EventPatch::new(c.id)
    };
    assert!(store
        .apply(Mutation::PatchEvent(Box::new(bad)).into())
        .await
        .is_err());
    assert_eq!(
        store.event(c.id).await.unwrap().unwrap().notes,
        Some(format!("seen {}", c.id))
    );
}

/// Updating and deleting events moves them between filters and counters.
pub async fn event_updates_keep_indexes_exact(open: &impl Opener) {
    let dir = tmp();
    let store = open(dir.path()).unwrap();
    let mut events = seed_events(&store, 200).await;
    let mut b = Batch::new();
    for e in events.iter_mut().step_by(3) {
        e.label = "car".into();
        e.zones = vec!["yard".into()];
        e.end_time = Some(
            e.start_time
                .saturating_add(std::time::Duration::from_secs(9)),
        );
        e.review = ReviewStatus::Reviewed;
        e.top_score = 0.99;
        b.push(Mutation::PutEvent(Box::new(e.clone())));
    }
    let deleted: Vec<EventId> = events.iter().skip(1).step_by(5).map(|e| e.id).collect();
    for id in &deleted {
        b.push(Mutation::DeleteEvent(*id));
    }
    b.push(Mutation::DeleteEvent(EventId(1))); // missing: a no-op
    store.apply(b).await.unwrap();
    events.retain(|e| !deleted.contains(&e.id));
    for (name, filter) in event_filters() {
        let expected: Vec<EventId> = ordered(
            &events
                .iter()
                .filter(|e| event_matches(&filter, e))
                .cloned()
                .collect::<Vec<_>>(),
            |e| event_key(e, SortBy::Score),
            Order::Desc,
        )
        .iter()
        .map(|e| e.id)
        .collect();
        let got = collect_pages(50, |page| {
            let q = Query {
                filter: filter.clone(),
                sort: SortBy::Score,
                order: Order::Desc,
                page,
            };
            let s = store.clone();
            async move { s.events(&q).await }
        })
        .await;
        assert_eq!(
            got.iter().map(|e| e.id).collect::<Vec<_>>(),
            expected,
            "after updates: {name}"
        );
    }
    assert_eq!(
        store.event_counts().await.unwrap().total,
        events.len() as u64
    );
    for id in deleted {
        assert_eq!(store.event(id).await.unwrap(), None);
    }
}

fn sample_recording(i: u64, r: &mut Rng) -> Recording {
    let start = T0 + (i as i64) * 10_000_000;
    let n = r.below(3);
    let objects = (0..n)
        .map(|_| RecordedObject {
            label: LABELS[r.below(4) as usize].to_owned(),
            score: r.below(1000) as f32 / 1000.0,
            bbox: BBox::default(),
            tracker_id: Some(r.below(40)),
        })
        .collect();
    Recording {
        id: RecordingId(5000 + i),
        camera: cam(CAMS[r.below(3) as usize]),
        kind: if r.below(4) == 0 {
            RecordingKind::Event
        } else {
            RecordingKind::Continuous
        },
        start_time: Timestamp(start),
        end_time: Timestamp(start + 1_000_000 + r.below(9_000_000) as i64),
        size_bytes: 100_000 + r.below(1_000_000),
        path: format!("recordings/{i}.mp4"),
        codec: "avc1.64001f".into(),
        width: 1920,
        height: 1080,
        frames: 300,
        objects,
        retained: r.below(5) == 0,
        event_ids: if r.below(3) == 0 {
            vec![EventId(1000 + i)]
        } else {
            vec![]
        },
        thumbnail_path: None,
        sprite_path: None,
    }
}

/// Recording filters (SpectraX's), sorts, lookup by path and the statistics.
pub async fn recordings_filters_sorts_and_stats(open: &impl Opener) {
    let dir = tmp();
    let store = open(dir.path()).unwrap();
    let mut r = Rng(42);
    let recs: Vec<Recording> = (0..300).map(|i| sample_recording(i, &mut r)).collect();
    store
        .apply(
            recs.iter()
                .map(|x| Mutation::PutRecording(Box::new(x.clone())))
                .collect(),
        )
        .await
        .unwrap();
    let t = |s: i64| Some(Timestamp(T0 + s * 1_000_000));
    let f = RecordingFilter::default;
    let filters = vec![
        ("all", f()),
        (
            "camera",
            RecordingFilter {
                cameras: vec![cam("back")],
                ..f()
            },
        ),
        (
            "object",
            RecordingFilter {
                labels: vec!["person".into()],
                ..f()
            },
        ),
        (
            "camera+object",
            RecordingFilter {
                cameras: vec![cam("front")],
                labels: vec!["dog".into()],
                ..f()
            },
        ),
        (
            "tracker",
            RecordingFilter {
                tracker_ids: vec![7, 8],
                ..f()
            },
        ),
        (
            "kind",
            RecordingFilter {
                kinds: vec![RecordingKind::Event],
                ..f()
            },
        ),
        (
            "time",
            RecordingFilter {
                time: TimeRange {
                    after: t(500),
                    before: t(2000),
                },
                ..f()
            },
        ),
        (
            "min confidence",
            RecordingFilter {
                min_score: Some(0.8),
                ..f()
            },
        ),
        (
            "retained",
            RecordingFilter {
                retained: Some(true),
                ..f()
            },
        ),
        (
            "event",
            RecordingFilter {
                event_id: Some(EventId(1003)),
                ..f()
            },
        ),
    ];
    for (name, filter) in filters {
        let expected: Vec<Recording> = recs
            .iter()
            .filter(|x| {
                (filter.cameras.is_empty() || filter.cameras.contains(&x.camera))
                    && (filter.labels.is_empty()
                        || x.objects.iter().any(|o| filter.labels.contains(&o.label)))
                    && (filter.tracker_ids.is_empty()
                        || x.tracker_ids()
                            .iter()
                            .any(|t| filter.tracker_ids.contains(t)))
                    && (filter.kinds.is_empty() || filter.kinds.contains(&x.kind))
                    && filter.time.contains(x.start_time)
                    && filter.min_score.is_none_or(|m| x.max_score() >= m)
                    && filter.retained.is_none_or(|v| v == x.retained)
                    && filter.event_id.is_none_or(|e| x.event_ids.contains(&e))
            })
            .cloned()
            .collect();
        for sort in [SortBy::Time, SortBy::Score, SortBy::Duration] {
            for order in [Order::Asc, Order::Desc] {
                let want: Vec<RecordingId> = ordered(&expected, |x| recording_key(x, sort), order)
                    .iter()
                    .map(|x| x.id)
                    .collect();
                let got = collect_pages(9, |page| {
                    let q = Query {
                        filter: filter.clone(),
                        sort,
                        order,
                        page,
                    };
                    let s = store.clone();
                    async move { s.recordings(&q).await }
                })
                .await;
                assert_eq!(
                    got.iter().map(|x| x.id).collect::<Vec<_>>(),
                    want,
                    "recordings {name} {sort:?} {order:?}"
                );
            }
        }
    }
    let by_path = store
        .recording_by_path("recordings/17.mp4")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_path.id, RecordingId(5017));
    assert_eq!(
        store
            .recording_by_path("recordings/nope.mp4")
            .await
            .unwrap(),
        None
    );

    let stats = store.recording_stats(5).await.unwrap();
    assert_eq!(stats.total.count, recs.len() as u64);
    assert_eq!(
        stats.total.size_bytes,
        recs.iter().map(|x| x.size_bytes).sum::<u64>()
    );
    assert_eq!(
        stats.total.duration_us,
        recs.iter().map(Recording::duration_us).sum::<i64>()
    );
    assert_eq!(stats.oldest, recs.iter().map(|x| x.start_time).min());
    assert_eq!(stats.newest, recs.iter().map(|x| x.start_time).max());
    for c in CAMS {
        let n = recs.iter().filter(|x| x.camera.as_str() == c).count() as u64;
        assert_eq!(stats.by_camera[&cam(c)].count, n);
    }
    for l in LABELS {
        let n = recs
            .iter()
            .filter(|x| x.objects.iter().any(|o| o.label == l))
            .count() as u64;
        assert_eq!(stats.objects.get(l).copied().unwrap_or(0), n, "objects {l}");
    }
    let mut trackers: BTreeMap<u64, u64> = BTreeMap::new();
    for x in &recs {
        for t in x.tracker_ids() {
            *trackers.entry(t).or_default() += 1;
        }
    }
    assert_eq!(stats.unique_tracker_ids, trackers.len() as u64);
    let mut top: Vec<(u64, u64)> = trackers.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    top.truncate(5);
    assert_eq!(stats.most_frequent_trackers, top);

    // Art is set on a recording that exists, and never brings back one that is gone.
    let (kept, gone) = (&recs[0], &recs[1]);
    store
        .apply(
            vec![
                Mutation::DeleteRecording(gone.id),
                Mutation::SetRecordingArt {
                    id: kept.id,
                    thumbnail_path: Some("recordings/a.thumb.jpg".into()),
                    sprite_path: Some("recordings/a.sprite.jpg".into()),
                },
                Mutation::SetRecordingArt {
                    id: gone.id,
                    thumbnail_path: Some("recordings/b.thumb.jpg".into()),
                    sprite_path: None,
                },
            ]
            .into_iter()
            .collect(),
        )
        .await
        .unwrap();
    let got = store.recording(kept.id).await.unwrap().unwrap();
    assert_eq!(
        got.thumbnail_path.as_deref(),
        Some("recordings/a.thumb.jpg")
    );
    assert_eq!(got.sprite_path.as_deref(), Some("recordings/a.sprite.jpg"));
    assert_eq!(
        Recording {
            thumbnail_path: None,
            sprite_path: None,
            ..got
        },
        *kept
    );
    assert_eq!(store.recording(gone.id).await.unwrap(), None);
    let escape = Mutation::SetRecordingArt {
        id: kept.id,
        thumbnail_path: Some("../outside.jpg".into()),
        sprite_path: None,
    };
    assert!(store.apply(escape.into()).await.is_err());
}

/// Detections (with trends), audit entries, log entries, snapshots and timelapse frames.
pub async fn detections_audit_logs_snapshots(open: &impl Opener) {
    let dir = tmp();
    let store = open(dir.path()).unwrap();
    let mut r = Rng(7);
    let dets: Vec<Detection> = (0..300)
        .map(|i| Detection {
            id: DetectionId(9000 + i),
            camera: cam(CAMS[r.below(3) as usize]),
            time: Timestamp(T0 + i as i64 * 900_000_000),
            label: LABELS[r.below(4) as usize].to_owned(),
            score: r.below(1000) as f32 / 1000.0,
            bbox: BBox::default(),
            tracker_id: Some(r.below(20)),
            event_id: Some(EventId(1000 + r.below(10))),
            image_path: None,
        })
        .collect();
    let audits: Vec<AuditEntry> = (0..120)
        .map(|i| AuditEntry {
            id: AuditId(20_000 + i),
            time: Timestamp(T0 + i as i64 * 1_000_000),
            actor: ["admin", "apikey:ci", "system"][r.below(3) as usize].to_owned(),
            action: ["camera.create", "event.review", "login"][r.below(3) as usize].to_owned(),
            resource_type: ["camera", "event", "account"][r.below(3) as usize].to_owned(),
            resource_id: Some(format!("{}", r.below(5))),
            ip: None,
            outcome: if r.below(4) == 0 {
                Outcome::Failure
            } else {
                Outcome::Success
            },
            details_json: "{}".into(),
        })
        .collect();
    let logs: Vec<LogEntry> = (0..150)
        .map(|i| LogEntry {
            id: LogId(30_000 + i),
            time: Timestamp(T0 + i as i64 * 1_000_000),
            level: [
                LogLevel::Debug,
                LogLevel::Info,
                LogLevel::Warning,
                LogLevel::Error,
            ][r.below(4) as usize],
            source: ["app", "recorder", "camera"][r.below(3) as usize].to_owned(),
            camera: if r.below(2) == 0 {
                Some(cam(CAMS[r.below(3) as usize]))
            } else {
                None
            },
            message: [
                "camera front connected",
                "disk almost full",
                "reconnecting after stall",
            ][r.below(3) as usize]
                .to_owned(),
        })
        .collect();
    let snaps: Vec<Snapshot> = (0..40)
        .map(|i| Snapshot {
            id: SnapshotId(40_000 + i),
            camera: cam(CAMS[(i % 3) as usize]),
            time: Timestamp(T0 + i as i64 * 1_000_000),
            path: format!("snapshots/{i}.jpg"),
            size_bytes: 1000,
            source: SnapshotSource::Manual,
            event_id: (i % 4 == 0).then_some(EventId(1000 + i)),
        })
        .collect();
    let frames: Vec<TimelapseFrame> = (0..30)
        .map(|i| TimelapseFrame {
            id: TimelapseFrameId(50_000 + i),
            camera: cam(CAMS[(i % 2) as usize]),
            time: Timestamp(T0 + i as i64 * 300_000_000),
            path: format!("timelapse/{i}.jpg"),
            size_bytes: 500,
        })
        .collect();
    let mut b = Batch::new();
    b.mutations.extend(
        dets.iter()
            .map(|x| Mutation::PutDetection(Box::new(x.clone()))),
    );
    b.mutations.extend(
        audits
            .iter()
            .map(|x| Mutation::PutAudit(Box::new(x.clone()))),
    );
    b.mutations
        .extend(logs.iter().map(|x| Mutation::PutLog(Box::new(x.clone()))));
    b.mutations.extend(
        snaps
            .iter()
            .map(|x| Mutation::PutSnapshot(Box::new(x.clone()))),
    );
    b.mutations.extend(
        frames
            .iter()
            .map(|x| Mutation::PutTimelapseFrame(Box::new(x.clone()))),
    );
    store.apply(b).await.unwrap();

    // Detections.
    let dfs = vec![
        DetectionFilter::default(),
        DetectionFilter {
            cameras: vec![cam("front")],
            labels: vec!["car".into()],
            ..Default::default()
        },
        DetectionFilter {
            event_id: Some(EventId(1003)),
            ..Default::default()
        },
        DetectionFilter {
            tracker_ids: vec![3],
            min_score: Some(0.3),
            ..Default::default()
        },
        DetectionFilter {
            time: TimeRange {
                after: Some(Timestamp(T0 + 3_600_000_000 * 10)),
                before: Some(Timestamp(T0 + 3_600_000_000 * 40)),
            },
            ..Default::default()
        },
    ];
    for f in dfs {
        for sort in [SortBy::Time, SortBy::Score] {
            let want: Vec<DetectionId> = ordered(
                &dets
                    .iter()
                    .filter(|d| {
                        (f.cameras.is_empty() || f.cameras.contains(&d.camera))
                            && (f.labels.is_empty() || f.labels.contains(&d.label))
                            && f.event_id.is_none_or(|e| d.event_id == Some(e))
                            && (f.tracker_ids.is_empty()
                                || d.tracker_id.is_some_and(|t| f.tracker_ids.contains(&t)))
                            && f.time.contains(d.time)
                            && f.min_score.is_none_or(|m| d.score >= m)
                    })
                    .cloned()
                    .collect::<Vec<_>>(),
                |d| {
                    (
                        if sort == SortBy::Score {
                            d.score.to_bits()
                        } else {
                            0
                        },
                        d.time,
                        d.id,
                    )
                },
                Order::Desc,
            )
            .iter()
            .map(|d| d.id)
            .collect();
            let got = collect_pages(11, |page| {
                let q = Query {
                    filter: f.clone(),
                    sort,
                    order: Order::Desc,
                    page,
                };
                let s = store.clone();
                async move { s.detections(&q).await }
            })
            .await;
            assert_eq!(
                got.iter().map(|d| d.id).collect::<Vec<_>>(),
                want,
                "detections {f:?} {sort:?}"
            );
        }
    }
    let tz = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
    let trends = store
        .detection_trends(&SummaryFilter::default(), &tz)
        .await
        .unwrap();
    let mut want: BTreeMap<(jiff::civil::Date, String, String), u64> = BTreeMap::new();
    for d in &dets {
        *want
            .entry((
                d.time.date_in(&tz).unwrap(),
                d.camera.to_string(),
                d.label.clone(),
            ))
            .or_default() += 1;
    }
    let got: BTreeMap<_, _> = trends
        .into_iter()
        .map(|t| ((t.day, t.camera.to_string(), t.label), t.count))
        .collect();
    assert_eq!(got, want, "detection trends");

    // Audit.
    let af = AuditFilter {
        actors: vec!["admin".into()],
        outcome: Some(Outcome::Success),
        ..Default::default()
    };
    let want: Vec<AuditId> = audits
        .iter()
        .rev()
        .filter(|a| a.actor == "admin" && a.outcome == Outcome::Success)
        .map(|a| a.id)
        .collect();
    let got = collect_pages(4, |page| {
        let q = Query {
            filter: af.clone(),
            sort: SortBy::Time,
            order: Order::Desc,
            page,
        };
        let s = store.clone();
        async move { s.audit_entries(&q).await }
    })
    .await;
    assert_eq!(got.iter().map(|a| a.id).collect::<Vec<_>>(), want);
    let rf = AuditFilter {
        resource_id: Some("3".into()),
        ..Default::default()
    };
    let n = audits
        .iter()
        .filter(|a| a.resource_id.as_deref() == Some("3"))
        .count();
    let got = collect_pages(1000, |page| {
        let q = Query {
            filter: rf.clone(),
            sort: SortBy::Time,
            order: Order::Asc,
            page,
        };
        let s = store.clone();
        async move { s.audit_entries(&q).await }
    })
    .await;
    assert_eq!(got.len(), n);
    let ac = store.audit_counts().await.unwrap();
    assert_eq!(ac.total, audits.len() as u64);
    assert_eq!(
        ac.by_actor["admin"],
        audits.iter().filter(|a| a.actor == "admin").count() as u64
    );

    // Logs, with text search and retention.
    let lf = LogFilter {
        levels: vec![LogLevel::Warning, LogLevel::Error],
        text: Some("Disk FULL".into()),
        ..Default::default()
    };
    let want: Vec<LogId> = logs
        .iter()
        .filter(|l| l.level >= LogLevel::Warning && l.message == "disk almost full")
        .map(|l| l.id)
        .collect();
    let got = collect_pages(3, |page| {
        let q = Query {
            filter: lf.clone(),
            sort: SortBy::Time,
            order: Order::Asc,
            page,
        };
        let s = store.clone();
        async move { s.log_entries(&q).await }
    })
    .await;
    assert_eq!(got.iter().map(|l| l.id).collect::<Vec<_>>(), want);
    let cf = LogFilter {
        cameras: vec![cam("garage")],
        sources: vec!["camera".into()],
        ..Default::default()
    };
    let n = logs
        .iter()
        .filter(|l| l.source == "camera" && l.camera == Some(cam("garage")))
        .count();
    let mut q = Query::new(cf);
    q.page.with_total = true;
    assert_eq!(store.log_entries(&q).await.unwrap().total, Some(n as u64));
    store
        .apply(Mutation::DeleteLogsBefore(Timestamp(T0 + 100_000_000)).into())
        .await
        .unwrap();
    let lc = store.log_counts().await.unwrap();
    assert_eq!(lc.total, 50);
    let sort_err = store
        .log_entries(&Query {
            sort: SortBy::Score,
            ..Query::new(LogFilter::default())
        })
        .await
        .unwrap_err();
    assert_eq!(sort_err.kind(), ErrorKind::InvalidArgument);

    // Snapshots and timelapse frames.
    let sf = SnapshotFilter {
        cameras: vec![cam("back")],
        ..Default::default()
    };
    let got = collect_pages(5, |page| {
        let q = Query {
            filter: sf.clone(),
            sort: SortBy::Time,
            order: Order::Desc,
            page,
        };
        let s = store.clone();
        async move { s.snapshots(&q).await }
    })
    .await;
    let want: Vec<SnapshotId> = snaps
        .iter()
        .rev()
        .filter(|s| s.camera == cam("back"))
        .map(|s| s.id)
        .collect();
    assert_eq!(got.iter().map(|s| s.id).collect::<Vec<_>>(), want);
    let ef = SnapshotFilter {
        event_id: Some(EventId(1008)),
        ..Default::default()
    };
    let one = store.snapshots(&Query::new(ef)).await.unwrap();
    assert_eq!(
        one.items.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![SnapshotId(40_008)]
    );
    let tf = TimelapseFilter {
        cameras: vec![cam("front")],
        ..Default::default()
    };
    let got = collect_pages(4, |page| {
        let q = Query {
            filter: tf.clone(),
            sort: SortBy::Time,
            order: Order::Asc,
            page,
        };
        let s = store.clone();
        async move { s.timelapse_frames(&q).await }
    })
    .await;
    assert_eq!(got.len(), 15);
    assert!(got.windows(2).all(|w| w[0].time < w[1].time));
}

/// Empty lists, an exactly full last page, and a cursor whose rows were deleted.
pub async fn pagination_edges(open: &impl Opener) {
    let dir = tmp();
    let store = open(dir.path()).unwrap();
    // Empty store.
    let page = store
        .events(&Query::new(EventFilter::default()))
        .await
        .unwrap();
    assert!(page.items.is_empty() && !page.has_more && page.next_cursor.is_none());
    let events = seed_events(&store, 30).await;
    // 30 rows in pages of 10: the third page is the last and says so.
    let mut q = Query::new(EventFilter::default());
    q.page.limit = 10;
    let mut pages = Vec::new();
    loop {
        let p = store.events(&q).await.unwrap();
        let next = p.next_cursor.clone();
        pages.push(p);
        match next {
            Some(c) => q.page.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(
        pages.len(),
        3,
        "an exactly full last page must not be followed by an empty one"
    );
    assert!(!pages[2].has_more);
    // A cursor outlives the deletion of its own row and of the rows right after it.
    let mut q = Query::new(EventFilter::default());
    q.order = Order::Asc;
    q.page.limit = 10;
    let first = store.events(&q).await.unwrap();
    let cursor = first.next_cursor.clone().unwrap();
    let mut newest_first: Vec<Event> = events.clone();
    newest_first.sort_by_key(|e| (e.start_time, e.id));
    let doomed = [newest_first[9].id, newest_first[10].id, newest_first[11].id];
    store
        .apply(doomed.iter().map(|id| Mutation::DeleteEvent(*id)).collect())
        .await
        .unwrap();
    q.page.cursor = Some(cursor);
    let second = store.events(&q).await.unwrap();
    let want: Vec<EventId> = newest_first[12..22].iter().map(|e| e.id).collect();
    assert_eq!(second.items.iter().map(|e| e.id).collect::<Vec<_>>(), want);
}

/// Bad cursors and limits are clear `InvalidArgument` errors, never panics.
pub async fn bad_input(open: &impl Opener) {
    let dir = tmp();
    let store = open(dir.path()).unwrap();
    seed_events(&store, 20).await;
    let mut q = Query::new(EventFilter::default());
    for bad in ["", "nonsense", "00", &"ff".repeat(35), &"é".repeat(35)] {
        q.page.cursor = Some(bad.to_owned());
        let e = store.events(&q).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "cursor {bad:?}");
    }
    q.page.cursor = None;
    q.page.limit = 5;
    let c = store.events(&q).await.unwrap().next_cursor.unwrap();
    let mut other = Query::new(EventFilter {
        labels: vec!["car".into()],
        ..Default::default()
    });
    other.page.cursor = Some(c.clone());
    assert_eq!(
        store.events(&other).await.unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    let mut resorted = q.clone();
    resorted.sort = SortBy::Score;
    resorted.page.cursor = Some(c);
    assert_eq!(
        store.events(&resorted).await.unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    for limit in [0, MAX_PAGE_LIMIT + 1] {
        q.page.limit = limit;
        assert_eq!(
            store.events(&q).await.unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
    }
    // Invalid records are refused before anything is written.
    let mut r = Rng(1);
    let mut rng = |m: u64| r.below(m);
    let mut e = sample_event(999, &mut rng);
    e.top_score = 1.5;
    let good = sample_event(998, &mut rng);
    let b: Batch = [
        Mutation::PutEvent(Box::new(good.clone())),
        Mutation::PutEvent(Box::new(e)),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        store.apply(b).await.unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        store.event(good.id).await.unwrap(),
        None,
        "a refused batch writes nothing"
    );
    let mut e = good;
    e.label = "bad\u{1}label".into();
    assert_eq!(
        store
            .apply(Mutation::PutEvent(Box::new(e)).into())
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidArgument
    );
}

/// Everything written is there after closing and opening again.
pub async fn reopen_after_close(open: &impl Opener) {
    let dir = tmp();
    let store = open(dir.path()).unwrap();
    let events = seed_events(&store, 120).await;
    let before = store.event_counts().await.unwrap();
    let max_id = store.max_id().await.unwrap();
    drop(store);
    let store = open(dir.path()).unwrap();
    assert_eq!(store.event_counts().await.unwrap(), before);
    assert_eq!(store.max_id().await.unwrap(), max_id);
    for e in &events {
        assert_eq!(store.event(e.id).await.unwrap().as_ref(), Some(e));
    }
}

/// Readers running while a writer commits never see half a batch.
pub async fn concurrent_readers_with_writer(open: &impl Opener) {
    let dir = tmp();
    let store = open(dir.path()).unwrap();
    const BATCH: u64 = 25;
    const BATCHES: u64 = 40;
    let writer = {
        let s = store.clone();
        tokio::spawn(async move {
            let mut r = Rng(3);
            let mut rng = |m: u64| r.below(m);
            for b in 0..BATCHES {
                let batch: Batch = (0..BATCH)
                    .map(|i| {
                        let mut e = sample_event(b * BATCH + i, &mut rng);
                        e.label = format!("batch{b}");
                        Mutation::PutEvent(Box::new(e))
                    })
                    .collect();
                s.apply(batch).await.unwrap();
            }
        })
    };
    let mut readers = Vec::new();
    for _ in 0..4 {
        let s = store.clone();
        readers.push(tokio::spawn(async move {
            let mut last_total = 0;
            loop {
                let c = s.event_counts().await.unwrap();
                assert!(c.total >= last_total, "the count went backwards");
                assert_eq!(c.total % BATCH, 0, "a reader saw half a batch");
                for (label, n) in &c.by_label {
                    assert_eq!(*n, BATCH, "label {label} is half written");
                }
                let mut q = Query::new(EventFilter::default());
                q.page.limit = 1000;
                q.page.with_total = true;
                let p = s.events(&q).await.unwrap();
                assert_eq!(p.total.unwrap() % BATCH, 0);
                last_total = c.total;
                if c.total == BATCH * BATCHES {
                    return;
                }
                tokio::task::yield_now().await;
            }
        }));
    }
    writer.await.unwrap();
    for r in readers {
        r.await.unwrap();
    }
}

/// Cameras, triggers, accounts, keys, alert rules, quiet hours and notification preferences.
pub async fn config_records(open: &impl Opener) {
    let dir = tmp();
    let store = open(dir.path()).unwrap();
    let now = Timestamp(T0);
    let mut c = CameraConfig::new(
        cam("front"),
        Source::Synthetic {
            width: 640,
            height: 480,
            fps: 10,
        },
        now,
    );
    c.zones.push(Zone {
        name: "porch".into(),
        polygon: Polygon {
            points: vec![
                Point { x: 0.1, y: 0.1 },
                Point { x: 0.5, y: 0.1 },
                Point { x: 0.3, y: 0.6 },
            ],
        },
        kind: "entry_point".into(),
        enabled: true,
        color: "#ff0000".into(),
        labels: vec![],
        inertia: 3,
        loitering_time_s: 0,
    });
    let acct = Account {
        id: AccountId(7),
        username: "alice".into(),
        role: Role::Admin,
        password_hash: "$argon2id$v=19$...".into(),
        created_at: now,
        last_login: None,
    };
    let rule = AlertRule {
        id: AlertRuleId(8),
        name: "night person".into(),
        description: String::new(),
        enabled: true,
        severity: Severity::High,
        cameras: vec![cam("front")],
        labels: vec!["person".into()],
        zones: vec![],
        min_score: 0.6,
        min_risk: None,
        schedule: Some(Schedule {
            days: vec![0, 1, 2],
            start_minute: 22 * 60,
            end_minute: 6 * 60,
            timezone: "UTC".into(),
        }),
        cooldown_s: 60,
        channels: vec![AlertChannel::Webhook {
            url: "http://127.0.0.1:9/hook".into(),
        }],
        created_at: now,
        updated_at: now,
    };
    let trig = Trigger {
        id: TriggerId(9),
        name: "door".into(),
        sensor_type: "reed_switch".into(),
        kind: TriggerKind::Mqtt {
            topic: "home/door".into(),
            on_payload: "open".into(),
        },
        cameras: vec![cam("front")],
        enabled: true,
        hold_s: 10,
        invert: false,
        calibration_json: "{}".into(),
    };
    let key = ApiKey {
        id: ApiKeyId(10),
        name: "ci".into(),
        prefix: "vk_12".into(),
        key_hash: "h".into(),
        role: Role::Viewer,
        owner: Some(AccountId(7)),
        created_at: now,
        expires_at: None,
        last_used: None,
    };
    let quiet = QuietHours {
        id: QuietHoursId(11),
        label: "Night".into(),
        schedule: Schedule {
            days: vec![5, 6],
            start_minute: 0,
            end_minute: 480,
            timezone: "Europe/Paris".into(),
        },
        enabled: true,
    };
    let prefs = NotificationPreferences {
        cameras: vec![CameraNotification {
            camera: cam("front"),
            enabled: false,
            risk_threshold: 50,
        }],
        ..Default::default()
    };
    assert_eq!(
        store.notification_preferences().await.unwrap(),
        NotificationPreferences::default()
    );
    let b: Batch = [
        Mutation::PutCamera(Box::new(c.clone())),
        Mutation::PutAccount(Box::new(acct.clone())),
        Mutation::PutAlertRule(Box::new(rule.clone())),
        Mutation::PutTrigger(Box::new(trig.clone())),
        Mutation::PutApiKey(Box::new(key.clone())),
        Mutation::PutQuietHours(Box::new(quiet.clone())),
        Mutation::PutNotificationPreferences(Box::new(prefs.clone())),
    ]
    .into_iter()
    .collect();
    store.apply(b).await.unwrap();
    assert_eq!(store.camera(&cam("front")).await.unwrap(), Some(c.clone()));
    assert_eq!(store.cameras().await.unwrap(), vec![c]);
    assert_eq!(
        store.account(AccountId(7)).await.unwrap(),
        Some(acct.clone())
    );
    assert_eq!(
        store.account_by_username("alice").await.unwrap(),
        Some(acct)
    );
    assert_eq!(store.account_by_username("bob").await.unwrap(), None);
    assert_eq!(store.alert_rules().await.unwrap(), vec![rule.clone()]);
    assert_eq!(store.alert_rule(AlertRuleId(8)).await.unwrap(), Some(rule));
    assert_eq!(store.triggers().await.unwrap(), vec![trig.clone()]);
    assert_eq!(store.trigger(TriggerId(9)).await.unwrap(), Some(trig));
    assert_eq!(store.api_keys().await.unwrap(), vec![key.clone()]);
    assert_eq!(store.api_key(ApiKeyId(10)).await.unwrap(), Some(key));
    assert_eq!(store.quiet_hours().await.unwrap(), vec![quiet]);
    assert_eq!(store.notification_preferences().await.unwrap(), prefs);
    assert_eq!(store.max_id().await.unwrap(), 11);
    let b: Batch = [
        Mutation::DeleteCamera(cam("front")),
        Mutation::DeleteAccount(AccountId(7)),
        Mutation::DeleteAlertRule(AlertRuleId(8)),
        Mutation::DeleteTrigger(TriggerId(9)),
        Mutation::DeleteApiKey(ApiKeyId(10)),
        Mutation::DeleteQuietHours(QuietHoursId(11)),
    ]
    .into_iter()
    .collect();
    store.apply(b).await.unwrap();
    assert!(store.cameras().await.unwrap().is_empty());
    assert!(store.accounts().await.unwrap().is_empty());
    assert!(store.alert_rules().await.unwrap().is_empty());
    assert!(store.triggers().await.unwrap().is_empty());
    assert!(store.api_keys().await.unwrap().is_empty());
    assert!(store.quiet_hours().await.unwrap().is_empty());

    // Settings: set, replaced, kept apart by name, forgotten; bad names refused.
    let put = |k: &str, v: &str| Mutation::PutSetting {
        key: k.into(),
        value: v.into(),
    };
    assert_eq!(store.setting("arming").await.unwrap(), None);
    store.apply(put("arming", "true").into()).await.unwrap();
    store
        .apply(
            [
                put("arming", "false"),
                put("storage.budget", "{\"max_bytes\":5}"),
            ]
            .into_iter()
            .collect(),
        )
        .await
        .unwrap();
    assert_eq!(
        store.setting("arming").await.unwrap().as_deref(),
        Some("false")
    );
    assert_eq!(
        store.setting("storage.budget").await.unwrap().as_deref(),
        Some("{\"max_bytes\":5}")
    );
    store
        .apply(Mutation::DeleteSetting("arming".into()).into())
        .await
        .unwrap();
    assert_eq!(store.setting("arming").await.unwrap(), None);
    assert!(store.apply(put("", "1").into()).await.is_err());
    assert!(store
        .apply(put(&"k".repeat(201), "1").into())
        .await
        .is_err());
}
