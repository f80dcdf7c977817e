//! The clients printed in the documents, run unchanged against `vigild` recording a real RTSP
//! camera (GStreamer's RTSP server): SpectraX's Python client and HSI's cursor iteration.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{http, start_with, stop};
use vigil_core::testing::{ffprobe, free_port, RtspServer};
use vigil_core::{Batch, Mutation, Store};
use vigil_store::LmdbStore;

fn python(script: &str, args: &[&str]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(script);
    let out = Command::new("python3")
        .arg(&path)
        .args(args)
        .output()
        .expect("python3 (with requests: `bash .ci/run` installs it)");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documents_python_clients_get_the_right_data_from_vigild() {
    let rtsp = RtspServer::start(640, 480, None);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Events stored before the start, more than one page of HSI's example (limit 100).
    let events = vigil_store::conformance::sample_events(250, 3);
    {
        let store: Arc<dyn Store> =
            Arc::new(LmdbStore::open(&vigil_cli::store_dir(&data), Default::default()).unwrap());
        let b: Batch = events
            .iter()
            .map(|e| Mutation::PutEvent(Box::new(e.clone())))
            .collect();
        store.apply(b).await.unwrap();
    }
    let config = dir.path().join("vigil.toml");
    std::fs::write(
        &config,
        format!(
            "[cameras.front]\nurl = \"{}\"\ndetect = {{ width = 320, height = 240 }}\n",
            rtsp.url()
        ),
    )
    .unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = start_with(&data, port, &["--config", config.to_str().unwrap()]);

    // Wait for the first finished segment of the RTSP camera.
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, v) = http("GET", &format!("{base}/api/recordings?camera=front"), None);
        if v["total"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert!(
            Instant::now() < end,
            "no recording from the RTSP camera: {v}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    let out_mp4 = dir.path().join("output.mp4");
    let text = python("spectrax_client.py", &[&base, out_mp4.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["status"]["status"], "running");
    assert!(v["status"]["uptime_seconds"].is_u64());
    assert!(
        v["status"]["cameras"]["front"]["fps"].as_f64().unwrap() > 0.0,
        "{v}"
    );
    assert_eq!(v["people"]["total"], 0, "the test pattern shows nobody");
    let all = &v["all"];
    assert!(all["total"].as_u64().unwrap() >= 1);
    let first = &all["recordings"][0];
    assert_eq!(first["stream_name"], "front");
    assert!(first["duration"].as_f64().unwrap() > 5.0, "{first}");
    assert_eq!(v["one"]["id"], first["id"]);
    assert_eq!(v["stats"]["by_camera"]["front"]["count"], all["total"]);
    // The file the client downloaded is the recording, and it plays.
    let p = ffprobe(&out_mp4);
    assert_eq!((p.codec.as_str(), p.width, p.height), ("h264", 640, 480));
    assert_eq!(
        std::fs::metadata(&out_mp4).unwrap().len(),
        first["size_bytes"].as_u64().unwrap()
    );

    // The recording gets its thumbnail and hover-scrub sprite sheet (picam's, by file path).
    let end = Instant::now() + Duration::from_secs(30);
    let id = first["id"].as_str().unwrap().to_owned();
    let file_path = first["file_path"].as_str().unwrap().to_owned();
    loop {
        let (_, r) = http("GET", &format!("{base}/api/recordings/{id}"), None);
        if r["sprite_url"].is_string() {
            break;
        }
        assert!(Instant::now() < end, "no sprite sheet: {r}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let q = |p: &str| format!("{p}?video_path={}", file_path.replace('/', "%2F"));
    for (url, size) in [
        (format!("{base}{}", q("/sprite")), (1600, 90)),
        (format!("{base}{}", q("/thumbnail")), (320, 240)),
        (
            format!("{base}/api/recordings/{id}/thumbnail.jpg"),
            (320, 240),
        ),
    ] {
        let mut resp = ureq::get(&url).call().unwrap();
        assert_eq!(resp.headers()["content-type"], "image/jpeg", "{url}");
        let jpeg = resp.body_mut().read_to_vec().unwrap();
        let pic = vigil_detect::render::decode_jpeg(&jpeg).unwrap();
        assert_eq!((pic.width, pic.height), size, "{url}");
    }

    let text = python("hsi_cursor.py", &[&base]);
    let ids: Vec<String> = serde_json::from_str(&text).unwrap();
    let unique: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no event twice");
    for e in &events {
        assert!(unique.contains(&e.id.to_string()), "event {} missing", e.id);
    }
    stop(child);
}
