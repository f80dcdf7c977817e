//! The API over a running system: a synthetic camera recorded and analysed for motion. Its
//! newest picture as `latest.jpg`, MJPEG streams that decode at about the asked rate, and the
//! events' media (thumbnails, snapshots, clips that ffprobe accepts).

use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil_core::pipeline::{CameraFactory, Nvr, NvrOptions};
use vigil_core::{Camera, CameraConfig, CameraId, Clocks, Mutation, RealClocks, Source, Store};
use vigil_detect::render::decode_jpeg;
use vigil_detect::{analyzer_factory, DetectorRegistry, SyntheticCamera};
use vigil_store::{LmdbStore, StoreOptions};

struct System {
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    nvr: Arc<Nvr>,
    dir: tempfile::TempDir,
}

async fn start() -> System {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(LmdbStore::open(&dir.path().join("db"), StoreOptions::default()).unwrap());
    let clocks: Arc<dyn Clocks> = Arc::new(RealClocks::default());
    let mut cam = CameraConfig::new(
        CameraId::new("yard").unwrap(),
        Source::Synthetic {
            width: 320,
            height: 240,
            fps: 10,
        },
        clocks.realtime(),
    );
    cam.detect.width = 320;
    cam.detect.height = 240;
    cam.detect.fps = 10;
    store
        .apply(Mutation::PutCamera(Box::new(cam)).into())
        .await
        .unwrap();
    let c = clocks.clone();
    let factory: CameraFactory = Arc::new(move |cfg: &CameraConfig| {
        let Source::Synthetic { width, height, fps } = cfg.record_source else {
            unreachable!()
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
            .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let state = vigil_http::AppState::with_nvr(store, nvr.clone()).without_auth();
    let task = tokio::spawn(vigil_http::serve(listener, state, async {
        let _ = rx.await;
    }));
    System {
        base,
        stop: Some(tx),
        task,
        nvr,
        dir,
    }
}

impl System {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap().unwrap();
        self.nvr.stop().await;
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// GET `url`, keep reading for `secs`, and split what came into its JPEG parts.
fn read_mjpeg(url: &str, secs: f64) -> (String, Vec<Vec<u8>>) {
    let resp = agent().get(url).call().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let ctype = resp
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let mut reader = resp.into_body().into_reader();
    let mut buf = Vec::new();
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let mut chunk = [0u8; 65536];
    while Instant::now() < end {
        let n = reader.read(&mut chunk).unwrap();
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    // Parts: "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: N\r\n\r\n<N bytes>\r\n".
    let mut parts = Vec::new();
    let mut rest = &buf[..];
    while let Some(i) = find(rest, b"Content-Length: ") {
        let after = &rest[i + 16..];
        let eol = find(after, b"\r\n").unwrap();
        let n: usize = std::str::from_utf8(&after[..eol]).unwrap().parse().unwrap();
        let start = eol + 4;
        if after.len() < start + n {
            break; // The last part was cut when we stopped reading.
        }
        parts.push(after[start..start + n].to_vec());
        rest = &after[start + n..];
    }
    (ctype, parts)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_jpg_and_mjpeg_streams_decode_at_the_asked_rate() {
    let sys = start().await;
    let base = sys.base.clone();
    tokio::task::spawn_blocking(move || {
        // The first analysed picture comes within a few seconds.
        let end = Instant::now() + Duration::from_secs(20);
        let jpeg = loop {
            let mut r = agent().get(format!("{base}/api/yard/latest.jpg")).call().unwrap();
            if r.status().as_u16() == 200 {
                break r.body_mut().read_to_vec().unwrap();
            }
            assert_eq!(r.status().as_u16(), 503, "before the first picture");
            assert!(Instant::now() < end, "no picture");
            std::thread::sleep(Duration::from_millis(200));
        };
        let pic = decode_jpeg(&jpeg).unwrap();
        assert_eq!((pic.width, pic.height), (320, 240));
        // Scaled, with every overlay drawn.
        let mut r = agent()
            .get(format!(
                "{base}/api/yard/latest.jpg?h=120&bbox=1&timestamp=1&zones=1&mask=1&motion=1&regions=1"
            ))
            .call()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let pic = decode_jpeg(&r.body_mut().read_to_vec().unwrap()).unwrap();
        assert_eq!((pic.width, pic.height), (160, 120));
        let mut r = agent().get(format!("{base}/api/cameras/yard/snapshot")).call().unwrap();
        assert_eq!(r.status().as_u16(), 200);
        decode_jpeg(&r.body_mut().read_to_vec().unwrap()).unwrap();

        // Three viewers at once: two of the same stream (one encoder), one of another size.
        let a = std::thread::spawn({
            let base = base.clone();
            move || read_mjpeg(&format!("{base}/api/yard?fps=5&h=120&bbox=1"), 4.0)
        });
        let b = std::thread::spawn({
            let base = base.clone();
            move || read_mjpeg(&format!("{base}/api/yard?fps=5&h=120&bbox=1"), 4.0)
        });
        let (ctype, parts) = read_mjpeg(&format!("{base}/video/stream?path=video/yard&fps=2"), 4.0);
        assert!(ctype.starts_with("multipart/x-mixed-replace"), "{ctype}");
        assert!((5..=10).contains(&parts.len()), "{} parts at 2 fps in 4 s", parts.len());
        let pic = decode_jpeg(&parts[0]).unwrap();
        assert_eq!((pic.width, pic.height), (320, 240));
        for viewer in [a, b] {
            let (_, parts) = viewer.join().unwrap();
            // 5 fps for 4 s (the camera analyses at 10): about 20 frames.
            assert!((14..=24).contains(&parts.len()), "{} parts at 5 fps in 4 s", parts.len());
            for p in &parts {
                let pic = decode_jpeg(p).unwrap();
                assert_eq!((pic.width, pic.height), (160, 120));
            }
        }

        for (q, field) in [("h=5", "h"), ("fps=0", "fps"), ("bbox=2", "bbox"), ("quality=101", "quality")] {
            let mut r = agent().get(format!("{base}/api/yard/latest.jpg?{q}")).call().unwrap();
            assert_eq!(r.status().as_u16(), 422, "{q}");
            let v: serde_json::Value =
                serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
            assert_eq!(v["detail"][0]["loc"][1], field, "{v}");
        }
        let r = agent().get(format!("{base}/api/nocamera/latest.jpg")).call().unwrap();
        assert_eq!(r.status().as_u16(), 404);
        let r = agent().get(format!("{base}/video/stream?path=nocamera")).call().unwrap();
        assert_eq!(r.status().as_u16(), 404);
    })
    .await
    .unwrap();
    // A viewer still connected does not hold up the shutdown.
    let base = sys.base.clone();
    let viewer = std::thread::spawn(move || read_mjpeg(&format!("{base}/api/yard"), 30.0));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let t = Instant::now();
    sys.stop().await;
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    let (_, parts) = viewer.join().unwrap();
    assert!(!parts.is_empty());
}

fn get(url: &str) -> (u16, Vec<u8>) {
    get_with(url, &[])
}

fn get_with(url: &str, headers: &[(&str, &str)]) -> (u16, Vec<u8>) {
    let mut req = agent().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut r = req.call().unwrap();
    let st = r.status().as_u16();
    (
        st,
        r.body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .unwrap(),
    )
}

fn json(url: &str) -> serde_json::Value {
    let (st, body) = get(url);
    assert_eq!(st, 200, "{url}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_thumbnails_snapshots_and_clips() {
    let sys = start().await;
    let base = sys.base.clone();
    let dir = sys.dir.path().to_owned();
    let started = vigil_core::Clocks::realtime(&RealClocks::default());
    tokio::task::spawn_blocking(move || {
        // The scene moves all the time: a motion event with a snapshot comes within seconds,
        // and a first 10 s segment after that.
        let end = Instant::now() + Duration::from_secs(40);
        let event = loop {
            let v = json(&format!("{base}/api/events?camera=yard&has_snapshot=1"));
            let recs = json(&format!("{base}/api/recordings?camera=yard"));
            if let (Some(e), true) = (v["events"].get(0), recs["total"].as_u64() > Some(0)) {
                break e.clone();
            }
            assert!(
                Instant::now() < end,
                "no event with a snapshot and a recording"
            );
            std::thread::sleep(Duration::from_millis(500));
        };
        let id = event["id"].as_str().unwrap().to_owned();
        assert_eq!(event["label"], "motion");

        // The event's detections, as an entity's appearances and with their enrichment.
        let dets = json(&format!("{base}/api/events/{id}/detections"));
        assert!(dets["count"].as_u64().unwrap() > 0, "{dets}");
        let det = dets["detections"][0]["id"].as_str().unwrap().to_owned();
        assert_eq!(dets["detections"][0]["event_id"], id.as_str());
        let v = json(&format!("{base}/api/entities?camera_id=yard"));
        assert!(v["entities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == id.as_str()));
        let v = json(&format!("{base}/api/entities/{id}/history"));
        assert!(v["count"].as_u64().unwrap() > 0);
        let v = json(&format!("{base}/api/detections/{det}/enrichment"));
        assert_eq!(v["event_id"], id.as_str());
        assert!(v["track"]["first_seen"].is_string(), "{v}");
        let v = json(&format!("{base}/api/events/{id}/enrichments"));
        assert!(v["count"].as_u64().unwrap() > 0);
        let v = json(&format!("{base}/api/analytics/detection-trends"));
        assert!(v["total_detections"].as_u64().unwrap() > 0, "{v}");
        let v = json(&format!("{base}/api/analytics/object-distribution"));
        assert_eq!(v["object_types"][0]["object_type"], "motion");
        assert_eq!(v["object_types"][0]["percentage"], 100.0);
        let v = json(&format!("{base}/api/analytics/camera-uptime?days=1"));
        assert!(
            v["cameras"][0]["recorded_seconds"].as_f64().unwrap() > 5.0,
            "{v}"
        );
        let v = json(&format!("{base}/api/analytics/risk-history"));
        assert!(v["data_points"][0]["unscored"].as_u64().unwrap() > 0, "{v}");
        assert_eq!(
            get(&format!("{base}/api/analytics/risk-history?days=0")).0,
            422
        );

        let (st, t) = get(&format!("{base}/api/events/{id}/thumbnail.jpg"));
        assert_eq!(st, 200);
        let t = decode_jpeg(&t).unwrap();
        assert_eq!(t.width, t.height, "thumbnails are square");
        let (st, a) = get(&format!(
            "{base}/api/events/{id}/thumbnail.jpg?format=android"
        ));
        assert_eq!(st, 200);
        let a = decode_jpeg(&a).unwrap();
        assert_eq!((a.width, a.height), (2 * t.height, t.height));
        let (st, s) = get(&format!(
            "{base}/api/events/{id}/snapshot.jpg?h=120&timestamp=1"
        ));
        assert_eq!(st, 200);
        assert_eq!(decode_jpeg(&s).unwrap().height, 120);
        let (st, s) = get(&format!("{base}/clips/yard-{id}.jpg"));
        assert_eq!(st, 200);
        assert_eq!(decode_jpeg(&s).unwrap().width, 320);
        let (st, s) = get(&format!("{base}/api/yard/motion/best.jpg?h=60&crop=1"));
        assert_eq!(st, 200);
        assert_eq!(decode_jpeg(&s).unwrap().height, 60);
        assert_eq!(get(&format!("{base}/api/yard/car/best.jpg")).0, 404);

        // Clips play: the event's, Frigate's /clips form, and a fixed range, whose bytes are
        // the same on every request, so that ranges of it are exact.
        for url in [
            format!("{base}/api/events/{id}/clip.mp4"),
            format!("{base}/clips/yard-{id}.mp4"),
        ] {
            let (st, clip) = get(&url);
            assert_eq!(st, 200, "{url}: {}", String::from_utf8_lossy(&clip));
            let f = dir.join("probe.mp4");
            std::fs::write(&f, &clip).unwrap();
            let p = vigil_core::testing::ffprobe(&f);
            assert_eq!((p.codec.as_str(), p.width, p.height), ("h264", 320, 240));
            assert!(p.frames > 0);
        }
        let s = started.as_secs();
        let url = format!("{base}/api/yard/start/{s}/end/{}/clip.mp4", s + 5);
        let (st, clip) = get(&url);
        assert_eq!(st, 200, "{}", String::from_utf8_lossy(&clip));
        let f = dir.join("range.mp4");
        std::fs::write(&f, &clip).unwrap();
        assert!(vigil_core::testing::ffprobe(&f).duration > 3.0);
        let (st, part) = get_with(&url, &[("range", "bytes=100-1099")]);
        assert_eq!(st, 206);
        assert_eq!(part, &clip[100..1100]);
        let (st, _) = get_with(&url, &[("range", &format!("bytes={}-", clip.len()))]);
        assert_eq!(st, 416);
        // No frames were recorded long before the camera started.
        let (st, _) = get(&format!("{base}/api/yard/start/1000/end/1010/clip.mp4"));
        assert_eq!(st, 404);
        let (st, _) = get(&format!("{base}/api/yard/start/10/end/5/clip.mp4"));
        assert_eq!(st, 422);
        assert_eq!(get(&format!("{base}/clips/yard-1.mp4")).0, 404);
        assert_eq!(get(&format!("{base}/clips/other-{id}.mp4")).0, 404);
        assert_eq!(get(&format!("{base}/clips/nonsense")).0, 404);
        // picam's snapshots: capture, list, read, delete; no path escapes snapshots/.
        let mut r = agent()
            .post(format!("{base}/snapshot"))
            .send_empty()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let shot: serde_json::Value =
            serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        let path = shot["path"].as_str().unwrap().to_owned();
        assert!(path.starts_with(dir.to_str().unwrap()), "{path}");
        let listed = json(&format!("{base}/snapshots"));
        assert!(listed
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["path"] == path.as_str()));
        assert!(listed
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["source"] != "event"));
        let q = |p: &str| form_urlencoded::byte_serialize(p.as_bytes()).collect::<String>();
        let (st, img) = get(&format!("{base}/snapshot_image?path={}", q(&path)));
        assert_eq!(st, 200);
        assert_eq!(decode_jpeg(&img).unwrap().width, 320);
        std::os::unix::fs::symlink(
            "/etc/hostname",
            dir.join("snapshots/yard/snapshot_evil.jpg"),
        )
        .unwrap();
        for bad in [
            "/etc/passwd".to_owned(),
            "snapshots/../db/data.mdb".to_owned(),
            format!("{}/db/data.mdb", dir.display()),
            format!("snapshots/yard/{id}.jpg"),
            "snapshots/yard/snapshot_evil.jpg".to_owned(),
        ] {
            assert_eq!(
                get(&format!("{base}/snapshot_image?path={}", q(&bad))).0,
                404,
                "{bad}"
            );
        }
        let delete = |p: &str| {
            agent()
                .post(format!("{base}/delete_snapshot"))
                .header("content-type", "application/json")
                .send(serde_json::json!({"snapshot_path": p}).to_string())
                .unwrap()
                .status()
                .as_u16()
        };
        assert_eq!(delete("../../etc/passwd"), 400);
        assert_eq!(delete(&format!("snapshots/yard/{id}.jpg")), 400);
        assert_eq!(delete("snapshots/yard/snapshot_evil.jpg"), 404);
        assert!(std::path::Path::new("/etc/hostname").exists());
        assert_eq!(delete(&path), 200);
        assert_eq!(delete(&path), 404);
        assert_eq!(
            get(&format!("{base}/snapshot_image?path={}", q(&path))).0,
            404
        );
        assert!(!json(&format!("{base}/snapshots"))
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["path"] == path.as_str()));

        // Nothing is left behind in the scratch directory.
        let left = std::fs::read_dir(dir.join("clips/.tmp")).unwrap().count();
        assert_eq!(left, 0);
    })
    .await
    .unwrap();
    sys.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_status_storage_config_and_metrics() {
    let sys = start().await;
    let base = sys.base.clone();
    tokio::task::spawn_blocking(move || {
        // Frigate's stats: the camera's fps is above 0 once frames flow (Home Assistant needs
        // that), in both the documented and the newer shape; rates come from two reads.
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let v = json(&format!("{base}/api/stats"));
            let fps = v["cameras"]["yard"]["camera_fps"].as_f64().unwrap();
            if fps > 0.0 && v["cameras"]["yard"]["process_fps"].as_f64().unwrap() > 0.0 {
                assert_eq!(v["yard"]["camera_fps"], v["cameras"]["yard"]["camera_fps"]);
                assert!(v["service"]["uptime"].is_u64());
                assert!(v["service"]["version"]
                    .as_str()
                    .unwrap()
                    .starts_with("0.16.0-vigil"));
                assert!(v["detectors"].is_object());
                break;
            }
            assert!(Instant::now() < end, "no fps: {v}");
            std::thread::sleep(Duration::from_millis(1100));
        }
        let v = json(&format!("{base}/status"));
        assert_eq!(v["status"], "running");
        assert!(v["cameras"]["yard"]["fps"].as_f64().unwrap() > 0.0, "{v}");
        assert_eq!(v["model"], "motion");
        let v = json(&format!("{base}/api/system/stats"));
        assert_eq!(v["total_cameras"], 1);
        let (st, body) = get(&format!("{base}/api/system/health"));
        assert_eq!(st, 200);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["services"]["database"]["status"], "healthy");
        assert_eq!(v["services"]["cameras"]["yard"]["status"], "healthy", "{v}");

        // Storage: statistics, then picam's auto-delete setting, then a cleanup.
        let v = json(&format!("{base}/api/system/storage"));
        assert!(v["total_bytes"].as_u64().unwrap() > 0);
        assert_eq!(v["enabled"], false);
        let r = agent()
            .post(format!("{base}/storage/configure"))
            .header("content-type", "application/json")
            .send(r#"{"enabled": true, "max_percent": 99.5}"#)
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let v = json(&format!("{base}/storage/status"));
        assert_eq!(
            (v["enabled"].clone(), v["max_percent"].clone()),
            (true.into(), 99.5.into())
        );
        let r = agent()
            .post(format!("{base}/storage/configure"))
            .header("content-type", "application/json")
            .send(r#"{"max_percent": 150}"#)
            .unwrap();
        assert_eq!(r.status().as_u16(), 422);
        let mut r = agent()
            .post(format!("{base}/storage/cleanup"))
            .send_empty()
            .unwrap();
        assert_eq!(
            r.status().as_u16(),
            200,
            "{}",
            r.body_mut().read_to_string().unwrap()
        );
        let mut r = agent()
            .post(format!("{base}/api/system/cleanup"))
            .header("content-type", "application/json")
            .send(r#"{"older_than_days": 30}"#)
            .unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        assert_eq!(v["recordings_deleted"], 0, "nothing is 30 days old: {v}");
        let r = agent()
            .patch(format!("{base}/api/system/config"))
            .header("content-type", "application/json")
            .send(r#"{"storage": {"enabled": false}}"#)
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(json(&format!("{base}/storage/status"))["enabled"], false);

        // What Home Assistant's integration reads from the configuration.
        let v = json(&format!("{base}/api/config"));
        assert_eq!(v["mqtt"]["topic_prefix"], "vigil");
        assert!(v["model"].is_object());
        let yard = &v["cameras"]["yard"];
        assert_eq!(yard["objects"]["track"], serde_json::json!(["person"]));
        assert!(yard["zones"].is_object());
        assert!(yard["motion"]["threshold"].is_u64() && yard["motion"]["contour_area"].is_u64());
        assert_eq!(yard["audio"]["enabled_in_config"], false);
        let v = json(&format!("{base}/api/system/models"));
        assert_eq!(v["models"][0]["name"], "motion");
        assert_eq!(
            json(&format!("{base}/api/system/models/motion"))["category"],
            "motion"
        );
        assert_eq!(get(&format!("{base}/api/system/models/yolo")).0, 404);
        let v = json(&format!("{base}/system_alert_state"));
        assert!(["ok", "warn", "critical"].contains(&v["overall"].as_str().unwrap()));
        assert!(v["alerts"]["storage"].is_string());

        let (st, m) = get(&format!("{base}/metrics"));
        assert_eq!(st, 200);
        let m = String::from_utf8(m).unwrap();
        assert!(m.contains("# TYPE vigil_camera_fps gauge"), "{m}");
        let line = m
            .lines()
            .find(|l| l.starts_with("vigil_camera_connected{camera=\"yard\"}"))
            .unwrap();
        assert!(line.ends_with(" 1"), "{line}");
        // Services: the camera pipeline restarts, and disabling it stops it.
        let v = json(&format!("{base}/api/system/services"));
        assert_eq!(v["services"][0]["name"], "camera:yard");
        assert_eq!(v["services"][0]["status"], "running");
        for (action, want) in [
            ("restart", 200),
            ("disable", 200),
            ("start", 409),
            ("enable", 200),
            ("fly", 422),
        ] {
            let r = agent()
                .post(format!("{base}/api/system/services/camera:yard/{action}"))
                .send_empty()
                .unwrap();
            assert_eq!(r.status().as_u16(), want, "{action}");
        }
        let r = agent()
            .post(format!("{base}/api/system/services/http/restart"))
            .send_empty()
            .unwrap();
        assert_eq!(r.status().as_u16(), 409);
        let r = agent()
            .post(format!("{base}/system/restart"))
            .send_empty()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let v = json(&format!("{base}/api/system/telemetry"));
        assert!(v["cameras"]["yard"].is_object());
    })
    .await
    .unwrap();
    sys.stop().await;
}

fn send(method: &str, url: &str, body: Option<serde_json::Value>) -> (u16, serde_json::Value) {
    let a = agent();
    let mut r = match (method, body) {
        ("POST", Some(b)) => a
            .post(url)
            .header("content-type", "application/json")
            .send(b.to_string())
            .unwrap(),
        ("POST", None) => a.post(url).send_empty().unwrap(),
        ("PUT", Some(b)) => a
            .put(url)
            .header("content-type", "application/json")
            .send(b.to_string())
            .unwrap(),
        ("DELETE", _) => a.delete(url).call().unwrap(),
        _ => a.get(url).call().unwrap(),
    };
    let st = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap();
    (
        st,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggers_open_events_and_arming_suppresses_them() {
    let sys = start().await;
    let base = sys.base.clone();
    tokio::task::spawn_blocking(move || {
        let trigger_events = || {
            json(&format!("{base}/api/events?label=trigger&limit=100"))["events"]
                .as_array()
                .unwrap()
                .clone()
        };
        assert_eq!(send("GET", &format!("{base}/sensor/status"), None).1["enabled"], false);
        let (st, v) = send(
            "POST",
            &format!("{base}/sensor/configure"),
            Some(serde_json::json!({"type": "mock", "hold_seconds": 1, "gpio": 22})),
        );
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["gpio"], 22);
        let (st, v) = send("POST", &format!("{base}/sensor/mock/trigger"), None);
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["state"]["triggered"], true);
        let s = send("GET", &format!("{base}/sensor/status"), None).1;
        assert_eq!((s["triggered"].clone(), s["recording_from_sensor"].clone()), (true.into(), true.into()));
        let ev = trigger_events();
        assert_eq!(ev.len(), 1);
        assert_eq!((ev[0]["camera"].clone(), ev[0]["sub_label"].clone()), ("yard".into(), "sensor".into()));
        assert_eq!(ev[0]["in_progress"], true);
        // Firing again while triggered changes nothing.
        send("POST", &format!("{base}/sensor/mock/trigger"), None);
        assert_eq!(trigger_events().len(), 1);
        let (st, v) = send("POST", &format!("{base}/sensor/mock/release"), None);
        assert_eq!(st, 200);
        assert_eq!(v["state"]["triggered"], false);
        assert_eq!(trigger_events()[0]["in_progress"], false);

        // Disarmed: counted as suppressed, nothing opens.
        assert_eq!(send("POST", &format!("{base}/api/disarm"), None).1["armed"], false);
        let (_, v) = send("POST", &format!("{base}/sensor/mock/trigger"), None);
        assert_eq!(v["state"]["suppressed"], true);
        assert_eq!(send("GET", &format!("{base}/sensor/status"), None).1["suppressed"], true);
        send("POST", &format!("{base}/sensor/mock/release"), None);
        assert_eq!(trigger_events().len(), 1);
        let (st, v) = send("PUT", &format!("{base}/api/arming"), Some(serde_json::json!({"armed": true})));
        assert_eq!((st, v["armed"].clone()), (200, true.into()));

        // A general trigger, fired through its webhook, on named cameras.
        let (st, t) = send(
            "POST",
            &format!("{base}/api/triggers"),
            Some(serde_json::json!({"name": "door", "kind": "http", "type": "reed_switch", "cameras": ["yard"]})),
        );
        assert_eq!(st, 201, "{t}");
        let id = t["id"].as_str().unwrap().to_owned();
        let (st, _) = send("POST", &format!("{base}{}", t["webhook"].as_str().unwrap()), None);
        assert_eq!(st, 200);
        assert_eq!(trigger_events().len(), 2);
        assert_eq!(send("POST", &format!("{base}/api/triggers/{id}/release"), None).0, 200);
        assert_eq!(send("POST", &format!("{base}/api/triggers/{id}/disable"), None).0, 200);
        assert_eq!(send("POST", &format!("{base}/api/triggers/{id}/trigger"), None).0, 412);
        // The mock endpoints only drive the mock.
        send("POST", &format!("{base}/sensor/configure"), Some(serde_json::json!({"type": "pir"})));
        assert_eq!(send("POST", &format!("{base}/sensor/mock/trigger"), None).0, 409);
        let v = json(&format!("{base}/api/triggers"));
        assert_eq!(v["count"], 2);
        for (body, field) in [
            (serde_json::json!({"name": "x", "kind": "laser"}), "kind"),
            (serde_json::json!({"name": "x", "kind": "mqtt"}), "topic"),
            (serde_json::json!({"name": "x", "gpio": 40}), "gpio"),
            (serde_json::json!({"name": "x", "cameras": ["a/b"]}), "cameras"),
            (serde_json::json!({"kind": "mock"}), "name"),
        ] {
            let (st, v) = send("POST", &format!("{base}/api/triggers"), Some(body.clone()));
            assert_eq!(st, 422, "{body}: {v}");
            assert_eq!(v["detail"][0]["loc"][1], field, "{v}");
        }
        assert_eq!(send("POST", &format!("{base}/api/triggers"), Some(serde_json::json!({"name": "door"}))).0, 409);
        assert_eq!(send("DELETE", &format!("{base}/api/triggers/{id}"), None).0, 204);
        assert_eq!(send("GET", &format!("{base}/api/triggers/{id}"), None).0, 404);
    })
    .await
    .unwrap();
    sys.stop().await;
}
