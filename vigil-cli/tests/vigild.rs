//! `vigild` as a user runs it: started on an empty data directory, it records its built-in
//! demo camera; stopped with SIGTERM, it closes the open segment; restarted, it carries on.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil_core::testing::{all_recordings, check_recordings_consistent, free_port};
use vigil_core::Store;
use vigil_store::LmdbStore;

/// Starts vigild and waits for it to answer; the caller stops (and waits for) it.
#[allow(clippy::zombie_processes)]
fn start(data: &Path, port: u16) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigild"))
        .args(["--data-dir"])
        .arg(data)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if out.starts_with("HTTP/1.1 200") {
                return child;
            }
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("vigild did not come up");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stop(mut child: Child) {
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let st = child.wait().unwrap();
    assert!(st.success(), "vigild exited with {st}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vigild_records_its_demo_camera() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let child = start(&data, port);
    std::thread::sleep(Duration::from_secs(13));
    stop(child);
    let child = start(&data, port);
    std::thread::sleep(Duration::from_secs(3));
    stop(child);

    let store: Arc<dyn Store> =
        Arc::new(LmdbStore::open(&vigil_cli::store_dir(&data), Default::default()).unwrap());
    let recs = all_recordings(&*store).await;
    check_recordings_consistent(&data, &recs);
    // A 10 s segment and the rest of the first run, then the second run's segment.
    assert!(recs.len() >= 3, "{recs:?}");
    assert!(recs.iter().all(|r| r.camera.as_str() == "demo"));
    assert_eq!((recs[0].width, recs[0].height), (1280, 720));
    let secs: f64 = recs.iter().map(|r| r.duration_us() as f64 / 1e6).sum();
    assert!(secs > 13.0, "{secs} s recorded");

    // The demo scene moves all the time: motion made events, ended by the shutdowns at the
    // latest, each with a snapshot on disk.
    let events = store
        .events(&vigil_core::Query::new(vigil_core::EventFilter::default()))
        .await
        .unwrap()
        .items;
    assert!(!events.is_empty(), "no events from the demo camera");
    for e in &events {
        assert_eq!((e.camera.as_str(), e.label.as_str()), ("demo", "motion"));
        assert!(e.end_time.is_some(), "{e:#?}");
        let snapshot = e
            .best
            .as_ref()
            .and_then(|b| b.snapshot_path.clone())
            .expect("a snapshot");
        assert!(data.join(snapshot).exists());
    }
}
