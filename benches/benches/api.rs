//! The API's handler cost without a socket: `vigil_http::respond` answering the events list
//! from 10 000 events in a real LMDB store (the data of the `http` bench; each request with an
//! API key), beside the store's
//! own query for the same page, so the difference is routing, parsing and writing JSON.
//!
//! `cargo bench -p vigil-benches --bench api`. The `http` bench measures the same request
//! through hyper and the kernel under wrk; this one isolates what Vigil's code adds.

/// The allocator vigild runs with.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use vigil_core::query::{EventFilter, PageRequest, Query};
use vigil_core::Store;

mod common;
use vigil_store::LmdbStore;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> =
        Arc::new(LmdbStore::open(dir.path(), Default::default()).expect("store"));
    rt.block_on(async {
        let events = vigil_store::conformance::sample_events(10_000, 7);
        vigil_store::conformance::put_events(&store, &events, 1000).await;
    });
    // Each request authenticated by an API key, as vigild requires.
    let (state, key) = rt.block_on(common::authenticated(store.clone()));
    let mut g = c.benchmark_group("events_list");
    for path in [
        "/api/events?limit=50",
        "/api/events?limit=50&camera=front",
        "/api/events?limit=1",
    ] {
        g.bench_function(format!("respond {path}"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let req = hyper::Request::get(path)
                        .header("x-api-key", &key)
                        .body(Empty::<Bytes>::new())
                        .expect("request");
                    let resp = vigil_http::respond(&state, req).await;
                    assert!(resp.status().is_success());
                    let body = resp.into_body().collect().await.expect("body").to_bytes();
                    black_box(body.len())
                })
            })
        });
    }
    g.bench_function("store page of 50 (no HTTP)", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut q = Query::new(EventFilter::default());
                q.page = PageRequest {
                    limit: 50,
                    with_total: true,
                    ..PageRequest::default()
                };
                let page = store.events(&q).await.expect("page");
                black_box(page.items.len())
            })
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
