//! Motion on generated frames with known moving boxes: the box is found where it is, masks are
//! respected, sensor noise is not motion, and lights switching on do not fire.

use std::sync::Arc;

use vigil_core::{BBox, Image, PixelFormat, Point, Polygon, Timestamp};
use vigil_detect::{MotionDetector, MotionOptions};

const W: usize = 640;
const H: usize = 360;

/// A textured background (fixed), a 60×60 bright square at `square` (top-left, pixels), luma
/// scaled by `gain` and offset, plus per-frame noise of ±`noise`.
fn frame(square: Option<(usize, usize)>, gain: f32, offset: f32, noise: u8, seed: u32) -> Image {
    let mut state = seed.wrapping_mul(747_796_405).wrapping_add(1);
    let mut rand = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    let mut data = vec![0u8; W * H];
    for y in 0..H {
        for x in 0..W {
            // Smooth texture: gradients and stripes.
            let mut v = 60.0
                + 40.0 * ((x as f32 / 37.0).sin() + (y as f32 / 23.0).cos())
                + (x + y) as f32 * 0.05;
            if let Some((sx, sy)) = square {
                if (sx..sx + 60).contains(&x) && (sy..sy + 60).contains(&y) {
                    v = 230.0;
                }
            }
            let n = if noise > 0 {
                (rand() % (2 * u32::from(noise) + 1)) as f32 - f32::from(noise)
            } else {
                0.0
            };
            data[y * W + x] = (v * gain + offset + n).clamp(0.0, 255.0) as u8;
        }
    }
    Image {
        width: W as u32,
        height: H as u32,
        format: PixelFormat::Gray8,
        data: Arc::from(data),
        time: Timestamp(0),
    }
}

fn iou(a: &BBox, b: &BBox) -> f32 {
    let iw = (a.x2.min(b.x2) - a.x1.max(b.x1)).max(0.0);
    let ih = (a.y2.min(b.y2) - a.y1.max(b.y1)).max(0.0);
    let i = iw * ih;
    i / (a.area() + b.area() - i)
}

fn square_box(x: usize, y: usize) -> BBox {
    BBox {
        x1: x as f32 / W as f32,
        y1: y as f32 / H as f32,
        x2: (x + 60) as f32 / W as f32,
        y2: (y + 60) as f32 / H as f32,
    }
}

#[test]
fn a_moving_square_is_found_where_it_is() {
    let mut m = MotionDetector::new(MotionOptions::default()).unwrap();
    for i in 0..5 {
        let r = m.detect(&frame(None, 1.0, 0.0, 3, i)).unwrap();
        assert!(r.boxes.is_empty(), "noise is not motion: {r:?}");
    }
    for step in 0..10 {
        let (x, y) = (100 + step * 30, 150);
        let r = m
            .detect(&frame(Some((x, y)), 1.0, 0.0, 3, 100 + step as u32))
            .unwrap();
        assert!(!r.boxes.is_empty(), "step {step}: no motion");
        let truth = square_box(x, y);
        let best = r.boxes.iter().map(|b| iou(b, &truth)).fold(0.0, f32::max);
        // The box also covers where the square was (the background still remembers it), so
        // it overlaps the square's current place well but not perfectly.
        assert!(
            best > 0.3,
            "step {step}: best IoU {best}, boxes {:?}",
            r.boxes
        );
        let b = &r.boxes[0];
        assert!(
            b.x1 <= truth.x1 + 0.02 && b.x2 >= truth.x2 - 0.02,
            "step {step}: {b:?} vs {truth:?}"
        );
    }
}

#[test]
fn masked_areas_report_nothing() {
    // Mask the band the square moves through.
    let band = Polygon {
        points: vec![
            Point { x: 0.0, y: 0.3 },
            Point { x: 1.0, y: 0.3 },
            Point { x: 1.0, y: 0.7 },
            Point { x: 0.0, y: 0.7 },
        ],
    };
    let mut m = MotionDetector::new(MotionOptions {
        masks: vec![band],
        ..Default::default()
    })
    .unwrap();
    m.detect(&frame(None, 1.0, 0.0, 3, 1)).unwrap();
    for step in 0..6 {
        let r = m
            .detect(&frame(
                Some((100 + step * 30, 150)),
                1.0,
                0.0,
                3,
                10 + step as u32,
            ))
            .unwrap();
        assert!(
            r.boxes.is_empty(),
            "step {step}: motion under the mask: {:?}",
            r.boxes
        );
    }
    // Outside the mask it still fires.
    let r = m.detect(&frame(Some((300, 10)), 1.0, 0.0, 3, 99)).unwrap();
    assert!(!r.boxes.is_empty());
}

#[test]
fn lights_switching_on_do_not_fire() {
    let mut m = MotionDetector::new(MotionOptions::default()).unwrap();
    for i in 0..5 {
        m.detect(&frame(None, 0.5, 0.0, 2, i)).unwrap();
    }
    // Lights on: everything twice as bright and brighter still; then IR-like flattening.
    for (i, (gain, offset)) in [
        (1.0, 0.0),
        (1.3, 30.0),
        (1.3, 30.0),
        (0.7, 60.0),
        (0.7, 60.0),
    ]
    .into_iter()
    .enumerate()
    {
        let r = m
            .detect(&frame(None, gain, offset, 2, 50 + i as u32))
            .unwrap();
        assert!(
            r.boxes.is_empty(),
            "change {i} ({gain}, {offset}) fired: {r:?}"
        );
    }
    // And motion after the change is still seen.
    let r = m
        .detect(&frame(Some((200, 100)), 0.7, 60.0, 2, 77))
        .unwrap();
    assert!(!r.boxes.is_empty());
}

#[test]
fn bad_settings_and_pictures_are_errors() {
    let bad_mask = Polygon {
        points: vec![Point { x: 0.0, y: 0.0 }, Point { x: 1.0, y: 1.0 }],
    };
    assert!(MotionDetector::new(MotionOptions {
        masks: vec![bad_mask],
        ..Default::default()
    })
    .is_err());
    let mut m = MotionDetector::new(MotionOptions::default()).unwrap();
    let short = Image {
        width: 100,
        height: 100,
        format: PixelFormat::Gray8,
        data: Arc::from(vec![0u8; 10]),
        time: Timestamp(0),
    };
    assert!(m.detect(&short).is_err());
}
