//! RTSP cameras against a real GStreamer RTSP server on 127.0.0.1: recording, reconnection,
//! stalls, and every way of failing to connect, each a clear error state without a busy loop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil_core::camera::RtspCamera;
use vigil_core::pipeline::{Backoff, CameraTask, SupervisorOptions};
use vigil_core::testing::{
    all_recordings, check_recordings_consistent, free_port, process_cpu_seconds, record, RtspServer,
};
use vigil_core::*;
use vigil_store::LmdbStore;

fn camera(url: &str, creds: Option<(&str, &str)>) -> Arc<dyn Camera> {
    camera_over(url, creds, RtspTransport::Tcp)
}

fn camera_over(
    url: &str,
    creds: Option<(&str, &str)>,
    transport: RtspTransport,
) -> Arc<dyn Camera> {
    let src = Source::Rtsp {
        url: url.to_owned(),
        transport,
        username: creds.map(|c| c.0.to_owned()),
        password: creds.map(|c| c.1.to_owned()),
    };
    let clocks: Arc<dyn Clocks> = Arc::new(RealClocks::default());
    Arc::new(RtspCamera::new(CameraId::new("gate").unwrap(), &src, None, clocks).unwrap())
}

fn quick_opts() -> SupervisorOptions {
    SupervisorOptions {
        connect_timeout: Duration::from_secs(3),
        stall_timeout: Duration::from_secs(3),
        backoff: Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(4),
        },
        stable_after: Duration::from_secs(30),
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    data: std::path::PathBuf,
    store: Arc<dyn Store>,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store: Arc<dyn Store> =
        Arc::new(LmdbStore::open(&data.join("db"), Default::default()).unwrap());
    Setup {
        _dir: dir,
        data,
        store,
    }
}

