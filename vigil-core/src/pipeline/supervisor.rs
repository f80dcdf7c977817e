//! Supervision of one camera stream: connect, pass frames on, notice stalls, reconnect with
//! capped exponential backoff, and keep the counters the API shows.
//!
//! Camera errors are states, not crashes: a camera that refuses connections, wants other
//! credentials or stops sending is retried forever at a pace that leaves the CPU idle.
//!
//! A stream's frames are timed by its own clock (RTP), anchored to the wall clock when it
//! connects. The supervisor keeps that timeline on the wall clock: when the wall clock steps
//! (by more than [`CLOCK_STEP`] against the monotonic clock: NTP, or someone setting the
//! time), the timeline follows the step at the next key frame, and a [`StreamEvent::Ended`]
//! before that frame tells the sinks that time does not run on across it (the recorder ends its
//! segment there, the analysis ends its events). Downstream, frame times are compared with the
//! wall clock (event-mode recording kept on by manual events and triggers, the live view), so a
//! timeline left behind would keep recording for as long as the step, or not at all.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, watch};

use crate::error::{Error, ErrorKind};
use crate::media::{Camera, StreamRole, VideoFrame};
use crate::time::{Clocks, Timestamp};

/// A change of the wall clock against the monotonic clock larger than this between two frames
/// is a step (NTP's slewing changes it by half a millisecond a second at most).
pub const CLOCK_STEP: Duration = Duration::from_secs(1);

/// Keeps one connection's frame times on the wall clock (see the module's documentation).
#[derive(Debug, Default)]
struct Timeline {
    /// Added to every frame's time, in µs.
    offset: i64,
    /// Steps of the wall clock not yet followed (µs): they are at the next key frame.
    pending: i64,
    /// The wall clock less the monotonic clock at the last frame (µs).
    clock: Option<i64>,
}

impl Timeline {
    /// Moves `f`, which arrived at `wall` (`mono` on the monotonic clock), onto the timeline;
    /// true when the timeline was anchored again at it (a discontinuity before it).
    ///
    /// Only the clocks' difference counts, not when frames arrive: frames held up on the way
    /// or behind a slow consumer arrive late, then in a burst, and the wall clock did not step.
    fn place(&mut self, f: &mut VideoFrame, wall: Timestamp, mono: i64) -> bool {
        let now = wall.0.saturating_sub(mono);
        if let Some(before) = self.clock.replace(now) {
            let stepped = now.saturating_sub(before);
            if stepped.abs() > CLOCK_STEP.as_micros() as i64 {
                self.pending = self.pending.saturating_add(stepped);
            }
        }
        let moved = f.is_key && self.pending != 0;
        if moved {
            self.offset = self.offset.saturating_add(self.pending);
            self.pending = 0;
        }
        f.time = Timestamp(f.time.0.saturating_add(self.offset));
        moved
    }
}

/// Capped exponential backoff between connection attempts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The first wait.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Backoff {
    /// The wait before attempt `n` (0-based) after failures.
    pub fn delay(&self, n: u32) -> Duration {
        let d = self.initial.saturating_mul(1u32 << n.min(20));
        d.min(self.max)
    }
}

/// How a stream is supervised.
#[derive(Clone, Debug)]
pub struct SupervisorOptions {
    /// Longest wait for a connection to be set up (RTSP DESCRIBE/SETUP/PLAY can hang).
    pub connect_timeout: Duration,
    /// No frame for this long means the stream stalled: reconnect.
    pub stall_timeout: Duration,
    /// Waits between attempts.
    pub backoff: Backoff,
    /// A connection that lasted this long resets the backoff.
    pub stable_after: Duration,
}

impl Default for SupervisorOptions {
    fn default() -> Self {
        SupervisorOptions {
            connect_timeout: Duration::from_secs(20),
            stall_timeout: Duration::from_secs(10),
            backoff: Backoff {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(30),
            },
            stable_after: Duration::from_secs(30),
        }
    }
}

/// What the supervisor passes on.
#[derive(Debug)]
pub enum StreamEvent {
    /// A frame.
    Frame(VideoFrame),
    /// The connection ended (closed, failed or stalled), or its timeline was anchored again
    /// (see [`CLOCK_STEP`]): the frames after this do not go on from the ones before.
    Ended,
}

impl From<StreamEvent> for super::RecorderInput {
    fn from(e: StreamEvent) -> Self {
        match e {
            StreamEvent::Frame(f) => super::RecorderInput::Frame(f),
            StreamEvent::Ended => super::RecorderInput::StreamEnded,
        }
    }
}

