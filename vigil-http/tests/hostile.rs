//! Hostile clients over real TCP, with requests written byte for byte (no client library to
//! tidy them up): path traversal on every route that takes a name or a path, heads and bodies
//! over the limits, and clients that send slowly or not at all. The server answers each with a
//! 4xx (or closes the connection), leaks no file, and keeps serving everyone else.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod common;
use common::Server;

/// One request, written as given, on its own connection; the status and the whole answer.
async fn raw(addr: std::net::SocketAddr, request: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out))
        .await
        .expect("the server answers and closes")
        .unwrap_or_default();
    let status = std::str::from_utf8(out.get(9..12).unwrap_or(b"000"))
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, out)
}

/// A connection that sent `request` and got an answer starting with `want`, kept open.
async fn kept(addr: std::net::SocketAddr, request: &[u8], want: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut buf = [0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    assert!(
        buf[..n].starts_with(want),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    s
}

fn get(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").into_bytes()
}

/// The body of an answer, as JSON.
fn body_json(out: &[u8]) -> serde_json::Value {
    let at = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(out.len(), |i| i + 4);
    serde_json::from_slice(&out[at..]).unwrap_or(serde_json::Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traversal_on_every_route_that_takes_a_name_or_a_path_reaches_no_file() {
    let srv = Server::start().await;
    srv.add_camera("demo").await;
    // Two files no route serves: one in the data directory's root, one outside it.
    let canary = "canary-7f3a9c-not-to-be-served";
    std::fs::write(srv.dir.path().join("secret.txt"), canary).unwrap();
    let outside = srv
        .dir
        .path()
        .parent()
        .unwrap()
        .join(format!("vigil-canary-{}.txt", std::process::id()));
    std::fs::write(&outside, canary).unwrap();
    let outside_name = outside.file_name().unwrap().to_string_lossy().into_owned();
    let probes = [
        "../secret.txt".to_owned(),
        "../../secret.txt".to_owned(),
        "..%2fsecret.txt".to_owned(),
        "..%2f..%2fsecret.txt".to_owned(),
        "%2e%2e%2f%2e%2e%2fsecret.txt".to_owned(),
        "%252e%252e%252fsecret.txt".to_owned(),
        "....%2f%2f....%2f%2fsecret.txt".to_owned(),
        "..%5c..%5csecret.txt".to_owned(),
        "secret.txt%00.jpg".to_owned(),
        format!("..%2f..%2f..%2f{outside_name}"),
        format!("..%2f..%2f..%2f..%2f{outside_name}"),
        format!(
            "%2f{}",
            outside
                .display()
                .to_string()
                .trim_start_matches('/')
                .replace('/', "%2f")
        ),
        "..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd".to_owned(),
    ];
    let mut tried = 0;
    for ep in vigil_http::router().endpoints() {
        if ep.method != hyper::Method::GET || !ep.pattern.contains('{') {
            continue;
        }
        for probe in &probes {
            // Every parameter of the route takes the probe in turn, the others a plain value.
            let params: Vec<&str> = ep
                .pattern
                .split('/')
                .filter(|s| s.starts_with('{'))
                .collect();
            for target_param in &params {
                let mut path = ep.pattern.to_owned();
                for p in &params {
                    let value = if p == target_param {
                        // A catch-all takes raw slashes too.
                        if p.starts_with("{*") {
                            probe.replace("%2f", "/")
                        } else {
                            probe.clone()
                        }
                    } else if p.contains("camera") {
                        "demo".to_owned()
                    } else {
                        "1".to_owned()
                    };
                    path = path.replacen(p, &value, 1);
                }
                let (status, out) = raw(srv.addr, &get(&path)).await;
                tried += 1;
                let text = String::from_utf8_lossy(&out);
                assert!(
                    !text.contains(canary) && !text.contains("root:x:0:0"),
                    "GET {path} served a file it must not: {text}"
                );
                assert!(
                    (400..500).contains(&status) || status == 503 || status == 501,
                    "GET {path} ({}) -> {status}: {}",
                    ep.pattern,
                    text.chars().take(300).collect::<String>()
                );
            }
        }
    }
    assert!(tried > 300, "only {tried} probes");
    std::fs::remove_file(&outside).unwrap();
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heads_and_bodies_over_the_limits_are_refused_and_the_server_goes_on() {
    let srv = Server::start().await;
    // A header of 1 MiB, and a head of 20,000 small headers.
    let big = format!(
        "GET /api/events HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let (status, _) = raw(srv.addr, big.as_bytes()).await;
    assert!(status == 431 || status == 0, "a 1 MiB header -> {status}");
    let many: String = (0..20_000).map(|i| format!("X-{i}: v\r\n")).collect();
    let many = format!("GET /api/events HTTP/1.1\r\nHost: x\r\n{many}Connection: close\r\n\r\n");
    let (status, _) = raw(srv.addr, many.as_bytes()).await;
    assert!(status == 431 || status == 0, "20,000 headers -> {status}");

    // A body over the limit, announced or chunked: 413 once the limit is passed, without the
    // rest being read.
    for framing in [
        format!("Content-Length: {}", 100 << 20),
        "Transfer-Encoding: chunked".into(),
    ] {
        let chunked = framing.starts_with("Transfer");
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        let head = format!(
            "POST /api/cameras HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             {framing}\r\nConnection: close\r\n\r\n"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let chunk = vec![b' '; 64 << 10];
        for _ in 0..((vigil_http::MAX_BODY_BYTES >> 16) + 4) {
            let mut c = Vec::new();
            if chunked {
                c.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            }
            c.extend_from_slice(&chunk);
            if chunked {
                c.extend_from_slice(b"\r\n");
            }
            if s.write_all(&c).await.is_err() {
                break;
            }
        }
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out)).await;
        assert!(
            out.starts_with(b"HTTP/1.1 413"),
            "{framing}: {}",
            String::from_utf8_lossy(&out)
        );
        assert!(body_json(&out)["detail"].is_string());
    }

    // Malformed heads: 400, not a hang or a panic.
    for bad in [
        &b"GET /api/events HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"[..],
        b"GET /api/events HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"GET /api/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET /api/\x01events HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    ] {
        let (status, out) = raw(srv.addr, bad).await;
        assert!(
            status == 400 || status == 0,
            "{:?} -> {}",
            String::from_utf8_lossy(bad),
            String::from_utf8_lossy(&out)
        );
    }

    // Still serving.
    let (status, _) = raw(srv.addr, &get("/api/events")).await;
    assert_eq!(status, 200);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_silent_clients_are_closed_and_hold_nobody_up() {
    let srv = Server::start().await;
    let started = Instant::now();
    // 200 connections that never finish their head (a byte now and then), 50 that send
    // nothing, and 20 whose body trickles in after a complete head.
    let mut slow = Vec::new();
    for _ in 0..200 {
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        s.write_all(b"GET /api/events HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(s);
    }
    let mut silent = Vec::new();
    for _ in 0..50 {
        silent.push(TcpStream::connect(srv.addr).await.unwrap());
    }
    // 10 that made a request, keep the connection alive, and then say nothing.
    let mut idle = Vec::new();
    for _ in 0..10 {
        let request = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
        idle.push(kept(srv.addr, request, b"HTTP/1.1 200").await);
    }
    let mut trickle = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        s.write_all(
            b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 1000\r\n\r\n{",
        )
        .await
        .unwrap();
        trickle.push(s);
    }
    // Everyone else is served as usual meanwhile.
    for _ in 0..20 {
        let t = Instant::now();
        let (status, _) = raw(srv.addr, &get("/api/events?limit=1")).await;
        assert_eq!(status, 200);
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    }
    // Keep the slow ones dribbling (never completing) until the server gives up on them.
    let deadline =
        vigil_http::HEADER_TIMEOUT.max(vigil_http::BODY_TIMEOUT) + Duration::from_secs(10);
    let mut closed_slow = 0;
    let mut buf = [0u8; 1024];
    while started.elapsed() < deadline && closed_slow < slow.len() {
        tokio::time::sleep(Duration::from_secs(2)).await;
        closed_slow = 0;
        for s in &mut slow {
            // A write to a connection the server closed fails, or the read sees its end.
            let gone = s.write_all(b"X").await.is_err()
                || matches!(
                    tokio::time::timeout(Duration::from_millis(1), s.read(&mut buf)).await,
                    Ok(Ok(0)) | Ok(Err(_))
                );
            if gone {
                closed_slow += 1;
            }
        }
        for s in &mut trickle {
            let _ = s.write_all(b" ").await;
        }
    }
    assert_eq!(
        closed_slow,
        slow.len(),
        "slow heads still open after {:?}",
        started.elapsed()
    );
    // The silent ones end too, and so do the idle kept-alive ones.
    for (what, s) in silent
        .into_iter()
        .map(|s| ("silent", s))
        .chain(idle.into_iter().map(|s| ("idle kept-alive", s)))
    {
        let mut s = s;
        let mut out = Vec::new();
        let r = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
        assert!(
            r.is_ok(),
            "a {what} connection is still open after {:?}",
            started.elapsed()
        );
    }
    // A trickling body gets its 408.
    for mut s in trickle {
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
        assert!(
            out.starts_with(b"HTTP/1.1 408"),
            "a trickling body: {}",
            String::from_utf8_lossy(&out)
        );
    }
    let (status, _) = raw(srv.addr, &get("/api/events?limit=1")).await;
    assert_eq!(status, 200);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_get_503_and_the_places_come_back() {
    let limits = vigil_http::limits::ConnectionLimits {
        total: 40,
        per_address: 10,
    };
    let srv = Server::start_with(|s| s.without_auth().with_connection_limits(limits)).await;
    // 20 WebSocket followers (a WebSocket keeps its place after the upgrade), then 20 clients
    // that hold their connection with a head they never finish (loopback counts to the total
    // only, not to the per-address limit).
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(
            kept(
                srv.addr,
                b"GET /ws/events HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
                  Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                  Sec-WebSocket-Version: 13\r\n\r\n",
                b"HTTP/1.1 101",
            )
            .await,
        );
    }
    for _ in 0..20 {
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        s.write_all(b"GET /api/events HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        held.push(s);
    }
    // The next is told why, and closed.
    let (status, out) = raw(srv.addr, &get("/health")).await;
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&out));
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("Retry-After: 5"), "{text}");
    let detail = body_json(&out)["detail"].as_str().unwrap_or("").to_owned();
    assert!(detail.contains("too many connections"), "{detail}");
    // Places are given back as connections close (ten of the unfinished heads).
    held.truncate(30);
    let started = Instant::now();
    loop {
        let (status, _) = raw(srv.addr, &get("/health")).await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 503);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no place came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Ten are free again (once the /health connections above are closed on the server's
    // side too): ten clients are let in and served on connections they keep, and the one
    // after them is refused.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..10 {
        let request = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
        held.push(kept(srv.addr, request, b"HTTP/1.1 200").await);
    }
    let (status, _) = raw(srv.addr, &get("/health")).await;
    assert_eq!(status, 503);
}
