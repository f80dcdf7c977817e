//! The contract of Home Assistant's Frigate integration (`../shared/docs/home-assistant.md`),
//! checked on `vigild` against a real broker (mosquitto on 127.0.0.1) and with ffprobe:
//!
//! - MQTT: with an `[mqtt]` section, the demo camera's motion events, switch states, stats and
//!   SentryShot's messages arrive; a command turns recording off; a clean stop says `offline`.
//!   With `--mqtt URL` alone, the motion sensor and the review status.
//! - HTTP, as the integration calls it (a `{}` JSON body on every request, GET and DELETE
//!   included, a JWT from `POST /api/login` as the bearer token, everything under `/frigate`):
//!   the stats, version, config and events it reads, retain, manual events, the recordings
//!   summary, and HLS playlists whose every URI carries the query string and which ffprobe
//!   plays; the RTSP restream the config names; every switch's retained state, and
//!   `detect/set OFF` stopping the detector.

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{http, start_with, stop, Daemon};
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use vigil_core::testing::{free_port, Mosquitto};

struct Sub {
    client: Client,
    rx: mpsc::Receiver<(String, Vec<u8>)>,
    /// The last payload seen of each topic.
    seen: std::cell::RefCell<std::collections::HashMap<String, String>>,
}

impl Sub {
    fn start(port: u16) -> Sub {
        let mut opts = MqttOptions::new("vigild-test", "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(5));
        opts.set_max_packet_size(16 << 20, 16 << 20);
        let (client, mut conn) = Client::new(opts, 64);
        client.subscribe("#", QoS::AtLeastOnce).unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for n in conn.iter() {
                match n {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if tx.send((p.topic.clone(), p.payload.to_vec())).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        });
        Sub {
            client,
            rx,
            seen: Default::default(),
        }
    }

    /// The next message on `topic` whose text satisfies `pred`, within `secs`.
    fn expect(&self, topic: &str, secs: u64, pred: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok((t, p)) => {
                    let text = String::from_utf8_lossy(&p).into_owned();
                    self.seen.borrow_mut().insert(t.clone(), text.clone());
                    if t == topic && pred(&text) {
                        return text;
                    }
                }
                Err(_) => panic!("no matching message on {topic} in {secs} s"),
            }
        }
    }

    /// The latest payload of `topic` once it satisfies `pred`: already seen, or the next one
    /// that does within `secs` (retained topics come in any order).
    fn latest(&self, topic: &str, secs: u64, pred: impl Fn(&str) -> bool) -> String {
        if let Some(p) = self.seen.borrow().get(topic).filter(|p| pred(p)) {
            return p.clone();
        }
        self.expect(topic, secs, pred)
    }
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

