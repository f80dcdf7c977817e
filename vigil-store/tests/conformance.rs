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
