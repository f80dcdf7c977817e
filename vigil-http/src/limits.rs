//! Request rate limits by tier (HSI's standard, media, search and WebSocket tiers) and the
//! cross-origin policy.
//!
//! Each client address gets a token bucket per tier: `per_minute` requests, refilled evenly
//! over the minute, so a burst of a minute's worth is allowed and then one request every
//! `60 / per_minute` seconds. Over the limit, the answer is `429` with `Retry-After`. Loopback
//! clients (a reverse proxy on the same host, the tools on it) are exempt unless
//! `exempt_loopback` is off; behind a proxy, every client has the proxy's address, so limit
//! at the proxy instead.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// A tier: which bucket a request takes from.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Most endpoints.
    Standard,
    /// Pictures and video: stills, thumbnails, snapshots, clips, recordings' files, MJPEG.
    Media,
    /// Full-text event search.
    Search,
    /// New WebSocket connections and event streams.
    Websocket,
}

impl Tier {
    /// The tier of the endpoint `pattern`.
    pub fn of(pattern: &str) -> Tier {
        const MEDIA_PREFIXES: &[&str] =
            &["/api/media/", "/clips/", "/api/recordings/file/", "/vod/"];
        const MEDIA_SUFFIXES: &[&str] = &[
            ".jpg",
            ".mp4",
            ".png",
            ".webp",
            ".gif",
            "/snapshot",
            "/thumbnail",
            "/image",
            "/video",
            "/file",
            "/download",
            "/sprite",
            "/stream",
            "/snapshot_image",
        ];
        if pattern.starts_with("/ws/") || pattern == "/events" || pattern == "/api/logs/stream" {
            Tier::Websocket
        } else if pattern == "/api/events/search" {
            Tier::Search
        } else if MEDIA_PREFIXES.iter().any(|p| pattern.starts_with(p))
            || MEDIA_SUFFIXES.iter().any(|s| pattern.ends_with(s))
            || pattern == "/api/{camera}"
        {
            Tier::Media
        } else {
            Tier::Standard
        }
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Standard => "standard",
            Tier::Media => "media",
            Tier::Search => "search",
            Tier::Websocket => "websocket",
        }
    }
}

/// Limits per client address and minute (`[server.rate_limits]` in vigild's configuration).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    /// Limit at all.
    pub enabled: bool,
    /// Leave clients on the same host alone.
    pub exempt_loopback: bool,
    /// Requests per minute of the standard tier.
    pub standard: u32,
    /// Requests per minute of the media tier.
    pub media: u32,
    /// Requests per minute of the search tier.
    pub search: u32,
    /// New WebSocket and event-stream connections per minute.
    pub websocket: u32,
    /// Failed password checks (logins, Basic credentials, password changes) per client
    /// address a minute before 429s until the minute ends; loopback included, and not turned
    /// off by `enabled = false` ([`crate::auth::MAX_FAILURES`] by default).
    pub failed_logins: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            enabled: true,
            exempt_loopback: true,
            standard: 600,
            media: 1200,
            search: 60,
            websocket: 30,
            failed_logins: crate::auth::MAX_FAILURES,
        }
    }
}

impl RateLimits {
    /// Checks that each tier allows at least one request a minute.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        for (k, v) in [
            ("standard", self.standard),
            ("media", self.media),
            ("search", self.search),
            ("websocket", self.websocket),
            ("failed_logins", self.failed_logins),
        ] {
            if v == 0 {
                return Err((
                    k,
                    "must be at least 1 a minute (turn limits off with enabled = false)".into(),
                ));
            }
        }
        Ok(())
    }

    /// The limit of tier `t`.
    pub fn per_minute(&self, t: Tier) -> u32 {
        match t {
            Tier::Standard => self.standard,
            Tier::Media => self.media,
            Tier::Search => self.search,
            Tier::Websocket => self.websocket,
        }
    }
}

/// The client an address belongs to: one IPv6 client holds a whole /64.
fn client(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// How many connections may be open at once (`[server.connections]` in vigild's
/// configuration). A connection over either limit is answered `503` with `Retry-After` and
/// closed before anything of it is read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectionLimits {
    /// All clients together. Whatever this says, at most half the process's file limit
    /// (`RLIMIT_NOFILE`, read when serving starts): the other half stays for recordings, the
    /// store and the cameras, so no number of connections can stop recording.
    pub total: u32,
    /// One client address (an IPv6 /64). Loopback, where a reverse proxy on the same host
    /// connects from for all of its clients, is held to the total only.
    pub per_address: u32,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            total: 1024,
            per_address: 128,
        }
    }
}

impl ConnectionLimits {
    /// Checks that each limit lets at least one connection in.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        for (k, v) in [("total", self.total), ("per_address", self.per_address)] {
            if v == 0 {
                return Err((k, "must be at least 1".into()));
            }
        }
        Ok(())
    }

    /// The total in force: [`ConnectionLimits::total`], but at most half the file limit.
    pub fn effective_total(&self) -> u32 {
        let files = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(u64::MAX);
        let half = u32::try_from(files / 2).unwrap_or(u32::MAX);
        self.total.min(half).max(1)
    }
}

