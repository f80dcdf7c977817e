//! A blocking client of a running vigild: JSON requests, downloads and WebSocket feeds, with
//! every failure sorted into one of the [`Failure`] kinds that `vigil`'s exit codes report.
//!
//! It authenticates the way a script should: an API key (`X-API-Key`) when one is given, else
//! the user and password as basic auth on each request (vigild remembers a successful check
//! for a few minutes, so argon2 is paid once), with the account's CSRF token fetched once for
//! changes. No login token is made, so nothing is left behind when a command is interrupted.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;

/// What went wrong, sorted the way scripts need it; each kind has its own exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Anything not sorted below (a server error, a file that cannot be written): exit 1.
    Other,
    /// The arguments or the request were refused as malformed (HTTP 400, 409, 413, 416, 422;
    /// bad values on the command line): exit 2, like a usage error.
    BadInput,
    /// What was asked for does not exist (HTTP 404): exit 3.
    NotFound,
    /// No or wrong credentials (401), or not allowed for this account (403): exit 4.
    Unauthorized,
    /// vigild could not be reached (connection refused, unknown host, timeout, TLS, a proxy's
    /// 502 or 504, a transfer cut short): exit 5.
    Unreachable,
    /// vigild is busy or not ready: try again later (429, 503): exit 6.
    Busy,
}

impl Failure {
    /// The process exit code of this kind.
    pub fn exit_code(self) -> u8 {
        match self {
            Failure::Other => 1,
            Failure::BadInput => 2,
            Failure::NotFound => 3,
            Failure::Unauthorized => 4,
            Failure::Unreachable => 5,
            Failure::Busy => 6,
        }
    }

    /// The kind of an HTTP error status.
    pub fn of_status(status: u16) -> Failure {
        match status {
            400 | 405 | 409 | 411 | 413 | 414 | 415 | 416 | 422 | 431 => Failure::BadInput,
            401 | 403 => Failure::Unauthorized,
            404 | 410 => Failure::NotFound,
            429 | 503 => Failure::Busy,
            // A reverse proxy that cannot reach vigild.
            502 | 504 => Failure::Unreachable,
            _ => Failure::Other,
        }
    }
}

/// A failed command: its kind and the message `vigil` prints.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    /// The kind, which picks the exit code.
    pub kind: Failure,
    /// What to tell the user.
    pub message: String,
}

impl CliError {
    /// An error of `kind`.
    pub fn new(kind: Failure, message: impl Into<String>) -> CliError {
        CliError {
            kind,
            message: message.into(),
        }
    }

    /// A bad value on the command line.
    pub fn bad_input(message: impl Into<String>) -> CliError {
        CliError::new(Failure::BadInput, message)
    }

    /// Anything else.
    pub fn other(message: impl Into<String>) -> CliError {
        CliError::new(Failure::Other, message)
    }
}

impl From<anyhow::Error> for CliError {
    fn from(e: anyhow::Error) -> CliError {
        CliError::other(format!("{e:#}"))
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> CliError {
        CliError::other(e.to_string())
    }
}

/// The result of a command.
pub type CliResult<T> = Result<T, CliError>;

/// How requests prove who they come from.
#[derive(Clone, Debug, Default)]
pub enum Credentials {
    /// Nothing (a vigild started with `--no-auth`, or the open endpoints).
    #[default]
    None,
    /// An API key, sent as `X-API-Key`.
    ApiKey(String),
    /// A user and password, sent as basic auth.
    Password {
        /// The login name.
        user: String,
        /// The password.
        password: String,
    },
}

/// A client of one vigild.
pub struct Client {
    base: String,
    creds: Credentials,
    agent: ureq::Agent,
    /// The account's CSRF token, fetched by the first change made with basic auth.
    csrf: OnceLock<String>,
}

/// An answer's status, content type, length and body.
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`, empty when missing.
    pub content_type: String,
    /// `Content-Length`, when sent.
    pub length: Option<u64>,
    body: ureq::Body,
}

impl Answer {
    /// The body as a reader (no size limit: for downloads).
    pub fn reader(&mut self) -> impl Read + '_ {
        self.body.as_reader()
    }
}

impl Client {
    /// A client of the vigild at `url` (`http://host:port`, with a path prefix when vigild is
    /// served under one by a reverse proxy).
    /// Credentials written into the URL (`http://user:pass@host`) are used when no others
    /// are given, and never shown.
    pub fn new(url: &str, creds: Credentials) -> CliResult<Client> {
        let mut parsed = url::Url::parse(url).map_err(|e| {
            CliError::bad_input(format!(
                "--url is not a URL ({e}): {}",
                without_secrets(url)
            ))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(CliError::bad_input(format!(
                "--url {:?} must be http://HOST[:PORT] or https://HOST[:PORT]",
                without_secrets(url)
            )));
        }
        let creds = match creds {
            Credentials::None if !parsed.username().is_empty() => {
                let dec = |s: &str| {
                    percent_encoding::percent_decode_str(s)
                        .decode_utf8_lossy()
                        .into_owned()
                };
                Credentials::Password {
                    user: dec(parsed.username()),
                    password: dec(parsed.password().unwrap_or_default()),
                }
            }
            c => c,
        };
        let _ = parsed.set_username("");
        let _ = parsed.set_password(None);
        let url = parsed.as_str();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            // A clip is cut before its first byte comes: allow for it, but not forever.
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Client {
            base: url.trim_end_matches('/').to_owned(),
            creds,
            agent,
            csrf: OnceLock::new(),
        })
    }

