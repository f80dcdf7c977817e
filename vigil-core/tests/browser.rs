//! A recorded segment and a clip play in a real browser's `<video>` element: headless Chromium
//! loads each, reads its duration and size, decodes its first frame, and seeks to its end and
//! decodes there. The page reports what it saw to a listener of the test's own in real time
//! (headless virtual time does not wait for the media pipeline, so a seek could be cut short).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vigil_core::h264::AccessUnits;
use vigil_core::mp4::{self, ClipPart, SegmentWriter, TIMESCALE};
use vigil_core::testing::make_h264;

const PAGE: &str = r#"<!doctype html><html><body><video id=v muted preload=auto src="VIDEO"></video>
<script>
const v = document.getElementById('v');
let said = '', sent = false;
const report = () => { if (!sent) { sent = true; new Image().src = 'REPORT?said=' + encodeURIComponent(said); } };
const say = (s) => { said += s; };
v.addEventListener('loadedmetadata', () => say('meta ' + v.duration.toFixed(2) + ' ' + v.videoWidth + 'x' + v.videoHeight));
v.addEventListener('loadeddata', () => { say(' data'); v.currentTime = v.duration - 0.05; }, { once: true });
v.addEventListener('seeked', () => { say(' seeked ' + (v.readyState >= 2 ? 'frame' : 'noframe')); report(); });
v.addEventListener('error', () => { say(' error ' + (v.error && v.error.code)); report(); });
setTimeout(report, 30000);
</script></body></html>"#;

/// What the page says after Chromium loaded `video`: the events it saw, reported to a
/// listener on loopback once the seek completed or failed, or after 30 s.
fn play_in_chromium(dir: &Path, video: &Path) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let report = format!("http://{}/report", listener.local_addr().unwrap());
    let name = video.file_name().unwrap().to_str().unwrap();
    let page = dir.join(format!("{name}.html"));
    std::fs::write(
        &page,
        PAGE.replace("VIDEO", name).replace("REPORT", &report),
    )
    .unwrap();
    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok())
        .expect("chromium is not installed: `bash .ci/run` installs it");
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--autoplay-policy=no-user-gesture-required",
            "--allow-file-access-from-files",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.join(format!("profile-{name}")).display()
        ))
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let said = loop {
        match listener.accept() {
            Ok((mut conn, _)) => {
                conn.set_nonblocking(false).unwrap();
                conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut buf = [0u8; 4096];
                let n = conn.read(&mut buf).unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).into_owned();
                let _ = conn.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
                let Some(query) = request
                    .lines()
                    .next()
                    .and_then(|l| l.split(' ').nth(1))
                    .and_then(|target| target.split_once("said="))
                else {
                    continue; // favicon and the like
                };
                break percent_decode(query.1);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    break "no report from chromium within 90 s".to_owned();
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    said
}

/// Decodes the `%XX` escapes `encodeURIComponent` wrote.
fn percent_decode(s: &str) -> String {
    let mut out = Vec::new();
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex: String = bytes.by_ref().take(2).map(char::from).collect();
            out.push(u8::from_str_radix(&hex, 16).unwrap_or(b'?'));
        } else {
            out.push(b);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn segments_and_clips_play_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let h264 = make_h264(dir.path(), 320, 240, 30, 2, 30);
    let aus = AccessUnits::default()
        .split(&std::fs::read(h264).unwrap())
        .unwrap();
    let seg = dir.path().join("segment.mp4");
    let mut w = SegmentWriter::create(&seg, aus[0].params.clone(), TIMESCALE.into()).unwrap();
    let tick = i64::from(TIMESCALE / 30);
    for (i, au) in aus.iter().enumerate() {
        w.push(i as i64 * tick, &au.data, au.is_key).unwrap();
    }
    w.finish(Some(aus.len() as i64 * tick)).unwrap();
    assert_eq!(
        play_in_chromium(dir.path(), &seg),
        "meta 2.00 320x240 data seeked frame"
    );

    let info = mp4::read(&seg).unwrap();
    let clip = dir.path().join("clip.mp4");
    let mut f = std::fs::File::create(&clip).unwrap();
    let parts = [ClipPart {
        path: &seg,
        samples: info.samples[30..].to_vec(),
    }];
    mp4::write_clip(&mut f, &info.params, &parts).unwrap();
    drop(f);
    assert_eq!(
        play_in_chromium(dir.path(), &clip),
        "meta 1.00 320x240 data seeked frame"
    );
}