#[test]
fn vigild_publishes_its_demo_camera_and_obeys_commands() {
    let broker = Mosquitto::start();
    let sub = Sub::start(broker.port);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vigil.toml");
    std::fs::write(
        &config,
        format!(
            "[mqtt]\nport = {}\ntopic_prefix = \"frigate\"\nclient_id = \"vigil-demo\"\nstats_interval_s = 1\n",
            broker.port
        ),
    )
    .unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = Daemon(Some(start_with(
        &dir.path().join("data"),
        port,
        &["--demo", "--config", config.to_str().unwrap()],
    )));
    sub.expect("frigate/available", 20, |p| p == "online");
    sub.expect("frigate/demo/detect/state", 10, |p| p == "ON");

    // The demo scene always moves: motion events, as Frigate's and SentryShot's messages.
    let ev = json(&sub.expect("frigate/events", 30, |p| json(p)["type"] == "new"));
    assert_eq!(ev["after"]["camera"], "demo", "{ev}");
    assert_eq!(ev["after"]["label"], "motion", "{ev}");
    let m = json(&sub.expect("sentryshot/events/motion", 30, |_| true));
    assert_eq!(m["monitorID"], "demo", "{m}");
    assert_eq!(m["source"], "motion", "{m}");
    assert!(m["score"].as_f64().unwrap() > 0.0, "{m}");
    let st = json(&sub.expect("frigate/stats", 10, |_| true));
    assert!(st["cameras"]["demo"]["camera_fps"].is_number(), "{st}");

    // What Home Assistant reads to find the topics.
    let (s, cfg) = http("GET", &format!("{base}/api/config"), None);
    assert_eq!(s, 200);
    assert_eq!(cfg["mqtt"]["topic_prefix"], "frigate", "{cfg}");
    assert_eq!(cfg["mqtt"]["client_id"], "vigil-demo", "{cfg}");

    sub.client
        .publish(
            "frigate/demo/recordings/set",
            QoS::AtLeastOnce,
            false,
            "OFF",
        )
        .unwrap();
    sub.expect("frigate/demo/recordings/state", 10, |p| p == "OFF");
    let (_, cam) = http("GET", &format!("{base}/api/cameras/demo"), None);
    assert_eq!(cam["record"]["enabled"], false, "{cam}");

    // An MQTT trigger: a door contact's message opens an event, the next one ends it.
    let (s, t) = http(
        "POST",
        &format!("{base}/api/triggers"),
        Some(
            r#"{"name": "door", "type": "reed_switch", "kind": "mqtt", "topic": "home/door/contact", "on_payload": "open"}"#,
        ),
    );
    assert_eq!(s, 201, "{t}");
    // The link subscribes when the trigger is stored; give the broker a moment.
    std::thread::sleep(Duration::from_millis(500));
    sub.client
        .publish("home/door/contact", QoS::AtLeastOnce, false, "open")
        .unwrap();
    let ev = json(&sub.expect("frigate/events", 10, |p| {
        let v = json(p);
        v["type"] == "new" && v["after"]["label"] == "trigger"
    }));
    assert_eq!(ev["after"]["sub_label"], "door", "{ev}");
    sub.client
        .publish("home/door/contact", QoS::AtLeastOnce, false, "closed")
        .unwrap();
    sub.expect("frigate/events", 10, |p| {
        let v = json(p);
        v["type"] == "end" && v["after"]["label"] == "trigger"
    });

    stop(child.0.take().unwrap());
    sub.expect("frigate/available", 10, |p| p == "offline");
}

/// `vigild --mqtt URL` with no config file: the default prefix, the motion sensor as
/// Frigate's ON/OFF (motion is in no count), the review status; a bad URL is named.
#[test]
fn the_mqtt_flag_is_enough_and_motion_is_a_sensor() {
    let broker = Mosquitto::start();
    let sub = Sub::start(broker.port);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    let mut child = Daemon(Some(start_with(
        &dir.path().join("data"),
        port,
        &["--demo", "--mqtt", &url],
    )));
    sub.expect("vigil/available", 20, |p| p == "online");
    // In any order (retained topics come again on each connection): nothing to review and
    // no object counted (motion is not an object), and the motion sensor on, as the demo
    // scene always moves.
    let mut want = vec![
        ("vigil/demo/review_status", "NONE"),
        ("vigil/demo/all", "0"),
        ("vigil/demo/motion", "ON"),
    ];
    let end = Instant::now() + Duration::from_secs(30);
    while !want.is_empty() {
        let left = end.saturating_duration_since(Instant::now());
        let (t, p) = sub
            .rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("still waiting for {want:?}"));
        let p = String::from_utf8_lossy(&p);
        if t == "vigil/demo/motion" {
            assert!(p == "ON" || p == "OFF", "vigil/demo/motion is {p:?}");
        }
        if t == "vigil/demo/all" {
            assert_eq!(p, "0", "motion was counted as an object");
        }
        want.retain(|(wt, wp)| !(t == *wt && p == *wp));
    }
    stop(child.0.take().unwrap());

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vigild"))
        .args(["--mqtt", "broker.lan:1883"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"broker.lan:1883\" is not an mqtt:// URL"),
        "{err}"
    );
}