    /// The password requests are made with, when it is a user and password.
    pub fn password(&self) -> Option<&str> {
        match &self.creds {
            Credentials::Password { password, .. } => Some(password),
            _ => None,
        }
    }

    /// The URL of `path` (which starts with `/` and may carry a query string).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn auth_headers(&self) -> Vec<(&'static str, String)> {
        match &self.creds {
            Credentials::None => Vec::new(),
            Credentials::ApiKey(k) => vec![("X-API-Key", k.clone())],
            Credentials::Password { user, password } => {
                let b =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                vec![("Authorization", format!("Basic {b}"))]
            }
        }
    }

    /// The account's CSRF token, which basic auth needs for changes.
    fn csrf(&self) -> CliResult<Option<String>> {
        if !matches!(self.creds, Credentials::Password { .. }) {
            return Ok(None);
        }
        if let Some(t) = self.csrf.get() {
            return Ok(Some(t.clone()));
        }
        let mut a = self.send("GET", "/api/account/my-token", None)?;
        let text = read_text(&mut a)?;
        if a.status >= 400 {
            return Err(self.refused(a.status, &text));
        }
        let t = text.trim().to_owned();
        Ok(Some(self.csrf.get_or_init(|| t).clone()))
    }

    /// Sends a request; any status comes back as an [`Answer`] (only failing to talk to
    /// vigild is an error).
    pub fn send(&self, method: &str, path: &str, body: Option<&Value>) -> CliResult<Answer> {
        let url = self.url(path);
        let mut headers = self.auth_headers();
        if !matches!(method, "GET" | "HEAD") {
            if let Some(t) = self.csrf()? {
                headers.push(("X-CSRF-TOKEN", t));
            }
        }
        let text = body.map(Value::to_string);
        let r = match method {
            "GET" | "DELETE" | "HEAD" => {
                let mut b = match method {
                    "GET" => self.agent.get(&url),
                    "HEAD" => self.agent.head(&url),
                    _ => self.agent.delete(&url),
                };
                for (k, v) in &headers {
                    b = b.header(*k, v);
                }
                b.call()
            }
            _ => {
                let mut b = match method {
                    "POST" => self.agent.post(&url),
                    "PUT" => self.agent.put(&url),
                    _ => self.agent.patch(&url),
                };
                for (k, v) in &headers {
                    b = b.header(*k, v);
                }
                b.header("Content-Type", "application/json")
                    .send(text.unwrap_or_default())
            }
        };
        let resp = r.map_err(|e| self.transport(e))?;
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header("content-type").unwrap_or_default();
        let length = header("content-length").and_then(|v| v.parse().ok());
        Ok(Answer {
            status,
            content_type,
            length,
            body: resp.into_body(),
        })
    }

    fn transport(&self, e: ureq::Error) -> CliError {
        let kind = match &e {
            ureq::Error::ConnectionFailed
            | ureq::Error::HostNotFound
            | ureq::Error::Timeout(_)
            | ureq::Error::Tls(_)
            | ureq::Error::Io(_) => Failure::Unreachable,
            _ => Failure::Other,
        };
        CliError::new(kind, format!("cannot reach vigild at {}: {e}", self.base))
    }

    /// Sends a request and reads a JSON answer; a status of 400 or more is an error with the
    /// answer's `detail`.
    pub fn json(&self, method: &str, path: &str, body: Option<&Value>) -> CliResult<Value> {
        let mut a = self.send(method, path, body)?;
        let text = read_text(&mut a)?;
        if a.status >= 400 {
            return Err(self.refused(a.status, &text));
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| {
            CliError::other(format!(
                "{method} {path}: the answer is not JSON ({e}): {}",
                clip(&text)
            ))
        })
    }

    /// The error of a refused request, with a hint when credentials are missing.
    fn refused(&self, status: u16, body: &str) -> CliError {
        let mut e = status_error(status, body);
        if status == 401 && matches!(self.creds, Credentials::None) {
            e.message.push_str(
                " (give --user and --password, or --api-key, or set them in the config file)",
            );
        }
        e
    }

    /// GET `path` as JSON.
    pub fn get(&self, path: &str) -> CliResult<Value> {
        self.json("GET", path, None)
    }

    /// GET `path`, failing on an error status, for its body to be read as a stream.
    pub fn open(&self, path: &str) -> CliResult<Answer> {
        let mut a = self.send("GET", path, None)?;
        if a.status >= 400 {
            let text = read_text(&mut a)?;
            return Err(self.refused(a.status, &text));
        }
        Ok(a)
    }

    /// Opens the WebSocket at `path` (credentials as on every request).
    pub fn websocket(&self, path: &str) -> CliResult<WebSocket> {
        use tungstenite::client::IntoClientRequest;
        let url = url::Url::parse(&self.url(path))
            .map_err(|e| CliError::bad_input(format!("bad URL: {e}")))?;
        let tls = url.scheme() == "https";
        let host = url.host().map(|h| h.to_owned());
        let mut ws_url = url.clone();
        let _ = ws_url.set_scheme(if tls { "wss" } else { "ws" });
        let mut req = ws_url
            .as_str()
            .into_client_request()
            .map_err(|e| CliError::bad_input(format!("bad URL {ws_url}: {e}")))?;
        for (k, v) in self.auth_headers() {
            let v = v.parse().map_err(|_| {
                CliError::bad_input("credentials with characters HTTP cannot carry")
            })?;
            req.headers_mut().insert(k, v);
        }
        let unreachable = |e: std::io::Error| {
            CliError::new(
                Failure::Unreachable,
                format!("cannot reach vigild at {}: {e}", self.base),
            )
        };
        let addrs = url.socket_addrs(|| None).map_err(unreachable)?;
        let mut last = std::io::Error::other("no address");
        let mut tcp = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
                Ok(t) => {
                    tcp = Some(t);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let tcp = tcp.ok_or_else(|| unreachable(last))?;
        tcp.set_nodelay(true).ok();
        // The handshake must not hang either; reads then wake up to check the connection.
        tcp.set_read_timeout(Some(IDLE_PING)).map_err(unreachable)?;
        let stream: Box<dyn ReadWrite> = match (tls, host) {
            (true, Some(h)) => Box::new(tls_stream(h, tcp)?),
            _ => Box::new(tcp),
        };
        match tungstenite::client(req, stream) {
            Ok((socket, _)) => Ok(WebSocket {
                socket,
                pinged: false,
            }),
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
                let status = resp.status().as_u16();
                let body = resp
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                Err(self.refused(status, &body))
            }
            Err(e) => Err(CliError::new(
                Failure::Unreachable,
                format!("WebSocket {path} at {}: {e}", self.base),
            )),
        }
    }
}

