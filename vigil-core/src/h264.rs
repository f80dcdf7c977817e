//! Just enough H.264 bitstream handling for recording without re-encoding: splitting Annex B
//! streams into NAL units, converting to the length-prefixed (AVC) form MP4 stores, reading the
//! picture size and profile from a sequence parameter set, and building the `avcC` decoder
//! configuration record.
//!
//! Everything here takes bytes from cameras and files, so every function returns an error (or
//! skips) on malformed input rather than panicking.

use crate::error::{Error, Result};
use crate::media::{VideoCodec, VideoParams};

/// NAL unit type: coded slice of a non-IDR picture.
pub const NAL_SLICE: u8 = 1;
/// NAL unit type: coded slice of an IDR picture (a key frame).
pub const NAL_IDR: u8 = 5;
/// NAL unit type: supplemental enhancement information.
pub const NAL_SEI: u8 = 6;
/// NAL unit type: sequence parameter set.
pub const NAL_SPS: u8 = 7;
/// NAL unit type: picture parameter set.
pub const NAL_PPS: u8 = 8;
/// NAL unit type: access unit delimiter.
pub const NAL_AUD: u8 = 9;

/// The type of a NAL unit (the low five bits of its first byte); 0 for an empty unit.
pub fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| b & 0x1f)
}

/// Splits an Annex B byte stream (NAL units after `00 00 01` or `00 00 00 01` start codes) into
/// its NAL units, without the start codes. Bytes before the first start code are ignored.
pub fn split_annexb(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            if let Some(s) = start {
                out.push(trim_trailing_zeros(&data[s..i]));
            }
            i += 3;
            start = Some(i);
        } else {
            i += 1;
        }
    }
    if let Some(s) = start {
        if s < data.len() {
            out.push(&data[s..]);
        }
    }
    out.retain(|n| !n.is_empty());
    out
}

/// A four-byte start code leaves a zero at the end of the previous unit; trailing zeros are
/// never part of a NAL unit (its last byte holds the stop bit).
fn trim_trailing_zeros(mut n: &[u8]) -> &[u8] {
    while let [rest @ .., 0] = n {
        n = rest;
    }
    n
}

/// NAL units to AVC form: each prefixed with its length as a 4-byte big-endian number.
pub fn to_avc<'a>(nals: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for n in nals {
        // NAL units are far below 4 GiB; a longer one cannot come from a real stream.
        out.extend_from_slice(&(n.len() as u32).to_be_bytes());
        out.extend_from_slice(n);
    }
    out
}

/// The NAL units of an AVC-form access unit (4-byte lengths).
pub fn avc_nals(data: &[u8]) -> Result<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let Some((len, tail)) = rest.split_first_chunk::<4>() else {
            return Err(Error::invalid("truncated NAL unit length"));
        };
        let len = u32::from_be_bytes(*len) as usize;
        if len > tail.len() {
            return Err(Error::invalid(format!(
                "NAL unit of {len} bytes overruns its access unit ({} left)",
                tail.len()
            )));
        }
        out.push(&tail[..len]);
        rest = &tail[len..];
    }
    Ok(out)
}

/// An AVC-form access unit to Annex B (4-byte start codes), as decoders take it.
pub fn avc_to_annexb(data: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len() + 16);
    for n in avc_nals(data)? {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(n);
    }
    Ok(out)
}

/// What Vigil reads from a sequence parameter set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sps {
    /// `profile_idc` (66 baseline, 77 main, 100 high...).
    pub profile_idc: u8,
    /// The constraint flags byte.
    pub constraints: u8,
    /// `level_idc` (31 = level 3.1).
    pub level_idc: u8,
    /// `chroma_format_idc` (1 = 4:2:0).
    pub chroma_format_idc: u32,
    /// Luma bit depth minus 8.
    pub bit_depth_luma_minus8: u32,
    /// Chroma bit depth minus 8.
    pub bit_depth_chroma_minus8: u32,
    /// Displayed width in pixels (after cropping).
    pub width: u32,
    /// Displayed height in pixels (after cropping).
    pub height: u32,
}

/// The profiles whose SPS carries chroma format and bit depth fields.
fn is_high_profile(p: u8) -> bool {
    matches!(
        p,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    )
}

