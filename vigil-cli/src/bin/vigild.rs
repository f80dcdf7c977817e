//! `vigild`: the Vigil daemon. Opens the store in the data directory, makes sure the built-in
//! demo camera exists, and serves the HTTP API until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use vigil_core::{CameraConfig, CameraId, Clocks, Mutation, RealClocks, Source, Store};
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
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        tracing::info!(addr = %args.listen, data_dir = %args.data_dir.display(), "vigild serving");
        vigil_http::serve(
            listener,
            vigil_http::AppState::new(store),
            shutdown_signal(),
        )
        .await;
        tracing::info!("vigild stopped");
        Ok(())
    })
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
