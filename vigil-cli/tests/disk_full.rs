//! The disk filling up under vigild while it records: its data directory is on a small tmpfs
//! of its own (48 MiB, mounted for the test; needs root, as CI and this project's machines
//! run), with a budget of 70%, or none (the default reserve). Another program then fills the
//! filesystem to the last byte.
//! Writes fail (the API says so), retention frees the oldest footage within seconds, recording
//! goes on, and once the other program's file is gone it settles under the budget. At the end
//! every listed recording plays with its frame count and no file is left unlisted: nothing
//! that was committed is lost, and no half-written segment is left behind.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use vigil_core::testing::{all_recordings, check_recordings_consistent, free_port};

mod common;
use common::Daemon;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .unwrap();
        assert!(
            st.success(),
            "mounting a tmpfs at {} failed ({st}): the test needs root",
            at.display()
        );
        Tmpfs(at.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn get(base: &str, path: &str) -> Value {
    let (status, v) = common::http("GET", &format!("{base}{path}"), None);
    assert_eq!(status, 200, "GET {path}: {v}");
    v
}

/// The demo camera's committed recordings, as the API lists them: (start, path).
fn recordings(base: &str) -> Vec<(String, String)> {
    let v = get(base, "/api/recordings?camera=demo&limit=1000");
    v["recordings"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|r| {
            (
                r["start_time"].as_str().unwrap_or_default().to_owned(),
                r["path"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Waits up to `secs` for `f` to hold, saying what it waited for otherwise.
fn wait_for(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < end, "waited {secs} s for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn a_full_disk_costs_the_oldest_footage_and_nothing_committed() {
    fill_the_disk(&["--max-storage-percent", "70"], |storage| {
        storage["max_percent"] == 70.0 && storage["reserve_bytes"].is_null()
    });
}

/// With no budget at all, the default reserve (half of this small disk) is kept free the same
/// way: recording never stops for want of space.
#[test]
fn with_no_budget_a_full_disk_costs_the_oldest_footage_too() {
    fill_the_disk(&[], |storage| {
        storage["max_percent"].is_null() && storage["reserve_bytes"] == 24 << 20
    });
}

/// vigild with `budget` on a 48 MiB disk that another program fills; `shows_budget` checks
/// what `/api/system/storage` says of the budget.
fn fill_the_disk(budget: &[&str], shows_budget: impl Fn(&Value) -> bool) {
    let dir = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(&dir.path().join("disk"), "48m");
    let data = disk.0.join("data");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let vigild = Daemon(Some(common::start_with(&data, port, budget)));

    // Recording as usual: two segments committed.
    wait_for(60, "two segments", || recordings(&base).len() >= 2);

    // Another program fills the filesystem to the last byte.
    let filler = disk.0.join("filler.bin");
    let mut f = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0x5a_u8; 256 << 10];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.flush();
    let filled_at = jiff::Timestamp::now();
    let before: Vec<String> = recordings(&base).into_iter().map(|r| r.1).collect();

    // The API reports the state: over the budget, and the recorder's writes failing.
    let storage = get(&base, "/api/system/storage");
    assert!(
        storage["percent"].as_f64().is_some_and(|p| p > 99.0)
            && storage["free_bytes"].as_u64().is_some_and(|b| b < 1 << 20)
            && shows_budget(&storage),
        "{storage}"
    );
    wait_for(30, "the recorder to report the write error", || {
        let t = get(&base, "/api/system/telemetry");
        t.to_string().contains("No space left on device")
            && t.pointer("/cameras/demo/recorder/errors")
                .and_then(Value::as_u64)
                .is_some_and(|n| n > 0)
    });

    // Retention frees the oldest footage, and recording goes on in the space it frees: a
    // segment that started after the disk filled is committed.
    wait_for(30, "the oldest segment to be deleted", || {
        let now: Vec<String> = recordings(&base).into_iter().map(|r| r.1).collect();
        !now.contains(&before[0])
    });
    let after_fill = |base: &str| {
        recordings(base)
            .into_iter()
            .filter(|(start, _)| {
                start
                    .parse::<jiff::Timestamp>()
                    .is_ok_and(|t| t > filled_at)
            })
            .count()
    };
    wait_for(60, "a segment started after the disk filled", || {
        after_fill(&base) >= 1
    });
    assert_eq!(get(&base, "/health")["status"], "ok");

    // The other program's file goes: recording settles under the budget again.
    drop(f);
    std::fs::remove_file(&filler).unwrap();
    let freed_at = after_fill(&base);
    wait_for(60, "two more segments once the disk had room", || {
        after_fill(&base) >= freed_at + 2
    });

    // Stopped: every recording listed plays with its frames and duration, and no file is left
    // that is not listed (no half-written segment, nothing in .open or .trash).
    common::stop(vigild.take());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store =
        vigil_store::LmdbStore::open(&vigil_cli::store_dir(&data), Default::default()).unwrap();
    let recs = rt.block_on(all_recordings(&store));
    assert!(recs.len() >= 2, "{} recordings", recs.len());
    check_recordings_consistent(&data, &recs);
}
