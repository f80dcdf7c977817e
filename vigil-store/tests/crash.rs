//! Crash safety: a child process writing batches is killed with SIGKILL at random moments; after
//! each kill the store opens, every acknowledged batch is intact, and no batch is half there.
//!
//! The child is this same test binary, re-run with `VIGIL_CRASH_CHILD_DIR` set (see
//! `crash_child`), so the test needs no helper program.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use vigil_core::{Batch, EventFilter, Mutation, Query, Store};
use vigil_store::{LmdbStore, StoreOptions};

const CHILD_ENV: &str = "VIGIL_CRASH_CHILD_DIR";
const PER_BATCH: u64 = 50;
const ID_STRIDE: u64 = 1_000;
const ROUNDS: u32 = 20;

fn batch(n: u64) -> Batch {
    let mut r = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut rng = |m: u64| {
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        r % m
    };
    (0..PER_BATCH)
        .map(|i| {
            let mut e = vigil_store::conformance::sample_event(i, &mut rng);
            e.id = vigil_core::EventId(n * ID_STRIDE + i + 1);
            e.label = format!("b{n}");
            Mutation::PutEvent(Box::new(e))
        })
        .collect()
}

/// Not a test on its own: the body of the child process. Without the variable it does nothing.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.block_on(async {
        let store = LmdbStore::open(dir.as_ref(), StoreOptions::default()).unwrap();
        let mut n = store.max_id().await.unwrap() / ID_STRIDE + 1;
        loop {
            store.apply(batch(n)).await.unwrap();
            println!("committed {n}");
            n += 1;
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_writes_loses_nothing_committed() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut seed = 0x1234_5678u64;
    let mut last_acked = 0u64;
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut acked = None;
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line.strip_prefix("committed ") {
                    acked = n.trim().parse::<u64>().ok();
                }
            }
            acked
        });
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // Let it get going (opening takes a moment), then kill it at a random point.
        std::thread::sleep(Duration::from_millis(150 + seed % 400));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let acked = reader.join().unwrap().unwrap_or(last_acked);
        assert!(
            acked >= last_acked,
            "round {round}: acknowledged batches went backwards"
        );
        last_acked = acked;

        let store: Arc<dyn Store> =
            Arc::new(LmdbStore::open(dir.path(), StoreOptions::default()).unwrap());
        let counts = store.event_counts().await.unwrap();
        let present = counts.total / PER_BATCH;
        assert_eq!(
            counts.total % PER_BATCH,
            0,
            "round {round}: half a batch is visible"
        );
        assert!(
            present == acked || present == acked + 1,
            "round {round}: {present} batches on disk, {acked} acknowledged"
        );
        for n in 1..=present {
            assert_eq!(
                counts.by_label.get(&format!("b{n}")).copied(),
                Some(PER_BATCH),
                "round {round}: batch {n} is not whole"
            );
        }
        // The indexes agree with the rows: a full scan through the time index finds them all.
        let mut q = Query::new(EventFilter::default());
        q.page.with_total = true;
        q.page.limit = 1;
        let page = store.events(&q).await.unwrap();
        assert_eq!(page.total, Some(counts.total));
        if present > 0 {
            let e = store
                .event(vigil_core::EventId(present * ID_STRIDE + PER_BATCH))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(e.label, format!("b{present}"));
        }
        last_acked = last_acked.max(present);
    }
    assert!(last_acked > 0, "the child never committed anything");
}
