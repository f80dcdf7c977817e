//! `vigil` against a running vigild (authentication on, the demo camera recording): every
//! subcommand, its table and its JSON, and the exit codes scripts rely on. And the offline
//! commands: `detect` on a picture, `check` (and `--repair`) of a data directory, `bench`,
//! `model list`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use vigil_core::testing::{ffprobe, free_port};

const PASSWORD: &str = "cli-test-password";

/// A `vigil` run: exit code, standard output, standard error.
struct Run {
    code: i32,
    out: String,
    err: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.out)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.out, self.err))
    }

    #[track_caller]
    fn ok(self) -> Run {
        assert_eq!(self.code, 0, "stdout: {}\nstderr: {}", self.out, self.err);
        self
    }
}

/// Runs `vigil` with only the environment given (HOME in `home`, so no config file of the
/// machine's user is read).
fn vigil_in(home: &Path, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
    for k in [
        "VIGIL_URL",
        "VIGIL_USER",
        "VIGIL_PASSWORD",
        "VIGIL_API_KEY",
        "VIGIL_CLI_CONFIG",
        "VIGIL_NEW_PASSWORD",
        "XDG_CONFIG_HOME",
    ] {
        cmd.env_remove(k);
    }
    cmd.env("HOME", home).current_dir(home).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = child.id().to_string();
    // No command of these tests takes long: one that hangs is killed and fails its test.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(90)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            rx.recv().unwrap().unwrap()
        }
    };
    Run {
        code: out.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

struct Vigil {
    home: tempfile::TempDir,
    url: String,
}

impl Vigil {
    /// As the admin, through the environment.
    fn run(&self, args: &[&str]) -> Run {
        self.run_env(
            &[("VIGIL_USER", "admin"), ("VIGIL_PASSWORD", PASSWORD)],
            args,
        )
    }

    fn run_env(&self, env: &[(&str, &str)], args: &[&str]) -> Run {
        let mut all = vec![("VIGIL_URL", self.url.as_str())];
        all.extend_from_slice(env);
        vigil_in(self.home.path(), &all, args)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.home.path().join(name)
    }
}

/// Waits for `f` to give something, for at most `secs`.
fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "waited {secs} s for {what}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn is_jpeg(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|b| b.starts_with(&[0xff, 0xd8]) && b.ends_with(&[0xff, 0xd9]))
}

