//! The soak: vigild's parts in one process, as vigild composes them (authentication on), for
//! `VIGIL_SOAK_MINUTES` (default 30):
//!
//! - the demo camera (1280×720 synthetic at 15 fps) and 8 file cameras (one ffmpeg-made
//!   640×360 10 fps H.264 clip of moving test patterns, looped), each recorded continuously in
//!   10 s segments and analysed for motion, so events come all along;
//! - 20 MJPEG viewers at 5 fps spread over the cameras, 2 WebSocket followers of `/ws/events`,
//!   and a steady API load: wrk (Debian package) on the events list with 2 connections, one
//!   minute at a time.
//!
//! Every minute it prints the process's resident memory, the frames received and recorded and
//! the recorder's errors, and wrk's rate and 99th percentile. At the end: the memory bound
//! (after a 5-minute warm-up, the highest resident memory against the lowest), the recording
//! gaps of each camera (segments more than a second apart), what the viewers and followers
//! got, and the worst and median p99. The load generators run in the same process; they hold
//! little (one buffer per viewer).
//!
//! `cargo bench -p vigil-benches --bench soak` (`VIGIL_SOAK_MINUTES=3` for a short run).

/// The allocator vigild runs with.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::ErrorKind;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil_core::pipeline::{Nvr, NvrOptions};
use vigil_core::{CameraConfig, CameraId, Clocks, Mutation, RealClocks, Source, Store};
use vigil_detect::{analyzer_factory, camera_factory, DetectorRegistry};
use vigil_store::LmdbStore;

mod common;

const FILE_CAMERAS: usize = 8;
const VIEWERS: usize = 20;
const FOLLOWERS: usize = 2;
/// Resident memory samples before this are the warm-up.
const WARM_UP: Duration = Duration::from_secs(300);

fn minutes() -> u64 {
    std::env::var("VIGIL_SOAK_MINUTES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30)
}

/// This process's resident memory, in MiB.
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib / 1024.0
}

/// The clip the file cameras loop: 60 s of moving test patterns.
fn clip(dir: &std::path::Path) -> std::path::PathBuf {
    let out = dir.join("clip.h264");
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc2=s=640x360:r=10:d=60")
        .args([
            "-c:v", "libx264", "-bf", "0", "-g", "20", "-pix_fmt", "yuv420p",
        ])
        .arg(&out)
        .status()
        .expect("ffmpeg (Debian package) makes the file cameras' clip");
    assert!(st.success(), "ffmpeg failed");
    out
}

/// Follows `/ws/events` until `stop`; the messages it got.
fn follow(host: &str, key: &str, stop: &AtomicBool) -> u64 {
    let tcp = std::net::TcpStream::connect(host).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let url = format!("ws://{host}/ws/events?api_key={key}");
    let (mut ws, _) = tungstenite::client(url.as_str(), tcp).expect("WebSocket handshake");
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        match ws.read() {
            Ok(m) if m.is_text() => n += 1,
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("the WebSocket follower lost its connection: {e}"),
        }
    }
    n
}

