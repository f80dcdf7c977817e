//! `vigild` as a user runs it: started on an empty data directory, it records its built-in
//! demo camera; stopped with SIGTERM, it closes the open segment; restarted, it carries on.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{http, start, start_with, stop};

use vigil_core::testing::{all_recordings, check_recordings_consistent, free_port};
use vigil_core::Store;
use vigil_store::LmdbStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vigild_records_its_demo_camera() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let child = start(&data, port);
    let started = Instant::now();
    timelapse_through_the_api(&format!("http://127.0.0.1:{port}"), &data);
    std::thread::sleep(Duration::from_secs(13).saturating_sub(started.elapsed()));
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

#[test]
fn a_bad_configuration_stops_the_start_naming_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vigil.toml");
    std::fs::write(
        &path,
        "[cameras.yard]\nurl = \"synthetic:\"\ndetect = { fps = \"fast\" }\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vigild"))
        .arg("--config")
        .arg(&path)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let want = format!(
        "{}:3: cameras.yard.detect.fps: invalid type",
        path.display()
    );
    assert!(err.contains(&want), "{err}");
    assert!(!dir.path().join("data").exists(), "nothing was started");
}

#[test]
fn cameras_from_the_file_and_from_the_api_come_back_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let path = dir.path().join("vigil.toml");
    std::fs::write(
        &path,
        "[cameras.yard]\nurl = \"synthetic:320x240@5\"\nrecord = { mode = \"events\" }\n",
    )
    .unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = ["--config", path.to_str().unwrap()];
    let child = start_with(&data, port, &config);
    let (st, v) = http("GET", &format!("{base}/api/cameras"), None);
    assert_eq!(st, 200);
    let ids: Vec<&str> = v["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["yard"], "a configured camera, and no demo camera");
    assert_eq!(v["cameras"][0]["record"]["mode"], "events");
    let (st, v) = http(
        "POST",
        &format!("{base}/api/cameras"),
        Some(r#"{"name": "Porch", "url": "synthetic:320x240@5"}"#),
    );
    assert_eq!(st, 201, "{v}");
    // Disarmed, with a disk budget set through the API: both outlive the restart.
    let (st, v) = http("POST", &format!("{base}/api/disarm"), Some("{}"));
    assert_eq!((st, &v["armed"]), (200, &serde_json::json!(false)), "{v}");
    let (st, v) = http(
        "POST",
        &format!("{base}/storage/configure"),
        Some(r#"{"enabled": true, "max_percent": 77}"#),
    );
    assert_eq!(st, 200, "{v}");
    stop(child);

    let child = start_with(&data, port, &config);
    let (_, v) = http("GET", &format!("{base}/api/arming"), None);
    assert_eq!(v["armed"], false, "{v}");
    let (_, v) = http("GET", &format!("{base}/storage/status"), None);
    assert_eq!(
        (&v["threshold"], &v["enabled"]),
        (&serde_json::json!(77.0), &serde_json::json!(true)),
        "{v}"
    );
    let (st, _) = http("POST", &format!("{base}/api/arm"), Some("{}"));
    assert_eq!(st, 200);
    let (_, v) = http("GET", &format!("{base}/api/cameras"), None);
    let ids: Vec<&str> = v["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["porch", "yard"]);
    // The cameras run: frames arrive on both.
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, v) = http("GET", &format!("{base}/api/cameras"), None);
        let online = v["cameras"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["status"] == "online")
            .count();
        if online == 2 {
            break;
        }
        assert!(Instant::now() < end, "cameras not online: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // vigild's own log is in the store, as the log endpoints show it.
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, v) = http(
            "GET",
            &format!("{base}/api/logs?component=vigild&search=serving"),
            None,
        );
        if v["count"].as_u64().unwrap_or(0) > 0 {
            assert_eq!(v["logs"][0]["level"], "INFO");
            break;
        }
        assert!(
            Instant::now() < end,
            "vigild's log is not in the store: {v}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (st, _) = http("DELETE", &format!("{base}/api/cameras/porch"), None);
    assert_eq!(st, 204);
    stop(child);
    let child = start_with(&data, port, &config);
    let (_, v) = http("GET", &format!("{base}/api/cameras"), None);
    assert_eq!(v["count"], 1);
    stop(child);
}

/// picam's timelapse routes on the demo camera: a frame is taken at once, the video plays,
/// byte ranges work, and only timelapse videos can be deleted.
fn timelapse_through_the_api(base: &str, data: &std::path::Path) {
    let (st, v) = http(
        "POST",
        &format!("{base}/timelapse/configure"),
        Some(r#"{"enabled": true, "interval_minutes": 1, "fps": 5, "resolution": "320:240"}"#),
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (&v["camera"], &v["resolution"]),
        (&serde_json::json!("demo"), &serde_json::json!("320:240"))
    );
    let (st, v) = http(
        "POST",
        &format!("{base}/timelapse/configure"),
        Some(r#"{"interval_minutes": 90}"#),
    );
    assert_eq!(st, 422, "{v}");
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, v) = http("GET", &format!("{base}/timelapse/status"), None);
        if v["today_frame_count"].as_u64().unwrap_or(0) >= 1 {
            assert!(v["last_capture"].is_string(), "{v}");
            break;
        }
        assert!(Instant::now() < end, "no timelapse frame: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (st, v) = http("POST", &format!("{base}/timelapse/stop"), Some("{}"));
    assert_eq!((st, &v["enabled"]), (200, &serde_json::json!(false)), "{v}");
    let (_, list) = http("GET", &format!("{base}/timelapse"), None);
    let videos = list.as_array().unwrap();
    assert_eq!(videos.len(), 1, "{list}");
    let path = videos[0]["path"].as_str().unwrap().to_owned();
    assert!(path.starts_with(data.to_str().unwrap()), "{path}");
    assert!(videos[0]["thumbnail"].is_string(), "{list}");
    let url = format!("{base}/timelapse/video?path={}", path.replace('/', "%2F"));
    let mut resp = ureq::get(&url).call().unwrap();
    assert_eq!(resp.headers()["content-type"], "video/mp4");
    let body = resp.body_mut().read_to_vec().unwrap();
    assert_eq!(body, std::fs::read(&path).unwrap());
    let probe = vigil_core::testing::ffprobe(std::path::Path::new(&path));
    assert_eq!((probe.width, probe.height, probe.frames), (320, 240, 1));
    let mut part = ureq::get(&url)
        .header("range", "bytes=4-11")
        .call()
        .unwrap();
    assert_eq!(part.status().as_u16(), 206);
    assert_eq!(part.body_mut().read_to_vec().unwrap(), body[4..12]);
    for bad in [
        "/etc/passwd",
        "recordings/demo/x.mp4",
        "timelapse/demo/../../x.mp4",
    ] {
        let (st, v) = http(
            "POST",
            &format!("{base}/timelapse/delete"),
            Some(&serde_json::json!({ "path": bad }).to_string()),
        );
        assert_eq!(st, 400, "{bad}: {v}");
    }
    let (st, v) = http(
        "POST",
        &format!("{base}/timelapse/delete"),
        Some(&serde_json::json!({ "path": path }).to_string()),
    );
    assert_eq!(st, 200, "{v}");
    let (_, list) = http("GET", &format!("{base}/timelapse"), None);
    assert_eq!(list, serde_json::json!([]));
}

#[test]
fn the_first_start_makes_an_admin_and_every_request_must_authenticate() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    // stderr is read by a thread from the start, so vigild never blocks on a full pipe.
    let lines = |child: &mut std::process::Child| {
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        rx
    };
    let mut child = common::start_secured(&data, port, None, &[]);
    let rx = lines(&mut child);
    let mut said = Vec::new();
    let password = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("no password printed: {said:?}"));
        if said
            .iter()
            .any(|l: &String| l.contains("made the account `admin`"))
        {
            if let Some(p) = line.strip_prefix("    ") {
                break p.trim().to_owned();
            }
        }
        said.push(line);
    };
    assert!(password.len() >= 16, "{password}");
    assert_eq!(http("GET", &format!("{base}/health"), None).0, 200);
    let (st, v) = http("GET", &format!("{base}/api/cameras"), None);
    assert_eq!(st, 401, "{v}");
    let body = serde_json::json!({"username": "admin", "password": password}).to_string();
    let (st, v) = http("POST", &format!("{base}/api/auth/login"), Some(&body));
    assert_eq!(st, 200, "{v}");
    let token = v["token"].as_str().unwrap().to_owned();
    let (st, v) = http("GET", &format!("{base}/api/cameras?token={token}"), None);
    assert_eq!(st, 200, "{v}");
    stop(child);

    // Restarted: the same account, no new password, the token still valid.
    let mut child = common::start_secured(&data, port, None, &[]);
    let rx = lines(&mut child);
    let (st, _) = http("GET", &format!("{base}/api/cameras?token={token}"), None);
    assert_eq!(st, 200);
    stop(child);
    let said: Vec<String> = rx.try_iter().collect();
    assert!(
        !said.iter().any(|l| l.contains("made the account")),
        "{said:?}"
    );

    // VIGIL_ADMIN_PASSWORD names the first password instead.
    let data2 = dir.path().join("data2");
    let child = common::start_secured(&data2, port, Some("from-the-environment"), &[]);
    let body = r#"{"username": "admin", "password": "from-the-environment"}"#;
    assert_eq!(
        http("POST", &format!("{base}/api/auth/login"), Some(body)).0,
        200
    );
    stop(child);
}

#[test]
fn no_auth_is_refused_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vigild"))
        .args(["--no-auth", "--listen", "0.0.0.0:5999", "--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--no-auth is only allowed on a loopback address"),
        "{err}"
    );
    assert!(!dir.path().join("data").exists(), "nothing was started");
}
