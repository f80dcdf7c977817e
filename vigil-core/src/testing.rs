//! Test support shared by Vigil's crates (feature `test-util`): media made with ffmpeg, checks
//! with ffprobe, and a real RTSP server (GStreamer's, through Python's GObject bindings), all
//! bound to 127.0.0.1 and stopped when dropped.
//!
//! These tools come from Debian packages that the project's test command installs when they are
//! missing; a helper that cannot find one panics with a message saying so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::pipeline::{CameraTask, CameraTaskOptions, SupervisorOptions};
use crate::{
    Camera, Clocks, IdGenerator, Order, Query, RealClocks, Recording, RecordingFilter, Store,
};

fn tool(name: &str) -> Command {
    let c = Command::new(name);
    if which(name).is_none() {
        panic!("{name} is not installed: `bash .ci/run` installs it (Debian package ffmpeg / GStreamer)");
    }
    c
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Encodes `seconds` of ffmpeg's `testsrc2` pattern at `width`x`height`, `fps`, to an Annex B
/// H.264 file with no B-frames and a key frame every `gop` frames.
pub fn make_h264(dir: &Path, width: u32, height: u32, fps: u32, seconds: u32, gop: u32) -> PathBuf {
    let out = dir.join(format!("test-{width}x{height}-{fps}-{seconds}-{gop}.h264"));
    let st = tool("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={width}x{height}:rate={fps}"))
        .args([
            "-t",
            &seconds.to_string(),
            "-c:v",
            "libx264",
            "-bf",
            "0",
            "-g",
        ])
        .arg(gop.to_string())
        .args(["-pix_fmt", "yuv420p"])
        .arg(&out)
        .status()
        .expect("run ffmpeg");
    assert!(st.success(), "ffmpeg failed to make test media");
    out
}

/// Remuxes an H.264 file into a regular (progressive) MP4 with ffmpeg.
pub fn make_mp4(h264: &Path, fps: u32) -> PathBuf {
    let out = h264.with_extension("mp4");
    let st = tool("ffmpeg")
        .args(["-v", "error", "-y", "-r", &fps.to_string(), "-i"])
        .arg(h264)
        .args(["-c", "copy"])
        .arg(&out)
        .status()
        .expect("run ffmpeg");
    assert!(st.success(), "ffmpeg failed to remux");
    out
}

/// What ffprobe says about a video file.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// `h264`, `hevc`...
    pub codec: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Video packets counted by reading the whole file.
    pub frames: u64,
    /// Container duration in seconds.
    pub duration: f64,
}

/// Runs ffprobe on `path`, reading every packet; panics with ffprobe's output if the file is
/// not a valid video.
pub fn ffprobe(path: &Path) -> Probe {
    let out = tool("ffprobe")
        .args([
            "-v",
            "error",
            "-count_packets",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,width,height,nb_read_packets:format=duration",
            "-of",
            "default=noprint_wrappers=1",
        ])
        .arg(path)
        .output()
        .expect("run ffprobe");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success() && err.trim().is_empty(),
        "ffprobe {}: {err}",
        path.display()
    );
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("ffprobe gave no {k} for {}: {text}", path.display()))
            .to_owned()
    };
    Probe {
        codec: get("codec_name"),
        width: get("width").parse().unwrap(),
        height: get("height").parse().unwrap(),
        frames: get("nb_read_packets").parse().unwrap(),
        duration: get("duration").parse().unwrap(),
    }
}

/// The system's clocks, with a wall clock that a test can step as NTP (or someone setting the
/// time) does; the monotonic clock runs on untouched.
#[derive(Debug, Default)]
pub struct SteppedClocks {
    real: RealClocks,
    offset_us: std::sync::atomic::AtomicI64,
}

impl SteppedClocks {
    /// Steps the wall clock forward by `by`.
    pub fn step_forward(&self, by: Duration) {
        self.add(i64::try_from(by.as_micros()).unwrap_or(i64::MAX));
    }

    /// Steps the wall clock back by `by`.
    pub fn step_back(&self, by: Duration) {
        self.add(-i64::try_from(by.as_micros()).unwrap_or(i64::MAX));
    }

