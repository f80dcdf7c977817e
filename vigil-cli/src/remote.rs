//! The commands of `vigil` that talk to a running vigild. Each prints a table (or a line) for
//! people and the server's JSON for scripts (`--json`); errors come back as [`CliError`]s,
//! whose kind picks the exit code.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::client::{enc, query, CliError, CliResult, Client};
use crate::output::{bytes, cell, duration, time, Progress, Table};

/// How results are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Tables and lines for people.
    Human,
    /// The server's JSON, for scripts (one object per line for live feeds).
    Json,
}

/// Prints `v` as pretty JSON on standard output.
pub fn print_json(v: &Value) -> CliResult<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v).map_err(|e| CliError::other(e.to_string()))?;
    writeln!(out)?;
    Ok(())
}

/// Prints the server's answer for scripts, or `say()` for people.
fn report(f: Format, v: &Value, say: impl FnOnce() -> String) -> CliResult<()> {
    match f {
        Format::Json => print_json(v),
        Format::Human => {
            println!("{}", say());
            Ok(())
        }
    }
}

/// Under a table of `shown` items: how to ask for the next page, when there is one.
fn next_page(v: &Value, shown: usize) {
    if let Some(next) = v["next_cursor"].as_str() {
        eprintln!(
            "{shown} of {} shown; the next page: --cursor {next}",
            cell(&v["total"])
        );
    }
}

/// Frames per second to a tenth.
fn fps(v: &Value) -> String {
    v.as_f64().map_or_else(|| cell(v), |f| format!("{f:.1}"))
}

fn items<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// `vigil status`: the server's version and uptime, storage, and every camera's state.
pub fn status(c: &Client, f: Format) -> CliResult<()> {
    let version = {
        let mut a = c.open("/api/version")?;
        let mut s = String::new();
        a.reader().read_to_string(&mut s)?;
        s.trim().to_owned()
    };
    let st = c.get("/status")?;
    let cams = c.get("/api/cameras")?;
    // Storage needs a recording system; a bare API server has none.
    let storage = c.get("/api/system/storage").ok();
    if f == Format::Json {
        return print_json(&json!({
            "version": version,
            "status": st,
            "cameras": cams["cameras"],
            "storage": storage,
        }));
    }
    println!(
        "vigild {version} at {}: {}, up {}, detector {}",
        c.url(""),
        cell(&st["status"]),
        duration(st["uptime_seconds"].as_f64().unwrap_or(0.0)),
        cell(&st["model"]),
    );
    if let Some(s) = &storage {
        println!(
            "storage: {} used of {} ({}%), {} free",
            bytes(s["used_bytes"].as_u64().unwrap_or(0)),
            bytes(s["total_bytes"].as_u64().unwrap_or(0)),
            cell(&s["percent"]),
            bytes(s["free_bytes"].as_u64().unwrap_or(0)),
        );
    }
    let mut t = Table::new(&["CAMERA", "STATUS", "FPS", "EVENTS", "LAST EVENT", "ERROR"]);
    for cam in items(&cams, "cameras") {
        let id = cam["id"].as_str().unwrap_or_default();
        let s = &st["cameras"][id];
        t.row(vec![
            id.to_owned(),
            cell(&cam["status"]),
            fps(&s["fps"]),
            cell(&s["detections"]),
            time(&s["last_detection"]),
            cell(&cam["error"]),
        ]);
    }
    t.print();
    Ok(())
}

// --- cameras

/// `vigil cameras list`.
pub fn cameras_list(c: &Client, f: Format) -> CliResult<()> {
    let v = c.get("/api/cameras")?;
    if f == Format::Json {
        return print_json(&v);
    }
    let mut t = Table::new(&["CAMERA", "STATUS", "FPS", "RECORD", "DETECT", "URL"]);
    for cam in items(&v, "cameras") {
        t.row(vec![
            cell(&cam["id"]),
            cell(&cam["status"]),
            fps(&cam["stream"]["fps"]),
            cell(&cam["record"]["mode"]),
            cell(&cam["detect"]["enabled"]),
            cell(&cam["url"]),
        ]);
    }
    t.print();
    Ok(())
}

