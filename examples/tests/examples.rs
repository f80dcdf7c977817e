//! The examples run as users run them, and do what they say. `cargo test` (and nextest) build
//! every example before the tests run; the binaries are found beside this test's.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vigil_core::testing::free_port;

fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let p = dir.join("examples").join(name);
    assert!(
        p.exists(),
        "{} is not built (cargo test builds the examples)",
        p.display()
    );
    p
}

fn run(name: &str, args: &[&str]) -> String {
    let out = Command::new(example(name))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name}: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn record_camera_records_and_cuts_a_clip() {
    let out = run("record_camera", &["synthetic", "12"]);
    assert!(out.contains("clip of the last 5 s"), "{out}");
    assert!(
        out.lines().filter(|l| l.contains(".mp4")).count() >= 2,
        "{out}"
    );
}

#[test]
fn store_events_answers_a_dashboards_questions() {
    let out = run("store_events", &[]);
    assert!(!out.trim().is_empty());
}

#[test]
fn embed_pipeline_prints_events_as_they_happen() {
    let out = run("embed_pipeline", &["synthetic", "15"]);
    assert!(
        out.contains("event ") && out.contains("motion on yard"),
        "{out}"
    );
    let summary = out
        .lines()
        .find(|l| l.contains(" events, "))
        .unwrap_or_else(|| panic!("{out}"));
    let n: u32 = summary.split(' ').next().unwrap().parse().unwrap();
    assert!(n >= 1, "{summary}");
}

fn get(url: &str) -> serde_json::Value {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    match agent.get(url).call() {
        Ok(mut r) => serde_json::from_str(&r.body_mut().read_to_string().unwrap_or_default())
            .unwrap_or(serde_json::Value::Null),
        Err(_) => serde_json::Value::Null,
    }
}

#[test]
fn a_daemon_with_its_own_detector_kind_and_a_script_that_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("red.toml");
    std::fs::write(
        &cfg,
        "[detectors.red]\nkind = \"red\"\nmin_score = 0.5\n\n\
         [cameras.yard]\nurl = \"synthetic:640x360@10\"\n\
         detect = { fps = 5, labels = [\"red_thing\"] }\n",
    )
    .unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = Command::new(example("custom_detector"))
        .arg("--config")
        .arg(&cfg)
        .args(["--no-auth", "--no-demo", "--full-frame", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut daemon = Daemon(Some(child));
    // The synthetic scene's box crosses every 6 s: the detector of this program finds it.
    let end = Instant::now() + Duration::from_secs(60);
    let event = loop {
        let v = get(&format!("{base}/api/events?labels=red_thing"));
        if let Some(e) = v["events"].as_array().and_then(|a| a.first()) {
            break e.clone();
        }
        assert!(
            Instant::now() < end,
            "no red_thing event: {}",
            get(&format!("{base}/api/stats"))
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(event["camera"], "yard");
    let stats = get(&format!("{base}/api/stats"));
    let detector = &stats["detectors"]["red"];
    assert!(
        detector["inference_speed"].as_f64().unwrap_or(0.0) > 0.0,
        "{stats}"
    );

    // The script: a report of the last hour, the newest snapshot saved, events reviewed.
    let before_script = jiff::Timestamp::now().as_second();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/events_report.py");
    let out = Command::new("python3")
        .args([
            script,
            "--hours",
            "1",
            "--json",
            "--review",
            "--snapshot-dir",
        ])
        .arg(dir.path())
        .env("VIGIL_URL", &base)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["cameras"]["yard"], "online", "{report}");
    assert!(report["events"].as_u64().unwrap() >= 1);
    assert!(report["by_camera_and_label"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["label"] == "red_thing"));
    let snap = report["snapshot"].as_str().expect("a snapshot");
    let jpeg = std::fs::read(snap).unwrap();
    assert!(jpeg.starts_with(&[0xff, 0xd8]));
    assert!(report["reviewed"].as_u64().unwrap() >= 1);
    // Every event that began before the script ran is reviewed, and stays so while the
    // pipeline goes on updating the ones still in progress.
    std::thread::sleep(Duration::from_secs(2));
    let unreviewed = get(&format!(
        "{base}/api/events?reviewed=0&labels=red_thing&before={before_script}"
    ));
    assert_eq!(
        unreviewed["events"].as_array().map(Vec::len),
        Some(0),
        "{unreviewed}"
    );
    // A wrong address is exit 5, as for `vigil`.
    let down = Command::new("python3")
        .arg(script)
        .env("VIGIL_URL", format!("http://127.0.0.1:{}", free_port()))
        .output()
        .unwrap();
    assert_eq!(down.status.code(), Some(5));

    let child = daemon.0.take().unwrap();
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    assert!(child.wait_with_output().unwrap().status.success());
}

/// A daemon killed if the test fails before it stops it.
struct Daemon(Option<std::process::Child>);

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
