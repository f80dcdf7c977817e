//! The RTSP restream: each camera's record stream passed on as it arrives, without
//! re-encoding, at `rtsp://<host>:<port>/<camera>`. Home Assistant's Frigate integration plays
//! it as the camera's live view (it expects port 8554); VLC and ffmpeg play it too.
//!
//! What it speaks (RFC 2326, as much as players use): `OPTIONS`, `DESCRIBE` (SDP with the
//! H.264 parameter sets), `SETUP` over TCP only (RTP interleaved in the RTSP connection; a
//! UDP transport is answered 461, and players then ask for TCP), `PLAY`, `GET_PARAMETER`
//! (keep-alive) and `TEARDOWN`. Video only, H.264 only (RFC 6184: single NAL unit packets and
//! FU-A fragments, packetization-mode 1); playing starts at the next key frame, with the
//! parameter sets sent in band before each one.
//!
//! Authentication is the API's: with accounts on, a connection needs Basic credentials of an
//! account (or `?token=` / `?api_key=` in its first URL), viewers included; until it gives
//! them, it is answered 401 with a Basic challenge. A watcher that falls behind (its connection's buffer
//! full) misses frames up to the next key frame: a slow player never slows the camera.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc};
use vigil_core::{CameraId, VideoCodec, VideoFrame, VideoParams};

use crate::AppState;

/// RTP payload size at most (an Ethernet MTU with room for the headers).
const MAX_PAYLOAD: usize = 1400;
/// RTP's dynamic payload type for H.264.
const PAYLOAD_TYPE: u8 = 96;
/// Requests of one connection read at most this many header bytes.
const MAX_REQUEST: usize = 16 * 1024;
/// Messages (responses, and frames with all their packets) queued for one connection; a frame
/// that would leave fewer than [`HEADROOM`] free is dropped, and frames to the next key frame.
const QUEUE: usize = 64;
/// Queue places kept for responses.
const HEADROOM: usize = 8;
/// Connections at once; more are closed at once.
const MAX_CONNECTIONS: usize = 64;
/// How long a connection may stay silent before it plays.
const IDLE: std::time::Duration = std::time::Duration::from_secs(60);
/// How long one write may wait for a client that does not read.
const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Serves the restream on `listener` until the HTTP server [`crate::serve`] of `state`
/// shuts down. Give `state` [`AppState::with_rtsp`] first, so that `/api/config` names the
/// streams.
pub async fn serve(listener: TcpListener, state: AppState) {
    let mut closing = state.closing();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = closing.changed() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, "RTSP connection refused: {MAX_CONNECTIONS} already open");
                    continue;
                };
                let state = state.clone();
                let closing = closing.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    if let Err(e) = connection(stream, peer, state, closing).await {
                        tracing::debug!(%peer, err = %e, "RTSP connection ended");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(err = %e, "RTSP accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// One request.
#[derive(Debug)]
struct Request {
    method: String,
    url: String,
    cseq: String,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the connection's reader got: a request, or the end.
enum Incoming {
    Request(Request),
    Closed,
}

/// Reads the next request, skipping interleaved binary frames (the player's RTCP reports).
async fn read_request<R: tokio::io::AsyncRead + Unpin>(
    r: &mut BufReader<R>,
) -> std::io::Result<Incoming> {
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Ok(Incoming::Closed);
        }
        if buf[0] == b'$' {
            let mut head = [0u8; 4];
            r.read_exact(&mut head).await?;
            let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
            let mut skip = vec![0u8; len];
            r.read_exact(&mut skip).await?;
            continue;
        }
        break;
    }
    let mut lines = Vec::new();
    let mut total = 0;
    loop {
        // Never more than the limit, newline or not.
        let mut raw = Vec::new();
        let left = (MAX_REQUEST - total) as u64 + 1;
        let n = (&mut *r).take(left).read_until(b'\n', &mut raw).await?;
        if n == 0 {
            return Ok(Incoming::Closed);
        }
        total += n;
        if total > MAX_REQUEST || raw.last() != Some(&b'\n') {
            return Err(std::io::Error::other("request headers too long or cut off"));
        }
        let line = String::from_utf8(raw).map_err(std::io::Error::other)?;
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        if line.is_empty() {
            if lines.is_empty() {
                continue;
            }
            break;
        }
        lines.push(line);
    }
    let mut first = lines[0].split_whitespace();
    let method = first.next().unwrap_or("").to_owned();
    let url = first.next().unwrap_or("").to_owned();
    let headers: Vec<(String, String)> = lines[1..]
        .iter()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let req = Request {
        // Echoed in the response's head: a CR in it would end the header line there.
        cseq: headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("cseq"))
            .map(|(_, v)| v.chars().filter(|c| !c.is_control()).collect())
            .unwrap_or_default(),
        method,
        url,
        headers,
    };
    // A body (none of the methods served has one) is read and dropped.
    if let Some(n) = req
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        if n > MAX_REQUEST {
            return Err(std::io::Error::other("request body too long"));
        }
        let mut skip = vec![0u8; n];
        r.read_exact(&mut skip).await?;
    }
    Ok(Incoming::Request(req))
}

