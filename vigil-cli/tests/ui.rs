//! The web interface in a real browser: vigild (authentication on, the demo camera recording,
//! GStreamer's RTSP server for the camera the script adds) driven by `tests/ui/ui.mjs` in
//! Debian's Chromium through playwright-core, with axe-core's accessibility checks. The
//! script's screenshots of each page are left in `target/tmp/ui-screenshots/` for review.

mod common;
use common::Daemon;

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use vigil_core::testing::{free_port, RtspServer};

const ADMIN: &str = "ui-admin-password";
const VIEWER: &str = "ui-viewer-password";

#[test]
fn the_web_interface_works_in_a_browser() {
    let ui = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui");
    assert!(
        ui.join("node_modules/playwright-core").exists() && ui.join("node_modules/axe-core").exists(),
        "playwright-core or axe-core is not installed: `bash .ci/run` installs them (npm ci --prefix {})",
        ui.display()
    );
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|c| Path::new(c).exists())
        .expect("chromium is not installed: `bash .ci/run` installs it");
    let dir = tempfile::tempdir().unwrap();
    // The camera a person adds in the settings: real RTSP, a moving ball.
    let rtsp = RtspServer::start(640, 360, None);
    let port = free_port();
    let daemon = Daemon(Some(common::start_secured(
        &dir.path().join("data"),
        port,
        Some(ADMIN),
        &[],
    )));
    let base = format!("http://127.0.0.1:{port}");

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("admin:{ADMIN}"))
    );
    // The demo camera's first frame, before a page asks for it.
    let end = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let r = agent
            .get(&format!("{base}/api/demo/latest.jpg"))
            .header("Authorization", &basic)
            .call()
            .unwrap();
        if r.status().as_u16() == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < end,
            "no frame from the demo camera"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
    let out = Command::new("node")
        .arg("ui.mjs")
        .current_dir(&ui)
        .env("VIGIL_URL", &base)
        .env("RTSP_URL", rtsp.url())
        .env("ADMIN_PASSWORD", ADMIN)
        .env("VIEWER_PASSWORD", VIEWER)
        .env("CHROMIUM", chromium)
        .env("SCREENSHOTS", &shots)
        .output()
        .expect("node is not installed: `bash .ci/run` installs it");
    let said = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    common::stop(daemon.take());
    assert!(out.status.success(), "{said}");
    assert!(said.contains("\nok"), "{said}");
    // axe-core found nothing serious on each page it looked at, and it looked at them all.
    assert!(
        said.contains(
            "accessibility checked: login, camera form, settings, live, camera, events, event, \
             zones, alert rules, recordings, system, live on a phone, settings-phone, \
             zones-phone, recordings-phone, system-phone"
        ),
        "{said}"
    );
    for page in [
        "login",
        "live",
        "settings",
        "camera-form",
        "camera",
        "events",
        "event",
        "zones",
        "zones-saved",
        "alerts",
        "recordings",
        "system",
        "live-phone",
    ] {
        let p = shots.join(format!("{page}.png"));
        let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        assert!(len > 1000, "no screenshot {}", p.display());
    }
    // The README shows the event page, a copy of this run's event.png.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(readme.contains("](docs/images/event-page.png)"));
    assert!(root.join("docs/images/event-page.png").exists());
}
