//! Push over real TCP: picam's server-sent events reach a client soon after the store commits,
//! and a client that stops reading is disconnected without holding anything up.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use vigil_core::Mutation;

mod common;
use common::Server;

/// Opens `/events` with a token; returns the stream after the response head.
fn open_sse(srv: &Server, token: &str) -> BufReader<TcpStream> {
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /events?token={token} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\
         Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    let mut saw_type = false;
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if line
            .to_ascii_lowercase()
            .starts_with("content-type: text/event-stream")
        {
            saw_type = true;
        }
        if line == "\r\n" {
            break;
        }
    }
    assert!(saw_type);
    r
}

/// The next server-sent event's name and data (chunked framing lines skipped).
fn next_event(r: &mut BufReader<TcpStream>) -> (String, String) {
    let (mut name, mut data) = (String::new(), String::new());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0, "the stream ended");
        let l = line.trim_end();
        if let Some(n) = l.strip_prefix("event: ") {
            name = n.to_owned();
        } else if let Some(d) = l.strip_prefix("data: ") {
            data = d.to_owned();
        } else if l.is_empty() && !name.is_empty() {
            return (name, data);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_clients_get_each_event_soon_after_it_is_stored() {
    let (srv, auth) = Server::start_secured("admin-password-1").await;
    let token = auth.issue(&auth.accounts()[0].id).await.unwrap().token;
    let sse = open_sse(&srv, &token);
    let events = vigil_store::conformance::sample_events(5, 3);
    let store = srv.store.clone();
    let (r, worst) = tokio::task::spawn_blocking(move || {
        let mut sse = sse;
        let mut worst = Duration::ZERO;
        let rt = tokio::runtime::Handle::current();
        for e in &events {
            let stored = Instant::now();
            rt.block_on(store.apply(Mutation::PutEvent(Box::new(e.clone())).into()))
                .unwrap();
            let (name, data) = loop {
                let (n, d) = next_event(&mut sse);
                if n != "archive_updated" {
                    break (n, d);
                }
            };
            worst = worst.max(stored.elapsed());
            assert_eq!(name, "events");
            let v: serde_json::Value = serde_json::from_str(&data).unwrap();
            assert_eq!(v["id"], e.id.to_string(), "{v}");
            assert_eq!(v["camera"], e.camera.as_str(), "{v}");
        }
        (sse, worst)
    })
    .await
    .unwrap();
    assert!(
        worst < Duration::from_millis(300),
        "an event took {worst:?}"
    );
    drop(r);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_disconnected_and_holds_nothing_up() {
    let (srv, auth) = Server::start_secured("admin-password-1").await;
    let token = auth.issue(&auth.accounts()[0].id).await.unwrap().token;
    let mut sse = open_sse(&srv, &token);
    // Many events (some 36 MB of messages, more than the sockets' buffers hold) while the
    // client reads nothing: every commit still returns.
    const N: usize = 40_000;
    let events = vigil_store::conformance::sample_events(N as u64, 9);
    let started = Instant::now();
    for chunk in events.chunks(50) {
        let b: vigil_core::Batch = chunk
            .iter()
            .map(|e| Mutation::PutEvent(Box::new(e.clone())))
            .collect();
        srv.store.apply(b).await.unwrap();
    }
    let spent = started.elapsed();
    // The server gave up on the client: what it sent is buffered, then the stream ends.
    let read = tokio::task::spawn_blocking(move || {
        let mut all = Vec::new();
        let _ = sse.read_to_end(&mut all);
        all.len()
    })
    .await
    .unwrap();
    assert!(read > 0);
    assert!(
        read < N * 500,
        "{read} bytes: the slow client got everything, so it was never cut off"
    );
    // Not a timing test: a sanity bound far above what 800 batches take when nothing waits.
    assert!(spent < Duration::from_secs(60), "{spent:?}");
    srv.stop().await;
}

/// A WebSocket client on `path` (with a token), over a plain TCP connection.
fn open_ws(srv: &Server, path: &str, token: &str) -> tungstenite::WebSocket<TcpStream> {
    let s = TcpStream::connect(srv.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let url = format!("ws://{}{path}?token={token}", srv.addr);
    let (ws, resp) = tungstenite::client::client(url.as_str(), s).unwrap();
    assert_eq!(resp.status(), 101);
    ws
}

fn next_json(ws: &mut tungstenite::WebSocket<TcpStream>) -> serde_json::Value {
    loop {
        match ws.read().unwrap() {
            tungstenite::Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            tungstenite::Message::Close(c) => panic!("closed: {c:?}"),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_carry_events_system_status_and_the_live_log() {
    let (srv, auth) = Server::start_secured("admin-password-1").await;
    let token = auth.issue(&auth.accounts()[0].id).await.unwrap().token;
    // Without credentials, no upgrade.
    let s = TcpStream::connect(srv.addr).unwrap();
    let e = tungstenite::client::client(format!("ws://{}/ws/events", srv.addr).as_str(), s)
        .unwrap_err();
    assert!(e.to_string().contains("401"), "{e}");
    // A plain GET of a WebSocket endpoint says what it is.
    assert_eq!(
        srv.get(&format!("/ws/events?token={token}")).await.status,
        426
    );

    let mut events = open_ws(&srv, "/ws/events", &token);
    let mut system = open_ws(&srv, "/ws/system", &token);
    let mut logs = open_ws(&srv, "/api/logs", &token);
    let store = srv.store.clone();
    tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Handle::current();
        let v = next_json(&mut system);
        assert_eq!(v["type"], "system_status", "{v}");
        assert!(v["data"]["uptime_seconds"].is_u64(), "{v}");
        for e in vigil_store::conformance::sample_events(3, 4) {
            let stored = Instant::now();
            rt.block_on(store.apply(Mutation::PutEvent(Box::new(e.clone())).into()))
                .unwrap();
            let v = next_json(&mut events);
            assert!(
                stored.elapsed() < Duration::from_millis(300),
                "{:?}",
                stored.elapsed()
            );
            assert_eq!(v["type"], "event", "{v}");
            assert_eq!(v["data"]["id"], e.id.to_string(), "{v}");
        }
        let entry = vigil_core::LogEntry {
            id: vigil_core::LogId(77),
            time: vigil_core::Timestamp(1_800_000_000_000_000),
            level: vigil_core::LogLevel::Warning,
            source: "recorder".into(),
            camera: None,
            message: "disk is slow".into(),
        };
        rt.block_on(store.apply(Mutation::PutLog(Box::new(entry)).into()))
            .unwrap();
        let v = next_json(&mut logs);
        assert_eq!(v["msg"], "disk is slow", "{v}");
        assert_eq!(v["src"], "recorder", "{v}");
        assert_eq!(v["level"], "warning", "{v}");
        for ws in [&mut events, &mut system, &mut logs] {
            ws.close(None).unwrap();
        }
    })
    .await
    .unwrap();
    srv.stop().await;
}