#[test]
fn every_remote_command_against_a_running_vigild() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let child = common::start_secured(&data, port, Some(PASSWORD), &[]);
    let v = Vigil {
        home: tempfile::tempdir().unwrap(),
        url: format!("http://127.0.0.1:{port}"),
    };

    // status: the demo camera online.
    let st = wait_for(30, "the demo camera online", || {
        let r = v.run(&["--json", "status"]);
        let j = (r.code == 0).then(|| r.json())?;
        (j["cameras"][0]["status"] == "online").then_some(j)
    });
    assert!(st["version"].as_str().unwrap().contains("vigil"), "{st}");
    assert_eq!(st["cameras"][0]["id"], "demo");
    let human = v.run(&["status"]).ok();
    assert!(human.out.contains("CAMERA"), "{}", human.out);
    assert!(
        human
            .out
            .lines()
            .any(|l| l.starts_with("demo") && l.contains("online")),
        "{}",
        human.out
    );

    // cameras: add, list, show, disable, enable, remove.
    let added = v
        .run(&[
            "--json",
            "cameras",
            "add",
            "Side Gate",
            "synthetic:320x180@5",
            "--record",
            "events",
            "--no-detect",
        ])
        .ok()
        .json();
    assert_eq!(added["id"], "side_gate");
    assert_eq!(added["record"]["mode"], "events");
    assert_eq!(added["detect"]["enabled"], false);
    let list = v.run(&["cameras", "list"]).ok();
    assert!(list.out.starts_with("CAMERA "), "{}", list.out);
    assert!(list.out.contains("side_gate") && list.out.contains("synthetic:320x180@5"));
    let listed = v.run(&["--json", "cameras", "list"]).ok().json();
    assert_eq!(listed["count"], 2);
    let show = v.run(&["cameras", "show", "side_gate"]).ok();
    assert!(
        show.out.contains("record") && show.out.contains("events"),
        "{}",
        show.out
    );
    let off = v
        .run(&["--json", "cameras", "disable", "side_gate"])
        .ok()
        .json();
    assert_eq!(off["enabled"], false);
    let on = v.run(&["cameras", "enable", "side_gate"]).ok();
    assert_eq!(on.out.trim(), "camera side_gate enabled");
    v.run(&["cameras", "remove", "side_gate"]).ok();
    assert_eq!(v.run(&["cameras", "show", "side_gate"]).code, 3);

    // events: the demo's motion makes them; list (both forms, filters, pages), show, review.
    let ev = wait_for(30, "an event with a snapshot", || {
        let j = v
            .run(&[
                "--json", "events", "list", "--camera", "demo", "--limit", "5",
            ])
            .ok()
            .json();
        j["events"]
            .as_array()
            .and_then(|a| a.iter().find(|e| e["has_snapshot"] == true).cloned())
    });
    let id = ev["id"].as_str().unwrap().to_owned();
    let table = v
        .run(&["events", "list", "--after", "10m", "--label", "motion"])
        .ok();
    let header = table.out.lines().next().unwrap();
    assert!(header.starts_with("ID") && header.contains("CAMERA") && header.contains("SCORE"));
    assert!(table.out.contains(&id), "{}", table.out);
    let none = v
        .run(&["--json", "events", "list", "--label", "giraffe"])
        .ok()
        .json();
    assert_eq!(none["events"].as_array().unwrap().len(), 0);
    wait_for(30, "two events", || {
        let r = v.run(&["--json", "events", "list"]);
        let j = (r.code == 0).then(|| r.json())?;
        (j["events"].as_array()?.len() >= 2).then_some(())
    });
    let page = v
        .run(&["--json", "events", "list", "--limit", "1"])
        .ok()
        .json();
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let next = v
        .run(&[
            "--json", "events", "list", "--limit", "1", "--cursor", &cursor,
        ])
        .ok()
        .json();
    assert_ne!(next["events"][0]["id"], page["events"][0]["id"]);
    let shown = v.run(&["--json", "events", "show", &id]).ok().json();
    assert_eq!(shown["id"], id.as_str());
    let shown = v.run(&["events", "show", &id]).ok();
    assert!(shown.out.contains("camera") && shown.out.contains("demo"));
    v.run(&["events", "review", &id]).ok();
    let reviewed = v
        .run(&["--json", "events", "list", "--reviewed"])
        .ok()
        .json();
    assert!(reviewed["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["id"] == id.as_str()));

    // Followed live, for people: one line per change.
    let live = v.run(&["events", "follow", "--count", "1"]).ok();
    assert!(
        live.out.contains("demo") && live.out.contains("motion"),
        "{}",
        live.out
    );
    // Deleted: gone for good.
    let doomed = [&page, &next]
        .iter()
        .filter_map(|p| p["events"][0]["id"].as_str())
        .find(|d| *d != id)
        .unwrap()
        .to_owned();
    let deleted = v.run(&["--json", "events", "delete", &doomed]).ok();
    assert!(deleted.json().is_object());
    assert_eq!(v.run(&["events", "show", &doomed]).code, 3);

    // Media: the event's snapshot, the camera's newest frame, clips, recordings.
    let snap = v.path("snap.jpg");
    let got = v
        .run(&["--json", "snapshot", &id, "-o", snap.to_str().unwrap()])
        .ok()
        .json();
    assert!(got["bytes"].as_u64().unwrap() > 1000);
    assert!(is_jpeg(&snap));
    v.run(&["snapshot", &id]).ok();
    assert!(is_jpeg(&v.path(&format!("{id}.jpg"))));
    let latest = v.path("latest.jpg");
    v.run(&[
        "latest",
        "demo",
        "--height",
        "180",
        "-o",
        latest.to_str().unwrap(),
    ])
    .ok();
    let pic = vigil_detect::render::decode_jpeg(&std::fs::read(&latest).unwrap()).unwrap();
    assert_eq!(pic.height, 180);
    let to_stdout = v.run(&["latest", "demo", "-o", "-"]).ok();
    assert!(to_stdout.out.is_empty() || to_stdout.out.len() > 100);
    let recs = wait_for(40, "a finished recording", || {
        let r = v.run(&["--json", "recordings", "list", "--camera", "demo"]);
        let j = (r.code == 0).then(|| r.json())?;
        (!j["recordings"].as_array()?.is_empty()).then_some(j)
    });
    let rec = &recs["recordings"][0];
    let rec_id = rec["id"].as_str().unwrap();
    let table = v.run(&["recordings", "list"]).ok();
    assert!(table.out.contains(rec_id) && table.out.contains("continuous"));
    let file = v.path("segment.mp4");
    let got = v
        .run(&[
            "--json",
            "recordings",
            "download",
            rec_id,
            "-o",
            file.to_str().unwrap(),
        ])
        .ok()
        .json();
    assert_eq!(got["bytes"], rec["size_bytes"]);
    assert_eq!(ffprobe(&file).codec, "h264");
    let start = rec["start_time"].as_str().unwrap();
    let end = rec["end_time"].as_str().unwrap();
    let clip = v.path("range.mp4");
    v.run(&[
        "clip",
        "demo",
        "--start",
        start,
        "--end",
        end,
        "-o",
        clip.to_str().unwrap(),
    ])
    .ok();
    let p = ffprobe(&clip);
    assert!(p.duration > 5.0, "{} s", p.duration);
    let event_clip = v.path("event.mp4");
    v.run(&["clip", "--event", &id, "-o", event_clip.to_str().unwrap()])
        .ok();
    assert!(ffprobe(&event_clip).frames > 0);
    let no_parts: Vec<_> = std::fs::read_dir(v.home.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .collect();
    assert!(no_parts.is_empty(), "{no_parts:?}");

    // Accounts and keys; a viewer's key reads but cannot change.
    let add = v.run_env(
        &[
            ("VIGIL_USER", "admin"),
            ("VIGIL_PASSWORD", PASSWORD),
            ("VIGIL_NEW_PASSWORD", "viewer-password"),
        ],
        &["accounts", "add", "carol", "--role", "viewer"],
    );
    assert_eq!(add.ok().out.trim(), "added account carol (viewer)");
    let accounts = v.run(&["--json", "accounts", "list"]).ok().json();
    assert!(accounts
        .as_object()
        .unwrap()
        .values()
        .any(|a| a["username"] == "carol" && a["role"] == "viewer"));
    let as_carol = v.run_env(
        &[
            ("VIGIL_USER", "carol"),
            ("VIGIL_PASSWORD", "viewer-password"),
        ],
        &["cameras", "list"],
    );
    assert!(as_carol.ok().out.contains("demo"));
    let changed = v.run_env(
        &[
            ("VIGIL_USER", "carol"),
            ("VIGIL_PASSWORD", "viewer-password"),
            ("VIGIL_NEW_PASSWORD", "carol-new-password"),
        ],
        &["accounts", "passwd"],
    );
    assert_eq!(changed.ok().out.trim(), "password changed");
    let old = v.run_env(
        &[
            ("VIGIL_USER", "carol"),
            ("VIGIL_PASSWORD", "viewer-password"),
        ],
        &["status"],
    );
    assert_eq!(old.code, 4);
    let new = v.run_env(
        &[
            ("VIGIL_USER", "carol"),
            ("VIGIL_PASSWORD", "carol-new-password"),
        ],
        &["status"],
    );
    new.ok();
    let key = v
        .run(&[
            "--json",
            "keys",
            "create",
            "backup-script",
            "--role",
            "viewer",
        ])
        .ok()
        .json();
    let secret = key["key"].as_str().unwrap().to_owned();
    let key_id = key["id"].as_str().unwrap().to_owned();
    let printed = v.run(&["keys", "create", "plain"]).ok();
    assert!(printed.out.trim().starts_with("vk_"), "{}", printed.out);
    let keys = v.run(&["keys", "list"]).ok();
    assert!(keys.out.contains("backup-script") && !keys.out.contains(&secret));
    let with_key = v.run_env(&[("VIGIL_API_KEY", &secret)], &["--json", "events", "list"]);
    assert!(with_key.ok().json()["events"].is_array());
    let refused = v.run_env(
        &[("VIGIL_API_KEY", &secret)],
        &["cameras", "disable", "demo"],
    );
    assert_eq!(refused.code, 4, "{}", refused.err);
    assert!(refused.err.contains("403"), "{}", refused.err);
    v.run(&["keys", "revoke", &key_id]).ok();
    let revoked = v.run_env(&[("VIGIL_API_KEY", &secret)], &["events", "list"]);
    assert_eq!(revoked.code, 4);
    v.run(&["accounts", "remove", "carol"]).ok();
    assert_eq!(v.run(&["accounts", "remove", "carol"]).code, 3);

    // Logs: a page, filtered; and followed live while a camera is switched off and on.
    let logs = v
        .run(&["--json", "logs", "--source", "vigild", "--limit", "5"])
        .ok()
        .json();
    let entries = logs["logs"].as_array().unwrap();
    assert!(!entries.is_empty(), "{logs}");
    assert!(entries.iter().all(|e| e["source"] == "vigild"), "{logs}");
    assert!(v
        .run(&["logs", "--limit", "3"])
        .ok()
        .out
        .starts_with("TIME"));
    let about_demo = v
        .run(&["--json", "logs", "--camera", "demo", "--limit", "20"])
        .ok()
        .json();
    let entries = about_demo["logs"].as_array().unwrap();
    assert!(!entries.is_empty());
    assert!(
        entries.iter().all(|e| e["camera_id"] == "demo"),
        "{about_demo}"
    );
    let follow = {
        let home = v.home.path().to_owned();
        let url = v.url.clone();
        std::thread::spawn(move || {
            vigil_in(
                &home,
                &[
                    ("VIGIL_URL", &url),
                    ("VIGIL_USER", "admin"),
                    ("VIGIL_PASSWORD", PASSWORD),
                ],
                &[
                    "--json", "logs", "--follow", "--count", "1", "--camera", "demo",
                ],
            )
        })
    };
    // Events followed: the demo keeps making them.
    let events = v.run(&[
        "--json", "events", "follow", "--count", "2", "--camera", "demo",
    ]);
    let lines: Vec<Value> = events
        .ok()
        .out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|m| m["data"]["camera"] == "demo"));
    // Switching the camera off and on logs about it, for as long as the follower waits (it
    // may connect after the first switch).
    let end = Instant::now() + Duration::from_secs(60);
    while !follow.is_finished() && Instant::now() < end {
        v.run(&["cameras", "disable", "demo"]).ok();
        v.run(&["cameras", "enable", "demo"]).ok();
        std::thread::sleep(Duration::from_millis(700));
    }
    let followed = follow.join().unwrap().ok();
    let entry: Value = serde_json::from_str(followed.out.trim()).unwrap();
    assert_eq!(entry["monitorID"], "demo", "{entry}");

    // A config file instead of the environment.
    let cfg = v.path("cli.toml");
    std::fs::write(
        &cfg,
        format!(
            "url = \"{}\"\nuser = \"admin\"\npassword = \"{PASSWORD}\"\n",
            v.url
        ),
    )
    .unwrap();
    let from_file = vigil_in(
        v.home.path(),
        &[("VIGIL_CLI_CONFIG", cfg.to_str().unwrap())],
        &["--json", "status"],
    );
    assert_eq!(from_file.ok().json()["cameras"][0]["id"], "demo");
    std::fs::write(&cfg, "url = \"x\"\nusr = \"admin\"\n").unwrap();
    let bad = vigil_in(
        v.home.path(),
        &[("VIGIL_CLI_CONFIG", cfg.to_str().unwrap())],
        &["status"],
    );
    assert_eq!(bad.code, 2);
    assert!(
        bad.err.contains("cli.toml:2") && bad.err.contains("usr"),
        "{}",
        bad.err
    );

    // The exit codes of the failures scripts tell apart.
    let cases: [Case; 8] = [
        (&["events", "show", "123"], &[], 3, "not found"),
        (&["cameras", "show", "nope"], &[], 3, "nope"),
        (
            &["events", "list", "--after", "yesterday"],
            &[],
            2,
            "yesterday",
        ),
        (&["events", "list", "--limit", "0"], &[], 2, "--limit"),
        (&["events", "lst"], &[], 2, "lst"),
        (
            &["cameras", "add", "demo", "synthetic:"],
            &[],
            2,
            "already exists",
        ),
        (
            &["status"],
            &[("VIGIL_PASSWORD", "wrong-password")],
            4,
            "401",
        ),
        (
            &["clip", "demo", "--start", "1m", "--end", "2m"],
            &[],
            2,
            "--end",
        ),
    ];
    for (args, env, code, says) in cases {
        let mut all = vec![("VIGIL_USER", "admin"), ("VIGIL_PASSWORD", PASSWORD)];
        for (k, val) in env {
            all.retain(|(kk, _)| kk != k);
            all.push((k, val));
        }
        let r = v.run_env(&all, args);
        assert_eq!(r.code, code, "{args:?}: {}", r.err);
        assert!(r.err.contains(says), "{args:?}: {}", r.err);
    }
    let anonymous = v.run_env(&[], &["status"]);
    assert_eq!(anonymous.code, 4);
    assert!(anonymous.err.contains("--user"), "{}", anonymous.err);
    let unreachable = vigil_in(
        v.home.path(),
        &[("VIGIL_URL", &format!("http://127.0.0.1:{}", free_port()))],
        &["status"],
    );
    assert_eq!(unreachable.code, 5, "{}", unreachable.err);
    assert!(unreachable.err.contains("cannot reach vigild"));
    let bad_url = v.run_env(&[("VIGIL_URL", "ftp://x")], &["status"]);
    assert_eq!(bad_url.code, 2);

    // `check --repair` is refused while vigild holds the data directory; so is a second vigild.
    let busy = vigil_in(
        v.home.path(),
        &[],
        &["check", data.to_str().unwrap(), "--repair"],
    );
    assert_eq!(busy.code, 6, "{}", busy.err);
    let second = Command::new(env!("CARGO_BIN_EXE_vigild"))
        .args(["--no-auth", "--data-dir"])
        .arg(&data)
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("locked"));
    common::stop(child);
}

