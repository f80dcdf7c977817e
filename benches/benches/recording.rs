//! The CPU cost of recording: N file-fed 1080p H.264 cameras at about 4 Mbit/s recorded at
//! real-time pace in one process (supervision, recorder thread, fragmented MP4, fsync, LMDB
//! commit per segment), as percent of one core per camera, for N = 1, 8 and 16. The peer,
//! measured in the same run: ffmpeg's segment muxer copying the same stream (`-c copy`, what
//! Frigate runs per camera), one process per camera, for N = 1 and 8.
//!
//! `cargo bench -p vigil-benches --bench recording`. Needs ffmpeg (Debian package). Set
//! `VIGIL_BENCH_SECONDS` to change the 20 s measured per case.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil_core::camera::FileCamera;
use vigil_core::pipeline::{CameraTask, CameraTaskOptions};
use vigil_core::{Camera, CameraId, Clocks, IdGenerator, RealClocks, Store};
use vigil_store::LmdbStore;

/// (own, children) CPU seconds of this process, from /proc/self/stat.
fn cpu() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("proc");
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    ((f[11] + f[12]) / 100.0, (f[13] + f[14]) / 100.0)
}

fn make_media(dir: &Path) -> std::path::PathBuf {
    let out = dir.join("1080p-4M.h264");
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=1920x1080:rate=30")
        .args([
            "-t", "10", "-c:v", "libx264", "-preset", "veryfast", "-bf", "0", "-g", "30", "-b:v",
            "4M", "-maxrate", "4M", "-bufsize", "8M", "-pix_fmt", "yuv420p",
        ])
        .arg(&out)
        .status()
        .expect("ffmpeg (Debian package ffmpeg) is needed for this benchmark");
    assert!(st.success(), "ffmpeg failed");
    // Both sides read the same MP4 (ffmpeg cannot loop a raw H.264 stream).
    let mp4 = dir.join("1080p-4M.mp4");
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-r", "30", "-i"])
        .arg(&out)
        .args(["-c", "copy"])
        .arg(&mp4)
        .status()
        .expect("ffmpeg");
    assert!(st.success(), "ffmpeg failed to remux");
    mp4
}

fn vigil(rt: &tokio::runtime::Runtime, media: &Path, n: usize, secs: u64) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_owned();
    rt.block_on(async {
        let store: Arc<dyn Store> =
            Arc::new(LmdbStore::open(&data.join("db"), Default::default()).expect("store"));
        let clocks: Arc<dyn Clocks> = Arc::new(RealClocks::default());
        let ids = Arc::new(IdGenerator::new(0));
        let mut tasks = Vec::new();
        for i in 0..n {
            let id = CameraId::new(format!("cam{i}")).expect("id");
            let cam: Arc<dyn Camera> =
                Arc::new(FileCamera::new(id, media, Some(30), clocks.clone()));
            let opts = CameraTaskOptions::new(&data);
            tasks.push(
                CameraTask::start(cam, opts, store.clone(), ids.clone(), clocks.clone())
                    .expect("start"),
            );
        }
        // Let them connect (the file is read once per camera) before measuring.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (c0, _) = cpu();
        let t0 = Instant::now();
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let (c1, _) = cpu();
        let wall = t0.elapsed().as_secs_f64();
        let frames: u64 = tasks.iter().map(|t| t.stats().frames).sum();
        for t in tasks {
            t.stop().await;
        }
        let fps = frames as f64 / (wall + 2.0) / n as f64;
        println!("  vigil n={n}: {fps:.1} fps per camera received");
        (c1 - c0) / wall / n as f64 * 100.0
    })
}

fn ffmpeg(media: &Path, n: usize, secs: u64) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, k0) = cpu();
    let mut kids = Vec::new();
    for i in 0..n {
        let out = dir.path().join(format!("cam{i}-%03d.mp4"));
        let child = Command::new("ffmpeg")
            .args(["-v", "error", "-re", "-stream_loop", "-1", "-i"])
            .arg(media)
            .args([
                "-c",
                "copy",
                "-f",
                "segment",
                "-segment_time",
                "10",
                "-reset_timestamps",
                "1",
                "-t",
            ])
            .arg(secs.to_string())
            .arg(out)
            .stdout(Stdio::null())
            .spawn()
            .expect("ffmpeg");
        kids.push(child);
    }
    let t0 = Instant::now();
    for mut k in kids {
        k.wait().expect("wait ffmpeg");
    }
    let wall = t0.elapsed().as_secs_f64();
    let (_, k1) = cpu();
    (k1 - k0) / wall / n as f64 * 100.0
}

fn main() {
    // `cargo bench` passes --bench; nothing else to parse.
    let secs: u64 = std::env::var("VIGIL_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().expect("tempdir");
    println!("making a 1080p30 H.264 file at 4 Mbit/s with ffmpeg...");
    let media = make_media(dir.path());
    let mbps = std::fs::metadata(&media).expect("media").len() as f64 * 8.0 / 10.0 / 1e6;
    println!("media: {mbps:.2} Mbit/s");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    for n in [1, 8, 16] {
        let pct = vigil(&rt, &media, n, secs);
        println!("recording {n:>2} camera(s), Vigil: {pct:.2}% of one core per camera");
    }
    for n in [1, 8] {
        let pct = ffmpeg(&media, n, secs);
        println!("recording {n:>2} camera(s), ffmpeg -c copy -f segment: {pct:.2}% of one core per camera");
    }
}
