//! Alert rules over real TCP with real webhook receivers: a receiver that fails twice then
//! succeeds gets the alert on the third attempt; one that always fails puts the job in the
//! dead-letter queue, and requeueing delivers it once the receiver works. Quiet hours and a
//! camera's preference hold alerts back; a rule's test runs it over stored events.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use vigil_core::{CameraId, Event, EventId, Mutation, Timestamp};
use vigil_http::alerts::NotifyOptions;

mod common;
use common::Server;

/// A webhook receiver on 127.0.0.1: answers 500 to the first `fail_first` requests (to all of
/// them while `broken`), 200 after; keeps every body.
struct Receiver {
    url: String,
    fail_first: Arc<AtomicUsize>,
    broken: Arc<AtomicBool>,
    bodies: Arc<Mutex<Vec<Value>>>,
    requests: Arc<AtomicUsize>,
}

impl Receiver {
    fn start(fail_first: usize, broken: bool) -> Receiver {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", l.local_addr().unwrap());
        let r = Receiver {
            url,
            fail_first: Arc::new(AtomicUsize::new(fail_first)),
            broken: Arc::new(AtomicBool::new(broken)),
            bodies: Arc::default(),
            requests: Arc::default(),
        };
        let (ff, br, bodies, reqs) = (
            r.fail_first.clone(),
            r.broken.clone(),
            r.bodies.clone(),
            r.requests.clone(),
        );
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { return };
                let mut rd = BufReader::new(s.try_clone().unwrap());
                let mut len = 0;
                let mut line = String::new();
                loop {
                    line.clear();
                    if rd.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; len];
                let _ = rd.read_exact(&mut body);
                reqs.fetch_add(1, Ordering::SeqCst);
                let fail = br.load(Ordering::SeqCst)
                    || ff
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                if !fail {
                    if let Ok(v) = serde_json::from_slice(&body) {
                        bodies.lock().unwrap().push(v);
                    }
                }
                let status = if fail {
                    "500 Internal Server Error"
                } else {
                    "200 OK"
                };
                let _ = write!(
                    s,
                    "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
            }
        });
        r
    }

    fn delivered(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }
}