/// Arguments, environment, the exit code and a text the error must hold.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], i32, &'a str);

/// A JPEG test picture made by ffmpeg.
fn picture(dir: &Path) -> PathBuf {
    let p = dir.join("scene.jpg");
    let st = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=480x270:rate=1",
        ])
        .args(["-frames:v", "1", "-y"])
        .arg(&p)
        .status()
        .unwrap();
    assert!(st.success());
    p
}

fn model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../vigil-detect/tests/fixtures/yolov8/yolov8n-random.safetensors")
}

#[tokio::test]
async fn detect_prints_what_the_library_finds_and_draws_it() {
    use vigil_core::Detector;
    let home = tempfile::tempdir().unwrap();
    let pic = picture(home.path());
    let out = home.path().join("boxes.jpg");
    let model = model();
    let r = vigil_in(
        home.path(),
        &[],
        &[
            "--json",
            "detect",
            pic.to_str().unwrap(),
            "--model",
            model.to_str().unwrap(),
            "--input-size",
            "320",
            "--min-score",
            "0.3",
            "-o",
            out.to_str().unwrap(),
        ],
    )
    .ok();
    let got = r.json();
    // The same detector, called as a library, on the same decoded picture.
    let rgb = vigil_detect::render::decode_jpeg(&std::fs::read(&pic).unwrap()).unwrap();
    let yolo = vigil_detect::YoloDetector::new(
        std::sync::Arc::new(vigil_detect::YoloV8::load(&model).unwrap()),
        vigil_detect::YoloOptions {
            input_size: 320,
            min_score: 0.3,
            ..Default::default()
        },
    )
    .unwrap();
    let want = yolo
        .detect(std::sync::Arc::new(vigil_core::Image {
            width: rgb.width,
            height: rgb.height,
            format: vigil_core::PixelFormat::Rgb8,
            data: rgb.data.clone().into(),
            time: vigil_core::Timestamp(0),
        }))
        .await
        .unwrap();
    let dets = got["detections"].as_array().unwrap();
    assert!(!want.is_empty(), "random weights find something");
    assert_eq!(dets.len(), want.len());
    for (d, w) in dets.iter().zip(&want) {
        assert_eq!(d["label"], w.label.as_str());
        assert!((d["score"].as_f64().unwrap() - f64::from(w.score)).abs() < 1e-6);
        assert!((d["box"][0].as_f64().unwrap() - f64::from(w.bbox.x1)).abs() < 1e-6);
    }
    assert_eq!(
        (got["width"].as_u64(), got["height"].as_u64()),
        (Some(480), Some(270))
    );
    // The picture with boxes: as large as the input, and different from it.
    let drawn = vigil_detect::render::decode_jpeg(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!((drawn.width, drawn.height), (480, 270));
    let changed = drawn
        .data
        .iter()
        .zip(&rgb.data)
        .filter(|(a, b)| a.abs_diff(**b) > 60)
        .count();
    assert!(changed > 500, "{changed} pixels changed");
    // The table, and the image's default name.
    let human = vigil_in(
        home.path(),
        &[],
        &[
            "detect",
            pic.to_str().unwrap(),
            "--model",
            model.to_str().unwrap(),
        ],
    )
    .ok();
    assert!(human.out.starts_with("LABEL"), "{}", human.out);
    assert!(human.err.contains("scene.detections.jpg"), "{}", human.err);
    assert!(is_jpeg(&home.path().join("scene.detections.jpg")));

    // Bad input names the bad value.
    let not_jpeg = vigil_in(
        home.path(),
        &[],
        &[
            "detect",
            model.to_str().unwrap(),
            "--model",
            model.to_str().unwrap(),
        ],
    );
    assert_eq!(not_jpeg.code, 2);
    assert!(not_jpeg.err.contains("JPEG"), "{}", not_jpeg.err);
    let not_model = vigil_in(
        home.path(),
        &[],
        &[
            "detect",
            pic.to_str().unwrap(),
            "--model",
            pic.to_str().unwrap(),
        ],
    );
    assert_ne!(not_model.code, 0);
    assert!(not_model.err.contains("scene.jpg"), "{}", not_model.err);
    let bad_size = vigil_in(
        home.path(),
        &[],
        &[
            "detect",
            pic.to_str().unwrap(),
            "--model",
            model.to_str().unwrap(),
            "--input-size",
            "100",
        ],
    );
    assert_eq!(bad_size.code, 2, "{}", bad_size.err);
    assert!(bad_size.err.contains("100"), "{}", bad_size.err);
}

#[test]
fn bench_and_model_list_measure_and_name_the_backends() {
    let home = tempfile::tempdir().unwrap();
    let r = vigil_in(
        home.path(),
        &[],
        &["--json", "bench", "--runs", "1", "--input-size", "64"],
    )
    .ok();
    let j = r.json();
    let rows = j["results"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{j}");
    assert!(rows[0]["backend"].as_str().unwrap().starts_with("yolov8n"));
    assert_eq!(rows[1]["backend"], "motion");
    assert!(rows.iter().all(|r| r["median_ms"].as_f64().unwrap() > 0.0));
    let human = vigil_in(
        home.path(),
        &[],
        &["bench", "--runs", "1", "--input-size", "64"],
    )
    .ok();
    assert!(human.out.starts_with("BACKEND"), "{}", human.out);

    let dir = model();
    let dir = dir.parent().unwrap().to_str().unwrap();
    let list = vigil_in(home.path(), &[], &["--json", "model", "list", "--dir", dir])
        .ok()
        .json();
    assert_eq!(list["fetchable"].as_array().unwrap().len(), 5);
    let local = list["local"].as_array().unwrap();
    let random = local
        .iter()
        .find(|l| {
            l["path"]
                .as_str()
                .unwrap()
                .ends_with("yolov8n-random.safetensors")
        })
        .unwrap();
    assert_eq!(
        (random["model"].as_str(), random["classes"].as_u64()),
        (Some("yolov8n"), Some(80))
    );
    let empty = vigil_in(home.path(), &[], &["model", "list", "--dir", "nowhere"]).ok();
    assert!(empty.err.contains("vigil model fetch"), "{}", empty.err);
}

#[test]
fn check_finds_what_disagrees_and_repairs_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let child = common::start(&data, port);
    let base = format!("http://127.0.0.1:{port}");
    // Two finished segments of the demo camera.
    wait_for(60, "two recordings", || {
        let (_, v) = common::http("GET", &format!("{base}/api/recordings"), None);
        (v["recordings"].as_array().map_or(0, Vec::len) >= 2).then_some(())
    });
    common::stop(child);
    let home = tempfile::tempdir().unwrap();
    let d = data.to_str().unwrap();
    let clean = vigil_in(home.path(), &[], &["--json", "check", d])
        .ok()
        .json();
    assert_eq!(clean["ok"], true, "{clean}");
    assert!(clean["summary"]["recordings"].as_u64().unwrap() >= 2);
    assert_eq!(
        vigil_in(home.path(), &[], &["check", d])
            .ok()
            .out
            .lines()
            .last(),
        Some("store and files agree")
    );
    vigil_in(home.path(), &[], &["check", d, "--full"]).ok();

    // A segment's file gone, a stray file, an event's snapshot gone.
    let store =
        vigil_store::LmdbStore::open(&vigil_cli::store_dir(&data), Default::default()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let recs = rt.block_on(vigil_core::testing::all_recordings(&store));
    let events = rt
        .block_on(vigil_core::Store::events(
            &store,
            &vigil_core::Query::new(vigil_core::EventFilter::default()),
        ))
        .unwrap()
        .items;
    drop(store);
    let lost = &recs[0].path;
    std::fs::remove_file(data.join(lost)).unwrap();
    std::fs::write(data.join("recordings/demo/stray.mp4"), b"not ours").unwrap();
    let snap = events
        .iter()
        .find_map(|e| e.best.as_ref()?.snapshot_path.clone())
        .expect("an event with a snapshot");
    std::fs::remove_file(data.join(&snap)).unwrap();

    let found = vigil_in(home.path(), &[], &["--json", "check", d]);
    assert_eq!(found.code, 1, "{}", found.err);
    let j = found.json();
    assert_eq!(j["ok"], false);
    let kinds: Vec<(&str, &str)> = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["kind"].as_str().unwrap(), f["path"].as_str().unwrap()))
        .collect();
    assert!(
        kinds.contains(&("missing-file", lost.as_str())),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("orphan-file", "recordings/demo/stray.mp4")),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("missing-snapshot", snap.as_str())),
        "{kinds:?}"
    );
    let table = vigil_in(home.path(), &[], &["check", d]);
    assert!(table.out.contains("PROBLEM") && table.err.contains("--repair"));

    let repaired = vigil_in(home.path(), &[], &["--json", "check", d, "--repair"]);
    assert_eq!(repaired.code, 0, "{}", repaired.err);
    assert!(repaired.json()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["repaired"] == true));
    // Nothing was deleted that held footage: the stray file is kept aside.
    assert!(data
        .join("recordings/.orphans/recordings~demo~stray.mp4")
        .exists());
    let after = vigil_in(home.path(), &[], &["--json", "check", d])
        .ok()
        .json();
    assert_eq!(after["ok"], true, "{after}");
    assert_eq!(
        after["summary"]["recordings"].as_u64().unwrap(),
        recs.len() as u64 - 1
    );
    // vigild starts on the repaired directory.
    let child = common::start(&data, port);
    common::stop(child);

    let none = vigil_in(
        home.path(),
        &[],
        &["check", dir.path().join("nothing").to_str().unwrap()],
    );
    assert_eq!(none.code, 3);
    assert!(none.err.contains("no store"), "{}", none.err);
}
