//! `vigild`'s log, kept in the store as well as printed: what the log endpoints of the
//! documents query (HSI's `/api/logs`, SentryShot's `/api/log/query`, picam's `/logs/api`).
//!
//! A tracing layer copies each event at `info` and above from Vigil's own crates (`warn` and
//! above from the others) into a bounded channel without ever waiting: when the store is slow
//! the newest entries are dropped and counted, the pipeline is never held up. A task writes
//! them to the store in batches, and removes entries older than the retention.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing::{Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use vigil_core::{
    Batch, CameraId, Clocks, IdGenerator, LogEntry, LogId, LogLevel, Mutation, RealClocks, Store,
    Timestamp,
};

/// How long log entries are kept.
pub const LOG_RETENTION: Duration = Duration::from_secs(7 * 86_400);

/// One event, as the layer caught it.
#[derive(Debug)]
struct Caught {
    time: Timestamp,
    level: LogLevel,
    source: String,
    camera: Option<String>,
    message: String,
}

/// The entries caught so far, waiting for [`LogCapture::run`] to write them.
pub struct LogCapture {
    rx: Mutex<Option<mpsc::Receiver<Caught>>>,
    dropped: Arc<AtomicU64>,
}

struct StoreLayer {
    tx: mpsc::Sender<Caught>,
    clocks: RealClocks,
    dropped: Arc<AtomicU64>,
}

#[derive(Default)]
struct Fields {
    message: String,
    camera: Option<String>,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message.push_str(value),
            "camera" => self.camera = Some(value.to_owned()),
            n => {
                let _ = write!(self.rest, " {n}={value}");
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            "camera" => self.camera = Some(format!("{value:?}").trim_matches('"').to_owned()),
            n => {
                let _ = write!(self.rest, " {n}={value:?}");
            }
        }
    }
}

/// The source of an event: the last part of its module path (`recorder`, `supervisor`),
/// `http` for the server, `vigild` for the daemon itself (and programs built on it).
fn source_of(target: &str) -> String {
    if target.starts_with("vigil_http") {
        return "http".to_owned();
    }
    if target == "vigil_cli::daemon" {
        return "vigild".to_owned();
    }
    target.rsplit("::").next().unwrap_or(target).to_owned()
}

impl<S: Subscriber> Layer<S> for StoreLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let ours = meta.target().starts_with("vigil");
        let level = *meta.level();
        let wanted = if ours {
            level <= Level::INFO
        } else {
            level <= Level::WARN
        };
        if !wanted {
            return;
        }
        let mut f = Fields::default();
        event.record(&mut f);
        let level = match level {
            Level::ERROR => LogLevel::Error,
            Level::WARN => LogLevel::Warning,
            Level::INFO => LogLevel::Info,
            _ => LogLevel::Debug,
        };
        let caught = Caught {
            time: self.clocks.realtime(),
            level,
            source: source_of(meta.target()),
            camera: f.camera,
            message: format!("{}{}", f.message, f.rest),
        };
        if self.tx.try_send(caught).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Installs the tracing subscriber (`RUST_LOG` filters what is printed; `info` by default)
/// with the layer that copies events for the store.
pub fn init_logging_captured() -> LogCapture {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (tx, rx) = mpsc::channel(4096);
    let dropped = Arc::new(AtomicU64::new(0));
    let layer = StoreLayer {
        tx,
        clocks: RealClocks::default(),
        dropped: dropped.clone(),
    };
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                // Colours for a terminal only: not into a file or the journal.
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
                .with_filter(filter),
        )
        .with(layer)
        .init();
    LogCapture {
        rx: Mutex::new(Some(rx)),
        dropped,
    }
}

impl LogCapture {
    /// Writes the caught entries to `store` until the process ends: in batches of up to 256,
    /// at least once a second, and drops entries older than [`LOG_RETENTION`] every hour.
    pub async fn run(&self, store: Arc<dyn Store>, ids: Arc<IdGenerator>) {
        let Some(mut rx) = self.rx.lock().ok().and_then(|mut r| r.take()) else {
            return;
        };
        let clocks = RealClocks::default();
        let mut last_trim: Option<std::time::Instant> = None;
        let mut buf = Vec::new();
        loop {
            let n = tokio::time::timeout(Duration::from_secs(1), rx.recv_many(&mut buf, 256)).await;
            if matches!(n, Ok(0)) {
                return; // The layer is gone.
            }
            let mut batch = Batch::new();
            for c in buf.drain(..) {
                batch.push(Mutation::PutLog(Box::new(LogEntry {
                    id: LogId(ids.next(c.time)),
                    time: c.time,
                    level: c.level,
                    source: c.source,
                    camera: c.camera.and_then(|s| CameraId::new(s).ok()),
                    message: c.message,
                })));
            }
            if last_trim.is_none_or(|t| t.elapsed() > Duration::from_secs(3600)) {
                last_trim = Some(std::time::Instant::now());
                batch.push(Mutation::DeleteLogsBefore(
                    clocks.realtime().saturating_sub(LOG_RETENTION),
                ));
            }
            if !batch.is_empty() && store.apply(batch).await.is_err() {
                // Not logged: that would feed this very loop.
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Entries lost because the store could not keep up.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}