    fn add(&self, us: i64) {
        self.offset_us
            .fetch_add(us, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clocks for SteppedClocks {
    fn realtime(&self) -> crate::Timestamp {
        let t = self.real.realtime();
        crate::Timestamp(t.0 + self.offset_us.load(std::sync::atomic::Ordering::SeqCst))
    }

    fn monotonic_us(&self) -> i64 {
        self.real.monotonic_us()
    }
}

/// A free TCP port on 127.0.0.1, for a server a test starts in another process (vigild,
/// GStreamer, mosquitto).
///
/// Not one the kernel picks (`bind` to port 0): those come from the ephemeral range, where
/// every outgoing connection takes its local port too, so between this call and the server's
/// `bind` a connection of another test could take it. Ports below that range (20000 to
/// 32767) are handed out in turn from an offset drawn from the process id, so two test
/// processes rarely try the same one, and each is checked free before it is given.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_768;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let start = std::process::id().wrapping_mul(2_654_435_761) % COUNT;
    let _ = NEXT.compare_exchange(u32::MAX, start, Ordering::Relaxed, Ordering::Relaxed);
    for _ in 0..COUNT {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = u16::try_from(FIRST + n % COUNT).expect("under 32768");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {FIRST}..{}", FIRST + COUNT);
}

/// GStreamer's RTSP server on 127.0.0.1, serving live H.264 test patterns. Stopped on drop.
///
/// GStreamer's server sometimes aborts on an assertion (`gst_rtsp_media_get_rates`) when two
/// clients start playing one shared stream at the same moment, as a camera's record and detect
/// connections do. A watchdog restarts it on the same port, as a camera that reboots would
/// come back, and says so on stderr; [`RtspServer::stop`] is a crash the watchdog leaves alone.
pub struct RtspServer {
    state: Arc<std::sync::Mutex<ServerState>>,
    /// Its port.
    pub port: u16,
    _dir: tempfile::TempDir,
}

struct ServerState {
    child: Option<Child>,
    /// Whether the server should be running (false after `stop`).
    wanted: bool,
    script: PathBuf,
    port: u16,
    width: u32,
    height: u32,
    credentials: Option<(String, String)>,
}

const RTSP_SERVER_PY: &str = r#"
import signal, sys
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtspServer, GLib

port, width, height, user, password = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
Gst.init(None)
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(
    "( videotestsrc is-live=true pattern=ball ! video/x-raw,width=%d,height=%d,framerate=30/1 "
    "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bitrate=2000 "
    "! rtph264pay name=pay0 pt=96 config-interval=1 )" % (width, height))
factory.set_shared(True)
if user:
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string("media.factory.role", "user")
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
    server.set_auth(auth)
    perms = GstRtspServer.RTSPPermissions()
    perms.add_role("user")
    perms.add_permission_for_role("user", "media.factory.access", True)
    perms.add_permission_for_role("user", "media.factory.construct", True)
    factory.set_permissions(perms)
server.get_mount_points().add_factory("/live", factory)
hevc = GstRtspServer.RTSPMediaFactory()
hevc.set_launch(
    "( videotestsrc is-live=true pattern=ball ! video/x-raw,width=%d,height=%d,framerate=30/1 "
    "! x265enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bitrate=1000 "
    "! rtph265pay name=pay0 pt=96 config-interval=1 )" % (width, height))
hevc.set_shared(True)
server.get_mount_points().add_factory("/h265", hevc)
server.attach(None)
loop = GLib.MainLoop()
GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
print("ready", flush=True)
loop.run()
"#;

impl RtspServer {
    /// Starts a server with two mounts, `/live` (H.264) and `/h265` (H.265), at
    /// `width`x`height`, 30 fps, a key frame every second; with `credentials`, `/live` demands
    /// them (basic auth).
    pub fn start(width: u32, height: u32, credentials: Option<(&str, &str)>) -> RtspServer {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("rtsp_server.py");
        std::fs::write(&script, RTSP_SERVER_PY).unwrap();
        let port = free_port();
        let state = Arc::new(std::sync::Mutex::new(ServerState {
            child: None,
            wanted: false,
            script,
            port,
            width,
            height,
            credentials: credentials.map(|(u, p)| (u.to_owned(), p.to_owned())),
        }));
        let s = RtspServer {
            state,
            port,
            _dir: dir,
        };
        s.resume();
        let weak = Arc::downgrade(&s.state);
        std::thread::spawn(move || watchdog(weak));
        s
    }

    /// The URL of the live mount, without credentials.
    pub fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/live", self.port)
    }

    /// Kills the server (as a crash would).
    pub fn stop(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.wanted = false;
        if let Some(mut c) = st.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port; returns once it accepts connections.
    pub fn resume(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        assert!(st.child.is_none(), "already running");
        st.spawn();
        st.wanted = true;
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(code) = st.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("RTSP server exited: {code}");
            }
            assert!(
                Instant::now() < deadline,
                "RTSP server did not start in 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl ServerState {
    fn spawn(&mut self) {
        let (u, p) = self.credentials.clone().unwrap_or_default();
        // Debian's python has the gi module; a python earlier on PATH may not.
        let python = if Path::new("/usr/bin/python3").exists() {
            "/usr/bin/python3"
        } else {
            "python3"
        };
        let child = Command::new(python)
            .arg(&self.script)
            .args([
                self.port.to_string(),
                self.width.to_string(),
                self.height.to_string(),
                u,
                p,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the GStreamer RTSP server (python3-gi, gir1.2-gst-rtsp-server-1.0)");
        self.child = Some(child);
    }
}

/// Restarts a server that died without being asked to, until the server is dropped.
fn watchdog(state: std::sync::Weak<std::sync::Mutex<ServerState>>) {
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let Some(state) = state.upgrade() else { return };
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        if !st.wanted {
            continue;
        }
        let exited = match st.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(Some(code))) => code,
            _ => continue,
        };
        // Test support, outside any log: the test's own output is the place to say so.
        let _ = writeln!(
            std::io::stderr(),
            "testing: the RTSP server on port {} exited ({exited}); restarting it",
            st.port
        );
        st.spawn();
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl RtspServer {
    /// Freezes the server process (SIGSTOP): its sockets stay open but nothing is sent, as a
    /// hung camera does.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Resumes a frozen server (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .child
            .as_ref()
            .expect("running")
            .id();
        let st = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    }
}

/// Debian's mosquitto MQTT broker on 127.0.0.1, anonymous, without persistence (a restart
/// forgets retained messages, so clients must publish them again). Stopped on drop.
pub struct Mosquitto {
    child: std::sync::Mutex<Option<Child>>,
    /// Its port.
    pub port: u16,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    /// Starts a broker on a free port.
    pub fn start() -> Mosquitto {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = dir.path().join("mosquitto.conf");
        std::fs::write(
            &config,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        )
        .unwrap();
        let m = Mosquitto {
            child: std::sync::Mutex::new(None),
            port,
            config,
            _dir: dir,
        };
        m.resume();
        m
    }

    /// Kills the broker (as a crash would).
    pub fn stop(&self) {
        if let Some(mut c) = self.child.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port; returns once it accepts connections.
    pub fn resume(&self) {
        let mut slot = self.child.lock().unwrap_or_else(|e| e.into_inner());
        assert!(slot.is_none(), "already running");
        let exe = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .map(PathBuf::from)
            .or_else(|| which("mosquitto"))
            .expect(
                "mosquitto is not installed: `bash .ci/run` installs it (Debian package mosquitto)",
            );
        let mut child = Command::new(exe)
            .arg("-c")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(st) = child.try_wait().unwrap() {
                panic!("mosquitto exited: {st}");
            }
            assert!(Instant::now() < deadline, "mosquitto did not start in 20 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        *slot = Some(child);
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts recording `camera` into `data` (segments of `segment`, fragments of 500 ms) and
/// `store`, with the given supervision.
pub async fn record(
    camera: Arc<dyn Camera>,
    data: &Path,
    store: Arc<dyn Store>,
    supervisor: SupervisorOptions,
    segment: Duration,
) -> CameraTask {
    let mut opts = CameraTaskOptions::new(data);
    opts.supervisor = supervisor;
    opts.recorder.segment_duration = segment;
    opts.recorder.fragment_duration = Duration::from_millis(500);
    let ids = Arc::new(IdGenerator::new(store.max_id().await.unwrap()));
    let clocks: Arc<dyn Clocks> = Arc::new(RealClocks::default());
    CameraTask::start(camera, opts, store, ids, clocks).unwrap()
}

/// Every recording in the store, oldest first.
pub async fn all_recordings(store: &dyn Store) -> Vec<Recording> {
    let mut q = Query::new(RecordingFilter::default());
    q.order = Order::Asc;
    q.page.limit = 1000;
    let mut all = Vec::new();
    loop {
        let page = store.recordings(&q).await.unwrap();
        all.extend(page.items);
        match page.next_cursor {
            Some(c) => q.page.cursor = Some(c),
            None => return all,
        }
    }
}

/// Checks that every listed recording exists and plays with its frame count and duration, and
/// that no other file is left under `recordings/` (nothing in `.open` or `.trash`, no orphan).
pub fn check_recordings_consistent(data: &Path, recs: &[Recording]) {
    for r in recs {
        check_playable(data, r);
    }
    check_files_match(data, recs);
}

/// Checks with ffprobe that a recording's file plays with its frame count, duration and size.
pub fn check_playable(data: &Path, r: &Recording) {
    let path = data.join(&r.path);
    assert!(path.is_file(), "listed but missing: {}", r.path);
    let p = ffprobe(&path);
    assert_eq!(p.frames, u64::from(r.frames), "{}", r.path);
    let secs = r.duration_us() as f64 / 1e6;
    assert!(
        (p.duration - secs).abs() < 0.05,
        "{}: {p:?} vs {secs}",
        r.path
    );
    assert_eq!(std::fs::metadata(&path).unwrap().len(), r.size_bytes);
}

/// Checks that the files under `recordings/` are exactly the listed recordings' files (and the
/// thumbnails and sprite sheets their records name).
pub fn check_files_match(data: &Path, recs: &[Recording]) {
    let mut listed: Vec<PathBuf> = recs
        .iter()
        .flat_map(|r| {
            [
                Some(&r.path),
                r.thumbnail_path.as_ref(),
                r.sprite_path.as_ref(),
            ]
            .into_iter()
            .flatten()
            .map(|p| data.join(p))
        })
        .collect();
    let mut on_disk = Vec::new();
    walk(&data.join("recordings"), &mut on_disk);
    on_disk.sort();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "files on disk and recordings listed differ"
    );
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// CPU time (user + system) this process has used, in seconds.
pub fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f[11].parse().unwrap();
    let stime: f64 = f[12].parse().unwrap();
    (utime + stime) / 100.0
}
