//! Secrets never reach a log: a whole run of vigild at `debug` for every crate, with a camera
//! whose URL holds a password, one whose password is wrong, a camera added through the API with
//! a password, an MQTT login, logins right and wrong, tokens, API keys and Basic credentials
//! in headers and in query strings, a password change and the RTSP restream played with a
//! password; then neither its output (stdout and stderr) nor what the API serves of its logs (the log, picam's and
//! SentryShot's views of it, the camera connections, the audit trail) holds any of them.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{http_with, Daemon};
use vigil_core::testing::{free_port, Mosquitto, RtspServer};

const CAMERA_PASSWORD: &str = "cam-Secret-1";
const MQTT_PASSWORD: &str = "mqtt-Secret-2";
const WRONG_CAMERA_PASSWORD: &str = "wrong-Secret-3";
const ADMIN_PASSWORD: &str = "admin-Secret-4";
const WRONG_LOGIN: &str = "typo-Secret-5";
const NEW_ADMIN_PASSWORD: &str = "admin-Secret-6";
const API_CAMERA_PASSWORD: &str = "api-Secret-7";

fn text_of(v: &serde_json::Value) -> String {
    serde_json::to_string(v).unwrap()
}

#[test]
fn no_secret_reaches_the_output_or_the_logs_the_api_serves() {
    let camera = RtspServer::start(320, 240, Some(("cam-user", CAMERA_PASSWORD)));
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("vigil.toml");
    std::fs::write(
        &config,
        format!(
            "[mqtt]\nhost = \"127.0.0.1\"\nport = {}\nuser = \"vigil\"\npassword = \"{MQTT_PASSWORD}\"\n\n\
             [cameras.gate]\nurl = \"rtsp://cam-user:{CAMERA_PASSWORD}@127.0.0.1:{}/live\"\n\n\
             [cameras.wrong]\nurl = \"rtsp://cam-user:{WRONG_CAMERA_PASSWORD}@127.0.0.1:{}/live\"\n",
            broker.port, camera.port, camera.port
        ),
    )
    .unwrap();
    // vigild logs to stdout, and says what it must tell at once on stderr: both go to one file.
    let output_path = dir.path().join("output.txt");
    let output = std::fs::File::create(&output_path).unwrap();
    let (port, rtsp_port) = (free_port(), free_port());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigild"));
    cmd.arg("--config")
        .arg(&config)
        .args(["--rtsp-listen", &format!("127.0.0.1:{rtsp_port}")])
        .env("VIGIL_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("RUST_LOG", "debug")
        .stdout(output.try_clone().unwrap())
        .stderr(output);
    let child = Daemon(Some(common::spawn_and_wait(cmd, &data, port)));
    let base = format!("http://127.0.0.1:{port}");
    let login = |password: &str| {
        let body = serde_json::json!({"username": "admin", "password": password}).to_string();
        http_with("POST", &format!("{base}/api/auth/login"), Some(&body), &[])
    };

    // Logins, wrong then right; the token in a header, a query string and a cookie.
    for _ in 0..2 {
        assert_eq!(login(WRONG_LOGIN).0, 401);
    }
    let (st, v) = login(ADMIN_PASSWORD);
    assert_eq!(st, 200, "{v}");
    let token = v["token"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {token}");
    let basic_value =
        base64::engine::general_purpose::STANDARD.encode(format!("admin:{ADMIN_PASSWORD}"));
    let basic = format!("Basic {basic_value}");
    let cookie = format!("vigil_token={token}");
    let cameras = format!("{base}/api/cameras");
    for (url, headers) in [
        (format!("{cameras}?token={token}"), vec![]),
        (cameras.clone(), vec![("authorization", bearer.as_str())]),
        (cameras.clone(), vec![("authorization", basic.as_str())]),
        (cameras.clone(), vec![("cookie", cookie.as_str())]),
    ] {
        let (st, v) = http_with("GET", &url, None, &headers);
        assert_eq!(st, 200, "{url}: {v}");
    }
    // A wrong token and a wrong key are refused (and must not be logged either).
    let (st, _) = http_with("GET", &format!("{cameras}?token={token}x"), None, &[]);
    assert_eq!(st, 401);

    // An API key, in a header and in a query string.
    let auth = [("authorization", bearer.as_str())];
    let (st, v) = http_with(
        "POST",
        &format!("{base}/api/keys"),
        Some(r#"{"name": "scripts"}"#),
        &auth,
    );
    assert_eq!(st, 201, "{v}");
    let key = v["key"].as_str().unwrap().to_owned();
    for (url, headers) in [
        (format!("{cameras}?api_key={key}"), vec![]),
        (cameras.clone(), vec![("x-api-key", key.as_str())]),
    ] {
        assert_eq!(http_with("GET", &url, None, &headers).0, 200, "{url}");
    }

    // A camera added through the API, whose password is in its URL (nothing listens there: it
    // fails, and its failures are logged).
    let body = serde_json::json!({
        "name": "door",
        "url": format!("rtsp://door-user:{API_CAMERA_PASSWORD}@127.0.0.1:{}/x", free_port()),
    })
    .to_string();
    let (st, v) = http_with("POST", &cameras, Some(&body), &auth);
    assert!(st == 200 || st == 201, "{st} {v}");

    // The RTSP restream played with the admin's password.
    let wait_for_recording = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, v) = http_with("GET", &format!("{cameras}/gate"), None, &auth);
        if text_of(&v).contains("\"connected\":true") {
            break;
        }
        assert!(
            Instant::now() < wait_for_recording,
            "gate never connected: {v}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-rtsp_transport",
            "tcp",
            "-show_entries",
            "stream=codec_name",
        ])
        .args(["-of", "csv=p=0"])
        .arg(format!(
            "rtsp://admin:{ADMIN_PASSWORD}@127.0.0.1:{rtsp_port}/gate"
        ))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&probe.stdout).trim(),
        "h264",
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );

    // The password changed, then a login with the new one.
    let body =
        serde_json::json!({"current": ADMIN_PASSWORD, "new": NEW_ADMIN_PASSWORD}).to_string();
    let (st, v) = http_with(
        "POST",
        &format!("{base}/auth/set-password"),
        Some(&body),
        &auth,
    );
    assert_eq!(st, 200, "{v}");
    let (st, v) = login(NEW_ADMIN_PASSWORD);
    assert_eq!(st, 200, "{v}");
    let token2 = v["token"].as_str().unwrap().to_owned();
    let auth2 = [("x-api-key", key.as_str())];

    // Let the wrong camera and the API's camera fail a few times, the broker see vigild.
    std::thread::sleep(Duration::from_secs(6));
    let mut served = String::new();
    let mut by_path = std::collections::HashMap::new();
    for path in [
        "/api/logs?limit=1000",
        "/logs/api?limit=1000",
        "/api/log/query?limit=1000",
        "/logs/mediamtx",
        "/api/audit?limit=1000",
        "/api/config",
        "/api/cameras",
    ] {
        let (st, v) = http_with("GET", &format!("{base}{path}"), None, &auth2);
        assert_eq!(st, 200, "{path}: {v}");
        served.push_str(&text_of(&v));
        served.push('\n');
        by_path.insert(path, text_of(&v));
    }
    common::stop(Daemon::take(child));
    let printed = std::fs::read_to_string(&output_path).unwrap();

    // The logs are there and say what happened, so that the check below means something.
    for (what, path, needle) in [
        (
            "the wrong camera's failure",
            "/api/logs?limit=1000",
            "wrong or missing credentials",
        ),
        ("the API's camera failing", "/api/logs?limit=1000", "door"),
        ("the failed logins", "/api/audit?limit=1000", "failure"),
        (
            "the camera connections",
            "/logs/mediamtx",
            "wrong or missing credentials",
        ),
    ] {
        assert!(
            by_path[path].contains(needle),
            "{path} lacks {what}: {}",
            by_path[path]
        );
    }
    for needle in [
        "wrong or missing credentials",
        "door",
        "/api/auth/login",
        "/api/keys",
    ] {
        assert!(printed.contains(needle), "the output lacks {needle:?}");
    }
    assert!(
        printed.lines().count() > 50,
        "the output at debug is short:\n{printed}"
    );
    for (what, secret) in [
        ("the camera's password", CAMERA_PASSWORD),
        ("the MQTT password", MQTT_PASSWORD),
        ("the wrong camera password", WRONG_CAMERA_PASSWORD),
        ("the admin's password", ADMIN_PASSWORD),
        ("a mistyped password", WRONG_LOGIN),
        ("the new password", NEW_ADMIN_PASSWORD),
        ("the API camera's password", API_CAMERA_PASSWORD),
        ("a token", token.as_str()),
        ("the second token", token2.as_str()),
        ("the API key", key.as_str()),
        ("Basic credentials", basic_value.as_str()),
    ] {
        for (place, text) in [("the output", &printed), ("the API's logs", &served)] {
            if let Some(at) = text.find(secret) {
                let from = text[..at].rfind('\n').map_or(0, |i| i + 1);
                let to = text[at..].find('\n').map_or(text.len(), |i| at + i);
                panic!("{what} is in {place}: {}", &text[from..to.min(from + 2000)]);
            }
        }
    }
}