/// The camera and the query of a request URL (`rtsp://host:port/<camera>[/trackID=0][?query]`).
fn target(url: &str) -> Option<(String, String)> {
    let rest = url
        .strip_prefix("rtsp://")
        .or_else(|| url.strip_prefix("rtsps://"))?;
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let mut parts = path.trim_matches('/').split('/');
    let camera = percent_encoding::percent_decode_str(parts.next()?)
        .decode_utf8()
        .ok()?
        .into_owned();
    Some((camera, query.to_owned()))
}

/// A response: status line, CSeq, the extra headers, and an optional body.
fn response(cseq: &str, status: &str, extra: &[(&str, String)], body: &str) -> Vec<u8> {
    let mut out = format!("RTSP/1.0 {status}\r\nCSeq: {cseq}\r\nServer: Vigil\r\n");
    for (k, v) in extra {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    out.push_str(body);
    out.into_bytes()
}

/// NAL units, each without a start code or length.
type Nals = Vec<Vec<u8>>;

/// The SPS and PPS of an `avcC` record.
fn parameter_sets(avcc: &[u8]) -> Option<(Nals, Nals)> {
    /// `n` length-prefixed sets from `at` on, and where they end.
    fn sets(avcc: &[u8], mut at: usize, n: usize) -> Option<(Nals, usize)> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let len = usize::from(u16::from_be_bytes([*avcc.get(at)?, *avcc.get(at + 1)?]));
            out.push(avcc.get(at + 2..at + 2 + len)?.to_vec());
            at += 2 + len;
        }
        Some((out, at))
    }
    let (sps, at) = sets(avcc, 6, usize::from(*avcc.get(5)? & 0x1f))?;
    let (pps, _) = sets(avcc, at + 1, usize::from(*avcc.get(at)?))?;
    Some((sps, pps))
}

/// The SDP of a camera's stream.
fn sdp(camera: &str, params: &VideoParams, session: u32) -> Option<String> {
    use base64::Engine;
    let (sps, pps) = parameter_sets(&params.extra_data)?;
    let first = sps.first()?;
    let profile = first
        .get(1..4)
        .map(|b| format!("{:02X}{:02X}{:02X}", b[0], b[1], b[2]))?;
    let b64 = |v: &[u8]| base64::engine::general_purpose::STANDARD.encode(v);
    let sets: Vec<String> = sps.iter().chain(&pps).map(|s| b64(s)).collect();
    Some(format!(
        "v=0\r\no=- {session} 1 IN IP4 0.0.0.0\r\ns=Vigil {camera}\r\nt=0 0\r\n\
         a=control:*\r\na=range:npt=0-\r\nm=video 0 RTP/AVP {PAYLOAD_TYPE}\r\nc=IN IP4 0.0.0.0\r\n\
         a=rtpmap:{PAYLOAD_TYPE} H264/90000\r\n\
         a=fmtp:{PAYLOAD_TYPE} packetization-mode=1;profile-level-id={profile};sprop-parameter-sets={}\r\n\
         a=control:trackID=0\r\n",
        sets.join(",")
    ))
}

