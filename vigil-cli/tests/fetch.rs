//! `vigil model fetch` against a real HTTP server on 127.0.0.1 that answers like Hugging Face
//! (a redirect carrying the file's SHA-256 and size, then the file), serving the seeded-random
//! YOLOv8n fixture: the download, its checksum, the model check and the file handling.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use sha2::{Digest, Sha256};

fn weights() -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../vigil-detect/tests/fixtures/yolov8/yolov8n-random.safetensors"),
    )
    .unwrap()
}

/// A file server: `/<mode>/<file>` redirects to `/cdn/<file>` with the checksum headers the
/// mode asks for; `/cdn/<file>` serves the weights (cut short under `/cdn-cut/`).
struct Server {
    base: String,
    requests: Arc<AtomicUsize>,
}

fn serve(body: Vec<u8>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let count = requests.clone();
    let sha = format!("{:x}", Sha256::digest(&body));
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            count.fetch_add(1, Ordering::SeqCst);
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
                    break;
                }
            }
            let mut parts = path.trim_start_matches('/').splitn(2, '/');
            let (mode, file) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let redirect = |headers: &str| {
                format!(
                    "HTTP/1.1 302 Found\r\nLocation: /cdn/{file}\r\n{headers}Content-Length: 0\r\nConnection: close\r\n\r\n"
                )
            };
            let len = body.len();
            let head = match mode {
                "hub" => redirect(&format!(
                    "X-Linked-Etag: \"{sha}\"\r\nX-Linked-Size: {len}\r\n"
                )),
                "wrongsum" => redirect(&format!("X-Linked-Etag: \"{}\"\r\n", "0".repeat(64))),
                "nosum" => redirect(""),
                "cdn" | "cdn-cut" => {
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n")
                }
                _ => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_owned(),
            };
            let _ = conn.write_all(head.as_bytes());
            match mode {
                "cdn" => {
                    let _ = conn.write_all(&body);
                }
                "cdn-cut" => {
                    let _ = conn.write_all(&body[..len / 2]);
                }
                _ => {}
            }
        }
    });
    Server { base, requests }
}

fn fetch(server: &Server, mode: &str, name: &str, dir: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["model", "fetch", name, "--dir"])
        .arg(dir)
        .arg("--base-url")
        .arg(format!("{}/{mode}", server.base))
        .args(extra)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Only the finished file is in the directory: no partial download left behind.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn fetch_downloads_verifies_and_places_the_weights() {
    let body = weights();
    let sha = format!("{:x}", Sha256::digest(&body));
    let server = serve(body.clone());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("models");

    let out = fetch(&server, "hub", "yolov8n", &dir, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let path = dir.join("yolov8n.safetensors");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        path.display().to_string()
    );
    assert!(stderr(&out).contains(&sha), "{}", stderr(&out));
    assert_eq!(std::fs::read(&path).unwrap(), body);
    assert_eq!(files(&dir), vec![path.clone()]);
    assert_eq!(
        server.requests.load(Ordering::SeqCst),
        2,
        "a redirect and the file"
    );

    // Already there and sound: nothing is downloaded again.
    let out = fetch(&server, "hub", "yolov8n", &dir, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("already there"), "{}", stderr(&out));
    assert_eq!(server.requests.load(Ordering::SeqCst), 2);

    // --force downloads again; a checksum the user gives is what counts.
    let out = fetch(
        &server,
        "nosum",
        "yolov8n",
        &dir,
        &["--force", "--sha256", &sha],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(files(&dir), vec![path]);
}

#[test]
fn fetch_refuses_bad_downloads_and_leaves_nothing() {
    let body = weights();
    let server = serve(body);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("models");
    let cases: [(&str, &str, &[&str], &str); 7] = [
        ("wrongsum", "yolov8n", &[], "checksum mismatch"),
        ("nosum", "yolov8n", &[], "pass --sha256"),
        ("cdn-cut", "yolov8n", &[], "cdn-cut/yolov8n.safetensors"),
        ("missing", "yolov8n", &[], "HTTP 404"),
        // The right bytes under the wrong name: they load, but as the wrong size.
        ("hub", "yolov8s", &[], "holds a yolov8n network"),
        ("hub", "yolov9n", &[], "unknown model \"yolov9n\""),
        (
            "hub",
            "yolov8n",
            &["--sha256", "abc"],
            "not 64 hexadecimal digits",
        ),
    ];
    for (mode, name, extra, want) in cases {
        let out = fetch(&server, mode, name, &dir, extra);
        assert!(!out.status.success(), "{mode} {name}");
        assert!(
            stderr(&out).contains(want),
            "{mode} {name}: {}",
            stderr(&out)
        );
        assert!(files(&dir).is_empty(), "{mode} {name}: {:?}", files(&dir));
    }
    // Nothing listening: a clear error too.
    let dead = Server {
        base: {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", l.local_addr().unwrap())
        },
        requests: Arc::default(),
    };
    let out = fetch(&dead, "hub", "yolov8n", &dir, &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("requesting http://127.0.0.1"),
        "{}",
        stderr(&out)
    );
}
