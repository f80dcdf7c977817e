//! `vigild`, the daemon, as a library: [`main`] is what the binary runs, [`main_with`] the
//! same with detector kinds of a program's own. It reads its configuration file, opens the
//! store in the data directory, sets the cameras the file names (and the built-in demo camera
//! when asked or when there is none), finishes what a crash interrupted, runs every enabled
//! camera (record, detect, track, events) and serves the HTTP API until SIGINT or SIGTERM,
//! then closes the open segments.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::Config;
use anyhow::Context;
use clap::Parser;
use vigil_core::pipeline::{DiskBudget, Nvr, NvrOptions};
use vigil_core::{
    Batch, CameraConfig, CameraId, Clocks, Mutation, RealClocks, Source, Store, Timestamp,
};
use vigil_detect::{analyzer_factory, DetectorRegistry, DetectorSpec};
use vigil_store::{LmdbStore, StoreOptions};

/// The Vigil network video recorder daemon: its command line.
#[derive(Parser, Debug)]
#[command(
    name = "vigild",
    version,
    about = "The Vigil network video recorder daemon."
)]
pub struct Args {
    /// Configuration file (TOML: server, storage, detectors, detection, cameras); see
    /// `docs/config.md`. Flags given on the command line win over the file.
    #[arg(long, env = "VIGIL_CONFIG")]
    config: Option<PathBuf>,
    /// Directory for the database and media [default: data].
    #[arg(long, env = "VIGIL_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address to serve the API on [default: 127.0.0.1:5000].
    #[arg(long, env = "VIGIL_LISTEN")]
    listen: Option<SocketAddr>,
    /// Run the built-in demo camera (a generated scene with motion detection; needs nothing
    /// else). Without any camera configured, vigild starts it anyway unless --no-demo.
    #[arg(long, conflicts_with = "no_demo")]
    demo: bool,
    /// Do not add the built-in demo camera when no camera is configured.
    #[arg(long)]
    no_demo: bool,
    /// Most bytes all recordings together may use; the oldest go first.
    #[arg(long, env = "VIGIL_MAX_STORAGE_BYTES")]
    max_storage_bytes: Option<u64>,
    /// Most the data directory's filesystem may be full, in percent; the oldest recordings go
    /// first.
    #[arg(long, env = "VIGIL_MAX_STORAGE_PERCENT", value_parser = percent)]
    max_storage_percent: Option<f64>,
    /// YOLOv8 weights (.safetensors, either naming scheme; `vigil model fetch yolov8n` gets
    /// them) for the cameras whose object detection is on. Without a model, cameras detect
    /// motion only.
    #[arg(long, env = "VIGIL_MODEL")]
    model: Option<PathBuf>,
    /// The model's square input size in pixels (a multiple of 32).
    #[arg(long, env = "VIGIL_MODEL_INPUT_SIZE", default_value_t = 320)]
    model_input_size: u32,
    /// Run the model on the whole picture instead of on regions around motion and the
    /// objects followed.
    #[arg(long)]
    full_frame: bool,
    /// Serve without authentication: every request acts as an admin. Only allowed when
    /// listening on a loopback address (127.0.0.1, ::1).
    #[arg(long)]
    no_auth: bool,
    /// MQTT broker to publish to, `mqtt://[USER[:PASSWORD]@]HOST[:PORT]` (port 1883 unless
    /// given): events, states and counts (`docs/mqtt.md`). It wins over the file's `[mqtt]`
    /// host, port and login; the file's other `[mqtt]` keys stay.
    #[arg(long, env = "VIGIL_MQTT", value_parser = mqtt_url)]
    mqtt: Option<MqttUrl>,
    /// Restream every camera over RTSP on this address, at rtsp://HOST:PORT/CAMERA, as
    /// recorded (no re-encoding). Home Assistant's Frigate integration plays port 8554.
    /// Off unless given.
    #[arg(long, env = "VIGIL_RTSP_LISTEN")]
    rtsp_listen: Option<SocketAddr>,
}

