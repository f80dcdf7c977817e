//! `vigild`'s configuration file (TOML).
//!
//! ```toml
//! [server]
//! listen = "0.0.0.0:5000"
//! rtsp_listen = "0.0.0.0:8554"   # the RTSP restream; off unless given
//! data_dir = "/var/lib/vigil"
//! cors_origins = ["https://ha.example:8123"]   # default ["*"]
//! rate_limits = { standard = 600, media = 1200, search = 60, websocket = 30 }
//! connections = { total = 1024, per_address = 128 }
//!
//! [storage]
//! max_percent = 90          # or max_bytes = 500_000_000_000
//!
//! [detectors.cpu]
//! kind = "yolov8"
//! model = "/var/lib/vigil/models/yolov8n.safetensors"
//! input_size = 320
//!
//! [detection]
//! full_frame = false        # true: the whole picture, not regions around motion
//!
//! [mqtt]                    # absent: no MQTT
//! host = "127.0.0.1"
//! port = 1883
//! topic_prefix = "vigil"    # Frigate's topics under this prefix, and SentryShot's
//! client_id = "vigil"
//! user = "vigil"            # when the broker wants one
//! password = "secret"
//! stats_interval_s = 60
//!
//! [cameras.front]
//! url = "rtsp://user:pass@10.0.0.5:554/main"
//! detect_url = "rtsp://user:pass@10.0.0.5:554/sub"
//! record = { mode = "events", pre_capture_s = 5, post_capture_s = 10 }
//! detect = { fps = 5, labels = ["person", "car"] }
//! motion = { masks = [[[0.0, 0.0], [0.3, 0.0], [0.3, 0.1], [0.0, 0.1]]] }
//!
//! [[cameras.front.zones]]
//! name = "porch"
//! polygon = [[0.1, 0.5], [0.9, 0.5], [0.9, 1.0], [0.1, 1.0]]
//! labels = ["person"]
//! ```
//!
//! A camera's section is [`CameraSpec`], the same schema as the API's camera bodies. Unknown
//! keys are errors; every error names the file, the line and the key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use vigil_core::config::CameraSpec;
use vigil_detect::DetectorSpec;

/// The whole file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where and how to serve.
    pub server: Server,
    /// Limits on the space recordings take.
    pub storage: Storage,
    /// Detector backends by name.
    pub detectors: BTreeMap<String, DetectorSpec>,
    /// How detection runs.
    pub detection: Detection,
    /// The MQTT broker to publish to (none when the section is absent).
    pub mqtt: Option<vigil_http::mqtt::MqttConfig>,
    /// Cameras by id. A camera named here is set from the file at each start; cameras added
    /// through the API stay as they are.
    pub cameras: BTreeMap<String, CameraSpec>,
}

/// `[server]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Server {
    /// Address to serve the API on.
    pub listen: Option<SocketAddr>,
    /// Address to restream the cameras on over RTSP (Home Assistant plays port 8554).
    pub rtsp_listen: Option<SocketAddr>,
    /// Directory for the database and media.
    pub data_dir: Option<PathBuf>,
    /// Origins browsers may call the API from (`["*"]`, the default: any; `[]`: none).
    pub cors_origins: Option<Vec<String>>,
    /// Requests per client address and minute, by tier.
    pub rate_limits: Option<vigil_http::limits::RateLimits>,
    /// Connections open at once, in all and per client address.
    pub connections: Option<vigil_http::limits::ConnectionLimits>,
}

/// `[storage]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Storage {
    /// Most bytes all recordings together may use.
    pub max_bytes: Option<u64>,
    /// Most the filesystem may be full, in percent.
    pub max_percent: Option<f64>,
}

/// `[detection]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Detection {
    /// Run the model on the whole picture instead of regions around motion and objects.
    pub full_frame: bool,
}

