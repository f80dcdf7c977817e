//! What the benches share (each uses a part).
#![allow(dead_code)]

use std::io::Read;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A state over `store` that authenticates as vigild does, and the API key (of the first
/// admin) its requests carry.
pub async fn authenticated(store: Arc<dyn vigil_core::Store>) -> (vigil_http::AppState, String) {
    secured(vigil_http::AppState::new(store.clone()), store).await
}

/// `state` authenticating as vigild does, with the accounts in `store`, and the API key (of
/// the first admin) its requests carry.
pub async fn secured(
    state: vigil_http::AppState,
    store: Arc<dyn vigil_core::Store>,
) -> (vigil_http::AppState, String) {
    let auth = vigil_http::auth::Auth::load(store).await.expect("accounts");
    auth.ensure_admin(Some("bench-password"))
        .await
        .expect("admin");
    let admin = auth.accounts()[0].id.clone();
    let (_, key) = auth.create_key(&admin, "bench", None).await.expect("key");
    (state.with_auth(auth), key)
}

/// The time of one of wrk's latency lines (`99%   12.34ms`), in ms.
pub fn latency_ms(line: &str) -> Option<f64> {
    let v = line.split_whitespace().nth(1)?;
    let (num, scale) = if let Some(n) = v.strip_suffix("us") {
        (n, 1e-3)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1e3)
    } else {
        (v, 1.0)
    };
    num.parse::<f64>().ok().map(|n| n * scale)
}

/// Requests per second and the 99th percentile line from wrk (2 threads, `connections`).
pub fn wrk(url: &str, secs: u64, header: &str, connections: u32) -> (f64, String) {
    let out = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{secs}s"),
            "--latency",
            "-H",
            header,
            url,
        ])
        .output()
        .expect("wrk (Debian package wrk) is needed for this benchmark");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let rps = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("wrk said: {text}"));
    let p99 = text
        .lines()
        .find(|l| l.trim_start().starts_with("99%"))
        .unwrap_or("")
        .trim()
        .to_owned();
    assert!(!text.contains("Non-2xx"), "errors under load: {text}");
    (rps, p99)
}

/// Reads the MJPEG stream at `url` for `secs`; the parts (pictures) it got.
pub fn count_parts(url: &str, secs: u64) -> usize {
    let host = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .expect("host")
        .to_owned();
    let path = &url[url.find("/api").expect("path")..];
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    use std::io::Write;
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let end = Instant::now() + Duration::from_secs(secs);
    let mut buf = vec![0u8; 1 << 16];
    let mut parts = 0;
    let mut tail: Vec<u8> = Vec::new();
    while Instant::now() < end {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                tail.extend_from_slice(&buf[..n]);
                while let Some(i) = tail.windows(7).position(|w| w == b"--frame") {
                    parts += 1;
                    tail.drain(..i + 7);
                }
                let keep = tail.len().saturating_sub(8);
                tail.drain(..keep);
            }
            Err(_) => continue,
        }
    }
    parts
}
