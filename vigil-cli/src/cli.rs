//! `vigil`'s command line: the clap definitions, where the connection settings come from, and
//! the dispatch to [`crate::remote`] (commands that talk to vigild) and [`crate::offline`]
//! (commands that work on files).
//!
//! Connection settings are taken, each on its own, from the flags (`--url`, `--user`,
//! `--password`, `--api-key`), else the environment (`VIGIL_URL`, `VIGIL_USER`,
//! `VIGIL_PASSWORD`, `VIGIL_API_KEY`), else the config file (`--config`, `VIGIL_CLI_CONFIG`,
//! or `$XDG_CONFIG_HOME/vigil/cli.toml`, `~/.config/vigil/cli.toml`):
//!
//! ```toml
//! url = "http://nvr.lan:5000"
//! user = "admin"
//! password = "..."        # or api_key = "vk_..."
//! ```
//!
//! Exit codes (also in `vigil --help`): 0 success, 1 other failure, 2 bad input (a usage error
//! or a request vigild refused as malformed), 3 not found, 4 unauthorized or forbidden,
//! 5 vigild unreachable, 6 vigild busy (rate limited or not ready).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

use crate::client::{CliError, CliResult, Client, Credentials, Failure};
use crate::remote::{self, Format};

const CONNECTION: &str = "Connection (for the commands that talk to vigild)";

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  any other failure (a server error, a file that cannot be written)
  2  bad input: a usage error, a value that cannot be parsed, or a request vigild refused
     as malformed (HTTP 400, 405, 409, 413, 415, 416, 422)
  3  not found (HTTP 404, 410)
  4  unauthorized or forbidden (HTTP 401, 403)
  5  vigild unreachable (connection refused, unknown host, timeout, TLS, a proxy's 502/504,
     a download or live feed cut short)
  6  vigild busy: rate limited or not ready (HTTP 429, 503); try again later

Connection settings come from the flags, else VIGIL_URL, VIGIL_USER, VIGIL_PASSWORD and
VIGIL_API_KEY, else the config file (--config, VIGIL_CLI_CONFIG, ~/.config/vigil/cli.toml).";

/// Script and inspect a Vigil NVR: talk to a running vigild, or work on its files offline.
#[derive(Parser, Debug)]
#[command(name = "vigil", version, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(flatten)]
    conn: Connection,
    /// Print JSON for scripts instead of tables (one object per line for live feeds).
    #[arg(long, global = true, help_heading = "Output")]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Debug, Default)]
struct Connection {
    /// vigild's address [default: http://127.0.0.1:5000].
    #[arg(long, global = true, help_heading = CONNECTION, env = "VIGIL_URL")]
    url: Option<String>,
    /// Account to log in as.
    #[arg(long, global = true, help_heading = CONNECTION, env = "VIGIL_USER")]
    user: Option<String>,
    /// Its password (asked for on a terminal when a user is given without one).
    #[arg(long, global = true, help_heading = CONNECTION, env = "VIGIL_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// An API key instead of a user and password.
    #[arg(long, global = true, help_heading = CONNECTION, env = "VIGIL_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// The config file with url, user, password or api_key.
    #[arg(long, global = true, help_heading = CONNECTION, env = "VIGIL_CLI_CONFIG")]
    config: Option<PathBuf>,
}