impl Sps {
    /// Parses a sequence parameter set NAL unit (with its header byte).
    pub fn parse(nal: &[u8]) -> Result<Sps> {
        if nal_type(nal) != NAL_SPS {
            return Err(Error::invalid("not a sequence parameter set"));
        }
        let rbsp = unescape(&nal[1..]);
        let mut r = BitReader::new(&rbsp);
        let profile_idc = r.bits(8)? as u8;
        let constraints = r.bits(8)? as u8;
        let level_idc = r.bits(8)? as u8;
        r.ue()?; // seq_parameter_set_id
        let (mut chroma_format_idc, mut depth_l, mut depth_c) = (1, 0, 0);
        let mut separate_colour_plane = false;
        if is_high_profile(profile_idc) {
            chroma_format_idc = r.ue()?;
            if chroma_format_idc == 3 {
                separate_colour_plane = r.bit()?;
            }
            depth_l = r.ue()?;
            depth_c = r.ue()?;
            r.bit()?; // qpprime_y_zero_transform_bypass_flag
            if r.bit()? {
                let lists = if chroma_format_idc == 3 { 12 } else { 8 };
                for i in 0..lists {
                    if r.bit()? {
                        skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                    }
                }
            }
        }
        r.ue()?; // log2_max_frame_num_minus4
        match r.ue()? {
            0 => {
                r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
            }
            1 => {
                r.bit()?;
                r.se()?;
                r.se()?;
                let n = r.ue()?;
                if n > 255 {
                    return Err(Error::invalid(
                        "SPS: too many reference frames in POC cycle",
                    ));
                }
                for _ in 0..n {
                    r.se()?;
                }
            }
            _ => {}
        }
        r.ue()?; // max_num_ref_frames
        r.bit()?; // gaps_in_frame_num_value_allowed_flag
        let width_mbs = u64::from(r.ue()?) + 1;
        let height_map_units = u64::from(r.ue()?) + 1;
        let frame_mbs_only = r.bit()?;
        if !frame_mbs_only {
            r.bit()?; // mb_adaptive_frame_field_flag
        }
        r.bit()?; // direct_8x8_inference_flag
        let (mut cl, mut cr, mut ct, mut cb) = (0u64, 0u64, 0u64, 0u64);
        if r.bit()? {
            cl = r.ue()?.into();
            cr = r.ue()?.into();
            ct = r.ue()?.into();
            cb = r.ue()?.into();
        }
        let field_factor = if frame_mbs_only { 1 } else { 2 };
        let chroma_array_type = if separate_colour_plane {
            0
        } else {
            chroma_format_idc
        };
        let (crop_x, crop_y) = match chroma_array_type {
            0 => (1, field_factor),
            1 => (2, 2 * field_factor),
            2 => (2, field_factor),
            _ => (1, field_factor),
        };
        let w = width_mbs * 16;
        let h = height_map_units * 16 * field_factor;
        let w = w.checked_sub(crop_x * (cl + cr));
        let h = h.checked_sub(crop_y * (ct + cb));
        let (Some(w), Some(h)) = (w, h) else {
            return Err(Error::invalid("SPS: cropping larger than the picture"));
        };
        let (Ok(width), Ok(height)) = (u32::try_from(w), u32::try_from(h)) else {
            return Err(Error::invalid("SPS: picture size out of range"));
        };
        if width == 0 || height == 0 || width > 16_384 || height > 16_384 {
            return Err(Error::invalid(format!(
                "SPS: picture size {width}x{height}"
            )));
        }
        Ok(Sps {
            profile_idc,
            constraints,
            level_idc,
            chroma_format_idc,
            bit_depth_luma_minus8: depth_l,
            bit_depth_chroma_minus8: depth_c,
            width,
            height,
        })
    }

    /// The RFC 6381 codec string (`avc1.64001f`), as browsers and MSE want it.
    pub fn rfc6381_codec(&self) -> String {
        format!(
            "avc1.{:02x}{:02x}{:02x}",
            self.profile_idc, self.constraints, self.level_idc
        )
    }
}

fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<()> {
    let (mut last, mut next) = (8i64, 8i64);
    for _ in 0..size {
        if next != 0 {
            next = (last + i64::from(r.se()?) + 256) % 256;
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

/// Removes emulation prevention bytes (`00 00 03` → `00 00`).
fn unescape(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut zeros = 0;
    for &b in data {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// Reads bits most significant first, with Exp-Golomb codes.
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    fn bit(&mut self) -> Result<bool> {
        let byte = self
            .data
            .get(self.pos / 8)
            .ok_or_else(|| Error::invalid("SPS ends early"))?;
        let b = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Ok(b == 1)
    }

    fn bits(&mut self, n: u32) -> Result<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            v = (v << 1) | u32::from(self.bit()?);
        }
        Ok(v)
    }

    fn ue(&mut self) -> Result<u32> {
        let mut zeros = 0;
        while !self.bit()? {
            zeros += 1;
            if zeros > 31 {
                return Err(Error::invalid("SPS: Exp-Golomb code too long"));
            }
        }
        let rest = self.bits(zeros)?;
        Ok(((1u64 << zeros) - 1 + u64::from(rest)) as u32)
    }

    fn se(&mut self) -> Result<i32> {
        let k = i64::from(self.ue()?);
        Ok(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) } as i32)
    }
}