/// A broker's address as `--mqtt` gives it.
#[derive(Clone, Debug, PartialEq)]
struct MqttUrl {
    host: String,
    port: u16,
    login: Option<(String, Option<String>)>,
}

impl MqttUrl {
    /// `file`'s settings (or the defaults) with this broker.
    fn over(&self, file: Option<&vigil_http::mqtt::MqttConfig>) -> vigil_http::mqtt::MqttConfig {
        let mut c = file.cloned().unwrap_or_default();
        c.host.clone_from(&self.host);
        c.port = self.port;
        if let Some((user, password)) = &self.login {
            c.user = Some(user.clone());
            c.password.clone_from(password);
        }
        c
    }
}

fn mqtt_url(s: &str) -> Result<MqttUrl, String> {
    let rest = s
        .strip_prefix("mqtt://")
        .or_else(|| s.strip_prefix("tcp://"))
        .ok_or_else(|| {
            format!(
                "{s:?} is not an mqtt:// URL (mqtt://HOST:PORT; TLS brokers are not supported yet)"
            )
        })?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (login, at) = match rest.rsplit_once('@') {
        Some((l, a)) => {
            let login = match l.split_once(':') {
                Some((u, p)) => (u.to_owned(), Some(p.to_owned())),
                None => (l.to_owned(), None),
            };
            (Some(login), a)
        }
        None => (None, rest),
    };
    // An IPv6 address is in brackets: [::1]:1883.
    let (host, port) = match at.strip_prefix('[') {
        Some(v6) => {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{s:?}: an IPv6 address needs its closing ]"))?;
            (h, after.strip_prefix(':'))
        }
        None => match at.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (at, None),
        },
    };
    if host.is_empty() || host.contains('/') {
        return Err(format!("{s:?} names no broker host"));
    }
    let port = match port {
        None => 1883,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("{p:?} is not a port (1-65535)")),
        },
    };
    Ok(MqttUrl {
        host: host.to_owned(),
        port,
        login,
    })
}

/// Runs vigild with the process's arguments: what the `vigild` binary does.
pub fn main() -> std::process::ExitCode {
    main_with(|_| {})
}

