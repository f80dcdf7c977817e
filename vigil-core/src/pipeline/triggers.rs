//! Triggers (picam's sensors made general): something outside the cameras says "now" (a
//! request, a mock, an MQTT message) and the trigger's cameras record: an event opens on each
//! and their recorders keep recording while it is triggered and `hold_s` after it is
//! released. While the system is disarmed, triggers are suppressed: they are counted, nothing
//! records (presence: the owner is home).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

use crate::id::{EventId, TriggerId};
use crate::time::Timestamp;

/// What a trigger is doing.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TriggerState {
    /// Triggered now.
    pub triggered: bool,
    /// The last trigger came while disarmed, so nothing recorded.
    pub suppressed: bool,
    /// Its cameras record because of it now (triggered, or within `hold_s` of the release).
    pub recording: bool,
    /// When it was last triggered.
    pub last_triggered: Option<Timestamp>,
    /// When it was last released.
    pub last_released: Option<Timestamp>,
    /// Times it was triggered since start.
    pub count: u64,
    /// The events it opened, still open.
    pub events: Vec<EventId>,
    /// Recording continues until this time after a release.
    pub hold_until: Option<Timestamp>,
}

/// Every trigger's state, and arming.
#[derive(Debug)]
pub struct Triggers {
    armed: AtomicBool,
    states: Mutex<BTreeMap<TriggerId, TriggerState>>,
    keepalive: Mutex<BTreeMap<TriggerId, tokio::task::JoinHandle<()>>>,
}

impl Default for Triggers {
    fn default() -> Self {
        Triggers {
            armed: AtomicBool::new(true),
            states: Mutex::default(),
            keepalive: Mutex::default(),
        }
    }
}

/// How often a triggered trigger renews its cameras' recording.
pub(crate) const RENEW: Duration = Duration::from_secs(1);

impl Triggers {
    /// Whether triggers record (armed, the default) or are suppressed.
    pub fn armed(&self) -> bool {
        self.armed.load(Ordering::Relaxed)
    }

    /// Arms or disarms.
    pub fn set_armed(&self, armed: bool) {
        self.armed.store(armed, Ordering::Relaxed);
    }

    /// The state of one trigger.
    pub fn state(&self, id: TriggerId) -> TriggerState {
        let mut s = self
            .states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
            .unwrap_or_default();
        if !s.triggered {
            s.recording = s.hold_until.is_some_and(|h| {
                h > crate::time::Clocks::realtime(&crate::time::RealClocks::default())
            });
        }
        s
    }

    pub(crate) fn update<R>(&self, id: TriggerId, f: impl FnOnce(&mut TriggerState) -> R) -> R {
        let mut map = self.states.lock().unwrap_or_else(|p| p.into_inner());
        f(map.entry(id).or_default())
    }

    pub(crate) fn set_keepalive(&self, id: TriggerId, task: Option<tokio::task::JoinHandle<()>>) {
        let mut map = self.keepalive.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = map.remove(&id) {
            old.abort();
        }
        if let Some(t) = task {
            map.insert(id, t);
        }
    }

    /// Forgets a deleted trigger.
    pub fn remove(&self, id: TriggerId) {
        self.set_keepalive(id, None);
        self.states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }
}