/// `vigil cameras show NAME`.
pub fn cameras_show(c: &Client, f: Format, name: &str) -> CliResult<()> {
    let v = c.get(&format!("/api/cameras/{}", enc(name)))?;
    if f == Format::Json {
        return print_json(&v);
    }
    let mut t = Table::new(&["FIELD", "VALUE"]);
    let fields = [
        ("id", &v["id"]),
        ("name", &v["name"]),
        ("status", &v["status"]),
        ("enabled", &v["enabled"]),
        ("url", &v["url"]),
        ("detect url", &v["detect_url"]),
        ("fps", &json!(fps(&v["stream"]["fps"]))),
        ("record", &v["record"]["mode"]),
        ("detect", &v["detect"]["enabled"]),
        ("motion", &v["motion"]["enabled"]),
        ("last frame", &v["last_seen_at"]),
        ("error", &v["error"]),
    ];
    for (k, val) in fields {
        let shown = if k == "last frame" {
            time(val)
        } else {
            cell(val)
        };
        t.row(vec![k.to_owned(), shown]);
    }
    let zones: Vec<String> = items(&v, "zones")
        .iter()
        .filter_map(|z| z["name"].as_str().map(str::to_owned))
        .collect();
    t.row(vec!["zones".into(), cell(&json!(zones))]);
    t.print();
    Ok(())
}

/// What `vigil cameras add` sends.
#[derive(Debug, Clone)]
pub struct NewCamera {
    /// The camera's name (its id is made from it).
    pub name: String,
    /// Its source: `rtsp://...`, `file:PATH` or `synthetic:`.
    pub url: String,
    /// A second, smaller stream for detection.
    pub detect_url: Option<String>,
    /// Added switched off.
    pub disabled: bool,
    /// Object detection on or off.
    pub detect: Option<bool>,
    /// Recording mode: `continuous`, `events` or `off`.
    pub record: Option<String>,
}

/// `vigil cameras add`.
pub fn cameras_add(c: &Client, f: Format, n: &NewCamera) -> CliResult<()> {
    let mut body = json!({"name": n.name, "url": n.url});
    if let Some(d) = &n.detect_url {
        body["detect_url"] = json!(d);
    }
    if n.disabled {
        body["enabled"] = json!(false);
    }
    if let Some(d) = n.detect {
        body["detect"] = json!({"enabled": d});
    }
    if let Some(m) = &n.record {
        body["record"] = json!({"mode": m});
    }
    let v = c.json("POST", "/api/cameras", Some(&body))?;
    report(f, &v, || format!("added camera {}", cell(&v["id"])))
}

/// `vigil cameras remove NAME`.
pub fn cameras_remove(c: &Client, f: Format, name: &str) -> CliResult<()> {
    let v = c.json("DELETE", &format!("/api/cameras/{}", enc(name)), None)?;
    report(f, &v, || {
        format!("removed camera {name} (its recordings stay)")
    })
}

/// `vigil cameras enable|disable NAME`.
pub fn cameras_enable(c: &Client, f: Format, name: &str, on: bool) -> CliResult<()> {
    let v = c.json(
        "PATCH",
        &format!("/api/cameras/{}", enc(name)),
        Some(&json!({"enabled": on})),
    )?;
    report(f, &v, || {
        format!("camera {name} {}", if on { "enabled" } else { "disabled" })
    })
}

// --- events

/// The filters of `vigil events list` (times as the server takes them).
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Cameras (any of).
    pub cameras: Vec<String>,
    /// Labels (any of).
    pub labels: Vec<String>,
    /// Zones (any of).
    pub zones: Vec<String>,
    /// Started at or after (epoch seconds).
    pub after: Option<f64>,
    /// Started before (epoch seconds).
    pub before: Option<f64>,
    /// Reviewed or not.
    pub reviewed: Option<bool>,
    /// Still going on.
    pub in_progress: Option<bool>,
    /// Lowest top score.
    pub min_score: Option<f32>,
    /// Page size.
    pub limit: u32,
    /// The page after this cursor.
    pub cursor: Option<String>,
}

