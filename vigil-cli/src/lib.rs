//! Vigil's daemon and command-line tool, as a library: `vigild`'s configuration file and log
//! capture, the data directory's layout and lock, fetching model weights, and `vigil` itself
//! (a client of a running vigild, and the commands that work on files offline).
//!
//! ```no_run
//! use vigil_cli::client::{Client, Credentials};
//!
//! // What `vigil events list --json` does, from a program.
//! let c = Client::new("http://127.0.0.1:5000", Credentials::ApiKey("vk_...".into()))?;
//! let page = c.get("/api/events?limit=5")?;
//! for e in page["events"].as_array().into_iter().flatten() {
//!     println!("{} {} {}", e["id"], e["camera"], e["label"]);
//! }
//! # Ok::<(), vigil_cli::client::CliError>(())
//! ```

use std::fs::File;
use std::path::{Path, PathBuf};

pub mod cli;
pub mod client;
pub mod config;
pub mod daemon;
pub mod fetch;
pub mod logs;
pub mod offline;
pub mod output;
pub mod remote;

/// Installs the tracing subscriber (`RUST_LOG` filters; `info` by default).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
}

/// Where the store lives inside a data directory.
pub fn store_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("db")
}

/// An exclusive lock on a data directory (`vigild.lock` in it, `flock`ed): one vigild per
/// data directory, and no `vigil check --repair` while it runs. Released when dropped (or
/// when the process dies, however it dies).
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("vigild.lock")
    }

    /// Takes the lock, or fails at once when another process holds it.
    pub fn acquire(data_dir: &Path) -> std::io::Result<DataDirLock> {
        std::fs::create_dir_all(data_dir)?;
        let path = Self::path(data_dir);
        // flock needs no write access: opened read-only, a lock file made by another user
        // (a `sudo vigil check --repair`) still works for vigild's own user.
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&path)?;
                File::open(&path)?
            }
            Err(e) => return Err(e),
        };
        rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(
            |e| {
                std::io::Error::new(
                    std::io::ErrorKind::WouldBlock,
                    format!(
                        "{} is locked by another process (a vigild using this data directory): {e}",
                        path.display()
                    ),
                )
            },
        )?;
        Ok(DataDirLock { _file: file })
    }

    /// Whether another process holds the lock now.
    pub fn held(data_dir: &Path) -> bool {
        let Ok(file) = File::open(Self::path(data_dir)) else {
            return false;
        };
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockShared) {
            Ok(()) => {
                let _ = rustix::fs::flock(&file, rustix::fs::FlockOperation::Unlock);
                false
            }
            Err(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_data_dir_is_locked_once() {
        let dir = tempfile::tempdir().unwrap();
        let lock = super::DataDirLock::acquire(dir.path()).unwrap();
        assert!(super::DataDirLock::acquire(dir.path()).is_err());
        drop(lock);
        assert!(!super::DataDirLock::held(dir.path()));
        assert!(super::DataDirLock::acquire(dir.path()).is_ok());
    }
}