/// A configuration error: where, and what.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {key}: {msg}")]
pub struct ConfigError {
    /// The file.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// The key, dotted (`cameras.front.detect.fps`); `-` for the whole file.
    pub key: String,
    /// What is wrong.
    pub msg: String,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line where `key` (dotted) is set, found by reading the file's tables and keys; the
/// table's header line when the key itself is not written (a default), 1 when neither is.
fn line_of_key(text: &str, key: &str) -> usize {
    let parts: Vec<&str> = key.split('.').collect();
    let mut table: Vec<String> = Vec::new();
    let mut best = 1;
    let mut best_len = 0;
    for (n, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if l.starts_with('[') {
            let name = l.trim_matches(|c| c == '[' || c == ']').trim();
            table = name
                .split('.')
                .map(|s| s.trim().trim_matches('"').to_owned())
                .collect();
            let depth = table.len();
            if depth > best_len && parts.len() >= depth && parts[..depth] == table[..] {
                best = n + 1;
                best_len = depth;
            }
            continue;
        }
        if let Some((k, _)) = l.split_once('=') {
            let mut full = table.clone();
            full.extend(k.split('.').map(|s| s.trim().trim_matches('"').to_owned()));
            let depth = full.len();
            if depth > best_len && parts.len() >= depth && parts[..depth] == full[..] {
                best = n + 1;
                best_len = depth;
            }
        }
    }
    best
}

/// Parses TOML `text`, read from `file`, into `T`; an error names the line and the key.
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    file: &str,
    text: &str,
) -> Result<T, ConfigError> {
    let err = |line: usize, key: String, msg: String| ConfigError {
        file: file.to_owned(),
        line,
        key: if key.is_empty() { "-".into() } else { key },
        msg,
    };
    let de = toml::Deserializer::parse(text).map_err(|e| {
        err(
            e.span().map_or(1, |s| line_of(text, s.start)),
            String::new(),
            e.message().to_owned(),
        )
    })?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let key = if key == "." { String::new() } else { key };
        let inner = e.into_inner();
        let line = match inner.span() {
            Some(s) => line_of(text, s.start),
            None => line_of_key(text, &key),
        };
        err(line, key, inner.message().to_owned())
    })
}

