//! The configuration schema a person writes: a camera as it appears in `vigild`'s TOML file
//! (`[cameras.<id>]`) and in the API's camera bodies. One schema for both, so a camera moves
//! between the file and the API unchanged.
//!
//! Every field is optional and unknown fields are errors (a misspelt key must not be silently
//! ignored). Settings blocks (`record`, `detect`, `motion`, `snapshots`, `timelapse`) take the
//! model's own types, whose missing fields take their defaults.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::CameraId;
use crate::model::*;
use crate::time::Timestamp;

/// A camera as configured.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CameraSpec {
    /// Identifier (in URLs, topics, paths); derived from `name` when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Human-readable name; the id when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Whether the camera runs (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// The record stream: `rtsp://...` for a camera, `file:PATH` for a looped file,
    /// `synthetic:` (or `synthetic:WxH@FPS`) for the generated demo scene.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A separate detect stream (the camera's sub stream), same forms as `url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detect_url: Option<String>,
    /// RTP transport for RTSP: `tcp` (default) or `udp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport: Option<RtspTransport>,
    /// RTSP user name, when not in the URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// RTSP password, when not in the URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Recording.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<RecordSettings>,
    /// Object detection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detect: Option<DetectSettings>,
    /// Motion detection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub motion: Option<MotionSettings>,
    /// Snapshots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshots: Option<SnapshotSettings>,
    /// Timelapse.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timelapse: Option<TimelapseSettings>,
    /// Zones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zones: Option<Vec<Zone>>,
}

/// Turns a name into an id: lowercase letters, digits, `-` and `_` (`Front Door` → `front_door`).
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if (c == '-' || c == '_' || c.is_whitespace()) && !out.ends_with('_') {
            out.push(if c == '-' { '-' } else { '_' });
        }
    }
    out.trim_matches('_').to_owned()
}

/// Prefixes an error's message with the field it is about (`url: ...`).
fn field(name: &str, e: Error) -> Error {
    Error::new(e.kind(), format!("{name}: {}", e.message()))
}

/// The field of a camera spec an error of [`CameraSpec::to_config`] or
/// [`CameraSpec::apply_to`] is about, as a dotted path (`url`, `zones`, `detect.fps`), when
/// its message names one: what the API's 422 locations and the configuration file's error
/// keys say.
pub fn field_of(e: &Error) -> Option<&'static str> {
    let msg = e.message();
    // The spec's own errors start with their field; the camera's checks name it.
    if let Some(f) = ["detect_url", "url"]
        .into_iter()
        .find(|f| msg.strip_prefix(f).is_some_and(|r| r.starts_with(": ")))
    {
        return Some(f);
    }
    if msg.contains("zone") || msg.contains("polygon") {
        Some("zones")
    } else if msg.contains("detect fps") {
        Some("detect.fps")
    } else if msg.contains("timelapse") {
        Some("timelapse")
    } else {
        None
    }
}

/// Parses a source URL (`rtsp://`, `rtsps://`, `file:PATH`, `synthetic:[WxH[@FPS]]`).
pub fn parse_source(
    url: &str,
    transport: RtspTransport,
    username: Option<String>,
    password: Option<String>,
) -> Result<Source> {
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("rtsp://") || lower.starts_with("rtsps://") {
        return Ok(Source::Rtsp {
            url: url.to_owned(),
            transport,
            username,
            password,
        });
    }
    if let Some(path) = url.strip_prefix("file:") {
        let path = path.strip_prefix("//").unwrap_or(path);
        if path.is_empty() {
            return Err(Error::invalid("file: needs a path"));
        }
        return Ok(Source::File {
            path: path.to_owned(),
            fps: None,
        });
    }
    if let Some(spec) = url.strip_prefix("synthetic:") {
        let (mut width, mut height, mut fps) = (1280, 720, 15);
        let spec = spec.trim_start_matches('/');
        if !spec.is_empty() {
            let (size, rate) = spec.split_once('@').unwrap_or((spec, ""));
            let (w, h) = size
                .split_once('x')
                .ok_or_else(|| Error::invalid(format!("{url:?}: expected synthetic:WxH@FPS")))?;
            let num = |s: &str| {
                s.parse::<u32>()
                    .map_err(|_| Error::invalid(format!("{url:?}: {s:?} is not a number")))
            };
            width = num(w)?;
            height = num(h)?;
            if !rate.is_empty() {
                fps = num(rate)?;
            }
        }
        if !(16..=3840).contains(&width)
            || !(16..=2160).contains(&height)
            || width % 2 != 0
            || height % 2 != 0
        {
            return Err(Error::invalid(format!(
                "{url:?}: the size must be even and within 16x16..=3840x2160"
            )));
        }
        if !(1..=60).contains(&fps) {
            return Err(Error::invalid(format!(
                "{url:?}: fps must be within 1..=60"
            )));
        }
        return Ok(Source::Synthetic { width, height, fps });
    }
    Err(Error::invalid(format!(
        "{url:?} is not a camera source: use rtsp://..., file:PATH or synthetic:"
    )))
}