/// Runs vigild with the process's arguments, with more detector kinds: `kinds` registers
/// them (see [`DetectorRegistry::register_kind`]) before the configuration's `[detectors]`
/// are built, so the file can name them (`kind = "mine"`). A program that embeds Vigil makes
/// its own daemon this way, with everything `vigild` has.
pub fn main_with(kinds: impl FnOnce(&mut DetectorRegistry)) -> std::process::ExitCode {
    let logs = crate::logs::init_logging_captured();
    let args = Args::parse();
    let mut registry = DetectorRegistry::new();
    kinds(&mut registry);
    match run(args, registry, logs) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The whole chain of causes, so the reason is never hidden behind a summary.
            eprintln!("vigild: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Raises the soft limit on open files to the hard one (at most 2^20): every camera holds a
/// connection and a segment file open, every viewer a connection, and the soft default (1024
/// on Debian) is low for that. The API lets in at most half of it
/// ([`vigil_http::limits::ConnectionLimits`]).
fn raise_file_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let l = getrlimit(Resource::Nofile);
    let target = l.maximum.unwrap_or(1 << 20).min(1 << 20);
    if l.current.is_some_and(|c| c < target) {
        let raised = Rlimit {
            current: Some(target),
            maximum: l.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => tracing::debug!(files = target, "raised the open file limit"),
            Err(e) => tracing::warn!(err = %e, "could not raise the open file limit"),
        }
    }
}

fn run(
    args: Args,
    registry: DetectorRegistry,
    logs: crate::logs::LogCapture,
) -> anyhow::Result<()> {
    let cfg = match &args.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    let data_dir = args
        .data_dir
        .clone()
        .or_else(|| cfg.server.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from("data"));
    let listen = args
        .listen
        .or(cfg.server.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5000)));
    if args.no_auth && !listen.ip().is_loopback() {
        anyhow::bail!(
            "--no-auth is only allowed on a loopback address, and --listen is {listen}: \
             anyone on the network could change and watch everything"
        );
    }
    // One vigild per data directory: two would interleave segments and fight over retention.
    let _lock = crate::DataDirLock::acquire(&data_dir)
        .with_context(|| format!("locking the data directory {}", data_dir.display()))?;
    let registry = Arc::new(detectors(registry, &args, &cfg)?);
    raise_file_limit();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let store_dir = crate::store_dir(&data_dir);
        let store: Arc<dyn Store> = Arc::new(
            LmdbStore::open(&store_dir, StoreOptions::default())
                .with_context(|| format!("opening the store in {}", store_dir.display()))?,
        );
        let clocks: Arc<dyn Clocks> = Arc::new(RealClocks::default());
        put_configured_cameras(&*store, &cfg, &args, clocks.realtime()).await?;
        let opts = NvrOptions {
            budget: DiskBudget {
                max_bytes: args.max_storage_bytes.or(cfg.storage.max_bytes),
                max_percent: args.max_storage_percent.or(cfg.storage.max_percent),
            },
            analyzers: Some(analyzer_factory(
                registry.clone(),
                !(args.full_frame || cfg.detection.full_frame),
            )),
            ..NvrOptions::default()
        };
        let nvr = Arc::new(
            Nvr::start(
                &data_dir,
                store.clone(),
                clocks.clone(),
                vigil_detect::camera_factory(clocks),
                opts,
            )
            .await
            .context("starting the cameras")?,
        );
        let logs = Arc::new(logs);
        {
            let (logs, store, ids) = (logs.clone(), store.clone(), nvr.ids().clone());
            tokio::spawn(async move { logs.run(store, ids).await });
        }
        // Background tasks, stopped together at shutdown: thumbnails and hover-scrub sprite
        // sheets of finished recordings, and timelapse frames.
        let (stop_tasks, stop) = tokio::sync::watch::channel(false);
        let art = tokio::spawn(vigil_detect::run_art(
            store.clone(),
            nvr.clocks().clone(),
            data_dir.clone(),
            vigil_detect::ArtOptions::default(),
            stop,
        ));
        // Timelapse frames of the cameras that ask for them.
        let timelapse = vigil_detect::Timelapse::new(
            store.clone(),
            nvr.live().clone(),
            nvr.clocks().clone(),
            nvr.ids().clone(),
            data_dir.clone(),
        );
        let timelapse_task = tokio::spawn(timelapse.clone().run(stop_tasks.subscribe()));
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        let state = vigil_http::AppState::with_nvr(store.clone(), nvr.clone())
            .with_detectors(registry)
            .with_timelapse(timelapse);
        let rtsp_listen = args.rtsp_listen.or(cfg.server.rtsp_listen);
        let rtsp = match rtsp_listen {
            Some(addr) => {
                if args.no_auth && !addr.ip().is_loopback() {
                    anyhow::bail!(
                        "--no-auth is only allowed on a loopback address, and --rtsp-listen is {addr}"
                    );
                }
                Some(
                    tokio::net::TcpListener::bind(addr)
                        .await
                        .with_context(|| format!("listening for RTSP on {addr}"))?,
                )
            }
            None => None,
        };
        let state = match &rtsp {
            Some(l) => state.with_rtsp(l.local_addr()?.port()),
            None => state,
        };
        let state = if args.no_auth {
            tracing::warn!(addr = %listen, "serving without authentication (--no-auth)");
            state.without_auth()
        } else {
            let auth = first_admin(store.clone()).await?;
            if let Some(l) = &cfg.server.rate_limits {
                auth.set_max_failures(l.failed_logins);
            }
            state.with_auth(auth)
        };
        // The broker: --mqtt over the file's [mqtt].
        let mqtt_config = match &args.mqtt {
            Some(url) => Some(url.over(cfg.mqtt.as_ref())),
            None => cfg.mqtt.clone(),
        };
        let state = match &mqtt_config {
            Some(m) => state.with_mqtt(m.clone()),
            None => state,
        };
        let state = match &cfg.server.rate_limits {
            Some(l) => state.with_rate_limits(l.clone()),
            None => state,
        };
        let state = match &cfg.server.connections {
            Some(l) => state.with_connection_limits(l.clone()),
            None => state,
        };
        let state = match &cfg.server.cors_origins {
            Some(o) => state.with_cors(
                vigil_http::limits::Cors::from_list(o)
                    .map_err(|e| anyhow::anyhow!("server.cors_origins: {e}"))?,
            ),
            None => state,
        };
        // MQTT connects in the background: a broker that is away is retried, and the
        // cameras do not wait for it.
        let mqtt = match &mqtt_config {
            Some(m) => Some(
                vigil_http::mqtt::Mqtt::start(state.clone(), m)
                    .map_err(|e| anyhow::anyhow!("mqtt.{e}"))?,
            ),
            None => None,
        };
        if let Some(m) = &mqtt {
            state.notifier().set_mqtt(m.publisher());
        }
        // Alert rules: each stored event checked, matches delivered (webhooks retried, then
        // dead-lettered).
        let alerting = tokio::spawn(vigil_http::alerts::run(state.clone()));
        // System alerts (a camera lost or back, the disk nearly full) for the push clients.
        let watching = tokio::spawn(vigil_http::alerts::watch_system(state.clone()));
        let restream = rtsp.map(|l| {
            tracing::info!(addr = ?l.local_addr().ok(), "restreaming over RTSP");
            tokio::spawn(vigil_http::rtsp::serve(l, state.clone()))
        });
        // The address bound, which says the port chosen when --listen gave port 0.
        let bound = listener.local_addr().unwrap_or(listen);
        tracing::info!(addr = %bound, data_dir = %data_dir.display(), "vigild serving");
        let served = vigil_http::serve(listener, state, shutdown_signal()).await;
        alerting.abort();
        watching.abort();
        if let Some(r) = restream {
            r.abort();
        }
        if let Some(m) = mqtt {
            m.stop().await;
        }
        let _ = stop_tasks.send(true);
        nvr.stop().await;
        if art.await.is_err() {
            tracing::error!("the recording art task panicked");
        }
        if timelapse_task.await.is_err() {
            tracing::error!("the timelapse task panicked");
        }
        served.context("serving the API")?;
        tracing::info!("vigild stopped");
        Ok(())
    })
}

