//! Decoding the detect stream: bit-exact against ffmpeg's decoder, the detect rate honoured,
//! scaling to the detect size, and corrupt input an error rather than a crash.

use std::process::Command;
use std::sync::Arc;

use vigil_core::h264::AccessUnits;
use vigil_core::testing::make_h264;
use vigil_core::{PixelFormat, Timestamp, VideoFrame};
use vigil_detect::{DecodeOptions, FrameDecoder};

fn frames(path: &std::path::Path, fps: i64) -> Vec<VideoFrame> {
    let aus = AccessUnits::default()
        .split(&std::fs::read(path).unwrap())
        .unwrap();
    aus.into_iter()
        .enumerate()
        .map(|(i, au)| VideoFrame {
            pts_90k: i as i64 * 90_000 / fps,
            time: Timestamp(i as i64 * 1_000_000 / fps),
            is_key: au.is_key,
            data: Arc::from(au.data),
            new_params: (i == 0).then(|| Arc::new(au.params)),
        })
        .collect()
}

#[test]
fn decodes_exactly_what_ffmpeg_decodes() {
    let dir = tempfile::tempdir().unwrap();
    let h264 = make_h264(dir.path(), 320, 240, 10, 2, 10);
    let raw = dir.path().join("ffmpeg.yuv");
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(&h264)
        .args(["-f", "rawvideo", "-pix_fmt", "yuv420p"])
        .arg(&raw)
        .status()
        .unwrap();
    assert!(st.success());
    let want = std::fs::read(&raw).unwrap();
    let size = 320 * 240 * 3 / 2;
    assert_eq!(want.len(), 20 * size);
    let mut dec = FrameDecoder::new(DecodeOptions {
        fps: None,
        ..Default::default()
    })
    .unwrap();
    let mut got = Vec::new();
    for f in frames(&h264, 10) {
        if let Some(img) = dec.push(&f).unwrap() {
            assert_eq!(
                (img.width, img.height, img.format),
                (320, 240, PixelFormat::I420)
            );
            got.push(img);
        }
    }
    assert_eq!(
        got.len(),
        20,
        "one picture per frame (no B-frames, no delay)"
    );
    for (i, img) in got.iter().enumerate() {
        assert!(
            img.data[..] == want[i * size..(i + 1) * size],
            "picture {i} differs from ffmpeg's"
        );
    }
}

#[test]
fn only_pictures_due_at_the_detect_rate_come_out_scaled() {
    let dir = tempfile::tempdir().unwrap();
    let h264 = make_h264(dir.path(), 640, 480, 15, 4, 30);
    let options = DecodeOptions {
        width: Some(320),
        height: Some(240),
        fps: Some(5.0),
    };
    let mut dec = FrameDecoder::new(options).unwrap();
    let mut times = Vec::new();
    for f in frames(&h264, 15) {
        if let Some(img) = dec.push(&f).unwrap() {
            assert_eq!((img.width, img.height), (320, 240));
            assert_eq!(img.data.len(), 320 * 240 * 3 / 2);
            times.push(img.time.0);
        }
    }
    assert_eq!(dec.decoded(), 60);
    assert_eq!(times.len(), 20, "{times:?}");
    for w in times.windows(2) {
        assert_eq!(w[1] - w[0], 200_000, "{times:?}");
    }
    // The scaled picture is the average of the full one: compare against a full decode.
    let mut full = FrameDecoder::new(DecodeOptions {
        fps: None,
        ..Default::default()
    })
    .unwrap();
    let first = full.push(&frames(&h264, 15)[0]).unwrap().unwrap();
    let mut small = FrameDecoder::new(options).unwrap();
    let scaled = small.push(&frames(&h264, 15)[0]).unwrap().unwrap();
    let mut worst = 0i32;
    for y in 0..240 {
        for x in 0..320 {
            let avg: i32 = [(0, 0), (0, 1), (1, 0), (1, 1)]
                .iter()
                .map(|(dy, dx)| i32::from(first.data[(2 * y + dy) * 640 + 2 * x + dx]))
                .sum::<i32>();
            worst = worst.max(((avg + 2) / 4 - i32::from(scaled.data[y * 320 + x])).abs());
        }
    }
    assert!(worst <= 1, "scaled luma differs by {worst}");
}

#[test]
fn garbage_is_an_error_and_decoding_resumes_at_the_next_key_frame() {
    let dir = tempfile::tempdir().unwrap();
    let h264 = make_h264(dir.path(), 320, 240, 10, 3, 10);
    let mut frames = frames(&h264, 10);
    // Damage a P frame's slice data (keep its length prefix and NAL header).
    let mut bad = frames[3].data.to_vec();
    for b in &mut bad[6..] {
        *b = 0xff;
    }
    frames[3].data = Arc::from(bad);
    let mut dec = FrameDecoder::new(DecodeOptions {
        fps: None,
        ..Default::default()
    })
    .unwrap();
    let mut out = 0;
    let mut errors = 0;
    for f in &frames {
        match dec.push(f) {
            Ok(Some(_)) => out += 1,
            Ok(None) => {}
            Err(_) => errors += 1,
        }
    }
    assert!(
        out >= 20,
        "decoded {out} pictures; the ones from the next key frame on must come out"
    );
    assert!(errors <= 1);
    assert!(FrameDecoder::new(DecodeOptions {
        width: Some(31),
        ..Default::default()
    })
    .is_err());
    assert!(FrameDecoder::new(DecodeOptions {
        fps: Some(0.0),
        ..Default::default()
    })
    .is_err());
}