/// The state of one camera stream, as the API shows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StreamStats {
    /// Frames are arriving.
    pub connected: bool,
    /// Frames per second over the last 5 s.
    pub fps: f64,
    /// Bits per second over the last 5 s.
    pub bitrate_bps: f64,
    /// Frames received since start.
    pub frames: u64,
    /// Bytes received since start.
    pub bytes: u64,
    /// Connections made since start.
    pub connections: u64,
    /// Reconnections (connections after the first) in the last hour.
    pub reconnects_last_hour: u32,
    /// Stalls (no frame for the stall timeout) in the last hour.
    pub stalls_last_hour: u32,
    /// The last error, with its kind (`unauthenticated`, `not_found`, `unavailable`...).
    pub last_error: Option<String>,
    /// Kind of the last error.
    pub last_error_kind: Option<String>,
    /// When the last error happened.
    pub last_error_time: Option<Timestamp>,
    /// When the current connection started.
    pub connected_since: Option<Timestamp>,
    /// When the last frame arrived.
    pub last_frame_time: Option<Timestamp>,
}

const HOUR_US: i64 = 3_600_000_000;
const WINDOW_US: i64 = 5_000_000;

/// The counters behind [`StreamStats`], updated by the supervisor.
#[derive(Debug, Default)]
pub struct StreamCounters {
    stats: StreamStats,
    recent: VecDeque<(i64, usize)>,
    reconnects: VecDeque<i64>,
    stalls: VecDeque<i64>,
}

impl StreamCounters {
    /// The stats as of monotonic time `now_us`.
    pub fn snapshot(&mut self, now_us: i64) -> StreamStats {
        self.trim(now_us);
        let mut s = self.stats.clone();
        let n = self.recent.len();
        if n >= 2 {
            let span = (now_us - self.recent[0].0).max(1) as f64 / 1e6;
            s.fps = n as f64 / span;
            s.bitrate_bps = self.recent.iter().map(|r| r.1 as f64).sum::<f64>() * 8.0 / span;
        }
        s.reconnects_last_hour = self.reconnects.len() as u32;
        s.stalls_last_hour = self.stalls.len() as u32;
        s
    }

    fn trim(&mut self, now_us: i64) {
        while self
            .recent
            .front()
            .is_some_and(|r| r.0 < now_us - WINDOW_US)
        {
            self.recent.pop_front();
        }
        for q in [&mut self.reconnects, &mut self.stalls] {
            while q.front().is_some_and(|t| *t < now_us - HOUR_US) {
                q.pop_front();
            }
        }
    }

    fn error(&mut self, e: &Error, at: Timestamp) {
        self.stats.connected = false;
        self.stats.connected_since = None;
        self.stats.last_error = Some(e.to_string());
        self.stats.last_error_kind = Some(e.kind().as_str().to_owned());
        self.stats.last_error_time = Some(at);
    }
}

/// Shared counters of one stream.
pub type SharedCounters = Arc<Mutex<StreamCounters>>;

fn with(c: &SharedCounters, f: impl FnOnce(&mut StreamCounters)) {
    if let Ok(mut g) = c.lock() {
        f(&mut g);
    }
}

/// Supervises `role` of `camera` until `shutdown` turns true or `sink` is closed, sending every
/// frame and every end of connection to `sink`.
pub async fn supervise<T: From<StreamEvent> + Send + 'static>(
    camera: Arc<dyn Camera>,
    role: StreamRole,
    opts: SupervisorOptions,
    clocks: Arc<dyn Clocks>,
    counters: SharedCounters,
    sink: mpsc::Sender<T>,
    mut shutdown: watch::Receiver<bool>,
) {
    let cam = camera.id().clone();
    let mut failures = 0u32;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let connected = tokio::select! {
            r = tokio::time::timeout(opts.connect_timeout, camera.connect(role)) => r,
            _ = shutdown.changed() => return,
        };
        let mut stream = match connected {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::warn!(camera = %cam, ?role, err = %e, "camera connection failed");
                with(&counters, |c| c.error(&e, clocks.realtime()));
                if !wait(&opts.backoff, &mut failures, &mut shutdown).await {
                    return;
                }
                continue;
            }
            Err(_) => {
                let e = Error::new(
                    ErrorKind::Unavailable,
                    format!(
                        "no answer within {:?} while connecting",
                        opts.connect_timeout
                    ),
                );
                tracing::warn!(camera = %cam, ?role, err = %e, "camera connection timed out");
                with(&counters, |c| c.error(&e, clocks.realtime()));
                if !wait(&opts.backoff, &mut failures, &mut shutdown).await {
                    return;
                }
                continue;
            }
        };
        let since = clocks.monotonic_us();
        with(&counters, |c| {
            let now = clocks.monotonic_us();
            c.stats.connections += 1;
            if c.stats.connections > 1 {
                c.reconnects.push_back(now);
            }
            c.stats.connected = true;
            c.stats.connected_since = Some(clocks.realtime());
        });
        tracing::info!(camera = %cam, ?role, "camera connected");
        let mut timeline = Timeline::default();
        let end: Error = loop {
            let next = tokio::select! {
                r = tokio::time::timeout(opts.stall_timeout, stream.next()) => r,
                _ = shutdown.changed() => {
                    let _ = sink.send(StreamEvent::Ended.into()).await;
                    return;
                }
            };
            match next {
                Ok(Ok(Some(mut f))) => {
                    let n = f.data.len();
                    let now = clocks.monotonic_us();
                    let wall = clocks.realtime();
                    if timeline.place(&mut f, wall, now) {
                        tracing::warn!(
                            camera = %cam,
                            ?role,
                            offset_s = timeline.offset as f64 / 1e6,
                            "the stream's times and the wall clock disagree (a clock step or \
                             drift): its timeline follows the wall clock from this key frame"
                        );
                        if sink.send(StreamEvent::Ended.into()).await.is_err() {
                            return;
                        }
                    }
                    with(&counters, |c| {
                        c.stats.frames += 1;
                        c.stats.bytes += n as u64;
                        c.stats.last_frame_time = Some(wall);
                        c.recent.push_back((now, n));
                        if c.recent.len() > 1000 {
                            c.trim(now);
                        }
                    });
                    if sink.send(StreamEvent::Frame(f).into()).await.is_err() {
                        return;
                    }
                }
                Ok(Ok(None)) => {
                    break Error::new(ErrorKind::Unavailable, "the camera ended the stream")
                }
                Ok(Err(e)) => break e,
                Err(_) => {
                    with(&counters, |c| c.stalls.push_back(clocks.monotonic_us()));
                    break Error::new(
                        ErrorKind::Unavailable,
                        format!("stalled: no frame for {:?}", opts.stall_timeout),
                    );
                }
            }
        };
        drop(stream);
        tracing::warn!(camera = %cam, ?role, err = %end, "camera stream ended");
        with(&counters, |c| c.error(&end, clocks.realtime()));
        if sink.send(StreamEvent::Ended.into()).await.is_err() {
            return;
        }
        let lasted = clocks.monotonic_us() - since;
        if lasted >= opts.stable_after.as_micros() as i64 {
            failures = 0;
        }
        if !wait(&opts.backoff, &mut failures, &mut shutdown).await {
            return;
        }
    }
}

