//! Vigil's fuzz targets: every parser that takes outside input, each with the invariants that
//! must hold for any bytes.
//!
//! Each target is a function of [`targets`], listed in [`TARGETS`]. libFuzzer runs them through
//! the one-line binaries in `fuzz_targets/` (`cargo +nightly fuzz run <target>`, or
//! `fuzz/run` on stable, which CI runs for a bounded time); `tests/corpus.rs` replays the seed
//! corpus in `seeds/<target>/` and the crashes found so far in `regressions/<target>/` as
//! ordinary tests. A target returns normally or panics: a panic is a bug, in Vigil or in the
//! invariant.
//!
//! The targets that need a store share a [`World`]: a real LMDB store in a temp dir seeded with
//! sample events, an account, and the API with and without authentication, built once per
//! process.

use std::io::Write as _;
use std::sync::{Arc, Mutex, OnceLock};

use vigil_core::{Batch, Mutation, Store};
use vigil_http::AppState;

pub mod targets;

/// A target: what it does with one input.
pub type Target = fn(&[u8]);

/// Every target: its name (its corpus directory and binary) and its function.
pub const TARGETS: &[(&str, Target)] = &[
    ("timestamp", targets::timestamp),
    ("http_request", targets::http_request),
    ("http_auth", targets::http_auth),
    ("event_cursor", targets::event_cursor),
    ("mp4_parse", targets::mp4_parse),
    ("h264_stream", targets::h264_stream),
    ("config_file", targets::config_file),
    ("camera_url", targets::camera_url),
    ("mqtt_command", targets::mqtt_command),
    ("rtsp_request", targets::rtsp_request),
];

/// The password of the world's admin account (`admin`).
pub const PASSWORD: &str = "fuzz-admin-password";

/// What the targets share, built once per process.
pub struct World {
    /// Runs the async calls.
    pub rt: tokio::runtime::Runtime,
    /// The store: 50 sample events and the account `admin`.
    pub store: Arc<dyn Store>,
    /// The API without authentication: every request reaches its handler.
    pub open: AppState,
    /// The API with authentication on.
    pub secured: AppState,
    /// A token of `admin`, valid for the process's life.
    pub token: String,
    /// An API key of `admin`.
    pub key: String,
    /// Frigate's login JWT for `admin`.
    pub jwt: String,
    /// Where the RTSP restream of `secured` listens.
    pub rtsp: std::net::SocketAddr,
    /// Scratch files (the MP4 salvage target writes its segment here).
    pub dir: tempfile::TempDir,
}

/// The input being run, named in the report of a panic.
static CURRENT: Mutex<String> = Mutex::new(String::new());

/// Names the input `name` runs next, for the report of a panic (see [`world`]).
pub fn running(name: &str) {
    let mut c = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
    c.clear();
    c.push_str(name);
}

/// The process's world, created on first use. It also makes every panic abort the process
/// after reporting it (with the input [`running`] named) straight to stderr: a panic in a
/// server's task would otherwise end only that task, unseen by the fuzzer and by the tests.
pub fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let input = CURRENT.lock().map(|c| c.clone()).unwrap_or_default();
            // Not through the test harness's capture, which an abort would throw away.
            let _ = writeln!(std::io::stderr(), "panic on input {input:?}: {info}");
            previous(info);
            std::process::abort();
        }));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("tempdir");
        let store = vigil_store::LmdbStore::open(&dir.path().join("db"), Default::default())
            .expect("store");
        let store: Arc<dyn Store> = Arc::new(store);
        let batch: Batch = vigil_store::conformance::sample_events(50, 7)
            .into_iter()
            .map(|e| Mutation::PutEvent(Box::new(e)))
            .collect();
        rt.block_on(store.apply(batch)).expect("seed");
        let (secured, token, key, jwt, rtsp) = rt.block_on(async {
            let auth = vigil_http::auth::Auth::load(store.clone())
                .await
                .expect("auth");
            auth.ensure_admin(Some(PASSWORD)).await.expect("admin");
            let login = auth.login("admin", PASSWORD, None).await.expect("login");
            let (_, key) = auth
                .create_key(&login.account.id, "fuzz", None)
                .await
                .expect("key");
            let jwt = auth.jwt(&login);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let rtsp = listener.local_addr().expect("address");
            let secured = AppState::new(store.clone())
                .with_auth(auth)
                .with_rtsp(rtsp.port());
            tokio::spawn(vigil_http::rtsp::serve(listener, secured.clone()));
            (secured, login.token, key, jwt, rtsp)
        });
        let open = AppState::new(store.clone()).without_auth();
        World {
            rt,
            store,
            open,
            secured,
            token,
            key,
            jwt,
            rtsp,
            dir,
        }
    })
}

impl World {
    /// `text` with the placeholders `{TOKEN}`, `{KEY}`, `{JWT}`, `{PASSWORD}` and `{BASIC}`
    /// (the Basic credentials of `admin`) replaced by the world's secrets, and whether it had
    /// any. The fuzzer cannot guess a secret: these let it reach what lies behind a login.
    pub fn with_secrets(&self, text: &str) -> (String, bool) {
        use base64::Engine as _;
        if !text.contains('{') {
            return (text.to_owned(), false);
        }
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("admin:{PASSWORD}"));
        let mut out = text.to_owned();
        for (name, value) in [
            ("{TOKEN}", self.token.as_str()),
            ("{KEY}", self.key.as_str()),
            ("{JWT}", self.jwt.as_str()),
            ("{PASSWORD}", PASSWORD),
            ("{BASIC}", basic.as_str()),
        ] {
            out = out.replace(name, value);
        }
        let had = out != text;
        (out, had)
    }
}
