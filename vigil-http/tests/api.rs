//! The HTTP server against a real LMDB store and real files, over real TCP connections.

use serde_json::{json, Value};
use vigil_core::{
    BBox, Batch, CameraId, Detection, DetectionId, Mutation, RecordedObject, Recording,
    RecordingId, RecordingKind, Timestamp,
};

mod common;
use common::{Resp, Server};

/// A 4xx carries `{"detail": ...}`; a 422 locates the field.
fn assert_error(r: &Resp, status: u16, loc: Option<&[&str]>, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text());
    let v = r.json();
    match loc {
        Some(loc) => {
            let want: Vec<Value> = loc.iter().map(|s| json!(s)).collect();
            let got = v["detail"][0]["loc"]
                .as_array()
                .unwrap_or_else(|| panic!("{what}: {v}"));
            assert_eq!(&got[..want.len().min(got.len())], &want[..], "{what}: {v}");
        }
        None => assert!(v["detail"].is_string(), "{what}: {v}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_version_events_and_their_errors() {
    let srv = Server::start().await;
    assert_eq!(srv.get("/health").await.status, 200);
    let v = srv.get("/api/version").await;
    assert_eq!(v.status, 200);
    assert!(v.text().starts_with("0.16.0-vigil"), "{}", v.text());
    assert_eq!(srv.get("/ready").await.status, 200);

    let events = vigil_store::conformance::sample_events(40, 5);
    let b: Batch = events
        .iter()
        .map(|e| Mutation::PutEvent(Box::new(e.clone())))
        .collect();
    srv.store.apply(b).await.unwrap();

    let n_front = events
        .iter()
        .filter(|e| e.camera.as_str() == "front")
        .count();
    assert!(n_front > 5, "the data set should need two pages");
    // Cursor pages: every event of the camera once, in order, then has_more false.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/events?limit=5&camera=front&cursor={c}"),
            None => "/api/events?limit=5&camera=front".to_owned(),
        };
        let r = srv.get(&path).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        assert_eq!(v["count"], n_front);
        for e in v["events"].as_array().unwrap() {
            assert_eq!(e["camera"], "front");
            assert!(e["data"].is_object(), "Home Assistant reads data: {e}");
            seen.push(e["id"].as_str().unwrap().to_owned());
        }
        if !v["has_more"].as_bool().unwrap() {
            break;
        }
        cursor = Some(v["next_cursor"].as_str().unwrap().to_owned());
    }
    assert_eq!(seen.len(), n_front);
    let mut want: Vec<_> = events
        .iter()
        .filter(|e| e.camera.as_str() == "front")
        .collect();
    want.sort_by_key(|e| std::cmp::Reverse((e.start_time, e.id)));
    let want: Vec<String> = want.iter().map(|e| e.id.to_string()).collect();
    assert_eq!(seen, want);

    // Offset pages still work, with a deprecation warning.
    let v = srv.get("/api/events?limit=5&offset=5").await.json();
    assert_eq!(v["offset"], 5);
    assert!(v["deprecation_warning"].is_string());

    let e = &events[3];
    let v = srv.get(&format!("/api/events/{}", e.id)).await.json();
    assert_eq!(v["id"], e.id.to_string());
    assert_eq!(v["label"], e.label);

    // PATCH the review status and notes; the list filter then finds it.
    let r = srv
        .call(
            "PATCH",
            &format!("/api/events/{}", e.id),
            Some(json!({"reviewed": true, "notes": "the mail carrier"})),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["review_status"], "reviewed");
    let v = srv.get("/api/events?reviewed=1&limit=100").await.json();
    assert!(v["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["id"] == e.id.to_string() && x["notes"] == "the mail carrier"));
    let v = srv.get("/api/events/search?q=carrier").await.json();
    assert_eq!(v["results"][0]["id"], e.id.to_string(), "{v}");

    let v = srv.get("/api/events/stats").await.json();
    assert_eq!(v["total_events"], events.len());
    assert_eq!(v["events_by_camera"]["front"], n_front);
    let v = srv.get("/api/events/summary").await.json();
    let sum: u64 = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["count"].as_u64().unwrap())
        .sum();
    assert_eq!(sum, events.len() as u64);

    // CSV: a header and one line per event of the camera.
    let r = srv.get("/api/events/export?camera=front").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/csv"));
    let text = r.text();
    assert!(text.starts_with("id,camera,label"));
    assert_eq!(text.lines().count(), n_front + 1);

    let e2 = events.iter().find(|e| !e.retain).unwrap();
    let retained = events.iter().filter(|e| e.retain).count();
    let r = srv
        .call("POST", &format!("/api/events/{}/retain", e2.id), None, &[])
        .await;
    assert_eq!(r.status, 200);
    let v = srv.get("/api/events?favorites=1").await.json();
    assert_eq!(v["count"], retained + 1);

    for (path, status, loc) in [
        ("/api/events/1", 404, None),
        ("/api/events/x", 422, Some(&["path", "id"][..])),
        ("/api/events?limit=0", 422, Some(&["query", "limit"][..])),
        ("/api/events?limit=5000", 422, Some(&["query", "limit"][..])),
        (
            "/api/events?has_clip=maybe",
            422,
            Some(&["query", "has_clip"][..]),
        ),
        (
            "/api/events?after=yesterday",
            422,
            Some(&["query", "after"][..]),
        ),
        ("/api/events?cursor=garbage", 400, None),
        ("/api/events/search", 422, Some(&["query", "q"][..])),
        (
            "/api/events/summary?timezone=Mars/Olympus",
            422,
            Some(&["query", "timezone"][..]),
        ),
        ("/api/nothing", 404, None),
    ] {
        assert_error(&srv.get(path).await, status, loc, path);
    }
    let r = srv.call("POST", "/api/events", None, &[]).await;
    assert_error(&r, 405, None, "POST /api/events");
    assert!(r.header("allow").unwrap().contains("GET"));
    let r = srv
        .call(
            "PATCH",
            &format!("/api/events/{}", e.id),
            Some(json!({"reviewed": "yes"})),
            &[],
        )
        .await;
    assert_error(&r, 422, Some(&["body", "reviewed"]), "PATCH reviewed=yes");
    let r = srv
        .call(
            "PATCH",
            &format!("/api/events/{}", e.id),
            Some(json!({"colour": 1})),
            &[],
        )
        .await;
    assert_error(&r, 422, Some(&["body"]), "PATCH unknown field");
    // A body over the limit is refused before any handler sees it.
    let big = json!({"notes": "x".repeat(vigil_http::MAX_BODY_BYTES + 1)});
    let r = srv
        .call("PATCH", &format!("/api/events/{}", e.id), Some(big), &[])
        .await;
    assert_error(&r, 413, None, "oversized body");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cameras_and_zones_crud() {
    let srv = Server::start().await;
    let r = srv
        .call(
            "POST",
            "/api/cameras",
            Some(json!({"name": "Front Door", "url": "rtsp://admin:hunter2@10.0.0.5:554/main"})),
            &[],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let cam = r.json();
    assert_eq!(cam["id"], "front_door");
    assert_eq!(cam["name"], "Front Door");
    assert_eq!(
        cam["url"], "rtsp://admin:***@10.0.0.5:554/main",
        "no password shown"
    );
    assert_eq!(cam["detect"]["fps"], 5);
    // It is in the store, with the real password.
    let stored = srv
        .store
        .camera(&CameraId::new("front_door").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(&stored.record_source,
        vigil_core::Source::Rtsp { url, .. } if url.contains("hunter2")));

    let r = srv
        .call(
            "POST",
            "/api/cameras",
            Some(json!({"name": "Front Door", "url": "rtsp://x/y"})),
            &[],
        )
        .await;
    assert_error(&r, 409, None, "duplicate");
    for (body, loc) in [
        (json!({"name": "Back"}), &["body", "url"][..]),
        (
            json!({"name": "Back", "url": "http://x"}),
            &["body", "url"][..],
        ),
        (
            json!({"name": "Back", "url": "rtsp://x", "detect": {"fps": "fast"}}),
            &["body", "detect", "fps"][..],
        ),
        (
            json!({"name": "Back", "url": "rtsp://x", "detect": {"fps": 0}}),
            &["body", "detect", "fps"][..],
        ),
        (
            json!({"name": "Back", "url": "rtsp://x", "colour": "red"}),
            &["body"][..],
        ),
        (
            json!({"name": "Back", "url": "rtsp://x", "zones": [{"name": "z", "polygon": [[0, 0], [1, 0]]}]}),
            &["body", "zones"][..],
        ),
        (
            json!({"name": "!!!", "url": "rtsp://x"}),
            &["body", "name"][..],
        ),
    ] {
        let r = srv
            .call("POST", "/api/cameras", Some(body.clone()), &[])
            .await;
        assert_error(&r, 422, Some(loc), &body.to_string());
    }
    let r = srv.call("POST", "/api/cameras", None, &[]).await;
    assert_error(&r, 422, Some(&["body"]), "no body");

    // PATCH merges: only detect.fps changes; the masked URL sent back keeps the password.
    let r = srv
        .call(
            "PATCH",
            "/api/cameras/front_door",
            Some(json!({"detect": {"fps": 10}, "url": "rtsp://admin:***@10.0.0.5:554/main"})),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["detect"]["fps"], 10);
    assert_eq!(v["detect"]["width"], 640);
    let stored = srv
        .store
        .camera(&CameraId::new("front_door").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.detect.fps, 10);
    assert!(matches!(&stored.record_source,
        vigil_core::Source::Rtsp { url, .. } if url.contains("hunter2")));
    // A masked URL with another host would store `***` as the password: refused.
    let r = srv
        .call(
            "PATCH",
            "/api/cameras/front_door",
            Some(json!({"url": "rtsp://admin:***@10.0.0.6:554/main"})),
            &[],
        )
        .await;
    assert_error(&r, 422, Some(&["body", "url"]), "masked");

    // Zones, with HSI's `coordinates` for the polygon.
    let r = srv
        .call(
            "POST",
            "/api/cameras/front_door/zones",
            Some(json!({"name": "porch", "coordinates": [[0.1, 0.5], [0.9, 0.5], [0.9, 1.0], [0.1, 1.0]], "labels": ["person"]})),
            &[],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["inertia"], 3);
    let v = srv.get("/api/cameras/front_door/zones").await.json();
    assert_eq!(v["count"], 1);
    assert_eq!(v["zones"][0]["polygon"][1], json!([0.9, 0.5]));
    let r = srv
        .call(
            "PUT",
            "/api/cameras/front_door/zones/porch",
            Some(json!({"name": "porch", "polygon": "0,0,1,0,1,1", "inertia": 5})),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        srv.get("/api/cameras/front_door/zones/porch").await.json()["inertia"],
        5
    );
    let r = srv
        .call(
            "POST",
            "/api/cameras/front_door/zones",
            Some(json!({"name": "bad", "polygon": [[0, 0], [2, 0], [1, 1]]})),
            &[],
        )
        .await;
    assert_error(
        &r,
        422,
        Some(&["body", "polygon"]),
        "zone outside the frame",
    );
    assert_error(
        &srv.get("/api/cameras/front_door/zones/nope").await,
        404,
        None,
        "missing zone",
    );

    // SentryShot's monitors and detector toggles; SpectraX's paths.
    let r = srv
        .call("PATCH", "/api/monitor/front_door/motion/disable", None, &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = srv.get("/api/monitors").await.json();
    assert_eq!(v["front_door"]["motion_enabled"], false);
    assert_eq!(v["front_door"]["object_detection_enabled"], true);
    let r = srv
        .call(
            "PATCH",
            "/api/monitor/front_door/tflite/sideways",
            None,
            &[],
        )
        .await;
    assert_error(&r, 422, Some(&["path", "action"]), "bad action");
    let r = srv
        .call(
            "PUT",
            "/api/monitor",
            Some(json!({"id": "garage", "url": "synthetic:320x240@5"})),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        srv.get("/paths").await.json()["paths"],
        json!(["front_door", "garage"])
    );
    let v = srv.get("/api/cameras").await.json();
    assert_eq!(v["count"], 2);
    assert_eq!(v["cameras"][1]["url"], "synthetic:320x240@5");

    let r = srv
        .call("DELETE", "/api/monitor?id=garage", None, &[])
        .await;
    assert_eq!(r.status, 200);
    let r = srv
        .call("DELETE", "/api/cameras/front_door", None, &[])
        .await;
    assert_eq!(r.status, 204);
    assert_error(
        &srv.get("/api/cameras/front_door").await,
        404,
        None,
        "deleted",
    );
    assert_eq!(srv.get("/api/cameras").await.json()["count"], 0);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recordings_detections_and_byte_ranges() {
    let srv = Server::start().await;
    let cam = CameraId::new("front").unwrap();
    // A real file under the data directory, and its record.
    let rel = "recordings/front/2025-10-12/19/42.mp4";
    let content: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::create_dir_all(srv.dir.path().join("recordings/front/2025-10-12/19")).unwrap();
    std::fs::write(srv.dir.path().join(rel), &content).unwrap();
    let t0 = Timestamp::parse("2025-10-12T19:05:30Z").unwrap();
    let rec = |id: u64, start: Timestamp, label: &str, score: f32, path: &str| Recording {
        id: RecordingId(id),
        camera: cam.clone(),
        kind: RecordingKind::Continuous,
        start_time: start,
        end_time: start.saturating_add(std::time::Duration::from_secs(15)),
        size_bytes: content.len() as u64,
        path: path.to_owned(),
        codec: "avc1.64001f".into(),
        width: 1280,
        height: 720,
        frames: 450,
        objects: vec![RecordedObject {
            label: label.into(),
            score,
            bbox: BBox {
                x1: 0.1,
                y1: 0.2,
                x2: 0.3,
                y2: 0.4,
            },
            tracker_id: Some(42),
        }],
        retained: true,
        event_ids: vec![],
        thumbnail_path: None,
        sprite_path: None,
    };
    let day = std::time::Duration::from_secs(86_400);
    let mut b = Batch::new();
    b.push(Mutation::PutRecording(Box::new(rec(
        42, t0, "person", 0.95, rel,
    ))));
    b.push(Mutation::PutRecording(Box::new(rec(
        43,
        t0.saturating_add(day),
        "car",
        0.6,
        "recordings/front/2025-10-13/19/43.mp4",
    ))));
    b.push(Mutation::PutDetection(Box::new(Detection {
        id: DetectionId(7),
        camera: cam.clone(),
        time: t0,
        label: "person".into(),
        score: 0.9,
        bbox: BBox::default(),
        tracker_id: Some(42),
        event_id: None,
        image_path: None,
    })));
    srv.store.apply(b).await.unwrap();

    // SpectraX's filters, sort and fields.
    let v = srv
        .get("/api/recordings?object_type=person&start_date=2025-10-01&end_date=2025-10-12")
        .await
        .json();
    assert_eq!(v["total"], 1, "{v}");
    let r0 = &v["recordings"][0];
    assert_eq!(r0["id"], "42");
    assert_eq!(r0["stream_name"], "front");
    assert_eq!(r0["duration"], 15.0);
    assert_eq!(r0["tracker_ids"], "[42]");
    assert_eq!(r0["objects_detected"][0]["class"], "person");
    assert_eq!(r0["objects_detected"][0]["bbox"][2], 384.0);
    let v = srv
        .get("/api/recordings?min_confidence=0.5&sort_by=confidence&sort_order=asc")
        .await
        .json();
    assert_eq!(v["recordings"][0]["id"], "43");
    assert_eq!(v["recordings"][1]["id"], "42");
    let v = srv.get("/api/recordings/stats").await.json();
    assert_eq!(v["total_recordings"], 2);
    assert_eq!(v["objects"]["person"], 1);
    assert_eq!(v["trackers"]["most_frequent"][0]["tracker_id"], 42);
    assert_eq!(
        srv.get("/api/recordings/42").await.json()["stream_id"],
        "front"
    );
    assert_error(&srv.get("/api/recordings/99").await, 404, None, "unknown");
    assert_error(
        &srv.get("/api/recordings?sort_by=size").await,
        422,
        Some(&["query", "sort_by"]),
        "bad sort",
    );

    // The file, whole and in ranges, by the URLs the list gave.
    let file_url = r0["file_url"].as_str().unwrap().to_owned();
    let r = srv.get(&file_url).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, content);
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    for (range, lo, hi) in [
        ("bytes=0-99", 0, 100),
        ("bytes=99990-", 99_990, 100_000),
        ("bytes=-10", 99_990, 100_000),
        ("bytes=500-1499", 500, 1500),
    ] {
        let r = srv.call("GET", &file_url, None, &[("range", range)]).await;
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(r.body, &content[lo..hi], "{range}");
        assert_eq!(
            r.header("content-range").unwrap(),
            format!("bytes {lo}-{}/100000", hi - 1)
        );
    }
    let r = srv
        .call("GET", &file_url, None, &[("range", "bytes=100000-")])
        .await;
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */100000"));
    let media = r0["mediaUrl"].as_str().unwrap();
    assert_eq!(srv.get(media).await.body, content);
    assert_eq!(srv.get("/api/recordings/42/file").await.body, content);
    // Only files the store knows are served.
    for p in [
        "/recordings/../db/data.mdb",
        "/recordings/front/2025-10-12/19/41.mp4",
        "/api/recordings/file/%2e%2e/db/data.mdb",
    ] {
        let r = srv.get(p).await;
        assert_eq!(r.status, 404, "{p}: {}", r.text());
    }
    // The second recording's file is missing: 404, not 500.
    assert_error(&srv.get("/api/recordings/43/file").await, 404, None, "gone");

    // picam: a recording's thumbnail by its file path, its sprite (none made), the new count.
    let thumb_rel = "recordings/front/2025-10-12/19/42.thumb.jpg";
    std::fs::write(srv.dir.path().join(thumb_rel), b"\xff\xd8thumb").unwrap();
    let mut r42 = srv.store.recording(RecordingId(42)).await.unwrap().unwrap();
    r42.thumbnail_path = Some(thumb_rel.into());
    srv.store
        .apply(Mutation::PutRecording(Box::new(r42)).into())
        .await
        .unwrap();
    let abs = srv.dir.path().join(rel);
    let q: String = form_urlencoded::byte_serialize(abs.to_str().unwrap().as_bytes()).collect();
    let r = srv.get(&format!("/thumbnail?video_path={q}")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, b"\xff\xd8thumb");
    assert_eq!(
        srv.get(&format!("/thumbnail?video_path={rel}"))
            .await
            .status,
        200
    );
    assert_error(
        &srv.get(&format!("/sprite?video_path={q}")).await,
        404,
        None,
        "no sprite",
    );
    assert_error(
        &srv.get("/thumbnail?video_path=/etc/passwd").await,
        404,
        None,
        "not a recording",
    );
    let v = srv
        .get("/archive/new_count?since=2025-10-12T19:06:00Z")
        .await
        .json();
    assert_eq!(v["count"], 1, "{v}");
    assert_eq!(srv.get("/archive/new_count").await.json()["count"], 0);
    assert_eq!(
        srv.get("/archive/new_count?since=soon").await.json()["count"],
        0
    );

    let v = srv.get("/api/detections?object_type=person").await.json();
    assert_eq!(v["count"], 1);
    assert_eq!(v["detections"][0]["tracker_id"], 42);
    assert_eq!(srv.get("/api/detections/7").await.json()["label"], "person");
    assert_error(&srv.get("/api/detections/8").await, 404, None, "unknown");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_lists_every_route_and_the_page_tries_them_in_a_browser() {
    let srv = Server::start().await;
    let doc = srv.get("/openapi.json").await.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut ops = 0;
    for ep in vigil_http::router().endpoints() {
        let path = ep.pattern.replace("{*", "{");
        let m = ep.method.as_str().to_ascii_lowercase();
        assert!(doc["paths"][&path][&m]["summary"].is_string(), "{m} {path}");
        ops += 1;
    }
    assert!(ops > 100, "{ops} operations");
    // Endpoints that need hardware or a language model say why, with 501.
    let r = srv.call("POST", "/system/reboot", None, &[]).await;
    assert_error(&r, 501, None, "reboot");
    let r = srv.get("/api/ai-audit/stats").await;
    assert_error(&r, 501, None, "ai audit");

    // The page in a real browser: every endpoint listed, and ?try= runs one.
    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| {
            std::process::Command::new(c)
                .arg("--version")
                .output()
                .is_ok()
        })
        .expect("chromium is not installed: `bash .ci/run` installs it");
    let profile = srv.dir.path().join("profile");
    let url = format!("http://{}/docs?try=GET%20/api/version", srv.addr);
    let out = tokio::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(&url)
        .output()
        .await
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let listed = dom.matches("class=\"ep\"").count();
    assert_eq!(listed, ops, "every endpoint is on the page");
    assert!(dom.contains("data-path=\"/api/cameras/{camera}/zones\""));
    assert!(
        dom.contains("data-status=\"200\""),
        "the try ran: {}",
        &dom[..dom.len().min(3000)]
    );
    assert!(dom.contains("0.16.0-vigil"));
    srv.stop().await;
}

/// Random query strings over the list endpoints' parameters, with good, bad and hostile
/// values: no answer is a 5xx, every 4xx is `{"detail": ...}`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_query_string_makes_a_list_endpoint_fail() {
    use http_body_util::BodyExt;
    let srv = Server::start().await;
    let events = vigil_store::conformance::sample_events(60, 11);
    let b: Batch = events
        .iter()
        .map(|e| Mutation::PutEvent(Box::new(e.clone())))
        .collect();
    srv.store.apply(b).await.unwrap();
    let state = vigil_http::AppState::new(srv.store.clone())
        .with_data_dir(srv.dir.path())
        .without_auth();
    let paths = [
        "/api/events",
        "/api/events/search",
        "/api/events/export",
        "/api/events/summary",
        "/api/events/stats",
        "/api/detections",
        "/api/recordings",
        "/api/recordings/stats",
        "/api/entities",
        "/api/analytics/detection-trends",
        "/api/analytics/object-distribution",
        "/api/analytics/camera-uptime",
        "/api/analytics/risk-history",
        "/api/cameras",
        "/api/monitors",
        "/api/logs",
        "/api/logs/stats",
        "/api/log/query",
        "/logs/api",
        "/logs/mediamtx",
        "/snapshots",
    ];
    let names = [
        "camera",
        "cameras",
        "camera_id",
        "stream_id",
        "label",
        "labels",
        "object_type",
        "sub_label",
        "zone",
        "zones",
        "after",
        "before",
        "start_date",
        "end_date",
        "has_clip",
        "has_snapshot",
        "favorites",
        "reviewed",
        "review_status",
        "in_progress",
        "min_score",
        "min_confidence",
        "q",
        "search",
        "limit",
        "offset",
        "cursor",
        "sort_by",
        "sort_order",
        "timezone",
        "days",
        "tracker_id",
        "event_id",
        "kind",
        "retained",
        "format",
        "id",
    ];
    let values = [
        "",
        "0",
        "1",
        "2",
        "-1",
        "1000",
        "1001",
        "99999999999999999999",
        "1.5",
        "NaN",
        "inf",
        "-inf",
        "1e308",
        "front",
        "back",
        "front,back",
        ",,,",
        "a/b",
        "../..",
        "%00",
        "\u{0}",
        "person",
        "true",
        "false",
        "yes",
        "asc",
        "desc",
        "sideways",
        "timestamp",
        "confidence",
        "duration",
        "2025-12-23T00:00:00Z",
        "2025-02-30",
        "9999-12-31",
        "1700000000",
        "-99999999999",
        "Europe/Paris",
        "Mars/Base",
        "continuous,event",
        "garbage-cursor",
        "eyJpZCI6IDEyM30=",
        "\u{1F600}",
        "' OR 1=1 --",
        "<script>",
    ];
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let mut cursors: Vec<String> = Vec::new();
    for i in 0..3000 {
        let path = paths[next(paths.len())];
        let mut q = form_urlencoded::Serializer::new(String::new());
        for _ in 0..next(5) {
            let name = names[next(names.len())];
            let value = if name == "cursor" && !cursors.is_empty() && next(2) == 0 {
                cursors[next(cursors.len())].clone()
            } else {
                values[next(values.len())].to_owned()
            };
            q.append_pair(name, &value);
        }
        let uri = format!("{path}?{}", q.finish());
        let req = hyper::Request::builder()
            .uri(&uri)
            .body(http_body_util::Empty::<hyper::body::Bytes>::new())
            .unwrap();
        let resp = vigil_http::respond(&state, req).await;
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert!(
            !status.is_server_error(),
            "#{i} {uri} -> {status}: {}",
            String::from_utf8_lossy(&body)
        );
        if status.is_client_error() {
            let v: Value = serde_json::from_slice(&body)
                .unwrap_or_else(|_| panic!("#{i} {uri}: {}", String::from_utf8_lossy(&body)));
            assert!(!v["detail"].is_null(), "#{i} {uri} -> {v}");
        } else if let Ok(v) = serde_json::from_slice::<Value>(&body) {
            // Cursors seen are replayed against other queries later.
            if let Some(c) = v["next_cursor"].as_str() {
                cursors.push(c.to_owned());
            }
        }
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_of_the_three_documents() {
    use vigil_core::{LogEntry, LogId, LogLevel};
    let srv = Server::start().await;
    let t0 = Timestamp::parse("2026-11-01T10:00:00Z").unwrap();
    let entry = |i: u64, level: LogLevel, source: &str, camera: Option<&str>, msg: &str| {
        Mutation::PutLog(Box::new(LogEntry {
            id: LogId(i),
            time: Timestamp(t0.0 + i as i64 * 1_000_000),
            level,
            source: source.into(),
            camera: camera.map(|c| CameraId::new(c).unwrap()),
            message: msg.into(),
        }))
    };
    let b: Batch = [
        entry(1, LogLevel::Info, "vigild", None, "vigild serving"),
        entry(
            2,
            LogLevel::Warning,
            "supervisor",
            Some("front"),
            "stream stalled",
        ),
        entry(
            3,
            LogLevel::Error,
            "supervisor",
            Some("front"),
            "connection refused",
        ),
        entry(4, LogLevel::Error, "recorder", Some("back"), "disk full"),
    ]
    .into_iter()
    .collect();
    srv.store.apply(b).await.unwrap();
    let r = srv
        .call(
            "POST",
            "/api/logs/frontend",
            Some(json!({"level": "warning", "message": "video element stalled", "component": "player"})),
            &[],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let v = srv.get("/api/logs?level=error").await.json();
    assert_eq!(v["count"], 2);
    assert_eq!(v["logs"][0]["message"], "disk full");
    let v = srv.get("/api/logs?component=frontend-player").await.json();
    assert_eq!(v["logs"][0]["level"], "WARNING");
    let v = srv.get("/api/logs/stats").await.json();
    assert_eq!(v["total"], 5);
    assert_eq!(v["errors"], 2);
    assert_eq!(
        srv.get("/api/logs/3").await.json()["message"],
        "connection refused"
    );
    assert_error(&srv.get("/api/logs/99").await, 404, None, "unknown log");
    // SentryShot: levels, monitors, time in µs (newest wanted), limit.
    let before = t0.0 + 3_000_000;
    let v = srv
        .get(&format!(
            "/api/log/query?levels=error,warning&monitors=front&time={before}&limit=5"
        ))
        .await
        .json();
    let msgs: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["msg"].as_str().unwrap())
        .collect();
    assert_eq!(msgs, ["connection refused", "stream stalled"]);
    assert_eq!(v[0]["monitorID"], "front");
    assert_eq!(v[0]["time"], before);
    // picam: limit, level in capitals, search.
    let v = srv.get("/logs/api?limit=2&level=ERROR").await.json();
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[0]["level"], "ERROR");
    let v = srv.get("/logs/api?search=refused").await.json();
    assert_eq!(v.as_array().unwrap().len(), 1);
    let v = srv.get("/logs/mediamtx").await.json();
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(srv.get("/logs/install").await.json(), json!([]));
    for (path, loc) in [
        ("/api/logs?level=loud", &["query", "level"][..]),
        ("/api/log/query?levels=x", &["query", "levels"][..]),
        ("/logs/api?limit=5000", &["query", "limit"][..]),
    ] {
        assert_error(&srv.get(path).await, 422, Some(loc), path);
    }
    let r = srv
        .call(
            "POST",
            "/api/logs/frontend",
            Some(json!({"level": "loud", "message": "x"})),
            &[],
        )
        .await;
    assert_error(&r, 422, Some(&["body", "level"]), "bad level");
    srv.stop().await;
}
