//! Any request line against a real store: the API answers every one without panicking, and a
//! bad request is a 4xx with `{"detail": ...}`, never a 5xx. The two 5xx a well-formed request
//! may get from a server holding only a store are allowed: 503 (what needs running cameras)
//! and 501 (what needs hardware or a language model).
#![no_main]

use http_body_util::BodyExt;
use hyper::{Method, Request};
use libfuzzer_sys::fuzz_target;
use vigil_http::{respond, AppState};

const METHODS: [Method; 5] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
];

fuzz_target!(|data: &[u8]| {
    let Some((&m, rest)) = data.split_first() else {
        return;
    };
    let Ok(target) = std::str::from_utf8(rest) else {
        return;
    };
    let Ok(uri) = format!("/{target}").parse::<hyper::Uri>() else {
        return;
    };
    let req = Request::builder()
        .method(METHODS[usize::from(m) % METHODS.len()].clone())
        .uri(uri)
        .body(http_body_util::Empty::<hyper::body::Bytes>::new())
        .expect("request");
    let w = vigil_fuzz::world();
    // Without authentication, so that every request reaches its handler.
    let state = AppState::new(w.store.clone()).without_auth();
    let resp = w.rt.block_on(respond(&state, req));
    let status = resp.status();
    let allowed = status == hyper::StatusCode::SERVICE_UNAVAILABLE
        || status == hyper::StatusCode::NOT_IMPLEMENTED;
    assert!(
        !status.is_server_error() || allowed,
        "{target:?} -> {status}"
    );
    if status.is_client_error() || status.is_server_error() {
        let body =
            w.rt.block_on(resp.into_body().collect())
                .expect("body")
                .to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json error body");
        assert!(v["detail"].is_string(), "{target:?} -> {v}");
    }
});
