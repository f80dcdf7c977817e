//! Store benchmark: 1,000,000 events inserted in batches, then a filtered page of 50 (camera +
//! label + time range, newest first) and the events summary, on the LMDB store and, in the same
//! run, on SQLite (rusqlite, bundled) with the indexes a careful user would make.
//!
//! `cargo bench -p vigil-benches --bench store`. `VIGIL_BENCH_EVENTS` changes the row count.
//! Besides criterion's figures it prints bulk-load rates and page latency percentiles
//! (median, p99) measured over 20,000 queries, which is what docs/benchmarks.md records.
//! `VIGIL_BENCH_LOAD_ONLY=1` stops after the bulk loads.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rusqlite::{params, Connection};
use vigil_core::*;
use vigil_store::{LmdbStore, StoreOptions};

const T0: i64 = 1_766_491_200_000_000;
const SPAN_US: i64 = 30 * 24 * 3_600_000_000; // 30 days
const CAMERAS: usize = 8;
const LABELS: [&str; 8] = [
    "person",
    "car",
    "dog",
    "cat",
    "bicycle",
    "truck",
    "bird",
    "motorcycle",
];
const ZONES: [&str; 3] = ["porch", "driveway", "yard"];
const BATCH: usize = 1000;

fn n_events() -> usize {
    std::env::var("VIGIL_BENCH_EVENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000)
}

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn event(i: usize, n: usize, r: &mut Rng) -> Event {
    let start = T0 + (i as i64) * (SPAN_US / n as i64);
    let zones = (0..r.below(3))
        .map(|z| ZONES[z as usize].to_owned())
        .collect();
    let top = r.below(1000) as f32 / 1000.0;
    Event {
        id: EventId(start as u64),
        camera: CameraId::new(format!("cam{}", r.below(CAMERAS as u64))).expect("valid"),
        label: LABELS[r.below(LABELS.len() as u64) as usize].to_owned(),
        sub_label: None,
        score: top,
        top_score: top,
        start_time: Timestamp(start),
        end_time: Some(Timestamp(start + 2_000_000 + r.below(30_000_000) as i64)),
        zones,
        tracker_id: Some(r.below(10_000)),
        bbox: BBox {
            x1: 0.1,
            y1: 0.2,
            x2: 0.3,
            y2: 0.6,
        },
        has_clip: r.below(2) == 0,
        has_snapshot: r.below(4) != 0,
        retain: false,
        review: ReviewStatus::Unreviewed,
        notes: None,
        risk_score: Some(r.below(100) as u8),
        best: None,
        stationary: false,
        detection_count: 10,
    }
}

fn events(n: usize) -> Vec<Event> {
    let mut r = Rng(0x2545_f491_4f6c_dd1d);
    (0..n).map(|i| event(i, n, &mut r)).collect()
}

/// The benchmark query: one camera, one label, a 3-day window, newest first, 50 rows.
fn page_filter(k: usize) -> (CameraId, &'static str, i64, i64) {
    let cam = CameraId::new(format!("cam{}", k % CAMERAS)).expect("valid");
    let label = LABELS[(k / CAMERAS) % LABELS.len()];
    let day = 3_600_000_000 * 24;
    let after = T0 + (k as i64 % 27) * day;
    (cam, label, after, after + 3 * day)
}

fn percentiles(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[v.len() * 99 / 100])
}

fn sqlite_open(path: &std::path::Path) -> Connection {
    let c = Connection::open(path).expect("open sqlite");
    c.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
         CREATE TABLE event (id INTEGER PRIMARY KEY, camera TEXT NOT NULL, label TEXT NOT NULL,
           zones TEXT NOT NULL, start_time INTEGER NOT NULL, end_time INTEGER, top_score REAL,
           has_clip INTEGER, has_snapshot INTEGER, data TEXT NOT NULL);
         CREATE INDEX event_start ON event(start_time);
         CREATE INDEX event_camera_label_start ON event(camera, label, start_time);
         CREATE INDEX event_label_start ON event(label, start_time);
         CREATE INDEX event_score ON event(top_score, start_time);",
    )
    .expect("schema");
    c
}