impl EventFilter {
    fn query(&self) -> String {
        let join = |v: &[String]| (!v.is_empty()).then(|| v.join(","));
        query([
            ("cameras", join(&self.cameras)),
            ("labels", join(&self.labels)),
            ("zones", join(&self.zones)),
            ("after", self.after.map(|t| t.to_string())),
            ("before", self.before.map(|t| t.to_string())),
            ("reviewed", self.reviewed.map(|r| u8::from(r).to_string())),
            (
                "in_progress",
                self.in_progress.map(|r| u8::from(r).to_string()),
            ),
            ("min_score", self.min_score.map(|s| s.to_string())),
            ("limit", Some(self.limit.to_string())),
            ("cursor", self.cursor.clone()),
        ])
    }

    /// Whether a live event passes the camera and label filters.
    fn passes(&self, e: &Value) -> bool {
        let any = |want: &[String], have: &str| want.is_empty() || want.iter().any(|w| w == have);
        any(&self.cameras, e["camera"].as_str().unwrap_or_default())
            && any(&self.labels, e["label"].as_str().unwrap_or_default())
            && (self.zones.is_empty()
                || items(e, "zones")
                    .iter()
                    .any(|z| self.zones.iter().any(|w| Some(w.as_str()) == z.as_str())))
    }
}

fn event_row(e: &Value) -> Vec<String> {
    let dur = match e["duration_seconds"].as_f64() {
        Some(d) if e["in_progress"].as_bool() != Some(true) => duration(d),
        _ => "ongoing".to_owned(),
    };
    vec![
        cell(&e["id"]),
        cell(&e["camera"]),
        cell(&e["label"]),
        e["top_score"]
            .as_f64()
            .map_or_else(|| "-".to_owned(), |s| format!("{s:.2}")),
        time(&e["start_time"]),
        dur,
        cell(&e["zones"]),
        cell(&e["reviewed"]),
    ]
}

const EVENT_HEADER: [&str; 8] = [
    "ID", "CAMERA", "LABEL", "SCORE", "START", "DURATION", "ZONES", "REVIEWED",
];

/// `vigil events list`.
pub fn events_list(c: &Client, f: Format, filter: &EventFilter) -> CliResult<()> {
    let v = c.get(&format!("/api/events{}", filter.query()))?;
    if f == Format::Json {
        return print_json(&v);
    }
    let mut t = Table::new(&EVENT_HEADER);
    for e in items(&v, "events") {
        t.row(event_row(e));
    }
    t.print();
    next_page(&v, t.len());
    Ok(())
}

/// `vigil events show ID`.
pub fn events_show(c: &Client, f: Format, id: &str) -> CliResult<()> {
    let e = c.get(&format!("/api/events/{}", enc(id)))?;
    if f == Format::Json {
        return print_json(&e);
    }
    let mut t = Table::new(&["FIELD", "VALUE"]);
    let rows: [(&str, String); 14] = [
        ("id", cell(&e["id"])),
        ("camera", cell(&e["camera"])),
        ("label", cell(&e["label"])),
        ("sub label", cell(&e["sub_label"])),
        ("top score", cell(&e["top_score"])),
        ("start", time(&e["start_time"])),
        ("end", time(&e["end_time"])),
        ("zones", cell(&e["zones"])),
        ("box", cell(&e["box"])),
        ("review", cell(&e["review_status"])),
        ("retained", cell(&e["retain_indefinitely"])),
        ("snapshot", cell(&e["snapshot_url"])),
        ("clip", cell(&e["clip_url"])),
        ("notes", cell(&e["notes"])),
    ];
    for (k, v) in rows {
        t.row(vec![k.to_owned(), v]);
    }
    t.print();
    Ok(())
}