/// Sleeps for the next backoff delay; false if shut down meanwhile.
async fn wait(b: &Backoff, failures: &mut u32, shutdown: &mut watch::Receiver<bool>) -> bool {
    let d = b.delay(*failures);
    *failures = failures.saturating_add(1);
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = shutdown.changed() => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 10 fps stream with a key frame every second; returns the placed times (s) and where the
    /// timeline was anchored again, for frames arriving at `arrival(i)` (wall and monotonic
    /// seconds).
    fn timeline(frames: usize, arrival: impl Fn(usize) -> (f64, f64)) -> (Vec<f64>, Vec<usize>) {
        let mut t = Timeline::default();
        let (mut times, mut moved) = (Vec::new(), Vec::new());
        for i in 0..frames {
            let mut f = VideoFrame {
                pts_90k: i as i64 * 9000,
                // Anchored at connection: the first frame's arrival.
                time: Timestamp((i as i64) * 100_000),
                is_key: i % 10 == 0,
                data: Arc::from(&b""[..]),
                new_params: None,
            };
            let (wall, mono) = arrival(i);
            let (wall, mono) = (Timestamp((wall * 1e6) as i64), (mono * 1e6) as i64);
            if t.place(&mut f, wall, mono) {
                moved.push(i);
            }
            times.push(f.time.0 as f64 / 1e6);
        }
        (times, moved)
    }

    #[test]
    fn the_timeline_follows_wall_clock_steps_at_key_frames() {
        // On time: nothing moves.
        let on_time = |i: usize| i as f64 / 10.0;
        let (times, moved) = timeline(100, |i| (on_time(i), on_time(i)));
        assert!(moved.is_empty());
        assert_eq!(times[99], 9.9);
        // The wall clock steps back an hour at frame 35: followed at the next key frame.
        let back = |i: usize| on_time(i) - if i >= 35 { 3600.0 } else { 0.0 };
        let (times, moved) = timeline(100, |i| (back(i), on_time(i)));
        assert_eq!(moved, vec![40]);
        assert_eq!((times[39], times[40]), (3.9, 4.0 - 3600.0));
        // Forward, and back again before the next key frame: nothing to follow.
        let ahead = |i: usize| on_time(i) + if i >= 35 { 3600.0 } else { 0.0 };
        let (times, moved) = timeline(200, |i| (ahead(i), on_time(i)));
        assert_eq!(moved, vec![40]);
        assert_eq!((times[39], times[40]), (3.9, 4.0 + 3600.0));
        let there_and_back = |i: usize| on_time(i) + if i == 35 { 3600.0 } else { 0.0 };
        let (_, moved) = timeline(100, |i| (there_and_back(i), on_time(i)));
        assert!(moved.is_empty());
        // Frames held up 4 s on the way (or behind a slow sink), then arriving in a burst: the
        // wall clock did not step.
        let held = |i: usize| {
            let t = on_time(i);
            if (30..70).contains(&i) {
                t.max(7.0)
            } else {
                t
            }
        };
        let (_, moved) = timeline(200, |i| (held(i), held(i)));
        assert!(moved.is_empty(), "{moved:?}");
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
        };
        let d: Vec<u64> = (0..8).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(d, vec![1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(30));
    }
}