/// One request as aiohttp sends it for the integration: `Content-Type: application/json`
/// and a `{}` body whatever the method, with the bearer token when given. The status, the
/// headers (lower-case names, in order) and the body.
fn ha(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut s = std::net::TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v == "chunked")
    {
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            let nl = at + body[at..].windows(2).position(|w| w == b"\r\n").unwrap();
            let n = usize::from_str_radix(std::str::from_utf8(&body[at..nl]).unwrap().trim(), 16)
                .unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&body[nl + 2..nl + 2 + n]);
            at = nl + 2 + n + 2;
        }
        body = out;
    }
    (status, headers, body)
}

/// [`ha`], the body as JSON; the status must be `want`.
fn ha_json(method: &str, url: &str, token: &str, want: u16) -> Value {
    let (s, _, b) = ha(method, url, Some(token), "{}");
    let text = String::from_utf8_lossy(&b);
    assert_eq!(s, want, "{method} {url}: {text}");
    json(&text)
}

/// The claims of a JWT (decoded without checking it, as the integration does).
fn claims(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&raw).unwrap()
}

/// Every URI of a playlist: its non-tag lines and the `URI="..."` of its tags.
fn playlist_uris(m3u8: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in m3u8.lines().filter(|l| !l.is_empty()) {
        if let Some(i) = line.find("URI=\"") {
            let rest = &line[i + 5..];
            out.push(rest[..rest.find('"').unwrap()].to_owned());
        } else if !line.starts_with('#') {
            out.push(line.to_owned());
        }
    }
    out
}

/// The sum of the detector runs `/api/system/models` counts.
fn detector_runs(base: &str, token: &str) -> u64 {
    let v = ha_json("GET", &format!("{base}/api/system/models"), token, 200);
    let models = v["models"]
        .as_array()
        .or(v.as_array())
        .cloned()
        .unwrap_or_default();
    models.iter().filter_map(|m| m["runs"].as_u64()).sum()
}

