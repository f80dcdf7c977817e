//! The HTTP server under load, beside its floor, in one run.
//!
//! 1. The events list (`/api/events?limit=50&camera=front`, a filtered page of 50 from 10 000
//!    events in a real LMDB store, each request authenticated by an API key as vigild requires)
//!    under `wrk` (Debian package) with 2 threads and 64 connections, beside the floor: a bare
//!    hyper server answering the same bytes from memory.
//! 2. 20 MJPEG viewers at 5 fps of a 1280×720 synthetic camera that is recorded and analysed
//!    for motion in the same process: frames each viewer got, and whether recording kept every
//!    frame (frames received = frames written, no recorder error), beside the same camera with
//!    no viewers.
//!
//! `cargo bench -p vigil-benches --bench http`. `VIGIL_BENCH_SECONDS` (default 10) sets each
//! measurement's length. The events list is measured in `VIGIL_BENCH_ROUNDS` (default 3)
//! rounds, each Vigil then the floor, because a shared machine's speed drifts within a minute:
//! the ratio within a round is what compares, and the medians are printed with every round.

/// The allocator vigild runs with.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::convert::Infallible;
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::Bytes;
use vigil_core::pipeline::{CameraFactory, Nvr, NvrOptions};
use vigil_core::{Camera, CameraConfig, CameraId, Clocks, Mutation, RealClocks, Source, Store};
use vigil_detect::{analyzer_factory, DetectorRegistry, SyntheticCamera};
use vigil_store::LmdbStore;

mod common;

