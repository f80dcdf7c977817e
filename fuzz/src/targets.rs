//! The targets. Each takes any bytes, returns normally, and panics only when an invariant of
//! Vigil does not hold (the message says which and on what).

use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vigil_core::{h264, mp4, ErrorKind, EventFilter, Order, Query, SortBy, Timestamp};
use vigil_http::{access, respond, router, Access, AppState};

use crate::world;

/// The start of an input, for a message.
fn cut(data: &[u8]) -> String {
    let n = data.len().min(200);
    format!(
        "{:?}{}",
        String::from_utf8_lossy(&data[..n]),
        if n < data.len() { "..." } else { "" }
    )
}

/// `Timestamp::parse` takes whatever a client sends as a time: what it accepts prints back to
/// a string that parses to the same instant.
pub fn timestamp(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(t) = Timestamp::parse(s) {
        let again = Timestamp::parse(&t.to_string());
        assert_eq!(again.ok(), Some(t), "{s:?} -> {t} does not round-trip");
    }
}

/// A request written as text: `METHOD TARGET`, then `Name: value` lines, an empty line and
/// the body (the rest). Lines a request cannot carry (a bad header name or value) are left
/// out; `None` when the first line is not a method and a target.
fn request_of(text: &str) -> Option<Request<http_body_util::Full<Bytes>>> {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let (method, target) = lines.next()?.split_once(' ')?;
    let method = Method::from_bytes(method.as_bytes()).ok()?;
    let target = if target.starts_with('/') {
        target.to_owned()
    } else {
        format!("/{target}")
    };
    let mut req = Request::builder().method(method).uri(target);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(name.trim().as_bytes()),
            hyper::header::HeaderValue::from_str(value.trim()),
        ) else {
            continue;
        };
        req = req.header(name, value);
    }
    req.body(http_body_util::Full::new(Bytes::from(body.to_owned())))
        .ok()
}

/// Sends `req` to `state` and checks what any answer must be: never a 5xx but the two a
/// server without cameras may give for a well-formed request (503: needs running cameras;
/// 501: needs hardware or a language model), and every error a JSON `{"detail": ...}`.
/// Returns the status.
fn answer(state: &AppState, req: Request<http_body_util::Full<Bytes>>, what: &str) -> StatusCode {
    let w = world();
    let resp = w.rt.block_on(respond(state, req));
    let status = resp.status();
    let allowed =
        status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::NOT_IMPLEMENTED;
    assert!(!status.is_server_error() || allowed, "{what:?} -> {status}");
    if status.is_client_error() || status.is_server_error() {
        let body =
            w.rt.block_on(resp.into_body().collect())
                .expect("body")
                .to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("{what:?} -> {status}, not JSON ({e}): {body:?}"));
        // A message, or (422) the located errors: `[{"loc", "msg", "type"}]`.
        let located = |d: &serde_json::Value| {
            d.as_array().is_some_and(|a| {
                !a.is_empty()
                    && a.iter()
                        .all(|e| e["loc"].is_array() && e["msg"].is_string())
            })
        };
        assert!(
            v["detail"].is_string() || located(&v["detail"]),
            "{what:?} -> {status}: {v}"
        );
    }
    status
}

/// HTTP route, query and body decoding: any request (written as text: `METHOD TARGET`, header
/// lines, an empty line, the body) to the API without authentication, so that every one
/// reaches its handler. Never a 5xx but 501 and 503 (what a server without cameras or hardware
/// may answer), and every error a JSON `{"detail": ...}`.
pub fn http_request(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(req) = request_of(text) else {
        return;
    };
    answer(&world().open, req, text);
}

/// The auth headers (Basic, Bearer, JWT, API key, cookie, CSRF) and the query's `token` and
/// `api_key`: any request to the API with authentication on. What it must hold besides what
/// [`http_request`] checks: without a real secret (the placeholders of [`crate::World::with_secrets`]),
/// nothing but the public routes and CORS preflights answers with success or a redirect.
pub fn http_auth(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let w = world();
    let (text, had_secret) = w.with_secrets(text);
    let Some(req) = request_of(&text) else {
        return;
    };
    let method = req.method().clone();
    let path = match req.uri().path().trim_end_matches('/') {
        "" => "/".to_owned(),
        p => p.to_owned(),
    };
    let status = answer(&w.secured, req, &text);
    if had_secret || method == Method::OPTIONS {
        return;
    }
    if let Some(ep) = router().endpoint(&method, &path) {
        if access(&method, ep.pattern) != Access::Public {
            assert!(
                !status.is_success() && !status.is_redirection(),
                "{text:?} -> {status} without credentials ({} {})",
                ep.method,
                ep.pattern
            );
        }
    }
}