/// A stream a WebSocket can run over (TCP, or TLS over TCP).
pub trait ReadWrite: Read + Write + Send {}
impl<T: Read + Write + Send> ReadWrite for T {}

fn tls_stream(
    host: url::Host<String>,
    tcp: TcpStream,
) -> CliResult<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    use rustls::pki_types::ServerName;
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = match &host {
        url::Host::Domain(d) => ServerName::try_from(d.clone())
            .map_err(|e| CliError::bad_input(format!("{d:?} is not a TLS server name: {e}")))?,
        url::Host::Ipv4(ip) => ServerName::from(std::net::IpAddr::V4(*ip)),
        url::Host::Ipv6(ip) => ServerName::from(std::net::IpAddr::V6(*ip)),
    };
    let conn = rustls::ClientConnection::new(Arc::new(config), name)
        .map_err(|e| CliError::new(Failure::Unreachable, format!("TLS to {host}: {e}")))?;
    Ok(rustls::StreamOwned::new(conn, tcp))
}

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A live feed quiet this long is pinged; quiet as long again, it is taken for dead.
const IDLE_PING: Duration = Duration::from_secs(30);

/// An open WebSocket: text messages, one at a time.
pub struct WebSocket {
    socket: tungstenite::WebSocket<Box<dyn ReadWrite>>,
    /// A ping went out after a quiet spell and nothing came since.
    pinged: bool,
}

