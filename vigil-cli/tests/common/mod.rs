//! Starting and stopping `vigild` in tests, and talking to it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Starts vigild without authentication (`--no-auth`, on loopback) and waits for it to
/// answer; the caller stops (and waits for) it. The tests of the API's surface use it; the
/// authentication tests use [`start_secured`].
pub fn start(data: &Path, port: u16) -> Child {
    start_with(data, port, &[])
}

/// Starts vigild without authentication, with more arguments.
pub fn start_with(data: &Path, port: u16, more: &[&str]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigild"));
    cmd.arg("--no-auth").args(more);
    spawn_and_wait(cmd, data, port)
}

/// Starts vigild as users run it: authentication on, the first admin's password from
/// `VIGIL_ADMIN_PASSWORD` when `admin_password` is given (else printed on stderr, which the
/// caller then reads).
pub fn start_secured(data: &Path, port: u16, admin_password: Option<&str>, more: &[&str]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigild"));
    cmd.args(more);
    match admin_password {
        Some(p) => {
            cmd.env("VIGIL_ADMIN_PASSWORD", p);
        }
        None => {
            cmd.env_remove("VIGIL_ADMIN_PASSWORD")
                .stderr(std::process::Stdio::piped());
        }
    }
    spawn_and_wait(cmd, data, port)
}

/// Starts `cmd` (vigild with its arguments) on `data` and `port` and waits for it to answer;
/// logging at `warn` unless `cmd` sets `RUST_LOG`.
#[allow(clippy::zombie_processes)]
pub fn spawn_and_wait(mut cmd: Command, data: &Path, port: u16) -> Child {
    if !cmd.get_envs().any(|(k, _)| k == "RUST_LOG") {
        cmd.env("RUST_LOG", "warn");
    }
    let mut child = cmd
        .args(["--data-dir"])
        .arg(data)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if out.starts_with("HTTP/1.1 200") {
                return child;
            }
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("vigild did not come up");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// vigild, killed when the test fails before it stops it (a failed test must not leave it
/// running).
pub struct Daemon(pub Option<Child>);

impl Daemon {
    /// The running child, to stop it.
    pub fn take(mut self) -> Child {
        self.0.take().expect("running")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn stop(mut child: Child) {
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let st = child.wait().unwrap();
    assert!(st.success(), "vigild exited with {st}");
}

/// One request; the status and the JSON body (null when it is not JSON).
pub fn http(method: &str, url: &str, body: Option<&str>) -> (u16, serde_json::Value) {
    http_with(method, url, body, &[])
}

/// [`http`] with request headers.
pub fn http_with(
    method: &str,
    url: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let with = |mut r: ureq::RequestBuilder<ureq::typestate::WithBody>| {
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.header("content-type", "application/json")
            .send(body.unwrap_or(""))
            .unwrap()
    };
    let without = |mut r: ureq::RequestBuilder<ureq::typestate::WithoutBody>| {
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.call().unwrap()
    };
    let mut resp = match (method, body) {
        ("POST", Some(_)) => with(agent.post(url)),
        ("PATCH", Some(_)) => with(agent.patch(url)),
        ("PUT", Some(_)) => with(agent.put(url)),
        ("DELETE", _) => without(agent.delete(url)),
        _ => without(agent.get(url)),
    };
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// GET `url`: the status, the content type and the body's bytes.
pub fn get_bytes(url: &str, headers: &[(&str, &str)]) -> (u16, String, Vec<u8>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = agent.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = req.call().unwrap();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(256 << 20)
        .read_to_vec()
        .unwrap();
    (status, ct, body)
}