/// The URL form of a source, as [`parse_source`] reads it.
pub fn source_url(s: &Source) -> String {
    match s {
        Source::Rtsp { url, .. } => url.clone(),
        // `file://` is read as `file:` with the slashes of an empty authority.
        Source::File { path, .. } if path.starts_with("//") => format!("file://{path}"),
        Source::File { path, .. } => format!("file:{path}"),
        Source::Synthetic { width, height, fps } => format!("synthetic:{width}x{height}@{fps}"),
    }
}

/// `url` with the password of its user information (`rtsp://user:password@host/...`) replaced
/// by `***`, as the API shows a camera's URL. The user information is what precedes the last
/// `@` of the authority, which ends at the first `/`, `?` or `#` (RFC 3986): a password may
/// hold an `@`, a path may not make one.
pub fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
        None => url.to_owned(),
    }
}

impl CameraSpec {
    /// The id this spec names: `id`, else the slug of `name`.
    pub fn id(&self) -> Result<CameraId> {
        match (&self.id, &self.name) {
            (Some(id), _) => CameraId::new(id.clone()),
            (None, Some(name)) => CameraId::new(slug(name)),
            (None, None) => Err(Error::invalid("a camera needs a name or an id")),
        }
    }

    /// A new camera from this spec.
    pub fn to_config(&self, id: CameraId, now: Timestamp) -> Result<CameraConfig> {
        let url = self
            .url
            .as_deref()
            .ok_or_else(|| Error::invalid(format!("camera {id}: url is required")))?;
        let source = parse_source(
            url,
            self.transport.unwrap_or_default(),
            self.username.clone(),
            self.password.clone(),
        )
        .map_err(|e| field("url", e))?;
        let mut cfg = CameraConfig::new(id, source, now);
        self.apply_settings(&mut cfg)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Applies every field this spec sets to `cfg` (the sources too), leaving the others.
    pub fn apply_to(&self, cfg: &mut CameraConfig, now: Timestamp) -> Result<()> {
        if let Some(url) = &self.url {
            let (user, pass) = match &cfg.record_source {
                Source::Rtsp {
                    username, password, ..
                } => (username.clone(), password.clone()),
                _ => (None, None),
            };
            cfg.record_source = parse_source(
                url,
                self.transport.unwrap_or_default(),
                self.username.clone().or(user),
                self.password.clone().or(pass),
            )
            .map_err(|e| field("url", e))?;
        } else if let Source::Rtsp {
            transport,
            username,
            password,
            ..
        } = &mut cfg.record_source
        {
            if let Some(t) = self.transport {
                *transport = t;
            }
            if self.username.is_some() {
                username.clone_from(&self.username);
            }
            if self.password.is_some() {
                password.clone_from(&self.password);
            }
        }
        self.apply_settings(cfg)?;
        cfg.updated_at = now;
        cfg.validate()
    }

    fn apply_settings(&self, cfg: &mut CameraConfig) -> Result<()> {
        if let Some(n) = &self.name {
            cfg.name = n.trim().to_owned();
        }
        if let Some(e) = self.enabled {
            cfg.enabled = e;
        }
        if let Some(d) = &self.detect_url {
            cfg.detect_source = if d.trim().is_empty() {
                None
            } else {
                Some(
                    parse_source(
                        d,
                        self.transport.unwrap_or_default(),
                        self.username.clone(),
                        self.password.clone(),
                    )
                    .map_err(|e| field("detect_url", e))?,
                )
            };
        }
        if let Some(r) = &self.record {
            cfg.record = r.clone();
        }
        if let Some(d) = &self.detect {
            cfg.detect = d.clone();
        }
        if let Some(m) = &self.motion {
            cfg.motion = m.clone();
        }
        if let Some(s) = &self.snapshots {
            cfg.snapshots = s.clone();
        }
        if let Some(t) = &self.timelapse {
            cfg.timelapse = t.clone();
        }
        if let Some(z) = &self.zones {
            cfg.zones = z.clone();
        }
        Ok(())
    }

    /// The spec of a configured camera, every field set (credentials included: callers that
    /// show it mask them).
    pub fn of(cfg: &CameraConfig) -> CameraSpec {
        let (transport, username, password) = match &cfg.record_source {
            Source::Rtsp {
                transport,
                username,
                password,
                ..
            } => (Some(*transport), username.clone(), password.clone()),
            _ => (None, None, None),
        };
        CameraSpec {
            id: Some(cfg.id.to_string()),
            name: Some(cfg.name.clone()),
            enabled: Some(cfg.enabled),
            url: Some(source_url(&cfg.record_source)),
            detect_url: cfg.detect_source.as_ref().map(source_url),
            transport,
            username,
            password,
            record: Some(cfg.record.clone()),
            detect: Some(cfg.detect.clone()),
            motion: Some(cfg.motion.clone()),
            snapshots: Some(cfg.snapshots.clone()),
            timelapse: Some(cfg.timelapse.clone()),
            zones: Some(cfg.zones.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_passwords() {
        assert_eq!(
            mask_password("rtsp://u:secret@h:554/x"),
            "rtsp://u:***@h:554/x"
        );
        assert_eq!(mask_password("rtsp://h/x@y"), "rtsp://h/x@y");
        assert_eq!(mask_password("rtsp://u@h/x"), "rtsp://u@h/x");
        assert_eq!(mask_password("synthetic:"), "synthetic:");
        // A password may hold an `@`: the last one of the authority ends it.
        assert_eq!(mask_password("rtsp://u:p@ss@h/x@y"), "rtsp://u:***@h/x@y");
        assert_eq!(
            mask_password("rtsp://u:p@ss@h?q=a@b"),
            "rtsp://u:***@h?q=a@b"
        );
    }

    #[test]
    fn slugs_and_sources() {
        assert_eq!(slug("Front Door"), "front_door");
        assert_eq!(slug("  back-yard 2 "), "back-yard_2");
        assert_eq!(slug("Café!"), "caf");
        assert!(matches!(
            parse_source("rtsp://u:p@h/x", RtspTransport::Udp, None, None).unwrap(),
            Source::Rtsp {
                transport: RtspTransport::Udp,
                ..
            }
        ));
        assert_eq!(
            parse_source("synthetic:640x360@5", RtspTransport::Tcp, None, None).unwrap(),
            Source::Synthetic {
                width: 640,
                height: 360,
                fps: 5
            }
        );
        assert_eq!(
            parse_source("file:/tmp/a.mp4", RtspTransport::Tcp, None, None).unwrap(),
            Source::File {
                path: "/tmp/a.mp4".into(),
                fps: None
            }
        );
        for bad in [
            "http://x",
            "synthetic:99",
            "synthetic:641x360",
            "file:",
            "synthetic:64x64@0",
        ] {
            assert!(
                parse_source(bad, RtspTransport::Tcp, None, None).is_err(),
                "{bad}"
            );
        }
        let spec = CameraSpec {
            name: Some("Front Door".into()),
            url: Some("synthetic:".into()),
            ..Default::default()
        };
        let cfg = spec.to_config(spec.id().unwrap(), Timestamp(0)).unwrap();
        assert_eq!(cfg.id.as_str(), "front_door");
        assert_eq!(cfg.name, "Front Door");
        // The spec of a camera makes the same camera again.
        let again = CameraSpec::of(&cfg)
            .to_config(cfg.id.clone(), Timestamp(0))
            .unwrap();
        assert_eq!(again, cfg);
    }
}