async fn until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn event(id: u64, label: &str, score: f32, zones: &[&str]) -> Event {
    let mut rng = |n: u64| n / 2;
    let mut e = vigil_store::conformance::sample_event(id, &mut rng);
    e.id = EventId(id);
    e.camera = CameraId::new("front").unwrap();
    e.label = label.into();
    e.score = score;
    e.top_score = score;
    e.zones = zones.iter().map(|z| z.to_string()).collect();
    e.risk_score = None;
    e.start_time = Timestamp(1_764_000_000_000_000 + id as i64 * 1_000_000);
    e.end_time = None;
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_retry_dead_letter_and_requeue() {
    let srv = Server::start_with(|s| {
        s.without_auth().with_notify_options(NotifyOptions {
            attempts: 3,
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(200),
            timeout: Duration::from_secs(5),
            dlq_capacity: 100,
        })
    })
    .await;
    let engine = tokio::spawn(vigil_http::alerts::run(srv.state.clone()));
    let put = |e: Event| {
        let store = srv.store.clone();
        async move {
            store
                .apply(Mutation::PutEvent(Box::new(e)).into())
                .await
                .unwrap()
        }
    };
    srv.add_camera("front").await;
    // Events stored before the rules exist: for the rules' test, not alerted.
    put(event(10, "person", 0.9, &["porch"])).await;
    put(event(11, "person", 0.3, &["porch"])).await;
    put(event(12, "car", 0.9, &["drive"])).await;

    let flaky = Receiver::start(2, false);
    let broken = Receiver::start(0, true);
    let r = srv
        .call(
            "POST",
            "/api/alerts/rules",
            Some(json!({"name": "person on the porch", "severity": "high",
                        "object_types": ["person"], "zones": ["porch"], "min_confidence": 0.5,
                        "cooldown_seconds": 0,
                        "channels": [{"type": "webhook", "url": flaky.url}, {"type": "push"}]})),
            &[],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let person = r.json();
    let pid = person["id"].as_str().unwrap().to_owned();
    assert_eq!(person["labels"], json!(["person"]));
    assert_eq!(person["min_score"], 0.5);
    let r = srv
        .call(
            "POST",
            "/api/alerts/rules",
            Some(
                json!({"name": "cars", "labels": ["car"], "cooldown_seconds": 0,
                        "channels": [{"type": "webhook", "url": broken.url}]}),
            ),
            &[],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let cars = r.json()["id"].as_str().unwrap().to_owned();

    // CRUD and bad bodies.
    let all = srv.get("/api/alerts/rules").await.json();
    assert_eq!(all["count"], 2, "{all}");
    let r = srv
        .call(
            "PUT",
            &format!("/api/alerts/rules/{cars}"),
            Some(json!({"description": "any car", "schedule": {"days": ["mon", 6], "start_time": "22:00", "end_time": "06:00", "timezone": "Europe/Paris"}})),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["schedule"]["days"], json!(["monday", "sunday"]));
    let r = srv
        .call(
            "PUT",
            &format!("/api/alerts/rules/{cars}"),
            Some(json!({"schedule": null})),
            &[],
        )
        .await;
    assert!(r.json()["schedule"].is_null(), "{}", r.text());
    for bad in [
        json!({"name": "x", "severity": "urgent"}),
        json!({"name": "x", "channels": [{"type": "webhook", "url": "ftp://x"}]}),
        json!({"name": "x", "channels": [{"type": "sms"}]}),
        json!({"name": "x", "schedule": {"start_time": "25:00", "end_time": "06:00"}}),
        json!({"name": "x", "schedule": {"start_time": "22:00", "end_time": "06:00", "timezone": "Mars/Base"}}),
        json!({"name": "x", "min_score": 2}),
        json!({"description": "no name"}),
    ] {
        let r = srv
            .call("POST", "/api/alerts/rules", Some(bad.clone()), &[])
            .await;
        assert_eq!(r.status, 422, "{bad}: {}", r.text());
        assert!(r.json()["detail"].is_array(), "{}", r.text());
    }
    assert_eq!(srv.get("/api/alerts/rules/12345").await.status, 404);
    assert_eq!(srv.get("/api/alerts/rules/abc").await.status, 422);

    // The rule's test over the stored events: only the confident person on the porch.
    let t = srv
        .call("POST", &format!("/api/alerts/rules/{pid}/test"), None, &[])
        .await
        .json();
    assert_eq!(t["events_tested"], 3, "{t}");
    assert_eq!(t["events_matched"], 1, "{t}");
    assert_eq!(t["matches"][0]["event_id"], "10", "{t}");
    assert!(flaky.delivered().is_empty(), "a test sends nothing");

    // A person: two failures, then delivered on the third attempt.
    put(event(20, "person", 0.8, &["porch"])).await;
    until(10, "the third attempt", || flaky.delivered().len() == 1).await;
    assert_eq!(flaky.requests.load(Ordering::SeqCst), 3);
    let body = &flaky.delivered()[0];
    assert_eq!(body["rule_name"], "person on the porch", "{body}");
    assert_eq!(body["event_id"], "20", "{body}");
    assert_eq!(body["severity"], "high", "{body}");
    assert_eq!(body["event"]["camera"], "front", "{body}");
    // Its updates do not alert again.
    let mut again = event(20, "person", 0.95, &["porch"]);
    again.end_time = Some(Timestamp(again.start_time.0 + 1_000_000));
    put(again).await;

    // A car: every attempt fails, the job lands in the dead-letter queue.
    put(event(21, "car", 0.9, &[])).await;
    until(10, "the dead-letter queue", || {
        broken.requests.load(Ordering::SeqCst) == 3
    })
    .await;
    let mut stats = Value::Null;
    for _ in 0..100 {
        stats = srv.get("/api/dlq/stats").await.json();
        if stats["queues"]["webhook"]["count"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(stats["queues"]["webhook"]["count"], 1, "{stats}");
    let jobs = srv.get("/api/dlq/jobs/webhook").await.json();
    assert_eq!(jobs["count"], 1, "{jobs}");
    let job = &jobs["jobs"][0];
    assert_eq!(job["attempts"], 3, "{job}");
    assert_eq!(job["target"], broken.url.as_str(), "{job}");
    assert!(job["last_error"].as_str().unwrap().contains("500"), "{job}");
    assert_eq!(srv.get("/api/dlq/jobs/sms").await.status, 404);

    // The receiver works again: requeueing the oldest job delivers it, once.
    broken.broken.store(false, Ordering::SeqCst);
    let r = srv
        .call("POST", "/api/dlq/requeue/webhook", None, &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["requeued"], 1);
    until(10, "the requeued delivery", || {
        broken.delivered().len() == 1
    })
    .await;
    assert_eq!(broken.delivered()[0]["event_id"], "21");
    let stats = srv.get("/api/dlq/stats").await.json();
    assert_eq!(stats["queues"]["webhook"]["count"], 0, "{stats}");
    assert_eq!(
        srv.call("POST", "/api/dlq/requeue/webhook", None, &[])
            .await
            .status,
        404,
        "nothing left to requeue"
    );
    let r = srv
        .call("POST", "/api/dlq/requeue-all/webhook", None, &[])
        .await;
    assert_eq!(r.json()["requeued"], 0);
    let r = srv.call("DELETE", "/api/dlq/webhook", None, &[]).await;
    assert_eq!(r.json()["cleared"], 0);

    // Quiet hours all day long hold the next alert back.
    let r = srv
        .call(
            "POST",
            "/api/notification-preferences/quiet-hours",
            Some(json!({"label": "always", "start_time": "00:00", "end_time": "24:00"})),
            &[],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let quiet = r.json()["id"].as_str().unwrap().to_owned();
    let q = srv
        .get("/api/notification-preferences/quiet-hours")
        .await
        .json();
    assert_eq!(q["active_now"], true, "{q}");
    put(event(30, "person", 0.9, &["porch"])).await;
    let cfg = until_figure(&srv, "suppressed", 1).await;
    assert_eq!(cfg["figures"]["delivered"], 2, "{cfg}");
    let r = srv
        .call(
            "DELETE",
            &format!("/api/notification-preferences/quiet-hours/{quiet}"),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());

    // So does turning the camera's notifications off.
    let r = srv
        .call(
            "PUT",
            "/api/notification-preferences/cameras/front",
            Some(json!({"enabled": false})),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let c = srv
        .get("/api/notification-preferences/cameras")
        .await
        .json();
    assert_eq!(c["items"][0]["enabled"], false, "{c}");
    put(event(31, "person", 0.9, &["porch"])).await;
    until_figure(&srv, "suppressed", 2).await;
    // And the global switch back on, the camera on: delivered again.
    let r = srv
        .call(
            "PUT",
            "/api/notification-preferences/cameras/front",
            Some(json!({"enabled": true})),
            &[],
        )
        .await;
    assert_eq!(r.status, 200);
    put(event(32, "person", 0.9, &["porch"])).await;
    until(10, "delivery after the camera is on again", || {
        flaky.delivered().len() == 2
    })
    .await;
    assert_eq!(flaky.delivered()[1]["event_id"], "32");
    let p = srv.get("/api/notification-preferences").await.json();
    assert_eq!(p["enabled"], true, "{p}");

    // A one-off test notification.
    let r = srv
        .call(
            "POST",
            "/api/notification/test",
            Some(json!({"url": flaky.url})),
            &[],
        )
        .await
        .json();
    assert_eq!(r["success"], true, "{r}");
    engine.abort();
    srv.stop().await;
}

/// `/api/notification/config` once its figure `name` reaches `n`.
async fn until_figure(srv: &Server, name: &str, n: u64) -> Value {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let cfg = srv.get("/api/notification/config").await.json();
        if cfg["figures"][name].as_u64() == Some(n) {
            return cfg;
        }
        assert!(Instant::now() < end, "{name} never reached {n}: {cfg}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