fn main() {
    let minutes = minutes();
    let total = Duration::from_secs(minutes * 60);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = clip(dir.path());
    let data = dir.path().join("data");
    let (host, key, nvr, store, stop_server) = rt.block_on(async {
        let store: Arc<dyn Store> =
            Arc::new(LmdbStore::open(&data.join("db"), Default::default()).expect("store"));
        let clocks: Arc<dyn Clocks> = Arc::new(RealClocks::default());
        let mut cams = vec![CameraConfig::new(
            CameraId::new("demo").expect("id"),
            Source::Synthetic {
                width: 1280,
                height: 720,
                fps: 15,
            },
            clocks.realtime(),
        )];
        for i in 0..FILE_CAMERAS {
            cams.push(CameraConfig::new(
                CameraId::new(format!("file{i}")).expect("id"),
                Source::File {
                    path: clip.display().to_string(),
                    fps: Some(10),
                },
                clocks.realtime(),
            ));
        }
        for c in cams {
            store
                .apply(Mutation::PutCamera(Box::new(c)).into())
                .await
                .expect("camera");
        }
        let opts = NvrOptions {
            analyzers: Some(analyzer_factory(Arc::new(DetectorRegistry::new()), true)),
            ..NvrOptions::default()
        };
        let nvr = Arc::new(
            Nvr::start(
                &data,
                store.clone(),
                clocks.clone(),
                camera_factory(clocks),
                opts,
            )
            .await
            .expect("nvr"),
        );
        let state = vigil_http::AppState::with_nvr(store.clone(), nvr.clone());
        let (state, key) = common::secured(state, store.clone()).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let host = listener.local_addr().expect("addr").to_string();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(vigil_http::serve(listener, state, async {
            let _ = rx.await;
        }));
        (host, key, nvr, store, tx)
    });
    let cameras: Vec<String> = std::iter::once("demo".to_owned())
        .chain((0..FILE_CAMERAS).map(|i| format!("file{i}")))
        .collect();
    println!(
        "soak: the demo and {FILE_CAMERAS} file cameras, {VIEWERS} MJPEG viewers, {FOLLOWERS} WebSocket followers, wrk -c2 on the events list, {minutes} min"
    );
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let viewers: Vec<_> = (0..VIEWERS)
        .map(|i| {
            let url = format!(
                "http://{host}/api/{}?fps=5&api_key={key}",
                cameras[i % cameras.len()]
            );
            let secs = total.as_secs();
            std::thread::spawn(move || common::count_parts(&url, secs))
        })
        .collect();
    let followers: Vec<_> = (0..FOLLOWERS)
        .map(|_| {
            let (host, key, stop) = (host.clone(), key.clone(), stop.clone());
            std::thread::spawn(move || follow(&host, &key, &stop))
        })
        .collect();
    let requests = Arc::new(AtomicU64::new(0));
    let (wrk_tx, wrk_rx) = std::sync::mpsc::channel::<(f64, String)>();
    let load = {
        let url = format!("http://{host}/api/events?limit=50");
        let header = format!("X-API-Key: {key}");
        let (stop, requests) = (stop.clone(), requests.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let (rps, p99) = common::wrk(&url, 60, &header, 2);
                requests.fetch_add((rps * 60.0) as u64, Ordering::Relaxed);
                if wrk_tx.send((rps, p99)).is_err() {
                    return;
                }
            }
        })
    };

    let mut samples: Vec<(Duration, f64)> = Vec::new();
    let mut p99s: Vec<f64> = Vec::new();
    let mut minute = 0;
    while started.elapsed() < total {
        minute += 1;
        let next = started + Duration::from_secs(60 * minute);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        let rss = rss_mib();
        samples.push((started.elapsed(), rss));
        let status = rt.block_on(nvr.status());
        let received: u64 = status
            .iter()
            .filter_map(|s| s.stream.as_ref())
            .map(|s| s.frames)
            .sum();
        let rec: Vec<_> = status.iter().filter_map(|s| s.recorder.clone()).collect();
        let recorded: u64 = rec.iter().map(|r| r.frames).sum();
        let errors: u64 = rec.iter().map(|r| r.errors).sum();
        let wrk: Vec<(f64, String)> = wrk_rx.try_iter().collect();
        for (_, line) in &wrk {
            p99s.extend(common::latency_ms(line));
        }
        println!(
            "{minute:>3} min: rss {rss:.0} MiB, frames received {received}, recorded {recorded}, recorder errors {errors}, wrk {}",
            wrk.iter()
                .map(|(rps, p99)| format!("{rps:.0} req/s {p99}"))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    stop.store(true, Ordering::Relaxed);
    let frames: Vec<usize> = viewers
        .into_iter()
        .map(|h| h.join().expect("viewer"))
        .collect();
    let messages: Vec<u64> = followers
        .into_iter()
        .map(|h| h.join().expect("follower"))
        .collect();
    let _ = load.join();
    for (_, line) in wrk_rx.try_iter() {
        p99s.extend(common::latency_ms(&line));
    }
    let _ = stop_server.send(());
    rt.block_on(nvr.stop());

    let recs = rt.block_on(vigil_core::testing::all_recordings(&*store));
    println!("recording gaps (segments more than 1 s apart), per camera:");
    for cam in &cameras {
        let mut mine: Vec<_> = recs.iter().filter(|r| r.camera.as_str() == cam).collect();
        mine.sort_by_key(|r| r.start_time);
        let gaps: Vec<f64> = mine
            .windows(2)
            .map(|w| (w[1].start_time.0 - w[0].end_time.0) as f64 / 1e6)
            .filter(|&g| g > 1.0)
            .collect();
        let secs: f64 = mine.iter().map(|r| r.duration_us() as f64 / 1e6).sum();
        println!(
            "  {cam}: {} segments, {secs:.0} s recorded, {} gaps{}",
            mine.len(),
            gaps.len(),
            if gaps.is_empty() {
                String::new()
            } else {
                format!(" ({gaps:?} s)")
            }
        );
    }
    let warm: Vec<f64> = samples
        .iter()
        .filter(|(t, _)| *t >= WARM_UP.min(total / 3))
        .map(|&(_, r)| r)
        .collect();
    let (lo, hi) = warm
        .iter()
        .fold((f64::MAX, 0.0f64), |(lo, hi), &r| (lo.min(r), hi.max(r)));
    println!(
        "resident memory after the warm-up: lowest {lo:.0} MiB, highest {hi:.0} MiB ({:+.1}%), last {:.0} MiB",
        (hi / lo - 1.0) * 100.0,
        samples.last().map_or(0.0, |s| s.1)
    );
    p99s.sort_by(f64::total_cmp);
    println!(
        "wrk p99 of each minute: median {:.1} ms, worst {:.1} ms ({} requests)",
        p99s.get(p99s.len() / 2).copied().unwrap_or(f64::NAN),
        p99s.last().copied().unwrap_or(f64::NAN),
        requests.load(Ordering::Relaxed)
    );
    println!(
        "MJPEG viewers: pictures per viewer min {} max {} ({:.1} fps at least); WebSocket followers: {messages:?} messages",
        frames.iter().min().copied().unwrap_or(0),
        frames.iter().max().copied().unwrap_or(0),
        frames.iter().min().copied().unwrap_or(0) as f64 / total.as_secs_f64(),
    );
}