/// Whether the request may watch: with accounts on, it must prove an account.
async fn allowed(state: &AppState, req: &Request, query: &str, peer: SocketAddr) -> bool {
    let auth = match state.load_auth().await {
        Ok(Some(a)) => a,
        Ok(None) => return true,
        Err(_) => return false,
    };
    let mut headers = hyper::HeaderMap::new();
    if let Some(v) = req
        .header("authorization")
        .and_then(|v| hyper::header::HeaderValue::from_str(v).ok())
    {
        headers.insert(hyper::header::AUTHORIZATION, v);
    }
    let creds = crate::auth::Credentials::from_request(&headers, query);
    matches!(
        auth.authenticate(&creds, Some(peer.ip())).await,
        Ok(Some(_))
    )
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    state: AppState,
    mut closing: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    // Responses and packets go through one queue to one writer, in order.
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(QUEUE);
    let mut writer = tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            match tokio::time::timeout(WRITE_TIMEOUT, write.write_all(&b)).await {
                Ok(Ok(())) => {}
                // Gone, or not reading: the connection ends.
                _ => return,
            }
        }
    });
    let session = random_u32();
    let mut setup: Option<(CameraId, u8)> = None;
    let mut playing: Option<tokio::task::JoinHandle<()>> = None;
    let mut authorized = false;
    let result = loop {
        let idle = if playing.is_some() {
            std::time::Duration::MAX
        } else {
            IDLE
        };
        let incoming = tokio::select! {
            r = tokio::time::timeout(idle, read_request(&mut reader)) => match r {
                Ok(r) => r,
                Err(_) => break Ok(()),
            },
            // The writer gave up on the client.
            _ = &mut writer => break Ok(()),
            _ = closing.changed() => break Ok(()),
        };
        let req = match incoming {
            Ok(Incoming::Request(r)) => r,
            Ok(Incoming::Closed) => break Ok(()),
            Err(e) => break Err(e),
        };
        let cseq = req.cseq.clone();
        let send = |b: Vec<u8>| tx.try_send(b).is_ok();
        let Some((camera, query)) = target(&req.url) else {
            send(response(&cseq, "400 Bad Request", &[], ""));
            continue;
        };
        if req.method == "OPTIONS" {
            let public = "OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER, TEARDOWN".to_owned();
            send(response(&cseq, "200 OK", &[("Public", public)], ""));
            continue;
        }
        // A connection proves who it is once (players put `?token=` on the first request's
        // URL only); Basic credentials come with every request anyway.
        authorized = authorized || allowed(&state, &req, &query, peer).await;
        if !authorized {
            let challenge = "Basic realm=\"Vigil\"".to_owned();
            send(response(
                &cseq,
                "401 Unauthorized",
                &[("WWW-Authenticate", challenge)],
                "",
            ));
            continue;
        }
        let Some(nvr) = state.nvr() else {
            send(response(&cseq, "503 Service Unavailable", &[], ""));
            continue;
        };
        let Ok(id) = CameraId::new(&camera) else {
            send(response(&cseq, "404 Not Found", &[], ""));
            continue;
        };
        if !matches!(state.store().camera(&id).await, Ok(Some(c)) if c.enabled) {
            send(response(&cseq, "404 Not Found", &[], ""));
            continue;
        }
        let feed = nvr.restream().feed(&id);
        match req.method.as_str() {
            "DESCRIBE" => {
                let params = match feed.params() {
                    Some(p) if p.codec == VideoCodec::H264 => p,
                    Some(_) => {
                        send(response(&cseq, "415 Unsupported Media Type", &[], ""));
                        continue;
                    }
                    None => {
                        // Not connected to the camera (yet).
                        send(response(&cseq, "503 Service Unavailable", &[], ""));
                        continue;
                    }
                };
                match sdp(&camera, &params, session) {
                    Some(body) => {
                        // Without the query: players append the track's control to it.
                        let url = req.url.split('?').next().unwrap_or(&req.url);
                        let base = format!("{}/", url.trim_end_matches('/'));
                        send(response(
                            &cseq,
                            "200 OK",
                            &[
                                ("Content-Type", "application/sdp".into()),
                                ("Content-Base", base),
                            ],
                            &body,
                        ));
                    }
                    None => {
                        send(response(&cseq, "500 Internal Server Error", &[], ""));
                    }
                }
            }
            "SETUP" => {
                let transport = req.header("transport").unwrap_or("");
                let Some(channel) = interleaved(transport) else {
                    send(response(&cseq, "461 Unsupported Transport", &[], ""));
                    continue;
                };
                setup = Some((id, channel));
                let t = format!(
                    "RTP/AVP/TCP;unicast;interleaved={channel}-{};ssrc={session:08X}",
                    channel.wrapping_add(1)
                );
                send(response(
                    &cseq,
                    "200 OK",
                    &[
                        ("Transport", t),
                        ("Session", format!("{session:08X};timeout=60")),
                    ],
                    "",
                ));
            }
            "PLAY" => {
                let Some((id, channel)) = setup.clone() else {
                    send(response(
                        &cseq,
                        "455 Method Not Valid in This State",
                        &[],
                        "",
                    ));
                    continue;
                };
                let sent = send(response(
                    &cseq,
                    "200 OK",
                    &[
                        ("Session", format!("{session:08X}")),
                        ("Range", "npt=0.000-".into()),
                    ],
                    "",
                ));
                if sent && playing.as_ref().is_none_or(|p| p.is_finished()) {
                    let feed = nvr.restream().feed(&id);
                    let frames = feed.subscribe();
                    playing = Some(tokio::spawn(play(
                        frames,
                        feed,
                        tx.clone(),
                        channel,
                        session,
                    )));
                }
            }
            "GET_PARAMETER" | "SET_PARAMETER" => {
                send(response(
                    &cseq,
                    "200 OK",
                    &[("Session", format!("{session:08X}"))],
                    "",
                ));
            }
            "TEARDOWN" => {
                send(response(&cseq, "200 OK", &[], ""));
                break Ok(());
            }
            _ => {
                send(response(&cseq, "405 Method Not Allowed", &[], ""));
            }
        }
    };
    if let Some(p) = playing {
        p.abort();
    }
    drop(tx);
    // The writer sends what is queued (the last response), then ends.
    if !writer.is_finished()
        && tokio::time::timeout(std::time::Duration::from_secs(2), &mut writer)
            .await
            .is_err()
    {
        writer.abort();
    }
    result
}

