//! The HTTP server over a real LMDB store and real files, called over real TCP connections.
#![allow(dead_code)]

use std::sync::Arc;

use serde_json::Value;
use vigil_core::Store;
use vigil_store::{LmdbStore, StoreOptions};

pub struct Server {
    pub addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    pub dir: tempfile::TempDir,
    pub store: Arc<dyn Store>,
    pub state: vigil_http::AppState,
}

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn fresh() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(LmdbStore::open(&dir.path().join("db"), StoreOptions::default()).unwrap());
    (dir, store)
}

impl Server {
    /// A server without authentication, over a fresh store and media directory.
    pub async fn start() -> Server {
        Server::start_with(|s| s.without_auth()).await
    }

    /// A server with authentication, its first account `admin` with `admin_password`.
    pub async fn start_secured(admin_password: &str) -> (Server, Arc<vigil_http::auth::Auth>) {
        let (dir, store) = fresh();
        let auth = vigil_http::auth::Auth::load(store.clone()).await.unwrap();
        auth.ensure_admin(Some(admin_password)).await.unwrap();
        let a = auth.clone();
        let srv = Server::start_on(dir, store, move |s| s.with_auth(a)).await;
        (srv, auth)
    }

    /// A server whose state `f` finishes.
    pub async fn start_with(
        f: impl FnOnce(vigil_http::AppState) -> vigil_http::AppState,
    ) -> Server {
        let (dir, store) = fresh();
        Server::start_on(dir, store, f).await
    }

    async fn start_on(
        dir: tempfile::TempDir,
        store: Arc<dyn Store>,
        f: impl FnOnce(vigil_http::AppState) -> vigil_http::AppState,
    ) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let state = f(vigil_http::AppState::new(store.clone()).with_data_dir(dir.path()));
        let task = tokio::spawn(vigil_http::serve(listener, state.clone(), async {
            let _ = rx.await;
        }));
        Server {
            addr,
            stop: Some(tx),
            task,
            dir,
            store,
            state,
        }
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let url = format!("http://{}{path}", self.addr);
        let method = method.to_owned();
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        tokio::task::spawn_blocking(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .allow_non_standard_methods(true)
                .build()
                .into();
            let mut req = ureq::http::Request::builder()
                .method(method.as_str())
                .uri(&url);
            for (k, v) in &headers {
                req = req.header(k, v);
            }
            let mut resp = match body {
                Some(b) => agent
                    .run(
                        req.header("content-type", "application/json")
                            .body(b.to_string())
                            .unwrap(),
                    )
                    .unwrap(),
                None => agent.run(req.body(()).unwrap()).unwrap(),
            };
            let status = resp.status().as_u16();
            let headers: Vec<(String, String)> = resp
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                .collect();
            // An event stream never ends: its head is the answer.
            let streaming = headers
                .iter()
                .any(|(k, v)| k == "content-type" && v.starts_with("text/event-stream"));
            let body = if streaming {
                Vec::new()
            } else {
                resp.body_mut()
                    .with_config()
                    .limit(1 << 30)
                    .read_to_vec()
                    .unwrap()
            };
            Resp {
                status,
                headers,
                body,
            }
        })
        .await
        .unwrap()
    }

    /// Adds a camera named `name` (an RTSP URL nothing answers: no pipeline runs here).
    pub async fn add_camera(&self, name: &str) {
        let r = self
            .call(
                "POST",
                "/api/cameras",
                Some(serde_json::json!({"name": name, "url": "rtsp://127.0.0.1:9/live"})),
                &[],
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
    }

    /// GET with an API key.
    pub async fn get_with_key(&self, path: &str, key: &str) -> Resp {
        self.call("GET", path, None, &[("x-api-key", key)]).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.call("GET", path, None, &[]).await
    }

    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap().unwrap();
    }
}
