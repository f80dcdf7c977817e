//! Snapshots drawn on request: a known picture through `render` and back through a JPEG
//! decoder, checking where the box, the label and the time are drawn, and what a crop and a
//! height give; bad requests and bad files are clear errors.

use vigil_core::{BBox, BestFrame, ErrorKind, Event, Timestamp};
use vigil_detect::render::{decode_jpeg, render, render_event_snapshot, Annotation, Rgb};
use vigil_detect::SnapshotStyle;

/// 640x360 mid grey with a darker 100x150 block at (200, 100).
fn picture() -> Rgb {
    let (w, h) = (640u32, 360u32);
    let mut data = vec![128u8; (w * h * 3) as usize];
    for y in 100..250 {
        for x in 200..300 {
            let i = ((y * w + x) * 3) as usize;
            data[i..i + 3].copy_from_slice(&[60, 60, 60]);
        }
    }
    Rgb {
        width: w,
        height: h,
        data,
    }
}

fn object() -> Annotation {
    Annotation {
        bbox: BBox {
            x1: 200.0 / 640.0,
            y1: 100.0 / 360.0,
            x2: 300.0 / 640.0,
            y2: 250.0 / 360.0,
        },
        label: "person".to_owned(),
        score: 0.87,
    }
}

fn px(p: &Rgb, x: u32, y: u32) -> [u8; 3] {
    let i = ((y * p.width + x) * 3) as usize;
    [p.data[i], p.data[i + 1], p.data[i + 2]]
}

fn grey(c: [u8; 3], v: u8) -> bool {
    c.iter().all(|&x| x.abs_diff(v) <= 12)
}

const T: Timestamp = Timestamp(1_766_491_200_000_000);

#[test]
fn plain_render_keeps_the_picture() {
    let out =
        decode_jpeg(&render(&picture(), T, Some(&object()), &SnapshotStyle::default()).unwrap())
            .unwrap();
    assert_eq!((out.width, out.height), (640, 360));
    assert!(grey(px(&out, 10, 10), 128));
    assert!(grey(px(&out, 250, 175), 60));
    assert!(grey(px(&out, 201, 175), 60), "no box drawn unless asked");
}

#[test]
fn bbox_and_timestamp_are_drawn_where_they_belong() {
    let style = SnapshotStyle {
        bbox: true,
        timestamp: true,
        quality: 95,
        ..Default::default()
    };
    let out = decode_jpeg(&render(&picture(), T, Some(&object()), &style).unwrap()).unwrap();
    // The box's left edge is coloured (not grey), its inside untouched.
    let edge = px(&out, 200, 175);
    let spread = edge.iter().max().unwrap() - edge.iter().min().unwrap();
    assert!(spread > 60, "box edge {edge:?}");
    assert!(grey(px(&out, 250, 175), 60));
    // The label sits just above the box, in the box's colour.
    let coloured = (89..98)
        .flat_map(|y| (200..260).map(move |x| (x, y)))
        .filter(|&(x, y)| {
            let c = px(&out, x, y);
            c.iter().max().unwrap() - c.iter().min().unwrap() > 60
        })
        .count();
    assert!(
        coloured > 100,
        "{coloured} coloured pixels where the label goes"
    );
    // The time is white letters on a black box at the top left.
    let strip: Vec<[u8; 3]> = (4..150).map(|x| px(&out, x, 8)).collect();
    assert!(strip.iter().any(|c| grey(*c, 0)), "no black box");
    assert!(
        strip.iter().any(|c| c.iter().all(|&v| v > 200)),
        "no white letters"
    );
    // Far from all of them the picture is as it was.
    assert!(grey(px(&out, 600, 340), 128));
}

#[test]
fn crop_and_height_frame_the_object() {
    let crop = SnapshotStyle {
        crop: true,
        ..Default::default()
    };
    let out = decode_jpeg(&render(&picture(), T, Some(&object()), &crop).unwrap()).unwrap();
    // A square of the box's longer side (150 px) plus 20%, centred on it.
    assert_eq!((out.width, out.height), (180, 180));
    assert!(grey(px(&out, 90, 90), 60));
    assert!(grey(px(&out, 3, 90), 128), "the margin beside the block");

    let small = SnapshotStyle {
        height: Some(180),
        ..Default::default()
    };
    let out = decode_jpeg(&render(&picture(), T, None, &small).unwrap()).unwrap();
    assert_eq!((out.width, out.height), (320, 180));
    assert!(grey(px(&out, 125, 87), 60));
    // Crop without an object to crop to: the whole picture.
    let out = decode_jpeg(&render(&picture(), T, None, &crop).unwrap()).unwrap();
    assert_eq!((out.width, out.height), (640, 360));
}

#[test]
fn bad_requests_and_bad_files_are_clear_errors() {
    for style in [
        SnapshotStyle {
            quality: 0,
            ..Default::default()
        },
        SnapshotStyle {
            height: Some(5),
            ..Default::default()
        },
    ] {
        let e = render(&picture(), T, None, &style).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    }
    let e = decode_jpeg(b"\xff\xd8 not a jpeg").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DataLoss, "{e}");
    let short = Rgb {
        width: 10,
        height: 10,
        data: vec![0; 5],
    };
    assert_eq!(
        render(&short, T, None, &SnapshotStyle::default())
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidArgument
    );
}

#[test]
fn an_event_snapshot_is_drawn_from_its_stored_file() {
    let dir = tempfile::tempdir().unwrap();
    let rel = "snapshots/yard/7.jpg";
    std::fs::create_dir_all(dir.path().join("snapshots/yard")).unwrap();
    let clean = render(
        &picture(),
        T,
        None,
        &SnapshotStyle {
            quality: 95,
            ..Default::default()
        },
    )
    .unwrap();
    std::fs::write(dir.path().join(rel), clean).unwrap();
    let mut e: Event = vigil_store::conformance::sample_events(1, 7).remove(0);
    e.label = "person".to_owned();
    e.has_snapshot = true;
    e.best = Some(BestFrame {
        time: T,
        bbox: object().bbox,
        score: 0.87,
        snapshot_path: Some(rel.to_owned()),
        thumbnail_path: None,
    });
    let style = SnapshotStyle {
        crop: true,
        height: Some(90),
        ..Default::default()
    };
    let out = decode_jpeg(&render_event_snapshot(dir.path(), &e, &style).unwrap()).unwrap();
    assert_eq!((out.width, out.height), (90, 90));
    assert!(grey(px(&out, 45, 45), 60));

    // Gone from disk, or never taken: not found.
    std::fs::remove_file(dir.path().join(rel)).unwrap();
    let err = render_event_snapshot(dir.path(), &e, &style).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    e.has_snapshot = false;
    let err = render_event_snapshot(dir.path(), &e, &style).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    // A stored path that climbs out of the data directory is refused.
    e.has_snapshot = true;
    e.best.as_mut().unwrap().snapshot_path = Some("../../etc/passwd".to_owned());
    assert!(render_event_snapshot(dir.path(), &e, &style).is_err());
}