/// Cursors come back from clients: any string, with any sort and order, is either a page or an
/// `InvalidArgument` error from the store, never another kind of error.
pub fn event_cursor(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Ok(cursor) = std::str::from_utf8(rest) else {
        return;
    };
    let mut q = Query::new(EventFilter::default());
    q.sort = [SortBy::Time, SortBy::Score, SortBy::Duration][usize::from(flags % 3)];
    q.order = if flags & 4 == 0 {
        Order::Asc
    } else {
        Order::Desc
    };
    q.page.limit = u32::from(flags >> 3) + 1;
    q.page.cursor = Some(cursor.to_owned());
    let w = world();
    if let Err(e) = w.rt.block_on(w.store.events(&q)) {
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{cursor:?}: {e}");
    }
}

/// The MP4 reader runs on files cut by crashes (the salvage at start-up), on files users play
/// and on the segments HLS serves in parts: any bytes give samples or an error. Samples lie
/// inside the file; a salvaged file reads back with the same samples and the length salvage
/// kept; the split HLS serves lies inside the file.
pub fn mp4_parse(data: &[u8]) {
    let len = data.len() as u64;
    if let Ok(info) = mp4::parse(data) {
        assert!(info.complete_len <= len);
        if info.fragmented {
            // What salvage keeps holds every sample listed.
            for s in &info.samples {
                assert!(
                    s.offset + u64::from(s.size) <= info.complete_len,
                    "{s:?} past {}",
                    info.complete_len
                );
            }
        }
    }
    let path = world().dir.path().join("segment.mp4");
    std::fs::write(&path, data).expect("write the segment");
    if let Ok(Some((init, complete))) = mp4::fragments(&path) {
        assert!(
            init <= complete && complete <= len,
            "{init} {complete} of {len}"
        );
    }
    if let Ok(Some(info)) = mp4::salvage(&path) {
        let kept = std::fs::metadata(&path).expect("salvaged file").len();
        assert_eq!(kept, info.complete_len, "salvage kept another length");
        let again = mp4::read(&path).expect("a salvaged segment reads back");
        let shape = |i: &mp4::Mp4Info| {
            i.samples
                .iter()
                .map(|s| (s.offset, s.size, s.is_key))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            shape(&again),
            shape(&info),
            "a salvaged segment lost samples"
        );
    }
}

/// H.264 from cameras and files: splitting a stream into pictures, parsing parameter sets and
/// converting between Annex B and AVC take any bytes; our own AVC output parses again.
pub fn h264_stream(data: &[u8]) {
    if let Ok(aus) = h264::AccessUnits::default().split(data) {
        for au in aus {
            let nals = h264::avc_nals(&au.data).expect("our own AVC output parses");
            assert!(!nals.is_empty());
            let _ = h264::avc_to_annexb(&au.data);
        }
    }
    let _ = h264::Sps::parse(data);
    let _ = h264::parse_avc_decoder_config(data);
    let _ = h264::avc_nals(data);
}

/// vigild's configuration file: any text is a configuration or an error that names a line of
/// the file (1-based; one past the end for what is missing) and says what is wrong.
pub fn config_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = vigil_cli::config::Config::parse("vigil.toml", text) {
        let lines = text.lines().count().max(1);
        assert!(
            (1..=lines + 1).contains(&e.line),
            "line {} of {lines}: {e}",
            e.line
        );
        assert!(!e.msg.is_empty() && !e.key.is_empty(), "{e}");
    }
}

/// Camera sources and their credentials (`URL`, then optionally a user and a password on the
/// next lines): a source prints back to a URL that reads as the same source; an RTSP source
/// makes a camera or an error; the URL the API shows never shows the password.
pub fn camera_url(data: &[u8]) {
    use vigil_core::config::{mask_password, parse_source, source_url};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.splitn(3, '\n');
    let url = lines.next().unwrap_or("");
    let user = lines.next().map(str::to_owned);
    let password = lines.next().map(str::to_owned);
    let transport = vigil_core::RtspTransport::default();
    if let Ok(src) = parse_source(url, transport, user.clone(), password.clone()) {
        let printed = source_url(&src);
        let again = parse_source(&printed, transport, user, password)
            .unwrap_or_else(|e| panic!("{url:?} printed as {printed:?}, which fails: {e}"));
        assert_eq!(again, src, "{url:?} printed as {printed:?}");
        if matches!(src, vigil_core::Source::Rtsp { .. }) {
            let id = vigil_core::CameraId::new("fuzz").expect("id");
            let clocks = Arc::new(vigil_core::RealClocks::default());
            let _ = vigil_core::camera::RtspCamera::new(id, &src, None, clocks);
        }
    }
    // What the API shows of a stored camera's URL (only `rtsp://` and `rtsps://` URLs hold
    // credentials; `parse_source` takes no other scheme with an authority).
    let stored = matches!(
        parse_source(url, transport, None, None),
        Ok(vigil_core::Source::Rtsp { .. })
    );
    let url = url.trim();
    let masked = mask_password(url);
    if let (true, Ok(u)) = (stored, url::Url::parse(url)) {
        if u.password().is_some_and(|p| p != "***") {
            let m = url::Url::parse(&masked)
                .unwrap_or_else(|e| panic!("{url:?} masked as {masked:?}, not a URL: {e}"));
            assert_eq!(m.password(), Some("***"), "{url:?} masked as {masked:?}");
            assert_eq!(
                (m.username(), m.host_str(), m.port(), m.path()),
                (u.username(), u.host_str(), u.port(), u.path()),
                "{url:?} masked as {masked:?}"
            );
        }
    }
}

