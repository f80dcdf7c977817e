//! Response bodies and the responses handlers build: JSON, text, bytes, files with byte ranges,
//! and bodies fed from a channel (live streams).

use std::io::SeekFrom;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Bytes, Frame};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;

use crate::error::ApiError;

/// The body of every response: a whole buffer or a stream of chunks.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// A response as handlers return it.
pub type Reply = Result<Response<Body>, ApiError>;

/// A body holding `bytes`.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A response with a body and a content type.
pub fn bytes(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

/// A JSON response.
pub fn json(status: StatusCode, v: &impl Serialize) -> Response<Body> {
    json_sized(status, v, 128)
}

/// A JSON response written into a buffer of `capacity` bytes to begin with.
fn json_sized(status: StatusCode, v: &impl Serialize, capacity: usize) -> Response<Body> {
    let mut body = Vec::with_capacity(capacity);
    if serde_json::to_writer(&mut body, v).is_err() {
        body = b"{\"detail\":\"encoding failed\"}".to_vec();
    }
    bytes(status, "application/json", body)
}

/// `200 OK` with JSON.
pub fn ok(v: &impl Serialize) -> Reply {
    Ok(json(StatusCode::OK, v))
}

/// `200 OK` with JSON, for a body of about `capacity` bytes.
pub fn ok_sized(v: &impl Serialize, capacity: usize) -> Reply {
    Ok(json_sized(StatusCode::OK, v, capacity))
}

/// A plain-text response.
pub fn text(status: StatusCode, s: impl Into<String>) -> Response<Body> {
    bytes(status, "text/plain; charset=utf-8", s.into())
}

/// A response without a body (`204 No Content` and the like).
pub fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(full(Bytes::new()));
    *r.status_mut() = status;
    r
}

/// A body whose chunks arrive on a channel; the response ends when every sender is gone. A
/// sender whose `send` waits is a slow client: producers that must not wait use `try_send` and
/// drop what does not fit (the live streams do).
pub struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
}

impl ChannelBody {
    /// A body and the sender that feeds it, holding up to `depth` chunks.
    pub fn channel(depth: usize) -> (mpsc::Sender<Bytes>, Body) {
        let (tx, rx) = mpsc::channel(depth.max(1));
        (tx, ChannelBody { rx }.boxed())
    }
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.rx.poll_recv(cx).map(|c| c.map(|b| Ok(Frame::data(b))))
    }
}

/// A byte range asked for with `Range: bytes=...`, resolved against the length of the file.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// No range (or one we answer with the whole file, as RFC 9110 allows: several ranges).
    Whole,
    /// `start..=end`, both within the file.
    Part(u64, u64),
    /// Nothing of the file matches: 416.
    Unsatisfiable,
}

/// Resolves a `Range` header value against a file of `len` bytes.
pub fn parse_range(value: Option<&str>, len: u64) -> ByteRange {
    let Some(v) = value else {
        return ByteRange::Whole;
    };
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        // Another unit: ignore the header.
        return ByteRange::Whole;
    };
    if spec.contains(',') {
        return ByteRange::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return ByteRange::Unsatisfiable;
    };
    let (a, b) = (a.trim(), b.trim());
    let parse = |s: &str| s.parse::<u64>().ok();
    match (a.is_empty(), b.is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => match parse(b) {
            Some(0) | None => ByteRange::Unsatisfiable,
            Some(_) if len == 0 => ByteRange::Unsatisfiable,
            Some(n) => ByteRange::Part(len.saturating_sub(n), len - 1),
        },
        (false, _) => {
            let Some(start) = parse(a) else {
                return ByteRange::Unsatisfiable;
            };
            let end = if b.is_empty() {
                Some(len.saturating_sub(1))
            } else {
                parse(b).map(|e| e.min(len.saturating_sub(1)))
            };
            match end {
                Some(end) if start < len && start <= end => ByteRange::Part(start, end),
                _ => ByteRange::Unsatisfiable,
            }
        }
        (true, true) => ByteRange::Unsatisfiable,
    }
}