/// `vigil events review ID`: marks it reviewed (or not).
pub fn events_review(c: &Client, f: Format, id: &str, reviewed: bool) -> CliResult<()> {
    let v = c.json(
        "PATCH",
        &format!("/api/events/{}", enc(id)),
        Some(&json!({"reviewed": reviewed})),
    )?;
    report(f, &v, || {
        format!(
            "event {id} marked {}",
            if reviewed { "reviewed" } else { "unreviewed" }
        )
    })
}

/// `vigil events delete ID`.
pub fn events_delete(c: &Client, f: Format, id: &str) -> CliResult<()> {
    let v = c.json("DELETE", &format!("/api/events/{}", enc(id)), None)?;
    // 204, no body: say what happened in the JSON too.
    let v = if v.is_null() {
        json!({"id": id, "deleted": true})
    } else {
        v
    };
    report(f, &v, || format!("deleted event {id}"))
}

/// `vigil events follow`: events as they start, change and end (and alerts), until vigild
/// closes the socket or the process is stopped. With `count`, stops after that many lines.
pub fn events_follow(
    c: &Client,
    f: Format,
    filter: &EventFilter,
    count: Option<u64>,
) -> CliResult<()> {
    let mut ws = c.websocket("/ws/events")?;
    eprintln!("following events at {} (Ctrl-C stops)", c.url(""));
    let mut seen = HashSet::new();
    let mut shown = 0u64;
    let mut out = std::io::stdout().lock();
    while count.is_none_or(|n| shown < n) {
        let Some(text) = ws.next_text()? else {
            return Err(CliError::new(
                crate::client::Failure::Unreachable,
                "vigild closed the event feed",
            ));
        };
        let Ok(msg) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let kind = msg["type"].as_str().unwrap_or_default();
        let data = &msg["data"];
        let line = match kind {
            "event" => {
                if !filter.passes(data) {
                    continue;
                }
                let id = cell(&data["id"]);
                // The feed sends each event as stored; an event first seen here is new
                // when it started moments ago, else one already going on.
                let fresh = data["start_time"]
                    .as_str()
                    .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                    .is_some_and(|t| jiff::Timestamp::now().duration_since(t).as_secs_f64() < 30.0);
                let what = if !data["end_time"].is_null() {
                    seen.remove(&id);
                    "end"
                } else if seen.insert(id.clone()) && fresh {
                    "start"
                } else {
                    "update"
                };
                format!(
                    "{}  {what:<6} {}  {} {}  {}  zones {}",
                    time(&data["start_time"]),
                    cell(&data["camera"]),
                    cell(&data["label"]),
                    data["top_score"]
                        .as_f64()
                        .map_or_else(|| "-".to_owned(), |s| format!("{s:.2}")),
                    id,
                    cell(&data["zones"]),
                )
            }
            "event_deleted" => format!("deleted {}", cell(&data["id"])),
            "alert" => {
                if !filter.passes(&data["event"]) {
                    continue;
                }
                format!(
                    "alert  {}  rule {}  event {}",
                    cell(&data["camera"]),
                    cell(&data["rule_name"]),
                    cell(&data["event_id"])
                )
            }
            _ => continue,
        };
        if f == Format::Json {
            writeln!(out, "{msg}")?;
        } else {
            writeln!(out, "{line}")?;
        }
        out.flush()?;
        shown += 1;
    }
    Ok(())
}

// --- media

/// Where a download goes: a file, or standard output for `-`.
pub enum Sink {
    /// Standard output.
    Stdout,
    /// A file, written under a temporary name and renamed when complete.
    File(PathBuf),
}

impl Sink {
    /// `-` is standard output; a directory gets the file `default` in it; anything else is
    /// the file's path.
    pub fn of(path: Option<&Path>, default: &str) -> Sink {
        match path {
            Some(p) if p == Path::new("-") => Sink::Stdout,
            Some(p) if p.is_dir() => Sink::File(p.join(default)),
            Some(p) => Sink::File(p.to_owned()),
            None => Sink::File(PathBuf::from(default)),
        }
    }
}