/// Builds the `avcC` decoder configuration record (the body of MP4's `avcC` box) from one SPS
/// and one PPS, for 4-byte NAL lengths.
pub fn avc_decoder_config(sps_nal: &[u8], pps_nal: &[u8]) -> Result<Vec<u8>> {
    let sps = Sps::parse(sps_nal)?;
    let (Ok(sps_len), Ok(pps_len)) = (u16::try_from(sps_nal.len()), u16::try_from(pps_nal.len()))
    else {
        return Err(Error::invalid("parameter set longer than 64 KiB"));
    };
    let mut v = vec![
        1,
        sps.profile_idc,
        sps.constraints,
        sps.level_idc,
        0xfc | 3, // lengthSizeMinusOne = 3
        0xe0 | 1, // one SPS
    ];
    v.extend_from_slice(&sps_len.to_be_bytes());
    v.extend_from_slice(sps_nal);
    v.push(1); // one PPS
    v.extend_from_slice(&pps_len.to_be_bytes());
    v.extend_from_slice(pps_nal);
    if is_high_profile(sps.profile_idc) {
        v.push(0xfc | (sps.chroma_format_idc & 3) as u8);
        v.push(0xf8 | (sps.bit_depth_luma_minus8 & 7) as u8);
        v.push(0xf8 | (sps.bit_depth_chroma_minus8 & 7) as u8);
        v.push(0); // no SPS extensions
    }
    Ok(v)
}

/// The first SPS and PPS of an `avcC` record.
pub fn parse_avc_decoder_config(avcc: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    let bad = || Error::invalid("malformed avcC record");
    let n_sps = avcc.get(5).ok_or_else(bad)? & 0x1f;
    let mut p = &avcc[6..];
    let take = |p: &mut &[u8]| -> Result<Vec<u8>> {
        let (len, rest) = p.split_first_chunk::<2>().ok_or_else(bad)?;
        let len = usize::from(u16::from_be_bytes(*len));
        let nal = rest.get(..len).ok_or_else(bad)?.to_vec();
        *p = &rest[len..];
        Ok(nal)
    };
    let mut sps = None;
    for _ in 0..n_sps {
        let s = take(&mut p)?;
        sps.get_or_insert(s);
    }
    let (&n_pps, rest) = p.split_first().ok_or_else(bad)?;
    p = rest;
    let mut pps = None;
    for _ in 0..n_pps {
        let s = take(&mut p)?;
        pps.get_or_insert(s);
    }
    match (sps, pps) {
        (Some(s), Some(p)) => Ok((s, p)),
        _ => Err(Error::invalid("avcC record without SPS or PPS")),
    }
}

/// Stream parameters from an SPS and a PPS.
pub fn video_params(sps_nal: &[u8], pps_nal: &[u8]) -> Result<VideoParams> {
    let sps = Sps::parse(sps_nal)?;
    Ok(VideoParams {
        codec: VideoCodec::H264,
        rfc6381_codec: sps.rfc6381_codec(),
        width: sps.width,
        height: sps.height,
        extra_data: avc_decoder_config(sps_nal, pps_nal)?,
    })
}

/// Turns an Annex B byte stream into access units: one per coded picture, in AVC form without
/// the parameter sets, each with whether it is an IDR and the parameters in force. Used by the
/// file camera; a stream without SPS/PPS before its first picture is refused.
#[derive(Default)]
pub struct AccessUnits {
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
}

/// One coded picture from [`AccessUnits`].
#[derive(Clone, Debug)]
pub struct AccessUnit {
    /// Its NAL units in AVC form (parameter sets and delimiters left out).
    pub data: Vec<u8>,
    /// Whether it holds an IDR slice.
    pub is_key: bool,
    /// The parameters the picture uses.
    pub params: VideoParams,
}