/// The config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    url: Option<String>,
    user: Option<String>,
    password: Option<String>,
    api_key: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// vigild's version, uptime and storage, and every camera's state.
    Status,
    /// List, add, remove, enable and disable cameras.
    Cameras {
        #[command(subcommand)]
        cmd: CamerasCmd,
    },
    /// List, show, review, delete and follow events.
    Events {
        #[command(subcommand)]
        cmd: EventsCmd,
    },
    /// Save an event's best snapshot (JPEG).
    Snapshot {
        /// The event's id.
        event: String,
        /// Where to write it (`-` for standard output) [default: EVENT.jpg].
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Draw the object's box and label on it.
        #[arg(long)]
        bbox: bool,
    },
    /// Save a camera's newest frame (JPEG).
    Latest {
        /// The camera.
        camera: String,
        /// Where to write it (`-` for standard output) [default: CAMERA-TIME.jpg].
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Scale it to this height in pixels.
        #[arg(long)]
        height: Option<u32>,
    },
    /// Export an MP4 clip of an event, or of a camera between two times.
    Clip(ClipArgs),
    /// List and download recorded segments.
    Recordings {
        #[command(subcommand)]
        cmd: RecordingsCmd,
    },
    /// Manage accounts (admins).
    Accounts {
        #[command(subcommand)]
        cmd: AccountsCmd,
    },
    /// Manage API keys (admins).
    Keys {
        #[command(subcommand)]
        cmd: KeysCmd,
    },
    /// Query vigild's log, or follow it live.
    Logs(LogsArgs),
    /// Run a detector on an image file, print what it found and write the image with boxes.
    Detect(crate::offline::DetectArgs),
    /// Fetch, list and run detection models.
    Model {
        #[command(subcommand)]
        cmd: ModelCmd,
    },
    /// Check that a data directory's store and files agree; optionally repair them.
    Check(crate::offline::CheckArgs),
    /// Measure the detector backends on this machine.
    Bench(crate::offline::BenchArgs),
}

#[derive(Subcommand, Debug)]
enum CamerasCmd {
    /// Every camera with its status.
    List,
    /// One camera's settings and status.
    Show {
        /// The camera.
        camera: String,
    },
    /// Add a camera.
    Add {
        /// Its name (the id is made from it: lower case, `_` for spaces).
        name: String,
        /// Its stream: rtsp://[user:pass@]host[:port]/path, file:PATH (looped), or
        /// synthetic:[WxH@FPS] (a generated scene).
        #[arg(value_name = "URL")]
        source: String,
        /// A second, smaller stream for detection.
        #[arg(long)]
        detect_url: Option<String>,
        /// Recording: continuous, events or off.
        #[arg(long, value_parser = ["continuous", "events", "off"])]
        record: Option<String>,
        /// Object detection off (motion only).
        #[arg(long)]
        no_detect: bool,
        /// Add it switched off.
        #[arg(long)]
        disabled: bool,
    },
    /// Remove a camera (its recordings stay).
    Remove {
        /// The camera.
        camera: String,
    },
    /// Switch a camera on.
    Enable {
        /// The camera.
        camera: String,
    },
    /// Switch a camera off (it neither records nor detects).
    Disable {
        /// The camera.
        camera: String,
    },
}

#[derive(Args, Debug, Clone)]
struct EventFilterArgs {
    /// Only these cameras (repeat or separate with commas).
    #[arg(long = "camera", value_delimiter = ',')]
    cameras: Vec<String>,
    /// Only these labels (person, car...).
    #[arg(long = "label", value_delimiter = ',')]
    labels: Vec<String>,
    /// Only events that entered these zones.
    #[arg(long = "zone", value_delimiter = ',')]
    zones: Vec<String>,
}

#[derive(Subcommand, Debug)]
enum EventsCmd {
    /// Events, newest first, one page at a time.
    List {
        #[command(flatten)]
        filter: EventFilterArgs,
        /// Started at or after: a time (2026-12-01T08:00:00Z, 2026-12-01, epoch seconds) or an
        /// age (30m, 2h, 7d).
        #[arg(long)]
        after: Option<String>,
        /// Started before (the same forms).
        #[arg(long)]
        before: Option<String>,
        /// Only reviewed events.
        #[arg(long, conflicts_with = "unreviewed")]
        reviewed: bool,
        /// Only events not yet reviewed.
        #[arg(long)]
        unreviewed: bool,
        /// Only events still going on.
        #[arg(long)]
        in_progress: bool,
        /// Lowest top score (0 to 1).
        #[arg(long)]
        min_score: Option<f32>,
        /// Events per page (1 to 1000).
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// The page after this cursor (printed under a full page).
        #[arg(long)]
        cursor: Option<String>,
    },
    /// One event.
    Show {
        /// The event's id.
        id: String,
    },
    /// Mark an event reviewed.
    Review {
        /// The event's id.
        id: String,
        /// Mark it not reviewed instead.
        #[arg(long)]
        undo: bool,
    },
    /// Delete an event.
    Delete {
        /// The event's id.
        id: String,
    },
    /// Events live as they start, change and end, over vigild's WebSocket.
    Follow {
        #[command(flatten)]
        filter: EventFilterArgs,
        /// Stop after this many lines.
        #[arg(long)]
        count: Option<u64>,
    },
}