fn secs() -> u64 {
    std::env::var("VIGIL_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
}

/// The floor: hyper answering fixed bytes, nothing else.
async fn floor(body: Bytes) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = listener.accept().await else {
                continue;
            };
            let _ = s.set_nodelay(true);
            let body = body.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |_req| {
                    let body = body.clone();
                    async move {
                        Ok::<_, Infallible>(
                            hyper::Response::builder()
                                .header("content-type", "application/json")
                                .body(Full::new(body))
                                .expect("response"),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    addr
}

/// The request measured: `VIGIL_BENCH_PATH`, else a filtered page of 50.
fn list_path() -> String {
    std::env::var("VIGIL_BENCH_PATH").unwrap_or_else(|_| "/api/events?limit=50&camera=front".into())
}

fn events_list(rt: &tokio::runtime::Runtime, secs: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (addr, floor_addr, header) = rt.block_on(async {
        let store: Arc<dyn Store> =
            Arc::new(LmdbStore::open(dir.path(), Default::default()).expect("store"));
        let events = vigil_store::conformance::sample_events(10_000, 7);
        vigil_store::conformance::put_events(&store, &events, 1000).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        // Authenticated as vigild's users are: an API key on every request.
        let (state, key) = common::authenticated(store).await;
        let header = format!("X-API-Key: {key}");
        tokio::spawn(vigil_http::serve(listener, state, std::future::pending()));
        // The floor answers the very bytes vigil does.
        let body = http_get(&format!("http://{addr}{}", list_path()), &header);
        (addr, floor(Bytes::from(body)).await, header)
    });
    let path = list_path();
    let rounds: usize = std::env::var("VIGIL_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
        .max(1);
    println!("{path} (10k events), wrk -t2 -c64 {secs}s, {rounds} rounds:");
    let (mut ours, mut floors, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        let (vigil_rps, vigil_p99) =
            common::wrk(&format!("http://{addr}{path}"), secs, &header, 64);
        let (floor_rps, floor_p99) =
            common::wrk(&format!("http://{floor_addr}{path}"), secs, &header, 64);
        println!(
            "  round {round}: vigil {vigil_rps:>8.0} req/s ({vigil_p99})   floor {floor_rps:>8.0} req/s ({floor_p99})   vigil/floor {:.2}",
            vigil_rps / floor_rps
        );
        ours.push(vigil_rps);
        floors.push(floor_rps);
        ratios.push(vigil_rps / floor_rps);
    }
    println!(
        "  median: vigil {:.0} req/s, floor {:.0} req/s (bare hyper, same bytes), vigil/floor {:.2}",
        median(&mut ours),
        median(&mut floors),
        median(&mut ratios)
    );
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn http_get(url: &str, header: &str) -> Vec<u8> {
    let mut s = std::net::TcpStream::connect(
        url.trim_start_matches("http://")
            .split('/')
            .next()
            .expect("host"),
    )
    .expect("connect");
    let path = &url[url.find("/api").expect("path")..];
    use std::io::Write;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{header}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read");
    let i = buf.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
    buf[i..].to_vec()
}

/// Runs the synthetic camera for `secs` with `viewers` MJPEG viewers; prints what each got
/// and what the recorder did.
fn mjpeg(rt: &tokio::runtime::Runtime, viewers: usize, secs: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (base, nvr, stop) = rt.block_on(async {
        let store: Arc<dyn Store> =
            Arc::new(LmdbStore::open(&dir.path().join("db"), Default::default()).expect("store"));
        let clocks: Arc<dyn Clocks> = Arc::new(RealClocks::default());
        let cam = CameraConfig::new(
            CameraId::new("cam").expect("id"),
            Source::Synthetic {
                width: 1280,
                height: 720,
                fps: 15,
            },
            clocks.realtime(),
        );
        store
            .apply(Mutation::PutCamera(Box::new(cam)).into())
            .await
            .expect("camera");
        let c = clocks.clone();
        let factory: CameraFactory = Arc::new(move |cfg: &CameraConfig| {
            let Source::Synthetic { width, height, fps } = cfg.record_source else {
                return Err(vigil_core::Error::invalid("synthetic only"));
            };
            Ok(Arc::new(SyntheticCamera::new(
                cfg.id.clone(),
                width,
                height,
                fps,
                c.clone(),
            )?) as Arc<dyn Camera>)
        });
        let opts = NvrOptions {
            analyzers: Some(analyzer_factory(Arc::new(DetectorRegistry::new()), true)),
            ..NvrOptions::default()
        };
        let nvr = Arc::new(
            Nvr::start(dir.path(), store.clone(), clocks, factory, opts)
                .await
                .expect("nvr"),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let state = vigil_http::AppState::with_nvr(store, nvr.clone()).without_auth();
        tokio::spawn(vigil_http::serve(listener, state, async {
            let _ = rx.await;
        }));
        (base, nvr, tx)
    });
    // Let the camera settle, then count over the measured span.
    std::thread::sleep(Duration::from_secs(3));
    let status = |nvr: &Nvr| {
        rt.block_on(nvr.status())
            .into_iter()
            .next()
            .expect("camera")
    };
    let before = status(&nvr);
    let t0 = Instant::now();
    let handles: Vec<_> = (0..viewers)
        .map(|_| {
            let url = format!("{base}/api/cam?fps=5");
            std::thread::spawn(move || common::count_parts(&url, secs))
        })
        .collect();
    if viewers == 0 {
        std::thread::sleep(Duration::from_secs(secs));
    }
    let counts: Vec<usize> = handles
        .into_iter()
        .map(|h| h.join().expect("viewer"))
        .collect();
    let elapsed = t0.elapsed().as_secs_f64();
    let after = status(&nvr);
    let received = after.stream.as_ref().map_or(0, |s| s.frames)
        - before.stream.as_ref().map_or(0, |s| s.frames);
    let rec = |s: &vigil_core::pipeline::CameraStatus| s.recorder.clone().unwrap_or_default();
    let (rb, ra) = (rec(&before), rec(&after));
    let written = ra.frames - rb.frames;
    let not_recorded = ra.frames_not_recorded - rb.frames_not_recorded;
    println!(
        "{viewers:>2} viewers at 5 fps for {elapsed:.1} s: frames per viewer min {} max {} ({:.1} fps); camera frames received {received}, recorded {written} + not recorded {not_recorded}, recorder errors {}",
        counts.iter().min().copied().unwrap_or(0),
        counts.iter().max().copied().unwrap_or(0),
        counts.iter().copied().min().unwrap_or(0) as f64 / elapsed,
        ra.errors - rb.errors,
    );
    let _ = stop.send(());
    rt.block_on(nvr.stop());
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let secs = secs();
    events_list(&rt, secs);
    if std::env::var("VIGIL_BENCH_PATH").is_err() {
        mjpeg(&rt, 0, secs);
        mjpeg(&rt, 20, secs);
    }
}
