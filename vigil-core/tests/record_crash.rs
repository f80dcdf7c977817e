//! Crash safety of recording: a child process recording a camera is killed with SIGKILL at
//! random moments, 20 times. After each kill, `reconcile` (what the daemon runs at start) makes
//! files and store agree: every committed segment is still listed and plays, no listed file is
//! missing, no orphan file remains, and the open segment is salvaged.
//!
//! The child is this test binary re-run with `VIGIL_REC_CRASH_DIR` set (see `crash_child`).

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use vigil_core::camera::FileCamera;
use vigil_core::pipeline::recorder::reconcile;
use vigil_core::pipeline::SupervisorOptions;
use vigil_core::testing::{all_recordings, check_files_match, check_playable, make_h264, record};
use vigil_core::*;
use vigil_store::LmdbStore;

const CHILD_ENV: &str = "VIGIL_REC_CRASH_DIR";
const MEDIA_ENV: &str = "VIGIL_REC_CRASH_MEDIA";
const ROUNDS: u32 = 20;

/// Not a test on its own: the body of the child process. Without the variable it does nothing.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let media = std::env::var(MEDIA_ENV).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let data = std::path::PathBuf::from(dir);
        let store: Arc<dyn Store> =
            Arc::new(LmdbStore::open(&data.join("db"), Default::default()).unwrap());
        reconcile(&data, &*store).await.unwrap();
        let clocks: Arc<dyn Clocks> = Arc::new(RealClocks::default());
        let cam = CameraId::new("porch").unwrap();
        let camera: Arc<dyn Camera> = Arc::new(FileCamera::new(cam, media, Some(30), clocks));
        let _run = record(
            camera,
            &data,
            store,
            SupervisorOptions::default(),
            Duration::from_millis(700),
        )
        .await;
        println!("recording");
        tokio::time::sleep(Duration::from_secs(3600)).await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_recording_loses_nothing_committed() {
    let dir = tempfile::tempdir().unwrap();
    let media = make_h264(dir.path(), 320, 240, 30, 2, 10);
    let data = dir.path().join("data");
    let exe = std::env::current_exe().unwrap();
    let mut seed = 0x2545_f491u64;
    let mut before: Vec<Recording> = Vec::new();
    let mut salvaged = 0;
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_ENV, &data)
            .env(MEDIA_ENV, &media)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(600 + seed % 2400));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();

        let store: Arc<dyn Store> =
            Arc::new(LmdbStore::open(&data.join("db"), Default::default()).unwrap());
        let report = reconcile(&data, &*store).await.unwrap();
        salvaged += report.salvaged;
        let recs = all_recordings(&*store).await;
        check_files_match(&data, &recs);
        // New segments play (older ones were checked in earlier rounds and must be unchanged).
        for r in recs.iter().filter(|r| !before.contains(r)) {
            check_playable(&data, r);
        }
        // Nothing committed before is lost or changed.
        for r in &before {
            assert!(
                recs.iter().any(|x| x == r),
                "round {round}: recording {} lost or changed",
                r.path
            );
        }
        before = recs;
        drop(store);
    }
    assert!(before.len() > 20, "only {} segments recorded", before.len());
    assert!(
        salvaged >= 5,
        "only {salvaged} segments salvaged in {ROUNDS} kills"
    );
}
