//! MQTT against a real broker (mosquitto on 127.0.0.1): a subscriber checks the topics and
//! payloads of a scripted event, a command switches a camera's detection off, and the broker
//! restarts in the middle without the store waiting for it.

use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event as MqttEvent, MqttOptions, Packet, QoS};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use vigil_core::testing::Mosquitto;
use vigil_core::{
    BestFrame, CameraId, Detection, DetectionId, Event, EventId, Mutation, Timestamp,
};
use vigil_http::mqtt::{Mqtt, MqttConfig};

mod common;
use common::Server;

/// One message as the subscriber saw it.
#[derive(Debug)]
struct Msg {
    topic: String,
    payload: Vec<u8>,
    retain: bool,
}

impl Msg {
    fn text(&self) -> &str {
        std::str::from_utf8(&self.payload).unwrap_or("<binary>")
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.payload)
            .unwrap_or_else(|e| panic!("{}: {e}: {}", self.topic, self.text()))
    }
}

/// A subscriber to everything, resubscribing after each reconnection; also publishes.
struct Subscriber {
    client: AsyncClient,
    rx: mpsc::UnboundedReceiver<Msg>,
    /// Received and not yet matched, oldest first.
    seen: Vec<Msg>,
    task: tokio::task::JoinHandle<()>,
}

