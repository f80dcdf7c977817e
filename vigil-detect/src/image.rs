//! Pixel conversions between the layouts of [`vigil_core::Image`].

use vigil_core::{Error, Image, PixelFormat, Result};

/// Packed RGB bytes of `image`, converting from I420 (BT.601, limited range: what H.264
/// cameras send) or grey.
pub fn to_rgb(image: &Image) -> Result<Vec<u8>> {
    let (w, h) = (image.width as usize, image.height as usize);
    let need = match image.format {
        PixelFormat::Rgb8 => w * h * 3,
        PixelFormat::Gray8 => w * h,
        PixelFormat::I420 => w * h + 2 * (w.div_ceil(2) * h.div_ceil(2)),
    };
    if image.data.len() < need {
        return Err(Error::invalid(format!(
            "a {w}x{h} {:?} image needs {need} bytes, got {}",
            image.format,
            image.data.len()
        )));
    }
    Ok(match image.format {
        PixelFormat::Rgb8 => image.data[..need].to_vec(),
        PixelFormat::Gray8 => image.data[..need].iter().flat_map(|&v| [v, v, v]).collect(),
        PixelFormat::I420 => {
            let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
            let (y_plane, rest) = image.data.split_at(w * h);
            let (u_plane, v_plane) = rest.split_at(cw * ch);
            let mut out = vec![0u8; w * h * 3];
            for y in 0..h {
                for x in 0..w {
                    let c = (y / 2) * cw + x / 2;
                    let rgb = yuv_to_rgb(y_plane[y * w + x], u_plane[c], v_plane[c]);
                    out[(y * w + x) * 3..][..3].copy_from_slice(&rgb);
                }
            }
            out
        }
    })
}

/// The square `side × side` at (`x0`, `y0`) of `image`, as packed RGB (I420, grey or RGB in).
/// The square must lie inside the picture.
pub fn crop_rgb(image: &Image, x0: u32, y0: u32, side: u32) -> Result<Image> {
    if side == 0 || x0 + side > image.width || y0 + side > image.height {
        return Err(Error::invalid(format!(
            "crop {side}x{side} at ({x0}, {y0}) is outside the {}x{} picture",
            image.width, image.height
        )));
    }
    let full = match image.format {
        PixelFormat::Rgb8 => None,
        _ => Some(to_rgb(image)?),
    };
    let rgb: &[u8] = full.as_deref().unwrap_or(&image.data);
    let (w, s) = (image.width as usize, side as usize);
    let mut out = Vec::with_capacity(s * s * 3);
    for y in y0 as usize..y0 as usize + s {
        let row = (y * w + x0 as usize) * 3;
        out.extend_from_slice(&rgb[row..row + s * 3]);
    }
    Ok(Image {
        width: side,
        height: side,
        format: PixelFormat::Rgb8,
        data: out.into(),
        time: image.time,
    })
}

/// BT.601 limited-range YUV to RGB, in 16.16 fixed point.
#[inline]
pub fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    let c = (i32::from(y) - 16).max(0) * 76_309; // 1.164
    let d = i32::from(u) - 128;
    let e = i32::from(v) - 128;
    let clamp = |x: i32| ((x + 32_768) >> 16).clamp(0, 255) as u8;
    [
        clamp(c + 104_597 * e),             // 1.596
        clamp(c - 25_675 * d - 53_279 * e), // 0.392, 0.813
        clamp(c + 132_201 * d),             // 2.017
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grey_and_colours_convert() {
        assert_eq!(yuv_to_rgb(16, 128, 128), [0, 0, 0]);
        assert_eq!(yuv_to_rgb(235, 128, 128), [255, 255, 255]);
        let red = yuv_to_rgb(81, 90, 240);
        assert!(red[0] > 250 && red[1] < 5 && red[2] < 5, "{red:?}");
    }
}