/// vigild as Home Assistant's Frigate integration uses it, authentication on, the demo camera
/// running the (seeded random) YOLOv8 model: everything under `/frigate`.
#[test]
fn home_assistant_reaches_vigild_as_it_reaches_frigate() {
    let broker = Mosquitto::start();
    let sub = Sub::start(broker.port);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let root = format!("http://127.0.0.1:{port}");
    let base = format!("{root}/frigate");
    let model = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../vigil-detect/tests/fixtures/yolov8/yolov8n-random.safetensors");
    let mqtt = format!("mqtt://127.0.0.1:{}", broker.port);
    let rtsp_port = free_port();
    let rtsp = format!("127.0.0.1:{rtsp_port}");
    let mut child = Daemon(Some(common::start_secured(
        &dir.path().join("data"),
        port,
        Some("correct horse battery"),
        &[
            "--demo",
            "--mqtt",
            &mqtt,
            "--model",
            model.to_str().unwrap(),
            "--rtsp-listen",
            &rtsp,
        ],
    )));

    // Without credentials: refused (the integration then asks for them).
    let (s, _, _) = ha("GET", &format!("{base}/api/stats"), None, "{}");
    assert_eq!(s, 401);
    // Login: the first Set-Cookie holds frigate_token, a JWT with exp; it is the bearer token.
    let (s, headers, b) = ha(
        "POST",
        &format!("{base}/api/login"),
        None,
        r#"{"user": "admin", "password": "correct horse battery"}"#,
    );
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&b));
    let cookie = &headers.iter().find(|(k, _)| k == "set-cookie").unwrap().1;
    let jwt = cookie
        .strip_prefix("frigate_token=")
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("first cookie: {cookie}"))
        .to_owned();
    let c = claims(&jwt);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(c["exp"].as_u64().unwrap() > now + 3600, "{c}");
    let (s, _, _) = ha(
        "POST",
        &format!("{base}/api/login"),
        None,
        r#"{"user": "admin", "password": "wrong"}"#,
    );
    assert_eq!(s, 401);
    let forged = format!("{}x", &jwt[..jwt.len() - 1]);
    let (s, _, _) = ha("GET", &format!("{base}/api/stats"), Some(&forged), "{}");
    assert_eq!(s, 401, "a JWT with a changed signature was accepted");
    let t = jwt.as_str();

    // Setup: stats (a working camera's fps > 0), the plain-text version, the config.
    let end = Instant::now() + Duration::from_secs(30);
    let stats = loop {
        let st = ha_json("GET", &format!("{base}/api/stats"), t, 200);
        if st["cameras"]["demo"]["camera_fps"].as_f64().unwrap_or(0.0) > 0.0 {
            break st;
        }
        assert!(Instant::now() < end, "camera_fps stayed 0: {st}");
        std::thread::sleep(Duration::from_millis(500));
    };
    let pid = stats["cameras"]["demo"]["pid"].to_string();
    assert!(
        stats["cpu_usages"][&pid]["cpu"].is_string()
            || stats["cpu_usages"][&pid]["cpu"].is_number(),
        "{stats}"
    );
    for d in stats["detectors"].as_object().unwrap().values() {
        assert!(d["inference_speed"].is_number(), "{stats}");
    }
    for k in ["uptime", "version", "latest_version"] {
        assert!(!stats["service"][k].is_null(), "service.{k}: {stats}");
    }
    let (s, headers, v) = ha("GET", &format!("{base}/api/version"), Some(t), "{}");
    assert_eq!(s, 200);
    let version = String::from_utf8(v).unwrap();
    assert!(version.starts_with("0.16.0-"), "{version}");
    assert!(
        !version.contains('"'),
        "the version is plain text: {version}"
    );
    assert!(headers
        .iter()
        .any(|(k, v)| k == "content-type" && v.starts_with("text/plain")));
    let cfg = ha_json("GET", &format!("{base}/api/config"), t, 200);
    assert_eq!(cfg["mqtt"]["topic_prefix"], "vigil", "{cfg}");
    assert!(cfg["mqtt"]["client_id"].is_string(), "{cfg}");
    assert!(cfg["model"].is_object(), "{cfg}");
    assert!(cfg["version"].as_str().unwrap() >= "0.16", "{cfg}");
    let cam = &cfg["cameras"]["demo"];
    assert!(cam["objects"]["track"].is_array(), "{cam}");
    assert!(cam["zones"].is_object(), "{cam}");
    assert!(cam["motion"]["contour_area"].is_number(), "{cam}");
    assert!(cam["motion"]["threshold"].is_number(), "{cam}");
    assert!(cam["audio"]["enabled_in_config"].is_boolean(), "{cam}");
    assert!(cam["record"]["enabled"].is_boolean(), "{cam}");
    // Live view: the stream Home Assistant finds in the config plays over RTSP, as recorded,
    // for an account (Basic, or the JWT as ?token=), and not for anyone else.
    assert_eq!(
        cfg["go2rtc"]["streams"]["demo"][0],
        format!("rtsp://127.0.0.1:{rtsp_port}/demo"),
        "{cfg}"
    );
    assert_eq!(cam["live"]["streams"]["demo"], "demo", "{cam}");
    let live = |url: &str| {
        std::process::Command::new("ffprobe")
            .args(["-v", "error", "-rtsp_transport", "tcp", "-count_frames"])
            .args(["-read_intervals", "%+2", "-select_streams", "v:0"])
            .args([
                "-show_entries",
                "stream=codec_name,width,nb_read_frames",
                "-of",
                "json",
            ])
            .arg(url)
            .output()
            .unwrap()
    };
    for url in [
        format!("rtsp://admin:correct%20horse%20battery@{rtsp}/demo"),
        format!("rtsp://{rtsp}/demo?token={t}"),
    ] {
        let out = live(&url);
        assert!(
            out.status.success(),
            "{url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let probe = json(&String::from_utf8_lossy(&out.stdout));
        let st = &probe["streams"][0];
        assert_eq!(st["codec_name"], "h264", "{probe}");
        assert_eq!(st["width"], 1280, "{probe}");
        let frames: u64 = st["nb_read_frames"].as_str().unwrap().parse().unwrap();
        assert!(frames >= 5, "{url}: {frames} frames in 2 s");
    }
    let out = live(&format!("rtsp://{rtsp}/demo"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("401"), "{err}");
    let (s, headers, pic) = ha(
        "GET",
        &format!("{base}/api/demo/latest.jpg?h=120"),
        Some(t),
        "{}",
    );
    assert_eq!(s, 200);
    assert!(headers
        .iter()
        .any(|(k, v)| k == "content-type" && v == "image/jpeg"));
    assert_eq!(&pic[..2], &[0xff, 0xd8]);

    // MQTT: every switch's state, retained, and the motion settings.
    for sw in [
        "detect",
        "motion",
        "recordings",
        "snapshots",
        "improve_contrast",
        "review_alerts",
        "review_detections",
        "enabled",
    ] {
        sub.latest(&format!("vigil/demo/{sw}/state"), 20, |p| p == "ON");
    }
    sub.latest("vigil/demo/motion_threshold/state", 5, |p| {
        p.parse::<u32>().is_ok()
    });
    sub.latest("vigil/demo/motion_contour_area/state", 5, |p| {
        p.parse::<u32>().is_ok()
    });
    sub.latest("vigil/available", 5, |p| p == "online");
    // The motion sensor of a camera running a model (which makes no motion events): the
    // demo scene always moves.
    sub.latest("vigil/demo/motion", 20, |p| p == "ON");
    sub.client
        .publish(
            "vigil/demo/review_alerts/set",
            QoS::AtLeastOnce,
            false,
            "OFF",
        )
        .unwrap();
    sub.expect("vigil/demo/review_alerts/state", 10, |p| p == "OFF");

    // A manual event, open until it is ended (the service frigate.create_event).
    let made = ha_json(
        "POST",
        &format!("{base}/api/events/demo/doorbell/create"),
        t,
        200,
    );
    assert_eq!(made["success"], true, "{made}");
    let id = made["event_id"].as_str().unwrap().to_owned();
    std::thread::sleep(Duration::from_secs(1));
    let ended = ha_json("PUT", &format!("{base}/api/events/{id}/end"), t, 200);
    assert_eq!(ended["success"], true, "{ended}");

    // The events list: Frigate's array, times in epoch seconds, data an object.
    let evs = ha_json(
        "GET",
        &format!("{base}/api/events?cameras=demo&labels=doorbell&limit=10&include_thumbnails=0"),
        t,
        200,
    );
    let evs = evs
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {evs}"));
    let e = evs.iter().find(|e| e["id"] == id.as_str()).unwrap();
    assert!(e["data"].is_object(), "{e}");
    let (start, stop_t) = (
        e["start_time"].as_f64().unwrap(),
        e["end_time"].as_f64().unwrap(),
    );
    assert!(stop_t >= start + 0.9, "{e}");
    assert!(e["data"]["top_score"].is_number(), "{e}");
    let one = ha_json("GET", &format!("{base}/api/events/{id}"), t, 200);
    assert_eq!(one["start_time"], e["start_time"]);
    // The root keeps the canonical envelope.
    let canonical = ha_json("GET", &format!("{root}/api/events?limit=1"), t, 200);
    assert!(canonical["events"].is_array(), "{canonical}");
    // Favourite and back, with {} bodies on POST and DELETE.
    ha_json("POST", &format!("{base}/api/events/{id}/retain"), t, 200);
    assert_eq!(
        ha_json("GET", &format!("{base}/api/events/{id}"), t, 200)["retain_indefinitely"],
        true
    );
    let (s, _, _) = ha(
        "DELETE",
        &format!("{base}/api/events/{id}/retain"),
        Some(t),
        "{}",
    );
    assert!(s == 200 || s == 204, "unretain: {s}");
    let summary = ha_json(
        "GET",
        &format!("{base}/api/events/summary?timezone=UTC"),
        t,
        200,
    );
    assert!(
        summary
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["label"] == "doorbell" && r["day"].is_string()),
        "{summary}"
    );

    // Recordings: the summary by day and hour once a segment is committed (10 s each).
    let end = Instant::now() + Duration::from_secs(40);
    let days = loop {
        let v = ha_json(
            "GET",
            &format!("{base}/api/demo/recordings/summary?timezone=UTC"),
            t,
            200,
        );
        if !v.as_array().unwrap().is_empty() {
            break v;
        }
        assert!(Instant::now() < end, "no recordings summarised");
        std::thread::sleep(Duration::from_millis(500));
    };
    let day = days[0]["day"].as_str().unwrap().to_owned();
    let hour = days[0]["hours"][0]["hour"].as_str().unwrap().to_owned();
    assert_eq!(hour.len(), 2, "{days}");

    // HLS as the media browser asks for it: the event's span padded by 5 s, signed with
    // authSig (here also the token, so that ffprobe's segment requests carry it).
    let (s0, e0) = (start as i64 - 5, stop_t as i64 + 5);
    let query = format!("authSig=sig.abc-1&token={t}");
    for path in [
        format!("vod/demo/start/{s0}/end/{e0}/index.m3u8"),
        format!("vod/event/{id}/index.m3u8"),
        format!("vod/{}/{}/{hour}/demo/utc/index.m3u8", &day[..7], &day[8..]),
    ] {
        let url = format!("{base}/{path}?{query}");
        let (s, headers, body) = ha("GET", &url, Some(t), "{}");
        let m3u8 = String::from_utf8(body).unwrap();
        assert_eq!(s, 200, "{path}: {m3u8}");
        assert!(headers
            .iter()
            .any(|(k, v)| k == "content-type" && v.contains("mpegurl")));
        assert!(
            m3u8.starts_with("#EXTM3U") && m3u8.contains("#EXT-X-ENDLIST"),
            "{m3u8}"
        );
        let uris = playlist_uris(&m3u8);
        assert!(uris.len() >= 2, "{m3u8}");
        for u in &uris {
            assert!(
                u.ends_with(&format!("?{query}")),
                "{u} lacks the query string"
            );
            assert!(!u.contains('/'), "{u} is outside the playlist's directory");
        }
        // ffprobe plays it: H.264 frames from the segments, fetched with the query string.
        let out = std::process::Command::new("ffprobe")
            .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
            .args([
                "-show_entries",
                "stream=codec_name,nb_read_frames",
                "-of",
                "json",
            ])
            .arg(&url)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "ffprobe {path}: {err}");
        let probe = json(&String::from_utf8_lossy(&out.stdout));
        let st = &probe["streams"][0];
        assert_eq!(st["codec_name"], "h264", "{probe}");
        let frames: u64 = st["nb_read_frames"].as_str().unwrap().parse().unwrap();
        assert!(frames >= 10, "{path}: {frames} frames");
        assert!(!err.contains("rror"), "{path}: {err}");
    }
    // A segment of another camera's recording is not served under this one's directory.
    let (s, _, _) = ha(
        "GET",
        &format!("{base}/vod/nosuch/start/{s0}/end/{e0}/index.m3u8"),
        Some(t),
        "{}",
    );
    assert_eq!(s, 404);

    // detect/set OFF stops the detector; the state says so.
    let end = Instant::now() + Duration::from_secs(30);
    while detector_runs(&root, t) == 0 {
        assert!(Instant::now() < end, "the detector never ran");
        std::thread::sleep(Duration::from_millis(500));
    }
    sub.client
        .publish("vigil/demo/detect/set", QoS::AtLeastOnce, false, "OFF")
        .unwrap();
    sub.expect("vigil/demo/detect/state", 10, |p| p == "OFF");
    std::thread::sleep(Duration::from_secs(2));
    let before = detector_runs(&root, t);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        detector_runs(&root, t),
        before,
        "the detector ran with detect OFF"
    );
    let cfg = ha_json("GET", &format!("{base}/api/config"), t, 200);
    assert_eq!(cfg["cameras"]["demo"]["detect"]["enabled"], false, "{cfg}");

    stop(child.0.take().unwrap());
    sub.expect("vigil/available", 10, |p| p == "offline");
}