/// The accounts; on a data directory without any, the account `admin` with the password of
/// `VIGIL_ADMIN_PASSWORD`, or a random one printed here once (never to the stored log).
async fn first_admin(store: Arc<dyn Store>) -> anyhow::Result<Arc<vigil_http::auth::Auth>> {
    let auth = vigil_http::auth::Auth::load(store)
        .await
        .map_err(|e| anyhow::anyhow!("loading the accounts: {}", e.message()))?;
    let given = std::env::var("VIGIL_ADMIN_PASSWORD").ok();
    let made = auth
        .ensure_admin(given.as_deref())
        .await
        .map_err(|e| anyhow::anyhow!("VIGIL_ADMIN_PASSWORD: {}", e.message()))?;
    match (made, given) {
        (Some(_), Some(_)) => {
            tracing::info!("made the account admin with the password of VIGIL_ADMIN_PASSWORD")
        }
        (Some(password), None) => {
            eprintln!(
                "\nvigild: made the account `admin` with the password\n\n    {password}\n\n\
                 It is shown this once. Log in with it (basic auth, or POST /api/auth/login) and \
                 change it with POST /auth/set-password.\n"
            );
        }
        (None, _) => {}
    }
    Ok(auth)
}

/// Sets the cameras the file names (keeping when each was added), then the demo camera when
/// asked for, or when no camera is configured at all.
async fn put_configured_cameras(
    store: &dyn Store,
    cfg: &Config,
    args: &Args,
    now: Timestamp,
) -> anyhow::Result<()> {
    let mut batch = Batch::new();
    for (id, spec) in &cfg.cameras {
        let id = CameraId::new(id.clone())?;
        let camera = match store.camera(&id).await? {
            Some(mut old) => {
                spec.apply_to(&mut old, now)?;
                old
            }
            None => spec.to_config(id, now)?,
        };
        batch.push(Mutation::PutCamera(Box::new(camera)));
    }
    let none = batch.is_empty() && store.cameras().await?.is_empty();
    let demo_id = CameraId::new("demo")?;
    if (args.demo || (none && !args.no_demo)) && store.camera(&demo_id).await?.is_none() {
        let demo = CameraConfig::new(
            demo_id,
            Source::Synthetic {
                width: 1280,
                height: 720,
                fps: 15,
            },
            now,
        );
        batch.push(Mutation::PutCamera(Box::new(demo)));
        tracing::info!("added the built-in demo camera \"demo\"");
    }
    if !batch.is_empty() {
        store.apply(batch).await?;
    }
    Ok(())
}

