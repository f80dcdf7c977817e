//! Shared pieces of the `vigild` daemon and the `vigil` tool: logging setup, the data
//! directory layout, and fetching model weights.

use std::path::{Path, PathBuf};

pub mod config;
pub mod fetch;
pub mod logs;

/// Installs the tracing subscriber (`RUST_LOG` filters; `info` by default).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
}

/// Where the store lives inside a data directory.
pub fn store_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("db")
}
