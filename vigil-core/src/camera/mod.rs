//! Built-in [`Camera`](crate::Camera) implementations: RTSP through retina (feature `rtsp`) and
//! a file looped at real-time pace. The synthetic demo camera, which needs an H.264 encoder,
//! lives in `vigil-detect`.

mod file;
#[cfg(feature = "rtsp")]
mod rtsp;

pub use file::FileCamera;
#[cfg(feature = "rtsp")]
pub use rtsp::RtspCamera;
