//! RTSP cameras through retina: TCP-interleaved by default, UDP as an option, credentials in
//! the URL or given apart, H.264 and H.265, a record stream and an optional detect stream.

use std::sync::Arc;

use async_trait::async_trait;
use futures_util::StreamExt;
use retina::client::{
    Credentials, Demuxed, PlayOptions, Session, SessionOptions, SetupOptions, TcpTransportOptions,
    Transport, UdpTransportOptions,
};
use retina::codec::{CodecItem, FrameFormat, ParametersRef};

use crate::error::{Error, ErrorKind, Result};
use crate::id::CameraId;
use crate::media::{Camera, StreamRole, VideoCodec, VideoFrame, VideoParams, VideoStream};
use crate::model::{RtspTransport, Source};
use crate::time::{Clocks, Timestamp};

/// One RTSP stream: its URL without credentials, the credentials, the transport.
#[derive(Clone)]
struct Endpoint {
    url: url::Url,
    creds: Option<Credentials>,
    transport: RtspTransport,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print credentials.
        f.debug_struct("Endpoint")
            .field("url", &self.url.as_str())
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

impl Endpoint {
    fn of(source: &Source) -> Result<Endpoint> {
        let Source::Rtsp {
            url,
            transport,
            username,
            password,
        } = source
        else {
            return Err(Error::invalid("not an RTSP source"));
        };
        let mut u =
            url::Url::parse(url).map_err(|e| Error::invalid(format!("bad RTSP URL: {e}")))?;
        if u.scheme() != "rtsp" {
            return Err(Error::invalid(format!(
                "unsupported URL scheme {:?}: only rtsp:// is supported",
                u.scheme()
            )));
        }
        if u.host_str().is_none_or(str::is_empty) {
            return Err(Error::invalid("RTSP URL without a host"));
        }
        let mut creds = None;
        if !u.username().is_empty() {
            creds = Some(Credentials {
                username: decode(u.username()),
                password: decode(u.password().unwrap_or("")),
            });
            // retina refuses URLs with credentials; they travel apart.
            let _ = u.set_username("");
            let _ = u.set_password(None);
        }
        if let Some(user) = username {
            creds = Some(Credentials {
                username: user.clone(),
                password: password.clone().unwrap_or_default(),
            });
        }
        Ok(Endpoint {
            url: u,
            creds,
            transport: *transport,
        })
    }
}

/// An IP camera over RTSP.
pub struct RtspCamera {
    id: CameraId,
    record: Endpoint,
    detect: Option<Endpoint>,
    clocks: Arc<dyn Clocks>,
}

impl RtspCamera {
    /// A camera whose record stream is `record` and detect stream `detect` (the record stream
    /// when `None`). Both must be [`Source::Rtsp`] with a valid `rtsp://` URL.
    pub fn new(
        id: CameraId,
        record: &Source,
        detect: Option<&Source>,
        clocks: Arc<dyn Clocks>,
    ) -> Result<Self> {
        Ok(RtspCamera {
            id,
            record: Endpoint::of(record)?,
            detect: detect.map(Endpoint::of).transpose()?,
            clocks,
        })
    }
}

/// Turns a retina error into a camera error a user can act on.
fn classify(url: &url::Url, e: retina::Error) -> Error {
    let kind = match e.status_code() {
        Some(401) => ErrorKind::Unauthenticated,
        Some(403) => ErrorKind::PermissionDenied,
        Some(404) => ErrorKind::NotFound,
        _ => ErrorKind::Unavailable,
    };
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("").trim();
    let msg = match kind {
        ErrorKind::Unauthenticated => format!("{url}: wrong or missing credentials ({first})"),
        ErrorKind::NotFound => format!("{url}: no such stream on the camera ({first})"),
        _ => format!("{url}: {first}"),
    };
    Error::new(kind, msg).with_source(e)
}

#[async_trait]
impl Camera for RtspCamera {
    fn id(&self) -> &CameraId {
        &self.id
    }