fn sqlite_insert(c: &mut Connection, chunk: &[Event]) {
    let tx = c.transaction().expect("begin");
    {
        let mut st = tx
            .prepare_cached(
                "INSERT INTO event (id, camera, label, zones, start_time, end_time, top_score,
                 has_clip, has_snapshot, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .expect("prepare");
        for e in chunk {
            let data = format!(
                "{{\"score\":{},\"tracker_id\":{},\"risk\":{},\"box\":[{},{},{},{}]}}",
                e.score,
                e.tracker_id.unwrap_or(0),
                e.risk_score.unwrap_or(0),
                e.bbox.x1,
                e.bbox.y1,
                e.bbox.x2,
                e.bbox.y2
            );
            st.execute(params![
                e.id.0 as i64,
                e.camera.as_str(),
                e.label,
                e.zones.join(","),
                e.start_time.0,
                e.end_time.map(|t| t.0),
                e.top_score,
                e.has_clip,
                e.has_snapshot,
                data
            ])
            .expect("insert");
        }
    }
    tx.commit().expect("commit");
}

type SqlRow = (i64, String, String, String, i64, Option<i64>, f64, String);

fn sqlite_page(c: &Connection, k: usize) -> Vec<SqlRow> {
    let (cam, label, after, before) = page_filter(k);
    let mut st = c
        .prepare_cached(
            "SELECT id, camera, label, zones, start_time, end_time, top_score, data FROM event
             WHERE camera = ?1 AND label = ?2 AND start_time >= ?3 AND start_time < ?4
             ORDER BY start_time DESC LIMIT 50",
        )
        .expect("prepare");
    st.query_map(params![cam.as_str(), label, after, before], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
        ))
    })
    .expect("query")
    .collect::<Result<_, _>>()
    .expect("rows")
}

fn sqlite_summary(c: &Connection) -> usize {
    let mut st = c
        .prepare_cached(
            "SELECT camera, label, zones, date(start_time / 1000000, 'unixepoch') AS day,
             count(*), sum(has_clip), sum(has_snapshot) FROM event GROUP BY camera, label, zones, day",
        )
        .expect("prepare");
    st.query_map([], |r| r.get::<_, i64>(4))
        .expect("query")
        .count()
}

fn lmdb_page_query(k: usize) -> Query<EventFilter> {
    let (cam, label, after, before) = page_filter(k);
    let mut q = Query::new(EventFilter {
        cameras: vec![cam],
        labels: vec![label.to_owned()],
        time: TimeRange {
            after: Some(Timestamp(after)),
            before: Some(Timestamp(before)),
        },
        ..Default::default()
    });
    q.page.limit = 50;
    q
}

