//! picam's `system_alert` server-sent events from a running `vigild`: a real RTSP camera
//! (GStreamer's server) goes away and comes back.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{http, start_with, stop};
use serde_json::Value;
use vigil_core::testing::{free_port, RtspServer};

/// The data of the next `system_alert` whose type is `kind`, within `secs`.
fn next_alert(r: &mut BufReader<TcpStream>, kind: &str, secs: u64) -> Value {
    let end = Instant::now() + Duration::from_secs(secs);
    let mut name = String::new();
    let mut line = String::new();
    loop {
        assert!(Instant::now() < end, "no system_alert {kind} in {secs} s");
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) => panic!("the event stream ended"),
            Ok(_) => {}
            Err(_) => continue,
        }
        let l = line.trim_end();
        if let Some(n) = l.strip_prefix("event: ") {
            name = n.to_owned();
        } else if let Some(d) = l.strip_prefix("data: ") {
            if name == "system_alert" {
                let v: Value = serde_json::from_str(d).unwrap();
                if v["type"] == kind {
                    return v;
                }
            }
        }
    }
}

#[test]
fn a_lost_camera_and_its_return_are_system_alerts() {
    let rtsp = RtspServer::start(320, 240, None);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = start_with(&dir.path().join("data"), port, &[]);
    let (s, v) = http(
        "POST",
        &format!("{base}/api/cameras"),
        Some(&format!(r#"{{"name": "gate", "url": "{}"}}"#, rtsp.url())),
    );
    assert_eq!(s, 201, "{v}");
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    write!(
        sock,
        "GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let mut sse = BufReader::new(sock);
    // Streaming first: wait until vigild says the camera is connected.
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, c) = http("GET", &format!("{base}/api/cameras/gate"), None);
        if c["stream"]["connected"] == true {
            break;
        }
        assert!(Instant::now() < end, "the camera never connected: {c}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // vigild looks every 2 s: let it see the camera online once.
    std::thread::sleep(Duration::from_secs(3));
    rtsp.stop();
    let a = next_alert(&mut sse, "camera_offline", 20);
    assert_eq!(a["camera"], "gate", "{a}");
    assert_eq!(a["severity"], "high", "{a}");
    assert!(a["message"].as_str().unwrap().contains("gate"), "{a}");
    rtsp.resume();
    let a = next_alert(&mut sse, "camera_online", 40);
    assert_eq!(a["camera"], "gate", "{a}");
    drop(sse);
    stop(child);
}