impl WebSocket {
    /// The next text message; `None` when vigild closed the socket. A connection silent for
    /// a minute (a ping after 30 s, unanswered) is an error: a half-open socket never hangs.
    pub fn next_text(&mut self) -> CliResult<Option<String>> {
        loop {
            match self.socket.read() {
                Ok(msg) => {
                    self.pinged = false;
                    match msg {
                        tungstenite::Message::Text(t) => return Ok(Some(t.to_string())),
                        tungstenite::Message::Close(_) => return Ok(None),
                        _ => continue,
                    }
                }
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if self.pinged {
                        return Err(CliError::new(
                            Failure::Unreachable,
                            "vigild stopped answering on the live feed",
                        ));
                    }
                    self.pinged = true;
                    let _ = self
                        .socket
                        .send(tungstenite::Message::Ping(Vec::new().into()));
                }
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Ok(None)
                }
                Err(e) => {
                    return Err(CliError::new(
                        Failure::Unreachable,
                        format!("the live feed broke: {e}"),
                    ))
                }
            }
        }
    }
}

/// `url` with any `user:password@` taken out, for messages.
pub fn without_secrets(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => match url.rsplit_once('@') {
            Some((_, rest)) => format!("***@{rest}"),
            None => url.to_owned(),
        },
    }
}

fn read_text(a: &mut Answer) -> CliResult<String> {
    a.body
        .with_config()
        .limit(64 << 20)
        .lossy_utf8(true)
        .read_to_string()
        .map_err(|e| CliError::new(Failure::Unreachable, format!("reading the answer: {e}")))
}

/// The error of an answer with status `status` and body `body` (its `detail` when JSON).
pub fn status_error(status: u16, body: &str) -> CliError {
    let detail = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| match v.get("detail") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(d) => Some(d.to_string()),
            None => v.get("message").and_then(Value::as_str).map(str::to_owned),
        })
        .unwrap_or_else(|| clip(body).to_owned());
    let what = match status {
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not found",
        429 => "too many requests",
        s if s >= 500 => "server error",
        _ => "refused",
    };
    let message = if detail.is_empty() {
        format!("{what} (HTTP {status})")
    } else {
        format!("{what} (HTTP {status}): {detail}")
    };
    CliError::new(Failure::of_status(status), message)
}

fn clip(s: &str) -> &str {
    let s = s.trim();
    match s.char_indices().nth(200) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// `s` percent-encoded for a path segment or a query value.
pub fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// A query string (`?a=1&b=2`, or empty) from pairs; `None` values are left out.
pub fn query<'a>(pairs: impl IntoIterator<Item = (&'a str, Option<String>)>) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (k, v) in pairs {
        if let Some(v) = v {
            s.append_pair(k, &v);
            any = true;
        }
    }
    if any {
        format!("?{}", s.finish())
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_sort_into_exit_codes() {
        assert_eq!(Failure::of_status(404).exit_code(), 3);
        assert_eq!(Failure::of_status(401).exit_code(), 4);
        assert_eq!(Failure::of_status(403).exit_code(), 4);
        assert_eq!(Failure::of_status(422).exit_code(), 2);
        assert_eq!(Failure::of_status(429).exit_code(), 6);
        assert_eq!(Failure::of_status(500).exit_code(), 1);
    }

    #[test]
    fn an_error_carries_the_detail() {
        let e = status_error(404, r#"{"detail": "camera x not found"}"#);
        assert_eq!(e.kind, Failure::NotFound);
        assert_eq!(e.message, "not found (HTTP 404): camera x not found");
        let e = status_error(422, r#"{"detail": [{"loc": ["body", "url"]}]}"#);
        assert!(e.message.contains("url"), "{}", e.message);
    }

    #[test]
    fn queries_leave_out_what_is_not_given() {
        assert_eq!(query([("a", None)]), "");
        assert_eq!(
            query([("camera", Some("front door".into())), ("x", None)]),
            "?camera=front+door"
        );
        assert_eq!(enc("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn a_url_must_be_http() {
        let e = Client::new("ftp://x", Credentials::None)
            .err()
            .map(|e| e.kind);
        assert_eq!(e, Some(Failure::BadInput));
        assert!(Client::new("http://127.0.0.1:5000/", Credentials::None).is_ok());
    }

    #[test]
    fn credentials_in_the_url_are_used_and_never_shown() {
        let c = Client::new("http://bob:s%40cret@127.0.0.1:5000", Credentials::None).unwrap();
        assert_eq!(c.url("/x"), "http://127.0.0.1:5000/x");
        assert_eq!(c.password(), Some("s@cret"));
        assert_eq!(
            without_secrets("http://bob:secret@nvr:5000/"),
            "http://nvr:5000/"
        );
        let e = Client::new("ftp://bob:secret@x", Credentials::None)
            .err()
            .map(|e| e.message)
            .unwrap_or_default();
        assert!(!e.contains("secret"), "{e}");
    }
}