/// Downloads `path` into `sink`, with a progress bar when `progress`; returns the bytes
/// written. A file is complete or not there: it is written next to its name and renamed.
pub fn download(c: &Client, path: &str, sink: &Sink, progress: bool) -> CliResult<u64> {
    let mut a = c.open(path)?;
    let length = a.length;
    match sink {
        Sink::Stdout => {
            let mut out = std::io::stdout().lock();
            let n = copy(&mut a.reader(), &mut out, None)?;
            out.flush()?;
            Ok(n)
        }
        Sink::File(dest) => {
            let name = dest
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let part = dest.with_file_name(format!(".{name}.part"));
            let mut file = File::create(&part)
                .map_err(|e| CliError::other(format!("cannot write {}: {e}", part.display())))?;
            let mut bar = progress.then(|| Progress::new(&name, length));
            let r = copy(&mut a.reader(), &mut file, bar.as_mut())
                .and_then(|n| file.sync_all().map(|()| n).map_err(CliError::from));
            match r {
                Ok(n) => {
                    if let Some(b) = &mut bar {
                        b.finish();
                    }
                    if let Some(want) = length.filter(|&w| w != n) {
                        let _ = std::fs::remove_file(&part);
                        return Err(CliError::new(
                            crate::client::Failure::Unreachable,
                            format!("the download ended after {n} of {want} bytes"),
                        ));
                    }
                    std::fs::rename(&part, dest).map_err(|e| {
                        let _ = std::fs::remove_file(&part);
                        CliError::other(format!("cannot write {}: {e}", dest.display()))
                    })?;
                    Ok(n)
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&part);
                    Err(e)
                }
            }
        }
    }
}

fn copy(
    from: &mut impl Read,
    to: &mut impl Write,
    mut bar: Option<&mut Progress>,
) -> CliResult<u64> {
    let mut buf = vec![0u8; 64 << 10];
    let mut n = 0u64;
    loop {
        let k = match from.read(&mut buf) {
            Ok(0) => return Ok(n),
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(CliError::new(
                    crate::client::Failure::Unreachable,
                    format!("the download broke after {n} bytes: {e}"),
                ))
            }
        };
        to.write_all(&buf[..k])?;
        n += k as u64;
        if let Some(b) = bar.as_deref_mut() {
            b.add(k as u64);
        }
    }
}

/// Reports a finished download.
fn saved(f: Format, sink: &Sink, n: u64) -> CliResult<()> {
    let Sink::File(p) = sink else {
        return Ok(());
    };
    if f == Format::Json {
        return print_json(&json!({"path": p, "bytes": n}));
    }
    println!("{} ({})", p.display(), bytes(n));
    Ok(())
}

/// `vigil snapshot EVENT`: the event's best snapshot.
pub fn snapshot(
    c: &Client,
    f: Format,
    event: &str,
    out: Option<&Path>,
    bbox: bool,
) -> CliResult<()> {
    let sink = Sink::of(out, &format!("{event}.jpg"));
    let q = if bbox { "?bbox=1" } else { "" };
    let n = download(
        c,
        &format!("/api/events/{}/snapshot.jpg{q}", enc(event)),
        &sink,
        false,
    )?;
    saved(f, &sink, n)
}

/// `vigil latest CAMERA`: the camera's newest frame as a JPEG.
pub fn latest(
    c: &Client,
    f: Format,
    camera: &str,
    out: Option<&Path>,
    height: Option<u32>,
) -> CliResult<()> {
    let default = format!("{camera}-{}.jpg", jiff::Timestamp::now().as_second());
    let sink = Sink::of(out, &default);
    let q = query([("h", height.map(|h| h.to_string()))]);
    let n = download(
        c,
        &format!("/api/{}/latest.jpg{q}", enc(camera)),
        &sink,
        false,
    )?;
    saved(f, &sink, n)
}