/// Serves a file, honouring a `Range` header: 200 with the whole file, 206 with the asked part,
/// 416 when no byte of it is in the file. The file is read in chunks as the client takes them.
pub async fn file(path: &Path, content_type: &str, req_headers: &HeaderMap) -> Reply {
    let f = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ApiError::not_found("the file is gone"))
        }
        Err(e) => return Err(ApiError::io("opening a media file", e)),
    };
    open_file(f, content_type, req_headers).await
}

/// [`file`] for the bytes `start..end` of the file at `path` only (the init segment of a
/// recording, say), served as if they were the whole file.
pub async fn file_part(
    path: &Path,
    start: u64,
    end: u64,
    content_type: &str,
    req_headers: &HeaderMap,
) -> Reply {
    let f = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ApiError::not_found("the file is gone"))
        }
        Err(e) => return Err(ApiError::io("opening a media file", e)),
    };
    send_file(
        f,
        start,
        end.saturating_sub(start),
        content_type,
        req_headers,
    )
    .await
}

/// [`file`] for a file already open (one made for this request and already unlinked).
pub async fn open_file(f: tokio::fs::File, content_type: &str, req_headers: &HeaderMap) -> Reply {
    let len = f
        .metadata()
        .await
        .map_err(|e| ApiError::io("reading a media file's size", e))?
        .len();
    send_file(f, 0, len, content_type, req_headers).await
}

/// Serves the `len` bytes of `f` from `base` on, honouring a `Range` header over them.
async fn send_file(
    mut f: tokio::fs::File,
    base: u64,
    len: u64,
    content_type: &str,
    req_headers: &HeaderMap,
) -> Reply {
    let range = parse_range(
        req_headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
        len,
    );
    let (status, start, end) = match range {
        ByteRange::Whole => (StatusCode::OK, 0, len),
        ByteRange::Part(s, e) => (StatusCode::PARTIAL_CONTENT, s, e + 1),
        ByteRange::Unsatisfiable => {
            let mut r = json(
                StatusCode::RANGE_NOT_SATISFIABLE,
                &serde_json::json!({"detail": format!("the range is outside the file's {len} bytes")}),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(r);
        }
    };
    // Always: a file just written through a clone of this handle shares its offset.
    f.seek(SeekFrom::Start(base + start))
        .await
        .map_err(|e| ApiError::io("seeking in a media file", e))?;
    let (tx, body) = ChannelBody::channel(2);
    tokio::spawn(async move {
        let mut left = end - start;
        while left > 0 {
            let mut buf = vec![0u8; left.min(256 * 1024) as usize];
            match f.read_exact(&mut buf).await {
                Ok(_) => {}
                Err(e) => {
                    // The file shrank under us (retention): the client sees a short body.
                    tracing::debug!(err = %e, "media file read ended early");
                    return;
                }
            }
            left -= buf.len() as u64;
            if tx.send(Bytes::from(buf)).await.is_err() {
                return; // The client went away.
            }
        }
    });
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{len}", end - 1)) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(r)
}

/// The content type of a media file, by its extension.
pub fn content_type_of(path: &str) -> &'static str {
    match path
        .rsplit('.')
        .next()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("mp4") | Some("m4s") => "video/mp4",
        Some("jpg") | Some("jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use ByteRange::*;
        let r = |v: &str| parse_range(Some(v), 100);
        assert_eq!(parse_range(None, 100), Whole);
        assert_eq!(r("bytes=0-9"), Part(0, 9));
        assert_eq!(r("bytes=90-"), Part(90, 99));
        assert_eq!(r("bytes=90-1000"), Part(90, 99));
        assert_eq!(r("bytes=-10"), Part(90, 99));
        assert_eq!(r("bytes=-1000"), Part(0, 99));
        assert_eq!(r("bytes=100-"), Unsatisfiable);
        assert_eq!(r("bytes=5-4"), Unsatisfiable);
        assert_eq!(r("bytes=-0"), Unsatisfiable);
        assert_eq!(r("bytes=x-"), Unsatisfiable);
        assert_eq!(r("bytes=0-1,5-6"), Whole);
        assert_eq!(r("items=0-1"), Whole);
        assert_eq!(parse_range(Some("bytes=0-"), 0), Unsatisfiable);
    }
}