impl AccessUnits {
    /// Splits a whole Annex B stream into its pictures. A new picture starts at an access unit
    /// delimiter, or at a slice whose `first_mb_in_slice` is 0.
    pub fn split(&mut self, stream: &[u8]) -> Result<Vec<AccessUnit>> {
        let mut out = Vec::new();
        // NAL units of the picture being gathered; SEI and other non-picture units before a
        // picture's first slice belong to it.
        let mut cur: Vec<&[u8]> = Vec::new();
        let mut has_slice = false;
        let mut key = false;
        let mut params: Option<VideoParams> = None;
        for nal in split_annexb(stream) {
            let t = nal_type(nal);
            // first_mb_in_slice is the first ue(v) after the header: a leading 1 bit means 0,
            // the first slice of a new picture.
            let new_picture = match t {
                NAL_SLICE..=NAL_IDR => nal.get(1).is_some_and(|b| b & 0x80 != 0),
                NAL_SPS | NAL_PPS | NAL_AUD | NAL_SEI => true,
                _ => false,
            };
            if new_picture && has_slice {
                let p = params
                    .clone()
                    .ok_or_else(|| Error::invalid("H.264 picture before any SPS/PPS"))?;
                out.push(AccessUnit {
                    data: to_avc(cur.drain(..)),
                    is_key: key,
                    params: p,
                });
                has_slice = false;
                key = false;
            }
            match t {
                NAL_SPS => {
                    self.sps = Some(nal.to_vec());
                    params = None;
                }
                NAL_PPS => {
                    self.pps = Some(nal.to_vec());
                    params = None;
                }
                NAL_AUD => {}
                NAL_SLICE..=NAL_IDR => {
                    if params.is_none() {
                        if let (Some(s), Some(p)) = (&self.sps, &self.pps) {
                            params = Some(video_params(s, p)?);
                        }
                    }
                    has_slice = true;
                    key |= t == NAL_IDR;
                    cur.push(nal);
                }
                _ => cur.push(nal),
            }
        }
        if has_slice {
            let p = params.ok_or_else(|| Error::invalid("H.264 picture before any SPS/PPS"))?;
            out.push(AccessUnit {
                data: to_avc(cur),
                is_key: key,
                params: p,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real SPS of a 1280x720 High-profile stream (x264), and its PPS.
    const SPS_720: [u8; 25] = [
        0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03,
        0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x83, 0x19,
    ];
    const PPS: [u8; 6] = [0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];

    #[test]
    fn parses_sps_size_and_codec() {
        let s = Sps::parse(&SPS_720).unwrap();
        assert_eq!((s.width, s.height), (1280, 720));
        assert_eq!(s.rfc6381_codec(), "avc1.64001f");
    }

    #[test]
    fn splits_annexb_with_both_start_codes() {
        let mut stream = vec![0, 0, 0, 1];
        stream.extend_from_slice(&SPS_720);
        stream.extend_from_slice(&[0, 0, 1]);
        stream.extend_from_slice(&PPS);
        stream.extend_from_slice(&[0, 0, 0, 1, 0x65, 0x88, 0x84, 0x00]);
        let nals = split_annexb(&stream);
        assert_eq!(nals.len(), 3);
        assert_eq!(nals[0], &SPS_720[..]);
        assert_eq!(nals[1], &PPS[..]);
        // A trailing zero at the very end belongs to the last unit's data as given.
        assert_eq!(nal_type(nals[2]), NAL_IDR);
    }

    #[test]
    fn avcc_round_trips() {
        let c = avc_decoder_config(&SPS_720, &PPS).unwrap();
        let (s, p) = parse_avc_decoder_config(&c).unwrap();
        assert_eq!((s.as_slice(), p.as_slice()), (&SPS_720[..], &PPS[..]));
    }

    #[test]
    fn avc_and_annexb_convert() {
        let avc = to_avc([&SPS_720[..], &PPS[..]]);
        assert_eq!(avc_nals(&avc).unwrap(), vec![&SPS_720[..], &PPS[..]]);
        assert!(avc_nals(&avc[..avc.len() - 1]).is_err());
        let b = avc_to_annexb(&avc).unwrap();
        assert_eq!(split_annexb(&b), vec![&SPS_720[..], &PPS[..]]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for n in 0..40u8 {
            let junk: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            let mut sps = vec![0x67];
            sps.extend_from_slice(&junk);
            let _ = Sps::parse(&sps);
            let _ = parse_avc_decoder_config(&junk);
            let _ = avc_nals(&junk);
            let _ = AccessUnits::default().split(&junk);
        }
    }
}
