//! `vigild` with an `[mqtt]` section, against a real broker (mosquitto on 127.0.0.1): its demo
//! camera's motion events, switch states, stats and SentryShot's messages arrive; a command
//! turns recording off; a clean stop says `offline`.

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{http, start_with, stop};
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use vigil_core::testing::{free_port, Mosquitto};

struct Sub {
    client: Client,
    rx: mpsc::Receiver<(String, Vec<u8>)>,
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
        Sub { client, rx }
    }

    /// The next message on `topic` whose text satisfies `pred`, within `secs`.
    fn expect(&self, topic: &str, secs: u64, pred: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok((t, p)) => {
                    let text = String::from_utf8_lossy(&p).into_owned();
                    if t == topic && pred(&text) {
                        return text;
                    }
                }
                Err(_) => panic!("no matching message on {topic} in {secs} s"),
            }
        }
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
    let child = start_with(
        &dir.path().join("data"),
        port,
        &["--demo", "--config", config.to_str().unwrap()],
    );
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

    stop(child);
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
    let child = start_with(&dir.path().join("data"), port, &["--demo", "--mqtt", &url]);
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
    stop(child);

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
