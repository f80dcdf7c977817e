//! Identifiers: time-ordered numeric ids for records, and validated names for cameras.
//!
//! Records get a `u64` id when they are created. [`IdGenerator`] makes ids from the wall clock in
//! microseconds, bumped by one when two would collide, so ids sort by creation time in LMDB keys
//! and in cursors, and stay unique across restarts as long as the clock does not run backwards
//! by more than the time between restarts (the generator is seeded with the store's highest id to
//! cover that too).

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::time::Timestamp;

macro_rules! numeric_id {
    ($(#[$m:meta])* $name:ident, $what:literal) => {
        $(#[$m])*
        #[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                s.parse::<u64>()
                    .map($name)
                    .map_err(|_| Error::invalid(format!(concat!("{:?} is not a valid ", $what, " id"), s)))
            }
        }
    };
}

numeric_id!(
    /// Identifies an [`Event`](crate::Event).
    EventId, "event"
);
numeric_id!(
    /// Identifies a [`Detection`](crate::Detection).
    DetectionId, "detection"
);
numeric_id!(
    /// Identifies a [`Recording`](crate::Recording) (a segment or a clip).
    RecordingId, "recording"
);
numeric_id!(
    /// Identifies a [`Snapshot`](crate::Snapshot).
    SnapshotId, "snapshot"
);
numeric_id!(
    /// Identifies a [`TimelapseFrame`](crate::TimelapseFrame).
    TimelapseFrameId, "timelapse frame"
);
numeric_id!(
    /// Identifies an [`AuditEntry`](crate::AuditEntry).
    AuditId, "audit entry"
);
numeric_id!(
    /// Identifies a [`LogEntry`](crate::LogEntry).
    LogId, "log entry"
);
numeric_id!(
    /// Identifies an [`AlertRule`](crate::AlertRule).
    AlertRuleId, "alert rule"
);
numeric_id!(
    /// Identifies a [`QuietHours`](crate::QuietHours) period.
    QuietHoursId, "quiet hours"
);
numeric_id!(
    /// Identifies a [`Trigger`](crate::Trigger).
    TriggerId, "trigger"
);
numeric_id!(
    /// Identifies an [`Account`](crate::Account).
    AccountId, "account"
);
numeric_id!(
    /// Identifies an [`ApiKey`](crate::ApiKey).
    ApiKeyId, "API key"
);

/// Makes time-ordered, unique `u64` ids: microseconds since the epoch, strictly increasing.
#[derive(Debug, Default)]
pub struct IdGenerator {
    last: AtomicU64,
}

impl IdGenerator {
    /// A generator whose ids are all greater than `floor` (the highest id already stored).
    pub fn new(floor: u64) -> Self {
        IdGenerator {
            last: AtomicU64::new(floor),
        }
    }

    /// The next id for something created at `now`.
    pub fn next(&self, now: Timestamp) -> u64 {
        let want = u64::try_from(now.as_micros()).unwrap_or(0);
        let mut prev = self.last.load(Ordering::Relaxed);
        loop {
            let id = want.max(prev.saturating_add(1));
            match self
                .last
                .compare_exchange_weak(prev, id, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return id,
                Err(p) => prev = p,
            }
        }
    }
}

/// The longest camera id, zone name or label accepted, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// A camera's identifier: what Frigate calls the camera name, SentryShot the monitor id and
/// SpectraX the stream path. 1 to 64 characters of `a-z A-Z 0-9 _ - .`; it appears in URLs,
/// file paths and MQTT topics, so nothing else is allowed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CameraId(String);

impl CameraId {
    /// Validates and wraps `s`.
    pub fn new(s: impl Into<String>) -> Result<Self> {
        let s = s.into();
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
        if s.is_empty() || s.len() > MAX_NAME_LEN || !s.chars().all(ok_char) || s.starts_with('.') {
            return Err(Error::invalid(format!(
                "camera id {s:?} must be 1-{MAX_NAME_LEN} characters of a-z, A-Z, 0-9, '_', '-', '.' and not start with '.'"
            )));
        }
        Ok(CameraId(s))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CameraId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for CameraId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        CameraId::new(s)
    }
}

impl TryFrom<String> for CameraId {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        CameraId::new(s)
    }
}

impl From<CameraId> for String {
    fn from(c: CameraId) -> String {
        c.0
    }
}

impl AsRef<str> for CameraId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Checks a free-form name that is indexed and filtered on (a label, sub-label, zone, source):
/// 1 to 64 bytes, no control characters.
pub fn validate_name(what: &str, s: &str) -> Result<()> {
    if s.is_empty() || s.len() > MAX_NAME_LEN || s.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "{what} {s:?} must be 1-{MAX_NAME_LEN} bytes with no control characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_ids() {
        for ok in ["front", "front-door", "cam_1", "video.garage", "A1"] {
            assert!(CameraId::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".hidden", "a/b", "a b", "é", &"x".repeat(65)] {
            assert!(CameraId::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_increase() {
        let g = IdGenerator::new(0);
        let t = Timestamp::from_secs(1);
        let a = g.next(t);
        let b = g.next(t);
        assert_eq!(a, 1_000_000);
        assert_eq!(b, 1_000_001);
        assert!(
            g.next(Timestamp::EPOCH) > b,
            "a clock step back still gives a larger id"
        );
        assert_eq!(EventId::from_str("42").unwrap(), EventId(42));
        assert!(EventId::from_str("x").is_err());
    }
}