fn bench(c: &mut Criterion) {
    let n = n_events();
    let data = events(n);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");

    // --- Bulk loads (one pass each, timed), the same rows in the same batches.
    let store: Arc<LmdbStore> =
        Arc::new(LmdbStore::open(&dir.path().join("lmdb"), StoreOptions::default()).expect("open"));
    let t = Instant::now();
    rt.block_on(async {
        for chunk in data.chunks(BATCH) {
            let b: Batch = chunk
                .iter()
                .map(|e| Mutation::PutEvent(Box::new(e.clone())))
                .collect();
            store.apply(b).await.expect("apply");
        }
    });
    let lmdb_load = t.elapsed();
    let mut sql = sqlite_open(&dir.path().join("events.sqlite"));
    let t = Instant::now();
    for chunk in data.chunks(BATCH) {
        sqlite_insert(&mut sql, chunk);
    }
    let sqlite_load = t.elapsed();
    sql.execute_batch("ANALYZE").expect("analyze");
    println!(
        "bulk load of {n} events in batches of {BATCH}: LMDB {:.0} inserts/s ({:.1} s), SQLite {:.0} inserts/s ({:.1} s)",
        n as f64 / lmdb_load.as_secs_f64(),
        lmdb_load.as_secs_f64(),
        n as f64 / sqlite_load.as_secs_f64(),
        sqlite_load.as_secs_f64()
    );

    if std::env::var_os("VIGIL_BENCH_LOAD_ONLY").is_some() {
        return;
    }

    // --- Page latency percentiles over many different queries.
    let runs = 20_000;
    let mut lm = Vec::with_capacity(runs);
    let mut rows = 0;
    rt.block_on(async {
        for k in 0..runs {
            let q = lmdb_page_query(k);
            let t = Instant::now();
            let p = store.events(&q).await.expect("query");
            lm.push(t.elapsed());
            rows += p.items.len();
        }
    });
    let mut sq = Vec::with_capacity(runs);
    let mut srows = 0;
    for k in 0..runs {
        let t = Instant::now();
        let p = sqlite_page(&sql, k);
        sq.push(t.elapsed());
        srows += p.len();
    }
    assert_eq!(rows, srows, "LMDB and SQLite must return the same rows");
    let (lm50, lm99) = percentiles(lm);
    let (sq50, sq99) = percentiles(sq);
    println!(
        "filtered page of 50 (camera+label+3 days, newest first), {runs} queries, {:.1} rows/page: \
         LMDB median {lm50:?} p99 {lm99:?}; SQLite median {sq50:?} p99 {sq99:?}",
        rows as f64 / runs as f64
    );

    // --- Criterion: steady-state figures.
    let mut g = c.benchmark_group("store");
    g.sample_size(20);
    let mut k = 0usize;
    g.bench_function("lmdb/page50_camera_label_time", |b| {
        b.iter(|| {
            k += 1;
            let q = lmdb_page_query(k);
            black_box(rt.block_on(store.events(&q)).expect("query"))
        })
    });
    g.bench_function("sqlite/page50_camera_label_time", |b| {
        b.iter(|| {
            k += 1;
            black_box(sqlite_page(&sql, k))
        })
    });
    // The worst case of the partitioned score index: no filter, so every 6-hour slice of the
    // 30 days is merged.
    g.bench_function("lmdb/page50_by_score_all", |b| {
        b.iter(|| {
            let mut q = Query::new(EventFilter::default());
            q.sort = SortBy::Score;
            q.order = Order::Desc;
            q.page.limit = 50;
            black_box(rt.block_on(store.events(&q)).expect("query"))
        })
    });
    g.bench_function("sqlite/page50_by_score_all", |b| {
        b.iter(|| {
            let mut st = sql
                .prepare_cached(
                    "SELECT id, camera, label, zones, start_time, end_time, top_score, data
                     FROM event ORDER BY top_score DESC, start_time DESC, id DESC LIMIT 50",
                )
                .expect("prepare");
            let n = st
                .query_map([], |r| r.get::<_, i64>(0))
                .expect("query")
                .count();
            black_box(n)
        })
    });
    let utc = jiff::tz::TimeZone::UTC;
    g.bench_function("lmdb/events_summary", |b| {
        b.iter(|| black_box(rt.block_on(store.events_summary(&SummaryFilter::default(), &utc))))
    });
    g.bench_function("sqlite/events_summary", |b| {
        b.iter(|| black_box(sqlite_summary(&sql)))
    });
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut next = n;
    g.bench_function("lmdb/insert_batch_1000", |b| {
        b.iter(|| {
            let mut r = Rng(next as u64 | 1);
            let batch: Batch = (0..BATCH)
                .map(|i| Mutation::PutEvent(Box::new(event(next + i, n, &mut r))))
                .collect();
            next += BATCH;
            rt.block_on(store.apply(batch)).expect("apply")
        })
    });
    let mut snext = n;
    g.bench_function("sqlite/insert_batch_1000", |b| {
        b.iter(|| {
            let mut r = Rng(snext as u64 | 1);
            let chunk: Vec<Event> = (0..BATCH).map(|i| event(snext + i, n, &mut r)).collect();
            snext += BATCH;
            sqlite_insert(&mut sql, &chunk)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