impl Config {
    /// Reads and checks the file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            line: 1,
            key: "-".into(),
            msg: format!("cannot read it: {e}"),
        })?;
        Config::parse(&file, &text)
    }

    /// Parses and checks `text`, read from `file`.
    pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
        let err = |line: usize, key: &str, msg: String| ConfigError {
            file: file.to_owned(),
            line,
            key: if key.is_empty() {
                "-".into()
            } else {
                key.to_owned()
            },
            msg,
        };
        let cfg: Config = parse_toml(file, text)?;
        // What only makes sense once the whole file is read.
        for (id, spec) in &cfg.cameras {
            let key = format!("cameras.{id}");
            let cid = vigil_core::CameraId::new(id.clone())
                .map_err(|e| err(line_of_key(text, &key), &key, e.message().to_owned()))?;
            if let Some(inner) = &spec.id {
                if inner != id {
                    let k = format!("{key}.id");
                    return Err(err(
                        line_of_key(text, &k),
                        &k,
                        format!("differs from the table's name {id:?}"),
                    ));
                }
            }
            spec.to_config(cid, vigil_core::Timestamp(0)).map_err(|e| {
                let k = match vigil_core::config::field_of(&e) {
                    Some(f) => format!("{key}.{f}"),
                    None => key.clone(),
                };
                err(line_of_key(text, &k), &k, e.message().to_owned())
            })?;
        }
        if let Some(o) = &cfg.server.cors_origins {
            vigil_http::limits::Cors::from_list(o).map_err(|msg| {
                let k = "server.cors_origins";
                err(line_of_key(text, k), k, msg)
            })?;
        }
        if let Some(l) = &cfg.server.rate_limits {
            l.validate().map_err(|(k, msg)| {
                let k = format!("server.rate_limits.{k}");
                err(line_of_key(text, &k), &k, msg)
            })?;
        }
        if let Some(l) = &cfg.server.connections {
            l.validate().map_err(|(k, msg)| {
                let k = format!("server.connections.{k}");
                err(line_of_key(text, &k), &k, msg)
            })?;
        }
        if let Some(m) = &cfg.mqtt {
            m.validate().map_err(|(k, msg)| {
                let k = format!("mqtt.{k}");
                err(line_of_key(text, &k), &k, msg)
            })?;
        }
        if let Some(p) = cfg.storage.max_percent {
            if !(1.0..=100.0).contains(&p) {
                let k = "storage.max_percent";
                return Err(err(
                    line_of_key(text, k),
                    k,
                    format!("{p} is not a percentage between 1 and 100"),
                ));
            }
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[server]
listen = "127.0.0.1:5055"

[storage]
max_percent = 90

[detectors.cpu]
kind = "yolov8"
model = "/models/yolov8n.safetensors"

[cameras.front]
url = "rtsp://u:p@10.0.0.5/main"
detect = { fps = 10 }

[[cameras.front.zones]]
name = "porch"
polygon = [[0.1, 0.5], [0.9, 0.5], [0.9, 1.0]]
"#;

    #[test]
    fn reads_a_good_file() {
        let c = Config::parse("vigil.toml", GOOD).unwrap();
        assert_eq!(c.server.listen.unwrap().port(), 5055);
        assert_eq!(c.storage.max_percent, Some(90.0));
        assert_eq!(c.detectors["cpu"].kind, "yolov8");
        let front = &c.cameras["front"];
        assert_eq!(front.detect.as_ref().unwrap().fps, 10);
        assert_eq!(
            front.detect.as_ref().unwrap().width,
            640,
            "defaults fill the rest"
        );
        assert_eq!(front.zones.as_ref().unwrap()[0].inertia, 3);
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let cases = [
            (
                GOOD.replace("fps = 10", "fps = \"fast\""),
                14,
                "cameras.front.detect.fps",
            ),
            (
                GOOD.replace("fps = 10", "fsp = 10"),
                14,
                "cameras.front.detect.fsp",
            ),
            (
                GOOD.replace("max_percent = 90", "max_percent = 190"),
                6,
                "storage.max_percent",
            ),
            (
                GOOD.replace("rtsp://u:p@10.0.0.5/main", "http://x"),
                13,
                "cameras.front.url",
            ),
            (
                GOOD.replace("[0.9, 1.0]]", "[1.9, 1.0]]"),
                16,
                "cameras.front.zones",
            ),
            (
                GOOD.replace("listen = \"127.0.0.1:5055\"", "listen = \"here\""),
                3,
                "server.listen",
            ),
            (GOOD.replace("[server]", "[sever]"), 2, "sever"),
            (
                GOOD.replace("[cameras.front]", "[cameras.\"front door\"]")
                    .replace(
                        "[[cameras.front.zones]]",
                        "[[cameras.\"front door\".zones]]",
                    ),
                12,
                "cameras.front door",
            ),
            (GOOD.replace("kind = \"yolov8\"", "kind = \"yolov8"), 9, "-"),
            (
                format!("{GOOD}\n[mqtt]\nport = 1883\ntopic_prefix = \"home/#\"\n"),
                GOOD.lines().count() + 4,
                "mqtt.topic_prefix",
            ),
            (
                format!("{GOOD}\n[mqtt]\nport = 99999\n"),
                GOOD.lines().count() + 3,
                "mqtt.port",
            ),
        ];
        for (text, line, key) in cases {
            let e = Config::parse("vigil.toml", &text).unwrap_err();
            assert_eq!((e.line, e.key.as_str()), (line, key), "{e}");
            assert!(
                e.to_string()
                    .starts_with(&format!("vigil.toml:{line}: {key}: ")),
                "{e}"
            );
        }
    }
}