fn percent(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if (1.0..=100.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not a percentage between 1 and 100"))
    }
}

/// The detectors: those the file names, and the model given on the command line, if any
/// (motion needs none).
fn detectors(
    mut registry: DetectorRegistry,
    args: &Args,
    cfg: &Config,
) -> anyhow::Result<DetectorRegistry> {
    for (name, spec) in &cfg.detectors {
        registry
            .add(name, spec)
            .with_context(|| format!("detector {name:?} of the configuration"))?;
        tracing::info!(detector = %name, kind = %spec.kind, "detector ready");
    }
    if let Some(model) = &args.model {
        let spec = DetectorSpec {
            kind: "yolov8".to_owned(),
            model: Some(model.clone()),
            input_size: Some(args.model_input_size),
            ..Default::default()
        };
        registry
            .add("cpu", &spec)
            .with_context(|| format!("loading the model {}", model.display()))?;
        tracing::info!(model = %model.display(), "object detection with YOLOv8");
    }
    Ok(registry)
}

/// Resolves on the first SIGINT or SIGTERM; a second one exits at once.
async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(err = %e, "cannot watch SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down (send the signal again to exit at once)");
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        std::process::exit(130);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mqtt_urls_are_read_and_bad_ones_named() {
        let u = mqtt_url("mqtt://broker.lan").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.login),
            ("broker.lan", 1883, None)
        );
        let u = mqtt_url("mqtt://ha:s3cr:t@10.0.0.2:1884/").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("10.0.0.2", 1884));
        assert_eq!(u.login, Some(("ha".into(), Some("s3cr:t".into()))));
        assert_eq!(mqtt_url("tcp://[::1]:1885").unwrap().host, "::1");
        for (bad, says) in [
            ("broker.lan:1883", "not an mqtt:// URL"),
            ("mqtts://broker.lan", "not an mqtt:// URL"),
            ("mqtt://broker.lan:http", "\"http\" is not a port"),
            ("mqtt://broker.lan:0", "is not a port"),
            ("mqtt://:1883", "names no broker host"),
            ("mqtt://[::1:1883", "closing ]"),
        ] {
            let e = mqtt_url(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn the_flag_keeps_the_files_other_mqtt_keys() {
        let file = vigil_http::mqtt::MqttConfig {
            topic_prefix: "frigate".into(),
            user: Some("old".into()),
            ..Default::default()
        };
        let c = mqtt_url("mqtt://b:1999").unwrap().over(Some(&file));
        assert_eq!((c.host.as_str(), c.port), ("b", 1999));
        assert_eq!(c.topic_prefix, "frigate");
        assert_eq!(c.user.as_deref(), Some("old"));
    }
}