/// The connections open now, by client.
#[derive(Debug)]
pub(crate) struct Gate {
    total: u32,
    per_address: u32,
    open: Mutex<(u32, HashMap<IpAddr, u32>)>,
}

/// A connection let in: its place is given back when this is dropped.
#[derive(Debug)]
pub(crate) struct Admitted {
    gate: std::sync::Arc<Gate>,
    client: Option<IpAddr>,
}

/// Why a connection was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// All clients together hold the total.
    Total(u32),
    /// This client holds its share.
    PerAddress(u32),
}

impl Gate {
    pub(crate) fn new(limits: &ConnectionLimits) -> std::sync::Arc<Gate> {
        std::sync::Arc::new(Gate {
            total: limits.effective_total(),
            per_address: limits.per_address.max(1),
            open: Mutex::default(),
        })
    }

    /// The total in force.
    pub(crate) fn total(&self) -> u32 {
        self.total
    }

    /// Lets a connection from `ip` in, or says which limit it is over.
    pub(crate) fn admit(self: &std::sync::Arc<Self>, ip: IpAddr) -> Result<Admitted, Refused> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.0 >= self.total {
            return Err(Refused::Total(self.total));
        }
        let client = (!ip.to_canonical().is_loopback()).then(|| client(ip));
        if let Some(c) = client {
            let n = open.1.entry(c).or_insert(0);
            if *n >= self.per_address {
                return Err(Refused::PerAddress(self.per_address));
            }
            *n += 1;
        }
        open.0 += 1;
        Ok(Admitted {
            gate: self.clone(),
            client,
        })
    }
}

/// A connection's socket with its place: the place is given back when the socket closes,
/// also when the connection was upgraded (a WebSocket outlives the HTTP exchange that opened
/// it).
#[derive(Debug)]
pub(crate) struct Counted<S> {
    inner: S,
    _place: Admitted,
}

impl<S> Counted<S> {
    pub(crate) fn new(inner: S, place: Admitted) -> Self {
        Counted {
            inner,
            _place: place,
        }
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Counted<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.gate.open.lock().unwrap_or_else(|e| e.into_inner());
        open.0 = open.0.saturating_sub(1);
        if let Some(c) = self.client {
            if let std::collections::hash_map::Entry::Occupied(mut n) = open.1.entry(c) {
                *n.get_mut() -= 1;
                if *n.get() == 0 {
                    n.remove();
                }
            }
        }
    }
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets forgotten once this many are held (full ones first).
const MAX_BUCKETS: usize = 65_536;

/// The buckets of every client and tier.
#[derive(Debug)]
pub(crate) struct Limiter {
    limits: RateLimits,
    buckets: Mutex<HashMap<(IpAddr, Tier), Bucket>>,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.1}", self.tokens)
    }
}

impl Limiter {
    pub(crate) fn new(limits: RateLimits) -> Limiter {
        Limiter {
            limits,
            buckets: Mutex::default(),
        }
    }

    pub(crate) fn limits(&self) -> &RateLimits {
        &self.limits
    }

    /// Takes one request from `ip`'s bucket of `tier`: `Err(wait)` when it is empty.
    pub(crate) fn take(&self, ip: Option<IpAddr>, tier: Tier) -> Result<(), Duration> {
        let l = &self.limits;
        let Some(ip) = ip.map(|ip| ip.to_canonical()) else {
            return Ok(());
        };
        if !l.enabled || (l.exempt_loopback && ip.is_loopback()) {
            return Ok(());
        }
        let ip = client(ip);
        let cap = f64::from(l.per_minute(tier).max(1));
        let rate = cap / 60.0;
        let now = Instant::now();
        let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if b.len() >= MAX_BUCKETS {
            // A bucket idle for a minute is full again: forgetting it changes nothing. Those
            // used within the minute stay, however many there are.
            b.retain(|_, v| now.duration_since(v.at) < Duration::from_secs(60));
        }
        let e = b.entry((ip, tier)).or_insert(Bucket {
            tokens: cap,
            at: now,
        });
        e.tokens = (e.tokens + now.duration_since(e.at).as_secs_f64() * rate).min(cap);
        e.at = now;
        if e.tokens >= 1.0 {
            e.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - e.tokens) / rate))
        }
    }
}

/// Which origins a browser may call the API from (`[server] cors_origins`).
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Cors {
    /// Any origin (`Access-Control-Allow-Origin: *`): credentials are not sent across
    /// origins by browsers then, so pages elsewhere need an API key or token.
    #[default]
    Any,
    /// Only these origins (`https://ha.example:8123`), echoed back with `Vary: Origin`.
    Only(Vec<String>),
    /// None: no cross-origin headers at all.
    None,
}