    async fn connect(&self, role: StreamRole) -> Result<Box<dyn VideoStream>> {
        let ep = match role {
            StreamRole::Record => &self.record,
            StreamRole::Detect => self.detect.as_ref().unwrap_or(&self.record),
        };
        let url = ep.url.clone();
        let opts = SessionOptions::default()
            .creds(ep.creds.clone())
            .user_agent(format!("Vigil/{}", env!("CARGO_PKG_VERSION")));
        let mut session = Session::describe(url.clone(), opts)
            .await
            .map_err(|e| classify(&url, e))?;
        let (i, codec) = session
            .streams()
            .iter()
            .enumerate()
            .find_map(|(i, s)| {
                let codec = match (s.media(), s.encoding_name()) {
                    ("video", "h264") => VideoCodec::H264,
                    ("video", "h265") => VideoCodec::H265,
                    _ => return None,
                };
                Some((i, codec))
            })
            .ok_or_else(|| {
                Error::invalid(format!(
                    "{url}: the camera offers no H.264 or H.265 video stream"
                ))
            })?;
        let transport = match ep.transport {
            RtspTransport::Tcp => Transport::Tcp(TcpTransportOptions::default()),
            RtspTransport::Udp => Transport::Udp(UdpTransportOptions::default()),
        };
        session
            .setup(
                i,
                SetupOptions::default()
                    .transport(transport)
                    .frame_format(FrameFormat::MP4),
            )
            .await
            .map_err(|e| classify(&url, e))?;
        let params = session.streams()[i]
            .parameters()
            .and_then(|p| params_of(codec, p));
        let demuxed = session
            .play(PlayOptions::default())
            .await
            .map_err(|e| classify(&url, e))?
            .demuxed()
            .map_err(|e| classify(&url, e))?;
        Ok(Box::new(RtspStream {
            url,
            demuxed,
            codec,
            params,
            sent_params: false,
            wall_origin: None,
            clocks: self.clocks.clone(),
        }))
    }
}

fn params_of(codec: VideoCodec, p: ParametersRef<'_>) -> Option<Arc<VideoParams>> {
    let ParametersRef::Video(v) = p else {
        return None;
    };
    let (width, height) = v.pixel_dimensions();
    Some(Arc::new(VideoParams {
        codec,
        rfc6381_codec: v.rfc6381_codec().to_owned(),
        width,
        height,
        extra_data: v.extra_data().to_vec(),
    }))
}

struct RtspStream {
    url: url::Url,
    demuxed: Demuxed,
    codec: VideoCodec,
    params: Option<Arc<VideoParams>>,
    sent_params: bool,
    /// Wall-clock time of RTP time zero of this session, fixed at the first frame.
    wall_origin: Option<i64>,
    clocks: Arc<dyn Clocks>,
}

#[async_trait]
impl VideoStream for RtspStream {
    fn params(&self) -> Option<Arc<VideoParams>> {
        self.params.clone()
    }

    async fn next(&mut self) -> Result<Option<VideoFrame>> {
        loop {
            let item = match self.demuxed.next().await {
                None => return Ok(None),
                Some(Err(e)) => return Err(classify(&self.url, e)),
                Some(Ok(i)) => i,
            };
            let CodecItem::VideoFrame(f) = item else {
                continue;
            };
            let mut new_params = None;
            if f.has_new_parameters() || self.params.is_none() {
                let p = self.demuxed.streams()[f.stream_id()]
                    .parameters()
                    .and_then(|p| params_of(self.codec, p));
                if p.is_some() && p != self.params {
                    self.params = p;
                    new_params = self.params.clone();
                }
            }
            let Some(params) = &self.params else {
                // Nothing can be done with frames before the parameter sets.
                continue;
            };
            if !self.sent_params {
                new_params = Some(params.clone());
                self.sent_params = true;
            }
            let ts = f.timestamp();
            let rate = i64::from(ts.clock_rate().get());
            let pts = ts.elapsed().saturating_mul(90_000) / rate.max(1);
            let pts_us = pts.saturating_mul(100) / 9;
            let origin = *self
                .wall_origin
                .get_or_insert_with(|| self.clocks.realtime().0 - pts_us);
            let is_key = f.is_random_access_point();
            return Ok(Some(VideoFrame {
                pts_90k: pts,
                time: Timestamp(origin + pts_us),
                is_key,
                data: Arc::from(f.into_data()),
                new_params,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(url: &str) -> Source {
        Source::Rtsp {
            url: url.into(),
            transport: RtspTransport::Tcp,
            username: None,
            password: None,
        }
    }

    #[test]
    fn credentials_come_out_of_the_url() {
        let e = Endpoint::of(&src("rtsp://ad%40min:p%3Ass@cam.local:8554/live")).unwrap();
        assert_eq!(e.url.as_str(), "rtsp://cam.local:8554/live");
        let c = e.creds.unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("ad@min", "p:ss")
        );
        assert!(
            !format!("{:?}", Endpoint::of(&src("rtsp://u:secret@h/x")).unwrap()).contains("secret")
        );
    }

    #[test]
    fn bad_urls_are_invalid_arguments() {
        for u in ["", "http://cam/live", "rtsp://", "not a url"] {
            let e = Endpoint::of(&src(u)).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{u}");
        }
    }
}
