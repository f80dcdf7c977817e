//! A recorded segment and a clip play in a real browser's `<video>` element: headless Chromium
//! loads each, reads its duration and size, decodes its first frame, and seeks to its end and
//! decodes there. (Playing to the end does not happen under headless virtual time, for any file.)

use std::path::Path;
use std::process::Command;

use vigil_core::h264::AccessUnits;
use vigil_core::mp4::{self, ClipPart, SegmentWriter, TIMESCALE};
use vigil_core::testing::make_h264;

const PAGE: &str = r#"<!doctype html><html><body><video id=v muted preload=auto src="VIDEO"></video>
<pre id=out>pending</pre><script>
const v = document.getElementById('v'), out = document.getElementById('out');
let said = '';
const say = (s) => { said += s; out.textContent = said; };
v.addEventListener('loadedmetadata', () => say('meta ' + v.duration.toFixed(2) + ' ' + v.videoWidth + 'x' + v.videoHeight));
v.addEventListener('loadeddata', () => { say(' data'); v.currentTime = v.duration - 0.05; }, { once: true });
v.addEventListener('seeked', () => say(' seeked ' + (v.readyState >= 2 ? 'frame' : 'noframe')));
v.addEventListener('error', () => say(' error ' + (v.error && v.error.code)));
</script></body></html>"#;

/// What the page says after Chromium loaded `video`, tried up to four times until it says
/// `want`: under headless virtual time a seek sometimes does not complete within the budget,
/// for any file (ffmpeg's own MP4s included), so one miss is the harness, not the file.
fn play_in_chromium(dir: &Path, video: &Path, want: &str) -> String {
    let mut got = String::new();
    for attempt in 0..4 {
        got = chromium_once(&dir.join(format!("try{attempt}")), video);
        if got == want {
            break;
        }
    }
    got
}

fn chromium_once(dir: &Path, video: &Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let name = video.file_name().unwrap().to_str().unwrap();
    std::fs::copy(video, dir.join(name)).unwrap();
    let page = dir.join(format!(
        "{}.html",
        video.file_stem().unwrap().to_string_lossy()
    ));
    std::fs::write(
        &page,
        PAGE.replace("VIDEO", video.file_name().unwrap().to_str().unwrap()),
    )
    .unwrap();
    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok())
        .expect("chromium is not installed: `bash .ci/run` installs it");
    let out = Command::new(chromium)
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
            "--virtual-time-budget=15000",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let start = dom.find("<pre id=\"out\">").expect("page rendered") + 14;
    dom[start..].split('<').next().unwrap().to_owned()
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
    let want = "meta 2.00 320x240 data seeked frame";
    assert_eq!(play_in_chromium(dir.path(), &seg, want), want);

    let info = mp4::read(&seg).unwrap();
    let clip = dir.path().join("clip.mp4");
    let mut f = std::fs::File::create(&clip).unwrap();
    let parts = [ClipPart {
        path: &seg,
        samples: info.samples[30..].to_vec(),
    }];
    mp4::write_clip(&mut f, &info.params, &parts).unwrap();
    drop(f);
    let want = "meta 1.00 320x240 data seeked frame";
    assert_eq!(play_in_chromium(dir.path(), &clip, want), want);
}
