//! The HTTP server against a real LMDB store, over a real TCP connection.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vigil_core::{Batch, Mutation, Store};
use vigil_store::{LmdbStore, StoreOptions};

struct Server {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
}

impl Server {
    async fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(LmdbStore::open(dir.path(), StoreOptions::default()).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let state = vigil_http::AppState::new(store.clone());
        let task = tokio::spawn(vigil_http::serve(listener, state, async {
            let _ = rx.await;
        }));
        Server {
            addr,
            stop: Some(tx),
            task,
            _dir: dir,
            store,
        }
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let mut s = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.unwrap();
        let text = String::from_utf8(buf).unwrap();
        let status = text[9..12].parse().unwrap();
        let body = text
            .split_once("\r\n\r\n")
            .map(|x| x.1.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_health_version_and_events() {
    let srv = Server::start().await;
    let (st, body) = srv.get("/health").await;
    assert_eq!(st, 200, "{body}");
    let (st, body) = srv.get("/api/version").await;
    assert_eq!(st, 200);
    assert!(body.starts_with("0.16.0-vigil"), "{body}");
    let (st, _) = srv.get("/ready").await;
    assert_eq!(st, 200);

    let events = vigil_store::conformance::sample_events(40, 5);
    let b: Batch = events
        .iter()
        .map(|e| Mutation::PutEvent(Box::new(e.clone())))
        .collect();
    srv.store.apply(b).await.unwrap();

    let (st, body) = srv.get("/api/events?limit=5&camera=front").await;
    assert_eq!(st, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let n_front = events
        .iter()
        .filter(|e| e.camera.as_str() == "front")
        .count();
    assert!(n_front > 5, "the data set should need two pages");
    assert_eq!(v["count"], n_front);
    assert_eq!(v["events"].as_array().unwrap().len(), 5);
    assert!(v["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["camera"] == "front"));
    let cursor = v["next_cursor"].as_str().unwrap().to_owned();
    let (st, body) = srv
        .get(&format!("/api/events?limit=5&camera=front&cursor={cursor}"))
        .await;
    assert_eq!(st, 200, "{body}");

    let id = events[3].id;
    let (st, body) = srv.get(&format!("/api/events/{id}")).await;
    assert_eq!(st, 200);
    assert!(body.contains(&format!("\"id\":\"{id}\"")), "{body}");

    for (path, want) in [
        ("/api/events/1", 404),
        ("/api/events?limit=0", 400),
        ("/api/events?limit=5000", 400),
        ("/api/events?cursor=garbage", 400),
        ("/api/events?has_clip=maybe", 400),
        ("/api/nothing", 404),
    ] {
        let (st, body) = srv.get(path).await;
        assert_eq!(st, want, "{path}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(v["detail"].is_string(), "{path}: {body}");
    }
    srv.stop().await;
}