impl Cors {
    /// From a configured list: `["*"]` is any, `[]` none.
    pub fn from_list(origins: &[String]) -> Result<Cors, String> {
        if origins.iter().any(|o| o == "*") {
            return Ok(Cors::Any);
        }
        if origins.is_empty() {
            return Ok(Cors::None);
        }
        for o in origins {
            let u = url::Url::parse(o).map_err(|e| format!("{o:?} is not an origin: {e}"))?;
            if u.origin().ascii_serialization() != o.trim_end_matches('/') {
                return Err(format!(
                    "{o:?} is not an origin (scheme://host[:port], no path): {}",
                    u.origin().ascii_serialization()
                ));
            }
        }
        Ok(Cors::Only(
            origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_owned())
                .collect(),
        ))
    }

    /// The `Access-Control-Allow-Origin` value for a request from `origin`, if any.
    pub(crate) fn allow(&self, origin: Option<&str>) -> Option<String> {
        match self {
            Cors::Any => Some("*".into()),
            Cors::None => None,
            Cors::Only(list) => origin
                .filter(|o| list.iter().any(|l| l == o))
                .map(str::to_owned),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_of_patterns() {
        assert_eq!(Tier::of("/api/events"), Tier::Standard);
        assert_eq!(Tier::of("/api/events/search"), Tier::Search);
        assert_eq!(Tier::of("/api/events/{id}/snapshot.jpg"), Tier::Media);
        assert_eq!(Tier::of("/api/media/{path}"), Tier::Media);
        assert_eq!(Tier::of("/api/{camera}"), Tier::Media);
        assert_eq!(Tier::of("/ws/events"), Tier::Websocket);
        assert_eq!(Tier::of("/events"), Tier::Websocket);
        assert_eq!(Tier::of("/timelapse/configure"), Tier::Standard);
        assert_eq!(Tier::of("/timelapse/video"), Tier::Media);
        assert_eq!(Tier::of("/api/recordings/file/{*path}"), Tier::Media);
    }

    #[test]
    fn connections_are_counted_per_client_and_in_all() {
        let gate = Gate::new(&ConnectionLimits {
            total: 5,
            per_address: 2,
        });
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let a1 = gate.admit(ip("10.0.0.1")).unwrap();
        let a2 = gate.admit(ip("::ffff:10.0.0.1")).unwrap();
        assert_eq!(
            gate.admit(ip("10.0.0.1")).unwrap_err(),
            Refused::PerAddress(2)
        );
        // One IPv6 client is its /64.
        let b1 = gate.admit(ip("2001:db8::1")).unwrap();
        let b2 = gate.admit(ip("2001:db8::2:3")).unwrap();
        assert_eq!(
            gate.admit(ip("2001:db8::ffff")).unwrap_err(),
            Refused::PerAddress(2)
        );
        // Loopback is held to the total only.
        let l = gate.admit(ip("127.0.0.1")).unwrap();
        assert_eq!(gate.admit(ip("127.0.0.1")).unwrap_err(), Refused::Total(5));
        assert_eq!(gate.admit(ip("10.9.9.9")).unwrap_err(), Refused::Total(5));
        drop((a1, l));
        let a3 = gate.admit(ip("10.0.0.1")).unwrap();
        let c = gate.admit(ip("10.9.9.9")).unwrap();
        drop((a2, a3, b1, b2, c));
        let open = gate.open.lock().unwrap();
        assert_eq!(open.0, 0);
        assert!(open.1.is_empty(), "{:?}", open.1);
    }

    #[test]
    fn buckets_refill_over_the_minute() {
        let l = Limiter::new(RateLimits {
            exempt_loopback: false,
            search: 2,
            ..RateLimits::default()
        });
        let ip = Some("10.0.0.1".parse().unwrap());
        assert!(l.take(ip, Tier::Search).is_ok());
        assert!(l.take(ip, Tier::Search).is_ok());
        let wait = l.take(ip, Tier::Search).unwrap_err();
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        // Other tiers and other clients have their own buckets.
        assert!(l.take(ip, Tier::Standard).is_ok());
        assert!(l
            .take(Some("10.0.0.2".parse().unwrap()), Tier::Search)
            .is_ok());
        // Loopback is exempt by default.
        let l = Limiter::new(RateLimits {
            search: 1,
            ..RateLimits::default()
        });
        let lo = Some("127.0.0.1".parse().unwrap());
        for _ in 0..10 {
            assert!(l.take(lo, Tier::Search).is_ok());
        }
    }

    #[test]
    fn cors_lists() {
        assert_eq!(Cors::from_list(&["*".into()]).unwrap(), Cors::Any);
        assert_eq!(Cors::from_list(&[]).unwrap(), Cors::None);
        let c = Cors::from_list(&["https://ha.example:8123".into()]).unwrap();
        assert_eq!(
            c.allow(Some("https://ha.example:8123")).as_deref(),
            Some("https://ha.example:8123")
        );
        assert_eq!(c.allow(Some("https://evil.example")), None);
        assert!(Cors::from_list(&["https://ha.example/path".into()]).is_err());
        assert!(Cors::from_list(&["not an origin".into()]).is_err());
    }
}