/// What `vigil clip` cuts: an event's clip, or a camera's time range (epoch seconds).
pub enum ClipOf {
    /// The event's clip, with its camera's pre- and post-capture.
    Event(String),
    /// A range of a camera's recordings.
    Range {
        /// The camera.
        camera: String,
        /// Start, epoch seconds.
        start: f64,
        /// End, epoch seconds.
        end: f64,
    },
}

/// `vigil clip`: an MP4 of an event or of a time range, with a progress bar.
pub fn clip(c: &Client, f: Format, what: &ClipOf, out: Option<&Path>) -> CliResult<()> {
    let (path, default) = match what {
        ClipOf::Event(id) => (
            format!("/api/events/{}/clip.mp4", enc(id)),
            format!("{id}.mp4"),
        ),
        ClipOf::Range { camera, start, end } => {
            if end <= start {
                return Err(CliError::bad_input(format!(
                    "--end must be after --start ({end} is not after {start})"
                )));
            }
            (
                format!("/api/{}/start/{start}/end/{end}/clip.mp4", enc(camera)),
                format!("{camera}-{}-{}.mp4", *start as i64, *end as i64),
            )
        }
    };
    let sink = Sink::of(out, &default);
    let n = download(c, &path, &sink, true)?;
    saved(f, &sink, n)
}

// --- recordings

/// The filters of `vigil recordings list`.
#[derive(Debug, Clone, Default)]
pub struct RecordingFilter {
    /// Cameras (any of).
    pub cameras: Vec<String>,
    /// Ending after (epoch seconds).
    pub after: Option<f64>,
    /// Starting before (epoch seconds).
    pub before: Option<f64>,
    /// `continuous`, `event` or `clip`.
    pub kind: Option<String>,
    /// Page size.
    pub limit: u32,
    /// The page after this cursor.
    pub cursor: Option<String>,
}

/// `vigil recordings list`.
pub fn recordings_list(c: &Client, f: Format, r: &RecordingFilter) -> CliResult<()> {
    let q = query([
        (
            "cameras",
            (!r.cameras.is_empty()).then(|| r.cameras.join(",")),
        ),
        ("after", r.after.map(|t| t.to_string())),
        ("before", r.before.map(|t| t.to_string())),
        ("kind", r.kind.clone()),
        ("limit", Some(r.limit.to_string())),
        ("cursor", r.cursor.clone()),
    ]);
    let v = c.get(&format!("/api/recordings{q}"))?;
    if f == Format::Json {
        return print_json(&v);
    }
    let mut t = Table::new(&["ID", "CAMERA", "KIND", "START", "DURATION", "SIZE", "CODEC"]);
    for rec in items(&v, "recordings") {
        t.row(vec![
            cell(&rec["id"]),
            cell(&rec["camera"]),
            cell(&rec["kind"]),
            time(&rec["start_time"]),
            duration(rec["duration"].as_f64().unwrap_or(0.0)),
            bytes(rec["size_bytes"].as_u64().unwrap_or(0)),
            cell(&rec["codec"]),
        ]);
    }
    t.print();
    next_page(&v, t.len());
    Ok(())
}

/// `vigil recordings download ID`.
pub fn recordings_download(c: &Client, f: Format, id: &str, out: Option<&Path>) -> CliResult<()> {
    let rec = c.get(&format!("/api/recordings/{}", enc(id)))?;
    let default = format!("{}-{id}.mp4", rec["camera"].as_str().unwrap_or("recording"));
    let sink = Sink::of(out, &default);
    let n = download(c, &format!("/api/recordings/{}/file", enc(id)), &sink, true)?;
    saved(f, &sink, n)
}

// --- accounts and keys

/// `vigil accounts list`.
pub fn accounts_list(c: &Client, f: Format) -> CliResult<()> {
    let v = c.get("/api/accounts")?;
    if f == Format::Json {
        return print_json(&v);
    }
    let mut t = Table::new(&["ID", "USERNAME", "ROLE", "CREATED", "LAST LOGIN"]);
    if let Some(m) = v.as_object() {
        for a in m.values() {
            t.row(vec![
                cell(&a["id"]),
                cell(&a["username"]),
                cell(&a["role"]),
                time(&a["created_at"]),
                time(&a["last_login"]),
            ]);
        }
    }
    t.print();
    Ok(())
}