/// The first channel of an `RTP/AVP/TCP;interleaved=a-b` transport; `None` for any other.
fn interleaved(transport: &str) -> Option<u8> {
    transport.split(',').find_map(|t| {
        let mut parts = t.split(';').map(str::trim);
        if !parts.next()?.eq_ignore_ascii_case("RTP/AVP/TCP") {
            return None;
        }
        let channel = parts
            .find_map(|p| p.strip_prefix("interleaved="))
            .map_or(Some(0), |v| v.split('-').next()?.parse().ok())?;
        Some(channel)
    })
}

fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    // A fixed value only makes sessions less distinct, never unsafe.
    let _ = getrandom::fill(&mut b);
    u32::from_be_bytes(b)
}

/// Sends the camera's frames from the next key frame on, as RTP in interleaved frames on
/// `channel`, until the connection or the feed ends.
async fn play(
    mut frames: broadcast::Receiver<VideoFrame>,
    feed: Arc<vigil_core::pipeline::Feed>,
    tx: mpsc::Sender<Vec<u8>>,
    channel: u8,
    ssrc: u32,
) {
    let mut rtp = Rtp {
        seq: random_u32() as u16,
        ssrc,
        offset: random_u32(),
        last: None,
    };
    let mut waiting_key = true;
    loop {
        let f = match frames.recv().await {
            Ok(f) => f,
            Err(broadcast::error::RecvError::Lagged(_)) => {
                waiting_key = true;
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if waiting_key && !f.is_key {
            continue;
        }
        // All of a frame or none of it (a frame cut short would show as damage until the next
        // key frame anyway), with room left for responses.
        if tx.capacity() <= HEADROOM {
            waiting_key = true;
            continue;
        }
        let sets = if f.is_key {
            match feed.params() {
                Some(p) if p.codec == VideoCodec::H264 => parameter_sets(&p.extra_data)
                    .map(|(s, p)| s.into_iter().chain(p).collect::<Vec<_>>())
                    .unwrap_or_default(),
                // The camera changed codec: this session's SDP no longer says what comes.
                _ => return,
            }
        } else {
            Vec::new()
        };
        waiting_key = false;
        let packets = rtp.packetize(&f, &sets, channel);
        match tx.try_send(packets) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => waiting_key = true,
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}

/// An RTP sender's state.
struct Rtp {
    seq: u16,
    ssrc: u32,
    /// The timestamp of the first frame.
    offset: u32,
    /// The last frame's time (90 kHz) and RTP timestamp.
    last: Option<(i64, u32)>,
}

/// The longest step between two frames taken as it is; a longer one, or one back (the camera
/// reconnected and its clock started again), counts as one frame at 30 fps, so that
/// timestamps go on rising.
const MAX_STEP_90K: i64 = 5 * 90_000;

impl Rtp {
    /// The interleaved RTP packets of one access unit (AVC form: 4-byte lengths), the
    /// parameter sets `sets` first, back to back in one buffer (one queue entry, one write).
    fn packetize(&mut self, f: &VideoFrame, sets: &[Vec<u8>], channel: u8) -> Vec<u8> {
        let ts = match self.last {
            None => self.offset,
            Some((pts, ts)) => {
                let step = f.pts_90k.saturating_sub(pts);
                let step = if (0..=MAX_STEP_90K).contains(&step) {
                    step
                } else {
                    3000
                };
                ts.wrapping_add(step as u32)
            }
        };
        self.last = Some((f.pts_90k, ts));
        let mut frame: Vec<&[u8]> = Vec::new();
        let mut at = 0;
        let d = &f.data[..];
        while let Some(head) = d.get(at..at + 4) {
            let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
            let Some(nal) = d.get(at + 4..).and_then(|rest| rest.get(..len)) else {
                break;
            };
            if !nal.is_empty() {
                frame.push(nal);
            }
            at += 4 + len;
        }
        // The parameter sets go first, after an access unit delimiter if there is one; a
        // frame that carries its own needs none.
        let own = frame.iter().any(|n| n[0] & 0x1f == 7);
        let aud = usize::from(frame.first().is_some_and(|n| n[0] & 0x1f == 9));
        let mut nals: Vec<&[u8]> = frame[..aud].to_vec();
        if !own {
            nals.extend(sets.iter().map(Vec::as_slice));
        }
        nals.extend_from_slice(&frame[aud..]);
        let mut out = Vec::with_capacity(f.data.len() + f.data.len() / MAX_PAYLOAD * 18 + 64);
        let count = nals.len();
        for (i, nal) in nals.into_iter().enumerate() {
            let last = i + 1 == count;
            if nal.len() <= MAX_PAYLOAD {
                self.packet(&mut out, channel, ts, last, &[nal]);
                continue;
            }
            // FU-A: the NAL header's bits in the indicator and the header, the rest in pieces.
            let indicator = (nal[0] & 0xe0) | 28;
            let kind = nal[0] & 0x1f;
            let body = &nal[1..];
            let n = body.len().div_ceil(MAX_PAYLOAD - 2);
            for (j, piece) in body.chunks(MAX_PAYLOAD - 2).enumerate() {
                let mut header = kind;
                if j == 0 {
                    header |= 0x80;
                }
                if j + 1 == n {
                    header |= 0x40;
                }
                self.packet(
                    &mut out,
                    channel,
                    ts,
                    last && j + 1 == n,
                    &[&[indicator, header], piece],
                );
            }
        }
        out
    }

    /// Appends to `b` one interleaved RTP packet of `payload`'s parts.
    fn packet(&mut self, b: &mut Vec<u8>, channel: u8, ts: u32, marker: bool, payload: &[&[u8]]) {
        let len: usize = 12 + payload.iter().map(|p| p.len()).sum::<usize>();
        b.push(b'$');
        b.push(channel);
        b.extend_from_slice(&(len as u16).to_be_bytes());
        b.push(0x80);
        b.push(if marker {
            0x80 | PAYLOAD_TYPE
        } else {
            PAYLOAD_TYPE
        });
        b.extend_from_slice(&self.seq.to_be_bytes());
        b.extend_from_slice(&ts.to_be_bytes());
        b.extend_from_slice(&self.ssrc.to_be_bytes());
        for p in payload {
            b.extend_from_slice(p);
        }
        self.seq = self.seq.wrapping_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The interleaved packets of a buffer [`Rtp::packetize`] made, one by one.
    fn split(mut b: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while b.len() >= 4 {
            let n = 4 + usize::from(u16::from_be_bytes([b[2], b[3]]));
            out.push(b[..n].to_vec());
            b = &b[n..];
        }
        out
    }

    #[test]
    fn urls_name_the_camera_and_keep_the_query() {
        assert_eq!(
            target("rtsp://h:8554/front"),
            Some(("front".into(), String::new()))
        );
        assert_eq!(
            target("rtsp://h:8554/front/trackID=0?token=vt_x"),
            Some(("front".into(), "token=vt_x".into()))
        );
        assert_eq!(
            target("rtsp://h:8554/a%20b/"),
            Some(("a b".into(), String::new()))
        );
        assert_eq!(target("http://h/front"), None);
    }

    #[test]
    fn only_tcp_transports_are_taken() {
        assert_eq!(interleaved("RTP/AVP/TCP;unicast;interleaved=2-3"), Some(2));
        assert_eq!(interleaved("RTP/AVP;unicast;client_port=5000-5001"), None);
        assert_eq!(
            interleaved("RTP/AVP;unicast;client_port=5000-5001,RTP/AVP/TCP;unicast"),
            Some(0)
        );
    }

    #[test]
    fn parameter_sets_come_out_of_avcc() {
        // version, profile, compat, level, length size, 1 SPS of 4 bytes, 1 PPS of 2 bytes.
        let avcc = [
            1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0, 0x1f, 1, 0, 2, 0x68, 0xee,
        ];
        let (sps, pps) = parameter_sets(&avcc).unwrap();
        assert_eq!(sps, vec![vec![0x67, 0x64, 0, 0x1f]]);
        assert_eq!(pps, vec![vec![0x68, 0xee]]);
        assert_eq!(parameter_sets(&avcc[..10]), None);
    }

    #[test]
    fn big_nal_units_are_fragmented_and_the_last_packet_is_marked() {
        let mut nal = vec![0x65u8];
        nal.extend(std::iter::repeat_n(7u8, 3000));
        let mut data = (nal.len() as u32).to_be_bytes().to_vec();
        data.extend_from_slice(&nal);
        let f = VideoFrame {
            pts_90k: 9000,
            time: vigil_core::Timestamp(0),
            is_key: true,
            data: data.into(),
            new_params: None,
        };
        let mut rtp = Rtp {
            seq: 65535,
            ssrc: 1,
            offset: 0,
            last: None,
        };
        let sps = vec![0x67, 1, 2];
        let packets = split(&rtp.packetize(&f, std::slice::from_ref(&sps), 0));
        assert_eq!(packets.len(), 1 + 3);
        // The SPS whole, unmarked; then FU-A start, middle, end (marked).
        assert_eq!(&packets[0][16..], &sps[..]);
        assert_eq!(packets[0][5] & 0x80, 0);
        let fu: Vec<(u8, u8, bool)> = packets[1..]
            .iter()
            .map(|p| (p[16], p[17], p[5] & 0x80 != 0))
            .collect();
        assert_eq!(
            fu,
            [(0x7c, 0x85, false), (0x7c, 0x05, false), (0x7c, 0x45, true)]
        );
        // Sequence numbers wrap; the payload comes back whole.
        assert_eq!(u16::from_be_bytes([packets[1][6], packets[1][7]]), 0);
        let body: Vec<u8> = packets[1..].iter().flat_map(|p| p[18..].to_vec()).collect();
        assert_eq!(body, nal[1..]);

        // Timestamps rise with the frames' times, and keep rising when the camera's clock
        // starts again.
        let ts = |p: &Vec<u8>| u32::from_be_bytes([p[8], p[9], p[10], p[11]]);
        let first = ts(&packets[0]);
        let at = |pts_90k| VideoFrame {
            pts_90k,
            is_key: false,
            ..f.clone()
        };
        assert_eq!(
            ts(&split(&rtp.packetize(&at(12_000), &[], 0))[0]),
            first.wrapping_add(3000)
        );
        assert_eq!(
            ts(&split(&rtp.packetize(&at(0), &[], 0))[0]),
            first.wrapping_add(6000)
        );
        assert_eq!(
            ts(&split(&rtp.packetize(&at(6000), &[], 0))[0]),
            first.wrapping_add(12_000)
        );
    }

    #[tokio::test]
    async fn requests_are_read_past_binary_frames_and_cut_at_the_limit() {
        let (mut a, b) = tokio::io::duplex(64 * 1024);
        a.write_all(b"$\x01\x00\x03abcOPTIONS rtsp://h/front RTSP/1.0\r\nCSeq: 7\r\n\r\n")
            .await
            .unwrap();
        let mut r = BufReader::new(b);
        let Incoming::Request(req) = read_request(&mut r).await.unwrap() else {
            panic!("no request");
        };
        assert_eq!((req.method.as_str(), req.cseq.as_str()), ("OPTIONS", "7"));
        // A line that never ends is refused once it passes the limit, not read on.
        a.write_all(&vec![b'A'; 40_000]).await.unwrap();
        assert!(read_request(&mut r).await.is_err());
    }

    #[test]
    fn parameter_sets_follow_a_delimiter_and_are_not_repeated() {
        let au = |nals: &[&[u8]]| {
            let mut d = Vec::new();
            for n in nals {
                d.extend_from_slice(&(n.len() as u32).to_be_bytes());
                d.extend_from_slice(n);
            }
            VideoFrame {
                pts_90k: 0,
                time: vigil_core::Timestamp(0),
                is_key: true,
                data: d.into(),
                new_params: None,
            }
        };
        let mut rtp = Rtp {
            seq: 0,
            ssrc: 1,
            offset: 0,
            last: None,
        };
        let sets = [vec![0x67, 1], vec![0x68, 2]];
        let kinds = |ps: Vec<Vec<u8>>| ps.iter().map(|p| p[16] & 0x1f).collect::<Vec<_>>();
        let f = au(&[&[0x09, 0x10], &[0x65, 1, 2]]);
        assert_eq!(kinds(split(&rtp.packetize(&f, &sets, 0))), [9, 7, 8, 5]);
        let f = au(&[&[0x67, 3], &[0x68, 4], &[0x65, 1, 2]]);
        assert_eq!(kinds(split(&rtp.packetize(&f, &sets, 0))), [7, 8, 5]);
    }
}
