//! H.264 encoding of I420 pictures (OpenH264), for the synthetic camera and timelapse videos.

use std::sync::Arc;

use openh264::encoder::{
    BitRate, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, RateControlMode,
    UsageType,
};
use openh264::formats::YUVSlices;
use openh264::OpenH264API;
use vigil_core::h264::{self, NAL_PPS, NAL_SPS};
use vigil_core::{Error, Result, VideoParams};

/// One encoded picture.
#[derive(Clone, Debug)]
pub struct Encoded {
    /// The access unit in AVC form (length-prefixed NAL units, parameter sets left out).
    pub data: Vec<u8>,
    /// Whether it is a key frame (IDR).
    pub is_key: bool,
    /// The stream's parameters.
    pub params: Arc<VideoParams>,
    /// Whether the parameters are new with this picture (the first, or changed).
    pub new_params: bool,
}

/// An H.264 encoder for pictures of one size.
pub struct H264Encoder {
    enc: Encoder,
    width: usize,
    height: usize,
    params: Option<Arc<VideoParams>>,
}

impl std::fmt::Debug for H264Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H264Encoder")
            .field("width", &self.width)
            .field("height", &self.height)
            .finish()
    }
}

fn encoder_error(e: openh264::Error) -> Error {
    Error::internal(format!("H.264 encoder: {e}"))
}

impl H264Encoder {
    /// An encoder of `width × height` pictures (even) at `fps`, `bitrate` bits per second, a
    /// key frame every `key_every` pictures.
    pub fn new(width: u32, height: u32, fps: u32, bitrate: u32, key_every: u32) -> Result<Self> {
        if width < 16 || height < 16 || !width.is_multiple_of(2) || !height.is_multiple_of(2) {
            return Err(Error::invalid(format!(
                "cannot encode {width}x{height}: sizes must be even, 16 or more"
            )));
        }
        let cfg = EncoderConfig::new()
            .usage_type(UsageType::CameraVideoRealTime)
            .rate_control_mode(RateControlMode::Bitrate)
            .bitrate(BitRate::from_bps(bitrate))
            .max_frame_rate(FrameRate::from_hz(fps.max(1) as f32))
            .skip_frames(false)
            .intra_frame_period(IntraFramePeriod::from_num_frames(key_every.max(1)))
            .num_threads(1);
        let enc =
            Encoder::with_api_config(OpenH264API::from_source(), cfg).map_err(encoder_error)?;
        Ok(H264Encoder {
            enc,
            width: width as usize,
            height: height as usize,
            params: None,
        })
    }

    /// Encodes one picture (I420 planes, packed); `None` when the encoder skipped it or has
    /// not produced its parameter sets yet.
    pub fn encode(&mut self, y: &[u8], u: &[u8], v: &[u8]) -> Result<Option<Encoded>> {
        let (w, h) = (self.width, self.height);
        if y.len() < w * h || u.len() < w * h / 4 || v.len() < w * h / 4 {
            return Err(Error::invalid(format!(
                "a {w}x{h} picture needs whole I420 planes"
            )));
        }
        let yuv = YUVSlices::new((y, u, v), (w, h), (w, w / 2, w / 2));
        let bs = self.enc.encode(&yuv).map_err(encoder_error)?;
        if bs.frame_type() == FrameType::Skip {
            return Ok(None);
        }
        let annexb = bs.to_vec();
        let is_key = bs.frame_type() == FrameType::IDR;
        let nals = h264::split_annexb(&annexb);
        let mut new_params = false;
        let sps = nals.iter().find(|n| h264::nal_type(n) == NAL_SPS);
        let pps = nals.iter().find(|n| h264::nal_type(n) == NAL_PPS);
        if let (Some(s), Some(p)) = (sps, pps) {
            let vp = h264::video_params(s, p)?;
            if self.params.as_deref() != Some(&vp) {
                self.params = Some(Arc::new(vp));
                new_params = true;
            }
        }
        let Some(params) = self.params.clone() else {
            return Ok(None);
        };
        let data = h264::to_avc(
            nals.iter()
                .copied()
                .filter(|n| !matches!(h264::nal_type(n), NAL_SPS | NAL_PPS)),
        );
        Ok(Some(Encoded {
            data,
            is_key,
            params,
            new_params,
        }))
    }
}
