//! Rate limits by tier and the cross-origin policy, over real TCP.

use vigil_http::limits::{Cors, RateLimits};

mod common;
use common::Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tier_has_its_own_limit_and_origins_are_checked() {
    let srv = Server::start_with(|s| {
        s.without_auth()
            .with_rate_limits(RateLimits {
                exempt_loopback: false,
                search: 3,
                websocket: 2,
                standard: 50,
                ..RateLimits::default()
            })
            .with_cors(Cors::from_list(&["https://ha.example:8123".into()]).unwrap())
    })
    .await;
    for _ in 0..3 {
        assert_eq!(srv.get("/api/events/search?q=person").await.status, 200);
    }
    let r = srv.get("/api/events/search?q=person").await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("search tier allows 3"),
        "{}",
        r.text()
    );
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=20).contains(&wait), "{wait}");
    // The standard tier is not touched by the search tier's requests.
    assert_eq!(srv.get("/api/events").await.status, 200);
    // New event streams are the websocket tier's.
    for _ in 0..2 {
        assert_eq!(srv.get("/events").await.status, 200);
    }
    assert_eq!(srv.get("/events").await.status, 429);
    // The standard tier's turn: 50 a minute, of which one is spent.
    let mut statuses = Vec::new();
    for _ in 0..50 {
        statuses.push(srv.get("/api/version").await.status);
    }
    assert_eq!(statuses.iter().filter(|&&s| s == 200).count(), 49);
    assert_eq!(*statuses.last().unwrap(), 429);

    // Only the configured origin is told it may read.
    let srv = Server::start_with(|s| {
        s.without_auth()
            .with_cors(Cors::from_list(&["https://ha.example:8123".into()]).unwrap())
    })
    .await;
    let r = srv
        .call(
            "GET",
            "/api/version",
            None,
            &[("origin", "https://ha.example:8123")],
        )
        .await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://ha.example:8123")
    );
    assert_eq!(r.header("vary"), Some("origin"));
    let r = srv
        .call(
            "GET",
            "/api/version",
            None,
            &[("origin", "https://evil.example")],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), None);
    let r = srv
        .call(
            "OPTIONS",
            "/api/cameras",
            None,
            &[
                ("origin", "https://ha.example:8123"),
                ("access-control-request-method", "POST"),
            ],
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://ha.example:8123")
    );
    assert!(r
        .header("access-control-allow-headers")
        .unwrap()
        .contains("x-api-key"));
    // By default, any origin; loopback clients are not limited.
    let srv = Server::start().await;
    let r = srv
        .call(
            "GET",
            "/api/version",
            None,
            &[("origin", "https://anywhere.example")],
        )
        .await;
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    for _ in 0..100 {
        assert_eq!(srv.get("/api/events/search?q=x").await.status, 200);
    }
}