#[derive(Args, Debug)]
struct ClipArgs {
    /// The camera (with --start and --end).
    #[arg(required_unless_present = "event", conflicts_with = "event")]
    camera: Option<String>,
    /// The start: a time or an age (see `events list --after`).
    #[arg(long, requires = "camera")]
    start: Option<String>,
    /// The end: a time or an age [default: now].
    #[arg(long, requires = "start")]
    end: Option<String>,
    /// An event's clip (with its camera's pre- and post-capture) instead.
    #[arg(long)]
    event: Option<String>,
    /// Where to write it (`-` for standard output) [default: a name from the camera and times].
    #[arg(short, long)]
    output: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum RecordingsCmd {
    /// Recorded segments, newest first.
    List {
        /// Only these cameras.
        #[arg(long = "camera", value_delimiter = ',')]
        cameras: Vec<String>,
        /// Ending after: a time or an age.
        #[arg(long)]
        after: Option<String>,
        /// Starting before: a time or an age.
        #[arg(long)]
        before: Option<String>,
        /// continuous, event or clip.
        #[arg(long, value_parser = ["continuous", "event", "clip"])]
        kind: Option<String>,
        /// Segments per page (1 to 1000).
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// The page after this cursor.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Download one segment's MP4.
    Download {
        /// The recording's id.
        id: String,
        /// Where to write it (`-` for standard output) [default: the segment's file name].
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum AccountsCmd {
    /// Every account.
    List,
    /// Add an account, or set an existing one's role and password. The new password is read
    /// from VIGIL_NEW_PASSWORD, else standard input (asked for on a terminal).
    Add {
        /// Its login name.
        username: String,
        /// admin or viewer.
        #[arg(long, default_value = "viewer", value_parser = ["admin", "viewer"])]
        role: String,
    },
    /// Remove an account (by name or id).
    Remove {
        /// The account.
        username: String,
    },
    /// Change your own password (the current one is --password; the new one is read as for
    /// `add`).
    Passwd,
}

#[derive(Subcommand, Debug)]
enum KeysCmd {
    /// Every API key (never the keys themselves).
    List,
    /// Make an API key; it is printed this once.
    Create {
        /// What it is for (home-assistant, backup-script...).
        name: String,
        /// admin or viewer [default: your account's].
        #[arg(long, value_parser = ["admin", "viewer"])]
        role: Option<String>,
    },
    /// Revoke an API key.
    Revoke {
        /// Its id (from `keys list`).
        id: String,
    },
}

#[derive(Args, Debug)]
struct LogsArgs {
    /// Only these levels: debug, info, warning, error.
    #[arg(long = "level", value_delimiter = ',')]
    levels: Vec<String>,
    /// Only these sources (app, recorder, detector...).
    #[arg(long = "source", value_delimiter = ',')]
    sources: Vec<String>,
    /// Only entries about these cameras.
    #[arg(long = "camera", value_delimiter = ',')]
    cameras: Vec<String>,
    /// At or after: a time or an age.
    #[arg(long)]
    after: Option<String>,
    /// Before: a time or an age.
    #[arg(long)]
    before: Option<String>,
    /// Only entries whose message holds this text.
    #[arg(long)]
    search: Option<String>,
    /// Entries per page (1 to 1000).
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// The page after this cursor.
    #[arg(long)]
    cursor: Option<String>,
    /// Follow the log live instead.
    #[arg(short, long)]
    follow: bool,
    /// With --follow: stop after this many entries.
    #[arg(long, requires = "follow")]
    count: Option<u64>,
}

#[derive(Subcommand, Debug)]
enum ModelCmd {
    /// Downloads YOLOv8 weights (candle's safetensors from Hugging Face), checks their
    /// SHA-256 and that they load, and prints the path to give `vigild --model`.
    Fetch {
        /// yolov8n, yolov8s, yolov8m, yolov8l or yolov8x.
        name: String,
        /// Directory to put the file in.
        #[arg(long, env = "VIGIL_MODEL_DIR", default_value = "models")]
        dir: PathBuf,
        /// Where the files are (the file name is appended).
        #[arg(long, env = "VIGIL_MODEL_BASE_URL", default_value = crate::fetch::DEFAULT_BASE_URL)]
        base_url: String,
        /// Expected SHA-256 in hex (by default the one the server states).
        #[arg(long)]
        sha256: Option<String>,
        /// Download again even when the file is there.
        #[arg(long)]
        force: bool,
    },
    /// The models that can be fetched, and those in the model directory.
    List {
        /// The model directory.
        #[arg(long, env = "VIGIL_MODEL_DIR", default_value = "models")]
        dir: PathBuf,
    },
    /// Runs a YOLOv8 network raw: reads the tensor `input` ([1, 3, H, W], f32) from a
    /// safetensors file and writes the head output `output` ([1, 84, N], f32, before NMS), so
    /// the model can be compared with another implementation. The size (n to x) comes from
    /// the weights.
    Run {
        /// Weights (safetensors; ultralytics' or candle's names).
        #[arg(long)]
        model: PathBuf,
        /// Safetensors file with the tensor `input`.
        #[arg(long)]
        input: PathBuf,
        /// Where to write the safetensors file with the tensor `output`.
        #[arg(long)]
        output: PathBuf,
    },
}

/// Runs `vigil` with the process's arguments; the exit code says how it went.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil: error: {e}");
            ExitCode::from(e.kind.exit_code())
        }
    }
}

fn config_path(flag: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = flag {
        return Some(p.to_owned());
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    let p = base.join("vigil").join("cli.toml");
    p.exists().then_some(p)
}

fn file_settings(path: Option<&Path>) -> CliResult<FileSettings> {
    let Some(p) = config_path(path) else {
        return Ok(FileSettings::default());
    };
    let text = std::fs::read_to_string(&p)
        .map_err(|e| CliError::bad_input(format!("cannot read {}: {e}", p.display())))?;
    let settings: FileSettings = crate::config::parse_toml(&p.display().to_string(), &text)
        .map_err(|e| CliError::bad_input(e.to_string()))?;
    if settings.password.is_some() || settings.api_key.is_some() {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&p).map_or(0, |m| m.permissions().mode());
        if mode & 0o077 != 0 {
            eprintln!(
                "vigil: warning: {} holds a secret and others can read it: chmod 600 it",
                p.display()
            );
        }
    }
    Ok(settings)
}

/// The client the connection settings make.
fn client(conn: &Connection) -> CliResult<Client> {
    let file = file_settings(conn.config.as_deref())?;
    let url = conn
        .url
        .clone()
        .or(file.url)
        .unwrap_or_else(|| "http://127.0.0.1:5000".to_owned());
    // Credentials come as a group from the first place that has any (flags and environment,
    // then the file), so a --user never goes out with another account's password from the
    // file, nor is overridden by a key there. Within a group, a user wins over a key.
    let password_for = |user: String, password: Option<String>| -> CliResult<Credentials> {
        let password = match password {
            Some(p) => p,
            None => crate::offline::read_secret(&format!("password for {user}: "))?,
        };
        Ok(Credentials::Password { user, password })
    };
    let creds = match (&conn.user, &conn.api_key) {
        (Some(user), _) => {
            let from_file = file.password.filter(|_| file.user.as_ref() == Some(user));
            password_for(user.clone(), conn.password.clone().or(from_file))?
        }
        (None, Some(k)) => Credentials::ApiKey(k.clone()),
        (None, None) => match (file.user, file.api_key) {
            (Some(user), _) => password_for(user, file.password)?,
            (None, Some(k)) => Credentials::ApiKey(k),
            (None, None) => Credentials::None,
        },
    };
    Client::new(&url, creds)
}

/// A time given on the command line, as epoch seconds: a time (`2026-12-01T08:00:00Z`, with
/// or without `Z`, then UTC), a date (its midnight UTC), epoch seconds, an age (`90s`, `30m`,
/// `2h`, `7d`, `1w`: that long ago), or `now`.
pub fn parse_time(flag: &str, v: &str) -> CliResult<f64> {
    let now = jiff::Timestamp::now();
    let bad = || {
        CliError::bad_input(format!(
            "{flag} {v:?}: expected a time (2026-12-01T08:00:00Z, 2026-12-01, epoch seconds), \
             an age (30m, 2h, 7d) or now"
        ))
    };
    let v = v.trim();
    if v == "now" {
        return Ok(now.as_microsecond() as f64 / 1e6);
    }
    if let Ok(secs) = v.parse::<f64>() {
        return if secs.is_finite() && secs >= 0.0 {
            Ok(secs)
        } else {
            Err(bad())
        };
    }
    if let Some(unit) = v.chars().last().filter(char::is_ascii_alphabetic) {
        let n: Option<f64> = v[..v.len() - 1].parse().ok().filter(|n: &f64| *n >= 0.0);
        let mult = match unit {
            's' => Some(1.0),
            'm' => Some(60.0),
            'h' => Some(3600.0),
            'd' => Some(86_400.0),
            'w' => Some(604_800.0),
            _ => None,
        };
        if let (Some(n), Some(m)) = (n, mult) {
            return Ok((now.as_microsecond() as f64 / 1e6 - n * m).max(0.0));
        }
    }
    if let Ok(t) = v.parse::<jiff::Timestamp>() {
        return Ok(t.as_microsecond() as f64 / 1e6);
    }
    if let Ok(dt) = v.parse::<jiff::civil::DateTime>() {
        let t = dt.to_zoned(jiff::tz::TimeZone::UTC).map_err(|_| bad())?;
        return Ok(t.timestamp().as_microsecond() as f64 / 1e6);
    }
    if let Ok(d) = v.parse::<jiff::civil::Date>() {
        let t = d.to_zoned(jiff::tz::TimeZone::UTC).map_err(|_| bad())?;
        return Ok(t.timestamp().as_microsecond() as f64 / 1e6);
    }
    Err(bad())
}

fn opt_time(flag: &str, v: &Option<String>) -> CliResult<Option<f64>> {
    v.as_deref().map(|v| parse_time(flag, v)).transpose()
}

fn limit(flag: &str, n: u32) -> CliResult<u32> {
    if (1..=1000).contains(&n) {
        Ok(n)
    } else {
        Err(CliError::bad_input(format!(
            "{flag} {n}: must be within 1..=1000"
        )))
    }
}

fn event_filter(a: &EventFilterArgs) -> remote::EventFilter {
    remote::EventFilter {
        cameras: a.cameras.clone(),
        labels: a.labels.clone(),
        zones: a.zones.clone(),
        limit: 20,
        ..Default::default()
    }
}

/// The new password of `accounts add` and `passwd`.
fn new_password() -> CliResult<String> {
    use std::io::IsTerminal;
    let p = match std::env::var("VIGIL_NEW_PASSWORD") {
        Ok(p) => p,
        Err(_) if std::io::stdin().is_terminal() => {
            let p = crate::offline::read_secret("new password: ")?;
            if crate::offline::read_secret("again: ")? != p {
                return Err(CliError::bad_input("the two passwords differ"));
            }
            p
        }
        Err(_) => crate::offline::read_secret("new password: ")?,
    };
    if p.is_empty() {
        return Err(CliError::bad_input("the new password is empty"));
    }
    Ok(p)
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> CliResult<()> {
    let f = if cli.json {
        Format::Json
    } else {
        Format::Human
    };
    let conn = &cli.conn;
    match cli.cmd {
        Cmd::Status => remote::status(&client(conn)?, f),
        Cmd::Cameras { cmd } => {
            let c = client(conn)?;
            match cmd {
                CamerasCmd::List => remote::cameras_list(&c, f),
                CamerasCmd::Show { camera } => remote::cameras_show(&c, f, &camera),
                CamerasCmd::Add {
                    name,
                    source,
                    detect_url,
                    record,
                    no_detect,
                    disabled,
                } => remote::cameras_add(
                    &c,
                    f,
                    &remote::NewCamera {
                        name,
                        url: source,
                        detect_url,
                        disabled,
                        detect: no_detect.then_some(false),
                        record,
                    },
                ),
                CamerasCmd::Remove { camera } => remote::cameras_remove(&c, f, &camera),
                CamerasCmd::Enable { camera } => remote::cameras_enable(&c, f, &camera, true),
                CamerasCmd::Disable { camera } => remote::cameras_enable(&c, f, &camera, false),
            }
        }
        Cmd::Events { cmd } => match cmd {
            EventsCmd::List {
                filter,
                after,
                before,
                reviewed,
                unreviewed,
                in_progress,
                min_score,
                limit: n,
                cursor,
            } => {
                if let Some(s) = min_score.filter(|s| !(0.0..=1.0).contains(s)) {
                    return Err(CliError::bad_input(format!(
                        "--min-score {s}: must be within 0..=1"
                    )));
                }
                let filter = remote::EventFilter {
                    after: opt_time("--after", &after)?,
                    before: opt_time("--before", &before)?,
                    reviewed: match (reviewed, unreviewed) {
                        (true, _) => Some(true),
                        (_, true) => Some(false),
                        _ => None,
                    },
                    in_progress: in_progress.then_some(true),
                    min_score,
                    limit: limit("--limit", n)?,
                    cursor,
                    ..event_filter(&filter)
                };
                remote::events_list(&client(conn)?, f, &filter)
            }
            EventsCmd::Show { id } => remote::events_show(&client(conn)?, f, &id),
            EventsCmd::Review { id, undo } => remote::events_review(&client(conn)?, f, &id, !undo),
            EventsCmd::Delete { id } => remote::events_delete(&client(conn)?, f, &id),
            EventsCmd::Follow { filter, count } => {
                remote::events_follow(&client(conn)?, f, &event_filter(&filter), count)
            }
        },
        Cmd::Snapshot {
            event,
            output,
            bbox,
        } => remote::snapshot(&client(conn)?, f, &event, output.as_deref(), bbox),
        Cmd::Latest {
            camera,
            output,
            height,
        } => remote::latest(&client(conn)?, f, &camera, output.as_deref(), height),
        Cmd::Clip(a) => {
            let what = match (a.event, a.camera) {
                (Some(id), _) => remote::ClipOf::Event(id),
                (None, Some(camera)) => {
                    let start = a.start.as_deref().ok_or_else(|| {
                        CliError::bad_input("a camera's clip needs --start (and --end)")
                    })?;
                    remote::ClipOf::Range {
                        camera,
                        start: parse_time("--start", start)?,
                        end: parse_time("--end", a.end.as_deref().unwrap_or("now"))?,
                    }
                }
                (None, None) => {
                    return Err(CliError::bad_input(
                        "give a CAMERA with --start, or --event",
                    ))
                }
            };
            remote::clip(&client(conn)?, f, &what, a.output.as_deref())
        }
        Cmd::Recordings { cmd } => match cmd {
            RecordingsCmd::List {
                cameras,
                after,
                before,
                kind,
                limit: n,
                cursor,
            } => {
                let r = remote::RecordingFilter {
                    cameras,
                    after: opt_time("--after", &after)?,
                    before: opt_time("--before", &before)?,
                    kind,
                    limit: limit("--limit", n)?,
                    cursor,
                };
                remote::recordings_list(&client(conn)?, f, &r)
            }
            RecordingsCmd::Download { id, output } => {
                remote::recordings_download(&client(conn)?, f, &id, output.as_deref())
            }
        },
        Cmd::Accounts { cmd } => {
            let c = client(conn)?;
            match cmd {
                AccountsCmd::List => remote::accounts_list(&c, f),
                AccountsCmd::Add { username, role } => {
                    remote::accounts_add(&c, f, &username, &role, &new_password()?)
                }
                AccountsCmd::Remove { username } => remote::accounts_remove(&c, f, &username),
                AccountsCmd::Passwd => {
                    let current = c
                        .password()
                        .ok_or_else(|| {
                            CliError::bad_input("passwd needs --user (and the current --password)")
                        })?
                        .to_owned();
                    remote::accounts_passwd(&c, f, &current, &new_password()?)
                }
            }
        }
        Cmd::Keys { cmd } => {
            let c = client(conn)?;
            match cmd {
                KeysCmd::List => remote::keys_list(&c, f),
                KeysCmd::Create { name, role } => {
                    remote::keys_create(&c, f, &name, role.as_deref())
                }
                KeysCmd::Revoke { id } => remote::keys_revoke(&c, f, &id),
            }
        }
        Cmd::Logs(a) => {
            let l = remote::LogFilter {
                levels: a.levels,
                sources: a.sources,
                cameras: a.cameras,
                after: opt_time("--after", &a.after)?,
                before: opt_time("--before", &a.before)?,
                search: a.search,
                limit: limit("--limit", a.limit)?,
                cursor: a.cursor,
            };
            let c = client(conn)?;
            if a.follow {
                remote::logs_follow(&c, f, &l, a.count)
            } else {
                remote::logs(&c, f, &l)
            }
        }
        Cmd::Detect(a) => crate::offline::detect(&a, f),
        Cmd::Model { cmd } => match cmd {
            ModelCmd::Fetch {
                name,
                dir,
                base_url,
                sha256,
                force,
            } => crate::offline::model_fetch(
                crate::fetch::FetchRequest {
                    name,
                    dir,
                    base_url,
                    sha256,
                    force,
                },
                f,
            ),
            ModelCmd::List { dir } => crate::offline::model_list(&dir, f),
            ModelCmd::Run {
                model,
                input,
                output,
            } => crate::offline::model_run(&model, &input, &output),
        },
        Cmd::Check(a) => crate::offline::check(&a, f),
        Cmd::Bench(a) => crate::offline::bench(&a, f),
    }
}

impl From<crate::config::ConfigError> for CliError {
    fn from(e: crate::config::ConfigError) -> CliError {
        CliError::new(Failure::BadInput, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    /// docs/cli.md names every command, so a new one cannot be added without its entry.
    #[test]
    fn the_reference_names_every_command() {
        use clap::CommandFactory;
        fn walk(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
            for sub in cmd.get_subcommands().filter(|c| c.get_name() != "help") {
                let p = format!("{path} {}", sub.get_name());
                if sub.has_subcommands() {
                    walk(sub, &p, out);
                } else {
                    out.push(p);
                }
            }
        }
        let mut all = Vec::new();
        walk(&Cli::command(), "vigil", &mut all);
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/cli.md"))
            .unwrap_or_default();
        let missing: Vec<&String> = all
            .iter()
            .filter(|c| !doc.contains(&format!("`{c}")))
            .collect();
        assert!(all.len() > 25, "{all:?}");
        assert!(missing.is_empty(), "docs/cli.md lacks {missing:?}");
    }

    #[test]
    fn times_take_every_form() {
        assert_eq!(parse_time("--after", "1700000000").ok(), Some(1.7e9));
        assert_eq!(
            parse_time("--after", "2026-12-01").ok(),
            Some(1_796_083_200.0)
        );
        assert_eq!(
            parse_time("--after", "2026-12-01T08:00:00Z").ok(),
            Some(1_796_112_000.0)
        );
        assert_eq!(
            parse_time("--after", "2026-12-01T08:00:00").ok(),
            Some(1_796_112_000.0)
        );
        let now = jiff::Timestamp::now().as_second() as f64;
        let ago = parse_time("--after", "2h").unwrap_or(0.0);
        assert!((now - 7200.0 - ago).abs() < 5.0, "{ago}");
        let e = parse_time("--after", "yesterday").err().map(|e| e.kind);
        assert_eq!(e, Some(Failure::BadInput));
        assert!(parse_time("--after", "-5").is_err());
    }
}