impl Setup {
    /// Starts recording `cam` with 2 s segments.
    async fn record(&self, cam: Arc<dyn Camera>, opts: SupervisorOptions) -> CameraTask {
        record(
            cam,
            &self.data,
            self.store.clone(),
            opts,
            Duration::from_secs(2),
        )
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_30_seconds_that_ffprobe_accepts() {
    let server = RtspServer::start(640, 480, None);
    let s = setup();
    let run = record(
        camera(&server.url(), None),
        &s.data,
        s.store.clone(),
        SupervisorOptions::default(),
        Duration::from_secs(10),
    )
    .await;
    assert!(
        run.wait_for(Duration::from_secs(20), |st| st.frames > 0)
            .await
    );
    tokio::time::sleep(Duration::from_secs(30)).await;
    let stats = run.stats();
    run.stop().await;
    let recs = all_recordings(&*s.store).await;
    check_recordings_consistent(&s.data, &recs);
    let secs: f64 = recs.iter().map(|r| r.duration_us() as f64 / 1e6).sum();
    assert!(
        (29.0..=33.0).contains(&secs),
        "{secs} s recorded in {} segments",
        recs.len()
    );
    assert!(recs.len() >= 3, "{} segments", recs.len());
    for r in &recs {
        assert_eq!((r.width, r.height), (640, 480));
        assert!(r.codec.starts_with("avc1."), "{}", r.codec);
    }
    assert_eq!(stats.connections, 1);
    assert!((stats.fps - 30.0).abs() < 4.0, "{stats:?}");
}

/// A 320x240 server recorded with [`quick_opts`], once 2 s of frames came; the backoff cap.
async fn recording_a_server() -> (RtspServer, Setup, CameraTask, Duration) {
    let server = RtspServer::start(320, 240, None);
    let s = setup();
    let opts = quick_opts();
    let cap = opts.backoff.max;
    let run = s.record(camera(&server.url(), None), opts).await;
    assert!(
        run.wait_for(Duration::from_secs(20), |st| st.frames > 60)
            .await
    );
    (server, s, run, cap)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_the_server_comes_back_and_the_gap_shows() {
    let (server, s, run, cap) = recording_a_server().await;
    server.stop();
    assert!(
        run.wait_for(Duration::from_secs(5), |st| !st.connected)
            .await
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    let before = run.stats();
    assert!(before.last_error.is_some(), "{before:?}");
    server.resume();
    let back = Instant::now();
    assert!(
        run.wait_for(cap + Duration::from_secs(5), |st| st.connections == 2
            && st.connected)
            .await,
        "no reconnection within the backoff cap: {:?}",
        run.stats()
    );
    let took = back.elapsed();
    let frames = run.stats().frames;
    assert!(
        run.wait_for(Duration::from_secs(5), |st| st.frames > frames + 60)
            .await
    );
    let stats = run.stats();
    run.stop().await;
    assert!(took <= cap + Duration::from_secs(5), "{took:?}");
    assert_eq!(stats.reconnects_last_hour, 1, "{stats:?}");

    let recs = all_recordings(&*s.store).await;
    check_recordings_consistent(&s.data, &recs);
    let biggest_gap = recs
        .windows(2)
        .map(|w| w[1].start_time.0 - w[0].end_time.0)
        .max()
        .unwrap();
    assert!(biggest_gap >= 9_000_000, "gap of {biggest_gap} µs");
}

/// Open file descriptors and threads of this process.
fn fds_and_threads() -> (usize, usize) {
    let fds = std::fs::read_dir("/proc/self/fd").unwrap().count();
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (fds, threads)
}

/// The server killed and started again every few seconds for two minutes, as a camera in a
/// reboot loop: every time it is back, recording goes on within the backoff cap; no segment
/// spans an outage; every segment plays; nothing piles up (connections, threads, descriptors).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restarted_every_few_seconds_for_two_minutes() {
    let (server, s, run, cap) = recording_a_server().await;
    let before = fds_and_threads();
    let clocks = RealClocks::default();
    // (went down, came back) on the wall clock, µs.
    let mut outages = Vec::new();
    let mut ups = Vec::new();
    let mut up_since = clocks.realtime().0;
    let end = Instant::now() + Duration::from_secs(120);
    let mut n = 0u64;
    while Instant::now() < end {
        // Up 6 to 8 s (the backoff cap, 4 s, and a key frame fit), down 1 to 2 s.
        n += 1;
        tokio::time::sleep(Duration::from_millis(6000 + (n * 700) % 2000)).await;
        let down = clocks.realtime().0;
        ups.push((up_since, down));
        server.stop();
        tokio::time::sleep(Duration::from_millis(1000 + (n * 300) % 1000)).await;
        server.resume();
        up_since = clocks.realtime().0;
        outages.push((down, up_since));
    }
    let connections = run.stats().connections;
    assert!(
        run.wait_for(cap + Duration::from_secs(5), |st| st.connected
            && st.connections > connections)
            .await
            || run.stats().connected,
        "{:?}",
        run.stats()
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = fds_and_threads();
    let stats = run.stats();
    run.stop().await;
    assert!(outages.len() >= 12, "{} restarts", outages.len());
    assert!(
        stats.connections > outages.len() as u64,
        "{} connections for {} restarts: {stats:?}",
        stats.connections,
        outages.len()
    );
    assert!(
        after.0 <= before.0 + 4 && after.1 <= before.1 + 4,
        "descriptors and threads before {before:?}, after {after:?}"
    );

    let recs = all_recordings(&*s.store).await;
    check_recordings_consistent(&s.data, &recs);
    for &(down, back) in &outages {
        // The last frame before the kill may be stamped a little after it; none within.
        let (from, to) = (down + 300_000, back - 100_000);
        for r in &recs {
            assert!(
                r.end_time.0 <= from || r.start_time.0 >= to,
                "a segment spans an outage ({down}..{back}): {r:#?}"
            );
        }
    }
    for &(up, down) in &ups {
        let recorded: i64 = recs
            .iter()
            .map(|r| r.end_time.0.min(down) - r.start_time.0.max(up))
            .filter(|&d| d > 0)
            .sum();
        assert!(
            recorded >= 1_000_000,
            "{} s recorded of an up period of {} s",
            recorded as f64 / 1e6,
            (down - up) as f64 / 1e6
        );
    }
}

/// Runs a camera that cannot connect for `secs`; returns its stats and the CPU it used.
async fn failing(cam: Arc<dyn Camera>, secs: u64) -> (StreamStatsOut, f64) {
    let s = setup();
    let cpu0 = process_cpu_seconds();
    let run = s.record(cam, quick_opts()).await;
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let stats = run.stats();
    run.stop().await;
    let cpu = process_cpu_seconds() - cpu0;
    assert!(all_recordings(&*s.store).await.is_empty());
    (stats, cpu)
}

type StreamStatsOut = vigil_core::pipeline::StreamStats;

fn assert_error_state(stats: &StreamStatsOut, kind: &str, cpu: f64, secs: u64) {
    assert!(!stats.connected, "{stats:?}");
    assert_eq!(stats.frames, 0);
    assert_eq!(stats.last_error_kind.as_deref(), Some(kind), "{stats:?}");
    // Near idle: well under 5% of one core while failing.
    assert!(cpu < 0.05 * secs as f64, "{cpu} s of CPU in {secs} s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_an_unauthenticated_state() {
    let server = RtspServer::start(320, 240, Some(("viewer", "right")));
    let (stats, cpu) = failing(camera(&server.url(), Some(("viewer", "wrong"))), 8).await;
    assert_error_state(&stats, "unauthenticated", cpu, 8);
    assert!(stats.last_error.unwrap().contains("credentials"));

    // The right ones work, given in the URL.
    let s = setup();
    let url = server.url().replace("rtsp://", "rtsp://viewer:right@");
    let run = s.record(camera(&url, None), quick_opts()).await;
    assert!(
        run.wait_for(Duration::from_secs(20), |st| st.frames > 10)
            .await,
        "{:?}",
        run.stats()
    );
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_path_is_a_not_found_state() {
    let server = RtspServer::start(320, 240, None);
    let url = server.url().replace("/live", "/nothing-here");
    let (stats, cpu) = failing(camera(&url, None), 8).await;
    assert_error_state(&stats, "not_found", cpu, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_where_nothing_listens_is_unavailable_with_backoff() {
    let url = format!("rtsp://127.0.0.1:{}/live", free_port());
    let (stats, cpu) = failing(camera(&url, None), 8).await;
    assert_error_state(&stats, "unavailable", cpu, 8);
    assert_eq!(stats.connections, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_accepts_and_says_nothing_times_out() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accept and hold every connection, never answering.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming() {
            held.push(c);
        }
    });
    let (stats, cpu) = failing(camera(&format!("rtsp://127.0.0.1:{port}/live"), None), 8).await;
    assert_error_state(&stats, "unavailable", cpu, 8);
    assert!(stats.last_error.unwrap().contains("no answer"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_server_is_a_stall_caught_by_the_watchdog() {
    let server = RtspServer::start(320, 240, None);
    let s = setup();
    let run = s.record(camera(&server.url(), None), quick_opts()).await;
    assert!(
        run.wait_for(Duration::from_secs(20), |st| st.frames > 30)
            .await
    );
    server.freeze();
    let frozen = Instant::now();
    assert!(
        run.wait_for(Duration::from_secs(8), |st| st.stalls_last_hour == 1)
            .await,
        "{:?}",
        run.stats()
    );
    assert!(
        frozen.elapsed() < Duration::from_secs(6),
        "stall noticed after {:?}",
        frozen.elapsed()
    );
    assert!(!run.stats().connected);
    server.thaw();
    run.stop().await;
    let recs = all_recordings(&*s.store).await;
    check_recordings_consistent(&s.data, &recs);
    assert!(!recs.is_empty());
}

/// Records a few seconds of `url` and returns the recordings, checked with ffprobe, with the
/// codec ffprobe names.
async fn record_briefly(cam: Arc<dyn Camera>) -> Vec<(Recording, String)> {
    let s = setup();
    let run = s.record(cam, quick_opts()).await;
    assert!(
        run.wait_for(Duration::from_secs(20), |st| st.frames > 120)
            .await,
        "{:?}",
        run.stats()
    );
    run.stop().await;
    let recs = all_recordings(&*s.store).await;
    check_recordings_consistent(&s.data, &recs);
    recs.into_iter()
        .map(|r| {
            let codec = vigil_core::testing::ffprobe(&s.data.join(&r.path)).codec;
            (r, codec)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_over_udp() {
    let server = RtspServer::start(320, 240, None);
    let recs = record_briefly(camera_over(&server.url(), None, RtspTransport::Udp)).await;
    let frames: u32 = recs.iter().map(|r| r.0.frames).sum();
    assert!(frames > 120, "{frames}");
    assert!(recs.iter().all(|r| r.1 == "h264"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_h265() {
    let server = RtspServer::start(320, 240, None);
    let url = server.url().replace("/live", "/h265");
    let recs = record_briefly(camera(&url, None)).await;
    assert!(!recs.is_empty());
    for (r, codec) in &recs {
        assert!(r.codec.starts_with("hvc1"), "{}", r.codec);
        assert_eq!(codec, "hevc");
    }
}

/// A camera's detect stream is its own RTSP stream (here H.265 beside an H.264 record stream).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_detect_stream_is_a_separate_stream() {
    let server = RtspServer::start(320, 240, None);
    let src = |url: String| Source::Rtsp {
        url,
        transport: RtspTransport::Tcp,
        username: None,
        password: None,
    };
    let record = src(server.url());
    let detect = src(server.url().replace("/live", "/h265"));
    let clocks: Arc<dyn Clocks> = Arc::new(RealClocks::default());
    let cam = RtspCamera::new(
        CameraId::new("gate").unwrap(),
        &record,
        Some(&detect),
        clocks,
    )
    .unwrap();
    for (role, codec) in [
        (StreamRole::Record, VideoCodec::H264),
        (StreamRole::Detect, VideoCodec::H265),
    ] {
        let mut stream = cam.connect(role).await.unwrap();
        let first = stream.next().await.unwrap().unwrap();
        let params = first
            .new_params
            .expect("parameters come with the first frame");
        assert_eq!(params.codec, codec, "{role:?}");
        assert_eq!((params.width, params.height), (320, 240));
        assert!(first.is_key, "{role:?}: streams start at a key frame");
    }
}
