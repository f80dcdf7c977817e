//! What the fuzz targets share: a real LMDB store in a temp dir, seeded with sample events, and
//! a runtime to call it from libFuzzer's synchronous loop.

use std::sync::{Arc, OnceLock};

use vigil_core::{Batch, Mutation, Store};

/// A seeded store and the runtime that drives it, built once per fuzzing process.
pub struct World {
    /// Runs the async calls.
    pub rt: tokio::runtime::Runtime,
    /// The store, holding 50 sample events.
    pub store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

/// The process's world, created on first use.
pub fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("tempdir");
        let store = vigil_store::LmdbStore::open(dir.path(), Default::default()).expect("store");
        let store: Arc<dyn Store> = Arc::new(store);
        let batch: Batch = vigil_store::conformance::sample_events(50, 7)
            .into_iter()
            .map(|e| Mutation::PutEvent(Box::new(e)))
            .collect();
        rt.block_on(store.apply(batch)).expect("seed");
        World {
            rt,
            store,
            _dir: dir,
        }
    })
}