/// The id of the account named `who` (a username or an id).
fn account_id(c: &Client, who: &str) -> CliResult<String> {
    let v = c.get("/api/accounts")?;
    v.as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .find(|a| a["username"].as_str() == Some(who) || a["id"].as_str() == Some(who))
        .and_then(|a| a["id"].as_str().map(str::to_owned))
        .ok_or_else(|| {
            CliError::new(
                crate::client::Failure::NotFound,
                format!("no account {who:?}"),
            )
        })
}

/// `vigil accounts add USERNAME` (or a password change of an existing one, by an admin).
pub fn accounts_add(
    c: &Client,
    f: Format,
    username: &str,
    role: &str,
    password: &str,
) -> CliResult<()> {
    let id = account_id(c, username).ok();
    let mut body = json!({"username": username, "role": role, "plainPassword": password});
    if let Some(id) = &id {
        body["id"] = json!(id);
    }
    let v = c.json("PUT", "/api/account", Some(&body))?;
    report(f, &v, || {
        format!(
            "{} account {username} ({role})",
            if id.is_some() { "updated" } else { "added" }
        )
    })
}

/// `vigil accounts remove USERNAME`.
pub fn accounts_remove(c: &Client, f: Format, who: &str) -> CliResult<()> {
    let id = account_id(c, who)?;
    let v = c.json("DELETE", &format!("/api/account?id={}", enc(&id)), None)?;
    report(f, &v, || format!("removed account {who}"))
}

/// `vigil accounts passwd`: changes the caller's own password.
pub fn accounts_passwd(c: &Client, f: Format, current: &str, new: &str) -> CliResult<()> {
    let v = c.json(
        "POST",
        "/auth/set-password",
        Some(&json!({"current": current, "new": new})),
    )?;
    report(f, &v, || "password changed".to_owned())
}

/// `vigil keys list`.
pub fn keys_list(c: &Client, f: Format) -> CliResult<()> {
    let v = c.get("/api/keys")?;
    if f == Format::Json {
        return print_json(&v);
    }
    let mut t = Table::new(&["ID", "NAME", "ROLE", "PREFIX", "CREATED", "LAST USED"]);
    for k in items(&v, "keys") {
        t.row(vec![
            cell(&k["id"]),
            cell(&k["name"]),
            cell(&k["role"]),
            cell(&k["prefix"]),
            time(&k["created_at"]),
            time(&k["last_used"]),
        ]);
    }
    t.print();
    Ok(())
}

/// `vigil keys create NAME`: prints the key, which is shown this once.
pub fn keys_create(c: &Client, f: Format, name: &str, role: Option<&str>) -> CliResult<()> {
    let mut body = json!({"name": name});
    if let Some(r) = role {
        body["role"] = json!(r);
    }
    let v = c.json("POST", "/api/keys", Some(&body))?;
    if f == Format::Json {
        return print_json(&v);
    }
    eprintln!(
        "made key {} ({}, {}); it is shown only now:",
        cell(&v["id"]),
        name,
        cell(&v["role"])
    );
    println!("{}", cell(&v["key"]));
    Ok(())
}

/// `vigil keys revoke ID`.
pub fn keys_revoke(c: &Client, f: Format, id: &str) -> CliResult<()> {
    let v = c.json("DELETE", &format!("/api/keys/{}", enc(id)), None)?;
    report(f, &v, || format!("revoked key {id}"))
}

// --- logs