/// MQTT commands (the topic on the first line, the payload after it): a message is a command
/// of the camera its topic names, or a trigger's signal on its own topic. A setting's patch is
/// one the camera API takes: applied to the world's camera `demo`, it succeeds.
pub fn mqtt_command(data: &[u8]) {
    use vigil_http::mqtt::Command;
    let (topic, payload) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(topic) = std::str::from_utf8(topic) else {
        return;
    };
    let on_off = || {
        let p = String::from_utf8_lossy(payload).trim().to_ascii_uppercase();
        assert!(
            p == "ON" || p == "OFF",
            "{topic:?} {payload:?} read as a switch"
        );
    };
    match Command::parse("vigil", topic, payload) {
        Command::Patch {
            camera,
            switch,
            patch,
        } => {
            assert_eq!(topic, format!("vigil/{camera}/{switch}/set"));
            if camera == "demo" {
                let req = Request::builder()
                    .method(Method::PATCH)
                    .uri("/api/cameras/demo")
                    .header("content-type", "application/json")
                    .body(http_body_util::Full::new(Bytes::from(patch.to_string())))
                    .expect("request");
                let status = answer(&demo_camera().open, req, topic);
                assert!(status.is_success(), "{topic:?} {patch} -> {status}");
            }
        }
        Command::Review { camera, alerts, .. } => {
            let switch = if alerts {
                "review_alerts"
            } else {
                "review_detections"
            };
            assert_eq!(topic, format!("vigil/{camera}/{switch}/set"));
            on_off();
        }
        Command::ImproveContrast { camera, .. } => {
            assert_eq!(topic, format!("vigil/{camera}/improve_contrast/set"));
            on_off();
        }
        Command::Signal { topic: t, .. } => assert_eq!(t, topic),
        Command::Invalid { reason, .. } => assert!(!reason.is_empty()),
    }
}

/// The world, with the camera `demo` added through the API once.
fn demo_camera() -> &'static crate::World {
    static ADDED: std::sync::Once = std::sync::Once::new();
    let w = world();
    ADDED.call_once(|| {
        let req = Request::builder()
            .method(Method::POST)
            .uri("/api/cameras")
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(Bytes::from_static(
                br#"{"id": "demo", "name": "Demo", "url": "synthetic:"}"#,
            )))
            .expect("request");
        let status = answer(&w.open, req, "add demo");
        assert!(status.is_success(), "adding the camera demo: {status}");
    });
    w
}

/// The RTSP restream's request reader, over a real connection to the restream with
/// authentication on: whatever a client sends (requests, interleaved frames, garbage), the
/// server answers with well-formed responses (no header line broken by a stray CR or LF) and
/// closes when the client is done; without a real secret it never describes or sets up a
/// stream.
pub fn rtsp_request(data: &[u8]) {
    let w = world();
    let (bytes, had_secret) = match std::str::from_utf8(data) {
        Ok(text) => {
            let (t, had) = w.with_secrets(text);
            (t.into_bytes(), had)
        }
        Err(_) => (data.to_vec(), false),
    };
    let out = w.rt.block_on(async {
        let mut s = tokio::net::TcpStream::connect(w.rtsp)
            .await
            .expect("connect");
        // The server may close first (a request too long): what it sent still counts.
        let _ = s.write_all(&bytes).await;
        let _ = s.shutdown().await;
        let mut out = Vec::new();
        let read =
            tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut out));
        assert!(
            read.await.is_ok(),
            "the server did not close: {}",
            cut(data)
        );
        out
    });
    let mut rest = &out[..];
    while !rest.is_empty() {
        let Some(end) = rest.windows(4).position(|x| x == b"\r\n\r\n") else {
            panic!(
                "a response without the end of its head: {} for {}",
                cut(rest),
                cut(data)
            );
        };
        let head = std::str::from_utf8(&rest[..end]).expect("a response head is text");
        assert!(head.starts_with("RTSP/1.0 "), "{head:?} for {}", cut(data));
        let mut body = 0;
        for line in head.split("\r\n") {
            assert!(
                !line.contains(['\r', '\n']),
                "a header line broken by CR or LF: {line:?} for {}",
                cut(data)
            );
            if let Some(v) = line.strip_prefix("Content-Length: ") {
                body = v.parse::<usize>().expect("a Content-Length");
            }
            if !had_secret {
                assert!(
                    !line.starts_with("Content-Type: application/sdp")
                        && !line.starts_with("Session: "),
                    "{head:?} without credentials, for {}",
                    cut(data)
                );
            }
        }
        rest = &rest[(end + 4 + body).min(rest.len())..];
    }
}
