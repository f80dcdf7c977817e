//! The Store conformance suite against LMDB, plus LMDB-specific checks.

use std::sync::Arc;

use vigil_core::{ErrorKind, EventFilter, Mutation, Query, Store};
use vigil_store::{LmdbStore, StoreOptions};

fn open(dir: &std::path::Path) -> Result<Arc<dyn Store>, Box<dyn std::error::Error>> {
    Ok(Arc::new(LmdbStore::open(dir, StoreOptions::default())?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lmdb_passes_the_conformance_suite() {
    vigil_store::conformance::run_all(open).await;
}

/// The same suite with every score and duration sort walking the partitioned sort indexes
/// instead of sorting candidates in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lmdb_passes_the_conformance_suite_through_sort_indexes() {
    vigil_store::conformance::run_all(|dir: &std::path::Path| {
        let opts = StoreOptions {
            in_memory_sort_max: 0,
            ..StoreOptions::default()
        };
        Ok(Arc::new(LmdbStore::open(dir, opts)?) as Arc<dyn Store>)
    })
    .await;
}

/// The same suite with a budget of three index visits for the quick path: nearly every query
/// stops part-way on the calling thread and is answered again on the blocking pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lmdb_passes_the_conformance_suite_when_queries_leave_the_quick_path() {
    vigil_store::conformance::run_all(|dir: &std::path::Path| {
        let opts = StoreOptions {
            inline_visits: 3,
            ..StoreOptions::default()
        };
        Ok(Arc::new(LmdbStore::open(dir, opts)?) as Arc<dyn Store>)
    })
    .await;
}

/// A store opened with a tiny map grows it instead of failing with MapFull.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_grows_when_full() {
    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions {
        map_size_bytes: 256 * 1024,
        ..StoreOptions::default()
    };
    let store = LmdbStore::open(dir.path(), opts).unwrap();
    let start = store.map_size();
    let events = vigil_store::conformance::sample_events(10_000, 1);
    for chunk in events.chunks(500) {
        let batch = chunk
            .iter()
            .map(|e| Mutation::PutEvent(Box::new(e.clone())))
            .collect();
        store.apply(batch).await.unwrap();
    }
    assert!(store.map_size() > start, "the map should have grown");
    let mut q = Query::new(EventFilter::default());
    q.page.with_total = true;
    assert_eq!(store.events(&q).await.unwrap().total, Some(10_000));
}

/// The map grows (many times over) while 8 writers write and 4 readers read at once: no write
/// fails, no reader errors or sees a count go down, and everything written is there, also
/// after reopening.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn map_grows_under_concurrent_writers_and_readers() {
    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions {
        map_size_bytes: 256 * 1024,
        // Small transactions, so that many commits meet a full map.
        max_batch_jobs: 2,
        ..StoreOptions::default()
    };
    let lmdb = Arc::new(LmdbStore::open(dir.path(), opts.clone()).unwrap());
    let start = lmdb.map_size();
    let store: Arc<dyn Store> = lmdb.clone();
    const WRITERS: u64 = 8;
    const PER_WRITER: u64 = 2_000;
    let events = vigil_store::conformance::sample_events(WRITERS * PER_WRITER, 7);
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for r in 0..4 {
        let (store, done) = (store.clone(), done.clone());
        let probe = events[r * 97].id;
        readers.push(tokio::spawn(async move {
            let mut last = 0;
            let mut reads = 0u64;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let mut q = Query::new(EventFilter::default());
                q.page.with_total = true;
                q.page.limit = 20;
                let page = store.events(&q).await.expect("a read during growth");
                let total = page.total.expect("asked for the total");
                assert!(total >= last, "the count went down: {last} then {total}");
                last = total;
                store.event(probe).await.expect("a lookup during growth");
                reads += 1;
                tokio::task::yield_now().await;
            }
            reads
        }));
    }
    let mut writers = Vec::new();
    for w in 0..WRITERS as usize {
        let store = store.clone();
        let mine = events[w * PER_WRITER as usize..(w + 1) * PER_WRITER as usize].to_vec();
        writers.push(tokio::spawn(async move {
            for chunk in mine.chunks(25) {
                let batch = chunk
                    .iter()
                    .map(|e| Mutation::PutEvent(Box::new(e.clone())))
                    .collect();
                store.apply(batch).await.expect("a write during growth");
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        assert!(r.await.unwrap() > 0, "a reader never read");
    }
    let total = |store: Arc<dyn Store>| async move {
        let mut q = Query::new(EventFilter::default());
        q.page.with_total = true;
        store.events(&q).await.unwrap().total
    };
    assert_eq!(total(store.clone()).await, Some(WRITERS * PER_WRITER));
    let grown = lmdb.map_size();
    assert!(
        grown >= start * 16,
        "the map grew from {start} to only {grown} bytes"
    );
    drop((store, lmdb));
    let store: Arc<dyn Store> = Arc::new(LmdbStore::open(dir.path(), opts).unwrap());
    assert_eq!(total(store).await, Some(WRITERS * PER_WRITER));
}

/// A store written by another schema version is refused with a clear error.
#[test]
fn unknown_schema_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(LmdbStore::open(dir.path(), StoreOptions::default()).unwrap());
    {
        let eo = heed_env_options();
        // SAFETY: the store above is closed; nothing else maps the files.
        let env = unsafe { eo.open(dir.path()) }.unwrap();
        let mut w = env.write_txn().unwrap();
        let meta: heed::Database<heed::types::Str, heed::types::Bytes> =
            env.create_database(&mut w, Some("meta")).unwrap();
        meta.put(&mut w, "schema_version", &99u32.to_be_bytes())
            .unwrap();
        w.commit().unwrap();
        env.prepare_for_closing().wait();
    }
    let err = LmdbStore::open(dir.path(), StoreOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
    let msg = err.to_string();
    assert!(
        msg.contains("99") && msg.contains(&vigil_store::SCHEMA_VERSION.to_string()),
        "{msg}"
    );
}

fn heed_env_options() -> heed::EnvOpenOptions {
    let mut eo = heed::EnvOpenOptions::new();
    eo.max_dbs(32).map_size(1 << 30);
    eo
}