/// The filters of `vigil logs`.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// Levels (any of): debug, info, warning, error.
    pub levels: Vec<String>,
    /// Sources (any of).
    pub sources: Vec<String>,
    /// Cameras (any of).
    pub cameras: Vec<String>,
    /// At or after (epoch seconds).
    pub after: Option<f64>,
    /// Before (epoch seconds).
    pub before: Option<f64>,
    /// Text in the message.
    pub search: Option<String>,
    /// Page size.
    pub limit: u32,
    /// The page after this cursor.
    pub cursor: Option<String>,
}

/// The level names as `/api/logs` writes them, for comparing.
fn level_word(l: &str) -> &'static str {
    match l.to_ascii_lowercase().as_str() {
        "debug" | "dbg" => "debug",
        "info" | "inf" => "info",
        "warning" | "warn" | "war" => "warning",
        _ => "error",
    }
}

/// `vigil logs`: a page of the stored log, newest first.
pub fn logs(c: &Client, f: Format, l: &LogFilter) -> CliResult<()> {
    let join = |v: &[String]| (!v.is_empty()).then(|| v.join(","));
    let q = query([
        ("levels", join(&l.levels)),
        ("sources", join(&l.sources)),
        ("camera", join(&l.cameras)),
        ("after", l.after.map(|t| t.to_string())),
        ("before", l.before.map(|t| t.to_string())),
        ("search", l.search.clone()),
        ("limit", Some(l.limit.to_string())),
        ("cursor", l.cursor.clone()),
    ]);
    let v = c.get(&format!("/api/logs{q}"))?;
    if f == Format::Json {
        return print_json(&v);
    }
    let mut t = Table::new(&["TIME", "LEVEL", "SOURCE", "CAMERA", "MESSAGE"]);
    for e in items(&v, "logs") {
        t.row(vec![
            time(&e["timestamp"]),
            cell(&e["level"]),
            cell(&e["source"]),
            cell(&e["camera_id"]),
            cell(&e["message"]),
        ]);
    }
    t.print();
    next_page(&v, t.len());
    Ok(())
}

/// `vigil logs --follow`: the log as vigild writes it (SentryShot's log WebSocket), filtered
/// by level, source and camera. With `count`, stops after that many entries.
pub fn logs_follow(c: &Client, f: Format, l: &LogFilter, count: Option<u64>) -> CliResult<()> {
    let mut ws = c.websocket("/api/logs")?;
    eprintln!("following the log at {} (Ctrl-C stops)", c.url(""));
    let levels: Vec<&str> = l.levels.iter().map(|s| level_word(s)).collect();
    let mut shown = 0u64;
    let mut out = std::io::stdout().lock();
    while count.is_none_or(|n| shown < n) {
        let Some(text) = ws.next_text()? else {
            return Err(CliError::new(
                crate::client::Failure::Unreachable,
                "vigild closed the log feed",
            ));
        };
        let Ok(e) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let lvl = level_word(e["level"].as_str().unwrap_or_default());
        let src = e["src"].as_str().unwrap_or_default();
        let cam = e["monitorID"].as_str().unwrap_or_default();
        let msg = e["msg"].as_str().unwrap_or_default();
        if (!levels.is_empty() && !levels.contains(&lvl))
            || (!l.sources.is_empty() && !l.sources.iter().any(|s| s == src))
            || (!l.cameras.is_empty() && !l.cameras.iter().any(|s| s == cam))
            || l.search.as_ref().is_some_and(|s| !msg.contains(s.as_str()))
        {
            continue;
        }
        if f == Format::Json {
            writeln!(out, "{e}")?;
        } else {
            let cam = if cam.is_empty() { "-" } else { cam };
            writeln!(
                out,
                "{}  {:<7}  {src}  {cam}  {msg}",
                time(&e["time"]),
                lvl.to_ascii_uppercase()
            )?;
        }
        out.flush()?;
        shown += 1;
    }
    Ok(())
}

/// Reads one line (a password) from standard input, without the line end.
pub fn read_line_stdin() -> CliResult<String> {
    let mut s = String::new();
    std::io::stdin().lock().read_line(&mut s)?;
    Ok(s.trim_end_matches(['\r', '\n']).to_owned())
}