impl Subscriber {
    fn start(port: u16, id: &str) -> Subscriber {
        let mut opts = MqttOptions::new(id, "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(5));
        opts.set_max_packet_size(16 << 20, 16 << 20);
        let (client, mut ev) = AsyncClient::new(opts, 64);
        let (tx, rx) = mpsc::unbounded_channel();
        let c = client.clone();
        let task = tokio::spawn(async move {
            loop {
                match ev.poll().await {
                    Ok(MqttEvent::Incoming(Packet::ConnAck(_))) => {
                        c.subscribe("#", QoS::AtLeastOnce).await.unwrap();
                    }
                    Ok(MqttEvent::Incoming(Packet::Publish(p))) => {
                        let _ = tx.send(Msg {
                            topic: p.topic.clone(),
                            payload: p.payload.to_vec(),
                            retain: p.retain,
                        });
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        Subscriber {
            client,
            rx,
            seen: Vec::new(),
            task,
        }
    }

    /// The oldest message on `topic` not matched before for which `pred` holds, waiting up
    /// to `secs` for it.
    async fn expect(&mut self, topic: &str, secs: u64, pred: impl Fn(&Msg) -> bool) -> Msg {
        let end = Instant::now() + Duration::from_secs(secs);
        let mut from = 0;
        loop {
            if let Some(i) = self.seen[from..]
                .iter()
                .position(|m| m.topic == topic && pred(m))
            {
                return self.seen.remove(from + i);
            }
            from = self.seen.len();
            let left = end.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.rx.recv()).await {
                Ok(Some(m)) => self.seen.push(m),
                Ok(None) | Err(_) => panic!("no matching message on {topic} in {secs} s"),
            }
        }
    }
}

fn config(port: u16) -> MqttConfig {
    MqttConfig {
        port,
        topic_prefix: "vt".into(),
        client_id: "vigil-test".into(),
        stats_interval_s: 1,
        ..MqttConfig::default()
    }
}

fn scripted_event(id: u64, start: Timestamp) -> Event {
    let mut rng = |n: u64| n / 2;
    let mut e = vigil_store::conformance::sample_event(id, &mut rng);
    e.id = EventId(id);
    e.camera = CameraId::new("front").unwrap();
    e.label = "person".into();
    e.sub_label = None;
    e.score = 0.8;
    e.top_score = 0.8;
    e.start_time = start;
    e.end_time = None;
    e.zones = vec!["porch".into()];
    e.stationary = false;
    e.has_snapshot = false;
    e.best = None;
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_event_reaches_a_subscriber_and_survives_a_broker_restart() {
    let broker = Mosquitto::start();
    let mut sub = Subscriber::start(broker.port, "subscriber");
    let port = broker.port;
    let srv = Server::start_with(move |s| s.without_auth().with_mqtt(config(port))).await;
    let mqtt = Mqtt::start(srv.state.clone(), &config(port)).unwrap();

    // Online, retained, and the camera's switches once it is added.
    sub.expect("vt/available", 10, |m| m.text() == "online")
        .await;
    srv.add_camera("front").await;
    for sw in ["detect", "recordings", "motion", "snapshots", "enabled"] {
        sub.expect(&format!("vt/front/{sw}/state"), 5, |m| m.text() == "ON")
            .await;
    }

    // A scripted event: new, a detection, an update with a snapshot, the end.
    let jpeg = b"\xff\xd8\xff\xe0 a snapshot's bytes \xff\xd9".to_vec();
    std::fs::create_dir_all(srv.dir.path().join("snapshots")).unwrap();
    std::fs::write(srv.dir.path().join("snapshots/e1.jpg"), &jpeg).unwrap();
    let t0 = Timestamp(1_764_000_000_000_000);
    let mut e = scripted_event(1, t0);
    let apply = |m: Mutation| {
        let store = srv.store.clone();
        async move { store.apply(m.into()).await.unwrap() }
    };
    apply(Mutation::PutEvent(Box::new(e.clone()))).await;
    let m = sub.expect("vt/events", 5, |_| true).await.json();
    assert_eq!(m["type"], "new", "{m}");
    assert_eq!(m["before"], m["after"]);
    let a = &m["after"];
    assert_eq!(a["id"], "1");
    assert_eq!(a["camera"], "front");
    assert_eq!(a["label"], "person");
    assert_eq!(a["start_time"], 1_764_000_000.0);
    assert!(a["end_time"].is_null());
    assert_eq!(a["entered_zones"], json!(["porch"]));
    assert_eq!(a["current_zones"], json!(["porch"]));
    assert_eq!(a["box"].as_array().unwrap().len(), 4);
    for t in [
        "vt/front/person",
        "vt/front/all",
        "vt/porch/person",
        "vt/porch/all",
    ] {
        sub.expect(t, 5, |m| m.text() == "1").await;
    }
    sub.expect("vt/front/person/active", 5, |m| m.text() == "1")
        .await;

    let d = Detection {
        id: DetectionId(2),
        camera: e.camera.clone(),
        time: Timestamp(t0.0 + 500_000),
        label: "person".into(),
        score: 0.75,
        bbox: e.bbox,
        tracker_id: Some(7),
        event_id: Some(e.id),
        image_path: None,
    };
    apply(Mutation::PutDetection(Box::new(d))).await;
    let s = sub
        .expect("sentryshot/events/tflite", 5, |_| true)
        .await
        .json();
    assert_eq!(
        s,
        json!({"monitorID": "front", "monitorName": "front", "label": "person", "score": 75.0,
               "time": Timestamp(t0.0 + 500_000).to_string(), "source": "vigil"})
    );

    e.score = 0.9;
    e.top_score = 0.9;
    e.has_snapshot = true;
    e.best = Some(BestFrame {
        time: Timestamp(t0.0 + 500_000),
        bbox: e.bbox,
        score: 0.9,
        snapshot_path: Some("snapshots/e1.jpg".into()),
        thumbnail_path: None,
    });
    apply(Mutation::PutEvent(Box::new(e.clone()))).await;
    let m = sub.expect("vt/events", 5, |_| true).await.json();
    assert_eq!(m["type"], "update", "{m}");
    assert_eq!(m["before"]["top_score"].as_f64().unwrap() as f32, 0.8);
    assert_eq!(m["after"]["top_score"].as_f64().unwrap() as f32, 0.9);
    assert_eq!(m["after"]["has_snapshot"], true);
    let snap = sub.expect("vt/front/person/snapshot", 5, |_| true).await;
    assert_eq!(snap.payload, jpeg);

    e.end_time = Some(Timestamp(t0.0 + 3_000_000));
    apply(Mutation::PutEvent(Box::new(e.clone()))).await;
    let m = sub.expect("vt/events", 5, |_| true).await.json();
    assert_eq!(m["type"], "end", "{m}");
    assert_eq!(m["after"]["end_time"], 1_764_000_003.0);
    assert!(m["before"]["end_time"].is_null());
    assert_eq!(m["after"]["current_zones"], json!([]));
    for t in ["vt/front/person", "vt/porch/all"] {
        sub.expect(t, 5, |m| m.text() == "0").await;
    }
    // State topics are retained: a subscriber that comes later gets them at once.
    let mut late = Subscriber::start(port, "late-subscriber");
    for (t, want) in [
        ("vt/available", &b"online"[..]),
        ("vt/front/detect/state", b"ON"),
        ("vt/front/person", b"0"),
        ("vt/porch/all/active", b"0"),
        ("vt/front/person/snapshot", &jpeg),
    ] {
        let m = late.expect(t, 5, |_| true).await;
        assert!(m.retain, "{t}");
        assert_eq!(m.payload, want, "{t}");
    }
    late.task.abort();
    // A later edit (a review) is not a second end.
    e.review = vigil_core::ReviewStatus::Reviewed;
    apply(Mutation::PutEvent(Box::new(e.clone()))).await;

    // Frigate's stats, every second.
    let st = sub.expect("vt/stats", 5, |_| true).await.json();
    assert!(st["cameras"].is_object(), "{st}");
    assert!(st["service"]["uptime"].is_number(), "{st}");

    // A command: detection off, through the camera's PATCH, audited as mqtt.
    sub.client
        .publish("vt/front/detect/set", QoS::AtLeastOnce, false, "OFF")
        .await
        .unwrap();
    sub.expect("vt/front/detect/state", 5, |m| m.text() == "OFF")
        .await;
    let cam = srv
        .store
        .camera(&CameraId::new("front").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(!cam.detect.enabled);
    let audit = srv.get("/api/audit?limit=100").await.json();
    assert!(
        audit["logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["actor"] == "mqtt" && l["action"] == "PATCH /api/cameras/{camera}"),
        "{audit}"
    );
    // An alert rule with an MQTT channel publishes through the same link.
    srv.state.notifier().set_mqtt(mqtt.publisher());
    let engine = tokio::spawn(vigil_http::alerts::run(srv.state.clone()));
    let r = srv
        .call(
            "POST",
            "/api/alerts/rules",
            Some(
                json!({"name": "porch", "zones": ["porch"], "cooldown_seconds": 0,
                        "channels": [{"type": "mqtt", "topic": "home/alerts"}]}),
            ),
            &[],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    // (Just ended: an event that ended long ago is history, not news.)
    let now = srv.state.now();
    let mut ea = scripted_event(2, Timestamp(now.0 - 1_000_000));
    ea.end_time = Some(now);
    apply(Mutation::PutEvent(Box::new(ea))).await;
    let a = sub.expect("home/alerts", 5, |_| true).await.json();
    assert_eq!(a["rule_name"], "porch", "{a}");
    assert_eq!(a["event_id"], "2", "{a}");
    engine.abort();

    // A payload that is not ON/OFF changes nothing (and crashes nothing).
    sub.client
        .publish("vt/front/recordings/set", QoS::AtLeastOnce, false, "maybe")
        .await
        .unwrap();

    // The broker goes away. The store does not wait for it.
    broker.stop();
    let e2 = scripted_event(3, Timestamp(t0.0 + 10_000_000));
    let began = Instant::now();
    apply(Mutation::PutEvent(Box::new(e2.clone()))).await;
    for i in 0..200 {
        let mut ev = scripted_event(1000 + i, Timestamp(t0.0 + 20_000_000));
        ev.end_time = Some(Timestamp(t0.0 + 21_000_000));
        apply(Mutation::PutEvent(Box::new(ev))).await;
    }
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "storing waited for the broker: {:?}",
        began.elapsed()
    );
    broker.resume();
    // Back: online again, the retained state published again (this broker forgot it), and
    // new events flow.
    sub.expect("vt/available", 20, |m| m.text() == "online")
        .await;
    sub.expect("vt/front/person", 10, |m| m.text() == "1").await;
    sub.expect("vt/front/detect/state", 10, |m| m.text() == "OFF")
        .await;
    let e3 = scripted_event(5, Timestamp(t0.0 + 30_000_000));
    apply(Mutation::PutEvent(Box::new(e3))).await;
    sub.expect("vt/events", 10, |m| {
        let v = m.json();
        v["type"] == "new" && v["after"]["id"] == "5"
    })
    .await;
    sub.expect("vt/front/person", 10, |m| m.text() == "2").await;

    // A clean stop says offline.
    assert!(mqtt.figures().connected);
    assert!(mqtt.figures().connections >= 2);
    mqtt.stop().await;
    sub.expect("vt/available", 5, |m| m.text() == "offline")
        .await;
    sub.task.abort();
    srv.stop().await;
}
