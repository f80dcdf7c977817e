//! `vigild`: the Vigil daemon. Opens the store in the data directory, makes sure the built-in
//! demo camera exists, finishes what a crash interrupted, records every enabled camera and
//! serves the HTTP API until SIGINT or SIGTERM, then closes the open segments.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use vigil_core::camera::{FileCamera, RtspCamera};
use vigil_core::pipeline::{CameraFactory, DiskBudget, Nvr, NvrOptions};
use vigil_core::{Camera, CameraConfig, CameraId, Clocks, Mutation, RealClocks, Source, Store};
use vigil_detect::SyntheticCamera;
use vigil_detect::{analyzer_factory, DetectorRegistry, DetectorSpec};
use vigil_store::{LmdbStore, StoreOptions};

/// The Vigil network video recorder daemon.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Directory for the database and media.
    #[arg(long, env = "VIGIL_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// Address to serve the API on.
    #[arg(long, env = "VIGIL_LISTEN", default_value = "127.0.0.1:5000")]
    listen: SocketAddr,
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
}

fn main() -> std::process::ExitCode {
    vigil_cli::init_logging();
    let args = Args::parse();
    match run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The whole chain of causes, so the reason is never hidden behind a summary.
            eprintln!("vigild: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let store_dir = vigil_cli::store_dir(&args.data_dir);
        let store: Arc<dyn Store> = Arc::new(
            LmdbStore::open(&store_dir, StoreOptions::default())
                .with_context(|| format!("opening the store in {}", store_dir.display()))?,
        );
        if !args.no_demo && store.cameras().await?.is_empty() {
            let now = RealClocks::default().realtime();
            let demo = CameraConfig::new(
                CameraId::new("demo")?,
                Source::Synthetic {
                    width: 1280,
                    height: 720,
                    fps: 15,
                },
                now,
            );
            store
                .apply(Mutation::PutCamera(Box::new(demo)).into())
                .await?;
            tracing::info!("added the built-in demo camera \"demo\"");
        }
        let clocks: Arc<dyn Clocks> = Arc::new(RealClocks::default());
        let opts = NvrOptions {
            budget: DiskBudget {
                max_bytes: args.max_storage_bytes,
                max_percent: args.max_storage_percent,
            },
            analyzers: Some(analyzer_factory(
                Arc::new(detectors(&args)?),
                !args.full_frame,
            )),
            ..NvrOptions::default()
        };
        let nvr = Arc::new(
            Nvr::start(
                &args.data_dir,
                store.clone(),
                clocks.clone(),
                factory(clocks),
                opts,
            )
            .await
            .context("starting the cameras")?,
        );
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        tracing::info!(addr = %args.listen, data_dir = %args.data_dir.display(), "vigild serving");
        vigil_http::serve(
            listener,
            vigil_http::AppState::with_nvr(store, nvr.clone()),
            shutdown_signal(),
        )
        .await;
        nvr.stop().await;
        tracing::info!("vigild stopped");
        Ok(())
    })
}

fn percent(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if (1.0..=100.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not a percentage between 1 and 100"))
    }
}

/// The detectors: the model given, if any (motion needs none).
fn detectors(args: &Args) -> anyhow::Result<DetectorRegistry> {
    let mut registry = DetectorRegistry::new();
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

/// The cameras `vigild` knows how to build.
fn factory(clocks: Arc<dyn Clocks>) -> CameraFactory {
    Arc::new(
        move |cfg: &CameraConfig| -> vigil_core::Result<Arc<dyn Camera>> {
            let id = cfg.id.clone();
            Ok(match &cfg.record_source {
                Source::Rtsp { .. } => Arc::new(RtspCamera::new(
                    id,
                    &cfg.record_source,
                    cfg.detect_source.as_ref(),
                    clocks.clone(),
                )?),
                Source::File { path, fps } => {
                    Arc::new(FileCamera::new(id, path, *fps, clocks.clone()))
                }
                Source::Synthetic { width, height, fps } => Arc::new(SyntheticCamera::new(
                    id,
                    *width,
                    *height,
                    *fps,
                    clocks.clone(),
                )?),
            })
        },
    )
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
